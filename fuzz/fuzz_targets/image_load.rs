//! `docker load` of a Docker archive (manifest.json) or an OCI layout (index.json): the
//! archive walk, the manifest / index / config JSON, platform selection, links between members
//! and the layers' registration, into a fresh image store per iteration.
//!
//! The input is text, so that seeds are readable and digests need not be guessed: sections
//! separated by a line `%%`. Section 0 is the top document, `D…` for manifest.json or `O…` for
//! index.json. Each further section N is a member: `b…` raw bytes at `blobs/sha256/<hex>`,
//! `j…` raw bytes at `<hex>.json`, `L…` a layer tar built from lines `path=content`
//! (`path/` a directory, `path->target` a symlink) at `blobs/sha256/<hex>`, `T…` the same at
//! `N/layer.tar`, `S#M` a symlink member `N/layer.tar` to member M. In every section `@M` is
//! replaced by `sha256:<digest of member M>` and `#M` by member M's name (M < N; the top
//! document may name any member).
//!
//! Asserts no panic, and that a load that succeeds produced images whose ids are the digests
//! of their configs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use std::path::Path;

struct Member {
    name: String,
    digest: String,
    data: Vec<u8>,
    link: Option<String>,
}

fn expand(s: &[u8], members: &[Member]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if (c == b'@' || c == b'#') && i + 1 < s.len() && s[i + 1].is_ascii_digit() {
            let n = usize::from(s[i + 1] - b'0');
            if let Some(m) = n.checked_sub(1).and_then(|k| members.get(k)) {
                let with = if c == b'@' { &m.digest } else { &m.name };
                out.extend_from_slice(with.as_bytes());
                i += 2;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

fn layer_tar(spec: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for line in spec
        .split(|c| *c == b'\n')
        .filter(|l| !l.is_empty())
        .take(16)
    {
        let line = String::from_utf8_lossy(line);
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o755);
        h.set_mtime(1);
        let (name, data, kind, link) = if let Some((n, t)) = line.split_once("->") {
            (
                n.to_string(),
                Vec::new(),
                tar::EntryType::Symlink,
                Some(t.to_string()),
            )
        } else {
            let (n, d) = line.split_once('=').unwrap_or((&line, ""));
            let kind = if n.ends_with('/') {
                tar::EntryType::Directory
            } else {
                tar::EntryType::Regular
            };
            (n.to_string(), d.as_bytes().to_vec(), kind, None)
        };
        h.set_entry_type(kind);
        let nb = name.as_bytes();
        let k = nb.len().min(100);
        h.as_old_mut().name[..k].copy_from_slice(&nb[..k]);
        if let Some(l) = link {
            let lb = l.as_bytes();
            let k = lb.len().min(100);
            h.as_old_mut().linkname[..k].copy_from_slice(&lb[..k]);
        }
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, &data[..]).expect("in memory");
    }
    b.into_inner().expect("in memory")
}

fn digest(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn archive(data: &[u8]) -> Option<Vec<u8>> {
    let text = data;
    let mut sections: Vec<&[u8]> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.windows(4).position(|w| w == b"\n%%\n") {
        sections.push(&rest[..i]);
        rest = &rest[i + 4..];
    }
    sections.push(rest);
    if sections.len() > 10 {
        return None;
    }
    let (top, blobs) = sections.split_first()?;
    let mut members: Vec<Member> = Vec::new();
    for (i, s) in blobs.iter().enumerate() {
        let n = i + 1;
        let (&kind, body) = s.split_first()?;
        let body = expand(body, &members);
        let (data, link) = match kind {
            b'L' | b'T' => (layer_tar(&body), None),
            b'S' => (
                Vec::new(),
                Some(String::from_utf8_lossy(&body).into_owned()),
            ),
            _ => (body, None),
        };
        let d = digest(&data);
        let hex = d.trim_start_matches("sha256:");
        let name = match kind {
            b'j' => format!("{hex}.json"),
            b'T' | b'S' => format!("{n}/layer.tar"),
            _ => format!("blobs/sha256/{hex}"),
        };
        members.push(Member {
            name,
            digest: d,
            data,
            link,
        });
    }
    let (&kind, doc) = top.split_first()?;
    let doc = expand(doc, &members);
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        match link {
            Some(l) => {
                h.set_entry_type(tar::EntryType::Symlink);
                let lb = l.as_bytes();
                let k = lb.len().min(100);
                h.as_old_mut().linkname[..k].copy_from_slice(&lb[..k]);
            }
            None => h.set_entry_type(tar::EntryType::Regular),
        }
        let nb = name.as_bytes();
        let k = nb.len().min(100);
        h.as_old_mut().name[..k].copy_from_slice(&nb[..k]);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).expect("in memory");
    };
    for m in &members {
        add(&m.name, &m.data, m.link.as_deref());
    }
    match kind {
        b'D' => add("manifest.json", &doc, None),
        _ => {
            add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#, None);
            add("index.json", &doc, None);
        }
    }
    drop(add);
    Some(b.into_inner().expect("in memory"))
}

fuzz_target!(|data: &[u8]| {
    static INIT: std::sync::Once = std::sync::Once::new();
    // Full copies (vfs): no overlay mounts per iteration.
    INIT.call_once(|| std::env::set_var("WHARF_STORAGE_DRIVER", "vfs"));
    let Some(tar) = archive(data) else {
        return;
    };
    let scratch = Path::new("/var/tmp/wharf-fuzz-scratch");
    let _ = std::fs::create_dir_all(scratch);
    let root = tempfile::Builder::new()
        .prefix("load-")
        .tempdir_in(scratch)
        .expect("scratch dir");
    let store = wharf_image::ImageStore::open(root.path()).expect("open the store");
    if store.load(&mut &tar[..], &mut |_| {}).is_ok() {
        for img in store.list().expect("list") {
            let cfg = std::fs::read(store.imagedb_path(&img.id)).expect("config stored");
            assert_eq!(digest(&cfg), img.id);
        }
    }
});
