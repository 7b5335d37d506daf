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
