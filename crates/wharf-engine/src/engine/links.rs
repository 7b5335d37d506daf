//! Container links (`--link name[:alias]`), as dockerd has them.
//!
//! - On the default bridge (`HostConfig.Links`, the legacy form): each linked container must
//!   exist at create and run at start; the linking container gets `<ALIAS>_PORT_*`,
//!   `<ALIAS>_NAME` and `<ALIAS>_ENV_*` variables and an `/etc/hosts` line
//!   `<ip>\t<alias> <hostname> <name>` for it. Inspect shows the links as
//!   `/<child>:/<parent>/<alias>`.
//! - On a user-defined network (`EndpointSettings.Links`, which the docker CLI also sends
//!   for `--link` with `--network`): the alias is a DNS name of the linked container that
//!   only the linking container resolves (the embedded DNS server); `HostConfig.Links` is not
//!   used there, as dockerd ignores it.

use super::{internal, networking, Engine};
use crate::container::{Container, Record};
use serde_json::{json, Value};
use wharf_api::types::HostConfig;
use wharf_api::ApiError;

/// One link: the linked ("child") container's name and the alias it is known by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub alias: String,
}

/// Parses `name[:alias]` (leading `/` allowed on both); the alias defaults to the name.
pub fn parse_link(s: &str) -> Result<Link, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "invalid link {s:?}: use name[:alias], e.g. --link db:database"
        ))
    };
    let mut parts = s.split(':');
    let name = parts.next().unwrap_or_default().trim_start_matches('/');
    let alias = parts.next().map(|a| a.trim_start_matches('/'));
    if parts.next().is_some() || name.is_empty() || alias.is_some_and(str::is_empty) {
        return Err(bad());
    }
    // A `/child:/parent/alias` form (what inspect shows) keeps only the alias' last part.
    let alias = alias.map(|a| a.rsplit('/').next().unwrap_or(a));
    Ok(Link {
        name: name.to_string(),
        alias: alias.unwrap_or(name).to_string(),
    })
}

/// Parses a list of links (None or empty: none).
pub fn parse_links(links: Option<&[String]>) -> Result<Vec<Link>, ApiError> {
    links.into_iter().flatten().map(|l| parse_link(l)).collect()
}

/// Whether a network mode puts the container on the default bridge (where legacy links
/// apply).
fn on_default_bridge(mode: &str) -> bool {
    matches!(mode, "" | "default" | "bridge")
}

/// The environment a legacy link gives: `<ALIAS>_PORT` (the lowest exposed port),
/// `<ALIAS>_PORT_<port>_<PROTO>` with `_ADDR`, `_PORT` and `_PROTO` for every exposed port,
/// `<ALIAS>_NAME=/<parent>/<alias>`, and `<ALIAS>_ENV_<key>` for the child's variables but
/// HOME and PATH.
pub fn link_env(
    parent: &str,
    alias: &str,
    ip: &str,
    exposed: &[String],
    child_env: &[String],
) -> Vec<String> {
    let var = alias.to_ascii_uppercase().replace('-', "_");
    let mut ports: Vec<(u16, String)> = exposed
        .iter()
        .filter_map(|p| {
            let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            Some((port.parse().ok()?, proto.to_ascii_lowercase()))
        })
        .collect();
    ports.sort();
    ports.dedup();
    let mut env = Vec::new();
    if let Some((port, proto)) = ports.first() {
        env.push(format!("{var}_PORT={proto}://{ip}:{port}"));
    }
    for (port, proto) in &ports {
        let key = format!("{var}_PORT_{port}_{}", proto.to_ascii_uppercase());
        env.push(format!("{key}={proto}://{ip}:{port}"));
        env.push(format!("{key}_ADDR={ip}"));
        env.push(format!("{key}_PORT={port}"));
        env.push(format!("{key}_PROTO={proto}"));
    }
    env.push(format!(
        "{var}_NAME=/{}/{alias}",
        parent.trim_start_matches('/')
    ));
    for e in child_env {
        let Some((k, v)) = e.split_once('=') else {
            continue;
        };
        if k != "HOME" && k != "PATH" {
            env.push(format!("{var}_ENV_{k}={v}"));
        }
    }
    env
}

/// The file beside a container's `hosts` that lists the lines its links added at the last
/// start (removed again at the next).
const LINK_HOSTS: &str = "hosts.links";

impl Engine {
    /// At create: the legacy links of a container on the default bridge name existing
    /// containers that do not use the host's network; `host` and `container:` modes take no
    /// links. Returns what inspect shows (`/<child>:/<name>/<alias>`), or None.
    pub(super) fn check_links(&self, hc: &HostConfig) -> Result<Vec<Link>, ApiError> {
        let mode = hc.network_mode.as_str();
        let links = parse_links(hc.links.as_deref())?;
        if links.is_empty() {
            return Ok(links);
        }
        if mode == "host" {
            return Err(ApiError::bad_request(
                "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
            ));
        }
        if networking::container_mode(mode).is_some() {
            return Err(ApiError::bad_request(
                "conflicting options: container type network can't be used with links. This would result in undefined behavior",
            ));
        }
        if !on_default_bridge(mode) {
            // dockerd ignores HostConfig.Links on user-defined networks (the endpoint's
            // Links are the ones used there).
            return Ok(Vec::new());
        }
        for l in &links {
            let child = self.lookup(&l.name).map_err(|e| {
                ApiError::bad_request(format!(
                    "could not get container for {}: {}",
                    l.name, e.message
                ))
            })?;
            if child.with_record(|r| r.host_config.network_mode == "host") {
                return Err(ApiError::bad_request(
                    "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
                ));
            }
        }
        Ok(links)
    }

