//! End-to-end: container links (`--link name[:alias]`) with the real docker CLI, against
//! wharfd and against Debian's dockerd (the same scenario, so it asks only what Docker
//! does): on the default bridge the legacy form (environment, /etc/hosts, inspect's
//! `/child:/parent/alias`, refusals, a removed child); on a user network an alias only the linking container
//! resolves, from `run --link` and from `network connect --link`.

mod common;

use common::{stderr, stdout, Daemon, Place};

fn inspect(d: &Daemon, what: &str, format: &str) -> String {
    d.ok(&["inspect", "--format", format, what])
        .trim()
        .to_string()
}

fn legacy_links_on_the_default_bridge(place: Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--hostname",
        "dbhost",
        "-e",
        "SECRET=s3=x",
        "--expose",
        "6379",
        "--expose",
        "53/udp",
        "busybox",
        "sleep",
        "300",
    ]);
    let ip = inspect(&d, "db", "{{.NetworkSettings.IPAddress}}");
    assert!(!ip.is_empty());
    let out = d.ok(&[
        "run", "--name", "web", "--link", "db:my-db", "-e", "MY_DB_NAME=mine", "busybox", "sh",
        "-c", "env | grep ^MY_DB_ | sort; grep -w my-db /etc/hosts; ping -c1 -W3 my-db >/dev/null && echo reached",
    ]);
    let want = format!(
        "MY_DB_ENV_SECRET=s3=x\n\
         MY_DB_NAME=mine\n\
         MY_DB_PORT=udp://{ip}:53\n\
         MY_DB_PORT_53_UDP=udp://{ip}:53\n\
         MY_DB_PORT_53_UDP_ADDR={ip}\n\
         MY_DB_PORT_53_UDP_PORT=53\n\
         MY_DB_PORT_53_UDP_PROTO=udp\n\
         MY_DB_PORT_6379_TCP=tcp://{ip}:6379\n\
         MY_DB_PORT_6379_TCP_ADDR={ip}\n\
         MY_DB_PORT_6379_TCP_PORT=6379\n\
         MY_DB_PORT_6379_TCP_PROTO=tcp\n\
         {ip}\tmy-db dbhost db\n\
         reached\n"
    );
    assert_eq!(out, want);
    assert_eq!(
        inspect(&d, "web", "{{json .HostConfig.Links}}"),
        r#"["/db:/web/my-db"]"#
    );
    // Without an alias the name is the alias; a second start gets the line once.
    d.ok(&[
        "create",
        "--name",
        "web2",
        "--link",
        "db",
        "busybox",
        "grep",
        "-c",
        "db",
        "/etc/hosts",
    ]);
    d.ok(&["start", "web2"]);
    d.ok(&["wait", "web2"]);
    d.ok(&["start", "web2"]);
    d.ok(&["wait", "web2"]);
    assert_eq!(d.ok(&["logs", "web2"]), "1\n1\n");
    assert_eq!(
        inspect(&d, "web2", "{{json .HostConfig.Links}}"),
        r#"["/db:/web2/db"]"#
    );

    // A link to a container that does not run fails the start; to none, the create.
    d.ok(&["create", "--name", "stopped", "busybox", "true"]);
    let o = d.docker(&[
        "run",
        "--name",
        "late",
        "--link",
        "stopped:s",
        "busybox",
        "true",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Cannot link to a non running container: /stopped AS /late/s"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["create", "--link", "nosuch:x", "busybox", "true"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("could not get container for nosuch"),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&[
        "create",
        "--network",
        "host",
        "--link",
        "db:x",
        "busybox",
        "true",
    ]);
    assert!(
        stderr(&o).contains("conflicting options: host type networking can't be used with links"),
        "{}",
        stderr(&o)
    );
    // A removed child is a link to a container that does not run.
    d.ok(&["rm", "-f", "db"]);
    let o = d.docker(&["start", "web2"]);
    assert!(
        stderr(&o).contains("Cannot link to a non running container: /db AS /web2/db"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        inspect(&d, "web2", "{{json .HostConfig.Links}}"),
        r#"["/db:/web2/db"]"#
    );
}

fn links_on_a_user_network_are_aliases_for_the_linker_only(place: Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    d.ok(&["network", "create", "--subnet", &d.free_subnet(), "ln"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "ln",
        "busybox",
        "sleep",
        "300",
    ]);
    let ip = inspect(&d, "db", "{{.NetworkSettings.Networks.ln.IPAddress}}");
    let resolve = |args: &[&str], name: &str| -> Option<String> {
        let mut a = vec!["run", "--rm", "--network", "ln"];
        a.extend_from_slice(args);
        a.extend(["busybox", "nslookup", name, "127.0.0.11"]);
        let o = d.docker(&a);
        let out = stdout(&o);
        o.status
            .success()
            .then(|| {
                out.lines()
                    .rev()
                    .find_map(|l| l.strip_prefix("Address: ").map(String::from))
            })
            .flatten()
    };
    assert_eq!(
        resolve(&["--link", "db:thedb"], "thedb").as_deref(),
        Some(ip.as_str())
    );
    assert_eq!(
        resolve(&[], "thedb"),
        None,
        "only the linking container resolves the alias"
    );
    // The endpoint keeps the links as given; HostConfig.Links is not used on user networks.
    d.ok(&[
        "create",
        "--name",
        "web",
        "--network",
        "ln",
        "--link",
        "db:thedb",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(
        inspect(&d, "web", "{{json .NetworkSettings.Networks.ln.Links}}"),
        r#"["db:thedb"]"#
    );
    // `network connect --link` on a second network.
    d.ok(&["network", "create", "--subnet", &d.free_subnet(), "ln2"]);
    d.ok(&["network", "connect", "ln2", "db"]);
    let ip2 = inspect(&d, "db", "{{.NetworkSettings.Networks.ln2.IPAddress}}");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "app",
        "--network",
        "ln2",
        "busybox",
        "sleep",
        "300",
    ]);
    d.ok(&["network", "disconnect", "ln2", "app"]);
    d.ok(&["network", "connect", "--link", "db:store", "ln2", "app"]);
    let o = d.docker(&["exec", "app", "nslookup", "store", "127.0.0.11"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains(&format!("Address: {ip2}")),
        "{}",
        stdout(&o)
    );
}

scenario!(legacy_links_on_the_default_bridge, host, dockerd_netns);
scenario!(
    links_on_a_user_network_are_aliases_for_the_linker_only,
    host,
    dockerd_netns
);
