//! End-to-end: what docker-compose 1.29 needs of wharfd, driven with the real docker CLI.
//! (Compose selects its objects with several `label` filters at once, and its test suite's
//! teardown removes the images it labelled: every label filter must hold, as in dockerd.)

mod common;

use common::{stdout, Daemon};

#[test]
fn list_filters_and_every_label() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let p = "com.docker.compose.project=p";
    let create = |name: &str, svc: &str| {
        d.ok(&[
            "create",
            "--network",
            "none",
            "--name",
            name,
            "-l",
            p,
            "-l",
            &format!("com.docker.compose.service={svc}"),
            "busybox",
            "true",
        ]);
    };
    create("p_web_1", "web");
    create("p_db_1", "db");
    let ps = |filters: &[&str]| {
        let mut args = vec!["ps", "-a", "--format", "{{.Names}}"];
        for f in filters {
            args.extend(["--filter", f]);
        }
        let mut names: Vec<String> = stdout(&d.docker(&args)).lines().map(String::from).collect();
        names.sort();
        names
    };
    assert_eq!(
        ps(&["label=com.docker.compose.project=p"]),
        ["p_db_1", "p_web_1"]
    );
    assert_eq!(
        ps(&[
            "label=com.docker.compose.project=p",
            "label=com.docker.compose.service=web"
        ]),
        ["p_web_1"]
    );
    assert!(ps(&["label=com.docker.compose.project=p", "label=nope"]).is_empty());

    // Images: only those with every label.
    d.ok(&[
        "commit",
        "-c",
        "LABEL com.docker.compose.test_image=true",
        "p_web_1",
        "labelled:1",
    ]);
    let imgs = stdout(&d.docker(&[
        "images",
        "--format",
        "{{.Repository}}",
        "--filter",
        "label=com.docker.compose.test_image",
    ]));
    assert_eq!(imgs.trim(), "labelled");

    // Networks: the same rule.
    d.ok(&["network", "create", "--label", p, "--label", "x=1", "pn1"]);
    d.ok(&["network", "create", "--label", p, "pn2"]);
    let nets = stdout(&d.docker(&[
        "network",
        "ls",
        "--format",
        "{{.Name}}",
        "--filter",
        "label=com.docker.compose.project=p",
        "--filter",
        "label=x=1",
    ]));
    assert_eq!(nets.trim(), "pn1");
    d.ok(&["network", "rm", "pn1", "pn2"]);
}

#[test]
fn image_inspect_has_container_config_for_old_clients() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let o = std::process::Command::new("curl")
        .args(["-sf", "--unix-socket"])
        .arg(&d.sock)
        .arg("http://x/v1.41/images/busybox/json")
        .output()
        .expect("curl");
    assert!(o.status.success(), "curl failed");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["ContainerConfig"].is_object(), "{v}");
}

/// `POST` `body` (JSON) to `path` of `d`'s socket; the status line's code and the body.
fn post(d: &Daemon, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let o = std::process::Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--unix-socket"])
        .arg(&d.sock)
        .args(["-H", "Content-Type: application/json", "-d"])
        .arg(body.to_string())
        .arg(format!("http://x{path}"))
        .output()
        .expect("curl");
    let text = stdout(&o);
    let (body, code) = text.trim_end().rsplit_once('\n').unwrap_or(("", &text));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// What docker-compose 1.29 (docker-py 5) sends at create: a `Mounts[]` entry with
/// `"ReadOnly": null`, a `Healthcheck` with null durations, no `Privileged`/`PidMode` at all,
/// and `run --entrypoint=""` as `Entrypoint: [""]`. dockerd takes the nulls as zero values,
/// shows every `HostConfig` field back, omits the healthcheck's empty fields and runs the
/// command without the image's entrypoint.
fn compose_create_body(place: common::Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    let (code, created) = post(
        &d,
        "/v1.38/containers/create?name=db",
        &serde_json::json!({
            "Image": "busybox",
            "Cmd": ["sh", "-c", "echo hi > /data/x && cat /data/x"],
            "Entrypoint": [""],
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000, "Timeout": null,
                            "Retries": null, "StartPeriod": null},
            "HostConfig": {
                "NetworkMode": "none",
                "CpuCount": 2,
                "Mounts": [{"Type": "volume", "Source": "composetest_data", "Target": "/data",
                            "ReadOnly": null, "Consistency": null,
                            "VolumeOptions": {"NoCopy": null}}],
            },
        }),
    );
    assert_eq!(code, 201, "{created}\n{}", d.log());
    let inspect: serde_json::Value = serde_json::from_str(&d.ok(&["inspect", "db"])).unwrap();
    let c = &inspect[0];
    assert_eq!(c["HostConfig"]["Privileged"], false, "{c}");
    // Windows' CpuCount: kept, unused on Linux.
    assert_eq!(c["HostConfig"]["CpuCount"], 2, "{c}");
    assert_eq!(c["HostConfig"]["PidMode"], "", "{c}");
    assert_eq!(c["HostConfig"]["UsernsMode"], "", "{c}");
    let ipc = c["HostConfig"]["IpcMode"].as_str().unwrap_or_default();
    assert!(["private", "shareable"].contains(&ipc), "{c}");
    assert_eq!(
        c["Config"]["Healthcheck"],
        serde_json::json!({"Test": ["CMD", "true"], "Interval": 1000000000}),
        "{c}"
    );
    assert_eq!(c["Mounts"][0]["RW"], true, "{c}");
    d.ok(&["start", "-a", "db"]);
    assert_eq!(stdout(&d.docker(&["logs", "db"])).trim(), "hi");
}

