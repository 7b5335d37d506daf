//! `Networks`: the daemon's networks, their IPAM and host-side state, published ports and
//! the embedded DNS; what the engine calls.

use crate::bridge::{self, AttachSpec, Endpoint};
use crate::dns::Dns;
use crate::firewall::Firewall;
use crate::ipam::{parse_cidr, Ipam, Subnet};
use crate::network::{CreateOptions, Network, OPT_BRIDGE_NAME, OPT_MTU};
use crate::ports::{PortMapping, PortRequest, PortTable};
use crate::{BridgeConfig, NetError};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
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

struct Inner {
    nets: BTreeMap<String, Network>,
    ipams: HashMap<String, Ipam>,
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
            internal: false,
            attachable: false,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
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
            if let Some(sub) = n.subnet {
                let ipam = Ipam::open(sub, cfg.state_dir.join(format!("ipam-{}.json", n.id)))?
                    .with_range(n.ip_range.as_deref())?;
                ipams.insert(n.id.clone(), ipam);
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

    /// The address `container` holds on network `id`.
    pub fn address_of(&self, id: &str, container: &str) -> Option<Ipv4Addr> {
        self.lock().ipams.get(id)?.address_of(container)
    }

    fn pick_subnet(&self, nets: &BTreeMap<String, Network>) -> Result<Subnet, NetError> {
        let taken: Vec<Subnet> = nets.values().filter_map(|n| n.subnet).collect();
        first_free_subnet(&self.cfg.pools, &taken, &routed_here()?)
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
            let subnet = match o.subnet.as_deref().filter(|s| !s.is_empty()) {
                Some(s) => {
                    let sub = Subnet::from_cidr(s, o.gateway.as_deref())?;
                    if let Some(other) = g.nets.values().find(|n| {
                        n.subnet
                            .is_some_and(|x| sub.overlaps(x.network(), x.prefix))
                    }) {
                        return Err(NetError::InUse(format!(
                            "invalid pool request: Pool overlaps with other one on this address space (network {})",
                            other.name
                        )));
                    }
                    sub
                }
                None => {
                    if o.gateway.as_deref().is_some_and(|g| !g.is_empty()) {
                        return Err(NetError::Invalid("a gateway needs a subnet".into()));
                    }
                    self.pick_subnet(&g.nets)?
                }
            };
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
                subnet: Some(subnet),
                ip_range: o.ip_range.clone().filter(|r| !r.is_empty()),
                internal: o.internal,
                attachable: o.attachable,
                labels: o.labels.clone(),
                options: o.options.clone(),
                mtu,
                default_bridge: false,
            };
            let ipam = Ipam::open(subnet, self.cfg.state_dir.join(format!("ipam-{id}.json")))?
                .with_range(n.ip_range.as_deref())?;
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
        let sub = net
            .subnet
            .ok_or_else(|| NetError::Invalid(format!("network {} has no subnet", net.name)))?;
        bridge::ensure_bridge(&net.bridge, &sub, net.mtu)?;
        self.fw
            .add_network(&net.bridge, &sub.cidr(), net.internal)?;
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
        if let Some(sub) = net.subnet {
            self.fw
                .remove_network(&net.bridge, &sub.cidr(), net.internal);
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
    /// `net` as its `index`th interface.
    pub fn attach(
        &self,
        net: &Network,
        id: &str,
        pid: i32,
        index: u32,
        requested: Option<Ipv4Addr>,
        mac: Option<[u8; 6]>,
    ) -> Result<Endpoint, NetError> {
        let started = std::time::Instant::now();
        self.ensure(net)?;
        let sub = net
            .subnet
            .ok_or_else(|| NetError::Invalid(format!("network {} has no subnet", net.name)))?;
        let ip = {
            let mut g = self.lock();
            let ipam = g
                .ipams
                .get_mut(&net.id)
                .ok_or_else(|| NetError::NotFound(net.name.clone()))?;
            ipam.allocate_with(id, requested)?
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

    /// Publishes container `id`'s ports (at `ip`): host ports picked, DNAT rules added.
    pub fn publish(
        &self,
        id: &str,
        ip: Ipv4Addr,
        reqs: &[PortRequest],
    ) -> Result<Vec<PortMapping>, NetError> {
        if reqs.is_empty() {
            return Ok(vec![]);
        }
        let maps = self.lock().ports.assign(id, ip, reqs)?;
        let base = self.lock().base_ready;
        let r = if base { Ok(()) } else { self.fw.ensure_base() }
            .and_then(|_| self.fw.add_ports(id, &maps));
        if let Err(e) = r {
            self.lock().ports.release(id);
            return Err(e);
        }
        Ok(maps)
    }

    /// Removes container `id`'s published ports.
    pub fn unpublish(&self, id: &str) {
        self.fw.remove_ports(id);
        self.lock().ports.release(id);
    }

    /// After a restart: records the ports of a container that still runs.
    pub fn restore_ports(&self, id: &str, maps: &[PortMapping]) {
        let mut g = self.lock();
        for m in maps {
            g.ports.insert(id, m);
        }
    }

    /// After a restart: frees the addresses and rules of containers that no longer run, and
    /// re-asserts the addresses of those that do (`held`: (network id, container, address)
    /// from the containers' own records), so an IPAM file lost with a host crash or written
    /// just before a kill cannot hand a running container's address out again.
    pub fn reconcile(&self, live: &[String], held: &[(String, String, Ipv4Addr)]) {
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
