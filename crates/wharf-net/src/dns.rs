//! The embedded DNS server: inside each container on a user network, wharfd listens on
//! 127.0.0.11:53 (UDP and TCP) and answers A (and PTR) queries for the names and aliases of
//! the containers that share a network with the asker, and AAAA queries with their addresses
//! on networks with IPv6 (an empty answer for a known name without one), PTR for both; every other query is forwarded to the
//! upstream resolvers (the container's `--dns`, else the host's) from the host's namespace,
//! so resolvers on the host's loopback work too.
//!
//! The sockets are opened in the container's namespace by a short-lived thread that
//! `setns`es into it, binds, and hands the sockets back to the tokio runtime: no iptables
//! redirection is needed, and the sockets die with the namespace.

use crate::NetError;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where the server listens inside the container.
pub const DNS_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
const TTL: u32 = 600;
const TYPE_A: u16 = 1;
const TYPE_PTR: u16 = 12;
const TYPE_AAAA: u16 = 28;
const RCODE_SERVFAIL: u8 = 2;

/// One container's names on one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    pub container: String,
    pub network: String,
    /// Container name, aliases, short id; lower case.
    pub names: Vec<String>,
    pub ip: Ipv4Addr,
    /// Its IPv6 address there, on a network with IPv6.
    pub ip6: Option<Ipv6Addr>,
}

/// A parsed question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: String,
    pub qtype: u16,
    /// Where the question section ends in the message.
    pub end: usize,
}

/// The first question of a query (none for responses, other opcodes or malformed input).
pub fn parse_query(msg: &[u8]) -> Option<Question> {
    if msg.len() < 12 || msg[2] & 0x80 != 0 || (msg[2] >> 3) & 0x0f != 0 {
        return None;
    }
    if u16::from_be_bytes([msg[4], msg[5]]) != 1 {
        return None;
    }
    let mut i = 12;
    let mut labels: Vec<String> = Vec::new();
    loop {
        let len = *msg.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None; // compression is not used in questions of queries
        }
        let l = msg.get(i..i + len)?;
        labels.push(String::from_utf8_lossy(l).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*msg.get(i)?, *msg.get(i + 1)?]);
    let _class = msg.get(i + 2..i + 4)?;
    Some(Question {
        name: labels.join("."),
        qtype,
        end: i + 4,
    })
}

fn header(query: &[u8], rcode: u8, answers: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&query[..2]);
    // QR, the query's opcode and RD, RA.
    out.push(0x80 | (query[2] & 0x79));
    out.push(0x80 | rcode);
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&answers.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out
}

/// A response with A records for `ips` (no records: NOERROR with an empty answer).
pub fn answer_a(query: &[u8], q: &Question, ips: &[Ipv4Addr]) -> Vec<u8> {
    let mut out = header(query, 0, ips.len() as u16);
    out.extend_from_slice(&query[12..q.end]);
    for ip in ips {
        out.extend_from_slice(&[0xc0, 0x0c]);
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&ip.octets());
    }
    out
}

/// A response with AAAA records for `ips`.
pub fn answer_aaaa(query: &[u8], q: &Question, ips: &[Ipv6Addr]) -> Vec<u8> {
    let mut out = header(query, 0, ips.len() as u16);
    out.extend_from_slice(&query[12..q.end]);
    for ip in ips {
        out.extend_from_slice(&[0xc0, 0x0c]);
        out.extend_from_slice(&TYPE_AAAA.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&16u16.to_be_bytes());
        out.extend_from_slice(&ip.octets());
    }
    out
}

/// A response with one PTR record naming `name`.
pub fn answer_ptr(query: &[u8], q: &Question, name: &str) -> Vec<u8> {
    let mut out = header(query, 0, 1);
    out.extend_from_slice(&query[12..q.end]);
    out.extend_from_slice(&[0xc0, 0x0c]);
    out.extend_from_slice(&TYPE_PTR.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&TTL.to_be_bytes());
    let mut rdata = Vec::new();
    for l in name.split('.').filter(|l| !l.is_empty()) {
        rdata.push(l.len().min(63) as u8);
        rdata.extend_from_slice(&l.as_bytes()[..l.len().min(63)]);
    }
    rdata.push(0);
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rdata);
    out
}

/// An empty response with `rcode`.
pub fn answer_error(query: &[u8], q: &Question, rcode: u8) -> Vec<u8> {
    let mut out = header(query, rcode, 0);
    out.extend_from_slice(&query[12..q.end]);
    out
}

