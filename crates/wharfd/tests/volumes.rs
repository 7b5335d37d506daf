//! Storage for containers, end to end: the docker CLI against a real wharfd. Volumes (named,
//! anonymous, image VOLUMEs, local driver options), bind mounts, tmpfs, `--volumes-from`,
//! `--mount` validation, prune, `system df -v`, and volumes across daemon restarts.
//! Each test has its own daemon (socket, data-root, cgroup, bridge), torn down on drop.

mod common;

use common::{stderr, Daemon};
use std::path::Path;

/// `docker run --rm --network none ARGS...`, asserting success; returns stdout.
fn run(d: &Daemon, args: &[&str]) -> String {
    let mut a = vec!["run", "--rm", "--network", "none"];
    a.extend_from_slice(args);
    d.ok(&a)
}

/// `docker run --rm --network none ARGS...`, asserting failure; returns stderr.
fn run_fails(d: &Daemon, args: &[&str]) -> String {
    let mut a = vec!["run", "--rm", "--network", "none"];
    a.extend_from_slice(args);
    let o = d.docker(&a);
    assert!(
        !o.status.success(),
        "docker {a:?} should have failed; stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    stderr(&o)
}

fn volumes(d: &Daemon, extra: &[&str]) -> Vec<String> {
    let mut a = vec!["volume", "ls", "-q"];
    a.extend_from_slice(extra);
    let mut v: Vec<String> = d.ok(&a).lines().map(String::from).collect();
    v.sort();
    v
}

/// A raw Engine API call with curl: (status, body).
fn api(d: &Daemon, method: &str, path: &str, body: &str) -> (u16, String) {
    let o = std::process::Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "-X", method, "--unix-socket"])
        .arg(&d.sock)
        .args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ])
        .arg(format!("http://wharf{path}"))
        .output()
        .expect("curl");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let (body, code) = out.rsplit_once('\n').expect("curl status line");
    (
        code.trim().parse().expect("status"),
        body.trim().to_string(),
    )
}

/// Whether anything is mounted exactly at `p` in this (the daemon's) mount namespace.
fn mounted_at(p: &str) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(p))
}

#[test]
fn named_volume_outlives_its_container_and_in_use_removal_loses_nothing() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    d.ok(&["volume", "create", "--label", "team=db", "data"]);
    d.ok(&[
        "run",
        "--name",
        "writer",
        "--network",
        "none",
        "-v",
        "data:/d",
        "busybox",
        "sh",
        "-c",
        "echo persisted > /d/f",
    ]);
    d.ok(&["rm", "writer"]);
    assert_eq!(
        run(&d, &["-v", "data:/d", "busybox", "cat", "/d/f"]),
        "persisted\n"
    );

    let inspect = d.ok(&[
        "volume",
        "inspect",
        "--format",
        "{{.Driver}} {{.Scope}} {{.Labels.team}} {{.Mountpoint}} {{.CreatedAt}}",
        "data",
    ]);
    let f: Vec<&str> = inspect.split_whitespace().collect();
    assert_eq!(&f[..3], ["local", "local", "db"], "{inspect}");
    assert!(f[3].ends_with("/volumes/data/_data"), "{inspect}");
    assert!(f[4].starts_with("20"), "CreatedAt is a date: {inspect}");

    let id = d
        .ok(&[
            "create",
            "--name",
            "user",
            "--network",
            "none",
            "-v",
            "data:/d",
            "busybox",
            "true",
        ])
        .trim()
        .to_string();
    for rm in [
        &["volume", "rm", "data"][..],
        &["volume", "rm", "-f", "data"],
    ] {
        let o = d.docker(rm);
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains(&format!("remove data: volume is in use - [{id}]")),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(
        run(&d, &["-v", "data:/d", "busybox", "cat", "/d/f"]),
        "persisted\n",
        "a refused removal loses nothing"
    );
    let mounts = d.ok(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.Driver}} {{.Mode}} {{.RW}}{{end}}",
        "user",
    ]);
    assert_eq!(mounts.trim(), "volume data /d local z true");
    d.ok(&["rm", "user"]);
    d.ok(&["volume", "rm", "data"]);
    assert!(volumes(&d, &[]).is_empty());
    // -f forgives a missing volume only.
    d.ok(&["volume", "rm", "-f", "nonexistent"]);
    let o = d.docker(&["volume", "rm", "nonexistent"]);
    assert!(stderr(&o).contains("no such volume"), "{}", stderr(&o));
}

