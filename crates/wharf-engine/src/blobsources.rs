//! Where layers came from and went to: for each layer (by diff id), the registry blobs known
//! to hold it, as moby's distribution metadata (`v2metadata-by-diffid`). Pulls record the
//! blob each layer was fetched from, pushes the blob they found or uploaded; a later push to
//! another repository of the same registry then mounts the blob instead of uploading it.
//!
//! One small JSON file per diff id under `<data-root>/image/distribution/`, replaced
//! atomically (write, fsync, rename); an unreadable file counts as empty.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Entries kept per layer (the oldest go first).
const MAX_SOURCES: usize = 50;

/// One registry blob holding a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobSource {
    /// The blob's digest (compressed as the registry has it).
    pub digest: String,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub size: u64,
    /// `host:port` of the registry, as [`wharf_registry::Registry::host`].
    pub registry: String,
    /// The repository path on that registry (`library/busybox`).
    pub repository: String,
}

/// The store of [`BlobSource`]s.
pub struct BlobSources {
    dir: PathBuf,
    lock: std::sync::Mutex<()>,
}

impl BlobSources {
    pub fn open(data_root: &Path) -> BlobSources {
        BlobSources {
            dir: data_root.join("image/distribution/v2metadata-by-diffid/sha256"),
            lock: Default::default(),
        }
    }

    fn path(&self, diff_id: &str) -> Option<PathBuf> {
        let hex = diff_id.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| self.dir.join(hex))
    }

    /// The blobs known to hold layer `diff_id`, oldest first.
    pub fn get(&self, diff_id: &str) -> Vec<BlobSource> {
        let Some(p) = self.path(diff_id) else {
            return vec![];
        };
        std::fs::read(&p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Records that `src` holds layer `diff_id` (moved to the end if already known).
    pub fn add(&self, diff_id: &str, src: BlobSource) -> std::io::Result<()> {
        let Some(p) = self.path(diff_id) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{diff_id}: not a sha256 digest"),
            ));
        };
        let _g = self.lock.lock().expect("blob sources lock");
        let mut v = self.get(diff_id);
        v.retain(|s| {
            !(s.digest == src.digest
                && s.registry == src.registry
                && s.repository == src.repository)
        });
        v.push(src);
        if v.len() > MAX_SOURCES {
            v.drain(..v.len() - MAX_SOURCES);
        }
        std::fs::create_dir_all(&self.dir)?;
        crate::container::write_atomic(&p, &serde_json::to_vec(&v).expect("serializable"))
    }

    /// Records `src` for `diff_id`, logging (not failing) when it cannot be written: the
    /// record only saves uploads later.
    pub fn note(&self, diff_id: &str, src: BlobSource) {
        if let Err(e) = self.add(diff_id, src) {
            tracing::warn!("recording where layer {diff_id} came from: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(d: &str, repo: &str) -> BlobSource {
        BlobSource {
            digest: d.into(),
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            size: 3,
            registry: "127.0.0.1:5000".into(),
            repository: repo.into(),
        }
    }

    #[test]
    fn records_persist_dedupe_and_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let id = format!("sha256:{}", "a".repeat(64));
        let s = BlobSources::open(dir.path());
        assert!(s.get(&id).is_empty());
        s.add(&id, src("sha256:1", "a/b")).unwrap();
        s.add(&id, src("sha256:1", "c/d")).unwrap();
        s.add(&id, src("sha256:1", "a/b")).unwrap();
        let again = BlobSources::open(dir.path());
        let v = again.get(&id);
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].repository, "a/b", "the newest is last");
        for i in 0..60 {
            s.add(&id, src("sha256:2", &format!("r/{i}"))).unwrap();
        }
        assert_eq!(s.get(&id).len(), MAX_SOURCES);
        assert!(s.add("sha256:../x", src("d", "r")).is_err());
        let leftovers: Vec<_> = std::fs::read_dir(&s.dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some())
            .collect();
        assert!(leftovers.is_empty(), "a temp file was left behind");
    }
}
