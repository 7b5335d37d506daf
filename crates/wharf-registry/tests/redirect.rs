//! Registries that serve blobs from another host (a CDN or object store: Docker Hub, ECR,
//! GCR, Harbor on S3 all do) answer a blob GET with a redirect to a signed URL there. The
//! client follows it over verified TLS, without the registry's Authorization header.
//!
//! One test function: the CDN's CA is trusted through SSL_CERT_FILE, which the process reads
//! once.

#[path = "../../wharfd/tests/tls/certs.rs"]
mod certs;

use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wharf_registry::{Credentials, Registry};

type Log = Arc<Mutex<Vec<String>>>;

/// Reads one request head; None at EOF or on a TLS ClientHello when `plain`.
async fn read_head<S: tokio::io::AsyncRead + Unpin>(s: &mut S, plain: bool) -> Option<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b).await {
            Ok(1) if plain && head.is_empty() && b[0] == 0x16 => return None,
            Ok(1) => head.push(b[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// A plain-HTTP registry on loopback that wants basic auth and redirects every blob GET to
/// `redirect_to`.
async fn registry(redirect_to: String) -> (String, Log) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let seen: Log = Default::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let (log, to) = (log.clone(), redirect_to.clone());
            tokio::spawn(async move {
                while let Some(head) = read_head(&mut s, true).await {
                    // hyper sends header names in lower case.
                    let head = head.to_ascii_lowercase();
                    log.lock().unwrap().push(head.clone());
                    let authed = head.contains("authorization: basic");
                    let answer = if !authed {
                        "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nWWW-Authenticate: Basic realm=\"r\"\r\n\r\n".to_string()
                    } else if head.starts_with("get /v2/ ") {
                        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_string()
                    } else {
                        format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n")
                    };
                    if s.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// An HTTPS server with `pair`'s certificate: `/hop` redirects (relatively) to `/blob`,
/// `/blob?sig=ok` serves `blob`, anything else is a 403.
async fn cdn(pair: &certs::Pair, blob: Vec<u8>) -> (u16, Log) {
    use rustls_pki_types::pem::PemObject;
    let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_file_iter(&pair.cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(&pair.key).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let seen: Log = Default::default();
    let log = seen.clone();
    let blob = Arc::new(blob);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let (acceptor, log, blob) = (acceptor.clone(), log.clone(), blob.clone());
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(tcp).await else {
                    return;
                };
                while let Some(head) = read_head(&mut s, false).await {
                    let head = head.to_ascii_lowercase();
                    log.lock().unwrap().push(head.clone());
                    let r = if head.starts_with("get /hop ") {
                        b"HTTP/1.1 302 Found\r\nLocation: /blob?sig=ok\r\nContent-Length: 0\r\n\r\n"
                            .to_vec()
                    } else if head.starts_with("get /blob?sig=ok ") {
                        let mut r =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", blob.len())
                                .into_bytes();
                        r.extend_from_slice(&blob);
                        r
                    } else {
                        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".to_vec()
                    };
                    if s.write_all(&r).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, seen)
}

fn creds() -> Credentials {
    Credentials {
        username: "alice".into(),
        password: "s3cret".into(),
        ..Default::default()
    }
}

async fn pull_blob(registry: &str, digest: &str, dest: &std::path::Path) -> Result<u64, String> {
    let r = Registry::connect(registry, true, Some(creds()), "library/x", "pull")
        .await
        .map_err(|e| e.to_string())?;
    r.blob_to_file("library/x", digest, dest, &mut |_| {})
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn blob_redirects_to_another_host_are_followed_over_verified_tls_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certs::Ca::new(&dir.path().join("ca"), "test CDN CA");
    // SAFETY-free in edition 2021; the only test in this binary, set before any TLS use.
    std::env::set_var("SSL_CERT_FILE", &ca.pem_path);
    let trusted = ca.server(&dir.path().join("trusted"));
    let untrusted = certs::self_signed_server(&dir.path().join("untrusted"));

    let blob = b"a layer served from a CDN".repeat(1000);
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&blob)));
    let (cdn_port, cdn_seen) = cdn(&trusted, blob.clone()).await;

    // A redirect to another host (localhost, not the registry's 127.0.0.1), which redirects
    // again relatively: the blob arrives and is verified.
    let (reg, reg_seen) = registry(format!("https://localhost:{cdn_port}/hop")).await;
    let dest = dir.path().join("blob");
    let n = pull_blob(&reg, &digest, &dest)
        .await
        .expect("pull through the CDN");
    assert_eq!(n, blob.len() as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), blob);
    // The registry did get the credentials; the CDN never did, and saw its own Host.
    assert!(reg_seen
        .lock()
        .unwrap()
        .iter()
        .any(|h| h.contains("/blobs/") && h.contains("authorization: basic")));
    let seen = cdn_seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].starts_with("get /hop ") && seen[1].starts_with("get /blob?sig=ok "));
    for h in &seen {
        assert!(!h.contains("authorization"), "{h}");
        assert!(
            h.contains(&format!("host: localhost:{cdn_port}\r\n")),
            "{h}"
        );
    }

    // A CDN whose certificate no trusted CA signed is refused (no unverified TLS for another
    // host, even though the registry itself is insecure), and nothing is left at dest.
    let (bad_port, bad_seen) = cdn(&untrusted, blob.clone()).await;
    let (reg2, _) = registry(format!("https://localhost:{bad_port}/blob?sig=ok")).await;
    let dest2 = dir.path().join("blob2");
    let e = pull_blob(&reg2, &digest, &dest2)
        .await
        .expect_err("untrusted CDN");
    assert!(e.contains("certificate"), "{e}");
    assert!(bad_seen.lock().unwrap().is_empty());
    assert!(!dest2.exists());

    // Plain HTTP to a host that is not loopback is refused before connecting.
    let (reg3, _) = registry("http://cdn.invalid/blob".into()).await;
    let e = pull_blob(&reg3, &digest, &dir.path().join("blob3"))
        .await
        .expect_err("plain http");
    assert!(e.contains("plain-HTTP") && e.contains("https://"), "{e}");

    // A wrong blob from the CDN is a digest error, as from the registry.
    let (reg4, _) = registry(format!("https://localhost:{cdn_port}/hop")).await;
    let wrong = format!("sha256:{}", "0".repeat(64));
    let e = pull_blob(&reg4, &wrong, &dir.path().join("blob4"))
        .await
        .expect_err("digest");
    assert!(e.contains("digest mismatch"), "{e}");
}
