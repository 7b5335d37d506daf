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

/// Deletes `link` if it exists (a bridge's ports go with it; a veth pair goes with its
/// namespace, so a stopped container's usually needs nothing).
pub fn delete_link(link: &str) {
    if link_exists(link) {
        let _ = run("ip", &["link", "del", "dev", link]);
    }
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
/// default route, loopback up. Two execs: one `ip -batch` on the host, one in the namespace.
pub fn attach(a: &AttachSpec) -> Result<Endpoint, NetError> {
    let host = format!(
        "link add name {hv} mtu {mtu} type veth peer name {ifn} mtu {mtu} netns {pid}\nlink set dev {hv} master {br} up\n",
        hv = a.host_veth,
        mtu = a.mtu,
        ifn = a.ifname,
        pid = a.pid,
        br = a.bridge
    );
    if let Err(e) = ip_batch(None, &host) {
        // A leftover of a crash holds the name: replace it.
        if !link_exists(a.host_veth) {
            return Err(e);
        }
        delete_link(a.host_veth);
        ip_batch(None, &host)?;
    }
    let r = configure(a);
    if r.is_err() {
        delete_link(a.host_veth);
    }
    r
}

/// Whether link `name` exists on the host (no exec).
pub fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

fn configure(a: &AttachSpec) -> Result<Endpoint, NetError> {
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
    ip_batch(Some(a.pid), &batch)?;
    Ok(Endpoint {
        ip: a.ip,
        prefix: a.subnet.prefix,
        gateway: a.subnet.gateway,
        mac,
        host_veth: a.host_veth.to_string(),
        ifname: a.ifname.to_string(),
    })
}

/// Runs an `ip -batch` script on the host, or in the network namespace of `pid`.
pub fn ip_batch(pid: Option<i32>, batch: &str) -> Result<(), NetError> {
    let ns = pid.map(|p| format!("--net=/proc/{p}/ns/net"));
    let mut cmd = match &ns {
        Some(ns) => {
            let mut c = Command::new("nsenter");
            c.args([ns.as_str(), "ip", "-batch", "-"]);
            c
        }
        None => {
            let mut c = Command::new("ip");
            c.args(["-batch", "-"]);
            c
        }
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetError::Command {
            cmd: "ip -batch".into(),
            message: format!("cannot run it ({e}): install iproute2 and util-linux"),
        })?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(batch.as_bytes())
        .map_err(|e| NetError::io("ip -batch stdin", e))?;
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::io("ip -batch", e))?;
    if !out.status.success() {
        return Err(NetError::Command {
            cmd: format!(
                "{}ip -batch ({})",
                ns.map(|n| format!("nsenter {n} ")).unwrap_or_default(),
                batch.trim().replace('\n', "; ")
            ),
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
