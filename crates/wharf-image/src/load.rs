//! `docker load`: a Docker archive (manifest.json) or an OCI image layout (index.json), as a
//! tar stream, optionally gzip/zstd compressed.
//!
//! The archive is read once. Small members (configs, manifests) stay in memory; large ones
//! (layers) are spooled to a scratch directory on the store's filesystem, hashed as they are
//! written, and checked against their names when those are digests (`blobs/sha256/<hex>`).
//! Layers are then extracted (in parallel with overlay, where layers are independent) and
//! checked against the config's diff ids; an uncompressed spooled layer becomes the content
//! store's blob by a rename. Images are recorded and tagged only once all their layers are in.
//! The scratch directory lives under the layer store's `tmp/`, which `open` empties, so a load
//! killed midway leaves nothing that is ever referenced.

use crate::digest::hex_of;
use crate::error::Error;
use crate::layers::{chain_id, random_suffix};
use crate::platform::{self, Platform};
use crate::reference::{self, Reference};
use crate::store::ImageStore;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

/// Members up to this size are kept in memory.
const SMALL: u64 = 1 << 20;

/// Options of `docker load`.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Which platform to take out of an image index (default: the host's).
    pub platform: Option<Platform>,
    /// Told when each missing layer starts and ends its extraction (`docker load`'s
    /// "Loading layer" bars). Called from the extracting threads.
    pub layer_progress: Option<LayerProgress>,
}

/// Told `(chain id, bytes done, bytes in all)` for one layer being loaded.
pub type LayerProgressFn = dyn Fn(&str, u64, u64) + Send + Sync;

/// A shared [`LayerProgressFn`].
#[derive(Clone)]
pub struct LayerProgress(pub std::sync::Arc<LayerProgressFn>);

impl std::fmt::Debug for LayerProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LayerProgress")
    }
}

fn bad(reason: impl Into<String>) -> Error {
    Error::InvalidArchive {
        reason: reason.into(),
    }
}

/// One member of the archive.
enum Member {
    Small(Vec<u8>),
    Spooled { path: PathBuf, digest: String },
}

