//! `--userns-remap`: containers in a user namespace mapping their root to a subordinate
//! range, through a real wharfd driven by the docker CLI. Each test makes a user of its own
//! (`wharftest<random>`) with its own ranges in /etc/subuid and /etc/subgid, removed (user,
//! group and lines, atomically) when the test ends, even on failure; `default` is not used,
//! as it would add `dockremap` to the host's files for every later session.

mod common;

use common::{stderr, stdout, Daemon};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use wharf_engine::userns;

/// Tests of this binary add ranges one at a time (each after the highest in use).
static FILES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A user and group for one test, with a 65536-id range in both files unless `ranges` is
/// false; all removed on drop.
struct RemapUser {
    name: String,
    /// The first host uid and gid of its ranges.
    start: Option<(u32, u32)>,
}

impl RemapUser {
    fn new(ranges: bool) -> RemapUser {
        let mut r = [0u8; 4];
        getrandom::fill(&mut r).unwrap();
        let name = format!("wharftest{}", hex::encode(r));
        let o = std::process::Command::new("useradd")
            .args(["-r", "-M", "-s", "/bin/false", "-U", &name])
            .output()
            .expect("useradd");
        assert!(o.status.success(), "useradd: {}", stderr(&o));
        let mut u = RemapUser { name, start: None };
        if ranges {
            let _g = FILES.lock().unwrap_or_else(|e| e.into_inner());
            let files = userns::SubIdFiles::default();
            let su = userns::append_range(&files.subuid, &u.name, 65536).unwrap();
            let sg = userns::append_range(&files.subgid, &u.name, 65536).unwrap();
            u.start = Some((su, sg));
        }
        u
    }
}

impl Drop for RemapUser {
    fn drop(&mut self) {
        let _g = FILES.lock().unwrap_or_else(|e| e.into_inner());
        let files = userns::SubIdFiles::default();
        for f in [&files.subuid, &files.subgid] {
            if f.exists() {
                let _ = userns::remove_ranges(f, &self.name);
            }
        }
        let _ = std::process::Command::new("userdel")
            .arg(&self.name)
            .output();
        // userdel takes the user's own group with it where USERGROUPS_ENAB is set.
        let _ = std::process::Command::new("groupdel")
            .arg(&self.name)
            .output();
    }
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

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

#[test]
fn containers_run_in_the_remapped_range() {
    require_env!();
    let user = RemapUser::new(true);
    let (su, sg) = user.start.unwrap();
    let d = Daemon::start_with(&["--userns-remap".into(), user.name.clone()], None);
    d.busybox();
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        d.ok(&all)
    };

    // The mappings, and root inside.
    let su_s = su.to_string();
    let sg_s = sg.to_string();
    assert_eq!(
        words(&run(&["busybox", "cat", "/proc/self/uid_map"])),
        ["0", su_s.as_str(), "65536"]
    );
    assert_eq!(
        words(&run(&["busybox", "cat", "/proc/self/gid_map"])),
        ["0", sg_s.as_str(), "65536"]
    );
    assert_eq!(run(&["busybox", "id", "-u"]).trim(), "0");
    // The image's files are root's in the container, and so is its writable /.
    assert_eq!(
        run(&["busybox", "stat", "-c", "%u:%g", "/bin/busybox", "/"]),
        "0:0\n0:0\n"
    );
    // The container's root may write its /etc/hosts and its /.
    run(&[
        "busybox",
        "sh",
        "-c",
        "echo 10.1.1.1 x >> /etc/hosts && mkdir /new && touch /etc/new",
    ]);

    // On the host, what it creates in a bind mount is the range's first id.
    let bind = d.dir.path().join("bind");
    std::fs::create_dir(&bind).unwrap();
    std::os::unix::fs::chown(&bind, Some(su), Some(sg)).unwrap();
    let spec = format!("{}:/w", bind.display());
    run(&["-v", &spec, "busybox", "touch", "/w/made"]);
    let m = std::fs::metadata(bind.join("made")).unwrap();
    assert_eq!((m.uid(), m.gid()), (su, sg));

