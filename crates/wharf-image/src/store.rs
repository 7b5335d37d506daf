//! The image store: image configs by id (sha256 of the config JSON), tags, and the layer store.
//!
//! ```text
//! image/imagedb/<hex>        image config JSON (Docker schema 2 / OCI config), content-addressed
//! image/repositories.json    {"Repositories": {"busybox": {"busybox:latest": "sha256:..."}}}
//! layers/...                 see layers.rs
//! ```

use crate::digest::{hex_of, sha256, write_atomic};
use crate::error::Error;
use crate::layers::{chain_id, LayerStore};
use crate::reference::{self, Reference};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// An image as the Engine API describes it.
#[derive(Debug, Clone)]
pub struct Image {
    /// `sha256:<hex>` of the config JSON.
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    pub created: String,
    pub author: String,
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    /// The runtime config (Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, Volumes,
    /// Labels, StopSignal...) in Docker's JSON shape.
    pub config: Value,
    pub rootfs_diff_ids: Vec<String>,
    pub size: u64,
    pub top_layer: Option<String>,
    /// The raw config document.
    pub raw_config: Value,
}

impl Image {
    fn config_str(&self, key: &str) -> Option<&str> {
        self.config.get(key).and_then(Value::as_str)
    }

    /// `Config.User`, or "".
    pub fn user(&self) -> &str {
        self.config_str("User").unwrap_or_default()
    }

    fn config_strings(&self, key: &str) -> Vec<String> {
        self.config
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `Config.Env`.
    pub fn env(&self) -> Vec<String> {
        self.config_strings("Env")
    }
    /// `Config.Cmd`.
    pub fn cmd(&self) -> Vec<String> {
        self.config_strings("Cmd")
    }
    /// `Config.Entrypoint`.
    pub fn entrypoint(&self) -> Vec<String> {
        self.config_strings("Entrypoint")
    }
    /// `Config.WorkingDir`.
    pub fn working_dir(&self) -> &str {
        self.config_str("WorkingDir").unwrap_or_default()
    }
    /// `Config.StopSignal`.
    pub fn stop_signal(&self) -> Option<&str> {
        self.config_str("StopSignal")
    }
}

/// Options of `docker import`.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub reference: Option<String>,
    pub changes: Vec<String>,
    pub message: Option<String>,
    pub platform: Option<String>,
}

/// One item of `docker rmi`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeleteResponseItem {
    Untagged(String),
    Deleted(String),
}

/// One entry of `docker history`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryEntry {
    pub id: String,
    pub created: i64,
    pub created_by: String,
    pub tags: Vec<String>,
    pub size: u64,
    pub comment: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Repositories {
    #[serde(rename = "Repositories")]
    repositories: BTreeMap<String, BTreeMap<String, String>>,
}

