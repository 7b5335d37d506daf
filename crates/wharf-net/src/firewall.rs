//! iptables rules, all in chains named after the daemon's prefix (its default bridge), so
//! that several daemons (and tests) can share a host and each removes exactly what it made:
//!
//! - filter `P-FWD` (first rule of FORWARD): `-j P-ISO1`, then accepts per network;
//!   `P-ISO1`/`P-ISO2`: Docker's two-stage isolation: traffic leaving one of our bridges for
//!   another of our bridges is dropped; an `--internal` network drops everything that is not
//!   between its own members.
//! - nat `P-POST` (POSTROUTING): masquerade per non-internal network, and for traffic from
//!   the host's loopback that `P-DNAT` sent to a container (see `ports`).
//! - nat `P-DNAT` (PREROUTING and OUTPUT, to local addresses): published ports, one rule
//!   per port commented with the container id.

use crate::cmd::run;
use crate::ports::PortMapping;
use crate::NetError;
use std::io::Write;
use std::process::{Command, Stdio};

/// The rules of one daemon.
#[derive(Debug, Clone)]
pub struct Firewall {
    prefix: String,
}

fn chain(prefix: &str, what: &str) -> String {
    format!("{prefix}-{what}")
}

/// Feeds `rules` (lines of iptables-save syntax for one table) to `iptables-restore
/// --noflush`: one exec for any number of rules, applied atomically.
fn restore(table: &str, rules: &[String]) -> Result<(), NetError> {
    if rules.is_empty() {
        return Ok(());
    }
    let mut input = format!("*{table}\n");
    for r in rules {
        input.push_str(r);
        input.push('\n');
    }
    input.push_str("COMMIT\n");
    let mut child = Command::new("iptables-restore")
        .args(["-w", "--noflush"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetError::Command {
            cmd: "iptables-restore".into(),
            message: format!("cannot run it ({e}): install iptables"),
        })?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes())
        .map_err(|e| NetError::io("iptables-restore stdin", e))?;
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::io("iptables-restore", e))?;
    if !out.status.success() {
        return Err(NetError::Command {
            cmd: format!("iptables-restore ({})", input.replace('\n', "; ")),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// The rules of `chain` in `table`, as `iptables -S` prints them (`-A chain ...`).
fn list(table: &str, chain: &str) -> Vec<String> {
    run("iptables", &["-w", "-t", table, "-S", chain])
        .map(|s| {
            s.lines()
                .filter(|l| l.starts_with("-A "))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn exists(table: &str, rule: &[&str]) -> bool {
    let mut args = vec!["-w", "-t", table, "-C"];
    args.extend_from_slice(rule);
    run("iptables", &args).is_ok()
}

/// Rules of a network, in iptables-save syntax without the `-A`/`-D` verb: (table, rule).
fn network_rules(
    fw: &Firewall,
    link: &str,
    cidr: &str,
    internal: bool,
) -> Vec<(&'static str, String)> {
    let p = &fw.prefix;
    let (fwd, iso1, iso2, post) = (
        chain(p, "FWD"),
        chain(p, "ISO1"),
        chain(p, "ISO2"),
        chain(p, "POST"),
    );
    let mut r = vec![("filter", format!("{iso2} -o {link} -j DROP"))];
    if internal {
        r.push(("filter", format!("{iso1} -i {link} ! -o {link} -j DROP")));
        r.push(("filter", format!("{iso1} -o {link} ! -i {link} -j DROP")));
    } else {
        r.push(("filter", format!("{iso1} -i {link} ! -o {link} -j {iso2}")));
        r.push(("nat", format!("{post} -s {cidr} ! -o {link} -j MASQUERADE")));
        r.push((
            "nat",
            format!("{post} -s 127.0.0.0/8 -o {link} -j MASQUERADE"),
        ));
    }
    r.push(("filter", format!("{fwd} -i {link} -j ACCEPT")));
    r.push(("filter", format!("{fwd} -o {link} -j ACCEPT")));
    r
}

impl Firewall {
    pub fn new(prefix: &str) -> Firewall {
        Firewall {
            prefix: prefix.to_string(),
        }
    }

    /// The chains and the jumps into them (idempotent).
    pub fn ensure_base(&self) -> Result<(), NetError> {
        let p = &self.prefix;
        for (table, c) in [
            ("filter", chain(p, "FWD")),
            ("filter", chain(p, "ISO1")),
            ("filter", chain(p, "ISO2")),
            ("nat", chain(p, "POST")),
            ("nat", chain(p, "DNAT")),
        ] {
            if run("iptables", &["-w", "-t", table, "-S", &c]).is_err() {
                run("iptables", &["-w", "-t", table, "-N", &c])?;
            }
        }
        let fwd = chain(p, "FWD");
        let iso1 = chain(p, "ISO1");
        if !exists("filter", &[&fwd, "-j", &iso1]) {
            run("iptables", &["-w", "-I", &fwd, "1", "-j", &iso1])?;
        }
        let dnat = chain(p, "DNAT");
        let post = chain(p, "POST");
        for (table, parent, rule) in [
            ("filter", "FORWARD", vec!["-j", fwd.as_str()]),
            ("nat", "POSTROUTING", vec!["-j", post.as_str()]),
            (
                "nat",
                "PREROUTING",
                vec!["-m", "addrtype", "--dst-type", "LOCAL", "-j", dnat.as_str()],
            ),
            (
                "nat",
                "OUTPUT",
                vec!["-m", "addrtype", "--dst-type", "LOCAL", "-j", dnat.as_str()],
            ),
        ] {
            let mut check = vec![parent];
            check.extend(rule.iter().copied());
            if !exists(table, &check) {
                let mut add = vec!["-w", "-t", table, "-I", parent, "1"];
                add.extend(rule.iter().copied());
                run("iptables", &add)?;
            }
        }
        Ok(())
    }

    /// Isolation, forwarding and NAT of one network's bridge (idempotent).
    pub fn add_network(&self, link: &str, cidr: &str, internal: bool) -> Result<(), NetError> {
        let mut by_table: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for (table, rule) in network_rules(self, link, cidr, internal) {
            let words: Vec<&str> = rule.split(' ').collect();
            if !exists(table, &words) {
                by_table
                    .entry(table)
                    .or_default()
                    .push(format!("-A {rule}"));
            }
        }
        for (table, rules) in by_table {
            restore(table, &rules)?;
        }
        Ok(())
    }

    /// Removes what `add_network` made.
    pub fn remove_network(&self, link: &str, cidr: &str, internal: bool) {
        for (table, rule) in network_rules(self, link, cidr, internal) {
            let words: Vec<&str> = rule.split(' ').collect();
            let mut del = vec!["-w", "-t", table, "-D"];
            del.extend_from_slice(&words);
            while run("iptables", &del).is_ok() {}
        }
    }

    /// DNAT rules for a container's published ports, commented with its id.
    pub fn add_ports(&self, id: &str, ports: &[PortMapping]) -> Result<(), NetError> {
        let dnat = chain(&self.prefix, "DNAT");
        let rules: Vec<String> = ports
            .iter()
            .map(|m| {
                let dst = if m.host_ip.is_unspecified() {
                    String::new()
                } else {
                    format!(" -d {}/32", m.host_ip)
                };
                format!(
                    "-A {dnat}{dst} -p {proto} -m {proto} --dport {hp} -m comment --comment {id} -j DNAT --to-destination {cip}:{cp}",
                    proto = m.proto,
                    hp = m.host_port,
                    cip = m.container_ip,
                    cp = m.container_port
                )
            })
            .collect();
        restore("nat", &rules)
    }

    /// Removes a container's port rules.
    pub fn remove_ports(&self, id: &str) {
        let dnat = chain(&self.prefix, "DNAT");
        let tag = format!("--comment {id} ");
        let dels: Vec<String> = list("nat", &dnat)
            .into_iter()
            .filter(|r| r.contains(&tag))
            .map(|r| format!("-D{}", &r[2..]))
            .collect();
        let _ = restore("nat", &dels);
    }

    /// Ids of the containers that have port rules.
    pub fn port_owners(&self) -> Vec<String> {
        let mut out: Vec<String> = list("nat", &chain(&self.prefix, "DNAT"))
            .iter()
            .filter_map(|r| {
                let i = r.find("--comment ")?;
                r[i + 10..].split_whitespace().next().map(String::from)
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Removes the jumps and every chain of this prefix.
    pub fn teardown(&self) {
        let p = &self.prefix;
        let (fwd, dnat, post) = (chain(p, "FWD"), chain(p, "DNAT"), chain(p, "POST"));
        for (table, parent, rule) in [
            ("filter", "FORWARD", vec!["-j", fwd.as_str()]),
            ("nat", "POSTROUTING", vec!["-j", post.as_str()]),
            (
                "nat",
                "PREROUTING",
                vec!["-m", "addrtype", "--dst-type", "LOCAL", "-j", dnat.as_str()],
            ),
            (
                "nat",
                "OUTPUT",
                vec!["-m", "addrtype", "--dst-type", "LOCAL", "-j", dnat.as_str()],
            ),
        ] {
            let mut del = vec!["-w", "-t", table, "-D", parent];
            del.extend(rule.iter().copied());
            while run("iptables", &del).is_ok() {}
        }
        for (table, what) in [
            ("filter", "FWD"),
            ("filter", "ISO1"),
            ("filter", "ISO2"),
            ("nat", "POST"),
            ("nat", "DNAT"),
        ] {
            let c = chain(p, what);
            let _ = run("iptables", &["-w", "-t", table, "-F", &c]);
        }
        for (table, what) in [
            ("filter", "FWD"),
            ("filter", "ISO1"),
            ("filter", "ISO2"),
            ("nat", "POST"),
            ("nat", "DNAT"),
        ] {
            let c = chain(p, what);
            let _ = run("iptables", &["-w", "-t", table, "-X", &c]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_rules_isolate_and_nat() {
        let fw = Firewall::new("wt0");
        let open = network_rules(&fw, "wt0-a", "10.1.0.0/24", false);
        assert!(open
            .iter()
            .any(|(t, r)| *t == "nat" && r == "wt0-POST -s 10.1.0.0/24 ! -o wt0-a -j MASQUERADE"));
        assert!(open
            .iter()
            .any(|(_, r)| r == "wt0-ISO1 -i wt0-a ! -o wt0-a -j wt0-ISO2"));
        let internal = network_rules(&fw, "wt0-b", "10.2.0.0/24", true);
        assert!(!internal.iter().any(|(t, _)| *t == "nat"), "no way out");
        assert!(internal
            .iter()
            .any(|(_, r)| r == "wt0-ISO1 -i wt0-b ! -o wt0-b -j DROP"));
    }
}
