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

/// The tests of docker-py 6.1.3's own integration suite that pytest says passed.
fn sdk_suite_passes(
    d: &Daemon,
    python: &std::path::Path,
    src: &std::path::Path,
) -> (Vec<String>, String) {
    // The images the suite builds FROM (no Docker Hub here: busybox under each name).
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mkbusybox-rootfs.sh");
    let tar = Command::new(script).output().expect("mkbusybox-rootfs.sh");
    for name in [
        "busybox:latest",
        "busybox:buildroot-2014.02",
        "alpine:latest",
        "alpine:3.10",
    ] {
        let o = d.docker_stdin(&["import", "-", name], Some(&tar.stdout));
        assert!(o.status.success(), "{}", common::stderr(&o));
    }
    let out = Command::new(python)
        .args(["-m", "pytest", "-rA", "-p", "no:cacheprovider"])
        .args([
            "tests/integration/api_build_test.py",
            "tests/integration/models_images_test.py",
            "-k",
            "build or Build",
        ])
        .current_dir(src)
        .env("DOCKER_HOST", d.host())
        .output()
        .expect("run pytest");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let passed = text
        .lines()
        .filter_map(|l| l.strip_prefix("PASSED "))
        .map(|l| l.trim().to_string())
        .collect();
    (passed, text)
}

#[test]
fn sdk_6_1_3_build_tests_pass_wherever_they_pass_against_dockerd() {
    require_env!();
    let (Ok(venv), Ok(src)) = (
        std::env::var("WHARF_TEST_SDK6_VENV"),
        std::env::var("WHARF_TEST_SDK6_SRC"),
    ) else {
        wharf_testkit::skip("WHARF_TEST_SDK6_VENV/WHARF_TEST_SDK6_SRC not set (.ci/run sets them)");
        return;
    };
    let python = std::path::Path::new(&venv).join("bin/python");
    let src = std::path::PathBuf::from(src);
    let wharfd = Daemon::start();
    let (ours, our_text) = sdk_suite_passes(&wharfd, &python, &src);
    drop(wharfd);
    let Some(dockerd) = Daemon::launch(common::Place::DockerdNetns, None) else {
        return;
    };
    let (theirs, their_text) = sdk_suite_passes(&dockerd, &python, &src);
    drop(dockerd);
    eprintln!(
        "docker-py 6.1.3 build tests: {} passed against wharfd, {} against dockerd",
        ours.len(),
        theirs.len()
    );
    let missing: Vec<&String> = theirs.iter().filter(|t| !ours.contains(t)).collect();
    assert!(
        missing.is_empty(),
        "passed against dockerd, not against wharfd: {missing:#?}\n--- wharfd run ---\n{our_text}\n--- dockerd run ---\n{their_text}"
    );
    // The suite ran: 20 build tests and more pass against dockerd 20.10 here.
    assert!(theirs.len() >= 20, "{their_text}");
}
