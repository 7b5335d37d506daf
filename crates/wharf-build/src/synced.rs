//! Build contexts kept by the daemon between builds, so that a client sends only what changed
//! (wharf's own protocol, between `wharf build` and wharfd; BuildKit's fsutil does the same
//! over its session).
//!
//! - The client chooses a context id (from its host and the context's absolute path) and sends
//!   the stat listing of its `.dockerignore`-filtered context: each entry's path and a key of
//!   its stat (type and mode, size, mtime and ctime in ns, device and inode, uid/gid, link
//!   target). [`Store::begin`] compares it with the listing kept for that id and answers which
//!   entries it needs: those whose key is new or changed. An empty key is always needed.
//! - The client sends those entries as a tar; [`Store::finish`] keeps it as one more *pack*
//!   (indexed and hashed as [`TarTree::receive`] does) and makes the build's tree from the
//!   listing: the entries sent from the new pack, the others from the packs they came in
//!   before, with the digests computed then. Entries not in the listing are not in the tree.
//! - A changed file whose size and mtime were set back (`touch -d`) has a new ctime, which
//!   no call can set back, so it is sent again. BuildKit's fsutil compares size, mtime, mode,
//!   uid/gid, device numbers and link target, not the ctime, and would keep the old content.
//! - A listing whose root (the context directory's device and inode) differs from the kept
//!   one reuses nothing: an id shared by two directories never gives one the other's files.
//! - Packs are never written again once kept: a build reads its tree through open files, so
//!   a concurrent build of the same id that replaces the listing (and deletes packs no longer
//!   needed) does not change what it reads. The listing is replaced by rename, last one wins.
//!   When less than half of the packs' bytes are still used, everything is asked for again
//!   (one pack replaces the rest).
//! - At most [`MAX_CONTEXTS`] contexts of at most [`MAX_BYTES`] together are kept, the least
//!   recently used dropped first; [`Store::prune`] drops them (`docker builder prune`).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::tree::{Meta, Node, NodeKind, TarTree};

/// How many contexts are kept at most.
pub const MAX_CONTEXTS: usize = 16;
/// How many bytes of packs all contexts keep at most.
pub const MAX_BYTES: u64 = 4 << 30;

/// A client's listing of its context.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Listing {
    /// The key of the context directory itself (its device and inode).
    pub root: String,
    /// Every entry: its path (relative, clean) and stat key.
    pub entries: Vec<(String, String)>,
}

/// One entry as kept in a context's index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    key: String,
    kind: u8,
    mode: u32,
    size: u64,
    mtime: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    pack: u32,
    offset: u64,
}

/// A context's index on disk (`index.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Index {
    root: String,
    packs: Vec<String>,
    entries: HashMap<String, Entry>,
}

/// A kept context: its index and its packs, open.
struct Base {
    index: Index,
    files: Vec<Arc<std::fs::File>>,
}

impl Base {
    fn empty() -> Arc<Base> {
        Arc::new(Base {
            index: Index::default(),
            files: Vec::new(),
        })
    }
}

/// What [`Store::begin`] answers: the entries the client must send (indexes into its
/// listing), and what [`Store::finish`] needs to make the tree.
pub struct Pending {
    pub need: Vec<usize>,
    id: String,
    listing: Listing,
    base: Arc<Base>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("id", &self.id)
            .field("entries", &self.listing.entries.len())
            .field("need", &self.need.len())
            .finish()
    }
}

/// The kept contexts of one daemon, under `root/<id>/`.
pub struct Store {
    root: PathBuf,
    /// The last index of each id used since start (saves reading it back).
    bases: Mutex<HashMap<String, Arc<Base>>>,
}

fn kind_code(k: NodeKind) -> u8 {
    match k {
        NodeKind::Dir => 0,
        NodeKind::File => 1,
        NodeKind::Symlink => 2,
        NodeKind::Other => 3,
    }
}

fn kind_of(c: u8) -> NodeKind {
    match c {
        0 => NodeKind::Dir,
        1 => NodeKind::File,
        2 => NodeKind::Symlink,
        _ => NodeKind::Other,
    }
}

fn random_hex() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

