//! End-to-end scenarios for every `wharf` command, each run twice: against wharfd (the
//! fixture in `common/`) and against a real dockerd started by the test on its own socket,
//! data-root and exec-root (skipped when Debian's docker.io is not installed). Every scenario
//! checks what `wharf` prints and its exit status, and `Target::same` checks that the docker
//! CLI prints the same against the same daemon. Containers use `--network none` because the
//! test dockerd runs without a bridge.

mod common;

use common::target::Target;
use common::{eventually, stderr, stdout};
use std::io::{BufRead, Read, Write};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// `scenario!(name)` (common/target.rs) runs `fn name(&Target)` against wharfd and dockerd.

const NONE: &str = "--network=none";

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

/// Splits a table line on runs of 3+ spaces (docker's tabwriter padding).
fn cells(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in line.split("   ") {
        let p = part.trim();
        if !p.is_empty() {
            out.push(p.to_string());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// run: output, the flags people use, exit statuses, stdin.

scenario!(run_flags_and_exit_codes);
fn run_flags_and_exit_codes(t: &Target) {
    assert_eq!(
        t.same(&["run", "--rm", NONE, "busybox", "echo", "hi"]),
        "hi\n"
    );
    // Environment, env-file, workdir, user, hostname, entrypoint.
    let dir = tempfile::tempdir().unwrap();
    let envf = dir.path().join("env");
    std::fs::write(&envf, "# comment\nB=two\n").unwrap();
    let envf = envf.to_str().unwrap();
    let args = [
        "run",
        "--rm",
        NONE,
        "-e",
        "A=one",
        "--env-file",
        envf,
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "-h",
        "myhost",
        "--entrypoint",
        "sh",
        "busybox",
        "-c",
        "echo $A $B $(pwd) $(id -u):$(id -g) $(hostname)",
    ];
    assert_eq!(t.same(&args), "one two /tmp 1000:1000 myhost\n");
    // --read-only, --tmpfs, -v, --mount, --cap-drop, --init, --privileged, resources.
    let vol = tempfile::tempdir().unwrap();
    std::fs::write(vol.path().join("f"), "from-host\n").unwrap();
    let bind = format!("{}:/h:ro", vol.path().display());
    let out = t.ok(&[
        "run",
        "--rm",
        NONE,
        "--read-only",
        "--tmpfs",
        "/scratch",
        "-v",
        &bind,
        "--mount",
        "type=tmpfs,destination=/mt",
        "--cap-drop",
        "CHOWN",
        "busybox",
        "sh",
        "-c",
        "touch /x 2>/dev/null && echo rw || echo ro; touch /scratch/y && echo tmpfs-ok; \
         cat /h/f; touch /h/g 2>/dev/null || echo bind-ro; touch /mt/z && echo mount-ok; \
         chown 1 /scratch/y 2>/dev/null || echo no-chown",
    ]);
    assert_eq!(
        out,
        "ro\ntmpfs-ok\nfrom-host\nbind-ro\nmount-ok\nno-chown\n"
    );
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            NONE,
            "--init",
            "busybox",
            "sh",
            "-c",
            "cat /proc/1/cmdline | tr '\\0' ' '"
        ]),
        "/sbin/docker-init -- sh -c cat /proc/1/cmdline | tr '\\0' ' ' "
    );
    let device: &[&str] = &["--device", "/dev/null:/dev/xnull"];
    let mut args = vec![
        "create",
        NONE,
        "--name",
        "limits",
        "-m",
        "512m",
        "--memory-swap",
        "1g",
        "--cpus",
        "1.5",
        "--cpu-shares",
        "512",
        "--cpuset-cpus",
        "0",
        "--pids-limit",
        "100",
        "--ulimit",
        "nofile=1024:2048",
        "--cap-add",
        "net_admin",
        "--security-opt",
        "no-new-privileges",
        "--restart",
        "on-failure:3",
        "--stop-signal",
        "SIGUSR1",
        "--stop-timeout",
        "7",
        "--log-driver",
        "json-file",
        "--log-opt",
        "max-size=1m",
        "-l",
        "a=b",
        "--platform",
        "linux/amd64",
        "--pull",
        "never",
    ];
    args.extend(device);
    args.extend(["busybox", "true"]);
    let id = t.ok(&args);
    assert_eq!(id.trim().len(), 64, "create prints the full id: {id}");
    assert_eq!(
        t.same(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} \
             {{.HostConfig.CpuShares}} {{.HostConfig.CpusetCpus}} {{.HostConfig.PidsLimit}} \
             {{range .HostConfig.Ulimits}}{{.Name}}={{.Soft}}:{{.Hard}}{{end}} {{.HostConfig.CapAdd}} \
             {{.HostConfig.SecurityOpt}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}} \
             {{.Config.StopSignal}} {{.Config.StopTimeout}} {{.HostConfig.LogConfig.Config}} \
             {{range .HostConfig.Devices}}{{.PathInContainer}}{{end}} {{.Config.Labels}}",
            "limits"
        ]),
        "536870912 1073741824 1500000000 512 0 100 nofile=1024:2048 [CAP_NET_ADMIN] \
         [no-new-privileges] on-failure:3 SIGUSR1 7 map[max-size:1m] /dev/xnull map[a:b]\n"
    );

    // Exit statuses: the container's own, 125/126/127 as docker.
    let o = t.wharf(&["run", "--rm", NONE, "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let (code, err) = t.same_error(&["run", "--rm", NONE, "busybox", "nosuchcommand"]);
    assert_eq!(code, 127);
    assert!(
        err.starts_with("wharf: Error response from daemon: "),
        "{err}"
    );
    assert!(
        err.ends_with("\n\nRun 'wharf run --help' for more information\n"),
        "{err}"
    );
    let (code, _) = t.same_error(&["run", "--rm", NONE, "busybox", "/etc"]);
    assert_eq!(code, 126);
    let (code, _) = t.same_error(&["run", "--rm", NONE, "--pull", "never", "nosuch-image"]);
    assert_eq!(code, 125);
    // Killed by a signal: 128+n, through wait.
    t.ok(&[
        "run", "-d", NONE, "--name", "killed", "busybox", "sleep", "300",
    ]);
    assert_eq!(t.ok(&["kill", "killed"]), "killed\n");
    assert_eq!(t.same(&["wait", "killed"]), "137\n");
    t.ok(&["rm", "killed"]);
    // create: daemon errors exit 1 without the hint (docker 28), flag values 125.
    let (code, err) = t.same_error(&["create", NONE, "--pull", "never", "nosuch-image"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("Error response from daemon: "), "{err}");
    let (_, err) = t.fails(125, &["run", "-m", "12x", "busybox"]);
    assert!(err.contains("12x"), "{err}");
    let (_, err) = t.fails(125, &["run", "-p", "99999:80", "busybox"]);
    assert!(err.contains("invalid hostPort: 99999"), "{err}");
    // Flags docker has and wharf does not: refused by name.
    let (_, err) = t.fails(125, &["run", "--gpus", "all", "busybox"]);
    assert!(err.contains("--gpus is not supported yet"), "{err}");
    t.fails(125, &["run", "--no-such-flag", "busybox"]);
    // Missing arguments: 1, as docker.
    t.fails(1, &["run"]);

    // stdin piping, and its end closing the container's stdin.
    let o = t.wharf_stdin(&["run", "-i", "--rm", NONE, "busybox", "cat"], b"hi\n");
    assert_eq!((stdout(&o).as_str(), o.status.code()), ("hi\n", Some(0)));
    let o = t.wharf_stdin(
        &["run", "-i", "--rm", NONE, "busybox", "wc", "-l"],
        b"a\nb\nc\n",
    );
    assert_eq!(stdout(&o).trim(), "3");
    // -d prints the id; --rm removes the container after its exit.
    let id = t.ok(&["run", "-d", NONE, "--rm", "busybox", "true"]);
    let id = id.trim();
    assert_eq!(id.len(), 64);
    eventually("the --rm container to go", || {
        !t.wharf(&["inspect", id]).status.success()
    });

    // Signals wharf receives go to the container (--sig-proxy, on by default).
    let mut child = Command::new(common::WHARF)
        .args(["-H", &t.host(), "run", "--rm", NONE, "busybox", "sh", "-c"])
        .arg("trap 'echo got-usr1; exit 3' USR1; echo ready; while :; do sleep 0.1; done")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "got-usr1\n");
    assert_eq!(child.wait().unwrap().code(), Some(3));
}

// ---------------------------------------------------------------------------------------
// The lifecycle: create/start/stop/restart/kill/pause/unpause/rename/wait/rm/prune, with ps.

scenario!(lifecycle_and_ps);
fn lifecycle_and_ps(t: &Target) {
    let id = t.ok(&[
        "create",
        NONE,
        "--name",
        "web",
        "-l",
        "tier=front",
        "busybox",
        "sleep",
        "300",
    ]);
    let id = id.trim().to_string();
    let short = &id[..12];
    // created: not in ps, in ps -a.
    assert_eq!(t.same(&["ps", "-q"]), "");
    assert_eq!(t.same(&["ps", "-aq"]), format!("{short}\n"));
    assert_eq!(
        t.same(&["ps", "-a", "--format", "{{.Names}} {{.State}} {{.Status}}"]),
        "web created Created\n"
    );
    assert_eq!(t.same(&["start", "web"]), "web\n");
    // The default table: docker's header and a row.
    let ps = t.same(&["ps"]);
    let l = lines(&ps);
    assert_eq!(
        cells(l[0]),
        [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES"
        ]
    );
    assert!(
        l[1].starts_with(&format!("{short}   busybox   \"sleep 300\"   ")),
        "{ps}"
    );
    assert!(l[1].contains("   Up ") && l[1].ends_with("   web"), "{ps}");
    assert_eq!(t.same(&["ps", "-q", "--no-trunc"]), format!("{id}\n"));
    assert_eq!(t.same(&["container", "ls", "-q"]), format!("{short}\n"));
    assert_eq!(t.same(&["container", "list", "-q"]), format!("{short}\n"));
    assert_eq!(t.same(&["container", "ps", "-q"]), format!("{short}\n"));
    t.same(&["ps", "--no-trunc"]);
    t.same(&["ps", "-s"]);
    t.same(&["ps", "--format", "json"]);
    t.same(&["ps", "--format", "{{json .}}"]);
    t.same(&[
        "ps",
        "--format",
        "table {{.ID}}\t{{.Names}}\t{{.Label \"tier\"}}",
    ]);
    assert_eq!(
        t.same(&[
            "ps",
            "--format",
            "{{.Names}}|{{.Labels}}|{{.Label \"tier\"}}|{{.State}}"
        ]),
        "web|tier=front|front|running\n"
    );

    // A second container that exits.
    let o = t.wharf(&[
        "run", NONE, "--name", "done", "busybox", "sh", "-c", "exit 4",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert_eq!(t.same(&["wait", "done"]), "4\n");
    assert_eq!(
        t.same(&[
            "ps",
            "-a",
            "--filter",
            "status=exited",
            "--format",
            "{{.Names}} {{.State}} {{.Status}}"
        ])
        .rsplit_once(" (4) ")
        .map(|(head, _)| head),
        Some("done exited Exited"),
        "docker's 'Exited (4) N seconds ago'"
    );
    assert_eq!(
        t.same(&[
            "ps",
            "--filter",
            "label=tier=front",
            "--format",
            "{{.Names}}"
        ]),
        "web\n"
    );
    assert_eq!(
        t.same(&["ps", "-a", "--filter", "name=don", "--format", "{{.Names}}"]),
        "done\n"
    );
    assert_eq!(t.same(&["ps", "-l", "--format", "{{.Names}}"]), "done\n");
    assert_eq!(t.same(&["ps", "-n", "2", "-q"]).lines().count(), 2);

    // pause / unpause show in the status.
    assert_eq!(t.ok(&["pause", "web"]), "web\n");
    assert!(
        t.same(&["ps", "--format", "{{.Status}}"])
            .ends_with(" (Paused)\n"),
        "paused status"
    );
    assert_eq!(
        t.same(&["inspect", "-f", "{{.State.Status}}", "web"]),
        "paused\n"
    );
    assert_eq!(t.ok(&["unpause", "web"]), "web\n");
    // kill -s, restart, stop.
    assert_eq!(t.ok(&["kill", "-s", "SIGCONT", "web"]), "web\n");
    assert_eq!(t.ok(&["restart", "-t", "1", "web"]), "web\n");
    assert_eq!(
        t.same(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.Running}}",
            "web"
        ]),
        "0 true\n"
    );
    assert_eq!(t.ok(&["container", "stop", "-t", "1", "web"]), "web\n");
    assert_eq!(
        t.same(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "web"
        ]),
        "exited 137\n"
    );
    // start -a: the container's output and status.
    t.ok(&[
        "create",
        NONE,
        "--name",
        "sa",
        "busybox",
        "sh",
        "-c",
        "echo started; exit 2",
    ]);
    let o = t.wharf(&["start", "-a", "sa"]);
    assert_eq!(
        (stdout(&o).as_str(), o.status.code()),
        ("started\n", Some(2))
    );
    // kill a stopped container: docker's error, exit 1.
    let (code, err) = t.same_error(&["kill", "web"]);
    assert_eq!(code, 1);
    assert!(err.contains("is not running"), "{err}");

    // rename.
    assert_eq!(t.ok(&["rename", "web", "web2"]), "");
    assert_eq!(t.same(&["inspect", "-f", "{{.Name}}", "web2"]), "/web2\n");
    let (code, err) = t.same_error(&["rename", "nosuch", "x"]);
    assert_eq!(code, 1);
    assert!(err.contains("No such container: nosuch"), "{err}");

    // rm: names echoed; a missing one is an error (exit 1) unless -f (docker 28: message,
    // exit 0); rm -f of a running one.
    let (code, err) = t.same_error(&["rm", "nosuch"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error response from daemon: No such container: nosuch\n"
    );
    let o = t.wharf(&["rm", "-f", "nosuch"]);
    assert_eq!((stdout(&o).as_str(), o.status.code()), ("", Some(0)));
    assert_eq!(
        stderr(&o),
        "Error response from daemon: No such container: nosuch\n"
    );
    t.ok(&[
        "run", "-d", NONE, "--name", "running", "busybox", "sleep", "300",
    ]);
    let (code, err) = t.same_error(&["rm", "running"]);
    assert_eq!(code, 1);
    assert!(
        err.to_lowercase().contains("stop the container before"),
        "{err}"
    );
    assert_eq!(t.ok(&["rm", "-f", "running"]), "running\n");
    assert_eq!(t.ok(&["container", "rm", "web2"]), "web2\n");

    // container prune removes the stopped ones and lists them.
    let ids: Vec<String> = t
        .ok(&["ps", "-aq", "--no-trunc"])
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(ids.len(), 2, "the stopped 'done' and 'sa'");
    // Filters: nothing older than an hour, nothing labelled so.
    for f in ["until=1h", "until=2000-01-01T00:00:00Z", "label=nope"] {
        assert_eq!(
            t.same(&["container", "prune", "-f", "--filter", f]),
            "Total reclaimed space: 0B\n"
        );
    }
    let out = t.ok(&["container", "prune", "-f"]);
    let mut l = lines(&out);
    assert_eq!(l.remove(0), "Deleted Containers:");
    assert!(
        l.last().unwrap().starts_with("Total reclaimed space: "),
        "{out}"
    );
    let mut deleted: Vec<&str> = l.iter().copied().filter(|x| x.len() == 64).collect();
    deleted.sort();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(deleted, want);
    assert_eq!(t.same(&["ps", "-aq"]), "");
}

