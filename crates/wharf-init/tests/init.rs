//! The embedded init as a program: exit statuses, signal forwarding, zombie reaping, and
//! that it runs in a root with no libc at all (as in a scratch image).

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The init, installed once for the test process: another test thread that forks while the
/// file is open for writing would make its exec fail with ETXTBSY.
fn init() -> PathBuf {
    static INIT: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();
    let (_, p) = INIT.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        let p = wharf_init::install(d.path()).unwrap();
        (d, p)
    });
    p.clone()
}

fn code(c: &mut Command) -> i32 {
    let st = c.stderr(Stdio::null()).status().unwrap();
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap())
}

#[test]
fn exits_with_the_commands_status() {
    let i = init();
    assert_eq!(code(Command::new(&i).args(["--", "sh", "-c", "exit 3"])), 3);
    assert_eq!(code(Command::new(&i).args(["sh", "-c", "exit 0"])), 0);
    // Killed by a signal: 128 + its number.
    assert_eq!(
        code(Command::new(&i).args(["--", "sh", "-c", "kill -9 $$"])),
        137
    );
    assert_eq!(code(Command::new(&i).args(["--", "/nonexistent/cmd"])), 127);
    assert_eq!(code(&mut Command::new(&i)), 2);
}

#[test]
fn the_command_starts_with_no_signal_blocked() {
    let i = init();
    let out = Command::new(&i)
        .args(["--", "grep", "SigBlk", "/proc/self/status"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "SigBlk:\t0000000000000000\n",
        "the command inherited the init's blocked signals: `sleep` would ignore SIGTERM"
    );
}

#[test]
fn forwards_sigterm_to_the_command() {
    let i = init();
    let d = tempfile::tempdir().unwrap();
    let ready = d.path().join("ready");
    let script = format!(
        "trap 'exit 7' TERM; touch {}; while :; do sleep 0.05; done",
        ready.display()
    );
    let mut child = Command::new(&i)
        .args(["--", "sh", "-c", &script])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "the command did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(7), "{st:?}");
    // A command without a handler dies of it: 128 + 15.
    let mut child = Command::new(&i)
        .args(["--", "sleep", "30"])
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // Once the init has a child it has blocked the signals it forwards.
    let children = format!("/proc/{pid}/task/{pid}/children");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&children)
        .unwrap_or_default()
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the init did not start its command"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(143));
}

#[test]
fn exits_when_the_command_does_while_its_children_live_on() {
    let i = init();
    let st = Command::new(&i)
        .args(["--", "sh", "-c", "(sleep 30 &); exit 5"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(5));
}

#[test]
fn runs_in_a_root_without_libc() {
    if !is_root() {
        eprintln!("skipping runs_in_a_root_without_libc: chroot needs root");
        return;
    }
    let bb = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox (static) is needed");
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("sbin")).unwrap();
    std::fs::copy(bb, root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    std::fs::write(root.join("sbin/docker-init"), wharf_init::BINARY).unwrap();
    std::fs::set_permissions(
        root.join("sbin/docker-init"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    assert!(!root.join("lib").exists() && !root.join("lib64").exists());
    // No ETXTBSY here: the copy was closed before any fork could inherit it... unless
    // another test thread forked while it was open; chroot then fails to exec it, so retry.
    let mut tries = 0;
    let out = loop {
        tries += 1;
        let out = Command::new("chroot")
            .arg(root)
            .args([
                "/sbin/docker-init",
                "--",
                "/bin/sh",
                "-c",
                "echo in; exit 4",
            ])
            .output()
            .unwrap();
        if tries == 5 || !String::from_utf8_lossy(&out.stderr).contains("Text file busy") {
            break out;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        out.status.code(),
        Some(4),
        "{out:?}: the init does not run without a dynamic loader"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "in\n");
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn pause_holds_until_sigterm() {
    let i = init();
    let c = Command::new(&i)
        .arg("--pause")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    /// Kills the pause on a failed assertion.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut c = Reap(c);
    let pid = nix::unistd::Pid::from_raw(c.0.id() as i32);
    // It has reached its wait for signals (the kernel unblocks the awaited ones meanwhile,
    // so SigBlk shows nothing: wchan says where it sleeps).
    let waiting = || {
        std::fs::read_to_string(format!("/proc/{pid}/wchan"))
            .unwrap_or_default()
            .contains("sigtimedwait")
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !waiting() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(waiting(), "wharf-init --pause is not waiting for signals");
    assert!(
        c.0.try_wait().unwrap().is_none(),
        "--pause exited by itself"
    );
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(c.0.wait().unwrap().code(), Some(0));
}
