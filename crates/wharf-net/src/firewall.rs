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
//!
//! Networks with IPv6 get the same chains and rules from `ip6tables` (made the first time
//! such a network needs them, so a daemon without one makes no IPv6 rule): masquerade of
//! each IPv6 subnet, the same isolation, and DNAT of published ports to the container's IPv6
//! address for every local address but `::1`. IPv6 has no `route_localnet`: a packet from
//! `::1` never leaves the host, so `[::1]:port` is served by a proxy instead (`ports`).

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

/// `iptables` or `ip6tables`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    fn bin(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }
}

/// Feeds `rules` (lines of iptables-save syntax for one table) to `iptables-restore
/// --noflush`: one exec for any number of rules, applied atomically.
fn restore(table: &str, rules: &[String]) -> Result<(), NetError> {
    restore_in(Family::V4, table, rules)
}

fn restore_in(fam: Family, table: &str, rules: &[String]) -> Result<(), NetError> {
    let program = format!("{}-restore", fam.bin());
    if rules.is_empty() {
        return Ok(());
    }
    let mut input = format!("*{table}\n");
    for r in rules {
        input.push_str(r);
        input.push('\n');
    }
    input.push_str("COMMIT\n");
    let mut child = Command::new(&program)
        .args(["-w", "--noflush"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetError::Command {
            cmd: program.clone(),
            message: format!("cannot run it ({e}): install iptables"),
        })?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes())
        .map_err(|e| NetError::io(format!("{program} stdin"), e))?;
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::io(&program, e))?;
    if !out.status.success() {
        return Err(NetError::Command {
            cmd: format!("{program} ({})", input.replace('\n', "; ")),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// The rules of `chain` in `table`, as `iptables -S` prints them (`-A chain ...`).
fn list_in(fam: Family, table: &str, chain: &str) -> Vec<String> {
    run(fam.bin(), &["-w", "-t", table, "-S", chain])
        .map(|s| {
            s.lines()
                .filter(|l| l.starts_with("-A "))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn exists_in(fam: Family, table: &str, rule: &[&str]) -> bool {
    let mut args = vec!["-w", "-t", table, "-C"];
    args.extend_from_slice(rule);
    run(fam.bin(), &args).is_ok()
}

/// Rules of a network with subnets `cidrs` of family `fam` (each masqueraded), in
/// iptables-save syntax without the `-A`/`-D` verb: (table, rule).
fn network_rules_in(
    fw: &Firewall,
    fam: Family,
    link: &str,
    cidrs: &[String],
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
        for cidr in cidrs {
            r.push(("nat", format!("{post} -s {cidr} ! -o {link} -j MASQUERADE")));
        }
        if fam == Family::V4 {
            r.push((
                "nat",
                format!("{post} -s 127.0.0.0/8 -o {link} -j MASQUERADE"),
            ));
        }
        // Hairpin: a container reaching a published port through a host address, DNATed
        // back into its own network (to itself, or to another member): masqueraded to the
        // gateway, else a container would get a packet from its own address (dropped), and
        // without br_netfilter another's reply would skip the NAT.
        for cidr in cidrs {
            r.push((
                "nat",
                format!(
                    "{post} -s {cidr} -d {cidr} -o {link} -m conntrack --ctstate DNAT -j MASQUERADE"
                ),
            ));
        }
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
        self.ensure_base_in(Family::V4)
    }

    /// `ensure_base` for `iptables` or `ip6tables`.
    pub fn ensure_base_in(&self, fam: Family) -> Result<(), NetError> {
        let bin = fam.bin();
        let exists = |t: &str, r: &[&str]| exists_in(fam, t, r);
        let p = &self.prefix;
        for (table, c) in [
            ("filter", chain(p, "FWD")),
            ("filter", chain(p, "ISO1")),
            ("filter", chain(p, "ISO2")),
            ("nat", chain(p, "POST")),
            ("nat", chain(p, "DNAT")),
        ] {
            if run(bin, &["-w", "-t", table, "-S", &c]).is_err() {
                run(bin, &["-w", "-t", table, "-N", &c])?;
            }
        }
        let fwd = chain(p, "FWD");
        let iso1 = chain(p, "ISO1");
        if !exists("filter", &[&fwd, "-j", &iso1]) {
            run(bin, &["-w", "-I", &fwd, "1", "-j", &iso1])?;
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
                run(bin, &add)?;
            }
        }
        Ok(())
    }

    /// Isolation, forwarding and NAT of one network's bridge for its subnets `cidrs` of
    /// family `fam` (`ip6tables` for IPv6 ones, whose chains are made here the first time);
    /// idempotent.
    pub fn add_network_in(
        &self,
        fam: Family,
        link: &str,
        cidrs: &[String],
        internal: bool,
    ) -> Result<(), NetError> {
        if fam == Family::V6 {
            self.ensure_base_in(Family::V6)?;
        }
        let mut by_table: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for (table, rule) in network_rules_in(self, fam, link, cidrs, internal) {
            let words: Vec<&str> = rule.split(' ').collect();
            if !exists_in(fam, table, &words) {
                by_table
                    .entry(table)
                    .or_default()
                    .push(format!("-A {rule}"));
            }
        }
        for (table, rules) in by_table {
            restore_in(fam, table, &rules)?;
        }
        Ok(())
    }

    /// Removes what `add_network_in` made.
    pub fn remove_network_in(&self, fam: Family, link: &str, cidrs: &[String], internal: bool) {
        for (table, rule) in network_rules_in(self, fam, link, cidrs, internal) {
            let words: Vec<&str> = rule.split(' ').collect();
            let mut del = vec!["-w", "-t", table, "-D"];
            del.extend_from_slice(&words);
            while run(fam.bin(), &del).is_ok() {}
        }
    }

    /// DNAT rules for a container's published ports, commented with its id (IPv6 ones with
    /// `ip6tables`, for every local address but `::1`).
    pub fn add_ports(&self, id: &str, ports: &[PortMapping]) -> Result<(), NetError> {
        let dnat = chain(&self.prefix, "DNAT");
        let (v4, v6): (Vec<&PortMapping>, Vec<&PortMapping>) =
            ports.iter().partition(|m| m.host_ip.is_ipv4());
        if !v6.is_empty() {
            self.ensure_base_in(Family::V6)?;
            let rules: Vec<String> = v6
                .iter()
                .map(|m| {
                    let dst = if m.host_ip.is_unspecified() {
                        " ! -d ::1/128".to_string()
                    } else {
                        format!(" -d {}/128", m.host_ip)
                    };
                    format!(
                        "-A {dnat}{dst} -p {proto} -m {proto} --dport {hp} -m comment --comment {id} -j DNAT --to-destination [{cip}]:{cp}",
                        proto = m.proto,
                        hp = m.host_port,
                        cip = m.container_ip,
                        cp = m.container_port
                    )
                })
                .collect();
            restore_in(Family::V6, "nat", &rules)?;
        }
        let rules: Vec<String> = v4
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
        self.remove_ports_in(Family::V4, id);
    }

    /// Removes a container's port rules of family `fam`.
    pub fn remove_ports_in(&self, fam: Family, id: &str) {
        let dnat = chain(&self.prefix, "DNAT");
        let tag = format!("--comment {id} ");
        let dels: Vec<String> = list_in(fam, "nat", &dnat)
            .into_iter()
            .filter(|r| r.contains(&tag))
            .map(|r| format!("-D{}", &r[2..]))
            .collect();
        let _ = restore_in(fam, "nat", &dels);
    }

    /// Ids of the containers that have port rules (of family `fam`).
    pub fn port_owners_in(&self, fam: Family) -> Vec<String> {
        let mut out: Vec<String> = list_in(fam, "nat", &chain(&self.prefix, "DNAT"))
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

    /// Ids of the containers that have IPv4 port rules.
    pub fn port_owners(&self) -> Vec<String> {
        self.port_owners_in(Family::V4)
    }

    /// Removes the jumps and every chain of this prefix, IPv4 and IPv6.
    pub fn teardown(&self) {
        self.teardown_in(Family::V4);
        self.teardown_in(Family::V6);
    }

    fn teardown_in(&self, fam: Family) {
        let bin = fam.bin();
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
            while run(bin, &del).is_ok() {}
        }
        for (table, what) in [
            ("filter", "FWD"),
            ("filter", "ISO1"),
            ("filter", "ISO2"),
            ("nat", "POST"),
            ("nat", "DNAT"),
        ] {
            let c = chain(p, what);
            let _ = run(bin, &["-w", "-t", table, "-F", &c]);
        }
        for (table, what) in [
            ("filter", "FWD"),
            ("filter", "ISO1"),
            ("filter", "ISO2"),
            ("nat", "POST"),
            ("nat", "DNAT"),
        ] {
            let c = chain(p, what);
            let _ = run(bin, &["-w", "-t", table, "-X", &c]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_rules_isolate_and_nat() {
        let fw = Firewall::new("wt0");
        let open = network_rules_in(&fw, Family::V4, "wt0-a", &["10.1.0.0/24".into()], false);
        assert!(open
            .iter()
            .any(|(t, r)| *t == "nat" && r == "wt0-POST -s 10.1.0.0/24 ! -o wt0-a -j MASQUERADE"));
        assert!(open
            .iter()
            .any(|(_, r)| r == "wt0-ISO1 -i wt0-a ! -o wt0-a -j wt0-ISO2"));
        let internal = network_rules_in(&fw, Family::V4, "wt0-b", &["10.2.0.0/24".into()], true);
        assert!(!internal.iter().any(|(t, _)| *t == "nat"), "no way out");
        assert!(internal
            .iter()
            .any(|(_, r)| r == "wt0-ISO1 -i wt0-b ! -o wt0-b -j DROP"));
    }

    #[test]
    fn ipv6_rules_masquerade_each_subnet_and_not_loopback() {
        let fw = Firewall::new("wt0");
        let cidrs = ["fd00:1::/64".to_string(), "fd00:2::/64".to_string()];
        let r = network_rules_in(&fw, Family::V6, "wt0-a", &cidrs, false);
        for c in &cidrs {
            assert!(r
                .iter()
                .any(|(t, x)| *t == "nat"
                    && *x == format!("wt0-POST -s {c} ! -o wt0-a -j MASQUERADE")));
        }
        assert!(!r.iter().any(|(_, x)| x.contains("127.0.0.0/8")));
        assert!(r.iter().any(|(t, x)| *t == "nat"
            && *x == "wt0-POST -s fd00:1::/64 -d fd00:1::/64 -o wt0-a -m conntrack --ctstate DNAT -j MASQUERADE"));
        assert!(r
            .iter()
            .any(|(_, x)| x == "wt0-ISO1 -i wt0-a ! -o wt0-a -j wt0-ISO2"));
    }
}
