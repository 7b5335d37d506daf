//! The connection to wharfd: where it is (`-H`, `WHARF_HOST`, `DOCKER_HOST`), one HTTP/1.1
//! connection per request over a unix socket, TCP, or TLS over TCP (crate::tls), the API version agreed through `/_ping`,
//! typed errors (daemon unreachable, daemon said no), and upgraded (hijacked) connections.

use anyhow::{anyhow, bail, Context as _, Result};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// Where wharfd listens when nothing says otherwise.
pub const DEFAULT_HOST: &str = "unix:///run/wharf.sock";
/// The newest API version this client speaks.
pub const CLIENT_API_VERSION: &str = wharf_api::API_VERSION;

/// The daemon could not be reached at all.
#[derive(Debug)]
pub struct ConnectError {
    pub host: String,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Cannot connect to the wharf daemon at {}. Is wharfd running? Start it with: sudo wharfd",
            self.host
        )
    }
}

impl std::error::Error for ConnectError {}

/// The daemon answered with an error status; `message` is its `{"message": ...}`.
#[derive(Debug, Clone)]
pub struct DaemonError {
    pub status: u16,
    pub message: String,
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Error response from daemon: {}", self.message)
    }
}

impl std::error::Error for DaemonError {}

impl DaemonError {
    pub fn is_not_found(&self) -> bool {
        self.status == 404
    }
}

/// The daemon's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
    Tcp(String),
}

impl Host {
    /// Parses `unix:///path`, `tcp://host:port`, `http://host:port` or a bare socket path;
    /// `port` is for a tcp:// host that names none (docker: 2375, or 2376 with TLS).
    pub fn parse(s: &str, port: u16) -> Result<Host> {
        if let Some(p) = s.strip_prefix("unix://") {
            if p.is_empty() {
                bail!("invalid host {s:?}: the unix socket path is empty");
            }
            return Ok(Host::Unix(PathBuf::from(p)));
        }
        for scheme in ["tcp://", "http://"] {
            if let Some(rest) = s.strip_prefix(scheme) {
                let hp = rest.trim_end_matches('/');
                if hp.is_empty() {
                    bail!("invalid host {s:?}: no address");
                }
                let hp = if hp.starts_with('[') || hp.rsplit_once(':').is_some() {
                    hp.to_string()
                } else {
                    format!("{hp}:{port}")
                };
                return Ok(Host::Tcp(hp));
            }
        }
        if s.starts_with("https://") {
            bail!("invalid host {s:?}: use tcp://host:port with --tls or --tlsverify");
        }
        if s.starts_with("ssh://") || s.starts_with("npipe://") || s.starts_with("fd://") {
            bail!("unsupported host {s:?}: wharf connects over unix:// or tcp:// only");
        }
        if s.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(s)));
        }
        bail!("invalid host {s:?}: expected unix:///path or tcp://host:port")
    }

    /// Chooses the host: the flag, then `WHARF_HOST`, then `DOCKER_HOST`, then the default.
    /// With `tls`, a tcp:// host without a port means docker's TLS port, 2376.
    pub fn resolve(flag: Option<&str>, tls: bool) -> Result<(String, Host)> {
        let chosen = flag
            .map(str::to_string)
            .or_else(|| std::env::var("WHARF_HOST").ok().filter(|s| !s.is_empty()))
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let h = Host::parse(&chosen, if tls { 2376 } else { 2375 })?;
        Ok((chosen, h))
    }
}

pub type ReqBody = BoxBody<Bytes, std::io::Error>;

/// A request body fed through a channel (uploads of tars read from files or stdin).
pub struct ChannelBody {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
}

impl ChannelBody {
    pub fn new(rx: mpsc::Receiver<std::io::Result<Bytes>>) -> ChannelBody {
        ChannelBody { rx }
    }
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, std::io::Error>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

/// A body that streams everything `reader` yields.
pub fn reader_body<R: tokio::io::AsyncRead + Unpin + Send + 'static>(mut reader: R) -> ReqBody {
    use tokio::io::AsyncReadExt;
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    if tx
                        .send(Ok(Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    break;
                }
            }
        }
    });
    BodyExt::boxed(ChannelBody { rx })
}

