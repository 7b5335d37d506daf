//! Published ports: what `-p`/`-P` ask for, and the host ports they get.
//!
//! A published port is a DNAT rule (see `firewall`), not a userland proxy: rules keep
//! working while wharfd is down or restarting (live restore), cost no process or socket per
//! port, and keep the client's source address. The host's own loopback is reached the same
//! way: the DNAT rule also hooks OUTPUT, the bridge gets `route_localnet=1` so the kernel
//! routes a packet from 127.0.0.1 out of it, and `P-POST` masquerades such packets to the
//! bridge address so the container's reply comes back. Unlike docker-proxy, nothing
//! listens on the host port, so wharf checks that no host socket holds it before using it.
//!
//! On a network with IPv6, a port published on every address (no `HostIp`) is published on
//! `::` too, to the container's IPv6 address, as Docker does; `[::1]` cannot be reached by
//! DNAT (the kernel drops packets from `::1` that leave the host), so wharfd proxies TCP
//! connections to `[::1]:port` itself (`proxy`), while it runs.

use crate::NetError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// `tcp` or `udp`.
    pub proto: String,
    /// Records of before IPv6 hold IPv4 addresses, which read the same as `IpAddr`s.
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_ip: IpAddr,
    pub container_port: u16,
}

/// One request of `PortBindings` (`80/tcp` → `[{HostIp, HostPort}]`); `host_port` 0 means
/// an ephemeral port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    pub proto: String,
    pub container_port: u16,
    pub host_ip: IpAddr,
    /// No `HostIp` was given: every address, IPv4 (`host_ip` 0.0.0.0) and, on a network
    /// with IPv6, IPv6 (`::`).
    pub any_address: bool,
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

/// One entry of a HostConfig's `PortBindings`: the container port (`80/tcp`) and its host
/// (address, port) pairs, each possibly empty (every address; an ephemeral port). No pair at
/// all is one binding on every address and an ephemeral port, as Docker reads `null` or `[]`.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    pub port: &'a str,
    pub hosts: &'a [(&'a str, &'a str)],
}

/// The requests of a HostConfig's `PortBindings` plus, with `publish_all` (`-P`), an
/// ephemeral one for every exposed port that has no binding.
pub fn requests<'a>(
    bindings: impl IntoIterator<Item = Binding<'a>>,
    exposed: &[String],
    publish_all: bool,
) -> Result<Vec<PortRequest>, NetError> {
    let mut out = Vec::new();
    let mut bound: Vec<String> = Vec::new();
    for Binding { port: key, hosts } in bindings {
        let (container_port, proto) = parse_port_proto(key)?;
        bound.push(format!("{container_port}/{proto}"));
        let hosts: &[(&str, &str)] = if hosts.is_empty() { &[("", "")] } else { hosts };
        for &(ip, hp) in hosts {
            let host_ip: IpAddr = if ip.is_empty() {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            } else {
                ip.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse()
                    .map_err(|_| {
                        NetError::Invalid(format!("invalid host address {ip:?} for port {key}"))
                    })?
            };
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
                any_address: ip.is_empty(),
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
                    host_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    any_address: true,
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
    used: BTreeMap<(String, u16), Vec<(IpAddr, String)>>,
    next_ephemeral: u16,
}

/// Docker's ephemeral range for published ports when the kernel's cannot be read.
const EPHEMERAL: (u16, u16) = (49153, 60999);

/// The range random host ports come from: the kernel's `ip_local_port_range` (of the
/// daemon's network namespace), as dockerd's port allocator takes it, else [`EPHEMERAL`].
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| parse_port_range(&s))
        .unwrap_or(EPHEMERAL)
}

fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let mut it = s.split_whitespace().map(str::parse::<u16>);
    match (it.next()?.ok()?, it.next()?.ok()?) {
        (a, b) if a > 0 && a <= b => Some((a, b)),
        _ => None,
    }
}

