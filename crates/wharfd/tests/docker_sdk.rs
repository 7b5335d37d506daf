//! End-to-end: the Python docker SDK (pytest in a venv named by WHARF_TEST_VENV, which
//! `.ci/run` creates) against wharfd.

mod common;

use common::Daemon;
use std::process::Command;

#[test]
fn python_sdk_flows() {
    require_env!();
    let venv = std::env::var("WHARF_TEST_VENV").unwrap_or_else(|_| "/var/tmp/wharf-venv".into());
    let python = std::path::Path::new(&venv).join("bin/python");
    let has_sdk = python.exists()
        && Command::new(&python)
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
    let test = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/test_sdk.py");
    let out = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&test)
        .env("WHARF_HOST", d.host())
        .output()
        .expect("run pytest");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "pytest failed:\n{text}\n--- wharfd log ---\n{}",
        d.log()
    );
    assert!(text.contains("8 passed"), "{text}");
}