#[test]
fn image_volume_content_is_copied_up_unless_nocopy() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
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

    // An anonymous volume for the image's VOLUME, filled from the image.
    d.ok(&[
        "run",
        "--name",
        "anon",
        "--network",
        "none",
        "seeded",
        "sh",
        "-c",
        "cat /seed/s && echo more >> /seed/s",
    ]);
    let anon = volumes(&d, &[]);
    assert_eq!(anon.len(), 1);
    assert_eq!(
        d.ok(&[
            "inspect",
            "--format",
            "{{range .Mounts}}{{.Name}} {{.Destination}}{{end}}",
            "anon"
        ])
        .trim(),
        format!("{} /seed", anon[0])
    );
    // A named volume, and one made by --mount, are filled too.
    assert_eq!(
        run(&d, &["-v", "named:/seed", "seeded", "cat", "/seed/s"]),
        "from-image\n"
    );
    assert_eq!(
        run(
            &d,
            &[
                "--mount",
                "type=volume,source=mnt,target=/seed",
                "seeded",
                "cat",
                "/seed/s"
            ]
        ),
        "from-image\n"
    );
    // ... but not with nocopy.
    assert_eq!(
        run(
            &d,
            &["-v", "bare:/seed:nocopy", "seeded", "ls", "-A", "/seed"]
        ),
        ""
    );
    assert_eq!(
        run(
            &d,
            &[
                "--mount",
                "type=volume,source=bare2,target=/seed,volume-nocopy",
                "seeded",
                "ls",
                "-A",
                "/seed"
            ]
        ),
        ""
    );
    // The copy is made once: a volume's own content wins over the image's afterwards.
    run(
        &d,
        &[
            "-v",
            "named:/seed",
            "seeded",
            "sh",
            "-c",
            "echo changed > /seed/s",
        ],
    );
    assert_eq!(
        run(&d, &["-v", "named:/seed", "seeded", "cat", "/seed/s"]),
        "changed\n"
    );

    // rm -v removes the anonymous volume only; named ones stay.
    d.ok(&["rm", "-v", "anon"]);
    assert_eq!(volumes(&d, &[]), ["bare", "bare2", "mnt", "named"]);
    // A --mount volume without a source is anonymous: --rm removes it.
    run(&d, &["--mount", "type=volume,target=/x", "busybox", "true"]);
    assert_eq!(volumes(&d, &[]), ["bare", "bare2", "mnt", "named"]);
}

#[test]
fn binds_read_only_and_propagation_and_mount_errors_match_docker() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let host = d.dir.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in"), "from-host\n").unwrap();
    let h = host.display().to_string();

    // rw bind: both ways.
    let rw = format!("{h}:/h");
    assert_eq!(
        run(
            &d,
            &[
                "-v",
                &rw,
                "busybox",
                "sh",
                "-c",
                "cat /h/in; echo out > /h/out"
            ]
        ),
        "from-host\n"
    );
    assert_eq!(std::fs::read_to_string(host.join("out")).unwrap(), "out\n");

    // Read-only, by -v and by --mount.
    let ro = format!("{h}:/h:ro");
    let e = run_fails(&d, &["-v", &ro, "busybox", "touch", "/h/x"]);
    assert!(e.contains("Read-only file system"), "{e}");
    let ro_mount = format!("type=bind,source={h},target=/h,readonly");
    let e = run_fails(&d, &["--mount", &ro_mount, "busybox", "touch", "/h/x"]);
    assert!(e.contains("Read-only file system"), "{e}");
    assert!(!host.join("x").exists());
    assert_eq!(
        run(&d, &["--mount", &ro_mount, "busybox", "cat", "/h/in"]),
        "from-host\n"
    );

    // Inspect reports them as Docker does.
    let prop = format!("type=bind,source={h},target=/p,bind-propagation=rslave");
    d.ok(&[
        "create",
        "--name",
        "bb",
        "--network",
        "none",
        "-v",
        &ro,
        "--mount",
        &prop,
        "busybox",
        "true",
    ]);
    let m = d.ok(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{.Type}}|{{.Source}}|{{.Destination}}|{{.Mode}}|{{.RW}}|{{.Propagation}};{{end}}",
        "bb",
    ]);
    assert_eq!(
        m.trim(),
        format!("bind|{h}|/h|ro|false|rprivate;bind|{h}|/p||true|rslave;")
    );

    // A missing host path: created for -v, an error for --mount (Docker's words).
    let missing = d.dir.path().join("missing/deeper");
    let v = format!("{}:/m", missing.display());
    run(&d, &["-v", &v, "busybox", "true"]);
    assert!(missing.is_dir());
    let gone = d.dir.path().join("gone");
    let mnt = format!("type=bind,source={},target=/m", gone.display());
    let e = run_fails(&d, &["--mount", &mnt, "busybox", "true"]);
    assert!(
        e.contains(&format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {}",
            gone.display()
        )),
        "{e}"
    );
    assert!(!gone.exists());
    for (spec, want) in [
        (
            "type=tmpfs,source=x,target=/t",
            "invalid mount config for type \"tmpfs\": field Source must not be specified",
        ),
        (
            "type=volume,target=/v,readonly",
            "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes",
        ),
        (
            "type=bind,source=relative,target=/v",
            "invalid mount config for type \"bind\": invalid mount path: 'relative' mount path must be absolute",
        ),
    ] {
        let e = run_fails(&d, &["--mount", spec, "busybox", "true"]);
        assert!(e.contains(want), "--mount {spec}: {e}");
    }
    let e = run_fails(
        &d,
        &[
            "-v",
            "va:/x",
            "--mount",
            "type=volume,source=vb,target=/x",
            "busybox",
            "true",
        ],
    );
    assert!(e.contains("Duplicate mount point: /x"), "{e}");
    let e = run_fails(&d, &["-v", &format!("{h}:/h:bogus"), "busybox", "true"]);
    assert!(e.contains("invalid mode: bogus"), "{e}");
}

