//! Saving images as an OCI image layout (oci-layout, index.json, blobs/sha256/...), as a tar
//! stream or into a directory, readable by `skopeo ... oci:` and `umoci`.
//!
//! Layers are the stored uncompressed tars (digest = diff id); configs are the stored bytes
//! (digest = image id); each image gets a manifest, and index.json names it with
//! `org.opencontainers.image.ref.name` (the tag) and `io.containerd.image.name` (the full
//! reference), as `docker save` does since Docker 25.

use crate::digest::{hex_of, sha256, write_atomic};
use crate::error::Error;
use crate::layers::chain_id;
use crate::reference;
use crate::store::ImageStore;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the layout's files go.
trait Sink {
    fn bytes(&mut self, name: &str, data: &[u8]) -> Result<(), Error>;
    fn file(&mut self, name: &str, src: &Path) -> Result<(), Error>;
}

struct TarSink<'a> {
    b: tar::Builder<&'a mut dyn Write>,
}

fn header(len: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(len);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

impl Sink for TarSink<'_> {
    fn bytes(&mut self, name: &str, data: &[u8]) -> Result<(), Error> {
        self.b
            .append_data(&mut header(data.len() as u64), name, data)
            .map_err(Error::io(name))
    }
    fn file(&mut self, name: &str, src: &Path) -> Result<(), Error> {
        let mut f = fs::File::open(src).map_err(Error::io(src))?;
        let len = f.metadata().map_err(Error::io(src))?.len();
        self.b
            .append_data(&mut header(len), name, &mut f)
            .map_err(Error::io(src))
    }
}

struct DirSink {
    root: PathBuf,
}

impl Sink for DirSink {
    fn bytes(&mut self, name: &str, data: &[u8]) -> Result<(), Error> {
        let p = self.root.join(name);
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).map_err(Error::io(d))?;
        }
        write_atomic(&p, data).map_err(Error::io(&p))
    }
    fn file(&mut self, name: &str, src: &Path) -> Result<(), Error> {
        let p = self.root.join(name);
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).map_err(Error::io(d))?;
        }
        // Same filesystem: a hard link costs nothing; elsewhere, a copy.
        if p.exists() || fs::hard_link(src, &p).is_ok() {
            return Ok(());
        }
        fs::copy(src, &p).map(|_| ()).map_err(Error::io(&p))
    }
}

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

impl ImageStore {
    /// Writes the named images as an OCI image layout in a tar stream (`oci-archive:`).
    pub fn save_oci(&self, names: &[String], out: &mut dyn Write) -> Result<(), Error> {
        let mut sink = TarSink {
            b: tar::Builder::new(out),
        };
        self.save_oci_to(names, &mut sink)?;
        sink.b.finish().map_err(Error::io("save"))
    }

    /// Writes the named images as an OCI image layout directory (`oci:dir`), creating it.
    pub fn save_oci_dir(&self, names: &[String], dir: &Path) -> Result<(), Error> {
        fs::create_dir_all(dir).map_err(Error::io(dir))?;
        self.save_oci_to(
            names,
            &mut DirSink {
                root: dir.to_path_buf(),
            },
        )
    }

    fn save_oci_to(&self, names: &[String], sink: &mut dyn Sink) -> Result<(), Error> {
        let images = self.resolve_for_save(names)?;
        sink.bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let mut written = HashSet::new();
        let mut index = Vec::new();
        for (img, tags) in &images {
            let cfg_path = self.imagedb_path(&img.id);
            let config = fs::read(&cfg_path).map_err(Error::io(&cfg_path))?;
            let cfg_name = format!("blobs/sha256/{}", hex_of(&img.id));
            if written.insert(cfg_name.clone()) {
                sink.bytes(&cfg_name, &config)?;
            }
            let mut layers = Vec::new();
            let mut chain: Option<String> = None;
            for d in &img.rootfs_diff_ids {
                let c = chain_id(chain.as_deref(), d);
                let p = self.layers().layer_tar(&c);
                let size = fs::metadata(&p).map_err(Error::io(&p))?.len();
                let name = format!("blobs/sha256/{}", hex_of(d));
                if written.insert(name.clone()) {
                    sink.file(&name, &p)?;
                }
                layers.push(json!({"mediaType": LAYER, "digest": d, "size": size}));
                chain = Some(c);
            }
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {"mediaType": CONFIG, "digest": img.id, "size": config.len()},
                "layers": layers,
            });
            let mbytes = serde_json::to_vec(&manifest).expect("serializable");
            let mdigest = sha256(&mbytes);
            let mname = format!("blobs/sha256/{}", hex_of(&mdigest));
            if written.insert(mname.clone()) {
                sink.bytes(&mname, &mbytes)?;
            }
            let mut platform = json!({"architecture": img.architecture, "os": img.os});
            if let Some(v) = &img.variant {
                platform["variant"] = json!(v);
            }
            let desc = |ann: Value| {
                json!({"mediaType": MANIFEST, "digest": mdigest, "size": mbytes.len(),
                       "platform": platform, "annotations": ann})
            };
            if tags.is_empty() {
                let mut d = desc(json!({}));
                d.as_object_mut().expect("object").remove("annotations");
                index.push(d);
            }
            for t in tags {
                let r = reference::parse(t)?;
                index.push(desc(json!({
                    "io.containerd.image.name": r.to_string(),
                    "org.opencontainers.image.ref.name": r.tag.clone().unwrap_or_else(|| "latest".into()),
                })));
            }
        }
        let idx = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": index});
        sink.bytes(
            "index.json",
            &serde_json::to_vec(&idx).expect("serializable"),
        )
    }
}
