//! rtnetlink requests (links, addresses, routes) over a blocking `NETLINK_ROUTE` socket: what
//! the per-container setup used to exec `ip` and `nsenter ip` for.
//!
//! A netlink socket acts in the network namespace it was created in. [`Netlink::open`] gives
//! one in the daemon's namespace (the calling thread's: wherever wharfd was started, the
//! host's or one of its own); [`Netlink::open_in`] creates one in a container's: the calling
//! thread `setns`es into it for the `socket` call and back ([`in_netns`]). Nothing here reads
//! `/sys/class/net`: sysfs lists the links of the namespace that mounted it, the host's when
//! wharfd runs in a namespace of its own (`nsenter --net`), so its ifindexes name other links
//! there, or none. Links are found by [`ifindex`] or netlink, which answer for the caller's.
//! Messages are built by the pure functions below (unit-tested byte by byte) and sent one at
//! a time, each with `NLM_F_ACK`: the kernel's answer is the error, or success, of that
//! request.

use crate::NetError;
use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE,
    NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::RouteFlags;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// The loopback device's index in every network namespace (`LOOPBACK_IFINDEX`).
pub const LOOPBACK_INDEX: u32 = 1;

/// Sets the loopback device of the network namespace at `netns` (e.g. `/proc/<pid>/ns/net`)
/// up: a container without networks (`--network none`) still has a working `lo`, as in
/// Docker (a new namespace's `lo` is down).
pub fn loopback_up(netns: &std::path::Path) -> Result<(), NetError> {
    let ns = std::fs::File::open(netns)
        .map(OwnedFd::from)
        .map_err(|e| NetError::Io {
            path: netns.to_path_buf(),
            source: e,
        })?;
    in_netns(&ns, "container's network namespace", || {
        Netlink::open().and_then(|mut n| n.set_up(LOOPBACK_INDEX, None))
    })?
}

/// The index of link `name` in the calling thread's network namespace, `None` if it has no
/// such link. `if_nametoindex`: an ioctl on a socket made here, answered for that socket's
/// namespace under RCU (no rtnl lock, no link dump to parse), where `/sys/class/net/<name>`
/// would answer for the namespace sysfs was mounted in.
pub fn ifindex(name: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(name).ok().filter(|i| *i != 0)
}

/// The destinations of `routes` that mean addresses in use, for picking a subnet: unicast
/// routes of the main table (what `/proc/net/route` lists, less the default route).
/// `unreachable`, `blackhole`, `prohibit` and `throw` routes reach no one: a sandbox that
/// keeps traffic in with `unreachable 0.0.0.0/1` and `128.0.0.0/1` uses no address by it.
pub fn routed_destinations(routes: &[RouteMessage]) -> Vec<(Ipv4Addr, u8)> {
    routes
        .iter()
        .filter(|r| {
            r.header.address_family == AddressFamily::Inet
                && r.header.kind == RouteType::Unicast
                && r.header.destination_prefix_length > 0
                && !r.header.flags.contains(RouteFlags::Cloned)
                && table(r) == u32::from(RouteHeader::RT_TABLE_MAIN)
        })
        .filter_map(|r| {
            r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet(d)) => {
                    Some((*d, r.header.destination_prefix_length))
                }
                _ => None,
            })
        })
        .collect()
}

/// `routed_destinations` for IPv6 routes (link-local and multicast ones excluded: they take
/// no subnet a network could get).
pub fn routed_destinations6(routes: &[RouteMessage]) -> Vec<(Ipv6Addr, u8)> {
    routes
        .iter()
        .filter(|r| {
            r.header.address_family == AddressFamily::Inet6
                && r.header.kind == RouteType::Unicast
                && r.header.destination_prefix_length > 0
                && !r.header.flags.contains(RouteFlags::Cloned)
                && table(r) == u32::from(RouteHeader::RT_TABLE_MAIN)
        })
        .filter_map(|r| {
            r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet6(d))
                    if (d.segments()[0] & 0xffc0) != 0xfe80 && (d.segments()[0] >> 8) != 0xff =>
                {
                    Some((*d, r.header.destination_prefix_length))
                }
                _ => None,
            })
        })
        .collect()
}