#[test]
fn tmpfs_mounts_have_their_size_limit_and_vanish_with_the_container() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    for how in [
        &["--tmpfs", "/t:size=1m"][..],
        &[
            "--mount",
            "type=tmpfs,target=/t,tmpfs-size=1048576,tmpfs-mode=1770",
        ][..],
    ] {
        let mut a = how.to_vec();
        a.extend(["busybox", "sh", "-c", "df -k /t | tail -n 1; stat -c %a /t"]);
        let out = run(&d, &a);
        let mut lines = out.lines();
        let df: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!((df[0], df[1]), ("tmpfs", "1024"), "{how:?}: {out}");
        if how[0] == "--mount" {
            assert_eq!(lines.next(), Some("1770"), "{out}");
        }
        let mut a = how.to_vec();
        a.extend([
            "busybox",
            "dd",
            "if=/dev/zero",
            "of=/t/big",
            "bs=1024",
            "count=2048",
        ]);
        let e = run_fails(&d, &a);
        assert!(e.contains("No space left on device"), "{how:?}: {e}");
    }
    // Content lives and dies with the container's run; nothing stays mounted on the host.
    d.ok(&[
        "run",
        "--name",
        "tc",
        "--network",
        "none",
        "--mount",
        "type=tmpfs,target=/t",
        "busybox",
        "sh",
        "-c",
        "ls /t; echo x > /t/f",
    ]);
    assert_eq!(
        d.ok(&[
            "inspect",
            "--format",
            "{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}}{{end}}",
            "tc"
        ])
        .trim(),
        "tmpfs /t true"
    );
    let out = d.ok(&["start", "-a", "tc"]);
    assert_eq!(out, "", "a restart gets an empty tmpfs");
    d.ok(&["wait", "tc"]);
    d.ok(&["rm", "tc"]);
    let root = d.dir.path().display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts
            .lines()
            .any(|l| l.contains(&root) && l.contains(" tmpfs ")),
        "no tmpfs left under the daemon's dirs:\n{mounts}"
    );
}