// ---------------------------------------------------------------------------------------
// Inside a running container: exec, logs, attach, top, stats, port, update, inspect.

scenario!(exec_logs_attach_top_stats);
fn exec_logs_attach_top_stats(t: &Target) {
    t.ok(&[
        "run",
        "-d",
        NONE,
        "--name",
        "talk",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exec sleep 300",
    ]);
    eventually("the first log lines", || t.ok(&["logs", "talk"]) == "out\n");
    // logs keep stdout and stderr apart; --tail, -t, --since.
    let o = t.wharf(&["logs", "talk"]);
    assert_eq!(
        (stdout(&o).as_str(), stderr(&o).as_str()),
        ("out\n", "err\n")
    );
    t.same(&["logs", "talk"]);
    assert_eq!(t.same(&["logs", "--tail", "0", "talk"]), "");
    let ts = t.same(&["logs", "-t", "talk"]);
    let (stamp, line) = ts.trim_end().split_once(' ').unwrap();
    assert_eq!(line, "out");
    assert!(
        stamp.ends_with('Z') && stamp.len() == "2006-01-02T15:04:05.000000000Z".len(),
        "{stamp}"
    );
    t.same(&["logs", "--since", "1h", "talk"]);
    assert_eq!(
        t.same(&["logs", "--until", "2000-01-01T00:00:00Z", "talk"]),
        ""
    );

    // logs -f follows until the container ends.
    t.ok(&[
        "run",
        "-d",
        NONE,
        "--name",
        "fl",
        "busybox",
        "sh",
        "-c",
        "echo a; sleep 1; echo b",
    ]);
    assert_eq!(t.ok(&["logs", "-f", "fl"]), "a\nb\n");
    assert_eq!(t.same(&["logs", "-n", "1", "fl"]), "b\n");

    // exec: output, status, -i, -e, -w, -u, detached.
    assert_eq!(t.same(&["exec", "talk", "echo", "hello"]), "hello\n");
    assert_eq!(
        t.same(&[
            "exec",
            "-e",
            "X=1",
            "-w",
            "/tmp",
            "-u",
            "1000",
            "talk",
            "sh",
            "-c",
            "echo $X $(pwd) $(id -u)"
        ]),
        "1 /tmp 1000\n"
    );
    let o = t.wharf(&["exec", "talk", "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    let o = t.wharf_stdin(&["exec", "-i", "talk", "cat"], b"piped\n");
    assert_eq!(stdout(&o), "piped\n");
    assert_eq!(t.ok(&["exec", "-d", "talk", "touch", "/tmp/bg"]), "");
    eventually("the detached exec", || {
        t.wharf(&["exec", "talk", "test", "-e", "/tmp/bg"])
            .status
            .success()
    });
    // A missing command: 127 (dockerd 20.10 itself answers 126; docker 23+ 127).
    let (code, _) = t.same_error(&["exec", "talk", "nosuchcmd"]);
    assert_eq!(code, if t.is_dockerd() { 126 } else { 127 });
    let (code, err) = t.same_error(&["exec", "nosuch", "true"]);
    assert_eq!(
        (code, err.as_str()),
        (1, "Error response from daemon: No such container: nosuch\n")
    );

    // top: ps's columns, and ps options.
    let top = t.same(&["top", "talk"]);
    assert_eq!(cells(lines(&top)[0])[0], "UID");
    assert!(top.contains("sleep 300"), "{top}");
    assert_eq!(
        cells(lines(&t.same(&["top", "talk", "-o", "pid,comm"]))[1])[1],
        "sleep"
    );

    // stats --no-stream: docker's columns, one row.
    let st = t.ok(&["stats", "--no-stream", "talk"]);
    let l = lines(&st);
    assert_eq!(
        cells(l[0]),
        [
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS"
        ]
    );
    assert_eq!(l.len(), 2, "{st}");
    assert!(l[1].contains("   talk   "), "{st}");
    assert_eq!(
        t.same(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.PIDs}}",
            "talk"
        ]),
        "talk 1\n"
    );
    assert_eq!(
        t.same(&["container", "stats", "--no-stream", "--format", "{{.Name}}"]),
        "talk\n"
    );

    // update: the new limit shows in inspect.
    assert_eq!(
        t.ok(&[
            "update",
            "--memory",
            "64m",
            "--memory-swap",
            "128m",
            "--cpu-shares",
            "256",
            "talk"
        ]),
        "talk\n"
    );
    assert_eq!(
        t.same(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.CpuShares}}",
            "talk"
        ]),
        "67108864 256\n"
    );

    // port with a published port (wharfd only: the test dockerd has no bridge).
    if !t.is_dockerd() {
        // A host port unlikely to be taken on a shared machine.
        let hp = 20000 + std::process::id() % 20000;
        t.ok(&[
            "run",
            "-d",
            "--name",
            "pub",
            "-p",
            "127.0.0.1::80",
            "-p",
            &format!("{hp}:81/udp"),
            "busybox",
            "sleep",
            "300",
        ]);
        let all = t.same(&["port", "pub"]);
        let l = lines(&all);
        assert_eq!(l.len(), 2, "{all}");
        assert!(l[0].starts_with("80/tcp -> 127.0.0.1:"), "{all}");
        assert_eq!(l[1], format!("81/udp -> 0.0.0.0:{hp}"));
        assert_eq!(
            t.same(&["port", "pub", "81/udp"]),
            format!("0.0.0.0:{hp}\n")
        );
        let ps = t.same(&["ps", "--filter", "name=pub", "--format", "{{.Ports}}"]);
        assert!(
            ps.contains("->80/tcp") && ps.contains(&format!("0.0.0.0:{hp}->81/udp")),
            "{ps}"
        );
        t.ok(&["rm", "-f", "pub"]);
    }
    // port: nothing published (docker's message names the port as given).
    assert_eq!(t.same(&["port", "talk"]), "");
    let (code, err) = t.same_error(&["port", "talk", "80"]);
    assert_eq!(
        (code, err.as_str()),
        (1, "Error: No public port '80' published for talk\n")
    );

    // attach: stdin in, output out, the container's status back.
    t.ok(&[
        "create",
        "-i",
        NONE,
        "--name",
        "cat",
        "busybox",
        "sh",
        "-c",
        "cat; exit 5",
    ]);
    t.ok(&["start", "cat"]);
    let o = t.wharf_stdin(&["attach", "cat"], b"through attach\n");
    assert_eq!(stdout(&o), "through attach\n", "{}", stderr(&o));
    assert_eq!(o.status.code(), Some(5));
    // start -ai does the same on a stopped container.
    let o = t.wharf_stdin(&["start", "-ai", "cat"], b"again\n");
    assert_eq!((stdout(&o).as_str(), o.status.code()), ("again\n", Some(5)));

    // inspect: raw JSON as docker prints it, --type, -s, several objects, a missing one.
    t.same(&["inspect", "talk"]);
    t.same(&["container", "inspect", "talk", "cat"]);
    t.same(&["inspect", "--type", "container", "-f", "{{.Name}}", "talk"]);
    t.same(&["inspect", "-s", "-f", "{{.SizeRw}}", "talk"]);
    let (code, _) = t.same_error(&["inspect", "talk", "nosuch"]);
    assert_eq!(code, 1);
}

