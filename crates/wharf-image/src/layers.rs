//! The layer store: read-only image layers (one directory per chain id) and writable container
//! layers, mounted with overlayfs, or as full copies ("vfs") where overlay is not available.
//!
//! ```text
//! layers/<chain-hex>/diff      the layer's files (overlay: only its changes, with whiteouts)
//! layers/<chain-hex>/meta.json chain id, diff id, parent, size
//! layers/<chain-hex>/link      a 26-character short name; layers/l/<short> -> ../<chain-hex>/diff
//! layers/blobs/sha256/<diff>   the layer's uncompressed tar, once per diff id (content store)
//! layers/rw/<container>/{diff,work,meta.json}
//! ```
//! Short links keep overlay's `lowerdir=` option under the kernel's page-size limit for deep
//! images, as Docker's overlay2 does. A layer directory is published by a rename only once fully
//! extracted, so an interrupted extraction leaves nothing referenced.

use crate::apply::{self, Whiteouts};
use crate::content::{sync_dir, ContentStore};
use crate::digest::{hex_of, sha256, write_atomic};
use crate::error::Error;
use crate::idmap::IdMap;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Metadata of one read-only layer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerInfo {
    pub chain_id: String,
    pub diff_id: String,
    pub parent: Option<String>,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RwInfo {
    parent: Option<String>,
}

/// One entry of `docker diff`: kind 0 modified, 1 added, 2 deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub path: String,
    pub kind: u8,
}

/// Read-only layers and container layers.
pub struct LayerStore {
    root: PathBuf,
    overlay: bool,
    content: ContentStore,
    /// Layers an operation in flight (pull, load, import, commit) has found or registered and
    /// will reference from the image it is about to write: garbage collection keeps them.
    /// Held across a whole collection, so a layer is either leased before the collector looks
    /// (kept) or gone before the operation checks for it (registered again).
    leases: Arc<Mutex<HashMap<String, usize>>>,
    /// `--userns-remap`: layers are extracted owned by these host ids, container layers are
    /// made for the container's root, and diffs give the container's ids back.
    ids: Option<IdMap>,
}

/// What one operation holds of the layer store until it has written its image (dropped: the
/// layers are ordinary again, collected when nothing references them).
pub struct LayerLease {
    leases: Arc<Mutex<HashMap<String, usize>>>,
    held: Mutex<Vec<String>>,
}

impl LayerLease {
    /// Keeps layer `chain` (present or about to be) from garbage collection while the lease
    /// lives. Take it before checking whether the layer exists.
    pub fn hold(&self, chain: &str) {
        let mut held = self.held.lock().expect("lease lock");
        if held.iter().any(|c| c == chain) {
            return;
        }
        *self
            .leases
            .lock()
            .expect("leases lock")
            .entry(chain.to_string())
            .or_default() += 1;
        held.push(chain.to_string());
    }
}

impl Drop for LayerLease {
    fn drop(&mut self) {
        let held = std::mem::take(self.held.get_mut().expect("lease lock"));
        let mut leases = self.leases.lock().expect("leases lock");
        for c in held {
            if let Some(n) = leases.get_mut(&c) {
                *n -= 1;
                if *n == 0 {
                    leases.remove(&c);
                }
            }
        }
    }
}

/// The chain id of `diff_id` on top of `parent` (OCI image-spec).
pub fn chain_id(parent: Option<&str>, diff_id: &str) -> String {
    match parent {
        None => diff_id.to_string(),
        Some(p) => sha256(format!("{p} {diff_id}").as_bytes()),
    }
}

/// A random suffix for scratch names.
pub fn random_suffix() -> String {
    random_id(12)
}

fn random_id(len: usize) -> String {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut buf = vec![0u8; len];
    getrandom::fill(&mut buf).expect("getrandom");
    buf.iter()
        .map(|b| ALPHA[(*b & 31) as usize] as char)
        .collect()
}

fn overlay_supported(root: &Path) -> bool {
    let listed = fs::read_to_string("/proc/filesystems")
        .map(|s| s.lines().any(|l| l.ends_with("\toverlay")))
        .unwrap_or(false);
    if !listed || !nix::unistd::geteuid().is_root() {
        return false;
    }
    // overlayfs cannot use an upper dir on overlay/tmpfs-less odd filesystems: try it once.
    let probe = root.join(format!("probe-{}", random_id(8)));
    let ok = (|| -> Result<(), Box<dyn std::error::Error>> {
        for d in ["lower", "upper", "work", "merged"] {
            fs::create_dir_all(probe.join(d))?;
        }
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            probe.join("lower").display(),
            probe.join("upper").display(),
            probe.join("work").display()
        );
        nix::mount::mount(
            Some("overlay"),
            &probe.join("merged"),
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(opts.as_str()),
        )?;
        nix::mount::umount2(&probe.join("merged"), nix::mount::MntFlags::MNT_DETACH)?;
        Ok(())
    })()
    .is_ok();
    let _ = fs::remove_dir_all(&probe);
    ok
}

impl LayerStore {
    /// Opens the layer store at `root`, choosing overlay when this filesystem supports it.
    pub fn open(root: &Path) -> Result<Self, Error> {
        Self::open_mapped(root, None)
    }

