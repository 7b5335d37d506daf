//! wharf-registry: a client of the registry HTTP API v2 (distribution), for pulls.
//!
//! HTTPS to registries (`transport`: verified against the system's CAs and certs.d; loopback
//! registries are insecure as in Docker: unverified HTTPS, else plain HTTP), anonymous, basic
//! and bearer-token access (`auth`), Docker schema 2 and OCI manifests, manifest lists / OCI
//! indexes with the host platform chosen, blobs streamed while their digest is verified, and
//! push (HEAD, cross-repository mount, monolithic or chunked upload, manifest), tags lists.

pub mod auth;
pub mod transport;

pub use auth::Credentials;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;
use tokio::io::AsyncWriteExt;

/// Errors of registry access, each naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {registry} is not reachable: {message}")]
    Unreachable { registry: String, message: String },
    #[error("{what}: the registry answered {status}{detail}")]
    Status {
        what: String,
        status: u16,
        detail: String,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error("{what}: digest mismatch (expected {expected}, got {actual})")]
    Digest {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("invalid manifest for {0}: {1}")]
    Manifest(String, String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl RegistryError {
    /// The reference does not exist there (HTTP 404 to the client).
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::Status { status: 404, .. })
    }

    /// Worth another try: the connection failed or the registry had a server-side error.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. } => true,
            RegistryError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// The largest manifest (or index) read from a registry, as distribution's client and
/// containerd limit them: a registry cannot make the daemon buffer an endless body.
pub const MAX_MANIFEST_SIZE: usize = 4 << 20;
/// The largest token-endpoint answer or tag-list page read.
const MAX_JSON_SIZE: usize = 4 << 20;
/// How much of an error body is read for its message.
const MAX_ERROR_BODY: usize = 64 << 10;

/// Reads a whole response body of at most `limit` bytes; a longer one is an error naming
/// `what`, and nothing past `limit` is buffered.
async fn read_limited(
    body: hyper::body::Incoming,
    limit: usize,
    registry: &str,
    what: &str,
) -> Result<bytes::Bytes, RegistryError> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(RegistryError::Unsupported(format!(
                "{what}: the registry sent more than {} KiB, refused",
                limit >> 10
            )))
        }
        Err(e) => Err(RegistryError::Unreachable {
            registry: registry.to_string(),
            message: e.to_string(),
        }),
    }
}

/// An error body's JSON message (`errors[0].message`), reading at most MAX_ERROR_BODY.
async fn error_detail(body: hyper::body::Incoming) -> String {
    let body = http_body_util::Limited::new(body, MAX_ERROR_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["errors"][0]["message"].as_str().map(|m| format!(": {m}")))
        .unwrap_or_default()
}

/// A registry endpoint (`host[:port]`), with the credentials and the Authorization header
/// in use for one repository and set of actions.
pub struct Registry {
    pub host: String,
    /// Loopback registries are insecure, as in Docker: unverified TLS, else plain HTTP.
    insecure: bool,
    /// TLS to use; None once an insecure registry turned out to speak plain HTTP.
    tls: std::sync::Mutex<Option<std::sync::Arc<rustls::ClientConfig>>>,
    creds: Option<Credentials>,
    /// `repository:<repo>:<actions>`, the scope tokens are asked for.
    scope: String,
    /// More scopes asked for with it (`repository:<from>:pull` for a cross-repository mount).
    extra_scopes: std::sync::Mutex<Vec<String>>,
    /// The bearer challenge's realm and service, once one was answered.
    bearer: std::sync::Mutex<Option<(String, String)>>,
    /// When the bearer token in use expires (its `expires_in`, 60 s by default, less a
    /// margin); a request after that first fetches a new one.
    expires: std::sync::Mutex<Option<std::time::Instant>>,
    authorization: std::sync::Mutex<Option<String>>,
}

/// What a cross-repository mount request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// 201: the blob is now in the target repository.
    Mounted,
    /// 202: the registry could not mount it and opened an upload session here instead.
    Upload(String),
}

/// Blobs at least this large are uploaded in chunks (PATCH with `Content-Range`), the rest in
/// one PUT; `WHARF_REGISTRY_CHUNK_SIZE` (bytes) lowers both, for tests.
const CHUNKED_THRESHOLD: u64 = 64 << 20;
/// Bytes per PATCH of a chunked upload (raised to the registry's `OCI-Chunk-Min-Length`).
const CHUNK_SIZE: u64 = 16 << 20;

