//! End-to-end IPv6 and several subnets per network (issues 15 and 18): the real docker CLI
//! (28.2) against wharfd, in the host's network namespace (`::host`) and in one the test
//! makes (`::netns`, see network.rs). Every bridge and chain is named after the test
//! daemon's bridge and removed when the daemon is dropped.

mod common;

use common::{eventually, stderr, stdout, Daemon, Place};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// A random /64 of fd00::/8 (not fd00::/16, which hosts use) for a test network.
fn free_subnet6() -> (String, String) {
    let mut r = [0u8; 5];
    getrandom::fill(&mut r).unwrap();
    // As docker prints it: no leading zeros, no zero group (which `::` would swallow).
    let group = |a: u8, b: u8| u16::from_be_bytes([a, b]) | 0x1000;
    let p = format!(
        "fd{:02x}:{:x}:{:x}",
        r[0].max(0x10),
        group(r[1], r[2]),
        group(r[3], r[4])
    );
    (format!("{p}::/64"), p)
}

/// A global IPv6 address of the daemon's namespace that is not on a bridge.
fn host_address6(d: &Daemon) -> Option<String> {
    let bridges = d.host_run("ip", &["-o", "link", "show", "type", "bridge"]);
    let bridges: Vec<&str> = bridges
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|n| n.trim_end_matches(':'))
        .collect();
    d.host_run("ip", &["-6", "-o", "addr", "show", "scope", "global"])
        .lines()
        .filter(|l| {
            let dev = l.split_whitespace().nth(1).unwrap_or_default();
            !bridges.contains(&dev) && !l.contains("tentative") && !l.contains("dadfailed")
        })
        .find_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let i = w.iter().position(|x| *x == "inet6")?;
            w.get(i + 1)?.split('/').next().map(String::from)
        })
}

fn inspect(d: &Daemon, what: &str, format: &str) -> String {
    d.ok(&["inspect", "--format", format, what])
        .trim()
        .to_string()
}

/// The daemon's ip6tables rules that are its own (they name its bridge, the prefix of all
/// its chains and links), as `-A` lines, sorted.
fn own_rules6(d: &Daemon) -> Vec<String> {
    let save = d.host_run("ip6tables-save", &[]);
    let mut out: Vec<String> = save
        .lines()
        .filter(|l| l.starts_with("-A ") && l.contains(&d.bridge.name))
        .map(String::from)
        .collect();
    out.sort();
    out
}

/// An HTTP GET of `addr` from the daemon's namespace until the page has `want` (10 s).
fn eventually_get(d: &Daemon, addr: &str, want: &str) {
    eventually_get_from(d, true, addr, want)
}

