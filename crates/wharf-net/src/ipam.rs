//! Address management for one subnet: allocations persisted atomically, so a restarted daemon
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
use std::net::Ipv4Addr;
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

/// Allocations of one subnet, by endpoint key (the container id), optionally limited to an
/// `--ip-range` for dynamic addresses.
pub struct Ipam {
    subnet: Subnet,
    /// First and last address handed out dynamically.
    range: (u32, u32),
    path: PathBuf,
    allocated: BTreeMap<String, Ipv4Addr>,
    /// Where the next dynamic allocation starts looking (the one after the last handed out,
    /// as Docker's IPAM does): a just-released address is not reused at once, while the
    /// kernel may still be removing the stopped container's veth that had it (and its MAC).
    next: u32,
}

impl Ipam {
    /// Loads the allocations kept at `path` (none if the file is absent, or unreadable after
    /// a host crash: the daemon's start re-asserts what running containers hold).
    pub fn open(subnet: Subnet, path: PathBuf) -> Result<Ipam, NetError> {
        let allocated = match std::fs::read(&path) {
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
            subnet,
            range: (
                u32::from(subnet.network()) + 1,
                u32::from(subnet.broadcast()) - 1,
            ),
            path,
            allocated,
            next: u32::from(subnet.network()) + 1,
        })
    }

    /// Limits dynamic allocation to `range` (`network/prefix` inside the subnet).
    pub fn with_range(mut self, range: Option<&str>) -> Result<Ipam, NetError> {
        if let Some(r) = range.filter(|r| !r.is_empty()) {
            let (net, prefix) = parse_cidr(r)?;
            if prefix < self.subnet.prefix || !self.subnet.contains(net) {
                return Err(NetError::Invalid(format!(
                    "ip-range {r} is not inside subnet {}",
                    self.subnet.cidr()
                )));
            }
            let size = if prefix == 32 {
                1
            } else {
                1u32 << (32 - prefix)
            };
            let lo = u32::from(net).max(self.range.0);
            let hi = (u32::from(net) + size - 1).min(self.range.1);
            self.range = (lo, hi);
        }
        Ok(self)
    }

    fn save(&self) -> Result<(), NetError> {
        // Atomic (rename), deliberately not durable: see the module's doc.
        let io = |source| NetError::Io {
            path: self.path.clone(),
            source,
        };
        let tmp = self.path.with_extension("tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec(&self.allocated).expect("serializable"),
        )
        .map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }

    /// Records that `id` holds `ip` (a running container's address, from its own record,
    /// when the daemon starts). False if another holder has it.
    pub fn hold(&mut self, id: &str, ip: Ipv4Addr) -> Result<bool, NetError> {
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
    pub fn allocate(&mut self, id: &str) -> Result<Ipv4Addr, NetError> {
        self.allocate_with(id, None)
    }

    /// The address of `id`: `requested` (`--ip`, which must be free and in the subnet) or
    /// the next free one of the range after the last one handed out.
    pub fn allocate_with(
        &mut self,
        id: &str,
        requested: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr, NetError> {
        if let Some(ip) = self.allocated.get(id) {
            if requested.is_none_or(|r| r == *ip) {
                return Ok(*ip);
            }
            self.allocated.remove(id);
        }
        if let Some(ip) = requested {
            if !self.subnet.contains(ip)
                || ip == self.subnet.network()
                || ip == self.subnet.broadcast()
                || ip == self.subnet.gateway
            {
                return Err(NetError::Invalid(format!(
                    "address {ip} is not a usable host address of subnet {}",
                    self.subnet.cidr()
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
        let used: std::collections::HashSet<Ipv4Addr> = self.allocated.values().copied().collect();
        let (first, last) = self.range;
        let start = self.next.clamp(first, last);
        let ip = (start..=last)
            .chain(first..start)
            .map(Ipv4Addr::from)
            .find(|ip| *ip != self.subnet.gateway && !used.contains(ip))
            .ok_or_else(|| NetError::Exhausted(self.subnet.cidr()))?;
        self.next = u32::from(ip).wrapping_add(1);
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
    pub fn address_of(&self, id: &str) -> Option<Ipv4Addr> {
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
        assert!(ipam.hold("running", held).unwrap());
        assert!(!ipam.hold("other", held).unwrap(), "one holder per address");
        assert_eq!(ipam.allocate("new").unwrap(), Ipv4Addr::new(10, 7, 0, 3));
        let again = Ipam::open(sub, p).unwrap();
        assert_eq!(again.address_of("running"), Some(held));
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
        assert_eq!(ipam.allocate_with("b", Some(fixed)).unwrap(), fixed);
        assert!(matches!(
            ipam.allocate_with("c", Some(fixed)),
            Err(NetError::InUse(_))
        ));
        assert!(ipam
            .allocate_with("c", Some(Ipv4Addr::new(10, 8, 0, 1)))
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
}