/// (threshold, chunk size) of chunked uploads.
fn chunking() -> (u64, u64) {
    static V: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();
    *V.get_or_init(|| {
        match std::env::var("WHARF_REGISTRY_CHUNK_SIZE")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|n| *n > 0)
        {
            Some(n) => (n, n),
            None => (CHUNKED_THRESHOLD, CHUNK_SIZE),
        }
    })
}

/// Whether basic credentials may go to the token endpoint `realm_host`: over HTTPS always;
/// over plain HTTP only to a loopback realm or to the registry's own host when that registry
/// is insecure (the user already accepted clear text for it). Otherwise a registry could
/// point its realm at an `http://` URL and have the password sent in clear.
fn basic_allowed(https: bool, realm_host: &str, registry: &str, insecure: bool) -> bool {
    https || is_loopback(realm_host) || (insecure && same_host(realm_host, registry))
}

fn same_host(a: &str, b: &str) -> bool {
    let name = |h: &str| {
        h.rsplit_once(':')
            .filter(|(n, _)| !h.starts_with('[') || n.ends_with(']'))
            .map_or(h, |(n, _)| n)
            .to_ascii_lowercase()
    };
    name(a) == name(b)
}

fn is_loopback(host: &str) -> bool {
    let h = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    h == "localhost" || h.starts_with("127.") || h == "[::1]"
}

impl Registry {
    /// The registry of a reference's domain.
    pub fn new(domain: &str) -> Result<Registry, RegistryError> {
        Self::with_security(domain, false)
    }

    /// Like [`Registry::new`]; `insecure` (from `insecure-registries`) allows unverified TLS
    /// and plain HTTP, as loopback registries always do.
    pub fn with_security(domain: &str, insecure: bool) -> Result<Registry, RegistryError> {
        // docker.io's API lives at registry-1.docker.io.
        let host = if domain == "docker.io" || domain == "index.docker.io" {
            "registry-1.docker.io:443".to_string()
        } else if domain.contains(':') {
            domain.to_string()
        } else {
            format!("{domain}:443")
        };
        let insecure = insecure || is_loopback(domain);
        Ok(Registry {
            tls: std::sync::Mutex::new(Some(transport::client_config(domain, insecure))),
            insecure,
            host,
            creds: None,
            scope: String::new(),
            extra_scopes: Default::default(),
            bearer: Default::default(),
            expires: Default::default(),
            authorization: std::sync::Mutex::new(None),
        })
    }

    /// The registry of `domain`, authenticated for `actions` (`pull`, `pull,push`) on `repo`
    /// with `creds` (anonymous when None): pings `/v2/` and answers its challenge, as Docker
    /// does before any other request.
    pub async fn connect(
        domain: &str,
        insecure: bool,
        creds: Option<Credentials>,
        repo: &str,
        actions: &str,
    ) -> Result<Registry, RegistryError> {
        let mut r = Registry::with_security(domain, insecure)?;
        r.creds = creds;
        r.scope = format!("repository:{repo}:{actions}");
        r.ping().await?;
        Ok(r)
    }

