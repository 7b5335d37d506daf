//! Helpers shared by the integration tests: layer and archive builders, a store in a temp dir,
//! mount guards, and skips for tests that need root, overlay or external tools.
#![allow(dead_code)]

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use wharf_image::ImageStore;

pub fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// Returns false (after printing why) unless running as root.
pub fn need_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    wharf_testkit::skip(format!("{test}: needs root (mounts, device whiteouts)"));
    false
}

/// Returns false (after printing why) unless `tool` is on PATH.
pub fn need_tool(test: &str, tool: &str) -> bool {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        wharf_testkit::skip(format!("{test}: {tool} is not installed"));
    }
    ok
}

/// Runs a command, panicking with its output when it fails; returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A store in a temp dir.
pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub store: ImageStore,
}

impl TestStore {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        TestStore { dir, store }
    }
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    pub fn reopen(&mut self) {
        self.store = ImageStore::open(self.dir.path()).unwrap();
    }
}

/// Unmounts (lazily) and removes the container layer when dropped, even if a test panics.
pub struct Mounted<'a> {
    pub store: &'a ImageStore,
    pub id: String,
    pub target: PathBuf,
}

impl<'a> Mounted<'a> {
    /// Creates a container layer over image `image` and mounts it at `target`.
    pub fn image(store: &'a ImageStore, image: &str, target: &Path) -> Self {
        let img = store.resolve(image).unwrap();
        let id = format!("t{}", &wharf_image::layers::random_suffix().to_lowercase());
        store
            .layers()
            .create_rw(&id, img.top_layer.as_deref())
            .unwrap();
        let m = Mounted {
            store,
            id,
            target: target.to_path_buf(),
        };
        store.layers().mount_rw(&m.id, target).unwrap();
        m
    }
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = self.store.layers().unmount_rw(&self.id, &self.target);
        let _ = self.store.layers().remove_rw(&self.id);
    }
}

/// One tar entry for `layer`.
pub enum E<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
}

/// An uncompressed layer tar.
pub fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        match e {
            E::File(name, data) => {
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, name, *data).unwrap();
            }
            E::Dir(name) => {
                h.set_mode(0o755);
                h.set_size(0);
                h.set_entry_type(tar::EntryType::Directory);
                b.append_data(&mut h, name, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// An image config over these uncompressed layers.
pub fn config_for(layers: &[Vec<u8>], arch: &str) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
    serde_json::to_vec(&json!({
        "architecture": arch,
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": diff_ids.iter().map(|_| json!({"created": "2024-01-01T00:00:00Z"})).collect::<Vec<_>>(),
    }))
    .unwrap()
}

fn tar_file(b: &mut tar::Builder<impl Write>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    b.append_data(&mut h, name, data).unwrap();
}

/// A Docker archive (legacy layout) of one image; returns (archive, image id).
pub fn docker_archive(layers: &[Vec<u8>], tag: &str) -> (Vec<u8>, String) {
    let config = config_for(layers, "amd64");
    let id = sha256(&config);
    let mut b = tar::Builder::new(Vec::new());
    let hex = &id[7..];
    tar_file(&mut b, &format!("{hex}.json"), &config);
    let mut names = Vec::new();
    for l in layers {
        let n = format!("{}/layer.tar", &sha256(l)[7..]);
        tar_file(&mut b, &n, l);
        names.push(n);
    }
    let manifest = json!([{"Config": format!("{hex}.json"), "RepoTags": [tag], "Layers": names}]);
    tar_file(&mut b, "manifest.json", manifest.to_string().as_bytes());
    (b.into_inner().unwrap(), id)
}

/// Compression of a layer blob in an OCI layout.
#[derive(Clone, Copy)]
pub enum Comp {
    None,
    Gzip,
    Zstd,
}

pub fn compress(data: &[u8], c: Comp) -> (Vec<u8>, &'static str) {
    match c {
        Comp::None => (data.to_vec(), "application/vnd.oci.image.layer.v1.tar"),
        Comp::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(data).unwrap();
            (
                gz.finish().unwrap(),
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        }
        Comp::Zstd => (
            zstd::encode_all(data, 3).unwrap(),
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
    }
}

/// Builds OCI layouts in memory: blobs and an index.
#[derive(Default)]
pub struct Oci {
    pub blobs: Vec<(String, Vec<u8>)>,
}

impl Oci {
    pub fn blob(&mut self, data: Vec<u8>) -> (String, usize) {
        let d = sha256(&data);
        let n = data.len();
        if !self.blobs.iter().any(|(x, _)| *x == d) {
            self.blobs.push((d.clone(), data));
        }
        (d, n)
    }

    /// Adds an image (config + manifest); returns (manifest descriptor, image id).
    pub fn image(&mut self, layers: &[Vec<u8>], arch: &str, comp: Comp) -> (Value, String) {
        let config = config_for(layers, arch);
        let (cd, cn) = self.blob(config);
        let mut ls = Vec::new();
        for l in layers {
            let (data, mt) = compress(l, comp);
            let (d, n) = self.blob(data);
            ls.push(json!({"mediaType": mt, "digest": d, "size": n}));
        }
        let m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
            "layers": ls});
        let (md, mn) = self.blob(serde_json::to_vec(&m).unwrap());
        (
            json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn,
                   "platform": {"os": "linux", "architecture": arch}}),
            cd,
        )
    }

    /// Adds an image index over manifests; returns its descriptor.
    pub fn index(&mut self, manifests: Vec<Value>) -> Value {
        let idx = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
        let (d, n) = self.blob(serde_json::to_vec(&idx).unwrap());
        json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": n})
    }

    /// The layout as a tar, with `top` as index.json's entries.
    pub fn tar(&self, top: Vec<Value>) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        tar_file(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
        for (d, data) in &self.blobs {
            tar_file(&mut b, &format!("blobs/sha256/{}", &d[7..]), data);
        }
        let idx = json!({"schemaVersion": 2, "manifests": top});
        tar_file(&mut b, "index.json", idx.to_string().as_bytes());
        b.into_inner().unwrap()
    }
}

/// A directory (an OCI layout on disk) as a tar stream.
pub fn tar_dir(dir: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap()
}

/// Pseudo-random bytes (incompressible), deterministic per seed.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// The store holds no partial state: no temp files, every layer has its tar, no dangling link.
pub fn assert_consistent(root: &Path) {
    let layers = root.join("layers");
    let leftovers: Vec<_> = std::fs::read_dir(layers.join("tmp"))
        .unwrap()
        .flatten()
        .collect();
    assert!(
        leftovers.is_empty(),
        "layers/tmp not cleaned: {leftovers:?}"
    );
    let blob_tmp: Vec<_> = std::fs::read_dir(layers.join("blobs/tmp"))
        .unwrap()
        .flatten()
        .collect();
    assert!(blob_tmp.is_empty(), "blobs/tmp not cleaned: {blob_tmp:?}");
    for e in std::fs::read_dir(&layers).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.len() != 64 {
            continue;
        }
        let meta: Value =
            serde_json::from_slice(&std::fs::read(e.path().join("meta.json")).unwrap()).unwrap();
        let diff = meta["diff_id"].as_str().unwrap();
        let blob = layers.join("blobs/sha256").join(&diff[7..]);
        let data = std::fs::read(&blob).unwrap_or_else(|_| panic!("layer {name} has no blob"));
        assert_eq!(sha256(&data), diff, "blob {diff} holds other content");
    }
    for e in std::fs::read_dir(layers.join("l")).unwrap().flatten() {
        assert!(
            std::fs::metadata(e.path()).is_ok(),
            "dangling link {:?}",
            e.path()
        );
    }
}
