//! Request bodies in Docker's JSON shapes. Clients send every field, mostly as zero values or
//! null, so everything is defaulted; what the engine does not support yet is found by
//! `HostConfig::unsupported` and refused with a 400 rather than silently ignored.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `Config` of a container (the top level of the create body).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    #[serde(deserialize_with = "null_as_default")]
    pub hostname: String,
    #[serde(deserialize_with = "null_as_default")]
    pub domainname: String,
    #[serde(deserialize_with = "null_as_default")]
    pub user: String,
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stdin: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stdout: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stderr: bool,
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(deserialize_with = "null_as_default")]
    pub tty: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub open_stdin: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub stdin_once: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub healthcheck: Option<Value>,
    pub args_escaped: Option<bool>,
    #[serde(deserialize_with = "null_as_default")]
    pub image: String,
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(deserialize_with = "null_as_default")]
    pub working_dir: String,
    pub entrypoint: Option<Vec<String>>,
    pub network_disabled: Option<bool>,
    pub mac_address: Option<String>,
    pub on_build: Option<Vec<String>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    pub shell: Option<Vec<String>>,
}

/// `HostConfig.LogConfig`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type", deserialize_with = "null_as_default")]
    pub kind: String,
    pub config: Option<BTreeMap<String, String>>,
}

/// `HostConfig.RestartPolicy`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub maximum_retry_count: i64,
}

/// `HostConfig.Ulimits[]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    pub name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub soft: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub hard: i64,
}

/// The parts of `HostConfig` the engine acts on. The raw object is kept beside it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    pub binds: Option<Vec<String>>,
    pub log_config: Option<LogConfig>,
    #[serde(deserialize_with = "null_as_default")]
    pub network_mode: String,
    pub restart_policy: Option<RestartPolicy>,
    #[serde(deserialize_with = "null_as_default")]
    pub auto_remove: bool,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub dns: Option<Vec<String>>,
    pub dns_options: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub extra_hosts: Option<Vec<String>>,
    pub group_add: Option<Vec<String>>,
    #[serde(deserialize_with = "null_as_default")]
    pub oom_score_adj: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub privileged: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub readonly_rootfs: bool,
    pub security_opt: Option<Vec<String>>,
    pub tmpfs: Option<BTreeMap<String, String>>,
    #[serde(deserialize_with = "null_as_default")]
    pub shm_size: i64,
    pub sysctls: Option<BTreeMap<String, String>>,
    pub runtime: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub cpu_shares: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub memory: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub nano_cpus: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub cpu_period: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub cpu_quota: i64,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub blkio_weight: u16,
    #[serde(deserialize_with = "null_as_default")]
    pub memory_reservation: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub memory_swap: i64,
    pub pids_limit: Option<i64>,
    pub ulimits: Option<Vec<Ulimit>>,
    pub init: Option<bool>,
    /// `--volumes-from`: `container[:ro|:rw]`.
    pub volumes_from: Option<Vec<String>>,
    /// `--mount`.
    pub mounts: Option<Vec<crate::mount::Mount>>,
    /// `--pid`, `--ipc`, `--uts`, `--cgroupns`: `host` shares the host's namespace.
    #[serde(deserialize_with = "null_as_default")]
    pub pid_mode: String,
    #[serde(deserialize_with = "null_as_default")]
    pub ipc_mode: String,
    #[serde(rename = "UTSMode", deserialize_with = "null_as_default")]
    pub uts_mode: String,
    #[serde(deserialize_with = "null_as_default")]
    pub cgroupns_mode: String,
    /// `--userns`: `host` opts out of the daemon's `--userns-remap`.
    #[serde(deserialize_with = "null_as_default")]
    pub userns_mode: String,
    /// `--device`.
    pub devices: Option<Vec<DeviceMapping>>,
    /// Paths masked / made read-only instead of Docker's defaults (`--security-opt
    /// systempaths=unconfined` sends empty lists); `None`: the defaults.
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    /// `-p`: `80/tcp` → its host bindings (`null` or `[]`: one on an ephemeral port).
    pub port_bindings: Option<BTreeMap<String, Option<Vec<PortBinding>>>>,
    /// `-P`.
    #[serde(deserialize_with = "null_as_default")]
    pub publish_all_ports: bool,
    /// `--link name[:alias]`.
    pub links: Option<Vec<String>>,
}

