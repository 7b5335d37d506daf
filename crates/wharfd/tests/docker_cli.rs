//! End-to-end: the real docker CLI (28.2) against wharfd.

mod common;

use common::{eventually, stderr, stdout, Daemon, Place};

#[test]
fn run_rm_echo_prints_and_exit_codes_propagate() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let o = d.docker(&["run", "--rm", "--network", "none", "busybox", "echo", "hi"]);
    assert_eq!(stdout(&o), "hi\n", "stderr: {}", stderr(&o));
    assert!(o.status.success());

    let o = d.docker(&[
        "run",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");

    let o = d.docker(&["run", "--rm", "--network", "none", "busybox", "nosuch"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("executable file not found"),
        "{}",
        stderr(&o)
    );

    // --rm removed its containers; the two others remain.
    let all = d.ok(&["ps", "-a", "-q"]);
    assert_eq!(all.lines().count(), 1, "{all}");
}

#[test]
fn stdin_is_piped_to_the_container() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let o = d.docker_stdin(
        &[
            "run",
            "--rm",
            "-i",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "cat; echo done",
        ],
        Some(b"hello through stdin\n"),
    );
    assert_eq!(stdout(&o), "hello through stdin\ndone\n", "{}", stderr(&o));
}

#[test]
fn detached_container_logs_exec_top_inspect_stop_rm() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let id = d.ok(&[
        "run", "-d", "--name", "ticker", "--network", "none", "busybox", "sh", "-c",
        "trap 'echo bye; exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
    ]);
    assert_eq!(id.trim().len(), 64);
    eventually("two log lines", || {
        d.ok(&["logs", "ticker"]).lines().count() >= 2
    });
    assert!(d.ok(&["logs", "ticker"]).starts_with("tick 0\ntick 1\n"));
    assert_eq!(d.ok(&["logs", "--tail", "1", "ticker"]).lines().count(), 1);

    let o = d.docker(&[
        "exec",
        "ticker",
        "sh",
        "-c",
        "echo from exec; hostname; exit 5",
    ]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("from exec\n{}\n", &id.trim()[..12]));
    // The client inspects the exec as soon as its stream ends: the exit must be recorded by
    // then (it raced and read 0 now and then: 25 tries, each exit code different).
    for code in 1..=25 {
        let o = d.docker(&["exec", "ticker", "sh", "-c", &format!("exit {code}")]);
        assert_eq!(o.status.code(), Some(code), "{}", stderr(&o));
    }

    let o = d.docker(&["exec", "ticker", "nosuch"]);
    assert_eq!(o.status.code(), Some(127));
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert!(text.contains("executable file not found"), "{text}");

    let top = d.ok(&["top", "ticker"]);
    assert!(top.contains("while true"), "{top}");

    let st = d.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.Name}} {{.Config.Image}}",
        "ticker",
    ]);
    assert_eq!(st.trim(), "running /ticker busybox");
    let ps = d.ok(&["ps", "--format", "{{.Names}}|{{.Command}}"]);
    assert!(ps.starts_with("ticker|"), "{ps}");

    let o = d.docker(&["rm", "ticker"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("stop the container before removing"),
        "{}",
        stderr(&o)
    );

    d.ok(&["stop", "ticker"]);
    let st = d.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        "ticker",
    ]);
    assert_eq!(st.trim(), "exited 0", "the TERM trap ran");
    assert!(d.ok(&["logs", "ticker"]).ends_with("bye\n"));
    d.ok(&["rm", "ticker"]);
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    let o = d.docker(&["inspect", "ticker"]);
    assert!(!o.status.success());
}

#[test]
fn kill_gives_137_and_wait_reports_it() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "sleeper",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ]);
    d.ok(&["kill", "sleeper"]);
    assert_eq!(d.ok(&["wait", "sleeper"]).trim(), "137");
    let o = d.docker(&["kill", "sleeper"]);
    assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));
}

/// wharfd in the host's network namespace, in one of its own, and dockerd in one of its own
/// (see network.rs, which runs every network scenario so).
mod default_bridge_gives_an_address_and_containers_reach_each_other {
    use super::*;
    #[test]
    fn host() {
        require_env!();
        super::default_bridge_gives_an_address_and_containers_reach_each_other(Place::Host);
    }
    #[test]
    fn netns() {
        require_env!();
        super::default_bridge_gives_an_address_and_containers_reach_each_other(Place::Netns);
    }
    #[test]
    fn dockerd_netns() {
        require_env!();
        super::default_bridge_gives_an_address_and_containers_reach_each_other(Place::DockerdNetns);
    }
}

