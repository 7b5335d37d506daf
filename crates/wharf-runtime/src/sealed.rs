//! Keeping the runtime's own binary out of a container's reach (CVE-2019-5736).
//!
//! A container's init and exec processes are forks of the process that runs the runtime
//! (wharf-shim, or the `wharf-runtime` binary), so until their final execve their
//! `/proc/<pid>/exe` is that binary on the host's disk, and a container whose entrypoint is
//! `/proc/self/exe` (or a `#!/proc/self/exe` script) even makes the kernel execute it inside
//! the container. A process there that opens it and writes once the runtime has gone would
//! replace the host's binary. runc answers with a sealed memfd copy (1.1) or a read-only
//! bind (1.2); we use the read-only bind: the binary is executed through a detached, read-only
//! clone of its mount (`open_tree(OPEN_TREE_CLONE)` + `mount_setattr(MOUNT_ATTR_RDONLY)`),
//! which costs no copy and shares the page cache with the file. Every `/proc/<pid>/exe` of
//! the process and of its forks then names a file on that mount, and opening it for writing
//! fails with EROFS; the mount belongs to no namespace, so nothing in a container can
//! remount it.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// An executable opened through a detached read-only mount.
#[derive(Debug)]
pub struct SealedExe {
    fd: OwnedFd,
    /// The file it was made from, and what identified it then (device, inode, size, mtime).
    source: PathBuf,
    id: (u64, u64, u64, i64, i64),
}

fn identity(md: &std::fs::Metadata) -> (u64, u64, u64, i64, i64) {
    (md.dev(), md.ino(), md.size(), md.mtime(), md.mtime_nsec())
}

impl SealedExe {
    /// Opens `path` through a read-only clone of its mount.
    pub fn open(path: &Path) -> std::io::Result<SealedExe> {
        let fd = crate::inroot::clone_tree(libc::AT_FDCWD, path, false, false)
            .map_err(|e| std::io::Error::from_raw_os_error(e.errno() as i32))?;
        let attr = crate::inroot::MountAttr {
            attr_set: crate::inroot::MOUNT_ATTR_RDONLY
                | crate::inroot::MOUNT_ATTR_NOSUID
                | crate::inroot::MOUNT_ATTR_NODEV,
            ..Default::default()
        };
        crate::inroot::set_attr(&fd, &attr, false, path)
            .map_err(|e| std::io::Error::from_raw_os_error(e.errno() as i32))?;
        let md = std::fs::metadata(crate::inroot::fd_path(&fd))?;
        Ok(SealedExe {
            fd,
            source: path.to_path_buf(),
            id: identity(&md),
        })
    }

    /// The path to execute it by: `/proc/self/fd/<n>` (valid in this process and, until
    /// they exec, in its forks).
    pub fn path(&self) -> PathBuf {
        crate::inroot::fd_path(&self.fd)
    }

    /// The file it was made from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Whether the file at the source path is still the one this was made from (a rebuilt
    /// or upgraded binary is a new file: open it again).
    pub fn is_current(&self) -> bool {
        std::fs::metadata(&self.source).is_ok_and(|md| identity(&md) == self.id)
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}

/// Whether this process's executable can be written through `/proc/self/exe`: false when it
/// is on a read-only mount (a [`SealedExe`], or a read-only filesystem).
pub fn self_exe_is_writable() -> bool {
    match nix::sys::statvfs::statvfs("/proc/self/exe") {
        Ok(st) => !st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY),
        Err(_) => true,
    }
}

/// Executes this program again, with the same arguments and environment, through a
/// [`SealedExe`] of itself, unless it already runs from a read-only mount. Returns only
/// when that is not possible (the caller goes on unprotected, with a warning) or needed.
pub fn reexec_sealed(name: &str) -> std::io::Result<()> {
    if !self_exe_is_writable() {
        set_name(name);
        return Ok(());
    }
    let exe = std::fs::read_link("/proc/self/exe")?;
    let sealed = SealedExe::open(&exe)?;
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut b = k.as_bytes().to_vec();
            b.push(b'=');
            b.extend_from_slice(v.as_bytes());
            CString::new(b).unwrap_or_default()
        })
        .collect();
    let e = nix::unistd::execveat(
        std::os::fd::AsFd::as_fd(&sealed.fd),
        c"",
        &args,
        &env,
        nix::fcntl::AtFlags::AT_EMPTY_PATH,
    )
    .unwrap_err();
    Err(std::io::Error::from_raw_os_error(e as i32))
}

/// Sets the process name (`comm`), which an exec through a descriptor makes its number.
pub fn set_name(name: &str) {
    if let Ok(c) = CString::new(name) {
        // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
        unsafe { libc::prctl(libc::PR_SET_NAME, c.as_ptr(), 0, 0, 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_exe_refuses_writes_and_runs() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (open_tree)");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("true");
        std::fs::copy("/bin/true", &bin).unwrap();
        let s = SealedExe::open(&bin).unwrap();
        assert!(s.is_current());
        let e = std::fs::OpenOptions::new()
            .append(true)
            .open(s.path())
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
        let st = std::process::Command::new(s.path()).status().unwrap();
        assert!(st.success());
        // Rewritten on disk: no longer current.
        std::fs::remove_file(&bin).unwrap();
        std::fs::copy("/bin/true", &bin).unwrap();
        assert!(!s.is_current());
    }
}
