//! Attacks and misuses a hostile image, container or local user would try, each shown refused
//! or contained, through a real wharfd driven by the docker CLI (docs/security.md lists them).

mod common;

use common::{stderr, stdout, Daemon};
use std::os::unix::fs::{MetadataExt, PermissionsExt};

fn run(d: &Daemon, args: &[&str]) -> std::process::Output {
    let mut all = vec!["run", "--rm", "--network", "none"];
    all.extend_from_slice(args);
    d.docker(&all)
}

/// POSTs `body` to the API; (status, body).
fn api(d: &Daemon, path: &str, body: &str) -> (u16, String) {
    let o = std::process::Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--unix-socket"])
        .arg(&d.sock)
        .args(["-H", "Content-Type: application/json", "-d", body])
        .arg(format!("http://localhost/v1.41{path}"))
        .output()
        .unwrap();
    let out = stdout(&o);
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn seccomp_mode(o: &std::process::Output) -> String {
    stdout(o)
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no Seccomp line: {} {}", stdout(o), stderr(o)))
}

#[test]
fn seccomp_is_on_by_default_and_follows_security_opts_and_capabilities() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let info = d.ok(&["info", "--format", "{{json .SecurityOptions}}"]);
    assert!(info.contains("name=seccomp,profile=builtin"), "{info}");

    // Filter mode 2 by default.
    let o = run(&d, &["busybox", "grep", "Seccomp:", "/proc/self/status"]);
    assert_eq!(seccomp_mode(&o), "2");
    // unshare(CLONE_NEWUSER) needs no capability: only the filter refuses it, with EPERM.
    let o = run(&d, &["busybox", "unshare", "-U", "true"]);
    assert!(
        !o.status.success(),
        "unshare -U ran under the default profile"
    );
    assert!(
        stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );
    // The same with the filter off: it works, and the status says no filter.
    for opt in [
        &["--security-opt", "seccomp=unconfined"][..],
        &["--privileged"],
    ] {
        let mut args = opt.to_vec();
        args.extend([
            "busybox",
            "sh",
            "-c",
            "unshare -U true && grep Seccomp: /proc/self/status",
        ]);
        let o = run(&d, &args);
        assert!(o.status.success(), "{opt:?}: {}", stderr(&o));
        assert_eq!(seccomp_mode(&o), "0", "{opt:?}");
    }
    // --cap-add SYS_ADMIN widens the profile as Docker's does: mount and unshare are allowed
    // (and still filtered: mode 2).
    let o = run(
        &d,
        &[
            "--cap-add",
            "SYS_ADMIN",
            "busybox",
            "sh",
            "-c",
            "mount -t tmpfs t /tmp && unshare -n true && grep Seccomp: /proc/self/status",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(seccomp_mode(&o), "2");
    // Without it mount fails.
    let o = run(&d, &["busybox", "mount", "-t", "tmpfs", "t", "/tmp"]);
    assert!(!o.status.success());
    // exec gets the container's filter too.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "long",
        "--network",
        "none",
        "busybox",
        "sleep",
        "60",
    ]);
    let o = d.docker(&["exec", "long", "grep", "Seccomp:", "/proc/self/status"]);
    assert_eq!(seccomp_mode(&o), "2");
    d.ok(&["rm", "-f", "long"]);
}

#[test]
fn a_custom_seccomp_profile_file_is_honoured_and_a_bad_one_refused() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let profile = d.dir.path().join("profile.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let o = run(&d, &["--security-opt", &opt, "busybox", "mkdir", "/x"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    let o = run(&d, &["--security-opt", &opt, "busybox", "touch", "/x"]);
    assert!(o.status.success(), "{}", stderr(&o));

    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_SOMETIMES"}]}"#,
    )
    .unwrap();
    let o = run(&d, &["--security-opt", &opt, "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("invalid seccomp profile") && stderr(&o).contains("SCMP_ACT_SOMETIMES"),
        "{}",
        stderr(&o)
    );
    for (opt, word) in [
        ("apparmor=docker-default", "AppArmor"),
        ("label=level:s0:c100,c200", "SELinux"),
    ] {
        let o = run(&d, &["--security-opt", opt, "busybox", "true"]);
        assert_eq!(o.status.code(), Some(125), "{opt}");
        assert!(stderr(&o).contains(word), "{opt}: {}", stderr(&o));
    }
}

#[test]
fn host_sysctls_are_refused_and_namespaced_ones_stay_in_the_container() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let before = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    // The docker CLI refuses this name itself; the attack goes to the API directly.
    let body = r#"{"Image": "busybox", "Cmd": ["true"],
        "HostConfig": {"NetworkMode": "none", "Sysctls": {"kernel.core_pattern": "|/tmp/wharf-pwned %p"}}}"#;
    let (code, answer) = api(&d, "/containers/create", body);
    assert_eq!(code, 400, "{answer}");
    assert!(answer.contains("not namespaced"), "{answer}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        before
    );
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "busybox",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("network namespace"), "{}", stderr(&o));
    // A namespaced one is set in the container only.
    let host = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap();
    let o = run(
        &d,
        &[
            "--sysctl",
            "net.ipv4.ping_group_range=0 0",
            "busybox",
            "cat",
            "/proc/sys/net/ipv4/ping_group_range",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).split_whitespace().collect::<Vec<_>>(),
        ["0", "0"]
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap(),
        host
    );
}

