//! The bridge driver on the host: a Linux bridge per network with the gateway address, and
//! one veth pair per container endpoint (`wh<id8>` on the host for the first network,
//! `wh<id8>_<n>` for more; `eth<n>` in the container).

use crate::cmd::run;
use crate::ipam::Subnet;
use crate::NetError;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

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
    if run("ip", &["link", "show", "dev", link]).is_err() {
        run("ip", &["link", "add", "name", link, "type", "bridge"])?;
    }
    let addr = format!("{}/{}", subnet.gateway, subnet.prefix);
    let shown = run("ip", &["-4", "addr", "show", "dev", link])?;
    if !shown.contains(&format!("inet {addr} ")) {
        run("ip", &["addr", "add", &addr, "dev", link])?;
    }
    run(
        "ip",
        &["link", "set", "dev", link, "mtu", &mtu.to_string(), "up"],
    )?;
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

/// Deletes bridge `link` (its ports go with it).
pub fn delete_link(link: &str) {
    let _ = run("ip", &["link", "del", "dev", link]);
}

/// What `attach` needs to know of the container's interface.
pub struct AttachSpec<'a> {
    pub bridge: &'a str,
    pub host_veth: &'a str,
    pub ifname: &'a str,
    pub pid: i32,
    pub ip: Ipv4Addr,
    pub subnet: Subnet,
    pub mtu: u32,
    /// Route the container's default traffic through this network's gateway.
    pub default_route: bool,
}

/// Connects the network namespace of process `pid` to `bridge`: veth pair, address, MAC,
/// default route, loopback up.
pub fn attach(a: &AttachSpec) -> Result<Endpoint, NetError> {
    let mtu = a.mtu.to_string();
    let pid_s = a.pid.to_string();
    let add = [
        "link",
        "add",
        "name",
        a.host_veth,
        "mtu",
        &mtu,
        "type",
        "veth",
        "peer",
        "name",
        a.ifname,
        "mtu",
        &mtu,
        "netns",
        &pid_s,
    ];
    if let Err(e) = run("ip", &add) {
        // A leftover of a crash holds the name: replace it.
        if run("ip", &["link", "show", "dev", a.host_veth]).is_err() {
            return Err(e);
        }
        delete_link(a.host_veth);
        run("ip", &add)?;
    }
    let r = configure(a);
    if r.is_err() {
        delete_link(a.host_veth);
    }
    r
}

fn configure(a: &AttachSpec) -> Result<Endpoint, NetError> {
    run(
        "ip",
        &["link", "set", "dev", a.host_veth, "master", a.bridge, "up"],
    )?;
    let mac = mac_for(a.ip);
    // Everything inside the namespace in one `ip -batch` run: one exec instead of five.
    let mut batch = format!(
        "link set dev lo up\nlink set dev {ifn} address {mac}\naddr add {ip}/{p} dev {ifn}\nlink set dev {ifn} up\n",
        ifn = a.ifname,
        ip = a.ip,
        p = a.subnet.prefix
    );
    if a.default_route {
        batch.push_str(&format!("route replace default via {}\n", a.subnet.gateway));
    }
    in_netns(a.pid, &batch)?;
    Ok(Endpoint {
        ip: a.ip,
        prefix: a.subnet.prefix,
        gateway: a.subnet.gateway,
        mac,
        host_veth: a.host_veth.to_string(),
        ifname: a.ifname.to_string(),
    })
}

/// Runs an `ip -batch` script in the network namespace of `pid`.
pub fn in_netns(pid: i32, batch: &str) -> Result<(), NetError> {
    let ns = format!("--net=/proc/{pid}/ns/net");
    let mut child = Command::new("nsenter")
        .args([ns.as_str(), "ip", "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetError::Command {
            cmd: "nsenter".into(),
            message: format!("cannot run it ({e}): install util-linux"),
        })?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(batch.as_bytes())
        .map_err(|e| NetError::io("nsenter stdin", e))?;
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::io("nsenter", e))?;
    if !out.status.success() {
        return Err(NetError::Command {
            cmd: format!("nsenter {ns} ip -batch"),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_and_names_like_docker() {
        assert_eq!(mac_for(Ipv4Addr::new(172, 30, 0, 2)), "02:42:ac:1e:00:02");
        assert_eq!(host_veth("0123456789abcdef", 0), "wh01234567");
        assert_eq!(host_veth("0123456789abcdef", 2), "wh01234567_2");
        assert!(host_veth(&"f".repeat(64), 99).len() <= 15, "IFNAMSIZ");
    }
}
