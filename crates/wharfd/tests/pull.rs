//! Pulls against a real registry (docker-registry on loopback) through wharfd with the docker
//! CLI: a corrupt blob stores nothing, and layers shared by concurrent pulls are fetched once.

mod common;

use common::registry::FlakyProxy;
use common::{Daemon, LocalRegistry};

/// Pushes `busybox` and a child image (one more layer) to `reg` with skopeo, from an archive
/// saved by `d`. Returns (base ref, child ref).
fn push_base_and_child(d: &Daemon, reg: &LocalRegistry) -> (String, String) {
    d.busybox_and_child();
    let archive = d.dir.path().join("both.tar");
    d.ok(&[
        "save",
        "-o",
        archive.to_str().unwrap(),
        "busybox",
        "child:1",
    ]);
    for (src, dst) in [("busybox:latest", "t/base:1"), ("child:1", "t/child:1")] {
        let o = std::process::Command::new("skopeo")
            .args([
                "copy",
                "--dest-tls-verify=false",
                &format!("docker-archive:{}:{src}", archive.display()),
                &format!("docker://{}/{dst}", reg.addr),
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "skopeo: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    (
        format!("{}/t/base:1", reg.addr),
        format!("{}/t/child:1", reg.addr),
    )
}

/// The layer digests of `reference` in the registry (skopeo inspect).
fn layers(reference: &str) -> Vec<String> {
    let o = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn corrupt_blob_is_refused_and_nothing_is_stored() {
    require_env!();
    let Some(reg) = LocalRegistry::start() else {
        return;
    };
    let d = Daemon::start();
    let (_, child) = push_base_and_child(&d, &reg);
    let top = layers(&child).pop().unwrap();
    // Same size, other bytes: only the digest can tell.
    let f = reg.blob_file(&top);
    let mut data = std::fs::read(&f).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&f, &data).unwrap();

    let e = Daemon::start();
    let o = e.docker(&["pull", &child]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!o.status.success(), "a corrupt blob was accepted: {text}");
    assert!(text.contains("digest mismatch"), "{text}");
    assert_eq!(e.ok(&["images", "-q"]).trim(), "", "an image was stored");
    // The intact base layer may be kept; the corrupt one is not.
    let layers_dir = e.dir.path().join("data/layers");
    let published = std::fs::read_dir(&layers_dir)
        .map(|rd| {
            rd.flatten()
                .filter(|x| x.path().join("meta.json").exists())
                .count()
        })
        .unwrap_or(0);
    assert!(
        published <= 1,
        "the corrupt layer was published ({published} layers)"
    );
}

#[test]
fn concurrent_pulls_fetch_a_shared_layer_once() {
    require_env!();
    let Some(reg) = LocalRegistry::start() else {
        return;
    };
    let d = Daemon::start();
    let (base, child) = push_base_and_child(&d, &reg);
    let shared = layers(&base)[0].clone();
    let before = reg.blob_gets(&shared);

    let e = Daemon::start();
    let (host, b, c) = (e.host(), base.clone(), child.clone());
    let pull = |r: String, h: String| {
        std::thread::spawn(move || {
            std::process::Command::new(common::DOCKER)
                .args(["-H", &h, "pull", &r])
                .output()
                .unwrap()
        })
    };
    let (t1, t2) = (pull(b, host.clone()), pull(c, host));
    for o in [t1.join().unwrap(), t2.join().unwrap()] {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(
        reg.blob_gets(&shared) - before,
        1,
        "the shared layer {shared} was fetched more than once"
    );
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            &child,
            "sh",
            "-c",
            "wc -c < /blob"
        ])
        .trim(),
        "3000000"
    );
}

