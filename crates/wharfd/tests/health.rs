//! End-to-end: healthchecks as dockerd runs them, driven by the docker CLI's `--health-*`
//! flags: status in `ps` and inspect, the log, `health_status` events, the `health=` filter,
//! timeouts, images that carry a healthcheck and `--no-healthcheck`, and a wharfd restart.

mod common;

use common::{eventually, Daemon};
use serde_json::Value;

fn health(d: &Daemon, id: &str) -> Value {
    let out = d.ok(&["inspect", "--format", "{{json .State.Health}}", id]);
    serde_json::from_str(out.trim()).unwrap()
}

fn status(d: &Daemon, id: &str) -> String {
    health(d, id)["Status"]
        .as_str()
        .unwrap_or("none")
        .to_string()
}

#[test]
fn a_failing_then_passing_check_goes_unhealthy_then_healthy() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let id = d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--health-cmd",
        "test -f /ok && echo fine || { echo missing >&2; exit 1; }",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "busybox",
        "sh",
        "-c",
        "sleep 2; touch /ok; sleep 600",
    ]);
    let id = id.trim().to_string();
    // Until the first probe: starting.
    let ps = d.ok(&[
        "ps",
        "--format",
        "{{.Status}}",
        "--filter",
        &format!("id={id}"),
    ]);
    assert!(ps.contains("(health: starting)"), "{ps}");
    eventually("unhealthy after two failures", || {
        status(&d, &id) == "unhealthy"
    });
    let h = health(&d, &id);
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "{h}");
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], 1, "{h}");
    assert_eq!(last["Output"], "missing\n", "{h}");
    let ps = d.ok(&[
        "ps",
        "--format",
        "{{.Status}}",
        "--filter",
        "health=unhealthy",
    ]);
    assert!(ps.contains("(unhealthy)"), "{ps}");
    eventually("healthy once /ok exists", || status(&d, &id) == "healthy");
    let h = health(&d, &id);
    assert_eq!(h["FailingStreak"], 0);
    assert!(h["Log"].as_array().unwrap().len() <= 5, "{h}");
    assert_eq!(
        h["Log"].as_array().unwrap().last().unwrap()["Output"],
        "fine\n"
    );
    let ids = d.ok(&["ps", "-q", "--no-trunc", "--filter", "health=healthy"]);
    assert_eq!(ids.trim(), id);
    assert_eq!(
        d.ok(&["ps", "-q", "--filter", "health=unhealthy"]).trim(),
        ""
    );
    // The status changes were events, in order.
    let ev = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &format!("{}", unix_now() + 1),
        "--filter",
        &format!("container={id}"),
        "--format",
        "{{.Action}}",
    ]);
    let health_events: Vec<&str> = ev
        .lines()
        .filter(|l| l.starts_with("health_status"))
        .collect();
    assert_eq!(
        health_events,
        ["health_status: unhealthy", "health_status: healthy"],
        "{ev}"
    );
    d.ok(&["rm", "-f", &id]);
}

#[test]
fn a_probe_past_its_timeout_is_killed_and_counts_as_a_failure() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let id = d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--health-cmd",
        "sleep 30",
        "--health-interval",
        "100ms",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "600",
    ]);
    let id = id.trim();
    eventually("unhealthy by timeout", || status(&d, id) == "unhealthy");
    let h = health(&d, id);
    let last = &h["Log"].as_array().unwrap()[0];
    assert_eq!(last["ExitCode"], -1, "{h}");
    assert_eq!(
        last["Output"], "Health check exceeded timeout (300ms)",
        "{h}"
    );
    // The probe was killed, not left running in the container.
    eventually("no sleep 30 left", || {
        !d.ok(&["top", id]).contains("sleep 30")
    });
    d.ok(&["rm", "-f", id]);
}

#[test]
fn an_images_healthcheck_is_inherited_and_no_healthcheck_turns_it_off() {
    require_env!();
    let mut d = Daemon::start();
    d.busybox();
    d.ok(&[
        "create",
        "--name",
        "base",
        "--network",
        "none",
        "--health-cmd",
        "true",
        "--health-interval",
        "150ms",
        "busybox",
        "sleep",
        "600",
    ]);
    d.ok(&["commit", "base", "checked:1"]);
    let cfg = d.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Healthcheck}}",
        "checked:1",
    ]);
    assert!(cfg.contains(r#""Test":["CMD-SHELL","true"]"#), "{cfg}");
    let inherits = d.ok(&["run", "-d", "--network", "none", "checked:1"]);
    let inherits = inherits.trim().to_string();
    eventually("the image's check runs", || {
        status(&d, &inherits) == "healthy"
    });
    let off = d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--no-healthcheck",
        "checked:1",
    ]);
    let off = off.trim().to_string();
    assert_eq!(
        d.ok(&["inspect", "--format", "{{json .State.Health}}", &off])
            .trim(),
        "null"
    );
    let ids = d.ok(&["ps", "-q", "--no-trunc", "--filter", "health=none"]);
    assert_eq!(ids.trim(), off);

    // Across a kill -9 of wharfd the status stands and probing goes on.
    let before = health(&d, &inherits)["Log"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["End"]
        .clone();
    d.kill9();
    d.spawn();
    assert_eq!(status(&d, &inherits), "healthy");
    eventually("a new probe after the restart", || {
        health(&d, &inherits)["Log"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["End"]
            != before
    });
    // A bad healthcheck is a clear 400 at create.
    let o = d.docker(&["create", "--health-interval", "-1s", "busybox"]);
    assert!(!o.status.success());
    d.ok(&["rm", "-f", &inherits, &off, "base"]);
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
