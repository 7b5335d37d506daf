//! The wharf CLI over TLS to wharfd on a loopback port: mutual TLS runs containers; a missing
//! or foreign client certificate, plain HTTP and an untrusted daemon are refused; `--tls`
//! alone talks to a self-signed daemon; docker's environment variables select the same.

#[path = "../../wharfd/tests/tls/certs.rs"]
mod certs;
mod common;

use certs::{Ca, Pair};
use common::{stderr, stdout, Daemon, WHARF};
use std::path::Path;
use std::process::{Command, Output, Stdio};

struct TlsDaemon {
    d: Daemon,
    addr: String,
    pki: tempfile::TempDir,
}

impl TlsDaemon {
    fn start(server: &Pair, ca: Option<&Path>, mode: &str, pki: tempfile::TempDir) -> TlsDaemon {
        let addr = format!("127.0.0.1:{}", certs::free_port());
        let mut args = vec![
            "-H".to_string(),
            format!("tcp://{addr}"),
            mode.to_string(),
            format!("--tlscert={}", server.cert.display()),
            format!("--tlskey={}", server.key.display()),
        ];
        if let Some(ca) = ca {
            args.push(format!("--tlscacert={}", ca.display()));
        }
        TlsDaemon {
            d: Daemon::start_with(&args),
            addr,
            pki,
        }
    }

    /// wharf against the TCP address with `tls_args` and `envs`, and no certificates from
    /// the environment or ~/.docker unless `envs` sets them.
    fn wharf(
        &self,
        tls_args: &[String],
        envs: &[(&str, &Path)],
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Output {
        let empty = self.pki.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let mut cmd = Command::new(WHARF);
        for k in [
            "DOCKER_HOST",
            "WHARF_HOST",
            "DOCKER_TLS",
            "DOCKER_TLS_VERIFY",
        ] {
            cmd.env_remove(k);
        }
        cmd.env("DOCKER_CONFIG", &empty)
            .env("DOCKER_CERT_PATH", &empty)
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
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("run wharf");
        if let Some(data) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(data).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    fn ok(&self, tls_args: &[String], args: &[&str], stdin: Option<&[u8]>) -> String {
        let o = self.wharf(tls_args, &[], args, stdin);
        assert!(
            o.status.success(),
            "wharf {tls_args:?} {args:?}: {}\n--- wharfd log ---\n{}",
            stderr(&o),
            self.d.log()
        );
        stdout(&o)
    }

    /// `wharf version` fails; returns its error output.
    fn fails(&self, tls_args: &[String], what: &str) -> String {
        let o = self.wharf(
            tls_args,
            &[],
            &["version", "--format", "{{.Server.Version}}"],
            None,
        );
        assert!(
            !o.status.success(),
            "{what}: wharf {tls_args:?} version succeeded: {}",
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

fn pki() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("wharf-cli-tls-")
        .tempdir()
        .unwrap()
}

#[test]
fn wharf_runs_containers_over_mutual_tls() {
    require_env!();
    let pki = pki();
    let ca = Ca::new(&pki.path().join("ca"), "wharf test CA");
    let server = ca.server(&pki.path().join("server"));
    let client = ca.client(&pki.path().join("client"));
    let ca_pem = ca.pem_path.clone();
    let t = TlsDaemon::start(&server, Some(&ca_pem), "--tlsverify", pki);
    t.d.busybox();
    let tls = verify_args(&ca_pem, Some(&client));
    let v = t.ok(&tls, &["version", "--format", "{{.Server.Version}}"], None);
    assert!(!v.trim().is_empty());
    assert_eq!(
        t.ok(&tls, &["run", "--rm", "busybox", "echo", "hi"], None),
        "hi\n"
    );
    let out = t.ok(
        &tls,
        &["run", "--rm", "-i", "busybox", "cat"],
        Some(b"over tls\n"),
    );
    assert_eq!(out, "over tls\n");

    // DOCKER_TLS_VERIFY and DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem) instead of flags.
    let dir = certs::docker_cert_dir(&t.pki.path().join("env"), &ca_pem, &client);
    let o = t.wharf(
        &[],
        &[
            ("DOCKER_TLS_VERIFY", Path::new("1")),
            ("DOCKER_CERT_PATH", &dir),
        ],
        &["info", "--format", "{{.ServerVersion}}"],
        None,
    );
    assert!(o.status.success(), "DOCKER_TLS_VERIFY: {}", stderr(&o));
}

#[test]
fn wharf_is_refused_without_a_certificate_from_the_daemons_ca() {
    require_env!();
    let pki = pki();
    let ca = Ca::new(&pki.path().join("ca"), "wharf test CA");
    let server = ca.server(&pki.path().join("server"));
    let other = Ca::new(&pki.path().join("other"), "another CA");
    let stranger = other.client(&pki.path().join("stranger"));
    let ca_pem = ca.pem_path.clone();
    let t = TlsDaemon::start(&server, Some(&ca_pem), "--tlsverify", pki);

    let e = t.fails(&verify_args(&ca_pem, None), "no client certificate");
    assert!(e.contains("TLS with") && e.contains("--tlscert"), "{e}");
    // rustls sends its certificate whatever CAs the daemon names: the daemon rejects it.
    let e = t.fails(
        &verify_args(&ca_pem, Some(&stranger)),
        "a certificate of another CA",
    );
    assert!(e.contains("TLS with"), "{e}");
    t.fails(&[], "plain HTTP to the TLS port");
    let e = t.fails(
        &verify_args(&other.pem_path, Some(&stranger)),
        "an untrusted daemon",
    );
    assert!(
        e.contains("UnknownIssuer") || e.contains("unknown issuer"),
        "{e}"
    );
}

#[test]
fn wharf_tls_without_verify_talks_to_a_self_signed_daemon() {
    require_env!();
    let pki = pki();
    let server = certs::self_signed_server(&pki.path().join("server"));
    let other = Ca::new(&pki.path().join("other"), "another CA");
    let t = TlsDaemon::start(&server, None, "--tls", pki);
    let v = t.ok(
        &["--tls".to_string()],
        &["version", "--format", "{{.Server.Version}}"],
        None,
    );
    assert!(!v.trim().is_empty());
    // DOCKER_TLS=1 does the same as --tls.
    let o = t.wharf(&[], &[("DOCKER_TLS", Path::new("1"))], &["version"], None);
    assert!(o.status.success(), "DOCKER_TLS: {}", stderr(&o));
    // --tlsverify checks the daemon against a CA that did not sign it.
    t.fails(
        &verify_args(&other.pem_path, None),
        "an unverifiable daemon",
    );
    // TLS to a daemon that does not speak it fails too (the fixture's unix socket is not
    // TLS, so use tcp to a plain listener: the same port answered by a non-TLS peer).
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = plain.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = plain.accept() {
            use std::io::Write;
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    let o = Command::new(WHARF)
        .env_remove("DOCKER_HOST")
        .args(["--tls", "-H", &format!("tcp://{addr}"), "version"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("TLS with"), "{}", stderr(&o));
}
