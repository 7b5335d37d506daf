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
