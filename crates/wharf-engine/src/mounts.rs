//! A container's mount requests, parsed and validated as Docker does: `Binds` (`-v`),
//! `Mounts` (`--mount`), `VolumesFrom` (`--volumes-from`) and tmpfs options. Pure parsing
//! (plus the bind-source existence check Docker makes for `--mount`); the engine turns the
//! results into volumes and [`crate::volumes::MountRecord`]s.

use std::collections::BTreeMap;
use std::path::Path;
use wharf_api::mount::{Mount, TmpfsOptions};
use wharf_api::ApiError;

/// A mount request that cannot be honoured, worded as dockerd words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    #[error("invalid volume specification: '{0}'")]
    InvalidSpec(String),
    #[error("invalid volume specification: '{spec}': {reason}")]
    InvalidSpecReason { spec: String, reason: String },
    #[error("invalid mode: {0}")]
    InvalidMode(String),
    /// `--mount` validation: `invalid mount config for type "bind": ...`.
    #[error("invalid mount config for type \"{kind}\": {reason}")]
    Config { kind: String, reason: String },
    #[error("Duplicate mount point: {0}")]
    Duplicate(String),
    #[error("mount type \"{0}\" is not supported by wharf yet")]
    Unsupported(String),
}

impl From<MountError> for ApiError {
    fn from(e: MountError) -> ApiError {
        ApiError::bad_request(e.to_string())
    }
}

/// Where a mount's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A host path (`-v /host:/ctr`, `--mount type=bind`).
    Host(String),
    /// A volume: named, or anonymous when `name` is `None`.
    Volume {
        name: Option<String>,
        /// Local driver options for a volume this mount creates (`volume-opt=`).
        driver_opts: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
        nocopy: bool,
    },
    /// A tmpfs with these mount options (`size=1024k`, `mode=1777`, `ro`).
    Tmpfs(Vec<String>),
}

/// One parsed mount request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountRequest {
    pub source: Source,
    pub destination: String,
    pub rw: bool,
    /// Bind propagation ("" for volumes and tmpfs).
    pub propagation: String,
    /// Inspect's `Mode`.
    pub mode: String,
}

const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

fn clean_dest(d: &str) -> String {
    let t = d.trim_end_matches('/');
    if t.is_empty() {
        "/".into()
    } else {
        t.into()
    }
}

/// Parses one `Binds` entry (`src:dst[:opts]`): an absolute `src` is a host path, anything
/// else names a volume.
pub fn parse_bind(b: &str) -> Result<MountRequest, MountError> {
    let parts: Vec<&str> = b.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => return Err(MountError::InvalidSpec(b.into())),
    };
    if src.is_empty() || !dst.starts_with('/') {
        return Err(MountError::InvalidSpecReason {
            spec: b.into(),
            reason: format!("invalid mount config for type \"bind\": invalid mount path: '{dst}' mount path must be absolute"),
        });
    }
    if clean_dest(dst) == "/" {
        return Err(MountError::InvalidSpecReason {
            spec: b.into(),
            reason: "invalid specification: destination can't be '/'".into(),
        });
    }
    let opts: Vec<&str> = opts.split(',').filter(|s| !s.is_empty()).collect();
    let mut rw_seen = 0;
    let mut prop_seen = 0;
    for o in &opts {
        match *o {
            "ro" | "rw" => rw_seen += 1,
            "z" | "Z" | "nocopy" => {}
            p if PROPAGATIONS.contains(&p) => prop_seen += 1,
            _ => return Err(MountError::InvalidMode(opts.join(","))),
        }
    }
    let host = src.starts_with('/');
    if rw_seen > 1 || prop_seen > 1 || (host && opts.contains(&"nocopy")) {
        return Err(MountError::InvalidMode(opts.join(",")));
    }
    let rw = !opts.contains(&"ro");
    let mode = opts.join(",");
    Ok(if host {
        MountRequest {
            source: Source::Host(src.into()),
            destination: clean_dest(dst),
            rw,
            propagation: opts
                .iter()
                .find(|o| PROPAGATIONS.contains(o))
                .map_or("rprivate", |p| p)
                .into(),
            mode,
        }
    } else {
        if prop_seen > 0 {
            return Err(MountError::InvalidMode(mode));
        }
        MountRequest {
            source: Source::Volume {
                name: Some(src.into()),
                driver_opts: BTreeMap::new(),
                labels: BTreeMap::new(),
                nocopy: opts.contains(&"nocopy"),
            },
            destination: clean_dest(dst),
            rw,
            propagation: String::new(),
            mode: if mode.is_empty() { "z".into() } else { mode },
        }
    })
}

