//! `wharf compose` end to end: a 3-service project (a healthchecked store with a named
//! volume, an api on two networks with an alias, a web front) brought up, listed, reached by
//! name from another service, its logs read, one service changed and recreated alone, and
//! taken down with nothing left. Run against a test wharfd and, when Debian's dockerd is
//! usable, against a test dockerd: the same compose code over the same Engine API.

mod common;

use common::target::Target;
use common::{eventually, stderr, stdout};

const PROJECT: &str = r#"
services:
  db:
    image: busybox
    command: ["sh", "-c", "echo db-ready; echo stored > /data/f; exec httpd -f -p 80 -h /data"]
    volumes: [data:/data]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/f"]
      interval: 1s
      retries: 20
  api:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www && echo api-$${HOSTNAME:+x} > /www/i && echo api-up && exec httpd -f -p 8080 -h /www"]
    depends_on:
      db: {condition: service_healthy}
    networks:
      default: {}
      back: {aliases: [backend]}
  web:
    image: busybox
    command: sh -c 'echo web-$$GREETING; exec sleep 300'
    environment:
      GREETING: ${GREETING:-hello}
    depends_on: [api]
    networks: [back]
networks:
  back: {}
volumes:
  data: {}
"#;

struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(yaml: &str) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("wharf-compose-e2e-")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("compose.yaml"), yaml).unwrap();
        Project { dir }
    }

    fn file(&self) -> String {
        self.dir.path().join("compose.yaml").display().to_string()
    }
}

/// `wharf compose -f <file> -p ct <args>` against the target.
fn compose(t: &Target, p: &Project, args: &[&str]) -> std::process::Output {
    let file = p.file();
    let mut all = vec!["compose", "-f", file.as_str(), "-p", "ct"];
    all.extend_from_slice(args);
    t.wharf(&all)
}

#[track_caller]
fn compose_ok(t: &Target, p: &Project, args: &[&str]) -> (String, String) {
    let o = compose(t, p, args);
    assert!(
        o.status.success(),
        "wharf compose {args:?} failed: {}\n--- daemon log ---\n{}",
        stderr(&o),
        t.log()
    );
    (stdout(&o), stderr(&o))
}

fn id_of(t: &Target, name: &str) -> String {
    t.ok(&["inspect", "-f", "{{.Id}}", name]).trim().to_string()
}

