//! Layer application (`docker pull`/`load`/`import`, `docker cp` into a container).
//!
//! The input is a list of tar entries built into a real archive (checksums right, so the
//! fuzzer reaches the applier rather than the header checks). Names are made of tokens that
//! collide on purpose (whiteouts, `..`, directories that later become symlinks), link targets
//! point at the layer, its parent or a sentinel beside it. Each iteration applies into a fresh
//! `base/outer/root` and asserts nothing outside `root` was created, removed or changed.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use wharf_image::apply::{
    apply_layer, apply_tar_with, apply_verified_layer, CopyOptions, Whiteouts,
};

const NAMES: &[&str] = &[
    "a",
    "b",
    "c",
    ".wh.a",
    ".wh.b",
    ".wh..wh..opq",
    ".wh.",
    ".wh..",
    ".wh...",
    "..",
    ".",
    "",
    "sdir",
    "sentinel",
    "root",
    "inner",
    "dev",
    "x y",
    "é",
];

/// Link targets; `@` is replaced by the absolute path of `outer`.
const LINKS: &[&str] = &[
    "a",
    "b",
    "a/b",
    "..",
    "../sdir",
    "../sentinel",
    "../..",
    "@",
    "@/sdir",
    "@/sentinel",
    "sdir",
    "/nonexistent-wharf-fuzz",
    ".",
    ".wh.a",
    "",
];

const XATTRS: &[&str] = &[
    "user.fuzz",
    "trusted.overlay.opaque",
    "trusted.overlay.redirect",
    "trusted.overlay.metacopy",
    "security.capability",
    "system.posix_acl_access",
    "",
];

#[derive(Arbitrary, Debug)]
struct Entry {
    name: Vec<u8>,
    trailing_slash: bool,
    absolute: bool,
    raw_name: Option<Vec<u8>>,
    kind: u8,
    link: u8,
    data: Vec<u8>,
    mode: u16,
    uid: u8,
    mtime: u32,
    device: u8,
    xattr: Option<(u8, Vec<u8>)>,
    pax_path: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    mode: u8,
    verified: bool,
    cut: u16,
    entries: Vec<Entry>,
}

fn name_of(e: &Entry) -> Vec<u8> {
    if let Some(raw) = &e.raw_name {
        return raw.clone();
    }
    let mut s = String::new();
    if e.absolute {
        s.push('/');
    }
    let parts: Vec<&str> = e
        .name
        .iter()
        .take(4)
        .map(|i| NAMES[*i as usize % NAMES.len()])
        .collect();
    s.push_str(&parts.join("/"));
    if e.trailing_slash {
        s.push('/');
    }
    s.into_bytes()
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body_len = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body_len + 1;
    while len.to_string().len() + body_len != len {
        len = len.to_string().len() + body_len;
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

fn build(input: &Input, outer: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in input.entries.iter().take(24) {
        let name = name_of(e);
        let kind = match e.kind % 12 {
            0 | 1 => tar::EntryType::Regular,
            2 => tar::EntryType::Directory,
            3 => tar::EntryType::Symlink,
            4 => tar::EntryType::Link,
            5 => tar::EntryType::Char,
            6 => tar::EntryType::Block,
            7 => tar::EntryType::Fifo,
            8 => tar::EntryType::Continuous,
            9 => tar::EntryType::GNUSparse,
            10 => tar::EntryType::Directory,
            _ => tar::EntryType::new(e.kind),
        };
        let mut pax = Vec::new();
        if let Some((k, v)) = &e.xattr {
            let key = format!("SCHILY.xattr.{}", XATTRS[*k as usize % XATTRS.len()]);
            pax.extend(pax_record(&key, &v[..v.len().min(64)]));
        }
        if e.pax_path {
            pax.extend(pax_record("path", &name));
        }
        if !pax.is_empty() {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::XHeader);
            h.set_size(pax.len() as u64);
            h.set_cksum();
            b.append(&h, &pax[..]).expect("in memory");
        }
        if name.len() > 100 {
            let mut h = tar::Header::new_gnu();
            h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
            h.set_entry_type(tar::EntryType::GNULongName);
            let mut n = name.clone();
            n.push(0);
            h.set_size(n.len() as u64);
            h.set_cksum();
            b.append(&h, &n[..]).expect("in memory");
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(u32::from(e.mode) & 0o7777);
        h.set_uid(u64::from(e.uid));
        h.set_gid(u64::from(e.uid));
        h.set_mtime(u64::from(e.mtime));
        let k = name.len().min(100);
        h.as_old_mut().name[..k].copy_from_slice(&name[..k]);
        if kind.is_symlink() || kind.is_hard_link() {
            let l = LINKS[e.link as usize % LINKS.len()].replace('@', &outer.display().to_string());
            let l = l.as_bytes();
            let n = l.len().min(100);
            h.as_old_mut().linkname[..n].copy_from_slice(&l[..n]);
        }
        if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
            // Harmless numbers only: whiteout 0/0, /dev/null, /dev/zero, an unused loop.
            let (maj, min) = [(0, 0), (1, 3), (1, 5), (7, 250)][e.device as usize % 4];
            let _ = h.set_device_major(maj);
            let _ = h.set_device_minor(min);
        }
        let data = if kind.is_file() || kind == tar::EntryType::Continuous {
            &e.data[..e.data.len().min(256)]
        } else {
            &[][..]
        };
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).expect("in memory");
    }
    let mut out = b.into_inner().expect("in memory");
    let cut = usize::from(input.cut) % 2048;
    if cut < 1024 {
        out.truncate(out.len().saturating_sub(cut));
    }
    out
}

