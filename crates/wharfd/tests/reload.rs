//! SIGHUP makes wharfd re-read daemon.json: labels, debug and the default runtime change
//! without a restart; an invalid file is logged and changes nothing; SIGTERM still stops it.

mod common;

use common::Daemon;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn signal(d: &Daemon, s: Signal) {
    let pid = d.pid().expect("wharfd is running");
    kill(Pid::from_raw(pid as i32), s).unwrap();
}

fn info(d: &Daemon, format: &str) -> String {
    d.ok(&["info", "--format", format]).trim().to_string()
}

#[test]
fn sighup_reloads_labels_debug_and_runtimes_and_keeps_them_on_a_bad_file() {
    require_env!();
    let d = Daemon::start_with(&[], Some(r#"{"labels": ["env=one"]}"#));
    assert_eq!(info(&d, "{{.Labels}}"), "[env=one]");
    assert_eq!(info(&d, "{{.Debug}}"), "false");
    assert_eq!(info(&d, "{{.DefaultRuntime}}"), "wharf");

    std::fs::write(
        d.config_file(),
        r#"{"labels": ["env=two", "tier=db"], "debug": true,
            "runtimes": {"mine": {"path": "/bin/true"}}, "default-runtime": "mine"}"#,
    )
    .unwrap();
    signal(&d, Signal::SIGHUP);
    common::eventually("labels reloaded", || {
        info(&d, "{{.Labels}}") == "[env=two tier=db]"
    });
    assert_eq!(info(&d, "{{.Debug}}"), "true");
    assert_eq!(info(&d, "{{.DefaultRuntime}}"), "mine");
    assert!(info(&d, "{{json .Runtimes}}").contains("\"mine\""));

    // Broken JSON, then a valid file with an invalid value: both are refused whole.
    for bad in [
        r#"{"labels": ["env=three"#,
        r#"{"labels": ["env=three"], "default-runtime": "missing"}"#,
    ] {
        let before = d.log().matches("not reloaded").count();
        std::fs::write(d.config_file(), bad).unwrap();
        signal(&d, Signal::SIGHUP);
        common::eventually("the refusal logged", || {
            d.log().matches("not reloaded").count() > before
        });
        assert_eq!(info(&d, "{{.Labels}}"), "[env=two tier=db]");
        assert_eq!(info(&d, "{{.DefaultRuntime}}"), "mine");
        assert_eq!(info(&d, "{{.Debug}}"), "true");
    }

    // Back to a good file: debug off, labels gone, the built-in runtime again.
    std::fs::write(d.config_file(), "{}").unwrap();
    signal(&d, Signal::SIGHUP);
    common::eventually("defaults reloaded", || info(&d, "{{.Labels}}") == "[]");
    assert_eq!(info(&d, "{{.Debug}}"), "false");
    assert_eq!(info(&d, "{{.DefaultRuntime}}"), "wharf");
}

#[test]
fn sighup_applies_the_new_default_runtime_to_new_containers() {
    require_env!();
    let d = Daemon::start_with(&[], Some("{}"));
    d.busybox();
    std::fs::write(
        d.config_file(),
        r#"{"runtimes": {"alias": {"path": "builtin"}}, "default-runtime": "alias"}"#,
    )
    .unwrap();
    signal(&d, Signal::SIGHUP);
    common::eventually("default runtime reloaded", || {
        info(&d, "{{.DefaultRuntime}}") == "alias"
    });
    let id = d.ok(&["create", "busybox", "true"]);
    let rt = d.ok(&["inspect", "--format", "{{.HostConfig.Runtime}}", id.trim()]);
    assert_eq!(rt.trim(), "alias");
}

#[test]
fn sigterm_stops_the_daemon_and_removes_its_socket() {
    require_env!();
    let mut d = Daemon::start_with(&[], None);
    signal(&d, Signal::SIGTERM);
    common::eventually("wharfd exited", || d.try_wait().is_some());
    assert!(!d.sock.exists(), "the socket was left behind");
    assert!(d.log().contains("shutting down"), "{}", d.log());
}

/// A bare wharfd (no bridge, no containers) with its own log level, stopped on drop.
struct Bare {
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Bare {
    fn start(daemon_json: &str) -> Bare {
        let dir = tempfile::Builder::new()
            .prefix("wharf-reload-")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("daemon.json"), daemon_json).unwrap();
        let log = std::fs::File::create(dir.path().join("wharfd.log")).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_wharfd"))
            .arg("-H")
            .arg(format!("unix://{}", dir.path().join("d.sock").display()))
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--config-file")
            .arg(dir.path().join("daemon.json"))
            .args(["--shim-path", "/bin/true", "--bridge", "none"])
            .stdin(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let b = Bare { dir, child };
        common::eventually("wharfd up", || b.ping());
        b
    }

    fn ping(&self) -> bool {
        std::process::Command::new(common::DOCKER)
            .arg("-H")
            .arg(format!(
                "unix://{}",
                self.dir.path().join("d.sock").display()
            ))
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn debug_lines(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("wharfd.log"))
            .unwrap_or_default()
            .matches("DEBUG")
            .count()
    }

    /// Writes daemon.json with `level` and a label naming it, sends SIGHUP and waits until
    /// `docker info` shows the label (applied after the log level).
    fn reload(&self, level: &str) {
        std::fs::write(
            self.dir.path().join("daemon.json"),
            format!(r#"{{"log-level": "{level}", "labels": ["level={level}"]}}"#),
        )
        .unwrap();
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGHUP).unwrap();
        let sock = format!("unix://{}", self.dir.path().join("d.sock").display());
        common::eventually("reload applied", || {
            std::process::Command::new(common::DOCKER)
                .args(["-H", &sock, "info", "--format", "{{.Labels}}"])
                .output()
                .is_ok_and(|o| {
                    String::from_utf8_lossy(&o.stdout).trim() == format!("[level={level}]")
                })
        });
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

#[test]
fn sighup_changes_the_log_level() {
    require_env!();
    let b = Bare::start(r#"{"log-level": "info"}"#);
    assert!(b.ping());
    assert_eq!(b.debug_lines(), 0, "debug lines at log-level info");
    b.reload("debug");
    assert!(b.ping());
    assert!(b.debug_lines() > 0, "no debug lines after log-level debug");
    b.reload("warn");
    let n = b.debug_lines();
    assert!(b.ping());
    assert_eq!(b.debug_lines(), n, "debug lines after log-level warn");
}
