//! HTTPS for tcp:// hosts, as dockerd does it: `--tls` encrypts, `--tlsverify` also requires
//! client certificates signed by `--tlscacert` (mutual TLS). rustls with the ring provider.

use crate::config::{DaemonJson, Flags};
use anyhow::{bail, Context, Result};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::TlsAcceptor;
use wharf_engine::Engine;

/// A client that connects but does not finish the handshake in this time is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS settings after flags, daemon.json and the environment were combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// Require client certificates signed by `ca`.
    pub verify: bool,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// dockerd's default certificate directory: `$DOCKER_CERT_PATH`, else the docker config
/// directory (`$DOCKER_CONFIG`, else `~/.docker`).
fn default_cert_dir() -> PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    env("DOCKER_CERT_PATH")
        .or_else(|| env("DOCKER_CONFIG"))
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".docker")))
        .unwrap_or_else(|| PathBuf::from("/root/.docker"))
}

/// Whether TLS is on and with what: `--tlsverify` (or `"tlsverify"`, or `DOCKER_TLS_VERIFY`
/// set) turns on TLS whatever its value, as in dockerd; a flag wins over daemon.json.
pub fn options(f: &Flags, file: &DaemonJson) -> Option<TlsOptions> {
    let env_verify = std::env::var_os("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty());
    let verify_set = f.tlsverify.or(file.tlsverify);
    let verify = verify_set.unwrap_or(env_verify);
    let tls = f.tls.or(file.tls).unwrap_or(false) || verify_set.is_some() || verify;
    if !tls {
        return None;
    }
    let dir = default_cert_dir();
    let pick = |flag: &Option<PathBuf>, json: &Option<PathBuf>, name: &str| {
        flag.clone()
            .or_else(|| json.clone())
            .unwrap_or_else(|| dir.join(name))
    };
    Some(TlsOptions {
        verify,
        ca: pick(&f.tlscacert, &file.tlscacert, "ca.pem"),
        cert: pick(&f.tlscert, &file.tlscert, "cert.pem"),
        key: pick(&f.tlskey, &file.tlskey, "key.pem"),
    })
}

fn read_certs(path: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| {
            format!(
                "{flag} {}: cannot read PEM certificates: pass {flag} with a readable file",
                path.display()
            )
        })?;
    if certs.is_empty() {
        bail!(
            "{flag} {}: no PEM certificate in the file (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        );
    }
    Ok(certs)
}

/// The rustls server configuration for `o`; errors name the file and flag to fix.
pub fn server_config(o: &TlsOptions) -> Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certs(&o.cert, "--tlscert")?;
    let key = PrivateKeyDer::from_pem_file(&o.key).with_context(|| {
        format!(
            "--tlskey {}: cannot read a PEM private key: pass --tlskey with the key of --tlscert",
            o.key.display()
        )
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = if o.verify {
        let mut roots = RootCertStore::empty();
        for c in read_certs(&o.ca, "--tlscacert")? {
            roots
                .add(c)
                .with_context(|| format!("--tlscacert {}: not a CA certificate", o.ca.display()))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .with_context(|| format!("--tlscacert {}", o.ca.display()))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let mut cfg = builder.with_single_cert(certs, key).with_context(|| {
        format!(
            "--tlscert {} and --tlskey {} do not make a usable pair",
            o.cert.display(),
            o.key.display()
        )
    })?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Accepts TLS connections on `listener` forever and serves the Engine API on each.
pub async fn serve(engine: Arc<Engine>, listener: tokio::net::TcpListener, cfg: Arc<ServerConfig>) {
    let acceptor = TlsAcceptor::from(cfg);
    loop {
        let (s, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("accept: {e}");
                continue;
            }
        };
        let _ = s.set_nodelay(true);
        let (acceptor, engine) = (acceptor.clone(), engine.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(s)).await {
                Ok(Ok(tls)) => wharf_engine::http::serve_conn(engine, tls).await,
                Ok(Err(e)) => tracing::info!("TLS handshake with {peer} failed: {e}"),
                Err(_) => tracing::info!("TLS handshake with {peer} timed out"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn opts(args: &[&str], json: &str) -> Option<TlsOptions> {
        let f = Flags::parse_from(std::iter::once("wharfd").chain(args.iter().copied()));
        options(&f, &serde_json::from_str(json).unwrap())
    }

    #[test]
    fn tlsverify_implies_tls_and_flags_win() {
        assert_eq!(opts(&[], "{}"), None);
        let o = opts(&["--tls", "--tlscert", "/s.pem"], "{}").unwrap();
        assert!(!o.verify);
        assert_eq!(o.cert, PathBuf::from("/s.pem"));
        assert!(o.ca.ends_with("ca.pem") && o.key.ends_with("key.pem"));
        assert!(opts(&["--tlsverify"], "{}").unwrap().verify);
        // Given at all, even false, --tlsverify turns TLS on (dockerd does the same).
        assert!(!opts(&["--tlsverify=false"], "{}").unwrap().verify);
        let o = opts(
            &["--tlskey", "/k"],
            r#"{"tlsverify": true, "tlskey": "/j"}"#,
        )
        .unwrap();
        assert!(o.verify);
        assert_eq!(o.key, PathBuf::from("/k"));
        assert_eq!(opts(&["--tls=false"], r#"{"tls": true}"#), None);
    }

    #[test]
    fn missing_files_are_named() {
        let o = TlsOptions {
            verify: true,
            ca: "/nonexistent/ca.pem".into(),
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
        };
        let e = format!("{:#}", server_config(&o).unwrap_err());
        assert!(e.contains("--tlscert /nonexistent/cert.pem"), "{e}");
    }
}
