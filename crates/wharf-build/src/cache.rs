//! The build cache index: a step's cache key to the image it made.
//!
//! A key is computed from the step alone (its parent's key, the instruction as expanded, the
//! ARG values it sees, and for COPY/ADD the digest of exactly the files it copies), so a
//! lookup is one file read, not a scan of every image's parent chain as the classic builder
//! does. One file per entry (`<dir>/<key hex>`, written atomically), so concurrent builds
//! never rewrite each other's entries, and the index survives a daemon restart. An entry
//! whose image is gone is a miss.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The image the step made.
    pub image: String,
    /// Unix seconds when it was made and last used.
    pub created: i64,
    pub last_used: i64,
    /// The step's instruction, for `docker builder prune`/`system df -v` listings.
    #[serde(default)]
    pub description: String,
}

/// The index on disk.
#[derive(Debug, Clone)]
pub struct CacheIndex {
    dir: PathBuf,
}

/// A cache key under construction.
#[derive(Clone)]
pub struct KeyBuilder(Sha256);

impl KeyBuilder {
    pub fn new(parent: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"wharf-build-cache-v1\0");
        h.update(parent.as_bytes());
        h.update([0]);
        KeyBuilder(h)
    }

    pub fn part(mut self, part: &str) -> Self {
        self.0.update((part.len() as u64).to_le_bytes());
        self.0.update(part.as_bytes());
        self
    }

    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl CacheIndex {
    pub fn open(dir: &Path) -> std::io::Result<CacheIndex> {
        std::fs::create_dir_all(dir)?;
        Ok(CacheIndex {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        (key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit())).then(|| self.dir.join(key))
    }

    /// The entry for `key`, if any.
    pub fn get(&self, key: &str) -> Option<Record> {
        let data = std::fs::read(self.path(key)?).ok()?;
        serde_json::from_slice(&data).ok()
    }

    /// Records that `key` made `image` (atomically: a crash leaves the old entry or the new).
    pub fn put(&self, key: &str, image: &str, description: &str) -> std::io::Result<()> {
        let Some(path) = self.path(key) else {
            return Err(std::io::Error::other(format!("bad cache key {key:?}")));
        };
        let t = now();
        let rec = Record {
            image: image.to_string(),
            created: self.get(key).map(|r| r.created).unwrap_or(t),
            last_used: t,
            description: description.to_string(),
        };
        let data = serde_json::to_vec(&rec).map_err(std::io::Error::other)?;
        wharf_fs::write_atomic(&path, &data)
    }

    /// Every entry, with its key.
    pub fn list(&self) -> Vec<(String, Record)> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return out;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(r) = self.get(&name) {
                out.push((name, r));
            } else if name.starts_with('.') && name.contains(".tmp-") {
                // A write cut off by a crash.
                let _ = std::fs::remove_file(e.path());
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Removes one entry.
    pub fn remove(&self, key: &str) -> std::io::Result<()> {
        match self.path(key) {
            Some(p) => match std::fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_reopening_and_keys_depend_on_every_part() {
        let d = tempfile::tempdir().unwrap();
        let k1 = KeyBuilder::new("p").part("RUN a").finish();
        let k2 = KeyBuilder::new("p").part("RUN b").finish();
        let k3 = KeyBuilder::new("q").part("RUN a").finish();
        assert!(k1 != k2 && k1 != k3);
        // Parts are length-prefixed: ("ab","c") is not ("a","bc").
        assert_ne!(
            KeyBuilder::new("p").part("ab").part("c").finish(),
            KeyBuilder::new("p").part("a").part("bc").finish()
        );
        CacheIndex::open(d.path())
            .unwrap()
            .put(&k1, "sha256:x", "RUN a")
            .unwrap();
        let again = CacheIndex::open(d.path()).unwrap();
        assert_eq!(again.get(&k1).unwrap().image, "sha256:x");
        assert!(again.get(&k2).is_none());
        assert_eq!(again.list().len(), 1);
        again.remove(&k1).unwrap();
        assert!(again.get(&k1).is_none());
        assert!(again.get("../../etc/passwd").is_none());
    }
}