    /// `GET /v2/`; on 401 authenticates from the challenge and checks again.
    async fn ping(&self) -> Result<(), RegistryError> {
        let resp = match self.get("/v2/", "application/json").await {
            Err(RegistryError::Unreachable { .. }) if self.insecure => {
                // An insecure registry that does not speak TLS: plain HTTP, as Docker falls
                // back for insecure registries.
                *self.tls.lock().expect("tls lock") = None;
                self.get("/v2/", "application/json").await?
            }
            Err(RegistryError::Unreachable { registry, message }) => {
                return Err(RegistryError::Unreachable {
                    registry,
                    message: format!(
                        "{message} (a private CA goes in /etc/docker/certs.d/<host:port>/ca.crt)"
                    ),
                })
            }
            r => r?,
        };
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(());
        }
        self.authenticate(&resp, "").await?;
        let resp = self.get("/v2/", "application/json").await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(RegistryError::Status {
                what: format!("login to {}", self.host),
                status: 401,
                detail: ": unauthorized: incorrect username or password".into(),
            });
        }
        Ok(())
    }

    /// Answers the `WWW-Authenticate` challenge of `resp` (a 401): sets the Authorization
    /// header for the next requests. `scope` overrides the repository scope (login uses none).
    async fn authenticate(
        &self,
        resp: &hyper::Response<hyper::body::Incoming>,
        scope_override: &str,
    ) -> Result<(), RegistryError> {
        let unauthorized = |detail: &str| RegistryError::Status {
            what: format!("{} {}", self.host, self.scope),
            status: 401,
            detail: format!(": {detail}"),
        };
        let header = resp
            .headers()
            .get("WWW-Authenticate")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let value = match auth::parse_challenge(header) {
            Some(auth::Challenge::Basic { .. }) => match &self.creds {
                Some(c) => c.basic(),
                None => {
                    return Err(unauthorized(
                        "authentication required: log in first (docker login / wharf login)",
                    ))
                }
            },
            Some(auth::Challenge::Bearer { realm, service, .. }) => {
                // Ask for what this operation needs, not only what the challenge named.
                let scopes = if !scope_override.is_empty() || self.scope.is_empty() {
                    vec![scope_override.to_string()]
                } else {
                    self.scopes()
                };
                let token = self.fetch_token(&realm, &service, &scopes).await?;
                *self.bearer.lock().expect("bearer lock") = Some((realm, service));
                format!("Bearer {token}")
            }
            None => {
                return Err(unauthorized(&format!(
                    "unsupported authentication challenge {header:?}"
                )))
            }
        };
        *self.authorization.lock().expect("auth lock") = Some(value);
        Ok(())
    }

    /// The operation's scope and the extra ones (non-empty ones only).
    fn scopes(&self) -> Vec<String> {
        let mut v = vec![self.scope.clone()];
        v.extend(
            self.extra_scopes
                .lock()
                .expect("scopes lock")
                .iter()
                .cloned(),
        );
        v.retain(|s| !s.is_empty());
        v
    }

    /// Adds `scope` to the token's; with bearer auth already in use, fetches a token that
    /// covers it now (one token endpoint request, as Docker does before a mount).
    async fn add_scope(&self, scope: String) -> Result<(), RegistryError> {
        {
            let mut extra = self.extra_scopes.lock().expect("scopes lock");
            if extra.contains(&scope) || self.scope == scope {
                return Ok(());
            }
            extra.push(scope);
        }
        let bearer = self.bearer.lock().expect("bearer lock").clone();
        if let Some((realm, service)) = bearer {
            let token = self.fetch_token(&realm, &service, &self.scopes()).await?;
            *self.authorization.lock().expect("auth lock") = Some(format!("Bearer {token}"));
        }
        Ok(())
    }

    /// GETs a token from the token endpoint `realm` (distribution's token auth) for `scopes`.
    async fn fetch_token(
        &self,
        realm: &str,
        service: &str,
        scopes: &[String],
    ) -> Result<String, RegistryError> {
        let scope = scopes.join(" ");
        let transport::Url { host, path, https } =
            transport::Url::parse(realm).ok_or_else(|| {
                RegistryError::Unsupported(format!(
                    "token endpoint {realm:?}: not an http:// or https:// URL"
                ))
            })?;
        let tls = https.then(|| {
            let name = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
            transport::client_config(name, is_loopback(&host))
        });
        let mut q = format!(
            "{path}{}service={}",
            if path.contains('?') { '&' } else { '?' },
            auth::query_escape(service)
        );
        for s in scopes.iter().filter(|s| !s.is_empty()) {
            q.push_str(&format!("&scope={}", auth::query_escape(s)));
        }
        let mut headers = vec![];
        if let Some(c) = self.creds.as_ref().filter(|c| !c.username.is_empty()) {
            if !basic_allowed(https, &host, &self.host, self.insecure) {
                return Err(RegistryError::Unsupported(format!(
                    "token endpoint {realm}: refusing to send the credentials for {} over plain HTTP \
                     (the registry's token realm must be https://, unless the registry is insecure \
                     and the realm is on the same host)",
                    self.host
                )));
            }
            headers.push(("Authorization", c.basic()));
        }
        let resp = send(
            &host,
            tls.as_ref(),
            hyper::Method::GET,
            &q,
            &headers,
            empty_body(),
            None,
        )
        .await?;
        let status = resp.status();
        let body = if status.is_success() {
            read_limited(
                resp.into_body(),
                MAX_JSON_SIZE,
                &host,
                &format!("token from {realm}"),
            )
            .await?
        } else {
            bytes::Bytes::new()
        };
        if !status.is_success() {
            return Err(RegistryError::Status {
                what: format!("token from {realm} for {scope}"),
                status: status.as_u16(),
                detail: if status == StatusCode::UNAUTHORIZED {
                    ": unauthorized: incorrect username or password".into()
                } else {
                    String::new()
                },
            });
        }
        let t: auth::TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            RegistryError::Unsupported(format!("token endpoint {realm}: invalid answer: {e}"))
        })?;
        if t.token().is_empty() {
            return Err(RegistryError::Unsupported(format!(
                "token endpoint {realm}: no token in its answer"
            )));
        }
        *self.expires.lock().expect("expiry lock") = t.renew_at(std::time::Instant::now());
        Ok(t.token().to_string())
    }

    /// Fetches a new bearer token when the one in use is about to expire (tokens are cached
    /// for the registry's lifetime otherwise).
    async fn refresh_if_expired(&self) -> Result<(), RegistryError> {
        let due = self
            .expires
            .lock()
            .expect("expiry lock")
            .is_some_and(|t| std::time::Instant::now() >= t);
        let bearer = self.bearer.lock().expect("bearer lock").clone();
        if let (true, Some((realm, service))) = (due, bearer) {
            tracing::debug!("{}: bearer token expired, fetching a new one", self.host);
            let token = self.fetch_token(&realm, &service, &self.scopes()).await?;
            *self.authorization.lock().expect("auth lock") = Some(format!("Bearer {token}"));
        }
        Ok(())
    }

    fn auth_header(&self) -> Option<String> {
        self.authorization.lock().expect("auth lock").clone()
    }

    async fn get(
        &self,
        path: &str,
        accept: &str,
    ) -> Result<hyper::Response<hyper::body::Incoming>, RegistryError> {
        self.refresh_if_expired().await?;
        let mut headers = vec![("Accept", accept.to_string())];
        if let Some(a) = self.auth_header() {
            headers.push(("Authorization", a));
        }
        let tls = self.tls.lock().expect("tls lock").clone();
        send(
            &self.host,
            tls.as_ref(),
            hyper::Method::GET,
            path,
            &headers,
            empty_body(),
            None,
        )
        .await
    }

    async fn get_ok(
        &self,
        what: &str,
        path: &str,
        accept: &str,
    ) -> Result<hyper::Response<hyper::body::Incoming>, RegistryError> {
        // Where the next GET goes: the registry, or (after a redirect to another host, as
        // registries do to serve blobs from a CDN or object store) an outside URL.
        let mut path = path.to_string();
        let mut outside: Option<transport::Url> = None;
        let mut reauthenticated = false;
        for _ in 0..10 {
            let resp = match &outside {
                None => self.get(&path, accept).await?,
                Some(url) => get_outside(what, url, accept).await?,
            };
            if resp.status() == StatusCode::UNAUTHORIZED && !reauthenticated && outside.is_none() {
                // A token expired, or the registry wants auth we did not know of: once.
                reauthenticated = true;
                self.authenticate(&resp, "").await?;
                continue;
            }
            match resp.status() {
                s if s.is_success() => return Ok(resp),
                s if s.is_redirection() => {
                    let loc = resp
                        .headers()
                        .get("Location")
                        .and_then(|l| l.to_str().ok())
                        .ok_or_else(|| {
                            RegistryError::Unsupported(format!(
                                "{what}: the registry answered {s} without a Location"
                            ))
                        })?
                        .to_string();
                    match self.redirect_target(what, &loc, outside.as_ref())? {
                        Redirect::Registry(p) => {
                            path = p;
                            outside = None;
                        }
                        Redirect::Outside(url) => outside = Some(url),
                    }
                }
                s => {
                    let detail = error_detail(resp.into_body()).await;
                    return Err(RegistryError::Status {
                        what: what.to_string(),
                        status: s.as_u16(),
                        detail,
                    });
                }
            }
        }
        Err(RegistryError::Unsupported(format!(
            "{what}: too many redirects"
        )))
    }

    /// Where a redirect's `Location` leads, seen from the registry (or from the outside URL
    /// `from` that answered it). Only the registry itself gets the Authorization header;
    /// another host is reached over verified TLS (plain HTTP only on loopback, as for
    /// registries).
    fn redirect_target(
        &self,
        what: &str,
        loc: &str,
        from: Option<&transport::Url>,
    ) -> Result<Redirect, RegistryError> {
        if loc.starts_with('/') && !loc.starts_with("//") {
            return Ok(match from {
                None => Redirect::Registry(loc.to_string()),
                Some(u) => Redirect::Outside(transport::Url {
                    path: loc.to_string(),
                    ..u.clone()
                }),
            });
        }
        let url = transport::Url::parse(loc).ok_or_else(|| {
            RegistryError::Unsupported(format!(
                "{what}: the registry redirected to {loc:?}, which is not an http:// or https:// URL"
            ))
        })?;
        let tls_now = self.tls.lock().expect("tls lock").is_some();
        if from.is_none() && url.host == self.host && url.https == tls_now {
            return Ok(Redirect::Registry(url.path));
        }
        if !url.https && !is_loopback(&url.host) {
            return Err(RegistryError::Unsupported(format!(
                "{what}: the registry redirected to plain-HTTP {loc}: refused (blobs from another \
                 host are fetched over https:// only)"
            )));
        }
        Ok(Redirect::Outside(url))
    }
    /// The manifest `reference` (tag or digest) of `repo`: (bytes, media type, digest), with a
    /// digest given by reference verified.
    pub async fn manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<(Vec<u8>, String, String), RegistryError> {
        let what = format!("{}/{repo}:{reference}", self.host);
        let resp = self
            .get_ok(
                &what,
                &format!("/v2/{repo}/manifests/{reference}"),
                MANIFEST_ACCEPT,
            )
            .await?;
        let media = resp
            .headers()
            .get("Content-Type")
            .and_then(|c| c.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = read_limited(
            resp.into_body(),
            MAX_MANIFEST_SIZE,
            &self.host,
            &format!("manifest {what}"),
        )
        .await?
        .to_vec();
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
        if reference.starts_with("sha256:") && reference != digest {
            return Err(RegistryError::Digest {
                what,
                expected: reference.into(),
                actual: digest,
            });
        }
        Ok((body, media, digest))
    }

    /// The body of blob `digest` of `repo`, to be streamed by the caller (who verifies it).
    pub async fn blob(
        &self,
        repo: &str,
        digest: &str,
    ) -> Result<hyper::body::Incoming, RegistryError> {
        let what = format!("{}/{repo}@{digest}", self.host);
        let resp = self
            .get_ok(&what, &format!("/v2/{repo}/blobs/{digest}"), "*/*")
            .await?;
        Ok(resp.into_body())
    }

    /// Streams blob `digest` of `repo` to `dest`, verifying its digest; nothing is left at
    /// `dest` on failure.
    pub async fn blob_to_file(
        &self,
        repo: &str,
        digest: &str,
        dest: &Path,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<u64, RegistryError> {
        let what = format!("{}/{repo}@{digest}", self.host);
        let resp = self
            .get_ok(&what, &format!("/v2/{repo}/blobs/{digest}"), "*/*")
            .await?;
        let io = |e: std::io::Error| RegistryError::Io {
            path: dest.display().to_string(),
            source: e,
        };
        let mut f = tokio::fs::File::create(dest).await.map_err(io)?;
        let mut hasher = Sha256::new();
        let mut n = 0u64;
        let mut body = resp.into_body();
        let result = async {
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| RegistryError::Unreachable {
                    registry: self.host.clone(),
                    message: e.to_string(),
                })?;
                if let Some(d) = frame.data_ref() {
                    hasher.update(d);
                    f.write_all(d).await.map_err(io)?;
                    n += d.len() as u64;
                    progress(n);
                }
            }
            f.flush().await.map_err(io)?;
            let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
            if actual != digest {
                return Err(RegistryError::Digest {
                    what: what.clone(),
                    expected: digest.into(),
                    actual,
                });
            }
            Ok(n)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(dest).await;
        }
        result
    }
}

