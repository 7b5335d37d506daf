//! What runc's own bats suite (opencontainers/runc v1.1.5, tests/integration, run against
//! wharf-runtime by bench/runc-bats.sh) found, as tests of ours against runc: no operation
//! may hang on a container that cannot answer (a frozen cgroup), runc's exit codes and
//! messages where callers depend on them, and `spec` writing what `runc spec` writes (the
//! suite runs every container from it).
//!
//! Needs root (each test prints a note and passes otherwise), runc in /usr/sbin and busybox.

mod common;

use common::{cgroup_mounts, poll, Case, Rt, BOTH};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Stdio};

macro_rules! case {
    () => {
        match Case::new(module_path!()) {
            Some(c) => c,
            None => return,
        }
    };
}

/// The freezer file of cgroup `path` and the value that freezes it: v1's freezer.state, or
/// cgroup2's cgroup.freeze when there is no v1 freezer.
fn freezer(path: &str) -> Option<(PathBuf, &'static str)> {
    let mounts = cgroup_mounts();
    let rel = path.trim_start_matches('/');
    if let Some(m) = mounts.iter().find(|m| m.ends_with("freezer")) {
        return Some((m.join(rel).join("freezer.state"), "FROZEN"));
    }
    mounts
        .iter()
        .find(|m| m.join("cgroup.controllers").exists())
        .map(|m| (m.join(rel).join("cgroup.freeze"), "1"))
}

#[test]
fn create_in_a_frozen_cgroup_fails_at_once_and_leaves_the_cgroup() {
    // runc's cgroups.bats "runc run/create should refuse pre-existing frozen cgroup": the
    // init forked into it froze before its first answer, and create waited forever.
    let c = case!();
    let Some((_, _)) = freezer(&c.cgroup(Rt::Wharf)) else {
        wharf_testkit::skip("no freezer cgroup on this host");
        return;
    };
    for rt in BOTH {
        let (file, frozen) = freezer(&c.cgroup(rt)).unwrap();
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, frozen).unwrap();
    }
    // Case::cmd fails the test if a command runs longer than its timeout.
    let r = c.create_both();
    r.code_is(1)
        .message_has("container's cgroup unexpectedly frozen");
    for rt in BOTH {
        let (file, frozen) = freezer(&c.cgroup(rt)).unwrap();
        let got = std::fs::read_to_string(&file).unwrap_or_default();
        assert_eq!(
            got.trim(),
            frozen,
            "{rt}: the frozen cgroup was not left as it was"
        );
        assert!(
            c.root(rt).join(&c.id).read_dir().is_err(),
            "{rt}: a state directory was left behind"
        );
        // The same with run -d.
        let b = c.bundle(rt);
        let o = c.cmd(rt, &["run", "-d", "--bundle", b.to_str().unwrap(), &c.id]);
        assert_eq!(o.code, 1, "{rt}: run -d in a frozen cgroup\n{o}");
    }
}