/// A body written from a blocking thread: what is written to the [`BodyWriter`] is sent in
/// 64 KiB pieces (at most 8 in flight, so memory stays bounded); [`BodyWriter::fail`] ends the
/// body with an error (the request is aborted, the daemon sees no clean end).
pub fn writer_body() -> (BodyWriter, ReqBody) {
    let (tx, rx) = mpsc::channel(8);
    (
        BodyWriter {
            tx,
            buf: Vec::with_capacity(BodyWriter::PIECE),
            total: 0,
            failed: false,
        },
        BodyExt::boxed(ChannelBody { rx }),
    )
}

/// The blocking end of [`writer_body`].
pub struct BodyWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
    /// Bytes written so far.
    pub total: u64,
    failed: bool,
}

impl BodyWriter {
    const PIECE: usize = 64 * 1024;

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(Self::PIECE),
        ));
        self.tx
            .blocking_send(Ok(piece))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the request ended"))
    }

    /// Ends the body with `e` instead of a clean end; what is written after is refused.
    pub fn fail(&mut self, e: &std::io::Error) {
        self.failed = true;
        self.buf.clear();
        let _ = self
            .tx
            .blocking_send(Err(std::io::Error::new(e.kind(), e.to_string())));
    }
}

impl std::io::Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.failed {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the body failed",
            ));
        }
        let n = data.len().min(Self::PIECE - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.total += n as u64;
        if self.buf.len() == Self::PIECE {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.failed {
            return Ok(());
        }
        self.send()
    }
}

pub fn full_body(b: impl Into<Bytes>) -> ReqBody {
    Full::new(b.into()).map_err(|e| match e {}).boxed()
}

