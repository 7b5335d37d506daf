//! What every crate's tests share. For now one thing: how a test that cannot run here says so.
//!
//! A test that returns early counts as passed in libtest's tally, and its stderr is captured,
//! so a skip used to be invisible. [`skip`] makes it visible and, in CI, fatal:
//!
//! - `WHARF_TEST_SKIP_LOG=<file>`: every skip appends `<test>: <reason>` there (`.ci/run` prints
//!   the count and the lines beside libtest's tally);
//! - `WHARF_TEST_NO_SKIP=1`: a skip panics instead, so a test whose dependency CI failed to
//!   install is a failure, not a pass. `.ci/run` sets it: CI installs every peer.

use std::fmt::Display;
use std::io::Write;

/// Marks the calling test as skipped because `reason` (what is missing, and how to get it).
/// The caller returns right after. Panics when `WHARF_TEST_NO_SKIP` is set.
#[track_caller]
pub fn skip(reason: impl Display) {
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    let line = format!("{test}: {reason}");
    if let Some(path) = std::env::var_os("WHARF_TEST_SKIP_LOG") {
        // O_APPEND writes of one short line are atomic between the parallel test threads and
        // the test binaries cargo runs one after another.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    }
    if std::env::var_os("WHARF_TEST_NO_SKIP").is_some_and(|v| !v.is_empty() && v != "0") {
        panic!("skipped where skips are refused (WHARF_TEST_NO_SKIP): {line}");
    }
    eprintln!("SKIPPED {line}");
}

/// True when running as root; otherwise skips the test (root is needed for namespaces,
/// mounts and cgroups) and returns false.
pub fn need_root() -> bool {
    if is_root() {
        return true;
    }
    skip("needs root (namespaces, mounts, cgroups): run the tests as root, as CI does");
    false
}

/// True when the process runs as root.
pub fn is_root() -> bool {
    // /proc/self is owned by the effective uid of the reading process.
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// True when `path` exists; otherwise skips the test naming the package that provides it.
pub fn need_file(path: &str, package: &str) -> bool {
    if std::path::Path::new(path).exists() {
        return true;
    }
    skip(format!("{path} is missing: apt-get install {package}"));
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_is_logged_with_the_test_name() {
        let dir = std::env::temp_dir().join(format!("wharf-testkit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("skips");
        // Run in a child thread with its own name so the log line is predictable; the env is
        // process-wide, so only this one test touches it.
        std::env::set_var("WHARF_TEST_SKIP_LOG", &log);
        std::env::remove_var("WHARF_TEST_NO_SKIP");
        std::thread::Builder::new()
            .name("named_case".into())
            .spawn(|| skip("no frobnicator"))
            .unwrap()
            .join()
            .unwrap();
        std::env::set_var("WHARF_TEST_NO_SKIP", "1");
        let refused = std::thread::Builder::new()
            .name("refused_case".into())
            .spawn(|| skip("no widget"))
            .unwrap()
            .join();
        std::env::remove_var("WHARF_TEST_NO_SKIP");
        std::env::remove_var("WHARF_TEST_SKIP_LOG");
        assert!(
            refused.is_err(),
            "a skip must panic under WHARF_TEST_NO_SKIP"
        );
        let text = std::fs::read_to_string(&log).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            text,
            "named_case: no frobnicator\nrefused_case: no widget\n"
        );
    }
}
