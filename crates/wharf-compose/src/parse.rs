//! From a merged, interpolated YAML tree to the typed model, checking each key: the errors
//! name the file(s), the key path and what is wrong.

use crate::error::{invalid, Result};
use crate::model::*;
use crate::yaml::{key_str, scalar_str};
use serde_yaml_ng::{Mapping, Value};
use std::collections::BTreeMap;

/// Where errors point: the file(s) the tree came from.
pub struct Ctx<'a> {
    pub file: &'a str,
}

impl Ctx<'_> {
    pub(crate) fn err<T>(&self, key: &str, msg: impl Into<String>) -> Result<T> {
        Err(invalid(self.file, key, msg))
    }

    pub(crate) fn map<'v>(&self, v: &'v Value, key: &str) -> Result<&'v Mapping> {
        match v {
            Value::Mapping(m) => Ok(m),
            other => self.err(key, format!("must be a mapping, not {}", kind(other))),
        }
    }

    pub(crate) fn string(&self, v: &Value, key: &str) -> Result<String> {
        scalar_str(v).map_or_else(
            || self.err(key, format!("must be a string, not {}", kind(v))),
            Ok,
        )
    }

    pub(crate) fn boolean(&self, v: &Value, key: &str) -> Result<bool> {
        match v {
            Value::Bool(b) => Ok(*b),
            Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
            other => self.err(key, format!("must be a boolean, not {}", kind(other))),
        }
    }

    pub(crate) fn uint(&self, v: &Value, key: &str) -> Result<u64> {
        let s = self.string(v, key)?;
        s.parse()
            .or_else(|_| self.err(key, format!("must be a non-negative integer, not {s:?}")))
    }

    pub(crate) fn strings(&self, v: &Value, key: &str) -> Result<Vec<String>> {
        match v {
            Value::Sequence(s) => s
                .iter()
                .enumerate()
                .map(|(i, x)| self.string(x, &format!("{key}[{i}]")))
                .collect(),
            other => self.err(
                key,
                format!("must be a list of strings, not {}", kind(other)),
            ),
        }
    }

    /// A command: a list, or a string split as a shell splits words.
    pub(crate) fn command(&self, v: &Value, key: &str) -> Result<Option<Vec<String>>> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) => shell_words(s).map(Some).or_else(|m| self.err(key, m)),
            _ => self.strings(v, key).map(Some),
        }
    }

    pub(crate) fn string_map(&self, v: &Value, key: &str) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for (k, x) in self.map(v, key)? {
            let ks = key_str(k);
            let val = match x {
                Value::Null => String::new(),
                _ => self.string(x, &format!("{key}.{ks}"))?,
            };
            out.insert(ks, val);
        }
        Ok(out)
    }
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Splits a command string into words as a POSIX shell does (quotes and backslashes).
pub fn shell_words(s: &str) -> std::result::Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match it.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated single quote in {s:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match it.next() {
                        Some('"') => break,
                        Some('\\') => match it.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err(format!("unterminated double quote in {s:?}")),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated double quote in {s:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = it.next() {
                    cur.push(c);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Parses one (normalized) service.
pub fn service(cx: &Ctx, name: &str, v: &Value) -> Result<Service> {
    let base = format!("services.{name}");
    let m = cx.map(v, &base)?;
    let mut s = Service::default();
    for (k, x) in m {
        let ks = key_str(k);
        let key = format!("{base}.{ks}");
        match ks.as_str() {
            "image" => s.image = Some(cx.string(x, &key)?),
            "build" => s.build = Some(crate::build::parse(cx, &key, x)?),
            "develop" => s.develop = Some(crate::watch::parse(cx, &key, x, name)?),
            "secrets" | "configs" => {
                let Value::Sequence(seq) = x else {
                    return cx.err(&key, "must be a list");
                };
                let mut uses = Vec::new();
                for (i, u) in seq.iter().enumerate() {
                    uses.push(crate::build::service_secret(cx, &format!("{key}[{i}]"), u)?);
                }
                if ks == "secrets" {
                    s.secrets = uses;
                } else {
                    s.configs = uses;
                }
            }
            "command" => s.command = cx.command(x, &key)?,
            "entrypoint" => s.entrypoint = cx.command(x, &key)?,
            "container_name" => s.container_name = Some(cx.string(x, &key)?),
            "hostname" => s.hostname = Some(cx.string(x, &key)?),
            "user" => s.user = Some(cx.string(x, &key)?),
            "working_dir" => s.working_dir = Some(cx.string(x, &key)?),
            "restart" => {
                let r = cx.string(x, &key)?;
                let ok = matches!(
                    r.as_str(),
                    "no" | "always" | "unless-stopped" | "on-failure"
                ) || r
                    .strip_prefix("on-failure:")
                    .is_some_and(|n| n.parse::<u32>().is_ok());
                if !ok {
                    return cx.err(&key, format!("invalid restart policy {r:?}"));
                }
                s.restart = Some(r);
            }
            "stop_signal" => s.stop_signal = Some(cx.string(x, &key)?),
            "stop_grace_period" => s.stop_grace_period = Some(cx.string(x, &key)?),
            "init" => s.init = Some(cx.boolean(x, &key)?),
            "tty" => s.tty = Some(cx.boolean(x, &key)?),
            "stdin_open" => s.stdin_open = Some(cx.boolean(x, &key)?),
            "scale" => s.scale = Some(cx.uint(x, &key)? as u32),
            "profiles" => s.profiles = cx.strings(x, &key)?,
            "labels" => s.labels = cx.string_map(x, &key)?,
            "environment" => {
                for (ek, ev) in cx.map(x, &key)? {
                    let eks = key_str(ek);
                    let val = match ev {
                        Value::Null => None,
                        _ => Some(cx.string(ev, &format!("{key}.{eks}"))?),
                    };
                    s.environment.insert(eks, val);
                }
            }
            "env_file" => {} // read by load before parsing
            "depends_on" => {
                for (dk, dv) in cx.map(x, &key)? {
                    let dks = key_str(dk);
                    s.depends_on
                        .insert(dks.clone(), depends_on(cx, &format!("{key}.{dks}"), dv)?);
                }
            }
            "networks" => {
                for (nk, nv) in cx.map(x, &key)? {
                    let nks = key_str(nk);
                    let nkey = format!("{key}.{nks}");
                    let sn = match nv {
                        Value::Null => None,
                        _ => {
                            let mut sn = ServiceNetwork::default();
                            for (a, av) in cx.map(nv, &nkey)? {
                                let aks = key_str(a);
                                match aks.as_str() {
                                    "aliases" => {
                                        sn.aliases = cx.strings(av, &format!("{nkey}.aliases"))?
                                    }
                                    "ipv4_address" => {
                                        sn.ipv4_address =
                                            Some(cx.string(av, &format!("{nkey}.ipv4_address"))?)
                                    }
                                    "ipv6_address" | "link_local_ips" | "mac_address"
                                    | "driver_opts" | "priority" | "gw_priority"
                                    | "interface_name" => {
                                        return cx.err(
                                            &format!("{nkey}.{aks}"),
                                            "is not supported by wharf compose yet",
                                        );
                                    }
                                    _ => {
                                        return cx.err(
                                            &nkey,
                                            format!("additional property {aks} is not allowed"),
                                        )
                                    }
                                }
                            }
                            Some(sn)
                        }
                    };
                    s.networks.insert(nks, sn);
                }
            }
            "ports" => {
                let Value::Sequence(seq) = x else {
                    return cx.err(&key, "must be a list");
                };
                for (i, p) in seq.iter().enumerate() {
                    s.ports.extend(port(cx, &format!("{key}[{i}]"), p)?);
                }
            }
            "volumes" => {
                let Value::Sequence(seq) = x else {
                    return cx.err(&key, "must be a list");
                };
                for (i, p) in seq.iter().enumerate() {
                    s.volumes.push(volume(cx, &format!("{key}[{i}]"), p)?);
                }
            }
            "deploy" => {
                let mut d = Deploy::default();
                for (dk, dv) in cx.map(x, &key)? {
                    let dks = key_str(dk);
                    match dks.as_str() {
                        "replicas" => {
                            d.replicas = Some(cx.uint(dv, &format!("{key}.replicas"))? as u32)
                        }
                        "mode" | "endpoint_mode" | "labels" | "resources" | "restart_policy"
                        | "rollback_config" | "update_config" | "placement" => {
                            d.unsupported.insert(dks, dv.clone());
                        }
                        _ => {
                            return cx
                                .err(&key, format!("additional property {dks} is not allowed"))
                        }
                    }
                }
                s.deploy = Some(d);
            }
            "healthcheck" => s.healthcheck = Some(healthcheck(cx, &key, x)?),
            "extends" => {} // resolved by load
            k if k.starts_with("x-") => {}
            k if SERVICE_SPEC_KEYS_UNSUPPORTED.contains(&k) => {
                s.unsupported.insert(ks.clone(), x.clone());
            }
            _ => return cx.err(&base, format!("additional property {ks} is not allowed")),
        }
    }
    if s.image.is_none() && s.build.is_none() {
        return cx.err(&base, "has neither an image nor a build context specified");
    }
    Ok(s)
}

fn depends_on(cx: &Ctx, key: &str, v: &Value) -> Result<DependsOn> {
    let mut d = DependsOn {
        condition: Condition::ServiceStarted,
        required: true,
        restart: false,
    };
    if matches!(v, Value::Null) {
        return Ok(d);
    }
    for (k, x) in cx.map(v, key)? {
        let ks = key_str(k);
        let sub = format!("{key}.{ks}");
        match ks.as_str() {
            "condition" => {
                d.condition = match cx.string(x, &sub)?.as_str() {
                    "service_started" => Condition::ServiceStarted,
                    "service_healthy" => Condition::ServiceHealthy,
                    "service_completed_successfully" => Condition::ServiceCompletedSuccessfully,
                    other => return cx.err(&sub, format!("invalid condition {other:?}: must be service_started, service_healthy or service_completed_successfully")),
                }
            }
            "required" => d.required = cx.boolean(x, &sub)?,
            "restart" => d.restart = cx.boolean(x, &sub)?,
            _ => return cx.err(key, format!("additional property {ks} is not allowed")),
        }
    }
    Ok(d)
}

fn healthcheck(cx: &Ctx, key: &str, v: &Value) -> Result<Healthcheck> {
    let mut h = Healthcheck::default();
    for (k, x) in cx.map(v, key)? {
        let ks = key_str(k);
        let sub = format!("{key}.{ks}");
        match ks.as_str() {
            "test" => {
                h.test = Some(match x {
                    Value::String(s) => vec!["CMD-SHELL".to_string(), s.clone()],
                    _ => cx.strings(x, &sub)?,
                })
            }
            "interval" => h.interval = Some(cx.string(x, &sub)?),
            "timeout" => h.timeout = Some(cx.string(x, &sub)?),
            "start_period" => h.start_period = Some(cx.string(x, &sub)?),
            "start_interval" => h.start_interval = Some(cx.string(x, &sub)?),
            "retries" => h.retries = Some(cx.uint(x, &sub)?),
            "disable" => h.disable = cx.boolean(x, &sub)?,
            _ => return cx.err(key, format!("additional property {ks} is not allowed")),
        }
    }
    Ok(h)
}

/// `"8080:80/tcp"`, `"127.0.0.1:8080:80"`, `"80"`, `"8000-8001:80-81"`, or the long syntax.
fn port(cx: &Ctx, key: &str, v: &Value) -> Result<Vec<Port>> {
    if let Value::Mapping(m) = v {
        let mut p = Port {
            mode: "ingress".into(),
            host_ip: None,
            target: 0,
            published: None,
            protocol: "tcp".into(),
        };
        for (k, x) in m {
            let ks = key_str(k);
            let sub = format!("{key}.{ks}");
            match ks.as_str() {
                "target" => p.target = cx.uint(x, &sub)? as u16,
                "published" => p.published = Some(cx.string(x, &sub)?),
                "protocol" => p.protocol = cx.string(x, &sub)?,
                "host_ip" => p.host_ip = Some(cx.string(x, &sub)?),
                "mode" => p.mode = cx.string(x, &sub)?,
                "name" | "app_protocol" => {}
                _ => return cx.err(key, format!("additional property {ks} is not allowed")),
            }
        }
        return Ok(vec![p]);
    }
    let s = cx.string(v, key)?;
    let (spec, protocol) = match s.rsplit_once('/') {
        Some((a, p)) => (a.to_string(), p.to_string()),
        None => (s.clone(), "tcp".to_string()),
    };
    let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    let (host_ip, published, target) = match parts.as_slice() {
        [t] => (None, None, *t),
        [t, p] => (None, Some(*p), *t),
        [t, p, ip] => (Some(ip.trim_matches(['[', ']']).to_string()), Some(*p), *t),
        _ => return cx.err(key, format!("invalid port {s:?}")),
    };
    let range = |r: &str| -> Option<(u16, u16)> {
        match r.split_once('-') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => r.parse().ok().map(|x| (x, x)),
        }
    };
    let Some((t0, t1)) = range(target) else {
        return cx.err(key, format!("invalid port {s:?}"));
    };
    let published = published.filter(|p| !p.is_empty());
    let pub_range = match published {
        Some(p) => {
            Some(range(p).ok_or_else(|| invalid(cx.file, key, format!("invalid port {s:?}")))?)
        }
        None => None,
    };
    let mut out = Vec::new();
    for (i, t) in (t0..=t1).enumerate() {
        let published = match pub_range {
            Some((p0, p1)) if p1 - p0 == t1 - t0 => Some((p0 + i as u16).to_string()),
            Some((p0, p1)) if p0 == p1 => Some(p0.to_string()),
            Some((p0, p1)) => Some(format!("{p0}-{p1}")),
            None => None,
        };
        out.push(Port {
            mode: "ingress".into(),
            host_ip: host_ip.clone(),
            target: t,
            published,
            protocol: protocol.clone(),
        });
    }
    Ok(out)
}

/// `"name:/path[:ro]"`, `"./dir:/path"`, `"/path"`, or the long syntax.
fn volume(cx: &Ctx, key: &str, v: &Value) -> Result<ServiceVolume> {
    if let Value::Mapping(m) = v {
        let mut sv = ServiceVolume {
            kind: VolumeKind::Volume,
            source: None,
            target: String::new(),
            read_only: false,
        };
        for (k, x) in m {
            let ks = key_str(k);
            let sub = format!("{key}.{ks}");
            match ks.as_str() {
                "type" => {
                    sv.kind = match cx.string(x, &sub)?.as_str() {
                        "volume" => VolumeKind::Volume,
                        "bind" => VolumeKind::Bind,
                        "tmpfs" => VolumeKind::Tmpfs,
                        other => {
                            return cx.err(
                                &sub,
                                format!(
                                    "volume type {other:?} is not supported by wharf compose yet"
                                ),
                            )
                        }
                    }
                }
                "source" => sv.source = Some(cx.string(x, &sub)?),
                "target" => sv.target = cx.string(x, &sub)?,
                "read_only" => sv.read_only = cx.boolean(x, &sub)?,
                "bind" | "volume" | "tmpfs" | "consistency" | "image" => {
                    return cx.err(&sub, "is not supported by wharf compose yet");
                }
                _ => return cx.err(key, format!("additional property {ks} is not allowed")),
            }
        }
        if sv.target.is_empty() {
            return cx.err(key, "a volume needs a target");
        }
        return Ok(sv);
    }
    let s = cx.string(v, key)?;
    let parts: Vec<&str> = s.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [src, t] => (Some(*src), *t, None),
        [src, t, m] => (Some(*src), *t, Some(*m)),
        _ => return cx.err(key, format!("invalid volume {s:?}")),
    };
    let read_only = match mode {
        None => false,
        Some(m) => {
            let mut ro = false;
            for o in m.split(',') {
                match o {
                    "ro" => ro = true,
                    "rw" => {}
                    other => {
                        return cx.err(
                            key,
                            format!("volume mode {other:?} is not supported by wharf compose yet"),
                        )
                    }
                }
            }
            ro
        }
    };
    let kind = match source {
        Some(src) if src.starts_with(['.', '/', '~']) => VolumeKind::Bind,
        _ => VolumeKind::Volume,
    };
    Ok(ServiceVolume {
        kind,
        source: source.map(str::to_string),
        target: target.to_string(),
        read_only,
    })
}

/// A top-level `networks` or `volumes` entry (a volume takes the fields it shares with a
/// network; `internal` is accepted for networks only).
pub fn resource(cx: &Ctx, section: &str, name: &str, v: &Value, project: &str) -> Result<Network> {
    let key = format!("{section}.{name}");
    let mut given_name = None;
    let mut driver = None;
    let mut opts = BTreeMap::new();
    let mut external = false;
    let mut internal = false;
    let mut labels = BTreeMap::new();
    let mut unsupported = BTreeMap::new();
    if !matches!(v, Value::Null) {
        for (k, x) in cx.map(v, &key)? {
            let ks = key_str(k);
            let sub = format!("{key}.{ks}");
            match ks.as_str() {
                "name" => given_name = Some(cx.string(x, &sub)?),
                "driver" => driver = Some(cx.string(x, &sub)?),
                "driver_opts" => opts = cx.string_map(x, &sub)?,
                "labels" => {
                    labels = match x {
                        Value::Sequence(seq) => seq
                            .iter()
                            .filter_map(scalar_str)
                            .map(|l| match l.split_once('=') {
                                Some((a, b)) => (a.to_string(), b.to_string()),
                                None => (l, String::new()),
                            })
                            .collect(),
                        _ => cx.string_map(x, &sub)?,
                    }
                }
                "external" => {
                    external = match x {
                        Value::Mapping(_) => true,
                        _ => cx.boolean(x, &sub)?,
                    }
                }
                "internal" if section == "networks" => internal = cx.boolean(x, &sub)?,
                "ipam" | "enable_ipv6" | "enable_ipv4" | "attachable" if section == "networks" => {
                    unsupported.insert(ks, x.clone());
                }
                k if k.starts_with("x-") => {}
                _ => return cx.err(&key, format!("additional property {ks} is not allowed")),
            }
        }
    }
    let engine_name = match (given_name, external) {
        (Some(n), _) => n,
        (None, true) => name.to_string(),
        (None, false) => format!("{project}_{name}"),
    };
    Ok(Network {
        name: engine_name,
        driver,
        driver_opts: opts,
        external,
        internal,
        labels,
        unsupported,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(yaml: &str) -> Result<Service> {
        let v: Value = serde_yaml_ng::from_str(yaml).unwrap();
        let v = crate::merge::normalize_service(v);
        service(
            &Ctx {
                file: "compose.yaml",
            },
            "web",
            &v,
        )
    }

    #[test]
    fn shell_words_like_a_shell() {
        assert_eq!(
            shell_words("sh -c 'echo a  b' \"x\\\"y\" z\\ w").unwrap(),
            ["sh", "-c", "echo a  b", "x\"y", "z w"]
        );
        assert!(shell_words("echo 'open").is_err());
        assert_eq!(shell_words("a ''").unwrap(), ["a", ""]);
    }

    #[test]
    fn short_syntaxes() {
        let s = svc("image: busybox\ncommand: sleep 1\nenvironment: [A=1, B]\ndepends_on: [db]\nports: ['8080:80', '127.0.0.1:53:53/udp', '9000-9001:90-91', '22']\nvolumes: ['data:/d:ro', './src:/src', '/anon']\n").unwrap();
        assert_eq!(s.command.unwrap(), ["sleep", "1"]);
        assert_eq!(s.environment["A"], Some("1".into()));
        assert_eq!(s.environment["B"], None);
        assert_eq!(s.depends_on["db"].condition, Condition::ServiceStarted);
        assert!(s.depends_on["db"].required);
        let ports: Vec<(u16, Option<&str>, &str)> = s
            .ports
            .iter()
            .map(|p| (p.target, p.published.as_deref(), p.protocol.as_str()))
            .collect();
        assert_eq!(
            ports,
            [
                (80, Some("8080"), "tcp"),
                (53, Some("53"), "udp"),
                (90, Some("9000"), "tcp"),
                (91, Some("9001"), "tcp"),
                (22, None, "tcp")
            ]
        );
        assert_eq!(s.ports[1].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(
            s.volumes[0],
            ServiceVolume {
                kind: VolumeKind::Volume,
                source: Some("data".into()),
                target: "/d".into(),
                read_only: true
            }
        );
        assert_eq!(s.volumes[1].kind, VolumeKind::Bind);
        assert_eq!(s.volumes[2].source, None);
    }

    #[test]
    fn errors_name_the_key() {
        let e = svc("image: busybox\nbogus: 1\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "compose.yaml: services.web: additional property bogus is not allowed"
        );
        let e = svc("image: busybox\ndepends_on: {db: {condition: started}}\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("compose.yaml: services.web.depends_on.db.condition: invalid condition"),
            "{e}"
        );
        let e = svc("image: [x]\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "compose.yaml: services.web.image: must be a string, not a list"
        );
        let e = svc("command: x\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "compose.yaml: services.web: has neither an image nor a build context specified"
        );
        let e = svc("image: b\nrestart: sometimes\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "compose.yaml: services.web.restart: invalid restart policy \"sometimes\""
        );
    }

    #[test]
    fn spec_keys_not_implemented_are_kept_by_name() {
        let s = svc(
            "image: b\ncap_add: [NET_ADMIN]\nx-mine: 1\ndeploy: {replicas: 3, resources: {}}\n",
        )
        .unwrap();
        assert!(s.unsupported.contains_key("cap_add"));
        assert!(!s.unsupported.contains_key("x-mine"));
        assert_eq!(s.replicas(), 3);
        assert!(s.deploy.unwrap().unsupported.contains_key("resources"));
    }

    #[test]
    fn healthcheck_string_test_is_cmd_shell() {
        let s = svc("image: b\nhealthcheck: {test: 'true', interval: 1s, retries: 3}\n").unwrap();
        let h = s.healthcheck.unwrap();
        assert_eq!(h.test.unwrap(), ["CMD-SHELL", "true"]);
        assert_eq!(h.retries, Some(3));
    }
}
