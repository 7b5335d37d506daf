//! Pod sandboxes and their containers as engine containers, so that they go through the
//! engine's one create/start/stop/remove path, are seen by `docker ps`, and survive a wharfd
//! restart as every container does (live restore).
//!
//! - A sandbox is a container of the pause image (`pause.rs`: the static wharf-init in its
//!   `--pause` mode, made locally, never pulled) that holds the pod's network namespace
//!   (`none`: loopback only, or the host's with hostNetwork), its IPC namespace (`shareable`,
//!   or the host's with hostIPC) and its hostname.
//! - A pod's container joins them: `NetworkMode container:<sandbox>` (net; hostname, hosts and
//!   resolv.conf copied from the sandbox), `IpcMode container:<sandbox>`, and `PidMode
//!   container:<sandbox>` for a pod-wide pid namespace (`host` for hostPID).
//! - What the CRI needs back (metadata, labels, annotations, the log path) is the request's
//!   config, kept as JSON in an engine label (`io.wharf.cri.config`) beside the kind and the
//!   sandbox id, so the engine's own record is the only state: nothing else to recover.

use crate::api;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use tonic::Status;
use wharf_engine::container::{Container, Record, Status as CStatus};
use wharf_engine::Engine;

pub const KIND: &str = "io.wharf.cri.kind";
pub const SANDBOX: &str = "io.wharf.cri.sandbox";
pub const CONFIG: &str = "io.wharf.cri.config";

/// Namespace modes of `NamespaceOption`.
const POD: i32 = 0;
const NODE: i32 = 2;

pub fn label<'a>(r: &'a Record, k: &str) -> Option<&'a str> {
    r.config.get("Labels")[k].as_str()
}

pub fn is_sandbox(r: &Record) -> bool {
    label(r, KIND) == Some("sandbox")
}

pub fn is_container(r: &Record) -> bool {
    label(r, KIND) == Some("container")
}

