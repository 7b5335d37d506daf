//! The engine's side of networking: which networks a container asks for, connecting and
//! disconnecting its endpoints when it starts and stops (and on `network connect`), its
//! names in the embedded DNS, published ports, and the network endpoints of the API.

use super::{blocking, internal, Engine};
use crate::container::{Container, EndpointRecord, NetAttachment, Record};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use wharf_api::types::HostConfig;
use wharf_api::ApiError;
use wharf_net::{NetError, Network};

/// Maps a network error to the API's status codes.
pub fn net_error(e: NetError) -> ApiError {
    let status = match &e {
        NetError::NotFound(_) => 404,
        NetError::Invalid(_) | NetError::Subnet(_) | NetError::Subnet6(_) => 400,
        NetError::InUse(_) => 409,
        NetError::Forbidden(_) => 403,
        _ => 500,
    };
    ApiError::new(status, e.to_string())
}

/// `container:<name|id>` → the name or id.
pub fn container_mode(mode: &str) -> Option<&str> {
    mode.strip_prefix("container:")
}

/// The network a mode names (`""`/`default` → `bridge`).
fn mode_network(mode: &str) -> &str {
    match mode {
        "" | "default" => "bridge",
        m => m,
    }
}

/// The DNS names of a container on a user network: name, aliases, short id (lower case).
fn dns_names(rec: &Record, att: &NetAttachment) -> Vec<String> {
    let mut names = vec![rec.name.trim_start_matches('/').to_ascii_lowercase()];
    names.extend(att.aliases.iter().map(|a| a.to_ascii_lowercase()));
    names.push(rec.id[..12].to_string());
    names.dedup();
    names
}

/// The container's exposed ports (`80/tcp`), the image's and its own.
pub(super) fn exposed_ports(r: &Record) -> Vec<String> {
    let ports = r.config.exposed_ports.iter().flatten();
    ports.map(|(k, _)| k.clone()).collect()
}

/// The published-port requests of a HostConfig (`-p`, and `-P` over the image's `exposed`
/// ports).
pub(super) fn port_requests(
    hc: &HostConfig,
    exposed: &[String],
) -> Result<Vec<wharf_net::ports::PortRequest>, wharf_net::NetError> {
    let hosts: Vec<(&str, Vec<(&str, &str)>)> = hc
        .port_bindings
        .iter()
        .flatten()
        .map(|(port, list)| {
            let pairs = list.iter().flatten();
            let pairs = pairs.map(|b| (b.host_ip.as_str(), b.host_port.as_str()));
            (port.as_str(), pairs.collect())
        })
        .collect();
    wharf_net::ports::requests(
        hosts
            .iter()
            .map(|(port, hosts)| wharf_net::ports::Binding { port, hosts }),
        exposed,
        hc.publish_all_ports,
    )
}

fn upstream_resolvers(hc: &HostConfig) -> Vec<SocketAddr> {
    match hc.dns.as_ref().filter(|d| !d.is_empty()) {
        Some(d) => d
            .iter()
            .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
            .collect(),
        None => wharf_net::dns::nameservers(
            &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        ),
    }
}

