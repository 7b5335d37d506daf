//! Seccomp: translate an OCI `linux.seccomp` profile into a BPF program and install it.
//!
//! INTERFACE CONTRACT (keep signatures stable): the container init calls `compile` before
//! fork-sensitive work and `install` as the last step before exec (after dropping capabilities,
//! with no_new_privs or CAP_SYS_ADMIN as the kernel requires).
//!
//! The profile's `flags` and `SCMP_ACT_NOTIFY` need more than a bare [`Program`]: use
//! [`compile_filter`] and [`Filter::install`], which passes the flags to seccomp(2) and returns
//! the user-notification listener fd when the profile uses `SCMP_ACT_NOTIFY` (the caller
//! sends it to `listenerPath`). [`compile`] + [`install`] remain for profiles without either.
//!
//! The generator (no libseccomp) lives in `compile.rs` (semantics and program layout are
//! documented there), the assembler with long-jump handling in `bpf.rs`, and the syscall
//! tables in `tables/`.

mod bpf;
mod cache;
mod compile;
mod tables;

pub use cache::set_cache_dir;

#[cfg(test)]
mod tests;

use std::os::fd::{FromRawFd, OwnedFd};

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompFilterFlag};

/// The kernel's limit on the length of a classic-BPF program (BPF_MAXINSNS).
pub const BPF_MAXINSNS: usize = 4096;

/// Errors from seccomp translation and installation.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// There are no syscall tables for the host architecture.
    #[error(
        "seccomp: unsupported host architecture (only x86_64 and aarch64 have syscall tables)"
    )]
    Unsupported,
    /// An errnoRet / defaultErrnoRet larger than the kernel accepts.
    #[error("seccomp: {what}: errnoRet {value} is out of range (at most 4095)")]
    ErrnoOutOfRange {
        /// Which field: `defaultErrnoRet` or `syscalls[N]`.
        what: String,
        /// The rejected value.
        value: u32,
    },
    /// An argument condition on an index other than 0..=5.
    #[error(
        "seccomp: syscalls[{rule}].args[{arg}]: argument index {index} is out of range (0..=5)"
    )]
    ArgIndex {
        /// Index into `syscalls`.
        rule: usize,
        /// Index into that entry's `args`.
        arg: usize,
        /// The rejected argument index.
        index: usize,
    },
    /// `defaultAction: SCMP_ACT_NOTIFY` (runc rejects it: every syscall would wait for an agent).
    #[error("seccomp: SCMP_ACT_NOTIFY cannot be used as the default action")]
    NotifyDefault,
    /// `SCMP_ACT_NOTIFY` on `write` (runc rejects it: the runtime itself writes after install).
    #[error("seccomp: syscalls[{rule}]: SCMP_ACT_NOTIFY cannot be used for the write syscall")]
    NotifyWrite {
        /// Index into `syscalls`.
        rule: usize,
    },
    /// The generated program exceeds BPF_MAXINSNS.
    #[error(
        "seccomp: the profile compiles to {len} BPF instructions, more than the kernel's limit \
         of {max} (BPF_MAXINSNS); reduce the number of syscall rules or argument conditions"
    )]
    TooLong {
        /// Generated length.
        len: usize,
        /// BPF_MAXINSNS.
        max: usize,
    },
    /// A bug in the generator.
    #[error("seccomp: internal code generation error: {0}")]
    Internal(String),
    /// The program returns SECCOMP_RET_USER_NOTIF but was installed without a listener.
    #[error(
        "seccomp: the filter uses SCMP_ACT_NOTIFY; install it with install_with_listener \
         (or Filter::install) to get the listener fd"
    )]
    NeedsListener,
    /// seccomp(2) failed.
    #[error("seccomp: seccomp(SECCOMP_SET_MODE_FILTER, flags {flags:#x}) failed: {errno}{}", install_hint(*.errno))]
    Install {
        /// Flags passed to seccomp(2).
        flags: u32,
        /// The kernel's answer.
        errno: nix::errno::Errno,
    },
}

fn install_hint(errno: nix::errno::Errno) -> &'static str {
    match errno {
        nix::errno::Errno::EACCES => " (set no_new_privs or hold CAP_SYS_ADMIN first)",
        nix::errno::Errno::EINVAL => " (a flag or action this kernel does not support?)",
        _ => "",
    }
}

/// A compiled classic-BPF seccomp filter.
#[derive(Debug, Clone)]
pub struct Program(pub Vec<libc::sock_filter>);

impl Program {
    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the program is empty (never the case for a compiled profile).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether some path returns SECCOMP_RET_USER_NOTIF (needs a listener to be useful).
    pub fn uses_notify(&self) -> bool {
        self.0.iter().any(|i| {
            i.code == bpf::BPF_RET | bpf::BPF_K
                && i.k & libc::SECCOMP_RET_ACTION_FULL == libc::SECCOMP_RET_USER_NOTIF
        })
    }
}

/// `SECCOMP_FILTER_FLAG_*` bits passed to seccomp(2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FilterFlags(u32);

impl FilterFlags {
    /// Synchronize all threads of the process to this filter.
    pub const TSYNC: Self = Self(libc::SECCOMP_FILTER_FLAG_TSYNC as u32);
    /// Log all actions but ALLOW.
    pub const LOG: Self = Self(libc::SECCOMP_FILTER_FLAG_LOG as u32);
    /// Disable the Speculative Store Bypass mitigation.
    pub const SPEC_ALLOW: Self = Self(libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32);
    /// Return a user-notification listener fd.
    pub const NEW_LISTENER: Self = Self(libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32);
    /// With TSYNC: report a sync failure as ESRCH (required together with NEW_LISTENER).
    pub const TSYNC_ESRCH: Self = Self(libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH as u32);
    /// Notified tasks wait killably once the agent received the notification.
    pub const WAIT_KILLABLE_RECV: Self = Self(libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV as u32);

