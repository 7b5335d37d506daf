//! The in-process runtime, `wharf_runtime`. Its `Runtime` (create/start/kill/delete/exec...)
//! is not in the library yet, so every operation answers `Unsupported` and the shim falls back
//! to the OCI CLI runtime (see `monitor::setup`). This is the seam where it plugs in.

use super::{Backend, BackendError, Created, ProcStdio};
use std::path::Path;

/// The container `id`, run by the `wharf_runtime` library inside the shim.
pub struct Builtin {
    id: String,
}

impl Builtin {
    pub fn new(id: String) -> Builtin {
        Builtin { id }
    }

    fn unsupported<T>(&self, op: &'static str) -> Result<T, BackendError> {
        Err(BackendError::Unsupported {
            op,
            id: self.id.clone(),
            reason: "wharf_runtime has no in-process Runtime yet".into(),
        })
    }
}

impl Backend for Builtin {
    fn create(&mut self, _: &Path, _: ProcStdio, _: bool) -> Result<Created, BackendError> {
        self.unsupported("create")
    }
    fn start(&mut self) -> Result<(), BackendError> {
        self.unsupported("start")
    }
    fn kill(&mut self, _: i32, _: bool) -> Result<(), BackendError> {
        self.unsupported("kill")
    }
    fn pause(&mut self) -> Result<(), BackendError> {
        self.unsupported("pause")
    }
    fn resume(&mut self) -> Result<(), BackendError> {
        self.unsupported("resume")
    }
    fn pids(&mut self) -> Result<Vec<i32>, BackendError> {
        self.unsupported("ps")
    }
    fn stats(&mut self) -> Result<String, BackendError> {
        self.unsupported("stats")
    }
    fn update(&mut self, _: &Path) -> Result<(), BackendError> {
        self.unsupported("update")
    }
    fn exec(&mut self, _: &str, _: &Path, _: ProcStdio, _: bool) -> Result<Created, BackendError> {
        self.unsupported("exec")
    }
    fn delete(&mut self) -> Result<(), BackendError> {
        self.unsupported("delete")
    }
}