fn default_bridge_gives_an_address_and_containers_reach_each_other(place: Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    // The headline: no --network flag at all.
    assert_eq!(d.ok(&["run", "--rm", "busybox", "echo", "hi"]), "hi\n");

    let net = format!("{}", d.bridge.subnet.network());
    let prefix = &net[..net.rfind('.').unwrap()];
    let addr = d.ok(&[
        "run", "--rm", "busybox", "ip", "-4", "-o", "addr", "show", "eth0",
    ]);
    assert!(addr.contains(&format!("inet {prefix}.")), "{addr}");
    let gw = d.bridge.subnet.gateway.to_string();
    let o = d.docker(&["run", "--rm", "busybox", "ping", "-c", "1", "-W", "2", &gw]);
    assert!(
        o.status.success(),
        "gateway unreachable: {}{}",
        stdout(&o),
        stderr(&o)
    );

    let web = d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /www && echo hello-web > /www/index.html && exec httpd -f -p 8080 -h /www",
    ]);
    let ip = d.ok(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.IPAddress}}",
        "web",
    ]);
    let ip = ip.trim();
    assert!(ip.starts_with(prefix), "{ip}");
    // busybox-static's wget crashes in its static NSS lookups; nc speaks HTTP well enough.
    let fetch = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} 8080");
    let mut page = String::new();
    eventually("the web container answers", || {
        let o = d.docker(&["run", "--rm", "busybox", "sh", "-c", &fetch]);
        page = stdout(&o);
        page.contains("200 OK")
    });
    assert!(page.ends_with("\r\n\r\nhello-web\n"), "{page}");
    let hosts = d.ok(&["exec", "web", "cat", "/etc/hosts"]);
    assert!(
        hosts.contains(&format!("{ip}\t{}", &web.trim()[..12])),
        "{hosts}"
    );

    d.ok(&["rm", "-f", "web"]);
    // The pair goes with the container's netns, which the kernel tears down in the
    // background (wharfd does not wait for its RCU grace period): poll, where the daemon
    // runs.
    eventually(&format!("no port left on {}", d.bridge.name), || {
        d.host_run("ip", &["-o", "link", "show", "master", &d.bridge.name])
            .trim()
            .is_empty()
    });
}

#[test]
fn containers_survive_a_daemon_kill_and_are_found_again() {
    require_env!();
    let mut d = Daemon::start();
    d.busybox();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "survivor",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo n $i; i=$((i+1)); sleep 0.1; done",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "short",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "sleep 0.5; exit 7",
    ]);
    d.kill9();
    let log = d.dir.path().join("data/containers");
    let count_lines = || -> usize {
        std::fs::read_dir(&log)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter_map(|p| std::fs::read_dir(&p).ok().map(|rd| (p, rd)))
            .flat_map(|(_, rd)| rd.flatten().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with("-json.log"))
            .map(|p| {
                std::fs::read_to_string(p)
                    .unwrap_or_default()
                    .lines()
                    .count()
            })
            .sum()
    };
    let before = count_lines();
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert!(
        count_lines() > before,
        "the container kept logging while wharfd was down"
    );
    d.spawn();
    let st = d.ok(&["inspect", "--format", "{{.State.Status}}", "survivor"]);
    assert_eq!(st.trim(), "running");
    let st = d.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        "short",
    ]);
    assert_eq!(
        st.trim(),
        "exited 7",
        "the exit that happened while wharfd was down is recorded"
    );
    d.ok(&["kill", "survivor"]);
    assert_eq!(d.ok(&["wait", "survivor"]).trim(), "137");
}

#[test]
fn images_import_list_inspect_tag_rmi() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let ls = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(ls.trim(), "busybox:latest");
    d.ok(&["tag", "busybox", "localhost:5000/tools/bb:1"]);
    let tags = d.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoTags}}",
        "busybox",
    ]);
    assert!(
        tags.contains("localhost:5000/tools/bb:1") && tags.contains("busybox:latest"),
        "{tags}"
    );
    let o = d.ok(&["rmi", "localhost:5000/tools/bb:1"]);
    assert!(o.contains("Untagged: localhost:5000/tools/bb:1"), "{o}");
    d.ok(&[
        "create",
        "--name",
        "user",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    let o = d.docker(&["rmi", "busybox"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("is using its referenced image"),
        "{}",
        stderr(&o)
    );
    d.ok(&["rm", "user"]);
    let o = d.ok(&["rmi", "busybox"]);
    assert!(o.contains("Deleted: sha256:"), "{o}");
    assert_eq!(d.ok(&["images", "-q"]), "");
}

/// Runs `docker <args>` under a pseudo-terminal (util-linux `script`), typing `input`.
fn docker_in_pty(d: &Daemon, args: &str, input: &str) -> std::process::Output {
    use std::io::Write;
    let cmd = format!("{} -H {} {args}", common::DOCKER, d.host());
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let writer = std::thread::spawn(move || {
        // Give the shell its prompt first, then keep stdin open until it exits.
        std::thread::sleep(std::time::Duration::from_millis(500));
        let _ = stdin.write_all(input.as_bytes());
        std::thread::sleep(std::time::Duration::from_secs(2));
    });
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    out
}

#[test]
fn run_it_and_exec_it_get_an_interactive_shell_on_a_tty() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let o = docker_in_pty(
        &d,
        "run -it --rm --network none busybox sh",
        "echo $((40+2)); tty; exit 3\n",
    );
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(3), "{text}{}", stderr(&o));
    assert!(text.contains("42\r\n"), "{text}");
    assert!(text.contains("/dev/pts/0"), "{text}");

    d.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ]);
    let o = docker_in_pty(&d, "exec -it box sh", "echo in-$((1+1)); tty; exit 6\n");
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(6), "{text}{}", stderr(&o));
    assert!(text.contains("in-2"), "{text}");
    assert!(text.contains("/dev/pts/"), "{text}");
}