    // The point of it: the container's root is nobody special on the host. A host file only
    // root may read, bound in, cannot be read (nor chowned) by it; with --userns=host it can.
    let secret = d.dir.path().join("secret");
    std::fs::write(&secret, "s3cret").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let spec = format!("{}:/secret", secret.display());
    let o = d.docker(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "busybox",
        "sh",
        "-c",
        "cat /secret; chown 0:0 /secret; echo x >> /secret",
    ]);
    assert!(!stdout(&o).contains("s3cret"), "{}", stdout(&o));
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "s3cret");
    assert_eq!(
        run(&["--userns=host", "-v", &spec, "busybox", "cat", "/secret"]),
        "s3cret"
    );

    // A missing -v source is made for the remapped root (as dockerd): the container writes it.
    let fresh = d.dir.path().join("fresh/sub");
    let spec = format!("{}:/w", fresh.display());
    run(&["-v", &spec, "busybox", "touch", "/w/made"]);
    assert_eq!(std::fs::metadata(fresh.join("made")).unwrap().uid(), su);

    // Opting out: the host's user namespace.
    assert_eq!(
        words(&run(&[
            "--userns=host",
            "busybox",
            "cat",
            "/proc/self/uid_map"
        ])),
        ["0", "0", "4294967295"]
    );

    // info: the option, and the data-root under <uid>.<gid>.
    let opts = d.ok(&["info", "--format", "{{json .SecurityOptions}}"]);
    assert!(opts.contains("name=userns"), "{opts}");
    let root = d.ok(&["info", "--format", "{{.DockerRootDir}}"]);
    assert!(root.trim().ends_with(&format!("/data/{su}.{sg}")), "{root}");
    let data = d.dir.path().join("data");
    for dir in [data.clone(), data.join(format!("{su}.{sg}"))] {
        let m = std::fs::metadata(&dir).unwrap();
        assert_eq!(
            (m.mode() & 0o7777, m.uid(), m.gid()),
            (0o710, 0, sg),
            "{}",
            dir.display()
        );
    }

    // A named volume is the container's root's to write.
    d.ok(&["volume", "create", "vol"]);
    assert_eq!(
        run(&[
            "-v",
            "vol:/data",
            "busybox",
            "sh",
            "-c",
            "echo hi > /data/f && stat -c %u /data/f"
        ])
        .trim(),
        "0"
    );
    let mp = d.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "vol"]);
    assert_eq!(
        std::fs::metadata(Path::new(mp.trim()).join("f"))
            .unwrap()
            .uid(),
        su
    );

    // exec joins the container's user namespace; cp into it gives the container's ids;
    // commit gives the container's ids back (the new image runs with them).
    d.ok(&["run", "-d", "--name", "box", "busybox", "sleep", "300"]);
    assert_eq!(
        words(&d.ok(&["exec", "box", "cat", "/proc/self/uid_map"])),
        ["0", su_s.as_str(), "65536"]
    );
    assert_eq!(d.ok(&["exec", "box", "id", "-u"]).trim(), "0");
    let f = d.dir.path().join("copied");
    std::fs::write(&f, "x").unwrap();
    d.ok(&["cp", f.to_str().unwrap(), "box:/tmp/copied"]);
    d.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "chown 5:6 /tmp/copied && mkdir /made",
    ]);
    assert_eq!(
        d.ok(&["exec", "box", "stat", "-c", "%u:%g", "/tmp/copied"])
            .trim(),
        "5:6"
    );
    // cp out of it and export show the container's ids too.
    let owners = |t: &[u8], want: &str| -> Option<(u64, u64)> {
        let mut a = tar::Archive::new(t);
        a.entries().unwrap().find_map(|e| {
            let e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            (p.trim_start_matches("./") == want)
                .then(|| (e.header().uid().unwrap(), e.header().gid().unwrap()))
        })
    };
    let o = d.docker(&["cp", "box:/tmp/copied", "-"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(owners(&o.stdout, "copied"), Some((5, 6)));
    let o = d.docker(&["cp", "box:/bin", "-"]);
    assert_eq!(owners(&o.stdout, "bin/busybox"), Some((0, 0)));
    let o = d.docker(&["export", "box"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(owners(&o.stdout, "tmp/copied"), Some((5, 6)));
    assert_eq!(owners(&o.stdout, "bin/busybox"), Some((0, 0)));

    // --init (bound from the exec-root) works too.
    assert_eq!(
        run(&["--init", "busybox", "sh", "-c", "ps -o comm | sed -n 2p"]).trim(),
        "docker-init"
    );
    // --ipc host: the host's IPC namespace, the container's own user namespace.
    assert_eq!(
        words(&run(&[
            "--ipc",
            "host",
            "busybox",
            "cat",
            "/proc/self/uid_map"
        ])),
        ["0", su_s.as_str(), "65536"]
    );
    // Sharing box's network namespace means sharing its user namespace, as with dockerd
    // (its owner: sysfs can be mounted).
    let box_userns = d.ok(&["exec", "box", "readlink", "/proc/self/ns/user"]);
    let o = run(&[
        "--network",
        "container:box",
        "busybox",
        "sh",
        "-c",
        "readlink /proc/self/ns/user; id -u; touch /x; grep -w /sys /proc/mounts",
    ]);
    let l: Vec<&str> = o.lines().collect();
    assert_eq!(l[..2], [box_userns.trim(), "0"], "{o}");
    assert!(l[2].starts_with("sysfs /sys sysfs"), "{o}");
    // With a container of the host's user namespace: a new one, and the host's /sys bound.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "hostns",
        "--userns=host",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(
        words(&run(&[
            "--network",
            "container:hostns",
            "busybox",
            "sh",
            "-c",
            "ls /sys/class/net >/dev/null && cat /proc/self/uid_map",
        ])),
        ["0", su_s.as_str(), "65536"]
    );
    d.ok(&["commit", "box", "committed"]);
    assert_eq!(
        run(&["committed", "stat", "-c", "%u:%g", "/tmp/copied", "/made"]),
        "5:6\n0:0\n"
    );
}

#[test]
fn what_needs_the_hosts_namespaces_is_refused_without_userns_host() {
    require_env!();
    let user = RemapUser::new(true);
    // daemon.json's key, this time.
    let json = format!(r#"{{"userns-remap": "{}"}}"#, user.name);
    let d = Daemon::start_with(&[], Some(&json));
    d.busybox();
    let opts = d.ok(&["info", "--format", "{{json .SecurityOptions}}"]);
    assert!(opts.contains("name=userns"), "{opts}");
    for args in [
        &["--privileged"][..],
        &["--network", "host"],
        &["--pid", "host"],
    ] {
        let mut all = vec!["run", "--rm"];
        all.extend_from_slice(args);
        all.extend(["busybox", "true"]);
        let o = d.docker(&all);
        assert!(!o.status.success(), "{args:?} ran");
        assert!(
            stderr(&o).contains("user namespaces") && stderr(&o).contains("--userns=host"),
            "{args:?}: {}",
            stderr(&o)
        );
        // With --userns=host they run.
        let mut all = vec!["run", "--rm", "--userns=host"];
        all.extend_from_slice(args);
        all.extend(["busybox", "true"]);
        d.ok(&all);
    }
    // Live restore: a container keeps running across a kill -9 of the daemon, which comes
    // back on the same remapped data-root and reaches it.
    let mut d = d;
    d.ok(&["run", "-d", "--name", "lives", "busybox", "sleep", "300"]);
    d.kill9();
    d.spawn();
    assert_eq!(d.ok(&["exec", "lives", "id", "-u"]).trim(), "0");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Running}}", "lives"])
            .trim(),
        "true"
    );
    let (code, body) = api(
        &d,
        "/containers/create",
        r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"UsernsMode":"private"}}"#,
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("invalid userns mode"), "{body}");
}

