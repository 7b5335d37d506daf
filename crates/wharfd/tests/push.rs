//! Pushes through wharfd with the docker CLI against a real registry (docker-registry on
//! loopback): layers known to be in another repository of the registry are mounted, not
//! uploaded; large layers go up in chunks (PATCH), small ones in one PUT; `docker pull -a`
//! pulls every tag; `--platform` must match a single image; `/distribution/{name}/json`.

mod common;

use common::{Daemon, LocalRegistry};

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Copies `src` of `d` to `dst` on `reg` with skopeo (gzip-compressed layers, as most
/// registries hold them).
fn skopeo_push(d: &Daemon, reg: &LocalRegistry, src: &str, dst: &str) {
    let archive = d
        .dir
        .path()
        .join(format!("{}.tar", src.replace([':', '/'], "_")));
    d.ok(&["save", "-o", archive.to_str().unwrap(), src]);
    let o = std::process::Command::new("skopeo")
        .args([
            "copy",
            "--dest-tls-verify=false",
            &format!("docker-archive:{}:{src}", archive.display()),
            &format!("docker://{}/{dst}", reg.addr),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "skopeo: {}", text(&o));
}

#[test]
fn push_mounts_layers_known_from_another_repository() {
    require_env!();
    let Some(reg) = LocalRegistry::start() else {
        return;
    };
    let d = Daemon::start();
    d.busybox_and_child();
    skopeo_push(&d, &reg, "child:1", "t/child:1");

    // A daemon that pulled t/child knows where its layers are: pushing the image to another
    // repository of the registry mounts both and uploads only the config.
    let e = Daemon::start();
    let child = format!("{}/t/child:1", reg.addr);
    let copy = format!("{}/t/copy:1", reg.addr);
    e.ok(&["pull", &child]);
    e.ok(&["tag", &child, &copy]);
    let out = e.ok(&["push", &copy]);
    assert_eq!(
        out.matches("Mounted from t/child").count(),
        2,
        "both layers mounted: {out}"
    );
    assert!(out.contains("1: digest: sha256:"), "{out}");
    assert_eq!(
        reg.requests("POST", "/v2/t/copy/blobs/uploads/?mount=", Some(201)),
        2,
        "two mounts"
    );
    assert_eq!(
        reg.requests("PUT", "/v2/t/copy/blobs/uploads/", None),
        1,
        "only the config was uploaded"
    );
    assert_eq!(reg.requests("PATCH", "/v2/t/copy/", None), 0);

    // What it pushed (compressed layers by reference, its own config) pulls back and runs.
    let f = Daemon::start();
    f.ok(&["pull", &copy]);
    assert_eq!(
        f.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            &copy,
            "wc",
            "-c",
            "/blob"
        ])
        .trim(),
        "3000000 /blob"
    );
    // A third repository: mounted again (from the newest source), nothing uploaded but the
    // config; a second push of the same image finds everything there.
    let third = format!("{}/u/third:1", reg.addr);
    e.ok(&["tag", &child, &third]);
    let out = e.ok(&["push", &third]);
    assert_eq!(out.matches("Mounted from t/").count(), 2, "{out}");
    let out = e.ok(&["push", &third]);
    assert_eq!(out.matches("Layer already exists").count(), 2, "{out}");
    assert_eq!(reg.requests("PUT", "/v2/u/third/blobs/uploads/", None), 1);

    // A pushed (not pulled) image is known too: push to one repository, then another.
    let mine = format!("{}/t/mine:1", reg.addr);
    let other = format!("{}/t/mine-too:1", reg.addr);
    d.ok(&["tag", "child:1", &mine]);
    d.ok(&["tag", "child:1", &other]);
    let out = d.ok(&["push", &mine]);
    assert_eq!(out.matches("Pushed").count(), 2, "{out}");
    let out = d.ok(&["push", &other]);
    assert_eq!(out.matches("Mounted from t/mine").count(), 2, "{out}");
    // The record survives a restart of the daemon.
    let again = format!("{}/t/mine-three:1", reg.addr);
    let mut d = d;
    d.stop();
    d.spawn();
    d.ok(&["tag", "child:1", &again]);
    let out = d.ok(&["push", &again]);
    assert_eq!(out.matches("Mounted from t/mine").count(), 2, "{out}");
}