scenario!(three_services_up_ps_dns_logs_recreate_down);
fn three_services_up_ps_dns_logs_recreate_down(t: &Target) {
    let p = Project::new(PROJECT);

    // config: the canonical form, the implied default network, the engine names.
    let (cfg, _) = compose_ok(t, &p, &["config"]);
    assert!(cfg.starts_with("name: ct\nservices:\n  api:\n"), "{cfg}");
    assert!(cfg.contains("networks:\n  back:\n    name: ct_back\n  default:\n    name: ct_default\nvolumes:\n  data:\n    name: ct_data\n"), "{cfg}");
    assert!(
        cfg.contains("    environment:\n      GREETING: hello\n"),
        "{cfg}"
    );
    assert_eq!(
        compose_ok(t, &p, &["config", "--services"]).0,
        "api\ndb\nweb\n"
    );

    // up -d: networks, volume, containers in dependency order, db healthy before api starts.
    let t0 = std::time::Instant::now();
    let (_, err) = compose_ok(t, &p, &["up", "-d"]);
    // For the record (run with --nocapture): the wait for db's first healthy check (interval
    // 1s) dominates; it is bounded by the check, not by polling.
    eprintln!(
        "compose up -d, 3 services, one service_healthy wait: {:?}",
        t0.elapsed()
    );
    let lines: Vec<&str> = err.lines().collect();
    for want in [
        " Network ct_back  Created",
        " Network ct_default  Created",
        " Volume \"ct_data\"  Created",
        " Container ct-db-1  Created",
        " Container ct-db-1  Healthy",
        " Container ct-api-1  Started",
        " Container ct-web-1  Started",
    ] {
        assert!(lines.contains(&want), "{want:?} missing from:\n{err}");
    }
    let pos = |l: &str| lines.iter().position(|x| *x == l).unwrap();
    assert!(
        pos(" Container ct-db-1  Healthy") < pos(" Container ct-api-1  Starting"),
        "{err}"
    );
    assert!(
        pos(" Container ct-api-1  Started") < pos(" Container ct-web-1  Starting"),
        "{err}"
    );

    // The labels compose v2 sets.
    let labels = t.ok(&["inspect", "-f", "{{json .Config.Labels}}", "ct-api-1"]);
    let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels["com.docker.compose.project"], "ct");
    assert_eq!(labels["com.docker.compose.service"], "api");
    assert_eq!(labels["com.docker.compose.container-number"], "1");
    assert_eq!(labels["com.docker.compose.oneoff"], "False");
    assert_eq!(
        labels["com.docker.compose.project.config_files"],
        p.file().as_str()
    );
    assert_eq!(
        labels["com.docker.compose.project.working_dir"],
        p.dir.path().display().to_string().as_str()
    );
    assert_eq!(
        labels["com.docker.compose.config-hash"]
            .as_str()
            .unwrap()
            .len(),
        64
    );

    // ps: the three, with their services, up.
    let (ps, _) = compose_ok(t, &p, &["ps"]);
    let rows: Vec<&str> = ps.lines().collect();
    assert!(rows[0].starts_with("NAME "), "{ps}");
    assert_eq!(rows.len(), 4, "{ps}");
    for (row, (name, svc)) in
        rows[1..]
            .iter()
            .zip([("ct-db-1", "db"), ("ct-api-1", "api"), ("ct-web-1", "web")])
    {
        let cells: Vec<&str> = row
            .split("   ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(cells[0], name, "{ps}");
        assert_eq!(cells[1], "busybox", "{ps}");
        assert_eq!(cells[3], svc, "{ps}");
        assert!(cells[5].starts_with("Up "), "{ps}");
    }
    assert_eq!(compose_ok(t, &p, &["ps", "-q"]).0.lines().count(), 3);

    // A service reaches another by its service name, and by an alias on a declared network.
    let (got, _) = compose_ok(
        t,
        &p,
        &["exec", "-T", "api", "wget", "-q", "-O", "-", "http://db/f"],
    );
    assert_eq!(got, "stored\n");
    // exec: the command's exit status, and a service that is not running.
    let o = compose(
        t,
        &p,
        &["exec", "-T", "-e", "X=4", "api", "sh", "-c", "exit $X"],
    );
    assert_eq!(o.status.code(), Some(4));
    let o = compose(t, &p, &["exec", "-T", "--index", "2", "api", "true"]);
    assert_eq!(stderr(&o), "service \"api\" is not running\n");
    eventually("web reaches api as backend", || {
        let o = t.wharf(&[
            "exec",
            "ct-web-1",
            "wget",
            "-q",
            "-O",
            "-",
            "http://backend:8080/i",
        ]);
        o.status.success() && stdout(&o) == "api-x\n"
    });
    // web is not on the default network: db is not its to reach.
    let o = t.wharf(&[
        "exec",
        "ct-web-1",
        "wget",
        "-q",
        "-T",
        "2",
        "-O",
        "-",
        "http://db/f",
    ]);
    assert!(!o.status.success(), "web reached db across networks");

    // logs, prefixed by container name padded to the longest.
    let (logs, _) = compose_ok(t, &p, &["logs"]);
    for want in [
        "ct-db-1   | db-ready",
        "ct-api-1  | api-up",
        "ct-web-1  | web-hello",
    ] {
        assert!(
            logs.lines().any(|l| l == want),
            "{want:?} missing from:\n{logs}"
        );
    }
    let (logs, _) = compose_ok(t, &p, &["logs", "--no-log-prefix", "web"]);
    assert_eq!(logs, "web-hello\n");

    // The same file again changes nothing; a change to web recreates web alone.
    let (db_id, api_id, web_id) = (
        id_of(t, "ct-db-1"),
        id_of(t, "ct-api-1"),
        id_of(t, "ct-web-1"),
    );
    let (_, err) = compose_ok(t, &p, &["up", "-d"]);
    assert!(
        !err.contains("Recreate") && !err.contains("Created"),
        "{err}"
    );
    assert_eq!(id_of(t, "ct-web-1"), web_id);
    std::fs::write(p.dir.path().join(".env"), "GREETING=changed\n").unwrap();
    let (_, err) = compose_ok(t, &p, &["up", "-d"]);
    assert!(
        err.lines().any(|l| l == " Container ct-web-1  Recreated"),
        "{err}"
    );
    assert!(
        err.lines().any(|l| l == " Container ct-db-1  Running"),
        "{err}"
    );
    assert!(
        err.lines().any(|l| l == " Container ct-api-1  Running"),
        "{err}"
    );
    assert_eq!(id_of(t, "ct-db-1"), db_id);
    assert_eq!(id_of(t, "ct-api-1"), api_id);
    assert_ne!(id_of(t, "ct-web-1"), web_id);
    eventually("the new web logs the new greeting", || {
        compose(t, &p, &["logs", "--no-log-prefix", "web"]).stdout == b"web-changed\n"
    });

    // top: each container's name, then its processes.
    let (top, _) = compose_ok(t, &p, &["top", "web"]);
    assert!(top.starts_with("ct-web-1\nUID "), "{top}");
    assert!(top.contains("sleep 300") && top.ends_with("\n\n"), "{top}");

    // ls, pause / unpause, kill.
    let (ls, _) = compose_ok(t, &p, &["ls"]);
    let row = ls
        .lines()
        .find(|l| l.starts_with("ct "))
        .unwrap_or_else(|| panic!("{ls}"));
    assert!(
        row.contains("running(3)") && row.ends_with(&p.file()),
        "{ls}"
    );
    assert!(
        ls.starts_with("NAME                STATUS              CONFIG FILES\n"),
        "{ls}"
    );
    let (_, err) = compose_ok(t, &p, &["pause", "web"]);
    assert_eq!(
        err,
        " Container ct-web-1  Pausing\n Container ct-web-1  Paused\n"
    );
    assert_eq!(
        t.ok(&["inspect", "-f", "{{.State.Status}}", "ct-web-1"])
            .trim(),
        "paused"
    );
    let (_, err) = compose_ok(t, &p, &["unpause", "web"]);
    assert_eq!(
        err,
        " Container ct-web-1  Unpausing\n Container ct-web-1  Unpaused\n"
    );
    let (_, err) = compose_ok(t, &p, &["kill", "-s", "KILL", "web"]);
    assert_eq!(
        err,
        " Container ct-web-1  Killing\n Container ct-web-1  Killed\n"
    );
    eventually("web is killed", || {
        t.ok(&["inspect", "-f", "{{.State.ExitCode}}", "ct-web-1"])
            .trim()
            == "137"
    });
    assert_eq!(compose_ok(t, &p, &["ps", "--services"]).0, "db\napi\n");
    let (_, err) = compose_ok(t, &p, &["start", "web"]);
    assert_eq!(
        err,
        " Container ct-web-1  Starting\n Container ct-web-1  Started\n"
    );

    // stop / start / restart.
    let (_, err) = compose_ok(t, &p, &["stop", "-t", "1", "web"]);
    assert_eq!(
        err,
        " Container ct-web-1  Stopping\n Container ct-web-1  Stopped\n"
    );
    assert_eq!(compose_ok(t, &p, &["ps", "--services"]).0, "db\napi\n");
    let (_, err) = compose_ok(t, &p, &["start", "web"]);
    assert_eq!(
        err,
        " Container ct-web-1  Starting\n Container ct-web-1  Started\n"
    );
    let (_, err) = compose_ok(t, &p, &["restart", "-t", "1", "web"]);
    assert_eq!(
        err,
        " Container ct-web-1  Restarting\n Container ct-web-1  Started\n"
    );

    // down -v: nothing of the project is left.
    let (_, err) = compose_ok(t, &p, &["down", "-v", "-t", "1"]);
    for want in [
        " Container ct-web-1  Removed",
        " Container ct-db-1  Removed",
        " Network ct_back  Removed",
        " Network ct_default  Removed",
        " Volume ct_data  Removed",
    ] {
        assert!(
            err.lines().any(|l| l == want),
            "{want:?} missing from:\n{err}"
        );
    }
    assert_eq!(
        t.ok(&[
            "ps",
            "-aq",
            "--filter",
            "label=com.docker.compose.project=ct"
        ]),
        ""
    );
    let nets = t.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.lines().any(|n| n.starts_with("ct_")), "{nets}");
    let vols = t.ok(&["volume", "ls", "-q"]);
    assert!(!vols.lines().any(|v| v == "ct_data"), "{vols}");
}