    /// Opens the layer store of a daemon whose containers run with the mapping `ids`.
    pub fn open_mapped(root: &Path, ids: Option<IdMap>) -> Result<Self, Error> {
        for d in ["l", "rw", "tmp", "mnt"] {
            fs::create_dir_all(root.join(d)).map_err(Error::io(root.join(d)))?;
        }
        clear_scratch(root);
        // A crash between creating a short link and publishing its layer leaves a dangling link.
        if let Ok(rd) = fs::read_dir(root.join("l")) {
            for e in rd.flatten() {
                if fs::metadata(e.path()).is_err() {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        let content = ContentStore::open(&root.join("blobs"))?;
        let overlay = std::env::var_os("WHARF_STORAGE_DRIVER").is_none_or(|v| v != "vfs")
            && overlay_supported(root);
        Ok(LayerStore {
            root: root.to_path_buf(),
            overlay,
            content,
            leases: Arc::default(),
            ids,
        })
    }

    /// A lease for one operation that will write an image (see [`LayerLease`]).
    pub fn lease(&self) -> LayerLease {
        LayerLease {
            leases: self.leases.clone(),
            held: Mutex::default(),
        }
    }

    /// Removes every layer not in `keep` and not leased, with the leases locked throughout so
    /// that no operation can find one of them present and then see it vanish. Returns the
    /// bytes freed.
    pub fn remove_unused(&self, keep: &std::collections::HashSet<String>) -> Result<u64, Error> {
        let leases = self.leases.lock().expect("leases lock");
        let mut keep = keep.clone();
        for c in leases.keys() {
            for l in self.ancestry(c).unwrap_or_default() {
                keep.insert(l.chain_id);
            }
            keep.insert(c.clone());
        }
        let mut freed = 0;
        for l in self.list() {
            if !keep.contains(&l.chain_id) {
                freed += l.size;
                self.remove_layer(&l.chain_id)?;
            }
        }
        drop(leases);
        self.gc_blobs()?;
        Ok(freed)
    }

    /// "overlay2" or "vfs", as `docker info` reports the storage driver.
    pub fn driver(&self) -> &'static str {
        if self.overlay {
            "overlay2"
        } else {
            "vfs"
        }
    }

    fn layer_dir(&self, chain: &str) -> PathBuf {
        self.root.join(hex_of(chain))
    }

    fn rw_dir(&self, id: &str) -> PathBuf {
        self.root.join("rw").join(id)
    }

    /// Metadata of a read-only layer.
    pub fn get(&self, chain: &str) -> Result<LayerInfo, Error> {
        let p = self.layer_dir(chain).join("meta.json");
        let data = fs::read(&p).map_err(|_| Error::NoSuchLayer(chain.to_string()))?;
        serde_json::from_slice(&data).map_err(|source| Error::Metadata { path: p, source })
    }

    /// Whether the layer with this chain id is present.
    pub fn exists(&self, chain: &str) -> bool {
        self.layer_dir(chain).join("meta.json").exists()
    }

    /// The layer and its ancestors, top first.
    pub fn ancestry(&self, top: &str) -> Result<Vec<LayerInfo>, Error> {
        let mut out = Vec::new();
        let mut cur = Some(top.to_string());
        while let Some(c) = cur {
            let info = self.get(&c)?;
            cur = info.parent.clone();
            out.push(info);
        }
        Ok(out)
    }

    /// Extracts a layer tar (plain/gzip/zstd) on top of `parent` and publishes it.
    /// Returns the existing layer if one with the same chain id is already there.
    pub fn register(
        &self,
        lease: &LayerLease,
        parent: Option<&str>,
        r: impl Read,
    ) -> Result<LayerInfo, Error> {
        self.register_checked(lease, parent, r, None)
    }

    /// Like `register`, refusing (and publishing nothing) when the uncompressed tar's sha256 is
    /// not `expected_diff_id`.
    pub fn register_checked(
        &self,
        lease: &LayerLease,
        parent: Option<&str>,
        r: impl Read,
        expected_diff_id: Option<&str>,
    ) -> Result<LayerInfo, Error> {
        self.register_inner(lease, parent, r, expected_diff_id, None)
    }

    /// Registers a layer from a file on this filesystem (a spooled download or archive member)
    /// whose sha256 `file_digest` the caller computed while writing it. An uncompressed file
    /// that is the expected diff id is moved into the content store instead of copied.
    pub fn register_file(
        &self,
        lease: &LayerLease,
        parent: Option<&str>,
        file: &Path,
        file_digest: &str,
        expected_diff_id: &str,
    ) -> Result<LayerInfo, Error> {
        match fs::File::open(file) {
            Ok(f) => {
                let adopt = (file_digest == expected_diff_id).then_some(file);
                self.register_inner(lease, parent, f, Some(expected_diff_id), adopt)
            }
            // The same file, moved into the content store by an earlier registration.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound && self.content.exists(file_digest) =>
            {
                let p = self.content.path(file_digest);
                let f = fs::File::open(&p).map_err(Error::io(&p))?;
                self.register_inner(lease, parent, f, Some(expected_diff_id), None)
            }
            Err(e) => Err(Error::io(file)(e)),
        }
    }

    fn register_inner(
        &self,
        lease: &LayerLease,
        parent: Option<&str>,
        r: impl Read,
        expected: Option<&str>,
        adopt: Option<&Path>,
    ) -> Result<LayerInfo, Error> {
        let tmp = self.root.join("tmp").join(random_id(16));
        let diff = tmp.join("diff");
        fs::create_dir_all(&diff).map_err(Error::io(&diff))?;
        let result = (|| {
            let mode = if self.overlay {
                Whiteouts::Overlay
            } else {
                if let Some(p) = parent {
                    copy_tree(&self.layer_dir(p).join("diff"), &diff)?;
                }
                Whiteouts::Delete
            };
            // The uncompressed tar is kept (for save/push) unless the blob is already stored or
            // the caller's file is that very blob.
            let have_blob = expected.is_some_and(|d| self.content.exists(d)) || adopt.is_some();
            let mut keep = if have_blob {
                None
            } else {
                Some(self.content.writer(expected)?)
            };
            let apply = if expected.is_some() {
                apply::apply_verified_layer
            } else {
                apply::apply_layer_keeping
            };
            let applied = apply(
                r,
                &diff,
                mode,
                keep.as_mut().map(|w| w as &mut dyn Write),
                self.ids.as_ref(),
            )?;
            if let Some(want) = expected {
                if applied.diff_id != want {
                    return Err(Error::DigestMismatch {
                        what: "layer".into(),
                        expected: want.to_string(),
                        actual: applied.diff_id,
                    });
                }
            }
            match (keep, adopt) {
                (Some(w), _) => {
                    w.commit()?;
                }
                (None, Some(file)) => {
                    self.content.adopt_verified(file, &applied.diff_id)?;
                }
                (None, None) => {}
            }
            let chain = chain_id(parent, &applied.diff_id);
            // Leased before it is published (or found published): a collection running now
            // either sees the lease or ran before the layer existed.
            lease.hold(&chain);
            let info = LayerInfo {
                chain_id: chain.clone(),
                diff_id: applied.diff_id,
                parent: parent.map(str::to_string),
                size: applied.size,
            };
            if self.exists(&chain) {
                return Ok(info);
            }
            let short = random_id(26);
            write_atomic(&tmp.join("link"), short.as_bytes()).map_err(Error::io(&tmp))?;
            write_atomic(
                &tmp.join("meta.json"),
                &serde_json::to_vec(&info).expect("serializable"),
            )
            .map_err(Error::io(&tmp))?;
            let link = self.root.join("l").join(&short);
            let _ = fs::remove_file(&link);
            std::os::unix::fs::symlink(format!("../{}/diff", hex_of(&chain)), &link)
                .map_err(Error::io(&link))?;
            let dest = self.layer_dir(&chain);
            if let Err(e) = fs::rename(&tmp, &dest) {
                let _ = fs::remove_file(&link);
                // Another load published the same layer meanwhile: that one is as good.
                if self.exists(&chain) {
                    return Ok(info);
                }
                return Err(Error::io(&dest)(e));
            }
            sync_dir(&self.root);
            Ok(info)
        })();
        let _ = fs::remove_dir_all(&tmp);
        result
    }

    /// The user-namespace mapping the store extracts layers for (`--userns-remap`).
    pub fn id_map(&self) -> Option<&IdMap> {
        self.ids.as_ref()
    }

    /// Whether layers are independent overlay diffs (so they can be extracted in parallel).
    pub fn is_overlay(&self) -> bool {
        self.overlay
    }

    /// The content store holding the layers' uncompressed tars.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// Removes layer tars that no layer present refers to. Returns the bytes freed.
    pub fn gc_blobs(&self) -> Result<u64, Error> {
        let used: std::collections::HashSet<String> =
            self.list().into_iter().map(|l| l.diff_id).collect();
        let mut freed = 0;
        for d in self.content.list() {
            if !used.contains(&d) {
                freed += fs::metadata(self.content.path(&d))
                    .map(|m| m.len())
                    .unwrap_or(0);
                self.content.remove(&d)?;
            }
        }
        Ok(freed)
    }

    /// Removes a read-only layer (the caller knows nothing references it).
    pub fn remove_layer(&self, chain: &str) -> Result<(), Error> {
        let dir = self.layer_dir(chain);
        if let Ok(short) = fs::read_to_string(dir.join("link")) {
            let _ = fs::remove_file(self.root.join("l").join(short.trim()));
        }
        // Rename first so a crash never leaves a half-deleted layer that looks whole.
        let trash = self.root.join("tmp").join(random_id(16));
        match fs::rename(&dir, &trash) {
            Ok(()) => fs::remove_dir_all(&trash).map_err(Error::io(&trash)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&dir)(e)),
        }
    }

    /// All read-only layers present.
    pub fn list(&self) -> Vec<LayerInfo> {
        let Ok(rd) = fs::read_dir(&self.root) else {
            return vec![];
        };
        rd.flatten()
            .filter(|e| e.file_name().len() == 64)
            .filter_map(|e| {
                self.get(&format!("sha256:{}", e.file_name().to_string_lossy()))
                    .ok()
            })
            .collect()
    }

    /// Creates the writable layer of container `id` over `parent` (an image's top chain id).
    pub fn create_rw(&self, id: &str, parent: Option<&str>) -> Result<(), Error> {
        if let Some(p) = parent {
            self.get(p)?;
        }
        let dir = self.rw_dir(id);
        let tmp = self.root.join("tmp").join(random_id(16));
        fs::create_dir_all(tmp.join("diff")).map_err(Error::io(&tmp))?;
        fs::create_dir_all(tmp.join("work")).map_err(Error::io(&tmp))?;
        if !self.overlay {
            if let Some(p) = parent {
                copy_tree(&self.layer_dir(p).join("diff"), &tmp.join("diff"))?;
            }
        }
        if let Some(m) = &self.ids {
            // The merged root is the upper directory (or the copy's root): the container's
            // root owns it, as the image's root owns an image's `/`.
            let (u, g) = m.root();
            for d in ["diff", "work"] {
                let p = tmp.join(d);
                std::os::unix::fs::chown(&p, Some(u), Some(g)).map_err(Error::io(&p))?;
            }
        }
        let info = RwInfo {
            parent: parent.map(str::to_string),
        };
        write_atomic(
            &tmp.join("meta.json"),
            &serde_json::to_vec(&info).expect("serializable"),
        )
        .map_err(Error::io(&tmp))?;
        fs::rename(&tmp, &dir).map_err(Error::io(&dir))
    }

    fn rw_info(&self, id: &str) -> Result<RwInfo, Error> {
        let p = self.rw_dir(id).join("meta.json");
        let data = fs::read(&p).map_err(|_| Error::NoSuchLayer(id.to_string()))?;
        serde_json::from_slice(&data).map_err(|source| Error::Metadata { path: p, source })
    }

    /// The lower directories of a container layer, top first, as short link paths.
    fn lowers(&self, parent: Option<&str>) -> Result<Vec<PathBuf>, Error> {
        let mut out = Vec::new();
        if let Some(p) = parent {
            for layer in self.ancestry(p)? {
                let dir = self.layer_dir(&layer.chain_id);
                let short = fs::read_to_string(dir.join("link")).map_err(Error::io(&dir))?;
                out.push(self.root.join("l").join(short.trim()));
            }
        }
        if out.is_empty() {
            let empty = self.root.join("empty");
            fs::create_dir_all(&empty).map_err(Error::io(&empty))?;
            out.push(empty);
        }
        Ok(out)
    }

    /// Mounts container `id`'s merged rootfs at `target`.
    pub fn mount_rw(&self, id: &str, target: &Path) -> Result<(), Error> {
        use nix::mount::{mount, MsFlags};
        let info = self.rw_info(id)?;
        let dir = self.rw_dir(id);
        fs::create_dir_all(target).map_err(Error::io(target))?;
        let merr = |source| Error::Mount {
            target: target.to_path_buf(),
            source,
        };
        if !self.overlay {
            return mount(
                Some(&dir.join("diff")),
                target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(merr);
        }
        let lower_dirs = self.lowers(info.parent.as_deref())?;
        let lowers: Vec<String> = lower_dirs.iter().map(|p| p.display().to_string()).collect();
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lowers.join(":"),
            dir.join("diff").display(),
            dir.join("work").display()
        );
        let page = page_size();
        if opts.len() < page {
            return mount(
                Some("overlay"),
                target,
                Some("overlay"),
                MsFlags::empty(),
                Some(opts.as_str()),
            )
            .map_err(merr);
        }
        // Deep images: the options name the layers by their short links relative to the layer
        // store (`l/<26 chars>`), as Docker's overlay2 does, mounting from a child whose working
        // directory is the store, so ~140 layers fit in one page.
        if let Some(rel) = self.relative_options(&lower_dirs, id) {
            if rel.len() < page {
                let abs_target = std::path::absolute(target).map_err(Error::io(target))?;
                return mount_overlay_from(&self.root, &abs_target, &rel).map_err(merr);
            }
        }
        // Deeper still: add the lower layers one by one through the new mount API
        // (`lowerdir+`, Linux 6.8+), which has no such limit.
        mount_overlay_fsconfig(&lowers, &dir, target).map_err(merr)
    }

    /// Overlay options with every directory relative to the store root, if all are inside it.
    pub fn relative_options(&self, lowers: &[PathBuf], id: &str) -> Option<String> {
        let rel: Vec<String> = lowers
            .iter()
            .map(|p| {
                p.strip_prefix(&self.root)
                    .ok()
                    .map(|r| r.display().to_string())
            })
            .collect::<Option<_>>()?;
        Some(format!(
            "lowerdir={},upperdir=rw/{id}/diff,workdir=rw/{id}/work",
            rel.join(":")
        ))
    }

    /// The overlay `lowerdir` chain (short links, top first) a container over `parent` gets.
    pub fn lower_dirs(&self, parent: Option<&str>) -> Result<Vec<PathBuf>, Error> {
        self.lowers(parent)
    }

    /// Unmounts container `id`'s rootfs (not mounted is fine).
    pub fn unmount_rw(&self, _id: &str, target: &Path) -> Result<(), Error> {
        match nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
            Err(source) => Err(Error::Mount {
                target: target.to_path_buf(),
                source,
            }),
        }
    }

