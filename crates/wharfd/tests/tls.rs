//! wharfd serving HTTPS on tcp://, driven by the real docker CLI: mutual TLS with
//! --tlsverify, refusals of clients without a good certificate or without TLS, --tls alone,
//! and tcp:// without TLS refused unless --insecure-tcp.

#[path = "tls/certs.rs"]
mod certs;
mod common;

use certs::{Ca, Pair};
use common::{stderr, stdout, Daemon, DOCKER};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// A TLS daemon on a loopback port plus the files its clients need.
struct TlsDaemon {
    d: Daemon,
    addr: String,
    pki: tempfile::TempDir,
}

impl TlsDaemon {
    /// wharfd on tcp://127.0.0.1:<free port> with `tls_flags` (cert paths appended).
    fn start(
        server: &Pair,
        ca: Option<&Path>,
        tls_flags: &[&str],
        pki: tempfile::TempDir,
    ) -> TlsDaemon {
        let port = certs::free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut args: Vec<String> = vec!["-H".into(), format!("tcp://{addr}")];
        args.extend(tls_flags.iter().map(|s| s.to_string()));
        if let Some(ca) = ca {
            args.push(format!("--tlscacert={}", ca.display()));
        }
        args.push(format!("--tlscert={}", server.cert.display()));
        args.push(format!("--tlskey={}", server.key.display()));
        let d = Daemon::start_with(&args, None);
        TlsDaemon { d, addr, pki }
    }

    /// The docker CLI against the TCP address, with `tls_args` and nothing from the
    /// environment or ~/.docker (an empty DOCKER_CERT_PATH and DOCKER_CONFIG).
    fn docker(&self, tls_args: &[String], args: &[&str], stdin: Option<&[u8]>) -> Output {
        let empty = self.pki.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let mut cmd = Command::new(DOCKER);
        cmd.env("DOCKER_CONFIG", &empty)
            .env("DOCKER_CERT_PATH", &empty)
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_TLS")
            .env_remove("DOCKER_CONTEXT")
            .arg("-H")
            .arg(format!("tcp://{}", self.addr))
            .args(tls_args)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run docker");
        if let Some(data) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(data).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    fn ok(&self, tls_args: &[String], args: &[&str], stdin: Option<&[u8]>) -> String {
        let o = self.docker(tls_args, args, stdin);
        assert!(
            o.status.success(),
            "docker {tls_args:?} {args:?}: {}\n--- wharfd log ---\n{}",
            stderr(&o),
            self.d.log()
        );
        stdout(&o)
    }

    fn fails(&self, tls_args: &[String], what: &str) -> String {
        let o = self.docker(
            tls_args,
            &["version", "--format", "{{.Server.Version}}"],
            None,
        );
        assert!(
            !o.status.success(),
            "{what}: docker {tls_args:?} version succeeded: {}",
            stdout(&o)
        );
        eprintln!("{what}: {}", stderr(&o).trim());
        stderr(&o)
    }
}

fn verify_args(ca: &Path, client: Option<&Pair>) -> Vec<String> {
    let mut v = vec![
        "--tlsverify".to_string(),
        format!("--tlscacert={}", ca.display()),
    ];
    if let Some(c) = client {
        v.push(format!("--tlscert={}", c.cert.display()));
        v.push(format!("--tlskey={}", c.key.display()));
    }
    v
}

/// `GET /_ping` with a rustls client that presents `client` whatever CAs the server names;
/// the answer, or the TLS or I/O error.
fn raw_ping(addr: &str, ca: &Path, client: &Pair) -> Result<String, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use std::io::{Read, Write};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let certs = CertificateDer::pem_file_iter(&client.cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(&client.key).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
    let sock = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut s = rustls::StreamOwned::new(conn, sock);
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: wharf\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Err(e) if out.is_empty() => Err(e.to_string()),
        _ => Ok(String::from_utf8_lossy(&out).into_owned()),
    }
}

fn pki() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("wharf-tls-")
        .tempdir()
        .unwrap()
}