scenario!(compose_create_body, wharfd, dockerd_netns);

/// A classic build's image shows, as `ContainerConfig` (API < 1.45), the config of the
/// container its last step ran in: a RUN's command with its build args first (compose's
/// suite checks `build_version=1` there), `#(nop)` and the instruction for the others.
fn built_image_container_config(place: common::Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nARG build_version\nRUN echo ${build_version}\n",
    )
    .unwrap();
    let o = std::process::Command::new(common::DOCKER)
        .args(["-H", &d.host(), "build", "-t", "withargs", "--build-arg"])
        .arg("build_version=1")
        .arg(ctx.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), common::stderr(&o));
    let inspect = |path: &str| -> serde_json::Value {
        let o = std::process::Command::new("curl")
            .args(["-sf", "--unix-socket"])
            .arg(&d.sock)
            .arg(format!("http://x/v1.41/images/{path}/json"))
            .output()
            .expect("curl");
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let v = inspect("withargs");
    assert_eq!(
        v["ContainerConfig"]["Cmd"],
        serde_json::json!([
            "|1",
            "build_version=1",
            "/bin/sh",
            "-c",
            "echo ${build_version}"
        ]),
        "{v}"
    );
    // The runtime config is the image's own.
    assert!(v["Config"]["Cmd"].is_null(), "{v}");
    std::fs::write(ctx.path().join("Dockerfile"), "FROM busybox\nLABEL a=b\n").unwrap();
    let o = std::process::Command::new(common::DOCKER)
        .args(["-H", &d.host(), "build", "-t", "labelled"])
        .arg(ctx.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::stderr(&o));
    let v = inspect("labelled");
    assert_eq!(
        v["ContainerConfig"]["Cmd"],
        serde_json::json!(["/bin/sh", "-c", "#(nop) ", "LABEL a=b"]),
        "{v}"
    );
}

scenario!(built_image_container_config, wharfd, dockerd_netns);

/// `kill` (SIGKILL) answers once the container is down, as dockerd's: compose kills a
/// project, then starts the containers it sees stopped (`up --no-recreate`).
fn kill_returns_once_down(place: common::Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    for i in 0..10 {
        let name = format!("k{i}");
        d.ok(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            &name,
            "busybox",
            "sleep",
            "60",
        ]);
        d.ok(&["kill", &name]);
        let state = d.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            &name,
        ]);
        assert_eq!(state.trim(), "exited 137", "{name}");
    }
}

scenario!(kill_returns_once_down, wharfd, dockerd_netns);

/// `Config.MacAddress` (what docker-py 5 sends for compose's `mac_address`, API < 1.44) is
/// the container's address on the network of its `NetworkMode`, as in dockerd.
fn container_mac_address(place: common::Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    let subnet = d.free_subnet();
    d.ok(&["network", "create", "--subnet", &subnet, "macnet"]);
    let (code, created) = post(
        &d,
        "/v1.38/containers/create?name=mac1",
        &serde_json::json!({
            "Image": "busybox",
            "Cmd": ["cat", "/sys/class/net/eth0/address"],
            "MacAddress": "02:42:ac:11:00:99",
            "HostConfig": {"NetworkMode": "macnet"},
            "NetworkingConfig": {"EndpointsConfig": {"macnet": {"Aliases": ["m"]}}},
        }),
    );
    assert_eq!(code, 201, "{created}");
    let out = d.ok(&["start", "-a", "mac1"]);
    assert_eq!(out.trim(), "02:42:ac:11:00:99");
    // Also when that endpoint is made again by a connect before start (docker-compose 1.29
    // disconnects and reconnects the primary network after create).
    let (code, created) = post(
        &d,
        "/v1.38/containers/create?name=mac2",
        &serde_json::json!({
            "Image": "busybox",
            "Cmd": ["cat", "/sys/class/net/eth0/address"],
            "MacAddress": "02:42:ac:11:00:98",
            "HostConfig": {"NetworkMode": "macnet"},
            "NetworkingConfig": {"EndpointsConfig": {"macnet": {}}},
        }),
    );
    assert_eq!(code, 201, "{created}");
    d.ok(&["network", "disconnect", "macnet", "mac2"]);
    d.ok(&["network", "connect", "--alias", "m2", "macnet", "mac2"]);
    let out = d.ok(&["start", "-a", "mac2"]);
    assert_eq!(out.trim(), "02:42:ac:11:00:98");
    d.ok(&["rm", "mac1", "mac2"]);
    d.ok(&["network", "rm", "macnet"]);
}

scenario!(container_mac_address, wharfd, dockerd_netns);

/// Random host ports come from the kernel's `ip_local_port_range`, as dockerd's: a service
/// publishing `3000` and `49153-49154:3002-3003` (compose's ports fixture) starts, the
/// random one not taking a port of the range asked for.
fn random_ports_from_the_kernel_range(place: common::Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "ports",
        "-p",
        "3000",
        "-p",
        "49153-49154:3002-3003",
        "busybox",
        "sleep",
        "60",
    ]);
    let range = d.host_run("cat", &["/proc/sys/net/ipv4/ip_local_port_range"]);
    let mut r = range.split_whitespace().map(|p| p.parse::<u16>().unwrap());
    let (lo, hi) = (r.next().unwrap(), r.next().unwrap());
    let port = d.ok(&["port", "ports", "3000/tcp"]);
    let host_port: u16 = port
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("{port}"));
    assert!(
        (lo..=hi).contains(&host_port),
        "{host_port} not in {lo}-{hi}"
    );
    d.ok(&["rm", "-f", "ports"]);
}

scenario!(random_ports_from_the_kernel_range, wharfd, dockerd_netns);
