//! The bridge driver in the daemon's network namespace ("the host": wherever wharfd was
//! started, see `netlink`): a Linux bridge per network with the gateway address, and
//! one veth pair per container endpoint (`wh<id8>` on the host for the first network,
//! `wh<id8>_<n>` for more; `eth<n>` in the container).

use crate::ipam::{Subnet, Subnet6};
use crate::netlink::{ifindex, parse_mac, Netlink, VethSpec, LOOPBACK_INDEX};
use crate::NetError;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// The default bridge, as wharfd's flags give it (`--bridge`, `--bip`, `--mtu`).
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// Link name (`wharf0`); also the prefix of every other link and chain of the daemon.
    pub name: String,
    pub subnet: Subnet,
    /// Directory for networks and IPAM files.
    pub state_dir: PathBuf,
    pub mtu: u32,
}

/// A container's place on a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    pub host_veth: String,
    /// The interface in the container (`eth0`).
    pub ifname: String,
    /// Its IPv6 address and subnet, on a network with IPv6.
    pub v6: Option<(Ipv6Addr, Subnet6)>,
}

/// Docker's MAC for an address: 02:42 followed by the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

/// The host side of container `id`'s `index`th interface.
pub fn host_veth(id: &str, index: u32) -> String {
    let short = &id[..id.len().min(8)];
    if index == 0 {
        format!("wh{short}")
    } else {
        format!("wh{short}_{index}")
    }
}

/// Creates bridge `link` with `subnet`'s gateway address, up, if missing (idempotent).
pub fn ensure_bridge(link: &str, subnet: &Subnet, mtu: u32) -> Result<(), NetError> {
    ensure_bridge_with(link, std::slice::from_ref(subnet), &[], mtu)
}

/// Writes `value` to the sysctl file `key` (of the calling thread's network namespace).
fn sysctl(key: &str, value: &str) -> Result<(), NetError> {
    std::fs::write(key, value).map_err(|e| NetError::io(key, e))
}

/// Creates bridge `link` with the gateway address of each of `subnets` and `subnets6`
/// (IPv6 ones `nodad`, with IPv6 enabled on the bridge and forwarding on, as dockerd does),
/// up, if missing (idempotent).
pub fn ensure_bridge_with(
    link: &str,
    subnets: &[Subnet],
    subnets6: &[Subnet6],
    mtu: u32,
) -> Result<(), NetError> {
    let mut nl = Netlink::open()?;
    nl.create_bridge(link, mtu)?;
    let index = nl
        .link_index(link)?
        .ok_or_else(|| NetError::Invalid(format!("bridge {link} vanished while set up")))?;
    for subnet in subnets {
        nl.add_address(index, subnet.gateway, subnet.prefix)?;
    }
    if !subnets6.is_empty() {
        sysctl(&format!("/proc/sys/net/ipv6/conf/{link}/disable_ipv6"), "0")?;
        for s in subnets6 {
            nl.add_address6(index, s.gateway, s.prefix)?;
        }
        sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")?;
    }
    nl.set_up(index, Some(mtu))?;
    for (key, value) in [
        ("/proc/sys/net/ipv4/ip_forward".to_string(), "1"),
        // Published ports reached through the host's loopback (see `ports`).
        (
            format!("/proc/sys/net/ipv4/conf/{link}/route_localnet"),
            "1",
        ),
    ] {
        std::fs::write(&key, value).map_err(|e| NetError::io(key, e))?;
    }
    Ok(())
}

/// Deletes `link` if it exists (a bridge's ports go with it; a veth pair goes with its
/// namespace, so a stopped container's usually needs nothing).
pub fn delete_link(link: &str) {
    // An ioctl first: RTM_DELLINK takes the rtnl lock even to answer ENODEV, and right after
    // a container stops that lock is often held by the kernel tearing its netns down (or by
    // another container's), which cost up to 18 ms for nothing.
    if ifindex(link).is_none() {
        return;
    }
    let r = Netlink::open().and_then(|mut nl| nl.delete_link(link));
    if let Err(e) = r {
        tracing::warn!("{e}");
    }
}

