//! End-to-end networking: the real docker CLI (28.2) against wharfd. Containers talk to each
//! other and to the host through its loopback or its own addresses only; every bridge and
//! chain is named after the test daemon's bridge and removed when the daemon is dropped.
//!
//! Every scenario runs with wharfd in the host's network namespace (`<name>::host`) and in
//! one the test makes (`<name>::netns`: an uplink with a default route and `unreachable`
//! routes for the whole address space, wharfd started with `nsenter --net`, as sandboxes,
//! `PrivateNetwork=` and pods start it), and, where dockerd would behave the same, against
//! Debian's dockerd in a namespace of its own (`<name>::dockerd_netns`), which shows the
//! scenario asks only what Docker does. "The host" of a scenario is the daemon's namespace:
//! its links, rules and loopback.

mod common;

use common::{eventually, stderr, stdout, Daemon, Place};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Starts busybox httpd serving `body` on port 8080 as container `name` with extra `args`.
fn web(d: &Daemon, name: &str, args: &[&str], body: &str) -> String {
    let script =
        format!("mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 8080 -h /www");
    let mut a = vec!["run", "-d", "--name", name];
    a.extend_from_slice(args);
    a.extend_from_slice(&["busybox", "sh", "-c", &script]);
    d.ok(&a).trim().to_string()
}

/// `wget` of `url` from a new container with `args`; its output (and whether it worked).
fn fetch(d: &Daemon, args: &[&str], url: &str) -> (bool, String) {
    let mut a = vec!["run", "--rm"];
    a.extend_from_slice(args);
    // busybox-static's `wget -T` crashes (SIGSEGV) in its static glibc: `timeout` instead,
    // under a shell: busybox's timeout execs the command in its own process, and as pid 1
    // wget would ignore the SIGTERM (no handler), hanging until TCP gives up (~2 minutes).
    // The `exit` keeps the shell from exec'ing its last command.
    let script = format!("timeout 3 wget -q -O - {url}; exit $?");
    a.extend_from_slice(&["busybox", "sh", "-c", &script]);
    let o = d.docker(&a);
    (o.status.success(), format!("{}{}", stdout(&o), stderr(&o)))
}

/// `fetch` until it works (the server may still be starting); its output.
fn fetch_ok(d: &Daemon, args: &[&str], url: &str) -> String {
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let (ok, out) = fetch(d, args, url);
        if ok {
            return out;
        }
        last = out;
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("wget {url} with {args:?} kept failing: {last}\n{}", d.log());
}

/// An HTTP GET from the daemon's namespace (its loopback, its addresses).
fn http_get(d: &Daemon, addr: &str) -> std::io::Result<String> {
    d.in_host_netns(|| http_get_here(addr))
}

/// An HTTP GET from the test's own thread, in the host's namespace.
fn http_get_here(addr: &str) -> std::io::Result<String> {
    let mut s =
        std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// `http_get` until the page has `want` (10 s).
fn eventually_get(d: &Daemon, addr: &str, want: &str) {
    eventually_get_with(addr, want, |a| http_get(d, a))
}

fn eventually_get_with(addr: &str, want: &str, get: impl Fn(&str) -> std::io::Result<String>) {
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match get(addr) {
            Ok(page) if page.contains(want) => return,
            Ok(page) => last = page,
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("GET {addr}: wanted {want:?}, last: {last}");
}

/// A global IPv4 address of the daemon's namespace that is not on a bridge (eth0's, or the
/// test namespace's uplink).
fn host_address(d: &Daemon) -> Option<String> {
    // Bridges as `ip` sees them there (this process's /sys is the host's).
    let bridges = d.host_run("ip", &["-o", "link", "show", "type", "bridge"]);
    let bridges: Vec<&str> = bridges
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|n| n.trim_end_matches(':'))
        .collect();
    let out = d.host_run("ip", &["-4", "-o", "addr", "show", "scope", "global"]);
    out.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let dev = *f.get(1)?;
        (!bridges.contains(&dev) && !dev.starts_with("wh"))
            .then(|| f.get(3)?.split('/').next().map(String::from))
            .flatten()
    })
}

