//! The meaning of OCI `linux.cgroupsPath`.
//!
//! * `/a/b` — absolute: relative to the root of each hierarchy.
//! * `a/b` — relative: below the runtime's own cgroup in each hierarchy (as runc does).
//! * `slice:prefix:name` — systemd style, mapped without talking to systemd to the plain
//!   absolute path `/<slice path>/<prefix>-<name>.scope`, where the slice path expands the
//!   dashes as systemd does (`a-b.slice` → `a.slice/a-b.slice`) and an empty slice is
//!   `system.slice`; a `name` ending in `.slice` is used as is, and an empty `prefix` gives
//!   `<name>.scope`. No systemd unit is created: the directories are managed like any other.

use std::path::{Component, Path, PathBuf};

use super::CgroupError;

/// A parsed `cgroupsPath`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupPath {
    /// Below the hierarchy root (stored without the leading `/`).
    Absolute(PathBuf),
    /// Below the runtime's own cgroup.
    Relative(PathBuf),
}

impl CgroupPath {
    /// Parses and validates (no `..`, no empty result for a relative path).
    pub fn parse(raw: &Path) -> Result<CgroupPath, CgroupError> {
        let s = raw.to_string_lossy();
        if !s.starts_with('/') && s.split(':').count() == 3 {
            return systemd_path(&s).map(CgroupPath::Absolute);
        }
        let clean = clean(raw)?;
        if raw.is_absolute() {
            Ok(CgroupPath::Absolute(clean))
        } else if clean.as_os_str().is_empty() {
            Err(invalid(&s, "empty path"))
        } else {
            Ok(CgroupPath::Relative(clean))
        }
    }

    /// The directory below a hierarchy root, given this process's cgroup in that hierarchy
    /// (already relative to the mount, see [`super::layout::relative_to_mount`]).
    pub fn below_root(&self, own: &Path) -> PathBuf {
        match self {
            CgroupPath::Absolute(p) => p.clone(),
            CgroupPath::Relative(p) => own.join(p),
        }
    }
}

fn invalid(raw: &str, why: &str) -> CgroupError {
    CgroupError::InvalidPath(format!("{raw:?}: {why}"))
}

/// The normal components of `p`; `..` is refused (it could leave the hierarchy).
fn clean(p: &Path) -> Result<PathBuf, CgroupError> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(invalid(&p.to_string_lossy(), "\"..\" is not allowed"))
            }
        }
    }
    Ok(out)
}

/// `slice:prefix:name` → `<slice path>/<prefix>-<name>.scope` (see the module docs).
fn systemd_path(s: &str) -> Result<PathBuf, CgroupError> {
    let mut parts = s.split(':');
    let (slice, prefix, name) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    if name.is_empty() {
        return Err(invalid(s, "systemd cgroupsPath needs a name"));
    }
    if [slice, prefix, name].iter().any(|p| p.contains('/')) {
        return Err(invalid(s, "systemd cgroupsPath parts cannot contain '/'"));
    }
    let mut path = expand_slice(if slice.is_empty() {
        "system.slice"
    } else {
        slice
    })
    .ok_or_else(|| invalid(s, "invalid slice name"))?;
    if name.ends_with(".slice") {
        path.push(name);
    } else if prefix.is_empty() {
        path.push(format!("{name}.scope"));
    } else {
        path.push(format!("{prefix}-{name}.scope"));
    }
    Ok(path)
}

/// `a-b-c.slice` → `a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root slice.
fn expand_slice(slice: &str) -> Option<PathBuf> {
    let base = slice.strip_suffix(".slice")?;
    if base == "-" {
        return Some(PathBuf::new());
    }
    if base.is_empty() || base.starts_with('-') || base.ends_with('-') || base.contains("--") {
        return None;
    }
    let mut path = PathBuf::new();
    let mut prefix = String::new();
    for part in base.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push(format!("{prefix}.slice"));
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<CgroupPath, CgroupError> {
        CgroupPath::parse(Path::new(s))
    }

    #[test]
    fn absolute_paths_are_below_the_root() {
        let p = parse("/wharf/abc").unwrap();
        assert_eq!(p, CgroupPath::Absolute("wharf/abc".into()));
        assert_eq!(p.below_root(Path::new("own")), Path::new("wharf/abc"));
    }

    #[test]
    fn relative_paths_are_below_the_own_cgroup() {
        let p = parse("ctr/abc").unwrap();
        assert_eq!(
            p.below_root(Path::new("user.slice/x")),
            Path::new("user.slice/x/ctr/abc")
        );
    }

    #[test]
    fn dotdot_is_refused() {
        assert!(matches!(
            parse("/a/../../etc"),
            Err(CgroupError::InvalidPath(_))
        ));
        assert!(matches!(parse("../x"), Err(CgroupError::InvalidPath(_))));
    }

    #[test]
    fn systemd_paths_map_to_scopes() {
        assert_eq!(
            parse("system.slice:docker:abc").unwrap(),
            CgroupPath::Absolute("system.slice/docker-abc.scope".into())
        );
        assert_eq!(
            parse("machine-wharf.slice:wharf:abc").unwrap(),
            CgroupPath::Absolute("machine.slice/machine-wharf.slice/wharf-abc.scope".into())
        );
        assert_eq!(
            parse(":wharf:abc").unwrap(),
            CgroupPath::Absolute("system.slice/wharf-abc.scope".into())
        );
        assert_eq!(
            parse("-.slice::abc").unwrap(),
            CgroupPath::Absolute("abc.scope".into())
        );
        assert_eq!(
            parse("user.slice:p:my.slice").unwrap(),
            CgroupPath::Absolute("user.slice/my.slice".into())
        );
    }

    #[test]
    fn bad_systemd_paths_are_refused() {
        assert!(parse("system.slice:docker:").is_err());
        assert!(parse("nodot:docker:abc").is_err());
        assert!(parse("a--b.slice:docker:abc").is_err());
        assert!(parse("system.slice:do/cker:abc").is_err());
    }
}