/// wharfd with `args`, expected to fail at startup; its stderr.
fn startup_error(dir: &Path, args: &[&str]) -> String {
    let mut o = std::process::Command::new(env!("CARGO_BIN_EXE_wharfd"))
        .arg("--data-root")
        .arg(dir.join("data"))
        .arg("--exec-root")
        .arg(dir.join("exec"))
        .arg("--config-file")
        .arg(dir.join("none.json"))
        .arg("-H")
        .arg(format!("unix://{}", dir.join("d.sock").display()))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A wharfd that started after all is stopped (by its pid) rather than waited for.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while o.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = o.kill();
            let _ = o.wait();
            panic!("wharfd started with {args:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = o.wait_with_output().unwrap();
    assert!(!o.status.success(), "wharfd started with {args:?}");
    stderr(&o)
}

#[test]
fn users_without_ranges_are_a_clear_startup_error() {
    require_env!();
    let user = RemapUser::new(false);
    let dir = tempfile::tempdir().unwrap();
    let e = startup_error(dir.path(), &["--userns-remap", &user.name]);
    assert!(
        e.contains(&format!(
            "no subordinate uid range for \"{}\" in /etc/subuid",
            user.name
        )) && e.contains("add a line such as"),
        "{e}"
    );
    let e = startup_error(dir.path(), &["--userns-remap", "no-such-user-wharf"]);
    assert!(e.contains("does not exist"), "{e}");
    // Nothing was made under the data-root.
    assert!(!dir.path().join("data").exists());

    // A data-root below a directory the remapped root cannot traverse is refused too.
    let ranged = RemapUser::new(true);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let e = startup_error(dir.path(), &["--userns-remap", &ranged.name]);
    assert!(
        e.contains("is not traversable by the remapped root") && e.contains("chmod o+x"),
        "{e}"
    );
}

/// The vfs driver (full copies) gives the same ownership: the copy's root is the container's
/// root's too.
#[test]
fn the_vfs_driver_shifts_owners_too() {
    require_env!();
    let user = RemapUser::new(true);
    let d = Daemon::start_env(
        &["--userns-remap".into(), user.name.clone()],
        None,
        &[("WHARF_STORAGE_DRIVER", "vfs")],
    );
    d.busybox();
    let driver = d.ok(&["info", "--format", "{{.Driver}}"]);
    assert_eq!(driver.trim(), "vfs");
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "mkdir /made && stat -c %u:%g / /bin/busybox /made"
        ]),
        "0:0\n0:0\n0:0\n"
    );
}
