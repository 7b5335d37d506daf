//! `Networks`: the daemon's networks, their IPAM and host-side state, published ports and
//! the embedded DNS; what the engine calls.

use crate::bridge::{self, AttachSpec, Endpoint};
use crate::dns::Dns;
use crate::firewall::{Family, Firewall};
use crate::ipam::{parse_cidr, Ipam, Subnet, Subnet6};
use crate::network::{CreateOptions, Network, Pool, OPT_BRIDGE_NAME, OPT_MTU};
use crate::ports::{PortMapping, PortRequest, PortTable};
use crate::proxy::Proxies;
use crate::{BridgeConfig, NetError};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How the daemon's networking is set up.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Networks and IPAM files.
    pub state_dir: PathBuf,
    /// Prefix of every link and chain this daemon makes (its default bridge's name).
    pub prefix: String,
    /// The default `bridge` network (`None`: `--bridge none`).
    pub default_bridge: Option<BridgeConfig>,
    pub mtu: u32,
    /// Where networks created without `--subnet` get one: (base CIDR, size of each subnet).
    pub pools: Vec<(String, u8)>,
}

impl NetConfig {
    /// The defaults for a daemon with `default_bridge`: Docker's pools without 172.17/16
    /// (Docker's default bridge) and without the default bridge's own subnet.
    pub fn new(state_dir: PathBuf, default_bridge: Option<BridgeConfig>) -> NetConfig {
        let mut pools: Vec<(String, u8)> =
            (18..=31).map(|b| (format!("172.{b}.0.0/16"), 16)).collect();
        pools.push(("192.168.0.0/16".into(), 20));
        NetConfig {
            state_dir,
            prefix: default_bridge
                .as_ref()
                .map(|b| b.name.clone())
                .unwrap_or_else(|| "wharf".into()),
            mtu: default_bridge.as_ref().map(|b| b.mtu).unwrap_or(1500),
            default_bridge,
            pools,
        }
    }
}

/// A network's allocators: one per subnet, in the order of its subnets.
struct NetIpam {
    v4: Vec<Ipam>,
    v6: Vec<Ipam>,
}

/// Where the allocations of a network's `n`th subnet are kept: the first IPv4 subnet's in
/// the file of before several subnets (`ipam-<id>.json`).
fn ipam_path(dir: &Path, id: &str, v6: bool, n: usize) -> PathBuf {
    match (v6, n) {
        (false, 0) => dir.join(format!("ipam-{id}.json")),
        (false, n) => dir.join(format!("ipam-{id}-{n}.json")),
        (true, n) => dir.join(format!("ipam-{id}-v6-{n}.json")),
    }
}

