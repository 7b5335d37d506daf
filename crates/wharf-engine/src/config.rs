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
    /// Where networks created without `--subnet` get one (`default-address-pools`): (base
    /// CIDR, prefix length of each subnet); None for Docker's defaults.
    pub address_pools: Option<Vec<(String, u8)>>,
    /// `--userns-remap`: containers get a user namespace mapping their root to this range,
    /// and `data_root` is the `<uid>.<gid>` directory of the configured one.
    pub userns: Option<crate::userns::Remap>,
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
    /// Registries reached over plain HTTP or unverified TLS (`host[:port]` or a CIDR such as
    /// `10.0.0.0/8`), besides loopback ones (`--insecure-registry`, `insecure-registries`).
    pub insecure_registries: Vec<String>,
    /// Mirrors of docker.io, tried in order before it (`registry-mirrors`, `--registry-mirror`):
    /// `http://host[:port]` or `https://host[:port]`.
    pub registry_mirrors: Vec<String>,
    /// Layers one pull downloads at once (`max-concurrent-downloads`, default 3 as dockerd).
    pub max_concurrent_downloads: usize,
}

impl LiveConfig {
    /// Whether the registry `domain` is insecure by configuration.
    pub fn is_insecure_registry(&self, domain: &str) -> bool {
        let host = domain.rsplit_once(':').map_or(domain, |(h, _)| h);
        self.insecure_registries.iter().any(|r| {
            if r == domain || r == host {
                return true;
            }
            // A CIDR: the registry given by IPv4 address inside it.
            match (r.split_once('/'), host.parse::<std::net::Ipv4Addr>()) {
                (Some((net, bits)), Ok(ip)) => {
                    let (Ok(net), Ok(bits)) =
                        (net.parse::<std::net::Ipv4Addr>(), bits.parse::<u32>())
                    else {
                        return false;
                    };
                    let mask = if bits == 0 {
                        0
                    } else {
                        u32::MAX << (32 - bits.min(32))
                    };
                    u32::from(net) & mask == u32::from(ip) & mask
                }
                _ => false,
            }
        })
    }

    /// The binary of runtime `name` (or the default).
    pub fn runtime_path(&self, name: Option<&str>) -> Option<&PathBuf> {
        let n = name
            .filter(|n| !n.is_empty())
            .unwrap_or(&self.default_runtime);
        self.runtimes.get(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_registries_by_name_port_and_cidr() {
        let l = LiveConfig {
            debug: false,
            labels: vec![],
            runtimes: BTreeMap::new(),
            default_runtime: "wharf".into(),
            log_opts: BTreeMap::new(),
            insecure_registries: vec!["reg.lan:5000".into(), "build".into(), "10.1.0.0/16".into()],
            registry_mirrors: vec![],
            max_concurrent_downloads: 3,
        };
        assert!(l.is_insecure_registry("reg.lan:5000"));
        assert!(!l.is_insecure_registry("reg.lan:5001"));
        assert!(l.is_insecure_registry("build:443"));
        assert!(l.is_insecure_registry("10.1.200.3:5000"));
        assert!(!l.is_insecure_registry("10.2.0.1:5000"));
        assert!(!l.is_insecure_registry("docker.io"));
    }
}