    /// Removes container `id`'s writable layer (missing is fine).
    pub fn remove_rw(&self, id: &str) -> Result<(), Error> {
        let dir = self.rw_dir(id);
        let trash = self.root.join("tmp").join(random_id(16));
        match fs::rename(&dir, &trash) {
            Ok(()) => fs::remove_dir_all(&trash).map_err(Error::io(&trash)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&dir)(e)),
        }
    }

    /// The ids of every writable (container) layer.
    pub fn rw_ids(&self) -> Vec<String> {
        fs::read_dir(self.root.join("rw"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Parent chain ids of every container layer (their ancestry must be kept).
    pub fn rw_parents(&self) -> Vec<String> {
        fs::read_dir(self.root.join("rw"))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| self.rw_info(&e.file_name().to_string_lossy()).ok())
                    .filter_map(|i| i.parent)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Parent chain id of a container layer.
    pub fn rw_parent(&self, id: &str) -> Result<Option<String>, Error> {
        Ok(self.rw_info(id)?.parent)
    }

    /// Whether `path` (relative) exists in the image layers below a container layer.
    fn in_lower(&self, lowers: &[PathBuf], rel: &Path) -> bool {
        for l in lowers {
            match fs::symlink_metadata(l.join(rel)) {
                Ok(m) if m.file_type().is_char_device() && m.rdev() == 0 => return false,
                Ok(_) => return true,
                Err(_) => {}
            }
        }
        false
    }

    /// `docker diff` of container `id`.
    pub fn changes(&self, id: &str) -> Result<Vec<Change>, Error> {
        let info = self.rw_info(id)?;
        let upper = self.rw_dir(id).join("diff");
        let mut out = Vec::new();
        if self.overlay {
            let lowers = self.lowers(info.parent.as_deref())?;
            walk_upper(&upper, Path::new(""), &mut |rel, meta| {
                let path = format!("/{}", rel.display());
                if meta.file_type().is_char_device() && meta.rdev() == 0 {
                    out.push(Change { path, kind: 2 });
                    return false;
                }
                let existed = self.in_lower(&lowers, rel);
                let opaque = meta.is_dir() && xattr_is_opaque(&upper.join(rel));
                out.push(Change {
                    path,
                    kind: if existed { 0 } else { 1 },
                });
                if opaque && existed {
                    // Everything below an opaque dir replaced the lower content.
                    for l in &lowers {
                        if let Ok(rd) = fs::read_dir(l.join(rel)) {
                            for e in rd.flatten() {
                                if !upper.join(rel).join(e.file_name()).exists() {
                                    out.push(Change {
                                        path: format!("/{}", rel.join(e.file_name()).display()),
                                        kind: 2,
                                    });
                                }
                            }
                        }
                    }
                }
                true
            })?;
        } else {
            let base = info
                .parent
                .as_deref()
                .map(|p| self.layer_dir(p).join("diff"));
            diff_full_copies(base.as_deref(), &upper, &mut out)?;
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out.dedup();
        Ok(out)
    }

    /// Removes from container `id`'s layer the empty files and directories that were made
    /// only to mount something on (a build step's mount targets, `targets`, and the parents
    /// created for them): they were not in the image and nothing was written to them, so
    /// the step's layer must not keep them (as BuildKit removes its mount stubs).
    pub fn remove_mount_stubs(&self, id: &str, targets: &[String]) -> Result<(), Error> {
        if targets.is_empty() {
            return Ok(());
        }
        let added: std::collections::HashSet<String> = self
            .changes(id)?
            .into_iter()
            .filter(|c| c.kind == 1)
            .map(|c| c.path)
            .collect();
        let upper = self.rw_dir(id).join("diff");
        for t in targets {
            let mut p = Path::new(t);
            while added.contains(p.to_string_lossy().as_ref()) {
                let host = upper.join(p.strip_prefix("/").unwrap_or(p));
                let removed = match fs::symlink_metadata(&host) {
                    Ok(m) if m.is_dir() => fs::remove_dir(&host).is_ok(),
                    Ok(m) if m.is_file() && m.len() == 0 => fs::remove_file(&host).is_ok(),
                    _ => false,
                };
                match p.parent() {
                    Some(parent) if removed && parent != Path::new("/") => p = parent,
                    _ => break,
                }
            }
        }
        Ok(())
    }

    /// The container layer as a layer tar with `.wh.` whiteouts. Returns the bytes written.
    pub fn diff_tar(&self, id: &str, out: &mut dyn Write) -> Result<u64, Error> {
        let upper = self.rw_dir(id).join("diff");
        let mut counter = CountingWriter { inner: out, n: 0 };
        {
            let mut b = tar::Builder::new(&mut counter);
            if self.overlay {
                let mut failure = None;
                walk_upper(&upper, Path::new(""), &mut |rel, meta| {
                    let full = upper.join(rel);
                    let r = if meta.file_type().is_char_device() && meta.rdev() == 0 {
                        let name = format!(
                            ".wh.{}",
                            rel.file_name().unwrap_or_default().to_string_lossy()
                        );
                        append_empty(&mut b, &rel.with_file_name(name))
                    } else {
                        let r = append_unmapped(&mut b, &full, rel, self.ids.as_ref());
                        if r.is_ok() && meta.is_dir() && xattr_is_opaque(&full) {
                            append_empty(&mut b, &rel.join(".wh..wh..opq"))
                        } else {
                            r
                        }
                    };
                    if let Err(e) = r {
                        failure.get_or_insert(Error::io(&full)(e));
                        return false;
                    }
                    !(meta.file_type().is_char_device() && meta.rdev() == 0)
                })?;
                if let Some(e) = failure {
                    return Err(e);
                }
            } else {
                // A full copy: the changes are computed against the parent layer's copy.
                let info = self.rw_info(id)?;
                let base = info
                    .parent
                    .as_deref()
                    .map(|p| self.layer_dir(p).join("diff"));
                let mut changes = Vec::new();
                diff_full_copies(base.as_deref(), &upper, &mut changes)?;
                for c in changes {
                    let rel = Path::new(c.path.trim_start_matches('/'));
                    let r = if c.kind == 2 {
                        let name = format!(
                            ".wh.{}",
                            rel.file_name().unwrap_or_default().to_string_lossy()
                        );
                        append_empty(&mut b, &rel.with_file_name(name))
                    } else {
                        append_unmapped(&mut b, &upper.join(rel), rel, self.ids.as_ref())
                    };
                    r.map_err(Error::io(upper.join(rel)))?;
                }
            }
            b.finish().map_err(Error::io(&upper))?;
        }
        Ok(counter.n)
    }

    /// A fresh, unique path to mount something at for a while (`cp` and `export` of a stopped
    /// container's filesystem). Mounts live under `mnt/`, apart from the scratch space in
    /// `tmp/` that is deleted recursively at open: a mount left by a crash is unmounted there,
    /// never deleted through.
    pub fn scratch_mountpoint(&self, what: &str) -> PathBuf {
        self.root
            .join("mnt")
            .join(format!("{what}-{}", random_id(12)))
    }

    /// Size of container `id`'s writable layer (SizeRw).
    pub fn rw_size(&self, id: &str) -> Result<u64, Error> {
        let dir = self.rw_dir(id).join("diff");
        if !dir.exists() {
            return Err(Error::NoSuchLayer(id.to_string()));
        }
        Ok(apply::dir_size(&dir))
    }

    /// The layer's uncompressed tar exactly as it was received (its sha256 is the diff id).
    pub fn layer_tar(&self, chain: &str) -> PathBuf {
        // Stores written before the content store kept the tar in the layer directory.
        let legacy = self.layer_dir(chain).join("layer.tar");
        match self.get(chain) {
            Ok(info) if !legacy.exists() => self.content.path(&info.diff_id),
            _ => legacy,
        }
    }

    /// The filesystem the layers live on, by Docker's names (`/info` DriverStatus "Backing
    /// Filesystem": extfs, xfs, btrfs, tmpfs, ...), from statfs of the layer root.
    pub fn backing_filesystem(&self) -> String {
        match nix::sys::statfs::statfs(&self.root) {
            Ok(st) => filesystem_name(st.filesystem_type().0 as u64),
            Err(_) => "<unknown>".into(),
        }
    }

    /// A scratch directory on the same filesystem as the layers (cleaned at open).
    pub fn root_tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Disk usage of one read-only layer directory.
    pub fn layer_disk_size(&self, chain: &str) -> u64 {
        apply::dir_size(&self.layer_dir(chain).join("diff"))
    }
}

/// Appends `full` as `rel` (never followed), as Go's archive/tar writes it: regular files
/// with their data (never as GNU sparse entries, which the docker CLI cannot read), symlinks,
/// directories, FIFOs, and character and block devices with their numbers. With a mapping,
/// owned by the container's ids of its host owner (what the container saw), so that the diff
/// is the same whichever daemon wrote it. A socket cannot be archived: it is left out, as
/// Docker leaves it out.
pub fn append_unmapped<W: Write>(
    b: &mut tar::Builder<W>,
    full: &Path,
    rel: &Path,
    ids: Option<&IdMap>,
) -> std::io::Result<()> {
    let meta = fs::symlink_metadata(full)?;
    let kind = meta.file_type();
    if kind.is_socket() {
        return Ok(());
    }
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
    if let Some(m) = ids {
        let (u, g) = m.to_container(meta.uid(), meta.gid());
        h.set_uid(u.into());
        h.set_gid(g.into());
    }
    if kind.is_symlink() {
        h.set_size(0);
        return b.append_link(&mut h, rel, fs::read_link(full)?);
    }
    if meta.is_file() {
        let data = ExactSize {
            inner: fs::File::open(full)?,
            left: meta.len(),
            size: meta.len(),
            path: full,
        };
        return b.append_data(&mut h, rel, data);
    }
    if kind.is_char_device() || kind.is_block_device() {
        let dev = meta.rdev();
        h.set_device_major(nix::sys::stat::major(dev) as u32)?;
        h.set_device_minor(nix::sys::stat::minor(dev) as u32)?;
    }
    h.set_size(0);
    b.append_data(&mut h, rel, std::io::empty())
}

/// Appends the tree at `dir` as `name`, each entry as [`append_unmapped`] appends it, in name
/// order (symlinks not followed).
pub fn append_tree<W: Write>(
    b: &mut tar::Builder<W>,
    name: &Path,
    dir: &Path,
    ids: Option<&IdMap>,
) -> std::io::Result<()> {
    append_unmapped(b, dir, name, ids)?;
    let mut stack = vec![(dir.to_path_buf(), name.to_path_buf())];
    while let Some((src, dst)) = stack.pop() {
        let mut entries: Vec<_> = fs::read_dir(&src)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let (p, n) = (e.path(), dst.join(e.file_name()));
            append_unmapped(b, &p, &n, ids)?;
            if e.file_type()?.is_dir() {
                stack.push((p, n));
            }
        }
    }
    Ok(())
}

/// A file's data as its header announced it: exactly `size` bytes. The tar crate pads
/// whatever it gets, so a file that shrank while it was read (or a sysfs attribute, whose
/// stat size is a page) would make a tar whose next header is garbage: that is an error
/// here, as in Go's archive/tar ("missed writing N bytes"). A file that grew is cut at its
/// announced size.
struct ExactSize<'a> {
    inner: fs::File,
    left: u64,
    size: u64,
    path: &'a Path,
}

impl std::io::Read for ExactSize<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: the file shrank while it was archived ({} of {} bytes read)",
                    self.path.display(),
                    self.size - self.left,
                    self.size
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn append_empty<W: Write>(b: &mut tar::Builder<W>, path: &Path) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(0);
    h.set_mode(0o644);
    b.append_data(&mut h, path, std::io::empty())
}