#[test]
fn volumes_from_sees_the_same_data_and_ro_refuses_writes() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let host = d.dir.path().join("shared");
    std::fs::create_dir_all(&host).unwrap();
    let bind = format!("{}:/h", host.display());
    d.ok(&[
        "run",
        "--name",
        "src",
        "--network",
        "none",
        "-v",
        "vf:/d",
        "-v",
        &bind,
        "-v",
        "/anon",
        "busybox",
        "sh",
        "-c",
        "echo vol > /d/f; echo bind > /h/f; echo anon > /anon/f",
    ]);
    assert_eq!(
        run(
            &d,
            &[
                "--volumes-from",
                "src",
                "busybox",
                "cat",
                "/d/f",
                "/h/f",
                "/anon/f"
            ]
        ),
        "vol\nbind\nanon\n"
    );
    run(
        &d,
        &[
            "--volumes-from",
            "src:rw",
            "busybox",
            "sh",
            "-c",
            "echo again >> /d/f",
        ],
    );
    assert_eq!(std::fs::read_to_string(host.join("f")).unwrap(), "bind\n");
    for target in ["/d/new", "/h/new", "/anon/new"] {
        let e = run_fails(
            &d,
            &["--volumes-from", "src:ro", "busybox", "touch", target],
        );
        assert!(e.contains("Read-only file system"), "{target}: {e}");
    }
    assert_eq!(
        run(&d, &["-v", "vf:/d", "busybox", "cat", "/d/f"]),
        "vol\nagain\n"
    );
    // The container's own mount wins over an inherited one at the same place.
    assert_eq!(
        run(
            &d,
            &[
                "--volumes-from",
                "src:ro",
                "-v",
                "other:/d",
                "busybox",
                "sh",
                "-c",
                "touch /d/ok && ls /d"
            ]
        ),
        "ok\n"
    );
    d.ok(&[
        "create",
        "--name",
        "ro",
        "--network",
        "none",
        "--volumes-from",
        "src:ro",
        "busybox",
        "true",
    ]);
    let m = d.ok(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{.Destination}}={{.RW}} {{end}}",
        "ro",
    ]);
    let mut m: Vec<&str> = m.split_whitespace().collect();
    m.sort();
    assert_eq!(m, ["/anon=false", "/d=false", "/h=false"]);
    // The inherited volumes are in use by the new container too.
    d.ok(&["rm", "src"]);
    let o = d.docker(&["volume", "rm", "vf"]);
    assert!(stderr(&o).contains("volume is in use"), "{}", stderr(&o));
    // An unknown source container is a 404 (which the CLI, like Docker's, takes for a missing
    // image and tries to pull): nothing is created.
    let before = d.ok(&["ps", "-aq"]);
    run_fails(&d, &["--volumes-from", "ghost", "busybox", "true"]);
    assert_eq!(d.ok(&["ps", "-aq"]), before);
    let (status, body) = api(
        &d,
        "POST",
        "/containers/create",
        r#"{"Image":"busybox","Cmd":["true"],"HostConfig":{"VolumesFrom":["ghost:ro"]}}"#,
    );
    assert_eq!(
        (status, body.as_str()),
        (404, r#"{"message":"No such container: ghost"}"#)
    );
}

#[test]
fn prune_and_ls_filters_touch_only_what_they_should() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    d.ok(&["volume", "create", "named-unused"]);
    d.ok(&["volume", "create", "--label", "keep=yes", "named-labelled"]);
    d.ok(&[
        "create",
        "--name",
        "holder",
        "--network",
        "none",
        "-v",
        "named-used:/a",
        "-v",
        "/anon-used",
        "busybox",
        "true",
    ]);
    // An unused anonymous volume: its container is gone without -v.
    d.ok(&[
        "run",
        "--name",
        "gone",
        "--network",
        "none",
        "-v",
        "/anon-unused",
        "busybox",
        "true",
    ]);
    let anon_unused = d
        .ok(&[
            "inspect",
            "--format",
            "{{range .Mounts}}{{.Name}}{{end}}",
            "gone",
        ])
        .trim()
        .to_string();
    d.ok(&["rm", "gone"]);
    let anon_used = d
        .ok(&[
            "inspect",
            "--format",
            "{{range .Mounts}}{{if eq .Destination \"/anon-used\"}}{{.Name}}{{end}}{{end}}",
            "holder",
        ])
        .trim()
        .to_string();
    assert_eq!(volumes(&d, &[]).len(), 5);

    // ls filters.
    let mut dangling = vec![
        anon_unused.clone(),
        "named-labelled".into(),
        "named-unused".into(),
    ];
    dangling.sort();
    assert_eq!(volumes(&d, &["--filter", "dangling=true"]), dangling);
    let mut used = vec![anon_used.clone(), "named-used".into()];
    used.sort();
    assert_eq!(volumes(&d, &["--filter", "dangling=false"]), used);
    assert_eq!(
        volumes(&d, &["--filter", "label=keep=yes"]),
        ["named-labelled"]
    );
    assert_eq!(
        volumes(&d, &["--filter", "name=named-u"]),
        ["named-unused", "named-used"]
    );
    assert_eq!(volumes(&d, &["--filter", "driver=local"]).len(), 5);

    // Default prune: unused anonymous volumes only.
    let out = d.ok(&["volume", "prune", "-f"]);
    assert!(out.contains(&anon_unused), "{out}");
    assert!(!volumes(&d, &[]).contains(&anon_unused));
    assert_eq!(volumes(&d, &[]).len(), 4);
    // --all with a label filter: only the matching unused volume.
    d.ok(&["volume", "prune", "-af", "--filter", "label=keep=yes"]);
    let mut left = vec![
        anon_used.clone(),
        "named-unused".into(),
        "named-used".into(),
    ];
    left.sort();
    assert_eq!(volumes(&d, &[]), left);
    // --all: every unused volume, never one in use.
    d.ok(&["volume", "prune", "-af"]);
    assert_eq!(volumes(&d, &[]), used);
    d.ok(&["rm", "holder"]);
    d.ok(&["volume", "prune", "-af"]);
    assert!(volumes(&d, &[]).is_empty());
}

