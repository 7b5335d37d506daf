//! An OCI runtime driven through its command line with runc's flags (runc, crun,
//! `wharf-runtime`). The container's init, and detached exec processes, are reparented to the
//! shim (a child subreaper) when the runtime's process exits.

use super::{Backend, BackendError, Created, ProcStdio};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use wharf_runtime::cgroups::Stats;

/// An OCI CLI runtime for one container.
pub struct CliBackend {
    binary: PathBuf,
    root: PathBuf,
    id: String,
    state_dir: PathBuf,
    /// Where console sockets go: a short directory, since a path under a deep state dir would
    /// not fit `sun_path`.
    console_dir: PathBuf,
}

impl CliBackend {
    pub fn new(
        binary: PathBuf,
        root: PathBuf,
        id: String,
        state_dir: PathBuf,
        console_dir: PathBuf,
    ) -> CliBackend {
        CliBackend {
            binary,
            root,
            id,
            state_dir,
            console_dir,
        }
    }

    fn log_path(&self) -> PathBuf {
        self.state_dir.join("runtime.log")
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(self.log_path())
            .arg("--log-format")
            .arg("json");
        c
    }

    fn log_len(&self) -> u64 {
        fs::metadata(self.log_path()).map(|m| m.len()).unwrap_or(0)
    }

    /// The error of a failed `op`: the last error the runtime logged since `log_from`, else
    /// its stderr.
    fn error_of(&self, op: &'static str, log_from: u64, stderr: &[u8]) -> BackendError {
        let mut log = String::new();
        if let Ok(mut f) = File::open(self.log_path()) {
            if f.seek(SeekFrom::Start(log_from)).is_ok() {
                let _ = f.read_to_string(&mut log);
            }
        }
        let message = last_logged_error(&log).unwrap_or_else(|| {
            let s = String::from_utf8_lossy(stderr).trim().to_string();
            if s.is_empty() {
                format!("{} {op} {} failed", self.binary.display(), self.id)
            } else {
                s
            }
        });
        BackendError::Runtime {
            op,
            id: self.id.clone(),
            message,
        }
    }

    fn spawn_error(&self, source: std::io::Error) -> BackendError {
        BackendError::Spawn {
            binary: self.binary.clone(),
            source,
        }
    }

    fn io_error(&self, op: &'static str, path: &Path, source: std::io::Error) -> BackendError {
        BackendError::Io {
            op,
            id: self.id.clone(),
            path: path.to_path_buf(),
            source,
        }
    }

    /// Runs `<runtime> <op> <args>` to completion; its stdout on success.
    fn run(&self, op: &'static str, args: &[&std::ffi::OsStr]) -> Result<Vec<u8>, BackendError> {
        let log_from = self.log_len();
        let out = self
            .command()
            .arg(op)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| self.spawn_error(e))?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(self.error_of(op, log_from, &out.stderr))
        }
    }

    /// Runs `<runtime> <op> <args> --pid-file P [--console-socket S] <id>`. Without a tty the
    /// new process inherits `stdio` through the runtime; with one it gets a pty whose master
    /// the runtime sends over the console socket.
    fn spawn_process(
        &self,
        op: &'static str,
        args: &[&std::ffi::OsStr],
        pid_file: &Path,
        stdio: ProcStdio,
        tty: bool,
        tag: &str,
    ) -> Result<Created, BackendError> {
        let log_from = self.log_len();
        let _ = fs::remove_file(pid_file);
        let mut cmd = self.command();
        cmd.arg(op).args(args).arg("--pid-file").arg(pid_file);
        let console_path = self.console_dir.join(format!(
            "{}-{}.console",
            &self.id[..self.id.len().min(12)],
            &tag[..tag.len().min(12)]
        ));
        // With a tty the runtime's stderr is not the process's: keep it for the error message,
        // in a file (a pipe could be inherited by the container and never reach EOF).
        let stderr_path = self.state_dir.join(format!("{tag}.stderr"));
        let listener = if tty {
            let _ = fs::remove_file(&console_path);
            let l = UnixListener::bind(&console_path)
                .map_err(|e| self.io_error(op, &console_path, e))?;
            l.set_nonblocking(true)
                .map_err(|e| self.io_error(op, &console_path, e))?;
            cmd.arg("--console-socket").arg(&console_path);
            let err = File::create(&stderr_path).map_err(|e| self.io_error(op, &stderr_path, e))?;
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(err));
            drop(stdio);
            Some(l)
        } else {
            cmd.stdin(Stdio::from(stdio.stdin))
                .stdout(Stdio::from(stdio.stdout))
                .stderr(Stdio::from(stdio.stderr));
            None
        };
        cmd.arg(&self.id);
        let child = cmd.spawn();
        // The Command holds our copies of the process's stdio: close them now, or the shim
        // would never see EOF on the container's output.
        drop(cmd);
        let mut child = child.map_err(|e| self.spawn_error(e))?;
        let console = match &listener {
            Some(l) => {
                let r = receive_console(l, &mut child);
                let _ = fs::remove_file(&console_path);
                match r {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(self.io_error(op, &console_path, e));
                    }
                }
            }
            None => None,
        };
        let status = child.wait().map_err(|e| self.spawn_error(e))?;
        let stderr = fs::read(&stderr_path).unwrap_or_default();
        let _ = fs::remove_file(&stderr_path);
        if !status.success() {
            return Err(self.error_of(op, log_from, &stderr));
        }
        if tty && console.is_none() {
            return Err(BackendError::NoConsole {
                op,
                id: self.id.clone(),
                socket: console_path,
            });
        }
        let pid = fs::read_to_string(pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| BackendError::NoPid {
                op,
                id: self.id.clone(),
                pid_file: pid_file.to_path_buf(),
            })?;
        let _ = fs::remove_file(pid_file);
        Ok(Created { pid, console })
    }
}