// ---------------------------------------------------------------------------------------
// Files: cp both ways, diff, export, commit.

/// Runs wharf with `args` against `t`: (its stderr if it failed, its peak resident set in
/// KiB).
// The child is reaped by wait4 (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn max_rss(t: &Target, args: &[&str]) -> (Result<(), String>, i64) {
    let err = tempfile::tempfile().unwrap();
    let child = std::process::Command::new(common::WHARF)
        .arg("-H")
        .arg(t.host())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .expect("spawn wharf");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child (not waited for elsewhere); both pointers are valid
    // for the call.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4");
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let mut text = String::new();
    let mut err = err;
    std::io::Seek::rewind(&mut err).unwrap();
    err.read_to_string(&mut text).unwrap();
    (if ok { Ok(()) } else { Err(text) }, usage.ru_maxrss)
}

scenario!(files_cp_diff_export_commit);
fn files_cp_diff_export_commit(t: &Target) {
    t.ok(&["run", "-d", NONE, "--name", "fs", "busybox", "sleep", "300"]);
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("hello.txt");
    std::fs::write(&host, "from the host\n").unwrap();
    // host → container (file, then directory).
    let host_s = host.to_str().unwrap();
    assert_eq!(t.ok(&["cp", host_s, "fs:/tmp/"]), "");
    assert_eq!(
        t.ok(&["exec", "fs", "cat", "/tmp/hello.txt"]),
        "from the host\n"
    );
    std::fs::create_dir(dir.path().join("d")).unwrap();
    std::fs::write(dir.path().join("d/inner"), "inner\n").unwrap();
    t.ok(&["cp", dir.path().join("d").to_str().unwrap(), "fs:/srv"]);
    assert_eq!(t.ok(&["exec", "fs", "cat", "/srv/inner"]), "inner\n");
    // The archive's owner stays; with -a, a container's user gets it (`nobody` is 65534 in
    // busybox and on the host, where dockerd 20.10 looks it up).
    std::os::unix::fs::chown(&host, Some(1234), Some(1234)).unwrap();
    t.ok(&[
        "run", "-d", NONE, "--name", "nob", "--user", "nobody", "busybox", "sleep", "300",
    ]);
    t.ok(&["cp", host_s, "nob:/tmp/kept.txt"]);
    t.ok(&["cp", "-a", host_s, "nob:/tmp/given.txt"]);
    let owners = t.ok(&[
        "exec",
        "nob",
        "stat",
        "-c",
        "%u:%g",
        "/tmp/kept.txt",
        "/tmp/given.txt",
    ]);
    assert_eq!(owners, "1234:1234\n65534:65534\n");
    // A big file streams: wharf's peak memory stays far below its size (sparse on the host,
    // it is sent whole, as docker sends it: it peaked at 330 MiB when the tar was built in
    // memory).
    let big = dir.path().join("big.bin");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(320 << 20)
        .unwrap();
    let (ok, max_rss_kib) = max_rss(t, &["cp", big.to_str().unwrap(), "fs:/tmp/"]);
    ok.expect("wharf cp of a big file");
    assert!(
        max_rss_kib < 150 << 10,
        "wharf cp peaked at {max_rss_kib} KiB for 320 MiB"
    );
    assert_eq!(
        t.ok(&["exec", "fs", "stat", "-c", "%s", "/tmp/big.bin"]),
        format!("{}\n", 320 << 20)
    );
    t.ok(&["exec", "fs", "rm", "/tmp/big.bin"]);
    // A file over a directory of the container is refused, as by docker.
    t.ok(&["exec", "fs", "mkdir", "/tmp/hello.dir"]);
    let over = dir.path().join("hello.dir");
    std::fs::write(&over, "a file\n").unwrap();
    let (code, err) = t.same_error(&["cp", over.to_str().unwrap(), "fs:/tmp"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot overwrite directory"), "{err}");
    // container → host.
    t.ok(&[
        "exec",
        "fs",
        "sh",
        "-c",
        "mkdir /data; echo made-inside > /data/f",
    ]);
    let back = dir.path().join("back");
    t.ok(&["container", "cp", "fs:/data", back.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(back.join("f")).unwrap(),
        "made-inside\n"
    );
    // container → stdout as a tar.
    let o = t.wharf(&["cp", "fs:/data/f", "-"]);
    assert!(o.status.success());
    let mut ar = tar::Archive::new(&o.stdout[..]);
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["f"]);
    let (code, err) = t.same_error(&["cp", "fs:/nosuch", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("Could not find the file /nosuch in container fs"),
        "{err}"
    );

    // diff: docker's A/C/D lines.
    t.ok(&["exec", "fs", "rm", "/bin/vi"]);
    // (dockerd lists changes in no fixed order: compared sorted.)
    let diff = t.same_sorted(&["diff", "fs"]);
    for want in [
        "A /data",
        "A /data/f",
        "C /bin",
        "D /bin/vi",
        "A /srv",
        "C /tmp",
        "A /tmp/hello.txt",
    ] {
        assert!(diff.lines().any(|l| l == want), "{want} in {diff}");
    }
    t.same_sorted(&["container", "diff", "fs"]);

    // export: a tar of the filesystem, to stdout or -o.
    let out = dir.path().join("fs.tar");
    assert_eq!(t.ok(&["export", "-o", out.to_str().unwrap(), "fs"]), "");
    let mut ar = tar::Archive::new(std::fs::File::open(&out).unwrap());
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(
        names.iter().any(|n| n.trim_start_matches("./") == "data/f"),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.trim_start_matches("./") == "bin/vi"));
    let o = t.wharf(&["container", "export", "fs"]);
    assert!(o.status.success() && o.stdout.len() > 1_000_000);

    // commit: the image has the change and the new CMD; history shows it.
    let id = t.ok(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/data/f\"]",
        "-m",
        "msg",
        "fs",
        "committed:v1",
    ]);
    assert!(id.starts_with("sha256:") && id.trim().len() == 71, "{id}");
    assert_eq!(
        t.ok(&["run", "--rm", NONE, "committed:v1"]),
        "made-inside\n"
    );
    assert_eq!(
        t.same(&["history", "--format", "{{.Comment}}", "committed:v1"]),
        "msg\nImported from -\n"
    );
    assert_eq!(
        t.same(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.Cmd}}",
            "committed:v1"
        ]),
        "[\"cat\",\"/data/f\"]\n"
    );
    // --pause=false and no repository: an untagged image.
    let id = t.ok(&["container", "commit", "--pause=false", "fs"]);
    assert!(id.starts_with("sha256:"), "{id}");
}

// ---------------------------------------------------------------------------------------
// Images: images/image ls, inspect, tag, rmi, history, save/load, import, prune.