/// The CRI config stored with an engine container.
pub fn stored<T: serde::de::DeserializeOwned + Default>(r: &Record) -> T {
    label(r, CONFIG)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

/// RFC 3339 → Unix nanoseconds (0 for none, as the CRI reports an unset time).
pub fn nanos(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .and_then(|d| d.timestamp_nanos_opt())
        .filter(|n| *n > 0)
        .unwrap_or(0)
}

/// Docker names allow `[a-zA-Z0-9][a-zA-Z0-9_.-]*`: anything else becomes `-`.
fn name_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The engine's name of a sandbox, as dockershim named them: `k8s_POD_<pod>_<ns>_<uid>_<n>`.
pub fn sandbox_name(m: &api::PodSandboxMetadata) -> String {
    format!(
        "k8s_POD_{}_{}_{}_{}",
        name_part(&m.name),
        name_part(&m.namespace),
        name_part(&m.uid),
        m.attempt
    )
}

/// `k8s_<container>_<pod>_<ns>_<uid>_<n>`.
pub fn container_name(c: &api::ContainerMetadata, pod: &api::PodSandboxMetadata) -> String {
    format!(
        "k8s_{}_{}_{}_{}_{}",
        name_part(&c.name),
        name_part(&pod.name),
        name_part(&pod.namespace),
        name_part(&pod.uid),
        c.attempt
    )
}

fn labels(
    kind: &str,
    sandbox: Option<&str>,
    cri_labels: &HashMap<String, String>,
    config: String,
) -> Value {
    let mut l = serde_json::Map::new();
    for (k, v) in cri_labels {
        l.insert(k.clone(), json!(v));
    }
    l.insert(KIND.into(), json!(kind));
    if let Some(s) = sandbox {
        l.insert(SANDBOX.into(), json!(s));
    }
    l.insert(CONFIG.into(), json!(config));
    Value::Object(l)
}

fn ns_options(sc: Option<&api::LinuxSandboxSecurityContext>) -> Option<&api::NamespaceOption> {
    sc.and_then(|s| s.namespace_options.as_ref())
}

/// The engine's create body for a sandbox.
pub fn sandbox_body(cfg: &api::PodSandboxConfig, pause_image: &str) -> Result<Value, Status> {
    let sc = cfg.linux.as_ref().and_then(|l| l.security_context.as_ref());
    let ns = ns_options(sc);
    let host_net = ns.is_some_and(|n| n.network == NODE);
    let host_ipc = ns.is_some_and(|n| n.ipc == NODE);
    let host_pid = ns.is_some_and(|n| n.pid == NODE);
    let dns = cfg.dns_config.clone().unwrap_or_default();
    let config = serde_json::to_string(cfg).map_err(|e| Status::internal(e.to_string()))?;
    let mut hc = json!({
        "NetworkMode": if host_net { "host" } else { "none" },
        "IpcMode": if host_ipc { "host" } else { "shareable" },
        "PidMode": if host_pid { "host" } else { "" },
        "RestartPolicy": {"Name": "no"},
    });
    if !dns.servers.is_empty() {
        hc["Dns"] = json!(dns.servers);
    }
    if !dns.searches.is_empty() {
        hc["DnsSearch"] = json!(dns.searches);
    }
    if !dns.options.is_empty() {
        hc["DnsOptions"] = json!(dns.options);
    }
    if let Some(sysctls) = cfg
        .linux
        .as_ref()
        .map(|l| &l.sysctls)
        .filter(|s| !s.is_empty())
    {
        hc["Sysctls"] = json!(sysctls);
    }
    let mut body = json!({
        "Image": pause_image,
        "Labels": labels("sandbox", None, &cfg.labels, config),
        "HostConfig": hc,
    });
    if !host_net && !cfg.hostname.is_empty() {
        body["Hostname"] = json!(cfg.hostname);
    }
    Ok(body)
}

/// `User` for the engine from a security context: `uid[:gid]` or a name.
fn user(sc: &api::LinuxContainerSecurityContext) -> String {
    let group = sc.run_as_group.as_ref().map(|g| format!(":{}", g.value));
    match (&sc.run_as_user, sc.run_as_username.as_str()) {
        (Some(u), _) => format!("{}{}", u.value, group.unwrap_or_default()),
        (None, n) if !n.is_empty() => format!("{n}{}", group.unwrap_or_default()),
        _ => String::new(),
    }
}

/// `seccomp=` for a profile: unset or Unconfined is unconfined (as containerd's CRI),
/// RuntimeDefault the engine's default profile, Localhost the file's JSON.
fn seccomp(p: Option<&api::SecurityProfile>) -> Result<Option<String>, Status> {
    use api::security_profile::ProfileType;
    let Some(p) = p else {
        return Ok(Some("seccomp=unconfined".into()));
    };
    match ProfileType::try_from(p.profile_type) {
        Ok(ProfileType::RuntimeDefault) => Ok(None),
        Ok(ProfileType::Unconfined) => Ok(Some("seccomp=unconfined".into())),
        Ok(ProfileType::Localhost) => std::fs::read_to_string(&p.localhost_ref)
            .map(|j| Some(format!("seccomp={j}")))
            .map_err(|e| {
                Status::invalid_argument(format!("seccomp profile {}: {e}", p.localhost_ref))
            }),
        Err(_) => Err(Status::invalid_argument("unknown seccomp profile type")),
    }
}

/// The engine's create body for a container of the sandbox `sandbox_id`.
pub fn container_body(
    sandbox_id: &str,
    sandbox: &api::PodSandboxConfig,
    cfg: &api::ContainerConfig,
) -> Result<Value, Status> {
    let image = cfg
        .image
        .as_ref()
        .map(|i| i.image.as_str())
        .filter(|i| !i.is_empty())
        .ok_or_else(|| Status::invalid_argument("config.image is empty"))?;
    let lin = cfg.linux.clone().unwrap_or_default();
    let sc = lin.security_context.clone().unwrap_or_default();
    let r = lin.resources.clone().unwrap_or_default();
    let pod_ns = ns_options(
        sandbox
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref()),
    );
    let ns = sc.namespace_options.as_ref().or(pod_ns);
    let pid_mode = match ns.map(|n| n.pid) {
        Some(NODE) => "host".to_string(),
        Some(POD) => format!("container:{sandbox_id}"),
        _ => String::new(),
    };
    let ipc_mode = if ns.is_some_and(|n| n.ipc == NODE) {
        "host".to_string()
    } else {
        format!("container:{sandbox_id}")
    };
    let mut binds = Vec::new();
    for m in &cfg.mounts {
        if m.host_path.is_empty() || m.container_path.is_empty() {
            return Err(Status::invalid_argument(
                "a mount needs host_path and container_path (image mounts are not supported)",
            ));
        }
        let mut opts = vec![if m.readonly { "ro" } else { "rw" }];
        match m.propagation {
            1 => opts.push("rslave"),
            2 => opts.push("rshared"),
            _ => opts.push("rprivate"),
        }
        binds.push(format!(
            "{}:{}:{}",
            m.host_path,
            m.container_path,
            opts.join(",")
        ));
    }
    let mut security_opt = Vec::new();
    if sc.no_new_privs {
        security_opt.push("no-new-privileges".to_string());
    }
    if !sc.privileged {
        if let Some(s) = seccomp(sc.seccomp.as_ref())? {
            security_opt.push(s);
        }
    }
    let caps = sc.capabilities.clone().unwrap_or_default();
    let config = serde_json::to_string(cfg).map_err(|e| Status::internal(e.to_string()))?;
    let mut hc = json!({
        "NetworkMode": format!("container:{sandbox_id}"),
        "IpcMode": ipc_mode,
        "PidMode": pid_mode,
        "Binds": binds,
        "Privileged": sc.privileged,
        "ReadonlyRootfs": sc.readonly_rootfs,
        "CapAdd": caps.add_capabilities,
        "CapDrop": caps.drop_capabilities,
        "GroupAdd": sc.supplemental_groups.iter().map(|g| g.to_string()).collect::<Vec<_>>(),
        "SecurityOpt": security_opt,
        "CpuShares": r.cpu_shares,
        "CpuQuota": r.cpu_quota,
        "CpuPeriod": r.cpu_period,
        "Memory": r.memory_limit_in_bytes,
        "OomScoreAdj": r.oom_score_adj,
        "RestartPolicy": {"Name": "no"},
    });
    if r.memory_swap_limit_in_bytes > 0 {
        hc["MemorySwap"] = json!(r.memory_swap_limit_in_bytes);
    }
    if !r.cpuset_cpus.is_empty() {
        hc["CpusetCpus"] = json!(r.cpuset_cpus);
    }
    if !r.cpuset_mems.is_empty() {
        hc["CpusetMems"] = json!(r.cpuset_mems);
    }
    // The kubelet sends the paths to mask (empty with privileged or procMount: Unmasked).
    if !sc.privileged {
        hc["MaskedPaths"] = json!(sc.masked_paths);
        hc["ReadonlyPaths"] = json!(sc.readonly_paths);
    }
    let mut body = json!({
        "Image": image,
        "Env": cfg.envs.iter().map(|kv| format!("{}={}", kv.key, kv.value)).collect::<Vec<_>>(),
        "WorkingDir": cfg.working_dir,
        "User": user(&sc),
        "Tty": cfg.tty,
        "OpenStdin": cfg.stdin,
        "StdinOnce": cfg.stdin_once,
        "Labels": labels("container", Some(sandbox_id), &cfg.labels, config),
        "HostConfig": hc,
    });
    // The pod's hostname in each container's UTS namespace (the node's with hostNetwork).
    if pod_ns.is_some_and(|n| n.network == NODE) {
        body["HostConfig"]["UTSMode"] = json!("host");
    } else if !sandbox.hostname.is_empty() {
        body["Hostname"] = json!(sandbox.hostname);
    }
    if !cfg.command.is_empty() {
        body["Entrypoint"] = json!(cfg.command);
    }
    if !cfg.args.is_empty() {
        body["Cmd"] = json!(cfg.args);
    }
    Ok(body)
}

