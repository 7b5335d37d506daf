//! A request body handed to a blocking reader (import, load) through a pipe, so that an
//! upload that did not end (the client went away, the connection broke) is an error for the
//! reader, never a clean end of file: a truncated tar must not become an image.

use bytes::Buf;
use http_body_util::BodyExt;
use std::io::{self, PipeReader, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// The blocking end: reads the body's bytes; EOF only once the whole body arrived.
pub struct UploadReader {
    pipe: PipeReader,
    complete: Arc<AtomicBool>,
}

/// The async end: feeds the body into the pipe.
pub struct UploadWriter {
    pipe: tokio::net::unix::pipe::Sender,
    complete: Arc<AtomicBool>,
}

/// A pipe for one upload.
pub fn pipe() -> io::Result<(UploadReader, UploadWriter)> {
    let (r, w) = std::io::pipe()?;
    let complete = Arc::new(AtomicBool::new(false));
    let w = tokio::net::unix::pipe::Sender::from_owned_fd(std::os::fd::OwnedFd::from(w))?;
    Ok((
        UploadReader {
            pipe: r,
            complete: complete.clone(),
        },
        UploadWriter { pipe: w, complete },
    ))
}

impl Read for UploadReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.pipe.read(buf)?;
        if n == 0 && !buf.is_empty() && !self.complete.load(Ordering::Acquire) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the upload ended before the end of its body (the client went away?)",
            ));
        }
        Ok(n)
    }
}

impl UploadWriter {
    /// Copies `body` into the pipe. Ok when the body ended normally (the reader then sees
    /// EOF) or the reader stopped reading (it has its own result); the body's error otherwise.
    /// Dropped before the end (the request's future cancelled), the reader sees an error.
    pub async fn feed<B>(mut self, mut body: B) -> Result<(), String>
    where
        B: hyper::body::Body + Unpin,
        B::Error: std::fmt::Display,
    {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| e.to_string())?;
            if let Ok(mut data) = frame.into_data() {
                while data.has_remaining() {
                    let chunk = data.chunk();
                    if self.pipe.write_all(chunk).await.is_err() {
                        // The reader is gone: it finished or failed, and says so itself.
                        return Ok(());
                    }
                    let n = chunk.len();
                    data.advance(n);
                }
            }
        }
        self.complete.store(true, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use hyper::body::Frame;
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A body of given chunks, each a piece of data or an error.
    struct Chunks(VecDeque<Result<&'static [u8], &'static str>>);

    impl hyper::body::Body for Chunks {
        type Data = Bytes;
        type Error = String;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, String>>> {
            Poll::Ready(self.0.pop_front().map(|c| {
                c.map(|b| Frame::data(Bytes::from_static(b)))
                    .map_err(String::from)
            }))
        }
    }

    async fn read_all(
        chunks: Vec<Result<&'static [u8], &'static str>>,
    ) -> (io::Result<Vec<u8>>, Result<(), String>) {
        let (mut r, w) = pipe().unwrap();
        let reader = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            r.read_to_end(&mut out).map(|_| out)
        });
        let fed = w.feed(Chunks(chunks.into())).await;
        (reader.await.unwrap(), fed)
    }

    #[tokio::test]
    async fn a_whole_body_reads_to_its_end() {
        let (got, fed) = read_all(vec![Ok(b"ab"), Ok(b""), Ok(b"cd")]).await;
        assert_eq!(got.unwrap(), b"abcd");
        fed.unwrap();
    }

    #[tokio::test]
    async fn a_broken_body_is_an_error_for_the_reader_not_an_end() {
        let (got, fed) = read_all(vec![Ok(b"ab"), Err("connection reset")]).await;
        assert_eq!(got.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(fed.unwrap_err(), "connection reset");
    }

    #[tokio::test]
    async fn a_writer_dropped_mid_body_is_an_error_for_the_reader() {
        let (mut r, w) = pipe().unwrap();
        let reader = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            r.read_to_end(&mut out).map(|_| out)
        });
        drop(w);
        assert!(reader.await.unwrap().is_err());
    }
}