#[test]
fn exec_in_a_paused_container_fails_with_255_and_ignore_paused_waits_for_resume() {
    // runc's cgroups.bats "runc exec should refuse a paused container" and
    // "runc exec --ignore-paused".
    let c = case!();
    c.args(&["sleep", "300"]);
    c.start_both();
    for rt in BOTH {
        c.cmd(rt, &["pause", &c.id]).expect_ok();
        let o = c.exec(rt, &["echo", "ok"]);
        assert_eq!(o.code, 255, "{rt}: exec in a paused container\n{o}");
        assert!(
            o.message().contains("cannot exec in a paused container"),
            "{rt}: {o}"
        );
        // Resumed a moment later by someone else: the exec waits for it and runs.
        let mut resume = Command::new("sh")
            .arg("-c")
            .arg(r#"sleep 1; exec "$0" --root "$1" resume "$2""#)
            .arg(rt.bin())
            .arg(c.root(rt))
            .arg(&c.id)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let o = c.cmd(rt, &["exec", "--ignore-paused", &c.id, "echo", "ok"]);
        let _ = resume.wait();
        assert!(
            o.ok() && o.stdout.trim() == "ok",
            "{rt}: exec --ignore-paused\n{o}"
        );
        assert_eq!(c.status(rt), "running", "{rt}");
    }
}

#[test]
fn exec_fails_with_255_when_the_runtime_fails() {
    // runc's exec.bats "runc exec [exit codes]": the process's status as is, 255 when the
    // runtime itself failed.
    let c = case!();
    c.args(&["sleep", "300"]);
    c.start_both();
    for rt in BOTH {
        assert_eq!(c.exec(rt, &["false"]).code, 1, "{rt}");
        assert_eq!(c.exec(rt, &["sh", "-c", "exit 42"]).code, 42, "{rt}");
        let o = c.cmd(
            rt,
            &[
                "exec",
                "--pid-file",
                "/non-existent/directory",
                &c.id,
                "true",
            ],
        );
        assert_eq!(o.code, 255, "{rt}: a pid file that cannot be written\n{o}");
    }
}

#[test]
fn a_paused_container_is_frozen_while_start_waits() {
    // `start` waits for the init to exec the process: a container frozen between create
    // and that moment fails start instead of hanging it.
    let c = case!();
    c.args(&["sleep", "300"]);
    c.create_both().both_ok();
    let o = c.cmd(Rt::Wharf, &["pause", &c.id]);
    // runc refuses to pause a created container; freeze its cgroup by hand then.
    if !o.ok() {
        let (file, frozen) = freezer(&c.cgroup(Rt::Wharf)).expect("a freezer");
        std::fs::write(file, frozen).unwrap();
    }
    let o = c.start(Rt::Wharf);
    assert!(!o.ok(), "start of a frozen container succeeded\n{o}");
    assert!(o.message().contains("frozen"), "{o}");
}

/// `spec` of `rt` in a fresh directory, as JSON.
fn spec_of(rt: Rt) -> Value {
    let d = tempfile::tempdir().unwrap();
    let st = Command::new(rt.bin())
        .args(["spec", "--bundle"])
        .arg(d.path())
        .status()
        .unwrap();
    assert!(st.success(), "{rt} spec: {st}");
    serde_json::from_slice(&std::fs::read(d.path().join("config.json")).unwrap()).unwrap()
}

#[test]
fn spec_writes_what_runc_spec_writes() {
    // The suite runs every container from `spec`: with `terminal: false` a `run -d
    // --console-socket` container kept the caller's stdout pipe (bats waited on it forever).
    if !common::is_root() {
        wharf_testkit::skip("runc needs root");
        return;
    }
    let (mut ours, mut runc) = (spec_of(Rt::Wharf), spec_of(Rt::Runc));
    for s in [&mut ours, &mut runc] {
        let o = s.as_object_mut().unwrap();
        o.remove("hostname");
        o.remove("ociVersion");
        o.remove("annotations");
        for caps in s["process"]["capabilities"]
            .as_object_mut()
            .unwrap()
            .values_mut()
        {
            caps.as_array_mut()
                .unwrap()
                .sort_by_key(|c| c.as_str().unwrap().to_string());
        }
    }
    assert_eq!(ours["process"]["terminal"], json!(true));
    assert_eq!(
        serde_json::to_string_pretty(&ours).unwrap(),
        serde_json::to_string_pretty(&runc).unwrap(),
        "wharf-runtime spec differs from runc spec"
    );
}

#[test]
fn a_detached_terminal_container_does_not_hold_the_callers_stdout() {
    // The hang itself: `run -d` with the default spec (a terminal) and a console socket
    // must return with its stdout closed, or a caller reading it (bats' `run`, a shell's
    // `$(...)`) waits as long as the container lives.
    let c = case!();
    for rt in BOTH {
        let mut cfg = c.config(rt);
        cfg["process"]["terminal"] = json!(true);
        cfg["process"]["args"] = json!(["sleep", "300"]);
        c.write_config(rt, &cfg);
    }
    for rt in BOTH {
        let dir = c.scratch(rt, "console");
        let sock = dir.join("sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let b = c.bundle(rt);
        let mut child = Command::new(rt.bin())
            .arg("--root")
            .arg(c.root(rt))
            .args(["run", "-d", "--console-socket"])
            .arg(&sock)
            .arg("--bundle")
            .arg(&b)
            .arg(&c.id)
            .env("WRT_CASE", c.tag(rt))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (_conn, _) = listener.accept().unwrap();
        let mut out = child.stdout.take().unwrap();
        // EOF on the pipe once the runtime is gone: nothing in the container holds it.
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut out, &mut s).map(|_| s)
        });
        let st = child.wait().unwrap();
        assert!(st.success(), "{rt}: run -d: {st}");
        let eof = poll(10, || reader.is_finished().then_some(()));
        assert!(
            eof.is_some(),
            "{rt}: the container still holds run -d's stdout"
        );
        assert_eq!(reader.join().unwrap().unwrap(), "", "{rt}");
        c.cmd(rt, &["delete", "-f", &c.id]).expect_ok();
    }
}