#[test]
fn detach_keys_leave_the_container_running_and_attach_gets_it_back() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    // ctrl-p ctrl-q (0x10 0x11): the client detaches, exit 0, the shell keeps running.
    let o = docker_in_pty(
        &d,
        "run -it --name det --network none busybox sh",
        "echo before\n\x10\x11",
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.Running}}", "det"])
            .trim(),
        "true",
        "detaching must not end the container"
    );
    let o = docker_in_pty(&d, "attach det", "echo again-$((2+3)); exit 4\n");
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(4), "{text}{}", stderr(&o));
    assert!(text.contains("again-5"), "{text}");
}

#[test]
fn restart_policy_on_failure_retries_then_stops() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo try; exit 1",
    ]);
    eventually("two restarts, then exited", || {
        d.ok(&[
            "inspect",
            "--format",
            "{{.RestartCount}} {{.State.Status}}",
            "flaky",
        ])
        .trim()
            == "2 exited"
    });
    assert_eq!(d.ok(&["logs", "flaky"]), "try\ntry\ntry\n");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "ok",
        "--restart",
        "on-failure",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    eventually("exited", || {
        d.ok(&["inspect", "--format", "{{.State.Status}}", "ok"])
            .trim()
            == "exited"
    });
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.RestartCount}}", "ok"])
            .trim(),
        "0"
    );
}

#[test]
fn diff_commit_history_and_run_the_committed_image() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    d.ok(&["run", "--name", "builder", "--network", "none", "busybox", "sh", "-c",
        "echo made-in-container > /hello.txt && rm /bin/ls && mkdir -p /srv/app && echo x > /srv/app/y"]);
    let diff = d.ok(&["diff", "builder"]);
    for line in [
        "A /hello.txt",
        "C /bin",
        "D /bin/ls",
        "A /srv",
        "A /srv/app/y",
    ] {
        assert!(
            diff.lines().any(|l| l == line),
            "missing {line:?} in:\n{diff}"
        );
    }
    let id = d.ok(&[
        "commit",
        "--change",
        "CMD [\"cat\", \"/hello.txt\"]",
        "-m",
        "add hello",
        "builder",
        "snap:v1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(
        d.ok(&["run", "--rm", "--network", "none", "snap:v1"]),
        "made-in-container\n"
    );
    let o = d.docker(&["run", "--rm", "--network", "none", "snap:v1", "ls", "/"]);
    assert_eq!(
        o.status.code(),
        Some(127),
        "the deleted file stays deleted: {}",
        stderr(&o)
    );
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "snap:v1",
            "cat",
            "/srv/app/y"
        ]),
        "x\n"
    );
    let hist = d.ok(&[
        "history",
        "--format",
        "{{.CreatedBy}}|{{.Comment}}",
        "snap:v1",
    ]);
    let lines: Vec<&str> = hist.lines().collect();
    assert_eq!(lines.len(), 2, "{hist}");
    assert!(
        lines[0].starts_with("sh -c echo made-in-container") && lines[0].ends_with("|add hello"),
        "{hist}"
    );
    assert!(lines[1].ends_with("|Imported from -"), "{hist}");
    // `system df -v`: the busybox layer is shared by both images; the committed one adds
    // its own small layer; busybox is used by the (stopped) builder.
    let df = d.ok(&[
        "system",
        "df",
        "-v",
        "--format",
        "{{range .Images}}{{.Repository}} {{.SharedSize}} {{.UniqueSize}} {{.Containers}}\n{{end}}",
    ]);
    let busybox_size = d.ok(&["image", "inspect", "-f", "{{.Size}}", "busybox"]);
    let shared: u64 = busybox_size.trim().parse().unwrap();
    let row = |repo: &str| -> Vec<String> {
        df.lines()
            .find(|l| l.starts_with(&format!("{repo} ")))
            .unwrap_or_else(|| panic!("no {repo} in {df}"))
            .split(' ')
            .map(String::from)
            .collect()
    };
    let bb = row("busybox");
    let snap = row("snap");
    assert_eq!(bb[3], "1", "{df}");
    assert_eq!(snap[3], "0", "{df}");
    assert_eq!(bb[2], "0B", "{df}");
    assert_ne!(snap[2], "0B", "{df}");
    assert!(bb[1].ends_with("MB") && shared > 1_000_000, "{df}");
    assert_eq!(bb[1], snap[1], "{df}");
}