/// The archive's members by normalized name.
struct Spool {
    dir: PathBuf,
    members: HashMap<String, Member>,
    aliases: HashMap<String, String>,
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A member name as a clean relative path (`a/b`), refusing absolute names and `..`.
fn member_name(raw: &Path) -> Result<Option<String>, Error> {
    let mut parts = Vec::new();
    for c in raw.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(Error::UnsafePath {
                    path: raw.display().to_string(),
                    reason: "name contains '..'",
                })
            }
            _ => {
                return Err(Error::UnsafePath {
                    path: raw.display().to_string(),
                    reason: "absolute name",
                })
            }
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// The digest a member's name promises (`blobs/sha256/<hex>`), if any.
fn named_digest(name: &str) -> Option<String> {
    let hex = name.strip_prefix("blobs/sha256/")?;
    (hex.len() == 64 && hex.bytes().all(|c| c.is_ascii_hexdigit())).then(|| format!("sha256:{hex}"))
}

/// Hashes what it writes.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Spool {
    fn read(tar: &mut dyn Read, dir: PathBuf) -> Result<Spool, Error> {
        fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
        let mut spool = Spool {
            dir,
            members: HashMap::new(),
            aliases: HashMap::new(),
        };
        let limit = crate::apply::space_limit(&spool.dir);
        let mut raw = crate::apply::decompress(tar).map_err(Error::io(&spool.dir))?;
        let mut archive = tar::Archive::new(&mut raw);
        let io_bad = |e: io::Error| bad(format!("reading the archive: {e}"));
        let mut total = 0u64;
        for entry in archive.entries().map_err(io_bad)? {
            let mut entry = entry.map_err(io_bad)?;
            let raw_name = entry.path().map_err(io_bad)?.into_owned();
            let Some(name) = member_name(&raw_name)? else {
                continue;
            };
            let kind = entry.header().entry_type();
            if kind.is_dir() || kind.is_pax_global_extensions() {
                continue;
            }
            if kind.is_symlink() || kind.is_hard_link() {
                // Docker archives link identical layers to one copy.
                let link = entry
                    .link_name()
                    .map_err(io_bad)?
                    .ok_or_else(|| bad(format!("link {name} has no target")))?;
                let base = if kind.is_symlink() {
                    Path::new(&name)
                        .parent()
                        .unwrap_or(Path::new(""))
                        .join(&link)
                } else {
                    link.into_owned()
                };
                let target = normalize_link(&base).ok_or_else(|| Error::UnsafePath {
                    path: name.clone(),
                    reason: "link points outside the archive",
                })?;
                spool.aliases.insert(name, target);
                continue;
            }
            if !kind.is_file() && kind != tar::EntryType::Continuous {
                return Err(Error::UnsafePath {
                    path: name,
                    reason: "only regular files, directories and links belong in an image archive (device node, fifo or other special file found)",
                });
            }
            let size = entry.size();
            total = total.saturating_add(size);
            if size > limit || total > limit {
                return Err(Error::TooLarge {
                    path: name,
                    size,
                    limit,
                });
            }
            let want = named_digest(&name);
            let member = if size <= SMALL {
                let mut data = Vec::with_capacity(size as usize);
                entry
                    .read_to_end(&mut data)
                    .map_err(|e| bad(format!("{name}: {e}")))?;
                if let Some(w) = &want {
                    let got = crate::digest::sha256(&data);
                    if got != *w {
                        return Err(Error::DigestMismatch {
                            what: name,
                            expected: w.clone(),
                            actual: got,
                        });
                    }
                }
                Member::Small(data)
            } else {
                let path = spool.dir.join(format!("m{}", spool.members.len()));
                let f = fs::File::create(&path).map_err(Error::io(&path))?;
                let mut w = HashingWriter {
                    inner: io::BufWriter::with_capacity(1 << 20, f),
                    hasher: Sha256::new(),
                };
                let n = io::copy(&mut entry, &mut w).map_err(|e| bad(format!("{name}: {e}")))?;
                if n != size {
                    return Err(bad(format!("{name}: truncated ({n} of {size} bytes)")));
                }
                w.inner.flush().map_err(Error::io(&path))?;
                let digest = format!("sha256:{}", hex::encode(w.hasher.finalize()));
                if let Some(want) = &want {
                    if *want != digest {
                        return Err(Error::DigestMismatch {
                            what: name,
                            expected: want.clone(),
                            actual: digest,
                        });
                    }
                }
                Member::Spooled { path, digest }
            };
            spool.members.insert(name, member);
        }
        Ok(spool)
    }

    fn get(&self, name: &str) -> Option<&Member> {
        let mut name = name.trim_start_matches("./").to_string();
        for _ in 0..16 {
            match self.aliases.get(&name) {
                Some(t) => name = t.clone(),
                None => break,
            }
        }
        self.members.get(&name)
    }

    fn bytes(&self, name: &str) -> Result<&[u8], Error> {
        match self.get(name) {
            Some(Member::Small(d)) => Ok(d),
            Some(Member::Spooled { .. }) => Err(bad(format!("{name} is too large for metadata"))),
            None => Err(bad(format!("missing {name}"))),
        }
    }

    fn json(&self, name: &str) -> Result<Value, Error> {
        serde_json::from_slice(self.bytes(name)?).map_err(|e| bad(format!("{name}: {e}")))
    }
}

