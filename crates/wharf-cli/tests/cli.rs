//! End-to-end: the `wharf` client against a real wharfd, checking what it prints and its exit
//! statuses, and that it prints what the docker CLI prints against the same daemon.

mod common;

use common::{eventually, same_as_docker, stderr, stdout, Daemon};
use std::time::{Duration, Instant};

#[test]
fn containers_run_ps_inspect_logs_exec_stop_rm() {
    require_env!();
    let d = Daemon::start();
    d.busybox();

    // run --rm prints the command's output and nothing else.
    assert_eq!(d.ok(&["run", "--rm", "busybox", "echo", "hi"]), "hi\n");

    // run -d prints the full id.
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-l",
        "tier=front",
        "busybox",
        "sleep",
        "300",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");

    // ps: docker's header and columns; --format and .Label.
    let ps = d.ok(&["ps"]);
    let mut lines = ps.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("CONTAINER ID   IMAGE     COMMAND "),
        "{ps}"
    );
    assert!(header.contains("   CREATED "), "{ps}");
    assert!(header.contains("   STATUS"), "{ps}");
    assert!(header.ends_with("PORTS     NAMES"), "{ps}");
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(&format!("{}   busybox   \"sleep 300\"", &id[..12])),
        "{ps}"
    );
    assert!(row.contains("   Up "), "{ps}");
    assert!(row.ends_with("   web"), "{ps}");
    assert_eq!(d.ok(&["ps", "--format", "{{.Names}}"]), "web\n");
    assert_eq!(d.ok(&["ps", "-q"]), format!("{}\n", &id[..12]));
    assert_eq!(d.ok(&["ps", "-q", "--no-trunc"]), format!("{id}\n"));
    assert_eq!(
        d.ok(&[
            "container",
            "ls",
            "--format",
            "{{.Label \"tier\"}} {{.Labels}}"
        ]),
        "front tier=front\n"
    );
    let j: serde_json::Value =
        serde_json::from_str(d.ok(&["ps", "--format", "{{json .}}"]).trim()).unwrap();
    assert_eq!(j["Names"], "web");
    assert_eq!(j["State"], "running");

    // inspect --format, on the running container.
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.Status}}", "web"]),
        "running\n"
    );
    assert_eq!(
        d.ok(&[
            "container",
            "inspect",
            "-f",
            "{{.Config.Image}} {{json .Config.Cmd}}",
            "web"
        ]),
        "busybox [\"sleep\",\"300\"]\n"
    );
    let raw: serde_json::Value = serde_json::from_str(&d.ok(&["inspect", "web"])).unwrap();
    assert_eq!(raw[0]["Id"], id);

    // exec: output and exit status.
    assert_eq!(d.ok(&["exec", "web", "echo", "hello"]), "hello\n");
    let o = d.wharf(&["exec", "web", "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let o = d.wharf_stdin(&["exec", "-i", "web", "cat"], b"piped\n");
    assert_eq!(stdout(&o), "piped\n");

    // logs keep stdout and stderr apart.
    d.ok(&[
        "run",
        "--name",
        "talk",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    let o = d.wharf(&["logs", "talk"]);
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
    // --tail 1: the last line, of whichever stream the shim read last (two pipes).
    let o = d.wharf(&["logs", "--tail", "1", "talk"]);
    let last = format!("{}{}", stdout(&o), stderr(&o));
    assert!(last == "out\n" || last == "err\n", "{last}");

    // ps -a shows the exited one the way docker does.
    let all = d.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(all.contains("talk Exited (0) "), "{all}");

    // Same tables as docker's (times normalised by retrying until both agree).
    if common::have_docker() {
        for args in [
            &["ps"][..],
            &["ps", "-a"],
            &["ps", "-a", "--no-trunc"],
            &[
                "ps",
                "--format",
                "table {{.Names}}\t{{.Image}}\t{{.Command}}",
            ],
            &["inspect", "web"],
            &[
                "inspect",
                "--format",
                "{{.Name}} {{.HostConfig.NetworkMode}}",
                "web",
            ],
            &["top", "web"],
            &["logs", "talk"],
        ] {
            let (w, k) = same_as_docker(&d, args);
            assert_eq!(w, k, "wharf and docker differ for {args:?}");
        }
    }

    // stop and rm print the names they were given.
    assert_eq!(d.ok(&["stop", "-t", "1", "web"]), "web\n");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "web"]),
        "exited\n"
    );
    assert_eq!(d.ok(&["rm", "web", "talk"]), "web\ntalk\n");
    assert_eq!(d.ok(&["ps", "-aq"]), "");

    // A missing container: docker's message, exit 1.
    let o = d.wharf(&["rm", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Error response from daemon: No such container: nosuch\n"
    );
}

#[test]
fn images_tags_and_volumes() {
    require_env!();
    let d = Daemon::start();
    d.busybox();

    let images = d.ok(&["images"]);
    let mut l = images.lines();
    let header = l.next().unwrap();
    assert!(
        header.starts_with("REPOSITORY   TAG       IMAGE ID       CREATED"),
        "{images}"
    );
    assert!(header.ends_with("   SIZE"), "{images}");
    let row = l.next().unwrap();
    assert!(row.starts_with("busybox      latest    "), "{images}");

    d.ok(&["tag", "busybox", "mybox:1"]);
    let repos = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        repos.contains("mybox:1\n") && repos.contains("busybox:latest\n"),
        "{repos}"
    );
    // One line per tag, as docker 28 prints it.
    assert_eq!(d.ok(&["image", "ls", "-q"]).lines().count(), 2);
    if common::have_docker() {
        for args in [
            &["images"][..],
            &["image", "ls", "--no-trunc"],
            &["history", "busybox"],
        ] {
            let (w, k) = same_as_docker(&d, args);
            assert_eq!(w, k, "wharf and docker differ for {args:?}");
        }
    }
    assert_eq!(d.ok(&["rmi", "mybox:1"]), "Untagged: mybox:1\n");
    let o = d.wharf(&["rmi", "mybox:1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("Error response from daemon: "),
        "{}",
        stderr(&o)
    );

    // Volumes.
    assert_eq!(d.ok(&["volume", "create", "v1"]), "v1\n");
    assert_eq!(d.ok(&["volume", "create", "--name", "v2"]), "v2\n");
    assert_eq!(
        d.ok(&["volume", "ls"]),
        "DRIVER    VOLUME NAME\nlocal     v1\nlocal     v2\n"
    );
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "v1\nv2\n");
    assert_eq!(
        d.ok(&["volume", "inspect", "-f", "{{.Name}} {{.Driver}}", "v1"]),
        "v1 local\n"
    );
    if common::have_docker() {
        let (w, k) = same_as_docker(&d, &["volume", "inspect", "v1"]);
        assert_eq!(w, k);
    }
    assert_eq!(d.ok(&["volume", "rm", "v1", "v2"]), "v1\nv2\n");
    assert_eq!(d.ok(&["volume", "ls"]), "DRIVER    VOLUME NAME\n");
}

