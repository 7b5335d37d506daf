//! Save/load round trips, platform selection in image indexes, compressed layers, the content
//! store's sharing and gc, and interoperability with skopeo and umoci.

mod common;

use common::*;
use std::fs;
use std::process::Command;
use wharf_image::{Error, ImportOptions, LoadOptions, Platform};

fn busyboxish() -> Vec<u8> {
    layer(&[
        E::Dir("bin/"),
        E::File("bin/hello", b"#!/bin/sh\necho hello\n"),
        E::Dir("etc/"),
        E::File("etc/os-release", b"NAME=wharf-test\n"),
    ])
}

fn import(ts: &TestStore, tag: &str) -> wharf_image::Image {
    ts.store
        .import(
            &mut &busyboxish()[..],
            &ImportOptions {
                reference: Some(tag.into()),
                ..Default::default()
            },
        )
        .unwrap()
}

#[test]
fn import_save_load_keeps_image_id() {
    let src = TestStore::new();
    let img = import(&src, "roundtrip:1");
    let mut archive = Vec::new();
    src.store
        .save(&["roundtrip:1".into()], &mut archive)
        .unwrap();

    let dst = TestStore::new();
    let lines = dst.store.load(&mut &archive[..], &mut |_| {}).unwrap();
    assert_eq!(lines, vec!["Loaded image: roundtrip:1".to_string()]);
    let loaded = dst.store.resolve("roundtrip:1").unwrap();
    assert_eq!(loaded.id, img.id);
    assert_eq!(loaded.rootfs_diff_ids, img.rootfs_diff_ids);

    // The OCI layout of the same image loads to the same id too.
    let mut oci = Vec::new();
    src.store
        .save_oci(&["roundtrip:1".into()], &mut oci)
        .unwrap();
    let dst2 = TestStore::new();
    dst2.store.load(&mut &oci[..], &mut |_| {}).unwrap();
    assert_eq!(dst2.store.resolve("roundtrip:1").unwrap().id, img.id);
    assert_consistent(dst.root());
    assert_consistent(dst2.root());
}

#[test]
fn index_picks_host_platform_and_refuses_missing_one() {
    let l_amd = layer(&[E::File("arch", b"amd64")]);
    let l_arm = layer(&[E::File("arch", b"arm64")]);
    let mut oci = Oci::default();
    let (m_amd, id_amd) = oci.image(std::slice::from_ref(&l_amd), "amd64", Comp::Gzip);
    let (m_arm, id_arm) = oci.image(std::slice::from_ref(&l_arm), "arm64", Comp::Zstd);
    let idx = oci.index(vec![m_arm.clone(), m_amd.clone()]);
    let mut idx_named = idx.clone();
    idx_named["annotations"] =
        serde_json::json!({"org.opencontainers.image.ref.name": "docker.io/library/multi:1"});
    let archive = oci.tar(vec![idx_named]);

    let host = Platform::host();
    let ts = TestStore::new();
    ts.store.load(&mut &archive[..], &mut |_| {}).unwrap();
    let img = ts.store.resolve("multi:1").unwrap();
    let expect = if host.architecture == "arm64" {
        &id_arm
    } else {
        &id_amd
    };
    assert_eq!(&img.id, expect, "the host's platform is picked");
    assert_eq!(
        ts.store.list().unwrap().len(),
        1,
        "only one platform is loaded"
    );

    // Explicitly asking for the other platform.
    let ts2 = TestStore::new();
    let opts = LoadOptions {
        platform: Some(Platform::parse("linux/arm64").unwrap()),
        ..Default::default()
    };
    ts2.store
        .load_with(&mut &archive[..], &opts, &mut |_| {})
        .unwrap();
    assert_eq!(ts2.store.resolve("multi:1").unwrap().id, id_arm);

    // An index without the wanted platform: a clear error, nothing stored.
    let mut oci = Oci::default();
    let (a, _) = oci.image(std::slice::from_ref(&l_arm), "arm64", Comp::None);
    let (b, _) = oci.image(&[layer(&[E::File("arch", b"s390x")])], "s390x", Comp::None);
    let idx = oci.index(vec![a, b]);
    let archive = oci.tar(vec![idx]);
    let ts3 = TestStore::new();
    let opts = LoadOptions {
        platform: Some(Platform::parse("linux/riscv64").unwrap()),
        ..Default::default()
    };
    let e = ts3
        .store
        .load_with(&mut &archive[..], &opts, &mut |_| {})
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::NoMatchingPlatform { .. }), "{msg}");
    assert!(
        msg.contains("linux/riscv64") && msg.contains("linux/arm64") && msg.contains("linux/s390x"),
        "{msg}"
    );
    assert!(ts3.store.list().unwrap().is_empty());
    assert!(ts3.store.layers().list().is_empty());
}