/// The container's resolv.conf: the embedded server on user networks, else the `--dns`
/// servers or the host's (less loopback ones, unreachable from a private namespace).
pub fn resolv_conf(hc: &HostConfig, embedded_dns: bool) -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut out = String::new();
    let dns = hc.dns.clone().unwrap_or_default();
    if embedded_dns {
        out.push_str("nameserver 127.0.0.11\n");
    } else if dns.is_empty() {
        for l in host.lines().filter(|l| l.starts_with("nameserver")) {
            if hc.network_mode != "host" && l.starts_with("nameserver 127.") {
                continue;
            }
            out.push_str(l);
            out.push('\n');
        }
    } else {
        for d in &dns {
            out.push_str(&format!("nameserver {d}\n"));
        }
    }
    match hc.dns_search.as_ref().filter(|s| !s.is_empty()) {
        Some(s) => out.push_str(&format!("search {}\n", s.join(" "))),
        None => {
            for l in host.lines().filter(|l| l.starts_with("search ")) {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    let mut opts: Vec<String> = hc.dns_options.clone().unwrap_or_default();
    if embedded_dns && !opts.iter().any(|o| o.starts_with("ndots:")) {
        opts.push("ndots:0".into());
    }
    if !opts.is_empty() {
        out.push_str(&format!("options {}\n", opts.join(" ")));
    }
    out
}

impl Engine {
    /// The networks a create request asks for (`NetworkMode` plus `EndpointsConfig`), by
    /// network name; checked against what exists.
    pub(super) fn plan_networks(
        &self,
        hc: &HostConfig,
        networking: &Value,
        container_mac: Option<&str>,
    ) -> Result<BTreeMap<String, NetAttachment>, ApiError> {
        let mode = hc.network_mode.as_str();
        if let Some(other) = container_mode(mode) {
            self.lookup(other)?;
            return Ok(BTreeMap::new());
        }
        let primary = self.networks.get(mode_network(mode)).map_err(|e| match e {
            NetError::NotFound(_) if mode_network(mode) == "bridge" => ApiError::bad_request(
                "the bridge network is disabled (wharfd --bridge none): use --network none or --network host",
            ),
            // 400, not 404: the docker CLI takes a 404 from create for a missing image.
            NetError::NotFound(_) => ApiError::bad_request(e.to_string()),
            e => net_error(e),
        })?;
        let eps = networking["EndpointsConfig"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut out = BTreeMap::new();
        let mut wanted: Vec<(String, Value)> = vec![];
        let mut primary_cfg = Value::Null;
        for (k, v) in eps {
            if k == primary.name || k == primary.id || k == mode || k == "default" {
                primary_cfg = v;
            } else {
                wanted.push((k, v));
            }
        }
        // `Config.MacAddress` (API < 1.44) is the address of the endpoint on the network of
        // `NetworkMode`, unless that endpoint asks for its own (as dockerd).
        if let Some(mac) = container_mac.filter(|m| !m.is_empty()) {
            if primary_cfg["MacAddress"].as_str().is_none_or(str::is_empty) {
                if !primary_cfg.is_object() {
                    primary_cfg = json!({});
                }
                primary_cfg["MacAddress"] = json!(mac);
            }
        }
        wanted.insert(0, (primary.name.clone(), primary_cfg));
        for (key, cfg) in wanted {
            let net = self.networks.get(&key).map_err(|e| match e {
                NetError::NotFound(_) => ApiError::bad_request(e.to_string()),
                e => net_error(e),
            })?;
            if net.driver != "bridge" && !out.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "container cannot be connected to network {} along with other networks",
                    net.name
                )));
            }
            let att = attachment(&net, &cfg)?;
            out.insert(net.name.clone(), att);
        }
        Ok(out)
    }

    /// For `--network container:<x>`: the namespace of `x` (which must run); its hosts,
    /// resolv.conf and hostname become the container's.
    pub(super) fn join_container_netns(
        &self,
        c: &Container,
        other: &str,
    ) -> Result<String, ApiError> {
        let o = self.lookup(other)?;
        let orec = o.snapshot();
        if !orec.state.status.is_live() || orec.state.pid <= 0 {
            return Err(ApiError::conflict(format!(
                "cannot join network namespace of a non running container: {}",
                o.id
            )));
        }
        for f in ["hosts", "resolv.conf", "hostname"] {
            std::fs::copy(o.dir.join(f), c.dir.join(f)).map_err(internal)?;
        }
        Ok(format!("/proc/{}/ns/net", orec.state.pid))
    }

    /// Connects the created (not yet started) container `pid` to its networks, serves its
    /// DNS and publishes its ports.
    pub(super) async fn connect_all(
        self: &Arc<Self>,
        c: &Arc<Container>,
        pid: i32,
    ) -> Result<(), String> {
        let rec = c.snapshot();
        let primary = mode_network(&rec.host_config.network_mode).to_string();
        let mut order: Vec<(String, NetAttachment)> = rec.networks.clone().into_iter().collect();
        if rec.host_config.network_mode == "none" {
            // Docker's `none` sandbox: no interface but a working loopback.
            let ns = std::path::PathBuf::from(format!("/proc/{pid}/ns/net"));
            tokio::task::spawn_blocking(move || wharf_net::netlink::loopback_up(&ns))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("setting up the loopback interface: {e}"))?;
        }
        order.sort_by_key(|(n, _)| *n != primary);
        for (i, (name, att)) in order.into_iter().enumerate() {
            if let Err(e) = self.connect_one(c, pid, &name, &att, i as u32).await {
                self.disconnect_all(c, false).await;
                return Err(e);
            }
        }
        if let Err(e) = self.publish_ports(c).await {
            self.disconnect_all(c, false).await;
            return Err(e);
        }
        Ok(())
    }

    async fn connect_one(
        self: &Arc<Self>,
        c: &Arc<Container>,
        pid: i32,
        name: &str,
        att: &NetAttachment,
        index: u32,
    ) -> Result<(), String> {
        let net = self
            .networks
            .get(&att.network_id)
            .map_err(|_| format!("network {name} not found"))?;
        if net.driver != "bridge" {
            return Ok(());
        }
        let requested = att
            .ipv4_address
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<Ipv4Addr>()
                    .map_err(|_| format!("invalid address {s}"))
            })
            .transpose()?;
        let requested6 = att
            .ipv6_address
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<Ipv6Addr>()
                    .map_err(|_| format!("invalid address {s}"))
            })
            .transpose()?;
        let mac = att
            .mac_address
            .as_deref()
            .and_then(wharf_net::netlink::parse_mac);
        let (engine, id, n) = (self.clone(), c.id.clone(), net.clone());
        let ep = blocking(move || {
            engine
                .networks
                .attach(&n, &id, pid, index, requested, requested6, mac)
        })
        .await
        .map_err(|e| e.message)?
        .map_err(|e| format!("failed to set up container networking on {}: {e}", net.name))?;
        let rec = c.snapshot();
        if net.has_dns() {
            self.networks.dns.add(wharf_net::dns::DnsRecord {
                container: c.id.clone(),
                network: net.id.clone(),
                names: dns_names(&rec, att),
                ip: ep.ip,
                ip6: ep.v6.map(|(a, _)| a),
            });
            let links: Vec<(String, String)> = att
                .links
                .iter()
                .filter_map(|l| super::links::parse_link(l).ok())
                .map(|l| (l.alias, l.name))
                .collect();
            self.networks.dns.set_links(&c.id, &net.id, &links);
            if !self.networks.dns.serving(&c.id) {
                let upstream = upstream_resolvers(&rec.host_config);
                if let Err(e) = self.networks.dns.serve(&c.id, pid, upstream) {
                    return Err(format!("starting the embedded DNS server: {e}"));
                }
            }
        }
        // /etc/hosts is bind-mounted already: rewrite it in place (a rename would not be seen).
        let hosts = c.dir.join("hosts");
        let hostname = rec.config.hostname.as_str();
        let mut content = std::fs::read_to_string(&hosts).unwrap_or_default();
        content.push_str(&format!("{}\t{hostname}\n", ep.ip));
        if let Some((ip6, _)) = ep.v6 {
            content.push_str(&format!("{ip6}\t{hostname}\n"));
        }
        let _ = std::fs::write(&hosts, content);
        let mut eid = [0u8; 32];
        getrandom::fill(&mut eid).map_err(|e| e.to_string())?;
        // Persisted with the start's own update (or by `network connect` below).
        c.update_volatile(|r| {
            r.endpoints.insert(
                net.name.clone(),
                EndpointRecord {
                    ip: ep.ip.to_string(),
                    prefix: ep.prefix,
                    gateway: ep.gateway.to_string(),
                    mac: ep.mac.clone(),
                    index,
                    endpoint_id: hex::encode(eid),
                    ip6: ep.v6.map(|(a, _)| a.to_string()).unwrap_or_default(),
                    prefix6: ep.v6.map(|(_, s)| s.prefix).unwrap_or(0),
                    gateway6: ep
                        .v6
                        .map(|(_, s)| s.gateway.to_string())
                        .unwrap_or_default(),
                },
            );
        });
        Ok(())
    }

    async fn publish_ports(self: &Arc<Self>, c: &Arc<Container>) -> Result<(), String> {
        let rec = c.snapshot();
        let Some(ep) = rec.endpoints.values().find(|e| e.index == 0) else {
            return Ok(());
        };
        let exposed = exposed_ports(&rec);
        let reqs = port_requests(&rec.host_config, &exposed).map_err(|e| e.to_string())?;
        if reqs.is_empty() {
            return Ok(());
        }
        let ip: Ipv4Addr = ep
            .ip
            .parse()
            .map_err(|_| "bad endpoint address".to_string())?;
        let ip6: Option<Ipv6Addr> = ep.ip6.parse().ok();
        let (engine, id) = (self.clone(), c.id.clone());
        let maps = blocking(move || engine.networks.publish(&id, ip, ip6, &reqs))
            .await
            .map_err(|e| e.message)?
            .map_err(|e| {
                format!(
                    "driver failed programming external connectivity on endpoint {}: {e}",
                    rec.name.trim_start_matches('/')
                )
            })?;
        c.update_volatile(|r| r.ports = maps);
        Ok(())
    }

    /// Whether a running container other than `c` joined `c`'s network namespace
    /// (`--network container:<c>`), which then outlives `c`'s own processes.
    pub(super) fn netns_shared(&self, c: &Container) -> bool {
        let rec = c.snapshot();
        let name = rec.name.trim_start_matches('/').to_string();
        self.all().iter().any(|o| {
            let orec = o.snapshot();
            o.id != c.id
                && orec.state.status.is_live()
                && container_mode(&orec.host_config.network_mode)
                    .is_some_and(|x| !x.is_empty() && (x == name || c.id.starts_with(x)))
        })
    }

    /// Undoes `connect_all` (the container stopped or failed to start). `netns_dying`: its
    /// processes are gone and no other container shares its namespace, so the kernel removes
    /// its links with the namespace.
    pub(super) async fn disconnect_all(self: &Arc<Self>, c: &Container, netns_dying: bool) {
        let rec = c.snapshot();
        if rec.endpoints.is_empty() && rec.ports.is_empty() {
            return;
        }
        self.networks.dns.stop(&c.id);
        self.networks.dns.remove(&c.id, None);
        let (engine, id, rec2) = (self.clone(), c.id.clone(), rec.clone());
        let _ = blocking(move || {
            if !rec2.ports.is_empty() {
                engine.networks.unpublish(&id);
            }
            for (name, ep) in &rec2.endpoints {
                let nid = rec2
                    .networks
                    .get(name)
                    .map(|a| a.network_id.clone())
                    .unwrap_or_default();
                engine.networks.detach(&nid, &id, ep.index, netns_dying);
            }
        })
        .await;
        let hosts = c.dir.join("hosts");
        if let Ok(content) = std::fs::read_to_string(&hosts) {
            let keep: String = content
                .lines()
                .filter(|l| {
                    !rec.endpoints.values().any(|e| {
                        l.starts_with(&format!("{}\t", e.ip))
                            || (!e.ip6.is_empty() && l.starts_with(&format!("{}\t", e.ip6)))
                    })
                })
                .map(|l| format!("{l}\n"))
                .collect();
            let _ = std::fs::write(&hosts, keep);
        }
        // Persisted by the exit's own update that follows.
        c.update_volatile(|r| {
            r.endpoints.clear();
            r.ports.clear();
        });
    }

    /// After a restart: frees what dead containers held, and gives running ones back their
    /// DNS names, server and port reservations.
    pub(super) fn restore_networking(self: &Arc<Self>) {
        let live: Vec<Arc<Container>> = self
            .all()
            .into_iter()
            .filter(|c| c.status().is_live())
            .collect();
        let ids: Vec<String> = live.iter().map(|c| c.id.clone()).collect();
        let held: Vec<(String, String, IpAddr)> = live
            .iter()
            .flat_map(|c| {
                let rec = c.snapshot();
                rec.endpoints
                    .iter()
                    .filter_map(|(name, ep)| {
                        let net = rec.networks.get(name)?.network_id.clone();
                        let mut out = vec![(net.clone(), c.id.clone(), ep.ip.parse().ok()?)];
                        if let Ok(ip6) = ep.ip6.parse::<IpAddr>() {
                            out.push((net, c.id.clone(), ip6));
                        }
                        Some(out)
                    })
                    .flatten()
                    .collect::<Vec<_>>()
            })
            .collect();
        self.networks.reconcile(&ids, &held);
        for c in live {
            let rec = c.snapshot();
            self.networks.restore_ports(&c.id, &rec.ports);
            let mut dns = false;
            for (name, ep) in &rec.endpoints {
                let Some(att) = rec.networks.get(name) else {
                    continue;
                };
                let Ok(net) = self.networks.get(&att.network_id) else {
                    continue;
                };
                if let (true, Ok(ip)) = (net.has_dns(), ep.ip.parse()) {
                    self.networks.dns.add(wharf_net::dns::DnsRecord {
                        container: c.id.clone(),
                        network: net.id.clone(),
                        names: dns_names(&rec, att),
                        ip,
                        ip6: ep.ip6.parse().ok(),
                    });
                    dns = true;
                }
            }
            if dns {
                let served = self.networks.dns.serve(
                    &c.id,
                    rec.state.pid,
                    upstream_resolvers(&rec.host_config),
                );
                if let Err(e) = served {
                    tracing::warn!("embedded DNS of {}: {e}", &c.id[..12]);
                }
            }
        }
    }

    /// `POST /networks/{id}/connect`.
    pub async fn network_connect(
        self: &Arc<Self>,
        key: &str,
        body: &Value,
    ) -> Result<(), ApiError> {
        let net = self.networks.get(key).map_err(net_error)?;
        let c = self.lookup(body["Container"].as_str().unwrap_or_default())?;
        let rec = c.snapshot();
        let mode = rec.host_config.network_mode.as_str();
        if net.driver != "bridge"
            || matches!(mode, "host" | "none")
            || container_mode(mode).is_some()
        {
            return Err(ApiError::forbidden(format!(
                "container {} in network mode {mode} cannot be connected to network {}",
                rec.name.trim_start_matches('/'),
                net.name
            )));
        }
        if rec.networks.contains_key(&net.name) {
            return Err(ApiError::forbidden(format!(
                "endpoint with name {} already exists in network {}",
                rec.name.trim_start_matches('/'),
                net.name
            )));
        }
        let att = attachment(&net, &body["EndpointConfig"])?;
        c.update(|r| r.networks.insert(net.name.clone(), att.clone()))
            .map_err(internal)?;
        if rec.state.status.is_live() {
            let index = (0..)
                .find(|i| !rec.endpoints.values().any(|e| e.index == *i))
                .unwrap_or(0);
            if let Err(e) = self
                .connect_one(&c, rec.state.pid, &net.name, &att, index)
                .await
            {
                let _ = c.update(|r| r.networks.remove(&net.name));
                return Err(ApiError::internal(e));
            }
            c.update(|_| ()).map_err(internal)?;
        }
        self.network_event("connect", &net, Some(&c.id));
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn network_disconnect(
        self: &Arc<Self>,
        key: &str,
        body: &Value,
    ) -> Result<(), ApiError> {
        let net = self.networks.get(key).map_err(net_error)?;
        let c = self.lookup(body["Container"].as_str().unwrap_or_default())?;
        let rec = c.snapshot();
        if !rec.networks.contains_key(&net.name) {
            return Err(ApiError::forbidden(format!(
                "container {} is not connected to network {}",
                c.id, net.name
            )));
        }
        if let Some(ep) = rec.endpoints.get(&net.name) {
            self.networks.dns.remove(&c.id, Some(&net.id));
            let (engine, id, nid, index) = (self.clone(), c.id.clone(), net.id.clone(), ep.index);
            blocking(move || engine.networks.detach(&nid, &id, index, false)).await?;
            let hosts = c.dir.join("hosts");
            if let Ok(content) = std::fs::read_to_string(&hosts) {
                let keep: String = content
                    .lines()
                    .filter(|l| {
                        !l.starts_with(&format!("{}\t", ep.ip))
                            && (ep.ip6.is_empty() || !l.starts_with(&format!("{}\t", ep.ip6)))
                    })
                    .map(|l| format!("{l}\n"))
                    .collect();
                let _ = std::fs::write(&hosts, keep);
            }
        }
        c.update(|r| {
            r.networks.remove(&net.name);
            r.endpoints.remove(&net.name);
        })
        .map_err(internal)?;
        let still_dns = c
            .snapshot()
            .networks
            .values()
            .any(|a| self.networks.get(&a.network_id).is_ok_and(|n| n.has_dns()));
        if !still_dns {
            self.networks.dns.stop(&c.id);
        }
        self.network_event("disconnect", &net, Some(&c.id));
        Ok(())
    }

    /// A network event as dockerd sends it: the network's name and driver, and the
    /// container for connect and disconnect.
    fn network_event(&self, action: &str, net: &Network, container: Option<&str>) {
        let mut attrs: BTreeMap<String, String> = [
            ("name".to_string(), net.name.clone()),
            ("type".to_string(), net.driver.clone()),
        ]
        .into();
        if let Some(id) = container {
            attrs.insert("container".to_string(), id.to_string());
        }
        self.events.publish("network", action, &net.id, attrs);
    }

    /// Running containers with an endpoint on `net`.
    fn network_members(&self, net: &Network) -> Vec<(Record, EndpointRecord)> {
        self.all()
            .iter()
            .map(|c| c.snapshot())
            .filter_map(|r| {
                let ep = r.endpoints.get(&net.name).cloned()?;
                (r.networks.get(&net.name)?.network_id == net.id).then_some((r, ep))
            })
            .collect()
    }

    /// A network in Docker's shape (`GET /networks/{id}`).
    pub fn network_json(&self, n: &Network) -> Value {
        let mut containers = serde_json::Map::new();
        for (r, ep) in self.network_members(n) {
            containers.insert(
                r.id.clone(),
                json!({
                    "Name": r.name.trim_start_matches('/'),
                    "EndpointID": ep.endpoint_id,
                    "MacAddress": ep.mac,
                    "IPv4Address": format!("{}/{}", ep.ip, ep.prefix),
                    "IPv6Address": if ep.ip6.is_empty() { String::new() } else { format!("{}/{}", ep.ip6, ep.prefix6) },
                }),
            );
        }
        let config = |cidr: String, gw: String, range: &Option<String>| {
            let mut c = json!({"Subnet": cidr, "Gateway": gw});
            if let Some(r) = range {
                c["IPRange"] = json!(r);
            }
            c
        };
        let mut ipam_config: Vec<Value> = n
            .subnets4()
            .iter()
            .map(|p| config(p.subnet.cidr(), p.subnet.gateway.to_string(), &p.ip_range))
            .collect();
        ipam_config.extend(
            n.subnets6
                .iter()
                .map(|p| config(p.subnet.cidr(), p.subnet.gateway.to_string(), &p.ip_range)),
        );
        let mut options = serde_json::Map::new();
        for (k, v) in &n.options {
            options.insert(k.clone(), json!(v));
        }
        json!({
            "Name": n.name,
            "Id": n.id,
            "Created": n.created,
            "Scope": "local",
            "Driver": n.driver,
            "EnableIPv4": true,
            "EnableIPv6": n.enable_ipv6,
            "IPAM": {"Driver": "default", "Options": null, "Config": ipam_config},
            "Internal": n.internal,
            "Attachable": n.attachable,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": containers,
            "Options": options,
            "Labels": n.labels,
        })
    }

    /// Whether any container (running or not) is connected to `net`.
    fn network_used(&self, net: &Network) -> bool {
        self.all().iter().any(|c| {
            c.snapshot()
                .networks
                .values()
                .any(|a| a.network_id == net.id)
        })
    }

    /// `GET /networks`.
    pub fn network_list(&self, filters: &BTreeMap<String, Vec<String>>) -> Vec<Value> {
        let mut nets = self.networks.list();
        nets.sort_by(|a, b| a.name.cmp(&b.name));
        nets.iter()
            .filter(|n| {
                filters.iter().all(|(k, vals)| {
                    if k == "label" {
                        // Every label filter must hold, as in dockerd.
                        return vals
                            .iter()
                            .all(|v| super::filters::label_matches_map(&n.labels, v));
                    }
                    vals.is_empty()
                        || vals.iter().any(|v| match k.as_str() {
                            "name" => n.name.contains(v.as_str()),
                            "id" => n.id.starts_with(v.as_str()),
                            "driver" => n.driver == *v,
                            "scope" => v == "local",
                            "type" => (v == "builtin") == n.predefined(),
                            "dangling" => (v == "true" || v == "1") != self.network_used(n),
                            _ => true,
                        })
                })
            })
            .map(|n| self.network_json(n))
            .collect()
    }

    /// `POST /networks/create`.
    pub async fn network_create(self: &Arc<Self>, b: &Value) -> Result<Value, ApiError> {
        let strmap = |v: &Value| -> BTreeMap<String, String> {
            v.as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let ipam: Vec<wharf_net::IpamRequest> = b["IPAM"]["Config"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|c| {
                let s = |k: &str| c[k].as_str().filter(|v| !v.is_empty()).map(String::from);
                wharf_net::IpamRequest {
                    subnet: s("Subnet"),
                    gateway: s("Gateway"),
                    ip_range: s("IPRange"),
                }
            })
            .collect();
        let opts = wharf_net::CreateOptions {
            name: b["Name"].as_str().unwrap_or_default().to_string(),
            driver: b["Driver"].as_str().unwrap_or_default().to_string(),
            ipam,
            enable_ipv6: b["EnableIPv6"].as_bool().unwrap_or(false),
            internal: b["Internal"].as_bool().unwrap_or(false),
            attachable: b["Attachable"].as_bool().unwrap_or(false),
            labels: strmap(&b["Labels"]),
            options: strmap(&b["Options"]),
        };
        let engine = self.clone();
        let n = blocking(move || engine.networks.create(opts))
            .await?
            .map_err(net_error)?;
        self.network_event("create", &n, None);
        Ok(json!({"Id": n.id, "Warning": ""}))
    }

    /// `DELETE /networks/{id}`.
    pub async fn network_remove(self: &Arc<Self>, key: &str) -> Result<(), ApiError> {
        let engine = self.clone();
        let key = key.to_string();
        let n = blocking(move || engine.networks.remove(&key))
            .await?
            .map_err(net_error)?;
        self.network_event("destroy", &n, None);
        Ok(())
    }

    /// `POST /networks/prune`: user networks no container is connected to.
    pub async fn network_prune(self: &Arc<Self>, filters: &BTreeMap<String, Vec<String>>) -> Value {
        let mut deleted = Vec::new();
        for n in self.networks.list() {
            if n.predefined() || self.network_used(&n) {
                continue;
            }
            let labels_ok = filters.get("label").is_none_or(|vals| {
                vals.iter().all(|v| {
                    let (lk, lv) = v.split_once('=').unwrap_or((v, ""));
                    n.labels.get(lk).is_some_and(|x| lv.is_empty() || x == lv)
                })
            });
            if labels_ok && self.network_remove(&n.id).await.is_ok() {
                deleted.push(n.name.clone());
            }
        }
        json!({"NetworksDeleted": deleted})
    }
}

/// The attachment `EndpointConfig` asks for on `net` (aliases and a static address are for
/// user networks only, as with Docker).
fn attachment(net: &Network, cfg: &Value) -> Result<NetAttachment, ApiError> {
    let aliases: Vec<String> = cfg["Aliases"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let ip = cfg["IPAMConfig"]["IPv4Address"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(String::from);
    let ip6 = cfg["IPAMConfig"]["IPv6Address"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(String::from);
    if !net.has_dns() && !aliases.is_empty() {
        return Err(ApiError::bad_request(
            "network-scoped alias is supported only for containers in user defined networks",
        ));
    }
    if let Some(ip) = &ip {
        if net.default_bridge || net.driver != "bridge" {
            return Err(ApiError::bad_request(
                "user specified IP address is supported on user defined networks only",
            ));
        }
        let addr: Ipv4Addr = ip
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid IPv4 address {ip:?}")))?;
        if !net.contains(IpAddr::V4(addr)) {
            return Err(ApiError::bad_request(format!(
                "no configured subnet contains IP address {ip}"
            )));
        }
    }
    if let Some(ip6) = &ip6 {
        if net.default_bridge || net.driver != "bridge" {
            return Err(ApiError::bad_request(
                "user specified IP address is supported on user defined networks only",
            ));
        }
        let addr: Ipv6Addr = ip6
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid IPv6 address {ip6:?}")))?;
        if !net.enable_ipv6 {
            return Err(ApiError::bad_request(format!(
                "invalid endpoint settings: cannot use IPv6 address {ip6}: IPv6 is not enabled on network {}",
                net.name
            )));
        }
        if !net.contains(IpAddr::V6(addr)) {
            return Err(ApiError::bad_request(format!(
                "no configured subnet contains IP address {ip6}"
            )));
        }
    }
    // `--mac-address`: the container side of the veth gets it instead of the one derived
    // from the address.
    let mac = cfg["MacAddress"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(|m| {
            wharf_net::netlink::parse_mac(m)
                .filter(|b| b[0] & 1 == 0)
                .map(|_| m.to_ascii_lowercase())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid MAC address {m:?}: six hex bytes (02:42:ac:11:00:02), not multicast"
                    ))
                })
        })
        .transpose()?;
    let links: Vec<String> = cfg["Links"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str().map(String::from))
        .collect();
    for l in &links {
        super::links::parse_link(l)?;
    }
    if !net.has_dns() && !links.is_empty() {
        return Err(ApiError::bad_request(
            "links on a network are supported only for containers in user defined networks (on the default bridge, use HostConfig.Links)",
        ));
    }
    Ok(NetAttachment {
        network_id: net.id.clone(),
        aliases,
        ipv4_address: ip,
        ipv6_address: ip6,
        mac_address: mac,
        links,
    })
}

/// An endpoint's `IPAMConfig` in container inspect: the static addresses asked for.
fn ipam_config_json(att: &NetAttachment) -> Value {
    if att.ipv4_address.is_none() && att.ipv6_address.is_none() {
        return Value::Null;
    }
    let mut c = serde_json::Map::new();
    if let Some(ip) = &att.ipv4_address {
        c.insert("IPv4Address".into(), json!(ip));
    }
    if let Some(ip) = &att.ipv6_address {
        c.insert("IPv6Address".into(), json!(ip));
    }
    Value::Object(c)
}

/// `NetworkSettings` of container inspect.
pub(super) fn network_settings(engine: &Engine, r: &Record) -> Value {
    let mut networks = serde_json::Map::new();
    let mode = match r.host_config.network_mode.as_str() {
        "" => "none",
        m => m,
    };
    for (name, att) in &r.networks {
        let ep = r.endpoints.get(name);
        let s = |f: fn(&EndpointRecord) -> String| ep.map(f).unwrap_or_default();
        let user = engine
            .networks
            .get(&att.network_id)
            .is_ok_and(|n| n.has_dns());
        networks.insert(
            name.clone(),
            json!({
                "IPAMConfig": ipam_config_json(att),
                "Links": if att.links.is_empty() { Value::Null } else { json!(att.links) },
                "Aliases": if att.aliases.is_empty() { Value::Null } else { json!(att.aliases) },
                // A stopped container shows the address it asked for (as dockerd).
                "MacAddress": ep
                    .map(|e| e.mac.clone())
                    .or_else(|| att.mac_address.clone())
                    .unwrap_or_default(),
                "DriverOpts": null,
                "GwPriority": 0,
                "NetworkID": att.network_id,
                "EndpointID": s(|e| e.endpoint_id.clone()),
                "Gateway": s(|e| e.gateway.clone()),
                "IPAddress": s(|e| e.ip.clone()),
                "IPPrefixLen": ep.map(|e| e.prefix).unwrap_or(0),
                "IPv6Gateway": s(|e| e.gateway6.clone()),
                "GlobalIPv6Address": s(|e| e.ip6.clone()),
                "GlobalIPv6PrefixLen": ep.map(|e| e.prefix6).unwrap_or(0),
                "DNSNames": if user && ep.is_some() { json!(dns_names(r, att)) } else { Value::Null },
            }),
        );
    }
    if r.networks.is_empty() && container_mode(mode).is_none() {
        // host / none: one entry naming the network, as Docker shows it.
        // (Not a bridge the container was disconnected from: then it has no network.)
        if let Some(n) = engine
            .networks
            .get(mode)
            .ok()
            .filter(|n| matches!(n.driver.as_str(), "host" | "null"))
        {
            networks.insert(
                n.name.clone(),
                json!({
                    "IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "",
                    "DriverOpts": null, "GwPriority": 0, "NetworkID": n.id, "EndpointID": "",
                    "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
                    "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": null,
                }),
            );
        }
    }
    let bridge = r.endpoints.get("bridge");
    let b = |f: fn(&EndpointRecord) -> String| bridge.map(f).unwrap_or_default();
    let live = r.state.status.is_live();
    json!({
        "Bridge": "",
        "SandboxID": "",
        "SandboxKey": if live && r.state.pid > 0 { format!("/proc/{}/ns/net", r.state.pid) } else { String::new() },
        "Ports": ports_json(r),
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": b(|e| e.endpoint_id.clone()),
        "Gateway": b(|e| e.gateway.clone()),
        "GlobalIPv6Address": b(|e| e.ip6.clone()),
        "GlobalIPv6PrefixLen": bridge.map(|e| e.prefix6).unwrap_or(0),
        "IPAddress": b(|e| e.ip.clone()),
        "IPPrefixLen": bridge.map(|e| e.prefix).unwrap_or(0),
        "IPv6Gateway": b(|e| e.gateway6.clone()),
        "MacAddress": b(|e| e.mac.clone()),
        "Networks": networks,
    })
}

/// `NetworkSettings.Ports`: every exposed or bound port, with its host bindings while the
/// container runs (null otherwise).
fn ports_json(r: &Record) -> Value {
    let mut keys = exposed_ports(r);
    keys.extend(
        r.host_config
            .port_bindings
            .iter()
            .flatten()
            .map(|(k, _)| k.clone()),
    );
    let mut out = serde_json::Map::new();
    for k in keys {
        let Ok((port, proto)) = wharf_net::ports::parse_port_proto(&k) else {
            continue;
        };
        let key = format!("{port}/{proto}");
        let binds: Vec<Value> = r
            .ports
            .iter()
            .filter(|m| m.container_port == port && m.proto == proto)
            .map(|m| json!({"HostIp": m.host_ip.to_string(), "HostPort": m.host_port.to_string()}))
            .collect();
        out.insert(
            key,
            if binds.is_empty() {
                Value::Null
            } else {
                json!(binds)
            },
        );
    }
    Value::Object(out)
}

/// `Ports` of a container list entry.
pub(super) fn port_summaries(r: &Record) -> Vec<Value> {
    let mut out: Vec<Value> = r
        .ports
        .iter()
        .map(|m| json!({"IP": m.host_ip.to_string(), "PrivatePort": m.container_port, "PublicPort": m.host_port, "Type": m.proto}))
        .collect();
    for k in exposed_ports(r) {
        if let Ok((port, proto)) = wharf_net::ports::parse_port_proto(&k) {
            if !r
                .ports
                .iter()
                .any(|m| m.container_port == port && m.proto == proto)
            {
                out.push(json!({"PrivatePort": port, "Type": proto}));
            }
        }
    }
    out
}