/// `eventually_get` from the daemon's namespace or (`in_daemons` false) the test's own.
fn eventually_get_from(d: &Daemon, in_daemons: bool, addr: &str, want: &str) {
    let get = |a: &str| -> std::io::Result<String> {
        let mut s =
            std::net::TcpStream::connect_timeout(&a.parse().unwrap(), Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    };
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let got = if in_daemons {
            d.in_host_netns(|| get(addr))
        } else {
            get(addr)
        };
        match got {
            Ok(page) if page.contains(want) => return,
            Ok(page) => last = page,
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("GET {addr}: wanted {want:?}, last: {last}\n{}", d.log());
}

scenario!(
    ipv6_network_with_several_subnets_ping_ports_and_cleanup,
    host,
    netns
);
fn ipv6_network_with_several_subnets_ping_ports_and_cleanup(place: Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    let v4 = d.free_subnet();
    let v4b = d.free_subnet();
    let (v6, p6) = free_subnet6();
    let gw6 = format!("{p6}::fe");
    let br = format!("{}-v6", d.bridge.name);
    let rules_before = own_rules6(&d);
    let addrs_before = d.host_run("ip", &["-6", "-o", "addr"]);
    assert!(!addrs_before.contains(&p6));

    // An IPv6 subnet without --ipv6 is kept in the IPAM config but unused, as Docker does:
    // no IPv6 address for containers, none on the bridge, no ip6tables rule, --ip6 refused.
    d.ok(&["network", "create", "--subnet", &v6, "no6"]);
    assert_eq!(inspect(&d, "no6", "{{.EnableIPv6}}"), "false");
    let cfg = inspect(&d, "no6", "{{range .IPAM.Config}}{{.Subnet}} {{end}}");
    assert!(cfg.contains(&v6), "{cfg}");
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "no6",
        "busybox",
        "ip",
        "-6",
        "-o",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("scope global"), "{}", stdout(&o));
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "no6",
        "--ip6",
        &format!("{p6}::9"),
        "busybox",
        "true",
    ]);
    assert!(!o.status.success(), "--ip6 without --ipv6");
    assert!(stderr(&o).contains("IPv6 is not enabled"), "{}", stderr(&o));
    assert!(!d.host_run("ip", &["-6", "-o", "addr"]).contains(&p6));
    assert_eq!(own_rules6(&d), rules_before, "no ip6tables rule for it");
    d.ok(&["network", "rm", "no6"]);

    d.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        &v4,
        "--subnet",
        &v4b,
        "--subnet",
        &v6,
        "--gateway",
        &gw6,
        "-o",
        &format!("com.docker.network.bridge.name={br}"),
        "n6",
    ]);
    assert_eq!(inspect(&d, "n6", "{{.EnableIPv6}}"), "true");
    let configs = inspect(
        &d,
        "n6",
        "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}};{{end}}",
    );
    let first = |s: &str| s.replace(".0/24", ".1");
    // In the order the request lists them, IPv4 first; the docker CLI sends them in the
    // order of a Go map's iteration, so compare them as a set.
    let mut got: Vec<&str> = configs.split(';').filter(|c| !c.is_empty()).collect();
    got.sort();
    let (a, b, c) = (
        format!("{v4} {}", first(&v4)),
        format!("{v4b} {}", first(&v4b)),
        format!("{v6} {gw6}"),
    );
    let mut want = vec![a.as_str(), b.as_str(), c.as_str()];
    want.sort();
    assert!(
        configs.ends_with(&format!("{c};")),
        "IPv6 after IPv4: {configs}"
    );
    assert_eq!(got, want, "every subnet with its gateway: {configs}");
    // Overlaps are checked for IPv6 as for IPv4.
    let o = d.docker(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        &format!("{p6}::/80"),
        "clash6",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("overlaps"), "{}", stderr(&o));
    // The bridge has every gateway, the IPv6 one without DAD.
    let braddr = d.host_run("ip", &["-o", "addr", "show", &br]);
    for a in [
        format!("inet {}/24", first(&v4)),
        format!("inet {}/24", first(&v4b)),
        format!("inet6 {gw6}/64"),
    ] {
        assert!(braddr.contains(&a), "{a}: {braddr}");
    }
    let rules_network = own_rules6(&d);
    assert!(
        rules_network
            .iter()
            .any(|r| r.contains(&format!("-s {v6} ! -o {br} -j MASQUERADE"))),
        "{rules_network:?}"
    );

    let port = std::net::TcpListener::bind("[::]:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let script = "mkdir -p /www && echo hello6 > /www/index.html && exec httpd -f -p 8080 -h /www";
    d.ok(&[
        "run",
        "-d",
        "--name",
        "a6",
        "--network",
        "n6",
        "-p",
        &format!("{port}:8080"),
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    let ip6b = format!("{p6}::b0b");
    let ip4b = v4b.replace(".0/24", ".77");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "b6",
        "--network",
        "n6",
        "--ip6",
        &ip6b,
        "--ip",
        &ip4b,
        "busybox",
        "sleep",
        "300",
    ]);

    // Inspect: the IPv6 address, prefix and gateway, per network and at the top level.
    let a6 = inspect(
        &d,
        "a6",
        "{{.NetworkSettings.Networks.n6.GlobalIPv6Address}} {{.NetworkSettings.Networks.n6.GlobalIPv6PrefixLen}} {{.NetworkSettings.Networks.n6.IPv6Gateway}}",
    );
    let parts: Vec<&str> = a6.split(' ').collect();
    assert_eq!(parts.len(), 3, "{a6}");
    assert!(parts[0].starts_with(&format!("{p6}::")), "{a6}");
    assert_eq!((parts[1], parts[2]), ("64", gw6.as_str()), "{a6}");
    let a6ip = parts[0].to_string();
    assert_eq!(
        inspect(
            &d,
            "b6",
            "{{.NetworkSettings.Networks.n6.GlobalIPv6Address}} {{.NetworkSettings.Networks.n6.IPAddress}} {{.NetworkSettings.Networks.n6.IPAMConfig.IPv6Address}}"
        ),
        format!("{ip6b} {ip4b} {ip6b}"),
        "--ip6 and --ip (of the second IPv4 subnet) honoured"
    );
    let members = inspect(&d, "n6", "{{range .Containers}}{{.IPv6Address}} {{end}}");
    assert!(members.contains(&format!("{ip6b}/64")), "{members}");
    assert!(members.contains(&format!("{a6ip}/64")), "{members}");

    // In the container: its address and default route; ping -6 by name.
    let addr = d.ok(&["exec", "b6", "ip", "-6", "addr", "show", "eth0"]);
    assert!(addr.contains(&format!("inet6 {ip6b}/64")), "{addr}");
    let route = d.ok(&["exec", "b6", "ip", "-6", "route"]);
    assert!(
        route.contains(&format!("default via {gw6} dev eth0")),
        "{route}"
    );
    let o = d.docker(&["exec", "b6", "ping", "-6", "-c", "1", "-W", "3", "a6"]);
    assert!(
        o.status.success(),
        "ping -6 a6: {}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(
        stdout(&o).contains(&a6ip),
        "by its IPv6 address: {}",
        stdout(&o)
    );
    let o = d.docker(&["exec", "b6", "nslookup", &a6ip, "127.0.0.11"]);
    assert!(
        stdout(&o).contains("name = a6"),
        "PTR: {}{}",
        stdout(&o),
        stderr(&o)
    );
    let o = d.docker(&["exec", "b6", "nslookup", "-type=aaaa", "a6", "127.0.0.11"]);
    assert!(
        stdout(&o).contains(&a6ip),
        "AAAA: {}{}",
        stdout(&o),
        stderr(&o)
    );
    let o = d.docker(&[
        "exec",
        "b6",
        "sh",
        "-c",
        &format!("timeout 3 wget -q -O - http://[{a6ip}]:8080/; exit $?"),
    ]);
    assert_eq!(stdout(&o), "hello6\n", "{}", stderr(&o));

    // The published port: on [::1] (proxied), 127.0.0.1 and both in `docker port`.
    eventually_get(&d, &format!("[::1]:{port}"), "hello6");
    eventually_get(&d, &format!("127.0.0.1:{port}"), "hello6");
    let shown = d.ok(&["port", "a6"]);
    assert!(
        shown.contains(&format!("8080/tcp -> 0.0.0.0:{port}")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("8080/tcp -> [::]:{port}")),
        "{shown}"
    );
    // Outbound: in a test namespace, through its uplink (given IPv6 here) to a server in the
    // host's namespace, which sees the uplink's address: forwarded and masqueraded.
    if let Some(ns) = &d.netns {
        let (_, up) = free_subnet6();
        let (host_end, ns_end) = (format!("{up}::1"), format!("{up}::2"));
        let run = |c: &mut std::process::Command| assert!(c.status().unwrap().success(), "{c:?}");
        run(std::process::Command::new("ip").args([
            "-6",
            "addr",
            "add",
            &format!("{host_end}/64"),
            "dev",
            &ns.host_link,
            "nodad",
        ]));
        d.host_run(
            "ip",
            &[
                "-6",
                "addr",
                "add",
                &format!("{ns_end}/64"),
                "dev",
                &ns.link,
                "nodad",
            ],
        );
        let server = std::net::TcpListener::bind(format!("[{host_end}]:0")).unwrap();
        let sport = server.local_addr().unwrap().port();
        let serve = std::thread::spawn(move || {
            let (mut c, peer) = server.accept().unwrap();
            let mut buf = [0u8; 512];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.0 200 OK\r\n\r\nout6\n");
            peer.ip().to_string()
        });
        let o = d.docker(&[
            "exec",
            "b6",
            "sh",
            "-c",
            &format!("timeout 3 wget -q -O - http://[{host_end}]:{sport}/; exit $?"),
        ]);
        assert_eq!(stdout(&o), "out6\n", "outbound IPv6: {}", stderr(&o));
        assert_eq!(
            serve.join().unwrap(),
            ns_end,
            "masqueraded to the uplink's address"
        );
        // And the published port from there, through the uplink (PREROUTING's DNAT).
        eventually_get_from(&d, false, &format!("[{ns_end}]:{port}"), "hello6");
    }

    // From the host, to its own IPv6 address (OUTPUT's DNAT).
    if let Some(h) = host_address6(&d) {
        eventually_get(&d, &format!("[{h}]:{port}"), "hello6");
    }
    // Hairpin: a container reaching the published port through a host IPv6 address, the
    // server itself (its packet comes back to it masqueraded) and another member.
    match host_address6(&d) {
        Some(h) => {
            for c in ["a6", "b6"] {
                let o = d.docker(&[
                    "exec",
                    c,
                    "sh",
                    "-c",
                    &format!("timeout 3 wget -q -O - http://[{h}]:{port}/; exit $?"),
                ]);
                assert_eq!(
                    stdout(&o),
                    "hello6\n",
                    "{c} via [{h}]:{port}: {}",
                    stderr(&o)
                );
            }
        }
        None => eprintln!("no global IPv6 host address: skipping the hairpin part"),
    }
    let rules_running = own_rules6(&d);
    assert!(
        rules_running
            .iter()
            .any(|r| r.contains("-j DNAT") && r.contains(&format!("[{a6ip}]:8080"))),
        "{rules_running:?}"
    );

    // rm takes every rule of the containers, then of the network, and every address.
    d.ok(&["rm", "-f", "a6", "b6"]);
    eventually("the port rules go with the containers", || {
        own_rules6(&d) == rules_network
    });
    let o = d.in_host_netns(|| {
        std::net::TcpStream::connect_timeout(
            &format!("[::1]:{port}").parse().unwrap(),
            Duration::from_secs(1),
        )
    });
    assert!(o.is_err(), "the [::1] proxy stopped");
    d.ok(&["network", "rm", "n6"]);
    let left: Vec<String> = own_rules6(&d)
        .into_iter()
        .filter(|r| !rules_before.contains(r))
        .collect();
    // What stays: the daemon's chains' jumps (as with iptables, until the daemon goes).
    for r in &left {
        assert!(
            !r.contains(&br) && !r.contains(&p6),
            "a rule of the removed network is left: {r}\n{left:?}"
        );
        assert!(
            r.contains(&format!("-j {}-", d.bridge.name)),
            "only jumps into the daemon's chains stay: {r}"
        );
    }
    let addrs = d.host_run("ip", &["-6", "-o", "addr"]);
    assert!(!addrs.contains(&p6), "an address of {v6} is left: {addrs}");
    assert!(!d.host_run("ip", &["-o", "link"]).contains(&br));
    let state = d.dir.path().join("data/network");
    for e in std::fs::read_dir(&state).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            !name.starts_with("ipam-") || std::fs::read_to_string(e.path()).unwrap().trim() == "{}",
            "{name} is left with addresses"
        );
    }

    // --ipv6 alone: Docker 28 gives the network a /64 of a unique local prefix.
    d.ok(&["network", "create", "--ipv6", "auto6"]);
    let subnets = inspect(&d, "auto6", "{{range .IPAM.Config}}{{.Subnet}} {{end}}");
    let six: Vec<&str> = subnets
        .split_whitespace()
        .filter(|s| s.contains(':'))
        .collect();
    assert_eq!(six.len(), 1, "{subnets}");
    assert!(
        six[0].starts_with("fd") && six[0].ends_with("::/64"),
        "{subnets}"
    );
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "auto6",
        "busybox",
        "ip",
        "-6",
        "-o",
        "addr",
        "show",
        "eth0",
    ]);
    let prefix = six[0].trim_end_matches("::/64");
    assert!(
        stdout(&o).contains(&format!("inet6 {prefix}::2/64")),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    d.ok(&["network", "rm", "auto6"]);

    // A network without IPv6 gives its containers none, and --ip6 there is refused.
    d.ok(&["network", "create", "--subnet", &d.free_subnet(), "only4"]);
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "only4",
        "--ip6",
        &ip6b,
        "busybox",
        "true",
    ]);
    assert!(!o.status.success(), "--ip6 on a network without IPv6");
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "only4",
        "busybox",
        "ip",
        "-6",
        "-o",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(!stdout(&o).contains("scope global"), "{}", stdout(&o));
    d.ok(&["network", "rm", "only4"]);
}

