//! `docker cp`: paths resolved inside a container's rootfs (symlinks never lead out of it),
//! Docker's path-stat header, and tar in and out.
//!
//! A running container can change its files while a copy runs: a directory checked here
//! can be a symlink to `/` by the time it is used (CVE-2018-15664). So a copy never works on
//! the container's files by host path: it runs in a forked child whose root *is* the
//! container's (`chroot` into the init's `/proc/<pid>/root`, which is its mount namespace's
//! view, volumes and binds included), where every lookup, symlinks and `..` included, is
//! the kernel's and stays inside. A stopped container's root is its layers mounted for the
//! call, with its volumes and binds mounted on it in a mount namespace of the child's own,
//! as Docker shows them.

use base64::Engine as _;
use serde_json::json;
use std::io::{BufRead, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use wharf_api::ApiError;
use wharf_runtime::inroot;

/// The root a copy runs in.
pub enum Jail {
    /// A running container: its init's `/proc/<pid>/root`, opened.
    Live(OwnedFd),
    /// A stopped container: its layers mounted at `root`, and the volumes and binds to mount
    /// on it: (host source, destination in the container, read-write).
    Stopped {
        root: PathBuf,
        mounts: Vec<(PathBuf, String, bool)>,
    },
}

/// The first line a jailed child writes: its result, before any data.
#[derive(serde::Serialize, serde::Deserialize)]
struct Status {
    ok: Option<String>,
    status: u16,
    message: String,
}

fn send_status(w: &mut std::fs::File, r: &Result<String, ApiError>) {
    let st = match r {
        Ok(v) => Status {
            ok: Some(v.clone()),
            status: 200,
            message: String::new(),
        },
        Err(e) => Status {
            ok: None,
            status: e.status,
            message: e.message.clone(),
        },
    };
    let mut line = serde_json::to_vec(&st).expect("serializable");
    line.push(b'\n');
    let _ = w.write_all(&line);
}

fn sys(what: &str) -> impl Fn(nix::Error) -> ApiError + '_ {
    move |e| ApiError::internal(format!("{what}: {e}"))
}

/// Becomes the jail: mounts (stopped containers), then `chroot` into the root, and closes
/// every descriptor but `keep`, so that nothing outside stays reachable. `before_chroot` runs
/// just before the `chroot`, given the root as a path (`/proc/self/fd/N`, resolved by the
/// host's /proc: the jail has none of its own to rely on).
fn enter(
    jail: &Jail,
    keep: &[i32],
    before_chroot: &mut dyn FnMut(&Path) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let root = match jail {
        Jail::Live(fd) => fd
            .try_clone()
            .map_err(|e| ApiError::internal(e.to_string()))?,
        Jail::Stopped { root, mounts } => {
            use nix::mount::{mount, MsFlags};
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
                .map_err(sys("unshare the mount namespace"))?;
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .map_err(sys("making / private"))?;
            // Opened in this namespace, so that the binds below are under it.
            let fd = open_dir(root)?;
            for (src, dest, rw) in mounts {
                let is_dir = std::fs::metadata(src).map(|m| m.is_dir()).unwrap_or(true);
                let d = Path::new(dest);
                let target = if is_dir {
                    inroot::mkdir_all(fd.as_fd(), d)
                } else {
                    inroot::mkfile(fd.as_fd(), d)
                }
                .map_err(|e| ApiError::internal(e.to_string()))?;
                let tree = inroot::clone_tree(libc::AT_FDCWD, src, true, false)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                if !rw {
                    let attr = inroot::MountAttr {
                        attr_set: inroot::MOUNT_ATTR_RDONLY,
                        ..Default::default()
                    };
                    inroot::set_attr(&tree, &attr, true, d)
                        .map_err(|e| ApiError::internal(e.to_string()))?;
                }
                inroot::attach(&tree, &target, d).map_err(|e| ApiError::internal(e.to_string()))?;
            }
            fd
        }
    };
    before_chroot(Path::new(&format!("/proc/self/fd/{}", root.as_raw_fd())))?;
    nix::unistd::fchdir(&root).map_err(sys("entering the container's root"))?;
    nix::unistd::chroot(".").map_err(sys("chroot into the container's root"))?;
    nix::unistd::chdir("/").map_err(sys("chdir /"))?;
    drop(root);
    inroot::close_fds_except(keep);
    Ok(())
}

fn open_dir(p: &Path) -> Result<OwnedFd, ApiError> {
    nix::fcntl::open(
        p,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| ApiError::internal(format!("opening {}: {e}", p.display())))
}