#[test]
fn a_pull_killed_midway_leaves_the_store_consistent_and_resumes() {
    require_env!();
    let Some(reg) = LocalRegistry::start() else {
        return;
    };
    let d = Daemon::start();
    d.busybox();
    let mut img = "busybox".to_string();
    for i in 0..4 {
        let c = format!("layer{i}");
        d.ok(&[
            "run",
            "--name",
            &c,
            "--network",
            "none",
            &img,
            "sh",
            "-c",
            &format!("head -c 32000000 /dev/urandom > /big{i}"),
        ]);
        img = format!("stack:{i}");
        d.ok(&["commit", &c, &img]);
    }
    let name = format!("{}/t/stack:1", reg.addr);
    d.ok(&["tag", &img, &name]);
    d.ok(&["push", &name]);

    let mut e = Daemon::start();
    let layers_dir = e.dir.path().join("data/layers");
    let published = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .filter(|x| x.path().join("meta.json").exists())
                    .count()
            })
            .unwrap_or(0)
    };
    let mut pull = std::process::Command::new(common::DOCKER)
        .args(["-H", &e.host(), "pull", &name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill wharfd as soon as the first layer is in, while the others are on their way.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while published(&layers_dir) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    e.kill9();
    let _ = pull.wait();
    let before = published(&layers_dir);
    assert!(before >= 1, "no layer was in when wharfd was killed");

    e.spawn();
    assert_eq!(
        e.ok(&["images", "-q"]).trim(),
        "",
        "a half-pulled image is listed"
    );
    let tmp = layers_dir.join("tmp");
    let leftovers = std::fs::read_dir(&tmp).map(|r| r.count()).unwrap_or(0);
    assert_eq!(
        leftovers,
        0,
        "temporary extraction dirs left in {}",
        tmp.display()
    );
    let out = e.ok(&["pull", &name]);
    assert!(
        out.matches("Already exists").count() >= before.min(5),
        "the second pull refetched layers the first one finished ({before} were in):\n{out}"
    );
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            &name,
            "sh",
            "-c",
            "cat /big3 | wc -c"
        ])
        .trim(),
        "32000000"
    );
}

/// Writes `data` as a blob of the OCI layout `dir`; returns its descriptor fields.
fn put_blob(dir: &std::path::Path, data: &[u8]) -> (String, usize) {
    use sha2::Digest;
    let hex = hex::encode(sha2::Sha256::digest(data));
    std::fs::write(dir.join("blobs/sha256").join(&hex), data).unwrap();
    (format!("sha256:{hex}"), data.len())
}

