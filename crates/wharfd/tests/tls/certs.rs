//! Test PKI made in-process with rcgen: a CA, a server certificate for 127.0.0.1/localhost and
//! client certificates, written as PEM files into a directory. Shared with the wharf CLI's
//! TLS tests (crates/wharf-cli/tests/tls.rs includes this file).

#![allow(dead_code)]

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// A certificate authority that can sign server and client certificates.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    /// The CA certificate, PEM.
    pub pem_path: PathBuf,
}

/// A certificate and its key, as files.
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn write(dir: &Path, name: &str, data: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn leaf_params(cn: &str, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> CertificateParams {
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut p = CertificateParams::new(sans).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![usage];
    p
}

impl Ca {
    /// A new CA; its certificate is written to `dir/ca.pem`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = p.self_signed(&key).unwrap();
        let pem_path = write(dir, "ca.pem", &cert.pem());
        Ca {
            cert,
            key,
            pem_path,
        }
    }

    fn sign(&self, dir: &Path, stem: &str, p: CertificateParams) -> Pair {
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        Pair {
            cert: write(dir, &format!("{stem}.pem"), &cert.pem()),
            key: write(dir, &format!("{stem}-key.pem"), &key.serialize_pem()),
        }
    }

    /// A server certificate for 127.0.0.1 and localhost.
    pub fn server(&self, dir: &Path) -> Pair {
        let p = leaf_params(
            "wharfd",
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        self.sign(dir, "server", p)
    }

    /// A client certificate.
    pub fn client(&self, dir: &Path) -> Pair {
        let p = leaf_params("client", &[], ExtendedKeyUsagePurpose::ClientAuth);
        self.sign(dir, "client", p)
    }
}

/// A self-signed server certificate for 127.0.0.1 and localhost (no CA).
pub fn self_signed_server(dir: &Path) -> Pair {
    let key = KeyPair::generate().unwrap();
    let p = leaf_params(
        "wharfd",
        &["127.0.0.1", "localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let cert = p.self_signed(&key).unwrap();
    Pair {
        cert: write(dir, "server.pem", &cert.pem()),
        key: write(dir, "server-key.pem", &key.serialize_pem()),
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Copies a pair and its CA into `dir` under docker's default names (ca.pem, cert.pem,
/// key.pem), for `DOCKER_CERT_PATH`.
pub fn docker_cert_dir(dir: &Path, ca: &Path, pair: &Pair) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(ca, dir.join("ca.pem")).unwrap();
    std::fs::copy(&pair.cert, dir.join("cert.pem")).unwrap();
    std::fs::copy(&pair.key, dir.join("key.pem")).unwrap();
    dir.to_path_buf()
}