pub fn empty_body() -> ReqBody {
    full_body(Bytes::new())
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// Escapes a name for a URL path as docker's client does: image references keep their
/// `/`, `:` and `@`.
pub fn enc_path(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/:@+=,".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// A connection to the daemon that may be upgraded (attach, exec).
pub enum Conn {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

/// The TLS handshake with the daemon failed (bad or missing certificates, or no TLS there).
#[derive(Debug)]
pub struct TlsError {
    pub host: String,
    pub cause: String,
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "error during connect: TLS with {} failed: {}: check that the daemon serves TLS \
             and --tlscacert, --tlscert and --tlskey",
            self.host, self.cause
        )
    }
}

impl std::error::Error for TlsError {}

pub struct Client {
    pub host_str: String,
    host: Host,
    /// TLS on tcp:// hosts (`--tls`, `--tlsverify`); unix sockets ignore it, as in docker.
    tls: Option<Arc<rustls::ClientConfig>>,
    version: OnceLock<String>,
    fixed_version: Option<String>,
}

impl Client {
    pub fn new(host_str: String, host: Host) -> Client {
        let fixed_version = std::env::var("DOCKER_API_VERSION")
            .ok()
            .filter(|v| !v.is_empty());
        Client {
            host_str,
            host,
            tls: None,
            version: OnceLock::new(),
            fixed_version,
        }
    }

    /// Talks TLS with `cfg` to tcp:// hosts.
    pub fn with_tls(mut self, cfg: Option<Arc<rustls::ClientConfig>>) -> Client {
        self.tls = cfg;
        self
    }

    /// The daemon is unreachable; like docker, the cause (`e`) is not shown.
    fn connect_error(&self, _e: impl std::fmt::Display) -> anyhow::Error {
        anyhow::Error::new(ConnectError {
            host: self.host_str.clone(),
        })
    }

    fn tls_error(&self, cause: String) -> anyhow::Error {
        anyhow::Error::new(TlsError {
            host: self.host_str.clone(),
            cause,
        })
    }

    /// A failed exchange: over TLS, a refusal that shows only after the handshake (TLS 1.3
    /// sends a rejected client certificate's alert then) is a `TlsError`.
    fn exchange_error(&self, e: hyper::Error) -> anyhow::Error {
        let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = src {
            // An io::Error's source() skips the error it wraps: look at that one too.
            let inner = s
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .map(|i| i as &(dyn std::error::Error + 'static));
            for e in [Some(s), inner].into_iter().flatten() {
                if let Some(t) = e.downcast_ref::<rustls::Error>() {
                    return self.tls_error(t.to_string());
                }
            }
            src = s.source();
        }
        self.connect_error(e)
    }

    async fn dial(&self) -> Result<Conn> {
        match &self.host {
            Host::Unix(p) => tokio::net::UnixStream::connect(p)
                .await
                .map(Conn::Unix)
                .map_err(|e| self.connect_error(e)),
            Host::Tcp(a) => {
                let s = tokio::net::TcpStream::connect(a)
                    .await
                    .map_err(|e| self.connect_error(e))?;
                let _ = s.set_nodelay(true);
                let Some(cfg) = &self.tls else {
                    return Ok(Conn::Tcp(s));
                };
                let name = crate::tls::server_name(a)?;
                tokio_rustls::TlsConnector::from(cfg.clone())
                    .connect(name, s)
                    .await
                    .map(|t| Conn::Tls(Box::new(t)))
                    .map_err(|e| self.tls_error(e.to_string()))
            }
        }
    }

    async fn send(&self, req: Request<ReqBody>, upgrades: bool) -> Result<Response<Incoming>> {
        let conn = self.dial().await?;
        macro_rules! go {
            ($s:expr) => {{
                let (mut sender, c) = hyper::client::conn::http1::handshake(TokioIo::new($s))
                    .await
                    .map_err(|e| self.exchange_error(e))?;
                if upgrades {
                    tokio::spawn(async move {
                        let _ = c.with_upgrades().await;
                    });
                } else {
                    tokio::spawn(async move {
                        let _ = c.await;
                    });
                }
                sender
                    .send_request(req)
                    .await
                    .map_err(|e| self.exchange_error(e))?
            }};
        }
        Ok(match conn {
            Conn::Unix(s) => go!(s),
            Conn::Tcp(s) => go!(s),
            Conn::Tls(s) => go!(s),
        })
    }

    /// The API version to talk: `DOCKER_API_VERSION`, else the lower of ours and the
    /// daemon's (from `/_ping`'s `API-Version` header).
    pub async fn version(&self) -> Result<String> {
        if let Some(v) = &self.fixed_version {
            return Ok(v.clone());
        }
        if let Some(v) = self.version.get() {
            return Ok(v.clone());
        }
        let req = Request::get("/_ping")
            .header("Host", "api.moby.localhost")
            .body(empty_body())?;
        let resp = self.send(req, false).await?;
        let server = resp
            .headers()
            .get("API-Version")
            .and_then(|v| v.to_str().ok())
            .unwrap_or(CLIENT_API_VERSION)
            .to_string();
        let v = if version_lt(&server, CLIENT_API_VERSION) {
            server
        } else {
            CLIENT_API_VERSION.to_string()
        };
        let _ = self.version.set(v.clone());
        Ok(v)
    }

    async fn build(
        &self,
        method: &str,
        path: &str,
        body: Option<(ReqBody, &str)>,
        upgrade: bool,
        headers: &[(&str, &str)],
    ) -> Result<Request<ReqBody>> {
        let v = self.version().await?;
        let mut b = Request::builder()
            .method(method)
            .uri(format!("/v{v}{path}"))
            .header("Host", "api.moby.localhost")
            .header(
                "User-Agent",
                concat!("wharf-cli/", env!("CARGO_PKG_VERSION")),
            );
        if upgrade {
            b = b.header("Connection", "Upgrade").header("Upgrade", "tcp");
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let body = match body {
            Some((body, ct)) => {
                b = b.header("Content-Type", ct);
                body
            }
            None => empty_body(),
        };
        Ok(b.body(body)?)
    }

    /// Sends a request; a non-2xx answer becomes a `DaemonError`.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<(ReqBody, &str)>,
    ) -> Result<Response<Incoming>> {
        self.request_with_headers(method, path, body, &[]).await
    }

    /// `request` with extra headers (`X-Registry-Auth` for push).
    pub async fn request_with_headers(
        &self,
        method: &str,
        path: &str,
        body: Option<(ReqBody, &str)>,
        headers: &[(&str, &str)],
    ) -> Result<Response<Incoming>> {
        let req = self.build(method, path, body, false, headers).await?;
        let resp = self.send(req, false).await?;
        check(resp).await
    }

    pub async fn get(&self, path: &str) -> Result<Response<Incoming>> {
        self.request("GET", path, None).await
    }

    pub async fn get_json(&self, path: &str) -> Result<Value> {
        let r = self.get(path).await?;
        read_json(r).await
    }

    /// POSTs an optional JSON body; returns the JSON answer (Null when empty).
    pub async fn post_json(&self, path: &str, body: Option<&Value>) -> Result<Value> {
        let b = body.map(|v| (full_body(v.to_string()), "application/json"));
        let r = self.request("POST", path, b).await?;
        read_json(r).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value> {
        let r = self.request("DELETE", path, None).await?;
        read_json(r).await
    }

    /// Sends a request asking for `Upgrade: tcp` and returns the raw connection once the
    /// daemon switched protocols (101; docker also accepts a 200 there).
    pub async fn hijack(
        &self,
        path: &str,
        body: Option<&Value>,
    ) -> Result<TokioIo<hyper::upgrade::Upgraded>> {
        let b = body.map(|v| (full_body(v.to_string()), "application/json"));
        let req = self.build("POST", path, b, true, &[]).await?;
        let resp = self.send(req, true).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS && !resp.status().is_success() {
            return Err(check(resp)
                .await
                .err()
                .unwrap_or_else(|| anyhow!("attach failed")));
        }
        let up = hyper::upgrade::on(resp)
            .await
            .context("the daemon did not switch the connection to a raw stream")?;
        Ok(TokioIo::new(up))
    }
}

/// Turns an error status into a `DaemonError` carrying the daemon's message.
pub async fn check(resp: Response<Incoming>) -> Result<Response<Incoming>> {
    let status = resp.status();
    if status.is_success() || status == StatusCode::NOT_MODIFIED || status.is_informational() {
        return Ok(resp);
    }
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let message = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| {
            let t = String::from_utf8_lossy(&body).trim().to_string();
            if t.is_empty() {
                status.canonical_reason().unwrap_or("error").to_string()
            } else {
                t
            }
        });
    Err(anyhow::Error::new(DaemonError {
        status: status.as_u16(),
        message,
    }))
}

pub async fn read_body(resp: Response<Incoming>) -> Result<Bytes> {
    Ok(resp
        .into_body()
        .collect()
        .await
        .context("reading the daemon's answer")?
        .to_bytes())
}

pub async fn read_json(resp: Response<Incoming>) -> Result<Value> {
    let b = read_body(resp).await?;
    if b.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&b).context("the daemon's answer is not valid JSON")
}

/// `a < b` for "major.minor" versions.
pub fn version_lt(a: &str, b: &str) -> bool {
    let p = |s: &str| -> (u32, u32) {
        let (x, y) = s.split_once('.').unwrap_or((s, "0"));
        (x.parse().unwrap_or(0), y.parse().unwrap_or(0))
    };
    p(a) < p(b)
}

/// The daemon's error, when that is what `e` is.
pub fn daemon_error(e: &anyhow::Error) -> Option<&DaemonError> {
    e.downcast_ref::<DaemonError>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse() {
        assert_eq!(
            Host::parse("unix:///run/wharf.sock", 2375).unwrap(),
            Host::Unix("/run/wharf.sock".into())
        );
        assert_eq!(
            Host::parse("tcp://127.0.0.1:2375", 2375).unwrap(),
            Host::Tcp("127.0.0.1:2375".into())
        );
        assert_eq!(
            Host::parse("tcp://localhost", 2375).unwrap(),
            Host::Tcp("localhost:2375".into())
        );
        assert_eq!(
            Host::parse("tcp://localhost", 2376).unwrap(),
            Host::Tcp("localhost:2376".into())
        );
        assert!(Host::parse("ssh://x", 2375).is_err());
        assert!(Host::parse("bogus", 2375).is_err());
    }

    #[test]
    fn versions_compare() {
        assert!(version_lt("1.41", "1.50"));
        assert!(version_lt("1.9", "1.10"));
        assert!(!version_lt("1.50", "1.50"));
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(enc("a b/c:d"), "a%20b%2Fc%3Ad");
    }
}
