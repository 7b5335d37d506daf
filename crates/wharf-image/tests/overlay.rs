//! Layers through a real overlay mount: whiteouts and opaque directories, and a 100-layer
//! image whose mount options stay under a page thanks to the short-link scheme. Root only.

mod common;

use common::*;
use std::fs;

fn overlay_store(test: &str) -> Option<TestStore> {
    if !need_root(test) {
        return None;
    }
    let ts = TestStore::new();
    if ts.store.layers().driver() != "overlay2" {
        wharf_testkit::skip(format!(
            "{test}: overlayfs is not usable here (driver {})",
            ts.store.layers().driver()
        ));
        return None;
    }
    Some(ts)
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn whiteouts_and_opaque_dirs_through_overlay_mount() {
    let Some(ts) = overlay_store("whiteouts_and_opaque_dirs_through_overlay_mount") else {
        return;
    };
    let lower = layer(&[
        E::Dir("a/"),
        E::File("a/keep", b"kept"),
        E::File("a/gone", b"deleted above"),
        E::Dir("opq/"),
        E::File("opq/old1", b"old"),
        E::Dir("opq/sub/"),
        E::File("opq/sub/old2", b"old"),
        E::Dir("whole/"),
        E::File("whole/f", b"dir removed above"),
    ]);
    let upper = layer(&[
        E::File("a/.wh.gone", b""),
        E::File("opq/.wh..wh..opq", b""),
        E::File("opq/new", b"new content"),
        E::File(".wh.whole", b""),
    ]);
    let (archive, id) = docker_archive(&[lower, upper], "wh:1");
    ts.store.load(&mut &archive[..], &mut |_| {}).unwrap();
    let mnt = ts.root().join("mnt");
    let _m = Mounted::image(&ts.store, &id, &mnt);
    assert_eq!(
        names(&mnt.join("a")),
        vec!["keep"],
        "the whited-out file is gone"
    );
    assert!(!mnt.join("a/gone").exists());
    assert_eq!(fs::read(mnt.join("a/keep")).unwrap(), b"kept");
    assert_eq!(
        names(&mnt.join("opq")),
        vec!["new"],
        "opaque dir shows only the new content"
    );
    assert_eq!(fs::read(mnt.join("opq/new")).unwrap(), b"new content");
    assert!(
        !mnt.join("whole").exists(),
        "a whited-out directory is gone"
    );
    assert!(
        !mnt.join(".wh.whole").exists(),
        "whiteout markers never show"
    );
    // The container's diff sees none of the image's deletions as its own.
    let changes = ts.store.layers().changes(&_m.id).unwrap();
    assert!(changes.is_empty(), "{changes:?}");
}

#[test]
fn hundred_layer_image_mounts_with_short_links() {
    let Some(ts) = overlay_store("hundred_layer_image_mounts_with_short_links") else {
        return;
    };
    let layers: Vec<Vec<u8>> = (0..100)
        .map(|i| {
            let content = format!("layer {i}\n");
            layer(&[
                E::File(&format!("layer{i}/file"), content.as_bytes()),
                E::File("top", content.as_bytes()),
            ])
        })
        .collect();
    let (archive, id) = docker_archive(&layers, "deep:100");
    ts.store.load(&mut &archive[..], &mut |_| {}).unwrap();
    let img = ts.store.resolve("deep:100").unwrap();
    assert_eq!(img.rootfs_diff_ids.len(), 100);

    let lowers = ts
        .store
        .layers()
        .lower_dirs(img.top_layer.as_deref())
        .unwrap();
    assert_eq!(lowers.len(), 100);
    let absolute: usize = lowers.iter().map(|p| p.as_os_str().len() + 1).sum();
    let relative = ts
        .store
        .layers()
        .relative_options(&lowers, "some-container-id")
        .unwrap();
    assert!(
        relative.len() < 4096,
        "short links fit a page: {} bytes",
        relative.len()
    );
    eprintln!(
        "lowerdir: {absolute} bytes as absolute paths, options {} bytes relative",
        relative.len()
    );

    let mnt = ts.root().join("mnt");
    let m = Mounted::image(&ts.store, &id, &mnt);
    assert_eq!(fs::read(mnt.join("layer0/file")).unwrap(), b"layer 0\n");
    assert_eq!(fs::read(mnt.join("layer99/file")).unwrap(), b"layer 99\n");
    assert_eq!(
        fs::read(mnt.join("top")).unwrap(),
        b"layer 99\n",
        "the top layer wins"
    );
    assert_eq!(names(&mnt).len(), 101);
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = mountinfo
        .lines()
        .find(|l| l.contains(&*mnt.to_string_lossy()))
        .expect("mounted");
    if absolute > 4000 {
        assert!(
            line.contains("lowerdir=l/"),
            "relative short links used: {line}"
        );
    }
    drop(m);
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(&*mnt.to_string_lossy()),
        "unmounted by the guard"
    );
}

/// A wharfd killed during `cp` or `export` leaves the container's filesystem mounted in the
/// layer store's scratch space (today's `mnt/`, or `tmp/` where older wharfd mounted it).
/// Opening the store again unmounts it and deletes nothing through it.
#[test]
fn a_mount_left_by_a_crash_is_unmounted_at_open_not_deleted_through() {
    let test = "a_mount_left_by_a_crash_is_unmounted_at_open_not_deleted_through";
    let Some(mut ts) = overlay_store(test) else {
        return;
    };
    let (archive, id) = docker_archive(&[layer(&[E::File("base", b"image file")])], "crash:1");
    ts.store.load(&mut &archive[..], &mut |_| {}).unwrap();
    let new_style = ts.store.layers().scratch_mountpoint("export");
    let old_style = ts.store.layers().root_tmp().join("cp-left-by-old-wharfd");
    let a = Mounted::image(&ts.store, &id, &new_style);
    let b = Mounted::image(&ts.store, &id, &old_style);
    for m in [&new_style, &old_style] {
        fs::write(m.join("written-by-the-container"), b"keep me").unwrap();
    }
    // A commit's spooled tar, also left by the crash.
    let spooled = ts.store.layers().root_tmp().join("commit-left.tar");
    fs::write(&spooled, b"partial").unwrap();
    // The crash: the mounts stay, the store is opened anew.
    let (ida, idb) = (a.id.clone(), b.id.clone());
    std::mem::forget(a);
    std::mem::forget(b);
    ts.reopen();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    // Checked under catch_unwind so the cleanup below runs whatever fails.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for m in [&new_style, &old_style] {
            assert!(
                !mounts.contains(m.to_str().unwrap()),
                "{} is still mounted",
                m.display()
            );
            assert!(!m.exists(), "{} was not removed", m.display());
        }
        assert!(!spooled.exists(), "a temp file is left in tmp/");
        // The container layers (their own files and the image's) are all still there.
        for id in [&ida, &idb] {
            let mnt = ts.store.layers().scratch_mountpoint("check");
            ts.store.layers().mount_rw(id, &mnt).unwrap();
            let own = fs::read(mnt.join("written-by-the-container"));
            let base = fs::read(mnt.join("base"));
            ts.store.layers().unmount_rw(id, &mnt).unwrap();
            fs::remove_dir(&mnt).unwrap();
            assert_eq!(own.unwrap(), b"keep me");
            assert_eq!(base.unwrap(), b"image file");
        }
    }));
    for (id, m) in [(&ida, &new_style), (&idb, &old_style)] {
        let _ = ts.store.layers().unmount_rw(id, m);
        let _ = ts.store.layers().remove_rw(id);
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