#[test]
fn cp_both_ways_running_and_stopped() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let host = d.dir.path().join("cp");
    std::fs::create_dir_all(host.join("tree/sub")).unwrap();
    std::fs::write(host.join("tree/sub/f.txt"), "from the host\n").unwrap();
    std::fs::write(host.join("one.txt"), "single file\n").unwrap();

    d.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ]);
    d.ok(&["cp", host.join("one.txt").to_str().unwrap(), "box:/tmp/"]);
    d.ok(&["cp", host.join("tree").to_str().unwrap(), "box:/srv"]);
    assert_eq!(
        d.ok(&["exec", "box", "cat", "/tmp/one.txt"]),
        "single file\n"
    );
    assert_eq!(
        d.ok(&["exec", "box", "cat", "/srv/sub/f.txt"]),
        "from the host\n"
    );

    d.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "mkdir -p /out/deep && echo made inside > /out/deep/g.txt",
    ]);
    let back = host.join("back");
    d.ok(&["cp", "box:/out", back.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(back.join("deep/g.txt")).unwrap(),
        "made inside\n"
    );
    // Through the /bin -> busybox symlinks: the link itself comes out, not its target.
    let o = d.docker(&["cp", "box:/nonexistent", host.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Could not find the file /nonexistent"),
        "{}",
        stderr(&o)
    );

    // A stopped container is mounted for the copy.
    d.ok(&[
        "create",
        "--name",
        "idle",
        "--network",
        "none",
        "busybox",
        "cat",
        "/one.txt",
        "/data/sub/f.txt",
    ]);
    d.ok(&["cp", host.join("one.txt").to_str().unwrap(), "idle:/"]);
    // A destination that does not exist yet becomes the copied directory, as in docker.
    d.ok(&["cp", host.join("tree").to_str().unwrap(), "idle:/data"]);
    let o = d.docker(&["start", "-a", "idle"]);
    assert_eq!(stdout(&o), "single file\nfrom the host\n", "{}", stderr(&o));
}

#[test]
fn save_load_round_trip_keeps_ids_and_skopeo_reads_the_archive() {
    require_env!();
    let a = Daemon::start();
    a.busybox();
    a.ok(&[
        "run",
        "--name",
        "cc",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo layered > /second.txt",
    ]);
    a.ok(&["commit", "cc", "two:layers"]);
    let ids = a.ok(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
    ]);
    let archive = a.dir.path().join("images.tar");
    a.ok(&[
        "save",
        "-o",
        archive.to_str().unwrap(),
        "busybox",
        "two:layers",
    ]);

    if wharf_testkit::need_file("/usr/bin/skopeo", "skopeo") {
        let o = std::process::Command::new("skopeo")
            .args([
                "inspect",
                &format!("docker-archive:{}:two:layers", archive.display()),
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "skopeo: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["Layers"].as_array().unwrap().len(), 2, "{v}");
    }

    let b = Daemon::start();
    let o = b.docker(&["load", "-i", archive.to_str().unwrap()]);
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        out.contains("Loaded image: busybox:latest") && out.contains("Loaded image: two:layers"),
        "{out}"
    );
    let ids_b = b.ok(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
    ]);
    let sorted = |s: &str| {
        let mut v: Vec<String> = s.lines().map(String::from).collect();
        v.sort();
        v
    };
    assert_eq!(
        sorted(&ids),
        sorted(&ids_b),
        "the same image ids after save | load"
    );
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "two:layers",
            "cat",
            "/second.txt"
        ]),
        "layered\n"
    );

    // An OCI layout written by skopeo loads and runs.
    if wharf_testkit::need_file("/usr/bin/skopeo", "skopeo") {
        let oci = a.dir.path().join("oci");
        let o = std::process::Command::new("skopeo")
            .args([
                "copy",
                &format!("docker-archive:{}:two:layers", archive.display()),
                &format!("oci:{}:two", oci.display()),
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let tar = std::process::Command::new("tar")
            .arg("-C")
            .arg(&oci)
            .args(["-c", "."])
            .output()
            .unwrap();
        let c = Daemon::start();
        let o = c.docker_stdin(&["load"], Some(&tar.stdout));
        let out = stdout(&o);
        assert!(
            out.contains("Loaded image ID: sha256:"),
            "{out}{}",
            stderr(&o)
        );
        let id = out.trim().rsplit(' ').next().unwrap().to_string();
        assert_eq!(
            c.ok(&[
                "run",
                "--rm",
                "--network",
                "none",
                &id,
                "cat",
                "/second.txt"
            ]),
            "layered\n"
        );
    }

    // A corrupt archive is refused and leaves nothing behind.
    let mut bad = std::fs::read(&archive).unwrap();
    let n = bad.len();
    bad.truncate(n / 2);
    let c = Daemon::start();
    let o = c.docker_stdin(&["load"], Some(&bad));
    assert!(!o.status.success());
    assert_eq!(c.ok(&["images", "-q"]), "");
}

#[test]
fn events_pause_unpause_rename() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let since = chrono_now();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "pz",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ]);
    assert_eq!(d.ok(&["exec", "pz", "echo", "hi"]), "hi\n");
    d.ok(&["pause", "pz"]);
    assert_eq!(
        d.ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.Paused}}",
            "pz"
        ])
        .trim(),
        "paused true"
    );
    let o = d.docker(&["exec", "pz", "true"]);
    assert!(stderr(&o).contains("is paused"), "{}", stderr(&o));
    d.ok(&["unpause", "pz"]);
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.Status}}", "pz"])
            .trim(),
        "running"
    );
    d.ok(&["rename", "pz", "pz2"]);
    d.ok(&["rm", "-f", "pz2"]);
    let until = chrono_now() + 1;
    let ev = d.ok(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &until.to_string(),
        "--format",
        "{{.Type}} {{.Action}}",
        "--filter",
        "type=container",
    ]);
    let actions: Vec<&str> = ev.lines().collect();
    let want = [
        "container create",
        "container start",
        "container exec_create: echo hi",
        "container exec_start: echo hi",
        "container pause",
        "container unpause",
        "container rename",
        "container kill",
        "container die",
        "container destroy",
    ];
    let mut pos = 0;
    for a in &actions {
        if pos < want.len() && *a == want[pos] {
            pos += 1;
        }
    }
    assert_eq!(
        pos,
        want.len(),
        "events out of order or missing: {actions:?}"
    );
}

