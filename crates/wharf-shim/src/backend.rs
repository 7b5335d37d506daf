//! How the shim drives the OCI runtime: an OCI CLI runtime (runc, crun, `wharf-runtime`)
//! with runc's command line. The container's init is reparented to the shim (a child
//! subreaper) when the runtime's create process exits.

use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The stdio a new process gets, or the console socket it sends its pty master to.
pub struct ProcStdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// An OCI runtime driven through its command line.
pub struct CliRuntime {
    pub binary: PathBuf,
    pub root: PathBuf,
    pub id: String,
    pub state_dir: PathBuf,
    /// Where console sockets go: a short directory (the control socket's), since a path under
    /// a deep state dir would not fit `sun_path`.
    pub console_dir: PathBuf,
}

fn dup(fd: &OwnedFd) -> Result<Stdio, String> {
    fd.try_clone()
        .map(Stdio::from)
        .map_err(|e| format!("dup: {e}"))
}

impl CliRuntime {
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

    /// The runtime's last error message (from its JSON log), else its stderr.
    fn error_of(&self, stderr: &[u8], what: &str) -> String {
        let log = fs::read_to_string(self.log_path()).unwrap_or_default();
        let msg = log
            .lines()
            .rev()
            .filter(|l| l.contains("\"level\":\"error\"") || l.contains("\"level\":\"fatal\""))
            .find_map(|l| {
                let start = l.find("\"msg\":\"")? + 7;
                let rest = &l[start..];
                let mut out = String::new();
                let mut chars = rest.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => return Some(out),
                        '\\' => match chars.next()? {
                            'n' => out.push('\n'),
                            't' => out.push('\t'),
                            c => out.push(c),
                        },
                        c => out.push(c),
                    }
                }
                None
            });
        msg.unwrap_or_else(|| {
            let s = String::from_utf8_lossy(stderr).trim().to_string();
            if s.is_empty() {
                format!("{} {what} failed", self.binary.display())
            } else {
                s
            }
        })
    }

    fn run(&self, args: &[&str]) -> Result<Vec<u8>, String> {
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{}: {e}", self.binary.display()))?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(self.error_of(&out.stderr, args.first().copied().unwrap_or("")))
        }
    }

    /// Runs `<runtime> <args> [--console-socket S] <id>` with `stdio`, receiving the pty
    /// master over a console socket when `tty`. `keep_stderr` hands the child the process's
    /// stderr (create: runc's stderr is the container's); otherwise it is captured for errors.
    fn spawn(
        &self,
        args: &[&std::ffi::OsStr],
        stdio: ProcStdio,
        tty: bool,
        keep_stderr: bool,
        tag: &str,
    ) -> Result<Option<OwnedFd>, String> {
        let mut cmd = self.command();
        cmd.args(args);
        let console_path = self.console_dir.join(format!(
            "{}-{}.console",
            &self.id[..self.id.len().min(12)],
            &tag[..tag.len().min(12)]
        ));
        let _ = fs::remove_file(&console_path);
        let listener = if tty {
            let l =
                UnixListener::bind(&console_path).map_err(|e| format!("console socket: {e}"))?;
            l.set_nonblocking(true).map_err(|e| e.to_string())?;
            cmd.arg("--console-socket").arg(&console_path);
            Some(l)
        } else {
            None
        };
        cmd.arg(&self.id)
            .stdin(dup(&stdio.stdin)?)
            .stdout(dup(&stdio.stdout)?)
            .stderr(if keep_stderr {
                dup(&stdio.stderr)?
            } else {
                Stdio::piped()
            });
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("{}: {e}", self.binary.display()))?;
        drop(stdio);
        let mut console = None;
        if let Some(l) = &listener {
            loop {
                match l.accept() {
                    Ok((s, _)) => {
                        console = Some(recv_fd(s.as_raw_fd())?);
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
                            break;
                        }
                        let mut fds = [nix::poll::PollFd::new(
                            std::os::fd::AsFd::as_fd(l),
                            nix::poll::PollFlags::POLLIN,
                        )];
                        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(50u8));
                    }
                    Err(e) => return Err(format!("console socket: {e}")),
                }
            }
        }
        let mut err = Vec::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_end(&mut err);
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        let _ = fs::remove_file(&console_path);
        if !status.success() {
            return Err(self.error_of(&err, tag));
        }
        if tty && console.is_none() {
            return Err("the runtime did not send the console".into());
        }
        Ok(console)
    }

    /// `create`: the container exists, its init waits to be started.
    pub fn create(
        &self,
        bundle: &Path,
        stdio: ProcStdio,
        tty: bool,
    ) -> Result<(i32, Option<OwnedFd>), String> {
        let pid_file = self.state_dir.join("init.pid");
        let args = [
            "create".as_ref(),
            "--bundle".as_ref(),
            bundle.as_os_str(),
            "--pid-file".as_ref(),
            pid_file.as_os_str(),
        ];
        let console = self.spawn(&args, stdio, tty, true, "create")?;
        let pid = read_pid(&pid_file).ok_or("the runtime wrote no pid file")?;
        Ok((pid, console))
    }

    pub fn start(&self) -> Result<(), String> {
        self.run(&["start", &self.id]).map(drop)
    }

    pub fn kill(&self, signal: i32, all: bool) -> Result<(), String> {
        let sig = signal.to_string();
        if all {
            self.run(&["kill", "--all", &self.id, &sig]).map(drop)
        } else {
            self.run(&["kill", &self.id, &sig]).map(drop)
        }
    }

    pub fn pause(&self) -> Result<(), String> {
        self.run(&["pause", &self.id]).map(drop)
    }

    pub fn resume(&self) -> Result<(), String> {
        self.run(&["resume", &self.id]).map(drop)
    }

    /// Host pids of the container's processes, space separated.
    pub fn pids(&self) -> Result<String, String> {
        let out = self.run(&["ps", "--format", "json", &self.id])?;
        let s = String::from_utf8_lossy(&out);
        Ok(s.trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
            .collect::<Vec<_>>()
            .join(" "))
    }

    /// One JSON line of `events --stats`.
    pub fn stats(&self) -> Result<String, String> {
        let out = self.run(&["events", "--stats", &self.id])?;
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .next()
            .unwrap_or("{}")
            .to_string())
    }

    /// `update --resources FILE`: new cgroup limits for the running container.
    pub fn update(&self, resources: &str) -> Result<(), String> {
        self.run(&["update", "--resources", resources, &self.id])
            .map(drop)
    }

    pub fn delete(&self) {
        let _ = self.run(&["delete", "--force", &self.id]);
    }

    /// Starts a process inside the container; it is reparented to the shim.
    pub fn exec(
        &self,
        process: &Path,
        stdio: ProcStdio,
        tty: bool,
        exec_id: &str,
    ) -> Result<(i32, Option<OwnedFd>), String> {
        let pid_file = self.state_dir.join(format!("exec-{exec_id}.pid"));
        let args = [
            "exec".as_ref(),
            "--process".as_ref(),
            process.as_os_str(),
            "--detach".as_ref(),
            "--pid-file".as_ref(),
            pid_file.as_os_str(),
        ];
        let console = self.spawn(&args, stdio, tty, false, exec_id)?;
        let pid = read_pid(&pid_file).ok_or("the runtime wrote no pid file for the exec")?;
        let _ = fs::remove_file(&pid_file);
        Ok((pid, console))
    }
}

fn read_pid(p: &Path) -> Option<i32> {
    fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// Receives one fd sent with SCM_RIGHTS.
fn recv_fd(sock: RawFd) -> Result<OwnedFd, String> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(|e| format!("receiving the console: {e}"))?;
    for c in msg.cmsgs().map_err(|e| e.to_string())? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this fd in our table; we take ownership.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err("no console fd received".into())
}
