//! `wharf` against a real dockerd (Debian's docker.io, started here on its own socket,
//! data-root and exec-root, without a bridge or iptables): since wharf only speaks the Engine
//! API, it must drive dockerd and print what the docker CLI prints against the same daemon.
//! Skipped (with a note) when dockerd is not installed.

mod common;

use common::{stderr, stdout, DOCKER, WHARF};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A dockerd for one test, stopped (SIGTERM, then its containerd with it) on drop.
struct Dockerd {
    dir: tempfile::TempDir,
    child: Child,
}

impl Dockerd {
    fn start() -> Option<Dockerd> {
        let bin = Path::new("/usr/sbin/dockerd");
        if !bin.exists() {
            eprintln!("skipped: dockerd (Debian docker.io) is not installed");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("wharf-dockerd-")
            .tempdir()
            .unwrap();
        let p = dir.path();
        std::fs::write(p.join("daemon.json"), "{}").unwrap();
        let log = std::fs::File::create(p.join("dockerd.log")).unwrap();
        let child = Command::new(bin)
            .arg("-H")
            .arg(format!("unix://{}", p.join("d.sock").display()))
            .arg("--data-root")
            .arg(p.join("data"))
            .arg("--exec-root")
            .arg(p.join("exec"))
            .arg("--pidfile")
            .arg(p.join("d.pid"))
            .args(["--bridge", "none", "--iptables=false", "--ip6tables=false"])
            .arg("--config-file")
            .arg(p.join("daemon.json"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let d = Dockerd { dir, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !d.docker(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "dockerd did not come up: {}",
                std::fs::read_to_string(d.dir.path().join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(d)
    }

    fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("d.sock").display())
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new(DOCKER)
            .arg("-H")
            .arg(self.host())
            .args(args)
            .output()
            .unwrap()
    }

    fn wharf(&self, args: &[&str]) -> Output {
        Command::new(WHARF)
            .arg("-H")
            .arg(self.host())
            .args(args)
            .output()
            .unwrap()
    }

    /// Both clients, same arguments: (wharf, docker).
    fn both(&self, args: &[&str]) -> (Output, Output) {
        (self.wharf(args), self.docker(args))
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = self.docker(&["rm", "-f", "wd1", "wd2"]);
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
        // Anything dockerd left mounted under its directories.
        if let Ok(m) = std::fs::read_to_string("/proc/mounts") {
            let root = self.dir.path().display().to_string();
            let mut points: Vec<&str> = m
                .lines()
                .filter_map(|l| l.split_whitespace().nth(1))
                .filter(|p| p.starts_with(&root))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

#[track_caller]
fn same(d: &Dockerd, args: &[&str]) -> String {
    let (w, k) = d.both(args);
    assert_eq!(
        (w.status.code(), stdout(&w)),
        (k.status.code(), stdout(&k)),
        "wharf (left) and docker (right) differ on {args:?} against dockerd\nwharf stderr: {}\ndocker stderr: {}",
        stderr(&w),
        stderr(&k)
    );
    stdout(&w)
}

#[test]
fn wharf_drives_a_real_dockerd_like_the_docker_cli() {
    require_env!();
    let Some(d) = Dockerd::start() else {
        return;
    };
    // An image from the host's busybox, imported with wharf.
    let tar = Command::new(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mkbusybox-rootfs.sh"),
    )
    .output()
    .unwrap();
    assert!(tar.status.success());
    let mut imp = Command::new(WHARF)
        .args(["-H", &d.host(), "import", "-", "busybox"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        imp.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
    }
    assert!(
        imp.wait_with_output().unwrap().status.success(),
        "wharf import into dockerd"
    );

    assert!(same(&d, &["version", "--format", "{{.Server.Version}}"]).starts_with("20."));
    assert_eq!(
        same(
            &d,
            &["run", "--rm", "--network", "none", "busybox", "echo", "hi"]
        ),
        "hi\n"
    );
    // Exit codes: the container's own, and docker's 125/127.
    same(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "exit 3",
        ],
    );
    same(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "no-such-command",
        ],
    );
    let (w, _) = d.both(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(w.status.code(), Some(3));

    let w = d.wharf(&[
        "run",
        "-d",
        "--name",
        "wd1",
        "--network",
        "none",
        "-l",
        "k=v",
        "busybox",
        "sleep",
        "30",
    ]);
    assert!(w.status.success(), "{}", stderr(&w));
    same(
        &d,
        &[
            "ps",
            "--format",
            "{{.Names}} {{.Image}} {{.Command}} {{.Label \"k\"}}",
        ],
    );
    same(&d, &["ps", "-a", "-q", "--no-trunc"]);
    assert_eq!(
        same(
            &d,
            &[
                "inspect",
                "--format",
                "{{.State.Status}} {{json .Config.Cmd}}",
                "wd1"
            ]
        ),
        "running [\"sleep\",\"30\"]\n"
    );
    assert_eq!(
        same(&d, &["exec", "wd1", "sh", "-c", "echo $((6*7))"]),
        "42\n"
    );
    same(
        &d,
        &["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
    );
    same(
        &d,
        &["image", "inspect", "--format", "{{.Id}} {{.Os}}", "busybox"],
    );
    same(&d, &["top", "wd1", "-o", "pid,comm"]);
    same(&d, &["volume", "ls", "-q"]);
    assert_eq!(same(&d, &["stop", "-t", "1", "wd1"]), "wd1\n");
    same(
        &d,
        &[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            "wd1",
        ],
    );
    assert_eq!(d.wharf(&["rm", "wd1"]).status.code(), Some(0));
    // An error from the daemon: same exit code and no output on stdout.
    same(&d, &["rm", "wd1"]);
}