struct CountingWriter<'a> {
    inner: &'a mut dyn Write,
    n: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn xattr_is_opaque(path: &Path) -> bool {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let Ok(p) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let name = c"trusted.overlay.opaque";
    let mut buf = [0u8; 4];
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let n = unsafe {
        libc::lgetxattr(
            p.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    n == 1 && buf[0] == b'y'
}

/// Visits every entry under `dir` (relative paths), parents first, sorted; `f` returns
/// whether to descend into a directory.
fn walk_upper(
    base: &Path,
    rel: &Path,
    f: &mut dyn FnMut(&Path, &fs::Metadata) -> bool,
) -> Result<(), Error> {
    let dir = base.join(rel);
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .map_err(Error::io(&dir))?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let r = rel.join(e.file_name());
        let meta = fs::symlink_metadata(e.path()).map_err(Error::io(e.path()))?;
        if f(&r, &meta) && meta.is_dir() {
            walk_upper(base, &r, f)?;
        }
    }
    Ok(())
}

/// Changes between two full trees (vfs): compares type, size, mode, owner and mtime.
fn diff_full_copies(base: Option<&Path>, new: &Path, out: &mut Vec<Change>) -> Result<(), Error> {
    let empty = tempfile_free_empty();
    let base = base.unwrap_or(&empty);
    walk_upper(new, Path::new(""), &mut |rel, meta| {
        let path = format!("/{}", rel.display());
        match fs::symlink_metadata(base.join(rel)) {
            Err(_) => {
                out.push(Change { path, kind: 1 });
            }
            Ok(old) => {
                let same = old.file_type() == meta.file_type()
                    && old.mode() == meta.mode()
                    && old.uid() == meta.uid()
                    && old.gid() == meta.gid()
                    && (meta.is_dir()
                        || (old.len() == meta.len()
                            && old.mtime() == meta.mtime()
                            && old.mtime_nsec() == meta.mtime_nsec()));
                if !same {
                    out.push(Change { path, kind: 0 });
                }
            }
        }
        true
    })?;
    if base.exists() {
        walk_upper(base, Path::new(""), &mut |rel, _| {
            if fs::symlink_metadata(new.join(rel)).is_err() {
                out.push(Change {
                    path: format!("/{}", rel.display()),
                    kind: 2,
                });
                return false;
            }
            true
        })?;
    }
    Ok(())
}

fn tempfile_free_empty() -> PathBuf {
    PathBuf::from("/nonexistent-wharf-empty")
}

/// Copies a tree preserving metadata (`cp -a` semantics) for the vfs snapshotter.
fn copy_tree(src: &Path, dst: &Path) -> Result<(), Error> {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", src.display()))
        .arg(dst)
        .status()
        .map_err(Error::io(dst))?;
    if !status.success() {
        return Err(Error::io(dst)(std::io::Error::other(format!(
            "cp -a {} failed",
            src.display()
        ))));
    }
    Ok(())
}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |p| p as usize)
}

