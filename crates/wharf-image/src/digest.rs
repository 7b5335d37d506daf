//! sha256 digests, a hashing reader, and atomic file writes.

use sha2::{Digest as _, Sha256};
use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

/// `sha256:<hex>` of some bytes.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hex part of a `sha256:<hex>` digest (or the input if it has no algorithm).
pub fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// True for a well-formed `sha256:<64 lowercase hex>` digest: the only kind wharf stores, and
/// the check every digest from outside (a manifest, an index, a config) passes before it names
/// a file or is cut short for display.
pub fn is_sha256(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
}

/// The 12-character short form of a digest or id as Docker shows it (`sha256:` dropped); the
/// whole hex part when it is shorter, never a panic.
pub fn short(digest: &str) -> &str {
    let h = hex_of(digest);
    h.get(..12).unwrap_or(h)
}

/// Reads through to `inner` and hashes every byte read.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Drains what is left (tar streams carry padding after the end marker) and returns
    /// `(sha256:<hex>, bytes read)`.
    pub fn finish(mut self) -> io::Result<(String, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.count,
        ))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Writes `data` to `path` atomically and durably: a temp file of its own in the same
/// directory (unique per call, so two writers of one path, e.g. two pulls of one config, never
/// share it), fsync, rename, then fsync of the directory so the rename itself survives a crash.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".tmp-{}-{}-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("f"),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        use std::os::unix::fs::OpenOptionsExt;
        // 0600: state of the daemon, for root only.
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
        return written;
    }
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_reader_matches_direct_digest() {
        let data = b"hello wharf".repeat(1000);
        let mut r = HashingReader::new(&data[..]);
        let mut first = [0u8; 10];
        r.read_exact(&mut first).unwrap();
        let (d, n) = r.finish().unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(d, sha256(&data));
    }

    #[test]
    fn digests_are_checked_and_shortened_without_panics() {
        let good = sha256(b"x");
        assert!(is_sha256(&good));
        for bad in [
            "sha256:abc",
            "sha512:00",
            "",
            "sha256:",
            &good.to_uppercase(),
        ] {
            assert!(!is_sha256(bad), "{bad}");
        }
        assert_eq!(short(&good), &good[7..19]);
        assert_eq!(short("sha256:ab"), "ab");
        assert_eq!(short("sha256:é"), "é");
        assert_eq!(short(""), "");
    }

    #[test]
    fn atomic_write_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn concurrent_writers_of_one_path_never_share_a_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        let threads: Vec<_> = (0..8u8)
            .map(|i| {
                let p = p.clone();
                std::thread::spawn(move || {
                    let body = vec![b'a' + i; 64 * 1024];
                    for _ in 0..20 {
                        write_atomic(&p, &body).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Whole content of one writer, never a mix; no temp file left behind.
        let got = fs::read(&p).unwrap();
        assert_eq!(got.len(), 64 * 1024);
        assert!(got.iter().all(|&b| b == got[0]));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