#[test]
fn system_df_reports_volume_size_and_refcount() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    run(
        &d,
        &[
            "-v",
            "sized:/d",
            "busybox",
            "dd",
            "if=/dev/zero",
            "of=/d/f",
            "bs=1024",
            "count=1024",
        ],
    );
    d.ok(&["volume", "create", "empty"]);
    d.ok(&[
        "create",
        "--network",
        "none",
        "-v",
        "sized:/d",
        "busybox",
        "true",
    ]);
    d.ok(&[
        "create",
        "--network",
        "none",
        "-v",
        "sized:/e",
        "busybox",
        "true",
    ]);
    let out = d.ok(&["system", "df", "-v"]);
    let row = |name: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{out}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    assert_eq!(row("sized")[1..], ["2", "1.049MB"], "{out}");
    assert_eq!(row("empty")[1..], ["0", "0B"], "{out}");
}

#[test]
fn local_driver_tmpfs_and_bind_options() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    d.ok(&[
        "volume",
        "create",
        "--driver",
        "local",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=1m",
        "tv",
    ]);
    let opts = d.ok(&["volume", "inspect", "--format", "{{json .Options}}", "tv"]);
    assert_eq!(
        opts.trim(),
        r#"{"device":"tmpfs","o":"size=1m","type":"tmpfs"}"#
    );
    let mp = d
        .ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", "tv"])
        .trim()
        .to_string();
    let out = run(
        &d,
        &["-v", "tv:/t", "busybox", "sh", "-c", "df -k /t | tail -n 1"],
    );
    let df: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(df[1], "1024", "{out}");
    let e = run_fails(
        &d,
        &[
            "-v",
            "tv:/t",
            "busybox",
            "dd",
            "if=/dev/zero",
            "of=/t/big",
            "bs=1024",
            "count=2048",
        ],
    );
    assert!(e.contains("No space left on device"), "{e}");
    assert!(!mounted_at(&mp), "unmounted once no container uses it");
    // Mounted while a container runs, shared by two containers, unmounted after the last.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "aa",
        "--network",
        "none",
        "-v",
        "tv:/t",
        "busybox",
        "sleep",
        "60",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "bb",
        "--network",
        "none",
        "-v",
        "tv:/t",
        "busybox",
        "sleep",
        "60",
    ]);
    assert!(mounted_at(&mp));
    d.ok(&["exec", "aa", "sh", "-c", "echo shared > /t/f"]);
    assert_eq!(d.ok(&["exec", "bb", "cat", "/t/f"]), "shared\n");
    d.ok(&["rm", "-f", "aa"]);
    assert!(mounted_at(&mp), "b still uses it");
    d.ok(&["rm", "-f", "bb"]);
    common::eventually("the tmpfs volume is unmounted", || !mounted_at(&mp));

    // A bind of a host directory: writes land there, and removing the volume keeps them.
    let host = d.dir.path().join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("keep"), "precious\n").unwrap();
    let dev = format!("device={}", host.display());
    d.ok(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        "o=bind",
        "--opt",
        &dev,
        "bv",
    ]);
    assert_eq!(
        run(
            &d,
            &[
                "-v",
                "bv:/b",
                "busybox",
                "sh",
                "-c",
                "cat /b/keep; echo new > /b/new"
            ]
        ),
        "precious\n"
    );
    assert_eq!(std::fs::read_to_string(host.join("new")).unwrap(), "new\n");
    d.ok(&["volume", "rm", "bv"]);
    assert_eq!(
        std::fs::read_to_string(host.join("keep")).unwrap(),
        "precious\n"
    );
    assert!(host.join("new").exists());

    // Options are checked as Docker's local driver checks them.
    let o = d.docker(&["volume", "create", "--opt", "foo=bar", "bad"]);
    assert!(
        stderr(&o).contains("create bad: invalid option: \"foo\""),
        "{}",
        stderr(&o)
    );
    let o = d.docker(&["volume", "create", "--opt", "type=tmpfs", "bad"]);
    assert!(
        stderr(&o).contains("create bad: missing required option: \"device\""),
        "{}",
        stderr(&o)
    );
    assert_eq!(volumes(&d, &[]), ["tv"]);
    // --mount volume-opt creates a volume with driver options.
    let out = run(
        &d,
        &[
            "--mount",
            "type=volume,source=mv,target=/m,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-opt=o=size=2m",
            "busybox",
            "sh",
            "-c",
            "df -k /m | tail -n 1",
        ],
    );
    assert_eq!(out.split_whitespace().nth(1), Some("2048"), "{out}");
}

