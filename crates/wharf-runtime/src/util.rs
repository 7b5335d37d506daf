//! Small helpers: atomic files, container ids, /proc lookups, and resolving a path inside a
//! root without following symlinks out of it.

use crate::error::{Context, Result, RuntimeError};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Writes `data` to `path` atomically: a temporary file beside it, then a rename. A crash of
/// any process leaves either the old or the new content, never a torn file. There is no
/// fsync, as in runc: everything the runtime writes (state, its copy of the config, pid
/// files) is runtime state under `/run`, void after a reboot, and an fsync there costs
/// milliseconds per container on a disk-backed `/run`.
pub fn atomic_write(path: &Path, data: &[u8]) -> Result<()> {
    wharf_fs::AtomicWrite::default()
        .mode(0o644)
        .durable(false)
        .write(path, data)
        .ctx(|| format!("writing {}", path.display()))
}

/// Checks a container id as runc does: `^[\w+-\.]+$`, not `.` or `..`.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::InvalidId(id.to_string()))
    }
}

/// The start time (field 22 of /proc/<pid>/stat, in clock ticks since boot) of `pid`, used
/// to tell our process from a later one that reused its pid. None when it is gone.
pub fn pid_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

fn parse_start_time(stat: &[u8]) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: skip past the last ')'.
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    // After ')' come fields 3.. ; the start time is field 22, so index 19 here.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The state letter (field 3 of /proc/<pid>/stat): R, S, D, Z, T...
pub fn pid_state(pid: i32) -> Option<char> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    std::str::from_utf8(&stat[close + 1..])
        .ok()?
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// Resolves `unsafe_path` inside `root` as if `root` were `/`: `..` stops at the root, and
/// symlinks (absolute or relative) are followed but kept inside `root`. The result need not
/// exist. Like Go's securejoin, which runc uses for mount destinations.
pub fn secure_join(root: &Path, unsafe_path: &Path) -> Result<PathBuf> {
    let mut resolved = PathBuf::new(); // relative to root
    let mut pending: Vec<PathBuf> = vec![unsafe_path.to_path_buf()];
    let mut links = 0;
    // A stack of paths still to walk, each consumed component by component.
    let mut queue: std::collections::VecDeque<std::ffi::OsString> = Default::default();
    while let Some(p) = pending.pop() {
        for c in p.components() {
            match c {
                Component::Normal(n) => queue.push_back(n.to_os_string()),
                Component::ParentDir => queue.push_back("..".into()),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
    }
    while let Some(name) = queue.pop_front() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&name);
        let full = root.join(&candidate);
        match std::fs::symlink_metadata(&full) {
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                if links > 255 {
                    return Err(RuntimeError::Config(format!(
                        "too many levels of symbolic links resolving {} in {}",
                        unsafe_path.display(),
                        root.display()
                    )));
                }
                let target =
                    std::fs::read_link(&full).ctx(|| format!("reading link {}", full.display()))?;
                if target.as_os_str().as_bytes().first() == Some(&b'/') {
                    resolved = PathBuf::new();
                }
                let mut front = Vec::new();
                for c in target.components() {
                    match c {
                        Component::Normal(n) => front.push(n.to_os_string()),
                        Component::ParentDir => front.push("..".into()),
                        _ => {}
                    }
                }
                for n in front.into_iter().rev() {
                    queue.push_front(n);
                }
            }
            _ => resolved = candidate,
        }
    }
    Ok(root.join(resolved))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_parses_names_with_spaces_and_parens() {
        let stat = b"42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(parse_start_time(b"garbage"), None);
    }

    #[test]
    fn own_start_time_is_stable() {
        let me = std::process::id() as i32;
        let a = pid_start_time(me).unwrap();
        assert_eq!(pid_start_time(me), Some(a));
        assert!(pid_state(me).is_some());
    }

    #[test]
    fn ids() {
        for ok in ["a", "abc-1.2_3+x", "0123456789abcdef"] {
            validate_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a b", "x\n"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secure_join_keeps_symlinks_inside() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("real/dir")).unwrap();
        std::os::unix::fs::symlink("/real", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("real/up")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert_eq!(
            secure_join(root, Path::new("/abs/dir")).unwrap(),
            root.join("real/dir")
        );
        assert_eq!(
            secure_join(root, Path::new("/real/up/passwd")).unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(
            secure_join(root, Path::new("../../x")).unwrap(),
            root.join("x")
        );
        assert!(secure_join(root, Path::new("/loop")).is_err());
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state.json");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        assert!(atomic_write(&d.path().join("no/such/dir"), b"x").is_err());
    }
}
