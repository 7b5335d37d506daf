//! The in-process runtime: the `wharf_runtime` library, forking the container's init from
//! the shim itself (no runtime binary to exec, no console socket round trip). The shim is
//! single-threaded, which the library's fork requires, and a child subreaper, so the init
//! (whose first parent is the library's intermediate child) is reparented to it.

use super::{Backend, BackendError, Created, ProcStdio};
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

fn stdio(s: ProcStdio) -> Stdio {
    Stdio {
        stdin: s.stdin,
        stdout: s.stdout,
        stderr: s.stderr,
    }
}

impl Backend for Builtin {
    fn create(&mut self, bundle: &Path, io: ProcStdio, tty: bool) -> Result<Created, BackendError> {
        let started = self
            .rt
            .create(CreateOpts {
                id: &self.id,
                bundle,
                console: if tty { Console::Return } else { Console::None },
                stdio: Some(stdio(io)),
                pid_file: None,
                no_pivot: false,
                preserve_fds: 0,
            })
            .map_err(self.err("create"))?;
        Ok(Created {
            pid: started.pid,
            console: started.console,
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
        let p: oci_spec::runtime::Process = self.read_json("exec", process)?;
        let started = self
            .rt
            .exec(
                &self.id,
                ExecOpts {
                    process: p,
                    console: if tty { Console::Return } else { Console::None },
                    stdio: Some(stdio(io)),
                    pid_file: None,
                },
            )
            .map_err(self.err("exec"))?;
        Ok(Created {
            pid: started.pid,
            console: started.console,
        })
    }

    fn delete(&mut self) -> Result<(), BackendError> {
        self.rt.delete(&self.id, true).map_err(self.err("delete"))
    }
}