/// One host binding of `HostConfig.PortBindings`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    #[serde(rename = "HostIp", deserialize_with = "null_as_default")]
    pub host_ip: String,
    #[serde(deserialize_with = "null_as_default")]
    pub host_port: String,
}

/// `HostConfig.Devices[]`: a host device node made available in the container.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

/// The fields of a raw HostConfig that are set but not supported yet (see `crate::fields`).
pub fn unsupported_host_fields(raw: &Map<String, Value>) -> Vec<String> {
    crate::fields::refused_host_fields(raw)
}

/// The body of `POST /containers/create`.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    /// The raw objects, kept for inspect.
    pub raw_config: Map<String, Value>,
    pub raw_host_config: Map<String, Value>,
    pub networking_config: Value,
    /// The `platform` query (`os[/arch[/variant]]`): the image must be of it.
    pub platform: Option<String>,
}

impl CreateRequest {
    /// Parses a create body; a malformed body is a 400 naming the problem.
    pub fn parse(body: &[u8]) -> Result<CreateRequest, crate::ApiError> {
        let bad = |e: serde_json::Error| crate::ApiError::bad_request(format!("invalid JSON: {e}"));
        let mut raw: Map<String, Value> = serde_json::from_slice(body).map_err(bad)?;
        let host = match raw.remove("HostConfig") {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let net = raw.remove("NetworkingConfig").unwrap_or(Value::Null);
        let config: ContainerConfig =
            serde_json::from_value(Value::Object(raw.clone())).map_err(bad)?;
        let host_config: HostConfig =
            serde_json::from_value(Value::Object(host.clone())).map_err(bad)?;
        Ok(CreateRequest {
            config,
            host_config,
            raw_config: raw,
            raw_host_config: host,
            networking_config: net,
            platform: None,
        })
    }
}

/// The body of `POST /containers/{id}/exec`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stdin: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stdout: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub attach_stderr: bool,
    pub detach_keys: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub tty: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    #[serde(deserialize_with = "null_as_default")]
    pub privileged: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub user: String,
    #[serde(deserialize_with = "null_as_default")]
    pub working_dir: String,
    pub console_size: Option<Vec<u16>>,
}

/// The body of `POST /exec/{id}/start`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecStartConfig {
    #[serde(deserialize_with = "null_as_default")]
    pub detach: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub tty: bool,
    pub console_size: Option<Vec<u16>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_cli_create_body_parses() {
        // What docker 28 sends for `docker run --rm --network none busybox echo hi` (abridged
        // but with its null and zero values).
        let body =
            br#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,
          "AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,
          "Cmd":["echo","hi"],"Image":"busybox","Volumes":null,"WorkingDir":"","Entrypoint":null,
          "OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"",
          "LogConfig":{"Type":"","Config":{}},"NetworkMode":"none","PortBindings":{},
          "RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,"VolumeDriver":"",
          "VolumesFrom":null,"ConsoleSize":[24,80],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"",
          "Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"",
          "Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,
          "PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"",
          "UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,
          "CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],
          "CpuPeriod":0,"CpuQuota":0,"CpusetCpus":"","CpusetMems":"","Devices":[],
          "DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,
          "MemorySwappiness":null,"OomKillDisable":null,"PidsLimit":null,"Ulimits":[],
          "MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{}}}"#;
        let r = CreateRequest::parse(body).unwrap();
        assert_eq!(
            r.config.cmd.as_deref(),
            Some(&["echo".to_string(), "hi".to_string()][..])
        );
        assert_eq!(r.config.image, "busybox");
        assert!(r.host_config.auto_remove);
        assert_eq!(r.host_config.network_mode, "none");
        assert!(unsupported_host_fields(&r.raw_host_config).is_empty());
    }

    #[test]
    fn set_unsupported_fields_are_named() {
        let body =
            br#"{"Image":"x","HostConfig":{"Cgroup":"a","PidMode":"container:x","UTSMode":"container:x","Devices":[]}}"#;
        let r = CreateRequest::parse(body).unwrap();
        assert_eq!(
            unsupported_host_fields(&r.raw_host_config),
            vec!["Cgroup".to_string(), "UTSMode=container:x".to_string()]
        );
        assert!(CreateRequest::parse(b"{not json").is_err());
    }
}