/// A container's merged filesystem (`dir`) as a tar, as `docker export` writes it: symlinks
/// as links, never followed.
pub fn tar_tree(dir: &Path, out: &mut dyn Write) -> Result<(), Error> {
    tar_tree_mapped(dir, out, None)
}

/// Like [`tar_tree`]; with `ids` (a user-namespaced container's), entries are owned by the
/// ids the container sees.
pub fn tar_tree_mapped(dir: &Path, out: &mut dyn Write, ids: Option<&IdMap>) -> Result<(), Error> {
    let mut b = tar::Builder::new(out);
    append_tree(&mut b, Path::new("."), dir, ids).map_err(Error::io(dir))?;
    b.finish().map_err(Error::io(dir))
}

/// Cleans the scratch space at open, after a crash: first unmounts whatever a killed wharfd
/// left mounted under `tmp/` or `mnt/` (deepest first), then removes `mnt/`'s empty
/// mountpoints with rmdir only, and `tmp/`'s leftovers (interrupted extractions, never
/// referenced) recursively, but never an entry with a mount still below it: a recursive
/// delete must not reach a container's files through an overlay.
fn clear_scratch(root: &Path) {
    // mountinfo has canonical paths.
    let root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let (tmp, mnt) = (root.join("tmp"), root.join("mnt"));
    let mounted = |under: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = mount_points()
            .into_iter()
            .filter(|m| m.starts_with(under) && m != under)
            .collect();
        v.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
        v
    };
    for m in mounted(&tmp).into_iter().chain(mounted(&mnt)) {
        if let Err(e) = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH) {
            tracing::warn!("unmounting {} left by a crash: {e}", m.display());
        }
    }
    if let Ok(rd) = fs::read_dir(&mnt) {
        for e in rd.flatten() {
            let _ = fs::remove_dir(e.path());
        }
    }
    let still = mounted(&tmp);
    if let Ok(rd) = fs::read_dir(&tmp) {
        for e in rd.flatten() {
            let p = e.path();
            if let Some(m) = still.iter().find(|m| m.starts_with(&p)) {
                tracing::warn!(
                    "keeping {}: {} is still mounted below it",
                    p.display(),
                    m.display()
                );
                continue;
            }
            // Interrupted extractions are directories; a commit's spooled tar is a file.
            let _ = match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => fs::remove_dir_all(&p),
                _ => fs::remove_file(&p),
            };
        }
    }
}

