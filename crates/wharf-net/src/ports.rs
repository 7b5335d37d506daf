//! Published ports: what `-p`/`-P` ask for, and the host ports they get.
//!
//! A published port is a DNAT rule (see `firewall`), not a userland proxy: rules keep
//! working while wharfd is down or restarting (live restore), cost no process or socket per
//! port, and keep the client's source address. The host's own loopback is reached the same
//! way: the DNAT rule also hooks OUTPUT, the bridge gets `route_localnet=1` so the kernel
//! routes a packet from 127.0.0.1 out of it, and `P-POST` masquerades such packets to the
//! bridge address so the container's reply comes back. Unlike docker-proxy, nothing
//! listens on the host port, so wharf checks that no host socket holds it before using it.

use crate::NetError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// `tcp` or `udp`.
    pub proto: String,
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
}

/// One request of `PortBindings` (`80/tcp` → `[{HostIp, HostPort}]`); `host_port` 0 means
/// an ephemeral port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    pub proto: String,
    pub container_port: u16,
    pub host_ip: Ipv4Addr,
    /// First and last acceptable host port (a range from `-p 8000-8010:80`); (0, 0) for any.
    pub host_ports: (u16, u16),
}

/// `80/tcp` → (80, "tcp").
pub fn parse_port_proto(s: &str) -> Result<(u16, String), NetError> {
    let (p, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp") {
        return Err(NetError::Invalid(format!(
            "unsupported protocol {proto:?} in port {s:?} (tcp, udp)"
        )));
    }
    let port: u16 = p
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| NetError::Invalid(format!("invalid port {s:?}")))?;
    Ok((port, proto))
}

/// The requests of a HostConfig's `PortBindings` plus, with `publish_all` (`-P`), an
/// ephemeral one for every exposed port that has no binding.
pub fn requests(
    bindings: Option<&serde_json::Map<String, serde_json::Value>>,
    exposed: &[String],
    publish_all: bool,
) -> Result<Vec<PortRequest>, NetError> {
    let mut out = Vec::new();
    let mut bound: Vec<String> = Vec::new();
    for (key, list) in bindings.into_iter().flatten() {
        let (container_port, proto) = parse_port_proto(key)?;
        bound.push(format!("{container_port}/{proto}"));
        let entries = list.as_array().cloned().unwrap_or_default();
        let entries = if entries.is_empty() {
            vec![serde_json::Value::Null]
        } else {
            entries
        };
        for e in entries {
            let ip = e["HostIp"].as_str().unwrap_or_default();
            let host_ip: Ipv4Addr = if ip.is_empty() {
                Ipv4Addr::UNSPECIFIED
            } else {
                ip.parse().map_err(|_| {
                    NetError::Invalid(format!("invalid host address {ip:?} for port {key}"))
                })?
            };
            let hp = e["HostPort"].as_str().unwrap_or_default();
            let host_ports = if hp.is_empty() {
                (0, 0)
            } else {
                let (a, b) = hp.split_once('-').unwrap_or((hp, hp));
                let bad = || NetError::Invalid(format!("invalid host port {hp:?}"));
                let a: u16 = a.parse().map_err(|_| bad())?;
                let b: u16 = b.parse().map_err(|_| bad())?;
                if a == 0 || b < a {
                    return Err(bad());
                }
                (a, b)
            };
            out.push(PortRequest {
                proto: proto.clone(),
                container_port,
                host_ip,
                host_ports,
            });
        }
    }
    if publish_all {
        for e in exposed {
            let (container_port, proto) = parse_port_proto(e)?;
            if !bound.contains(&format!("{container_port}/{proto}")) {
                out.push(PortRequest {
                    proto,
                    container_port,
                    host_ip: Ipv4Addr::UNSPECIFIED,
                    host_ports: (0, 0),
                });
            }
        }
    }
    Ok(out)
}

/// Host ports in use by containers: (proto, host port) → holders' host addresses.
#[derive(Debug, Default)]
pub struct PortTable {
    used: BTreeMap<(String, u16), Vec<(Ipv4Addr, String)>>,
    next_ephemeral: u16,
}

/// Docker's default ephemeral range for published ports.
const EPHEMERAL: (u16, u16) = (49153, 60999);

fn clash(a: Ipv4Addr, b: Ipv4Addr) -> bool {
    a == b || a.is_unspecified() || b.is_unspecified()
}

/// Whether no host socket holds the port (binding it is the only reliable test).
fn host_port_free(proto: &str, ip: Ipv4Addr, port: u16) -> bool {
    if proto == "udp" {
        std::net::UdpSocket::bind((ip, port)).is_ok()
    } else {
        std::net::TcpListener::bind((ip, port)).is_ok()
    }
}