scenario!(images);
fn images(t: &Target) {
    assert_eq!(t.ok(&["tag", "busybox", "mybox:1"]), "");
    assert_eq!(t.ok(&["image", "tag", "busybox", "mybox:2"]), "");
    let imgs = t.same(&["images"]);
    let l = lines(&imgs);
    assert_eq!(
        cells(l[0]),
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    );
    assert_eq!(l.len(), 4, "{imgs}");
    assert!(l[1].starts_with("busybox      latest    "), "{imgs}");
    t.same(&["image", "ls"]);
    t.same(&["image", "list", "--no-trunc"]);
    t.same(&["images", "--digests"]);
    t.same(&["images", "-a"]);
    t.same(&["images", "--format", "json"]);
    t.same(&["images", "--format", "{{json .}}"]);
    t.same(&[
        "images",
        "--format",
        "table {{.Repository}}\t{{.Tag}}\t{{.Size}}",
    ]);
    assert_eq!(
        t.same(&["images", "--format", "{{.Repository}}:{{.Tag}}", "mybox"]),
        "mybox:1\nmybox:2\n"
    );
    assert_eq!(
        t.same(&[
            "images",
            "--filter",
            "reference=mybox:2",
            "--format",
            "{{.Repository}}:{{.Tag}}"
        ]),
        "mybox:2\n"
    );
    // -q: one line per tag, as docker 28 prints it.
    let q = t.same(&["images", "-q"]);
    assert_eq!(lines(&q).len(), 3, "{q}");
    assert!(lines(&q).iter().all(|l| *l == lines(&q)[0]), "{q}");
    assert_eq!(t.same(&["images", "--filter", "dangling=true", "-q"]), "");

    // inspect: raw and with templates; image inspect of a container name is an error.
    t.same(&["image", "inspect", "busybox"]);
    assert_eq!(
        t.same(&[
            "image",
            "inspect",
            "-f",
            "{{.Os}}/{{.Architecture}} {{len .RepoTags}}",
            "busybox"
        ]),
        "linux/amd64 3\n"
    );
    t.same(&["inspect", "--type", "image", "-f", "{{.Id}}", "mybox:1"]);
    let (code, _) = t.same_error(&["image", "inspect", "nosuch"]);
    assert_eq!(code, 1);

    // history.
    let h = t.same(&["history", "busybox"]);
    assert_eq!(
        cells(lines(&h)[0]),
        ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
    );
    t.same(&["image", "history", "--no-trunc", "busybox"]);
    t.same(&["history", "-q", "busybox"]);
    t.same(&["history", "-H=false", "busybox"]);
    t.same(&["history", "--format", "json", "busybox"]);

    // rmi: docker's lines.
    assert_eq!(t.ok(&["rmi", "mybox:1"]), "Untagged: mybox:1\n");
    assert_eq!(t.ok(&["image", "rm", "mybox:2"]), "Untagged: mybox:2\n");
    let (code, err) = t.same_error(&["rmi", "mybox:1"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("Error response from daemon: "), "{err}");

    // save → rmi → load.
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("bb.tar");
    t.ok(&["tag", "busybox", "saved:1"]);
    assert_eq!(t.ok(&["save", "-o", tar.to_str().unwrap(), "saved:1"]), "");
    let o = t.wharf(&["image", "save", "saved:1"]);
    assert!(o.status.success() && o.stdout.len() > 1_000_000);
    let id = t.ok(&["image", "inspect", "-f", "{{.Id}}", "saved:1"]);
    t.ok(&["rmi", "saved:1"]);
    assert_eq!(
        t.ok(&["load", "-i", tar.to_str().unwrap()]),
        "Loaded image: saved:1\n"
    );
    assert_eq!(t.ok(&["image", "inspect", "-f", "{{.Id}}", "saved:1"]), id);
    t.ok(&["rmi", "saved:1"]);
    let o = t.wharf_stdin(&["image", "load", "-q"], &std::fs::read(&tar).unwrap());
    assert_eq!(stdout(&o), "Loaded image: saved:1\n", "{}", stderr(&o));

    // import: from a file and from stdin, with --change and --message.
    let rootfs = Command::new(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mkbusybox-rootfs.sh"),
    )
    .output()
    .unwrap()
    .stdout;
    let f = dir.path().join("rootfs.tar");
    std::fs::write(&f, &rootfs).unwrap();
    let id = t.ok(&[
        "import",
        "-c",
        "ENV X=imported",
        "-m",
        "by test",
        f.to_str().unwrap(),
        "imp:1",
    ]);
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(
        t.same(&[
            "image",
            "inspect",
            "-f",
            "{{.Config.Env}} {{.Comment}}",
            "imp:1"
        ]),
        "[X=imported] by test\n"
    );
    let o = t.wharf_stdin(&["image", "import", "-", "imp:2"], &rootfs);
    assert!(stdout(&o).starts_with("sha256:"), "{}", stderr(&o));

    // prune: a dangling image goes with -f; nothing left to say the second time.
    t.ok(&["tag", "imp:1", "imp:3"]);
    t.ok(&["rmi", "imp:1", "imp:3", "imp:2"]);
    let out = t.same(&["image", "prune", "-f"]);
    assert_eq!(out, "Total reclaimed space: 0B\n");
    t.ok(&[
        "run",
        NONE,
        "--name",
        "cc",
        "busybox",
        "sh",
        "-c",
        "echo x > /x",
    ]);
    t.ok(&["commit", "cc", "dangle:1"]);
    t.ok(&["commit", "cc", "dangle:1"]);
    assert_eq!(
        t.same(&["images", "--filter", "dangling=true", "-q"])
            .lines()
            .count(),
        1
    );
    let out = t.ok(&["image", "prune", "-f"]);
    assert!(
        out.starts_with("Deleted Images:\ndeleted: sha256:"),
        "{out}"
    );
    assert!(
        out.ends_with("\nTotal reclaimed space: 0B\n") || out.contains("Total reclaimed space: "),
        "{out}"
    );
    assert_eq!(t.same(&["images", "--filter", "dangling=true", "-q"]), "");
}

// ---------------------------------------------------------------------------------------
// Volumes and networks.

scenario!(volumes_and_networks);
fn volumes_and_networks(t: &Target) {
    assert_eq!(t.ok(&["volume", "create", "v1"]), "v1\n");
    assert_eq!(
        t.ok(&["volume", "create", "--name", "v2", "--label", "k=v"]),
        "v2\n"
    );
    assert_eq!(
        t.same(&["volume", "ls"]),
        "DRIVER    VOLUME NAME\nlocal     v1\nlocal     v2\n"
    );
    assert_eq!(t.same(&["volume", "list", "-q"]), "v1\nv2\n");
    assert_eq!(
        t.same(&["volume", "ls", "-q", "--filter", "label=k=v"]),
        "v2\n"
    );
    assert_eq!(
        t.same(&["volume", "ls", "--format", "{{.Name}}:{{.Driver}}"]),
        "v1:local\nv2:local\n"
    );
    t.same(&["volume", "inspect", "v1", "v2"]);
    assert_eq!(
        t.same(&["volume", "inspect", "-f", "{{.Name}} {{.Labels}}", "v2"]),
        "v2 map[k:v]\n"
    );
    // A volume used by a container keeps what was written.
    t.ok(&[
        "run",
        "--rm",
        NONE,
        "-v",
        "v1:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(
        t.ok(&["run", "--rm", NONE, "-v", "v1:/data", "busybox", "cat", "/data/f"]),
        "kept\n"
    );
    t.ok(&[
        "create", NONE, "--name", "user", "-v", "v1:/data", "busybox", "true",
    ]);
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            NONE,
            "--volumes-from",
            "user:ro",
            "busybox",
            "sh",
            "-c",
            "cat /data/f; touch /data/g 2>/dev/null || echo ro",
        ]),
        "kept\nro\n"
    );
    let (code, err) = t.same_error(&["volume", "rm", "v1"]);
    assert_eq!(code, 1);
    assert!(err.contains("volume is in use"), "{err}");
    t.ok(&["rm", "user"]);
    let out = t.ok(&["volume", "prune", "-af"]);
    assert!(out.starts_with("Deleted Volumes:\n"), "{out}");
    assert!(out.contains("\nv1\n") && out.contains("\nv2\n"), "{out}");
    assert_eq!(t.same(&["volume", "ls", "-q"]), "");
    assert_eq!(t.ok(&["volume", "create", "v3"]), "v3\n");
    assert_eq!(t.ok(&["volume", "rm", "v3"]), "v3\n");
    let (code, _) = t.same_error(&["volume", "inspect", "v3"]);
    assert_eq!(code, 1);

    // Networks: the built-in ones, a user bridge, connect/disconnect, rm, prune.
    let ls = t.same(&["network", "ls"]);
    assert_eq!(
        cells(lines(&ls)[0]),
        ["NETWORK ID", "NAME", "DRIVER", "SCOPE"]
    );
    assert!(ls.contains("   none      null      local"), "{ls}");
    t.same(&["network", "ls", "--no-trunc"]);
    t.same(&["network", "ls", "-q"]);
    t.same(&[
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}}",
        "--filter",
        "name=none",
    ]);
    assert_eq!(
        t.same(&["network", "inspect", "-f", "{{.Name}} {{.Driver}}", "none"]),
        "none null\n"
    );
    // A subnet of its own (the host is shared by both halves and by other tests).
    let octet = std::process::id() % 250;
    let net = format!("10.{}.{octet}", if t.is_dockerd() { 235 } else { 234 });
    let subnet = format!("{net}.0/24");
    let ip = format!("{net}.9");
    let id = t.ok(&[
        "network", "create", "--subnet", &subnet, "--label", "x=y", "tnet",
    ]);
    assert_eq!(id.trim().len(), 64, "{id}");
    assert_eq!(
        t.same(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}}{{end}} {{.Labels}}",
            "tnet"
        ]),
        format!("{subnet} map[x:y]\n")
    );
    t.ok(&[
        "create",
        "--network",
        "tnet",
        "--network-alias",
        "svc",
        "--ip",
        &ip,
        "--name",
        "n1",
        "busybox",
        "true",
    ]);
    assert_eq!(
        t.same(&["inspect", "-f", "{{index .NetworkSettings.Networks.tnet.Aliases 0}} {{.NetworkSettings.Networks.tnet.IPAMConfig.IPv4Address}}", "n1"]),
        format!("svc {ip}\n")
    );
    assert_eq!(t.ok(&["network", "disconnect", "tnet", "n1"]), "");
    assert_eq!(
        t.same(&["inspect", "-f", "{{len .NetworkSettings.Networks}}", "n1"]),
        "0\n"
    );
    assert_eq!(
        t.ok(&["network", "connect", "--alias", "other", "--link", "n0:peer", "tnet", "n1"]),
        ""
    );
    assert_eq!(
        t.same(&[
            "inspect",
            "-f",
            "{{index .NetworkSettings.Networks.tnet.Aliases 0}} {{.NetworkSettings.Networks.tnet.Links}}",
            "n1"
        ]),
        "other [n0:peer]\n"
    );
    // `run --link` on a user network: the endpoint's links (HostConfig.Links unused there).
    t.ok(&[
        "create",
        "--network",
        "tnet",
        "--link",
        "n1:db",
        "--name",
        "n3",
        "busybox",
        "true",
    ]);
    assert_eq!(
        t.same(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.tnet.Links}} {{json .HostConfig.Links}}",
            "n3"
        ]),
        "[n1:db] null\n"
    );
    t.ok(&["rm", "n3"]);
    // A running container keeps the network from being removed.
    t.ok(&["rm", "n1"]);
    t.ok(&[
        "run",
        "-d",
        "--network",
        "tnet",
        "--name",
        "n2",
        "busybox",
        "sleep",
        "300",
    ]);
    let (code, err) = t.same_error(&["network", "rm", "tnet"]);
    assert_eq!(code, 1);
    assert!(err.contains("active endpoints"), "{err}");
    t.ok(&["rm", "-f", "n2"]);
    assert_eq!(t.ok(&["network", "rm", "tnet"]), "tnet\n");
    // -f: a missing network is not an error.
    assert_eq!(t.same(&["network", "rm", "-f", "tnet"]), "");
    t.ok(&["network", "create", "tnet2"]);
    assert_eq!(
        t.ok(&["network", "prune", "-f"]),
        "Deleted Networks:\ntnet2\n\n"
    );
    let (code, _) = t.same_error(&["network", "inspect", "tnet2"]);
    assert_eq!(code, 1);
    // --ip6 on a network with IPv6 (IPAMConfig.IPv6Address), run and network connect.
    let net6 = format!(
        "fd{}:{:x}:",
        if t.is_dockerd() { 35 } else { 34 },
        0x1000 + octet
    );
    // The gateway goes with the subnet that contains it, not the first one.
    t.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        &subnet,
        "--subnet",
        &format!("{net6}:/64"),
        "--gateway",
        &format!("{net6}:fe"),
        "tnet6",
    ]);
    // (Only the IPv6 entry's gateway: dockerd shows none for a subnet given without one.)
    assert_eq!(
        t.same(&[
            "network",
            "inspect",
            "-f",
            &format!("{{{{range .IPAM.Config}}}}{{{{.Subnet}}}}{{{{if eq .Subnet \"{net6}:/64\"}}}} {{{{.Gateway}}}}{{{{end}}}};{{{{end}}}}"),
            "tnet6"
        ]),
        format!("{subnet};{net6}:/64 {net6}:fe;\n")
    );
    t.ok(&[
        "create",
        "--network",
        "tnet6",
        "--ip6",
        &format!("{net6}:9"),
        "--name",
        "n6",
        "busybox",
        "true",
    ]);
    assert_eq!(
        t.same(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.tnet6.IPAMConfig.IPv6Address}}",
            "n6"
        ]),
        format!("{net6}:9\n")
    );
    t.ok(&["network", "disconnect", "tnet6", "n6"]);
    t.ok(&[
        "network",
        "connect",
        "--ip6",
        &format!("{net6}:8"),
        "tnet6",
        "n6",
    ]);
    assert_eq!(
        t.same(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.tnet6.IPAMConfig.IPv6Address}}",
            "n6"
        ]),
        format!("{net6}:8\n")
    );
    t.ok(&["rm", "n6"]);
    t.ok(&["network", "rm", "tnet6"]);
}

// ---------------------------------------------------------------------------------------
// System: version, info, df, events, prune.