#[test]
fn events_lines_have_runcs_key_order_and_report_oom_kills() {
    // runc's events.bats matches the lines as text: `{"type":"stats","id":"<id>",...` and
    // `{"type":"oom","id":"<id>"}`.
    let c = case!();
    let limit = 16 << 20;
    c.edit(|c| c["linux"]["resources"]["memory"] = json!({"limit": limit, "swap": limit}));
    c.args(&["sleep", "300"]);
    c.start_both();
    for rt in BOTH {
        let o = c.cmd(rt, &["events", "--stats", &c.id]);
        o.expect_ok();
        let want = format!(r#"{{"type":"stats","id":"{}","data":{{"#, c.id);
        assert!(o.stdout.starts_with(&want), "{rt}: {o}");
    }
    // runc 1.1 reports an OOM kill only through cgroup v2's or v1's eventfd; ours polls.
    let rt = Rt::Wharf;
    let log = c.scratch(rt, "events").join("events.log");
    let mut events = Command::new(rt.bin())
        .arg("--root")
        .arg(c.root(rt))
        .args(["events", "--interval", "1s", &c.id])
        .env("WRT_CASE", c.tag(rt))
        .stdout(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let has = |s: &str| {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(s)
    };
    poll(10, || has(r#""type":"stats""#).then_some(())).expect("no stats event");
    // events.bats waits for the OOM with `grep -q oom events.log`: a stats line must not
    // match it (an extra "oom_kills" field did, and the suite deleted the container before
    // the kill).
    for rt in BOTH {
        let o = c.cmd(rt, &["events", "--stats", &c.id]);
        assert!(
            !o.stdout.contains("oom"),
            "{rt}: a stats line says oom: {o}"
        );
    }
    let hog = "head -c 64m /dev/zero | (echo 1000 > /proc/self/oom_score_adj; exec tail)";
    c.exec(rt, &["sh", "-c", hog]);
    let oom = format!(r#"{{"type":"oom","id":"{}"}}"#, c.id);
    let got = poll(10, || has(&oom).then_some(()));
    let _ = events.kill();
    let _ = events.wait();
    assert!(
        got.is_some(),
        "no oom event: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

#[test]
fn a_console_socket_that_never_accepts_is_an_error() {
    // A listener that never accepts, with a full backlog: a blocking connect would wait
    // for as long as it lives.
    use nix::sys::socket::{bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType};
    let c = case!();
    let rt = Rt::Wharf;
    let mut cfg = c.config(rt);
    cfg["process"]["terminal"] = json!(true);
    c.write_config(rt, &cfg);
    let sock = c.scratch(rt, "console").join("sock");
    let l = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&l),
        &nix::sys::socket::UnixAddr::new(&sock).unwrap(),
    )
    .unwrap();
    listen(&l, Backlog::new(0).unwrap()).unwrap();
    // Fill the backlog (non-blocking connects: past the backlog they fail with EAGAIN).
    let _queued: Vec<_> = (0..2)
        .map(|_| {
            let s = socket(
                AddressFamily::Unix,
                SockType::Stream,
                SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
                None,
            )
            .unwrap();
            let _ = nix::sys::socket::connect(
                std::os::fd::AsRawFd::as_raw_fd(&s),
                &nix::sys::socket::UnixAddr::new(&sock).unwrap(),
            );
            s
        })
        .collect();
    let b = c.bundle(rt);
    let o = c.cmd(
        rt,
        &[
            "create",
            "--console-socket",
            sock.to_str().unwrap(),
            "--bundle",
            b.to_str().unwrap(),
            &c.id,
        ],
    );
    assert_eq!(o.code, 1, "{o}");
    assert!(o.message().contains("did not accept"), "{o}");
    c.assert_clean(rt, "a failed create");
}

#[test]
fn kill_all_of_a_stopped_container_is_no_error_and_signal_0_checks() {
    // runc's kill.bats "kill detached busybox".
    let c = case!();
    c.args(&["sleep", "300"]);
    c.start_both();
    c.both(&["kill", "{id}", "0"]).both_ok();
    c.both(&["kill", "{id}", "KILL"]).both_ok();
    for rt in BOTH {
        c.wait_status(rt, "stopped");
    }
    let r = c.both(&["kill", "{id}", "0"]);
    r.each("a failure", |o| !o.ok());
    c.both(&["kill", "-a", "{id}", "0"]).both_ok();
    c.both(&["kill", "-a", "{id}", "KILL"]).both_ok();
    c.both(&["delete", "{id}"]).both_ok();
}

#[test]
fn the_terminal_belongs_to_the_process_user() {
    // runc's tty.bats "runc run [tty owner] ({u,g}id != 0)": owner uid 1000, group tty (5).
    let c = case!();
    for rt in BOTH {
        let mut cfg = c.config(rt);
        cfg["process"]["terminal"] = json!(true);
        cfg["process"]["user"] = json!({"uid": 1000, "gid": 100});
        cfg["process"]["args"] = json!(["sh", "-c", "stat -c %u:%g $(tty) > /out/owner"]);
        c.write_config(rt, &cfg);
    }
    c.bind_scratch("out", "/out");
    for rt in BOTH {
        use std::os::unix::fs::PermissionsExt;
        let perm = std::fs::Permissions::from_mode(0o777);
        std::fs::set_permissions(c.scratch(rt, "out"), perm).unwrap();
        let dir = c.scratch(rt, "console");
        let sock = dir.join("sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let accept = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            // Keep the connection (and so the pty master) until the container is done.
            std::thread::sleep(std::time::Duration::from_secs(3));
            drop(conn);
        });
        let b = c.bundle(rt);
        c.cmd(
            rt,
            &[
                "run",
                "-d",
                "--console-socket",
                sock.to_str().unwrap(),
                "--bundle",
                b.to_str().unwrap(),
                &c.id,
            ],
        )
        .expect_ok();
        let out = c.scratch(rt, "out").join("owner");
        let got = poll(10, || {
            std::fs::read_to_string(&out)
                .ok()
                .filter(|s| s.ends_with('\n'))
        });
        assert_eq!(got.as_deref(), Some("1000:5\n"), "{rt}: the pty's owner");
        let _ = accept.join();
        c.cmd(rt, &["delete", "-f", &c.id]).expect_ok();
    }
}

#[test]
fn exec_takes_a_process_file_without_user() {
    // runc's tty.bats "runc exec [tty consolesize]" writes such a process.json.
    let c = case!();
    c.args(&["sleep", "300"]);
    c.start_both();
    for rt in BOTH {
        let p = c.scratch(rt, "proc").join("process.json");
        std::fs::write(
            &p,
            r#"{"args": ["sh", "-c", "id -u; pwd"], "env": ["PATH=/bin"], "cwd": "/tmp"}"#,
        )
        .unwrap();
        let o = c.cmd(rt, &["exec", "-p", p.to_str().unwrap(), &c.id]);
        assert!(o.ok() && o.stdout == "0\n/tmp\n", "{rt}: {o}");
    }
}

#[test]
fn create_warns_about_a_cgroup_that_is_not_empty() {
    // runc's cgroups.bats "runc run/create should warn about a non-empty cgroup".
    let c = case!();
    c.args(&["sleep", "300"]);
    c.start_both();
    for rt in BOTH {
        let b = c.bundle(rt);
        let second = format!("{}-2", c.id);
        let o = c.create_id(rt, &second);
        let _ = b;
        o.expect_ok();
        assert!(
            o.stderr.contains("container's cgroup is not empty"),
            "{rt}: no warning\n{o}"
        );
    }
}

#[test]
fn unified_resources_on_cgroup_v1_are_an_invalid_configuration() {
    // runc's cgroups.bats "runc run (cgroup v1 + unified resources should fail)".
    let c = case!();
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        wharf_testkit::skip("a cgroup v1 check, on a cgroup v2 host");
        return;
    }
    c.edit(|c| c["linux"]["resources"]["unified"] = json!({"memory.min": "131072"}));
    c.run_both().code_is(1).message_has("invalid configuration");
    for rt in BOTH {
        c.assert_clean(rt, "a refused run");
    }
}

#[test]
fn update_takes_sizes_with_suffixes_and_minus_one() {
    // runc's update.bats "update cgroup v1/v2 common limits" and "update cgroup cpu limits".
    let c = case!();
    c.args(&["sleep", "300"]);
    c.edit(|c| c["linux"]["resources"]["cpu"] = json!({"quota": 50000, "period": 100000}));
    c.start_both();
    c.both(&["update", "{id}", "--memory", "50M"]).both_ok();
    c.both(&["update", "{id}", "--cpu-quota", "-1"]).both_ok();
    c.both(&["update", "{id}", "--cpu-share", "200"]).both_ok();
    c.both(&["update", "{id}", "--memory-reservation", "32M"])
        .both_ok();
    for rt in BOTH {
        let mem = common::cgroup_file(&c.cgroup(rt), "memory", "memory.limit_in_bytes");
        let quota = common::cgroup_file(&c.cgroup(rt), "cpu", "cpu.cfs_quota_us");
        if mem.is_none() {
            eprintln!("skipping the file checks: no v1 memory controller");
            return;
        }
        assert_eq!(mem.as_deref(), Some("52428800"), "{rt}: memory limit");
        assert_eq!(quota.as_deref(), Some("-1"), "{rt}: cpu quota");
        let soft = common::cgroup_file(&c.cgroup(rt), "memory", "memory.soft_limit_in_bytes");
        assert_eq!(
            soft.as_deref(),
            Some("33554432"),
            "{rt}: memory reservation"
        );
        let shares = common::cgroup_file(&c.cgroup(rt), "cpu", "cpu.shares");
        assert_eq!(shares.as_deref(), Some("200"), "{rt}: cpu shares");
    }
}

#[test]
fn unknown_letters_in_a_device_rules_access_are_ignored() {
    // runc's update.bats "update devices [minimal transition rules]" denies /dev/kmsg
    // with access "rwa".
    let c = case!();
    c.edit(|c| {
        c["linux"]["resources"]["devices"] = json!([
            {"allow": false, "access": "rwm"},
            {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "rwa"}
        ]);
    });
    c.sh("echo ok");
    c.run_both().both_ok().stdout_is("ok");
}

#[test]
fn a_config_device_is_denied_unless_the_resources_allow_it() {
    // runc's dev.bats "runc run/update [device cgroup deny]": /dev/kmsg is created from
    // linux.devices, but the cgroup denies everything but the defaults (also after update).
    let c = case!();
    c.edit(|c| {
        c["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"}]);
        c["linux"]["devices"] =
            json!([{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}]);
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYSLOG"));
        }
    });
    c.args(&["sleep", "300"]);
    c.start_both();
    for _ in 0..2 {
        for rt in BOTH {
            let o = c.exec(rt, &["sh", "-c", "head -n 1 /dev/kmsg"]);
            assert!(
                !o.ok() && o.stderr.contains("Operation not permitted"),
                "{rt}: /dev/kmsg readable\n{o}"
            );
        }
        c.both(&["update", "{id}", "--pids-limit", "42"]).both_ok();
    }
}

