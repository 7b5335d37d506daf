//! The compose model: typed structs for what wharf implements. Fields are in alphabetical
//! order of their YAML names, as `docker compose config` prints them. Keys of the spec that are
//! not implemented yet are kept by name in `unsupported` (printed by `config`, refused by
//! `up`); keys that are not in the spec are an error when loading; `x-*` extensions are kept.

use serde::Serialize;
use serde_yaml_ng::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Project {
    pub name: String,
    pub services: BTreeMap<String, Service>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, Network>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Volume>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, Secret>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, Secret>,
    /// The directory relative paths are resolved against.
    #[serde(skip)]
    pub working_dir: std::path::PathBuf,
    /// The files it was loaded from, absolute, in order.
    #[serde(skip)]
    pub config_files: Vec<std::path::PathBuf>,
    /// Services left out because none of their profiles is active.
    #[serde(skip)]
    pub disabled: BTreeMap<String, Service>,
}

impl Project {
    /// A project known only by its name (no file): its objects are found by their labels.
    pub fn by_name(name: String) -> Project {
        Project {
            name,
            ..Default::default()
        }
    }

    /// Whether it came from no file (see [`Project::by_name`]).
    pub fn is_by_name(&self) -> bool {
        self.config_files.is_empty()
    }
}

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Service {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Top-level configs mounted into its containers (`/<source>` by default).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<ServiceSecret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub depends_on: BTreeMap<String, DependsOn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub develop: Option<crate::watch::Develop>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `None`: the variable is passed from the environment only if set there (resolved by
    /// `load`, so `None` remains only for variables set nowhere).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Networks the service joins (`default` when none is named).
    pub networks: BTreeMap<String, Option<ServiceNetwork>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<u32>,
    /// Top-level secrets mounted into its containers (`/run/secrets/<source>` by default).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<ServiceSecret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdin_open: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tty: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<ServiceVolume>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Spec keys parsed but not implemented: `up` refuses them by name.
    #[serde(flatten)]
    pub unsupported: BTreeMap<String, Value>,
}

impl Service {
    /// How many containers the service runs (`deploy.replicas`, else `scale`, else 1).
    pub fn replicas(&self) -> u32 {
        self.deploy
            .as_ref()
            .and_then(|d| d.replicas)
            .or(self.scale)
            .unwrap_or(1)
    }

    /// The image its containers run: `image`, else the one `build` makes, named
    /// `<project>-<service>` as compose v2 names it.
    pub fn image_name(&self, project: &str, service: &str) -> String {
        match &self.image {
            Some(i) => i.clone(),
            None => format!("{project}-{service}"),
        }
    }
}

/// `build:` (the long form; the short form is its `context`).
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Build {
    /// Absolute after loading (a URL is kept as it is, and refused when building).
    pub context: String,
    /// Relative to the context (or absolute); `Dockerfile` when not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile_inline: Option<String>,
    /// `None`: from the environment when set there (resolved by `load`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, Option<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache_from: Vec<String>,
    /// `host:ip` entries, as `--add-host` takes them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_cache: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pull: bool,
    /// Top-level secrets the build may mount (`RUN --mount=type=secret,id=<target>`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<ServiceSecret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<String>,
    /// More names for the built image.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(flatten)]
    pub unsupported: BTreeMap<String, Value>,
}

/// A service's (or build's) use of a top-level secret or config: `source` is its key there.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct ServiceSecret {
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DependsOn {
    pub condition: Condition,
    pub required: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub restart: bool,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Deploy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    #[serde(flatten)]
    pub unsupported: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Healthcheck {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub disable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_period: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct ServiceNetwork {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Port {
    pub mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    pub target: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    pub protocol: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServiceVolume {
    #[serde(rename = "type")]
    pub kind: VolumeKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub target: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum VolumeKind {
    Volume,
    Bind,
    Tmpfs,
}

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Network {
    /// The engine's name of it (`<project>_<key>` unless given or external).
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(flatten)]
    pub unsupported: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Volume {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(flatten)]
    pub unsupported: BTreeMap<String, Value>,
}

/// A top-level secret or config: its content from a file, a variable of compose's environment
/// or (configs) inline.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Secret {
    pub name: String,
    /// Absolute after loading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    /// The value of `environment`'s variable, read when loading (`None` when unset).
    #[serde(skip)]
    pub env_value: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(flatten)]
    pub unsupported: BTreeMap<String, Value>,
}

/// Service keys of the compose spec that wharf parses but does not implement yet.
pub const SERVICE_SPEC_KEYS_UNSUPPORTED: &[&str] = &[
    "annotations",
    "attach",
    "blkio_config",
    "cap_add",
    "cap_drop",
    "cgroup",
    "cgroup_parent",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpus",
    "cpuset",
    "credential_spec",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "expose",
    "external_links",
    "extra_hosts",
    "gpus",
    "group_add",
    "ipc",
    "isolation",
    "links",
    "logging",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "network_mode",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "post_start",
    "pre_stop",
    "privileged",
    "provider",
    "pull_policy",
    "read_only",
    "runtime",
    "security_opt",
    "shm_size",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "ulimits",
    "userns_mode",
    "uts",
    "volumes_from",
    "models",
    "label_file",
    "use_api_socket",
];