scenario!(errors_and_refusals);
fn errors_and_refusals(t: &Target) {
    // A bad key: the file, the key path and what is wrong; nothing is created.
    let p = Project::new("services:\n  a:\n    image: busybox\n    bogus: 1\n");
    let o = compose(t, &p, &["up", "-d"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "validating {}: services.a additional properties 'bogus' not allowed\n",
            p.file()
        )
    );
    // Parsed but not implemented: refused by name.
    let p = Project::new("services:\n  a:\n    image: busybox\n    cap_add: [NET_ADMIN]\n");
    let o = compose(t, &p, &["up", "-d"]);
    assert_eq!(
        stderr(&o),
        "service \"a\": cap_add is not supported by wharf compose yet\n"
    );
    assert_eq!(t.ok(&["ps", "-aq"]), "");
    let o = compose(t, &p, &["stats"]);
    assert_eq!(
        stderr(&o),
        "wharf compose: 'stats' is not supported yet (see docs/compatibility.md)\n"
    );
    // A required variable.
    let p = Project::new("services:\n  a:\n    image: \"busybox:${TAG:?TAG must be set}\"\n");
    let o = compose(t, &p, &["config"]);
    assert_eq!(
        stderr(&o),
        format!(
            "{}: services.a.image: required variable TAG is missing a value: TAG must be set\n",
            p.file()
        )
    );
    // A dependency that does not complete successfully stops up.
    let p = Project::new("services:\n  init:\n    image: busybox\n    command: sh -c 'exit 3'\n  app:\n    image: busybox\n    command: sleep 300\n    depends_on: {init: {condition: service_completed_successfully}}\n");
    let o = compose(t, &p, &["up", "-d"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).ends_with("service \"init\" didn't complete successfully: exit 3\n"),
        "{}",
        stderr(&o)
    );
    let state = t.ok(&["inspect", "-f", "{{.State.Status}}", "ct-app-1"]);
    assert_eq!(state.trim(), "created");
    // wait: the exit code, printed and returned.
    let o = compose(t, &p, &["wait", "init"]);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(3), "3\n"));
    // create: containers, not started.
    compose_ok(t, &p, &["down"]);
    let (_, err) = compose_ok(t, &p, &["create"]);
    assert!(
        err.contains(" Container ct-init-1  Created\n") && !err.contains("Start"),
        "{err}"
    );
    assert_eq!(
        t.ok(&["inspect", "-f", "{{.State.Status}}", "ct-init-1"])
            .trim(),
        "created"
    );
    compose_ok(t, &p, &["down"]);
    assert_eq!(t.ok(&["ps", "-aq"]), "");
}

