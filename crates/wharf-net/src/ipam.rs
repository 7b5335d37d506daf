//! Address management for one subnet (IPv4 or IPv6): allocations persisted atomically, so a restarted daemon
//! never hands out an address twice.
//!
//! The file is written to a temporary name and renamed over the old one, but not fsynced:
//! a killed daemon (`kill -9`) loses nothing (the page cache is the kernel's, not the
//! process's), and after a crash of the host, which no container survives, the daemon's
//! start reconciles the allocations with the containers still running (`Networks::reconcile`
//! frees the others and re-asserts theirs from their own records). An fsync here cost
//! milliseconds on every start and every stop.

use crate::NetError;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// An IPv4 subnet with its gateway (`172.30.0.1/16`); serialized as that string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    pub gateway: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// Parses `gateway/prefix`.
    pub fn parse(s: &str) -> Result<Subnet, NetError> {
        let bad = || NetError::Subnet(s.to_string());
        let (ip, p) = s.split_once('/').ok_or_else(bad)?;
        let gateway: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(bad());
        }
        let sub = Subnet { gateway, prefix };
        if gateway == sub.network() || gateway == sub.broadcast() {
            return Err(bad());
        }
        Ok(sub)
    }

    /// A subnet given as `network/prefix` (any host bits are cleared) with an optional
    /// gateway (else the first host address), as `network create --subnet --gateway` gives it.
    pub fn from_cidr(cidr: &str, gateway: Option<&str>) -> Result<Subnet, NetError> {
        let (net, prefix) = parse_cidr(cidr)?;
        let first = Ipv4Addr::from(u32::from(net) + 1);
        let gw = match gateway.filter(|g| !g.is_empty()) {
            Some(g) => g
                .parse()
                .map_err(|_| NetError::Invalid(format!("invalid gateway {g:?}")))?,
            None => first,
        };
        let sub = Subnet::parse(&format!("{gw}/{prefix}"))?;
        if sub.network() != net {
            return Err(NetError::Invalid(format!(
                "gateway {gw} is not in subnet {cidr}"
            )));
        }
        Ok(sub)
    }

    /// Whether `ip` is in the subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    /// Whether the two subnets share an address.
    pub fn overlaps(&self, net: Ipv4Addr, prefix: u8) -> bool {
        let p = self.prefix.min(prefix);
        let m = if p == 0 { 0 } else { u32::MAX << (32 - p) };
        u32::from(self.network()) & m == u32::from(net) & m
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.gateway) & self.mask())
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.gateway) | !self.mask())
    }

    /// `network/prefix`, as iptables wants it.
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.network(), self.prefix)
    }
}

impl TryFrom<String> for Subnet {
    type Error = NetError;
    fn try_from(s: String) -> Result<Subnet, NetError> {
        Subnet::parse(&s)
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        format!("{}/{}", s.gateway, s.prefix)
    }
}

/// `a.b.c.d/n` → (network address, n); host bits are cleared.
pub fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), NetError> {
    let bad = || NetError::Subnet(s.to_string());
    let (ip, p) = s.split_once('/').ok_or_else(bad)?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let prefix: u8 = p.parse().map_err(|_| bad())?;
    if prefix > 32 {
        return Err(bad());
    }
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    Ok((Ipv4Addr::from(u32::from(ip) & mask), prefix))
}

/// An IPv6 subnet with its gateway (`fd00:1::1/64`); serialized as that string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet6 {
    pub gateway: Ipv6Addr,
    pub prefix: u8,
}