/// `ip ARGS` (or another tool) in the daemon's namespace.
fn ip_cmd(d: &Daemon, args: &[&str]) -> String {
    d.host_run("ip", args)
}

fn iptables_save(d: &Daemon, args: &[&str]) -> String {
    d.host_run("iptables-save", args)
}

fn inspect(d: &Daemon, what: &str, format: &str) -> String {
    d.ok(&["inspect", "--format", format, what])
        .trim()
        .to_string()
}

scenario!(
    names_resolve_on_a_user_network_and_not_across_networks,
    host,
    netns,
    dockerd_netns
);
fn names_resolve_on_a_user_network_and_not_across_networks(place: Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    d.ok(&["network", "create", "--subnet", &d.free_subnet(), "front"]);
    d.ok(&["network", "create", "--subnet", &d.free_subnet(), "back"]);
    web(
        &d,
        "site",
        &["--network", "front", "--network-alias", "www"],
        "hello-front",
    );

    let page = fetch_ok(&d, &["--network", "front"], "http://site:8080/");
    assert_eq!(page, "hello-front\n", "{page}");
    let page = fetch_ok(&d, &["--network", "front"], "http://www:8080/");
    assert_eq!(page, "hello-front\n", "by alias: {page}");
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "front",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(
        stdout(&o).starts_with("nameserver 127.0.0.11\n"),
        "{}",
        stdout(&o)
    );

    // Another network neither resolves the name nor reaches the address.
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "back",
        "busybox",
        "nslookup",
        "site",
    ]);
    assert!(
        !o.status.success(),
        "site resolved from back: {}",
        stdout(&o)
    );
    let ip = inspect(&d, "site", "{{.NetworkSettings.Networks.front.IPAddress}}");
    let (ok, page) = fetch(&d, &["--network", "back"], &format!("http://{ip}:8080/"));
    assert!(!ok, "back reached front's {ip}: {page}");
    // Neither does the default bridge.
    let (ok, _) = fetch(&d, &[], &format!("http://{ip}:8080/"));
    assert!(!ok, "the default bridge reached front's {ip}");
}

