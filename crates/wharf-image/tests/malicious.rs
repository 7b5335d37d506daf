//! Hostile archives: each is refused with a clear error and writes nothing outside the store,
//! whether it arrives as a `docker import` rootfs, a layer of a `docker load` archive, or as
//! the load archive itself.

mod common;

use common::*;
use std::fs;
use std::path::Path;
use wharf_image::{Error, ImportOptions};

/// A tar entry with raw, unchecked name and link name.
struct Raw<'a> {
    name: &'a str,
    kind: tar::EntryType,
    data: &'a [u8],
    link: Option<&'a str>,
}

fn raw(name: &str, kind: tar::EntryType, data: &'static [u8], link: Option<&str>) -> Vec<u8> {
    raw_tar(&[Raw {
        name,
        kind,
        data,
        link,
    }])
}

fn raw_tar(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(e.kind);
        h.set_mode(0o644);
        h.set_size(e.data.len() as u64);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        let nb = e.name.as_bytes();
        h.as_old_mut().name[..nb.len()].copy_from_slice(nb);
        if let Some(l) = e.link {
            h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(e.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// A header claiming `size` bytes followed by a little data only.
fn huge_header(size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path("huge").unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(&[0u8; 4096]);
    out
}

/// A GNU sparse file of 1 TiB made of one 512-byte block of data.
fn sparse_bomb() -> Vec<u8> {
    let big: u64 = 1 << 40;
    let num = |v: u64| {
        let mut f = [0u8; 12];
        f[0] = 0x80;
        f[4..].copy_from_slice(&v.to_be_bytes());
        f
    };
    let mut h = tar::Header::new_gnu();
    h.set_path("sparse").unwrap();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_size(512);
    h.set_mode(0o644);
    let g = h.as_gnu_mut().unwrap();
    g.sparse[0].offset = num(big - 512);
    g.sparse[0].numbytes = num(512);
    g.set_real_size(big);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(&[b'x'; 512]);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// Everything under `outer` other than the store: must stay empty.
fn assert_nothing_outside(outer: &Path, case: &str) {
    let names: Vec<_> = fs::read_dir(outer)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["store".to_string()],
        "{case}: wrote outside the store"
    );
}

fn cases(outer: &Path) -> Vec<(&'static str, Vec<u8>)> {
    let abs = format!("{}/evil-abs", outer.display());
    let outer_s = outer.display().to_string();
    vec![
        (
            "dotdot traversal",
            raw("../../evil", tar::EntryType::Regular, b"x", None),
        ),
        (
            "nested dotdot",
            raw("a/../../../evil", tar::EntryType::Regular, b"x", None),
        ),
        (
            "absolute name",
            raw(&abs, tar::EntryType::Regular, b"x", None),
        ),
        (
            "symlink escape",
            raw_tar(&[
                Raw {
                    name: "sym",
                    kind: tar::EntryType::Symlink,
                    data: b"",
                    link: Some("/"),
                },
                Raw {
                    name: &format!("sym{outer_s}/evil-sym"),
                    kind: tar::EntryType::Regular,
                    data: b"x",
                    link: None,
                },
            ]),
        ),
        (
            "symlink to a dir outside, then a file under it",
            raw_tar(&[
                Raw {
                    name: "out",
                    kind: tar::EntryType::Symlink,
                    data: b"",
                    link: Some(&outer_s),
                },
                Raw {
                    name: "out/evil-sym2",
                    kind: tar::EntryType::Regular,
                    data: b"x",
                    link: None,
                },
            ]),
        ),
        (
            "hard link outside (relative)",
            raw(
                "hl",
                tar::EntryType::Link,
                b"",
                Some("../../../../etc/passwd"),
            ),
        ),
        (
            "hard link outside (absolute)",
            raw("hl", tar::EntryType::Link, b"", Some("/etc/passwd")),
        ),
        (
            "hard link through a symlink",
            raw_tar(&[
                Raw {
                    name: "etc",
                    kind: tar::EntryType::Symlink,
                    data: b"",
                    link: Some("/etc"),
                },
                Raw {
                    name: "hl",
                    kind: tar::EntryType::Link,
                    data: b"",
                    link: Some("etc/passwd"),
                },
            ]),
        ),
        ("1 TiB header", huge_header(1 << 40)),
        ("sparse bomb", sparse_bomb()),
    ]
}

fn expect_refused(e: &Error, case: &str) {
    let msg = e.to_string();
    assert!(
        matches!(
            e,
            Error::UnsafePath { .. } | Error::TooLarge { .. } | Error::InvalidArchive { .. }
        ),
        "{case}: unexpected error kind: {msg}"
    );
    assert!(e.is_invalid_input(), "{case}: a client error");
    eprintln!("{case}: {msg}");
}

#[test]
fn hostile_layers_are_refused_by_import_and_load() {
    let outer = tempfile::tempdir().unwrap();
    let store_dir = outer.path().join("store");
    let store = wharf_image::ImageStore::open(&store_dir).unwrap();
    for (case, t) in cases(outer.path()) {
        let e = store
            .import(
                &mut &t[..],
                &ImportOptions {
                    reference: Some("evil:1".into()),
                    ..Default::default()
                },
            )
            .unwrap_err();
        expect_refused(&e, case);
        if case.contains("TiB") || case.contains("sparse") {
            assert!(matches!(e, Error::TooLarge { .. }), "{case}: {e}");
        }
        assert_nothing_outside(outer.path(), case);

        let (archive, _) = docker_archive(std::slice::from_ref(&t), "evil:2");
        let e = store.load(&mut &archive[..], &mut |_| {}).unwrap_err();
        expect_refused(&e, case);
        assert_nothing_outside(outer.path(), case);
    }
    assert!(store.list().unwrap().is_empty(), "nothing was stored");
    assert!(store.layers().list().is_empty());
    assert!(!Path::new("/evil").exists());
    assert_consistent(&store_dir);
}

#[test]
fn hostile_load_archives_are_refused() {
    let outer = tempfile::tempdir().unwrap();
    let store_dir = outer.path().join("store");
    let store = wharf_image::ImageStore::open(&store_dir).unwrap();
    let abs = format!("{}/evil-abs", outer.path().display());
    let archives = vec![
        (
            "member with ..",
            raw("../evil", tar::EntryType::Regular, b"{}", None),
        ),
        (
            "absolute member",
            raw(&abs, tar::EntryType::Regular, b"{}", None),
        ),
        (
            "device node member",
            raw("dev", tar::EntryType::Char, b"", None),
        ),
        ("fifo member", raw("fifo", tar::EntryType::Fifo, b"", None)),
        (
            "symlink member leaving the archive",
            raw(
                "manifest.json",
                tar::EntryType::Symlink,
                b"",
                Some("../../etc/passwd"),
            ),
        ),
        ("1 TiB member", huge_header(1 << 40)),
    ];
    for (case, t) in archives {
        let e = store.load(&mut &t[..], &mut |_| {}).unwrap_err();
        expect_refused(&e, case);
        assert_nothing_outside(outer.path(), case);
    }
    assert_consistent(&store_dir);
}

/// Device nodes are ordinary content in image layers (Docker keeps them): allowed there, as
/// root, and created inside the layer only.
#[test]
fn device_nodes_in_layers_stay_inside() {
    if !need_root("device_nodes_in_layers_stay_inside") {
        return;
    }
    let ts = TestStore::new();
    let mut t = raw("dev/null", tar::EntryType::Char, b"", None);
    // Give it a real major/minor (1, 3).
    let mut h = tar::Header::from_byte_slice(&t[..512]).clone();
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    h.set_cksum();
    t[..512].copy_from_slice(h.as_bytes());
    let img = ts
        .store
        .import(
            &mut &t[..],
            &ImportOptions {
                reference: Some("dev:1".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(img.rootfs_diff_ids.len(), 1);
}
