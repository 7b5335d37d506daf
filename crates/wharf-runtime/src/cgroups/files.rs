//! Reading and writing cgroupfs interface files, with errors that name the file and the value.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use super::CgroupError;

/// Writes `value` to the interface file `dir/file` (no `O_CREAT`: cgroupfs files exist or the
/// controller is missing). The error names the file and the value.
pub fn write(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    write_path(&dir.join(file), value)
}

/// Like [`write`], for a full path.
pub fn write_path(path: &Path, value: &str) -> Result<(), CgroupError> {
    let res = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        // One write(2) per value: cgroupfs parses each write on its own.
        .and_then(|mut f| f.write_all(value.as_bytes()));
    res.map_err(|source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

/// Reads `dir/file` as a string.
pub fn read(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    fs::read_to_string(&path).map_err(|source| CgroupError::Read { path, source })
}

/// Reads `dir/file`, `None` when it does not exist (an optional kernel feature).
pub fn read_opt(dir: &Path, file: &str) -> Result<Option<String>, CgroupError> {
    let path = dir.join(file);
    match fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read { path, source }),
    }
}

/// Reads a single-number file; `max` reads as `u64::MAX` (as runc reports it). `None` when
/// the file does not exist.
pub fn read_u64_opt(dir: &Path, file: &str) -> Result<Option<u64>, CgroupError> {
    match read_opt(dir, file)? {
        None => Ok(None),
        Some(s) => parse_u64_or_max(s.trim())
            .map(Some)
            .ok_or_else(|| CgroupError::Parse {
                path: dir.join(file),
                detail: format!("not a number: {:?}", s.trim()),
            }),
    }
}

/// Like [`read_u64_opt`], 0 when the file does not exist.
pub fn read_u64(dir: &Path, file: &str) -> Result<u64, CgroupError> {
    Ok(read_u64_opt(dir, file)?.unwrap_or(0))
}

/// `"max"` → `u64::MAX`, a decimal number → itself. Negative numbers (v1's `-1`) → `u64::MAX`.
pub fn parse_u64_or_max(s: &str) -> Option<u64> {
    if s == "max" || s == "-1" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

/// Creates `dir` and its missing parents (the kernel fills in the interface files).
pub fn mkdir_all(dir: &Path) -> Result<(), CgroupError> {
    fs::create_dir_all(dir).map_err(|source| CgroupError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// All pids in `cgroup.procs` of `dir` and of every cgroup below it.
pub fn pids_recursive(dir: &Path, out: &mut Vec<i32>) -> Result<(), CgroupError> {
    let procs = match read_opt(dir, "cgroup.procs")? {
        Some(p) => p,
        None => return Ok(()),
    };
    for line in procs.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let pid = line.parse().map_err(|_| CgroupError::Parse {
            path: dir.join("cgroup.procs"),
            detail: format!("not a pid: {line:?}"),
        })?;
        out.push(pid);
    }
    for sub in subdirs(dir)? {
        pids_recursive(&sub, out)?;
    }
    Ok(())
}

fn subdirs(dir: &Path) -> Result<Vec<std::path::PathBuf>, CgroupError> {
    let io = |source| CgroupError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io)?;
        if entry.file_type().map_err(io)?.is_dir() {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// How often [`remove_tree`] retries an `rmdir` that fails with `EBUSY`.
const RMDIR_RETRIES: u32 = 8;

/// Removes the cgroup `dir` and every cgroup below it, bottom-up. A missing `dir` is fine.
/// `EBUSY` is retried with a growing pause: the kernel releases a cgroup a moment after its
/// last process exits.
pub fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    for sub in subdirs(dir)? {
        remove_tree(&sub)?;
    }
    let mut pause = Duration::from_millis(5);
    for attempt in 0..=RMDIR_RETRIES {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < RMDIR_RETRIES => {
                sleep(pause);
                pause *= 2;
            }
            Err(source) => {
                return Err(CgroupError::Io {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
    unreachable!("the last attempt returns")
}

/// Calls `done` until it returns true or `timeout` passes (pausing 1 ms, growing to 10 ms);
/// returns whether it got there.
pub fn poll_until(
    timeout: Duration,
    mut done: impl FnMut() -> Result<bool, CgroupError>,
) -> Result<bool, CgroupError> {
    let start = std::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if done()? {
            return Ok(true);
        }
        if start.elapsed() >= timeout {
            return Ok(false);
        }
        sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_and_minus_one_read_as_unlimited() {
        assert_eq!(parse_u64_or_max("max"), Some(u64::MAX));
        assert_eq!(parse_u64_or_max("-1"), Some(u64::MAX));
        assert_eq!(parse_u64_or_max("4096"), Some(4096));
        assert_eq!(parse_u64_or_max("x"), None);
    }

    #[test]
    fn write_error_names_file_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let err = write(dir.path(), "memory.max", "12345")
            .unwrap_err()
            .to_string();
        let want = format!(
            "writing 12345 to {}",
            dir.path().join("memory.max").display()
        );
        assert!(err.starts_with(&want), "{err}");
        assert!(err.contains("No such file"), "{err}");
    }

    #[test]
    fn pids_are_collected_from_nested_cgroups() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("cgroup.procs"), "1\n2\n").unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub/cgroup.procs"), "3\n").unwrap();
        let mut pids = Vec::new();
        pids_recursive(dir.path(), &mut pids).unwrap();
        pids.sort();
        assert_eq!(pids, [1, 2, 3]);
    }

    #[test]
    fn removing_a_missing_tree_is_ok() {
        let dir = tempfile::tempdir().unwrap();
        remove_tree(&dir.path().join("gone")).unwrap();
        fs::create_dir_all(dir.path().join("a/b/c")).unwrap();
        remove_tree(&dir.path().join("a")).unwrap();
        assert!(!dir.path().join("a").exists());
    }
}
