//! TLS to a tcp:// daemon with docker's semantics: `--tls` (or `DOCKER_TLS`) encrypts without
//! verifying the daemon; `--tlsverify` (or `DOCKER_TLS_VERIFY`) implies TLS and verifies the
//! daemon against `--tlscacert`; a client certificate (`--tlscert`/`--tlskey`) is sent when
//! given, or when the default files exist. Defaults live in `DOCKER_CERT_PATH`, else the
//! config directory (`--config`, `DOCKER_CONFIG`, `~/.docker`).

use anyhow::{bail, Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The TLS flags as given (`None`: not on the command line).
#[derive(Debug, Default, Clone)]
pub struct TlsFlags {
    pub tls: Option<bool>,
    pub tlsverify: Option<bool>,
    pub tlscacert: Option<String>,
    pub tlscert: Option<String>,
    pub tlskey: Option<String>,
    /// `--config`
    pub config_dir: Option<String>,
}

/// What to do once flags, environment and defaults are combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// Verify the daemon's certificate against `ca`.
    pub verify: bool,
    pub ca: PathBuf,
    /// The client certificate and key, if any.
    pub client: Option<(PathBuf, PathBuf)>,
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

fn cert_dir(config_dir: Option<&str>) -> PathBuf {
    env("DOCKER_CERT_PATH")
        .or_else(|| config_dir.map(str::to_string))
        .or_else(|| env("DOCKER_CONFIG"))
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".docker")))
        .unwrap_or_else(|| PathBuf::from(".docker"))
}

impl TlsFlags {
    /// `None` when TLS is off. As in docker, giving `--tlsverify` at all (even `=false`)
    /// turns TLS on, and default certificate files that do not exist are not used.
    pub fn resolve(&self) -> Result<Option<TlsOptions>> {
        let verify = self
            .tlsverify
            .unwrap_or_else(|| env("DOCKER_TLS_VERIFY").is_some());
        let tls = self.tls.unwrap_or_else(|| env("DOCKER_TLS").is_some())
            || self.tlsverify.is_some()
            || verify;
        if !tls {
            return Ok(None);
        }
        let dir = cert_dir(self.config_dir.as_deref());
        let pick = |flag: &Option<String>, name: &str| match flag {
            Some(p) => Some(PathBuf::from(p)),
            None => Some(dir.join(name)).filter(|p| p.exists()),
        };
        let ca = self
            .tlscacert
            .as_ref()
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.join("ca.pem"));
        let client = match (
            pick(&self.tlscert, "cert.pem"),
            pick(&self.tlskey, "key.pem"),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(c), None) => bail!(
                "the client certificate {} has no key: pass --tlskey (or put key.pem beside it)",
                c.display()
            ),
            (None, Some(k)) => bail!(
                "the client key {} has no certificate: pass --tlscert (or put cert.pem beside it)",
                k.display()
            ),
        };
        Ok(Some(TlsOptions { verify, ca, client }))
    }
}

fn read_certs(path: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("could not read {flag} {}", path.display()))?;
    if certs.is_empty() {
        bail!("{flag} {}: no PEM certificate in it", path.display());
    }
    Ok(certs)
}

/// Accepts any server certificate but still checks the handshake signatures (docker's
/// `--tls` without `--tlsverify`: encrypted, not authenticated).
#[derive(Debug)]
struct NoServerVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoServerVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
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

impl TlsOptions {
    /// The rustls client configuration; errors name the file to fix.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?;
        let builder = if self.verify {
            let mut roots = RootCertStore::empty();
            for c in read_certs(&self.ca, "--tlscacert")? {
                roots.add(c).with_context(|| {
                    format!("--tlscacert {}: not a CA certificate", self.ca.display())
                })?;
            }
            builder.with_root_certificates(roots)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoServerVerification(provider)))
        };
        let mut cfg = match &self.client {
            Some((cert, key)) => {
                let certs = read_certs(cert, "--tlscert")?;
                let k = PrivateKeyDer::from_pem_file(key)
                    .with_context(|| format!("could not read --tlskey {}", key.display()))?;
                builder.with_client_auth_cert(certs, k).with_context(|| {
                    format!(
                        "--tlscert {} and --tlskey {} do not make a usable pair",
                        cert.display(),
                        key.display()
                    )
                })?
            }
            None => builder.with_no_client_auth(),
        };
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

/// The name to check the daemon's certificate against: the host of `host:port`.
pub fn server_name(addr: &str) -> Result<ServerName<'static>> {
    let host = match addr.rsplit_once(':') {
        Some((h, _)) if !addr.starts_with('[') || h.ends_with(']') => h,
        _ => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .with_context(|| format!("{host:?} is not a host name or IP address for TLS"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlsverify_implies_tls_and_missing_default_files_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let base = TlsFlags {
            config_dir: Some(dir.path().display().to_string()),
            ..Default::default()
        };
        if env("DOCKER_TLS").is_none() && env("DOCKER_TLS_VERIFY").is_none() {
            assert_eq!(base.resolve().unwrap(), None);
        }
        let o = TlsFlags {
            tlsverify: Some(false),
            ..base.clone()
        }
        .resolve()
        .unwrap()
        .expect("--tlsverify=false still turns TLS on");
        assert!(!o.verify);
        assert_eq!(o.client, None);
        let o = TlsFlags {
            tlsverify: Some(true),
            tlscert: Some("/c.pem".into()),
            tlskey: Some("/k.pem".into()),
            ..base.clone()
        }
        .resolve()
        .unwrap()
        .unwrap();
        assert!(o.verify);
        assert_eq!(o.client, Some(("/c.pem".into(), "/k.pem".into())));
        let half = TlsFlags {
            tls: Some(true),
            tlscert: Some("/c.pem".into()),
            ..base
        };
        if env("DOCKER_CERT_PATH").is_none() {
            assert!(half.resolve().is_err());
        }
    }

    #[test]
    fn server_names() {
        assert_eq!(
            server_name("127.0.0.1:2376").unwrap(),
            ServerName::try_from("127.0.0.1").unwrap()
        );
        assert_eq!(
            server_name("localhost:2376").unwrap(),
            ServerName::try_from("localhost").unwrap()
        );
        assert_eq!(
            server_name("[::1]:2376").unwrap(),
            ServerName::try_from("::1").unwrap()
        );
    }
}
