//! Cgroups v1 and v2 behind one interface.
//!
//! INTERFACE CONTRACT (shared by the engineers working on this crate; keep signatures stable):
//! `create_manager` picks v1, v2 or hybrid from the host's mounts and returns a manager for one
//! container's cgroup; the container code calls `apply` with the init pid before exec, `set` with
//! the OCI resources, `freeze`/`thaw` for pause/resume, `stats` for `events --stats`,
//! `pids` for `ps`/`kill --all`, and `destroy` on delete.

use std::path::{Path, PathBuf};

/// Errors from cgroup management.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup operation on {path} failed: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cgroup support not implemented yet: {0}")]
    Unsupported(String),
}

/// Freezer state of a cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezerState {
    Thawed,
    Frozen,
}

/// Resource usage of a cgroup (the `data` of `events --stats`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub memory_usage: u64,
    pub memory_max_usage: u64,
    pub memory_limit: u64,
    pub memory_failcnt: u64,
    pub oom_kills: u64,
    pub cpu_usage_total_ns: u64,
    pub cpu_usage_user_ns: u64,
    pub cpu_usage_kernel_ns: u64,
    pub cpu_throttled_periods: u64,
    pub cpu_throttled_time_ns: u64,
    pub pids_current: u64,
    pub pids_limit: u64,
    pub blkio_read_bytes: u64,
    pub blkio_write_bytes: u64,
}

/// One container's cgroup, v1 or v2.
pub trait CgroupManager: Send + Sync {
    /// Create the cgroup (if needed) and move `pid` into it.
    fn apply(&self, pid: i32) -> Result<(), CgroupError>;
    /// Apply the OCI resource limits.
    fn set(&self, resources: &oci_spec::runtime::LinuxResources) -> Result<(), CgroupError>;
    fn freeze(&self) -> Result<(), CgroupError>;
    fn thaw(&self) -> Result<(), CgroupError>;
    fn freezer_state(&self) -> Result<FreezerState, CgroupError>;
    fn stats(&self) -> Result<Stats, CgroupError>;
    /// All pids in the cgroup (recursively).
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;
    /// Remove the cgroup directories (the cgroup must be empty).
    fn destroy(&self) -> Result<(), CgroupError>;
}

/// Manager for `cgroups_path` (the OCI `linux.cgroupsPath`; when empty the caller passes
/// `/wharf-runtime/<id>`), using the host's cgroup mounts.
pub fn create_manager(cgroups_path: &Path) -> Result<Box<dyn CgroupManager>, CgroupError> {
    Err(CgroupError::Unsupported(cgroups_path.display().to_string()))
}