/// Every mount point of this process's mount namespace (`/proc/self/mountinfo`'s fifth field,
/// octal escapes undone).
fn mount_points() -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|field| {
            let b = field.as_bytes();
            let mut out = Vec::with_capacity(b.len());
            let mut i = 0;
            while i < b.len() {
                let oct = b
                    .get(i + 1..i + 4)
                    .filter(|o| o.iter().all(|c| (b'0'..=b'7').contains(c)));
                match (b[i], oct) {
                    (b'\\', Some(o)) => {
                        out.push((o[0] - b'0') * 64 + (o[1] - b'0') * 8 + (o[2] - b'0'));
                        i += 4;
                    }
                    (c, _) => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            PathBuf::from(std::ffi::OsString::from_vec(out))
        })
        .collect()
}

/// Docker's name for a filesystem magic number (moby's `graphdriver.FsNames`), else the
/// number in hex.
pub fn filesystem_name(magic: u64) -> String {
    match magic {
        0xEF53 => "extfs",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x0102_1994 => "tmpfs",
        0x858_458F6 => "ramfs",
        0x794C_7630 => "overlayfs",
        0x2FC1_2FC1 => "zfs",
        0xF2F5_2010 => "f2fs",
        0x6969 => "nfs",
        0x7375_7245 => "coda",
        0x7371_7368 => "squashfs",
        0x6573_5546 => "fuse",
        0x0102_1997 => "v9fs",
        0x5346_544E => "ntfs",
        0x4D44 => "msdos",
        0x0061_6D6D => "aufs",
        0x7366_746e => "ecryptfs",
        0x2011_BAB0 => "exfat",
        other => return format!("<unknown 0x{other:x}>"),
    }
    .to_string()
}

