//! The content store: blobs named by their sha256, each stored once.
//!
//! ```text
//! <root>/sha256/<hex>   a blob whose sha256 is <hex>
//! <root>/tmp/<random>   blobs being written (removed at open: never referenced)
//! ```
//! A blob is hashed while it is written, checked against the digest the caller expects, then
//! fsynced and renamed into place, so a name under `sha256/` always holds whole, verified
//! content. Interrupting a write leaves only a temp file, which the next `open` removes.

use crate::digest::hex_of;
use crate::error::Error;
use sha2::{Digest as _, Sha256};
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Blobs by digest.
#[derive(Debug)]
pub struct ContentStore {
    root: PathBuf,
}

use crate::digest::is_sha256 as valid_digest;

impl ContentStore {
    /// Opens (creating) the store at `root` and removes leftovers of interrupted writes.
    pub fn open(root: &Path) -> Result<Self, Error> {
        for d in ["sha256", "tmp"] {
            fs::create_dir_all(root.join(d)).map_err(Error::io(root.join(d)))?;
        }
        if let Ok(rd) = fs::read_dir(root.join("tmp")) {
            for e in rd.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(ContentStore {
            root: root.to_path_buf(),
        })
    }

    /// Where the blob `digest` is (or would be) stored.
    pub fn path(&self, digest: &str) -> PathBuf {
        self.root.join("sha256").join(hex_of(digest))
    }

    /// Whether the blob is present.
    pub fn exists(&self, digest: &str) -> bool {
        valid_digest(digest) && self.path(digest).is_file()
    }

    /// The temp directory (same filesystem as the blobs).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Starts writing a blob. With `expected`, `commit` refuses content of another digest.
    pub fn writer(&self, expected: Option<&str>) -> Result<BlobWriter, Error> {
        if let Some(d) = expected {
            if !valid_digest(d) {
                return Err(Error::InvalidArchive {
                    reason: format!("{d:?} is not a sha256 digest"),
                });
            }
        }
        let tmp = self
            .tmp_dir()
            .join(crate::layers::random_suffix().to_lowercase());
        let f = fs::File::create(&tmp).map_err(Error::io(&tmp))?;
        Ok(BlobWriter {
            file: Some(BufWriter::with_capacity(1 << 20, f)),
            tmp,
            hasher: Sha256::new(),
            size: 0,
            expected: expected.map(str::to_string),
            blobs: self.root.join("sha256"),
        })
    }

    /// Moves `file` (on this filesystem, already hashed by the caller as it was written) into
    /// the store as `digest`. The file is fsynced first; if the blob exists the file is dropped.
    pub fn adopt_verified(&self, file: &Path, digest: &str) -> Result<PathBuf, Error> {
        if !valid_digest(digest) {
            return Err(Error::InvalidArchive {
                reason: format!("{digest:?} is not a sha256 digest"),
            });
        }
        let dest = self.path(digest);
        if dest.is_file() {
            let _ = fs::remove_file(file);
            return Ok(dest);
        }
        fs::File::open(file)
            .and_then(|f| f.sync_all())
            .map_err(Error::io(file))?;
        fs::rename(file, &dest).map_err(Error::io(&dest))?;
        sync_dir(&self.root.join("sha256"));
        Ok(dest)
    }

    /// Removes a blob (missing is fine).
    pub fn remove(&self, digest: &str) -> Result<(), Error> {
        let p = self.path(digest);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(&p)(e)),
            _ => Ok(()),
        }
    }

    /// Digests of all blobs present.
    pub fn list(&self) -> Vec<String> {
        fs::read_dir(self.root.join("sha256"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| format!("sha256:{}", e.file_name().to_string_lossy()))
                    .filter(|d| valid_digest(d))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A blob being written; dropped without `commit`, its temp file is removed.
pub struct BlobWriter {
    file: Option<BufWriter<fs::File>>,
    tmp: PathBuf,
    hasher: Sha256,
    size: u64,
    expected: Option<String>,
    blobs: PathBuf,
}

impl BlobWriter {
    /// The digest of what was written so far.
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }

    /// Verifies, fsyncs and publishes the blob; returns `(digest, size)`.
    pub fn commit(mut self) -> Result<(String, u64), Error> {
        let digest = self.digest();
        if let Some(want) = &self.expected {
            if *want != digest {
                return Err(Error::DigestMismatch {
                    what: "blob".into(),
                    expected: want.clone(),
                    actual: digest,
                });
            }
        }
        let file = self
            .file
            .take()
            .expect("commit once")
            .into_inner()
            .map_err(|e| Error::io(&self.tmp)(e.into_error()))?;
        file.sync_all().map_err(Error::io(&self.tmp))?;
        drop(file);
        let dest = self.blobs.join(hex_of(&digest));
        if dest.is_file() {
            // Stored once: the same content is already there.
            let _ = fs::remove_file(&self.tmp);
        } else {
            fs::rename(&self.tmp, &dest).map_err(Error::io(&dest))?;
            sync_dir(&self.blobs);
        }
        Ok((digest, self.size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.as_mut().expect("not committed").write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("not committed").flush()
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(f) = fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_verified_atomic_and_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let want = crate::digest::sha256(b"hello");
        let mut w = cs.writer(Some(&want)).unwrap();
        w.write_all(b"hello").unwrap();
        assert!(!cs.exists(&want), "not visible before commit");
        assert_eq!(w.commit().unwrap(), (want.clone(), 5));
        assert!(cs.exists(&want));
        let mut again = cs.writer(None).unwrap();
        again.write_all(b"hello").unwrap();
        again.commit().unwrap();
        assert_eq!(cs.list(), vec![want.clone()]);
        // Wrong content for the expected digest: refused, nothing left behind.
        let other = crate::digest::sha256(b"other");
        let mut bad = cs.writer(Some(&other)).unwrap();
        bad.write_all(b"not other").unwrap();
        let e = bad.commit().unwrap_err();
        assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
        assert!(!cs.exists(&other));
        assert_eq!(fs::read_dir(cs.tmp_dir()).unwrap().count(), 0);
        // An abandoned write leaves a temp file only until the next open.
        let mut w = cs.writer(None).unwrap();
        w.write_all(b"partial").unwrap();
        std::mem::forget(w);
        assert_eq!(fs::read_dir(cs.tmp_dir()).unwrap().count(), 1);
        let cs = ContentStore::open(dir.path()).unwrap();
        assert_eq!(fs::read_dir(cs.tmp_dir()).unwrap().count(), 0);
        assert_eq!(cs.list(), vec![want]);
    }
}