/// Creates an engine container from a create body.
pub async fn create(engine: &Arc<Engine>, name: String, body: &Value) -> Result<String, Status> {
    let bytes = serde_json::to_vec(body).expect("serializable");
    let req = wharf_api::types::CreateRequest::parse(&bytes).map_err(crate::status)?;
    let (id, _warnings) = engine
        .create(Some(name), req)
        .await
        .map_err(crate::status)?;
    Ok(id)
}

/// The CRI state of a sandbox: ready while its holder runs.
pub fn sandbox_state(r: &Record) -> i32 {
    if r.state.status.is_live() {
        api::PodSandboxState::SandboxReady as i32
    } else {
        api::PodSandboxState::SandboxNotready as i32
    }
}

/// The CRI state of a container.
pub fn container_state(r: &Record) -> i32 {
    use api::ContainerState as S;
    (match r.state.status {
        CStatus::Created => S::ContainerCreated,
        CStatus::Running | CStatus::Paused | CStatus::Restarting => S::ContainerRunning,
        CStatus::Exited | CStatus::Dead => S::ContainerExited,
        _ => S::ContainerUnknown,
    }) as i32
}

/// Every engine container that is a CRI object of this kind.
pub fn all(engine: &Engine, pred: fn(&Record) -> bool) -> Vec<(Arc<Container>, Record)> {
    engine
        .all()
        .into_iter()
        .map(|c| {
            let r = c.snapshot();
            (c, r)
        })
        .filter(|(_, r)| pred(r))
        .collect()
}