scenario!(attached_up_logs_follow_and_ctrl_c);
fn attached_up_logs_follow_and_ctrl_c(t: &Target) {
    // Attached: every line prefixed, each exit reported, back when all have stopped.
    let p = Project::new("services:\n  one:\n    image: busybox\n    command: sh -c 'echo one-a; sleep 1; echo one-b'\n  two:\n    image: busybox\n    command: sh -c 'echo two-a >&2; exit 3'\n");
    let (out, err) = compose_ok(t, &p, &["up"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Attaching to ct-one-1, ct-two-1", "{out}");
    for want in [
        "ct-one-1  | one-a",
        "ct-one-1  | one-b",
        "ct-two-1 exited with code 3",
        "ct-one-1 exited with code 0",
    ] {
        assert!(lines.contains(&want), "{want:?} missing from:\n{out}");
    }
    let pos = |l: &str| lines.iter().position(|x| *x == l).unwrap();
    assert!(
        pos("ct-one-1  | one-b") < pos("ct-one-1 exited with code 0"),
        "{out}"
    );
    assert!(err.lines().any(|l| l == "ct-two-1  | two-a"), "{err}");
    // logs -f of stopped containers: everything, then back.
    let (logs, _) = compose_ok(t, &p, &["logs", "-f", "one"]);
    assert_eq!(logs, "ct-one-1  | one-a\nct-one-1  | one-b\n");
    // rm: without -f and without a terminal nothing goes; with -f the stopped ones go.
    let (_, err) = compose_ok(t, &p, &["rm"]);
    assert_eq!(err, "Going to remove ct-one-1, ct-two-1\n");
    assert_eq!(t.ok(&["ps", "-aq"]).lines().count(), 2);
    let (_, err) = compose_ok(t, &p, &["rm", "-f", "two"]);
    assert_eq!(
        err,
        " Container ct-two-1  Removing\n Container ct-two-1  Removed\n"
    );
    assert_eq!(t.ok(&["ps", "-aq"]).lines().count(), 1);
    compose_ok(t, &p, &["down"]);

    // Ctrl-C stops the containers.
    let p = Project::new("services:\n  s:\n    image: busybox\n    command: sh -c 'echo started; exec sleep 300'\n    stop_grace_period: 1s\n");
    let file = p.file();
    let child = std::process::Command::new(common::WHARF)
        .args(["-H", &t.host(), "compose", "-f", &file, "-p", "ct", "up"])
        .env_remove("DOCKER_HOST")
        .env_remove("WHARF_HOST")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    eventually("the service is running", || {
        t.ok(&["ps", "-q", "--filter", "name=ct-s-1"]).trim().len() == 12
    });
    eventually("its log is followed", || {
        let o = compose(t, &p, &["logs"]);
        stdout(&o).contains("started")
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("Gracefully stopping... (press Ctrl+C again to force)\n Container ct-s-1  Stopping\n Container ct-s-1  Stopped\n"), "{}", stderr(&o));
    assert_eq!(
        t.ok(&["inspect", "-f", "{{.State.Status}}", "ct-s-1"])
            .trim(),
        "exited"
    );
    compose_ok(t, &p, &["down"]);
}

scenario!(replicas_scale_without_recreating);
fn replicas_scale_without_recreating(t: &Target) {
    let yaml = |n: u32| {
        format!("services:\n  s:\n    image: busybox\n    command: sleep 300\n    stop_grace_period: 1s\n    deploy: {{replicas: {n}}}\n")
    };
    let p = Project::new(&yaml(2));
    let (_, err) = compose_ok(t, &p, &["up", "-d"]);
    assert!(
        err.contains(" Container ct-s-1  Started\n")
            && err.contains(" Container ct-s-2  Started\n"),
        "{err}"
    );
    let first = id_of(t, "ct-s-1");
    assert_eq!(
        t.ok(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"com.docker.compose.container-number\"}}",
            "ct-s-2"
        ])
        .trim(),
        "2"
    );
    // Fewer replicas: the highest numbers go, the rest is not recreated.
    std::fs::write(p.dir.path().join("compose.yaml"), yaml(1)).unwrap();
    let (_, err) = compose_ok(t, &p, &["up", "-d"]);
    assert!(err.contains(" Container ct-s-2  Removed\n"), "{err}");
    assert!(!err.contains("Recreate"), "{err}");
    assert_eq!(id_of(t, "ct-s-1"), first);
    assert_eq!(compose_ok(t, &p, &["ps", "-q"]).0.lines().count(), 1);
    // scale: more replicas of the service, the first kept.
    let (_, err) = compose_ok(t, &p, &["scale", "s=3"]);
    assert!(
        err.contains(" Container ct-s-3  Started\n")
            && err.contains(" Container ct-s-1  Running\n"),
        "{err}"
    );
    assert_eq!(id_of(t, "ct-s-1"), first);
    assert_eq!(compose_ok(t, &p, &["ps", "-q"]).0.lines().count(), 3);
    // Without a file, `-p` finds the project by its labels, as compose v2 does.
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().display().to_string();
    let o = t.wharf(&[
        "compose",
        "--project-directory",
        &dir,
        "-p",
        "ct",
        "down",
        "-t",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(" Container ct-s-3  Removed\n Network ct_default  Removing\n Network ct_default  Removed\n"), "{}", stderr(&o));
    assert_eq!(t.ok(&["ps", "-aq"]), "");
    let o = t.wharf(&["compose", "--project-directory", &dir, "up", "-d"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("no configuration file provided: not found"),
        "{}",
        stderr(&o)
    );
}

scenario!(published_port_reached_from_the_host);
fn published_port_reached_from_the_host(t: &Target) {
    let p = Project::new("services:\n  www:\n    image: busybox\n    command: sh -c 'mkdir -p /w && echo from-www > /w/i && exec httpd -f -p 80 -h /w'\n    ports: ['127.0.0.1::80']\n    stop_grace_period: 1s\n");
    compose_ok(t, &p, &["up", "-d"]);
    let port = t.ok(&[
        "inspect",
        "-f",
        "{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}",
        "ct-www-1",
    ]);
    let port: u16 = port
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no host port: {port:?}"));
    assert!(port > 0);
    let mut body = String::new();
    eventually("GET /i through the published port", || {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        if s.write_all(b"GET /i HTTP/1.0\r\n\r\n").is_err() {
            return false;
        }
        body.clear();
        s.read_to_string(&mut body).is_ok() && body.ends_with("from-www\n")
    });
    let (ps, _) = compose_ok(t, &p, &["ps"]);
    assert!(ps.contains(&format!("127.0.0.1:{port}->80/tcp")), "{ps}");
    assert_eq!(
        compose_ok(t, &p, &["port", "www", "80"]).0,
        format!("127.0.0.1:{port}\n")
    );
    // images: the container's image, its short id and size as `images` shows them.
    let (images, _) = compose_ok(t, &p, &["images"]);
    let want_id = t.ok(&["images", "-q", "busybox"]).trim().to_string();
    let want_size = t
        .ok(&["images", "--format", "{{.Size}}", "busybox"])
        .trim()
        .to_string();
    let row: Vec<&str> = images
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        row,
        [
            "ct-www-1",
            "busybox",
            "latest",
            want_id.as_str(),
            want_size.as_str()
        ],
        "{images}"
    );
    assert!(
        images.starts_with("CONTAINER           REPOSITORY          TAG "),
        "{images}"
    );
    let o = compose(t, &p, &["port", "www", "81"]);
    assert_eq!(stderr(&o), "no port 81/tcp for container ct-www-1\n");
    compose_ok(t, &p, &["down"]);
}

const APP_DOCKERFILE: &str = "FROM busybox\nARG GREETING=none\nCOPY . /ctx/\nRUN echo \"$GREETING\" > /greeting\nCMD [\"sleep\", \"300\"]\n";

scenario!(build_up_build_and_push);
fn build_up_build_and_push(t: &Target) {
    let Some(reg) = common::registry::LocalRegistry::start() else {
        return;
    };
    let tagged = format!("{}/ct/tagged:1", reg.addr);
    let p = Project::new(&format!(
        r#"
services:
  app:
    build:
      context: ./app
      dockerfile: build/Dockerfile
      args: {{GREETING: "${{GREETING:-hi}}"}}
      labels: {{made.by: compose}}
    stop_grace_period: 1s
  tagged:
    image: {tagged}
    build:
      context: ./app
      dockerfile_inline: "FROM busybox\nRUN echo inline > /i\nCMD [\"sleep\", \"300\"]\n"
    stop_grace_period: 1s
"#
    ));
    let app = p.dir.path().join("app");
    std::fs::create_dir_all(app.join("build")).unwrap();
    std::fs::write(app.join("build/Dockerfile"), APP_DOCKERFILE).unwrap();
    std::fs::write(app.join(".dockerignore"), "secret.txt\n").unwrap();
    std::fs::write(app.join("secret.txt"), "no\n").unwrap();
    std::fs::write(app.join("data.txt"), "one\n").unwrap();

    // up: both images are missing, so both are built (ct-app named after the service).
    let (_, err) = compose_ok(t, &p, &["up", "-d"]);
    for want in [
        " Service app  Built",
        " Service tagged  Built",
        " Container ct-app-1  Started",
        " Container ct-tagged-1  Started",
    ] {
        assert!(err.lines().any(|l| l == want), "{want:?} missing:\n{err}");
    }
    let exec = |svc: &str, cmd: &str| compose_ok(t, &p, &["exec", "-T", svc, "sh", "-c", cmd]).0;
    assert_eq!(exec("app", "cat /greeting"), "hi\n");
    // The context went through its .dockerignore, the Dockerfile came from its subdirectory.
    assert_eq!(
        exec("app", "ls -A /ctx | sort | tr '\\n' ' '"),
        ".dockerignore build data.txt "
    );
    assert_eq!(exec("tagged", "cat /i"), "inline\n");
    assert_eq!(
        t.ok(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"made.by\"}}",
            "ct-app"
        ])
        .trim(),
        "compose"
    );
    let image_id = t
        .ok(&["inspect", "-f", "{{.Id}}", "ct-app"])
        .trim()
        .to_string();
    assert_eq!(
        t.ok(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"com.docker.compose.image\"}}",
            "ct-app-1"
        ])
        .trim(),
        image_id
    );

    // up again: nothing to build or recreate.
    let (_, err) = compose_ok(t, &p, &["up", "-d"]);
    assert!(
        !err.contains("Building") && !err.contains("Recreate"),
        "{err}"
    );

    // A change in the context and `up --build`: app's image changes, so its container is
    // recreated; tagged's build is all cached (the same image), so its container stays.
    std::fs::write(app.join("data.txt"), "two\n").unwrap();
    let tagged_ctr = id_of(t, "ct-tagged-1");
    let (_, err) = compose_ok(t, &p, &["up", "-d", "--build"]);
    assert!(err.contains(" Container ct-app-1  Recreate\n"), "{err}");
    assert!(err.contains(" Container ct-tagged-1  Running\n"), "{err}");
    assert_eq!(id_of(t, "ct-tagged-1"), tagged_ctr);
    assert_eq!(exec("app", "cat /ctx/data.txt"), "two\n");

    // compose build: -q prints nothing; the cache is used, unless --no-cache.
    let (out, _) = compose_ok(t, &p, &["build", "-q"]);
    assert_eq!(out, "");
    let (out, _) = compose_ok(t, &p, &["build", "app"]);
    assert!(out.contains("Using cache"), "{out}");
    let (out, _) = compose_ok(t, &p, &["build", "--no-cache", "app"]);
    assert!(
        out.contains("Step 1/6 : FROM busybox") && !out.contains("Using cache"),
        "{out}"
    );
    let o = compose(t, &p, &["build", "nope"]);
    assert_eq!(stderr(&o), "no such service: nope\n");

    // push: the services with an image name (app has none).
    let (_, err) = compose_ok(t, &p, &["push"]);
    assert_eq!(
        err,
        format!(" Image {tagged}  Pushing\n Image {tagged}  Pushed\n")
    );
    assert!(reg.requests("PUT", "/v2/ct/tagged/manifests/1", Some(201)) >= 1);

    compose_ok(t, &p, &["down"]);
    t.ok(&["rmi", "ct-app", &tagged]);
}

scenario!(build_secrets);
fn build_secrets(t: &Target) {
    let p = Project::new(
        "services:\n  s:\n    build:\n      context: .\n      dockerfile_inline: |\n        FROM busybox\n        RUN --mount=type=secret,id=tok cp /run/secrets/tok /got\n        CMD [\"cat\", \"/got\"]\n      secrets: [tok]\nsecrets:\n  tok: {file: ./tok.txt}\n",
    );
    std::fs::write(p.dir.path().join("tok.txt"), "s3cret\n").unwrap();
    let o = compose(t, &p, &["build"]);
    if t.is_dockerd() {
        // The classic build API carries no secrets: refused before anything is sent.
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("--secret needs wharfd"),
            "{}",
            stderr(&o)
        );
        return;
    }
    assert!(o.status.success(), "{}", stderr(&o));
    let got = t.ok(&["run", "--rm", "ct-s"]);
    assert_eq!(got, "s3cret\n");
    t.ok(&["rmi", "ct-s"]);
}