/// Whether two host addresses of one port collide: the same family, and the same address or
/// either one every address.
fn clash(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4() && (a == b || a.is_unspecified() || b.is_unspecified())
}

/// Whether no host socket holds the port (binding it is the only reliable test).
fn host_port_free(proto: &str, ip: IpAddr, port: u16) -> bool {
    if proto == "udp" {
        std::net::UdpSocket::bind((ip, port)).is_ok()
    } else {
        std::net::TcpListener::bind((ip, port)).is_ok()
    }
}

impl PortTable {
    fn taken(&self, proto: &str, ip: IpAddr, port: u16) -> bool {
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

    /// Picks host ports for `reqs` of container `id` at `container_ip` (and `container_ip6`
    /// on a network with IPv6: requests for every address get a `::` mapping of the same
    /// host port too); all or nothing.
    pub fn assign(
        &mut self,
        id: &str,
        container_ip: Ipv4Addr,
        container_ip6: Option<Ipv6Addr>,
        reqs: &[PortRequest],
    ) -> Result<Vec<PortMapping>, NetError> {
        let mut out: Vec<PortMapping> = Vec::new();
        for r in reqs {
            if r.host_ip.is_ipv6() && container_ip6.is_none() {
                return Err(NetError::Invalid(format!(
                    "cannot publish port {}/{} on IPv6 address {}: the container has no IPv6 address",
                    r.container_port, r.proto, r.host_ip
                )));
            }
            // The host addresses this request takes, each with the container's address.
            let mut hosts: Vec<(IpAddr, IpAddr)> = vec![(
                r.host_ip,
                match (r.host_ip, container_ip6) {
                    (IpAddr::V6(_), Some(c6)) => IpAddr::V6(c6),
                    _ => IpAddr::V4(container_ip),
                },
            )];
            if let (true, Some(c6)) = (r.any_address, container_ip6) {
                hosts.push((IpAddr::V6(Ipv6Addr::UNSPECIFIED), IpAddr::V6(c6)));
            }
            let usable = |t: &PortTable, out: &[PortMapping], p: u16| {
                hosts.iter().all(|(h, _)| {
                    !t.taken(&r.proto, *h, p)
                        && !out
                            .iter()
                            .any(|m| m.proto == r.proto && m.host_port == p && clash(m.host_ip, *h))
                        && host_port_free(&r.proto, *h, p)
                })
            };
            let port = if r.host_ports == (0, 0) {
                let range = ephemeral_range();
                if self.next_ephemeral < range.0 || self.next_ephemeral > range.1 {
                    self.next_ephemeral = range.0;
                }
                let span = u32::from(range.1 - range.0) + 1;
                let start = u32::from(self.next_ephemeral - range.0);
                (0..span)
                    .map(|i| range.0 + ((start + i) % span) as u16)
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
            for (h, c) in &hosts {
                out.push(PortMapping {
                    proto: r.proto.clone(),
                    host_ip: *h,
                    host_port: port,
                    container_ip: *c,
                    container_port: r.container_port,
                });
            }
        }
        for m in &out {
            self.insert(id, m);
        }
        Ok(out)
    }

    /// Whether container `id` holds a port on an IPv6 address.
    pub fn holds_v6(&self, id: &str) -> bool {
        self.used
            .values()
            .any(|v| v.iter().any(|(h, i)| i == id && h.is_ipv6()))
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
    #[test]
    fn kernel_port_range_parses() {
        assert_eq!(
            super::parse_port_range("32768\t60999\n"),
            Some((32768, 60999))
        );
        assert_eq!(super::parse_port_range("60999 32768"), None);
        assert_eq!(super::parse_port_range("x"), None);
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn bindings_ranges_and_publish_all() {
        let b = [
            Binding {
                port: "80/tcp",
                hosts: &[("127.0.0.1", "8080")],
            },
            Binding {
                port: "53/udp",
                hosts: &[("", "9000-9002")],
            },
        ];
        let reqs = requests(b, &["80/tcp".into(), "443/tcp".into()], true).unwrap();
        assert_eq!(reqs.len(), 3);
        assert!(reqs.contains(&PortRequest {
            proto: "udp".into(),
            container_port: 53,
            host_ip: Ipv4Addr::UNSPECIFIED.into(),
            any_address: true,
            host_ports: (9000, 9002)
        }));
        assert!(reqs
            .iter()
            .any(|r| r.container_port == 443 && r.host_ports == (0, 0)));
        assert!(parse_port_proto("80/sctp").is_err());
        let bad = Binding {
            port: "80/tcp",
            hosts: &[("", "x")],
        };
        assert!(requests([bad], &[], false).is_err());
        // No host pair at all (`null`, `[]`): every address, an ephemeral port.
        let none = Binding {
            port: "81",
            hosts: &[],
        };
        let r = requests([none], &[], false).unwrap();
        assert_eq!(
            (r.len(), r[0].host_ports, r[0].any_address),
            (1, (0, 0), true)
        );
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
            host_ip: Ipv4Addr::LOCALHOST.into(),
            any_address: false,
            host_ports: (free, free),
        };
        t.assign("a", ip, None, std::slice::from_ref(&fixed))
            .unwrap();
        let e = t.assign("b", ip, None, &[fixed]).unwrap_err();
        assert!(e.to_string().contains("port is already allocated"), "{e}");
        let any = PortRequest {
            proto: "tcp".into(),
            container_port: 80,
            host_ip: Ipv4Addr::LOCALHOST.into(),
            any_address: false,
            host_ports: (0, 0),
        };
        let a = t.assign("c", ip, None, std::slice::from_ref(&any)).unwrap();
        let b = t.assign("d", ip, None, &[any]).unwrap();
        assert_ne!(a[0].host_port, b[0].host_port);
        let range = ephemeral_range();
        assert!(a[0].host_port >= range.0 && a[0].host_port <= range.1);
        t.release("a");
        assert!(!t.taken("tcp", Ipv4Addr::LOCALHOST.into(), free));
    }

    #[test]
    fn every_address_means_ipv6_too_when_the_container_has_it() {
        let mut t = PortTable::default();
        let ip = Ipv4Addr::new(10, 0, 0, 2);
        let ip6: Ipv6Addr = "fd00:1::2".parse().unwrap();
        let any = Binding {
            port: "80/tcp",
            hosts: &[("", "")],
        };
        let reqs = requests([any], &[], false).unwrap();
        let v4only = t.assign("a", ip, None, &reqs).unwrap();
        assert_eq!(v4only.len(), 1, "no IPv6: as before");
        let both = t.assign("b", ip, Some(ip6), &reqs).unwrap();
        assert_eq!(both.len(), 2);
        assert_eq!(both[0].host_port, both[1].host_port);
        assert_eq!(both[1].host_ip, IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert_eq!(both[1].container_ip, IpAddr::V6(ip6));
        assert_ne!(both[0].host_port, v4only[0].host_port);
        // An explicit IPv6 host address needs an IPv6 container address.
        let lo6 = Binding {
            port: "80/tcp",
            hosts: &[("::1", "")],
        };
        let v6req = requests([lo6], &[], false).unwrap();
        assert!(t.assign("c", ip, None, &v6req).is_err());
        let m = t.assign("c", ip, Some(ip6), &v6req).unwrap();
        assert_eq!(
            (m.len(), m[0].host_ip),
            (1, IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
        // A mapping record of before IPv6 still reads.
        let old: PortMapping = serde_json::from_value(json!({"proto": "tcp", "host_ip": "0.0.0.0",
            "host_port": 8080, "container_ip": "172.30.0.2", "container_port": 80}))
        .unwrap();
        assert_eq!(old.container_ip, IpAddr::V4(Ipv4Addr::new(172, 30, 0, 2)));
    }
}
