//! Paths resolved by the kernel inside a root, and mounts made onto what was resolved.
//!
//! Resolving a path in user space and then using it by name leaves a window in which a
//! container process (or another container sharing a volume) can swap a directory for a
//! symlink and send the use elsewhere (CVE-2021-30465, CVE-2024-21626). Here every lookup is
//! `openat2` with `RESOLVE_IN_ROOT` (symlinks, `..` and absolute links stay under the root)
//! and `RESOLVE_NO_MAGICLINKS` (no `/proc/self/fd/N` jumps to a descriptor outside), and what
//! comes back is a descriptor: creating, mounting and changing directory then act on that
//! descriptor, never on the name again.

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Why something could not be resolved or mounted inside the root.
#[derive(Debug, thiserror::Error)]
pub enum InRootError {
    #[error("{op} {path} inside the container's root: {source}")]
    Sys {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Errno,
    },
}

impl InRootError {
    fn new(op: &'static str, path: &Path, source: Errno) -> InRootError {
        InRootError::Sys {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// The kernel's error number.
    pub fn errno(&self) -> Errno {
        match self {
            InRootError::Sys { source, .. } => *source,
        }
    }
}

pub type Result<T> = std::result::Result<T, InRootError>;

/// The components of `path` relative to the root (leading `/` and `.` dropped).
fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
        .collect()
}

/// Opens `path` inside `root`, which acts as `/` for the lookup. An empty path opens the
/// root itself.
pub fn open(root: BorrowedFd, path: &Path, flags: OFlag) -> Result<OwnedFd> {
    let rel = relative(path);
    let rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    loop {
        match nix::fcntl::openat2(root, &rel, how) {
            // openat2 asks for a retry when a rename raced the lookup.
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
            r => return r.map_err(|e| InRootError::new("opening", path, e)),
        }
    }
}

/// An `O_PATH` descriptor of `path` inside `root`.
pub fn open_path(root: BorrowedFd, path: &Path) -> Result<OwnedFd> {
    open(root, path, OFlag::O_PATH)
}

/// Makes the directory `path` and its missing parents inside `root` (mode 0755, as runc),
/// and returns it opened `O_PATH`. Each missing component is made with `mkdirat` in its
/// parent's descriptor, so a concurrent swap can only make the walk fail, never leave the root.
pub fn mkdir_all(root: BorrowedFd, path: &Path) -> Result<OwnedFd> {
    mkdir_all_mode(root, path, Mode::from_bits_truncate(0o755))
}

fn mkdir_all_mode(root: BorrowedFd, path: &Path, mode: Mode) -> Result<OwnedFd> {
    let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    let mut want = relative(path);
    let mut links = 0;
    'restart: loop {
        match open(root, &want, dir_flags) {
            Err(e) if e.errno() == Errno::ENOENT => {}
            r => return r,
        }
        let mut prefix = PathBuf::new();
        let mut cur = open(root, &prefix, dir_flags)?;
        let comps: Vec<_> = want
            .components()
            .map(|c| c.as_os_str().to_os_string())
            .collect();
        for (i, c) in comps.iter().enumerate() {
            prefix.push(c);
            match open(root, &prefix, dir_flags) {
                Ok(fd) => {
                    cur = fd;
                    continue;
                }
                Err(e) if e.errno() == Errno::ENOENT => {}
                Err(e) => return Err(e),
            }
            match nix::sys::stat::mkdirat(cur.as_fd(), c.as_os_str(), mode) {
                Ok(()) => {}
                Err(Errno::EEXIST) => {
                    // A symlink whose target is missing: make the target instead, as the
                    // kernel would resolve it for the container.
                    if let Ok(target) = nix::fcntl::readlinkat(cur.as_fd(), c.as_os_str()) {
                        links += 1;
                        if links > 40 {
                            return Err(InRootError::new("creating", path, Errno::ELOOP));
                        }
                        let mut next = if Path::new(&target).is_absolute() {
                            PathBuf::new()
                        } else {
                            prefix.parent().map(Path::to_path_buf).unwrap_or_default()
                        };
                        next.push(relative(Path::new(&target)));
                        for rest in &comps[i + 1..] {
                            next.push(rest);
                        }
                        want = next;
                        continue 'restart;
                    }
                }
                Err(e) => return Err(InRootError::new("creating", &prefix, e)),
            }
            // Opened again by its full path: a component that is (now) a symlink is followed
            // inside the root, as the kernel would for the container.
            cur = open(root, &prefix, dir_flags)?;
        }
        return Ok(cur);
    }
}

