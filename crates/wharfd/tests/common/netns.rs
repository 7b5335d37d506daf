//! A network namespace for one test, made the way a sandbox (CI, systemd's
//! `PrivateNetwork=`, a pod) gives one to a daemon: `ip netns add`, a veth uplink to a peer in
//! the host's namespace with a default route through it, and `unreachable` routes for
//! 0.0.0.0/1 and 128.0.0.0/1 so that nothing leaves the machine. A daemon is started in it with
//! `nsenter --net` (not `ip netns exec`, which also remounts /sys and hides the cgroup mounts).
//! Removed on drop, with everything in it (links, rules), even when the test failed.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Output};

pub struct Netns {
    /// The name under /run/netns (unique per test).
    pub name: String,
    /// The uplink's end in the host's namespace and in this one.
    pub host_link: String,
    pub link: String,
    /// The addresses of the uplink's ends (a /30 of 100.64.0.0/10, routed nowhere else).
    pub host_address: String,
    pub address: String,
}

fn run(cmd: &mut Command) -> Output {
    let o = cmd.output().expect("run a namespace setup command");
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn ip(args: &[&str]) -> Output {
    run(Command::new("ip").args(args))
}

impl Netns {
    pub fn new() -> Netns {
        let mut r = [0u8; 3];
        getrandom::fill(&mut r).unwrap();
        let tag = format!("{:02x}{:02x}{:02x}", r[0], r[1], r[2]);
        let host_routes =
            String::from_utf8_lossy(&ip(&["-4", "route", "show", "table", "all"]).stdout)
                .into_owned();
        // A /30 of the shared address space, not routed on the host yet.
        let (b, c, d) = loop {
            let mut r = [0u8; 3];
            getrandom::fill(&mut r).unwrap();
            let (b, c, d) = (64 + r[0] % 64, r[1], r[2] & 0xfc);
            if !host_routes.contains(&format!("100.{b}.{c}.")) {
                break (b, c, d);
            }
        };
        let ns = Netns {
            name: format!("wharf-t-{}-{tag}", std::process::id()),
            host_link: format!("wu{tag}"),
            link: format!("wp{tag}"),
            host_address: format!("100.{b}.{c}.{}", d + 1),
            address: format!("100.{b}.{c}.{}", d + 2),
        };
        ip(&["netns", "add", &ns.name]);
        // From here on, drop removes what was made even if a step fails.
        ip(&[
            "link",
            "add",
            &ns.host_link,
            "type",
            "veth",
            "peer",
            "name",
            &ns.link,
            "netns",
            &ns.name,
        ]);
        ip(&[
            "addr",
            "add",
            &format!("{}/30", ns.host_address),
            "dev",
            &ns.host_link,
        ]);
        ip(&["link", "set", &ns.host_link, "up"]);
        let n = ns.name.clone();
        let addr = format!("{}/30", ns.address);
        for args in [
            vec!["addr", "add", addr.as_str(), "dev", ns.link.as_str()],
            vec!["link", "set", ns.link.as_str(), "up"],
            vec!["link", "set", "lo", "up"],
            vec!["route", "add", "default", "via", ns.host_address.as_str()],
            vec!["route", "add", "unreachable", "0.0.0.0/1"],
            vec!["route", "add", "unreachable", "128.0.0.0/1"],
        ] {
            let mut a = vec!["-n", n.as_str()];
            a.extend(args);
            ip(&a);
        }
        ns
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// `program` to be run in this namespace (only the network namespace changes).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path().display()))
            .arg("--")
            .arg(program);
        c
    }

    /// Runs `f` on a thread of this process that entered the namespace (sockets made there
    /// act there: a client on the namespace's loopback); the calling thread stays put.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let fd: OwnedFd = std::fs::File::open(self.path())
            .expect("open the test namespace")
            .into();
        std::thread::scope(|s| {
            s.spawn(move || {
                nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                    .expect("setns into the test namespace");
                f()
            })
            .join()
            .expect("thread in the test namespace")
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // The namespace goes once nothing holds it (the daemons were stopped before), with
        // its links (the uplink's host end too) and its iptables rules.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_link])
            .output();
    }
}

/// A link in the host's namespace (a veth pair) named like a link of a daemon in a test
/// namespace, as a host running its own wharfd has a `wharf0` while the namespace's daemon
/// makes its own `wharf0`: the daemon must use its namespace's link, never the host's of
/// the same name. Deleted on drop.
pub struct HostNamesake(String);

impl HostNamesake {
    pub fn new(name: &str) -> HostNamesake {
        let peer = format!("{}x", &name[..name.len().min(14)]);
        ip(&["link", "add", name, "type", "veth", "peer", "name", &peer]);
        HostNamesake(name.to_string())
    }
}

impl Drop for HostNamesake {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).output();
    }
}