scenario!(
    published_ports_from_loopback_host_address_and_ephemeral_ports,
    host,
    netns,
    dockerd_netns
);
fn published_ports_from_loopback_host_address_and_ephemeral_ports(place: Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    web(&d, "pub", &["-p", &format!("{port}:8080")], "published");
    eventually_get(&d, &format!("127.0.0.1:{port}"), "published");
    match host_address(&d) {
        Some(a) => {
            eventually_get(&d, &format!("{a}:{port}"), "published");
            // Hairpin: the container itself, and another on its network, through the
            // host's address.
            web(&d, "peer", &[], "peer");
            for c in ["pub", "peer"] {
                let o = d.docker(&[
                    "exec",
                    c,
                    "sh",
                    "-c",
                    &format!("timeout 3 wget -q -O - http://{a}:{port}/; exit $?"),
                ]);
                assert_eq!(
                    stdout(&o),
                    "published\n",
                    "{c} via {a}:{port}: {}",
                    stderr(&o)
                );
            }
        }
        None => eprintln!("no global host address: skipping that part"),
    }
    if let Some(ns) = &d.netns {
        // From outside the daemon's namespace, through its uplink, as a pod's service is.
        eventually_get_with(
            &format!("{}:{port}", ns.address),
            "published",
            http_get_here,
        );
    }
    // (dockerd also lists the IPv6 binding of its docker-proxy: the first line is IPv4's.)
    let shown = d.ok(&["port", "pub"]);
    assert_eq!(
        shown.lines().next().unwrap_or_default(),
        format!("8080/tcp -> 0.0.0.0:{port}")
    );
    assert!(d.ok(&["ps"]).contains(&format!("0.0.0.0:{port}->8080/tcp")));

    // The same host port again is a clear error, and the failed container holds nothing.
    let o = d.docker(&[
        "run",
        "-d",
        "--name",
        "clash",
        "-p",
        &format!("{port}:8080"),
        "busybox",
        "sleep",
        "9",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("port is already allocated"),
        "{}",
        stderr(&o)
    );
    d.ok(&["rm", "-f", "clash"]);

    // -P: every exposed port gets a free ephemeral port; a range maps one of its ports.
    web(
        &d,
        "all",
        &["--expose", "8080", "--expose", "9/udp", "-P"],
        "ephemeral",
    );
    let shown = d.ok(&["port", "all", "8080/tcp"]);
    let eph: u16 = shown.trim().rsplit(':').next().unwrap().parse().unwrap();
    assert!(eph.to_string() != port, "{shown}");
    // Both take them from the kernel's ip_local_port_range (32768-60999 here).
    let range = d.host_run("cat", &["/proc/sys/net/ipv4/ip_local_port_range"]);
    let mut r = range.split_whitespace().map(|p| p.parse::<u16>().unwrap());
    let (lo, hi) = (r.next().unwrap(), r.next().unwrap());
    assert!((lo..=hi).contains(&eph), "{shown} not in {lo}-{hi}");
    eventually_get(&d, &format!("127.0.0.1:{eph}"), "ephemeral");
    assert!(d.ok(&["port", "all", "9/udp"]).contains("0.0.0.0:"));
    web(&d, "ranged", &["-p", "127.0.0.1::8080"], "loopback-only");
    let shown = d.ok(&["port", "ranged"]);
    assert!(shown.starts_with("8080/tcp -> 127.0.0.1:"), "{shown}");
    let p = shown.trim().rsplit(':').next().unwrap().to_string();
    eventually_get(&d, &format!("127.0.0.1:{p}"), "loopback-only");

    // Stopping frees the port and removes its rule.
    d.ok(&["rm", "-f", "pub"]);
    let rules = iptables_save(&d, &["-t", "nat"]);
    assert!(
        !rules.contains(&format!("--dport {port} ")),
        "rule left behind"
    );
    web(&d, "again", &["-p", &format!("{port}:8080")], "again");
    eventually_get(&d, &format!("127.0.0.1:{port}"), "again");
}

scenario!(none_host_and_container_modes, host, netns, dockerd_netns);
fn none_host_and_container_modes(place: Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    let links = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(links.split_whitespace().collect::<Vec<_>>(), ["lo"]);
    // ... and that loopback is up (IFF_UP in its flags), as Docker's none sandbox has it.
    let flags = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "cat",
        "/sys/class/net/lo/flags",
    ]);
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is down: flags {flags:#x}");

    // host: the daemon's namespace's interfaces, its bridge among them once it exists (and
    // in a namespace of its own, exactly those).
    d.ok(&["run", "--rm", "busybox", "true"]);
    let host_links = || {
        let links = d.ok(&[
            "run",
            "--rm",
            "--network",
            "host",
            "busybox",
            "ls",
            "/sys/class/net",
        ]);
        links
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let links = host_links();
    assert!(links.contains(&d.bridge.name), "{links:?}");
    if let Some(ns) = &d.netns {
        let mut want = vec!["lo", ns.link.as_str(), d.bridge.name.as_str()];
        want.sort();
        // The `true` container's host-side veth goes with its namespace, which the kernel
        // frees asynchronously (wharfd does not wait for it: see `Networks::detach`), so it
        // may still be listed for a few milliseconds: look again until it is gone.
        let mut links = links;
        for _ in 0..50 {
            if links == want {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            links = host_links();
        }
        assert_eq!(links, want, "not the daemon's namespace");
        let addr = d.ok(&[
            "run",
            "--rm",
            "--network",
            "host",
            "busybox",
            "ip",
            "-4",
            "-o",
            "addr",
        ]);
        assert!(addr.contains(&format!("inet {}/30", ns.address)), "{addr}");
    }

    // container:<name>: the same namespace (same address), reaching the other on localhost.
    web(&d, "owner", &[], "shared-ns");
    let ip = inspect(&d, "owner", "{{.NetworkSettings.IPAddress}}");
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "container:owner",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; timeout 3 wget -q -O - http://127.0.0.1:8080/",
    ]);
    let out = stdout(&o);
    assert!(out.contains(&format!("inet {ip}/")), "{out}{}", stderr(&o));
    assert!(out.ends_with("shared-ns\n"), "{out}");
}

