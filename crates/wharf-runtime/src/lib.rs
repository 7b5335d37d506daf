//! wharf-runtime: an OCI runtime (runtime-spec 1.x) usable as a library and as a
//! runc-compatible binary.

pub mod cgroups;
pub mod seccomp;
