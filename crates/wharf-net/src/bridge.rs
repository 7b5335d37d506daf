//! The default bridge network: a Linux bridge with the gateway address, NAT for its subnet,
//! and one veth pair per container (`wh<id8>` on the host, `eth0` in the container).

use crate::cmd::{iptables_delete, iptables_ensure, run};
use crate::ipam::{Ipam, Subnet};
use crate::NetError;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// Where and how the bridge is made.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// Link name (`wharf0`).
    pub name: String,
    pub subnet: Subnet,
    /// Directory for the IPAM file.
    pub state_dir: PathBuf,
    pub mtu: u32,
}

/// A container's place on the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    pub host_veth: String,
}

/// The bridge network.
pub struct Bridge {
    pub cfg: BridgeConfig,
    ipam: Mutex<Ipam>,
}

/// Docker's MAC for an address: 02:42 followed by the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

fn host_veth(id: &str) -> String {
    format!("wh{}", &id[..id.len().min(8)])
}

impl Bridge {
    /// Loads the IPAM state; nothing is created on the host until `ensure`.
    pub fn open(cfg: BridgeConfig) -> Result<Bridge, NetError> {
        std::fs::create_dir_all(&cfg.state_dir).map_err(|source| NetError::Io {
            path: cfg.state_dir.clone(),
            source,
        })?;
        let ipam = Ipam::open(
            cfg.subnet,
            cfg.state_dir.join(format!("ipam-{}.json", cfg.name)),
        )?;
        Ok(Bridge {
            cfg,
            ipam: Mutex::new(ipam),
        })
    }

    fn nat_rule(&self) -> Vec<String> {
        vec![
            "-s".into(),
            self.cfg.subnet.cidr(),
            "!".into(),
            "-o".into(),
            self.cfg.name.clone(),
            "-j".into(),
            "MASQUERADE".into(),
        ]
    }

    fn forward_rules(&self) -> [[String; 4]; 2] {
        let n = self.cfg.name.clone();
        [
            ["-i".into(), n.clone(), "-j".into(), "ACCEPT".into()],
            ["-o".into(), n, "-j".into(), "ACCEPT".into()],
        ]
    }

    /// Creates the bridge, its address, forwarding and NAT if they are missing (idempotent).
    pub fn ensure(&self) -> Result<(), NetError> {
        let n = &self.cfg.name;
        if run("ip", &["link", "show", "dev", n]).is_err() {
            run("ip", &["link", "add", "name", n, "type", "bridge"])?;
        }
        let addr = format!("{}/{}", self.cfg.subnet.gateway, self.cfg.subnet.prefix);
        let shown = run("ip", &["-4", "addr", "show", "dev", n])?;
        if !shown.contains(&format!("inet {addr} ")) {
            run("ip", &["addr", "add", &addr, "dev", n])?;
        }
        run(
            "ip",
            &[
                "link",
                "set",
                "dev",
                n,
                "mtu",
                &self.cfg.mtu.to_string(),
                "up",
            ],
        )?;
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").map_err(|source| NetError::Io {
            path: "/proc/sys/net/ipv4/ip_forward".into(),
            source,
        })?;
        let nat = self.nat_rule();
        iptables_ensure(
            "nat",
            "POSTROUTING",
            &nat.iter().map(String::as_str).collect::<Vec<_>>(),
        )?;
        for r in self.forward_rules() {
            iptables_ensure(
                "filter",
                "FORWARD",
                &r.iter().map(String::as_str).collect::<Vec<_>>(),
            )?;
        }
        Ok(())
    }

    /// Connects the network namespace of process `pid` (the container's init, created but not
    /// started) to the bridge: veth pair, address, MAC, default route, loopback up.
    pub fn attach(&self, id: &str, pid: i32) -> Result<Endpoint, NetError> {
        let ip = self.ipam.lock().expect("ipam lock").allocate(id)?;
        let r = self.attach_with(id, pid, ip);
        if r.is_err() {
            let _ = self.detach(id);
        }
        r
    }

    fn attach_with(&self, id: &str, pid: i32, ip: Ipv4Addr) -> Result<Endpoint, NetError> {
        let veth = host_veth(id);
        let _ = run("ip", &["link", "del", "dev", &veth]);
        let mtu = self.cfg.mtu.to_string();
        let pid_s = pid.to_string();
        run(
            "ip",
            &[
                "link", "add", "name", &veth, "mtu", &mtu, "type", "veth", "peer", "name", "eth0",
                "mtu", &mtu, "netns", &pid_s,
            ],
        )?;
        run(
            "ip",
            &["link", "set", "dev", &veth, "master", &self.cfg.name, "up"],
        )?;
        let sub = self.cfg.subnet;
        let mac = mac_for(ip);
        // Everything inside the namespace in one `ip -batch` run: one exec instead of five.
        let batch = format!(
            "link set dev lo up\nlink set dev eth0 address {mac}\naddr add {ip}/{} dev eth0\nlink set dev eth0 up\nroute add default via {}\n",
            sub.prefix, sub.gateway
        );
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
            .map_err(|source| NetError::Io {
                path: "nsenter stdin".into(),
                source,
            })?;
        let out = child.wait_with_output().map_err(|source| NetError::Io {
            path: "nsenter".into(),
            source,
        })?;
        if !out.status.success() {
            return Err(NetError::Command {
                cmd: format!("nsenter {ns} ip -batch"),
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(Endpoint {
            ip,
            prefix: sub.prefix,
            gateway: sub.gateway,
            mac,
            host_veth: veth,
        })
    }

    /// Removes the container's veth (gone already when its namespace died) and frees its
    /// address.
    pub fn detach(&self, id: &str) -> Result<(), NetError> {
        let _ = run("ip", &["link", "del", "dev", &host_veth(id)]);
        self.ipam.lock().expect("ipam lock").release(id)
    }

    /// After a restart: frees what containers that are no longer running held.
    pub fn reconcile(&self, live: &[String]) {
        let holders = self.ipam.lock().expect("ipam lock").holders();
        for h in holders.iter().filter(|h| !live.contains(h)) {
            let _ = self.detach(h);
        }
    }

    /// Removes the bridge and its rules (for tests and uninstall).
    pub fn teardown(&self) {
        let _ = run("ip", &["link", "del", "dev", &self.cfg.name]);
        let nat = self.nat_rule();
        iptables_delete(
            "nat",
            "POSTROUTING",
            &nat.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        for r in self.forward_rules() {
            iptables_delete(
                "filter",
                "FORWARD",
                &r.iter().map(String::as_str).collect::<Vec<_>>(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_and_names_like_docker() {
        assert_eq!(mac_for(Ipv4Addr::new(172, 30, 0, 2)), "02:42:ac:1e:00:02");
        assert_eq!(host_veth("0123456789abcdef"), "wh01234567");
        assert!(host_veth(&"f".repeat(64)).len() <= 15, "IFNAMSIZ");
    }
}
