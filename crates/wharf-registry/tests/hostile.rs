//! A hostile registry on loopback: one that points its token realm at a plain-HTTP host to
//! harvest the user's password, and one that answers with an endless manifest.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wharf_registry::{Credentials, Registry, RegistryError};

/// Serves `answer(request_line)` to every connection; returns the address and a log of the
/// request heads it saw.
async fn fake_registry(
    answer: fn(&str) -> Vec<u8>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                loop {
                    let mut head = Vec::new();
                    let mut b = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match s.read(&mut b).await {
                            // A TLS ClientHello: this registry speaks plain HTTP only.
                            Ok(1) if head.is_empty() && b[0] == 0x16 => return,
                            Ok(1) => head.push(b[0]),
                            _ => return,
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    log.lock().unwrap().push(head.clone());
                    let line = head.lines().next().unwrap_or_default().to_string();
                    if s.write_all(&answer(&line)).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

fn creds() -> Credentials {
    Credentials {
        username: "alice".into(),
        password: "s3cret".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn credentials_are_not_sent_to_a_plain_http_token_realm() {
    let (addr, seen) = fake_registry(|_| {
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nWWW-Authenticate: Bearer realm=\"http://harvest.invalid/token\",service=\"r\"\r\n\r\n".to_vec()
    })
    .await;
    let e = Registry::connect(&addr, true, Some(creds()), "library/x", "pull")
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(e, RegistryError::Unsupported(_)) && e.to_string().contains("plain HTTP"),
        "{e}"
    );
    // Only the ping reached anything, and it carried no credentials.
    let seen = seen.lock().unwrap();
    assert!(
        seen.iter().all(|h| !h.contains("Authorization")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn an_oversized_manifest_is_refused_without_buffering_it() {
    let (addr, _) = fake_registry(|line| {
        if line.contains("/manifests/") {
            // Claims and sends (as far as the client reads) 64 MiB.
            let mut r = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 67108864\r\n\r\n".to_vec();
            r.extend(std::iter::repeat_n(b' ', 5 << 20));
            r
        } else {
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".to_vec()
        }
    })
    .await;
    let r = Registry::connect(&addr, true, None, "library/x", "pull")
        .await
        .unwrap();
    let e = r.manifest("library/x", "latest").await.unwrap_err();
    assert!(e.to_string().contains("more than 4096 KiB"), "{e}");
}