fn chrono_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn volumes_persist_copy_up_in_use_ro_binds_and_prune() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    d.ok(&["volume", "create", "--label", "team=db", "data"]);
    d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "data:/d",
        "busybox",
        "sh",
        "-c",
        "echo persisted > /d/f",
    ]);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "data:/d",
            "busybox",
            "cat",
            "/d/f"
        ]),
        "persisted\n"
    );
    let mp = d.ok(&[
        "volume",
        "inspect",
        "--format",
        "{{.Mountpoint}} {{.Labels.team}}",
        "data",
    ]);
    assert!(mp.trim().ends_with("/volumes/data/_data db"), "{mp}");

    d.ok(&[
        "create",
        "--name",
        "user",
        "--network",
        "none",
        "-v",
        "data:/d",
        "busybox",
        "true",
    ]);
    let o = d.docker(&["volume", "rm", "data"]);
    assert!(stderr(&o).contains("volume is in use"), "{}", stderr(&o));
    let mounts = d.ok(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}}{{end}}",
        "user",
    ]);
    assert_eq!(mounts.trim(), "volume data /d true");
    d.ok(&["rm", "user"]);
    d.ok(&["volume", "rm", "data"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "");

    // Image content at a VOLUME path is copied into a new volume; anonymous volumes go with rm -v.
    d.ok(&[
        "run",
        "--name",
        "seed",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "mkdir /seed && echo from-image > /seed/s",
    ]);
    d.ok(&["commit", "--change", "VOLUME /seed", "seed", "seeded"]);
    d.ok(&["rm", "seed"]);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "named:/seed",
            "seeded",
            "cat",
            "/seed/s"
        ]),
        "from-image\n"
    );
    d.ok(&[
        "run",
        "--name",
        "anon",
        "--network",
        "none",
        "seeded",
        "cat",
        "/seed/s",
    ]);
    assert_eq!(
        d.ok(&["volume", "ls", "-q"]).lines().count(),
        2,
        "named + one anonymous"
    );
    d.ok(&["rm", "-v", "anon"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), "named");
    d.ok(&["run", "--rm", "--network", "none", "seeded", "true"]);
    assert_eq!(
        d.ok(&["volume", "ls", "-q"]).trim(),
        "named",
        "--rm removes anonymous volumes"
    );
    d.ok(&[
        "run",
        "--name",
        "keep",
        "--network",
        "none",
        "-v",
        "/scratch",
        "busybox",
        "true",
    ]);
    d.ok(&["volume", "prune", "-f"]);
    assert_eq!(
        d.ok(&["volume", "ls", "-q"]).lines().count(),
        2,
        "prune keeps used and named volumes"
    );
    d.ok(&["rm", "keep"]);
    d.ok(&["volume", "prune", "-f"]);
    assert_eq!(
        d.ok(&["volume", "ls", "-q"]).trim(),
        "named",
        "anonymous unused volume pruned"
    );

    // A read-only bind refuses writes; a missing host path is created for -v.
    let host = d.dir.path().join("hostdir/new");
    let spec = format!("{}:/h:ro", host.display());
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &spec,
        "busybox",
        "touch",
        "/h/x",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    assert!(host.is_dir());
}

#[test]
fn stats_no_stream_reports_memory_and_pids() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--network",
        "none",
        "-m",
        "64m",
        "busybox",
        "sh",
        "-c",
        "sleep 100 & sleep 100 & wait",
    ]);
    let out = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.MemUsage}}|{{.PIDs}}",
        "busy",
    ]);
    let f: Vec<&str> = out.trim().split('|').collect();
    assert_eq!(f[0], "busy", "{out}");
    assert!(f[1].ends_with("/ 64MiB"), "the memory limit shows: {out}");
    assert_eq!(f[2], "3", "sh and two sleeps: {out}");
}

#[test]
fn update_changes_limits_of_a_running_container_and_its_restart_policy() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "up",
        "--network",
        "none",
        "-m",
        "64m",
        "busybox",
        "sleep",
        "100",
    ]);
    d.ok(&[
        "update",
        "--memory",
        "96m",
        "--memory-swap",
        "-1",
        "--pids-limit",
        "50",
        "--restart",
        "unless-stopped",
        "up",
    ]);
    let f = d.ok(&[
        "inspect",
        "--format",
        "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}",
        "up",
    ]);
    assert_eq!(f.trim(), "100663296 50 unless-stopped");
    // The running container's cgroup has the new limits (cgroup v1 here, v2 elsewhere).
    let cg = format!(
        "{}/{}",
        d.cgroup_parent,
        d.ok(&["inspect", "--format", "{{.Id}}", "up"]).trim()
    );
    let v1 = format!("/sys/fs/cgroup/memory{cg}/memory.limit_in_bytes");
    let v2 = format!("/sys/fs/cgroup{cg}/memory.max");
    let limit = std::fs::read_to_string(&v1)
        .or_else(|_| std::fs::read_to_string(&v2))
        .unwrap();
    assert_eq!(limit.trim(), "100663296");
    let pids = std::fs::read_to_string(format!("/sys/fs/cgroup/pids{cg}/pids.max"))
        .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup{cg}/pids.max")))
        .unwrap();
    assert_eq!(pids.trim(), "50");
}