/// Makes the regular file `path` inside `root` when it does not exist (with its parents),
/// and returns it opened `O_PATH`: a mount point for a file bind.
pub fn mkfile(root: BorrowedFd, path: &Path) -> Result<OwnedFd> {
    match open_path(root, path) {
        Err(e) if e.errno() == Errno::ENOENT => {}
        r => return r,
    }
    let rel = relative(path);
    let (parent, name) = match (rel.parent(), rel.file_name()) {
        (Some(p), Some(n)) => (p.to_path_buf(), n.to_os_string()),
        _ => return Err(InRootError::new("creating", path, Errno::EINVAL)),
    };
    let dir = mkdir_all(root, &parent)?;
    match nix::sys::stat::mknodat(
        dir.as_fd(),
        name.as_os_str(),
        nix::sys::stat::SFlag::S_IFREG,
        Mode::from_bits_truncate(0o644),
        0,
    ) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(InRootError::new("creating", path, e)),
    }
    open_path(root, path)
}

/// `/proc/self/fd/<fd>`: the path the classic mount(2) call is given to act on a descriptor.
pub fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

// The new mount API (Linux 5.2+, mount_setattr 5.12+): mount trees held as descriptors.
const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR_ATIME: u64 = 0x70;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_IDMAP: u64 = 0x10_0000;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x20_0000;

/// The kernel's `struct mount_attr` (include/uapi/linux/mount.h).
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_else(|_| CString::from(c"?"))
}

fn check(r: libc::c_long, op: &'static str, path: &Path) -> Result<()> {
    if r < 0 {
        Err(InRootError::new(op, path, Errno::last()))
    } else {
        Ok(())
    }
}

/// A detached copy of the mount tree at `src` (with its submounts when `recursive`), as
/// `mount --bind` would attach: `open_tree(OPEN_TREE_CLONE)`.
pub fn clone_tree(dirfd: RawFd, src: &Path, recursive: bool, empty_path: bool) -> Result<OwnedFd> {
    let mut flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    if empty_path {
        flags |= libc::AT_EMPTY_PATH as libc::c_uint;
    }
    let c = cstr(src);
    // SAFETY: open_tree reads a NUL-terminated path; the returned fd is new and ours.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, dirfd, c.as_ptr(), flags) };
    check(fd, "cloning the mount", src)?;
    // SAFETY: a successful open_tree returns a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Applies `attr` to the mount held by `tree` (and its submounts when `recursive`).
pub fn set_attr(tree: &OwnedFd, attr: &MountAttr, recursive: bool, what: &Path) -> Result<()> {
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: mount_setattr reads `size` bytes of a live `struct mount_attr`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(r, "setting mount attributes of", what)
}

/// Attaches the detached mount `tree` onto the file or directory `target` (a descriptor
/// resolved inside the root): `move_mount` with both ends given as descriptors.
pub fn attach(tree: &OwnedFd, target: &OwnedFd, what: &Path) -> Result<()> {
    // SAFETY: move_mount with empty paths reads only the two descriptors.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    check(r, "mounting on", what)
}

/// The mount id of what `fd` refers to (statx `STATX_MNT_ID`).
pub fn mount_id(fd: BorrowedFd) -> Option<u64> {
    // SAFETY: statx fills a zeroed, properly sized struct.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: statx with AT_EMPTY_PATH reads only the descriptor and writes `st`.
    let r = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_MNT_ID,
            &mut st,
        )
    };
    (r == 0 && st.stx_mask & libc::STATX_MNT_ID != 0).then_some(st.stx_mnt_id)
}

/// Changes the working directory to `cwd` resolved inside `root`, and checks that the
/// kernel sees it inside the process's root (`getcwd` would start with `(unreachable)`
/// for a directory outside it).
pub fn chdir(root: BorrowedFd, cwd: &Path) -> Result<()> {
    let fd = open(root, cwd, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
    nix::unistd::fchdir(&fd).map_err(|e| InRootError::new("changing directory to", cwd, e))?;
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        // The kernel prefixes a directory that is not under the root with "(unreachable)".
        Ok(_) => Err(InRootError::new("changing directory to", cwd, Errno::EXDEV)),
        Err(e) => Err(InRootError::new("changing directory to", cwd, e)),
    }
}