impl Registry {
    async fn request(
        &self,
        method: hyper::Method,
        path: &str,
        extra: &[(&'static str, String)],
        body: http_body_util::combinators::BoxBody<Bytes, std::io::Error>,
        len: Option<u64>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, RegistryError> {
        self.refresh_if_expired().await?;
        let mut headers = extra.to_vec();
        if let Some(a) = self.auth_header() {
            headers.push(("Authorization", a));
        }
        let tls = self.tls.lock().expect("tls lock").clone();
        send(&self.host, tls.as_ref(), method, path, &headers, body, len).await
    }

    async fn expect(
        &self,
        what: &str,
        resp: hyper::Response<hyper::body::Incoming>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, RegistryError> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let detail = error_detail(resp.into_body()).await;
        Err(RegistryError::Status {
            what: what.to_string(),
            status,
            detail,
        })
    }

    /// Whether the registry has blob `digest` in `repo` (HEAD).
    pub async fn has_blob(&self, repo: &str, digest: &str) -> Result<bool, RegistryError> {
        let resp = self
            .request(
                hyper::Method::HEAD,
                &format!("/v2/{repo}/blobs/{digest}"),
                &[],
                empty_body(),
                None,
            )
            .await?;
        Ok(resp.status().is_success())
    }

    /// Uploads the file at `path` as blob `digest`: a POST opens the session, then one PUT
    /// (monolithic) or, for large blobs, PATCHes of [`CHUNK_SIZE`] and a closing PUT; the
    /// file is streamed, never read whole. `progress` gets the bytes sent so far.
    pub async fn upload_blob(
        &self,
        repo: &str,
        digest: &str,
        path: &Path,
        progress: Progress,
    ) -> Result<(), RegistryError> {
        let what = format!("upload of {digest} to {}/{repo}", self.host);
        let resp = self
            .request(
                hyper::Method::POST,
                &format!("/v2/{repo}/blobs/uploads/"),
                &[],
                empty_body(),
                Some(0),
            )
            .await?;
        let resp = self.expect(&what, resp).await?;
        let loc = location(&what, &resp)?;
        let min_chunk = header_u64(&resp, "OCI-Chunk-Min-Length");
        self.upload_to(repo, digest, path, &loc, min_chunk, progress)
            .await
    }

    /// Sends the file at `path` to the upload session at `loc` and commits it as `digest`.
    pub async fn upload_to(
        &self,
        repo: &str,
        digest: &str,
        path: &Path,
        loc: &str,
        min_chunk: Option<u64>,
        progress: Progress,
    ) -> Result<(), RegistryError> {
        let what = format!("upload of {digest} to {}/{repo}", self.host);
        let io = |e: std::io::Error| RegistryError::Io {
            path: path.display().to_string(),
            source: e,
        };
        let len = tokio::fs::metadata(path).await.map_err(io)?.len();
        let (threshold, chunk) = chunking();
        let chunk = chunk.max(min_chunk.unwrap_or(0)).max(1);
        let mut loc = loc.to_string();
        let mut sent = 0u64;
        if len >= threshold && len > 0 {
            tracing::debug!("{what}: {len} bytes in chunks of {chunk}");
            while sent < len {
                let n = chunk.min(len - sent);
                let body = file_body(path, sent, n, sent, progress.clone())
                    .await
                    .map_err(io)?;
                let resp = self
                    .request(
                        hyper::Method::PATCH,
                        &loc,
                        &[
                            ("Content-Type", "application/octet-stream".into()),
                            ("Content-Range", format!("{sent}-{}", sent + n - 1)),
                        ],
                        body,
                        Some(n),
                    )
                    .await?;
                let resp = self.expect(&what, resp).await?;
                loc = location(&what, &resp)?;
                sent += n;
            }
        }
        let sep = if loc.contains('?') { '&' } else { '?' };
        let (body, n) = if sent == len && sent > 0 {
            (empty_body(), 0)
        } else {
            (
                file_body(path, 0, len, 0, progress.clone())
                    .await
                    .map_err(io)?,
                len,
            )
        };
        let resp = self
            .request(
                hyper::Method::PUT,
                &format!("{loc}{sep}digest={digest}"),
                &[("Content-Type", "application/octet-stream".into())],
                body,
                Some(n),
            )
            .await?;
        self.expect(&what, resp).await.map(drop)
    }

    /// Asks the registry to mount blob `digest` of repository `from` into `repo`
    /// (`POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<from>`); the token then also
    /// covers `repository:<from>:pull`.
    pub async fn mount_blob(
        &self,
        repo: &str,
        digest: &str,
        from: &str,
    ) -> Result<Mount, RegistryError> {
        let what = format!("mount of {digest} from {from} into {}/{repo}", self.host);
        self.add_scope(format!("repository:{from}:pull")).await?;
        let resp = self
            .request(
                hyper::Method::POST,
                &format!(
                    "/v2/{repo}/blobs/uploads/?mount={}&from={}",
                    auth::query_escape(digest),
                    auth::query_escape(from)
                ),
                &[],
                empty_body(),
                Some(0),
            )
            .await?;
        let status = resp.status();
        let resp = self.expect(&what, resp).await?;
        if status == StatusCode::CREATED {
            Ok(Mount::Mounted)
        } else {
            Ok(Mount::Upload(location(&what, &resp)?))
        }
    }

    /// Abandons the upload session at `loc` (DELETE), best effort.
    pub async fn cancel_upload(&self, loc: &str) {
        if let Err(e) = self
            .request(hyper::Method::DELETE, loc, &[], empty_body(), Some(0))
            .await
        {
            tracing::debug!("cancelling upload {loc}: {e}");
        }
    }

    /// Every tag of `repo` (`GET /v2/<repo>/tags/list`, following `Link` pages).
    pub async fn tags(&self, repo: &str) -> Result<Vec<String>, RegistryError> {
        let what = format!("tags of {}/{repo}", self.host);
        let mut path = format!("/v2/{repo}/tags/list");
        let mut out = Vec::new();
        for _ in 0..1000 {
            let resp = self.get_ok(&what, &path, "application/json").await?;
            let next = resp
                .headers()
                .get("Link")
                .and_then(|l| l.to_str().ok())
                .and_then(next_link);
            let body = read_limited(resp.into_body(), MAX_JSON_SIZE, &self.host, &what).await?;
            let v: Value = serde_json::from_slice(&body)
                .map_err(|e| RegistryError::Manifest(what.clone(), e.to_string()))?;
            out.extend(
                v["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(String::from)),
            );
            match next {
                Some(n) => path = n,
                None => return Ok(out),
            }
        }
        Err(RegistryError::Unsupported(format!(
            "{what}: too many pages"
        )))
    }

    /// PUTs a manifest; returns its digest.
    pub async fn put_manifest(
        &self,
        repo: &str,
        tag: &str,
        media_type: &str,
        body: Vec<u8>,
    ) -> Result<String, RegistryError> {
        let what = format!("manifest {}/{repo}:{tag}", self.host);
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
        let len = body.len() as u64;
        let b = http_body_util::Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed();
        let resp = self
            .request(
                hyper::Method::PUT,
                &format!("/v2/{repo}/manifests/{tag}"),
                &[("Content-Type", media_type.to_string())],
                b,
                Some(len),
            )
            .await?;
        self.expect(&what, resp).await?;
        Ok(digest)
    }
}

/// Checks `creds` against the registry at `domain` as `docker login` does: `/v2/` with basic
/// auth, or a token for no particular scope from its token endpoint.
pub async fn login(domain: &str, insecure: bool, creds: Credentials) -> Result<(), RegistryError> {
    let mut r = Registry::with_security(domain, insecure)?;
    r.creds = Some(creds);
    r.ping().await
}

/// The next hop of a redirect.
enum Redirect {
    /// A path on the registry (its credentials apply).
    Registry(String),
    /// Another host: no credentials, TLS verified.
    Outside(transport::Url),
}

/// GETs an outside URL a registry redirected to: never with the registry's Authorization
/// header, and over TLS verified against the system's CAs (whatever the registry's own
/// security is).
async fn get_outside(
    what: &str,
    url: &transport::Url,
    accept: &str,
) -> Result<hyper::Response<hyper::body::Incoming>, RegistryError> {
    tracing::debug!("{what}: following a redirect to {}{}", url.host, url.path);
    let tls = url
        .https
        .then(|| transport::client_config(transport::host_header(&url.host, true), false));
    send(
        &url.host,
        tls.as_ref(),
        hyper::Method::GET,
        &url.path,
        &[("Accept", accept.to_string())],
        empty_body(),
        None,
    )
    .await
}

/// One HTTP/1.1 request to `host` on a fresh connection (TLS with `tls`).
async fn send(
    host: &str,
    tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
    method: hyper::Method,
    path: &str,
    headers: &[(&str, String)],
    body: http_body_util::combinators::BoxBody<Bytes, std::io::Error>,
    len: Option<u64>,
) -> Result<hyper::Response<hyper::body::Incoming>, RegistryError> {
    let unreachable = |e: &dyn std::fmt::Display| RegistryError::Unreachable {
        registry: host.to_string(),
        message: e.to_string(),
    };
    let stream = transport::connect(host, tls)
        .await
        .map_err(|e| unreachable(&e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unreachable(&e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("Host", transport::host_header(host, tls.is_some()))
        .header("User-Agent", concat!("wharf/", env!("CARGO_PKG_VERSION")));
    for (k, v) in headers {
        b = b.header(*k, v);
    }
    if let Some(l) = len {
        b = b.header("Content-Length", l);
    }
    let req = b.body(body).map_err(|e| unreachable(&e))?;
    sender.send_request(req).await.map_err(|e| unreachable(&e))
}

fn empty_body() -> http_body_util::combinators::BoxBody<Bytes, std::io::Error> {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

/// Bytes sent so far of one upload (called as they go out).
pub type Progress = std::sync::Arc<dyn Fn(u64) + Send + Sync>;

/// `n` bytes of the file at `path` from `offset`, as a streaming request body read 64 KiB
/// at a time; `progress` gets `base` + the bytes read so far.
async fn file_body(
    path: &Path,
    offset: u64,
    n: u64,
    base: u64,
    progress: Progress,
) -> std::io::Result<http_body_util::combinators::BoxBody<Bytes, std::io::Error>> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut file = file.take(n);
        let mut buf = vec![0u8; 64 * 1024];
        let mut done = 0u64;
        loop {
            match file.read(&mut buf).await {
                Ok(0) if done < n => {
                    let _ = tx
                        .send(Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the file shrank while it was uploaded",
                        )))
                        .await;
                    break;
                }
                Ok(0) => break,
                Ok(k) => {
                    done += k as u64;
                    if tx
                        .send(Ok(Bytes::copy_from_slice(&buf[..k])))
                        .await
                        .is_err()
                    {
                        break;
                    }
                    progress(base + done);
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    break;
                }
            }
        }
    });
    Ok(ChanBody(rx).boxed())
}

/// The `Location` of an upload answer, as a path on the registry.
fn location(
    what: &str,
    resp: &hyper::Response<hyper::body::Incoming>,
) -> Result<String, RegistryError> {
    let loc = resp
        .headers()
        .get("Location")
        .and_then(|l| l.to_str().ok())
        .ok_or_else(|| RegistryError::Unsupported(format!("{what}: no upload location")))?;
    Ok(match loc.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map(|i| rest[i..].to_string())
            .unwrap_or_else(|| "/".into()),
        None => loc.to_string(),
    })
}

fn header_u64(resp: &hyper::Response<hyper::body::Incoming>, name: &str) -> Option<u64> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// The target of a `Link: </v2/x/tags/list?last=a&n=100>; rel="next"` header.
fn next_link(h: &str) -> Option<String> {
    h.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            let u = url.trim().trim_start_matches('<').trim_end_matches('>');
            match u.split_once("://") {
                Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]).to_string(),
                None => u.to_string(),
            }
        })
    })
}

/// A request body fed by a channel.
struct ChanBody(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl hyper::body::Body for ChanBody {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|o| o.map(|r| r.map(hyper::body::Frame::data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_insecure_and_hosts_get_ports() {
        assert!(Registry::new("127.0.0.1:5000").unwrap().insecure);
        assert!(Registry::new("localhost:5000").unwrap().insecure);
        let hub = Registry::new("docker.io").unwrap();
        assert!(!hub.insecure);
        assert_eq!(hub.host, "registry-1.docker.io:443");
        assert_eq!(Registry::new("quay.io").unwrap().host, "quay.io:443");
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<https://r/v2/x?last=1>; rel="next""#).as_deref(),
            Some("/v2/x?last=1")
        );
    }
}
