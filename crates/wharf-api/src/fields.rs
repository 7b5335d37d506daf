//! Every field of Docker's create request (`Config`, `HostConfig` with its `Resources`, and
//! the endpoints of `NetworkingConfig`, Engine API v1.50) and what wharf does with it. A field
//! is honoured, or refused by name when a request sets it, never silently dropped; the test in
//! `tests/fields.rs` walks the spec and fails on a field missing here.

use serde_json::{Map, Value};

/// What wharf does with a request field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldUse {
    /// Read and applied.
    Honoured,
    /// Not implemented: a request that sets it gets a 400 naming it.
    Refused,
    /// Acted on by the client only (the daemon has nothing to do), as with dockerd.
    ClientSide,
    /// Reported by the daemon in responses; ignored in requests, as dockerd ignores it.
    OutputOnly,
    /// Meaningful only for Windows containers; dockerd ignores it on Linux too.
    WindowsOnly,
}

use FieldUse::*;

/// `Config` (the top level of the create body).
pub const CONFIG_FIELDS: &[(&str, FieldUse)] = &[
    ("Hostname", Honoured),
    ("Domainname", Honoured),
    ("User", Honoured),
    ("AttachStdin", Honoured),
    ("AttachStdout", Honoured),
    ("AttachStderr", Honoured),
    ("ExposedPorts", Honoured),
    ("Tty", Honoured),
    ("OpenStdin", Honoured),
    ("StdinOnce", Honoured),
    ("Env", Honoured),
    ("Cmd", Honoured),
    ("Healthcheck", Honoured),
    ("ArgsEscaped", WindowsOnly),
    ("Image", Honoured),
    ("Volumes", Honoured),
    ("WorkingDir", Honoured),
    ("Entrypoint", Honoured),
    ("NetworkDisabled", Refused),
    ("MacAddress", Honoured),
    ("OnBuild", Honoured),
    ("Labels", Honoured),
    ("StopSignal", Honoured),
    ("StopTimeout", Honoured),
    ("Shell", Honoured),
];

/// `HostConfig`, including the `Resources` it embeds.
pub const HOST_CONFIG_FIELDS: &[(&str, FieldUse)] = &[
    // Resources
    ("CpuShares", Honoured),
    ("Memory", Honoured),
    ("CgroupParent", Refused),
    ("BlkioWeight", Honoured),
    ("BlkioWeightDevice", Refused),
    ("BlkioDeviceReadBps", Refused),
    ("BlkioDeviceWriteBps", Refused),
    ("BlkioDeviceReadIOps", Refused),
    ("BlkioDeviceWriteIOps", Refused),
    ("CpuPeriod", Honoured),
    ("CpuQuota", Honoured),
    ("CpuRealtimePeriod", Refused),
    ("CpuRealtimeRuntime", Refused),
    ("CpusetCpus", Honoured),
    ("CpusetMems", Honoured),
    ("Devices", Honoured),
    ("DeviceCgroupRules", Refused),
    ("DeviceRequests", Refused),
    ("KernelMemory", Refused),
    ("KernelMemoryTCP", Refused),
    ("MemoryReservation", Honoured),
    ("MemorySwap", Honoured),
    ("MemorySwappiness", Refused),
    ("NanoCpus", Honoured),
    ("OomKillDisable", Refused),
    ("Init", Honoured),
    ("PidsLimit", Honoured),
    ("Ulimits", Honoured),
    // Windows' (API docs); dockerd on Linux keeps it in the container's HostConfig, unused.
    ("CpuCount", WindowsOnly),
    ("CpuPercent", Refused),
    ("IOMaximumIOps", Refused),
    ("IOMaximumBandwidth", Refused),
    // HostConfig proper
    ("Binds", Honoured),
    ("ContainerIDFile", ClientSide),
    ("LogConfig", Honoured),
    ("NetworkMode", Honoured),
    ("PortBindings", Honoured),
    ("RestartPolicy", Honoured),
    ("AutoRemove", Honoured),
    ("VolumeDriver", Refused),
    ("VolumesFrom", Honoured),
    ("Mounts", Honoured),
    // The initial size of a `-t` container's terminal: the client resizes it after attach.
    ("ConsoleSize", ClientSide),
    ("Annotations", Refused),
    ("CapAdd", Honoured),
    ("CapDrop", Honoured),
    ("CgroupnsMode", Honoured),
    ("Dns", Honoured),
    ("DnsOptions", Honoured),
    ("DnsSearch", Honoured),
    ("ExtraHosts", Honoured),
    ("GroupAdd", Honoured),
    ("IpcMode", Honoured),
    ("Cgroup", Refused),
    ("Links", Honoured),
    ("OomScoreAdj", Honoured),
    ("PidMode", Honoured),
    ("Privileged", Honoured),
    ("PublishAllPorts", Honoured),
    ("ReadonlyRootfs", Honoured),
    ("SecurityOpt", Honoured),
    ("StorageOpt", Refused),
    ("Tmpfs", Honoured),
    ("UTSMode", Honoured),
    ("UsernsMode", Honoured),
    ("ShmSize", Honoured),
    ("Sysctls", Honoured),
    ("Runtime", Honoured),
    ("Isolation", Honoured),
    ("MaskedPaths", Honoured),
    ("ReadonlyPaths", Honoured),
];

