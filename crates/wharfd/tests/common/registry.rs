//! A local registry for one test: Debian's `docker-registry` with no auth, htpasswd basic
//! auth or token auth (an in-process token issuer), over plain HTTP or TLS only. Shared by
//! the wharfd and wharf-cli tests (the latter include this file by path).

#![allow(dead_code)]

use super::eventually;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Debian's `docker-registry` (distribution 2.8) on a random loopback port, for one test.
pub struct LocalRegistry {
    pub dir: tempfile::TempDir,
    pub addr: String,
    child: Child,
    /// The token endpoint, with token auth.
    pub issuer: Option<TokenIssuer>,
}

/// How a [`LocalRegistry`] authenticates its clients.
pub enum RegistryAuth {
    None,
    /// htpasswd (bcrypt) basic auth with one user.
    Basic {
        user: String,
        password: String,
    },
    /// Token auth: a [`TokenIssuer`] on loopback signs the tokens.
    Token {
        user: String,
        password: String,
    },
}

impl LocalRegistry {
    /// Starts it, or returns None (the test skips) when docker-registry is not installed.
    pub fn start() -> Option<LocalRegistry> {
        Self::start_with(RegistryAuth::None)
    }

    /// Starts one with `auth`, or None (the test skips) when docker-registry is missing.
    pub fn start_with(auth: RegistryAuth) -> Option<LocalRegistry> {
        Self::start_full(auth, false)
    }

    /// Starts one that speaks only HTTPS (a self-signed certificate for 127.0.0.1).
    pub fn start_tls() -> Option<LocalRegistry> {
        Self::start_full(RegistryAuth::None, true)
    }

    fn start_full(auth: RegistryAuth, tls: bool) -> Option<LocalRegistry> {
        let bin = Path::new("/usr/bin/docker-registry");
        if !bin.exists() {
            wharf_testkit::skip(
                "docker-registry is not installed: apt-get install docker-registry",
            );
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("wharf-reg-")
            .tempdir()
            .unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let auth_cfg = match &auth {
            RegistryAuth::None => (String::new(), None),
            RegistryAuth::Basic { user, password } => {
                let hash = bcrypt::hash(password, 4).unwrap();
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, format!("{user}:{hash}\n")).unwrap();
                (
                    format!(
                        "auth:\n  htpasswd:\n    realm: wharf-test\n    path: {}\n",
                        file.display()
                    ),
                    None,
                )
            }
            RegistryAuth::Token { user, password } => {
                let issuer = TokenIssuer::start(dir.path(), user, password);
                (
                    format!(
                        "auth:\n  token:\n    realm: http://{}/token\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                        issuer.addr,
                        TokenIssuer::SERVICE,
                        TokenIssuer::ISSUER,
                        issuer.cert.display()
                    ),
                    Some(issuer),
                )
            }
        };
        let tls_cfg = if tls {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
            params
                .subject_alt_names
                .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
            let cert = params.self_signed(&key).unwrap();
            let (c, k) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
            std::fs::write(&c, cert.pem()).unwrap();
            std::fs::write(&k, key.serialize_pem()).unwrap();
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                c.display(),
                k.display()
            )
        } else {
            String::new()
        };
        let cfg = dir.path().join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n{tls_cfg}log:\n  level: info\n  formatter: json\n{}",
                dir.path().join("data").display(),
                auth_cfg.0
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let reg = LocalRegistry {
            dir,
            addr,
            child,
            issuer: auth_cfg.1,
        };
        eventually("the registry listens", || {
            std::net::TcpStream::connect(&reg.addr).is_ok()
        });
        Some(reg)
    }
}

impl LocalRegistry {
    /// How many times the registry answered a GET of blob `digest` (from its access log).
    pub fn blob_gets(&self, digest: &str) -> usize {
        let log = std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
        log.lines()
            .filter(|l| {
                l.contains("response completed")
                    && l.contains("\"http.request.method\":\"GET\"")
                    && l.contains(&format!("/blobs/{digest}"))
            })
            .count()
    }