#[test]
fn run_flags_take_effect_inside_the_container() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let run = |args: &[&str]| run_rm_none(&d, args);
    let out = |args: &[&str]| out_rm_none(&d, args);
    assert_eq!(
        out(&[
            "-u",
            "nobody",
            "-w",
            "/tmp",
            "-e",
            "A=1",
            "-h",
            "myhost",
            "busybox",
            "sh",
            "-c",
            "id -u; pwd; echo $A; hostname"
        ]),
        "65534\n/tmp\n1\nmyhost\n"
    );
    let o = run(&["--read-only", "busybox", "touch", "/x"]);
    assert!(
        !o.status.success() && stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        out(&[
            "--read-only",
            "--tmpfs",
            "/t:size=1m",
            "busybox",
            "sh",
            "-c",
            "touch /t/ok && df -k /t | tail -1 | awk '{print $2}'"
        ]),
        "1024\n"
    );
    let o = run(&["--cap-drop", "CHOWN", "busybox", "chown", "nobody", "/tmp"]);
    assert!(!o.status.success(), "chown without CAP_CHOWN must fail");
    assert!(run(&["busybox", "chown", "nobody", "/tmp"])
        .status
        .success());
    assert_eq!(
        out(&[
            "--ulimit",
            "nofile=100:100",
            "busybox",
            "sh",
            "-c",
            "ulimit -n"
        ]),
        "100\n"
    );
    let caps = |args: &[&str]| -> String {
        let mut a = args.to_vec();
        a.extend_from_slice(&["busybox", "sh", "-c", "grep CapEff /proc/self/status"]);
        out(&a)
    };
    // Privileged: everything the host (our own bounding set) can grant.
    let bnd = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = bnd
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(caps(&["--privileged"]).trim(), format!("CapEff:\t{bnd}"));
    assert!(
        caps(&[]).contains("00000000a80425fb"),
        "Docker's default capability set: {}",
        caps(&[])
    );
    // Resource flags reach the cgroup.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "lim",
        "--network",
        "none",
        "--cpus",
        "0.5",
        "--pids-limit",
        "20",
        "busybox",
        "sleep",
        "100",
    ]);
    let id = d.ok(&["inspect", "--format", "{{.Id}}", "lim"]);
    let cg = format!("{}/{}", d.cgroup_parent, id.trim());
    let quota = std::fs::read_to_string(format!("/sys/fs/cgroup/cpu{cg}/cpu.cfs_quota_us"))
        .or_else(|_| std::fs::read_to_string(format!("/sys/fs/cgroup{cg}/cpu.max")))
        .unwrap();
    assert!(
        quota.trim() == "50000" || quota.starts_with("50000 "),
        "{quota}"
    );
}

#[test]
fn export_and_json_file_log_rotation_and_timestamps() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    d.ok(&[
        "run",
        "--name",
        "ex",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo exported > /marker",
    ]);
    let tar = d.dir.path().join("ex.tar");
    d.ok(&["export", "-o", tar.to_str().unwrap(), "ex"]);
    let list = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar)
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&list.stdout);
    assert!(
        names.lines().any(|l| l == "marker") && names.lines().any(|l| l == "bin/busybox"),
        "{names}"
    );

    d.ok(&[
        "run",
        "--name",
        "chatty",
        "--network",
        "none",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done",
    ]);
    let log_path = d.ok(&["inspect", "--format", "{{.LogPath}}", "chatty"]);
    let log_path = std::path::PathBuf::from(log_path.trim());
    assert!(std::fs::metadata(&log_path).unwrap().len() <= 1024);
    assert!(
        log_path.with_extension("log.1").exists(),
        "rotated once at least"
    );
    assert!(
        !log_path.with_extension("log.2").exists(),
        "max-file=2 keeps two files"
    );
    let logs = d.ok(&["logs", "chatty"]);
    assert!(
        logs.ends_with("line-199\n"),
        "the newest lines are kept: {logs}"
    );
    let ts = d.ok(&["logs", "-t", "--tail", "1", "chatty"]);
    assert!(ts.starts_with("20") && ts.contains("Z line-199"), "{ts}");
    let later = d.ok(&["logs", "--since", "2999-01-01T00:00:00Z", "chatty"]);
    assert_eq!(later, "");
}