fn read_blob(dir: &std::path::Path, digest: &str) -> serde_json::Value {
    let p = dir
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn a_manifest_list_pushed_by_skopeo_pulls_the_host_platform() {
    require_env!();
    let Some(reg) = LocalRegistry::start() else {
        return;
    };
    let d = Daemon::start();
    d.busybox();
    let archive = d.dir.path().join("bb.tar");
    d.ok(&["save", "-o", archive.to_str().unwrap(), "busybox"]);
    let layout = d.dir.path().join("oci");
    let st = std::process::Command::new("skopeo")
        .args([
            "copy",
            &format!("docker-archive:{}:busybox:latest", archive.display()),
            &format!("oci:{}:single", layout.display()),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    // The amd64 manifest skopeo wrote, and an arm64 twin (same layers, other config).
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let amd = index["manifests"][0].clone();
    let m1 = read_blob(&layout, amd["digest"].as_str().unwrap());
    let mut cfg = read_blob(&layout, m1["config"]["digest"].as_str().unwrap());
    cfg["architecture"] = "arm64".into();
    let (c2, c2len) = put_blob(&layout, cfg.to_string().as_bytes());
    let mut m2 = m1.clone();
    m2["config"]["digest"] = c2.into();
    m2["config"]["size"] = c2len.into();
    let (m2d, m2len) = put_blob(&layout, m2.to_string().as_bytes());
    let entry = |d: &serde_json::Value, size: &serde_json::Value, arch: &str| {
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": d, "size": size,
            "platform": {"os": "linux", "architecture": arch}
        })
    };
    let write_index = |entries: Vec<serde_json::Value>, tag: &str| {
        let nested = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        });
        let (nd, nlen) = put_blob(&layout, nested.to_string().as_bytes());
        let mut top: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        top["manifests"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": nd, "size": nlen,
                "annotations": {"org.opencontainers.image.ref.name": tag}
            }));
        std::fs::write(layout.join("index.json"), top.to_string()).unwrap();
    };
    // arm64 first: taking the first entry would be wrong.
    write_index(
        vec![
            entry(&m2d.clone().into(), &m2len.into(), "arm64"),
            entry(&amd["digest"], &amd["size"], "amd64"),
        ],
        "multi",
    );
    write_index(vec![entry(&m2d.into(), &m2len.into(), "arm64")], "armonly");
    for (tag, dst) in [("multi", "t/multi:1"), ("armonly", "t/armonly:1")] {
        let o = std::process::Command::new("skopeo")
            .args([
                "copy",
                "--all",
                "--dest-tls-verify=false",
                &format!("oci:{}:{tag}", layout.display()),
                &format!("docker://{}/{dst}", reg.addr),
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "skopeo: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    let e = Daemon::start();
    let multi = format!("{}/t/multi:1", reg.addr);
    e.ok(&["pull", &multi]);
    assert_eq!(
        e.ok(&["image", "inspect", "--format", "{{.Architecture}}", &multi])
            .trim(),
        "amd64"
    );
    assert_eq!(
        e.ok(&["run", "--rm", "--network", "none", &multi, "echo", "multi"]),
        "multi\n"
    );
    // --platform picks the other entry.
    e.ok(&["pull", "--platform", "linux/arm64", &multi]);
    assert_eq!(
        e.ok(&["image", "inspect", "--format", "{{.Architecture}}", &multi])
            .trim(),
        "arm64"
    );
    let o = e.docker(&["pull", "--platform", "linux/s390x", &multi]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no matching manifest for linux/s390x"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = e.docker(&["pull", &format!("{}/t/armonly:1", reg.addr)]);
    let text =
        String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "an arm64-only list was pulled: {text}");
    assert!(
        text.contains("no matching manifest for linux/amd64"),
        "{text}"
    );
}

#[test]
fn push_and_pull_over_https_to_a_tls_only_registry() {
    require_env!();
    let Some(reg) = LocalRegistry::start_tls() else {
        return;
    };
    // It really speaks only TLS: a plain HTTP request is turned away.
    let answer = {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(&reg.addr).unwrap();
        c.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n").unwrap();
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    };
    assert!(answer.contains("400"), "plain HTTP was served: {answer:?}");

    let d = Daemon::start();
    d.busybox();
    let name = format!("{}/t/secure:1", reg.addr);
    d.ok(&["tag", "busybox", &name]);
    let out = d.ok(&["push", &name]);
    assert!(out.contains("1: digest: sha256:"), "{out}");
    let e = Daemon::start();
    e.ok(&["pull", &name]);
    assert_eq!(
        e.ok(&["run", "--rm", "--network", "none", &name, "echo", "tls"]),
        "tls\n"
    );
}

#[test]
fn docker_io_images_come_from_a_registry_mirror() {
    require_env!();
    let Some(reg) = LocalRegistry::start() else {
        return;
    };
    // The mirror holds docker.io's library/mirrored:1 (there is no internet here: only the
    // mirror can answer).
    let d = Daemon::start();
    d.busybox();
    let name = format!("{}/library/mirrored:1", reg.addr);
    d.ok(&["tag", "busybox", &name]);
    d.ok(&["push", &name]);

    let json = format!(r#"{{"registry-mirrors": ["http://{}"]}}"#, reg.addr);
    let e = Daemon::start_with(&[], Some(&json));
    let out = e.ok(&["pull", "mirrored:1"]);
    assert!(
        out.contains("Downloaded newer image for mirrored:1"),
        "{out}"
    );
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "mirrored:1",
            "echo",
            "via-mirror"
        ]),
        "via-mirror\n"
    );
}

#[test]
fn a_connection_lost_mid_layer_is_retried() {
    require_env!();
    let Some(reg) = LocalRegistry::start() else {
        return;
    };
    let d = Daemon::start();
    let (_, child) = push_base_and_child(&d, &reg);
    let top = layers(&child).pop().unwrap();
    let proxy = FlakyProxy::start(&reg.addr, &format!("/blobs/{top}"), 200_000);
    let via = child.replace(&reg.addr, &proxy.addr);
    let e = Daemon::start();
    let o = e.docker(&["pull", &via]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success(),
        "{text}\n--- wharfd log ---\n{}",
        e.log()
    );
    assert_eq!(proxy.cuts.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(text.contains("Retrying in"), "{text}");
    assert_eq!(
        proxy.hits.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "the cut layer was fetched again"
    );
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            &via,
            "wc",
            "-c",
            "/blob"
        ])
        .trim(),
        "3000000 /blob"
    );
}