/// Images, tags and layers under one data root.
pub struct ImageStore {
    imagedb: PathBuf,
    repos_path: PathBuf,
    repos: Mutex<Repositories>,
    layers: LayerStore,
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl ImageStore {
    /// Opens (creating if needed) the stores under `data_root`.
    pub fn open(data_root: &Path) -> Result<Self, Error> {
        Self::open_mapped(data_root, None)
    }

    /// Opens the stores of a daemon whose containers run with the id mapping `ids`
    /// (`--userns-remap`: see [`LayerStore::open_mapped`]).
    pub fn open_mapped(data_root: &Path, ids: Option<crate::IdMap>) -> Result<Self, Error> {
        let imagedb = data_root.join("image").join("imagedb");
        fs::create_dir_all(&imagedb).map_err(Error::io(&imagedb))?;
        let repos_path = data_root.join("image").join("repositories.json");
        let repos = match fs::read(&repos_path) {
            Ok(d) => serde_json::from_slice(&d).map_err(|source| Error::Metadata {
                path: repos_path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Repositories::default(),
            Err(e) => return Err(Error::io(&repos_path)(e)),
        };
        let layers = LayerStore::open_mapped(&data_root.join("layers"), ids)?;
        Ok(ImageStore {
            imagedb,
            repos_path,
            repos: Mutex::new(repos),
            layers,
        })
    }

    /// Where the config of image `id` is stored.
    pub fn imagedb_path(&self, id: &str) -> PathBuf {
        self.imagedb.join(hex_of(id))
    }

    /// The layer store.
    pub fn layers(&self) -> &LayerStore {
        &self.layers
    }

    fn save_repos(&self, repos: &Repositories) -> Result<(), Error> {
        let data = serde_json::to_vec(repos).expect("serializable");
        write_atomic(&self.repos_path, &data).map_err(Error::io(&self.repos_path))
    }

    /// The image's tags (`busybox:latest`), familiar and sorted.
    fn tags_of(repos: &Repositories, id: &str) -> Vec<String> {
        Self::refs_of(repos, id, false)
    }

    /// The image's digest references (`busybox@sha256:...`): what it was pulled or pushed as.
    fn digests_of(repos: &Repositories, id: &str) -> Vec<String> {
        Self::refs_of(repos, id, true)
    }

    fn refs_of(repos: &Repositories, id: &str, digests: bool) -> Vec<String> {
        let mut v: Vec<String> = repos
            .repositories
            .values()
            .flat_map(|m| m.iter())
            .filter(|(_, v)| v.as_str() == id)
            .filter_map(|(k, _)| reference::parse(k).ok())
            .filter(|r| r.digest.is_some() == digests)
            .map(|r| r.familiar_string())
            .collect();
        v.sort();
        v
    }

    /// Records that image `id` is `name@digest` in a registry (a pull or a push of `name`),
    /// for `RepoDigests` and for runs by digest.
    pub fn add_digest(&self, id: &str, name: &str, digest: &str) -> Result<(), Error> {
        let mut r = reference::parse(name)?;
        r.tag = None;
        r.digest = Some(digest.to_string());
        let mut repos = self.repos.lock().expect("repos lock");
        Self::set_tag(&mut repos, &r, id);
        self.save_repos(&repos)
    }

    /// Stores a config document and returns its image id.
    fn put_config(&self, config: &Value) -> Result<String, Error> {
        let data = serde_json::to_vec(config).expect("serializable");
        let id = sha256(&data);
        let p = self.imagedb.join(hex_of(&id));
        if !p.exists() {
            write_atomic(&p, &data).map_err(Error::io(&p))?;
        }
        Ok(id)
    }

    fn image_by_id(&self, id: &str, repos: &Repositories) -> Result<Image, Error> {
        let p = self.imagedb.join(hex_of(id));
        let data = fs::read(&p).map_err(|_| Error::NotFound {
            reference: id.to_string(),
        })?;
        let raw: Value =
            serde_json::from_slice(&data).map_err(|source| Error::Metadata { path: p, source })?;
        let diff_ids: Vec<String> = raw["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let mut top = None;
        for d in &diff_ids {
            top = Some(chain_id(top.as_deref(), d));
        }
        let size = match &top {
            Some(t) => self.layers.ancestry(t)?.iter().map(|l| l.size).sum(),
            None => 0,
        };
        let s = |k: &str| {
            raw.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Ok(Image {
            id: format!("sha256:{}", hex_of(id)),
            repo_tags: Self::tags_of(repos, &format!("sha256:{}", hex_of(id))),
            repo_digests: Self::digests_of(repos, &format!("sha256:{}", hex_of(id))),
            parent: s("parent"),
            comment: s("comment"),
            created: s("created"),
            author: s("author"),
            architecture: s("architecture"),
            os: s("os"),
            variant: raw.get("variant").and_then(Value::as_str).map(String::from),
            config: raw
                .get("config")
                .cloned()
                .unwrap_or(Value::Object(Map::new())),
            rootfs_diff_ids: diff_ids,
            size,
            top_layer: top,
            raw_config: raw,
        })
    }

    fn all_ids(&self) -> Vec<String> {
        fs::read_dir(&self.imagedb)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.len() == 64)
                    .map(|n| format!("sha256:{n}"))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn resolve_id(&self, name: &str, repos: &Repositories) -> Result<String, Error> {
        let not_found = || Error::NotFound {
            reference: name.to_string(),
        };
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        let is_hex = !hex.is_empty() && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        if name.starts_with("sha256:") && hex.len() == 64 && is_hex {
            return self
                .imagedb
                .join(hex)
                .exists()
                .then(|| name.to_string())
                .ok_or_else(not_found);
        }
        if let Ok(r) = reference::parse(name) {
            let key = r.to_string();
            if let Some(id) = repos
                .repositories
                .get(&format!("{}/{}", r.domain, r.path))
                .and_then(|m| m.get(&key))
            {
                return Ok(id.clone());
            }
        }
        if is_hex {
            let matches: Vec<String> = self
                .all_ids()
                .into_iter()
                .filter(|id| hex_of(id).starts_with(hex))
                .collect();
            return match matches.len() {
                0 => Err(not_found()),
                1 => Ok(matches.into_iter().next().expect("one")),
                _ => Err(Error::Ambiguous {
                    reference: name.to_string(),
                }),
            };
        }
        reference::parse(name)?;
        Err(not_found())
    }

    /// Resolves a reference, a full or short image id.
    pub fn resolve(&self, name_or_id: &str) -> Result<Image, Error> {
        let repos = self.repos.lock().expect("repos lock");
        let id = self.resolve_id(name_or_id, &repos)?;
        self.image_by_id(&id, &repos)
    }

    /// All images.
    pub fn list(&self) -> Result<Vec<Image>, Error> {
        let repos = self.repos.lock().expect("repos lock");
        let mut out = Vec::new();
        for id in self.all_ids() {
            // One broken image (a config that no longer parses, a layer gone) must not hide
            // every other from `docker images`, `system df` and `image prune`.
            match self.image_by_id(&id, &repos) {
                Ok(img) => out.push(img),
                Err(e) => tracing::warn!("image {id} is broken, left out of the list: {e}"),
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(out)
    }

    fn set_tag(repos: &mut Repositories, r: &Reference, id: &str) {
        repos
            .repositories
            .entry(format!("{}/{}", r.domain, r.path))
            .or_default()
            .insert(r.to_string(), id.to_string());
    }

    /// Tags the image `source` as `target`.
    pub fn tag(&self, source: &str, target: &str) -> Result<(), Error> {
        let r = reference::parse(target)?;
        let mut repos = self.repos.lock().expect("repos lock");
        let id = self.resolve_id(source, &repos)?;
        Self::set_tag(&mut repos, &r, &id);
        self.save_repos(&repos)
    }

    /// `docker import`: a rootfs tar becomes a one-layer image.
    pub fn import(&self, tar: &mut dyn Read, opts: &ImportOptions) -> Result<Image, Error> {
        let target = opts
            .reference
            .as_deref()
            .map(reference::parse)
            .transpose()?;
        let mut config = Map::new();
        for change in &opts.changes {
            apply_change(&mut config, change)?;
        }
        let lease = self.layers.lease();
        let layer = self.layers.register(&lease, None, tar)?;
        let (os, arch) = match opts.platform.as_deref() {
            Some(p) if !p.is_empty() => {
                let mut it = p.split('/');
                (
                    it.next().unwrap_or("linux").to_string(),
                    it.next().unwrap_or("amd64").to_string(),
                )
            }
            _ => (
                "linux".to_string(),
                crate::platform::Platform::host().architecture,
            ),
        };
        let created = now_rfc3339();
        let comment = opts.message.clone().unwrap_or_default();
        let doc = json!({
            "architecture": arch,
            "os": os,
            "created": created,
            "comment": if comment.is_empty() { "Imported from -".to_string() } else { comment.clone() },
            "config": Value::Object(config),
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
            "history": [{"created": created, "comment": if comment.is_empty() { "Imported from -".to_string() } else { comment }}],
        });
        let id = self.put_config(&doc)?;
        let mut repos = self.repos.lock().expect("repos lock");
        if let Some(r) = &target {
            Self::set_tag(&mut repos, r, &id);
            self.save_repos(&repos)?;
        }
        self.image_by_id(&id, &repos)
    }

    /// Stores a config document exactly as given (its bytes define the image id: `load`).
    pub fn put_image_raw(&self, config: &[u8], tags: &[Reference]) -> Result<Image, Error> {
        let _: Value = serde_json::from_slice(config).map_err(|e| Error::InvalidArchive {
            reason: format!("image config is not JSON: {e}"),
        })?;
        let id = sha256(config);
        let p = self.imagedb.join(hex_of(&id));
        if !p.exists() {
            write_atomic(&p, config).map_err(Error::io(&p))?;
        }
        let mut repos = self.repos.lock().expect("repos lock");
        if !tags.is_empty() {
            for r in tags {
                Self::set_tag(&mut repos, r, &id);
            }
            self.save_repos(&repos)?;
        }
        self.image_by_id(&id, &repos)
    }

    /// Stores an image whose layers are already registered (load, commit, build).
    pub fn put_image(&self, config: &Value, tags: &[Reference]) -> Result<Image, Error> {
        let id = self.put_config(config)?;
        let mut repos = self.repos.lock().expect("repos lock");
        if !tags.is_empty() {
            for r in tags {
                Self::set_tag(&mut repos, r, &id);
            }
            self.save_repos(&repos)?;
        }
        self.image_by_id(&id, &repos)
    }

    /// `docker rmi`. `in_use(id)` names a container using the image, if any.
    pub fn remove(
        &self,
        name_or_id: &str,
        force: bool,
        in_use: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<DeleteResponseItem>, Error> {
        let mut repos = self.repos.lock().expect("repos lock");
        let id = self.resolve_id(name_or_id, &repos)?;
        let tags = Self::tags_of(&repos, &id);
        let digests = Self::digests_of(&repos, &id);
        let by_ref = reference::parse(name_or_id).ok().filter(|r| {
            let f = r.familiar_string();
            tags.contains(&f) || digests.contains(&f)
        });
        let mut out = Vec::new();
        if let Some(r) = &by_ref {
            let named = r.familiar_string();
            let repo_of = |t: &str| reference::parse(t).map(|x| x.familiar_name()).ok();
            // A repository's digest references go with its last tag, as in dockerd.
            let last_tag = r.digest.is_none()
                && !tags
                    .iter()
                    .any(|t| *t != named && repo_of(t) == Some(r.familiar_name()));
            let goes_with = |t: &String| {
                *t == named
                    || (last_tag && digests.contains(t) && repo_of(t) == Some(r.familiar_name()))
            };
            if tags.iter().chain(&digests).any(|t| !goes_with(t)) {
                // Other references keep the image: only untag.
                let mut out = Vec::new();
                for t in tags.iter().chain(&digests).filter(|t| goes_with(t)) {
                    if let Ok(x) = reference::parse(t) {
                        Self::remove_tag(&mut repos, &x);
                        out.push(DeleteResponseItem::Untagged(t.clone()));
                    }
                }
                self.save_repos(&repos)?;
                return Ok(out);
            }
            if let (Some(c), false) = (in_use(&id), force) {
                return Err(Error::InUse {
                    reference: name_or_id.to_string(),
                    container: c[..12.min(c.len())].to_string(),
                    image: hex_of(&id)[..12].to_string(),
                });
            }
        } else {
            if tags.len() > 1 && !force {
                return Err(Error::MultipleRefs {
                    image: hex_of(&id)[..12].to_string(),
                });
            }
            if let (Some(c), false) = (in_use(&id), force) {
                return Err(Error::InUse {
                    reference: name_or_id.to_string(),
                    container: c[..12.min(c.len())].to_string(),
                    image: hex_of(&id)[..12].to_string(),
                });
            }
        }
        for t in tags.iter().chain(&digests) {
            if let Ok(r) = reference::parse(t) {
                Self::remove_tag(&mut repos, &r);
                out.push(DeleteResponseItem::Untagged(t.clone()));
            }
        }
        self.save_repos(&repos)?;
        if in_use(&id).is_none() {
            let p = self.imagedb.join(hex_of(&id));
            fs::remove_file(&p).map_err(Error::io(&p))?;
            out.push(DeleteResponseItem::Deleted(id));
            drop(repos);
            self.gc_layers()?;
        }
        Ok(out)
    }

    fn remove_tag(repos: &mut Repositories, r: &Reference) {
        let repo = format!("{}/{}", r.domain, r.path);
        if let Some(m) = repos.repositories.get_mut(&repo) {
            m.remove(&r.to_string());
            if m.is_empty() {
                repos.repositories.remove(&repo);
            }
        }
    }

    /// Removes layers no image and no container layer uses.
    pub fn gc_layers(&self) -> Result<u64, Error> {
        let repos = self.repos.lock().expect("repos lock");
        let mut keep = std::collections::HashSet::new();
        for id in self.all_ids() {
            if let Ok(img) = self.image_by_id(&id, &repos) {
                if let Some(t) = img.top_layer {
                    for l in self.layers.ancestry(&t).unwrap_or_default() {
                        keep.insert(l.chain_id);
                    }
                }
            }
        }
        for parent in self.layers.rw_parents() {
            for l in self.layers.ancestry(&parent).unwrap_or_default() {
                keep.insert(l.chain_id);
            }
        }
        self.layers.remove_unused(&keep)
    }

    /// `docker history`.
    pub fn history(&self, name_or_id: &str) -> Result<Vec<HistoryEntry>, Error> {
        let img = self.resolve(name_or_id)?;
        let hist = img.raw_config["history"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let layers: Vec<_> = match &img.top_layer {
            Some(t) => {
                let mut a = self.layers.ancestry(t)?;
                a.reverse();
                a
            }
            None => vec![],
        };
        let mut li = 0;
        let mut out = Vec::new();
        for h in &hist {
            let empty = h["empty_layer"].as_bool().unwrap_or(false);
            let size = if empty {
                0
            } else {
                let s = layers.get(li).map(|l| l.size).unwrap_or(0);
                li += 1;
                s
            };
            out.push(HistoryEntry {
                id: "<missing>".into(),
                created: h["created"]
                    .as_str()
                    .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                    .map(|t| t.timestamp())
                    .unwrap_or(0),
                created_by: h["created_by"].as_str().unwrap_or_default().to_string(),
                tags: vec![],
                size,
                comment: h["comment"].as_str().unwrap_or_default().to_string(),
            });
        }
        out.reverse();
        if let Some(first) = out.first_mut() {
            first.id = img.id.clone();
            first.tags = img.repo_tags.clone();
        }
        Ok(out)
    }
}

/// Parses a Dockerfile-style argument list: JSON array form or shell form.
fn exec_form(change: &str, rest: &str, shell: bool) -> Result<Vec<String>, Error> {
    let rest = rest.trim();
    if rest.starts_with('[') {
        serde_json::from_str(rest).map_err(|e| Error::InvalidChange {
            change: change.to_string(),
            reason: e.to_string(),
        })
    } else if shell {
        Ok(vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
    } else {
        Ok(rest.split_whitespace().map(String::from).collect())
    }
}

/// The object under `key` in `config` (made when absent or null), or an error naming the
/// change when the config holds something else there: a `--change` never panics on a config
/// whose ExposedPorts, Volumes or Labels came in as a string or a list.
fn object_field<'a>(
    config: &'a mut Map<String, Value>,
    key: &str,
    change: &str,
) -> Result<&'a mut Map<String, Value>, Error> {
    let v = config
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()));
    if v.is_null() {
        *v = Value::Object(Map::new());
    }
    v.as_object_mut().ok_or_else(|| Error::InvalidChange {
        change: change.to_string(),
        reason: format!("the config's {key} is not an object"),
    })
}

/// Applies one `--change` line (a Dockerfile instruction) to a config object.
pub fn apply_change(config: &mut Map<String, Value>, change: &str) -> Result<(), Error> {
    let (instr, rest) = change
        .trim()
        .split_once(char::is_whitespace)
        .unwrap_or((change.trim(), ""));
    let invalid = |reason: &str| Error::InvalidChange {
        change: change.to_string(),
        reason: reason.to_string(),
    };
    let rest = rest.trim();
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => {
            config.insert("Cmd".into(), json!(exec_form(change, rest, true)?));
        }
        "ENTRYPOINT" => {
            config.insert("Entrypoint".into(), json!(exec_form(change, rest, true)?));
        }
        "ENV" => {
            let pairs: Vec<(String, String)> = if rest.contains('=') {
                rest.split_whitespace()
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                        (k.to_string(), v.trim_matches('"').to_string())
                    })
                    .collect()
            } else {
                let (k, v) = rest.split_once(char::is_whitespace).ok_or_else(|| invalid("ENV needs a name and a value"))?;
                vec![(k.to_string(), v.trim().to_string())]
            };
            let env = config.entry("Env").or_insert_with(|| json!([]));
            let arr = env.as_array_mut().ok_or_else(|| invalid("Env is not a list"))?;
            for (k, v) in pairs {
                arr.retain(|e| e.as_str().is_none_or(|s| s.split('=').next() != Some(k.as_str())));
                arr.push(json!(format!("{k}={v}")));
            }
        }
        "WORKDIR" => {
            config.insert("WorkingDir".into(), json!(rest));
        }
        "USER" => {
            config.insert("User".into(), json!(rest));
        }
        "STOPSIGNAL" => {
            config.insert("StopSignal".into(), json!(rest));
        }
        "EXPOSE" => {
            let ports = object_field(config, "ExposedPorts", change)?;
            for p in rest.split_whitespace() {
                let p = if p.contains('/') { p.to_string() } else { format!("{p}/tcp") };
                ports.insert(p, json!({}));
            }
        }
        "VOLUME" => {
            let vols = exec_form(change, rest, false)?;
            let map = object_field(config, "Volumes", change)?;
            for v in vols {
                map.insert(v, json!({}));
            }
        }
        "LABEL" => {
            let mut pairs = Vec::new();
            for kv in rest.split_whitespace() {
                let (k, v) = kv.split_once('=').ok_or_else(|| invalid("LABEL needs key=value"))?;
                pairs.push((k.trim_matches('"').to_string(), v.trim_matches('"')));
            }
            let labels = object_field(config, "Labels", change)?;
            for (k, v) in pairs {
                labels.insert(k, json!(v));
            }
        }
        "ONBUILD" => {
            let list = config.entry("OnBuild").or_insert_with(|| json!([]));
            if list.is_null() {
                *list = json!([]);
            }
            list.as_array_mut()
                .ok_or_else(|| Error::InvalidChange {
                    change: change.to_string(),
                    reason: "the config's OnBuild is not a list".into(),
                })?
                .push(json!(rest));
        }
        _ => {
            return Err(invalid(
                "only CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR are allowed",
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_follow_dockerfile_syntax() {
        let mut c = Map::new();
        for ch in [
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /bin/init --flag",
            "ENV A=1 B=two",
            "ENV A 3",
            "WORKDIR /srv",
            "EXPOSE 80 53/udp",
            "LABEL k=v",
            "VOLUME /data",
        ] {
            apply_change(&mut c, ch).unwrap();
        }
        assert_eq!(c["Cmd"], json!(["sh", "-c", "echo hi"]));
        assert_eq!(
            c["Entrypoint"],
            json!(["/bin/sh", "-c", "/bin/init --flag"])
        );
        assert_eq!(c["Env"], json!(["B=two", "A=3"]));
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["Volumes"], json!({"/data": {}}));
        assert!(apply_change(&mut c, "RUN rm -rf /").is_err());
    }

    #[test]
    fn a_change_onto_a_field_of_the_wrong_shape_is_an_error_not_a_panic() {
        for (key, change) in [
            ("ExposedPorts", "EXPOSE 80"),
            ("Volumes", "VOLUME /data"),
            ("Labels", "LABEL a=b"),
            ("OnBuild", "ONBUILD RUN true"),
        ] {
            for bad in [json!("x"), json!(7), json!(["a"])] {
                let bad = if key == "OnBuild" && bad.is_array() {
                    json!({})
                } else {
                    bad
                };
                let mut c = Map::new();
                c.insert(key.into(), bad.clone());
                let e = apply_change(&mut c, change).expect_err(&format!("{key}={bad}"));
                assert!(e.to_string().contains(key), "{e}");
                assert_eq!(c[key], bad, "the config is left as it was");
            }
            // null counts as absent, as in Docker's JSON.
            let mut c = Map::new();
            c.insert(key.into(), Value::Null);
            apply_change(&mut c, change).unwrap();
        }
    }
}
