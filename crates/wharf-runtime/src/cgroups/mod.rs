//! Cgroups v1 and v2 behind one interface.
//!
//! INTERFACE CONTRACT (shared by the engineers working on this crate; keep signatures stable):
//! `create_manager` picks v1, v2 or hybrid from the host's mounts and returns a manager for one
//! container's cgroup; the container code calls `apply` with the init pid before exec, `set` with
//! the OCI resources, `freeze`/`thaw` for pause/resume, `stats` for `events --stats`,
//! `pids` for `ps`/`kill --all`, and `destroy` on delete.
//!
//! Layout: pure v2 (cgroup2 on `/sys/fs/cgroup`) uses [`V2Manager`]; v1 and hybrid (v1
//! controllers with a cgroup2 mount beside them) use [`V1Manager`], which in hybrid mode also
//! puts the process in the cgroup2 hierarchy. `cgroupsPath` semantics (absolute, relative to
//! the runtime's own cgroup, or systemd's `slice:prefix:name` mapped to a plain path) are in
//! [`path`]. No systemd or D-Bus is involved.

pub mod convert;
pub mod devices;
pub mod devices_bpf;
mod files;
pub mod layout;
pub mod path;
pub mod stats;
pub mod v1;
pub mod v2;

use std::path::{Path, PathBuf};

pub use layout::Layout;
pub use path::CgroupPath;
pub use stats::DetailedStats;
pub use v1::V1Manager;
pub use v2::V2Manager;

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
    /// Writing an interface file failed (e.g. `EBUSY` for a limit below the usage).
    #[error("writing {value} to {}: {source}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {}: {detail}", path.display())]
    Parse { path: PathBuf, detail: String },
    /// A resource setting that cannot be applied as given (e.g. `unified` on v1).
    #[error("invalid configuration (cgroup resources): {0}")]
    InvalidResource(String),
    #[error("invalid cgroupsPath {0}")]
    InvalidPath(String),
    #[error("no cgroup filesystem is mounted (see /proc/self/mountinfo)")]
    NoCgroupMounts,
    /// The v1 controller needed for an operation is not mounted.
    #[error("cgroup v1 controller {0} is not mounted")]
    ControllerMissing(String),
    /// `exec --cgroup` named a controller that is not mounted.
    #[error("unknown controller {0:?} (not a mounted cgroup v1 controller)")]
    UnknownController(String),
    /// Moving a process into an existing (sub-)cgroup failed; `reason` is the errno's text.
    #[error("adding pid {pid} to cgroups: writing {}: {reason}", path.display())]
    Join {
        pid: i32,
        path: PathBuf,
        reason: String,
    },
    #[error("{op} on {}: {source}", path.display())]
    Bpf {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The freezer did not reach the wanted state in time (the cgroup was thawed again).
    #[error("cgroup {} did not {what} within {timeout:?}", path.display())]
    FreezerTimeout {
        path: PathBuf,
        what: &'static str,
        timeout: std::time::Duration,
    },
}

/// Freezer state of a cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezerState {
    Thawed,
    Frozen,
}

/// Resource usage of a cgroup (the `data` of `events --stats`).
///
/// Unlimited limits read as `u64::MAX`, as runc reports them. More detail:
/// [`CgroupManager::detailed_stats`].
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
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

/// The directories a process must enter to be in a container's cgroup (see
/// [`CgroupManager::join_dirs`]).
#[derive(Debug, Clone, Default)]
pub struct JoinDirs {
    pub v1: Vec<std::path::PathBuf>,
    pub v2: Option<std::path::PathBuf>,
}

impl JoinDirs {
    /// Every directory, v1 then cgroup2.
    pub fn all(&self) -> Vec<std::path::PathBuf> {
        self.v1.iter().chain(&self.v2).cloned().collect()
    }
}