#[test]
fn large_layers_are_pushed_in_chunks_small_ones_in_one_put() {
    require_env!();
    let Some(reg) = LocalRegistry::start() else {
        return;
    };
    // 1 MiB chunks (the default threshold is 64 MiB): the 3 MB layer takes 3 PATCHes.
    let d = Daemon::start_env(&[], None, &[("WHARF_REGISTRY_CHUNK_SIZE", "1048576")]);
    d.busybox_and_child();
    let big = format!("{}/t/big:1", reg.addr);
    d.ok(&["tag", "child:1", &big]);
    let out = d.ok(&["push", &big]);
    assert!(out.contains("1: digest: sha256:"), "{out}");
    let patches = reg.requests("PATCH", "/v2/t/big/blobs/uploads/", Some(202));
    assert!(patches >= 3, "{patches} PATCHes");
    // skopeo verifies every blob against its digest while copying it out.
    let layout = d.dir.path().join("oci-big");
    let o = std::process::Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{big}"),
            &format!("oci:{}:big", layout.display()),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "skopeo: {}", text(&o));
    let e = Daemon::start();
    e.ok(&["pull", &big]);
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            &big,
            "wc",
            "-c",
            "/blob"
        ])
        .trim(),
        "3000000 /blob"
    );

    // A registry asking for chunks of at least 2 MiB (OCI-Chunk-Min-Length on the POST's
    // answer, added by a proxy: distribution 2.8 does not send it) gets fewer, larger ones.
    let proxy = common::registry::FlakyProxy::inject(
        &reg.addr,
        "POST /v2/t/min/blobs/uploads/",
        "OCI-Chunk-Min-Length: 2097152",
    );
    let g = Daemon::start_env(&[], None, &[("WHARF_REGISTRY_CHUNK_SIZE", "1048576")]);
    g.busybox_and_child();
    let min = format!("{}/t/min:1", proxy.addr);
    g.ok(&["tag", "child:1", &min]);
    g.ok(&["push", &min]);
    assert_eq!(proxy.hits.load(std::sync::atomic::Ordering::SeqCst), 3);
    let min_patches = reg.requests("PATCH", "/v2/t/min/blobs/uploads/", Some(202));
    assert!(
        min_patches >= 2 && min_patches < patches,
        "{min_patches} PATCHes of 2 MiB against {patches} of 1 MiB"
    );
    g.ok(&["rmi", &min, "child:1"]);
    g.ok(&["pull", &min]);

    // The default: one monolithic PUT per blob, no PATCH.
    let f = Daemon::start();
    f.busybox_and_child();
    let mono = format!("{}/t/mono:1", reg.addr);
    f.ok(&["tag", "child:1", &mono]);
    f.ok(&["push", &mono]);
    assert_eq!(reg.requests("PATCH", "/v2/t/mono/", None), 0);
    assert_eq!(
        reg.requests("PUT", "/v2/t/mono/blobs/uploads/", Some(201)),
        3,
        "two layers and the config"
    );
}