    /// How many requests with `method` whose URI contains `needle` the registry answered
    /// with `status` (any status when None), from its access log.
    pub fn requests(&self, method: &str, needle: &str, status: Option<u16>) -> usize {
        let log = std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                v["msg"] == "response completed"
                    && v["http.request.method"] == method
                    && v["http.request.uri"]
                        .as_str()
                        .is_some_and(|u| u.contains(needle))
                    && status.is_none_or(|s| v["http.response.status"] == s)
            })
            .count()
    }

    /// The file holding blob `digest` in the registry's storage.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

fn free_port() -> u16 {
    // An ephemeral port the kernel picked, released just before the server binds it.
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A token endpoint for distribution's token auth: answers `GET /token?service=&scope=`
/// for one user (basic auth) with an ES256 JWT granting the scopes asked, signed by a
/// self-signed certificate the registry trusts (`rootcertbundle`, and `x5c` in the header).
pub struct TokenIssuer {
    pub addr: String,
    pub cert: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Token requests answered, by scope.
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// The scopes of each token request, together.
    pub grants: std::sync::Arc<std::sync::Mutex<Vec<Vec<String>>>>,
}

impl TokenIssuer {
    pub const SERVICE: &'static str = "wharf-test-registry";
    pub const ISSUER: &'static str = "wharf-test-issuer";

    pub fn start(dir: &Path, user: &str, password: &str) -> TokenIssuer {
        use base64::Engine as _;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(vec!["wharf-test-issuer".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let cert_path = dir.join("token-cert.pem");
        std::fs::write(&cert_path, cert.pem()).unwrap();
        let x5c = base64::engine::general_purpose::STANDARD.encode(cert.der());
        let rng = ring::rand::SystemRandom::new();
        let signer = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &rng,
        )
        .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let grants = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let user = user.to_string();
        let (stop2, req2, grants2) = (stop.clone(), requests.clone(), grants.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
                let (mut conn, _) = match listener.accept() {
                    Ok(c) => c,
                    Err(_) => {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        continue;
                    }
                };
                conn.set_nonblocking(false).unwrap();
                let head = read_head(&mut conn);
                let line = head.lines().next().unwrap_or_default().to_string();
                let authorized = head.lines().any(|l| {
                    l.to_ascii_lowercase().starts_with("authorization:") && l[14..].trim() == basic
                });
                let query = line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|t| t.split_once('?'))
                    .map(|(_, q)| q.to_string())
                    .unwrap_or_default();
                let scopes: Vec<String> = query
                    .split('&')
                    .filter_map(|kv| kv.strip_prefix("scope="))
                    .map(percent_decode)
                    .collect();
                req2.lock().unwrap().extend(scopes.iter().cloned());
                grants2.lock().unwrap().push(scopes.clone());
                if !authorized && head.to_ascii_lowercase().contains("authorization:") {
                    let _ = conn.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    continue;
                }
                let access: Vec<serde_json::Value> = if authorized {
                    scopes
                        .iter()
                        .filter_map(|s| {
                            let mut p = s.splitn(3, ':');
                            let (t, name, actions) = (p.next()?, p.next()?, p.next()?);
                            Some(serde_json::json!({"type": t, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
                        })
                        .collect()
                } else {
                    vec![]
                };
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
                let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [x5c]});
                let claims = serde_json::json!({
                    "iss": TokenIssuer::ISSUER, "sub": if authorized { user.as_str() } else { "" },
                    "aud": TokenIssuer::SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
                    "jti": format!("{now}-{}", req2.lock().unwrap().len()), "access": access,
                });
                let signing_input = format!(
                    "{}.{}",
                    b64(header.to_string().as_bytes()),
                    b64(claims.to_string().as_bytes())
                );
                let sig = signer.sign(&rng, signing_input.as_bytes()).unwrap();
                let jwt = format!("{signing_input}.{}", b64(sig.as_ref()));
                let body = serde_json::json!({"token": jwt, "access_token": jwt, "expires_in": 300, "issued_at": ""}).to_string();
                let _ = conn.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            }
        });
        TokenIssuer {
            addr,
            cert: cert_path,
            stop,
            thread: Some(thread),
            requests,
            grants,
        }
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_head(conn: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut buf = Vec::new();
    let mut b = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut b) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy in front of `target` (one request per connection, as wharf's client makes
/// them) that cuts the first response to a request whose first line contains `needle` after
/// `cut` bytes, as a dropped connection would.
pub struct FlakyProxy {
    pub addr: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub cuts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Requests whose first line contained the needle.
    pub hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FlakyProxy {
    pub fn start(target: &str, needle: &str, cut: usize) -> FlakyProxy {
        Self::start_full(target, needle, cut, None)
    }

    /// A proxy that cuts nothing but adds `header` (`Name: value`) to the answers to requests
    /// whose first line contains `needle`.
    pub fn inject(target: &str, needle: &str, header: &str) -> FlakyProxy {
        Self::start_full(target, needle, usize::MAX, Some(header.to_string()))
    }

    fn start_full(target: &str, needle: &str, cut: usize, header: Option<String>) -> FlakyProxy {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering::SeqCst;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cuts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (stop2, cuts2, hits2) = (stop.clone(), cuts.clone(), hits.clone());
        let (target, needle) = (target.to_string(), needle.to_string());
        std::thread::spawn(move || {
            while !stop2.load(SeqCst) {
                let Ok((mut client, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                // wharf tries TLS first on an insecure registry: refuse it, as a plain
                // HTTP server's error would, so that it falls back to HTTP.
                let mut first_byte = [0u8; 1];
                if client.peek(&mut first_byte).is_ok_and(|n| n == 1) && first_byte[0] == 0x16 {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let _ = client.set_read_timeout(Some(std::time::Duration::from_secs(30)));
                let mut head = Vec::new();
                let mut b = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match client.read(&mut b) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&b[..n]),
                    }
                }
                let first = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                let Ok(mut up) = std::net::TcpStream::connect(&target) else {
                    continue;
                };
                up.write_all(&head).unwrap();
                if first.contains(&needle) {
                    hits2.fetch_add(1, SeqCst);
                }
                let cut_this =
                    header.is_none() && first.contains(&needle) && cuts2.load(SeqCst) == 0;
                let inject = header.clone().filter(|_| first.contains(&needle));
                if cut_this {
                    cuts2.fetch_add(1, SeqCst);
                }
                let (mut c2, mut u2) = (client.try_clone().unwrap(), up.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut u2);
                    let _ = u2.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    if cut_this {
                        let mut left = cut;
                        while left > 0 {
                            match up.read(&mut b) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    let n = n.min(left);
                                    if client.write_all(&b[..n]).is_err() {
                                        break;
                                    }
                                    left -= n;
                                }
                            }
                        }
                        let _ = client.shutdown(std::net::Shutdown::Both);
                        let _ = up.shutdown(std::net::Shutdown::Both);
                    } else {
                        if let Some(h) = inject {
                            // The answer's head, with the header added before its end.
                            let mut head = Vec::new();
                            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                                match up.read(&mut b[..1]) {
                                    Ok(1) => head.push(b[0]),
                                    _ => break,
                                }
                            }
                            let text = String::from_utf8_lossy(&head);
                            let text = text.trim_end_matches("\r\n");
                            let _ = client.write_all(format!("{text}\r\n{h}\r\n\r\n").as_bytes());
                        }
                        let _ = std::io::copy(&mut up, &mut client);
                        let _ = client.shutdown(std::net::Shutdown::Both);
                    }
                });
            }
        });
        FlakyProxy {
            addr,
            stop,
            cuts,
            hits,
        }
    }
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
