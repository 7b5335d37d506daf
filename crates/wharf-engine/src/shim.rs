//! Spawning a container's shim and talking to it (see `wharf_shim::proto`).

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use wharf_runtime::sealed::SealedExe;
use wharf_shim::args::ShimArgs;
use wharf_shim::proto::{self, ExitStatus, Ready, Request};

/// The shim binary opened through a read-only mount of itself (see
/// `wharf_runtime::sealed`): the containers' init and exec processes are forks of the shim,
/// and must not be able to write it through /proc/<pid>/exe. Made once, again when the file
/// on disk is replaced; `None` where the kernel cannot (then the shim runs by its path).
fn sealed_shim(path: &Path) -> Option<Arc<SealedExe>> {
    static SEALED: Mutex<Option<Arc<SealedExe>>> = Mutex::new(None);
    let mut g = SEALED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = g.as_ref() {
        if s.source() == path && s.is_current() {
            return Some(s.clone());
        }
    }
    match SealedExe::open(path) {
        Ok(s) => {
            let s = Arc::new(s);
            *g = Some(s.clone());
            Some(s)
        }
        Err(e) => {
            tracing::warn!(
                "cannot open {} through a read-only mount ({e}): containers could overwrite it",
                path.display()
            );
            None
        }
    }
}

/// Starts the shim (the binary at `shim`), which creates the container; returns the
/// container's init pid, or the runtime's error message. `args.socket` and `args.ready_fd`
/// are set here.
pub async fn spawn(shim: &Path, args: &ShimArgs) -> Result<i32, String> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
    // Held until the spawn has exec'd: the child execs the descriptor's /proc/self/fd path.
    let sealed = sealed_shim(shim);
    let mut cmd = match &sealed {
        Some(s) => {
            let mut c = tokio::process::Command::new(s.path());
            c.arg0(shim);
            c
        }
        None => tokio::process::Command::new(shim),
    };
    let args = ShimArgs {
        socket: Some(sock_path(&args.state_dir)),
        ready_fd: 3,
        ..args.clone()
    };
    cmd.args(args.to_args())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let wfd = w.as_raw_fd();
    // SAFETY: the closure runs in the forked child before exec and only calls dup2, which is
    // async-signal-safe; wfd stays open in the parent until the spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(wfd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the shim {}: {e}", shim.display()))?;
    drop(w);
    drop(sealed);
    // The first shim process exits at once (it forks away); reap it.
    let _ = child.wait().await;
    let mut line = String::new();
    let file = tokio::fs::File::from_std(std::fs::File::from(r));
    BufReader::new(file)
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    match Ready::parse(&line) {
        Ok(Ready::Created { pid }) => Ok(pid),
        Ok(Ready::Failed(msg)) => Err(msg),
        Err(e) => Err(e.0),
    }
}

/// The exit code Docker gives a container (or exec) whose process could not be started, from
/// the runtime's message, as dockerd does (the runtime, runc's CLI among them, reports only
/// text): 127 for a command that is not found, 126 for one that cannot be run; `None`:
/// neither (the caller's default, 128 for a start and 126 for an exec).
pub fn exit_code_of_runtime_error(msg: &str) -> Option<i32> {
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        Some(127)
    } else if msg.contains("permission denied") {
        Some(126)
    } else {
        None
    }
}

/// The control socket of the shim whose state dir is `<exec-root>/containers/<id>`:
/// `<exec-root>/s/<id[..16]>.sock`, short enough for `sun_path` (108 bytes) even when the
/// exec-root is deep, which `<state-dir>/shim.sock` would not be.
pub fn sock_path(state_dir: &Path) -> PathBuf {
    let id = state_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let exec_root = state_dir
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("/run/wharf"));
    exec_root
        .join("s")
        .join(format!("{}.sock", &id[..id.len().min(16)]))
}

/// A connection to a shim's control socket.
pub async fn connect(state_dir: &Path) -> std::io::Result<UnixStream> {
    UnixStream::connect(sock_path(state_dir)).await
}

/// Sends one request and reads its reply line; the stream is returned for streaming requests.
pub async fn request(
    state_dir: &Path,
    req: &Request,
) -> std::io::Result<(Result<String, String>, UnixStream)> {
    let mut s = connect(state_dir).await?;
    s.write_all(req.encode().as_bytes()).await?;
    // Byte by byte: a stream (attach/exec frames) may follow the reply line at once, and a
    // buffered reader would swallow its start.
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        if s.read(&mut b).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the shim closed the connection",
            ));
        }
        if b[0] == b'\n' {
            break;
        }
        line.push(b[0]);
    }
    Ok((proto::parse_reply(&String::from_utf8_lossy(&line)), s))
}

/// A simple request/reply exchange.
pub async fn call(state_dir: &Path, req: &Request) -> Result<String, String> {
    match request(state_dir, req).await {
        Ok((r, _)) => r,
        Err(e) => Err(format!("cannot reach the container's shim: {e}")),
    }
}

/// Waits for the container's exit: from the shim, or from its exit file if the shim is gone.
pub async fn wait_exit(state_dir: &Path) -> Option<ExitStatus> {
    if let Ok(mut s) = connect(state_dir).await {
        if s.write_all(Request::Wait.encode().as_bytes()).await.is_ok() {
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf).await;
            if let Ok(d) = proto::parse_reply(&buf) {
                if let Some(st) = ExitStatus::parse(&d) {
                    return Some(st);
                }
            }
        }
    }
    read_exit_file(state_dir)
}

/// The exit status the shim recorded, if any.
pub fn read_exit_file(state_dir: &Path) -> Option<ExitStatus> {
    std::fs::read_to_string(state_dir.join("exit"))
        .ok()
        .and_then(|s| ExitStatus::parse(&s))
}

/// The shim's state dir for container `id`.
pub fn state_dir(exec_root: &Path, id: &str) -> PathBuf {
    exec_root.join("containers").join(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_errors_map_to_docker_s_exit_codes() {
        let code = exit_code_of_runtime_error;
        assert_eq!(
            code("exec: \"nope\": executable file not found in $PATH"),
            Some(127)
        );
        assert_eq!(code("exec /bin/x: no such file or directory"), Some(127));
        assert_eq!(code("exec /etc/passwd: permission denied"), Some(126));
        assert_eq!(code("cgroup: invalid argument"), None);
    }
}
