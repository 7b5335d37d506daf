//! `docker save`: Docker's archive format (manifest.json, repositories, `<config>.json`,
//! `<diff-id>/layer.tar`). Loading is in `load.rs`, OCI layouts are written by `oci_save.rs`.

use crate::digest::hex_of;
use crate::error::Error;
use crate::layers::chain_id;
use crate::reference;
use crate::store::ImageStore;
use serde_json::json;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;

impl ImageStore {
    /// The named images (references or ids), each once, with the tags the names used.
    pub(crate) fn resolve_for_save(
        &self,
        names: &[String],
    ) -> Result<Vec<(crate::Image, Vec<String>)>, Error> {
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
        Ok(images)
    }

    /// Writes the named images (references or ids) as one Docker archive.
    pub fn save(&self, names: &[String], out: &mut dyn Write) -> Result<(), Error> {
        let images = self.resolve_for_save(names)?;
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
}