scenario!(secrets_and_configs);
fn secrets_and_configs(t: &Target) {
    let p = Project::new(
        r#"
services:
  s:
    image: busybox
    command: sleep 300
    stop_grace_period: 1s
    secrets: [f, {source: e, target: tok, uid: "100", mode: 0400}]
    configs: [c, {source: inline, target: /etc/app.ini}]
secrets:
  f: {file: ./f.txt}
  e: {environment: TOKEN}
configs:
  c: {file: ./c.txt}
  inline: {content: "k=v"}
"#,
    );
    std::fs::write(p.dir.path().join("f.txt"), "from-file\n").unwrap();
    std::fs::write(p.dir.path().join("c.txt"), "conf\n").unwrap();
    std::fs::write(p.dir.path().join(".env"), "TOKEN=t0k\n").unwrap();
    compose_ok(t, &p, &["up", "-d"]);
    let exec = |cmd: &str| compose_ok(t, &p, &["exec", "-T", "s", "sh", "-c", cmd]).0;
    // A file: bound read-only at /run/secrets/<name> (configs at /<name>).
    assert_eq!(exec("cat /run/secrets/f /c"), "from-file\nconf\n");
    let o = compose(
        t,
        &p,
        &["exec", "-T", "s", "sh", "-c", "echo x > /run/secrets/f"],
    );
    assert!(!o.status.success());
    // From the environment or inline: copied in, with the uid and mode asked for.
    assert_eq!(
        exec("cat /run/secrets/tok; echo; stat -c '%a %u' /run/secrets/tok; cat /etc/app.ini; echo; stat -c %a /etc/app.ini"),
        "t0k\n400 100\nk=v\n444\n"
    );
    compose_ok(t, &p, &["down"]);
}

