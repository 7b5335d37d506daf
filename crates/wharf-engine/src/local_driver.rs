//! The `local` volume driver's options, as Docker's takes them: `type`, `device` and `o`
//! (`--opt type=tmpfs --opt device=tmpfs --opt o=size=100m`, or a bind of a host directory
//! with `--opt type=none --opt o=bind --opt device=/host/dir`). Such a volume is mounted on
//! its `_data` directory while a container uses it, and unmounted when none does.

use nix::mount::{MntFlags, MsFlags};
use std::collections::BTreeMap;
use std::path::Path;

/// What can go wrong with driver options or their mount.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("invalid option: {0:?}")]
    InvalidOption(String),
    #[error("missing required option: {0:?}")]
    MissingOption(String),
    #[error("quota size requested but no quota support")]
    NoQuota,
    #[error("error while mounting volume '{path}': failed to mount local volume: mount {device}:{path}, data: {data}: {err}")]
    Mount {
        path: String,
        device: String,
        data: String,
        err: nix::Error,
    },
    #[error("error while unmounting volume '{path}': {err}")]
    Unmount { path: String, err: nix::Error },
}

/// Checks options as Docker's local driver does (`validOpts`, `mandatoryOpts`).
pub fn validate(opts: &BTreeMap<String, String>) -> Result<(), DriverError> {
    for k in opts.keys() {
        if !matches!(k.as_str(), "type" | "device" | "o" | "size") {
            return Err(DriverError::InvalidOption(k.clone()));
        }
    }
    if opts.contains_key("size") {
        return Err(DriverError::NoQuota);
    }
    for (opt, required) in [
        ("device", &["type"][..]),
        ("type", &["device"][..]),
        ("o", &["device"][..]),
    ] {
        if opts.contains_key(opt) {
            if let Some(r) = required.iter().find(|r| !opts.contains_key(**r)) {
                return Err(DriverError::MissingOption(r.to_string()));
            }
        }
    }
    Ok(())
}

/// Whether the options ask for a mount (else the volume is a plain directory).
pub fn needs_mount(opts: &BTreeMap<String, String>) -> bool {
    opts.contains_key("device")
}

/// Whether something is mounted exactly at `path`.
pub fn is_mounted(path: &Path) -> bool {
    wharf_runtime::mountinfo::read_self()
        .iter()
        .any(|e| e.mount_point == path)
}

/// Mounts the volume's device on `path` (its `_data`), unless already mounted.
pub fn mount(opts: &BTreeMap<String, String>, path: &Path) -> Result<(), DriverError> {
    if !needs_mount(opts) || is_mounted(path) {
        return Ok(());
    }
    let device = opts.get("device").map(String::as_str).unwrap_or_default();
    let fstype = opts.get("type").map(String::as_str).unwrap_or("none");
    let o: Vec<String> = opts
        .get("o")
        .map(|o| {
            o.split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let parsed = wharf_runtime::mounts::parse(&o);
    let fail = |err| DriverError::Mount {
        path: path.display().to_string(),
        device: device.to_string(),
        data: parsed.data.clone(),
        err,
    };
    let data = (!parsed.data.is_empty()).then_some(parsed.data.as_str());
    nix::mount::mount(Some(device), path, Some(fstype), parsed.flags, data).map_err(fail)?;
    // The kernel ignores MS_RDONLY (and friends) on a new bind: apply them with a remount.
    let extra = parsed.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
    if parsed.bind && !extra.is_empty() {
        let r = nix::mount::mount(
            None::<&str>,
            path,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | extra,
            None::<&str>,
        );
        if let Err(e) = r {
            let _ = nix::mount::umount2(path, MntFlags::MNT_DETACH);
            return Err(fail(e));
        }
    }
    Ok(())
}

/// Unmounts `path` if something is mounted there.
pub fn unmount(path: &Path) -> Result<(), DriverError> {
    if !is_mounted(path) {
        return Ok(());
    }
    nix::mount::umount2(path, MntFlags::MNT_DETACH).map_err(|err| DriverError::Unmount {
        path: path.display().to_string(),
        err,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_validate_like_dockers_local_driver() {
        assert!(validate(&opts(&[])).is_ok());
        assert!(validate(&opts(&[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=1m")
        ]))
        .is_ok());
        assert_eq!(
            validate(&opts(&[("foo", "bar")])).unwrap_err().to_string(),
            "invalid option: \"foo\""
        );
        assert_eq!(
            validate(&opts(&[("type", "tmpfs")]))
                .unwrap_err()
                .to_string(),
            "missing required option: \"device\""
        );
        assert_eq!(
            validate(&opts(&[("o", "bind"), ("type", "none")]))
                .unwrap_err()
                .to_string(),
            "missing required option: \"device\""
        );
        assert!(!needs_mount(&opts(&[])));
    }
}
