//! The file trees COPY and ADD read from: a directory on the host (an image's root mounted
//! for a step), or the build context kept as the tar it arrived in.
//!
//! The context is never unpacked: [`TarTree::receive`] writes the (decompressed) upload to
//! one file while it indexes the entries (name, kind, mode, data offset) and hashes each
//! file's content in the same pass; COPY then reads files by offset. Unpacking 10,000 files
//! per build cost seconds here (ext4's inode allocator scans for recently deleted inodes
//! when a build's files replace the last build's), and a cached rebuild needs none of them.
//! A RUN step that binds the context gets it unpacked once, on first use.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Dir,
    File,
    Symlink,
    Other,
}

/// A path's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub kind: NodeKind,
    /// Permission bits (with set-ID and sticky bits).
    pub mode: u32,
    pub size: u64,
    pub mtime: u64,
}

/// A tree of files, paths relative to its root (clean, `.` for the root).
pub trait Tree: Send + Sync {
    /// The path itself (a symlink is not followed).
    fn lstat(&self, rel: &str) -> Option<Meta>;
    fn read_link(&self, rel: &str) -> Option<PathBuf>;
    /// The names in a directory, sorted.
    fn list(&self, rel: &str) -> Vec<String>;
    fn open(&self, rel: &str) -> std::io::Result<Box<dyn Read + '_>>;
    /// The SHA-256 of a file's content.
    fn content_digest(&self, rel: &str) -> std::io::Result<[u8; 32]> {
        let mut r = self.open(rel)?;
        let mut h = Sha256::new();
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(h.finalize().into())
    }
}

/// `a/b` joined, `.` being the root.
pub fn join(rel: &str, name: &str) -> String {
    if rel == "." || rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

/// Resolves `rel` in `tree` following symlinks with the tree's root as `/` (nothing outside
/// it is reached); the resolved path, or `None` when it does not exist.
pub fn resolve(tree: &dyn Tree, rel: &str) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut pending: Vec<String> = rel
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(String::from)
        .rev()
        .collect();
    let mut hops = 0;
    while let Some(p) = pending.pop() {
        if p == ".." {
            parts.pop();
            continue;
        }
        let candidate = join(&parts.join("/"), &p);
        let m = tree.lstat(&candidate)?;
        if m.kind == NodeKind::Symlink {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = tree.read_link(&candidate)?;
            let t = target.to_string_lossy().into_owned();
            if t.starts_with('/') {
                parts.clear();
            }
            for c in t.split('/').filter(|c| !c.is_empty() && *c != ".").rev() {
                pending.push(c.to_string());
            }
        } else {
            parts.push(p);
        }
    }
    Some(if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    })
}

/// A directory on the host.
pub struct HostTree {
    pub root: PathBuf,
}

impl HostTree {
    fn path(&self, rel: &str) -> PathBuf {
        if rel == "." {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }
}

fn meta_of(m: &std::fs::Metadata) -> Meta {
    let ft = m.file_type();
    Meta {
        kind: if ft.is_dir() {
            NodeKind::Dir
        } else if ft.is_file() {
            NodeKind::File
        } else if ft.is_symlink() {
            NodeKind::Symlink
        } else {
            NodeKind::Other
        },
        mode: m.permissions().mode() & 0o7777,
        size: m.len(),
        mtime: m.mtime().max(0) as u64,
    }
}

impl Tree for HostTree {
    fn lstat(&self, rel: &str) -> Option<Meta> {
        std::fs::symlink_metadata(self.path(rel))
            .ok()
            .map(|m| meta_of(&m))
    }

    fn read_link(&self, rel: &str) -> Option<PathBuf> {
        std::fs::read_link(self.path(rel)).ok()
    }

    fn list(&self, rel: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.path(rel))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn open(&self, rel: &str) -> std::io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(std::fs::File::open(self.path(rel))?))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) meta: Meta,
    /// Where a file's data starts in the tar file.
    pub(crate) offset: u64,
    pub(crate) link: Option<PathBuf>,
    pub(crate) digest: Option<[u8; 32]>,
    /// Which of the tree's tar files holds the data.
    pub(crate) pack: u32,
}