#[test]
fn pull_all_tags_platform_and_distribution_inspect() {
    require_env!();
    let Some(reg) = LocalRegistry::start() else {
        return;
    };
    let d = Daemon::start();
    d.busybox_and_child();
    let repo = format!("{}/t/multi", reg.addr);
    for (img, tag) in [("busybox", "1"), ("busybox", "2"), ("child:1", "3")] {
        d.ok(&["tag", img, &format!("{repo}:{tag}")]);
    }
    // docker push -a: no tag in the request, every local tag of the repository goes.
    let pushed = d.ok(&["push", "-a", &repo]);
    for t in ["1", "2", "3"] {
        assert!(
            pushed.contains(&format!("{t}: digest: sha256:")),
            "{pushed}"
        );
    }
    assert_eq!(pushed.matches("The push refers to repository").count(), 1);
    let o = d.docker(&["push", "-a", &format!("{}/t/nothing", reg.addr)]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("An image does not exist locally with the tag"),
        "{}",
        text(&o)
    );
    // "3: digest: sha256:... size: N"
    let digest3 = pushed
        .split_once("3: digest: ")
        .and_then(|(_, r)| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest in {pushed}"))
        .to_string();

    // docker pull -a asks for fromImage without a tag: every tag comes.
    let e = Daemon::start();
    let out = e.ok(&["pull", "-a", &repo]);
    for t in ["1", "2", "3"] {
        assert!(
            out.contains(&format!("{t}: Pulling from {repo}\n")),
            "{out}"
        );
    }
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {repo}")),
        "{out}"
    );
    let mut tags: Vec<String> = e
        .ok(&["images", "--format", "{{.Repository}} {{.Tag}}"])
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{repo} ")).map(String::from))
        .collect();
    tags.sort();
    assert_eq!(tags, ["1", "2", "3"]);
    let out = e.ok(&["pull", "-a", &repo]);
    assert!(
        out.contains(&format!("Status: Image is up to date for {repo}")),
        "{out}"
    );
    let o = e.docker(&["pull", "-a", &format!("{}/t/none", reg.addr)]);
    assert!(!o.status.success());
    assert!(text(&o).contains("t/none"), "{}", text(&o));

    // A single linux/amd64 image asked for as arm64: a clear error, nothing stored.
    let f = Daemon::start();
    let o = f.docker(&["pull", "--platform", "linux/arm64", &format!("{repo}:1")]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("does not match the specified platform (linux/arm64)"),
        "{}",
        text(&o)
    );
    assert_eq!(f.ok(&["images", "-q"]).trim(), "");
    f.ok(&["pull", "--platform", "linux/amd64", &format!("{repo}:1")]);

    // GET /distribution/{name}/json: the manifest's descriptor and the image's platform.
    let o = std::process::Command::new("curl")
        .args([
            "-sf",
            "--unix-socket",
            f.sock.to_str().unwrap(),
            &format!("http://d/v1.47/distribution/{repo}:3/json"),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["Descriptor"]["digest"], digest3.as_str(), "{v}");
    assert_eq!(
        v["Descriptor"]["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert!(v["Descriptor"]["size"].as_u64().unwrap() > 0);
    assert_eq!(
        v["Platforms"],
        serde_json::json!([{"architecture": "amd64", "os": "linux"}])
    );
    let o = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--unix-socket",
            f.sock.to_str().unwrap(),
            &format!("http://d/v1.47/distribution/{repo}:nope/json"),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "404");
}

#[test]
fn info_reports_the_registry_configuration() {
    require_env!();
    let d = Daemon::start_with(
        &[
            "--insecure-registry".into(),
            "10.9.0.0/16".into(),
            "--insecure-registry".into(),
            "reg.lan:5000".into(),
            "--registry-mirror".into(),
            "https://mirror.example:5000".into(),
        ],
        None,
    );
    let v: serde_json::Value =
        serde_json::from_str(&d.ok(&["info", "--format", "{{json .RegistryConfig}}"])).unwrap();
    // What dockerd 28 reports for the same flags.
    assert_eq!(
        v,
        serde_json::json!({
            "IndexConfigs": {
                "docker.io": {"Name": "docker.io", "Mirrors": ["https://mirror.example:5000/"], "Secure": true, "Official": true},
                "reg.lan:5000": {"Name": "reg.lan:5000", "Mirrors": [], "Secure": false, "Official": false},
            },
            "InsecureRegistryCIDRs": ["10.9.0.0/16", "::1/128", "127.0.0.0/8"],
            "Mirrors": ["https://mirror.example:5000/"],
        })
    );
    let out = d.ok(&["info"]);
    assert!(
        out.contains(
            "Insecure Registries:\n  reg.lan:5000\n  10.9.0.0/16\n  ::1/128\n  127.0.0.0/8"
        ),
        "{out}"
    );
    assert!(
        out.contains("Registry Mirrors:\n  https://mirror.example:5000/"),
        "{out}"
    );
}

#[test]
fn docker_run_pulls_missing_images_with_zstd_layers() {
    require_env!();
    let Some(reg) = LocalRegistry::start() else {
        return;
    };
    let d = Daemon::start();
    d.busybox_and_child();
    let archive = d.dir.path().join("child.tar");
    d.ok(&["save", "-o", archive.to_str().unwrap(), "child:1"]);
    let zstd = format!("{}/t/zstd:1", reg.addr);
    let o = std::process::Command::new("skopeo")
        .args([
            "copy",
            "--dest-tls-verify=false",
            "--format",
            "oci",
            "--dest-compress-format",
            "zstd",
            &format!("docker-archive:{}:child:1", archive.display()),
            &format!("docker://{zstd}"),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "skopeo: {}", text(&o));
    let o = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{zstd}"))
        .output()
        .unwrap();
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for l in m["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }

    // `docker run` of a missing image: the CLI pulls it through wharfd, then runs it.
    let e = Daemon::start();
    let o = e.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        &zstd,
        "wc",
        "-c",
        "/blob",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "3000000 /blob");
    assert!(text(&o).contains("Unable to find image"), "{}", text(&o));
    // --pull never: not pulled; --pull always: pulled again although present.
    let missing = format!("{}/t/child-never:1", reg.addr);
    let o = e.docker(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        "none",
        &missing,
        "true",
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).to_lowercase().contains("no such image"),
        "{}",
        text(&o)
    );
    let before = reg.requests("GET", "/v2/t/zstd/manifests/1", None);
    let o = e.docker(&[
        "run",
        "--rm",
        "--pull",
        "always",
        "--network",
        "none",
        &zstd,
        "true",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(reg.requests("GET", "/v2/t/zstd/manifests/1", None) > before);
}

#[test]
fn max_concurrent_downloads_one_fetches_layers_in_turn() {
    require_env!();
    let Some(reg) = LocalRegistry::start() else {
        return;
    };
    let d = Daemon::start();
    d.busybox_and_child();
    d.ok(&["rm", "-f", "top"]);
    d.ok(&[
        "run",
        "--name",
        "top",
        "--network",
        "none",
        "child:1",
        "sh",
        "-c",
        "head -c 3000000 /dev/urandom > /blob2",
    ]);
    d.ok(&["commit", "top", "child:2"]);
    skopeo_push(&d, &reg, "child:2", "t/three:1");
    let o = std::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{}/t/three:1", reg.addr))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let layers: Vec<String> = v["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(layers.len(), 3);
    // wharfd logs when a layer's download starts and ends: with one at a time they alternate.
    let events = |e: &Daemon| -> Vec<String> {
        e.log()
            .lines()
            .filter_map(|l| {
                if l.contains("layer download starts") {
                    Some("start".to_string())
                } else if l.contains("layer download ends") {
                    Some("end".to_string())
                } else {
                    None
                }
            })
            .collect()
    };
    let e = Daemon::start_with(&["--max-concurrent-downloads".into(), "1".into()], None);
    e.ok(&["pull", &format!("{}/t/three:1", reg.addr)]);
    assert_eq!(events(&e), ["start", "end", "start", "end", "start", "end"]);
    assert_eq!(reg.blob_gets(&layers[2]), 1);
    // With the default (3) the order is up to the scheduler: only check all three came.
    let f = Daemon::start();
    f.ok(&["pull", &format!("{}/t/three:1", reg.addr)]);
    assert_eq!(events(&f).len(), 6);
}