/// For the host side of a stopped container's pair, which goes with its dying netns: if it
/// is still there after a while (something else kept the namespace), deletes it, unless the
/// name now belongs to another link (the container was started again).
pub fn delete_link_later(link: &str) {
    let Some(index) = ifindex(link) else {
        return;
    };
    let name = link.to_string();
    let spawned = std::thread::Builder::new()
        .name("veth-reaper".into())
        .spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(2));
            if ifindex(&name) == Some(index) {
                tracing::warn!("{name} outlived its container's network namespace: deleting it");
                delete_link(&name);
            }
        });
    if spawned.is_err() {
        delete_link(link);
    }
}

/// What `attach` needs to know of the container's interface.
pub struct AttachSpec<'a> {
    pub bridge: &'a str,
    pub host_veth: &'a str,
    pub ifname: &'a str,
    pub pid: i32,
    pub ip: Ipv4Addr,
    /// The subnet `ip` is of (one of the network's).
    pub subnet: Subnet,
    /// The IPv6 address and its subnet, on a network with IPv6.
    pub v6: Option<(Ipv6Addr, Subnet6)>,
    pub mtu: u32,
    /// Route the container's default traffic through this network's gateway.
    pub default_route: bool,
    /// The container side's MAC address; `None`: Docker's, derived from the address.
    pub mac: Option<[u8; 6]>,
}

/// The network namespace of process `pid`, held open (it cannot be swapped for another
/// while we work on it, even if the process dies).
pub fn open_netns(pid: i32) -> Result<OwnedFd, NetError> {
    let path = format!("/proc/{pid}/ns/net");
    std::fs::File::open(&path)
        .map(OwnedFd::from)
        .map_err(|e| NetError::io(path, e))
}

/// Connects the network namespace of process `pid` to `bridge` with netlink, no exec: one
/// request on the host makes the veth pair with the host side enslaved and up and the peer
/// (its name, MAC and MTU set) directly in the namespace; then, through a socket opened in
/// the namespace, loopback and the peer up, the address and the default route.
pub fn attach(a: &AttachSpec) -> Result<Endpoint, NetError> {
    let ns = open_netns(a.pid)?;
    attach_netns(a, &ns)
}

/// `attach` for the namespace `ns` (`a.pid` names it in messages only).
pub fn attach_netns(a: &AttachSpec, ns: &OwnedFd) -> Result<Endpoint, NetError> {
    let mac = match a.mac {
        Some(m) => m
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
        None => mac_for(a.ip),
    };
    let mut host = Netlink::open()?;
    // The bridge's index in the daemon's namespace, which the pair's host side is made in
    // (not /sys/class/net's: see `netlink`). An ioctl first: no rtnl lock, no 2 KB link
    // message to parse.
    let master = match ifindex(a.bridge) {
        Some(i) => Some(i),
        None => host.link_index(a.bridge)?,
    };
    let master = master.ok_or_else(|| {
        NetError::Invalid(format!(
            "bridge {} does not exist (removed by hand?): restart wharfd to recreate it",
            a.bridge
        ))
    })?;
    let spec = VethSpec {
        host: a.host_veth,
        master: Some(master),
        peer: a.ifname,
        peer_mac: parse_mac(&mac).expect("mac_for gives a valid MAC"),
        mtu: a.mtu,
    };
    if !host.create_veth(&spec, ns)? {
        // A leftover of a crash holds the name: replace it.
        host.delete_link(a.host_veth)?;
        if !host.create_veth(&spec, ns)? {
            return Err(NetError::InUse(format!(
                "link {} exists and cannot be replaced",
                a.host_veth
            )));
        }
    }
    let r = hairpin(&mut host, a).and_then(|()| configure(a, ns));
    if r.is_err() {
        let _ = host.delete_link(a.host_veth);
    }
    r.map(|()| Endpoint {
        ip: a.ip,
        prefix: a.subnet.prefix,
        gateway: a.subnet.gateway,
        mac,
        host_veth: a.host_veth.to_string(),
        ifname: a.ifname.to_string(),
        v6: a.v6,
    })
}

