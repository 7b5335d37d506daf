//! A service's container as an Engine API `ContainerCreate` body, and its config hash.

use crate::labels;
use crate::model::{Project, Service, VolumeKind};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// `1m30s`, `500ms`, `2h`, `1.5s` → nanoseconds (Go's `time.ParseDuration`, as compose-go
/// reads durations).
pub fn parse_duration(s: &str) -> Option<i64> {
    wharf_api::units::go_duration(s.trim()).ok()
}

/// The hash compose keeps in `com.docker.compose.config-hash`: over the service's resolved
/// configuration, leaving out what compose v2's `ServiceHash` leaves out (`build`,
/// `pull_policy`, `scale`, `deploy.replicas`, `depends_on`, `profiles`: a rebuilt image is
/// seen by its id in `com.docker.compose.image`, not by the hash). Not v2's value: v2 hashes
/// compose-go's Go struct as `encoding/json` marshals it (docs/compatibility.md says why
/// that is out of reach).
pub fn config_hash(s: &Service) -> String {
    let mut s = s.clone();
    s.build = None;
    s.unsupported.remove("pull_policy");
    s.depends_on.clear();
    s.profiles.clear();
    s.scale = None;
    if let Some(d) = &mut s.deploy {
        d.replicas = None;
    }
    let text = serde_json::to_string(&s).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The name of a service's container `n`.
pub fn container_name(project: &str, service: &str, s: &Service, n: u32) -> String {
    match &s.container_name {
        Some(c) => c.clone(),
        None => format!("{project}-{service}-{n}"),
    }
}

/// The create body of container `n` of service `name`; the first network is joined at
/// create, the others by `connect` (see [`extra_networks`]).
/// `image_id` is the id of the image it runs, kept in `com.docker.compose.image` as compose v2
/// keeps it (a container of another image is recreated).
pub fn create_body(p: &Project, name: &str, s: &Service, n: u32, image_id: &str) -> Value {
    let cname = container_name(&p.name, name, s, n);
    let mut labels: Map<String, Value> = s
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let files = p
        .config_files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    for (k, v) in [
        (labels::PROJECT, p.name.clone()),
        (labels::SERVICE, name.to_string()),
        (labels::NUMBER, n.to_string()),
        (labels::CONFIG_HASH, config_hash(s)),
        (labels::ONEOFF, "False".to_string()),
        (labels::WORKING_DIR, p.working_dir.display().to_string()),
        (labels::CONFIG_FILES, files),
        (labels::VERSION, labels::COMPOSE_VERSION.to_string()),
        (labels::IMAGE, image_id.to_string()),
        (
            labels::DEPENDS_ON,
            s.depends_on
                .iter()
                .map(|(d, c)| {
                    format!(
                        "{d}:{}:{}",
                        serde_json::to_value(c.condition)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        c.restart
                    )
                })
                .collect::<Vec<_>>()
                .join(","),
        ),
    ] {
        labels.insert(k.to_string(), json!(v));
    }
    let env: Vec<String> = s
        .environment
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();
    let mut body = json!({
        "Image": s.image_name(&p.name, name),
        "Labels": labels,
        "Env": env,
        "AttachStdout": true,
        "AttachStderr": true,
    });
    if let Some(c) = &s.command {
        body["Cmd"] = json!(c);
    }
    if let Some(e) = &s.entrypoint {
        body["Entrypoint"] = json!(e);
    }
    if let Some(h) = &s.hostname {
        body["Hostname"] = json!(h);
    }
    if let Some(u) = &s.user {
        body["User"] = json!(u);
    }
    if let Some(w) = &s.working_dir {
        body["WorkingDir"] = json!(w);
    }
    if let Some(t) = s.tty {
        body["Tty"] = json!(t);
    }
    if let Some(i) = s.stdin_open {
        body["OpenStdin"] = json!(i);
    }
    if let Some(sig) = &s.stop_signal {
        body["StopSignal"] = json!(sig);
    }
    if let Some(g) = s.stop_grace_period.as_deref().and_then(parse_duration) {
        body["StopTimeout"] = json!(g / 1_000_000_000);
    }
    if let Some(h) = &s.healthcheck {
        let mut hc = Map::new();
        if h.disable {
            hc.insert("Test".into(), json!(["NONE"]));
        } else if let Some(t) = &h.test {
            hc.insert("Test".into(), json!(t));
        }
        for (k, v) in [
            ("Interval", &h.interval),
            ("Timeout", &h.timeout),
            ("StartPeriod", &h.start_period),
            ("StartInterval", &h.start_interval),
        ] {
            if let Some(d) = v.as_deref().and_then(parse_duration) {
                hc.insert(k.into(), json!(d));
            }
        }
        if let Some(r) = h.retries {
            hc.insert("Retries".into(), json!(r));
        }
        body["Healthcheck"] = Value::Object(hc);
    }
    let mut host = Map::new();
    let mut exposed = Map::new();
    let mut bindings: Map<String, Value> = Map::new();
    for port in &s.ports {
        let key = format!("{}/{}", port.target, port.protocol);
        exposed.insert(key.clone(), json!({}));
        let entry = bindings.entry(key).or_insert_with(|| json!([]));
        if let Value::Array(a) = entry {
            a.push(json!({"HostIp": port.host_ip.clone().unwrap_or_default(), "HostPort": port.published.clone().unwrap_or_default()}));
        }
    }
    if !exposed.is_empty() {
        body["ExposedPorts"] = Value::Object(exposed);
        host.insert("PortBindings".into(), Value::Object(bindings));
    }
    let mut mounts = Vec::new();
    for v in &s.volumes {
        let (kind, source) = match v.kind {
            VolumeKind::Volume => (
                "volume",
                v.source.as_ref().map(|src| {
                    p.volumes
                        .get(src)
                        .map_or(src.clone(), |vol| vol.name.clone())
                }),
            ),
            VolumeKind::Bind => ("bind", v.source.clone()),
            VolumeKind::Tmpfs => ("tmpfs", None),
        };
        let mut m = json!({"Type": kind, "Target": v.target, "ReadOnly": v.read_only});
        if let Some(src) = source {
            m["Source"] = json!(src);
        }
        if v.kind == VolumeKind::Bind {
            // compose v2 creates a missing bind source directory, as `-v` does.
            m["BindOptions"] = json!({"CreateMountpoint": true});
        }
        mounts.push(m);
    }
    if !mounts.is_empty() {
        host.insert("Mounts".into(), json!(mounts));
    }
    if let Some(r) = &s.restart {
        let (name, count) = match r.split_once(':') {
            Some((n, c)) => (n.to_string(), c.parse::<i64>().unwrap_or(0)),
            None => (r.clone(), 0),
        };
        host.insert(
            "RestartPolicy".into(),
            json!({"Name": name, "MaximumRetryCount": count}),
        );
    }
    if let Some(i) = s.init {
        host.insert("Init".into(), json!(i));
    }
    if let Some((net, cfg)) = s.networks.iter().next() {
        let engine_net = p.networks.get(net).map_or(net.clone(), |n| n.name.clone());
        host.insert("NetworkMode".into(), json!(engine_net));
        body["NetworkingConfig"] =
            json!({"EndpointsConfig": {engine_net: endpoint(name, &cname, cfg.as_ref())}});
    }
    body["HostConfig"] = Value::Object(host);
    body
}

/// The `EndpointConfig` of a service on a network: reachable by its service name, its
/// container name and its aliases.
pub fn endpoint(service: &str, cname: &str, cfg: Option<&crate::model::ServiceNetwork>) -> Value {
    let mut aliases = vec![cname.to_string(), service.to_string()];
    let mut e = json!({});
    if let Some(c) = cfg {
        aliases.extend(c.aliases.iter().cloned());
        if let Some(ip) = &c.ipv4_address {
            e["IPAMConfig"] = json!({"IPv4Address": ip});
        }
    }
    e["Aliases"] = json!(aliases);
    e
}

/// The networks after the first, with their engine names and endpoint configs.
pub fn extra_networks(p: &Project, name: &str, s: &Service, n: u32) -> Vec<(String, Value)> {
    let cname = container_name(&p.name, name, s, n);
    s.networks
        .iter()
        .skip(1)
        .map(|(net, cfg)| {
            let engine_net = p.networks.get(net).map_or(net.clone(), |n| n.name.clone());
            (engine_net, endpoint(name, &cname, cfg.as_ref()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Some(1_000_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration("0"), Some(0));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("1x"), None);
    }

    #[test]
    fn hash_ignores_scale_and_changes_with_config() {
        let mut a = Service {
            image: Some("x".into()),
            ..Default::default()
        };
        let h = config_hash(&a);
        a.scale = Some(3);
        assert_eq!(config_hash(&a), h);
        // As compose v2's ServiceHash: build, depends_on and profiles change no hash.
        a.build = Some(Default::default());
        a.profiles.push("p".into());
        a.depends_on.insert(
            "x".into(),
            crate::model::DependsOn {
                condition: crate::model::Condition::ServiceStarted,
                required: true,
                restart: false,
            },
        );
        assert_eq!(config_hash(&a), h);
        a.environment.insert("A".into(), Some("1".into()));
        assert_ne!(config_hash(&a), h);
    }
}