/// Closes every descriptor from 3 on except those in `keep`, so that nothing the runtime
/// inherited (a cgroup directory, the caller's files) can be reached through
/// `/proc/self/fd` by what runs next.
pub fn close_fds_except(keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&f| f >= 3).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut from: RawFd = 3;
    for k in keep.iter().copied().chain(std::iter::once(RawFd::MAX)) {
        if k > from {
            let to = if k == RawFd::MAX {
                libc::c_uint::MAX
            } else {
                (k - 1) as libc::c_uint
            };
            // SAFETY: close_range closes descriptors of this process only; the kept ones are
            // outside the range, and none of the closed ones is used again (the caller goes on
            // to execve or exits).
            unsafe { libc::syscall(libc::SYS_close_range, from as libc::c_uint, to, 0) };
        }
        if k == RawFd::MAX {
            break;
        }
        from = k + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root(d: &Path) -> OwnedFd {
        nix::fcntl::open(d, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap()
    }

    fn real(fd: &OwnedFd) -> PathBuf {
        std::fs::read_link(fd_path(fd)).unwrap()
    }

    #[test]
    fn symlinks_and_dotdot_stay_inside() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("a/b")).unwrap();
        symlink("/", r.join("a/up")).unwrap();
        symlink("../../../../..", r.join("a/b/far")).unwrap();
        let fd = root(r);
        assert_eq!(
            real(&open_path(fd.as_fd(), Path::new("/a/up/a")).unwrap()),
            r.join("a")
        );
        assert_eq!(
            real(&open_path(fd.as_fd(), Path::new("a/b/far/a/b")).unwrap()),
            r.join("a/b")
        );
        assert_eq!(
            real(&open_path(fd.as_fd(), Path::new("/../../a")).unwrap()),
            r.join("a")
        );
        // A magic link is refused.
        symlink("/proc/self/cwd", r.join("magic")).unwrap();
        // (resolved in the root, /proc/self/cwd does not exist there: ENOENT, never the host)
        assert!(open_path(fd.as_fd(), Path::new("/magic")).is_err());
    }

    #[test]
    fn mkdir_all_creates_through_symlinks_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        let outside = tempfile::tempdir().unwrap();
        symlink(outside.path(), r.join("escape")).unwrap();
        symlink("/", r.join("top")).unwrap();
        let fd = root(r);
        let made = mkdir_all(fd.as_fd(), Path::new("/escape/x/y")).unwrap();
        assert_eq!(
            real(&made),
            r.join(outside.path().strip_prefix("/").unwrap())
                .join("x/y")
        );
        assert!(
            !outside.path().join("x").exists(),
            "created outside the root"
        );
        let made = mkdir_all(fd.as_fd(), Path::new("/top/top/z")).unwrap();
        assert_eq!(real(&made), r.join("z"));
        let f = mkfile(fd.as_fd(), Path::new("/top/etc/file")).unwrap();
        assert_eq!(real(&f), r.join("etc/file"));
        assert!(r.join("etc/file").is_file());
    }

    #[test]
    fn close_fds_except_keeps_the_listed_ones() {
        // In a child: closing descriptors of the test harness would break it.
        // SAFETY: the child only makes syscalls and exits.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let a = nix::fcntl::open("/", OFlag::O_PATH, Mode::empty()).unwrap();
                let b = nix::fcntl::open("/", OFlag::O_PATH, Mode::empty()).unwrap();
                let (ra, rb) = (a.as_raw_fd(), b.as_raw_fd());
                std::mem::forget(a);
                std::mem::forget(b);
                close_fds_except(&[rb]);
                // SAFETY: F_GETFD only inspects the table.
                let open = |fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
                let ok = !open(ra) && open(rb) && open(0);
                // SAFETY: _exit in the forked child.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let st = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(st, nix::sys::wait::WaitStatus::Exited(child, 0));
            }
        }
    }
}