impl Backend for CliBackend {
    fn create(
        &mut self,
        bundle: &Path,
        stdio: ProcStdio,
        tty: bool,
    ) -> Result<Created, BackendError> {
        let pid_file = self.state_dir.join("init.pid");
        let args = ["--bundle".as_ref(), bundle.as_os_str()];
        self.spawn_process("create", &args, &pid_file, stdio, tty, "create")
    }

    fn start(&mut self) -> Result<(), BackendError> {
        self.run("start", &[self.id.as_ref()]).map(drop)
    }

    fn kill(&mut self, signal: i32, all: bool) -> Result<(), BackendError> {
        let sig = signal.to_string();
        if all {
            self.run("kill", &["--all".as_ref(), self.id.as_ref(), sig.as_ref()])
        } else {
            self.run("kill", &[self.id.as_ref(), sig.as_ref()])
        }
        .map(drop)
    }

    fn pause(&mut self) -> Result<(), BackendError> {
        self.run("pause", &[self.id.as_ref()]).map(drop)
    }

    fn resume(&mut self) -> Result<(), BackendError> {
        self.run("resume", &[self.id.as_ref()]).map(drop)
    }

    fn pids(&mut self) -> Result<Vec<i32>, BackendError> {
        let out = self.run(
            "ps",
            &["--format".as_ref(), "json".as_ref(), self.id.as_ref()],
        )?;
        serde_json::from_slice(&out).map_err(|_| BackendError::Output {
            op: "ps",
            id: self.id.clone(),
            output: String::from_utf8_lossy(&out).into_owned(),
        })
    }

    fn stats(&mut self) -> Result<String, BackendError> {
        let out = self.run("events", &["--stats".as_ref(), self.id.as_ref()])?;
        let bad = || BackendError::Output {
            op: "events",
            id: self.id.clone(),
            output: String::from_utf8_lossy(&out).into_owned(),
        };
        let line = out.split(|&b| b == b'\n').next().unwrap_or_default();
        let event: serde_json::Value = serde_json::from_slice(line).map_err(|_| bad())?;
        let data = &event["data"];
        let mut v = serde_json::to_value(stats_from_runc(data)).map_err(|_| bad())?;
        // The runtime's own sample too, under "data", for readers of runc's shape.
        v["data"] = data.clone();
        Ok(v.to_string())
    }

    fn update(&mut self, resources: &Path) -> Result<(), BackendError> {
        let args = [
            "--resources".as_ref(),
            resources.as_os_str(),
            self.id.as_ref(),
        ];
        self.run("update", &args).map(drop)
    }

    fn exec(
        &mut self,
        exec_id: &str,
        process: &Path,
        stdio: ProcStdio,
        tty: bool,
    ) -> Result<Created, BackendError> {
        let pid_file = self.state_dir.join(format!("exec-{exec_id}.pid"));
        let args = [
            "--process".as_ref(),
            process.as_os_str(),
            "--detach".as_ref(),
        ];
        self.spawn_process("exec", &args, &pid_file, stdio, tty, exec_id)
    }

    fn delete(&mut self) -> Result<(), BackendError> {
        self.run("delete", &["--force".as_ref(), self.id.as_ref()])
            .map(drop)
    }
}

/// The message of the last `error`/`fatal` entry of a runtime's JSON log.
fn last_logged_error(log: &str) -> Option<String> {
    log.lines().rev().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        match v["level"].as_str()? {
            "error" | "fatal" => v["msg"].as_str().map(str::to_string),
            _ => None,
        }
    })
}