impl PortTable {
    fn taken(&self, proto: &str, ip: Ipv4Addr, port: u16) -> bool {
        self.used
            .get(&(proto.to_string(), port))
            .is_some_and(|v| v.iter().any(|(h, _)| clash(*h, ip)))
    }

    /// Records mappings that exist already (restored containers).
    pub fn insert(&mut self, id: &str, m: &PortMapping) {
        self.used
            .entry((m.proto.clone(), m.host_port))
            .or_default()
            .push((m.host_ip, id.to_string()));
    }

    /// Picks host ports for `reqs` of container `id` at `container_ip`; all or nothing.
    pub fn assign(
        &mut self,
        id: &str,
        container_ip: Ipv4Addr,
        reqs: &[PortRequest],
    ) -> Result<Vec<PortMapping>, NetError> {
        let mut out: Vec<PortMapping> = Vec::new();
        for r in reqs {
            let usable = |t: &PortTable, out: &[PortMapping], p: u16| {
                !t.taken(&r.proto, r.host_ip, p)
                    && !out.iter().any(|m| {
                        m.proto == r.proto && m.host_port == p && clash(m.host_ip, r.host_ip)
                    })
                    && host_port_free(&r.proto, r.host_ip, p)
            };
            let port = if r.host_ports == (0, 0) {
                if self.next_ephemeral < EPHEMERAL.0 {
                    self.next_ephemeral = EPHEMERAL.0;
                }
                let span = EPHEMERAL.1 - EPHEMERAL.0 + 1;
                let start = self.next_ephemeral - EPHEMERAL.0;
                (0..span)
                    .map(|i| EPHEMERAL.0 + (start + i) % span)
                    .find(|p| usable(self, &out, *p))
                    .ok_or_else(|| NetError::InUse("no free host port left for -P".to_string()))?
            } else {
                (r.host_ports.0..=r.host_ports.1)
                    .find(|p| usable(self, &out, *p))
                    .ok_or_else(|| {
                        let ports = if r.host_ports.0 == r.host_ports.1 {
                            r.host_ports.0.to_string()
                        } else {
                            format!("{}-{}", r.host_ports.0, r.host_ports.1)
                        };
                        NetError::InUse(format!(
                            "Bind for {}:{ports} failed: port is already allocated",
                            r.host_ip
                        ))
                    })?
            };
            if r.host_ports == (0, 0) {
                self.next_ephemeral = port.wrapping_add(1);
            }
            out.push(PortMapping {
                proto: r.proto.clone(),
                host_ip: r.host_ip,
                host_port: port,
                container_ip,
                container_port: r.container_port,
            });
        }
        for m in &out {
            self.insert(id, m);
        }
        Ok(out)
    }

    /// Frees the ports of container `id`.
    pub fn release(&mut self, id: &str) {
        for v in self.used.values_mut() {
            v.retain(|(_, h)| h != id);
        }
        self.used.retain(|_, v| !v.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bindings_ranges_and_publish_all() {
        let b = json!({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}], "53/udp": [{"HostIp": "", "HostPort": "9000-9002"}]});
        let reqs = requests(b.as_object(), &["80/tcp".into(), "443/tcp".into()], true).unwrap();
        assert_eq!(reqs.len(), 3);
        assert!(reqs.contains(&PortRequest {
            proto: "udp".into(),
            container_port: 53,
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_ports: (9000, 9002)
        }));
        assert!(reqs
            .iter()
            .any(|r| r.container_port == 443 && r.host_ports == (0, 0)));
        assert!(parse_port_proto("80/sctp").is_err());
        assert!(requests(
            json!({"80/tcp": [{"HostPort": "x"}]}).as_object(),
            &[],
            false
        )
        .is_err());
    }

    #[test]
    fn conflicts_are_errors_and_ephemeral_ports_differ() {
        let mut t = PortTable::default();
        let ip = Ipv4Addr::new(10, 0, 0, 2);
        // A port no test binds: find one the kernel says is free, then release it.
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let fixed = PortRequest {
            proto: "tcp".into(),
            container_port: 80,
            host_ip: Ipv4Addr::LOCALHOST,
            host_ports: (free, free),
        };
        t.assign("a", ip, std::slice::from_ref(&fixed)).unwrap();
        let e = t.assign("b", ip, &[fixed]).unwrap_err();
        assert!(e.to_string().contains("port is already allocated"), "{e}");
        let any = PortRequest {
            proto: "tcp".into(),
            container_port: 80,
            host_ip: Ipv4Addr::LOCALHOST,
            host_ports: (0, 0),
        };
        let a = t.assign("c", ip, std::slice::from_ref(&any)).unwrap();
        let b = t.assign("d", ip, &[any]).unwrap();
        assert_ne!(a[0].host_port, b[0].host_port);
        assert!(a[0].host_port >= EPHEMERAL.0);
        t.release("a");
        assert!(!t.taken("tcp", Ipv4Addr::LOCALHOST, free));
    }
}
