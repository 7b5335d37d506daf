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