/// runc's `events --stats` data as `wharf_runtime::cgroups::Stats`.
pub fn stats_from_runc(d: &serde_json::Value) -> Stats {
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let blkio = |op: &str| -> u64 {
        d["blkio"]["ioServiceBytesRecursive"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["op"].as_str().is_some_and(|o| o.eq_ignore_ascii_case(op)))
                    .map(|e| n(&e["value"]))
                    .sum()
            })
            .unwrap_or(0)
    };
    let mem = &d["memory"];
    let cpu = &d["cpu"];
    Stats {
        memory_usage: n(&mem["usage"]["usage"]),
        memory_max_usage: n(&mem["usage"]["max"]),
        memory_limit: n(&mem["usage"]["limit"]),
        memory_failcnt: n(&mem["usage"]["failcnt"]),
        oom_kills: n(&mem["raw"]["oom_kill"]),
        cpu_usage_total_ns: n(&cpu["usage"]["total"]),
        cpu_usage_user_ns: n(&cpu["usage"]["user"]),
        cpu_usage_kernel_ns: n(&cpu["usage"]["kernel"]),
        cpu_throttled_periods: n(&cpu["throttling"]["throttledPeriods"]),
        cpu_throttled_time_ns: n(&cpu["throttling"]["throttledTime"]),
        pids_current: n(&d["pids"]["current"]),
        pids_limit: n(&d["pids"]["limit"]),
        blkio_read_bytes: blkio("read"),
        blkio_write_bytes: blkio("write"),
    }
}

/// Accepts the runtime's connection on the console socket and receives the pty master,
/// waiting on the socket and on the runtime's exit (a pidfd), never on a timer. `None` when the
/// runtime exited without sending one.
fn receive_console(l: &UnixListener, child: &mut Child) -> std::io::Result<Option<OwnedFd>> {
    let exited = pidfd_open(child.id() as i32)?;
    loop {
        match l.accept() {
            Ok((s, _)) => return recv_fd(s.as_raw_fd()).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        let mut fds = [
            PollFd::new(l.as_fd(), PollFlags::POLLIN),
            PollFd::new(exited.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
        if !ready(&fds[0]) && ready(&fds[1]) {
            // The runtime is gone; one last look for a connection it left in the backlog.
            return match l.accept() {
                Ok((s, _)) => recv_fd(s.as_raw_fd()).map(Some),
                Err(_) => Ok(None),
            };
        }
    }
}

/// A pidfd for `pid`: readable once the process has exited.
fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Receives one fd sent with SCM_RIGHTS.
fn recv_fd(sock: RawFd) -> std::io::Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut got = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: the kernel just installed this fd in our table; we own it (any extra
                // one is closed when dropped).
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                got.get_or_insert(owned);
            }
        }
    }
    got.ok_or_else(|| std::io::Error::other("no fd in the console message"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_last_logged_error() {
        let log = concat!(
            "{\"level\":\"error\",\"msg\":\"old\",\"time\":\"t\"}\n",
            "{\"level\":\"error\",\"msg\":\"exec: \\\"foo\\\": executable file not found in $PATH\",\"time\":\"t\"}\n",
            "{\"level\":\"warning\",\"msg\":\"later\",\"time\":\"t\"}\n",
        );
        assert_eq!(
            last_logged_error(log).as_deref(),
            Some("exec: \"foo\": executable file not found in $PATH")
        );
        assert_eq!(last_logged_error("not json\n"), None);
    }

    #[test]
    fn converts_runc_stats() {
        let d: serde_json::Value = serde_json::from_str(
            r#"{"cpu":{"usage":{"total":5,"user":3,"kernel":2},"throttling":{"throttledPeriods":1,"throttledTime":9}},
               "memory":{"usage":{"usage":100,"max":200,"limit":300,"failcnt":4},"raw":{"oom_kill":1}},
               "pids":{"current":2,"limit":10},
               "blkio":{"ioServiceBytesRecursive":[{"op":"Read","value":7},{"op":"Write","value":8},{"op":"Read","value":1}]}}"#,
        )
        .unwrap();
        let s = stats_from_runc(&d);
        assert_eq!(
            (
                s.cpu_usage_total_ns,
                s.cpu_usage_user_ns,
                s.cpu_usage_kernel_ns
            ),
            (5, 3, 2)
        );
        assert_eq!((s.cpu_throttled_periods, s.cpu_throttled_time_ns), (1, 9));
        assert_eq!(
            (s.memory_usage, s.memory_max_usage, s.memory_limit),
            (100, 200, 300)
        );
        assert_eq!((s.memory_failcnt, s.oom_kills), (4, 1));
        assert_eq!((s.pids_current, s.pids_limit), (2, 10));
        assert_eq!((s.blkio_read_bytes, s.blkio_write_bytes), (8, 8));
    }
}