/// A child at work in a jail: its first line (the result), and what it writes after.
pub struct Jailed {
    pub result: Result<String, ApiError>,
    pub data: std::io::BufReader<std::fs::File>,
    child: nix::unistd::Pid,
}

impl Jailed {
    /// Reaps the child (once its data has been read).
    pub fn wait(self) {
        drop(self.data);
        let _ = nix::sys::wait::waitpid(self.child, None);
    }

    /// Reaps the child and tells whether it finished its work: a child that failed after its
    /// result line (midway through its data) exits non-zero.
    pub fn finish(self) -> Result<(), ApiError> {
        drop(self.data);
        match nix::sys::wait::waitpid(self.child, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(st) => Err(ApiError::internal(format!(
                "the copy's helper process failed midway ({st:?})"
            ))),
            Err(e) => Err(ApiError::internal(format!(
                "waiting for the copy's helper: {e}"
            ))),
        }
    }
}

/// A child forked into a jail whose result line has not been read yet.
pub struct Spawned {
    data: std::io::BufReader<std::fs::File>,
    child: nix::unistd::Pid,
}

impl Spawned {
    /// Reads the child's result line (blocking until it sends it or exits).
    pub fn read_result(mut self) -> Jailed {
        let mut line = String::new();
        let _ = self.data.read_line(&mut line);
        let result = match serde_json::from_str::<Status>(&line) {
            Ok(Status { ok: Some(v), .. }) => Ok(v),
            Ok(st) => Err(ApiError::new(st.status, st.message)),
            Err(_) => Err(ApiError::internal("the copy's helper process failed")),
        };
        Jailed {
            result,
            data: self.data,
            child: self.child,
        }
    }
}

/// Runs `f` in a forked child inside `jail`. `f` gets the pipe: it sends the result line
/// ([`send_status`]) and may write data after it; or it fails before sending anything, and
/// its error becomes the result. The parent reads the result first.
///
/// Runs on a blocking thread of the daemon: the child of a multi-threaded process may only
/// use what fork leaves consistent. It allocates (glibc's malloc is reset in the child) and
/// makes syscalls; it takes no lock that another thread could have held (no logging, no
/// async runtime, no environment), and leaves by `_exit`.
pub fn run_jailed<F>(jail: &Jail, f: F) -> Result<Jailed, ApiError>
where
    F: FnOnce(&mut std::fs::File) -> Result<(), ApiError>,
{
    Ok(spawn_jailed(jail, &[], &mut |_| Ok(()), f)?.read_result())
}

/// [`run_jailed`] without reading the result yet (the parent has more to do first, such as
/// feeding the child), the child keeping `keep` open too and running `before_chroot` (see
/// [`enter`]) in the host's view. The same rules hold for both closures.
pub fn spawn_jailed<F>(
    jail: &Jail,
    keep: &[i32],
    before_chroot: &mut dyn FnMut(&Path) -> Result<(), ApiError>,
    f: F,
) -> Result<Spawned, ApiError>
where
    F: FnOnce(&mut std::fs::File) -> Result<(), ApiError>,
{
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
    // SAFETY: the child runs only the code above and below (see the doc comment) and ends
    // with _exit, never returning into the daemon's frames.
    match unsafe { nix::unistd::fork() }.map_err(sys("fork"))? {
        nix::unistd::ForkResult::Child => {
            drop(r);
            let mut w = std::fs::File::from(w);
            let mut kept = keep.to_vec();
            kept.push(w.as_raw_fd());
            let r = enter(jail, &kept, before_chroot);
            let code = match r {
                Err(e) => {
                    send_status(&mut w, &Err(e));
                    0
                }
                Ok(()) => match f(&mut w) {
                    Ok(()) => 0,
                    Err(e) => {
                        send_status(&mut w, &Err(e));
                        1
                    }
                },
            };
            drop(w);
            // SAFETY: ends the forked child without running the daemon's destructors.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            Ok(Spawned {
                data: std::io::BufReader::new(std::fs::File::from(r)),
                child,
            })
        }
    }
}

/// The stat header of `path` in the jail, then (unless `head`) its tar: what
/// `GET/HEAD /containers/{id}/archive` answers.
/// With `ids` (a user-namespaced container), entries are owned by the ids it sees.
pub fn pack_in(
    jail: &Jail,
    path: &str,
    container: &str,
    head: bool,
    ids: Option<&wharf_image::IdMap>,
) -> Result<Jailed, ApiError> {
    run_jailed(jail, |w| {
        let follow = !path.ends_with("/.");
        let resolved = resolve_in_root(Path::new("/"), path, follow)?;
        let stat = stat_header(&resolved, path, container);
        let ok = stat.is_ok();
        send_status(w, &stat);
        if ok && !head {
            // A failure midway makes the child exit non-zero: the copy is aborted.
            pack(&resolved, w, ids).map_err(|e| ApiError::internal(e.to_string()))?;
        }
        Ok(())
    })
}