scenario!(
    connect_and_disconnect_a_running_container,
    host,
    netns,
    dockerd_netns
);
fn connect_and_disconnect_a_running_container(place: Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    let (s1, s2) = (d.free_subnet(), d.free_subnet());
    d.ok(&["network", "create", "--subnet", &s1, "n1"]);
    d.ok(&["network", "create", "--subnet", &s2, "n2"]);
    web(&d, "app", &["--network", "n1"], "connected");
    let fixed = s2.replace(".0/24", ".77");
    d.ok(&[
        "network", "connect", "--alias", "api", "--ip", &fixed, "n2", "app",
    ]);
    let out = d.ok(&["exec", "app", "ip", "-4", "-o", "addr", "show", "eth1"]);
    assert!(out.contains(&format!("inet {fixed}/24")), "{out}");
    assert_eq!(
        inspect(&d, "app", "{{.NetworkSettings.Networks.n2.IPAddress}}"),
        fixed
    );
    let page = fetch_ok(&d, &["--network", "n2"], "http://api:8080/");
    assert_eq!(page, "connected\n", "{page}");
    let members = d.ok(&[
        "network",
        "inspect",
        "--format",
        "{{range .Containers}}{{.Name}} {{end}}",
        "n2",
    ]);
    assert_eq!(members.trim(), "app");
    // A connected network cannot be removed.
    let o = d.docker(&["network", "rm", "n2"]);
    assert!(
        !o.status.success() && stderr(&o).contains("active endpoints"),
        "{}",
        stderr(&o)
    );

    d.ok(&["network", "disconnect", "n2", "app"]);
    let o = d.docker(&["exec", "app", "ip", "link", "show", "eth1"]);
    assert!(!o.status.success(), "eth1 still there");
    let (ok, _) = fetch(&d, &["--network", "n2"], "http://api:8080/");
    assert!(!ok, "still reachable on n2");
    let page = fetch_ok(&d, &["--network", "n1"], "http://app:8080/");
    assert_eq!(page, "connected\n", "n1 broken by the disconnect: {page}");
    d.ok(&["network", "rm", "n2"]);
}