scenario!(run_one_offs_and_cp);
fn run_one_offs_and_cp(t: &Target) {
    let p = Project::new("services:\n  db:\n    image: busybox\n    command: sleep 300\n    stop_grace_period: 1s\n  app:\n    image: busybox\n    command: echo default\n    depends_on: [db]\n    environment: {FROM_FILE: f}\n    ports: ['127.0.0.1::80']\n");
    // --rm: its exit status, its output, the dependency up first, nothing left after.
    let o = compose(
        t,
        &p,
        &[
            "run",
            "--rm",
            "-T",
            "-e",
            "X=y",
            "app",
            "sh",
            "-c",
            "echo $FROM_FILE-$X; exit 3",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(stdout(&o), "f-y\n");
    assert!(
        stderr(&o).contains(" Container ct-db-1  Started\n"),
        "{}",
        stderr(&o)
    );
    let left = |t: &Target| {
        t.ok(&[
            "ps",
            "-aq",
            "--filter",
            "label=com.docker.compose.oneoff=True",
        ])
    };
    eventually("the --rm one-off is removed", || left(t).is_empty());
    // The image's command replaced, the entrypoint too.
    let o = compose(
        t,
        &p,
        &["run", "--rm", "-T", "--entrypoint", "echo", "app", "hi"],
    );
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(0), "hi\n"),
        "{}",
        stderr(&o)
    );
    let o = compose(t, &p, &["run", "--rm", "-T", "app"]);
    assert_eq!(stdout(&o), "default\n");
    // -d: named <project>-<service>-run-<12 hex>, labelled one-off, no published port.
    let (out, _) = compose_ok(t, &p, &["run", "-d", "app", "sleep", "300"]);
    let name = out.trim().to_string();
    let hex = name
        .strip_prefix("ct-app-run-")
        .unwrap_or_else(|| panic!("{name}"));
    assert!(
        hex.len() == 12 && hex.chars().all(|c| c.is_ascii_hexdigit()),
        "{name}"
    );
    let labels: serde_json::Value =
        serde_json::from_str(&t.ok(&["inspect", "-f", "{{json .Config.Labels}}", &name])).unwrap();
    assert_eq!(labels["com.docker.compose.oneoff"], "True");
    assert_eq!(labels["com.docker.compose.service"], "app");
    assert_eq!(t.ok(&["port", &name]), "");
    // A one-off is none of the service's containers.
    assert_eq!(compose_ok(t, &p, &["ps", "-q", "app"]).0, "");
    let (out, _) = compose_ok(
        t,
        &p,
        &[
            "run",
            "-d",
            "--name",
            "ct-named",
            "--service-ports",
            "app",
            "sleep",
            "300",
        ],
    );
    assert_eq!(out, "ct-named\n");
    assert_ne!(t.ok(&["port", "ct-named"]), "");
    // cp: to and from a service's container.
    let local = p.dir.path().join("in.txt");
    std::fs::write(&local, "copied\n").unwrap();
    compose_ok(t, &p, &["cp", local.to_str().unwrap(), "db:/tmp/in.txt"]);
    assert_eq!(
        compose_ok(t, &p, &["exec", "-T", "db", "cat", "/tmp/in.txt"]).0,
        "copied\n"
    );
    let back = p.dir.path().join("back.txt");
    compose_ok(t, &p, &["cp", "db:/tmp/in.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "copied\n");
    let o = compose(t, &p, &["cp", "app:/x", "/tmp/x"]);
    assert_eq!(stderr(&o), "service \"app\" is not running\n");
    // down takes the one-offs too; --no-deps starts nothing else.
    compose_ok(t, &p, &["down", "-t", "1"]);
    assert_eq!(t.ok(&["ps", "-aq"]), "");
    let o = compose(t, &p, &["run", "--rm", "-T", "--no-deps", "app", "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("ct-db-1"), "{}", stderr(&o));
    compose_ok(t, &p, &["down"]);
    assert_eq!(t.ok(&["ps", "-aq"]), "");
}

scenario!(events_json);
fn events_json(t: &Target) {
    let p = Project::new("services:\n  a:\n    image: busybox\n    command: sleep 300\n    stop_grace_period: 1s\n  b:\n    image: busybox\n    command: sleep 300\n    stop_grace_period: 1s\n");
    let file = p.file();
    let mut child = std::process::Command::new(common::WHARF)
        .args([
            "-H",
            &t.host(),
            "compose",
            "-f",
            &file,
            "-p",
            "ct",
            "events",
            "--json",
            "a",
        ])
        .env_remove("DOCKER_HOST")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout_pipe = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(stdout_pipe)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    // The subscription is made when the command starts: give it a moment, then act.
    std::thread::sleep(std::time::Duration::from_millis(500));
    compose_ok(t, &p, &["up", "-d"]);
    let mut got: Vec<serde_json::Value> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !got.iter().any(|v| v["action"] == "start") && std::time::Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            got.push(serde_json::from_str(&l).unwrap_or_else(|e| panic!("{l}: {e}")));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    compose_ok(t, &p, &["down", "-t", "1"]);
    let start = got
        .iter()
        .find(|v| v["action"] == "start")
        .unwrap_or_else(|| panic!("no start event: {got:?}"));
    // compose v2's object: sorted keys, the service, no compose labels in the attributes.
    let keys: Vec<&String> = start.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["action", "attributes", "id", "service", "time", "type"]
    );
    assert_eq!(start["service"], "a");
    assert_eq!(start["type"], "container");
    assert_eq!(start["attributes"]["name"], "ct-a-1");
    assert!(!start["attributes"]
        .as_object()
        .unwrap()
        .keys()
        .any(|k| k.starts_with("com.docker.compose.")));
    assert!(start["time"].as_str().unwrap().ends_with('Z'));
    // Only the service asked for.
    assert!(got.iter().all(|v| v["service"] == "a"), "{got:?}");
}

scenario!(watch_syncs_and_rebuilds);
fn watch_syncs_and_rebuilds(t: &Target) {
    let p = Project::new(
        r#"
services:
  app:
    image: busybox
    command: sleep 300
    stop_grace_period: 1s
    develop:
      watch:
        - {action: sync, path: ./src, target: /app/src, ignore: ['*.tmp'], initial_sync: true}
  hooked:
    image: busybox
    command: sleep 300
    stop_grace_period: 1s
    develop:
      watch:
        - action: sync+exec
          path: ./hook
          target: /hook
          include: ['*.conf']
          exec:
            command: sh -c 'echo "$$H-$$(cat /hook/x.conf)" > /ran'
            environment: {H: hook}
  built:
    build: ./ctx
    stop_grace_period: 1s
    develop:
      watch:
        - {action: rebuild, path: ./ctx}
"#,
    );
    let d = p.dir.path();
    std::fs::create_dir_all(d.join("src")).unwrap();
    std::fs::create_dir_all(d.join("hook")).unwrap();
    std::fs::create_dir_all(d.join("ctx")).unwrap();
    // There before the watch: copied by the initial sync (but not the ignored one).
    std::fs::write(d.join("src/pre.txt"), "pre\n").unwrap();
    std::fs::write(d.join("src/pre.tmp"), "no\n").unwrap();
    std::fs::write(
        d.join("ctx/Dockerfile"),
        "FROM busybox\nCOPY v.txt /v.txt\nCMD [\"sleep\", \"300\"]\n",
    )
    .unwrap();
    std::fs::write(d.join("ctx/v.txt"), "v1\n").unwrap();
    let file = p.file();
    let mut child = std::process::Command::new(common::WHARF)
        .args(["-H", &t.host(), "compose", "-f", &file, "-p", "ct", "watch"])
        .env_remove("DOCKER_HOST")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let err_pipe = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(err_pipe)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let wait_line = |want: &str, log: &mut Vec<String>| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
                let hit = l.contains(want);
                log.push(l);
                if hit {
                    return true;
                }
            }
        }
        false
    };
    let ok = wait_line("Watch enabled", &mut log);
    let run = || -> Result<(), String> {
        if !ok {
            return Err(format!("no 'Watch enabled': {log:?}"));
        }
        let cat = |svc: &str, f: &str| {
            let o = compose(t, &p, &["exec", "-T", svc, "cat", f]);
            stdout(&o)
        };
        // initial_sync: done before "Watch enabled".
        if cat("app", "/app/src/pre.txt") != "pre\n" || !cat("app", "/app/src/pre.tmp").is_empty() {
            return Err("initial_sync did not copy src/pre.txt alone".into());
        }
        // sync+exec: the included file synced, then the command run (with its environment)
        // after the sync; a file the include patterns leave out is neither synced nor a trigger.
        std::fs::write(d.join("hook/skip.txt"), "no\n").unwrap();
        std::fs::write(d.join("hook/x.conf"), "v1").unwrap();
        eventually("the sync+exec hook ran after the sync", || {
            cat("hooked", "/ran") == "hook-v1\n"
        });
        if !cat("hooked", "/hook/skip.txt").is_empty() {
            return Err("a file outside include was synced".into());
        }
        // sync: a new file (in a new directory) appears in the container; an ignored one not.
        std::fs::write(d.join("src/skip.tmp"), "no\n").unwrap();
        std::fs::create_dir_all(d.join("src/sub")).unwrap();
        std::fs::write(d.join("src/sub/a.txt"), "synced\n").unwrap();
        eventually("src/sub/a.txt synced", || {
            cat("app", "/app/src/sub/a.txt") == "synced\n"
        });
        if !cat("app", "/app/src/skip.tmp").is_empty() {
            return Err("an ignored file was synced".into());
        }
        // A deleted file is deleted there.
        std::fs::remove_file(d.join("src/sub/a.txt")).unwrap();
        eventually("src/sub/a.txt deleted", || {
            cat("app", "/app/src/sub/a.txt").is_empty()
        });
        // rebuild: a change in the context rebuilds the image and recreates the container.
        let before = id_of(t, "ct-built-1");
        std::fs::write(d.join("ctx/v.txt"), "v2\n").unwrap();
        eventually("ct-built-1 recreated with v2", || {
            cat("built", "/v.txt") == "v2\n"
        });
        if id_of(t, "ct-built-1") == before {
            return Err("not recreated".into());
        }
        Ok(())
    };
    // (`eventually` panics: the watcher is stopped and the project taken down all the same.)
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
    let _ = child.kill();
    let _ = child.wait();
    let rest: Vec<String> = rx.try_iter().collect();
    compose_ok(t, &p, &["down", "-t", "1"]);
    let _ = t.wharf(&["rmi", "ct-built"]);
    match r {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e}\nwatch said: {log:?} {rest:?}"),
        Err(_) => panic!("watch said: {log:?} {rest:?}"),
    }
}
