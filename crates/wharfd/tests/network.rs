//! End-to-end networking: the real docker CLI (28.2) against wharfd, with containers talking
//! to each other and to the host's loopback only.

mod common;

use common::{eventually, stderr, stdout, Daemon};

/// Starts busybox httpd serving `body` on port 8080 as container `name` with extra `args`.
fn web(d: &Daemon, name: &str, args: &[&str], body: &str) -> String {
    let script =
        format!("mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 8080 -h /www");
    let mut a = vec!["run", "-d", "--name", name];
    a.extend_from_slice(args);
    a.extend_from_slice(&["busybox", "sh", "-c", &script]);
    d.ok(&a).trim().to_string()
}

#[test]
fn wget_by_name_on_a_user_network() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    d.ok(&["network", "create", "--subnet", &d.free_subnet(), "front"]);
    web(
        &d,
        "site",
        &["--network", "front", "--network-alias", "www"],
        "hello-front",
    );
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "front",
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf; nslookup site 127.0.0.11; wget -q -O - http://site:8080/",
    ]);
    eprintln!("{}\n{}", stdout(&o), stderr(&o));
    eprintln!("{}", d.log());
}
