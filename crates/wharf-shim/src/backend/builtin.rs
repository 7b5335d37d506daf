//! The in-process runtime: the `wharf_runtime` library, no runtime binary to exec and no
//! console socket round trip. The shim is single-threaded, which the library's fork
//! requires, and a child subreaper, so the init (whose first parent is the library's
//! intermediate child) is reparented to it.
//!
//! `create` and `exec`, which parse configs and set up namespaces, run in a forked child of
//! the shim that reports the pid (and pty master) back over a socketpair and exits: the code
//! and heap they touch never become part of the long-lived shim's memory.

use super::{Backend, BackendError, Created, ProcStdio};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use wharf_runtime::{Console, CreateOpts, ExecOpts, Runtime, RuntimeError, Stdio};

/// The container `id`, run by the `wharf_runtime` library inside the shim.
pub struct Builtin {
    id: String,
    rt: Runtime,
}

impl Builtin {
    pub fn new(id: String, root: &Path) -> Builtin {
        Builtin {
            id,
            rt: Runtime::new(root),
        }
    }

    fn err(&self, op: &'static str) -> impl Fn(RuntimeError) -> BackendError + '_ {
        move |e| BackendError::Runtime {
            op,
            id: self.id.clone(),
            message: e.to_string(),
        }
    }

    fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        path: &Path,
    ) -> Result<T, BackendError> {
        let data = std::fs::read(path).map_err(|source| BackendError::Io {
            op,
            id: self.id.clone(),
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_slice(&data).map_err(|e| BackendError::Output {
            op,
            id: self.id.clone(),
            output: format!("{}: {e}", path.display()),
        })
    }
}

/// Runs `f` in a forked child and returns what it produced: a pid and maybe a console fd.
fn in_child(
    op: &'static str,
    id: &str,
    f: impl FnOnce() -> Result<wharf_runtime::Started, RuntimeError>,
) -> Result<Created, BackendError> {
    let err = |message: String| BackendError::Runtime {
        op,
        id: id.to_string(),
        message,
    };
    let (parent, child) = wharf_runtime::sync::pair().map_err(|e| err(e.to_string()))?;
    // SAFETY: the shim is single-threaded; the child only runs `f`, reports and _exits.
    match unsafe { nix::unistd::fork() } {
        Err(e) => Err(err(format!("fork: {e}"))),
        Ok(nix::unistd::ForkResult::Child) => {
            drop(parent);
            let msg = match f() {
                Ok(s) => {
                    if let Some(c) = &s.console {
                        let _ = wharf_runtime::sync::send_fd_with(
                            child.as_raw_fd(),
                            c.as_raw_fd(),
                            format!("ok {}", s.pid).as_bytes(),
                        );
                        // SAFETY: ends the forked child without unwinding into the shim.
                        unsafe { libc::_exit(0) }
                    }
                    format!("ok {}", s.pid)
                }
                Err(e) => format!("err {e}"),
            };
            let _ = nix::sys::socket::send(
                child.as_raw_fd(),
                msg.as_bytes(),
                nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
            );
            // SAFETY: as above.
            unsafe { libc::_exit(0) }
        }
        Ok(nix::unistd::ForkResult::Parent { child: pid }) => {
            drop(child);
            let got = recv_result(&parent);
            let _ = nix::sys::wait::waitpid(pid, None);
            let (text, fd) = got.map_err(|e| err(format!("reading the runtime's answer: {e}")))?;
            match text.split_once(' ') {
                Some(("ok", p)) => Ok(Created {
                    pid: p.parse().map_err(|_| err(format!("bad answer {text:?}")))?,
                    console: fd,
                }),
                Some(("err", m)) => Err(err(m.to_string())),
                _ => Err(err(format!(
                    "the runtime exited without an answer ({text:?})"
                ))),
            }
        }
    }
}

/// One message from [`in_child`]'s child: text and maybe an fd.
fn recv_result(sock: &OwnedFd) -> nix::Result<(String, Option<OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::FromRawFd;
    let mut buf = vec![0u8; 16 * 1024];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = loop {
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::Error::EINTR) => continue,
            r => break r?,
        }
    };
    let mut fd = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&f) = fds.first() {
                // SAFETY: the kernel just installed this fd for us (SCM_RIGHTS).
                fd = Some(unsafe { OwnedFd::from_raw_fd(f) });
            }
        }
    }
    let n = msg.bytes;
    Ok((String::from_utf8_lossy(&buf[..n]).into_owned(), fd))
}