/// Parses and validates one `HostConfig.Mounts` entry, with dockerd's checks and messages
/// (a `bind` source must exist unless `CreateMountpoint`).
pub fn parse_mount(m: &Mount) -> Result<MountRequest, MountError> {
    let cfg = |reason: String| MountError::Config {
        kind: m.kind.clone(),
        reason,
    };
    let missing = |f: &str| cfg(format!("field {f} must not be empty"));
    let extra = |f: &str| cfg(format!("field {f} must not be specified"));
    if m.target.is_empty() {
        return Err(missing("Target"));
    }
    if clean_dest(&m.target) == "/" {
        return Err(cfg("invalid specification: destination can't be '/'".into()));
    }
    if !m.target.starts_with('/') {
        return Err(cfg(format!(
            "invalid mount path: '{}' mount path must be absolute",
            m.target
        )));
    }
    let destination = clean_dest(&m.target);
    match m.kind.as_str() {
        "bind" => {
            if m.source.is_empty() {
                return Err(missing("Source"));
            }
            if m.volume_options.is_some() {
                return Err(extra("VolumeOptions"));
            }
            if m.tmpfs_options.is_some() {
                return Err(extra("TmpfsOptions"));
            }
            let b = m.bind_options.clone().unwrap_or_default();
            if !b.propagation.is_empty() && !PROPAGATIONS.contains(&b.propagation.as_str()) {
                return Err(cfg(format!("invalid propagation mode: {}", b.propagation)));
            }
            if !m.source.starts_with('/') {
                return Err(cfg(format!(
                    "invalid mount path: '{}' mount path must be absolute",
                    m.source
                )));
            }
            if !b.create_mountpoint && !Path::new(&m.source).exists() {
                return Err(cfg(format!(
                    "bind source path does not exist: {}",
                    m.source
                )));
            }
            Ok(MountRequest {
                source: Source::Host(m.source.clone()),
                destination,
                rw: !m.read_only,
                propagation: if b.propagation.is_empty() {
                    "rprivate".into()
                } else {
                    b.propagation
                },
                mode: String::new(),
            })
        }
        "volume" => {
            if m.bind_options.is_some() {
                return Err(extra("BindOptions"));
            }
            if m.tmpfs_options.is_some() {
                return Err(extra("TmpfsOptions"));
            }
            let o = m.volume_options.clone().unwrap_or_default();
            let anonymous = m.source.is_empty();
            if !o.subpath.is_empty() {
                return Err(MountError::Unsupported("volume with a subpath".into()));
            }
            if m.read_only && anonymous {
                return Err(cfg(
                    "must not set ReadOnly mode when using anonymous volumes".into(),
                ));
            }
            let driver = o.driver_config.unwrap_or_default();
            if !driver.name.is_empty() && driver.name != "local" {
                return Err(cfg(format!(
                    "volume driver \"{}\" is not available (wharf has only \"local\")",
                    driver.name
                )));
            }
            Ok(MountRequest {
                source: Source::Volume {
                    name: (!anonymous).then(|| m.source.clone()),
                    driver_opts: driver.options,
                    labels: o.labels,
                    nocopy: o.no_copy,
                },
                destination,
                rw: !m.read_only,
                propagation: String::new(),
                mode: "z".into(),
            })
        }
        "tmpfs" => {
            if m.bind_options.is_some() {
                return Err(extra("BindOptions"));
            }
            if m.volume_options.is_some() {
                return Err(extra("VolumeOptions"));
            }
            if !m.source.is_empty() {
                return Err(extra("Source"));
            }
            let opts = tmpfs_options(&m.tmpfs_options.clone().unwrap_or_default(), m.read_only)
                .map_err(cfg)?;
            Ok(MountRequest {
                source: Source::Tmpfs(opts),
                destination,
                rw: !m.read_only,
                propagation: String::new(),
                mode: String::new(),
            })
        }
        "npipe" | "cluster" => Err(cfg("mount type unknown".into())),
        "image" => Err(MountError::Unsupported("image".into())),
        _ => Err(cfg("mount type unknown".into())),
    }
}

/// The mount data of `TmpfsOptions` (Docker's `ConvertTmpfsOptions`): `size=` with the
/// largest unit dividing it evenly, `mode=` in octal, extra flags, `ro`.
pub fn tmpfs_options(o: &TmpfsOptions, read_only: bool) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    if read_only {
        out.push("ro".to_string());
    }
    if o.size_bytes < 0 {
        return Err(format!("invalid tmpfs size: {}", o.size_bytes));
    }
    if o.size_bytes > 0 {
        let (mut size, mut suffix) = (o.size_bytes, "");
        for (unit, s) in [(1i64 << 30, "g"), (1 << 20, "m"), (1 << 10, "k")] {
            if o.size_bytes % unit == 0 {
                (size, suffix) = (o.size_bytes / unit, s);
                break;
            }
        }
        out.push(format!("size={size}{suffix}"));
    }
    if o.mode != 0 {
        out.push(format!("mode={:o}", o.mode & 0o7777));
    }
    for flag in &o.options {
        match flag.as_slice() {
            [f] if f == "exec" || f == "noexec" => out.push(f.clone()),
            [k, v] if k == "uid" || k == "gid" || k == "nr_inodes" => out.push(format!("{k}={v}")),
            other => return Err(format!("unsupported tmpfs option {other:?}")),
        }
    }
    Ok(out)
}

