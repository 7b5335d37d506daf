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

/// A layer of one empty regular file named `name` (checked names, as any tar writer makes them).
fn one_file(name: &str) -> Vec<u8> {
    raw(name, tar::EntryType::Regular, b"", None)
}

/// The attack: whiteouts that name no file of their own directory. `.wh.` alone named the
/// directory itself (deleting it, or the whole layer at the top), `.wh..` the same, and
/// `.wh...` its parent (at the top, the directory holding the layer store). Each is refused
/// and deletes nothing, in both whiteout modes.
#[test]
fn hostile_whiteouts_are_refused_and_delete_nothing() {
    use wharf_image::apply::{apply_layer, Whiteouts};
    let mut modes = vec![Whiteouts::Delete];
    if need_root("hostile_whiteouts_are_refused_and_delete_nothing (overlay mode)") {
        modes.push(Whiteouts::Overlay);
    }
    for mode in modes {
        for name in [
            ".wh.",
            ".wh..",
            ".wh...",
            "dir/.wh.",
            "dir/.wh..",
            "dir/.wh...",
            "dir/sub/.wh...",
        ] {
            let outer = tempfile::tempdir().unwrap();
            let root = outer.path().join("layer");
            fs::create_dir_all(root.join("dir/sub")).unwrap();
            fs::write(root.join("dir/a"), "a").unwrap();
            fs::write(root.join("dir/sub/b"), "b").unwrap();
            fs::write(outer.path().join("sibling"), "outside").unwrap();
            let e = apply_layer(&one_file(name)[..], &root, mode).unwrap_err();
            assert!(
                matches!(e, Error::UnsafePath { .. }) && e.to_string().contains("whiteout"),
                "{mode:?} {name}: {e}"
            );
            assert!(e.is_invalid_input());
            for kept in ["dir/a", "dir/sub/b", "../sibling"] {
                assert!(root.join(kept).exists(), "{mode:?} {name}: {kept} is gone");
            }
        }
        // aufs metadata is skipped, a proper whiteout still works.
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("layer");
        fs::create_dir_all(root.join("dir")).unwrap();
        fs::write(root.join("dir/a"), "a").unwrap();
        let t = raw_tar(&[
            Raw {
                name: ".wh..wh.plnk",
                kind: tar::EntryType::Directory,
                data: b"",
                link: None,
            },
            Raw {
                name: "dir/.wh.a",
                kind: tar::EntryType::Regular,
                data: b"",
                link: None,
            },
        ]);
        apply_layer(&t[..], &root, mode).unwrap();
        assert!(!root.join(".wh..wh.plnk").exists());
        assert!(!root.join(".wh.plnk").exists());
        match mode {
            Whiteouts::Delete => assert!(!root.join("dir/a").exists()),
            _ => {
                use std::os::unix::fs::FileTypeExt;
                let m = fs::symlink_metadata(root.join("dir/a")).unwrap();
                assert!(m.file_type().is_char_device(), "an overlay whiteout");
            }
        }
    }
    // The same through `docker load`: the image is refused and its first layer not published.
    let ts = TestStore::new();
    let l1 = layer(&[E::Dir("dir"), E::File("dir/a", b"a")]);
    let l2 = one_file("dir/.wh...");
    let (archive, _) = docker_archive(&[l1, l2], "evil:wh");
    let e = ts.store.load(&mut &archive[..], &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("whiteout"), "{e}");
    assert!(ts.store.list().unwrap().is_empty());
}

fn lgetxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: p and n are NUL-terminated strings and buf a writable buffer of the given
    // length; lgetxattr writes at most that many bytes and keeps no pointer.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| {
        buf.truncate(len as usize);
        buf
    })
}

/// The attack: a layer carrying overlayfs's own xattrs (a forged `trusted.overlay.redirect`
/// or `opaque` makes overlayfs read other paths of the lower stack), other `trusted.*` and
/// `security.*` ones, and a malformed file capability. Dropped; `user.*` and a well-formed
/// `security.capability` (cap_net_raw+ep, as Debian's ping carries) are kept.
#[test]
fn hostile_layer_xattrs_are_dropped() {
    use wharf_image::apply::{apply_layer, layer_xattr_allowed, Whiteouts};
    // cap_net_raw (13) effective+permitted, VFS_CAP_REVISION_2.
    let mut cap = Vec::new();
    for w in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
        cap.extend_from_slice(&w.to_le_bytes());
    }
    assert!(layer_xattr_allowed("security.capability", &cap));
    assert!(!layer_xattr_allowed("security.capability", &cap[..7]));
    assert!(!layer_xattr_allowed("trusted.overlay.redirect", b"/"));
    if !need_root("hostile_layer_xattrs_are_dropped") {
        return;
    }
    let mut b = tar::Builder::new(Vec::new());
    let file = |b: &mut tar::Builder<Vec<u8>>, name: &str, xattrs: &[(&str, &[u8])]| {
        let exts: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
            .collect();
        b.append_pax_extensions(exts.iter().map(|(k, v)| (k.as_str(), *v)))
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(1);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, &b"x"[..]).unwrap();
    };
    file(
        &mut b,
        "evil",
        &[
            ("trusted.overlay.redirect", b"/etc"),
            ("trusted.overlay.metacopy", b""),
            ("trusted.overlay.opaque", b"y"),
            ("trusted.other", b"1"),
            ("security.selinux", b"system_u:object_r:shadow_t:s0"),
            ("security.capability", b"\x01\x02\x03"),
            ("user.note", b"kept"),
        ],
    );
    file(&mut b, "ping", &[("security.capability", &cap)]);
    let t = b.into_inner().unwrap();
    let root = tempfile::tempdir().unwrap();
    apply_layer(&t[..], root.path(), Whiteouts::Overlay).unwrap();
    let evil = root.path().join("evil");
    for gone in [
        "trusted.overlay.redirect",
        "trusted.overlay.metacopy",
        "trusted.overlay.opaque",
        "trusted.other",
        "security.capability",
    ] {
        assert_eq!(lgetxattr(&evil, gone), None, "{gone} was set");
    }
    // security.selinux may read back as the filesystem's own label: never the image's.
    assert_ne!(
        lgetxattr(&evil, "security.selinux").as_deref(),
        Some(&b"system_u:object_r:shadow_t:s0"[..])
    );
    assert_eq!(lgetxattr(&evil, "user.note").as_deref(), Some(&b"kept"[..]));
    assert_eq!(
        lgetxattr(&root.path().join("ping"), "security.capability"),
        Some(cap)
    );
}