#[test]
fn exit_codes_and_stdin() {
    require_env!();
    let d = Daemon::start();
    d.busybox();

    let o = d.wharf(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));

    let o = d.wharf(&["run", "--rm", "busybox", "nosuchcommand"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("wharf: Error response from daemon: "),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).ends_with("\n\nRun 'wharf run --help' for more information\n"));

    let o = d.wharf(&["run", "--rm", "busybox", "/etc"]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));

    let o = d.wharf(&["run", "--rm", "wharf-no-such-image-xyz"]);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("Unable to find image 'wharf-no-such-image-xyz:latest' locally\n"),
        "{}",
        stderr(&o)
    );

    // Usage errors are 125, like docker's flag errors; unsupported docker flags say so.
    let o = d.wharf(&["ps", "--bogus"]);
    assert_eq!(o.status.code(), Some(125));
    let o = d.wharf(&["run", "--gpus", "all", "busybox"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("--gpus is not supported yet"),
        "{}",
        stderr(&o)
    );

    // stdin piping.
    let o = d.wharf_stdin(&["run", "-i", "--rm", "busybox", "cat"], b"hi\n");
    assert_eq!(stdout(&o), "hi\n", "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(0));

    // wait prints the exit status.
    let o = d.wharf(&["run", "--name", "w1", "busybox", "sh", "-c", "exit 4"]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(d.ok(&["wait", "w1"]), "4\n");

    // start -a returns the container's status.
    d.ok(&[
        "create",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo started; exit 2",
    ]);
    let o = d.wharf(&["start", "-a", "c1"]);
    assert_eq!(stdout(&o), "started\n");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn no_daemon_is_a_clear_error() {
    let o = std::process::Command::new(common::WHARF)
        .args(["-H", "unix:///nonexistent/wharf.sock", "ps"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Cannot connect to the wharf daemon at unix:///nonexistent/wharf.sock. Is wharfd running? Start it with: sudo wharfd\n"
    );
    let o = std::process::Command::new(common::WHARF)
        .args(["run", "busybox"])
        .env("WHARF_HOST", "unix:///nonexistent/w.sock")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).starts_with(
            "wharf: Cannot connect to the wharf daemon at unix:///nonexistent/w.sock."
        ),
        "{}",
        stderr(&o)
    );
    // completion scripts come without a daemon.
    let o = std::process::Command::new(common::WHARF)
        .args(["completion", "bash"])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(stdout(&o).contains("_wharf()"));
}

#[test]
fn interactive_tty() {
    require_env!();
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, OwnedFd};
    let d = Daemon::start();
    d.busybox();

    let ws = nix::pty::Winsize {
        ws_row: 30,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&ws), None).expect("openpty");
    let slave: OwnedFd = pty.slave;
    let mut child = std::process::Command::new(common::WHARF)
        .args(["-H", &d.host(), "run", "-it", "--rm", "busybox", "sh"])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap())
        .spawn()
        .unwrap();
    drop(slave);
    let master = std::fs::File::from(pty.master);
    let mut reader = master.try_clone().unwrap();
    let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out2 = out.clone();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            out2.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let text = || String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
    // Wait for the shell's prompt, then type.
    eventually("the shell prompt", || text().contains("# "));
    let mut w = master;
    w.write_all(b"stty size; echo hi-$((40+2))\r").unwrap();
    eventually("the echo", || text().contains("hi-42"));
    w.write_all(b"exit 6\r").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "wharf run -it did not end: {}",
            text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = w.as_raw_fd();
    drop(w);
    let _ = t.join();
    let all = text();
    assert_eq!(status.code(), Some(6), "{all}");
    assert!(
        all.contains("30 100"),
        "the terminal size reached the container: {all}"
    );
    assert!(all.contains("hi-42"), "{all}");
}