/// `4.3.2.1.in-addr.arpa` → 1.2.3.4.
fn ptr_address(name: &str) -> Option<Ipv4Addr> {
    let rest = name.strip_suffix(".in-addr.arpa")?;
    let mut o: Vec<u8> = rest
        .split('.')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if o.len() != 4 {
        return None;
    }
    o.reverse();
    Some(Ipv4Addr::new(o[0], o[1], o[2], o[3]))
}

/// `b.a.9.8....ip6.arpa` (32 nibbles, last first) → the IPv6 address.
fn ptr_address6(name: &str) -> Option<Ipv6Addr> {
    let rest = name.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<u32> = rest
        .split('.')
        .map(|x| {
            if x.len() == 1 {
                x.chars().next()?.to_digit(16)
            } else {
                None
            }
        })
        .collect::<Option<_>>()?;
    if nibbles.len() != 32 {
        return None;
    }
    let n = nibbles
        .iter()
        .rev()
        .fold(0u128, |acc, d| (acc << 4) | u128::from(*d));
    Some(Ipv6Addr::from(n))
}

/// The nameservers of a resolv.conf, on port 53.
pub fn nameservers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|s| s.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// Sends `query` to each upstream in turn (UDP, 2 s each) and returns the first answer.
pub async fn forward(query: &[u8], upstream: &[SocketAddr]) -> Option<Vec<u8>> {
    for server in upstream {
        let bind: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0".parse().expect("valid")
        } else {
            "[::]:0".parse().expect("valid")
        };
        let Ok(sock) = tokio::net::UdpSocket::bind(bind).await else {
            continue;
        };
        if sock.send_to(query, server).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 65535];
        let got = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                let (n, from) = sock.recv_from(&mut buf).await?;
                if from == *server && n >= 2 && buf[..2] == query[..2] {
                    return Ok::<usize, std::io::Error>(n);
                }
            }
        })
        .await;
        if let Ok(Ok(n)) = got {
            return Some(buf[..n].to_vec());
        }
    }
    None
}

/// `alias` is, for one container, the name of container `target` on `network`.
#[derive(Debug, Clone)]
struct LinkAlias {
    network: String,
    alias: String,
    target: String,
}

/// The records and the servers of every container.
#[derive(Default)]
pub struct Dns {
    records: RwLock<Vec<DnsRecord>>,
    /// Links on user networks (`--link name:alias`), per asking container: names only that
    /// container resolves.
    links: RwLock<HashMap<String, Vec<LinkAlias>>>,
    servers: Mutex<HashMap<String, Vec<tokio::task::AbortHandle>>>,
}

impl Dns {
    /// Adds (or replaces) a container's names on a network.
    pub fn add(&self, rec: DnsRecord) {
        let mut r = self.records.write().expect("dns lock");
        r.retain(|x| !(x.container == rec.container && x.network == rec.network));
        r.push(rec);
    }

    /// Removes a container's names on `network` (all its names with `None`), and its links
    /// there.
    pub fn remove(&self, container: &str, network: Option<&str>) {
        self.records
            .write()
            .expect("dns lock")
            .retain(|x| !(x.container == container && network.is_none_or(|n| x.network == n)));
        let mut links = self.links.write().expect("dns lock");
        if let Some(l) = links.get_mut(container) {
            l.retain(|a| network.is_some_and(|n| n != a.network));
            if l.is_empty() {
                links.remove(container);
            }
        }
    }

    /// Sets the links `asker` has on `network`: each (alias, linked container's name) makes
    /// `alias` a name of that container for `asker` alone.
    pub fn set_links(&self, asker: &str, network: &str, links: &[(String, String)]) {
        let mut all = self.links.write().expect("dns lock");
        let l = all.entry(asker.to_string()).or_default();
        l.retain(|a| a.network != network);
        l.extend(links.iter().map(|(alias, target)| LinkAlias {
            network: network.to_string(),
            alias: alias.to_ascii_lowercase(),
            target: target.to_ascii_lowercase(),
        }));
        if l.is_empty() {
            all.remove(asker);
        }
    }

    /// The addresses of `name` as seen by `asker`.
    pub fn lookup(&self, asker: &str, name: &str) -> Vec<Ipv4Addr> {
        self.lookup_records(asker, name)
            .iter()
            .map(|x| x.ip)
            .collect()
    }