#[test]
fn seccomp_filters_the_native_abi_even_when_only_others_are_listed() {
    // runc's seccomp.bats "SCMP_ACT_ERRNO default" / "explicit errno": the profile lists
    // SCMP_ARCH_X86 and SCMP_ARCH_X32 only, and mkdir on x86_64 is still denied.
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let c = case!();
    c.tmpfs("/tmp");
    c.sh("mkdir /tmp/foo");
    for (rule, want) in [
        (
            json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}),
            "Operation not permitted",
        ),
        (
            json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 100}),
            "Network is down",
        ),
    ] {
        c.edit(|c| {
            c["process"]["noNewPrivileges"] = json!(false);
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [rule.clone()]
            });
        });
        c.run_both().each("a failure", |o| !o.ok()).stderr_has(want);
    }
}

#[test]
fn exec_sizes_the_terminal_from_console_size() {
    // runc's tty.bats "runc exec [tty consolesize]".
    let c = case!();
    c.args(&["sleep", "300"]);
    c.start_both();
    for rt in BOTH {
        let p = c.scratch(rt, "proc").join("process.json");
        let proc_ = json!({"terminal": true, "consoleSize": {"height": 10, "width": 110},
            "args": ["stty", "size"], "cwd": "/", "env": ["PATH=/bin"]});
        std::fs::write(&p, proc_.to_string()).unwrap();
        let sock = c.scratch(rt, "console").join("sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let reader = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let fds = receive_fd(&conn);
            let mut out = Vec::new();
            let mut f = std::fs::File::from(fds);
            let _ = std::io::Read::read_to_end(&mut f, &mut out);
            String::from_utf8_lossy(&out).into_owned()
        });
        let o = c.cmd(
            rt,
            &[
                "exec",
                "-d",
                "--console-socket",
                sock.to_str().unwrap(),
                "-p",
                p.to_str().unwrap(),
                &c.id,
            ],
        );
        o.expect_ok();
        let got = reader.join().unwrap();
        assert!(got.contains("10 110"), "{rt}: stty size said {got:?}");
    }
}

