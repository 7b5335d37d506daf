//! A load killed midway (SIGKILL, no chance to clean up) leaves the store consistent: no
//! partial blob or layer is visible, temp files go at the next open, and loading again works.
//! The test re-runs its own binary as the child that loads.

mod common;

use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_STORE: &str = "WHARF_IMAGE_TEST_CHILD_STORE";
const CHILD_ARCHIVE: &str = "WHARF_IMAGE_TEST_CHILD_ARCHIVE";

/// The child: loads from the archive file, or from stdin. Does nothing in a normal run.
#[test]
fn interrupted_load_child() {
    let Some(store) = std::env::var_os(CHILD_STORE) else {
        return;
    };
    let s = wharf_image::ImageStore::open(Path::new(&store)).unwrap();
    let r = match std::env::var_os(CHILD_ARCHIVE) {
        Some(a) => s.load(&mut std::fs::File::open(a).unwrap(), &mut |_| {}),
        None => s.load(&mut std::io::stdin().lock(), &mut |_| {}),
    };
    r.unwrap();
}

fn spawn_child(store: &Path, archive: Option<&Path>) -> Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        "interrupted_load_child",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_STORE, store)
    .stdin(Stdio::piped())
    .stdout(Stdio::null());
    if let Some(a) = archive {
        c.env(CHILD_ARCHIVE, a);
    }
    c.spawn().unwrap()
}

/// Kills the child when dropped (a failing assertion must not leave it running).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!("note: {what} not seen within {timeout:?}");
    false
}

fn big_image() -> (Vec<u8>, String) {
    let layers: Vec<Vec<u8>> = (0..4)
        .map(|i| layer(&[E::File(&format!("l{i}/data"), &noise(12 << 20, i))]))
        .collect();
    docker_archive(&layers, "big:1")
}

fn check_after_kill(root: &Path, archive: &[u8], id: &str) {
    // Reopening cleans the temp files; nothing partial is referenced.
    let store = wharf_image::ImageStore::open(root).unwrap();
    assert_consistent(root);
    assert!(
        store.resolve("big:1").is_err(),
        "the image must not exist after a killed load"
    );
    // Loading again works and gives the right id.
    store.load(&mut &archive[..], &mut |_| {}).unwrap();
    assert_eq!(store.resolve("big:1").unwrap().id, id);
    assert_consistent(root);
}

#[test]
fn load_killed_while_reading_the_archive() {
    let (archive, id) = big_image();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let mut child = KillOnDrop(spawn_child(&root, None));
    let mut stdin = child.0.stdin.take().unwrap();
    // Half the archive, then wait until the child is spooling a layer, and kill it.
    stdin.write_all(&archive[..archive.len() / 2]).unwrap();
    let tmp = root.join("layers/tmp");
    let spooling = wait_for("a spooled member", Duration::from_secs(30), || {
        entries(&tmp).iter().any(|d| {
            d.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("load-")
                && !entries(d).is_empty()
        })
    });
    assert!(spooling, "the child never started spooling");
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    drop(stdin);
    assert!(
        !entries(&tmp).is_empty(),
        "the kill left a partial spool behind (to be cleaned)"
    );
    check_after_kill(&root, &archive, &id);
}

#[test]
fn load_killed_while_extracting_layers() {
    let (archive, id) = big_image();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let file = dir.path().join("big.tar");
    std::fs::write(&file, &archive).unwrap();
    let mut child = KillOnDrop(spawn_child(&root, Some(&file)));
    let tmp = root.join("layers/tmp");
    // A layer being extracted: a scratch dir that is not the load's spool.
    let extracting = wait_for("a layer extraction", Duration::from_secs(60), || {
        entries(&tmp).iter().any(|d| {
            !d.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("load-")
        })
    });
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    if !extracting || status.success() {
        eprintln!("note: the child finished before it could be killed mid-extraction");
    }
    check_after_kill(&root, &archive, &id);
}
