//! Byte streams from the daemon: docker's multiplexed stdout/stderr frames, raw (tty) streams,
//! attached connections pumped both ways, and JSON progress messages rendered like docker's
//! `jsonmessage` (plain lines when not a terminal, one updating line per layer when it is).

use anyhow::{bail, Result};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::Value;
use std::io::Write;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use wharf_api::codec::FrameDecoder;

/// Writes demultiplexed output: stream 1 to stdout, 2 to stderr.
pub struct Demux {
    tty: bool,
    dec: FrameDecoder,
}

impl Demux {
    pub fn new(tty: bool) -> Demux {
        Demux {
            tty,
            dec: FrameDecoder::default(),
        }
    }

    pub fn feed(&mut self, data: &[u8]) -> std::io::Result<()> {
        if self.tty {
            let mut o = std::io::stdout().lock();
            o.write_all(data)?;
            return o.flush();
        }
        for (stream, payload) in self.dec.feed(data) {
            if stream == wharf_api::codec::STDERR {
                let mut e = std::io::stderr().lock();
                e.write_all(&payload)?;
                e.flush()?;
            } else {
                let mut o = std::io::stdout().lock();
                o.write_all(&payload)?;
                o.flush()?;
            }
        }
        Ok(())
    }
}

/// Copies a response body (logs, non-upgraded attach) to stdout/stderr.
pub async fn copy_body(body: Incoming, tty: bool) -> Result<()> {
    let mut d = Demux::new(tty);
    let mut body = body;
    while let Some(f) = body.frame().await {
        let f = f?;
        if let Some(data) = f.data_ref() {
            if let Err(e) = d.feed(data) {
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    return Ok(());
                }
                return Err(e.into());
            }
        }
    }
    Ok(())
}

/// Copies a response body as raw bytes into `out`.
pub async fn copy_raw(body: Incoming, out: &mut dyn Write) -> Result<()> {
    let mut body = body;
    while let Some(f) = body.frame().await {
        let f = f?;
        if let Some(data) = f.data_ref() {
            out.write_all(data)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Pumps an attached connection: its output to our stdout/stderr until it ends; our stdin
/// (when `stdin`) into it, closing its write side at EOF as docker does. With `detach` (the
/// detach key sequence, used on a tty as docker's escape proxy does) typing the sequence
/// ends the pump at once without sending it; a partial match is sent on once it fails.
/// Returns whether we detached.
pub async fn pump<IO>(io: IO, tty: bool, stdin: bool, detach: Option<Vec<u8>>) -> Result<bool>
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let (detached_tx, mut detached_rx) = tokio::sync::oneshot::channel::<()>();
    let input = if stdin {
        Some(tokio::spawn(async move {
            let mut inp = tokio::io::stdin();
            let mut buf = vec![0u8; 32 * 1024];
            let keys = detach.unwrap_or_default();
            let mut matched = 0usize;
            loop {
                match inp.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut out = Vec::with_capacity(n + matched);
                        for &b in &buf[..n] {
                            if keys.is_empty() {
                                out.push(b);
                            } else if b == keys[matched] {
                                matched += 1;
                                if matched == keys.len() {
                                    let _ = wr.write_all(&out).await;
                                    let _ = wr.flush().await;
                                    let _ = detached_tx.send(());
                                    return;
                                }
                            } else {
                                out.extend_from_slice(&keys[..matched]);
                                matched = 0;
                                if b == keys[0] {
                                    matched = 1;
                                    if keys.len() == 1 {
                                        let _ = wr.write_all(&out).await;
                                        let _ = detached_tx.send(());
                                        return;
                                    }
                                } else {
                                    out.push(b);
                                }
                            }
                        }
                        if out.is_empty() {
                            continue;
                        }
                        if wr.write_all(&out).await.is_err() {
                            return;
                        }
                        let _ = wr.flush().await;
                    }
                }
            }
            let _ = wr.shutdown().await;
        }))
    } else {
        drop(wr);
        drop(detached_tx);
        None
    };
    let mut d = Demux::new(tty);
    let mut buf = vec![0u8; 32 * 1024];
    let mut detached = false;
    let mut input_over = false;
    loop {
        let n = tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => return Err(e.into()),
            },
            r = &mut detached_rx, if !input_over => {
                input_over = true;
                if r.is_ok() {
                    detached = true;
                    break;
                }
                // The input ended without detaching: keep reading the output.
                continue;
            }
        };
        if let Err(e) = d.feed(&buf[..n]) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                break;
            }
            return Err(e.into());
        }
    }
    if let Some(t) = input {
        t.abort();
    }
    Ok(detached)
}

/// Reads a body of newline-delimited JSON values, calling `f` for each.
pub async fn json_lines(body: Incoming, mut f: impl FnMut(Value) -> Result<bool>) -> Result<()> {
    let mut body = body;
    let mut buf: Vec<u8> = Vec::new();
    while let Some(fr) = body.frame().await {
        let fr = fr?;
        let Some(data) = fr.data_ref() else { continue };
        buf.extend_from_slice(data);
        // A JSON value may span chunks; take every complete line.
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let v: Value = serde_json::from_slice(&line)?;
            if !f(v)? {
                return Ok(());
            }
        }
    }
    if !buf.iter().all(u8::is_ascii_whitespace) {
        let v: Value = serde_json::from_slice(&buf)?;
        f(v)?;
    }
    Ok(())
}

/// Renders docker's JSON progress messages to `out`; an `error` message becomes the error.
pub struct Progress<'a> {
    out: &'a mut dyn Write,
    terminal: bool,
    ids: Vec<String>,
    /// `aux` payloads seen (push digests, load's image ids).
    pub aux: Vec<Value>,
}