/// A route's table: `RTA_TABLE` when present (tables above 255), else the header's.
fn table(r: &RouteMessage) -> u32 {
    r.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(r.header.table))
}

/// A route netlink socket bound to one network namespace.
pub struct Netlink {
    sock: Socket,
    seq: u32,
    /// Where the socket acts, for error messages (`daemon's network namespace`,
    /// `network namespace of pid 123`).
    place: String,
}

/// A veth pair whose peer is created directly in another network namespace.
#[derive(Debug, Clone)]
pub struct VethSpec<'a> {
    /// The host side's name.
    pub host: &'a str,
    /// The bridge the host side joins (its index), if any.
    pub master: Option<u32>,
    /// The peer's name inside the namespace (`eth0`).
    pub peer: &'a str,
    /// The peer's MAC address.
    pub peer_mac: [u8; 6],
    pub mtu: u32,
}

fn up() -> (LinkFlags, LinkFlags) {
    (LinkFlags::Up, LinkFlags::Up)
}

/// `RTM_NEWLINK` of a veth pair: the host side up (enslaved to `master`), the peer with its
/// name, MAC and MTU in the namespace `netns` (an fd of `/proc/<pid>/ns/net`).
pub fn veth_message(spec: &VethSpec, netns: i32) -> LinkMessage {
    // Not up yet: veth refuses to open a side before its peer is linked to it (ENOTCONN),
    // which happens only after both are registered. The namespace's side sets it up.
    let mut peer = LinkMessage::default();
    peer.attributes = vec![
        LinkAttribute::IfName(spec.peer.to_string()),
        LinkAttribute::Mtu(spec.mtu),
        LinkAttribute::Address(spec.peer_mac.to_vec()),
        LinkAttribute::NetNsFd(netns),
    ];
    let mut m = LinkMessage::default();
    (m.header.flags, m.header.change_mask) = up();
    m.attributes = vec![
        LinkAttribute::IfName(spec.host.to_string()),
        LinkAttribute::Mtu(spec.mtu),
    ];
    if let Some(master) = spec.master {
        m.attributes.push(LinkAttribute::Controller(master));
    }
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    m
}

/// `RTM_NEWLINK` of a bridge `name` with `mtu`, up.
pub fn bridge_message(name: &str, mtu: u32) -> LinkMessage {
    let mut m = LinkMessage::default();
    (m.header.flags, m.header.change_mask) = up();
    m.attributes = vec![
        LinkAttribute::IfName(name.to_string()),
        LinkAttribute::Mtu(mtu),
        LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]),
    ];
    m
}

/// `RTM_SETLINK` of link `index`: up, and `mtu` when given.
pub fn set_up_message(index: u32, mtu: Option<u32>) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    (m.header.flags, m.header.change_mask) = up();
    if let Some(mtu) = mtu {
        m.attributes.push(LinkAttribute::Mtu(mtu));
    }
    m
}

/// `RTM_NEWLINK` of existing bridge port `index`: hairpin mode on (the bridge may send a
/// frame back out of the port it came in by, as a container's packet to a published port of
/// its own through a host address is, once DNATed).
pub fn hairpin_message(index: u32) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.attributes = vec![LinkAttribute::LinkInfo(vec![
        LinkInfo::PortKind(InfoPortKind::Bridge),
        LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
            true,
        )])),
    ])];
    m
}

/// A link named `name` (for `RTM_GETLINK` and `RTM_DELLINK`).
pub fn by_name_message(name: &str) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    m
}

/// `RTM_NEWADDR` of `ip/prefix` (with its broadcast address) on link `index`.
pub fn address_message(index: u32, ip: Ipv4Addr, prefix: u8) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = prefix;
    m.header.index = index;
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    let broadcast = Ipv4Addr::from(u32::from(ip) | !mask);
    m.attributes = vec![
        AddressAttribute::Local(IpAddr::V4(ip)),
        AddressAttribute::Address(IpAddr::V4(ip)),
    ];
    if prefix < 31 {
        m.attributes.push(AddressAttribute::Broadcast(broadcast));
    }
    m
}