/// The sandbox `id` (a full or unique short id, as the kubelet may pass either).
pub fn sandbox(engine: &Engine, id: &str) -> Result<Option<(Arc<Container>, Record)>, Status> {
    lookup(engine, id, is_sandbox, "pod sandbox")
}

/// The container `id`.
pub fn container(engine: &Engine, id: &str) -> Result<Option<(Arc<Container>, Record)>, Status> {
    lookup(engine, id, is_container, "container")
}

fn lookup(
    engine: &Engine,
    id: &str,
    pred: fn(&Record) -> bool,
    what: &str,
) -> Result<Option<(Arc<Container>, Record)>, Status> {
    if id.is_empty() {
        return Err(Status::invalid_argument(format!("no {what} id given")));
    }
    let found: Vec<_> = all(engine, pred)
        .into_iter()
        .filter(|(_, r)| r.id.starts_with(id))
        .collect();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.into_iter().next()),
        _ => Err(Status::invalid_argument(format!(
            "{what} id {id} is ambiguous"
        ))),
    }
}

pub fn selector_matches(sel: &HashMap<String, String>, labels: &HashMap<String, String>) -> bool {
    sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The CRI's reason for a container that exited.
pub fn exit_reason(r: &Record) -> &'static str {
    if r.state.oom_killed {
        "OOMKilled"
    } else if r.state.exit_code == 0 {
        "Completed"
    } else {
        "Error"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(network: i32, pid: i32, ipc: i32) -> api::PodSandboxConfig {
        api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: "p/1".into(),
                uid: "u".into(),
                namespace: "ns".into(),
                attempt: 2,
            }),
            hostname: "h".into(),
            linux: Some(api::LinuxPodSandboxConfig {
                security_context: Some(api::LinuxSandboxSecurityContext {
                    namespace_options: Some(api::NamespaceOption {
                        network,
                        pid,
                        ipc,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn sandbox_namespaces_and_names() {
        let b = sandbox_body(&pod(POD, 1, POD), "pause").unwrap();
        assert_eq!(b["HostConfig"]["NetworkMode"], "none");
        assert_eq!(b["HostConfig"]["IpcMode"], "shareable");
        assert_eq!(b["Hostname"], "h");
        assert_eq!(b["Labels"][KIND], "sandbox");
        let back: api::PodSandboxConfig =
            serde_json::from_str(b["Labels"][CONFIG].as_str().unwrap()).unwrap();
        assert_eq!(back.metadata.unwrap().name, "p/1");
        let host = sandbox_body(&pod(NODE, NODE, NODE), "pause").unwrap();
        assert_eq!(host["HostConfig"]["NetworkMode"], "host");
        assert_eq!(host["HostConfig"]["IpcMode"], "host");
        assert_eq!(host["HostConfig"]["PidMode"], "host");
        assert!(host.get("Hostname").is_none());
        assert_eq!(
            sandbox_name(&pod(0, 0, 0).metadata.unwrap()),
            "k8s_POD_p-1_ns_u_2"
        );
    }

    #[test]
    fn container_security_context_and_resources() {
        let cfg = api::ContainerConfig {
            image: Some(api::ImageSpec {
                image: "busybox".into(),
                ..Default::default()
            }),
            command: vec!["sh".into()],
            args: vec!["-c".into(), "true".into()],
            mounts: vec![api::Mount {
                container_path: "/d".into(),
                host_path: "/h".into(),
                readonly: true,
                propagation: 1,
                ..Default::default()
            }],
            linux: Some(api::LinuxContainerConfig {
                resources: Some(api::LinuxContainerResources {
                    cpu_quota: 50_000,
                    cpu_period: 100_000,
                    memory_limit_in_bytes: 64 << 20,
                    cpuset_cpus: "0".into(),
                    ..Default::default()
                }),
                security_context: Some(api::LinuxContainerSecurityContext {
                    run_as_user: Some(api::Int64Value { value: 1000 }),
                    run_as_group: Some(api::Int64Value { value: 2000 }),
                    supplemental_groups: vec![3000],
                    no_new_privs: true,
                    readonly_rootfs: true,
                    capabilities: Some(api::Capability {
                        add_capabilities: vec!["NET_ADMIN".into()],
                        drop_capabilities: vec!["ALL".into()],
                        ..Default::default()
                    }),
                    masked_paths: vec!["/proc/kcore".into()],
                    seccomp: Some(api::SecurityProfile {
                        profile_type: api::security_profile::ProfileType::RuntimeDefault as i32,
                        localhost_ref: String::new(),
                    }),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        };
        let b = container_body("sb", &pod(POD, POD, POD), &cfg).unwrap();
        let hc = &b["HostConfig"];
        assert_eq!(hc["NetworkMode"], "container:sb");
        assert_eq!(hc["IpcMode"], "container:sb");
        assert_eq!(hc["PidMode"], "container:sb");
        assert_eq!(hc["Binds"], json!(["/h:/d:ro,rslave"]));
        assert_eq!(hc["CapAdd"], json!(["NET_ADMIN"]));
        assert_eq!(hc["CapDrop"], json!(["ALL"]));
        assert_eq!(hc["GroupAdd"], json!(["3000"]));
        // RuntimeDefault: the engine's default profile, so no seccomp= option.
        assert_eq!(hc["SecurityOpt"], json!(["no-new-privileges"]));
        assert_eq!(hc["ReadonlyRootfs"], true);
        assert_eq!(hc["MaskedPaths"], json!(["/proc/kcore"]));
        assert_eq!(hc["CpuQuota"], 50_000);
        assert_eq!(hc["Memory"], 64 << 20);
        assert_eq!(hc["CpusetCpus"], "0");
        assert_eq!(b["User"], "1000:2000");
        assert_eq!(b["Entrypoint"], json!(["sh"]));
        assert_eq!(b["Cmd"], json!(["-c", "true"]));
        assert_eq!(b["Hostname"], "h");
        assert_eq!(b["Labels"][SANDBOX], "sb");
        // Unset seccomp is unconfined; a container pid namespace of its own.
        let mut plain = cfg.clone();
        plain.linux = None;
        let b = container_body("sb", &pod(POD, 1, POD), &plain).unwrap();
        assert_eq!(
            b["HostConfig"]["SecurityOpt"],
            json!(["seccomp=unconfined"])
        );
        assert_eq!(b["HostConfig"]["PidMode"], "");
        // The engine takes the body as a create request.
        let bytes = serde_json::to_vec(&b).unwrap();
        let req = wharf_api::types::CreateRequest::parse(&bytes).unwrap();
        assert!(wharf_api::fields::refused_host_fields(&req.raw_host_config).is_empty());
        let mut no_image = cfg;
        no_image.image = None;
        assert!(container_body("sb", &pod(0, 0, 0), &no_image).is_err());
    }
}