/// Mounts an overlay whose options are relative to `dir`: a forked child changes into `dir`
/// and mounts (the mount is in the shared mount namespace), leaving this process's working
/// directory alone.
fn mount_overlay_from(dir: &Path, target: &Path, opts: &str) -> Result<(), nix::Error> {
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let cstr = |s: &[u8]| CString::new(s).map_err(|_| nix::Error::EINVAL);
    let dir_c = cstr(dir.as_os_str().as_bytes())?;
    let target_c = cstr(target.as_os_str().as_bytes())?;
    let opts_c = cstr(opts.as_bytes())?;
    let fstype = c"overlay";
    // SAFETY: the child makes only async-signal-safe system calls (chdir, mount, _exit) on
    // strings allocated before the fork, so no lock held by another thread is needed.
    match unsafe { fork() }? {
        ForkResult::Child => {
            // SAFETY: valid NUL-terminated strings that outlive the calls; _exit never returns.
            unsafe {
                let mut rc = libc::chdir(dir_c.as_ptr());
                if rc == 0 {
                    rc = libc::mount(
                        fstype.as_ptr(),
                        target_c.as_ptr(),
                        fstype.as_ptr(),
                        0,
                        opts_c.as_ptr().cast(),
                    );
                }
                let code = if rc == 0 {
                    0
                } else {
                    *libc::__errno_location()
                };
                libc::_exit(code)
            }
        }
        ForkResult::Parent { child } => match waitpid(child, None)? {
            WaitStatus::Exited(_, 0) => Ok(()),
            WaitStatus::Exited(_, e) => Err(nix::Error::from_raw(e)),
            _ => Err(nix::Error::EINTR),
        },
    }
}