    /// The raw bits.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether all bits of `other` are set.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The flags an OCI profile asks for.
    pub fn from_oci(flags: &[LinuxSeccompFilterFlag]) -> Self {
        flags.iter().fold(Self::default(), |acc, f| {
            acc | match f {
                LinuxSeccompFilterFlag::SeccompFilterFlagTsync => Self::TSYNC,
                LinuxSeccompFilterFlag::SeccompFilterFlagLog => Self::LOG,
                LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => Self::SPEC_ALLOW,
                LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                    Self::WAIT_KILLABLE_RECV
                }
            }
        })
    }
}

impl std::ops::BitOr for FilterFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// A compiled profile: the program plus the seccomp(2) flags it asks for.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The BPF program.
    pub program: Program,
    /// The profile's `flags`.
    pub flags: FilterFlags,
}

impl Filter {
    /// Install on the calling thread with the profile's flags. Returns the listener fd when
    /// the program uses SCMP_ACT_NOTIFY, `None` otherwise.
    pub fn install(&self) -> Result<Option<OwnedFd>, SeccompError> {
        if self.program.uses_notify() {
            install_with_listener(&self.program, self.flags).map(Some)
        } else {
            install_with_flags(&self.program, self.flags)
        }
    }
}

/// Translate an OCI seccomp profile into a BPF filter for the host architecture.
pub fn compile(profile: &LinuxSeccomp) -> Result<Program, SeccompError> {
    compile_filter(profile).map(|f| f.program)
}

/// Like [`compile`], keeping the profile's flags. With a cache directory set
/// ([`set_cache_dir`]), a profile compiled before is loaded from there instead.
pub fn compile_filter(profile: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    let host = compile::Host::native().ok_or(SeccompError::Unsupported)?;
    let flags = FilterFlags::from_oci(profile.flags().as_deref().unwrap_or_default());
    let cached = cache::dir().and_then(|d| Some((d, cache::key(profile, host)?)));
    if let Some(program) = cached.as_ref().and_then(|(d, k)| cache::load(d, k)) {
        return Ok(Filter { program, flags });
    }
    let program = compile_for(profile, host)?;
    if let Some((d, k)) = &cached {
        cache::store(d, k, &program);
    }
    Ok(Filter { program, flags })
}

fn compile_for(profile: &LinuxSeccomp, host: compile::Host) -> Result<Program, SeccompError> {
    let insns = compile::compile(profile, host)?;
    if insns.len() > BPF_MAXINSNS {
        return Err(SeccompError::TooLong {
            len: insns.len(),
            max: BPF_MAXINSNS,
        });
    }
    Ok(Program(insns))
}

/// Install the filter on the calling thread (seccomp(SECCOMP_SET_MODE_FILTER)), no flags.
///
/// Fails with [`SeccompError::NeedsListener`] for a program that uses SCMP_ACT_NOTIFY.
pub fn install(program: &Program) -> Result<(), SeccompError> {
    if program.uses_notify() {
        return Err(SeccompError::NeedsListener);
    }
    install_with_flags(program, FilterFlags::default()).map(drop)
}

/// Install with SECCOMP_FILTER_FLAG_NEW_LISTENER (added to `flags`) and return the
/// user-notification listener fd (close-on-exec).
pub fn install_with_listener(
    program: &Program,
    flags: FilterFlags,
) -> Result<OwnedFd, SeccompError> {
    let mut flags = flags | FilterFlags::NEW_LISTENER;
    if flags.contains(FilterFlags::TSYNC) {
        // The kernel refuses TSYNC + NEW_LISTENER unless sync failures report ESRCH
        // (the return value would otherwise be ambiguous: thread id or fd).
        flags = flags | FilterFlags::TSYNC_ESRCH;
    }
    match install_with_flags(program, flags)? {
        Some(fd) => Ok(fd),
        None => Err(SeccompError::Internal(
            "seccomp(2) with NEW_LISTENER returned no fd".into(),
        )),
    }
}

/// Install with exactly `flags`. Returns the listener fd if `flags` has NEW_LISTENER.
///
/// Does not allocate, so it may be called between fork and exec.
pub fn install_with_flags(
    program: &Program,
    flags: FilterFlags,
) -> Result<Option<OwnedFd>, SeccompError> {
    let fail = |errno| SeccompError::Install {
        flags: flags.bits(),
        errno,
    };
    let len = u16::try_from(program.0.len()).map_err(|_| fail(nix::errno::Errno::EINVAL))?;
    let fprog = libc::sock_fprog {
        len,
        filter: program.0.as_ptr().cast_mut(),
    };
    // SAFETY: seccomp(2) with SECCOMP_SET_MODE_FILTER reads `len` instructions from
    // `fprog.filter`, which points into `program.0` (alive and unmodified for the whole
    // call); the kernel copies the program and never writes through the pointer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags.bits()),
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        return Err(fail(nix::errno::Errno::last()));
    }
    if flags.contains(FilterFlags::NEW_LISTENER) {
        let fd = i32::try_from(rc).map_err(|_| fail(nix::errno::Errno::EBADF))?;
        // SAFETY: with NEW_LISTENER a successful seccomp(2) returns a new fd that nothing
        // else owns; we take sole ownership of it here.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
    } else {
        Ok(None)
    }
}