/// Whether `id` can name a context (64 hex digits, as the CLI derives it).
pub fn valid_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn dir_bytes(d: &Path) -> u64 {
    std::fs::read_dir(d)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// A kept context, as `system df` lists it.
#[derive(Debug, Clone)]
pub struct Kept {
    pub id: String,
    pub size: u64,
    /// When it was last synced (seconds since the epoch).
    pub last_used: i64,
}

impl Store {
    pub fn new(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
            bases: Mutex::new(HashMap::new()),
        }
    }

    fn lock_bases(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Base>>> {
        self.bases.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The kept context of `id`: from memory, else its index on disk; empty when there is
    /// none or a pack is missing.
    fn base(&self, id: &str) -> Arc<Base> {
        if let Some(b) = self.lock_bases().get(id) {
            return b.clone();
        }
        let dir = self.root.join(id);
        let Ok(text) = std::fs::read(dir.join("index.json")) else {
            return Base::empty();
        };
        let Ok(index) = serde_json::from_slice::<Index>(&text) else {
            return Base::empty();
        };
        let mut files = Vec::new();
        for p in &index.packs {
            match std::fs::File::open(dir.join(p)) {
                Ok(f) => files.push(Arc::new(f)),
                Err(_) => return Base::empty(),
            }
        }
        let b = Arc::new(Base { index, files });
        self.lock_bases().insert(id.to_string(), b.clone());
        b
    }

    /// Compares `listing` with what is kept for `id`: the entries to send.
    pub fn begin(&self, id: &str, listing: Listing) -> Result<Pending, String> {
        if !valid_id(id) {
            return Err(format!("invalid build context id {id:?}"));
        }
        let mut seen = HashSet::new();
        for (p, _) in &listing.entries {
            if crate::copy::clean_source(p).ok().as_deref() != Some(p.as_str()) || p == "." {
                return Err(format!("invalid path {p:?} in the context listing"));
            }
            if !seen.insert(p.as_str()) {
                return Err(format!("{p:?} is listed twice in the context listing"));
            }
        }
        let mut base = self.base(id);
        if base.index.root != listing.root || listing.root.is_empty() {
            base = Base::empty();
        }
        let reused: u64 = listing
            .entries
            .iter()
            .filter(|(p, k)| reusable(&base, p, k))
            .map(|(p, _)| base.index.entries[p.as_str()].size)
            .sum();
        let kept: u64 = base
            .files
            .iter()
            .filter_map(|f| f.metadata().ok())
            .map(|m| m.len())
            .sum();
        if kept > 8 << 20 && reused < kept / 2 {
            base = Base::empty();
        }
        let need = listing
            .entries
            .iter()
            .enumerate()
            .filter(|(_, (p, k))| !reusable(&base, p, k))
            .map(|(i, _)| i)
            .collect();
        Ok(Pending {
            need,
            id: id.to_string(),
            listing,
            base,
        })
    }

    /// Receives the entries `pending` asked for (a tar of them, in any order) and makes the
    /// build's tree; the listing becomes the kept one.
    pub fn finish(&self, pending: Pending, tar: &mut dyn Read) -> Result<TarTree, String> {
        let dir = self.root.join(&pending.id);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let pack_name = format!("pack-{}.tar", random_hex());
        let pack_path = dir.join(&pack_name);
        let r = self.finish_into(&pending, tar, &dir, &pack_name);
        if r.is_err() {
            let _ = std::fs::remove_file(&pack_path);
        }
        r
    }

    fn finish_into(
        &self,
        pending: &Pending,
        tar: &mut dyn Read,
        dir: &Path,
        pack_name: &str,
    ) -> Result<TarTree, String> {
        let pack_path = dir.join(pack_name);
        let sent = TarTree::receive(tar, &pack_path)?;
        let need: HashSet<usize> = pending.need.iter().copied().collect();
        let base = &pending.base;
        // The packs the new tree reads: the base's it still uses, then the new one.
        let mut pack_map: HashMap<u32, u32> = HashMap::new();
        let mut files: Vec<Arc<std::fs::File>> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        let mut nodes: HashMap<String, Node> = HashMap::new();
        let mut index = Index {
            root: pending.listing.root.clone(),
            ..Index::default()
        };
        let sent_nodes = sent.nodes();
        let mut sent_used = false;
        for (i, (p, key)) in pending.listing.entries.iter().enumerate() {
            if need.contains(&i) {
                let Some(n) = sent_nodes.get(p) else {
                    return Err(format!(
                        "the build context's {p} was asked for and not sent (did it change while \
                         it was sent?)"
                    ));
                };
                sent_used = true;
                let mut n = n.clone();
                n.pack = u32::MAX;
                nodes.insert(p.clone(), n);
                continue;
            }
            let Some(e) = base.index.entries.get(p) else {
                return Err(format!("{p}: not kept and not asked for"));
            };
            let pack = *pack_map.entry(e.pack).or_insert_with(|| {
                files.push(base.files[e.pack as usize].clone());
                names.push(base.index.packs[e.pack as usize].clone());
                (files.len() - 1) as u32
            });
            let digest = match &e.digest {
                Some(h) => {
                    let mut d = [0u8; 32];
                    hex::decode_to_slice(h, &mut d)
                        .map_err(|_| format!("{p}: a bad digest in the kept context"))?;
                    Some(d)
                }
                None => None,
            };
            nodes.insert(
                p.clone(),
                Node {
                    meta: Meta {
                        kind: kind_of(e.kind),
                        mode: e.mode,
                        size: e.size,
                        mtime: e.mtime,
                    },
                    offset: e.offset,
                    link: e.link.as_ref().map(PathBuf::from),
                    digest,
                    pack,
                },
            );
            index.entries.insert(
                p.clone(),
                Entry {
                    key: key.clone(),
                    pack,
                    ..e.clone()
                },
            );
        }
        let new_pack = files.len() as u32;
        if sent_used {
            files.push(
                sent_file(&sent).ok_or_else(|| "the received context has no file".to_string())?,
            );
            names.push(pack_name.to_string());
        }
        for (i, (p, key)) in pending.listing.entries.iter().enumerate() {
            if !need.contains(&i) {
                continue;
            }
            let n = nodes.get_mut(p).expect("inserted above");
            n.pack = new_pack;
            index.entries.insert(
                p.clone(),
                Entry {
                    key: key.clone(),
                    kind: kind_code(n.meta.kind),
                    mode: n.meta.mode,
                    size: n.meta.size,
                    mtime: n.meta.mtime,
                    link: n.link.as_ref().map(|l| l.to_string_lossy().into_owned()),
                    digest: n.digest.map(hex::encode),
                    pack: new_pack,
                    offset: n.offset,
                },
            );
        }
        index.packs = names.clone();
        let tree = TarTree::from_parts(files.clone(), pack_path.clone(), nodes);
        if !sent_used {
            let _ = std::fs::remove_file(&pack_path);
        }
        self.commit(&pending.id, dir, index, files);
        Ok(tree)
    }

    /// Makes `index` the kept one of `id` and deletes the packs of the one it replaces that
    /// it does not use; then keeps the store within its bounds.
    fn commit(&self, id: &str, dir: &Path, index: Index, files: Vec<Arc<std::fs::File>>) {
        let unchanged = self.lock_bases().get(id).is_some_and(|b| {
            b.index.root == index.root
                && b.index.packs == index.packs
                && b.index.entries == index.entries
        });
        if unchanged {
            // A no-op rebuild: only when it was used changes.
            let _ = std::fs::File::options()
                .append(true)
                .open(dir.join("index.json"))
                .and_then(|f| f.set_modified(std::time::SystemTime::now()));
            return;
        }
        // Not durable: a lost index only means the next build sends its context whole.
        let written = serde_json::to_vec(&index)
            .map_err(std::io::Error::other)
            .and_then(|b| {
                wharf_fs::AtomicWrite::default()
                    .durable(false)
                    .write(&dir.join("index.json"), &b)
            });
        if let Err(e) = written {
            tracing::warn!("keeping the build context {id}: {e}");
            self.lock_bases().remove(id);
            return;
        }
        let used: HashSet<&String> = index.packs.iter().collect();
        let old = {
            let mut g = self.lock_bases();
            g.insert(
                id.to_string(),
                Arc::new(Base {
                    index: index.clone(),
                    files,
                }),
            )
        };
        if let Some(old) = old {
            for p in &old.index.packs {
                if !used.contains(p) {
                    let _ = std::fs::remove_file(dir.join(p));
                }
            }
        }
        self.bound(id);
    }

    /// The kept contexts, most recently used first.
    pub fn list(&self) -> Vec<Kept> {
        let mut v: Vec<Kept> = std::fs::read_dir(&self.root)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| {
                        let id = e.file_name().to_string_lossy().into_owned();
                        if !valid_id(&id) {
                            return None;
                        }
                        let m = std::fs::metadata(e.path().join("index.json")).ok()?;
                        use std::os::unix::fs::MetadataExt;
                        Some(Kept {
                            size: dir_bytes(&e.path()),
                            last_used: m.mtime(),
                            id,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by(|a, b| b.last_used.cmp(&a.last_used).then(a.id.cmp(&b.id)));
        v
    }

    fn drop_context(&self, id: &str) -> u64 {
        self.lock_bases().remove(id);
        let d = self.root.join(id);
        let size = dir_bytes(&d);
        match std::fs::remove_dir_all(&d) {
            Ok(()) => size,
            Err(_) => 0,
        }
    }

    /// Drops the least recently used contexts beyond the bounds (never `current`).
    fn bound(&self, current: &str) {
        let mut total = 0;
        for (i, k) in self.list().into_iter().enumerate() {
            total += k.size;
            if k.id != current && (i >= MAX_CONTEXTS || total > MAX_BYTES) {
                self.drop_context(&k.id);
            }
        }
    }

    /// Drops the contexts last used before `until` (all without it): their ids and bytes.
    pub fn prune(&self, until: Option<i64>) -> (Vec<String>, u64) {
        let mut ids = Vec::new();
        let mut bytes = 0;
        for k in self.list() {
            if until.is_some_and(|t| k.last_used >= t) {
                continue;
            }
            bytes += self.drop_context(&k.id);
            ids.push(k.id);
        }
        (ids, bytes)
    }

    /// Removes what a killed daemon may have left: packs no index names, temporary indexes.
    pub fn clean_leftovers(&self) {
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return;
        };
        for e in rd.flatten() {
            let d = e.path();
            let packs: HashSet<String> = std::fs::read(d.join("index.json"))
                .ok()
                .and_then(|t| serde_json::from_slice::<Index>(&t).ok())
                .map(|i| i.packs.into_iter().collect())
                .unwrap_or_default();
            if let Ok(files) = std::fs::read_dir(&d) {
                for f in files.flatten() {
                    let n = f.file_name().to_string_lossy().into_owned();
                    if n != "index.json" && !packs.contains(&n) {
                        let _ = std::fs::remove_file(f.path());
                    }
                }
            }
        }
    }
}

/// Whether the kept entry of `p` may stand for the client's entry of stat key `k`.
fn reusable(base: &Base, p: &str, k: &str) -> bool {
    !k.is_empty()
        && base
            .index
            .entries
            .get(p)
            .is_some_and(|e| e.key == k && (e.pack as usize) < base.files.len())
}

fn sent_file(t: &TarTree) -> Option<Arc<std::fs::File>> {
    t.pack_files().first().cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{read_to_vec, Tree};

    /// A listing and the tar of what `need` asks for, from (path, key, content).
    fn listing(root: &str, files: &[(&str, &str, &str)]) -> Listing {
        Listing {
            root: root.into(),
            entries: files
                .iter()
                .map(|(p, k, _)| (p.to_string(), k.to_string()))
                .collect(),
        }
    }

    fn tar_for(files: &[(&str, &str, &str)], need: &[usize]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for &i in need {
            let (p, _, data) = files[i];
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, p, data.as_bytes()).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn sync(
        s: &Store,
        id: &str,
        root: &str,
        files: &[(&str, &str, &str)],
    ) -> (Vec<usize>, TarTree) {
        let p = s.begin(id, listing(root, files)).unwrap();
        let need = p.need.clone();
        let tar = tar_for(files, &need);
        (need, s.finish(p, &mut &tar[..]).unwrap())
    }

    fn read(t: &TarTree, p: &str) -> String {
        String::from_utf8(read_to_vec(t, p, 1 << 20).unwrap()).unwrap()
    }

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn only_changed_entries_are_asked_for_and_deleted_ones_are_gone() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        let v1 = [("a", "k1", "one"), ("b", "k2", "two"), ("c", "k3", "three")];
        let (need, t) = sync(&s, ID, "r", &v1);
        assert_eq!(need, [0, 1, 2]);
        assert_eq!(read(&t, "b"), "two");
        // The same listing: nothing is sent, the content and digests are the kept ones.
        let (need, t2) = sync(&s, ID, "r", &v1);
        assert!(need.is_empty(), "{need:?}");
        assert_eq!(read(&t2, "c"), "three");
        assert_eq!(
            t2.content_digest("a").unwrap(),
            t.content_digest("a").unwrap()
        );
        // b changed, c deleted, d new.
        let v2 = [("a", "k1", "one"), ("b", "k2b", "TWO"), ("d", "k4", "four")];
        let (need, t3) = sync(&s, ID, "r", &v2);
        assert_eq!(need, [1, 2]);
        assert_eq!(read(&t3, "a"), "one");
        assert_eq!(read(&t3, "b"), "TWO");
        assert!(t3.lstat("c").is_none());
        assert_eq!(t3.list("."), ["a", "b", "d"]);
        // The trees made before still read what they read (their packs are open).
        assert_eq!(read(&t, "b"), "two");
        // And the store keeps only what the last listing uses, after a restart too.
        let s2 = Store::new(d.path());
        let (need, t4) = sync(&s2, ID, "r", &v2);
        assert!(need.is_empty(), "{need:?}");
        assert_eq!(read(&t4, "b"), "TWO");
        let packs = std::fs::read_dir(d.path().join(ID)).unwrap().count();
        assert_eq!(packs, 3, "index.json and two packs");
    }

    #[test]
    fn an_empty_key_or_another_root_reuses_nothing() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        let v = [("a", "k1", "mine"), ("gen", "", "x")];
        sync(&s, ID, "root-1", &v);
        let p = s.begin(ID, listing("root-1", &v)).unwrap();
        assert_eq!(p.need, [1]);
        // Another directory with the same id and the same keys gets nothing of the first.
        let other = [("a", "k1", "theirs"), ("gen", "", "y")];
        let (need, t) = sync(&s, ID, "root-2", &other);
        assert_eq!(need, [0, 1]);
        assert_eq!(read(&t, "a"), "theirs");
    }

    #[test]
    fn concurrent_syncs_of_one_id_each_read_their_own_listing() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        let v1 = [("a", "k1", "one"), ("b", "k2", "two")];
        sync(&s, ID, "r", &v1);
        let va = [("a", "ka", "A"), ("b", "k2", "two")];
        let vb = [("a", "k1", "one"), ("b", "kb", "B")];
        let pa = s.begin(ID, listing("r", &va)).unwrap();
        let pb = s.begin(ID, listing("r", &vb)).unwrap();
        let ta = s.finish(pa, &mut &tar_for(&va, &[0])[..]).unwrap();
        let tb = s.finish(pb, &mut &tar_for(&vb, &[1])[..]).unwrap();
        assert_eq!((read(&ta, "a"), read(&ta, "b")), ("A".into(), "two".into()));
        assert_eq!((read(&tb, "a"), read(&tb, "b")), ("one".into(), "B".into()));
        // The last one is kept; on disk as well.
        let (need, t) = sync(&Store::new(d.path()), ID, "r", &vb);
        assert!(need.is_empty());
        assert_eq!(read(&t, "b"), "B");
    }

    #[test]
    fn an_entry_asked_for_and_not_sent_fails_and_leaves_no_pack() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        let v = [("a", "k1", "one"), ("b", "k2", "two")];
        let p = s.begin(ID, listing("r", &v)).unwrap();
        let e = s.finish(p, &mut &tar_for(&v, &[0])[..]).unwrap_err();
        assert!(e.contains("b was asked for"), "{e}");
        assert_eq!(std::fs::read_dir(d.path().join(ID)).unwrap().count(), 0);
        assert!(s.begin("../x", listing("r", &v)).is_err());
        let bad = [("../a", "k", "x")];
        assert!(s.begin(ID, listing("r", &bad)).is_err());
    }

    #[test]
    fn prune_drops_kept_contexts() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        let v = [("a", "k1", "one")];
        sync(&s, ID, "r", &v);
        assert_eq!(s.list().len(), 1);
        let (ids, bytes) = s.prune(None);
        assert_eq!(ids, [ID]);
        assert!(bytes > 0);
        assert!(s.list().is_empty());
        let p = s.begin(ID, listing("r", &v)).unwrap();
        assert_eq!(p.need, [0]);
    }
}