scenario!(
    network_create_ls_inspect_rm_prune_and_internal,
    host,
    netns,
    dockerd_netns
);
fn network_create_ls_inspect_rm_prune_and_internal(place: Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    let sub = d.free_subnet();
    let base = sub.trim_end_matches(".0/24");
    let id = d.ok(&[
        "network",
        "create",
        "--subnet",
        &sub,
        "--gateway",
        &format!("{base}.254"),
        "--ip-range",
        &format!("{base}.128/25"),
        "--label",
        "team=net",
        "-o",
        "com.docker.network.driver.mtu=1400",
        "--ipam-opt",
        "wharf.test=9-29-045",
        "ranged",
    ]);
    assert_eq!(id.trim().len(), 64);
    // IPAM options are kept and shown (the default driver uses none).
    let ipam_opts = d.ok(&[
        "network",
        "inspect",
        "-f",
        "{{json .IPAM.Options}}",
        "ranged",
    ]);
    assert_eq!(ipam_opts.trim(), r#"{"wharf.test":"9-29-045"}"#);
    let ls = d.ok(&[
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}",
    ]);
    for want in [
        "bridge bridge local",
        "host host local",
        "none null local",
        "ranged bridge local",
    ] {
        assert!(ls.lines().any(|l| l == want), "{want} not in {ls}");
    }
    let shown = d.ok(&[
        "network", "inspect", "--format",
        "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}} {{.IPRange}}{{end}} {{.Labels.team}} {{.Internal}}",
        "ranged",
    ]);
    assert_eq!(
        shown.trim(),
        format!("{sub} {base}.254 {base}.128/25 net false")
    );
    let o = d.ok(&[
        "run",
        "--rm",
        "--network",
        "ranged",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; cat /sys/class/net/eth0/mtu; ip route",
    ]);
    assert!(o.contains(&format!("inet {base}.128/24")), "{o}");
    assert!(o.contains("\n1400\n"), "{o}");
    assert!(o.contains(&format!("default via {base}.254")), "{o}");

    // Without --subnet: one of the default pools not routed where the daemon runs (in a
    // sandbox's namespace, whose `unreachable` routes cover everything and route nothing).
    d.ok(&["network", "create", "auto"]);
    let auto = d.ok(&[
        "network",
        "inspect",
        "--format",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
        "auto",
    ]);
    let auto_base = auto.trim().rsplit_once('.').map(|(b, _)| b.to_string());
    let auto_base = auto_base.unwrap_or_else(|| panic!("no subnet: {auto:?}"));
    let o = d.ok(&[
        "run",
        "--rm",
        "--network",
        "auto",
        "busybox",
        "ip",
        "-4",
        "-o",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(o.contains(&format!("inet {auto_base}.")), "{auto}: {o}");
    let o = d.docker(&["network", "create", "--subnet", &sub, "overlapping"]);
    assert!(
        !o.status.success() && stderr(&o).contains("overlaps"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["network", "create", "ranged"]);
    assert!(
        !o.status.success() && stderr(&o).contains("already exists"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["network", "rm", "bridge"]);
    assert!(stderr(&o).contains("pre-defined"), "{}", stderr(&o));
    let o = d.docker(&["run", "--rm", "--network", "nosuch", "busybox", "true"]);
    assert!(
        !o.status.success() && stderr(&o).contains("not found"),
        "{}",
        stderr(&o)
    );

    // --internal: members reach each other, nothing else (no route out, no NAT).
    let isub = d.free_subnet();
    d.ok(&[
        "network",
        "create",
        "--internal",
        "--subnet",
        &isub,
        "closed",
    ]);
    web(&d, "inside", &["--network", "closed"], "internal");
    let page = fetch_ok(&d, &["--network", "closed"], "http://inside:8080/");
    assert_eq!(page, "internal\n", "{page}");
    let routes = d.ok(&[
        "run",
        "--rm",
        "--network",
        "closed",
        "busybox",
        "ip",
        "route",
    ]);
    // (dockerd 20.10 still routes an internal network's containers through a gateway that
    // its rules then drop; later Dockers leave the route out, as wharf does.)
    assert!(d.dockerd || !routes.contains("default"), "{routes}");
    let nat = iptables_save(&d, &["-t", "nat"]);
    assert!(
        !nat.contains(&format!("-s {isub}")),
        "internal network NATed: {nat}"
    );

    // prune removes unused user networks only.
    d.ok(&["rm", "-f", "inside"]);
    let pruned = d.ok(&["network", "prune", "-f"]);
    assert!(
        pruned.contains("ranged") && pruned.contains("closed"),
        "{pruned}"
    );
    let ls = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(
        ls.split_whitespace().collect::<Vec<_>>(),
        ["bridge", "host", "none"]
    );
    let links = ip_cmd(&d, &["-o", "link", "show", "type", "bridge"]);
    assert!(
        !links.contains(&d.user_bridge_prefix()),
        "bridges left: {links}"
    );
}

scenario!(
    hostname_hosts_and_resolv_conf_options,
    host,
    netns,
    dockerd_netns
);
fn hostname_hosts_and_resolv_conf_options(place: Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    let args = [
        "--hostname",
        "box1",
        "--add-host",
        "db.example:10.9.9.9",
        "--dns",
        "10.1.2.3",
        "--dns-search",
        "corp.example",
        "--dns-option",
        "timeout:3",
    ];
    let mut a = vec!["run", "--rm"];
    a.extend_from_slice(&args);
    a.extend_from_slice(&[
        "busybox",
        "sh",
        "-c",
        "hostname; cat /etc/hosts /etc/resolv.conf",
    ]);
    let out = d.ok(&a);
    assert!(out.starts_with("box1\n"), "{out}");
    assert!(out.contains("10.9.9.9\tdb.example\n"), "{out}");
    assert!(
        out.contains("\tbox1\n"),
        "own address for the hostname: {out}"
    );
    assert!(out.contains("nameserver 10.1.2.3\n"), "{out}");
    assert!(out.contains("search corp.example\n"), "{out}");
    assert!(out.contains("options timeout:3\n"), "{out}");

    // On a user network the embedded server fronts --dns; search and options stay.
    d.ok(&["network", "create", "--subnet", &d.free_subnet(), "u"]);
    let mut a = vec!["run", "--rm", "--network", "u"];
    a.extend_from_slice(&args);
    a.extend_from_slice(&["busybox", "cat", "/etc/resolv.conf"]);
    let out = d.ok(&a);
    let servers: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("nameserver"))
        .collect();
    assert_eq!(servers, ["nameserver 127.0.0.11"], "{out}");
    assert!(
        out.contains("search corp.example\n") && out.contains("timeout:3"),
        "{out}"
    );
}

scenario!(
    a_killed_daemon_restarts_with_containers_still_reachable,
    host,
    netns
);
fn a_killed_daemon_restarts_with_containers_still_reachable(place: Place) {
    let Some(mut d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    d.ok(&["network", "create", "--subnet", &d.free_subnet(), "keep"]);
    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    web(
        &d,
        "svc",
        &["--network", "keep", "-p", &format!("{port}:8080")],
        "survives",
    );
    eventually_get(&d, &format!("127.0.0.1:{port}"), "survives");
    let ip = inspect(&d, "svc", "{{.NetworkSettings.Networks.keep.IPAddress}}");
    d.kill9();
    // The published port does not need wharfd.
    eventually_get(&d, &format!("127.0.0.1:{port}"), "survives");
    d.spawn();
    let page = fetch_ok(&d, &["--network", "keep"], "http://svc:8080/");
    assert_eq!(page, "survives\n", "by name after the restart: {page}");
    eventually_get(&d, &format!("127.0.0.1:{port}"), "survives");
    // Its address stays taken and its port stays allocated.
    let other = d.ok(&[
        "run",
        "--rm",
        "--network",
        "keep",
        "busybox",
        "ip",
        "-4",
        "-o",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(
        !other.contains(&format!("inet {ip}/")),
        "{ip} handed out twice: {other}"
    );
    let o = d.docker(&[
        "run",
        "--rm",
        "-p",
        &format!("{port}:80"),
        "busybox",
        "true",
    ]);
    assert!(
        stderr(&o).contains("port is already allocated"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        d.ok(&["port", "svc"]).trim(),
        format!("8080/tcp -> 0.0.0.0:{port}")
    );

    // IPAM files are not fsynced: what a host crash may leave of one (renamed, data never
    // written) must not free the running container's address either. The restart takes it
    // back from the container's own record.
    d.kill9();
    let state = d.dir.path().join("data/network");
    for e in std::fs::read_dir(&state).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with("ipam-") {
            std::fs::write(e.path(), "").unwrap();
        }
    }
    d.spawn();
    let other = d.ok(&[
        "run",
        "--rm",
        "--network",
        "keep",
        "busybox",
        "ip",
        "-4",
        "-o",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(
        !other.contains(&format!("inet {ip}/")),
        "{ip} handed out twice after the IPAM file was lost: {other}"
    );
    let page = fetch_ok(&d, &["--network", "keep"], "http://svc:8080/");
    assert_eq!(page, "survives\n", "after the second restart: {page}");
}

scenario!(
    create_start_remove_cycles_leave_no_link_rule_or_address,
    host,
    netns,
    dockerd_netns
);
fn create_start_remove_cycles_leave_no_link_rule_or_address(place: Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    let churn_bridge = format!("{}-churn", d.bridge.name);
    d.ok(&[
        "network",
        "create",
        "--subnet",
        &d.free_subnet(),
        "-o",
        &format!("com.docker.network.bridge.name={churn_bridge}"),
        "churn",
    ]);
    let started = Instant::now();
    // dockerd takes ~0.5 s a cycle: fewer there.
    let cycles = if d.dockerd { 40 } else { 200 };
    let pid = d.pid().expect("the daemon runs");
    // wharfd's descriptors: a netns fd or netlink socket kept per container would show here
    // (and a netns fd keeps a dead container's namespace, with its veth, alive).
    let fds = || -> Vec<String> {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .map(|l| l.to_string_lossy().into_owned())
            .collect()
    };
    let mut fds_after_warmup = 0;
    for i in 0..cycles {
        if i == 20 && !d.dockerd {
            fds_after_warmup = fds().len();
        }
        // Alternate the default bridge and a user network; publish a port half of the time.
        let mut a = vec!["run", "--rm"];
        if i % 2 == 1 {
            a.extend_from_slice(&["--network", "churn"]);
        }
        if i % 4 < 2 {
            a.extend_from_slice(&["-p", "127.0.0.1::80"]);
        }
        a.extend_from_slice(&["busybox", "true"]);
        let o = d.docker(&a);
        assert!(o.status.success(), "cycle {i}: {}", stderr(&o));
    }
    eprintln!("{cycles} cycles in {:?}", started.elapsed());
    assert!(d.ok(&["ps", "-aq"]).trim().is_empty());
    if !d.dockerd {
        let left = fds();
        assert!(
            !left.iter().any(|l| l.starts_with("net:[")),
            "wharfd holds a network namespace: {left:?}"
        );
        assert!(
            left.len() <= fds_after_warmup + 4,
            "wharfd's descriptors grew from {fds_after_warmup} to {}: {left:?}",
            left.len()
        );
    }
    // A stopped container's pair goes with its netns, which the kernel removes in the
    // background (wharfd does not wait for it): the last one may take a moment.
    for br in [d.bridge.name.clone(), churn_bridge.clone()] {
        eventually(&format!("no port left on {br}"), || {
            ip_cmd(&d, &["-o", "link", "show", "master", &br])
                .trim()
                .is_empty()
        });
    }
    let rules = iptables_save(&d, &[]);
    // wharfd's port rules are in its own chain; dockerd's (in a namespace of its own) are
    // the only DNAT rules there.
    let dnat = if d.dockerd {
        "-j DNAT".to_string()
    } else {
        format!("-A {}-DNAT", d.bridge.name)
    };
    assert!(!rules.contains(&dnat), "port rules left:\n{rules}");
    let state = d.dir.path().join("data/network");
    for e in std::fs::read_dir(&state).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("ipam-") {
            let held = std::fs::read_to_string(e.path()).unwrap();
            assert_eq!(held.trim(), "{}", "{name} still holds addresses");
        }
    }
    // Nothing either after the test's daemon removed its networks and chains.
    d.ok(&["network", "rm", "churn"]);
    eventually("the churn bridge is gone", || {
        let links = ip_cmd(&d, &["-o", "link"]);
        !links.contains(&d.user_bridge_prefix()) && !links.contains(&churn_bridge)
    });
    if let Some(ns) = &d.netns {
        // In a namespace of its own: exactly what it had before, plus the default bridge.
        let links = ip_cmd(&d, &["-o", "link"]);
        let mut names: Vec<&str> = links
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .map(|n| n.trim_end_matches(':').split('@').next().unwrap())
            .collect();
        names.sort();
        let mut want = vec!["lo", ns.link.as_str(), d.bridge.name.as_str()];
        want.sort();
        assert_eq!(names, want, "{links}");
        let nat = iptables_save(&d, &["-t", "nat"]);
        assert!(!nat.contains("-j DNAT"), "{nat}");
    }
}

scenario!(
    default_address_pools_give_networks_their_subnets,
    host,
    netns,
    dockerd_netns
);
fn default_address_pools_give_networks_their_subnets(place: Place) {
    // A /16 routed nowhere on the host (nor in a test namespace, whose uplink is 100.64/10),
    // for this daemon's pool.
    let routes = String::from_utf8_lossy(
        &std::process::Command::new("ip")
            .args(["-4", "route", "show", "table", "all"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    let second = (230..250)
        .find(|b| !routes.contains(&format!("10.{b}.")))
        .expect("a free 10.x.0.0/16");
    let json =
        format!(r#"{{"default-address-pools": [{{"base": "10.{second}.0.0/16", "size": 26}}]}}"#);
    let Some(d) = Daemon::launch(place, Some(&json)) else {
        return;
    };
    d.ok(&["network", "create", "pooled"]);
    let subnet = d.ok(&[
        "network",
        "inspect",
        "--format",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
        "pooled",
    ]);
    let subnet = subnet.trim();
    assert!(
        subnet.starts_with(&format!("10.{second}.")) && subnet.ends_with("/26"),
        "the network's subnet {subnet:?} is not a /26 of the pool 10.{second}.0.0/16"
    );
    d.ok(&["network", "rm", "pooled"]);
}