fn mask6(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

impl Subnet6 {
    /// Parses `gateway/prefix` (a prefix of 8 to 126 bits; the gateway not the subnet's
    /// own address, which IPv6 keeps for the subnet-router anycast).
    pub fn parse(s: &str) -> Result<Subnet6, NetError> {
        let bad = || NetError::Subnet6(s.to_string());
        let (ip, p) = s.split_once('/').ok_or_else(bad)?;
        let gateway: Ipv6Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if !(8..=126).contains(&prefix) {
            return Err(bad());
        }
        let sub = Subnet6 { gateway, prefix };
        if gateway == sub.network() {
            return Err(bad());
        }
        Ok(sub)
    }

    /// A subnet given as `network/prefix` (host bits cleared) with an optional gateway
    /// (else the first address after the subnet's own), as `--subnet --gateway` give it.
    pub fn from_cidr(cidr: &str, gateway: Option<&str>) -> Result<Subnet6, NetError> {
        let (net, prefix) = parse_cidr6(cidr)?;
        let gw = match gateway.filter(|g| !g.is_empty()) {
            Some(g) => g
                .parse()
                .map_err(|_| NetError::Invalid(format!("invalid gateway {g:?}")))?,
            None => Ipv6Addr::from(u128::from(net) + 1),
        };
        let sub = Subnet6::parse(&format!("{gw}/{prefix}"))?;
        if sub.network() != net {
            return Err(NetError::Invalid(format!(
                "gateway {gw} is not in subnet {cidr}"
            )));
        }
        Ok(sub)
    }

    /// Whether `ip` is in the subnet.
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & mask6(self.prefix) == u128::from(self.network())
    }

    /// Whether the two subnets share an address.
    pub fn overlaps(&self, net: Ipv6Addr, prefix: u8) -> bool {
        let m = mask6(self.prefix.min(prefix));
        u128::from(self.network()) & m == u128::from(net) & m
    }

    /// The subnet's own address.
    pub fn network(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.gateway) & mask6(self.prefix))
    }

    /// The last address of the subnet (IPv6 has no broadcast: it is a host's).
    pub fn last(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.gateway) | !mask6(self.prefix))
    }

    /// `network/prefix`, as ip6tables wants it.
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.network(), self.prefix)
    }
}

impl TryFrom<String> for Subnet6 {
    type Error = NetError;
    fn try_from(s: String) -> Result<Subnet6, NetError> {
        Subnet6::parse(&s)
    }
}

impl From<Subnet6> for String {
    fn from(s: Subnet6) -> String {
        format!("{}/{}", s.gateway, s.prefix)
    }
}

/// `x::/n` → (subnet address, n); host bits are cleared.
pub fn parse_cidr6(s: &str) -> Result<(Ipv6Addr, u8), NetError> {
    let bad = || NetError::Subnet6(s.to_string());
    let (ip, p) = s.split_once('/').ok_or_else(bad)?;
    let ip: Ipv6Addr = ip.parse().map_err(|_| bad())?;
    let prefix: u8 = p.parse().map_err(|_| bad())?;
    if prefix > 128 {
        return Err(bad());
    }
    Ok((Ipv6Addr::from(u128::from(ip) & mask6(prefix)), prefix))
}

/// The addresses of one subnet, IPv4 or IPv6, as numbers: what an `Ipam` hands out.
#[derive(Debug, Clone, Copy)]
struct Space {
    v6: bool,
    network: u128,
    /// The highest address of the subnet (IPv4: its broadcast, never handed out).
    top: u128,
    gateway: u128,
    prefix: u8,
}

impl Space {
    fn of4(s: &Subnet) -> Space {
        Space {
            v6: false,
            network: u128::from(u32::from(s.network())),
            top: u128::from(u32::from(s.broadcast())),
            gateway: u128::from(u32::from(s.gateway)),
            prefix: s.prefix,
        }
    }

    fn of6(s: &Subnet6) -> Space {
        Space {
            v6: true,
            network: u128::from(s.network()),
            top: u128::from(s.last()),
            gateway: u128::from(s.gateway),
            prefix: s.prefix,
        }
    }

    /// The first and last address that can be a host's.
    fn hosts(&self) -> (u128, u128) {
        (
            self.network + 1,
            if self.v6 { self.top } else { self.top - 1 },
        )
    }

    fn num(&self, ip: IpAddr) -> Option<u128> {
        match (ip, self.v6) {
            (IpAddr::V4(a), false) => Some(u128::from(u32::from(a))),
            (IpAddr::V6(a), true) => Some(u128::from(a)),
            _ => None,
        }
    }