scenario!(system);
fn system(t: &Target) {
    let v = t.ok(&["version"]);
    assert!(v.starts_with("Client:\n Version:"), "{v}");
    assert!(v.contains("\nServer:"), "{v}");
    let server = t.same(&["version", "--format", "{{.Server.Version}} {{.Server.Os}}"]);
    assert!(server.ends_with(" linux\n"), "{server}");
    assert_eq!(t.ok(&["version", "--format", "{{.Client.Os}}"]), "linux\n");
    let j: serde_json::Value =
        serde_json::from_str(&t.ok(&["version", "--format", "json"])).unwrap();
    assert_eq!(j["Client"]["Os"], "linux");
    assert!(j["Server"]["ApiVersion"].is_string());

    let info = t.ok(&["info"]);
    assert!(info.starts_with("Client:"), "{info}");
    assert!(info.contains("\nServer:\n Containers: "), "{info}");
    assert_eq!(
        t.same(&[
            "info",
            "--format",
            "{{.OSType}} {{.Containers}} {{.Images}}"
        ]),
        "linux 0 1\n"
    );
    t.same(&["system", "info", "-f", "{{.Driver}} {{.NCPU}}"]);

    t.ok(&[
        "run",
        NONE,
        "--name",
        "ev",
        "busybox",
        "sh",
        "-c",
        "echo four > /f",
    ]);
    // df: docker's rows; one image in use, one stopped container.
    let df = t.same(&["system", "df"]);
    let l = lines(&df);
    assert_eq!(
        cells(l[0]),
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    );
    assert_eq!(&cells(l[1])[..3], ["Images", "1", "1"]);
    assert_eq!(&cells(l[2])[..3], ["Containers", "1", "0"]);
    assert_eq!(&cells(l[3])[..3], ["Local Volumes", "0", "0"]);
    t.same(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Size}}",
    ]);

    // df -v: images, containers (with their writable layer's size), volumes, build cache.
    let v = t.same(&["system", "df", "-v"]);
    assert!(v.starts_with("Images space usage:\n\nREPOSITORY "), "{v}");
    assert!(
        v.contains("\nContainers space usage:\n\nCONTAINER ID "),
        "{v}"
    );
    assert!(
        v.contains("\nLocal Volumes space usage:\n\nVOLUME NAME   LINKS     SIZE\n"),
        "{v}"
    );
    assert!(v.contains("\nBuild cache usage: 0B\n"), "{v}");
    let row = v.lines().find(|l| l.ends_with("   ev")).unwrap();
    assert_eq!(cells(row)[4], "5B", "ev wrote 5 bytes: {v}");

    // events: the container's life, between --since and --until, filtered and formatted.
    let ev = t.same(&[
        "events",
        "--since",
        "10m",
        "--until",
        "0s",
        "--filter",
        "container=ev",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ]);
    let got: Vec<&str> = ev.lines().collect();
    for want in [
        "container create ev",
        "container start ev",
        "container die ev",
    ] {
        assert!(got.contains(&want), "{want} in {ev}");
    }
    t.same(&[
        "system",
        "events",
        "--since",
        "10m",
        "--until",
        "0s",
        "--filter",
        "event=die",
        "--format",
        "{{.Status}} {{.ID}} {{.From}}",
    ]);
    t.same(&[
        "events",
        "--since",
        "10m",
        "--until",
        "0s",
        "--filter",
        "type=container",
        "--filter",
        "event=create",
        "--format",
        "{{json .Actor.Attributes}}",
    ]);
    // The whole event: docker's field order.
    let j = t.same(&[
        "events",
        "--since",
        "10m",
        "--until",
        "0s",
        "--format",
        "{{json .}}",
    ]);
    assert!(j.lines().all(|l| l.starts_with('{')), "{j}");
    t.same(&[
        "events", "--since", "10m", "--until", "0s", "--format", "json",
    ]);
    let plain = t.ok(&[
        "events",
        "--since",
        "10m",
        "--until",
        "0s",
        "--filter",
        "event=die",
    ]);
    assert!(plain.contains(" container die "), "{plain}");
    assert!(
        plain.contains("(exitCode=0, image=busybox, name=ev)"),
        "{plain}"
    );

    // events as they happen (no --until): wharf keeps streaming until stopped. --since (a
    // unix time just before) makes the replay cover what happened before it connected.
    let since = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1)
    .to_string();
    let mut ev = Command::new(common::WHARF)
        .args(["-H", &t.host(), "events", "--since", &since])
        .args(["--filter", "container=evs", "--format"])
        .arg("{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let o = t.wharf(&["run", NONE, "--name", "evs", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut r = std::io::BufReader::new(ev.stdout.take().unwrap());
    let mut seen: Vec<String> = Vec::new();
    while !seen.iter().any(|l| l == "container die evs") {
        let mut line = String::new();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "events ended: {seen:?}"
        );
        seen.push(line.trim_end().to_string());
    }
    assert_eq!(seen[0], "container create evs", "{seen:?}");
    assert!(seen.iter().any(|l| l == "container start evs"), "{seen:?}");
    ev.kill().unwrap();
    ev.wait().unwrap();

    // prune: the stopped container goes.
    let out = t.ok(&["system", "prune", "-f"]);
    assert!(out.starts_with("Deleted Containers:\n"), "{out}");
    assert!(out.ends_with("\n\nTotal reclaimed space: 5B\n"), "{out}");
    assert_eq!(t.same(&["ps", "-aq"]), "");
}

// ---------------------------------------------------------------------------------------
// --format: Go templates and docker's functions, on several commands.

scenario!(format_templates);
fn format_templates(t: &Target) {
    t.ok(&[
        "run", NONE, "--name", "tpl", "-l", "b=2", "-l", "a=1", "-e", "K=<v&>", "busybox", "echo",
        "x",
    ]);
    for f in [
        "{{.Name}}",
        "{{upper .Name}} {{lower \"ABC\"}} {{title \"hello world\"}}",
        "{{join .Config.Cmd \",\"}} {{split \"a:b:c\" \":\"}}",
        "{{printf \"%s-%d-%v\" .Name .State.ExitCode .State.Running}}",
        "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
        "{{if eq .State.ExitCode 0}}ok{{else}}bad{{end}} {{len .Config.Env}}",
        "{{json .Config.Labels}} {{json .Config.Env}}",
        "{{index .Config.Labels \"a\"}} {{.Config.Labels.b}}",
        "{{with .State}}{{.Status}}{{end}} {{truncate .Id 5}} {{pad .Name 1 1}}|",
        "{{println .Name}}{{print .Name 3}}",
        "{{.State.ExitCode | printf \"%03d\"}} {{not .State.Running}} {{and 1 0}} {{or 0 2}}",
        "{{.HostConfig.Memory}} {{.Config.Tty}} {{.Config.Labels}} {{.Config.Cmd}}",
        "{{slice .Id 0 3}} {{gt 2 1}} {{le 2 1}} {{ne .Name \"x\"}}",
    ] {
        t.same(&["inspect", "--format", f, "tpl"]);
    }
    // The json function does not escape HTML (docker's encoder has SetEscapeHTML(false)).
    assert!(
        t.same(&["inspect", "-f", "{{json .Config.Env}}", "tpl"])
            .contains("\"K=<v&>\""),
        "json without HTML escapes"
    );
    // The table prefix gives docker's headers; escapes \t and \n.
    assert_eq!(
        t.same(&[
            "ps",
            "-a",
            "--format",
            "table {{.Names}}\\t{{.Image}}\\t{{.State}}"
        ]),
        "NAMES     IMAGE     STATE\ntpl       busybox   exited\n"
    );
    assert_eq!(
        t.same(&["ps", "-a", "--format", "{{.Names}}\\n{{.Image}}"]),
        "tpl\nbusybox\n"
    );
    t.same(&["ps", "-a", "--format", "table"]);
    t.same(&[
        "ps",
        "-a",
        "--format",
        "table {{.Command}}\t{{.Mounts}}\t{{.Networks}}\t{{.Size}}",
    ]);
    t.same(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Command}}"]);
    // Errors in templates: docker's message, exit status.
    let (code, err) = t.same_error(&["ps", "--format", "{{.Nope"]);
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "failed to parse template: template: :1: unclosed action\n"
        )
    );
    for args in [
        &["images", "--format", "{{.Nope"][..],
        &["volume", "ls", "--format", "{{.Nope"],
        &["network", "ls", "--format", "{{.Nope"],
        &["system", "df", "--format", "{{.Nope"],
        &["history", "--format", "{{.Nope", "busybox"],
    ] {
        let (code, err) = t.same_error(args);
        assert_eq!(
            (code, err.as_str()),
            (1, "template parsing error: template: :1: unclosed action\n")
        );
    }
    for args in [
        &["inspect", "--format", "{{.Nope", "tpl"][..],
        &["image", "inspect", "--format", "{{.Nope", "busybox"],
        &["info", "--format", "{{.Nope"],
        &["version", "--format", "{{.Nope"],
        &[
            "events", "--since", "1m", "--until", "0s", "--format", "{{.Nope",
        ],
    ] {
        let (code, _) = t.same_error(args);
        assert_eq!(code, 64);
    }
}

// ---------------------------------------------------------------------------------------
// Interactive: -it through a pty, the size, detach keys, and exit statuses.