/// `docker export`: the whole root of the jail as a tar into `out`, walked from inside it (a
/// container swapping a directory for a symlink cannot point the walk at the host). Fails,
/// also midway, when the walk does.
pub fn export_in(
    jail: &Jail,
    out: &mut dyn std::io::Write,
    ids: Option<&wharf_image::IdMap>,
) -> Result<(), ApiError> {
    let mut j = run_jailed(jail, |w| {
        send_status(w, &Ok(String::new()));
        wharf_image::layers::tar_tree_mapped(Path::new("/"), w, ids)
            .map_err(|e| ApiError::internal(e.to_string()))
    })?;
    if let Err(e) = j.result.clone() {
        j.wait();
        return Err(e);
    }
    let copied = std::io::copy(&mut j.data, out);
    let finished = j.finish();
    copied.map_err(|e| ApiError::internal(format!("export: {e}")))?;
    finished
}

/// What `PUT /containers/{id}/archive` asks besides the path.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// `noOverwriteDirNonDir` (the docker CLI always sends it): a directory is not replaced
    /// by a non-directory, nor the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// `copyUIDGID` (`docker cp -a`) with the container's `Config.User` when it has one: what
    /// is extracted is owned by that user, looked up in the container's /etc/passwd and
    /// /etc/group ([`crate::spec::resolve_copy_owner`]). `None`: the archive's owners stay,
    /// as moby keeps them (without `-a`, or for a container without a user).
    pub owner_user: Option<String>,
    /// `HostConfig.ReadonlyRootfs`: a copy anywhere but into a read-write mount is refused.
    pub read_only_rootfs: bool,
    /// The container's mounts: (destination, read-write). A copy into a read-only one is
    /// refused (moby's `checkWritablePath`, the innermost mount deciding).
    pub mounts: Vec<(String, bool)>,
    /// A user-namespaced container's mapping: entries are owned by the host ids of their
    /// archive owners, as the container sees them.
    pub ids: Option<wharf_image::IdMap>,
}

/// moby's `checkWritablePath` for the extraction directory `dir` (resolved in the jail).
fn check_writable(dir: &Path, opts: &ExtractOptions) -> Result<(), ApiError> {
    let inner = opts
        .mounts
        .iter()
        .filter(|(dest, _)| dir.starts_with(dest))
        .max_by_key(|(dest, _)| Path::new(dest).components().count());
    match inner {
        Some((_, true)) => Ok(()),
        Some((_, false)) => Err(ApiError::bad_request("mounted volume is marked read-only")),
        None if opts.read_only_rootfs => Err(ApiError::bad_request(
            "container rootfs is marked read-only",
        )),
        None => Ok(()),
    }
}

/// The largest piece of an upload sent to the extracting child at once.
const FRAME: usize = 64 * 1024;

/// The child's end of an upload: frames of `u32` (little endian) length and data, a length
/// of 0 ending it. The end of the pipe before that frame (the upload broke off, the daemon
/// gave up) is an error, never the end of the archive.
struct Framed {
    pipe: std::fs::File,
    left: usize,
    done: bool,
}

fn cut_off() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the upload ended before the end of its body",
    )
}

impl std::io::Read for Framed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() || self.done {
            return Ok(0);
        }
        if self.left == 0 {
            let mut len = [0u8; 4];
            self.pipe.read_exact(&mut len).map_err(|_| cut_off())?;
            self.left = u32::from_le_bytes(len) as usize;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf.len().min(self.left);
        let n = self.pipe.read(&mut buf[..want])?;
        if n == 0 {
            return Err(cut_off());
        }
        self.left -= n;
        Ok(n)
    }
}

/// Copies `body` into `pipe` as [`Framed`] frames, the end frame last. An error reading the
/// body stops it without the end frame. A write that fails means the child stopped reading
/// (it finished or failed, and says so itself): not an error here.
fn feed_frames(body: &mut dyn std::io::Read, pipe: &mut std::fs::File) -> std::io::Result<()> {
    let mut buf = vec![0u8; FRAME];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let len = (n as u32).to_le_bytes();
        if pipe
            .write_all(&len)
            .and_then(|_| pipe.write_all(&buf[..n]))
            .is_err()
        {
            return Ok(());
        }
    }
    let _ = pipe.write_all(&0u32.to_le_bytes());
    Ok(())
}