/// Mounts an overlay with the new mount API, adding each lower layer separately.
fn mount_overlay_fsconfig(lowers: &[String], rw: &Path, target: &Path) -> Result<(), nix::Error> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let cstr = |s: &[u8]| CString::new(s).map_err(|_| nix::Error::EINVAL);
    let fsname = cstr(b"overlay")?;
    // SAFETY: fsopen takes a valid NUL-terminated name; we own the returned fd.
    let fsfd = unsafe {
        libc::syscall(
            libc::SYS_fsopen,
            fsname.as_ptr(),
            1, /* FSOPEN_CLOEXEC */
        )
    };
    if fsfd < 0 {
        return Err(nix::Error::last());
    }
    let fsfd = fsfd as libc::c_int;
    let set = |key: &str, val: &[u8]| -> Result<(), nix::Error> {
        let k = cstr(key.as_bytes())?;
        let v = cstr(val)?;
        // SAFETY: fsfd is an open fs context; key/value are valid NUL-terminated strings.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fsfd,
                1, /* FSCONFIG_SET_STRING */
                k.as_ptr(),
                v.as_ptr(),
                0,
            )
        };
        if rc < 0 {
            Err(nix::Error::last())
        } else {
            Ok(())
        }
    };
    let result = (|| {
        for l in lowers {
            set("lowerdir+", l.as_bytes())?;
        }
        set("upperdir", rw.join("diff").as_os_str().as_bytes())?;
        set("workdir", rw.join("work").as_os_str().as_bytes())?;
        // SAFETY: FSCONFIG_CMD_CREATE takes no key/value.
        if unsafe { libc::syscall(libc::SYS_fsconfig, fsfd, 6, 0usize, 0usize, 0) } < 0 {
            return Err(nix::Error::last());
        }
        // SAFETY: fsfd is a created fs context; fsmount returns a new fd we own.
        let mfd = unsafe {
            libc::syscall(libc::SYS_fsmount, fsfd, 1 /* FSMOUNT_CLOEXEC */, 0)
        };
        if mfd < 0 {
            return Err(nix::Error::last());
        }
        let mfd = mfd as libc::c_int;
        let t = cstr(target.as_os_str().as_bytes())?;
        let empty = cstr(b"")?;
        // SAFETY: moving the detached mount mfd onto target (a valid path string).
        let rc = unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                mfd,
                empty.as_ptr(),
                libc::AT_FDCWD,
                t.as_ptr(),
                4, /* MOVE_MOUNT_F_EMPTY_PATH */
            )
        };
        let err = nix::Error::last();
        // SAFETY: closing the fd we own.
        unsafe { libc::close(mfd) };
        if rc < 0 {
            Err(err)
        } else {
            Ok(())
        }
    })();
    // SAFETY: closing the fd we own.
    unsafe { libc::close(fsfd) };
    result
}

#[cfg(test)]
mod tests {
    use super::filesystem_name;

    #[test]
    fn filesystems_get_dockers_names() {
        assert_eq!(filesystem_name(0xEF53), "extfs");
        assert_eq!(filesystem_name(0x5846_5342), "xfs");
        assert_eq!(filesystem_name(0x1234), "<unknown 0x1234>");
        // A real statfs: /dev/shm is a tmpfs on every Linux host with glibc.
        if let Ok(st) = nix::sys::statfs::statfs("/dev/shm") {
            assert_eq!(filesystem_name(st.filesystem_type().0 as u64), "tmpfs");
        }
    }
}