/// A client on a pty: its output collected, keys typed on the master.
struct Pty {
    child: std::process::Child,
    master: std::fs::File,
    out: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Pty {
    fn spawn(bin: &str, host: &str, args: &[&str]) -> Pty {
        let ws = nix::pty::Winsize {
            ws_row: 30,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&ws), None).expect("openpty");
        let slave = pty.slave;
        let child = Command::new(bin)
            .args(["-H", host])
            .args(args)
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .unwrap();
        let master = std::fs::File::from(pty.master);
        let mut r = master.try_clone().unwrap();
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let o2 = out.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                o2.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            child,
            master,
            out,
            reader: Some(reader),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    fn type_(&mut self, s: &[u8]) {
        self.master.write_all(s).unwrap();
    }

    fn wait_for(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.text().contains(what) {
            assert!(
                Instant::now() < deadline,
                "waiting for {what:?}; got: {}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the client to exit; its status code.
    fn exit(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the client did not exit: {}", self.text());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let text = self.text();
        drop(self.master);
        if let Some(r) = self.reader.take() {
            // The reader ends with the pty; do not wait on a straggler holding the slave.
            let deadline = Instant::now() + Duration::from_secs(2);
            while !r.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        (status.code(), text)
    }
}

scenario!(interactive_tty);
fn interactive_tty(t: &Target) {
    let host = t.host();
    // -it: a shell, the terminal's size inside, the shell's exit status back.
    let mut p = Pty::spawn(
        common::WHARF,
        &host,
        &["run", "-it", "--rm", NONE, "busybox", "sh"],
    );
    p.wait_for("# ");
    p.type_(b"stty size; echo hi-$((40+2))\r");
    p.wait_for("hi-42");
    assert!(
        p.text().contains("30 100"),
        "the size reached the container: {}",
        p.text()
    );
    // A new size (what a terminal does before SIGWINCH) reaches the container too.
    let ws = nix::pty::Winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ on our own pty master with a valid winsize.
    let r = unsafe { libc::ioctl(p.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    assert_eq!(r, 0);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(p.child.id() as i32),
        nix::sys::signal::Signal::SIGWINCH,
    )
    .unwrap();
    let mut resized = false;
    for i in 0..50 {
        p.type_(format!("stty size; echo probe-{i}\r").as_bytes());
        p.wait_for(&format!("probe-{i}\r\n"));
        if p.text().contains("40 120") {
            resized = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(resized, "the new size reached the container: {}", p.text());
    p.type_(b"exit 6\r");
    let (code, text) = p.exit();
    assert_eq!(code, Some(6), "{text}");

    // ctrl-p ctrl-q detaches and leaves the container running; attach gets back in.
    let mut p = Pty::spawn(
        common::WHARF,
        &host,
        &["run", "-it", NONE, "--name", "dk", "busybox", "sh"],
    );
    p.wait_for("# ");
    p.type_(b"echo before\r");
    p.wait_for("before");
    p.type_(b"\x10\x11");
    let (code, text) = p.exit();
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        t.ok(&["inspect", "-f", "{{.State.Running}}", "dk"]),
        "true\n"
    );
    // attach with other detach keys.
    let mut p = Pty::spawn(
        common::WHARF,
        &host,
        &["attach", "--detach-keys", "ctrl-x", "dk"],
    );
    std::thread::sleep(Duration::from_millis(300));
    p.type_(b"echo again-$((1+1))\r");
    p.wait_for("again-2");
    p.type_(b"\x18");
    let (code, text) = p.exit();
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        t.ok(&["inspect", "-f", "{{.State.Running}}", "dk"]),
        "true\n"
    );
    // exec -it into it.
    let mut p = Pty::spawn(common::WHARF, &host, &["exec", "-it", "dk", "sh"]);
    p.wait_for("# ");
    p.type_(b"tty; exit 3\r");
    let (code, text) = p.exit();
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("/dev/pts/"), "{text}");
    // -t without a terminal on stdin: docker's error.
    let (code, err) = t.same_error(&["exec", "-it", "dk", "true"]);
    assert_eq!(code, 1);
    assert_eq!(err, "the input device is not a TTY\n");
    t.ok(&["rm", "-f", "dk"]);
}

// ---------------------------------------------------------------------------------------
// Without a daemon: help, completion, connection errors.

#[test]
fn help_aliases_and_completion() {
    let wharf = |args: &[&str]| {
        Command::new(common::WHARF)
            .args(args)
            .env("WHARF_HOST", "unix:///nonexistent/wharf.sock")
            .output()
            .unwrap()
    };
    let help = stdout(&wharf(&["--help"]));
    let commands = [
        "run",
        "create",
        "start",
        "stop",
        "restart",
        "kill",
        "rm",
        "ps",
        "logs",
        "attach",
        "exec",
        "inspect",
        "top",
        "stats",
        "cp",
        "diff",
        "export",
        "commit",
        "pause",
        "unpause",
        "rename",
        "update",
        "wait",
        "port",
        "images",
        "rmi",
        "pull",
        "push",
        "tag",
        "save",
        "load",
        "import",
        "history",
        "login",
        "logout",
        "version",
        "info",
        "events",
        "container",
        "image",
        "volume",
        "network",
        "system",
        "build",
        "builder",
        "completion",
    ];
    for c in commands {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{c} "))),
            "{c} in wharf --help"
        );
        let o = wharf(&[c, "--help"]);
        assert_eq!(o.status.code(), Some(0), "{c} --help");
        assert!(
            stdout(&o).contains(&format!("Usage: wharf {c}")),
            "{c} --help: {}",
            stdout(&o)
        );
    }
    // Management commands and aliases, as docker names them.
    for (group, subs) in [
        (
            "container",
            &[
                "attach", "commit", "cp", "create", "diff", "exec", "export", "inspect", "kill",
                "logs", "ls", "list", "ps", "pause", "port", "prune", "rename", "restart", "rm",
                "remove", "run", "start", "stats", "stop", "top", "unpause", "update", "wait",
            ][..],
        ),
        (
            "image",
            &[
                "build", "history", "import", "inspect", "load", "ls", "list", "prune", "pull",
                "push", "rm", "remove", "rmi", "save", "tag",
            ],
        ),
        ("builder", &["build", "prune"]),
        (
            "volume",
            &["create", "inspect", "ls", "list", "prune", "rm", "remove"],
        ),
        (
            "network",
            &[
                "connect",
                "create",
                "disconnect",
                "inspect",
                "ls",
                "list",
                "prune",
                "rm",
                "remove",
            ],
        ),
        ("system", &["df", "events", "info", "prune"]),
    ] {
        for s in subs {
            let o = wharf(&[group, s, "--help"]);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{group} {s} --help: {}",
                stderr(&o)
            );
        }
    }
    // Flags in run's help, as docker spells them.
    let run = stdout(&wharf(&["run", "--help"]));
    for f in [
        "-d, --detach",
        "-i, --interactive",
        "-t, --tty",
        "--rm",
        "--name",
        "-e, --env",
        "--env-file",
        "-w, --workdir",
        "-u, --user",
        "-l, --label",
        "--entrypoint",
        "-h, --hostname",
        "--restart",
        "--init",
        "-m, --memory",
        "--memory-swap",
        "--cpus",
        "--cpu-shares",
        "--cpuset-cpus",
        "--pids-limit",
        "--ulimit",
        "--cap-add",
        "--cap-drop",
        "--privileged",
        "--security-opt",
        "--read-only",
        "--network",
        "-p, --publish",
        "-P, --publish-all",
        "-v, --volume",
        "--mount",
        "--tmpfs",
        "--device",
        "--stop-signal",
        "--stop-timeout",
        "--log-driver",
        "--log-opt",
        "--sig-proxy",
        "--detach-keys",
        "--platform",
        "--pull",
        "--network-alias",
        "--ip",
        "--ip6",
    ] {
        assert!(run.contains(f), "{f} in run --help");
    }
    // Every flag docker's help lists is in ours, or refused by name (never ignored).
    if common::have_docker() {
        for cmd in [
            "run",
            "create",
            "start",
            "stop",
            "restart",
            "kill",
            "rm",
            "ps",
            "logs",
            "attach",
            "exec",
            "inspect",
            "top",
            "stats",
            "cp",
            "diff",
            "export",
            "commit",
            "pause",
            "unpause",
            "rename",
            "update",
            "wait",
            "port",
            "container prune",
            "images",
            "image inspect",
            "image rm",
            "image prune",
            "history",
            "tag",
            "save",
            "load",
            "import",
            "network create",
            "network ls",
            "network inspect",
            "network rm",
            "network prune",
            "network connect",
            "network disconnect",
            "volume create",
            "volume ls",
            "volume inspect",
            "volume rm",
            "volume prune",
            "system df",
            "system events",
            "system prune",
            "version",
            "info",
            "build",
            "builder prune",
        ] {
            let words: Vec<&str> = cmd.split(' ').collect();
            let help_of = |bin: &str| {
                let mut a = words.clone();
                a.push("--help");
                // The classic builder's help (the build API wharf speaks).
                let o = Command::new(bin)
                    .args(&a)
                    .env("DOCKER_BUILDKIT", "0")
                    .output()
                    .unwrap();
                stdout(&o)
            };
            let ours = help_of(common::WHARF);
            for line in help_of(common::DOCKER).lines() {
                let Some(flag) = line
                    .split_whitespace()
                    .find(|w| w.starts_with("--"))
                    .filter(|_| line.trim_start().starts_with('-'))
                else {
                    continue;
                };
                let flag = flag.trim_end_matches(',');
                let listed = ours.lines().any(|l| {
                    l.trim_start().starts_with('-')
                        && l.split_whitespace()
                            .any(|w| w.trim_end_matches(',').split(['[', '=']).next() == Some(flag))
                });
                if listed {
                    continue;
                }
                let mut a = words.clone();
                a.extend([flag, "x"]);
                let o = wharf(&a);
                assert_eq!(
                    o.status.code(),
                    Some(125),
                    "wharf {cmd} {flag}: {}",
                    stderr(&o)
                );
                assert!(
                    stderr(&o).contains(&format!("{flag} is not supported yet")),
                    "wharf {cmd} {flag}: {}",
                    stderr(&o)
                );
            }
        }
    }
    // Unknown commands as docker reports them; docker's commands wharf lacks say so.
    for args in [
        &["foo"][..],
        &["image", "foo"],
        &["-H", "unix:///x", "nope"],
    ] {
        let o = wharf(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        if common::have_docker() {
            let k = Command::new(common::DOCKER).args(args).output().unwrap();
            assert_eq!(
                stderr(&o),
                stderr(&k).replace("docker", "wharf"),
                "{args:?}"
            );
        }
    }
    let o = wharf(&["swarm", "init"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("'swarm' is not supported yet"),
        "{}",
        stderr(&o)
    );
    // completion scripts.
    for (shell, mark) in [
        ("bash", "_wharf()"),
        ("zsh", "#compdef wharf"),
        ("fish", "__fish_wharf_global_optspecs"),
    ] {
        let o = wharf(&["completion", shell]);
        assert!(o.status.success(), "completion {shell}");
        let s = stdout(&o);
        assert!(s.contains(mark), "completion {shell}");
        assert!(
            s.contains("network") && s.contains("detach-keys"),
            "completion {shell}"
        );
    }
    // No daemon: the address and how to start it; 1, or 125 for run.
    let o = wharf(&["ps"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Cannot connect to the wharf daemon at unix:///nonexistent/wharf.sock. Is wharfd running? Start it with: sudo wharfd\n"
    );
    assert_eq!(wharf(&["run", "busybox"]).status.code(), Some(125));
    // Missing arguments exit 1, unknown flags 125, --help 0.
    assert_eq!(wharf(&["rm"]).status.code(), Some(1));
    assert_eq!(wharf(&["ps", "--bogus"]).status.code(), Some(125));
}

// ---------------------------------------------------------------------------------------
// build and builder prune: the context (.dockerignore, -f inside and outside it, stdin),
// the flags, the classic builder's plain output (the same as the docker CLI's with
// DOCKER_BUILDKIT=0), failures, -q/--iidfile, the live view, and the cache's prune.

fn write_file(dir: &std::path::Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// The id `Successfully built <id>` names.
fn built_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .unwrap_or_else(|| panic!("no 'Successfully built' in:\n{out}"))
        .trim()
        .to_string()
}

/// The docker CLI's stderr without its legacy-builder deprecation notice.
fn without_deprecation(s: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for l in s.lines() {
        if l.starts_with("DEPRECATED: The legacy builder") {
            skipping = true;
            continue;
        }
        if skipping && (l.starts_with("            ") || l.is_empty()) {
            continue;
        }
        skipping = false;
        out.push_str(l);
        out.push('\n');
    }
    out
}

scenario!(build_secrets);
/// `wharf build --secret`: against wharfd the secret reaches its RUN step as a file (mode
/// 0400) and as a variable, and neither the image nor the build cache keeps it; against a
/// daemon with only the classic build API it is refused before anything is sent.
fn build_secrets(t: &Target) {
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    write_file(
        c,
        "Dockerfile",
        "FROM busybox\n\
         RUN --mount=type=secret,id=tok stat -c 'mode %a size %s' /run/secrets/tok\n\
         RUN --mount=type=secret,id=api,env=API_KEY echo \"env length ${#API_KEY}\"\n",
    );
    let file = c.join("../tok.txt");
    std::fs::write(&file, "s3cr3t-value").unwrap();
    let tok = format!("id=tok,src={}", file.display());
    let dir = c.to_str().unwrap();
    let args = [
        "build",
        NONE,
        "--secret",
        &tok,
        "--secret",
        "id=api,env=API_VALUE",
        "-t",
        "e2e-secret:1",
        dir,
    ];
    let o = t.client_env(
        common::WHARF,
        &args,
        None,
        &[("API_VALUE", "value-from-env")],
    );
    if t.is_dockerd() {
        assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
        assert!(
            stderr(&o).contains("--secret needs wharfd"),
            "{}",
            stderr(&o)
        );
        return;
    }
    let out = stdout(&o);
    assert!(
        o.status.success(),
        "{out}
{}",
        stderr(&o)
    );
    assert!(
        out.contains("mode 400 size 12") && out.contains("env length 14"),
        "{out}"
    );
    // Not in the image (not even the mount's stub /run/secrets: busybox has no /run), its
    // config or its history.
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            NONE,
            "e2e-secret:1",
            "sh",
            "-c",
            "test ! -e /run && echo clean"
        ]),
        "clean\n"
    );
    let doc = t.ok(&["image", "inspect", "e2e-secret:1"]);
    let hist = t.ok(&["history", "--no-trunc", "e2e-secret:1"]);
    for text in [&doc, &hist] {
        assert!(
            !text.contains("s3cr3t") && !text.contains("value-from-env"),
            "{text}"
        );
    }
    // A missing required secret names itself and how to pass it.
    write_file(
        c,
        "Dockerfile",
        "FROM busybox
RUN --mount=type=secret,id=need,required=true true
",
    );
    let o = t.client(common::WHARF, &["build", NONE, dir], None);
    assert!(!o.status.success());
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("secret need not found"), "{all}");
}

scenario!(build_and_builder_prune);
fn build_and_builder_prune(t: &Target) {
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    write_file(
        c,
        "Dockerfile",
        "FROM busybox\n\
         ARG GREETING=hi\n\
         ARG FROMENV=unset\n\
         RUN echo \"$GREETING $FROMENV\" > /greeting && echo to-stderr >&2\n\
         COPY . /ctx/\n\
         CMD [\"cat\", \"/greeting\"]\n",
    );
    write_file(c, ".dockerignore", "secret.txt\n*.log\n!keep.log\n");
    write_file(c, "secret.txt", "s3cret\n");
    write_file(c, "a.log", "a\n");
    write_file(c, "keep.log", "k\n");
    write_file(c, "app/main.txt", "v1\n");
    let dir = c.to_str().unwrap();
    let env = [("FROMENV", "from-the-env")];
    let args = [
        "build",
        NONE,
        "-t",
        "e2e-build:1",
        "-t",
        "e2e-build:alias",
        "--build-arg",
        "GREETING=hello",
        "--build-arg",
        "FROMENV",
        "--label",
        "made=by-e2e",
        dir,
    ];
    let o = t.client_env(common::WHARF, &args, None, &env);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    println!("--- wharf build ---\n{out}");
    for want in [
        "Sending build context to Docker daemon ",
        "Step 1/7 : FROM busybox",
        "Step 4/7 : RUN echo \"$GREETING $FROMENV\" > /greeting && echo to-stderr >&2",
        " ---> Running in ",
        "to-stderr",
        "Successfully tagged e2e-build:1",
        "Successfully tagged e2e-build:alias",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(out.starts_with("Sending build context"), "{out}");
    let id = built_id(&out);
    assert_eq!(
        t.ok(&["run", "--rm", NONE, "e2e-build:1"]),
        "hello from-the-env\n"
    );
    // .dockerignore: excluded files stay out, the exception and the build files go in.
    assert_eq!(
        t.ok(&["run", "--rm", NONE, "e2e-build:1", "ls", "-A", "/ctx"]),
        ".dockerignore\nDockerfile\napp\nkeep.log\n"
    );
    assert_eq!(
        t.ok(&[
            "image",
            "inspect",
            "-f",
            "{{.Config.Labels.made}}",
            "e2e-build:1"
        ]),
        "by-e2e\n"
    );
    // A rebuild is all cache: the docker CLI prints the very same.
    let again = t.client_env(common::WHARF, &args, None, &env);
    assert!(again.status.success(), "{}", stderr(&again));
    let again_out = stdout(&again);
    assert_eq!(built_id(&again_out), id);
    assert!(again_out.contains(" ---> Using cache"), "{again_out}");
    if common::have_docker() {
        let k = t.client_env(common::DOCKER, &args, None, &env);
        println!("--- docker build ---\n{}", stdout(&k));
        assert!(k.status.success(), "{}", stderr(&k));
        // Against wharfd, wharf's CLI sends only what changed (nothing here: the end of an
        // empty tar) where the docker CLI sends the whole context; the rest is the same.
        let (mut ours, theirs) = (again_out.clone(), stdout(&k));
        if !t.is_dockerd() {
            let sent = "Sending build context to Docker daemon  1.024kB\r\r\n";
            assert!(ours.starts_with(sent), "{ours}");
            let first = theirs.split_inclusive('\n').next().unwrap_or_default();
            ours = ours.replacen(sent, first, 1);
        }
        assert_eq!(
            ours, theirs,
            "wharf (left) and docker (right) builds differ"
        );
    }
    // -q prints the id only, --iidfile writes it; the same as docker's.
    let iid = c.join("../e2e-iid");
    let iid_s = iid.to_str().unwrap().to_string();
    let full_id = t.ok(&["image", "inspect", "-f", "{{.Id}}", "e2e-build:1"]);
    assert!(full_id.starts_with(&format!("sha256:{id}")), "{full_id}");
    let mut qargs = args.to_vec();
    qargs.splice(1..1, ["-q", "--iidfile", &iid_s]);
    let q = t.client_env(common::WHARF, &qargs, None, &env);
    assert!(q.status.success(), "{}", stderr(&q));
    assert_eq!(stdout(&q), full_id);
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), full_id);
    if common::have_docker() {
        let k = t.client_env(common::DOCKER, &qargs, None, &env);
        assert_eq!(stdout(&k), full_id, "{}", stderr(&k));
        assert_eq!(std::fs::read_to_string(&iid).unwrap(), full_id);
    }
    let iid2 = c.join("../e2e-iid2");
    let plain_iid = iid2.to_str().unwrap();
    let mut iargs = args.to_vec();
    iargs.splice(1..1, ["--iidfile", plain_iid]);
    let o = t.client_env(common::WHARF, &iargs, None, &env);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&iid2).unwrap(), full_id.trim());
    let _ = std::fs::remove_file(&iid);
    let _ = std::fs::remove_file(&iid2);

    // -f: a Dockerfile inside the context by its path, one outside it (sent under a random
    // name that stays out of the image), --target of a multi-stage file.
    write_file(
        c,
        "sub/Multi.dockerfile",
        "FROM busybox AS base\nRUN echo base > /base\nFROM base AS final\nRUN echo final > /final\n",
    );
    let multi = c.join("sub/Multi.dockerfile");
    let multi = multi.to_str().unwrap();
    t.ok(&[
        "build", NONE, "-q", "-f", multi, "--target", "base", "-t", "e2e-base", dir,
    ]);
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            NONE,
            "e2e-base",
            "sh",
            "-c",
            "cat /base; ls /final 2>&1 || true"
        ]),
        "base\nls: /final: No such file or directory\n"
    );
    t.ok(&["build", NONE, "-q", "-f", multi, "-t", "e2e-final", dir]);
    assert_eq!(
        t.ok(&["run", "--rm", NONE, "e2e-final", "cat", "/final"]),
        "final\n"
    );
    let outside = tempfile::tempdir().unwrap();
    write_file(
        outside.path(),
        "Outside.df",
        "FROM busybox\nCOPY . /ctx/\nRUN ls -A /ctx > /listing\n",
    );
    let out_df = outside.path().join("Outside.df");
    let o = t.wharf(&[
        "build",
        NONE,
        "-f",
        out_df.to_str().unwrap(),
        "-t",
        "e2e-outside",
        dir,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Step 3/3 : RUN ls -A /ctx > /listing"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        t.ok(&["run", "--rm", NONE, "e2e-outside", "cat", "/listing"]),
        ".dockerignore\nDockerfile\napp\nkeep.log\nsub\n"
    );
    // -f - with a context directory, and a Dockerfile or a tar as the context on stdin.
    let o = t.wharf_stdin(
        &["build", NONE, "-q", "-f", "-", "-t", "e2e-stdin-df", dir],
        b"FROM busybox\nCOPY keep.log /k\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        t.ok(&["run", "--rm", NONE, "e2e-stdin-df", "cat", "/k"]),
        "k\n"
    );
    let o = t.wharf_stdin(
        &["build", NONE, "-t", "e2e-stdin", "-"],
        b"FROM busybox\nRUN echo from-stdin > /s\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("Sending build context to Docker daemon "),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        t.ok(&["run", "--rm", NONE, "e2e-stdin", "cat", "/s"]),
        "from-stdin\n"
    );
    let mut tb = tar::Builder::new(Vec::new());
    for (name, text) in [
        ("Dockerfile.tar", "FROM busybox\nCOPY f.txt /f.txt\n"),
        ("f.txt", "in-a-tar\n"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        tb.append_data(&mut h, name, text.as_bytes()).unwrap();
    }
    let tarball = tb.into_inner().unwrap();
    let o = t.wharf_stdin(
        &[
            "build",
            NONE,
            "-q",
            "-f",
            "Dockerfile.tar",
            "-t",
            "e2e-tar",
            "-",
        ],
        &tarball,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        t.ok(&["run", "--rm", NONE, "e2e-tar", "cat", "/f.txt"]),
        "in-a-tar\n"
    );

    // The RUN containers' host settings: --add-host, --shm-size, -m.
    write_file(
        c,
        "Host.df",
        "FROM busybox\nRUN grep myhost /etc/hosts | tr -s ' \\t' ' ' > /h && \
         df -k /dev/shm | tail -1 | tr -s ' ' | cut -d' ' -f2 > /shm && \
         (cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes) > /mem\n",
    );
    let host_df = c.join("Host.df");
    t.ok(&[
        "build",
        NONE,
        "-q",
        "-f",
        host_df.to_str().unwrap(),
        "--add-host",
        "myhost:10.1.2.3",
        "--shm-size",
        "32m",
        "-m",
        "256m",
        "-t",
        "e2e-host",
        dir,
    ]);
    assert_eq!(
        t.ok(&["run", "--rm", NONE, "e2e-host", "cat", "/h", "/shm", "/mem"]),
        "10.1.2.3 myhost\n32768\n268435456\n"
    );

    // A failing step: its output, then docker's message and exit status.
    write_file(
        c,
        "Fail.df",
        "FROM busybox\nRUN echo before-the-failure && exit 3\n",
    );
    let fail = c.join("Fail.df");
    let fargs = ["build", NONE, "-f", fail.to_str().unwrap(), dir];
    let o = t.wharf(&fargs);
    assert!(stdout(&o).contains("before-the-failure"), "{}", stdout(&o));
    assert_eq!(
        stderr(&o),
        "The command '/bin/sh -c echo before-the-failure && exit 3' returned a non-zero code: 3\n"
    );
    if common::have_docker() {
        let k = t.docker(&fargs);
        assert_eq!(o.status.code(), k.status.code(), "{}", stderr(&k));
        assert_eq!(stderr(&o), without_deprecation(&stderr(&k)));
    } else {
        assert_ne!(o.status.code(), Some(0));
    }
    // With -q the output shows only then, on stderr.
    let o = t.wharf(&["build", NONE, "-q", "-f", fail.to_str().unwrap(), dir]);
    assert_eq!(stdout(&o), "");
    assert!(stderr(&o).contains("before-the-failure"), "{}", stderr(&o));
    assert!(
        stderr(&o).ends_with("returned a non-zero code: 3\n"),
        "{}",
        stderr(&o)
    );
    // Context errors, as docker reports them.
    let missing = c.join("nope");
    for args in [
        vec!["build", "/nonexistent/e2e-context"],
        vec!["build", "-f", missing.to_str().unwrap(), dir],
    ] {
        let o = t.wharf(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        if common::have_docker() {
            let k = t.docker(&args);
            assert_eq!(stderr(&o), without_deprecation(&stderr(&k)), "{args:?}");
        }
    }

    // The live view: a line per step with its time.
    let mut largs = args.to_vec();
    largs.splice(1..1, ["--progress", "tty"]);
    let o = t.client_env(common::WHARF, &largs, None, &env);
    assert!(o.status.success(), "{}", stderr(&o));
    let live = stdout(&o);
    assert!(!live.contains("Sending build context"), "{live}");
    assert!(live.contains("=> Step 4/7 : RUN echo"), "{live}");
    assert!(live.contains("CACHED"), "{live}");
    assert!(live.contains("\nSuccessfully built "), "{live}");
    assert!(
        live.contains("\nSuccessfully tagged e2e-build:alias\n"),
        "{live}"
    );

    // A failure in the live view: the step marked, its last lines kept, the same error.
    let fail_plain = t.wharf(&fargs);
    let mut lfargs = fargs.to_vec();
    lfargs.splice(1..1, ["--progress", "tty"]);
    let o = t.wharf(&lfargs);
    assert_eq!(o.status.code(), fail_plain.status.code());
    assert_eq!(stderr(&o), stderr(&fail_plain));
    let live = stdout(&o);
    assert!(live.contains(" ERROR"), "{live}");
    assert!(live.contains("\n  before-the-failure\n"), "{live}");

    // builder prune: the prompt, then what went.
    let prompt = t.wharf_stdin(&["builder", "prune"], b"n\n");
    assert!(prompt.status.success());
    assert_eq!(
        stdout(&prompt),
        "WARNING! This will remove all dangling build cache. Are you sure you want to continue? [y/N] "
    );
    if common::have_docker() {
        let k = t.client(common::DOCKER, &["builder", "prune"], Some(b"n\n"));
        assert_eq!(stdout(&prompt), stdout(&k));
    }
    let df = t.same(&["system", "df"]);
    assert!(df.contains("Build Cache"), "{df}");
    let dfv = t.same(&["system", "df", "-v"]);
    assert!(dfv.contains("\nCACHE ID "), "{dfv}");
    let pruned = t.ok(&["builder", "prune", "-af"]);
    assert!(pruned.ends_with("\n"), "{pruned}");
    if !t.is_dockerd() {
        assert!(
            pruned.starts_with("Deleted build cache objects:\n"),
            "{pruned}"
        );
        assert!(pruned.contains("\n\nTotal reclaimed space: "), "{pruned}");
    }
    // Nothing left: both clients say so alike.
    assert_eq!(
        t.same(&["builder", "prune", "-f", "--filter", "until=24h"]),
        "Total reclaimed space: 0B\n"
    );
    assert_eq!(
        t.same(&["builder", "prune", "-af"]),
        "Total reclaimed space: 0B\n"
    );
}

/// The build context is streamed: a 256 MiB context goes through a `wharf build` that never
/// holds much of it (a sink on a unix socket stands in for the daemon and counts the bytes).
#[test]
fn build_streams_its_context() {
    use std::os::unix::net::UnixListener;
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\n").unwrap();
    let size: u64 = 256 << 20;
    // Sparse: no disk used, read as zeros.
    std::fs::File::create(ctx.join("blob"))
        .unwrap()
        .set_len(size)
        .unwrap();
    let sock = dir.path().join("sink.sock");
    let l = UnixListener::bind(&sock).unwrap();
    let received = std::thread::spawn(move || -> u64 {
        loop {
            let (mut c, _) = l.accept().unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if c.read(&mut b).unwrap() == 0 {
                    break;
                }
                head.push(b[0]);
            }
            let head = String::from_utf8_lossy(&head).to_string();
            if !head.contains("/build?") {
                c.write_all(
                    b"HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK",
                )
                .unwrap();
                continue;
            }
            let mut n = 0u64;
            let mut tail = Vec::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let k = c.read(&mut buf).unwrap();
                if k == 0 {
                    break;
                }
                n += k as u64;
                tail.extend_from_slice(&buf[..k]);
                let cut = tail.len().saturating_sub(5);
                tail.drain(..cut);
                if tail == b"0\r\n\r\n" {
                    break;
                }
            }
            let msg = b"{\"stream\":\"Successfully built 0123456789ab\\n\"}\n";
            let _ = c.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    msg.len()
                )
                .as_bytes(),
            );
            let _ = c.write_all(msg);
            return n;
        }
    });
    let mut child = Command::new(common::WHARF)
        .arg("-H")
        .arg(format!("unix://{}", sock.display()))
        .args(["build", "--progress", "plain", ctx.to_str().unwrap()])
        .env_remove("DOCKER_API_VERSION")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Ok(s) = std::fs::read_to_string(&status_path) {
            if let Some(v) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            {
                peak_kb = v;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("Sending build context to Docker daemon  268.4MB\r\r\n"),
        "{}",
        stdout(&o)
    );
    assert!(received.join().unwrap() > size, "the whole context arrived");
    assert!(
        peak_kb > 0 && peak_kb < 64 * 1024,
        "wharf build held {peak_kb} kB for a 256 MiB context"
    );
}

