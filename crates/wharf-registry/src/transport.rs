//! Connections to registries: HTTPS (rustls, ring) verified against the platform's CAs (as
//! rustls-native-certs finds them: `SSL_CERT_FILE`/`SSL_CERT_DIR`, else the distribution's
//! bundle and directory wherever they are) plus
//! `/etc/docker/certs.d/<host:port>/*.crt` and `/etc/wharf/certs.d/<host:port>/*.crt`, as
//! dockerd reads them; for insecure registries (loopback ones, as in Docker) HTTPS without
//! verification, falling back to plain HTTP when the registry does not speak TLS.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream to a registry, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The platform's trusted CAs, loaded once (a few hundred certificates; parsing them per
/// registry connection would cost milliseconds).
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: std::sync::OnceLock<Vec<CertificateDer<'static>>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!("loading the system's CA certificates: {e}");
        }
        if found.certs.is_empty() {
            tracing::warn!(
                "no system CA certificates found (set SSL_CERT_FILE or install ca-certificates): only certs.d CAs are trusted"
            );
        }
        found.certs
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration for `host`: verified (system CAs and certs.d) or, for an
/// insecure registry, unverified.
pub fn client_config(host: &str, insecure: bool) -> Arc<ClientConfig> {
    let p = provider();
    let builder = ClientConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions");
    let mut cfg = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(p)))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        let (_added, _ignored) = roots.add_parsable_certificates(system_roots().iter().cloned());
        for base in ["/etc/docker/certs.d", "/etc/wharf/certs.d"] {
            if let Ok(rd) = std::fs::read_dir(Path::new(base).join(host)) {
                for e in rd.flatten() {
                    if e.path().extension().is_some_and(|x| x == "crt") {
                        add_pem_file(&mut roots, &e.path());
                    }
                }
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

fn add_pem_file(roots: &mut RootCertStore, path: &Path) {
    if let Ok(iter) = CertificateDer::pem_file_iter(path) {
        for c in iter.flatten() {
            let _ = roots.add(c);
        }
    }
}

/// Opens a connection to `host` (`name:port`), with TLS when `tls` is given.
pub async fn connect(host: &str, tls: Option<&Arc<ClientConfig>>) -> std::io::Result<Box<dyn Io>> {
    let timed_out = |what: &str, t: std::time::Duration| {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("{what} timed out after {} s", t.as_secs()),
        )
    };
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(host))
        .await
        .map_err(|_| timed_out("connecting", CONNECT_TIMEOUT))??;
    let _ = tcp.set_nodelay(true);
    let Some(cfg) = tls else {
        return Ok(Box::new(tcp));
    };
    let name = host_name(host)?;
    let s = tokio::time::timeout(
        TLS_HANDSHAKE_TIMEOUT,
        tokio_rustls::TlsConnector::from(cfg.clone()).connect(name, tcp),
    )
    .await
    .map_err(|_| timed_out("the TLS handshake", TLS_HANDSHAKE_TIMEOUT))??;
    Ok(Box::new(s))
}

/// As dockerd's registry transport: 30 s to connect, 10 s for the TLS handshake (a peer that
/// never answers must not hang a pull).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn host_name(addr: &str) -> std::io::Result<ServerName<'static>> {
    let host = match addr.rsplit_once(':') {
        Some((h, _)) if !addr.starts_with('[') || h.ends_with(']') => h,
        _ => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{host:?} is not a host name for TLS: {e}"),
        )
    })
}

/// Accepts any certificate: insecure registries only (signatures are still checked).
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// An `http(s)://` URL cut into what a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    /// `host:port`, the port filled in (443 or 80) when the URL has none.
    pub host: String,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// Parses `http(s)://[user@]host[:port][/path][?query]`; None for any other scheme or no
    /// host.
    pub fn parse(url: &str) -> Option<Url> {
        let (https, rest) = match url.strip_prefix("https://") {
            Some(r) => (true, r),
            None => (false, url.strip_prefix("http://")?),
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        if authority.is_empty() {
            return None;
        }
        // A port follows the last ':' unless that ':' is inside an IPv6 literal.
        let has_port = match authority.rfind(':') {
            Some(i) => !authority[i..].contains(']'),
            None => false,
        };
        let host = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:{}", if https { 443 } else { 80 })
        };
        let path = path.split('#').next().unwrap_or_default();
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        Some(Url { https, host, path })
    }

    /// The Host header: the host without the scheme's default port, as browsers and Go send
    /// it (signed storage URLs include it in the signature).
    pub fn host_header(&self) -> &str {
        host_header(&self.host, self.https)
    }
}

/// `host:port` without the default port of the scheme (`:443` with TLS, `:80` without).
pub fn host_header(host: &str, https: bool) -> &str {
    host.strip_suffix(if https { ":443" } else { ":80" })
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::Url;

    fn u(https: bool, host: &str, path: &str) -> Option<Url> {
        Some(Url {
            https,
            host: host.into(),
            path: path.into(),
        })
    }

    #[test]
    fn urls_are_split_with_default_ports() {
        assert_eq!(
            Url::parse("https://auth.example/token?x=1"),
            u(true, "auth.example:443", "/token?x=1")
        );
        assert_eq!(Url::parse("http://u:p@h:8080?q"), u(false, "h:8080", "/?q"));
        assert_eq!(
            Url::parse("https://[::1]/a#frag"),
            u(true, "[::1]:443", "/a")
        );
        assert_eq!(Url::parse("https://[::1]:5000"), u(true, "[::1]:5000", "/"));
        assert_eq!(Url::parse("ftp://h/x"), None);
        assert_eq!(Url::parse("https:///x"), None);
        assert_eq!(
            Url::parse("https://cdn.example:443/b")
                .unwrap()
                .host_header(),
            "cdn.example"
        );
        assert_eq!(
            Url::parse("http://cdn.example:8080/b")
                .unwrap()
                .host_header(),
            "cdn.example:8080"
        );
    }
}