/// Parses one `VolumesFrom` entry: the container and the forced mode (`Some(false)` for
/// `:ro`, `Some(true)` for `:rw`, `None` to keep each mount's own).
pub fn parse_volumes_from(spec: &str) -> Result<(String, Option<bool>), MountError> {
    match spec.split_once(':') {
        None => Ok((spec.to_string(), None)),
        Some((c, "ro")) => Ok((c.to_string(), Some(false))),
        Some((c, "rw")) => Ok((c.to_string(), Some(true))),
        Some((_, m)) => Err(MountError::InvalidMode(m.to_string())),
    }
}

/// Fails when two requests share a destination (`volumes-from` ones excluded by the caller).
pub fn check_duplicates(reqs: &[MountRequest]) -> Result<(), MountError> {
    let mut seen = std::collections::BTreeSet::new();
    for r in reqs {
        if !seen.insert(r.destination.as_str()) {
            return Err(MountError::Duplicate(r.destination.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_api::mount::{BindOptions, VolumeOptions};

    #[test]
    fn binds_parse_like_docker() {
        let r = parse_bind("data:/srv:ro,nocopy").unwrap();
        assert!(!r.rw);
        assert_eq!(r.mode, "ro,nocopy");
        assert!(matches!(r.source, Source::Volume { nocopy: true, .. }));
        let h = parse_bind("/h:/c:rshared").unwrap();
        assert_eq!(h.propagation, "rshared");
        assert_eq!(h.source, Source::Host("/h".into()));
        assert!(parse_bind("/a:b").is_err());
        assert_eq!(
            parse_bind("/a:/b:xx").unwrap_err().to_string(),
            "invalid mode: xx"
        );
        assert!(parse_bind("/a:/b:ro,rw").is_err());
        assert!(parse_bind("/a:/b:nocopy").is_err());
        assert!(parse_bind("/a").is_err());
        assert!(parse_bind("/a:/").is_err());
    }

    #[test]
    fn mounts_validate_with_dockers_messages() {
        let bind = |src: &str| Mount {
            kind: "bind".into(),
            source: src.into(),
            target: "/t".into(),
            ..Default::default()
        };
        assert_eq!(
            parse_mount(&bind("/does/not/exist")).unwrap_err().to_string(),
            "invalid mount config for type \"bind\": bind source path does not exist: /does/not/exist"
        );
        assert_eq!(
            parse_mount(&bind("")).unwrap_err().to_string(),
            "invalid mount config for type \"bind\": field Source must not be empty"
        );
        let mut created = bind("/does/not/exist");
        created.bind_options = Some(BindOptions {
            create_mountpoint: true,
            ..Default::default()
        });
        assert!(parse_mount(&created).is_ok());
        let mut with_vol = bind("/");
        with_vol.volume_options = Some(VolumeOptions::default());
        assert_eq!(
            parse_mount(&with_vol).unwrap_err().to_string(),
            "invalid mount config for type \"bind\": field VolumeOptions must not be specified"
        );
        let anon_ro = Mount {
            kind: "volume".into(),
            target: "/v".into(),
            read_only: true,
            ..Default::default()
        };
        assert!(parse_mount(&anon_ro)
            .unwrap_err()
            .to_string()
            .contains("anonymous volumes"));
        let pipe = Mount {
            kind: "npipe".into(),
            source: "x".into(),
            target: "/p".into(),
            ..Default::default()
        };
        assert_eq!(
            parse_mount(&pipe).unwrap_err().to_string(),
            "invalid mount config for type \"npipe\": mount type unknown"
        );
        let tmp = Mount {
            kind: "tmpfs".into(),
            source: "x".into(),
            target: "/p".into(),
            ..Default::default()
        };
        assert_eq!(
            parse_mount(&tmp).unwrap_err().to_string(),
            "invalid mount config for type \"tmpfs\": field Source must not be specified"
        );
    }

    #[test]
    fn tmpfs_options_like_docker() {
        let o = TmpfsOptions {
            size_bytes: 1 << 20,
            mode: 0o1777,
            options: vec![vec!["exec".into()]],
        };
        assert_eq!(
            tmpfs_options(&o, true).unwrap(),
            vec!["ro", "size=1m", "mode=1777", "exec"]
        );
        let odd = TmpfsOptions {
            size_bytes: 1000,
            ..Default::default()
        };
        assert_eq!(tmpfs_options(&odd, false).unwrap(), vec!["size=1000"]);
    }

    #[test]
    fn volumes_from_modes() {
        assert_eq!(parse_volumes_from("a").unwrap(), ("a".into(), None));
        assert_eq!(
            parse_volumes_from("a:ro").unwrap(),
            ("a".into(), Some(false))
        );
        assert!(parse_volumes_from("a:zz").is_err());
    }
}