/// `RTM_NEWADDR` of IPv6 `ip/prefix` on link `index`, without duplicate address detection
/// (`nodad`: usable at once; wharf's IPAM is what keeps addresses unique on the bridge).
pub fn address6_message(index: u32, ip: Ipv6Addr, prefix: u8) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet6;
    m.header.prefix_len = prefix;
    m.header.index = index;
    m.header.flags = AddressHeaderFlags::Nodad;
    m.attributes = vec![
        AddressAttribute::Local(IpAddr::V6(ip)),
        AddressAttribute::Address(IpAddr::V6(ip)),
        AddressAttribute::Flags(AddressFlags::Nodad),
    ];
    m
}

/// `RTM_NEWROUTE` of the default route via `gateway` (either family) out of link `index`,
/// main table.
pub fn default_route_message(gateway: impl Into<IpAddr>, index: u32) -> RouteMessage {
    let gateway = gateway.into();
    let mut m = RouteMessage::default();
    m.header.address_family = match gateway {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::Boot;
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes = vec![
        RouteAttribute::Gateway(RouteAddress::from(gateway)),
        RouteAttribute::Oif(index),
    ];
    m
}

/// Serializes `msg` as one netlink request with sequence number `seq`.
pub fn encode(msg: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | flags;
    header.sequence_number = seq;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    packet.finalize();
    let mut buf = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut buf);
    buf
}

/// "02:42:ac:1e:00:02" → bytes.
pub fn parse_mac(mac: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = mac.split(':');
    for b in out.iter_mut() {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

fn describe(msg: &RouteNetlinkMessage) -> String {
    let name = |attrs: &[LinkAttribute]| {
        attrs
            .iter()
            .find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            })
            .unwrap_or_default()
    };
    match msg {
        RouteNetlinkMessage::NewLink(m) => format!("creating link {}", name(&m.attributes)),
        RouteNetlinkMessage::SetLink(m) => format!("setting link {} up", m.header.index),
        RouteNetlinkMessage::DelLink(m) => format!("deleting link {}", name(&m.attributes)),
        RouteNetlinkMessage::GetLink(m) => format!("looking up link {}", name(&m.attributes)),
        RouteNetlinkMessage::NewAddress(m) => format!(
            "adding address {:?}/{} to link {}",
            m.attributes.first(),
            m.header.prefix_len,
            m.header.index
        ),
        RouteNetlinkMessage::NewRoute(_) => "adding the default route".to_string(),
        _ => "netlink request".to_string(),
    }
}

/// Runs `f` with the calling thread in the network namespace `netns`, then puts the thread
/// back into the one it was in. setns(CLONE_NEWNET) affects only the calling thread, and
/// nothing else runs on it meanwhile. If the way back fails (the kernel could not allocate
/// the thread's new namespace set), the thread would go on in the container's namespace and
/// every later link, rule or socket of the daemon made from it would land there: the daemon
/// aborts instead (its containers keep running; a restart finds them).
pub fn in_netns<T>(netns: &OwnedFd, what: &str, f: impl FnOnce() -> T) -> Result<T, NetError> {
    let here = std::fs::File::open("/proc/thread-self/ns/net").map_err(|e| NetError::Netlink {
        op: "opening the daemon's own network namespace".into(),
        source: e,
    })?;
    nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
        NetError::Netlink {
            op: format!("entering the {what}"),
            source: e.into(),
        }
    })?;
    let out = f();
    if let Err(e) = nix::sched::setns(here.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET) {
        tracing::error!("cannot return to the daemon's network namespace after entering the {what}: {e}; aborting");
        std::process::abort();
    }
    Ok(out)
}

impl Netlink {
    /// A socket in the calling thread's network namespace: the daemon's own, the host's or
    /// the one it was started in.
    pub fn open() -> Result<Netlink, NetError> {
        Self::with_place("daemon's network namespace".into())
    }

    fn with_place(place: String) -> Result<Netlink, NetError> {
        let err = |e: io::Error| NetError::Netlink {
            op: format!("opening a netlink socket in the {place}"),
            source: e,
        };
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(err)?;
        sock.bind_auto().map_err(err)?;
        sock.connect(&SocketAddr::new(0, 0)).map_err(err)?;
        // Extended acks: the kernel's own message (e.g. "Invalid MTU") comes with errors;
        // harmless where unsupported.
        let _ = sock.set_ext_ack(true);
        Ok(Netlink {
            sock,
            seq: 0,
            place,
        })
    }