fn stdio(s: ProcStdio) -> Stdio {
    Stdio {
        stdin: s.stdin,
        stdout: s.stdout,
        stderr: s.stderr,
    }
}

impl Backend for Builtin {
    fn create(&mut self, bundle: &Path, io: ProcStdio, tty: bool) -> Result<Created, BackendError> {
        let rt = &self.rt;
        let id = &self.id;
        in_child("create", id, move || {
            rt.create(CreateOpts {
                id,
                bundle,
                console: if tty { Console::Return } else { Console::None },
                stdio: Some(stdio(io)),
                pid_file: None,
                no_pivot: false,
                preserve_fds: 0,
            })
        })
    }

    fn start(&mut self) -> Result<(), BackendError> {
        self.rt.start(&self.id).map_err(self.err("start"))
    }

    fn kill(&mut self, signal: i32, all: bool) -> Result<(), BackendError> {
        let sig =
            nix::sys::signal::Signal::try_from(signal).map_err(|_| BackendError::Runtime {
                op: "kill",
                id: self.id.clone(),
                message: format!("unknown signal {signal}"),
            })?;
        self.rt.kill(&self.id, sig, all).map_err(self.err("kill"))
    }

    fn pause(&mut self) -> Result<(), BackendError> {
        self.rt.pause(&self.id).map_err(self.err("pause"))
    }

    fn resume(&mut self) -> Result<(), BackendError> {
        self.rt.resume(&self.id).map_err(self.err("resume"))
    }

    fn pids(&mut self) -> Result<Vec<i32>, BackendError> {
        self.rt.pids(&self.id).map_err(self.err("ps"))
    }

    fn stats(&mut self) -> Result<String, BackendError> {
        let d = self
            .rt
            .detailed_stats(&self.id)
            .map_err(self.err("stats"))?;
        let mut v = serde_json::to_value(&d.base).expect("stats serialize");
        // runc's `events --stats` shape too, under "data", as the CLI backend gives it.
        v["data"] = wharf_runtime::events::runc_data(&d);
        Ok(v.to_string())
    }

    fn update(&mut self, resources: &Path) -> Result<(), BackendError> {
        let r: oci_spec::runtime::LinuxResources = self.read_json("update", resources)?;
        self.rt.update(&self.id, &r).map_err(self.err("update"))
    }

    fn exec(
        &mut self,
        _exec_id: &str,
        process: &Path,
        io: ProcStdio,
        tty: bool,
    ) -> Result<Created, BackendError> {
        let rt = &self.rt;
        let id = &self.id;
        in_child("exec", id, move || {
            let data = std::fs::read(process).map_err(|source| RuntimeError::Io {
                context: format!("reading {}", process.display()),
                source,
            })?;
            let p: oci_spec::runtime::Process = serde_json::from_slice(&data)
                .map_err(|e| RuntimeError::Config(format!("{}: {e}", process.display())))?;
            rt.exec(
                id,
                ExecOpts {
                    process: p,
                    console: if tty { Console::Return } else { Console::None },
                    stdio: Some(stdio(io)),
                    pid_file: None,
                    ignore_paused: false,
                    preserve_fds: 0,
                    cgroups: Default::default(),
                },
            )
        })
    }

    fn delete(&mut self) -> Result<(), BackendError> {
        self.rt.delete(&self.id, true).map_err(self.err("delete"))
    }
}