/// One container's cgroup, v1 or v2.
pub trait CgroupManager: Send + Sync {
    /// Create the cgroup (if needed) and move `pid` into it (`pid <= 0`: only create it).
    fn apply(&self, pid: i32) -> Result<(), CgroupError>;
    /// The container's cgroup directory in each hierarchy this manager drives (absolute
    /// paths under the hierarchies' mount points, whether or not they exist yet): the v1
    /// ones (joined by writing `0` in `tasks`) and the cgroup2 one (entered at fork with
    /// `CLONE_INTO_CGROUP`).
    fn join_dirs(&self) -> JoinDirs;
    /// Apply the OCI resource limits.
    fn set(&self, resources: &oci_spec::runtime::LinuxResources) -> Result<(), CgroupError>;
    /// Freeze every process in the cgroup; returns once they are frozen.
    fn freeze(&self) -> Result<(), CgroupError>;
    /// Thaw the cgroup; returns once it is thawed.
    fn thaw(&self) -> Result<(), CgroupError>;
    /// `Frozen` only once freezing has completed.
    fn freezer_state(&self) -> Result<FreezerState, CgroupError>;
    fn stats(&self) -> Result<Stats, CgroupError>;
    /// All pids in the cgroup (recursively).
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;
    /// Moves `pid` (an `exec`'d process) into existing sub-cgroups of the container's cgroup
    /// (runc's `exec --cgroup`): `sub` maps a v1 controller, or `""` for every hierarchy, to a
    /// path relative to the container's cgroup (see [`parse_sub_cgroups`]); hierarchies not
    /// named get the container's cgroup itself. Nothing is created.
    fn join_sub(&self, pid: i32, sub: &SubCgroups) -> Result<(), CgroupError> {
        match sub.get("") {
            Some(p) if sub.len() == 1 => {
                let dirs = self.join_dirs();
                for d in dirs.all() {
                    join_pid(&d.join(p), pid)?;
                }
                Ok(())
            }
            _ => Err(CgroupError::Unsupported(
                "exec --cgroup with controllers on this cgroup layout".into(),
            )),
        }
    }
    /// Remove the cgroup directories (the cgroup must be empty). A cgroup that does not exist
    /// is not an error.
    fn destroy(&self) -> Result<(), CgroupError>;
    /// [`Stats`] plus details (cache, per-CPU usage, hugetlb, raw `memory.stat`).
    fn detailed_stats(&self) -> Result<DetailedStats, CgroupError> {
        Ok(DetailedStats {
            base: self.stats()?,
            ..Default::default()
        })
    }
}

/// Sub-cgroups for an exec'd process: controller (`""`: all) → path relative to the
/// container's cgroup (empty: the cgroup itself).
pub type SubCgroups = std::collections::BTreeMap<String, PathBuf>;

/// Parses runc's `exec --cgroup` values: `PATH` (every hierarchy) or
/// `CONTROLLER[,CONTROLLER...]:PATH`. A path is relative to the container's cgroup (a leading
/// `/` is that cgroup itself) and may not leave it.
pub fn parse_sub_cgroups(args: &[String]) -> Result<SubCgroups, CgroupError> {
    let mut out = SubCgroups::new();
    for a in args {
        let (ctrls, path) = match a.split_once(':') {
            Some((c, p)) => (c.split(',').map(str::trim).collect::<Vec<_>>(), p),
            None => (vec![""], a.as_str()),
        };
        let mut rel = PathBuf::new();
        for c in Path::new(path).components() {
            match c {
                std::path::Component::Normal(n) => rel.push(n),
                std::path::Component::ParentDir if rel.pop() => {}
                std::path::Component::ParentDir => {
                    return Err(CgroupError::InvalidPath(format!(
                        "(exec --cgroup): {path} is not a sub cgroup path"
                    )))
                }
                _ => {}
            }
        }
        for c in ctrls {
            if c.is_empty() && a.contains(':') {
                return Err(CgroupError::InvalidPath(format!(
                    "(exec --cgroup): {a:?} names an empty controller"
                )));
            }
            out.insert(c.to_string(), rel.clone());
        }
    }
    Ok(out)
}

/// Writes `pid` into `dir/cgroup.procs` of an existing cgroup, with the errno's text (as in
/// "no such file or directory") in the error.
pub(crate) fn join_pid(dir: &Path, pid: i32) -> Result<(), CgroupError> {
    let path = dir.join("cgroup.procs");
    files::write_path(&path, &pid.to_string()).map_err(|e| match e {
        CgroupError::Write { source, .. } => {
            let errno = nix::errno::Errno::from_raw(source.raw_os_error().unwrap_or(0));
            let mut reason = errno.desc().to_string();
            if let Some(first) = reason.get(..1) {
                reason = first.to_ascii_lowercase() + &reason[1..];
            }
            CgroupError::Join { pid, path, reason }
        }
        e => e,
    })
}

/// Manager for `cgroups_path` (the OCI `linux.cgroupsPath`; when empty the caller passes
/// `/wharf-runtime/<id>`), using the host's cgroup mounts.
pub fn create_manager(cgroups_path: &Path) -> Result<Box<dyn CgroupManager>, CgroupError> {
    let path = CgroupPath::parse(cgroups_path)?;
    let own = layout::OwnCgroups::detect()?;
    Ok(match Layout::detect()? {
        Layout::Unified { root } => Box::new(V2Manager::from_layout(&root, &own, &path)),
        Layout::Legacy {
            controllers,
            unified,
        } => Box::new(V1Manager::from_layout(
            &controllers,
            unified.as_ref(),
            &own,
            &path,
        )),
    })
}