/// The fd a runtime sent over `conn` (SCM_RIGHTS).
fn receive_fd(conn: &std::os::unix::net::UnixStream) -> std::os::fd::OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut buf = [0u8; 64];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .unwrap();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel installed this fd for us; nothing else owns it.
            return unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd received");
}

#[test]
fn a_failing_start_container_hook_is_reported_and_runs_under_seccomp() {
    // runc's seccomp.bats "runc run [seccomp] (startContainer hook)": the hook runs with
    // the filter applied, dies of SIGSYS, and `run` says so (after `start` the init's setup
    // socket has no reader: the error goes to the container's stderr).
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let c = case!();
    c.args(&["/bin/true"]);
    c.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL"}]
        });
        c["hooks"] = json!({"startContainer": [
            {"path": "/bin/sh", "args": ["sh", "-c", "mkdir /dev/shm/foo"]}
        ]});
    });
    c.run_both()
        .each("a failure", |o| !o.ok())
        .stderr_has("error running")
        .stderr_has("bad system call");
}

/// `bin` run as `<dir>/<name>` (a symlink), with `args`.
fn run_as(bin: &str, name: &str, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join(name);
    std::os::unix::fs::symlink(bin, &link).unwrap();
    Command::new(&link).args(args).output().unwrap()
}

#[test]
fn help_and_version_name_the_program_as_invoked() {
    // runc's help.bats and version.bats match runc's first lines: "NAME:", then
    // "   runc - Open Container Initiative runtime" (or "runc <command>"), "runc version X.Y.Z",
    // and "No help topic for 'foo'". Ours, run under the name "runc", says the same.
    for rt in BOTH {
        if rt == Rt::Runc && !std::path::Path::new(rt.bin()).exists() {
            continue;
        }
        let text = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
        for flag in ["-h", "--help"] {
            let o = run_as(rt.bin(), "runc", &[flag]);
            let t = text(&o);
            let lines: Vec<&str> = t.lines().collect();
            assert!(o.status.success(), "{rt} {flag}: {o:?}");
            assert_eq!(lines.first(), Some(&"NAME:"), "{rt}: {t}");
            assert!(
                lines[1].starts_with("   runc - Open Container Initiative runtime"),
                "{rt}: {t}"
            );
        }
        for sub in ["checkpoint", "exec", "list", "restore", "update"] {
            let o = run_as(rt.bin(), "runc", &[sub, "-h"]);
            let t = text(&o);
            assert!(o.status.success(), "{rt} {sub} -h: {o:?}");
            assert_eq!(t.lines().next(), Some("NAME:"), "{rt}: {t}");
            let want = format!("   runc {sub}");
            assert!(
                t.lines().nth(1).unwrap_or("").starts_with(&want),
                "{rt}: {t}"
            );
        }
        let o = run_as(rt.bin(), "runc", &["foo", "-h"]);
        assert!(!o.status.success(), "{rt}: foo -h succeeded");
        let all = format!("{}{}", text(&o), String::from_utf8_lossy(&o.stderr));
        assert!(all.contains("No help topic for 'foo'"), "{rt}: {all}");

        let o = run_as(rt.bin(), "runc", &["-v"]);
        let t = text(&o);
        let lines: Vec<&str> = t.lines().collect();
        assert!(o.status.success(), "{rt} -v: {o:?}");
        let v = lines[0].strip_prefix("runc version ").unwrap_or("");
        let num: Vec<&str> = v.split(['.', '+', ' ']).take(3).collect();
        assert!(
            num.len() == 3 && num.iter().all(|n| n.parse::<u32>().is_ok()),
            "{rt}: {t}"
        );
        assert!(lines[1].starts_with("commit:"), "{rt}: {t}");
        assert!(lines[2].starts_with("spec: "), "{rt}: {t}");
    }
    // Under its own name it says its own name.
    let o = run_as(Rt::Wharf.bin(), "wharf-runtime", &["-v"]);
    let t = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(t.starts_with("wharf-runtime version "), "{t}");
}

/// runc's debug messages at the steps of a container's setup that debug.bats and exec.bats
/// look for.
const INIT_STEPS: [&str; 3] = [
    "nsexec container setup",
    "child process in init()",
    "init: closing the pipe to signal completion",
];
const EXEC_STEPS: [&str; 3] = [
    "nsexec container setup",
    "child process in init()",
    "setns_init: about to exec",
];