#[test]
fn docker_cli_runs_containers_over_mutual_tls() {
    require_env!();
    let pki = pki();
    let ca = Ca::new(&pki.path().join("ca"), "wharf test CA");
    let server = ca.server(&pki.path().join("server"));
    let client = ca.client(&pki.path().join("client"));
    let ca_pem = ca.pem_path.clone();
    let t = TlsDaemon::start(&server, Some(&ca_pem), &["--tlsverify"], pki);
    t.d.busybox();
    let tls = verify_args(&ca_pem, Some(&client));
    let v = t.ok(&tls, &["version", "--format", "{{.Server.Version}}"], None);
    assert!(!v.trim().is_empty(), "no server version");
    assert_eq!(
        t.ok(&tls, &["run", "--rm", "busybox", "echo", "hi"], None),
        "hi\n"
    );
    // Input, then its end, travel over the TLS stream (half-close) and the output comes back.
    let out = t.ok(
        &tls,
        &["run", "--rm", "-i", "busybox", "cat"],
        Some(b"over tls\n"),
    );
    assert_eq!(out, "over tls\n");
    // docker's environment variables select the same files.
    let dir = certs::docker_cert_dir(&t.pki.path().join("env"), &ca_pem, &client);
    let mut cmd = Command::new(DOCKER);
    let o = cmd
        .env("DOCKER_CONFIG", &dir)
        .env("DOCKER_CERT_PATH", &dir)
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_HOST", format!("tcp://{}", t.addr))
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .unwrap();
    assert!(o.status.success(), "DOCKER_TLS_VERIFY: {}", stderr(&o));
}

#[test]
fn tlsverify_refuses_clients_without_a_certificate_from_its_ca() {
    require_env!();
    let pki = pki();
    let ca = Ca::new(&pki.path().join("ca"), "wharf test CA");
    let server = ca.server(&pki.path().join("server"));
    let other = Ca::new(&pki.path().join("other"), "another CA");
    let stranger = other.client(&pki.path().join("stranger"));
    let ca_pem = ca.pem_path.clone();
    let t = TlsDaemon::start(&server, Some(&ca_pem), &["--tlsverify"], pki);

    t.fails(&verify_args(&ca_pem, None), "no client certificate");
    // Go's client sends no certificate that the server's list of CAs does not name...
    t.fails(
        &verify_args(&ca_pem, Some(&stranger)),
        "a client certificate from another CA",
    );
    // ...so present one anyway with rustls: the server must reject it.
    let e = raw_ping(&t.addr, &ca_pem, &stranger)
        .expect_err("a foreign client certificate was accepted");
    assert!(
        e.contains("BadCertificate") || e.contains("UnknownCA") || e.contains("alert"),
        "{e}"
    );
    let good = ca.client(&t.pki.path().join("good"));
    let ok = raw_ping(&t.addr, &ca_pem, &good).expect("a client certificate from the CA");
    assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
    let e = t.fails(&[], "plain HTTP to the TLS port");
    assert!(!e.is_empty());
    // And the client refuses a server its CA did not sign.
    t.fails(
        &verify_args(&other.pem_path, Some(&stranger)),
        "a server certificate from an untrusted CA",
    );
    let log = t.d.log();
    assert!(
        log.contains("TLS handshake with"),
        "no handshake failure logged:\n{log}"
    );
}

#[test]
fn tls_without_verify_serves_clients_without_certificates() {
    require_env!();
    let pki = pki();
    let server = certs::self_signed_server(&pki.path().join("server"));
    let other = Ca::new(&pki.path().join("other"), "another CA");
    let t = TlsDaemon::start(&server, None, &["--tls"], pki);
    // --tls alone: encrypted, the (self-signed) server is not verified, no client certificate.
    // docker reads --tlscacert even then (it fails when the file is missing) but does not use
    // it: an unrelated CA works.
    let v = t.ok(
        &[
            "--tls".to_string(),
            format!("--tlscacert={}", other.pem_path.display()),
        ],
        &["version", "--format", "{{.Server.Version}}"],
        None,
    );
    assert!(!v.trim().is_empty());
    // --tlsverify checks the server against the CA, which did not sign it.
    t.fails(
        &verify_args(&other.pem_path, None),
        "an unverifiable server",
    );
    assert!(
        t.d.log().contains("without --tlsverify"),
        "no warning:\n{}",
        t.d.log()
    );
}