#[test]
fn an_image_whose_passwd_is_dev_zero_is_refused_at_once() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    // The image's /etc/passwd is a link to /dev/zero: the host's, if followed on the host.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("evil");
    let script = format!(
        "set -e; mkdir -p {r}/etc {r}/bin {r}/dev; cp /bin/busybox {r}/bin/; ln -s busybox {r}/bin/true; \
         ln -s /dev/zero {r}/etc/passwd; tar --numeric-owner -C {r} -cf {r}.tar .",
        r = root.display()
    );
    let st = std::process::Command::new("sh")
        .args(["-c", &script])
        .status()
        .unwrap();
    assert!(st.success());
    let tar = std::fs::read(format!("{}.tar", root.display())).unwrap();
    let o = d.docker_stdin(&["import", "-", "evil"], Some(&tar));
    assert!(o.status.success(), "{}", stderr(&o));
    let t = std::time::Instant::now();
    let o = run(&d, &["-u", "nobody", "evil", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("unable to find user nobody"),
        "{}",
        stderr(&o)
    );
    // A running container turns its own /etc/passwd into a link to a /dev/zero node it made
    // in its layer, and /etc/group into a FIFO; then someone execs into it by user name.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "evil-live",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "mknod /zero c 1 5 && ln -sf /zero /etc/passwd && mkfifo /g && ln -sf /g /etc/group && touch /ready && sleep 60",
    ]);
    common::eventually("the container set its traps", || {
        d.docker(&["exec", "evil-live", "test", "-e", "/ready"])
            .status
            .success()
    });
    // Through the API: the docker CLI shows a refused exec start only as "unable to upgrade".
    for (user, why) in [
        ("nobody", "it is a character device"),
        ("0:nogroup", "it is a FIFO"),
    ] {
        let (code, created) = api(
            &d,
            "/containers/evil-live/exec",
            &format!(r#"{{"Cmd": ["true"], "User": "{user}"}}"#),
        );
        assert_eq!(code, 201, "{created}");
        let id: serde_json::Value = serde_json::from_str(&created).unwrap();
        let (code, answer) = api(
            &d,
            &format!("/exec/{}/start", id["Id"].as_str().unwrap()),
            r#"{"Detach": true}"#,
        );
        assert_eq!(code, 400, "{user}: {answer}");
        assert!(answer.contains(why), "{user}: {answer}");
    }
    // Refused, not hung: well under the time a read of /dev/zero into memory would take.
    assert!(t.elapsed() < std::time::Duration::from_secs(60));
    // Root needs no lookup; the image still runs.
    let o = run(&d, &["evil", "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rss = std::fs::read_to_string(format!("/proc/{}/status", d.pid().unwrap())).unwrap();
    let kib: u64 = rss
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(kib < 512 * 1024, "wharfd RSS {kib} KiB");
    d.ok(&["rm", "-f", "evil-live"]);
}

#[test]
fn a_local_user_cannot_read_the_data_root_or_exec_root() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    // The test's temp dir is 0700: open it so that only wharfd's own modes protect the roots,
    // as for /var/lib/wharf.
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let id = d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "-e",
        "SECRET=hunter2",
        "busybox",
        "sleep",
        "60",
    ]);
    let id = id.trim();
    let data = d.dir.path().join("data");
    let exec = d.dir.path().join("exec");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&data), 0o710);
    assert_eq!(mode(&exec), 0o700);
    assert_eq!(std::fs::metadata(&data).unwrap().uid(), 0);
    let record = data.join("containers").join(id).join("config.v2.json");
    let bundle = exec.join("containers").join(id).join("config.json");
    assert_eq!(mode(&record), 0o600);
    assert_eq!(mode(&bundle), 0o600);
    assert!(std::fs::read_to_string(&record)
        .unwrap()
        .contains("hunter2"));
    // As nobody: nothing under either root is reachable, not the secret, not the layers (which
    // hold the images' setuid binaries), not the mounted rootfs.
    let layers = data.join("layers");
    let rootfs = exec.join("containers").join(id).join("rootfs/bin/busybox");
    for (what, args) in [
        (
            "list the data root",
            vec!["ls".to_string(), data.display().to_string()],
        ),
        (
            "read a record",
            vec!["cat".into(), record.display().to_string()],
        ),
        (
            "read a bundle",
            vec!["cat".into(), bundle.display().to_string()],
        ),
        (
            "list the layers",
            vec!["ls".into(), layers.display().to_string()],
        ),
        (
            "run from a rootfs",
            vec![rootfs.display().to_string(), "true".into()],
        ),
    ] {
        // setpriv keeps its capabilities until its own execve: the shell it runs has none,
        // and it is the shell that tries.
        let o = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .args(["/bin/sh", "-c", "exec \"$@\"", "sh"])
            .args(&args)
            .output()
            .unwrap();
        assert!(!o.status.success(), "nobody could {what}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    d.ok(&["rm", "-f", id]);
}
