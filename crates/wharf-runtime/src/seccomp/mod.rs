//! Seccomp: translate an OCI `linux.seccomp` profile into a BPF program and install it.
//!
//! INTERFACE CONTRACT (keep signatures stable): the container init calls `compile` before
//! fork-sensitive work and `install` as the last step before exec (after dropping capabilities,
//! with no_new_privs or CAP_SYS_ADMIN as the kernel requires).

/// Errors from seccomp translation and installation.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp support not implemented yet")]
    Unsupported,
}

/// A compiled classic-BPF seccomp filter.
#[derive(Debug, Clone)]
pub struct Program(pub Vec<libc::sock_filter>);

/// Translate an OCI seccomp profile into a BPF filter for the host architecture.
pub fn compile(_profile: &oci_spec::runtime::LinuxSeccomp) -> Result<Program, SeccompError> {
    Err(SeccompError::Unsupported)
}

/// Install the filter on the calling thread (seccomp(SECCOMP_SET_MODE_FILTER)).
pub fn install(_program: &Program) -> Result<(), SeccompError> {
    Err(SeccompError::Unsupported)
}