    fn addr(&self, n: u128) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(n))
        } else {
            IpAddr::V4(Ipv4Addr::from(n as u32))
        }
    }

    fn contains(&self, n: u128) -> bool {
        n >= self.network && n <= self.top
    }

    fn cidr(&self) -> String {
        format!("{}/{}", self.addr(self.network), self.prefix)
    }
}

/// Allocations of one subnet (IPv4 or IPv6), by endpoint key (the container id), optionally
/// limited to an `--ip-range` for dynamic addresses.
pub struct Ipam {
    space: Space,
    /// First and last address handed out dynamically.
    range: (u128, u128),
    path: PathBuf,
    allocated: BTreeMap<String, IpAddr>,
    /// Where the next dynamic allocation starts looking (the one after the last handed out,
    /// as Docker's IPAM does): a just-released address is not reused at once, while the
    /// kernel may still be removing the stopped container's veth that had it (and its MAC).
    next: u128,
}

impl Ipam {
    /// Loads the allocations of IPv4 `subnet` kept at `path` (none if the file is absent, or
    /// unreadable after a host crash: the daemon's start re-asserts what running containers
    /// hold).
    pub fn open(subnet: Subnet, path: PathBuf) -> Result<Ipam, NetError> {
        Ipam::open_space(Space::of4(&subnet), path)
    }

    /// `open` for IPv6 `subnet`.
    pub fn open6(subnet: Subnet6, path: PathBuf) -> Result<Ipam, NetError> {
        Ipam::open_space(Space::of6(&subnet), path)
    }