/// What must survive any layer: the names and times of everything beside `root`.
fn snapshot(base: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(p: &Path, depth: usize, out: &mut Vec<String>) {
        let Ok(m) = fs::symlink_metadata(p) else {
            out.push(format!("{} missing", p.display()));
            return;
        };
        out.push(format!(
            "{} mode {:o} uid {} mtime {}.{} len {}",
            p.display(),
            m.mode(),
            m.uid(),
            m.mtime(),
            m.mtime_nsec(),
            m.len()
        ));
        if m.is_dir() && depth > 0 && p.file_name().is_some_and(|n| n != "root") {
            let mut names: Vec<_> = fs::read_dir(p)
                .map(|rd| rd.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            names.sort();
            for n in names {
                walk(&n, depth - 1, out);
            }
        }
    }
    walk(base, 4, &mut out);
    out
}

fuzz_target!(|input: Input| {
    let scratch = Path::new("/var/tmp/wharf-fuzz-scratch");
    let _ = fs::create_dir_all(scratch);
    let base = tempfile::Builder::new()
        .prefix("apply-")
        .tempdir_in(scratch)
        .expect("scratch dir");
    let outer = base.path().join("outer");
    let root = outer.join("root");
    fs::create_dir_all(&root).expect("root");
    fs::write(outer.join("sentinel"), b"keep").expect("sentinel");
    fs::create_dir(outer.join("sdir")).expect("sdir");
    fs::write(outer.join("sdir").join("inner"), b"keep").expect("inner");
    let before = snapshot(base.path());

    let tar = build(&input, &outer);
    let mode = [Whiteouts::Overlay, Whiteouts::Delete, Whiteouts::Literal][input.mode as usize % 3];
    // `docker cp`'s options (in Literal mode), from the mode byte's other bits so that the
    // corpus keeps its meaning: refusing dir/non-dir replacements, an owner for everything.
    let copy = CopyOptions {
        no_overwrite_dir_non_dir: input.mode / 3 % 2 == 1,
        owner: (input.mode / 6 % 2 == 1).then_some((1234, 1234)),
        ids: None,
    };
    let result = if mode == Whiteouts::Literal && copy != CopyOptions::default() {
        apply_tar_with(&mut &tar[..], &root, mode, &copy).map(|_| String::new())
    } else if input.verified {
        apply_verified_layer(&tar[..], &root, mode, None, None).map(|a| a.diff_id)
    } else {
        apply_layer(&tar[..], &root, mode).map(|a| a.diff_id)
    };

    let meta = fs::symlink_metadata(&root).expect("the layer root itself was removed");
    assert!(meta.is_dir(), "the layer root is no longer a directory");
    let after = snapshot(base.path());
    // root's own line may change (its mtime): compare everything else.
    let strip = |v: &[String]| -> Vec<String> {
        v.iter()
            .filter(|l| !l.starts_with(&root.display().to_string()))
            .cloned()
            .collect()
    };
    assert_eq!(
        strip(&before),
        strip(&after),
        "applying {mode:?} changed something outside the layer root (result {result:?})"
    );
    if let Ok(diff_id) = result {
        if !input.verified && !diff_id.is_empty() {
            assert_eq!(
                diff_id,
                format!("sha256:{}", hex::encode(sha2_digest(&tar)))
            );
        }
    }
});

fn sha2_digest(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}
