//! `wharf pull` (`-a`, `-q`) and `wharf push` against a local registry through a wharfd
//! started per test, next to the docker CLI: the same lines when not on a terminal, per-layer
//! progress bars on one (a pty made by `script`).

mod common;

use common::registry::LocalRegistry;
use common::{Daemon, DOCKER, WHARF};
use std::process::Output;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `busybox` pushed as `<repo>:1` and busybox plus a 3 MB layer as `<repo>:2`.
fn seed(reg: &LocalRegistry) -> String {
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
        "head -c 3000000 /dev/urandom > /blob",
    ]);
    let repo = format!("{}/cli/app", reg.addr);
    d.ok(&["commit", "top", &format!("{repo}:2")]);
    d.ok(&["tag", "busybox", &format!("{repo}:1")]);
    for t in ["1", "2"] {
        let out = d.ok(&["push", &format!("{repo}:{t}")]);
        assert!(out.contains(&format!("{t}: digest: sha256:")), "{out}");
    }
    repo
}

/// The lines of `s`, sorted (layers download concurrently, so their order varies).
fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(String::from).collect();
    v.sort();
    v
}

#[test]
fn pull_all_tags_quiet_and_plain_lines_as_docker() {
    require_env!();
    let Some(reg) = LocalRegistry::start() else {
        return;
    };
    let repo = seed(&reg);

    // -a: every tag, then the repository's name.
    let e = Daemon::start();
    let out = e.ok(&["pull", "-a", &repo]);
    assert!(out.contains(&format!("1: Pulling from {repo}\n")), "{out}");
    assert!(out.contains(&format!("2: Pulling from {repo}\n")), "{out}");
    assert!(
        out.ends_with(&format!(
            "Status: Downloaded newer image for {repo}\n{repo}\n"
        )),
        "{out}"
    );
    let tags = e.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    for t in ["1", "2"] {
        assert!(tags.contains(&format!("{repo}:{t}")), "{tags}");
    }
    // A tag with -a: refused as docker refuses it.
    let w = e.wharf(&["pull", "-a", &format!("{repo}:1")]);
    let d = e.docker(&["pull", "-a", &format!("{repo}:1")]);
    assert!(!w.status.success() && !d.status.success());
    assert_eq!(w.status.code(), d.status.code());
    assert!(
        text(&w).contains("tag can't be used with --all-tags/-a"),
        "{}",
        text(&w)
    );

    // -q: only the reference, as docker prints it.
    let f = Daemon::start();
    let w = f.wharf(&["pull", "-q", &format!("{repo}:1")]);
    assert!(w.status.success(), "{}", text(&w));
    f.ok(&["rmi", &format!("{repo}:1")]);
    let d = f.docker(&["pull", "-q", &format!("{repo}:1")]);
    assert_eq!(
        String::from_utf8_lossy(&w.stdout),
        String::from_utf8_lossy(&d.stdout)
    );
    assert_eq!(String::from_utf8_lossy(&w.stdout), format!("{repo}:1\n"));

    // Not a terminal: the same plain lines as docker for one pull and one push.
    let g = Daemon::start();
    let h = Daemon::start();
    let two = format!("{repo}:2");
    let w = g.wharf(&["pull", &two]);
    let d = h.docker(&["pull", &two]);
    assert!(w.status.success() && d.status.success(), "{}", text(&w));
    assert_eq!(
        sorted_lines(&String::from_utf8_lossy(&w.stdout)),
        sorted_lines(&String::from_utf8_lossy(&d.stdout))
    );
    let three = format!("{}/cli/other:3", reg.addr);
    g.ok(&["tag", &two, &three]);
    h.ok(&["tag", &two, &three]);
    let w = g.wharf(&["push", &three]);
    assert!(w.status.success(), "{}", text(&w));
    let wo = String::from_utf8_lossy(&w.stdout).into_owned();
    assert!(wo.contains(": Mounted from cli/app\n"), "{wo}");
    let d = h.docker(&["push", &three]);
    assert!(d.status.success(), "{}", text(&d));
    // Same lines, except that docker's push found them there (wharf's mounted them).
    let wo = wo.replace("Mounted from cli/app", "Layer already exists");
    assert_eq!(
        sorted_lines(&wo),
        sorted_lines(&String::from_utf8_lossy(&d.stdout))
    );
}

#[test]
fn progress_bars_on_a_terminal() {
    require_env!();
    let Some(reg) = LocalRegistry::start() else {
        return;
    };
    let repo = seed(&reg);
    let e = Daemon::start();
    // `script` gives the client a pty; its typescript is the terminal's output.
    let on_tty = |bin: &str, args: &str| {
        let log = e.dir.path().join("typescript");
        let o = std::process::Command::new("script")
            .args(["-qec"])
            .arg(format!("{bin} -H {} {args}", e.host()))
            .arg(&log)
            .env_remove("DOCKER_HOST")
            .output()
            .unwrap();
        assert!(o.status.success(), "{bin} {args}: {}", text(&o));
        std::fs::read_to_string(&log).unwrap()
    };
    let out = on_tty(WHARF, &format!("pull {repo}:2"));
    // Each layer's line is redrawn in place: cursor up, clear line, bar, cursor down.
    assert!(out.contains("\x1b[2K\r"), "{out:?}");
    assert!(
        out.contains("\x1b[1A") || out.contains("\x1b[2A"),
        "{out:?}"
    );
    assert!(out.contains("Downloading [="), "{out:?}");
    assert!(out.contains("Pull complete"), "{out:?}");
    let other = format!("{}/cli/pushed:1", reg.addr);
    e.ok(&["tag", &format!("{repo}:2"), &other]);
    // Not mounted this time: forget where the layers came from.
    std::fs::remove_dir_all(e.dir.path().join("data/image/distribution")).unwrap();
    let out = on_tty(WHARF, &format!("push {other}"));
    assert!(out.contains("Pushing [="), "{out:?}");
    assert!(out.contains("Pushed"), "{out:?}");
    // `load` on a terminal: a "Loading layer" bar per layer; plain lines otherwise.
    let archive = e.dir.path().join("saved.tar");
    e.ok(&["save", "-o", archive.to_str().unwrap(), &other]);
    e.ok(&["rmi", &other, &format!("{repo}:2")]);
    let out = on_tty(WHARF, &format!("load -i {}", archive.display()));
    assert!(out.contains("Loading layer [="), "{out:?}");
    assert!(out.contains(&format!("Loaded image: {other}")), "{out:?}");
    e.ok(&["rmi", &other]);
    let plain = e.wharf(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(text(&plain), format!("Loaded image: {other}\n"));
    // docker draws the same stream the same way.
    let dout = on_tty(DOCKER, &format!("pull {repo}:1"));
    assert!(
        dout.contains("\x1b[2K\r") || dout.contains("Already exists"),
        "{dout:?}"
    );
}
