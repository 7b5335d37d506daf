//! Docker's json-file log driver: one JSON object per line of output, with rotation.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;

/// Lines longer than this are cut into partial entries, as Docker does.
pub const MAX_LINE: usize = 16 * 1024;

/// Appends `s` to `out` as a JSON string body (RFC 8259 escaping; HTML-safe like Go's encoder).
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

/// One log entry as Docker's json-file writes it (with its trailing newline).
pub fn entry(log: &[u8], stream: &str, time: &str) -> String {
    let text = String::from_utf8_lossy(log);
    let mut s = String::with_capacity(text.len() + 64);
    s.push_str("{\"log\":\"");
    escape_into(&mut s, &text);
    s.push_str("\",\"stream\":\"");
    s.push_str(stream);
    s.push_str("\",\"time\":\"");
    s.push_str(time);
    s.push_str("\"}\n");
    s
}

/// Splits a stream's output into lines (cut at `MAX_LINE`), keeping the partial tail.
#[derive(Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    /// Feeds bytes; calls `emit` with every complete line (newline included) or full chunk.
    pub fn feed(&mut self, mut data: &[u8], emit: &mut dyn FnMut(&[u8])) {
        while !data.is_empty() {
            let room = MAX_LINE - self.buf.len();
            let take = data.len().min(room);
            match data[..take].iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.buf.extend_from_slice(&data[..=i]);
                    emit(&self.buf);
                    self.buf.clear();
                    data = &data[i + 1..];
                }
                None => {
                    self.buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.buf.len() == MAX_LINE {
                        emit(&self.buf);
                        self.buf.clear();
                    }
                }
            }
        }
    }

    /// Emits what is left (at exit).
    pub fn flush(&mut self, emit: &mut dyn FnMut(&[u8])) {
        if !self.buf.is_empty() {
            emit(&self.buf);
            self.buf.clear();
        }
    }
}

/// An append-only json-file log with Docker's `max-size`/`max-file` rotation.
pub struct JsonLog {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: Option<u64>,
    max_files: u32,
}

impl JsonLog {
    pub fn open(path: PathBuf, max_size: Option<u64>, max_files: u32) -> io::Result<JsonLog> {
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(JsonLog {
            path,
            file,
            size,
            max_size,
            max_files: max_files.max(1),
        })
    }

    fn rotate(&mut self) -> io::Result<()> {
        let name = |i: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{i}"));
            PathBuf::from(p)
        };
        if self.max_files > 1 {
            let _ = fs::remove_file(name(self.max_files - 1));
            for i in (1..self.max_files - 1).rev() {
                let _ = fs::rename(name(i), name(i + 1));
            }
            fs::rename(&self.path, name(1))?;
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
        } else {
            self.file.set_len(0)?;
        }
        self.size = 0;
        Ok(())
    }

    /// Appends one entry, rotating first when it would pass `max_size`.
    pub fn write_entry(&mut self, line: &str) -> io::Result<()> {
        if let Some(max) = self.max_size {
            if self.size > 0 && self.size + line.len() as u64 > max {
                self.rotate()?;
            }
        }
        self.file.write_all(line.as_bytes())?;
        self.size += line.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_escape_like_docker() {
        assert_eq!(
            entry(b"a \"q\" \\ <b>\x01\n", "stdout", "T"),
            "{\"log\":\"a \\\"q\\\" \\\\ \\u003cb\\u003e\\u0001\\n\",\"stream\":\"stdout\",\"time\":\"T\"}\n"
        );
        assert!(entry(b"\xff\n", "stderr", "T").contains("\u{fffd}"));
    }

    #[test]
    fn control_chars_and_invalid_utf8() {
        assert_eq!(
            entry(b"\x1b[1m\t\r\x7f\n", "stdout", "T"),
            "{\"log\":\"\\u001b[1m\\t\\r\x7f\\n\",\"stream\":\"stdout\",\"time\":\"T\"}\n"
        );
        // Invalid UTF-8 becomes U+FFFD, as Go's encoder does; valid text around it is kept.
        assert_eq!(
            entry(b"a\xffb\xc3\xa9\n", "stderr", "T"),
            "{\"log\":\"a\u{fffd}b\u{e9}\\n\",\"stream\":\"stderr\",\"time\":\"T\"}\n"
        );
        let mut s = String::new();
        escape_into(&mut s, "\u{2028}&");
        assert_eq!(s, "\\u2028\\u0026");
    }

    #[test]
    fn splitter_cuts_lines_and_long_chunks() {
        let mut s = LineSplitter::default();
        let mut got: Vec<Vec<u8>> = vec![];
        s.feed(b"ab", &mut |l| got.push(l.to_vec()));
        s.feed(b"c\nd\ne", &mut |l| got.push(l.to_vec()));
        assert_eq!(got, vec![b"abc\n".to_vec(), b"d\n".to_vec()]);
        s.flush(&mut |l| got.push(l.to_vec()));
        assert_eq!(got.last().unwrap(), b"e");
        got.clear();
        s.feed(&vec![b'x'; MAX_LINE * 2 + 3], &mut |l| got.push(l.to_vec()));
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|l| l.len() == MAX_LINE));
    }

    #[test]
    fn rotation_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let mut log = JsonLog::open(p.clone(), Some(100), 3).unwrap();
        for i in 0..20 {
            log.write_entry(&entry(format!("line {i}\n").as_bytes(), "stdout", "T"))
                .unwrap();
        }
        assert!(p.exists());
        assert!(dir.path().join("c-json.log.1").exists());
        assert!(dir.path().join("c-json.log.2").exists());
        assert!(!dir.path().join("c-json.log.3").exists());
        assert!(fs::read_to_string(&p).unwrap().contains("line 19"));
        assert!(fs::metadata(&p).unwrap().len() <= 100);
    }

    #[test]
    fn one_file_is_truncated_and_reopening_counts_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let e = entry(b"0123456789\n", "stdout", "T");
        let mut log = JsonLog::open(p.clone(), Some(e.len() as u64 * 2), 1).unwrap();
        log.write_entry(&e).unwrap();
        drop(log);
        // Reopened (a restarted shim): the size already there counts.
        let mut log = JsonLog::open(p.clone(), Some(e.len() as u64 * 2), 1).unwrap();
        log.write_entry(&e).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), e.repeat(2));
        log.write_entry(&e).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), e);
        assert!(!dir.path().join("c-json.log.1").exists());
    }
}