#[test]
fn volumes_survive_graceful_and_kill9_restarts() {
    require_env!();
    let mut d = Daemon::start();
    d.busybox();
    run(
        &d,
        &["-v", "keep:/d", "busybox", "sh", "-c", "echo kept > /d/f"],
    );
    d.ok(&[
        "run",
        "--name",
        "anon",
        "--network",
        "none",
        "-v",
        "/a",
        "busybox",
        "sh",
        "-c",
        "echo anon > /a/f",
    ]);
    d.ok(&["volume", "create", "--label", "l=v", "labelled"]);
    d.ok(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=1m",
        "tv",
    ]);
    let before = volumes(&d, &[]);
    assert_eq!(before.len(), 4);

    d.stop();
    d.spawn();
    assert_eq!(volumes(&d, &[]), before, "graceful restart");
    assert_eq!(
        run(&d, &["-v", "keep:/d", "busybox", "cat", "/d/f"]),
        "kept\n"
    );
    assert_eq!(
        run(&d, &["--volumes-from", "anon", "busybox", "cat", "/a/f"]),
        "anon\n"
    );

    // kill -9 while a container uses the tmpfs volume: the volume stays mounted for it.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "user",
        "--network",
        "none",
        "-v",
        "tv:/t",
        "busybox",
        "sh",
        "-c",
        "echo live > /t/f; sleep 60",
    ]);
    let mp = d
        .ok(&["volume", "inspect", "--format", "{{.Mountpoint}}", "tv"])
        .trim()
        .to_string();
    common::eventually("the container wrote", || {
        std::fs::read_to_string(Path::new(&mp).join("f")).is_ok_and(|s| s == "live\n")
    });
    d.kill9();
    d.spawn();
    assert_eq!(volumes(&d, &[]), before, "kill -9 restart");
    assert_eq!(
        d.ok(&["volume", "inspect", "--format", "{{.Labels.l}}", "labelled"])
            .trim(),
        "v"
    );
    assert_eq!(
        run(&d, &["-v", "keep:/d", "busybox", "cat", "/d/f"]),
        "kept\n"
    );
    assert!(mounted_at(&mp), "still mounted for the running container");
    assert_eq!(d.ok(&["exec", "user", "cat", "/t/f"]), "live\n");
    let o = d.docker(&["volume", "rm", "keep", "tv"]);
    assert!(
        stderr(&o).contains("remove tv: volume is in use"),
        "{}",
        stderr(&o)
    );
    d.ok(&["rm", "-f", "user"]);
    common::eventually("unmounted after its last user", || !mounted_at(&mp));
    d.ok(&["volume", "rm", "tv"]);
}

#[test]
fn python_sdk_volumes_and_mounts() {
    require_env!();
    let venv = std::env::var("WHARF_TEST_VENV").unwrap_or_else(|_| "/var/tmp/wharf-venv".into());
    let python = Path::new(&venv).join("bin/python");
    let has_sdk = python.exists()
        && std::process::Command::new(&python)
            .args(["-c", "import docker, pytest"])
            .status()
            .is_ok_and(|s| s.success());
    if !has_sdk {
        wharf_testkit::skip(format!(
            "no venv with docker and pytest at {venv} (.ci/run makes one)"
        ));
        return;
    }
    let d = Daemon::start();
    d.busybox();
    let test = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/test_sdk_volumes.py");
    let out = std::process::Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&test)
        .env("WHARF_HOST", d.host())
        .output()
        .expect("run pytest");
    let text = format!("{}{}", common::stdout(&out), stderr(&out));
    assert!(
        out.status.success(),
        "pytest failed:\n{text}\n--- wharfd log ---\n{}",
        d.log()
    );
    assert!(text.contains("2 passed"), "{text}");
}