    /// A socket in the network namespace `netns` (an open `/proc/<pid>/ns/net`): the calling
    /// thread enters it, makes the socket, and goes back (the socket keeps acting where it
    /// was made). No helper thread: handing the work to a new thread and joining it cost a
    /// scheduler tick (4 ms) on a loaded machine, more than everything else in an attach.
    pub fn open_in(netns: &OwnedFd, what: &str) -> Result<Netlink, NetError> {
        let place = what.to_string();
        in_netns(netns, what, || Self::with_place(place))?
    }

    /// Sends `msg` and waits for its acknowledgement; the kernel's error if it refused.
    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<(), io::Error> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        self.sock.send(&encode(msg, flags | NLM_F_ACK, seq), 0)?;
        loop {
            let done = self.receive(seq, &mut |_| {})?;
            if done {
                return Ok(());
            }
        }
    }

    /// Reads one datagram; calls `each` for every message of `seq` in it; true once the
    /// request's acknowledgement (or a dump's end) came. Errors carry the kernel's errno.
    fn receive(
        &self,
        seq: u32,
        each: &mut dyn FnMut(RouteNetlinkMessage),
    ) -> Result<bool, io::Error> {
        let mut buf = Vec::with_capacity(32 * 1024);
        self.sock.recv(&mut buf, 0)?;
        let mut off = 0;
        let mut done = false;
        while off < buf.len() {
            let nb = NetlinkBuffer::new_checked(&buf[off..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let len = (nb.length() as usize).max(16);
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(
                &buf[off..(off + len).min(buf.len())],
            )
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            off += (len + 3) & !3;
            if msg.header.sequence_number != seq {
                continue; // an answer to an earlier, abandoned request
            }
            match msg.payload {
                NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                NetlinkPayload::Error(_) | NetlinkPayload::Done(_) => done = true,
                NetlinkPayload::InnerMessage(m) => each(m),
                _ => {}
            }
        }
        Ok(done)
    }

    fn check(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<(), NetError> {
        let op = describe(&msg);
        self.request(msg, flags).map_err(|e| NetError::Netlink {
            op: format!("{op} in the {}", self.place),
            source: e,
        })
    }

    /// The index of link `name`, `None` if there is none.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>, NetError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let req = encode(
            RouteNetlinkMessage::GetLink(by_name_message(name)),
            NLM_F_ACK,
            seq,
        );
        let err = |e: io::Error| NetError::Netlink {
            op: format!("looking up link {name} in the {}", self.place),
            source: e,
        };
        self.sock.send(&req, 0).map_err(err)?;
        let mut index = None;
        loop {
            let r = self.receive(seq, &mut |m| {
                if let RouteNetlinkMessage::NewLink(l) = m {
                    index = Some(l.header.index);
                }
            });
            match r {
                Ok(true) => return Ok(index),
                Ok(false) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(None),
                Err(e) => return Err(err(e)),
            }
        }
    }

    /// Every message of a dump of `what` (`RTM_GETLINK`, `RTM_GETROUTE`, ...).
    fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
        what: &str,
    ) -> Result<Vec<RouteNetlinkMessage>, NetError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let err = |e: io::Error| NetError::Netlink {
            op: format!("listing {what} in the {}", self.place),
            source: e,
        };
        self.sock
            .send(&encode(msg, NLM_F_DUMP, seq), 0)
            .map_err(err)?;
        let mut out = Vec::new();
        loop {
            if self.receive(seq, &mut |m| out.push(m)).map_err(err)? {
                return Ok(out);
            }
        }
    }

    /// Names of the bridges in this namespace.
    pub fn bridges(&mut self) -> Result<Vec<String>, NetError> {
        let links = self.dump(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            "links",
        )?;
        Ok(links
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l),
                _ => None,
            })
            .filter(|l| {
                l.attributes.iter().any(|a| {
                    matches!(a, LinkAttribute::LinkInfo(i)
                        if i.contains(&LinkInfo::Kind(InfoKind::Bridge)))
                })
            })
            .filter_map(|l| {
                l.attributes.into_iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n),
                    _ => None,
                })
            })
            .collect())
    }

    /// The IPv4 routes of this namespace, every table.
    pub fn routes(&mut self) -> Result<Vec<RouteMessage>, NetError> {
        self.routes_of(AddressFamily::Inet)
    }

    /// The IPv6 routes of this namespace, every table.
    pub fn routes6(&mut self) -> Result<Vec<RouteMessage>, NetError> {
        self.routes_of(AddressFamily::Inet6)
    }

    fn routes_of(&mut self, family: AddressFamily) -> Result<Vec<RouteMessage>, NetError> {
        let mut req = RouteMessage::default();
        req.header.address_family = family;
        let routes = self.dump(RouteNetlinkMessage::GetRoute(req), "routes")?;
        Ok(routes
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => Some(r),
                _ => None,
            })
            .collect())
    }

    /// Creates the veth pair of `spec`, its peer in the namespace `netns`. `Ok(false)` if a
    /// link of the host side's name exists already.
    pub fn create_veth(&mut self, spec: &VethSpec, netns: &OwnedFd) -> Result<bool, NetError> {
        let msg = RouteNetlinkMessage::NewLink(veth_message(spec, netns.as_raw_fd()));
        match self.request(msg, NLM_F_CREATE | NLM_F_EXCL) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(NetError::Netlink {
                op: format!(
                    "creating veth pair {}/{} in the {}",
                    spec.host, spec.peer, self.place
                ),
                source: e,
            }),
        }
    }

    /// Creates bridge `name` (up) unless a link of that name exists.
    pub fn create_bridge(&mut self, name: &str, mtu: u32) -> Result<(), NetError> {
        match self.request(
            RouteNetlinkMessage::NewLink(bridge_message(name, mtu)),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(NetError::Netlink {
                op: format!("creating bridge {name} in the {}", self.place),
                source: e,
            }),
        }
    }

    /// Sets link `index` up (with `mtu`, if given).
    pub fn set_up(&mut self, index: u32, mtu: Option<u32>) -> Result<(), NetError> {
        self.check(RouteNetlinkMessage::SetLink(set_up_message(index, mtu)), 0)
    }

    /// Adds `ip/prefix` to link `index` (no error if it has it already).
    pub fn add_address(&mut self, index: u32, ip: Ipv4Addr, prefix: u8) -> Result<(), NetError> {
        self.check(
            RouteNetlinkMessage::NewAddress(address_message(index, ip, prefix)),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
    }

    /// Adds IPv6 `ip/prefix` (`nodad`) to link `index` (no error if it has it already).
    pub fn add_address6(&mut self, index: u32, ip: Ipv6Addr, prefix: u8) -> Result<(), NetError> {
        self.check(
            RouteNetlinkMessage::NewAddress(address6_message(index, ip, prefix)),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
    }

    /// Sets the default route (of `gateway`'s family) via `gateway` out of link `index`
    /// (replacing any other).
    pub fn replace_default_route(
        &mut self,
        gateway: impl Into<IpAddr>,
        index: u32,
    ) -> Result<(), NetError> {
        self.check(
            RouteNetlinkMessage::NewRoute(default_route_message(gateway, index)),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
    }

    /// Sets hairpin mode on bridge port `index`.
    pub fn set_hairpin(&mut self, index: u32) -> Result<(), NetError> {
        self.check(RouteNetlinkMessage::NewLink(hairpin_message(index)), 0)
    }

    /// Deletes link `name`; `Ok(false)` if there was none.
    pub fn delete_link(&mut self, name: &str) -> Result<bool, NetError> {
        match self.request(RouteNetlinkMessage::DelLink(by_name_message(name)), 0) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(NetError::Netlink {
                op: format!("deleting link {name} in the {}", self.place),
                source: e,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::Emitable;

    /// Every (type, payload) of a netlink attribute list, nested lists not descended.
    fn attrs(mut b: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut out = vec![];
        while b.len() >= 4 {
            let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
            let kind = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
            out.push((kind, b[4..len].to_vec()));
            b = &b[((len + 3) & !3).min(b.len())..];
        }
        out
    }

    fn find(list: &[(u16, Vec<u8>)], kind: u16) -> Vec<u8> {
        list.iter()
            .find(|(k, _)| *k == kind)
            .unwrap_or_else(|| panic!("attribute {kind} missing"))
            .1
            .clone()
    }

    const IFINFOMSG: usize = 16;

    #[test]
    fn veth_request_puts_the_peer_in_the_namespace_with_its_mac() {
        let spec = VethSpec {
            host: "wh01234567",
            master: Some(7),
            peer: "eth0",
            peer_mac: parse_mac("02:42:ac:1e:00:02").unwrap(),
            mtu: 1400,
        };
        let buf = encode(
            RouteNetlinkMessage::NewLink(veth_message(&spec, 42)),
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
            9,
        );
        // nlmsghdr: length, RTM_NEWLINK (16), flags, seq.
        assert_eq!(
            u32::from_ne_bytes(buf[0..4].try_into().unwrap()) as usize,
            buf.len()
        );
        assert_eq!(u16::from_ne_bytes([buf[4], buf[5]]), libc::RTM_NEWLINK);
        let flags = u16::from_ne_bytes([buf[6], buf[7]]);
        assert_eq!(flags, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
        assert_eq!(u32::from_ne_bytes(buf[8..12].try_into().unwrap()), 9);
        let ifi = &buf[16..16 + IFINFOMSG];
        // ifi_flags and ifi_change: IFF_UP.
        assert_eq!(u32::from_ne_bytes(ifi[8..12].try_into().unwrap()), 1);
        assert_eq!(u32::from_ne_bytes(ifi[12..16].try_into().unwrap()), 1);
        let top = attrs(&buf[16 + IFINFOMSG..]);
        assert_eq!(find(&top, libc::IFLA_IFNAME), b"wh01234567\0");
        assert_eq!(find(&top, libc::IFLA_MTU), 1400u32.to_ne_bytes());
        assert_eq!(find(&top, libc::IFLA_MASTER), 7u32.to_ne_bytes());
        let info = attrs(&find(&top, libc::IFLA_LINKINFO));
        assert_eq!(find(&info, libc::IFLA_INFO_KIND), b"veth\0");
        let data = attrs(&find(&info, libc::IFLA_INFO_DATA));
        // VETH_INFO_PEER: an ifinfomsg, then the peer's attributes.
        let peer = find(&data, 1);
        assert_eq!(
            u32::from_ne_bytes(peer[12..16].try_into().unwrap()),
            0,
            "the peer cannot be opened before it is paired (ENOTCONN)"
        );
        let peer = attrs(&peer[IFINFOMSG..]);
        assert_eq!(find(&peer, libc::IFLA_IFNAME), b"eth0\0");
        assert_eq!(find(&peer, libc::IFLA_ADDRESS), [2, 0x42, 0xac, 0x1e, 0, 2]);
        assert_eq!(find(&peer, libc::IFLA_NET_NS_FD), 42u32.to_ne_bytes());
        assert_eq!(find(&peer, libc::IFLA_MTU), 1400u32.to_ne_bytes());
    }

    #[test]
    fn address_and_route_requests() {
        let ip = Ipv4Addr::new(10, 1, 2, 3);
        let m = address_message(5, ip, 24);
        let mut b = vec![0u8; m.buffer_len()];
        m.emit(&mut b);
        // ifaddrmsg: family, prefixlen, flags, scope, index.
        assert_eq!((b[0], b[1]), (libc::AF_INET as u8, 24));
        assert_eq!(u32::from_ne_bytes(b[4..8].try_into().unwrap()), 5);
        let a = attrs(&b[8..]);
        assert_eq!(find(&a, libc::IFA_LOCAL), ip.octets());
        assert_eq!(find(&a, libc::IFA_ADDRESS), ip.octets());
        assert_eq!(find(&a, libc::IFA_BROADCAST), [10, 1, 2, 255]);

        let r = default_route_message(Ipv4Addr::new(10, 1, 2, 1), 5);
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut b);
        // rtmsg: family, dst_len 0 (default), src_len, tos, table, protocol, scope, type.
        assert_eq!(b[0], libc::AF_INET as u8);
        assert_eq!(b[1], 0);
        assert_eq!(b[4], libc::RT_TABLE_MAIN);
        assert_eq!(b[6], libc::RT_SCOPE_UNIVERSE);
        assert_eq!(b[7], libc::RTN_UNICAST);
        let a = attrs(&b[12..]);
        assert_eq!(find(&a, libc::RTA_GATEWAY), [10, 1, 2, 1]);
        assert_eq!(find(&a, libc::RTA_OIF), 5u32.to_ne_bytes());
    }

    #[test]
    fn ipv6_address_route_and_hairpin_requests() {
        let ip: Ipv6Addr = "fd00:1::2".parse().unwrap();
        let m = address6_message(5, ip, 64);
        let mut b = vec![0u8; m.buffer_len()];
        m.emit(&mut b);
        assert_eq!((b[0], b[1]), (libc::AF_INET6 as u8, 64));
        assert_eq!(b[2] as u32 & libc::IFA_F_NODAD, libc::IFA_F_NODAD, "nodad");
        let a = attrs(&b[8..]);
        assert_eq!(find(&a, libc::IFA_LOCAL), ip.octets());
        assert_eq!(find(&a, libc::IFA_FLAGS), libc::IFA_F_NODAD.to_ne_bytes());
        assert!(!a.iter().any(|(k, _)| *k == libc::IFA_BROADCAST));

        let gw: Ipv6Addr = "fd00:1::1".parse().unwrap();
        let r = default_route_message(gw, 5);
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut b);
        assert_eq!((b[0], b[1]), (libc::AF_INET6 as u8, 0));
        assert_eq!(find(&attrs(&b[12..]), libc::RTA_GATEWAY), gw.octets());

        let h = hairpin_message(9);
        let mut b = vec![0u8; h.buffer_len()];
        h.emit(&mut b);
        assert_eq!(u32::from_ne_bytes(b[4..8].try_into().unwrap()), 9);
        let info = attrs(&find(&attrs(&b[IFINFOMSG..]), libc::IFLA_LINKINFO));
        assert_eq!(find(&info, 4 /* IFLA_INFO_SLAVE_KIND */), b"bridge\0");
        let data = attrs(&find(&info, 5 /* IFLA_INFO_SLAVE_DATA */));
        assert_eq!(find(&data, 4 /* IFLA_BRPORT_MODE */), [1]);
    }

    #[test]
    fn only_unicast_main_table_routes_take_addresses() {
        let route = |dst: [u8; 4], len: u8, kind: RouteType, table: u32| {
            let mut r = RouteMessage::default();
            r.header.address_family = AddressFamily::Inet;
            r.header.destination_prefix_length = len;
            r.header.kind = kind;
            r.header.table = table.min(255) as u8;
            r.attributes = vec![RouteAttribute::Table(table)];
            if len > 0 {
                r.attributes
                    .push(RouteAttribute::Destination(RouteAddress::Inet(dst.into())));
            }
            r
        };
        let main = u32::from(RouteHeader::RT_TABLE_MAIN);
        let mut cloned = route([10, 9, 9, 9], 32, RouteType::Unicast, main);
        cloned.header.flags = RouteFlags::Cloned;
        let routes = [
            route([0; 4], 0, RouteType::Unicast, main),
            route([0; 4], 1, RouteType::Unreachable, main),
            route([128, 0, 0, 0], 1, RouteType::Unreachable, main),
            route([172, 19, 0, 0], 16, RouteType::BlackHole, main),
            route([172, 20, 0, 0], 16, RouteType::Prohibit, main),
            route([172, 21, 0, 0], 16, RouteType::Unicast, 1000),
            route([127, 0, 0, 0], 8, RouteType::Local, 255),
            cloned,
            route([172, 18, 0, 0], 16, RouteType::Unicast, main),
        ];
        assert_eq!(
            routed_destinations(&routes),
            [(Ipv4Addr::new(172, 18, 0, 0), 16)]
        );
    }

    #[test]
    fn macs_parse() {
        assert_eq!(
            parse_mac("02:42:0a:00:00:ff"),
            Some([2, 0x42, 10, 0, 0, 0xff])
        );
        assert_eq!(parse_mac("02:42:0a:00:00"), None);
        assert_eq!(parse_mac("02:42:0a:00:00:ff:01"), None);
        assert_eq!(parse_mac("zz:42:0a:00:00:ff"), None);
    }
}