#[test]
fn gzip_and_zstd_layers_load_and_save_uncompressed() {
    let layers = vec![
        layer(&[E::File("a", &noise(300_000, 1))]),
        layer(&[E::File("b", &vec![7u8; 2_000_000])]),
        layer(&[E::File("c", b"plain")]),
    ];
    for comp in [Comp::Gzip, Comp::Zstd, Comp::None] {
        let mut oci = Oci::default();
        let (m, id) = oci.image(&layers, "amd64", comp);
        let archive = oci.tar(vec![m]);
        let ts = TestStore::new();
        let lines = ts.store.load(&mut &archive[..], &mut |_| {}).unwrap();
        assert_eq!(lines, vec![format!("Loaded image ID: {id}")]);
        // Saved layers are the uncompressed tars whose digests are the diff ids.
        let mut out = Vec::new();
        ts.store.save(std::slice::from_ref(&id), &mut out).unwrap();
        let mut a = tar::Archive::new(&out[..]);
        let mut seen = 0;
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            if name.ends_with("layer.tar") {
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut data).unwrap();
                assert!(layers.contains(&data), "{name} is not an original layer");
                seen += 1;
            }
        }
        assert_eq!(seen, 3);
        assert_consistent(ts.root());
    }
}

#[test]
fn corrupt_blob_or_layer_is_refused() {
    let l = layer(&[E::File("x", b"1")]);
    let mut oci = Oci::default();
    let (m, _) = oci.image(std::slice::from_ref(&l), "amd64", Comp::None);
    // Flip a byte of the layer blob: its name no longer matches its content.
    let ld = common::sha256(&l);
    for (d, data) in oci.blobs.iter_mut() {
        if *d == ld {
            let n = data.len();
            data[n - 1] ^= 1;
        }
    }
    let archive = oci.tar(vec![m]);
    let ts = TestStore::new();
    let e = ts.store.load(&mut &archive[..], &mut |_| {}).unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
    assert!(ts.store.layers().list().is_empty());

    // A docker archive whose layer is not the config's diff id.
    let (mut archive, _) = docker_archive(std::slice::from_ref(&l), "bad:1");
    let other = layer(&[E::File("x", b"2")]);
    let pos = archive.windows(l.len()).position(|w| w == &l[..]).unwrap();
    archive[pos..pos + other.len()].copy_from_slice(&other);
    let ts = TestStore::new();
    let e = ts.store.load(&mut &archive[..], &mut |_| {}).unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
    assert!(ts.store.resolve("bad:1").is_err());
    assert!(ts.store.layers().list().is_empty());
    assert!(ts.store.layers().content().list().is_empty());
}

#[test]
fn shared_layers_are_stored_once_and_gc_frees_unreferenced() {
    let base = layer(&[E::File("base", &noise(100_000, 9))]);
    let a = layer(&[E::File("a", b"a")]);
    let b = layer(&[E::File("b", b"b")]);
    let ts = TestStore::new();
    let (arch_a, id_a) = docker_archive(&[base.clone(), a.clone()], "img:a");
    let (arch_b, id_b) = docker_archive(&[base.clone(), b.clone()], "img:b");
    ts.store.load(&mut &arch_a[..], &mut |_| {}).unwrap();
    ts.store.load(&mut &arch_b[..], &mut |_| {}).unwrap();
    let content = ts.store.layers().content();
    assert_eq!(ts.store.layers().list().len(), 3, "base + a + b");
    assert_eq!(content.list().len(), 3, "one blob per diff id");
    // Loading again adds nothing.
    ts.store.load(&mut &arch_a[..], &mut |_| {}).unwrap();
    assert_eq!(content.list().len(), 3);

    ts.store.remove(&id_a, false, &|_| None).unwrap();
    assert_eq!(ts.store.layers().list().len(), 2);
    assert!(
        !content.exists(&common::sha256(&a)),
        "a's blob is collected"
    );
    assert!(
        content.exists(&common::sha256(&base)),
        "base is still used by b"
    );
    ts.store.remove(&id_b, false, &|_| None).unwrap();
    assert!(ts.store.layers().list().is_empty());
    assert!(content.list().is_empty());
    assert_consistent(ts.root());
}