fn normalize_link(p: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => parts.push(x.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

/// One image found in the archive.
struct Found {
    config: Vec<u8>,
    layers: Vec<String>,
    tags: Vec<String>,
}

impl ImageStore {
    /// Loads a Docker archive or an OCI image layout (as a tar). `progress` gets Docker's
    /// lines ("Loaded image: busybox:latest"); returns them too.
    pub fn load(
        &self,
        tar: &mut dyn Read,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Vec<String>, Error> {
        self.load_with(tar, &LoadOptions::default(), progress)
    }

    /// `load` with options (the platform to pick out of image indexes).
    pub fn load_with(
        &self,
        tar: &mut dyn Read,
        opts: &LoadOptions,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Vec<String>, Error> {
        let dir = self
            .layers()
            .root_tmp()
            .join(format!("load-{}", random_suffix()));
        let spool = Spool::read(tar, dir)?;
        let want = opts.platform.clone().unwrap_or_else(Platform::host);
        let found = if spool.get("manifest.json").is_some() {
            docker_images(&spool)?
        } else if spool.get("index.json").is_some() {
            oci_images(&spool, &want)?
        } else {
            return Err(bad(
                "neither manifest.json (docker archive) nor index.json (OCI layout) found",
            ));
        };
        let mut out = Vec::new();
        for img in found {
            // Held until the image is written: a concurrent rmi's collection keeps its layers.
            let lease = self.layers().lease();
            self.register_layers(
                &lease,
                &spool,
                &img.config,
                &img.layers,
                opts.layer_progress.as_ref(),
            )?;
            let refs: Vec<Reference> = img
                .tags
                .iter()
                .map(|t| reference::parse(t))
                .collect::<Result<_, _>>()?;
            let stored = self.put_image_raw(&img.config, &refs)?;
            let mut lines: Vec<String> = refs
                .iter()
                .map(|r| format!("Loaded image: {}", r.familiar_string()))
                .collect();
            if lines.is_empty() {
                lines.push(format!("Loaded image ID: {}", stored.id));
            }
            for l in lines {
                progress(&l);
                out.push(l);
            }
        }
        Ok(out)
    }

    /// Registers the layers an image needs, checking each against the config's diff ids.
    fn register_layers(
        &self,
        lease: &crate::layers::LayerLease,
        spool: &Spool,
        config: &[u8],
        files: &[String],
        progress: Option<&LayerProgress>,
    ) -> Result<(), Error> {
        let cfg: Value = serde_json::from_slice(config).map_err(|e| bad(format!("config: {e}")))?;
        let diff_ids: Vec<String> = cfg["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if diff_ids.len() != files.len() {
            return Err(bad(format!(
                "the config lists {} layers, the manifest {}",
                diff_ids.len(),
                files.len()
            )));
        }
        let mut jobs = Vec::new();
        let mut parent: Option<String> = None;
        for (want, file) in diff_ids.iter().zip(files) {
            let chain = chain_id(parent.as_deref(), want);
            lease.hold(&chain);
            if !self.layers().exists(&chain) {
                let member = spool
                    .get(file)
                    .ok_or_else(|| bad(format!("missing layer {file}")))?;
                jobs.push((
                    parent.clone(),
                    want.clone(),
                    file.clone(),
                    member,
                    chain.clone(),
                ));
            }
            parent = Some(chain);
        }
        type Job<'m> = (Option<String>, String, String, &'m Member, String);
        let run = |(parent, want, file, member, chain): &Job| {
            let size = match member {
                Member::Small(d) => d.len() as u64,
                Member::Spooled { path, .. } => std::fs::metadata(path).map_or(0, |m| m.len()),
            };
            if let Some(p) = progress {
                (p.0)(chain, 0, size);
            }
            let r = match member {
                Member::Small(d) => {
                    self.layers()
                        .register_checked(lease, parent.as_deref(), &d[..], Some(want))
                }
                Member::Spooled { path, digest } => {
                    self.layers()
                        .register_file(lease, parent.as_deref(), path, digest, want)
                }
            };
            if let (Ok(_), Some(p)) = (&r, progress) {
                (p.0)(chain, size, size);
            }
            r.map_err(|e| match e {
                Error::DigestMismatch { actual, .. } => Error::DigestMismatch {
                    what: format!("layer {file}"),
                    expected: want.clone(),
                    actual,
                },
                e => e,
            })
        };
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(jobs.len());
        if !self.layers().is_overlay() || workers <= 1 {
            // Full copies build on their parent's extracted tree: one after another.
            for j in &jobs {
                run(j)?;
            }
            return Ok(());
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let failed = std::sync::Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= jobs.len() || failed.lock().expect("lock").is_some() {
                        break;
                    }
                    if let Err(e) = run(&jobs[i]) {
                        failed.lock().expect("lock").get_or_insert(e);
                    }
                });
            }
        });
        match failed.into_inner().expect("lock") {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn docker_images(spool: &Spool) -> Result<Vec<Found>, Error> {
    let m = spool.json("manifest.json")?;
    let mut out = Vec::new();
    for entry in m
        .as_array()
        .ok_or_else(|| bad("manifest.json is not a list"))?
    {
        let cfg_name = entry["Config"]
            .as_str()
            .ok_or_else(|| bad("manifest entry without Config"))?;
        let cfg_name = member_name(Path::new(cfg_name))?.unwrap_or_default();
        let config = spool.bytes(&cfg_name)?.to_vec();
        if let Some(d) = named_digest(&cfg_name) {
            // Already checked when read; a legacy `<hex>.json` is checked by its id below.
            let _ = d;
        } else if let Some(hex) = cfg_name.strip_suffix(".json") {
            let got = crate::digest::sha256(&config);
            if hex.len() == 64 && hex_of(&got) != hex {
                return Err(Error::DigestMismatch {
                    what: cfg_name.clone(),
                    expected: format!("sha256:{hex}"),
                    actual: got,
                });
            }
        }
        let mut layers = Vec::new();
        for l in strings(&entry["Layers"]) {
            layers.push(member_name(Path::new(&l))?.unwrap_or_default());
        }
        out.push(Found {
            config,
            layers,
            tags: strings(&entry["RepoTags"]),
        });
    }
    Ok(out)
}

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

fn oci_images(spool: &Spool, want: &Platform) -> Result<Vec<Found>, Error> {
    let blob = |digest: &str| -> Result<Value, Error> {
        let name = format!("blobs/sha256/{}", hex_of(digest));
        spool.json(&name)
    };
    let index = spool.json("index.json")?;
    let mut out = Vec::new();
    let top = index["manifests"].as_array().cloned().unwrap_or_default();
    if top.is_empty() {
        return Err(bad("index.json lists no manifests"));
    }
    // Entries of one name for several platforms are one multi-platform image (as `docker
    // save` of such an image, or `skopeo copy --all`, write them): pick one platform.
    let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
    for d in top {
        let key = name_key(&d);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(d),
            None => groups.push((key, vec![d])),
        }
    }
    let mut top = Vec::new();
    for (_, entries) in groups {
        let platforms: HashSet<String> = entries
            .iter()
            .filter_map(|d| Platform::of_descriptor(d).map(|p| p.to_string()))
            .collect();
        if entries.len() > 1 && platforms.len() > 1 {
            top.push(platform::select(&entries, want)?.clone());
        } else {
            top.extend(entries);
        }
    }
    for desc in top {
        let tags = tags_of(&desc);
        let mut desc = desc;
        for _depth in 0..8 {
            let digest = desc["digest"]
                .as_str()
                .ok_or_else(|| bad("descriptor without digest"))?
                .to_string();
            let doc = blob(&digest)?;
            let is_index = doc["manifests"].is_array()
                || INDEX_TYPES.contains(&doc["mediaType"].as_str().unwrap_or_default())
                || INDEX_TYPES.contains(&desc["mediaType"].as_str().unwrap_or_default());
            if is_index {
                let ms = doc["manifests"].as_array().cloned().unwrap_or_default();
                desc = platform::select(&ms, want)?.clone();
                continue;
            }
            let cfg_digest = doc["config"]["digest"]
                .as_str()
                .ok_or_else(|| bad(format!("manifest {digest} has no config")))?;
            let config = spool
                .bytes(&format!("blobs/sha256/{}", hex_of(cfg_digest)))?
                .to_vec();
            let layers = doc["layers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|l| l["digest"].as_str())
                        .map(|d| format!("blobs/sha256/{}", hex_of(d)))
                        .collect()
                })
                .unwrap_or_default();
            out.push(Found {
                config,
                layers,
                tags,
            });
            break;
        }
    }
    Ok(out)
}

fn name_key(desc: &Value) -> String {
    let ann = &desc["annotations"];
    ann["io.containerd.image.name"]
        .as_str()
        .or(ann["org.opencontainers.image.ref.name"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The names an index entry gives its image: containerd's full name, or a ref.name that is a
/// whole reference (a bare tag like "latest" names no repository).
fn tags_of(desc: &Value) -> Vec<String> {
    let ann = &desc["annotations"];
    if let Some(n) = ann["io.containerd.image.name"].as_str() {
        return vec![n.to_string()];
    }
    match ann["org.opencontainers.image.ref.name"].as_str() {
        Some(n) if n.contains(':') || n.contains('/') => {
            if reference::parse(n).is_ok() {
                vec![n.to_string()]
            } else {
                vec![]
            }
        }
        _ => vec![],
    }
}
