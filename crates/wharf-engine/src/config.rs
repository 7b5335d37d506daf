//! The engine's configuration (from wharfd's flags and daemon.json).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where the engine keeps things and how it runs containers.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub shim_path: PathBuf,
    pub log_driver: String,
    /// Parent cgroup of every container (`--cgroup-parent`, default `/wharf`).
    pub cgroup_parent: String,
    /// The default bridge network (`None`: `--bridge none`).
    pub bridge: Option<wharf_net::BridgeConfig>,
    /// The init for `--init` (bind-mounted at /sbin/docker-init), if installed.
    pub init_path: Option<PathBuf>,
}

/// The options wharfd reloads on SIGHUP; the engine reads them through [`crate::Engine::live`]
/// so that a reload applies to everything that starts afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveConfig {
    /// `--debug` / `"debug"` (shown as `Debug` in `/info`).
    pub debug: bool,
    /// Daemon labels, `key=value` (`--label` / `"labels"`, shown in `/info`).
    pub labels: Vec<String>,
    /// Runtime name → OCI CLI binary.
    pub runtimes: BTreeMap<String, PathBuf>,
    pub default_runtime: String,
    /// Default options of the log driver.
    pub log_opts: BTreeMap<String, String>,
}

impl LiveConfig {
    /// The binary of runtime `name` (or the default).
    pub fn runtime_path(&self, name: Option<&str>) -> Option<&PathBuf> {
        let n = name
            .filter(|n| !n.is_empty())
            .unwrap_or(&self.default_runtime);
        self.runtimes.get(n)
    }
}
