//! The runtime's typed errors. Messages follow runc's where users (and the daemon, which maps
//! them to exit codes 126/127) rely on their wording.

use std::path::PathBuf;

/// Errors of the runtime's operations.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("container id {0:?} is invalid: use letters, digits, '_', '-' and '.' (not starting with '.' or '-')")]
    InvalidId(String),
    #[error("container with id {0:?} already exists")]
    Exists(String),
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("cannot {op} container {id:?}: it is {status}, {hint}")]
    BadState {
        op: &'static str,
        id: String,
        status: String,
        hint: &'static str,
    },
    #[error("bundle {path}: {message}")]
    Bundle { path: PathBuf, message: String },
    #[error("invalid config: {0}")]
    Config(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Sys {
        context: String,
        #[source]
        source: nix::Error,
    },
    /// An error the container's init reported while it set the container up: the message is
    /// the init's own (e.g. `exec: "foo": executable file not found in $PATH`).
    #[error("{0}")]
    Init(String),
    #[error("error running hook ({hook}) {path}: {message}")]
    Hook {
        hook: String,
        path: PathBuf,
        message: String,
    },
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// Adds a context to io and nix errors.
pub trait Context<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| RuntimeError::Io {
            context: context(),
            source,
        })
    }
}

impl<T> Context<T> for nix::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| RuntimeError::Sys {
            context: context(),
            source,
        })
    }
}
