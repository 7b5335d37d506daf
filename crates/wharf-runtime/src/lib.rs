//! wharf-runtime: an OCI runtime (runtime-spec 1.x) usable as a library and as a
//! runc-compatible binary.
//!
//! [`Runtime`] holds the operations (create, start, state, kill, delete, pause, resume,
//! exec, ps, stats, update); the modules below it hold the pieces: the child side of the
//! setup ([`init`]), the filesystem ([`rootfs`]), the process's identity ([`process`]),
//! namespaces, cgroups, seccomp, hooks and the state on disk.

pub mod bundle;
pub mod cgroups;
pub mod console;
pub mod container;
pub mod defaults;
pub mod error;
pub mod events;
pub mod foreground;
pub mod hooks;
pub mod init;
pub mod inroot;
pub mod mountinfo;
pub mod mounts;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod sealed;
pub mod seccomp;
pub mod state;
pub mod sync;
pub mod util;

pub use container::{Console, CreateOpts, ExecOpts, Runtime, Started};
pub use error::{Result, RuntimeError};
pub use init::Stdio;
pub use state::{OciState, Status};