#[test]
fn debug_logs_the_setup_steps_in_logrus_formats() {
    // runc's debug.bats: `--debug run` logs `level=debug` lines with the setup steps of the
    // container's processes to stderr, or to --log (then none to stderr), as text or JSON.
    let c = case!();
    c.args(&["echo", "hello"]);
    for rt in BOTH {
        let b = c.bundle(rt);
        let b = b.to_str().unwrap();
        let o = c.cmd(rt, &["--debug", "run", "--bundle", b, &c.id]);
        o.expect_ok();
        assert!(o.stderr.contains("level=debug"), "{rt}: {o}");
        for s in INIT_STEPS {
            assert!(o.stderr.contains(s), "{rt}: no {s:?} in\n{o}");
        }
        assert_eq!(o.stdout.trim(), "hello", "{rt}: {o}");
        for format in ["text", "json"] {
            let log = c.scratch(rt, "logs").join(format!("debug-{format}.log"));
            let l = log.to_str().unwrap();
            let o = c.cmd(
                rt,
                &[
                    "--log",
                    l,
                    "--log-format",
                    format,
                    "--debug",
                    "run",
                    "--bundle",
                    b,
                    &c.id,
                ],
            );
            o.expect_ok();
            assert!(!o.stderr.contains("level=debug"), "{rt}: {o}");
            let text = std::fs::read_to_string(&log).unwrap();
            for s in INIT_STEPS {
                assert!(text.contains(s), "{rt} {format}: no {s:?} in\n{text}");
            }
            if format == "json" {
                for line in text.lines() {
                    let v: Value = serde_json::from_str(line)
                        .unwrap_or_else(|e| panic!("{rt}: {line:?} is not JSON: {e}"));
                    assert!(
                        v["msg"].is_string() && v["time"].is_string(),
                        "{rt}: {line}"
                    );
                }
                assert!(text.contains(r#""level":"debug""#), "{rt}: {text}");
            } else {
                assert!(
                    text.lines().all(|l| l.starts_with("time=\"")),
                    "{rt}: {text}"
                );
                assert!(text.contains("level=debug"), "{rt}: {text}");
            }
        }
    }
}

#[test]
fn debug_exec_logs_the_setup_steps() {
    // runc's exec.bats "runc --debug exec" and "runc --debug --log exec".
    let c = case!();
    c.args(&["sleep", "300"]);
    c.start_both();
    for rt in BOTH {
        let o = c.cmd(rt, &["--debug", "exec", &c.id, "true"]);
        o.expect_ok();
        for s in EXEC_STEPS {
            assert!(o.stderr.contains(s), "{rt}: no {s:?} in\n{o}");
        }
        let log = c.scratch(rt, "logs").join("exec-debug.log");
        let l = log.to_str().unwrap();
        let o = c.cmd(rt, &["--debug", "--log", l, "exec", &c.id, "true"]);
        o.expect_ok();
        assert!(!o.stderr.contains("level=debug"), "{rt}: {o}");
        let text = std::fs::read_to_string(&log).unwrap();
        for s in EXEC_STEPS {
            assert!(text.contains(s), "{rt}: no {s:?} in\n{text}");
        }
    }
}

#[test]
fn exec_preserve_fds_passes_the_callers_descriptors() {
    // runc's exec.bats "runc exec --preserve-fds": fd 4 of the caller is fd 4 of the process.
    let c = case!();
    c.args(&["sleep", "300"]);
    c.start_both();
    for rt in BOTH {
        let f = c.scratch(rt, "fds").join("preserve-fds.test");
        std::fs::write(&f, "hello\n").unwrap();
        let o = Command::new("sh")
            .arg("-c")
            .arg(r#"exec 4<"$1"; exec "$0" --root "$2" exec --preserve-fds=2 "$3" cat /proc/self/fd/4"#)
            .arg(rt.bin())
            .arg(&f)
            .arg(c.root(rt))
            .arg(&c.id)
            .env("WRT_CASE", c.tag(rt))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{rt}: {o:?}");
        assert_eq!(out.trim(), "hello", "{rt}: {o:?}");
        // Without the flag the descriptor is not passed.
        let o = Command::new("sh")
            .arg("-c")
            .arg(r#"exec 4<"$1"; exec "$0" --root "$2" exec "$3" cat /proc/self/fd/4"#)
            .arg(rt.bin())
            .arg(&f)
            .arg(c.root(rt))
            .arg(&c.id)
            .env("WRT_CASE", c.tag(rt))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            !o.status.success(),
            "{rt}: fd 4 passed without --preserve-fds"
        );
    }
}

#[test]
fn exec_cgroup_joins_an_existing_sub_cgroup() {
    // runc's exec.bats "runc exec --cgroup sub-cgroups [v1]".
    let c = case!();
    let Some(mem) = common::cgroup_mounts()
        .into_iter()
        .find(|m| m.ends_with("memory"))
    else {
        wharf_testkit::skip("no cgroup v1 memory controller on this host");
        return;
    };
    c.args(&["sleep", "300"]);
    c.start_both();
    for rt in BOTH {
        let cg = c.cgroup(rt);
        std::fs::create_dir(mem.join(cg.trim_start_matches('/')).join("submem")).unwrap();
        let o = c.cmd(rt, &["exec", "--cgroup", "..", &c.id, "true"]);
        assert_ne!(o.code, 0, "{rt}: {o}");
        assert!(
            o.message().contains(" .. is not a sub cgroup path"),
            "{rt}: {o}"
        );
        let o = c.cmd(rt, &["exec", "--cgroup", "nonexistent", &c.id, "true"]);
        assert_ne!(o.code, 0, "{rt}: {o}");
        let m = o.message();
        assert!(
            m.contains(" adding pid ") && m.contains("/nonexistent/cgroup.procs: no such file "),
            "{rt}: {o}"
        );
        let o = c.cmd(rt, &["exec", "--cgroup", "whaaat:/", &c.id, "true"]);
        assert_ne!(o.code, 0, "{rt}: {o}");
        assert!(o.message().contains("unknown controller "), "{rt}: {o}");
        let o = c.cmd(
            rt,
            &[
                "exec",
                "--cgroup",
                "memory:submem",
                &c.id,
                "cat",
                "/proc/self/cgroup",
            ],
        );
        o.expect_ok();
        let want = format!(":memory:{cg}/submem");
        assert!(o.stdout.lines().any(|l| l.ends_with(&want)), "{rt}: {o}");
        // The other hierarchies: the container's cgroup itself.
        let want = format!(":pids:{cg}");
        assert!(o.stdout.lines().any(|l| l.ends_with(&want)), "{rt}: {o}");
    }
}

#[test]
fn checkpoint_checks_its_arguments_before_it_needs_criu() {
    // runc's checkpoint.bats "checkpoint --pre-dump (bad --parent-path)" passes without criu.
    let c = case!();
    c.args(&["sleep", "300"]);
    c.start_both();
    for rt in BOTH {
        let dir = c.scratch(rt, "ckpt");
        let abs = dir.join("parent-dir");
        let img = dir.join("image-dir");
        let (abs, img) = (abs.to_str().unwrap(), img.to_str().unwrap());
        for parent in [abs, "./parent-dir"] {
            let o = c.cmd(
                rt,
                &[
                    "checkpoint",
                    "--parent-path",
                    parent,
                    "--image-path",
                    img,
                    &c.id,
                ],
            );
            assert_ne!(o.code, 0, "{rt}: {o}");
            assert!(o.message().contains("--parent-path"), "{rt}: {o}");
        }
        let o = c.cmd(rt, &["checkpoint", "--image-path", img, "nonexistent"]);
        assert_ne!(o.code, 0, "{rt}: {o}");
        assert_eq!(c.status(rt), "running", "{rt}");
    }
}

/// Mounts made on the host for a test, detached (with everything below them) when dropped.
struct HostMounts(Vec<PathBuf>);

impl Drop for HostMounts {
    fn drop(&mut self) {
        for m in self.0.iter().rev() {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn host_tmpfs(at: &std::path::Path) {
    nix::mount::mount(
        Some("tmpfs"),
        at,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap_or_else(|e| panic!("mounting a tmpfs on {}: {e}", at.display()));
}

#[test]
fn rro_makes_the_bind_and_every_mount_below_it_read_only() {
    // runc's mounts_recursive.bats: a volume with a sub-mount, bound with rbind; "ro" makes
    // only the top read-only, "rro" (mount_setattr with AT_RECURSIVE) all of it.
    let c = case!();
    let mut mounts = HostMounts(Vec::new());
    for rt in BOTH {
        let vol = c.scratch(rt, "vol");
        host_tmpfs(&vol);
        mounts.0.push(vol.clone());
        std::fs::write(vol.join("foo"), "foo").unwrap();
        std::fs::create_dir(vol.join("subvol")).unwrap();
        host_tmpfs(&vol.join("subvol"));
        std::fs::write(vol.join("subvol/bar"), "bar").unwrap();
    }
    let script = "for f in /mnt/foo /mnt/subvol/bar; do touch $f 2>/dev/null && echo $f rw || echo $f ro; done";
    c.sh(script);
    for (opts, want) in [
        (json!(["rbind", "ro"]), "/mnt/foo ro\n/mnt/subvol/bar rw"),
        (json!(["rbind", "rro"]), "/mnt/foo ro\n/mnt/subvol/bar ro"),
        (
            json!(["rbind", "ro", "rro"]),
            "/mnt/foo ro\n/mnt/subvol/bar ro",
        ),
        // Set and cleared at once: the kernel clears first, then sets.
        (
            json!(["rbind", "rro", "rrw"]),
            "/mnt/foo ro\n/mnt/subvol/bar ro",
        ),
    ] {
        c.edit_each(|rt, cfg| {
            let m = cfg["mounts"].as_array_mut().unwrap();
            m.retain(|m| m["destination"] != "/mnt");
            m.push(
                json!({"destination": "/mnt", "source": c.scratch(rt, "vol"),
                          "options": opts.clone()}),
            );
        });
        c.run_both().both_ok().stdout_is(want);
    }
}

#[test]
fn exec_as_root_enters_a_cwd_only_the_containers_user_can() {
    // runc's cwd.bats "runc exec --user with no access to cwd": the process's root has no
    // CAP_DAC_OVERRIDE, so the cwd is entered before the user and capabilities are set.
    let c = case!();
    use std::os::unix::fs::PermissionsExt;
    for rt in BOTH {
        let root = c.rootfs(rt).join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::chown(&root, Some(42), Some(42)).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    c.edit(|cfg| {
        cfg["process"]["cwd"] = json!("/root");
        cfg["process"]["user"] = json!({"uid": 42, "gid": 42});
        cfg["process"]["args"] = json!(["sleep", "300"]);
    });
    c.start_both();
    for rt in BOTH {
        let o = c.cmd(
            rt,
            &["exec", "--user", "0", &c.id, "sh", "-c", "id -u; pwd"],
        );
        assert!(o.ok() && o.stdout == "0\n/root\n", "{rt}: {o}");
        // And the container's own user, in a cwd root could not enter without the caps.
        let o = c.exec(rt, &["sh", "-c", "id -u; pwd"]);
        assert!(o.ok() && o.stdout == "42\n/root\n", "{rt}: {o}");
    }
}

#[test]
fn a_read_only_dev_is_populated_first() {
    // runc's mounts.bats "runc run [ro /dev mount]": /dev is mounted writable, given its
    // devices, /dev/pts and links, then made read-only.
    let c = case!();
    c.edit(|cfg| {
        for m in cfg["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/dev" {
                m["options"].as_array_mut().unwrap().push(json!("ro"));
            }
        }
    });
    c.sh("grep -o '^tmpfs /dev tmpfs r[ow]' /proc/mounts; echo x > /dev/null && ls /dev/pts/ptmx /dev/null /dev/fd >/dev/null && echo devices; touch /dev/new 2>/dev/null || echo no-new");
    c.run_both()
        .both_ok()
        .stdout_is("tmpfs /dev tmpfs ro\ndevices\nno-new");
}

#[test]
fn bind_sources_out_of_the_user_namespaces_reach_are_opened_before_it() {
    // runc's userns.bats "userns with 2 inaccessible mounts" and "... + exec": the sources
    // are in directories only the host's root may enter; the container's root (uid 100000
    // on the host) could not look them up.
    let c = case!();
    use std::os::unix::fs::PermissionsExt;
    for rt in BOTH {
        for i in 1..=2 {
            let d = c.scratch(rt, &format!("hidden-{i}"));
            std::fs::create_dir_all(d.join("dir")).unwrap();
            std::fs::write(d.join("dir/foo.txt"), "foo").unwrap();
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
    }
    c.edit_each(|rt, cfg| {
        let l = &mut cfg["linux"];
        l["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        l["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65534}]);
        l["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65534}]);
        for i in 1..=2 {
            cfg["mounts"].as_array_mut().unwrap().push(json!({
                "destination": format!("/tmp/mount-{i}"),
                "source": c.scratch(rt, &format!("hidden-{i}")).join("dir"),
                "options": ["bind"]}));
        }
    });
    c.sh("cat /tmp/mount-1/foo.txt /tmp/mount-2/foo.txt");
    c.run_both().both_ok().stdout_is("foofoo");
    c.args(&["sleep", "300"]);
    c.start_both();
    for rt in BOTH {
        let o = c.exec(rt, &["cat", "/tmp/mount-1/foo.txt", "/tmp/mount-2/foo.txt"]);
        assert!(o.ok() && o.stdout == "foofoo", "{rt}: {o}");
    }
}

#[test]
fn no_pivot_hides_the_hosts_proc_from_a_nested_user_namespace() {
    // runc's no_pivot.bats: without pivot_root the host's /proc stays in the mount namespace
    // under the chroot; while it is there, the kernel lets a user namespace of the container
    // mount a proc with nothing masked.
    let c = case!();
    c.edit(|cfg| {
        cfg["process"]["args"] = json!([
            "unshare",
            "-mrpf",
            "sh",
            "-c",
            "mount -t proc none /proc && echo mounted"
        ]);
        for set in ["bounding", "permitted"] {
            cfg["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SETFCAP"));
        }
    });
    for rt in BOTH {
        let b = c.bundle(rt);
        let o = c.cmd(
            rt,
            &["run", "--no-pivot", "--bundle", b.to_str().unwrap(), &c.id],
        );
        assert!(
            o.code == 1
                && !o.stdout.contains("mounted")
                && o.stderr.contains("mount: permission denied"),
            "{rt}: {o}"
        );
    }
}

#[test]
fn a_created_container_does_not_hold_the_callers_stderr() {
    // cgroups.bats "runc run/create should warn about a non-empty cgroup" hung on its
    // `run runc create`: the init kept the runtime's log (a copy of its stderr, for the
    // setup steps' debug lines) until `start`, so reading create's output never ended.
    // With a terminal: without one the container's stdio is the caller's (for both).
    let c = case!();
    c.edit(|cfg| {
        cfg["process"]["terminal"] = json!(true);
        cfg["process"]["args"] = json!(["sleep", "300"]);
    });
    for rt in BOTH {
        let sock = c.scratch(rt, "console").join("sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        for debug in [false, true] {
            let mut cmd = Command::new(rt.bin());
            if debug {
                cmd.arg("--debug");
            }
            let id = format!("{}-{}", c.id, debug as u8);
            let mut child = cmd
                .arg("--root")
                .arg(c.root(rt))
                .args(["create", "--console-socket"])
                .arg(&sock)
                .arg("--bundle")
                .arg(c.bundle(rt))
                .arg(&id)
                .env("WRT_CASE", c.tag(rt))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let (_conn, _) = listener.accept().unwrap();
            let mut err = child.stderr.take().unwrap();
            let reader = std::thread::spawn(move || {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut err, &mut s).map(|_| s)
            });
            let st = child.wait().unwrap();
            let eof = poll(10, || reader.is_finished().then_some(()));
            let held = eof.is_none();
            // Start (and so end) it either way, so that the reader cannot outlive the test.
            c.cmd(rt, &["delete", "-f", &id]);
            let log = reader.join().unwrap().unwrap_or_default();
            assert!(st.success(), "{rt} (debug {debug}): create: {st}\n{log}");
            assert!(
                !held,
                "{rt} (debug {debug}): the created container still holds create's stderr"
            );
            if debug {
                assert!(log.contains("level=debug"), "{rt}: no debug lines: {log}");
            }
        }
    }
}