    /// The IPv6 addresses of `name` as seen by `asker` (on its networks with IPv6).
    pub fn lookup6(&self, asker: &str, name: &str) -> Vec<Ipv6Addr> {
        let mut out: Vec<Ipv6Addr> = self
            .lookup_records(asker, name)
            .iter()
            .filter_map(|x| x.ip6)
            .collect();
        out.dedup();
        out
    }

    /// The records of `name` as seen by `asker`: its links' aliases first (the linked
    /// container on the link's network), then its networks' members.
    fn lookup_records(&self, asker: &str, name: &str) -> Vec<DnsRecord> {
        let r = self.records.read().expect("dns lock");
        let linked: Vec<(String, String)> = self
            .links
            .read()
            .expect("dns lock")
            .get(asker)
            .map(|l| {
                l.iter()
                    .filter(|a| a.alias == name)
                    .map(|a| (a.network.clone(), a.target.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut via_link: Vec<DnsRecord> = r
            .iter()
            .filter(|x| {
                linked
                    .iter()
                    .any(|(net, target)| &x.network == net && x.names.iter().any(|n| n == target))
            })
            .cloned()
            .collect();
        if !via_link.is_empty() {
            via_link.dedup_by(|a, b| a.ip == b.ip && a.ip6 == b.ip6);
            return via_link;
        }
        let nets: Vec<&str> = r
            .iter()
            .filter(|x| x.container == asker)
            .map(|x| x.network.as_str())
            .collect();
        let mut out: Vec<DnsRecord> = r
            .iter()
            .filter(|x| nets.contains(&x.network.as_str()) && x.names.iter().any(|n| n == name))
            .cloned()
            .collect();
        out.dedup_by(|a, b| a.ip == b.ip && a.ip6 == b.ip6);
        out
    }

    /// The name of `ip` on `asker`'s networks.
    fn reverse(&self, asker: &str, ip: std::net::IpAddr) -> Option<String> {
        let r = self.records.read().expect("dns lock");
        let nets: Vec<&str> = r
            .iter()
            .filter(|x| x.container == asker)
            .map(|x| x.network.as_str())
            .collect();
        r.iter()
            .find(|x| {
                nets.contains(&x.network.as_str())
                    && match ip {
                        std::net::IpAddr::V4(a) => x.ip == a,
                        std::net::IpAddr::V6(a) => x.ip6 == Some(a),
                    }
            })
            .and_then(|x| x.names.first().cloned())
    }

    /// The answer to `query` from `asker`: ours, else the upstreams'.
    pub async fn handle(
        &self,
        asker: &str,
        query: &[u8],
        upstream: &[SocketAddr],
    ) -> Option<Vec<u8>> {
        let q = parse_query(query)?;
        match q.qtype {
            TYPE_A => {
                let ips = self.lookup(asker, &q.name);
                if !ips.is_empty() {
                    return Some(answer_a(query, &q, &ips));
                }
            }
            TYPE_AAAA if !self.lookup(asker, &q.name).is_empty() => {
                return Some(answer_aaaa(query, &q, &self.lookup6(asker, &q.name)));
            }
            TYPE_PTR => {
                let ip = ptr_address(&q.name)
                    .map(std::net::IpAddr::V4)
                    .or_else(|| ptr_address6(&q.name).map(std::net::IpAddr::V6));
                if let Some(n) = ip.and_then(|ip| self.reverse(asker, ip)) {
                    return Some(answer_ptr(query, &q, &n));
                }
            }
            _ => {}
        }
        Some(
            forward(query, upstream)
                .await
                .unwrap_or_else(|| answer_error(query, &q, RCODE_SERVFAIL)),
        )
    }

    /// Starts the server of container `id` inside the network namespace of `pid`.
    pub fn serve(
        self: &Arc<Self>,
        id: &str,
        pid: i32,
        upstream: Vec<SocketAddr>,
    ) -> Result<(), NetError> {
        self.stop(id);
        let (udp, tcp) = open_in_netns(pid)?;
        let udp = tokio::net::UdpSocket::from_std(udp).map_err(|e| NetError::io("dns udp", e))?;
        let tcp = tokio::net::TcpListener::from_std(tcp).map_err(|e| NetError::io("dns tcp", e))?;
        let udp = Arc::new(udp);
        let upstream = Arc::new(upstream);
        let (dns, asker, up) = (self.clone(), id.to_string(), upstream.clone());
        let u = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, from)) = udp.recv_from(&mut buf).await else {
                    return;
                };
                let query = buf[..n].to_vec();
                let (dns, asker, up, udp) = (dns.clone(), asker.clone(), up.clone(), udp.clone());
                tokio::spawn(async move {
                    if let Some(resp) = dns.handle(&asker, &query, &up).await {
                        let _ = udp.send_to(&resp, from).await;
                    }
                });
            }
        });
        let (dns, asker) = (self.clone(), id.to_string());
        let t = tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = tcp.accept().await else {
                    return;
                };
                let (dns, asker, up) = (dns.clone(), asker.clone(), upstream.clone());
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(10), async {
                        loop {
                            let len = conn.read_u16().await? as usize;
                            let mut q = vec![0u8; len];
                            conn.read_exact(&mut q).await?;
                            let Some(resp) = dns.handle(&asker, &q, &up).await else {
                                return Ok::<(), std::io::Error>(());
                            };
                            conn.write_u16(resp.len() as u16).await?;
                            conn.write_all(&resp).await?;
                        }
                    })
                    .await;
                });
            }
        });
        self.servers
            .lock()
            .expect("dns lock")
            .insert(id.to_string(), vec![u.abort_handle(), t.abort_handle()]);
        Ok(())
    }

    /// Stops container `id`'s server.
    pub fn stop(&self, id: &str) {
        if let Some(hs) = self.servers.lock().expect("dns lock").remove(id) {
            for h in hs {
                h.abort();
            }
        }
    }

    /// Whether container `id` has a server.
    pub fn serving(&self, id: &str) -> bool {
        self.servers.lock().expect("dns lock").contains_key(id)
    }
}