    fn open_space(space: Space, path: PathBuf) -> Result<Ipam, NetError> {
        // Files of before IPv6 hold IPv4 addresses only, which read the same as `IpAddr`s.
        let allocated: BTreeMap<String, IpAddr> = match std::fs::read(&path) {
            Ok(d) => serde_json::from_slice(&d).unwrap_or_else(|e| {
                tracing::warn!(
                    "{}: {e}: starting from the running containers' addresses",
                    path.display()
                );
                BTreeMap::new()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(NetError::Io { path, source }),
        };
        Ok(Ipam {
            space,
            range: space.hosts(),
            path,
            allocated,
            next: space.network + 1,
        })
    }

    /// Whether this is an IPv6 subnet's.
    pub fn is_v6(&self) -> bool {
        self.space.v6
    }

    /// Whether `ip` is in the subnet.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.space.num(ip).is_some_and(|n| self.space.contains(n))
    }

    /// Limits dynamic allocation to `range` (`network/prefix` inside the subnet).
    pub fn with_range(mut self, range: Option<&str>) -> Result<Ipam, NetError> {
        if let Some(r) = range.filter(|r| !r.is_empty()) {
            let (net, prefix, bits) = if self.space.v6 {
                let (n, p) = parse_cidr6(r)?;
                (u128::from(n), p, 128u32)
            } else {
                let (n, p) = parse_cidr(r)?;
                (u128::from(u32::from(n)), p, 32u32)
            };
            if prefix < self.space.prefix || !self.space.contains(net) {
                return Err(NetError::Invalid(format!(
                    "ip-range {r} is not inside subnet {}",
                    self.space.cidr()
                )));
            }
            let span = bits - u32::from(prefix);
            let last = if span >= 128 {
                u128::MAX
            } else {
                net + ((1u128 << span) - 1)
            };
            self.range = (net.max(self.range.0), last.min(self.range.1));
        }
        Ok(self)
    }

    fn save(&self) -> Result<(), NetError> {
        // Atomic (rename), deliberately not durable: see the module's doc.
        let io = |source| NetError::Io {
            path: self.path.clone(),
            source,
        };
        wharf_fs::AtomicWrite::default()
            .mode(0o644)
            .durable(false)
            .write(
                &self.path,
                &serde_json::to_vec(&self.allocated).expect("serializable"),
            )
            .map_err(io)
    }

    /// Records that `id` holds `ip` (a running container's address, from its own record,
    /// when the daemon starts). False if another holder has it.
    pub fn hold(&mut self, id: &str, ip: IpAddr) -> Result<bool, NetError> {
        if self.allocated.get(id) == Some(&ip) {
            return Ok(true);
        }
        if self.allocated.iter().any(|(h, a)| *a == ip && h != id) {
            return Ok(false);
        }
        self.allocated.insert(id.to_string(), ip);
        self.save()?;
        Ok(true)
    }

    /// The address of `id`, allocating the next free one the first time.
    pub fn allocate(&mut self, id: &str) -> Result<IpAddr, NetError> {
        self.allocate_with(id, None)
    }

    /// The address of `id`: `requested` (`--ip`/`--ip6`, which must be free and in the
    /// subnet) or the next free one of the range after the last one handed out.
    pub fn allocate_with(
        &mut self,
        id: &str,
        requested: Option<IpAddr>,
    ) -> Result<IpAddr, NetError> {
        if let Some(ip) = self.allocated.get(id) {
            if requested.is_none_or(|r| r == *ip) {
                return Ok(*ip);
            }
            self.allocated.remove(id);
        }
        let sp = self.space;
        if let Some(ip) = requested {
            let (first, last) = sp.hosts();
            let usable = sp
                .num(ip)
                .is_some_and(|n| n >= first && n <= last && n != sp.gateway);
            if !usable {
                return Err(NetError::Invalid(format!(
                    "address {ip} is not a usable host address of subnet {}",
                    sp.cidr()
                )));
            }
            if let Some((holder, _)) = self.allocated.iter().find(|(_, a)| **a == ip) {
                return Err(NetError::InUse(format!(
                    "address {ip} is already in use (by container {})",
                    &holder[..holder.len().min(12)]
                )));
            }
            self.allocated.insert(id.to_string(), ip);
            self.save()?;
            return Ok(ip);
        }
        let used: std::collections::HashSet<u128> =
            self.allocated.values().filter_map(|a| sp.num(*a)).collect();
        let (first, last) = self.range;
        let start = self.next.clamp(first, last);
        // At most one step past every allocated address: a /64 is never walked through.
        let n = (start..=last)
            .chain(first..start)
            .find(|n| *n != sp.gateway && !used.contains(n))
            .ok_or_else(|| NetError::Exhausted(sp.cidr()))?;
        self.next = n.wrapping_add(1);
        let ip = sp.addr(n);
        self.allocated.insert(id.to_string(), ip);
        self.save()?;
        Ok(ip)
    }

    /// Releases the address of `id`.
    pub fn release(&mut self, id: &str) -> Result<(), NetError> {
        if self.allocated.remove(id).is_some() {
            self.save()?;
        }
        Ok(())
    }

    /// Ids holding an address.
    pub fn holders(&self) -> Vec<String> {
        self.allocated.keys().cloned().collect()
    }

    /// The address `id` holds.
    pub fn address_of(&self, id: &str) -> Option<IpAddr> {
        self.allocated.get(id).copied()
    }

    /// Deletes the persisted allocations (the network is removed).
    pub fn destroy(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_and_bounds() {
        let s = Subnet::parse("172.30.0.1/16").unwrap();
        assert_eq!(s.network(), Ipv4Addr::new(172, 30, 0, 0));
        assert_eq!(s.broadcast(), Ipv4Addr::new(172, 30, 255, 255));
        assert_eq!(s.cidr(), "172.30.0.0/16");
        for bad in [
            "172.30.0.0/16",
            "10.0.0.1",
            "10.0.0.1/33",
            "x/24",
            "10.0.0.255/24",
        ] {
            assert!(Subnet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn allocation_skips_gateway_persists_and_exhausts() {
        let dir = tempfile::tempdir().unwrap();
        let sub = Subnet::parse("10.9.0.1/30").unwrap(); // hosts .1 (gateway) and .2
        let p = dir.path().join("ipam.json");
        let mut ipam = Ipam::open(sub, p.clone()).unwrap();
        assert_eq!(ipam.allocate("a").unwrap(), Ipv4Addr::new(10, 9, 0, 2));
        assert_eq!(ipam.allocate("a").unwrap(), Ipv4Addr::new(10, 9, 0, 2));
        assert!(matches!(ipam.allocate("b"), Err(NetError::Exhausted(_))));
        let mut again = Ipam::open(sub, p).unwrap();
        assert!(
            matches!(again.allocate("b"), Err(NetError::Exhausted(_))),
            "persisted"
        );
        again.release("a").unwrap();
        assert_eq!(again.allocate("b").unwrap(), Ipv4Addr::new(10, 9, 0, 2));
    }

    #[test]
    fn a_released_address_is_not_handed_out_again_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let sub = Subnet::parse("10.6.0.1/29").unwrap(); // hosts .2 to .6
        let mut ipam = Ipam::open(sub, dir.path().join("i.json")).unwrap();
        assert_eq!(ipam.allocate("a").unwrap(), Ipv4Addr::new(10, 6, 0, 2));
        ipam.release("a").unwrap();
        assert_eq!(ipam.allocate("b").unwrap(), Ipv4Addr::new(10, 6, 0, 3));
        for (id, last) in [("c", 4), ("d", 5), ("e", 6)] {
            assert_eq!(ipam.allocate(id).unwrap(), Ipv4Addr::new(10, 6, 0, last));
        }
        // Wraps around to the free ones.
        assert_eq!(ipam.allocate("f").unwrap(), Ipv4Addr::new(10, 6, 0, 2));
        assert!(matches!(ipam.allocate("g"), Err(NetError::Exhausted(_))));
    }

    #[test]
    fn a_lost_file_is_rebuilt_from_the_holders() {
        let dir = tempfile::tempdir().unwrap();
        let sub = Subnet::parse("10.7.0.1/24").unwrap();
        let p = dir.path().join("ipam.json");
        // What a host crash can leave of a file that was renamed before its data hit disk.
        std::fs::write(&p, "").unwrap();
        let mut ipam = Ipam::open(sub, p.clone()).unwrap();
        let held = Ipv4Addr::new(10, 7, 0, 2);
        assert!(ipam.hold("running", held.into()).unwrap());
        assert!(
            !ipam.hold("other", held.into()).unwrap(),
            "one holder per address"
        );
        assert_eq!(ipam.allocate("new").unwrap(), Ipv4Addr::new(10, 7, 0, 3));
        let again = Ipam::open(sub, p).unwrap();
        assert_eq!(again.address_of("running"), Some(held.into()));
    }

    #[test]
    fn ranges_static_addresses_and_cidrs() {
        let dir = tempfile::tempdir().unwrap();
        let sub = Subnet::from_cidr("10.8.0.0/24", None).unwrap();
        assert_eq!(sub.gateway, Ipv4Addr::new(10, 8, 0, 1));
        assert!(Subnet::from_cidr("10.8.0.0/24", Some("10.9.0.1")).is_err());
        assert!(sub.overlaps(Ipv4Addr::new(10, 0, 0, 0), 8));
        assert!(!sub.overlaps(Ipv4Addr::new(10, 8, 1, 0), 24));
        let mut ipam = Ipam::open(sub, dir.path().join("i.json"))
            .unwrap()
            .with_range(Some("10.8.0.128/25"))
            .unwrap();
        assert_eq!(ipam.allocate("a").unwrap(), Ipv4Addr::new(10, 8, 0, 128));
        let fixed = Ipv4Addr::new(10, 8, 0, 5);
        assert_eq!(ipam.allocate_with("b", Some(fixed.into())).unwrap(), fixed);
        assert!(matches!(
            ipam.allocate_with("c", Some(fixed.into())),
            Err(NetError::InUse(_))
        ));
        assert!(ipam
            .allocate_with("c", Some(Ipv4Addr::new(10, 8, 0, 1).into()))
            .is_err());
        assert!(Ipam::open(sub, dir.path().join("j.json"))
            .unwrap()
            .with_range(Some("10.9.0.0/25"))
            .is_err());
        assert_eq!(
            parse_cidr("10.1.2.3/16").unwrap().0,
            Ipv4Addr::new(10, 1, 0, 0)
        );
    }

    #[test]
    fn ipv6_subnets_parse_allocate_and_overlap() {
        let s = Subnet6::from_cidr("fd00:1::/64", None).unwrap();
        assert_eq!(s.gateway, "fd00:1::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(s.cidr(), "fd00:1::/64");
        assert_eq!(String::from(s), "fd00:1::1/64");
        assert_eq!(
            Subnet6::from_cidr("fd00:1::1234/64", Some("fd00:1::fe"))
                .unwrap()
                .cidr(),
            "fd00:1::/64",
            "host bits cleared"
        );
        assert!(Subnet6::from_cidr("fd00:1::/64", Some("fd00:2::1")).is_err());
        for bad in [
            "fd00:1::/64",
            "fd00::1",
            "fd00::1/127",
            "x::1/64",
            "10.0.0.1/24",
        ] {
            assert!(Subnet6::parse(bad).is_err(), "{bad}");
        }
        assert!(s.overlaps("fd00::".parse().unwrap(), 16));
        assert!(s.overlaps("fd00:1::8000:0:0:0".parse().unwrap(), 65));
        assert!(!s.overlaps("fd00:2::".parse().unwrap(), 64));
        assert!(s.contains("fd00:1::ffff".parse().unwrap()));
        assert!(!s.contains("fd00:2::1".parse().unwrap()));

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v6.json");
        let mut ipam = Ipam::open6(s, p.clone()).unwrap();
        assert!(ipam.is_v6());
        let a: IpAddr = "fd00:1::2".parse().unwrap();
        assert_eq!(ipam.allocate("a").unwrap(), a, "after the gateway");
        let fixed: IpAddr = "fd00:1::abcd".parse().unwrap();
        assert_eq!(ipam.allocate_with("b", Some(fixed)).unwrap(), fixed);
        assert!(matches!(
            ipam.allocate_with("c", Some(fixed)),
            Err(NetError::InUse(_))
        ));
        for not_host in ["fd00:1::", "fd00:1::1", "fd00:2::5", "10.0.0.5"] {
            assert!(
                ipam.allocate_with("c", Some(not_host.parse().unwrap()))
                    .is_err(),
                "{not_host}"
            );
        }
        assert_eq!(
            ipam.allocate("c").unwrap(),
            "fd00:1::3".parse::<IpAddr>().unwrap()
        );
        let again = Ipam::open6(s, p).unwrap();
        assert_eq!(again.address_of("b"), Some(fixed), "persisted");
        // A range at the top of the subnet: its last address is a host's (no broadcast).
        let mut r = Ipam::open6(s, dir.path().join("r.json"))
            .unwrap()
            .with_range(Some("fd00:1::ffff:ffff:ffff:fffe/127"))
            .unwrap();
        assert_eq!(
            r.allocate("x").unwrap(),
            "fd00:1::ffff:ffff:ffff:fffe".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            r.allocate("y").unwrap(),
            "fd00:1::ffff:ffff:ffff:ffff".parse::<IpAddr>().unwrap()
        );
        assert!(matches!(r.allocate("z"), Err(NetError::Exhausted(_))));
        assert!(Ipam::open6(s, dir.path().join("q.json"))
            .unwrap()
            .with_range(Some("fd00:2::/80"))
            .is_err());
    }

    #[test]
    fn files_of_before_ipv6_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("old.json");
        std::fs::write(&p, r#"{"abc":"10.5.0.2"}"#).unwrap();
        let sub = Subnet::parse("10.5.0.1/24").unwrap();
        let mut ipam = Ipam::open(sub, p.clone()).unwrap();
        assert_eq!(
            ipam.address_of("abc"),
            Some(Ipv4Addr::new(10, 5, 0, 2).into())
        );
        assert_eq!(ipam.allocate("new").unwrap(), Ipv4Addr::new(10, 5, 0, 3));
        // Still the same shape on disk: an id → address map.
        let on_disk: BTreeMap<String, Ipv4Addr> =
            serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(on_disk.len(), 2);
        assert!(!dir.path().join("old.tmp").exists(), "renamed into place");
    }
}