scenario!(build_context_sync);
/// `wharf build` against wharfd sends its context's listing and then only what changed (the
/// classic tar to other daemons); each build sees the directory as it is: a file whose size
/// and mtime were set back after a change, a deleted file, a directory replaced at the same
/// path by one of the same names, sizes and mtimes, two builds at once. `builder prune`
/// drops the kept context (listed by `system df -v` as BuildKit lists it).
fn build_context_sync(t: &Target) {
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path().join("app");
    write_file(
        &c,
        "Dockerfile",
        "FROM busybox\nCOPY . /ctx/\nRUN cat /ctx/data/*.txt | md5sum > /sum\n",
    );
    for i in 0..50 {
        write_file(&c, &format!("data/f{i:02}.txt"), &format!("file {i:02}\n"));
    }
    let dir = c.to_str().unwrap().to_string();
    let build = |tag: &str| {
        let o = t.wharf(&["build", NONE, "-t", tag, &dir]);
        assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
        stdout(&o)
    };
    let show = |tag: &str| {
        t.ok(&[
            "run",
            "--rm",
            NONE,
            tag,
            "sh",
            "-c",
            "cat /ctx/data/f07.txt; ls /ctx/data | wc -l",
        ])
    };
    let first = build("e2e-sync:1");
    assert_eq!(show("e2e-sync:1"), "file 07\n50\n");
    let again = build("e2e-sync:1");
    assert_eq!(again.matches(" ---> Using cache").count(), 2, "{again}");
    assert_eq!(built_id(&again), built_id(&first));
    if !t.is_dockerd() {
        // Nothing changed: only the end of an empty tar is sent.
        assert!(
            again.starts_with("Sending build context to Docker daemon  1.024kB\r"),
            "{again}"
        );
        let df = t.ok(&["system", "df", "-v"]);
        assert!(df.contains("source.local"), "{df}");
    }
    // A change of the same size whose mtime is set back (as `touch -d`).
    let f = c.join("data/f07.txt");
    let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
    std::fs::write(&f, "FILE 07\n").unwrap();
    let fh = std::fs::File::options().write(true).open(&f).unwrap();
    fh.set_modified(mtime).unwrap();
    drop(fh);
    assert_eq!(std::fs::metadata(&f).unwrap().modified().unwrap(), mtime);
    build("e2e-sync:2");
    assert_eq!(show("e2e-sync:2"), "FILE 07\n50\n");
    // A deleted file is gone.
    std::fs::remove_file(c.join("data/f49.txt")).unwrap();
    build("e2e-sync:3");
    assert_eq!(show("e2e-sync:3"), "FILE 07\n49\n");
    // Another directory at the same path (the same id): same names, sizes and mtimes.
    let old = ctx.path().join("app.old");
    std::fs::rename(&c, &old).unwrap();
    write_file(
        &c,
        "Dockerfile",
        &std::fs::read_to_string(old.join("Dockerfile")).unwrap(),
    );
    for i in 0..49 {
        let name = format!("data/f{i:02}.txt");
        write_file(&c, &name, &format!("othr {i:02}\n"));
        let m = std::fs::metadata(old.join(&name))
            .unwrap()
            .modified()
            .unwrap();
        let fh = std::fs::File::options()
            .write(true)
            .open(c.join(&name))
            .unwrap();
        fh.set_modified(m).unwrap();
    }
    build("e2e-sync:4");
    assert_eq!(show("e2e-sync:4"), "othr 07\n49\n");
    // Two builds of one context at once.
    write_file(&c, "data/f00.txt", "both 00\n");
    std::thread::scope(|s| {
        let a = s.spawn(|| build("e2e-sync:5a"));
        let b = s.spawn(|| build("e2e-sync:5b"));
        a.join().unwrap();
        b.join().unwrap();
    });
    for tag in ["e2e-sync:5a", "e2e-sync:5b"] {
        assert_eq!(
            t.ok(&[
                "run",
                "--rm",
                NONE,
                tag,
                "head",
                "-c",
                "8",
                "/ctx/data/f00.txt"
            ]),
            "both 00\n"
        );
    }
    // Pruned: the next build sends everything again.
    t.ok(&["builder", "prune", "-a", "-f"]);
    if !t.is_dockerd() {
        let df = t.ok(&["system", "df", "-v"]);
        assert!(!df.contains("source.local"), "{df}");
    }
    let after = build("e2e-sync:6");
    assert!(!after.contains("daemon  1.024kB"), "{after}");
    for tag in ["1", "2", "3", "4", "5a", "5b", "6"] {
        let _ = t.wharf(&["rmi", &format!("e2e-sync:{tag}")]);
    }
}