/// Binds 127.0.0.11:53 (UDP and TCP) in the network namespace of `pid`, from a thread that
/// enters it (setns changes only the calling thread, which then ends).
fn open_in_netns(pid: i32) -> Result<(std::net::UdpSocket, std::net::TcpListener), NetError> {
    let path = format!("/proc/{pid}/ns/net");
    let ns = std::fs::File::open(&path).map_err(|e| NetError::io(&path, e))?;
    std::thread::spawn(move || -> Result<_, NetError> {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| NetError::io(&path, e.into()))?;
        let addr = SocketAddr::from((DNS_ADDR, 53));
        let udp =
            std::net::UdpSocket::bind(addr).map_err(|e| NetError::io("127.0.0.11:53/udp", e))?;
        let tcp =
            std::net::TcpListener::bind(addr).map_err(|e| NetError::io("127.0.0.11:53/tcp", e))?;
        udp.set_nonblocking(true)
            .map_err(|e| NetError::io("dns", e))?;
        tcp.set_nonblocking(true)
            .map_err(|e| NetError::io("dns", e))?;
        Ok((udp, tcp))
    })
    .join()
    .map_err(|_| NetError::Invalid("the DNS setup thread panicked".into()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q
    }

    fn dns() -> Dns {
        let d = Dns::default();
        for (c, n, names, ip, ip6) in [
            ("a", "n1", vec!["web", "www"], [10, 1, 0, 2], None),
            ("b", "n1", vec!["client"], [10, 1, 0, 3], None),
            ("c", "n2", vec!["other"], [10, 2, 0, 2], None),
            ("d", "n3", vec!["six"], [10, 3, 0, 2], Some("fd00:3::2")),
            ("e", "n3", vec!["asker"], [10, 3, 0, 3], Some("fd00:3::3")),
        ] {
            d.add(DnsRecord {
                container: c.into(),
                network: n.into(),
                names: names.into_iter().map(String::from).collect(),
                ip: Ipv4Addr::from(ip),
                ip6: ip6.map(|s: &str| s.parse().unwrap()),
            });
        }
        d
    }

    #[test]
    fn names_resolve_only_within_shared_networks() {
        let d = dns();
        assert_eq!(d.lookup("b", "www"), vec![Ipv4Addr::new(10, 1, 0, 2)]);
        assert!(d.lookup("c", "web").is_empty());
        d.remove("a", None);
        assert!(d.lookup("b", "web").is_empty());
    }

    #[tokio::test]
    async fn answers_a_aaaa_ptr_and_servfail_without_upstream() {
        let d = dns();
        let q = query("WEB", TYPE_A);
        let r = d.handle("b", &q, &[]).await.unwrap();
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(r[2] & 0x80, 0x80, "a response");
        assert_eq!(r[3] & 0x0f, 0, "NOERROR");
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1);
        assert_eq!(&r[r.len() - 4..], &[10, 1, 0, 2]);
        let r = d.handle("b", &query("web", TYPE_AAAA), &[]).await.unwrap();
        assert_eq!((r[3] & 0x0f, r[7]), (0, 0), "empty NOERROR for AAAA");
        let r = d.handle("e", &query("six", TYPE_AAAA), &[]).await.unwrap();
        assert_eq!((r[3] & 0x0f, r[7]), (0, 1), "one AAAA on an IPv6 network");
        let six: Ipv6Addr = "fd00:3::2".parse().unwrap();
        assert_eq!(&r[r.len() - 16..], &six.octets());
        assert_eq!(
            u16::from_be_bytes([r[r.len() - 26], r[r.len() - 25]]),
            TYPE_AAAA
        );
        let r = d.handle("b", &query("six", TYPE_AAAA), &[]).await.unwrap();
        assert_eq!(r[3] & 0x0f, RCODE_SERVFAIL, "not on the asker's networks");
        let arpa = "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.0.0.0.0.0.d.f.ip6.arpa";
        let r = d.handle("e", &query(arpa, TYPE_PTR), &[]).await.unwrap();
        assert!(
            r.windows(4).any(|w| w == b"\x03six"),
            "PTR of an IPv6 address: {r:?}"
        );
        let r = d
            .handle("b", &query("2.0.1.10.in-addr.arpa", TYPE_PTR), &[])
            .await
            .unwrap();
        assert!(r.windows(4).any(|w| w == b"\x03web"), "{r:?}");
        let r = d.handle("c", &query("web", TYPE_A), &[]).await.unwrap();
        assert_eq!(r[3] & 0x0f, RCODE_SERVFAIL, "unknown there, no upstream");
        assert!(parse_query(&r).is_none(), "responses are not queries");
    }

    #[tokio::test]
    async fn other_names_are_forwarded_upstream() {
        let up = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = up.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let (n, from) = up.recv_from(&mut buf).await.unwrap();
            let q = parse_query(&buf[..n]).unwrap();
            let resp = answer_a(&buf[..n], &q, &[Ipv4Addr::new(192, 0, 2, 7)]);
            up.send_to(&resp, from).await.unwrap();
        });
        let d = dns();
        let r = d
            .handle("b", &query("example.org", TYPE_A), &[addr])
            .await
            .unwrap();
        assert_eq!(&r[r.len() - 4..], &[192, 0, 2, 7]);
    }

    #[test]
    fn nameservers_and_ptr_names_parse() {
        assert_eq!(
            nameservers("# x\nnameserver 127.0.0.53\nsearch a\nnameserver ::1\n").len(),
            2
        );
        assert_eq!(
            ptr_address("4.3.2.1.in-addr.arpa"),
            Some(Ipv4Addr::new(1, 2, 3, 4))
        );
        assert_eq!(ptr_address("x.in-addr.arpa"), None);
        let six: Ipv6Addr = "fd00:3::2".parse().unwrap();
        let arpa: String = format!("{:032x}", u128::from(six))
            .chars()
            .rev()
            .map(|c| format!("{c}."))
            .collect::<String>()
            + "ip6.arpa";
        assert_eq!(ptr_address6(&arpa), Some(six));
        assert_eq!(ptr_address6("1.2.ip6.arpa"), None);
    }

    #[test]
    fn link_aliases_resolve_for_the_linking_container_only() {
        let dns = Dns::default();
        let rec = |c: &str, net: &str, name: &str, ip: [u8; 4]| DnsRecord {
            container: c.into(),
            network: net.into(),
            names: vec![name.into()],
            ip: ip.into(),
            ip6: None,
        };
        dns.add(rec("db", "n1", "db", [10, 0, 0, 2]));
        dns.add(rec("db", "n2", "db", [10, 1, 0, 2]));
        dns.add(rec("web", "n1", "web", [10, 0, 0, 3]));
        dns.add(rec("other", "n1", "other", [10, 0, 0, 4]));
        dns.set_links("web", "n1", &[("Database".into(), "db".into())]);
        // The alias is the linked container's address on the link's network, for web alone.
        assert_eq!(dns.lookup("web", "database"), [Ipv4Addr::new(10, 0, 0, 2)]);
        assert!(dns.lookup("other", "database").is_empty());
        assert_eq!(dns.lookup("web", "db"), [Ipv4Addr::new(10, 0, 0, 2)]);
        // Gone with the linking container's endpoint on that network.
        dns.remove("web", Some("n1"));
        assert!(dns.links.read().unwrap().is_empty());
        dns.set_links("web", "n1", &[("database".into(), "db".into())]);
        dns.remove("web", None);
        assert!(dns.links.read().unwrap().is_empty());
    }
}