scenario!(
    ipv6_inspect_and_names_as_dockerd_shows_them,
    host,
    netns,
    dockerd_netns
);
fn ipv6_inspect_and_names_as_dockerd_shows_them(place: Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    let v4 = d.free_subnet();
    let (v6, p6) = free_subnet6();
    let gw6 = format!("{p6}::1");
    d.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        &v4,
        "--subnet",
        &v6,
        "--gateway",
        &gw6,
        "d6",
    ]);
    let net: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", "d6"])).unwrap();
    let net = &net[0];
    assert_eq!(net["EnableIPv6"], true);
    let configs = net["IPAM"]["Config"].as_array().unwrap();
    assert_eq!(configs.len(), 2, "{configs:?}");
    assert_eq!(configs[0]["Subnet"], v4.as_str());
    assert_eq!(configs[1]["Subnet"], v6.as_str());
    assert_eq!(configs[1]["Gateway"], gw6.as_str());

    let ip6 = format!("{p6}::c0");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "c6",
        "--network",
        "d6",
        "--ip6",
        &ip6,
        "busybox",
        "sleep",
        "300",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "e6",
        "--network",
        "d6",
        "busybox",
        "sleep",
        "300",
    ]);
    let c: serde_json::Value = serde_json::from_str(&d.ok(&["inspect", "c6"])).unwrap();
    let ep = &c[0]["NetworkSettings"]["Networks"]["d6"];
    assert_eq!(ep["GlobalIPv6Address"], ip6.as_str(), "{ep}");
    assert_eq!(ep["GlobalIPv6PrefixLen"], 64, "{ep}");
    assert_eq!(ep["IPv6Gateway"], gw6.as_str(), "{ep}");
    assert_eq!(ep["IPAMConfig"]["IPv6Address"], ip6.as_str(), "{ep}");
    assert!(ep["IPAddress"]
        .as_str()
        .unwrap()
        .starts_with(v4.trim_end_matches("0/24")));
    let net: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", "d6"])).unwrap();
    let members = &net[0]["Containers"];
    let c6id = c[0]["Id"].as_str().unwrap();
    assert_eq!(
        members[c6id]["IPv6Address"],
        format!("{ip6}/64"),
        "{members}"
    );

    let o = d.docker(&["exec", "e6", "ping", "-6", "-c", "1", "-W", "3", "c6"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains(&ip6), "{}", stdout(&o));
    let o = d.docker(&["exec", "e6", "nslookup", "-type=aaaa", "c6", "127.0.0.11"]);
    assert!(stdout(&o).contains(&ip6), "{}{}", stdout(&o), stderr(&o));

    // network connect --ip6: a second network with IPv6, the address asked for.
    let (v6b, p6b) = free_subnet6();
    d.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        &d.free_subnet(),
        "--subnet",
        &v6b,
        "d6b",
    ]);
    let ip6b = format!("{p6b}::99");
    d.ok(&["network", "connect", "--ip6", &ip6b, "d6b", "e6"]);
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.d6b.GlobalIPv6Address}}",
            "e6"
        ])
        .trim(),
        ip6b
    );
    let addr = d.ok(&["exec", "e6", "ip", "-6", "-o", "addr"]);
    assert!(addr.contains(&format!("inet6 {ip6b}/64")), "{addr}");
    // An address outside the network's subnets is refused.
    let o = d.docker(&[
        "network",
        "connect",
        "--ip6",
        &format!("{p6}::5"),
        "d6b",
        "c6",
    ]);
    assert!(!o.status.success(), "{}", stdout(&o));
    d.ok(&["rm", "-f", "c6", "e6"]);
    d.ok(&["network", "rm", "d6", "d6b"]);
}