/// The build context as the tar it came in, indexed; a context synced by
/// [`crate::synced`] reads its files from several tars (the uploads that brought them).
pub struct TarTree {
    packs: Vec<std::sync::Arc<std::fs::File>>,
    path: PathBuf,
    nodes: HashMap<String, Node>,
    children: BTreeMap<String, BTreeSet<String>>,
    /// Where the context was unpacked, once a step needed it as a directory.
    unpacked: Mutex<Option<PathBuf>>,
}

/// A reader that keeps a copy of what it reads in a file and counts it.
struct Tee<R: Read> {
    inner: R,
    out: std::io::BufWriter<std::fs::File>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// A name from the tar, cleaned and relative; `None` for the root or a name climbing out.
fn clean_name(name: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in name.components() {
        match c {
            std::path::Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            std::path::Component::ParentDir => {
                parts.pop()?;
            }
            _ => {}
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

impl TarTree {
    /// Reads a tar from `r` into `path`, indexing and hashing its entries as they pass.
    pub fn receive(r: &mut dyn Read, path: &Path) -> Result<TarTree, String> {
        let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut tee = Tee {
            inner: r,
            out: std::io::BufWriter::with_capacity(1 << 20, file),
        };
        let mut nodes: HashMap<String, Node> = HashMap::new();
        // One buffer for every file (a fresh zeroed one per file cost a memset of its size
        // each: 2.5 GB for a 10,000-file context).
        let mut buf = vec![0u8; 256 * 1024];
        {
            let mut a = tar::Archive::new(&mut tee);
            for e in a.entries().map_err(|e| e.to_string())? {
                let mut e = e.map_err(|e| format!("reading the build context: {e}"))?;
                let Some(name) = clean_name(&e.path().map_err(|e| e.to_string())?) else {
                    continue;
                };
                let h = e.header();
                let mode = h.mode().unwrap_or(0o644) & 0o7777;
                let mtime = h.mtime().unwrap_or(0);
                let kind = h.entry_type();
                let node = match kind {
                    tar::EntryType::Directory => Node {
                        meta: Meta {
                            kind: NodeKind::Dir,
                            mode,
                            size: 0,
                            mtime,
                        },
                        offset: 0,
                        link: None,
                        digest: None,
                        pack: 0,
                    },
                    tar::EntryType::Symlink => Node {
                        meta: Meta {
                            kind: NodeKind::Symlink,
                            mode: 0o777,
                            size: 0,
                            mtime,
                        },
                        offset: 0,
                        link: e.link_name().ok().flatten().map(|l| l.into_owned()),
                        digest: None,
                        pack: 0,
                    },
                    tar::EntryType::Link => {
                        // A hard link is its target's content again.
                        let target = e.link_name().ok().flatten().and_then(|l| clean_name(&l));
                        match target.and_then(|t| nodes.get(&t).cloned()) {
                            Some(n) => n,
                            None => continue,
                        }
                    }
                    t if t.is_file() => {
                        let offset = e.raw_file_position();
                        let size = e.size();
                        let mut h = Sha256::new();
                        loop {
                            let n = e
                                .read(&mut buf)
                                .map_err(|e| format!("reading the build context: {e}"))?;
                            if n == 0 {
                                break;
                            }
                            h.update(&buf[..n]);
                        }
                        Node {
                            meta: Meta {
                                kind: NodeKind::File,
                                mode,
                                size,
                                mtime,
                            },
                            offset,
                            link: None,
                            digest: Some(h.finalize().into()),
                            pack: 0,
                        }
                    }
                    tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
                    _ => Node {
                        meta: Meta {
                            kind: NodeKind::Other,
                            mode,
                            size: 0,
                            mtime,
                        },
                        offset: 0,
                        link: None,
                        digest: None,
                        pack: 0,
                    },
                };
                // A later entry replaces an earlier one; a directory's children go with it
                // only if it is replaced by a non-directory (they are pruned below).
                nodes.insert(name, node);
            }
        }
        // Drain what follows the end-of-archive blocks, so the copy is whole.
        std::io::copy(&mut tee, &mut std::io::sink()).map_err(|e| e.to_string())?;
        tee.out.flush().map_err(|e| e.to_string())?;
        let mut t = TarTree {
            packs: vec![std::sync::Arc::new(
                std::fs::File::open(path).map_err(|e| e.to_string())?,
            )],
            path: path.to_path_buf(),
            nodes,
            children: BTreeMap::new(),
            unpacked: Mutex::new(None),
        };
        t.link_parents();
        Ok(t)
    }

    /// Every entry's parent directories exist (made 0755 where the tar has none), and each
    /// directory knows its children; entries under a non-directory are dropped.
    /// A tree of `nodes` whose data is in `packs` (a node's `pack` indexes it); `path` is
    /// the newest tar's.
    pub(crate) fn from_parts(
        packs: Vec<std::sync::Arc<std::fs::File>>,
        path: PathBuf,
        nodes: HashMap<String, Node>,
    ) -> TarTree {
        let mut t = TarTree {
            packs,
            path,
            nodes,
            children: BTreeMap::new(),
            unpacked: Mutex::new(None),
        };
        t.link_parents();
        t
    }

    /// The tar files the tree reads.
    pub(crate) fn pack_files(&self) -> &[std::sync::Arc<std::fs::File>] {
        &self.packs
    }

    /// The indexed entries (parents made implicit by the tar included).
    pub(crate) fn nodes(&self) -> &HashMap<String, Node> {
        &self.nodes
    }

    fn link_parents(&mut self) {
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        let mut drop = Vec::new();
        for n in &names {
            let mut parent = ".".to_string();
            let mut ok = true;
            let comps: Vec<&str> = n.split('/').collect();
            for (i, c) in comps.iter().enumerate() {
                let path = comps[..=i].join("/");
                if i + 1 < comps.len() {
                    match self.nodes.get(&path) {
                        Some(p) if p.meta.kind != NodeKind::Dir => {
                            ok = false;
                            break;
                        }
                        Some(_) => {}
                        None => {
                            self.nodes.insert(
                                path.clone(),
                                Node {
                                    meta: Meta {
                                        kind: NodeKind::Dir,
                                        mode: 0o755,
                                        size: 0,
                                        mtime: 0,
                                    },
                                    offset: 0,
                                    link: None,
                                    digest: None,
                                    pack: 0,
                                },
                            );
                        }
                    }
                }
                self.children
                    .entry(parent.clone())
                    .or_default()
                    .insert(c.to_string());
                parent = path;
            }
            if !ok {
                drop.push(n.clone());
            }
        }
        for n in drop {
            self.nodes.remove(&n);
        }
        self.children.retain(|d, _| {
            d == "."
                || self
                    .nodes
                    .get(d)
                    .is_some_and(|n| n.meta.kind == NodeKind::Dir)
        });
        let nodes = &self.nodes;
        for (d, kids) in self.children.iter_mut() {
            kids.retain(|k| nodes.contains_key(&join(d, k)));
        }
    }

    /// Forgets a path (the Dockerfile or `.dockerignore` the ignore file excludes).
    pub fn remove(&mut self, rel: &str) {
        if self.nodes.remove(rel).is_some() {
            let (parent, name) = match rel.rsplit_once('/') {
                Some((p, n)) => (p.to_string(), n.to_string()),
                None => (".".to_string(), rel.to_string()),
            };
            if let Some(k) = self.children.get_mut(&parent) {
                k.remove(&name);
            }
        }
    }

    /// The context as a directory (unpacked under `dir` on first use).
    pub fn unpacked(&self, dir: &Path) -> Result<PathBuf, String> {
        let mut g = self.unpacked.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = g.as_ref() {
            return Ok(p.clone());
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut names: Vec<&String> = self.nodes.keys().collect();
        names.sort();
        for n in names {
            let node = &self.nodes[n];
            let p = dir.join(n);
            let r = match node.meta.kind {
                NodeKind::Dir => std::fs::create_dir_all(&p),
                NodeKind::File => (|| {
                    let mut out = std::fs::File::create(&p)?;
                    std::io::copy(&mut self.open(n)?, &mut out)?;
                    Ok(())
                })(),
                NodeKind::Symlink => match &node.link {
                    Some(l) => std::os::unix::fs::symlink(l, &p),
                    None => Ok(()),
                },
                NodeKind::Other => Ok(()),
            };
            r.map_err(|e| format!("unpacking the context at {}: {e}", p.display()))?;
            if node.meta.kind != NodeKind::Symlink {
                let _ =
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(node.meta.mode));
            }
        }
        *g = Some(dir.to_path_buf());
        Ok(dir.to_path_buf())
    }

    /// The tar file the context is kept in.
    pub fn file_path(&self) -> &Path {
        &self.path
    }
}

/// A file's bytes, read from the shared tar file at their offset.
struct Slice<'a> {
    file: &'a std::fs::File,
    pos: u64,
    left: u64,
}

impl Read for Slice<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.left) as usize;
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the build context's file ended early",
            ));
        }
        self.pos += n as u64;
        self.left -= n as u64;
        Ok(n)
    }
}