impl<'a> Progress<'a> {
    pub fn new(out: &'a mut dyn Write, terminal: bool) -> Progress<'a> {
        Progress {
            out,
            terminal,
            ids: Vec::new(),
            aux: Vec::new(),
        }
    }

    /// Where the messages are written.
    pub fn out(&mut self) -> &mut dyn Write {
        &mut *self.out
    }

    pub fn message(&mut self, jm: &Value) -> Result<()> {
        if let Some(aux) = jm.get("aux") {
            self.aux.push(aux.clone());
            return Ok(());
        }
        let id = jm["id"].as_str().unwrap_or("");
        let has_progress = jm
            .get("progressDetail")
            .is_some_and(|p| p.as_object().is_some_and(|o| !o.is_empty()))
            || jm["progress"].as_str().is_some_and(|s| !s.is_empty());
        let mut diff = 0;
        if !id.is_empty() && has_progress {
            let line = match self.ids.iter().position(|i| i == id) {
                Some(l) => l,
                None => {
                    self.ids.push(id.to_string());
                    if self.terminal {
                        writeln!(self.out)?;
                    }
                    self.ids.len() - 1
                }
            };
            diff = self.ids.len() - line;
            if self.terminal {
                write!(self.out, "\x1b[{diff}A")?;
            }
        } else {
            self.ids.clear();
        }
        let r = self.display(jm, has_progress);
        if !id.is_empty() && self.terminal && diff > 0 {
            write!(self.out, "\x1b[{diff}B")?;
        }
        self.out.flush()?;
        r
    }

    fn display(&mut self, jm: &Value, has_progress: bool) -> Result<()> {
        if let Some(e) = jm.get("errorDetail").or_else(|| jm.get("error")) {
            let msg = e["message"]
                .as_str()
                .or_else(|| e.as_str())
                .unwrap_or("unknown error");
            bail!("{msg}");
        }
        let mut endl = "";
        if self.terminal && jm.get("stream").is_none() && has_progress {
            write!(self.out, "\r\x1b[2K\r")?;
            endl = "\r";
        } else if has_progress && !self.terminal {
            // No progress bars when not a terminal.
            return Ok(());
        }
        let id = jm["id"].as_str().unwrap_or("");
        if !id.is_empty() {
            write!(self.out, "{id}: ")?;
        }
        if let Some(from) = jm["from"].as_str() {
            write!(self.out, "(from {from}) ")?;
        }
        let status = jm["status"].as_str().unwrap_or("");
        if has_progress && self.terminal {
            write!(self.out, "{status} {}{endl}", progress_bar(jm))?;
        } else if let Some(s) = jm["stream"].as_str() {
            write!(self.out, "{s}{endl}")?;
        } else {
            writeln!(self.out, "{status}{endl}")?;
        }
        Ok(())
    }
}

/// docker's `JSONProgress.String()`: a 50-column bar and the amounts.
fn progress_bar(jm: &Value) -> String {
    let d = &jm["progressDetail"];
    let cur = d["current"].as_i64().unwrap_or(0);
    let total = d["total"].as_i64().unwrap_or(0);
    if total <= 0 {
        if cur > 0 {
            return crate::format::human::human_size(cur as f64);
        }
        return jm["progress"].as_str().unwrap_or("").to_string();
    }
    let cur = cur.min(total);
    let width = 50i64;
    let filled = (width * cur / total).min(width);
    let mut bar = "=".repeat(filled as usize);
    if filled < width {
        bar.push('>');
        bar.push_str(&" ".repeat((width - filled - 1).max(0) as usize));
    }
    format!(
        "[{bar}]  {}/{}",
        crate::format::human::human_size(cur as f64),
        crate::format::human::human_size(total as f64)
    )
}

/// Shows a progress stream; returns the `aux` payloads.
pub async fn show_progress(
    body: Incoming,
    out: &mut dyn Write,
    terminal: bool,
) -> Result<Vec<Value>> {
    let mut p = Progress::new(out, terminal);
    json_lines(body, |v| {
        p.message(&v)?;
        Ok(true)
    })
    .await?;
    Ok(p.aux)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_progress_lines() {
        let mut out = Vec::new();
        let mut p = Progress::new(&mut out, false);
        p.message(&json!({"status": "Pulling from library/busybox", "id": "latest"}))
            .unwrap();
        p.message(&json!({"status": "Downloading", "id": "abc", "progressDetail": {"current": 1, "total": 2}}))
            .unwrap();
        p.message(&json!({"status": "Pull complete", "id": "abc", "progressDetail": {}}))
            .unwrap();
        p.message(&json!({"status": "Digest: sha256:x"})).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "latest: Pulling from library/busybox\nabc: Pull complete\nDigest: sha256:x\n"
        );
        let mut out = Vec::new();
        let mut p = Progress::new(&mut out, false);
        let e = p
            .message(&json!({"errorDetail": {"message": "boom"}, "error": "boom"}))
            .unwrap_err();
        assert_eq!(e.to_string(), "boom");
    }

    #[test]
    fn terminal_progress_moves_the_cursor_per_layer() {
        let mut out = Vec::new();
        let mut p = Progress::new(&mut out, true);
        p.message(&json!({"status": "Downloading", "id": "l1", "progressDetail": {"current": 50, "total": 100}}))
            .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.starts_with("\n\x1b[1A\r\x1b[2K\rl1: Downloading ["),
            "{s:?}"
        );
        assert!(s.ends_with("50B/100B\r\x1b[1B"), "{s:?}");
    }
}
