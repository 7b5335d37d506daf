//! Writes that are whole or absent: a file is written to a temporary name of its own beside
//! the target, then renamed over it, so a reader (or a daemon restarted after a crash) sees
//! the old contents or the new, never a torn file. One implementation for every store:
//! images, layers, containers, volumes, networks, the shim's exit status.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How [`AtomicWrite::write`] writes. The default is for the data-root: mode 0600 (daemon
/// state, for root only) and durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtomicWrite {
    mode: u32,
    keep_mode: bool,
    durable: bool,
}

impl Default for AtomicWrite {
    fn default() -> Self {
        AtomicWrite {
            mode: 0o600,
            keep_mode: false,
            durable: true,
        }
    }
}

impl AtomicWrite {
    /// The mode of the new file, set exactly (the umask does not apply).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Keeps the mode of the file being replaced; `mode` is for a new one.
    pub fn keep_mode(mut self) -> Self {
        self.keep_mode = true;
        self
    }

    /// `false`: no fsync of the file or its directory. For runtime state in the exec-root (a
    /// tmpfs `/run` on a normal host), which means nothing after a reboot: the rename alone
    /// already survives a crash of any process, and the fsyncs cost milliseconds per
    /// container start on a disk-backed `/run`.
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Replaces `path` with `data`. On an error the target is untouched and the temporary
    /// file is gone.
    pub fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mode = match self.keep_mode {
            true => fs::metadata(path).map_or(self.mode, |m| m.permissions().mode() & 0o7777),
            false => self.mode,
        };
        let tmp = temp_name(dir, path);
        let written = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&tmp)?;
            // `mode` at open is filtered by the umask: set it exactly.
            f.set_permissions(fs::Permissions::from_mode(mode))?;
            f.write_all(data)?;
            if self.durable {
                f.sync_all()?;
            }
            fs::rename(&tmp, path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
            return written;
        }
        if self.durable {
            // The rename itself must survive a crash of the machine.
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// Writes `data` to `path` atomically and durably, mode 0600: [`AtomicWrite::default`].
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    AtomicWrite::default().write(path, data)
}

/// A temporary name beside `path`, unique per process and call, so two writers of one path
/// (two pulls of one config, two daemons' tools) never share it. Hidden (a leading dot), so
/// directory listings that mean "the entries" can skip it.
fn temp_name(dir: &Path, path: &Path) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("f");
    dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(entries(d.path()), ["config.json"]);
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
            0o600
        );
    }

    #[test]
    fn a_failed_write_keeps_the_old_contents() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        write_atomic(&p, b"old").unwrap();
        // A directory in the way of the rename: the write fails, the old file stays whole.
        let blocked = d.path().join("sub");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("x"), b"").unwrap();
        assert!(write_atomic(&blocked, b"new").is_err());
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(entries(d.path()), ["f", "sub"]);
        // A missing directory: an error, nothing created.
        assert!(write_atomic(&d.path().join("no/such"), b"x").is_err());
    }

    #[test]
    fn modes_exact_kept_or_chosen() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("subuid");
        AtomicWrite::default()
            .mode(0o644)
            .keep_mode()
            .write(&p, b"a")
            .unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
            0o644
        );
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        AtomicWrite::default()
            .mode(0o644)
            .keep_mode()
            .write(&p, b"b")
            .unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        AtomicWrite::default()
            .mode(0o755)
            .durable(false)
            .write(&p, b"c")
            .unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
            0o755
        );
        assert_eq!(fs::read(&p).unwrap(), b"c");
    }

    #[test]
    fn concurrent_writers_of_one_path_never_mix() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let bodies: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 64 * 1024]).collect();
        std::thread::scope(|s| {
            for b in &bodies {
                let p = &p;
                s.spawn(move || {
                    for _ in 0..20 {
                        write_atomic(p, b).unwrap();
                    }
                });
            }
        });
        let got = fs::read(&p).unwrap();
        assert!(bodies.contains(&got), "a torn file");
        assert_eq!(entries(d.path()), ["f"]);
    }
}