scenario!(build_dockerfile_specific_dockerignore);
/// `<Dockerfile>.dockerignore` (BuildKit's rule, which `wharf build` applies to the context
/// it sends, so any daemon builds the same): next to the Dockerfile, it takes the place of
/// the context's `.dockerignore`.
fn build_dockerfile_specific_dockerignore(t: &Target) {
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    write_file(c, "sub/app.Dockerfile", "FROM busybox\nCOPY . /ctx/\n");
    write_file(c, "sub/app.Dockerfile.dockerignore", "per-file.txt\n*.md\n");
    write_file(c, ".dockerignore", "root-only.txt\n");
    for f in ["root-only.txt", "per-file.txt", "notes.md", "keep.txt"] {
        write_file(c, f, "x\n");
    }
    let dir = c.to_str().unwrap();
    let dockerfile = c.join("sub/app.Dockerfile");
    let args = [
        "build",
        NONE,
        "-f",
        dockerfile.to_str().unwrap(),
        "-t",
        "e2e-ignore:1",
        dir,
    ];
    let o = t.client(common::WHARF, &args, None);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let listing = t.ok(&["run", "--rm", NONE, "e2e-ignore:1", "ls", "-A", "/ctx"]);
    let names: Vec<&str> = listing.lines().collect();
    assert!(
        names.contains(&"keep.txt") && names.contains(&"root-only.txt"),
        "{listing}"
    );
    assert!(
        !names.contains(&"per-file.txt") && !names.contains(&"notes.md"),
        "{listing}"
    );
    // Without the Dockerfile's own file, the context's applies.
    std::fs::remove_file(c.join("sub/app.Dockerfile.dockerignore")).unwrap();
    let o = t.client(common::WHARF, &args, None);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let listing = t.ok(&["run", "--rm", NONE, "e2e-ignore:1", "ls", "-A", "/ctx"]);
    let names: Vec<&str> = listing.lines().collect();
    assert!(
        names.contains(&"per-file.txt") && names.contains(&"notes.md"),
        "{listing}"
    );
    assert!(!names.contains(&"root-only.txt"), "{listing}");
}