#[test]
fn saved_archives_pass_skopeo_inspect() {
    let t = "saved_archives_pass_skopeo_inspect";
    if !need_tool(t, "skopeo") {
        return;
    }
    let ts = TestStore::new();
    let img = import(&ts, "inspectme:v1");
    let work = tempfile::tempdir().unwrap();
    let tar_path = work.path().join("img.tar");
    let mut f = fs::File::create(&tar_path).unwrap();
    ts.store.save(&["inspectme:v1".into()], &mut f).unwrap();
    drop(f);
    let out = run(Command::new("skopeo")
        .arg("inspect")
        .arg("--raw")
        .arg(format!("docker-archive:{}", tar_path.display())));
    let m: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(m["config"]["digest"], img.id.as_str());
    let out = run(Command::new("skopeo")
        .arg("inspect")
        .arg("--config")
        .arg(format!("docker-archive:{}", tar_path.display())));
    let c: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(c["rootfs"]["diff_ids"][0], img.rootfs_diff_ids[0].as_str());

    // Our OCI layout: skopeo and umoci both read it.
    let layout = work.path().join("oci");
    ts.store
        .save_oci_dir(&["inspectme:v1".into()], &layout)
        .unwrap();
    let out = run(Command::new("skopeo")
        .arg("inspect")
        .arg("--config")
        .arg(format!("oci:{}:v1", layout.display())));
    let c: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(common::sha256(&serde_json::to_vec(&c).unwrap()).len(), 71);
    assert_eq!(
        c["rootfs"]["diff_ids"],
        serde_json::json!(img.rootfs_diff_ids)
    );
    let oci_tar = work.path().join("oci.tar");
    let mut f = fs::File::create(&oci_tar).unwrap();
    ts.store.save_oci(&["inspectme:v1".into()], &mut f).unwrap();
    drop(f);
    run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci-archive:{}:v1", oci_tar.display())));
    if need_tool(t, "umoci") {
        let out = run(Command::new("umoci").arg("ls").arg("--layout").arg(&layout));
        assert_eq!(out.trim(), "v1");
        // umoci also validates the manifest and config while unpacking.
        let bundle = work.path().join("bundle");
        run(Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:v1", layout.display()))
            .arg(&bundle));
        assert_eq!(
            fs::read(bundle.join("rootfs/etc/os-release")).unwrap(),
            b"NAME=wharf-test\n"
        );
    }
}

/// skopeo copies what we saved into its own docker-archive and OCI layout writers; we load
/// both back and find the same image, whose files are visible through a mount.
#[test]
fn skopeo_made_archives_load_and_mount() {
    let t = "skopeo_made_archives_load_and_mount";
    if !need_tool(t, "skopeo") {
        return;
    }
    let ts = TestStore::new();
    let img = import(&ts, "skopeosrc:1");
    let work = tempfile::tempdir().unwrap();
    let ours = work.path().join("ours.tar");
    let mut f = fs::File::create(&ours).unwrap();
    ts.store.save(&["skopeosrc:1".into()], &mut f).unwrap();
    drop(f);
    let theirs_da = work.path().join("theirs.tar");
    run(Command::new("skopeo")
        .args(["copy", "-q"])
        .arg(format!("docker-archive:{}", ours.display()))
        .arg(format!(
            "docker-archive:{}:skopeo/copied:2",
            theirs_da.display()
        )));
    let theirs_oci = work.path().join("theirs-oci");
    run(Command::new("skopeo")
        .args([
            "copy",
            "-q",
            "--dest-compress-format",
            "zstd",
            "--dest-compress",
        ])
        .arg(format!("docker-archive:{}", ours.display()))
        .arg(format!("oci:{}:copied", theirs_oci.display())));

    let dst = TestStore::new();
    let lines = dst
        .store
        .load(&mut fs::File::open(&theirs_da).unwrap(), &mut |_| {})
        .unwrap();
    assert_eq!(lines, vec!["Loaded image: skopeo/copied:2".to_string()]);
    assert_eq!(dst.store.resolve("skopeo/copied:2").unwrap().id, img.id);
    // Converting to OCI, skopeo rewrites the config (so the id changes) but not the layers.
    let dst2 = TestStore::new();
    let layout = tar_dir(&theirs_oci);
    let lines = dst2.store.load(&mut &layout[..], &mut |_| {}).unwrap();
    let oci_id = lines[0].strip_prefix("Loaded image ID: ").unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(theirs_oci.join("index.json")).unwrap()).unwrap();
    let mdigest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(theirs_oci.join("blobs/sha256").join(&mdigest[7..])).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    assert_eq!(oci_id, manifest["config"]["digest"].as_str().unwrap());
    let oci_img = dst2.store.resolve(oci_id).unwrap();
    assert_eq!(oci_img.rootfs_diff_ids, img.rootfs_diff_ids);

    if need_root(t) {
        for (s, id) in [(&dst, &img.id), (&dst2, &oci_img.id)] {
            let mnt = s.root().join("mnt");
            let _m = Mounted::image(&s.store, id, &mnt);
            assert_eq!(
                fs::read(mnt.join("etc/os-release")).unwrap(),
                b"NAME=wharf-test\n"
            );
            assert!(mnt.join("bin/hello").exists());
        }
    }
}