/// The host side of the pair in hairpin mode: with br_netfilter, a container's packet to a
/// published port of its own through a host address is DNATed on the bridge and must leave
/// by the port it came in by (the hairpin masquerade then gives it the gateway's address),
/// as dockerd's userland proxy lets it.
fn hairpin(host: &mut Netlink, a: &AttachSpec) -> Result<(), NetError> {
    let index = match ifindex(a.host_veth) {
        Some(i) => i,
        None => host
            .link_index(a.host_veth)?
            .ok_or_else(|| NetError::Invalid(format!("{} vanished while set up", a.host_veth)))?,
    };
    host.set_hairpin(index)
}

fn configure(a: &AttachSpec, ns: &OwnedFd) -> Result<(), NetError> {
    let mut nl = Netlink::open_in(ns, &format!("network namespace of pid {}", a.pid))?;
    nl.set_up(LOOPBACK_INDEX, None)?;
    let index = nl.link_index(a.ifname)?.ok_or_else(|| {
        NetError::Invalid(format!(
            "{} did not appear in the network namespace of pid {}",
            a.ifname, a.pid
        ))
    })?;
    if let Some((ip6, sub6)) = a.v6 {
        // A namespace's own sysctls: written from a thread in it (/proc/sys/net answers for
        // the opener's namespace). A new namespace has IPv6 on unless the host set
        // `default.disable_ipv6` and namespaces inherit it (`devconf_inherit_init_net`).
        crate::netlink::in_netns(ns, "container's network namespace", || {
            for k in ["all", "default", a.ifname] {
                let key = format!("/proc/sys/net/ipv6/conf/{k}/disable_ipv6");
                if std::path::Path::new(&key).exists() {
                    sysctl(&key, "0")?;
                }
            }
            Ok::<(), NetError>(())
        })??;
        nl.set_up(index, None)?;
        nl.add_address(index, a.ip, a.subnet.prefix)?;
        nl.add_address6(index, ip6, sub6.prefix)?;
        if a.default_route {
            nl.replace_default_route(a.subnet.gateway, index)?;
            nl.replace_default_route(sub6.gateway, index)?;
        }
        return Ok(());
    }
    nl.set_up(index, None)?;
    nl.add_address(index, a.ip, a.subnet.prefix)?;
    if a.default_route {
        nl.replace_default_route(a.subnet.gateway, index)?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn macs_and_names_like_docker() {
        assert_eq!(mac_for(Ipv4Addr::new(172, 30, 0, 2)), "02:42:ac:1e:00:02");
        assert_eq!(host_veth("0123456789abcdef", 0), "wh01234567");
        assert_eq!(host_veth("0123456789abcdef", 2), "wh01234567_2");
        assert!(host_veth(&"f".repeat(64), 99).len() <= 15, "IFNAMSIZ");
    }

    /// A new network namespace with a thread in it, as a container's has its processes; the
    /// thread ends when the returned sender is dropped.
    pub(crate) fn new_netns() -> (OwnedFd, std::sync::mpsc::Sender<()>) {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (ftx, frx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            ftx.send(OwnedFd::from(
                std::fs::File::open("/proc/thread-self/ns/net").unwrap(),
            ))
            .unwrap();
            let _ = rx.recv();
        });
        (frx.recv().unwrap(), tx)
    }

    /// `ip ARGS` inside the namespace `ns` (an independent view of what netlink made).
    pub(crate) fn ip_in(ns: &OwnedFd, args: &[&str]) -> String {
        use std::os::fd::AsRawFd;
        let path = format!("--net=/proc/{}/fd/{}", std::process::id(), ns.as_raw_fd());
        let out = std::process::Command::new("nsenter")
            .arg(path)
            .arg("ip")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    struct RemoveLink(String);
    impl Drop for RemoveLink {
        fn drop(&mut self) {
            delete_link(&self.0);
        }
    }

    #[test]
    fn attach_makes_the_veth_address_and_route_in_the_namespace() {
        if !nix::unistd::geteuid().is_root() {
            wharf_testkit::skip("needs root");
            return;
        }
        let mut r = [0u8; 3];
        getrandom::fill(&mut r).unwrap();
        let br = format!("wu{:02x}{:02x}{:02x}", r[0], r[1], r[2]);
        let routes = std::fs::read_to_string("/proc/net/route").unwrap();
        let third = (0..=255u8)
            .map(|i| i.wrapping_add(r[0]))
            .find(|t| !routes.contains(&format!("{:02X}FE0A", t)))
            .unwrap();
        let subnet = Subnet::parse(&format!("10.254.{third}.1/24")).unwrap();
        let _bridge = RemoveLink(br.clone());
        ensure_bridge(&br, &subnet, 1400).unwrap();
        ensure_bridge(&br, &subnet, 1400).expect("idempotent");
        let veth = format!("{br}v");
        let _veth = RemoveLink(veth.clone());
        let ip = Ipv4Addr::new(10, 254, third, 2);
        let spec = AttachSpec {
            bridge: &br,
            host_veth: &veth,
            ifname: "eth0",
            pid: 0,
            ip,
            subnet,
            v6: None,
            mtu: 1400,
            default_route: true,
            mac: None,
        };
        // Twice, the first namespace left as a crash would leave it: the second attach
        // replaces the leftover host link of the same name.
        let (stale, _stale_task) = new_netns();
        attach_netns(&spec, &stale).unwrap();
        let (ns, _task) = new_netns();
        let here = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        let ep = attach_netns(&spec, &ns).unwrap();
        assert_eq!(
            std::fs::read_link("/proc/thread-self/ns/net").unwrap(),
            here,
            "the thread is back in its own network namespace"
        );
        assert_eq!(ep.mac, mac_for(ip));
        assert!(
            !ip_in(&stale, &["-o", "link"]).contains("eth0"),
            "the leftover pair is gone"
        );

        let link = ip_in(&ns, &["-o", "link", "show", "eth0"]);
        assert!(link.contains("mtu 1400"), "{link}");
        assert!(link.contains(&format!("link/ether {} ", ep.mac)), "{link}");
        assert!(link.contains(",UP"), "{link}");
        let lo = ip_in(&ns, &["-o", "link", "show", "lo"]);
        assert!(lo.contains(",UP"), "{lo}");
        let addr = ip_in(&ns, &["-4", "-o", "addr", "show", "eth0"]);
        assert!(
            addr.contains(&format!("inet {ip}/24 brd 10.254.{third}.255")),
            "{addr}"
        );
        let route = ip_in(&ns, &["route"]);
        assert!(
            route.contains(&format!("default via {} dev eth0", subnet.gateway)),
            "{route}"
        );
        let ports = std::process::Command::new("ip")
            .args(["-o", "link", "show", "master", &br])
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&ports.stdout).contains(&veth));

        // Deleting the host side removes the pair.
        delete_link(&veth);
        assert!(!ip_in(&ns, &["-o", "link"]).contains("eth0"));
        delete_link(&veth); // already gone: no error
    }

    #[test]
    fn attach_with_ipv6_gives_the_address_route_and_bridge_gateways() {
        if !nix::unistd::geteuid().is_root() {
            wharf_testkit::skip("needs root");
            return;
        }
        let mut r = [0u8; 3];
        getrandom::fill(&mut r).unwrap();
        let br = format!("w6{:02x}{:02x}{:02x}", r[0], r[1], r[2]);
        let (daemon, _daemon_task) = new_netns();
        let (ns, _task) = new_netns();
        let subnets = [
            Subnet::parse("10.61.0.1/24").unwrap(),
            Subnet::parse("10.62.0.1/24").unwrap(),
        ];
        let six = Subnet6::from_cidr("fd00:61::/64", None).unwrap();
        let ip6: Ipv6Addr = "fd00:61::2".parse().unwrap();
        let veth = format!("{br}v");
        let spec = AttachSpec {
            bridge: &br,
            host_veth: &veth,
            ifname: "eth0",
            pid: 0,
            ip: Ipv4Addr::new(10, 62, 0, 2),
            subnet: subnets[1],
            v6: Some((ip6, six)),
            mtu: 1500,
            default_route: true,
            mac: None,
        };
        // In a namespace of its own standing for the daemon's: nothing of the host changes.
        let ep = crate::netlink::in_netns(&daemon, "daemon's test namespace", || {
            ensure_bridge_with(&br, &subnets, &[six], 1500)?;
            attach_netns(&spec, &ns)
        })
        .unwrap()
        .unwrap();
        assert_eq!(ep.v6, Some((ip6, six)));
        let braddr = ip_in(&daemon, &["-o", "addr", "show", &br]);
        for a in [
            "inet 10.61.0.1/24",
            "inet 10.62.0.1/24",
            "inet6 fd00:61::1/64",
        ] {
            assert!(braddr.contains(a), "{a}: {braddr}");
        }
        assert!(
            braddr.contains("nodad"),
            "the gateway is usable at once: {braddr}"
        );
        let addr = ip_in(&ns, &["-6", "-o", "addr", "show", "eth0"]);
        let global = addr
            .lines()
            .find(|l| l.contains("inet6 fd00:61::2/64"))
            .unwrap_or_else(|| panic!("{addr}"));
        assert!(!global.contains("tentative"), "nodad: {global}");
        let route = ip_in(&ns, &["-6", "route"]);
        assert!(route.contains("default via fd00:61::1 dev eth0"), "{route}");
        let port = ip_in(&daemon, &["-d", "link", "show", &veth]);
        assert!(port.contains("hairpin on"), "{port}");
        let route4 = ip_in(&ns, &["route"]);
        assert!(
            route4.contains("default via 10.62.0.1 dev eth0"),
            "the gateway of the address's subnet: {route4}"
        );
    }

    /// wharfd started in a network namespace of its own (`nsenter --net`) sees the host's
    /// sysfs: a host link with its bridge's name has another index there (issue 20: the
    /// pair's `IFLA_MASTER` named a veth of the namespace, EOPNOTSUPP, or nothing, EINVAL).
    /// Everything is looked up in the daemon's namespace instead.
    #[test]
    fn attach_from_a_daemon_in_its_own_namespace_uses_its_bridge() {
        if !nix::unistd::geteuid().is_root() {
            wharf_testkit::skip("needs root");
            return;
        }
        let mut r = [0u8; 3];
        getrandom::fill(&mut r).unwrap();
        let br = format!("wn{:02x}{:02x}{:02x}", r[0], r[1], r[2]);
        // In the host: a link of the bridge's name (a veth pair, not a bridge).
        let _host = RemoveLink(br.clone());
        let st = std::process::Command::new("ip")
            .args([
                "link",
                "add",
                &br,
                "type",
                "veth",
                "peer",
                "name",
                &format!("{br}p"),
            ])
            .status()
            .unwrap();
        assert!(st.success());
        let (daemon, _daemon_task) = new_netns();
        let (ctr, _ctr_task) = new_netns();
        // Links of the daemon's namespace, so that the host's index means another one there.
        for i in 0..3 {
            ip_in(
                &daemon,
                &[
                    "link",
                    "add",
                    &format!("x{i}"),
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &format!("y{i}"),
                ],
            );
        }
        let subnet = Subnet::parse("10.77.0.1/24").unwrap();
        let ip = Ipv4Addr::new(10, 77, 0, 2);
        let veth = format!("{br}v");
        let spec = AttachSpec {
            bridge: &br,
            host_veth: &veth,
            ifname: "eth0",
            pid: 0,
            ip,
            subnet,
            v6: None,
            mtu: 1500,
            default_route: true,
            mac: None,
        };
        crate::netlink::in_netns(&daemon, "daemon's test namespace", || {
            ensure_bridge(&br, &subnet, 1500)?;
            attach_netns(&spec, &ctr)
        })
        .unwrap()
        .unwrap();
        let ports = ip_in(&daemon, &["-o", "link", "show", "master", &br]);
        assert!(ports.contains(&veth), "{ports}");
        let addr = ip_in(&ctr, &["-4", "-o", "addr", "show", "eth0"]);
        assert!(addr.contains("inet 10.77.0.2/24"), "{addr}");
        assert!(
            !std::path::Path::new("/sys/class/net").join(&veth).exists(),
            "the pair's host side is in the daemon's namespace, not the host's"
        );
        crate::netlink::in_netns(&daemon, "daemon's test namespace", || {
            delete_link(&veth);
            assert!(
                ifindex(&veth).is_none(),
                "deleted in the daemon's namespace"
            );
        })
        .unwrap();
        assert!(
            ifindex(&br).is_some(),
            "the host's link of that name is untouched"
        );
    }
}