/// An endpoint of `NetworkingConfig.EndpointsConfig` (`EndpointSettings`).
pub const ENDPOINT_FIELDS: &[(&str, FieldUse)] = &[
    ("IPAMConfig", Honoured),
    ("Links", Honoured),
    ("MacAddress", Honoured),
    ("Aliases", Honoured),
    ("DriverOpts", Refused),
    ("GwPriority", Refused),
    ("NetworkID", OutputOnly),
    ("EndpointID", OutputOnly),
    ("Gateway", OutputOnly),
    ("IPAddress", OutputOnly),
    ("IPPrefixLen", OutputOnly),
    ("IPv6Gateway", OutputOnly),
    ("GlobalIPv6Address", OutputOnly),
    ("GlobalIPv6PrefixLen", OutputOnly),
    ("DNSNames", OutputOnly),
];

/// `EndpointSettings.IPAMConfig`: the IPv4 and IPv6 addresses are implemented.
const IPAM_REFUSED: &[&str] = &["LinkLocalIPs"];

/// Whether a request value counts as set: clients send every field, mostly as zero values or
/// null (and `-1` for an unset `MemorySwappiness`).
fn is_set(key: &str, v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) if key == "MemorySwappiness" => n.as_i64() != Some(-1),
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn refused_in(raw: &Map<String, Value>, table: &[(&str, FieldUse)]) -> Vec<String> {
    table
        .iter()
        .filter(|(k, u)| *u == Refused && raw.get(*k).is_some_and(|v| is_set(k, v)))
        .map(|(k, _)| k.to_string())
        .collect()
}

/// The set fields of a raw `Config` that wharf refuses.
pub fn refused_config_fields(raw: &Map<String, Value>) -> Vec<String> {
    refused_in(raw, CONFIG_FIELDS)
}

/// The set fields of a raw `HostConfig` that wharf refuses, and modes it does not have.
pub fn refused_host_fields(raw: &Map<String, Value>) -> Vec<String> {
    let mut out = refused_in(raw, HOST_CONFIG_FIELDS);
    for (k, allowed) in [
        ("IpcMode", &["", "private", "shareable", "none", "host"][..]),
        ("PidMode", &["", "private", "host"][..]),
        ("UTSMode", &["", "private", "host"][..]),
        ("CgroupnsMode", &["", "private", "host"][..]),
        ("Isolation", &["", "default"][..]),
    ] {
        if let Some(Value::String(s)) = raw.get(k) {
            // `--ipc container:<x>` and `--pid container:<x>` join x's namespace.
            let joins = matches!(k, "IpcMode" | "PidMode")
                && s.strip_prefix("container:").is_some_and(|x| !x.is_empty());
            if !allowed.contains(&s.as_str()) && !joins {
                out.push(format!("{k}={s}"));
            }
        }
    }
    out
}

/// The set fields of the endpoints of a raw `NetworkingConfig` that wharf refuses, as
/// `<network>: <field>`.
pub fn refused_endpoint_fields(networking: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(eps) = networking["EndpointsConfig"].as_object() else {
        return out;
    };
    for (net, ep) in eps {
        let Some(ep) = ep.as_object() else { continue };
        for f in refused_in(ep, ENDPOINT_FIELDS) {
            out.push(format!("{net}: {f}"));
        }
        if let Some(ipam) = ep.get("IPAMConfig").and_then(Value::as_object) {
            for k in IPAM_REFUSED {
                if ipam.get(*k).is_some_and(|v| is_set(k, v)) {
                    out.push(format!("{net}: IPAMConfig.{k}"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn zero_values_are_not_set_and_set_values_are_named() {
        let raw = json!({"Links": null, "CpuCount": 0, "MemorySwappiness": -1,
                         "Annotations": {}, "StorageOpt": {"size": "1G"}, "OomKillDisable": false});
        assert_eq!(
            refused_host_fields(raw.as_object().unwrap()),
            ["StorageOpt"]
        );
        let raw = json!({"MemorySwappiness": 0, "PidMode": "container:", "IpcMode": "container:x"});
        assert_eq!(
            refused_host_fields(raw.as_object().unwrap()),
            ["MemorySwappiness", "PidMode=container:"]
        );
        let net = json!({"EndpointsConfig": {"n1": {"Aliases": ["a"], "Links": ["x:y"],
                          "DriverOpts": {"a": "b"},
                          "IPAMConfig": {"IPv4Address": "10.0.0.2", "IPv6Address": "fd00::2",
                                         "LinkLocalIPs": ["169.254.0.9"]}}}});
        assert_eq!(
            refused_endpoint_fields(&net),
            ["n1: DriverOpts", "n1: IPAMConfig.LinkLocalIPs"],
            "Links and IPv6Address are implemented (--link, --ip6)"
        );
        let cfg = json!({"NetworkDisabled": true, "MacAddress": "02:42:ac:11:00:09"});
        assert_eq!(
            refused_config_fields(cfg.as_object().unwrap()),
            ["NetworkDisabled"]
        );
    }
}