impl Tree for TarTree {
    fn lstat(&self, rel: &str) -> Option<Meta> {
        if rel == "." || rel.is_empty() {
            return Some(Meta {
                kind: NodeKind::Dir,
                mode: 0o755,
                size: 0,
                mtime: 0,
            });
        }
        self.nodes.get(rel).map(|n| n.meta.clone())
    }

    fn read_link(&self, rel: &str) -> Option<PathBuf> {
        self.nodes.get(rel)?.link.clone()
    }

    fn list(&self, rel: &str) -> Vec<String> {
        let key = if rel.is_empty() { "." } else { rel };
        self.children
            .get(key)
            .map(|k| k.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn open(&self, rel: &str) -> std::io::Result<Box<dyn Read + '_>> {
        let n = self
            .nodes
            .get(rel)
            .filter(|n| n.meta.kind == NodeKind::File)
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{rel}: not a file in the context"),
                )
            })?;
        Ok(Box::new(Slice {
            file: &self.packs[n.pack as usize],
            pos: n.offset,
            left: n.meta.size,
        }))
    }

    fn content_digest(&self, rel: &str) -> std::io::Result<[u8; 32]> {
        match self.nodes.get(rel).and_then(|n| n.digest) {
            Some(d) => Ok(d),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{rel}: not a file in the context"),
            )),
        }
    }
}