scenario!(
    a_killed_daemon_restarts_with_ipv6_names_addresses_and_loopback_ports,
    host,
    netns
);
fn a_killed_daemon_restarts_with_ipv6_names_addresses_and_loopback_ports(place: Place) {
    let Some(mut d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    let (v6, p6) = free_subnet6();
    d.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        &d.free_subnet(),
        "--subnet",
        &v6,
        "keep6",
    ]);
    let port = std::net::TcpListener::bind("[::]:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let script =
        "mkdir -p /www && echo survives6 > /www/index.html && exec httpd -f -p 8080 -h /www";
    d.ok(&[
        "run",
        "-d",
        "--name",
        "svc6",
        "--network",
        "keep6",
        "-p",
        &format!("{port}:8080"),
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "cli6",
        "--network",
        "keep6",
        "busybox",
        "sleep",
        "300",
    ]);
    eventually_get(&d, &format!("[::1]:{port}"), "survives6");
    let ip6 = inspect(
        &d,
        "svc6",
        "{{.NetworkSettings.Networks.keep6.GlobalIPv6Address}}",
    );
    assert!(ip6.starts_with(&p6), "{ip6}");
    d.kill9();
    d.spawn();
    // The names' AAAA records, the [::1] proxy and the address's hold come back.
    let o = d.docker(&[
        "exec",
        "cli6",
        "nslookup",
        "-type=aaaa",
        "svc6",
        "127.0.0.11",
    ]);
    assert!(stdout(&o).contains(&ip6), "{}{}", stdout(&o), stderr(&o));
    eventually_get(&d, &format!("[::1]:{port}"), "survives6");
    let other = d.ok(&[
        "run",
        "--rm",
        "--network",
        "keep6",
        "busybox",
        "ip",
        "-6",
        "-o",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(other.contains(&p6), "{other}");
    assert!(
        !other.contains(&format!("inet6 {ip6}/")),
        "{ip6} handed out twice: {other}"
    );
    d.ok(&["rm", "-f", "svc6", "cli6"]);
    d.ok(&["network", "rm", "keep6"]);
}