#[test]
fn image_prune_removes_dangling_then_unused() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    // An untagged (dangling) image: the busybox rootfs with one more change.
    d.ok(&[
        "run",
        "--name",
        "kk",
        "--network",
        "none",
        "busybox",
        "touch",
        "/k",
    ]);
    let dangling = d.ok(&["commit", "kk"]);
    d.ok(&["rm", "kk"]);
    d.ok(&["tag", "busybox", "spare:1"]);
    d.ok(&[
        "run",
        "--name",
        "uses",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    let out = d.ok(&["image", "prune", "-f"]);
    assert!(
        out.contains(&format!("deleted: {}", dangling.trim())),
        "{out}"
    );
    let ids: std::collections::BTreeSet<String> = d
        .ok(&["images", "-q", "--no-trunc"])
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(ids.len(), 1, "busybox (two tags) stays: {ids:?}");
    // -a: unused tagged images go too, but not one a container uses.
    d.ok(&["image", "prune", "-a", "-f"]);
    let left = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(left.contains("busybox:latest"), "{left}");
}

#[test]
fn pull_from_a_local_registry_fetches_only_missing_layers() {
    require_env!();
    let Some(reg) = common::LocalRegistry::start() else {
        return;
    };
    let d = Daemon::start();
    d.busybox();
    d.ok(&[
        "run",
        "--name",
        "top",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo upper > /upper",
    ]);
    d.ok(&["commit", "top", "child:1"]);
    let archive = d.dir.path().join("both.tar");
    d.ok(&[
        "save",
        "-o",
        archive.to_str().unwrap(),
        "busybox",
        "child:1",
    ]);
    for (src, dst) in [
        ("busybox:latest", "test/base:1"),
        ("child:1", "test/child:1"),
    ] {
        let o = std::process::Command::new("skopeo")
            .args([
                "copy",
                "--dest-tls-verify=false",
                &format!("docker-archive:{}:{src}", archive.display()),
                &format!("docker://{}/{dst}", reg.addr),
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "skopeo push: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    let e = Daemon::start();
    let base = format!("{}/test/base:1", reg.addr);
    let child = format!("{}/test/child:1", reg.addr);
    let out = e.ok(&["pull", &base]);
    assert!(
        out.contains("Pull complete")
            && out.contains(&format!("Downloaded newer image for {base}")),
        "{out}"
    );
    // The child shares the base layer: only its own layer is fetched.
    let out = e.ok(&["pull", &child]);
    assert_eq!(out.matches("Already exists").count(), 1, "{out}");
    assert_eq!(out.matches("Pull complete").count(), 1, "{out}");
    assert!(e.ok(&["pull", &child]).contains("Image is up to date"));
    assert_eq!(
        e.ok(&["run", "--rm", "--network", "none", &child, "cat", "/upper"]),
        "upper\n"
    );
    // The same image ids as where they were built.
    assert_eq!(
        e.ok(&["image", "inspect", "--format", "{{.Id}}", &child]),
        d.ok(&["image", "inspect", "--format", "{{.Id}}", "child:1"])
    );
    // The pulled image is known by the digest the pull printed: RepoDigests, `images
    // --digests`, a run by digest; untagging its last tag drops the digest too.
    let digest = out_digest(&e.ok(&["pull", &base]));
    let by_digest = format!("{}/test/base@{digest}", reg.addr);
    assert_eq!(
        e.ok(&[
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            &base
        ])
        .trim(),
        format!("[\"{by_digest}\"]")
    );
    let listed = e.ok(&[
        "images",
        "--digests",
        "--format",
        "{{.Repository}} {{.Tag}} {{.Digest}}",
    ]);
    assert!(
        listed
            .lines()
            .any(|l| l == format!("{}/test/base 1 {digest}", reg.addr)),
        "{listed}"
    );
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            &by_digest,
            "echo",
            "by-digest"
        ]),
        "by-digest\n"
    );
    // `run` of an image that is not here pulls it first.
    let removed = e.ok(&["rmi", &base]);
    assert!(
        removed.contains(&format!("Untagged: {by_digest}")) && removed.contains("Deleted: "),
        "{removed}"
    );
    let o = e.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        &base,
        "echo",
        "auto-pulled",
    ]);
    assert_eq!(stdout(&o), "auto-pulled\n", "{}", stderr(&o));
    let o = e.docker(&["pull", &format!("{}/test/base:nosuch", reg.addr)]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("manifest unknown"), "{}", stderr(&o));
}