/// Reads the whole of a file of `tree` (for small ones: the Dockerfile, ignore files).
pub fn read_to_vec(tree: &dyn Tree, rel: &str, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    tree.open(rel)?.take(limit).read_to_end(&mut out)?;
    Ok(out)
}

impl std::fmt::Debug for TarTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarTree")
            .field("path", &self.path)
            .field("entries", &self.nodes.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o640);
            h.set_size(data.len() as u64);
            match link {
                Some(l) => b.append_link(&mut h, name, l).unwrap(),
                // A hostile name the builder would refuse: written into the header as is.
                None if name.contains("..") => {
                    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                    h.set_cksum();
                    b.append(&h, *data).unwrap();
                }
                None => b.append_data(&mut h, name, *data).unwrap(),
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn a_context_tar_is_indexed_and_read_back_by_offset() {
        let d = tempfile::tempdir().unwrap();
        let data = tar_of(&[
            ("a/b/file.txt", tar::EntryType::Regular, b"hello", None),
            ("top", tar::EntryType::Regular, b"x", None),
            ("a/link", tar::EntryType::Symlink, b"", Some("b/file.txt")),
            ("hard", tar::EntryType::Link, b"", Some("top")),
            ("../evil", tar::EntryType::Regular, b"no", None),
        ]);
        let t = TarTree::receive(&mut &data[..], &d.path().join("ctx.tar")).unwrap();
        assert_eq!(t.list("."), ["a", "hard", "top"]);
        assert_eq!(t.list("a"), ["b", "link"]);
        assert_eq!(t.lstat("a").unwrap().kind, NodeKind::Dir);
        assert_eq!(t.lstat("a/b/file.txt").unwrap().mode, 0o640);
        assert_eq!(read_to_vec(&t, "a/b/file.txt", 100).unwrap(), b"hello");
        assert_eq!(read_to_vec(&t, "hard", 100).unwrap(), b"x");
        assert_eq!(resolve(&t, "a/link").as_deref(), Some("a/b/file.txt"));
        let want: [u8; 32] = Sha256::digest(b"hello").into();
        assert_eq!(t.content_digest("a/b/file.txt").unwrap(), want);
        // The copy on disk is the whole upload.
        assert_eq!(std::fs::read(t.file_path()).unwrap(), data);
        let dir = t.unpacked(&d.path().join("u")).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("a/link")).unwrap(),
            "hello"
        );
        assert!(!d.path().join("evil").exists());
    }
}