/// The address of `id` from one of `pools`: `requested`'s subnet (which must be one of
/// them), else the one it holds, else the first with a free address. (pool index, address).
fn allocate_in(
    pools: &mut [Ipam],
    id: &str,
    requested: Option<IpAddr>,
) -> Result<(usize, IpAddr), NetError> {
    if let Some(ip) = requested {
        let i = pools.iter().position(|p| p.contains(ip)).ok_or_else(|| {
            NetError::Invalid(format!("no configured subnet contains IP address {ip}"))
        })?;
        for (j, p) in pools.iter_mut().enumerate() {
            if j != i {
                p.release(id)?;
            }
        }
        return Ok((i, pools[i].allocate_with(id, Some(ip))?));
    }
    if let Some(i) = pools.iter().position(|p| p.address_of(id).is_some()) {
        return Ok((i, pools[i].allocate(id)?));
    }
    let mut exhausted = None;
    for (i, p) in pools.iter_mut().enumerate() {
        match p.allocate(id) {
            Ok(ip) => return Ok((i, ip)),
            Err(e @ NetError::Exhausted(_)) => exhausted = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(exhausted.unwrap_or_else(|| NetError::Invalid("the network has no subnet".into())))
}

impl NetIpam {
    fn open(dir: &Path, n: &Network) -> Result<NetIpam, NetError> {
        let mut v4 = Vec::new();
        for (i, p) in n.subnets4().iter().enumerate() {
            v4.push(
                Ipam::open(p.subnet, ipam_path(dir, &n.id, false, i))?
                    .with_range(p.ip_range.as_deref())?,
            );
        }
        let mut v6 = Vec::new();
        for (i, p) in n.active6().iter().enumerate() {
            v6.push(
                Ipam::open6(p.subnet, ipam_path(dir, &n.id, true, i))?
                    .with_range(p.ip_range.as_deref())?,
            );
        }
        Ok(NetIpam { v4, v6 })
    }

    fn all(&self) -> impl Iterator<Item = &Ipam> {
        self.v4.iter().chain(self.v6.iter())
    }

    fn holders(&self) -> Vec<String> {
        let mut h: Vec<String> = self.all().flat_map(|i| i.holders()).collect();
        h.sort();
        h.dedup();
        h
    }

    fn release(&mut self, id: &str) -> Result<(), NetError> {
        for i in self.v4.iter_mut().chain(self.v6.iter_mut()) {
            i.release(id)?;
        }
        Ok(())
    }

    /// Records that `id` holds `ip` (in the subnet that contains it); false if another does.
    fn hold(&mut self, id: &str, ip: IpAddr) -> Result<bool, NetError> {
        match self
            .v4
            .iter_mut()
            .chain(self.v6.iter_mut())
            .find(|i| i.contains(ip))
        {
            Some(i) => i.hold(id, ip),
            None => Ok(false),
        }
    }

    fn destroy(self) {
        for i in self.v4.into_iter().chain(self.v6) {
            i.destroy();
        }
    }
}

struct Inner {
    nets: BTreeMap<String, Network>,
    ipams: HashMap<String, NetIpam>,
    /// Networks whose bridge and rules were checked since the daemon started.
    ready: HashSet<String>,
    base_ready: bool,
    ports: PortTable,
}

/// The daemon's networks.
pub struct Networks {
    cfg: NetConfig,
    fw: Firewall,
    inner: Mutex<Inner>,
    pub dns: Arc<Dns>,
    proxies: Proxies,
}

fn new_id() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("getrandom");
    hex::encode(b)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The destinations routed in the daemon's network namespace (the calling thread's), less
/// the default route and routes that reach no one (`netlink::routed_destinations`).
fn routed_here() -> Result<Vec<(Ipv4Addr, u8)>, NetError> {
    let routes = crate::netlink::Netlink::open()?.routes()?;
    Ok(crate::netlink::routed_destinations(&routes))
}

/// The IPv6 destinations routed in the daemon's network namespace.
fn routed_here6() -> Result<Vec<(Ipv6Addr, u8)>, NetError> {
    let routes = crate::netlink::Netlink::open()?.routes6()?;
    Ok(crate::netlink::routed_destinations6(&routes))
}

/// The daemon's unique local IPv6 prefix (`fdXX:XXXX:XXXX::/48`, RFC 4193), whose /64s
/// networks created with `--ipv6` and no IPv6 subnet get, as with Docker 28 (which derives
/// its /48 from its host id): the 40-bit global id here is a hash of the machine id, so it
/// is stable across restarts and differs between hosts.
pub fn ula_base(machine_id: &str) -> Ipv6Addr {
    // FNV-1a, 64 bits: spreading, not secrecy, is what the global id needs.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in machine_id.trim().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let gid = u128::from(h & ((1u64 << 40) - 1));
    Ipv6Addr::from((0xfdu128 << 120) | (gid << 80))
}

/// The first /64 of the /48 at `base` that overlaps none of `taken` (other networks' IPv6
/// subnets) and `routes` (IPv6 destinations routed in the daemon's namespace).
fn first_free_subnet6(
    base: Ipv6Addr,
    taken: &[Subnet6],
    routes: &[(Ipv6Addr, u8)],
) -> Result<Subnet6, NetError> {
    for i in 0..(1u128 << 16) {
        let net = Ipv6Addr::from(u128::from(base) + (i << 64));
        let cand = Subnet6::from_cidr(&format!("{net}/64"), None)?;
        let used = taken.iter().any(|s| cand.overlaps(s.network(), s.prefix))
            || routes.iter().any(|(d, p)| cand.overlaps(*d, *p));
        if !used {
            return Ok(cand);
        }
    }
    Err(NetError::Invalid(
        "could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network".into(),
    ))
}

/// The first subnet of `pools` that overlaps none of `taken` (other networks' subnets),
/// `routes` (destinations routed in the daemon's namespace) and Docker's 172.17.0.0/16.
fn first_free_subnet(
    pools: &[(String, u8)],
    taken: &[Subnet],
    routes: &[(Ipv4Addr, u8)],
) -> Result<Subnet, NetError> {
    for (base, size) in pools {
        let (net, prefix) = parse_cidr(base)?;
        if *size < prefix {
            continue;
        }
        let count = 1u64 << (size - prefix);
        for i in 0..count {
            let start = u32::from(net) + (i as u32) * (1u32 << (32 - size));
            let cand = Subnet::from_cidr(&format!("{}/{size}", Ipv4Addr::from(start)), None)?;
            let used = taken.iter().any(|s| cand.overlaps(s.network(), s.prefix))
                || routes.iter().any(|(d, p)| cand.overlaps(*d, *p))
                || cand.overlaps(Ipv4Addr::new(172, 17, 0, 0), 16);
            if !used {
                return Ok(cand);
            }
        }
    }
    Err(NetError::Invalid(
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
    ))
}

impl Networks {
    /// Loads the networks (making the predefined ones the first time); nothing is created
    /// on the host until a container needs it.
    pub fn open(cfg: NetConfig) -> Result<Networks, NetError> {
        let dir = cfg.state_dir.join("networks");
        std::fs::create_dir_all(&dir).map_err(|e| NetError::io(&dir, e))?;
        let mut nets = BTreeMap::new();
        for e in std::fs::read_dir(&dir)
            .map_err(|e| NetError::io(&dir, e))?
            .flatten()
        {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                let data = std::fs::read(&p).map_err(|e| NetError::io(&p, e))?;
                match serde_json::from_slice::<Network>(&data) {
                    Ok(n) => {
                        nets.insert(n.id.clone(), n);
                    }
                    Err(e) => tracing::warn!("skipping {}: {e}", p.display()),
                }
            }
        }
        let mut wanted: Vec<Network> = vec![Network {
            id: String::new(),
            name: "host".into(),
            driver: "host".into(),
            created: now(),
            bridge: String::new(),
            subnet: None,
            ip_range: None,
            more_subnets: vec![],
            enable_ipv6: false,
            subnets6: vec![],
            internal: false,
            attachable: false,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            ipam_options: BTreeMap::new(),
            mtu: 0,
            default_bridge: false,
        }];
        let mut none = wanted[0].clone();
        none.name = "none".into();
        none.driver = "null".into();
        wanted.push(none);
        if let Some(b) = &cfg.default_bridge {
            let mut n = wanted[0].clone();
            n.name = "bridge".into();
            n.driver = "bridge".into();
            n.bridge = b.name.clone();
            n.subnet = Some(b.subnet);
            n.mtu = b.mtu;
            n.default_bridge = true;
            n.options.insert(OPT_BRIDGE_NAME.into(), b.name.clone());
            wanted.push(n);
        }
        for mut w in wanted {
            match nets.values().find(|n| n.name == w.name).cloned() {
                Some(old)
                    if old.driver == w.driver
                        && old.bridge == w.bridge
                        && old.subnet == w.subnet
                        && old.mtu == w.mtu => {}
                Some(old) => {
                    // --bip or --mtu changed: same network, new settings.
                    w.id = old.id.clone();
                    w.created = old.created.clone();
                    w.save(&dir)?;
                    nets.insert(w.id.clone(), w);
                }
                None => {
                    w.id = new_id();
                    w.save(&dir)?;
                    nets.insert(w.id.clone(), w);
                }
            }
        }
        let mut ipams = HashMap::new();
        for n in nets.values() {
            if n.subnet.is_some() || !n.subnets6.is_empty() {
                ipams.insert(n.id.clone(), NetIpam::open(&cfg.state_dir, n)?);
            }
        }
        Ok(Networks {
            fw: Firewall::new(&cfg.prefix),
            cfg,
            inner: Mutex::new(Inner {
                nets,
                ipams,
                ready: HashSet::new(),
                base_ready: false,
                ports: PortTable::default(),
            }),
            dns: Arc::new(Dns::default()),
            proxies: Proxies::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("networks lock")
    }

    /// Every network.
    pub fn list(&self) -> Vec<Network> {
        self.lock().nets.values().cloned().collect()
    }

    /// A network by id, name or unique id prefix.
    pub fn get(&self, key: &str) -> Result<Network, NetError> {
        let g = self.lock();
        if let Some(n) = g.nets.get(key) {
            return Ok(n.clone());
        }
        if let Some(n) = g.nets.values().find(|n| n.name == key) {
            return Ok(n.clone());
        }
        let m: Vec<&Network> = g
            .nets
            .values()
            .filter(|n| !key.is_empty() && n.id.starts_with(key))
            .collect();
        match m.len() {
            1 => Ok(m[0].clone()),
            0 => Err(NetError::NotFound(key.to_string())),
            _ => Err(NetError::Invalid(format!(
                "network {key} is ambiguous ({} matches found based on ID prefix)",
                m.len()
            ))),
        }
    }

    /// The IPv4 address `container` holds on network `id`.
    pub fn address_of(&self, id: &str, container: &str) -> Option<Ipv4Addr> {
        self.lock()
            .ipams
            .get(id)?
            .v4
            .iter()
            .find_map(|i| match i.address_of(container) {
                Some(IpAddr::V4(a)) => Some(a),
                _ => None,
            })
    }

    fn pick_subnet(&self, nets: &BTreeMap<String, Network>) -> Result<Subnet, NetError> {
        let taken: Vec<Subnet> = nets
            .values()
            .flat_map(|n| n.subnets4().into_iter().map(|p| p.subnet))
            .collect();
        first_free_subnet(&self.cfg.pools, &taken, &routed_here()?)
    }

    fn pick_subnet6(&self, nets: &BTreeMap<String, Network>) -> Result<Subnet6, NetError> {
        let taken: Vec<Subnet6> = nets
            .values()
            .flat_map(|n| n.subnets6.iter().map(|p| p.subnet))
            .collect();
        let machine = std::fs::read_to_string("/etc/machine-id")
            .unwrap_or_else(|_| self.cfg.state_dir.display().to_string());
        first_free_subnet6(ula_base(&machine), &taken, &routed_here6()?)
    }

    /// `network create`: the record, its IPAM and its bridge with its rules.
    pub fn create(&self, o: CreateOptions) -> Result<Network, NetError> {
        if o.name.is_empty() {
            return Err(NetError::Invalid("network name is required".into()));
        }
        let driver = if o.driver.is_empty() {
            "bridge"
        } else {
            o.driver.as_str()
        };
        if driver != "bridge" {
            return Err(NetError::Invalid(format!(
                "wharf cannot create networks with driver {driver:?} (bridge only; host and none are predefined)"
            )));
        }
        let net = {
            let mut g = self.lock();
            if g.nets.values().any(|n| n.name == o.name) {
                return Err(NetError::InUse(format!(
                    "network with name {} already exists",
                    o.name
                )));
            }
            let overlap = |other: &Network| {
                NetError::InUse(format!(
                    "invalid pool request: Pool overlaps with other one on this address space (network {})",
                    other.name
                ))
            };
            let mut v4: Vec<Pool<Subnet>> = Vec::new();
            let mut v6: Vec<Pool<Subnet6>> = Vec::new();
            for r in &o.ipam {
                let nonempty = |x: &Option<String>| x.clone().filter(|v| !v.is_empty());
                let (gateway, ip_range) = (nonempty(&r.gateway), nonempty(&r.ip_range));
                let Some(cidr) = nonempty(&r.subnet) else {
                    if gateway.is_some() || ip_range.is_some() {
                        return Err(NetError::Invalid(
                            "a gateway or ip-range needs a subnet".into(),
                        ));
                    }
                    continue;
                };
                if cidr.contains(':') {
                    // Without --ipv6 it is kept (and shown) but unused, as with Docker.
                    let sub = Subnet6::from_cidr(&cidr, gateway.as_deref())?;
                    let clash = |x: &Subnet6| sub.overlaps(x.network(), x.prefix);
                    if let Some(other) = g
                        .nets
                        .values()
                        .find(|n| n.subnets6.iter().any(|p| clash(&p.subnet)))
                    {
                        return Err(overlap(other));
                    }
                    if v6.iter().any(|p| clash(&p.subnet)) {
                        return Err(NetError::InUse(format!("invalid pool request: subnet {cidr} overlaps another subnet of the network")));
                    }
                    v6.push(Pool {
                        subnet: sub,
                        ip_range,
                    });
                } else {
                    let sub = Subnet::from_cidr(&cidr, gateway.as_deref())?;
                    let clash = |x: &Subnet| sub.overlaps(x.network(), x.prefix);
                    if let Some(other) = g
                        .nets
                        .values()
                        .find(|n| n.subnets4().iter().any(|p| clash(&p.subnet)))
                    {
                        return Err(overlap(other));
                    }
                    if v4.iter().any(|p| clash(&p.subnet)) {
                        return Err(NetError::InUse(format!("invalid pool request: subnet {cidr} overlaps another subnet of the network")));
                    }
                    v4.push(Pool {
                        subnet: sub,
                        ip_range,
                    });
                }
            }
            if v4.is_empty() {
                v4.push(Pool {
                    subnet: self.pick_subnet(&g.nets)?,
                    ip_range: None,
                });
            }
            if o.enable_ipv6 && v6.is_empty() {
                v6.push(Pool {
                    subnet: self.pick_subnet6(&g.nets)?,
                    ip_range: None,
                });
            }
            let id = new_id();
            let bridge = match o.options.get(OPT_BRIDGE_NAME) {
                Some(b) if !b.is_empty() && b.len() <= 15 => b.clone(),
                Some(b) if !b.is_empty() => {
                    return Err(NetError::Invalid(format!(
                        "bridge name {b:?} is longer than 15 characters"
                    )))
                }
                _ => {
                    let room = 15usize.saturating_sub(self.cfg.prefix.len() + 1).max(4);
                    format!("{}-{}", self.cfg.prefix, &id[..room])
                }
            };
            let mtu = match o.options.get(OPT_MTU) {
                Some(m) => m
                    .parse()
                    .ok()
                    .filter(|m| (68..=65535).contains(m))
                    .ok_or_else(|| NetError::Invalid(format!("invalid MTU {m:?}")))?,
                None => self.cfg.mtu,
            };
            let n = Network {
                id: id.clone(),
                name: o.name.clone(),
                driver: "bridge".into(),
                created: now(),
                bridge,
                subnet: Some(v4[0].subnet),
                ip_range: v4[0].ip_range.clone(),
                more_subnets: v4[1..].to_vec(),
                enable_ipv6: o.enable_ipv6,
                subnets6: v6,
                internal: o.internal,
                attachable: o.attachable,
                labels: o.labels.clone(),
                options: o.options.clone(),
                ipam_options: o.ipam_options.clone(),
                mtu,
                default_bridge: false,
            };
            let ipam = NetIpam::open(&self.cfg.state_dir, &n)?;
            n.save(&self.cfg.state_dir.join("networks"))?;
            g.ipams.insert(id.clone(), ipam);
            g.nets.insert(id, n.clone());
            n
        };
        if let Err(e) = self.ensure(&net) {
            let _ = self.remove(&net.id);
            return Err(e);
        }
        Ok(net)
    }

    /// The host side of `net`: the daemon's chains, the bridge, its rules (once per run).
    fn ensure(&self, net: &Network) -> Result<(), NetError> {
        let (base, ready) = {
            let g = self.lock();
            (g.base_ready, g.ready.contains(&net.id))
        };
        if ready {
            return Ok(());
        }
        if !base {
            self.fw.ensure_base()?;
            self.lock().base_ready = true;
        }
        let subs: Vec<Subnet> = net.subnets4().iter().map(|p| p.subnet).collect();
        if subs.is_empty() {
            return Err(NetError::Invalid(format!(
                "network {} has no subnet",
                net.name
            )));
        }
        let subs6: Vec<Subnet6> = net.active6().iter().map(|p| p.subnet).collect();
        bridge::ensure_bridge_with(&net.bridge, &subs, &subs6, net.mtu)?;
        let cidrs: Vec<String> = subs.iter().map(|s| s.cidr()).collect();
        self.fw
            .add_network_in(Family::V4, &net.bridge, &cidrs, net.internal)?;
        if !subs6.is_empty() {
            let cidrs6: Vec<String> = subs6.iter().map(|s| s.cidr()).collect();
            self.fw
                .add_network_in(Family::V6, &net.bridge, &cidrs6, net.internal)?;
        }
        self.lock().ready.insert(net.id.clone());
        Ok(())
    }

    /// `network rm`: refused for predefined networks and networks with endpoints.
    pub fn remove(&self, key: &str) -> Result<Network, NetError> {
        let net = self.get(key)?;
        if net.predefined() {
            return Err(NetError::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                net.name
            )));
        }
        let ipam = {
            let mut g = self.lock();
            if g.ipams
                .get(&net.id)
                .is_some_and(|i| !i.holders().is_empty())
            {
                return Err(NetError::Forbidden(format!(
                    "error while removing network: network {} id {} has active endpoints",
                    net.name, net.id
                )));
            }
            g.nets.remove(&net.id);
            g.ready.remove(&net.id);
            g.ipams.remove(&net.id)
        };
        let cidrs: Vec<String> = net.subnets4().iter().map(|p| p.subnet.cidr()).collect();
        if !cidrs.is_empty() {
            self.fw
                .remove_network_in(Family::V4, &net.bridge, &cidrs, net.internal);
        }
        let cidrs6: Vec<String> = net.active6().iter().map(|p| p.subnet.cidr()).collect();
        if !cidrs6.is_empty() {
            self.fw
                .remove_network_in(Family::V6, &net.bridge, &cidrs6, net.internal);
        }
        bridge::delete_link(&net.bridge);
        if let Some(i) = ipam {
            i.destroy();
        }
        let _ = std::fs::remove_file(
            self.cfg
                .state_dir
                .join("networks")
                .join(format!("{}.json", net.id)),
        );
        Ok(net)
    }

    /// Connects container `id` (its init `pid`, created and not started) to bridge network
    /// `net` as its `index`th interface: an IPv4 address of one of its subnets (`requested`,
    /// else the first with one free) and, on a network with IPv6, an IPv6 one
    /// (`requested6`, else the next free).
    #[allow(clippy::too_many_arguments)]
    pub fn attach(
        &self,
        net: &Network,
        id: &str,
        pid: i32,
        index: u32,
        requested: Option<Ipv4Addr>,
        requested6: Option<Ipv6Addr>,
        mac: Option<[u8; 6]>,
    ) -> Result<Endpoint, NetError> {
        let started = std::time::Instant::now();
        if let (Some(ip6), true) = (requested6, net.active6().is_empty()) {
            return Err(NetError::Invalid(format!(
                "network {} has no IPv6 subnet for address {ip6}",
                net.name
            )));
        }
        self.ensure(net)?;
        let pools = net.subnets4();
        let (ip, sub, v6) = {
            let mut g = self.lock();
            let ipam = g
                .ipams
                .get_mut(&net.id)
                .ok_or_else(|| NetError::NotFound(net.name.clone()))?;
            let (i, ip) = allocate_in(&mut ipam.v4, id, requested.map(IpAddr::V4))?;
            let v6 = if ipam.v6.is_empty() {
                None
            } else {
                match allocate_in(&mut ipam.v6, id, requested6.map(IpAddr::V6)) {
                    Ok((j, IpAddr::V6(a))) => Some((a, net.active6()[j].subnet)),
                    Ok(_) => None,
                    Err(e) => {
                        let _ = ipam.release(id);
                        return Err(e);
                    }
                }
            };
            let IpAddr::V4(ip) = ip else {
                return Err(NetError::Invalid(
                    "an IPv4 pool gave an IPv6 address".into(),
                ));
            };
            (ip, pools[i].subnet, v6)
        };
        let allocated = started.elapsed();
        let veth = bridge::host_veth(id, index);
        let r = bridge::attach(&AttachSpec {
            bridge: &net.bridge,
            host_veth: &veth,
            ifname: &format!("eth{index}"),
            pid,
            ip,
            subnet: sub,
            v6,
            mtu: net.mtu,
            default_route: index == 0 && !net.internal,
            mac,
        });
        if r.is_err() {
            self.release(&net.id, id);
        }
        tracing::debug!(
            container = &id[..id.len().min(12)],
            network = %net.name,
            ipam_us = allocated.as_micros() as u64,
            total_us = started.elapsed().as_micros() as u64,
            "attached"
        );
        r
    }

    /// Disconnects container `id`'s `index`th interface from network `net` and frees its
    /// address. `netns_dying`: the container's processes are gone and nothing else shares
    /// its namespace, so the kernel removes the pair with it: no need to wait for that
    /// (deleting it here waits for the kernel's RCU grace periods, 10-20 ms), only a check a
    /// little later that it did.
    pub fn detach(&self, net_id: &str, id: &str, index: u32, netns_dying: bool) {
        let started = std::time::Instant::now();
        let veth = bridge::host_veth(id, index);
        if netns_dying {
            bridge::delete_link_later(&veth);
        } else {
            bridge::delete_link(&veth);
        }
        self.release(net_id, id);
        tracing::debug!(
            container = &id[..id.len().min(12)],
            total_us = started.elapsed().as_micros() as u64,
            "detached"
        );
    }

    fn release(&self, net_id: &str, id: &str) {
        if let Some(ipam) = self.lock().ipams.get_mut(net_id) {
            if let Err(e) = ipam.release(id) {
                tracing::warn!("releasing the address of {id}: {e}");
            }
        }
    }

    /// Publishes container `id`'s ports (at `ip`, and `ip6` on a network with IPv6): host
    /// ports picked, DNAT rules added, `[::1]` proxied.
    pub fn publish(
        &self,
        id: &str,
        ip: Ipv4Addr,
        ip6: Option<Ipv6Addr>,
        reqs: &[PortRequest],
    ) -> Result<Vec<PortMapping>, NetError> {
        if reqs.is_empty() {
            return Ok(vec![]);
        }
        let maps = self.lock().ports.assign(id, ip, ip6, reqs)?;
        let base = self.lock().base_ready;
        let r = if base { Ok(()) } else { self.fw.ensure_base() }
            .and_then(|_| self.fw.add_ports(id, &maps));
        if let Err(e) = r {
            if maps.iter().any(|m| m.host_ip.is_ipv6()) {
                self.fw.remove_ports_in(Family::V6, id);
            }
            self.lock().ports.release(id);
            return Err(e);
        }
        self.proxies.start(id, &maps);
        Ok(maps)
    }

    /// Removes container `id`'s published ports.
    pub fn unpublish(&self, id: &str) {
        self.proxies.stop(id);
        self.fw.remove_ports(id);
        if self.lock().ports.holds_v6(id) {
            self.fw.remove_ports_in(Family::V6, id);
        }
        self.lock().ports.release(id);
    }

    /// After a restart: records the ports of a container that still runs (and proxies its
    /// `[::1]` ones again).
    pub fn restore_ports(&self, id: &str, maps: &[PortMapping]) {
        {
            let mut g = self.lock();
            for m in maps {
                g.ports.insert(id, m);
            }
        }
        self.proxies.start(id, maps);
    }

    /// After a restart: frees the addresses and rules of containers that no longer run, and
    /// re-asserts the addresses of those that do (`held`: (network id, container, address)
    /// from the containers' own records), so an IPAM file lost with a host crash or written
    /// just before a kill cannot hand a running container's address out again.
    pub fn reconcile(&self, live: &[String], held: &[(String, String, IpAddr)]) {
        for (net, id, ip) in held {
            if let Some(ipam) = self.lock().ipams.get_mut(net) {
                match ipam.hold(id, *ip) {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(
                        "{ip} of container {} is held by another container",
                        &id[..id.len().min(12)]
                    ),
                    Err(e) => tracing::warn!("recording the address of {id}: {e}"),
                }
            }
        }
        let stale: Vec<(String, String)> = {
            let g = self.lock();
            g.ipams
                .iter()
                .flat_map(|(net, i)| i.holders().into_iter().map(move |h| (net.clone(), h)))
                .filter(|(_, h)| !live.contains(h))
                .collect()
        };
        for (net, h) in stale {
            tracing::info!(
                "freeing the address of container {} on network {}",
                &h[..h.len().min(12)],
                &net[..12]
            );
            self.release(&net, &h);
        }
        for owner in self.fw.port_owners() {
            if !live.contains(&owner) {
                self.fw.remove_ports(&owner);
            }
        }
        if self.lock().nets.values().any(|n| n.enable_ipv6) {
            for owner in self.fw.port_owners_in(Family::V6) {
                if !live.contains(&owner) {
                    self.fw.remove_ports_in(Family::V6, &owner);
                }
            }
        }
    }

    /// Removes every link and chain of the daemon with `prefix` and state in `state_dir`
    /// (for tests and uninstall).
    pub fn teardown(prefix: &str, state_dir: &Path) {
        Firewall::new(prefix).teardown();
        let mut links: Vec<String> = vec![prefix.to_string()];
        if let Ok(rd) = std::fs::read_dir(state_dir.join("networks")) {
            for e in rd.flatten() {
                if let Ok(n) = std::fs::read(e.path())
                    .map_err(|_| ())
                    .and_then(|d| serde_json::from_slice::<Network>(&d).map_err(|_| ()))
                {
                    if !n.bridge.is_empty() {
                        links.push(n.bridge);
                    }
                }
            }
        }
        match crate::netlink::Netlink::open().and_then(|mut nl| nl.bridges()) {
            Ok(bridges) => links.extend(
                bridges
                    .into_iter()
                    .filter(|b| b.starts_with(&format!("{prefix}-"))),
            ),
            Err(e) => tracing::warn!("{e}"),
        }
        links.sort();
        links.dedup();
        for l in links {
            bridge::delete_link(&l);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::tests::{ip_in, new_netns};
    use crate::netlink::{in_netns, Netlink};

    fn pools() -> Vec<(String, u8)> {
        NetConfig::new(PathBuf::new(), None).pools
    }

    #[test]
    fn subnets_skip_networks_routes_and_dockers_default() {
        let sub = |s: &str| Subnet::from_cidr(s, None).unwrap();
        let first = first_free_subnet(&pools(), &[], &[]).unwrap();
        assert_eq!(first.cidr(), "172.18.0.0/16");
        let taken = [sub("172.18.0.0/16")];
        let routes = [(Ipv4Addr::new(172, 19, 4, 0), 24)];
        assert_eq!(
            first_free_subnet(&pools(), &taken, &routes).unwrap().cidr(),
            "172.20.0.0/16"
        );
        // Everything routed: no pool left, with Docker's message.
        let all = [(Ipv4Addr::UNSPECIFIED, 1), (Ipv4Addr::new(128, 0, 0, 0), 1)];
        let e = first_free_subnet(&pools(), &[], &all).unwrap_err();
        assert!(
            e.to_string().contains("non-overlapping IPv4 address pool"),
            "{e}"
        );
    }

    #[test]
    fn ipv6_subnets_come_from_a_stable_ula_prefix() {
        let base = ula_base("0123456789abcdef0123456789abcdef");
        assert_eq!(
            base,
            ula_base("0123456789abcdef0123456789abcdef\n"),
            "stable"
        );
        assert_ne!(base, ula_base("fedcba9876543210fedcba9876543210"));
        let seg = base.segments();
        assert_eq!(seg[0] >> 8, 0xfd, "RFC 4193 locally assigned");
        assert_eq!(&seg[3..], &[0; 5], "a /48");
        let first = first_free_subnet6(base, &[], &[]).unwrap();
        assert_eq!(first.network(), base);
        assert_eq!(first.prefix, 64);
        let second = first_free_subnet6(base, &[first], &[]).unwrap();
        assert_eq!(
            u128::from(second.network()) - u128::from(base),
            1u128 << 64,
            "the next /64"
        );
        // A routed destination covering the first two takes them.
        let third = first_free_subnet6(base, &[], &[(base, 63)]).unwrap();
        assert_eq!(u128::from(third.network()) - u128::from(base), 2u128 << 64);
    }

    #[test]
    fn several_subnets_allocate_in_order_and_honour_requests() {
        let dir = tempfile::tempdir().unwrap();
        let a = Ipam::open(Subnet::parse("10.3.0.1/30").unwrap(), dir.path().join("a")).unwrap();
        let b = Ipam::open(Subnet::parse("10.4.0.1/24").unwrap(), dir.path().join("b")).unwrap();
        let mut pools = vec![a, b];
        // The first subnet has one host address: the next container gets the second's.
        assert_eq!(
            allocate_in(&mut pools, "c1", None).unwrap(),
            (0, "10.3.0.2".parse().unwrap())
        );
        assert_eq!(
            allocate_in(&mut pools, "c2", None).unwrap(),
            (1, "10.4.0.2".parse().unwrap())
        );
        assert_eq!(
            allocate_in(&mut pools, "c1", None).unwrap(),
            (0, "10.3.0.2".parse().unwrap()),
            "what it holds"
        );
        // `--ip` of any subnet; moving c1 frees its old address.
        assert_eq!(
            allocate_in(&mut pools, "c1", Some("10.4.0.9".parse().unwrap())).unwrap(),
            (1, "10.4.0.9".parse().unwrap())
        );
        assert_eq!(pools[0].address_of("c1"), None);
        let e = allocate_in(&mut pools, "c3", Some("10.9.0.2".parse().unwrap())).unwrap_err();
        assert!(
            e.to_string().contains("no configured subnet contains"),
            "{e}"
        );
        // Every subnet full: exhausted.
        let mut full =
            vec![Ipam::open(Subnet::parse("10.5.0.1/30").unwrap(), dir.path().join("f")).unwrap()];
        allocate_in(&mut full, "x", None).unwrap();
        assert!(matches!(
            allocate_in(&mut full, "y", None),
            Err(NetError::Exhausted(_))
        ));
    }

    fn test_networks(dir: &Path, prefix: &str) -> Networks {
        let mut cfg = NetConfig::new(dir.to_path_buf(), None);
        cfg.prefix = prefix.to_string();
        Networks::open(cfg).unwrap()
    }

    #[test]
    fn create_checks_ipv6_and_overlaps_across_every_subnet() {
        if !nix::unistd::geteuid().is_root() {
            wharf_testkit::skip("needs root (creates a bridge)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut r = [0u8; 3];
        getrandom::fill(&mut r).unwrap();
        let prefix = format!("wq{:02x}{:02x}{:02x}", r[0], r[1], r[2]);
        let nets = test_networks(dir.path(), &prefix);
        let req = |s: &str| crate::network::IpamRequest {
            subnet: Some(s.into()),
            ..Default::default()
        };
        let o = |name: &str, ipv6: bool, ipam: Vec<crate::network::IpamRequest>| CreateOptions {
            name: name.into(),
            enable_ipv6: ipv6,
            ipam,
            ..Default::default()
        };
        // An IPv6 subnet without --ipv6: kept, unused (no IPv6 allocator, nothing on the
        // bridge); --ipv6 with a bad subnet: refused.
        let n0 = nets
            .create(o("n0", false, vec![req("fd42:9::/64")]))
            .unwrap();
        assert_eq!(n0.subnets6.len(), 1);
        assert!(n0.active6().is_empty());
        assert!(!n0.contains("fd42:9::5".parse().unwrap()));
        assert!(nets.lock().ipams[&n0.id].v6.is_empty());
        let addrs = std::process::Command::new("ip")
            .args(["-6", "-o", "addr", "show", "dev", &n0.bridge])
            .output()
            .unwrap();
        assert!(addrs.status.success(), "the bridge exists");
        assert!(
            !String::from_utf8_lossy(&addrs.stdout).contains("fd42:9::"),
            "no IPv6 gateway on the bridge"
        );
        nets.remove("n0").unwrap();
        assert!(nets
            .create(o("n0", true, vec![req("fd42:1::/130")]))
            .is_err());
        let n1 = nets
            .create(o(
                "n1",
                true,
                vec![
                    req("10.231.0.0/24"),
                    req("10.232.0.0/24"),
                    req("fd42:1::/64"),
                ],
            ))
            .unwrap();
        let cleanup = scopeguard(|| Networks::teardown(&prefix, dir.path()));
        assert_eq!(n1.subnets4().len(), 2);
        assert_eq!(n1.subnets6[0].subnet.cidr(), "fd42:1::/64");
        for overlapping in [
            vec![req("10.232.0.128/25")],
            vec![req("fd42:1:0:0:8000::/80")],
        ] {
            let e = nets.create(o("n2", true, overlapping)).unwrap_err();
            assert!(e.to_string().contains("Pool overlaps"), "{e}");
        }
        let e = nets
            .create(o("n2", true, vec![req("fd42:5::/64"), req("fd42:5::/80")]))
            .unwrap_err();
        assert!(e.to_string().contains("overlaps another subnet"), "{e}");
        // --ipv6 alone: an IPv4 subnet from the pools and a ULA /64.
        let n3 = nets.create(o("n3", true, vec![])).unwrap();
        assert!(n3.subnet.is_some());
        assert_eq!(n3.subnets6[0].subnet.prefix, 64);
        assert_eq!(n3.subnets6[0].subnet.network().segments()[0] >> 8, 0xfd);
        // The records load again, with every subnet.
        drop(nets);
        let again = test_networks(dir.path(), &prefix);
        let n1b = again.get("n1").unwrap();
        assert_eq!(n1b, n1);
        again.remove("n1").unwrap();
        again.remove("n3").unwrap();
        drop(cleanup);
    }

    /// Runs `f` when dropped (cleanup that also runs when an assertion fails).
    fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
        struct G<F: FnOnce()>(Option<F>);
        impl<F: FnOnce()> Drop for G<F> {
            fn drop(&mut self) {
                if let Some(f) = self.0.take() {
                    f()
                }
            }
        }
        G(Some(f))
    }

    /// The namespace of a sandbox (CI, `PrivateNetwork=`, a pod): `unreachable` routes for
    /// both halves of the address space keep traffic in; they take no address, while a
    /// link's own subnet does.
    #[test]
    fn unreachable_routes_of_the_namespace_take_no_subnet() {
        if !nix::unistd::geteuid().is_root() {
            wharf_testkit::skip("needs root");
            return;
        }
        let (ns, _task) = new_netns();
        ip_in(
            &ns,
            &["link", "add", "up0", "type", "veth", "peer", "name", "up1"],
        );
        ip_in(&ns, &["addr", "add", "172.18.5.1/16", "dev", "up0"]);
        ip_in(&ns, &["link", "set", "up0", "up"]);
        ip_in(&ns, &["link", "set", "up1", "up"]);
        ip_in(&ns, &["route", "add", "unreachable", "0.0.0.0/1"]);
        ip_in(&ns, &["route", "add", "unreachable", "128.0.0.0/1"]);
        ip_in(&ns, &["route", "add", "blackhole", "172.19.0.0/16"]);
        ip_in(&ns, &["route", "add", "default", "dev", "up0"]);
        // As the daemon sees them when it runs there: what its threads' sockets answer.
        let routes = in_netns(&ns, "test namespace", || {
            Netlink::open().and_then(|mut nl| nl.routes())
        })
        .unwrap()
        .unwrap();
        let used = crate::netlink::routed_destinations(&routes);
        assert_eq!(used, [(Ipv4Addr::new(172, 18, 0, 0), 16)], "{routes:?}");
        let picked = in_netns(&ns, "test namespace", || {
            first_free_subnet(&pools(), &[], &routed_here().unwrap())
        })
        .unwrap()
        .unwrap();
        assert_eq!(picked.cidr(), "172.19.0.0/16");
    }
}