#[test]
fn push_to_a_local_registry_then_skopeo_and_another_wharfd_read_it() {
    require_env!();
    let Some(reg) = common::LocalRegistry::start() else {
        return;
    };
    let d = Daemon::start();
    d.busybox();
    d.ok(&[
        "run",
        "--name",
        "pp",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo pushed > /p",
    ]);
    let name = format!("{}/team/app:2", reg.addr);
    d.ok(&["commit", "pp", &name]);
    let out = d.ok(&["push", &name]);
    assert_eq!(out.matches("Pushed").count(), 2, "{out}");
    assert!(out.contains("2: digest: sha256:"), "{out}");
    // The pushed digest is recorded, as dockerd does.
    let pushed = out
        .split("2: digest: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();
    let repo = name.rsplit_once(':').unwrap().0;
    assert_eq!(
        d.ok(&[
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            &name
        ])
        .trim(),
        format!("[\"{repo}@{pushed}\"]")
    );
    let again = d.ok(&["push", &name]);
    assert_eq!(again.matches("Layer already exists").count(), 2, "{again}");

    let o = std::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{name}")])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 2, "{v}");

    let e = Daemon::start();
    e.ok(&["pull", &name]);
    assert_eq!(
        e.ok(&["run", "--rm", "--network", "none", &name, "cat", "/p"]),
        "pushed\n"
    );
    assert_eq!(
        e.ok(&["image", "inspect", "--format", "{{.Id}}", &name]),
        d.ok(&["image", "inspect", "--format", "{{.Id}}", &name])
    );
}

#[test]
fn init_runs_as_pid_1_forwards_stop_signals_and_keeps_exit_codes() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let o = d.ok(&[
        "run",
        "--rm",
        "--init",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$",
    ]);
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(
        lines[0], "/sbin/docker-init -- sh -c cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$ ",
        "{o}"
    );
    assert_ne!(lines[1], "1", "the command is not PID 1 under --init");
    let o = d.docker(&[
        "run",
        "--rm",
        "--init",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "exit 7",
    ]);
    assert_eq!(o.status.code(), Some(7));
    // `sleep` as PID 1 ignores SIGTERM (137 after the timeout); under the init it gets it (143).
    d.ok(&[
        "run",
        "-d",
        "--name",
        "plain",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "inited",
        "--init",
        "--network",
        "none",
        "busybox",
        "sleep",
        "100",
    ]);
    d.ok(&["stop", "-t", "1", "plain", "inited"]);
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.ExitCode}}", "plain"])
            .trim(),
        "137"
    );
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.ExitCode}}", "inited"])
            .trim(),
        "143"
    );
}

#[test]
fn namespace_modes_devices_and_a_failed_rm_start() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let run = |args: &[&str]| run_rm_none(&d, args);
    let out = |args: &[&str]| out_rm_none(&d, args);
    // A private cgroup namespace is rooted at the container's cgroup; the host's shows the
    // daemon's cgroup parent.
    let private = out(&[
        "--cgroupns",
        "private",
        "busybox",
        "cat",
        "/proc/self/cgroup",
    ]);
    assert!(
        private.lines().all(|l| l.ends_with(":/")),
        "private cgroupns: {private}"
    );
    let host = out(&["--cgroupns", "host", "busybox", "cat", "/proc/self/cgroup"]);
    assert!(
        host.lines().any(|l| l.contains(":/") && !l.ends_with(":/")),
        "host cgroupns: {host}"
    );
    // The container's /sys/fs/cgroup is its own cgroup, with its limits (the runtime moves
    // the init into the cgroup while the rootfs is built: the mount must not show the parent).
    assert_eq!(
        out(&[
            "-m",
            "64m",
            "busybox",
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
        ])
        .trim(),
        "67108864"
    );
    // --pid host sees the host's processes (this test's own pid among them).
    let ps = out(&["--pid", "host", "busybox", "ps", "-o", "pid"]);
    let me = std::process::id().to_string();
    assert!(ps.lines().any(|l| l.trim() == me), "pid {me} not in {ps}");
    let ps = out(&["busybox", "ps", "-o", "pid"]);
    assert_eq!(ps.lines().nth(1).map(str::trim), Some("1"), "{ps}");
    // --uts host keeps the host's name, and refuses a hostname of its own.
    let host_name = nix::unistd::gethostname().unwrap();
    assert_eq!(
        out(&["--uts", "host", "busybox", "hostname"]).trim(),
        host_name.to_string_lossy()
    );
    let o = run(&["--uts", "host", "-h", "x", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("hostname and the UTS mode"),
        "{}",
        stderr(&o)
    );
    // --ipc host shares the host's IPC namespace.
    let ipc = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    assert_eq!(
        out(&["--ipc", "host", "busybox", "readlink", "/proc/self/ns/ipc"]).trim(),
        ipc.to_string_lossy()
    );
    // --device: the node appears where asked, usable as the permissions say.
    assert_eq!(
        out(&[
            "--device",
            "/dev/null:/dev/mynull",
            "busybox",
            "sh",
            "-c",
            "stat -c '%t:%T' /dev/mynull; echo x > /dev/mynull && echo wrote",
        ]),
        "1:3\nwrote\n"
    );
    let o = run(&[
        "--device",
        "/dev/fuse:/dev/f:r",
        "busybox",
        "sh",
        "-c",
        "echo x > /dev/f",
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );
    // A start that fails (not a device) is a clear error, and `--rm` still removes the
    // container: the client waits for that, so this would hang without it.
    let o = run(&["--device", "/etc/passwd", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("not a device node"), "{}", stderr(&o));
    eventually("the failed --rm container is removed", || {
        d.ok(&["ps", "-aq"]).trim().is_empty()
    });
}

/// The digest in `docker pull`'s "Digest: sha256:..." line.
fn out_digest(pull_output: &str) -> String {
    pull_output
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap_or_else(|| panic!("no digest in {pull_output}"))
        .trim()
        .to_string()
}

/// `docker run --rm --network none <args>`.
fn run_rm_none(d: &Daemon, args: &[&str]) -> std::process::Output {
    let mut a = vec!["run", "--rm", "--network", "none"];
    a.extend_from_slice(args);
    d.docker(&a)
}

/// [`run_rm_none`] that must succeed: its stdout.
fn out_rm_none(d: &Daemon, args: &[&str]) -> String {
    let o = run_rm_none(d, args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    stdout(&o)
}