    /// `HostConfig.Links` as inspect shows it: `/<child>:/<parent>/<alias>` for the legacy
    /// links of a default-bridge container (also of a child since removed, as dockerd keeps
    /// them); null otherwise.
    pub(super) fn links_json(&self, r: &Record) -> Value {
        if !on_default_bridge(&r.host_config.network_mode) {
            return Value::Null;
        }
        let links: Vec<String> = parse_links(r.host_config.links.as_deref())
            .unwrap_or_default()
            .into_iter()
            .map(|l| {
                let child = self
                    .lookup(&l.name)
                    .map(|c| c.name())
                    .unwrap_or_else(|_| format!("/{}", l.name));
                format!("{child}:{}/{}", r.name, l.alias)
            })
            .collect();
        if links.is_empty() {
            Value::Null
        } else {
            json!(links)
        }
    }

    /// At start, for a default-bridge container: the environment of its links, after
    /// writing their `/etc/hosts` lines. A linked container that is not running (or was
    /// removed), or is not on the default bridge, fails the start, as in dockerd.
    pub(super) fn apply_links(&self, c: &Container, rec: &Record) -> Result<Vec<String>, ApiError> {
        let links = if on_default_bridge(&rec.host_config.network_mode) {
            parse_links(rec.host_config.links.as_deref())?
        } else {
            Vec::new()
        };
        let mut env = Vec::new();
        let mut lines = Vec::new();
        for l in &links {
            let not_running = |name: &str| {
                ApiError::internal(format!(
                    "Cannot link to a non running container: /{} AS {}/{}",
                    name.trim_start_matches('/'),
                    rec.name,
                    l.alias
                ))
            };
            let crec = self
                .lookup(&l.name)
                .map_err(|_| not_running(&l.name))?
                .snapshot();
            if !crec.state.status.is_live() {
                return Err(not_running(&crec.name));
            }
            let Some(ep) = crec
                .networks
                .iter()
                .find(|(_, a)| {
                    self.networks
                        .get(&a.network_id)
                        .is_ok_and(|n| n.default_bridge)
                })
                .and_then(|(n, _)| crec.endpoints.get(n))
            else {
                return Err(ApiError::internal(format!(
                    "container {} not attached to default bridge network",
                    crec.id
                )));
            };
            let exposed = networking::exposed_ports(&crec);
            let child_env = crec.config.env.clone().unwrap_or_default();
            env.extend(link_env(&rec.name, &l.alias, &ep.ip, &exposed, &child_env));
            let child_name = crec.name.trim_start_matches('/');
            let hostname = crec.config.hostname.as_str();
            let mut names = vec![l.alias.as_str()];
            if !hostname.is_empty() {
                names.push(hostname);
            }
            if child_name != l.alias {
                names.push(child_name);
            }
            lines.push(format!("{}\t{}", ep.ip, names.join(" ")));
        }
        self.write_link_hosts(c, &lines).map_err(internal)?;
        Ok(env)
    }

    /// Replaces the `/etc/hosts` lines of the last start's links by `lines` (in place: the
    /// file is bind-mounted into the container).
    fn write_link_hosts(&self, c: &Container, lines: &[String]) -> std::io::Result<()> {
        let hosts = c.dir.join("hosts");
        let record = c.dir.join(LINK_HOSTS);
        let old: Vec<String> = std::fs::read_to_string(&record)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect();
        if old.is_empty() && lines.is_empty() {
            return Ok(());
        }
        let content = std::fs::read_to_string(&hosts)?;
        let mut out: String = content
            .lines()
            .filter(|l| !old.iter().any(|o| o == l))
            .map(|l| format!("{l}\n"))
            .collect();
        for l in lines {
            out.push_str(l);
            out.push('\n');
        }
        std::fs::write(&hosts, out)?;
        crate::container::write_atomic(&record, lines.join("\n").as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_parse_as_docker_parses_them() {
        let l = |name: &str, alias: &str| Link {
            name: name.into(),
            alias: alias.into(),
        };
        assert_eq!(parse_link("db").unwrap(), l("db", "db"));
        assert_eq!(parse_link("db:database").unwrap(), l("db", "database"));
        assert_eq!(
            parse_link("/db:/web/database").unwrap(),
            l("db", "database")
        );
        for bad in ["", ":x", "db:", "a:b:c"] {
            let e = parse_link(bad).unwrap_err();
            assert!(e.message.contains("name[:alias]"), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn link_environment_is_dockers() {
        let env = link_env(
            "/web",
            "my-db",
            "172.17.0.5",
            &["6379/tcp".into(), "53/udp".into(), "80".into()],
            &[
                "PATH=/bin".into(),
                "PASSWORD=x=y".into(),
                "HOME=/root".into(),
            ],
        );
        assert_eq!(
            env,
            [
                "MY_DB_PORT=udp://172.17.0.5:53",
                "MY_DB_PORT_53_UDP=udp://172.17.0.5:53",
                "MY_DB_PORT_53_UDP_ADDR=172.17.0.5",
                "MY_DB_PORT_53_UDP_PORT=53",
                "MY_DB_PORT_53_UDP_PROTO=udp",
                "MY_DB_PORT_80_TCP=tcp://172.17.0.5:80",
                "MY_DB_PORT_80_TCP_ADDR=172.17.0.5",
                "MY_DB_PORT_80_TCP_PORT=80",
                "MY_DB_PORT_80_TCP_PROTO=tcp",
                "MY_DB_PORT_6379_TCP=tcp://172.17.0.5:6379",
                "MY_DB_PORT_6379_TCP_ADDR=172.17.0.5",
                "MY_DB_PORT_6379_TCP_PORT=6379",
                "MY_DB_PORT_6379_TCP_PROTO=tcp",
                "MY_DB_NAME=/web/my-db",
                "MY_DB_ENV_PASSWORD=x=y",
            ]
        );
    }
}
