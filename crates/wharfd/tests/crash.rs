//! Crash injection (issue 15): pull, load, import, commit, cp and export are each started
//! through the docker CLI and wharfd is killed with SIGKILL at a random point of them, again
//! and again (at least 50 kills in all). After every restart the stores must hold:
//!
//! - every image listed can be saved whole (its layers are all there) and runs;
//! - no mount is left in the layer store's scratch space, no temp file in its scratch dirs;
//! - every container that existed is still listed;
//! - the interrupted operation, retried, succeeds.

mod common;

use common::registry::LocalRegistry;
use common::{stderr, Daemon};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Readies the daemon for one round of an operation and returns its docker arguments.
type Prepare = Box<dyn Fn(&Daemon) -> Vec<String>>;

/// Kills per operation (6 operations: 54 kills).
const KILLS_EACH: usize = 9;

/// A random number below `n` (getrandom: no seed to share between runs).
fn below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    u64::from_le_bytes(b) % n.max(1)
}

fn spawn_docker(d: &Daemon, args: &[&str]) -> Child {
    Command::new(common::DOCKER)
        .arg("-H")
        .arg(d.host())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn data_root(d: &Daemon) -> PathBuf {
    d.dir.path().join("data")
}

/// Entries of a directory (none when it is missing).
fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The invariants after a restart; `containers` must all still be listed.
fn check_invariants(d: &Daemon, containers: &[String], round: &str) {
    let root = data_root(d);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for sub in ["layers/tmp", "layers/mnt"] {
        let dir = root.join(sub);
        assert!(
            !mounts.contains(dir.to_str().unwrap()),
            "{round}: a mount is left under {}",
            dir.display()
        );
        assert_eq!(
            entries(&dir),
            Vec::<String>::new(),
            "{round}: {sub} not empty"
        );
    }
    assert_eq!(
        entries(&root.join("layers/blobs/tmp")),
        Vec::<String>::new(),
        "{round}: blob temp files left"
    );
    let images = d.ok(&["images", "-q", "--no-trunc"]);
    // Never `-o /dev/null`: the docker CLI writes a temp file beside the target and renames
    // it over the target.
    let out = d.dir.path().join("check.tar");
    for id in images.lines() {
        let o = d.docker(&["save", "-o", out.to_str().unwrap(), id]);
        assert!(
            o.status.success(),
            "{round}: image {id} is broken: {}",
            stderr(&o)
        );
    }
    let listed = d.ok(&["ps", "-a", "-q", "--no-trunc"]);
    for c in containers {
        assert!(
            listed.contains(c.as_str()),
            "{round}: container {c} is gone"
        );
    }
}

/// Runs `args` and kills wharfd at a random point within `window_ms`, then restarts it.
fn kill_during(d: &mut Daemon, args: &[&str], window_ms: u64) {
    let mut client = spawn_docker(d, args);
    std::thread::sleep(Duration::from_millis(below(window_ms)));
    d.kill9();
    let _ = client.kill();
    let _ = client.wait();
    d.spawn();
}

#[test]
fn kill9_during_pull_load_import_commit_cp_and_export_loses_nothing() {
    require_env!();
    let Some(reg) = LocalRegistry::start() else {
        return;
    };
    let mut d = Daemon::start();
    d.busybox();
    // A two-layer image of some size, in the registry and as archives.
    d.ok(&[
        "run", "--name", "maker", "--network", "none", "busybox", "sh", "-c",
        "head -c 8000000 /dev/urandom > /big; mkdir /tree; for i in $(seq 300); do echo $i > /tree/f$i; done",
    ]);
    d.ok(&["commit", "maker", "big:1"]);
    let remote = format!("{}/crash/big:1", reg.addr);
    d.ok(&["tag", "big:1", &remote]);
    d.ok(&["push", &remote]);
    let work = d.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let archive = work.join("big.tar");
    d.ok(&["save", "-o", archive.to_str().unwrap(), "big:1"]);
    let rootfs = work.join("rootfs.tar");
    d.ok(&["export", "-o", rootfs.to_str().unwrap(), "maker"]);
    let src_dir = work.join("src");
    std::fs::create_dir_all(&src_dir).unwrap();
    for i in 0..200 {
        std::fs::write(src_dir.join(format!("f{i}")), vec![b'x'; 64 * 1024]).unwrap();
    }
    // Containers that must survive every kill: a stopped one and a running one.
    let stopped = d.ok(&["ps", "-a", "-q", "--no-trunc", "--filter", "name=maker"]);
    let running = d.ok(&["run", "-d", "--network", "none", "busybox", "sleep", "3600"]);
    let keep = vec![stopped.trim().to_string(), running.trim().to_string()];

    let mut kills = 0;
    let ops: Vec<(&str, Prepare)> = vec![
        ("pull", {
            let remote = remote.clone();
            Box::new(move |d: &Daemon| {
                // Pulled each round: the local copy of its top layer goes first.
                let _ = d.docker(&["rmi", "-f", &remote, "big:1"]);
                vec!["pull".into(), remote.clone()]
            })
        }),
        ("load", {
            let archive = archive.clone();
            let remote_l = remote.clone();
            Box::new(move |d: &Daemon| {
                let _ = d.docker(&["rmi", "-f", &remote_l, "big:1"]);
                vec!["load".into(), "-i".into(), archive.display().to_string()]
            })
        }),
        ("import", {
            let rootfs = rootfs.clone();
            Box::new(move |_: &Daemon| {
                vec![
                    "import".into(),
                    rootfs.display().to_string(),
                    "imported:1".into(),
                ]
            })
        }),
        (
            "commit",
            Box::new(|_: &Daemon| vec!["commit".into(), "maker".into(), "committed:1".into()]),
        ),
        ("cp", {
            let src_dir = src_dir.clone();
            Box::new(move |_: &Daemon| {
                vec![
                    "cp".into(),
                    src_dir.display().to_string(),
                    "maker:/copied".into(),
                ]
            })
        }),
        ("export", {
            let out = work.join("exported.tar");
            Box::new(move |_: &Daemon| {
                vec![
                    "export".into(),
                    "-o".into(),
                    out.display().to_string(),
                    "maker".into(),
                ]
            })
        }),
    ];
    for (name, prepare) in &ops {
        // How long the operation takes uninterrupted bounds the kill window.
        let args = prepare(&d);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let t = std::time::Instant::now();
        let o = d.docker(&argv);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let window = (t.elapsed().as_millis() as u64).max(20);
        for i in 0..KILLS_EACH {
            let args = prepare(&d);
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            kill_during(&mut d, &argv, window);
            kills += 1;
            check_invariants(&d, &keep, &format!("{name} #{i}"));
            // The retry succeeds.
            let o = d.docker(&argv);
            assert!(o.status.success(), "{name} #{i}, retried: {}", stderr(&o));
        }
    }
    assert!(kills >= 50, "{kills} kills");
    // The images all run.
    for img in ["big:1", "imported:1", "committed:1"] {
        d.ok(&["run", "--rm", "--network", "none", img, "true"]);
    }
    eprintln!("{kills} kills of wharfd, every invariant held");
}
