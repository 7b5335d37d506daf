//! A container's state on disk, under `<root>/<id>/`: `state.json` (written atomically), the
//! `exec.fifo` that holds a created container's init until `start`, and a copy of the
//! bundle's config. The status is not stored: it is read from the kernel each time (is the
//! fifo there, is the init alive and the same process, is its cgroup frozen), as runc does.

use crate::error::{Context, Result, RuntimeError};
use crate::util;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The default state root of the binary.
pub const DEFAULT_ROOT: &str = "/run/wharf-runtime";

/// Lifecycle status, as the runtime spec names them (plus runc's `paused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What `state.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub id: String,
    /// Host pid of the container's init.
    pub pid: i32,
    /// Its start time in /proc/<pid>/stat, to recognise it.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: chrono::DateTime<chrono::Utc>,
    pub owner: String,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    /// The cgroup path given to the cgroup manager.
    pub cgroup_path: PathBuf,
}

/// The state JSON the `state` command prints (runc's shape).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OciState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty", default)]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// The OCI version we implement.
pub const OCI_VERSION: &str = "1.2.0";

/// Paths of one container's state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub dir: PathBuf,
}

impl StateDir {
    pub fn new(root: &Path, id: &str) -> StateDir {
        StateDir { dir: root.join(id) }
    }
    pub fn state_file(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn fifo(&self) -> PathBuf {
        self.dir.join("exec.fifo")
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    pub fn load(&self, id: &str) -> Result<Saved> {
        let path = self.state_file();
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RuntimeError::NotFound(id.to_string()))
            }
            Err(e) => return Err(e).ctx(|| format!("reading {}", path.display())),
        };
        serde_json::from_slice(&data).map_err(|e| {
            RuntimeError::Config(format!("corrupt state file {}: {e}", path.display()))
        })
    }

    pub fn save(&self, saved: &Saved) -> Result<()> {
        let data = serde_json::to_vec(saved).expect("state serializes");
        util::atomic_write(&self.state_file(), &data)
    }
}

impl Saved {
    /// Is the recorded init still the same live (not zombie) process?
    pub fn init_alive(&self) -> bool {
        if self.pid <= 0 {
            return false;
        }
        match util::pid_start_time(self.pid) {
            Some(t) if t == self.pid_start => util::pid_state(self.pid) != Some('Z'),
            _ => false,
        }
    }

    pub fn oci(&self, status: Status) -> OciState {
        OciState {
            oci_version: OCI_VERSION.into(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self
                .created
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            owner: self.owner.clone(),
            annotations: self.annotations.clone(),
        }
    }
}
