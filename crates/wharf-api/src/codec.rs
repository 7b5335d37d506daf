//! Stream codecs: Docker's 8-byte multiplexing header (attach, logs, exec without a tty) and
//! JSON progress lines (pull, push, load, import, build).

/// Stream numbers of the multiplexed format.
pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;

/// `[stream, 0, 0, 0, len as u32 big-endian]` followed by the payload.
pub fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 8);
    v.push(stream);
    v.extend_from_slice(&[0, 0, 0]);
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Incremental decoder of multiplexed frames.
#[derive(Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// Feeds bytes; returns every complete frame as (stream, payload).
    pub fn feed(&mut self, data: &[u8]) -> Vec<(u8, Vec<u8>)> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            if self.buf.len() < 8 {
                break;
            }
            let len =
                u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
            if self.buf.len() < 8 + len {
                break;
            }
            let payload = self.buf[8..8 + len].to_vec();
            out.push((self.buf[0], payload));
            self.buf.drain(..8 + len);
        }
        out
    }

    /// Bytes held that do not make a complete frame yet.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// One JSON progress line (with its newline): `{"status": ..., "id": ...}`.
pub fn progress(status: &str, id: Option<&str>) -> String {
    let mut v = serde_json::json!({ "status": status });
    if let Some(id) = id {
        v["id"] = id.into();
    }
    format!("{v}\n")
}

/// A JSON progress error line, as Docker ends a failed stream.
pub fn progress_error(message: &str) -> String {
    format!(
        "{}\n",
        serde_json::json!({ "errorDetail": { "message": message }, "error": message })
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_pieces() {
        let mut wire = frame(STDOUT, b"hello\n");
        wire.extend(frame(STDERR, b""));
        wire.extend(frame(STDERR, &vec![7u8; 70000]));
        let mut d = FrameDecoder::default();
        let mut got = Vec::new();
        for chunk in wire.chunks(5) {
            got.extend(d.feed(chunk));
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (STDOUT, b"hello\n".to_vec()));
        assert_eq!(got[1], (STDERR, vec![]));
        assert_eq!(got[2].1.len(), 70000);
        assert_eq!(d.pending(), 0);
        assert_eq!(&wire[..8], &[1, 0, 0, 0, 0, 0, 0, 6]);
    }

    #[test]
    fn progress_lines_are_json() {
        let l = progress("Loaded image: busybox:latest", None);
        let v: serde_json::Value = serde_json::from_str(l.trim()).unwrap();
        assert_eq!(v["status"], "Loaded image: busybox:latest");
        let e: serde_json::Value = serde_json::from_str(progress_error("boom").trim()).unwrap();
        assert_eq!(e["errorDetail"]["message"], "boom");
    }
}
