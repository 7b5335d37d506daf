//! Address management for one subnet: allocations persisted atomically, so a restarted daemon
//! never hands out an address twice.

use crate::NetError;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// An IPv4 subnet with its gateway (`172.30.0.1/16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Allocations of one subnet, by container id.
pub struct Ipam {
    subnet: Subnet,
    path: PathBuf,
    allocated: BTreeMap<String, Ipv4Addr>,
}

impl Ipam {
    /// Loads the allocations kept at `path` (none if the file is absent).
    pub fn open(subnet: Subnet, path: PathBuf) -> Result<Ipam, NetError> {
        let allocated = match std::fs::read(&path) {
            Ok(d) => serde_json::from_slice(&d).map_err(|e| NetError::Io {
                path: path.clone(),
                source: std::io::Error::other(e),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(NetError::Io { path, source }),
        };
        Ok(Ipam {
            subnet,
            path,
            allocated,
        })
    }

    fn save(&self) -> Result<(), NetError> {
        use std::io::Write;
        let io = |source| NetError::Io {
            path: self.path.clone(),
            source,
        };
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&serde_json::to_vec(&self.allocated).expect("serializable"))
            .map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }

    /// The address of `id`, allocating the lowest free one the first time.
    pub fn allocate(&mut self, id: &str) -> Result<Ipv4Addr, NetError> {
        if let Some(ip) = self.allocated.get(id) {
            return Ok(*ip);
        }
        let used: std::collections::HashSet<Ipv4Addr> = self.allocated.values().copied().collect();
        let first = u32::from(self.subnet.network()) + 1;
        let last = u32::from(self.subnet.broadcast()) - 1;
        let ip = (first..=last)
            .map(Ipv4Addr::from)
            .find(|ip| *ip != self.subnet.gateway && !used.contains(ip))
            .ok_or_else(|| NetError::Exhausted(self.subnet.cidr()))?;
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
}
