//! How the shim drives the container: the [`Backend`] trait, implemented by the OCI CLI
//! runtime (`cli`, runc's command line) and by the in-process `wharf_runtime` library
//! (`builtin`). The poll loop only sees the trait.
//!
//! Either way the container's init, and every exec'd process, ends up a child of the shim (a
//! child subreaper): the shim reaps them itself; a backend never waits for them.

pub mod builtin;
pub mod cli;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// The stdio a new process gets (ignored for the streams a tty replaces).
pub struct ProcStdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// A process the runtime created: its host pid, and the pty master when it has a tty.
pub struct Created {
    pub pid: i32,
    pub console: Option<OwnedFd>,
}

/// Errors of a backend operation. `Display` of `Runtime` is the runtime's own message (e.g.
/// `exec: "foo": executable file not found in $PATH`), which the daemon shows to the user.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot run the runtime {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{message}")]
    Runtime {
        op: &'static str,
        id: String,
        message: String,
    },
    #[error("{op} {id}: {path}: {source}")]
    Io {
        op: &'static str,
        id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{op} {id}: the runtime wrote no pid to {pid_file}")]
    NoPid {
        op: &'static str,
        id: String,
        pid_file: PathBuf,
    },
    #[error("{op} {id}: the runtime sent no console over {socket}")]
    NoConsole {
        op: &'static str,
        id: String,
        socket: PathBuf,
    },
    #[error("{op} {id}: unexpected runtime output: {output}")]
    Output {
        op: &'static str,
        id: String,
        output: String,
    },
}

/// One container, driven through some OCI runtime.
pub trait Backend {
    /// Creates the container (state "created": init waits for `start`). With `tty`, the
    /// process gets a pty instead of `stdio` and its master is returned.
    fn create(
        &mut self,
        bundle: &Path,
        stdio: ProcStdio,
        tty: bool,
    ) -> Result<Created, BackendError>;
    fn start(&mut self) -> Result<(), BackendError>;
    fn kill(&mut self, signal: i32, all: bool) -> Result<(), BackendError>;
    fn pause(&mut self) -> Result<(), BackendError>;
    fn resume(&mut self) -> Result<(), BackendError>;
    /// Host pids of the container's processes.
    fn pids(&mut self) -> Result<Vec<i32>, BackendError>;
    /// One line of JSON: `wharf_runtime::cgroups::Stats`.
    fn stats(&mut self) -> Result<String, BackendError>;
    /// Applies the OCI `linux.resources` in the JSON file `resources`.
    fn update(&mut self, resources: &Path) -> Result<(), BackendError>;
    /// Runs the OCI process in `process` (a process.json) inside the container, detached.
    fn exec(
        &mut self,
        exec_id: &str,
        process: &Path,
        stdio: ProcStdio,
        tty: bool,
    ) -> Result<Created, BackendError>;
    /// Removes the container (killing what is left), its cgroups and runtime state.
    fn delete(&mut self) -> Result<(), BackendError>;
}