/// Extracts the tar read from `body` into the directory `path` of the jail: what
/// `PUT /containers/{id}/archive` does. The body streams through a pipe to the jailed child,
/// which extracts as it reads (memory stays bounded whatever the size); a body that breaks
/// off fails the copy, leaving what was extracted before (as Docker does).
pub fn extract_in(
    jail: &Jail,
    path: &str,
    container: &str,
    body: &mut dyn std::io::Read,
    opts: &ExtractOptions,
) -> Result<(), ApiError> {
    let (data_r, data_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
    let owner = std::cell::Cell::new(None);
    // Looked up before the chroot, where /proc is the host's (see `read_image_file`).
    let mut lookup = |root: &Path| {
        if let Some(user) = &opts.owner_user {
            let ids = crate::spec::resolve_copy_owner(root, user)
                .map_err(|e| ApiError::bad_request(e.0))?;
            owner.set(Some(ids));
        }
        Ok(())
    };
    let keep = [data_r.as_raw_fd()];
    let no_overwrite = opts.no_overwrite_dir_non_dir;
    let spawned = spawn_jailed(jail, &keep, &mut lookup, |w| {
        let mut input = std::io::BufReader::with_capacity(
            4 * FRAME,
            Framed {
                pipe: std::fs::File::from(data_r),
                left: 0,
                done: false,
            },
        );
        let dir = resolve_in_root(Path::new("/"), path, true)?;
        match std::fs::metadata(&dir) {
            Err(_) => {
                return Err(ApiError::not_found(format!(
                    "Could not find the file {path} in container {container}"
                )))
            }
            Ok(m) if !m.is_dir() => {
                return Err(ApiError::bad_request("extraction point is not a directory"))
            }
            Ok(_) => {}
        }
        check_writable(&dir, opts)?;
        // A gzip or zstd tar is unpacked too, as moby's Untar does (in this process: nothing
        // of the container's is run for it).
        let mut input = wharf_image::apply::decompress(&mut input)
            .map_err(|e| ApiError::bad_request(format!("reading the archive: {e}")))?;
        let copy = wharf_image::apply::CopyOptions {
            no_overwrite_dir_non_dir: no_overwrite,
            owner: owner.get(),
            ids: opts.ids.clone(),
        };
        let r = wharf_image::apply::apply_tar_with(
            &mut input,
            &dir,
            wharf_image::apply::Whiteouts::Literal,
            &copy,
        )
        .map(|_| String::new())
        .map_err(crate::engine::image_error);
        send_status(w, &r);
        Ok(())
    })?;
    // (The parent's copy of the read end went with the closure.)
    let mut pipe = std::fs::File::from(data_w);
    let fed = feed_frames(body, &mut pipe);
    drop(pipe);
    let j = spawned.read_result();
    let r = j.result.clone();
    j.wait();
    if let Err(e) = fed {
        return Err(ApiError::bad_request(format!("reading the archive: {e}")));
    }
    r.map(drop)
}

/// Resolves `path` inside `root` as the container would see it: symlinks are followed with
/// `root` as `/`, and `..` never climbs above it. The last component is followed only when
/// `follow_last`.
pub fn resolve_in_root(root: &Path, path: &str, follow_last: bool) -> Result<PathBuf, ApiError> {
    let mut parts: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .rev()
        .collect();
    let mut hops = 0;
    while let Some(p) = pending.pop() {
        if p == ".." {
            parts.pop();
            continue;
        }
        let candidate = parts
            .iter()
            .fold(root.to_path_buf(), |a, b| a.join(b))
            .join(&p);
        let is_last = pending.is_empty();
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() && (!is_last || follow_last) => {
                hops += 1;
                if hops > 40 {
                    return Err(ApiError::bad_request(format!(
                        "too many levels of symbolic links in {path}"
                    )));
                }
                let target = std::fs::read_link(&candidate)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                if target.is_absolute() {
                    parts.clear();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(x) => pending.push(x.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => parts.push(p),
        }
    }
    Ok(parts.iter().fold(root.to_path_buf(), |a, b| a.join(b)))
}

/// Docker's `X-Docker-Container-Path-Stat` header value for `resolved`, or 404.
pub fn stat_header(resolved: &Path, requested: &str, container: &str) -> Result<String, ApiError> {
    let m = std::fs::symlink_metadata(resolved).map_err(|_| {
        ApiError::not_found(format!(
            "Could not find the file {requested} in container {container}"
        ))
    })?;
    // Go's os.FileMode: permission bits plus type bits.
    let mut mode = m.permissions().mode() & 0o7777;
    if m.is_dir() {
        mode |= 1 << 31;
    }
    if m.file_type().is_symlink() {
        mode |= 1 << 27;
    }
    let link = if m.file_type().is_symlink() {
        std::fs::read_link(resolved)
            .map(|l| l.display().to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let name = resolved
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    let mtime = chrono::DateTime::from_timestamp(m.mtime(), m.mtime_nsec() as u32)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        .unwrap_or_default();
    let v =
        json!({"name": name, "size": m.len(), "mode": mode, "mtime": mtime, "linkTarget": link});
    Ok(base64::engine::general_purpose::STANDARD.encode(v.to_string()))
}

/// A tar of `resolved` whose entries are named from its base name, as `docker cp` expects.
pub fn pack(
    resolved: &Path,
    out: &mut dyn std::io::Write,
    ids: Option<&wharf_image::IdMap>,
) -> std::io::Result<()> {
    let name = resolved
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    // Plain entries, as Go's archive/tar writes them (the docker CLI cannot read GNU sparse
    // ones: "archive/tar: invalid tar header").
    let mut b = tar::Builder::new(out);
    if std::fs::symlink_metadata(resolved)?.is_dir() {
        wharf_image::layers::append_tree(&mut b, &name, resolved, ids)?;
    } else {
        wharf_image::layers::append_unmapped(&mut b, resolved, &name, ids)?;
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Feeds `body` framed through a pipe (on a thread) and reads it back as the child does.
    fn through_frames(mut body: impl Read + Send + 'static) -> (std::io::Result<Vec<u8>>, bool) {
        let (r, w) = std::io::pipe().unwrap();
        let feeder = std::thread::spawn(move || {
            let mut w = std::fs::File::from(std::os::fd::OwnedFd::from(w));
            feed_frames(&mut body, &mut w).is_ok()
        });
        let mut got = Vec::new();
        let read = Framed {
            pipe: std::fs::File::from(std::os::fd::OwnedFd::from(r)),
            left: 0,
            done: false,
        }
        .read_to_end(&mut got)
        .map(|_| got);
        (read, feeder.join().unwrap())
    }

    #[test]
    fn a_framed_upload_reads_whole_and_ends_only_at_its_end_frame() {
        let data: Vec<u8> = (0..3 * FRAME + 17).map(|i| (i % 251) as u8).collect();
        let (got, fed) = through_frames(std::io::Cursor::new(data.clone()));
        assert!(fed);
        assert_eq!(got.unwrap(), data);
        let (got, _) = through_frames(std::io::empty());
        assert_eq!(got.unwrap(), b"");
    }

    /// A body that fails after some bytes: no end frame, so the reader gets an error, not a
    /// short archive.
    #[test]
    fn a_broken_upload_is_an_error_for_the_reader() {
        struct Breaks(usize);
        impl Read for Breaks {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Err(std::io::Error::other("connection reset"));
                }
                let n = buf.len().min(self.0);
                buf[..n].fill(b'x');
                self.0 -= n;
                Ok(n)
            }
        }
        let (got, fed) = through_frames(Breaks(FRAME + 5));
        assert!(!fed);
        assert_eq!(got.unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
        // A pipe closed midway through a frame, too.
        let (r, w) = std::io::pipe().unwrap();
        let mut w = std::fs::File::from(std::os::fd::OwnedFd::from(w));
        w.write_all(&10u32.to_le_bytes()).unwrap();
        w.write_all(b"abc").unwrap();
        drop(w);
        let mut f = Framed {
            pipe: std::fs::File::from(std::os::fd::OwnedFd::from(r)),
            left: 0,
            done: false,
        };
        let mut got = Vec::new();
        assert!(f.read_to_end(&mut got).is_err());
        assert_eq!(got, b"abc");
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("usr/bin", r.join("bin")).unwrap();
        std::os::unix::fs::symlink("/../../../etc", r.join("escape")).unwrap();
        std::os::unix::fs::symlink("../../..", r.join("usr/up")).unwrap();
        assert_eq!(
            resolve_in_root(r, "/bin/sh", true).unwrap(),
            r.join("usr/bin/sh")
        );
        assert_eq!(
            resolve_in_root(r, "/escape/passwd", true).unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(resolve_in_root(r, "/usr/up/x", true).unwrap(), r.join("x"));
        assert_eq!(resolve_in_root(r, "/../../x", true).unwrap(), r.join("x"));
        assert_eq!(resolve_in_root(r, "/bin", false).unwrap(), r.join("bin"));
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        assert!(resolve_in_root(r, "/loop/x", true).is_err());
    }
}
