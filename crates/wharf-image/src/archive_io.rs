//! `docker save` / `docker load`: Docker's archive format (manifest.json, repositories,
//! `<config>.json`, `<diff-id>/layer.tar`), and loading OCI image layouts (index.json).
//! Layers are verified against the config's diff ids; nothing is tagged unless every layer of
//! the image arrived whole.

use crate::apply::{self, Whiteouts};
use crate::digest::hex_of;
use crate::error::Error;
use crate::layers::chain_id;
use crate::reference::{self, Reference};
use crate::store::ImageStore;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::Path;

fn bad(reason: impl Into<String>) -> Error {
    Error::InvalidArchive {
        reason: reason.into(),
    }
}

impl ImageStore {
    /// Writes the named images (references or ids) as one Docker archive.
    pub fn save(&self, names: &[String], out: &mut dyn Write) -> Result<(), Error> {
        let mut images: Vec<(crate::Image, Vec<String>)> = Vec::new();
        for n in names {
            let img = self.resolve(n)?;
            let tag = reference::parse(n)
                .ok()
                .map(|r| r.familiar_string())
                .filter(|t| img.repo_tags.contains(t));
            match images.iter_mut().find(|(i, _)| i.id == img.id) {
                Some((_, tags)) => tags.extend(tag),
                None => images.push((img, tag.into_iter().collect())),
            }
        }
        let mut b = tar::Builder::new(out);
        let mut manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut written = std::collections::HashSet::new();
        let append = |b: &mut tar::Builder<&mut dyn Write>, name: &str, data: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            b.append_data(&mut h, name, data)
        };
        for (img, tags) in &images {
            let hex = hex_of(&img.id).to_string();
            let config = serde_json::to_vec(&img.raw_config).expect("serializable");
            // The stored bytes, not a re-serialization: they define the id.
            let stored = fs::read(self.imagedb_path(&img.id)).unwrap_or(config);
            append(&mut b, &format!("{hex}.json"), &stored).map_err(Error::io("save"))?;
            let mut layers = Vec::new();
            let mut chain: Option<String> = None;
            for d in &img.rootfs_diff_ids {
                let c = chain_id(chain.as_deref(), d);
                let name = format!("{}/layer.tar", hex_of(d));
                if written.insert(name.clone()) {
                    let p = self.layers().layer_tar(&c);
                    let mut f = fs::File::open(&p).map_err(Error::io(&p))?;
                    let len = f.metadata().map_err(Error::io(&p))?.len();
                    let mut h = tar::Header::new_gnu();
                    h.set_size(len);
                    h.set_mode(0o644);
                    h.set_uid(0);
                    h.set_gid(0);
                    h.set_mtime(0);
                    b.append_data(&mut h, &name, &mut f)
                        .map_err(Error::io(&p))?;
                }
                layers.push(name);
                chain = Some(c);
            }
            for t in tags {
                if let Ok(r) = reference::parse(t) {
                    repositories
                        .entry(r.familiar_name())
                        .or_default()
                        .insert(r.tag.clone().unwrap_or_default(), hex.clone());
                }
            }
            manifest
                .push(json!({"Config": format!("{hex}.json"), "RepoTags": tags, "Layers": layers}));
        }
        append(
            &mut b,
            "manifest.json",
            json!(manifest).to_string().as_bytes(),
        )
        .map_err(Error::io("save"))?;
        append(
            &mut b,
            "repositories",
            json!(repositories).to_string().as_bytes(),
        )
        .map_err(Error::io("save"))?;
        b.finish().map_err(Error::io("save"))
    }

    /// Loads a Docker archive or an OCI image layout (as a tar). `progress` gets Docker's
    /// lines ("Loaded image: busybox:latest"); returns them too.
    pub fn load(
        &self,
        tar: &mut dyn Read,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Vec<String>, Error> {
        let tmp = self
            .layers()
            .root_tmp()
            .join(format!("load-{}", crate::layers::random_suffix()));
        fs::create_dir_all(&tmp).map_err(Error::io(&tmp))?;
        let r = (|| {
            let mut raw = apply::decompress(tar).map_err(Error::io(&tmp))?;
            apply::apply_tar(&mut raw, &tmp, Whiteouts::Literal)?;
            if tmp.join("manifest.json").exists() {
                self.load_docker(&tmp, progress)
            } else if tmp.join("index.json").exists() {
                self.load_oci(&tmp, progress)
            } else {
                Err(bad(
                    "neither manifest.json (docker archive) nor index.json (OCI layout) found",
                ))
            }
        })();
        let _ = fs::remove_dir_all(&tmp);
        r
    }

    fn register_all(&self, dir: &Path, config: &[u8], layer_files: &[String]) -> Result<(), Error> {
        let cfg: Value = serde_json::from_slice(config).map_err(|e| bad(format!("config: {e}")))?;
        let diff_ids: Vec<String> = cfg["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if diff_ids.len() != layer_files.len() {
            return Err(bad(format!(
                "the config lists {} layers, the manifest {}",
                diff_ids.len(),
                layer_files.len()
            )));
        }
        let mut parent: Option<String> = None;
        for (want, file) in diff_ids.iter().zip(layer_files) {
            let chain = chain_id(parent.as_deref(), want);
            if !self.layers().exists(&chain) {
                let p = safe_join(dir, file)?;
                let f = fs::File::open(&p).map_err(|_| bad(format!("missing layer {file}")))?;
                let info = self.layers().register(parent.as_deref(), f)?;
                if info.diff_id != *want {
                    let _ = self.layers().remove_layer(&info.chain_id);
                    return Err(Error::InvalidArchive {
                        reason: format!(
                            "layer {file}: diff id {} does not match the config's {want}",
                            info.diff_id
                        ),
                    });
                }
            }
            parent = Some(chain);
        }
        Ok(())
    }

    fn finish_load(
        &self,
        config: &[u8],
        tags: &[String],
        progress: &mut dyn FnMut(&str),
        out: &mut Vec<String>,
    ) -> Result<(), Error> {
        let refs: Vec<Reference> = tags
            .iter()
            .map(|t| reference::parse(t))
            .collect::<Result<_, _>>()?;
        let img = self.put_image_raw(config, &refs)?;
        if refs.is_empty() {
            let l = format!("Loaded image ID: {}", img.id);
            progress(&l);
            out.push(l);
        }
        for r in refs {
            let l = format!("Loaded image: {}", r.familiar_string());
            progress(&l);
            out.push(l);
        }
        Ok(())
    }

    fn load_docker(
        &self,
        dir: &Path,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Vec<String>, Error> {
        let m: Value = serde_json::from_slice(
            &fs::read(dir.join("manifest.json")).map_err(Error::io(dir.join("manifest.json")))?,
        )
        .map_err(|e| bad(format!("manifest.json: {e}")))?;
        let mut out = Vec::new();
        for entry in m
            .as_array()
            .ok_or_else(|| bad("manifest.json is not a list"))?
        {
            let cfg_name = entry["Config"]
                .as_str()
                .ok_or_else(|| bad("manifest entry without Config"))?;
            let config = fs::read(safe_join(dir, cfg_name)?)
                .map_err(|_| bad(format!("missing {cfg_name}")))?;
            let layers: Vec<String> = entry["Layers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            self.register_all(dir, &config, &layers)?;
            let tags: Vec<String> = entry["RepoTags"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            self.finish_load(&config, &tags, progress, &mut out)?;
        }
        Ok(out)
    }

    fn load_oci(&self, dir: &Path, progress: &mut dyn FnMut(&str)) -> Result<Vec<String>, Error> {
        let blob = |digest: &str| -> Result<Vec<u8>, Error> {
            let p = safe_join(dir, &format!("blobs/sha256/{}", hex_of(digest)))?;
            let data = fs::read(&p).map_err(|_| bad(format!("missing blob {digest}")))?;
            if crate::digest::sha256(&data) != digest {
                return Err(Error::InvalidArchive {
                    reason: format!("blob {digest} does not match its digest"),
                });
            }
            Ok(data)
        };
        let index: Value =
            serde_json::from_slice(&fs::read(dir.join("index.json")).map_err(Error::io(dir))?)
                .map_err(|e| bad(format!("index.json: {e}")))?;
        let mut out = Vec::new();
        let mut queue: Vec<(Value, Vec<String>)> = index["manifests"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|d| {
                let mut tags = Vec::new();
                for k in [
                    "io.containerd.image.name",
                    "org.opencontainers.image.ref.name",
                ] {
                    if let Some(n) = d["annotations"][k].as_str() {
                        // A bare ref.name is only a tag in OCI layouts ("latest").
                        if k.ends_with("ref.name") && !n.contains(':') && !n.contains('/') {
                            continue;
                        }
                        tags.push(n.to_string());
                        break;
                    }
                }
                (d, tags)
            })
            .collect();
        while let Some((desc, tags)) = queue.pop() {
            let digest = desc["digest"]
                .as_str()
                .ok_or_else(|| bad("descriptor without digest"))?;
            let doc: Value = serde_json::from_slice(&blob(digest)?)
                .map_err(|e| bad(format!("manifest {digest}: {e}")))?;
            if let Some(ms) = doc["manifests"].as_array() {
                // An index: the platform this host runs.
                let pick = ms
                    .iter()
                    .find(|m| {
                        m["platform"]["os"] == "linux" && m["platform"]["architecture"] == "amd64"
                    })
                    .or_else(|| ms.first())
                    .ok_or_else(|| bad("empty image index"))?;
                queue.push((pick.clone(), tags));
                continue;
            }
            let cfg_digest = doc["config"]["digest"]
                .as_str()
                .ok_or_else(|| bad("manifest without config"))?;
            let config = blob(cfg_digest)?;
            let layers: Vec<String> = doc["layers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|l| {
                            l["digest"]
                                .as_str()
                                .map(|d| format!("blobs/sha256/{}", hex_of(d)))
                        })
                        .collect()
                })
                .unwrap_or_default();
            self.register_all(dir, &config, &layers)?;
            self.finish_load(&config, &tags, progress, &mut out)?;
        }
        Ok(out)
    }
}

/// `dir/name` for a name from an archive, refusing absolute names and `..`.
fn safe_join(dir: &Path, name: &str) -> Result<std::path::PathBuf, Error> {
    let p = Path::new(name);
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(Error::UnsafePath {
            path: name.to_string(),
            reason: "archive member outside the archive",
        });
    }
    Ok(dir.join(p))
}
