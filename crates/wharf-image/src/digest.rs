//! sha256 digests, a hashing reader, and atomic file writes.

use sha2::{Digest as _, Sha256};
use std::io::{self, Read};

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

/// Writes `data` to `path` atomically and durably (see `wharf_fs`).
pub use wharf_fs::write_atomic;

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
}