/// umoci builds an OCI layout (init, new, unpack, add files, repack); we load and mount it.
#[test]
fn umoci_layouts_load_and_mount() {
    let t = "umoci_layouts_load_and_mount";
    if !need_tool(t, "umoci") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let image = format!("{}:t", layout.display());
    run(Command::new("umoci")
        .arg("init")
        .arg("--layout")
        .arg(&layout));
    run(Command::new("umoci").args(["new", "--image"]).arg(&image));
    let bundle = work.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(&image)
        .arg(&bundle));
    fs::create_dir_all(bundle.join("rootfs/etc")).unwrap();
    fs::write(bundle.join("rootfs/etc/made-by"), "umoci layer 1\n").unwrap();
    run(Command::new("umoci")
        .args(["repack", "--image"])
        .arg(&image)
        .arg(&bundle));
    // A second layer with `umoci insert`, deleting nothing but adding a file.
    let extra = work.path().join("extra");
    fs::write(&extra, "second layer\n").unwrap();
    run(Command::new("umoci")
        .args(["insert", "--image"])
        .arg(&image)
        .arg(&extra)
        .arg("/srv/extra"));
    run(Command::new("umoci")
        .args(["config", "--image"])
        .arg(&image)
        .args(["--config.cmd", "/bin/true"]));

    let ts = TestStore::new();
    let lines = ts
        .store
        .load(&mut &tar_dir(&layout)[..], &mut |_| {})
        .unwrap();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let id = lines[0]
        .strip_prefix("Loaded image ID: ")
        .unwrap()
        .to_string();
    let img = ts.store.resolve(&id).unwrap();
    assert_eq!(img.rootfs_diff_ids.len(), 2);
    assert_eq!(img.cmd(), vec!["/bin/true".to_string()]);
    assert_consistent(ts.root());
    if need_root(t) {
        let mnt = ts.root().join("mnt");
        let _m = Mounted::image(&ts.store, &id, &mnt);
        assert_eq!(
            fs::read(mnt.join("etc/made-by")).unwrap(),
            b"umoci layer 1\n"
        );
        assert_eq!(fs::read(mnt.join("srv/extra")).unwrap(), b"second layer\n");
    }
}

/// A layer registered by an operation that has not written its image yet (a pull, load,
/// import or commit in flight) survives a garbage collection that an rmi runs meanwhile; once
/// the lease is gone, an unreferenced layer is collected.
#[test]
fn leased_layers_survive_a_collection_until_the_image_is_written() {
    let ts = TestStore::new();
    let layers = ts.store.layers();
    let lease = layers.lease();
    let l = layers
        .register(&lease, None, &layer(&[E::File("f", b"leased")])[..])
        .unwrap();
    // A present, unreferenced layer that an operation found and will reference.
    let found = layers
        .register(&layers.lease(), None, &layer(&[E::File("g", b"found")])[..])
        .unwrap();
    lease.hold(&found.chain_id);
    ts.store.gc_layers().unwrap();
    assert!(
        layers.exists(&l.chain_id),
        "a leased new layer was collected"
    );
    assert!(
        layers.exists(&found.chain_id),
        "a leased found layer was collected"
    );
    assert!(layers.content().exists(&l.diff_id), "its tar was collected");
    drop(lease);
    ts.store.gc_layers().unwrap();
    assert!(!layers.exists(&l.chain_id));
    assert!(!layers.exists(&found.chain_id));
}

/// One image whose config no longer parses is left out of the list (and logged), not an
/// error for every `docker images`.
#[test]
fn a_broken_image_does_not_break_the_listing() {
    let mut ts = TestStore::new();
    let (good, good_id) = docker_archive(&[layer(&[E::File("a", b"1")])], "good:1");
    let (bad, bad_id) = docker_archive(&[layer(&[E::File("b", b"2")])], "bad:1");
    ts.store.load(&mut &good[..], &mut |_| {}).unwrap();
    ts.store.load(&mut &bad[..], &mut |_| {}).unwrap();
    let hex = bad_id.trim_start_matches("sha256:");
    let imagedb = walk(ts.root())
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == hex) && p.is_file())
        .expect("the image's config file");
    std::fs::write(&imagedb, b"{not json").unwrap();
    ts.reopen();
    let ids: Vec<String> = ts.store.list().unwrap().into_iter().map(|i| i.id).collect();
    assert_eq!(ids, vec![good_id]);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