fn wharfd(args: &[&str]) -> Output {
    let dir = pki();
    Command::new(env!("CARGO_BIN_EXE_wharfd"))
        .arg("--data-root")
        .arg(dir.path().join("data"))
        .arg("--exec-root")
        .arg(dir.path().join("exec"))
        .arg("--config-file")
        .arg(dir.path().join("none.json"))
        .arg("--shim-path")
        .arg("/bin/true")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn tcp_without_tls_is_refused_with_what_to_do() {
    let port = certs::free_port().to_string();
    let o = wharfd(&["-H", &format!("tcp://127.0.0.1:{port}"), "--bridge", "none"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("without TLS") && e.contains("--tlsverify") && e.contains("--insecure-tcp"),
        "{e}"
    );
}

#[test]
fn tls_with_missing_certificates_names_the_file() {
    let port = certs::free_port().to_string();
    let missing = PathBuf::from("/nonexistent/wharf-test");
    let o = wharfd(&[
        "-H",
        &format!("tcp://127.0.0.1:{port}"),
        "--bridge",
        "none",
        "--tlsverify",
        &format!("--tlscacert={}", missing.join("ca.pem").display()),
        &format!("--tlscert={}", missing.join("cert.pem").display()),
        &format!("--tlskey={}", missing.join("key.pem").display()),
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("--tlscert /nonexistent/wharf-test/cert.pem"),
        "{e}"
    );
}

/// The Python docker SDK (the venv `.ci/run` makes) over mutual TLS: `docker.tls.TLSConfig`
/// with the CA and a client certificate; refused without the certificate.
#[test]
fn python_sdk_over_mutual_tls() {
    require_env!();
    let venv = std::env::var("WHARF_TEST_VENV").unwrap_or_else(|_| "/var/tmp/wharf-venv".into());
    let python = Path::new(&venv).join("bin/python");
    let has_sdk = python.exists()
        && Command::new(&python)
            .args(["-c", "import docker"])
            .status()
            .is_ok_and(|s| s.success());
    if !has_sdk {
        wharf_testkit::skip(format!(
            "no venv with the docker SDK at {venv} (.ci/run makes one)"
        ));
        return;
    }
    let pki = pki();
    let ca = Ca::new(&pki.path().join("ca"), "wharf test CA");
    let server = ca.server(&pki.path().join("server"));
    let client = ca.client(&pki.path().join("client"));
    let ca_pem = ca.pem_path.clone();
    let t = TlsDaemon::start(&server, Some(&ca_pem), &["--tlsverify"], pki);
    t.d.busybox();
    let script = r#"
import sys, docker
url, ca, cert, key = sys.argv[1:5]
tls = docker.tls.TLSConfig(client_cert=(cert, key), ca_cert=ca, verify=True)
c = docker.DockerClient(base_url=url, tls=tls)
assert c.version()["ApiVersion"], "no version"
out = c.containers.run("busybox", ["echo", "hi"], remove=True)
assert out == b"hi\n", out
try:
    docker.DockerClient(base_url=url, tls=docker.tls.TLSConfig(ca_cert=ca, verify=True)).version()
except Exception as e:
    print("refused without a client certificate:", type(e).__name__)
else:
    sys.exit("a client without a certificate was served")
"#;
    let o = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(format!("https://{}", t.addr))
        .arg(&ca_pem)
        .arg(&client.cert)
        .arg(&client.key)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_TLS_VERIFY")
        // requests lets these override the SDK's CA (a known requests quirk).
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "python SDK: {}{}\n--- wharfd log ---\n{}",
        stdout(&o),
        stderr(&o),
        t.d.log()
    );
    assert!(stdout(&o).contains("refused without a client certificate"));
}
