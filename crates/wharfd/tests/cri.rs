//! The Kubernetes CRI served by wharfd (`--cri-socket`), driven as a kubelet drives it: the
//! tonic client of `wharf_cri::api` over the unix socket, beside the docker CLI on the Engine
//! API of the same daemon.

#[path = "cri/client.rs"]
mod client;
mod common;

use client::Cri;
use common::{Daemon, LocalRegistry, RegistryAuth};
use wharf_cri::api;

/// A wharfd with the CRI on a socket of its own (in a tempdir beside the daemon's).
fn daemon_with_cri() -> (Daemon, tempfile::TempDir, Cri) {
    let sockdir = tempfile::Builder::new()
        .prefix("wharf-cri-")
        .tempdir()
        .unwrap();
    let sock = sockdir.path().join("cri.sock");
    let d = Daemon::start_with(&["--cri-socket".into(), sock.display().to_string()], None);
    let cri = Cri::connect(&sock);
    (d, sockdir, cri)
}

fn spec(image: &str) -> Option<api::ImageSpec> {
    Some(api::ImageSpec {
        image: image.into(),
        ..Default::default()
    })
}

#[test]
fn version_and_status() {
    require_env!();
    let (_d, _s, cri) = daemon_with_cri();
    let v = cri
        .call(cri.runtime().version(api::VersionRequest::default()))
        .unwrap()
        .into_inner();
    assert_eq!(v.runtime_name, "wharf");
    assert_eq!(v.runtime_api_version, "v1");
    assert_eq!(v.version, "0.1.0");
    let s = cri
        .call(cri.runtime().status(api::StatusRequest { verbose: true }))
        .unwrap()
        .into_inner();
    let conds = s.status.unwrap().conditions;
    for kind in ["RuntimeReady", "NetworkReady"] {
        let c = conds.iter().find(|c| c.r#type == kind).expect(kind);
        assert!(c.status, "{kind}: {c:?}");
    }
    assert!(s.info["config"].contains("dataRoot"), "{:?}", s.info);
    // The default runtime is the handler with no name.
    assert!(s.runtime_handlers.iter().any(|h| h.name.is_empty()));
}

#[test]
fn cri_socket_from_daemon_json() {
    require_env!();
    let sockdir = tempfile::tempdir().unwrap();
    let sock = sockdir.path().join("c.sock");
    let _d = Daemon::start_with(
        &[],
        Some(&format!(r#"{{"cri-socket": "{}"}}"#, sock.display())),
    );
    let cri = Cri::connect(&sock);
    let v = cri.call(cri.runtime().version(api::VersionRequest::default()));
    assert_eq!(v.unwrap().into_inner().runtime_name, "wharf");
}

/// Images are the engine's: pulled through the CRI from a registry (with basic auth),
/// seen by `docker image inspect`, and the other way round; removed through the CRI,
/// gone from docker too.
#[test]
fn images_shared_with_the_engine_api() {
    require_env!();
    let Some(reg) = LocalRegistry::start_with(RegistryAuth::Basic {
        user: "kube".into(),
        password: "s3cret".into(),
    }) else {
        return;
    };
    let (d, _s, cri) = daemon_with_cri();
    d.busybox();

    // docker's image, seen through the CRI under its full name.
    let id = d
        .ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"])
        .trim()
        .to_string();
    let st = cri
        .call(cri.images().image_status(api::ImageStatusRequest {
            image: spec("busybox"),
            verbose: false,
        }))
        .unwrap()
        .into_inner();
    let img = st.image.expect("busybox through the CRI");
    assert_eq!(img.id, id);
    assert_eq!(img.repo_tags, ["docker.io/library/busybox:latest"]);
    assert!(img.size > 0);
    let all = cri
        .call(cri.images().list_images(api::ListImagesRequest::default()))
        .unwrap()
        .into_inner()
        .images;
    assert!(all.iter().any(|i| i.id == id), "{all:?}");

    // Into the registry with docker (logged in), then gone from the engine.
    let name = format!("{}/team/box:1", reg.addr);
    let cfg = tempfile::tempdir().unwrap();
    let dc = |args: &[&str], stdin: Option<&[u8]>| {
        let mut a = vec!["--config", cfg.path().to_str().unwrap()];
        a.extend_from_slice(args);
        let o = d.docker_stdin(&a, stdin);
        assert!(o.status.success(), "{args:?}: {}", common::stderr(&o));
    };
    dc(
        &["login", &reg.addr, "-u", "kube", "--password-stdin"],
        Some(b"s3cret\n"),
    );
    d.ok(&["tag", "busybox", &name]);
    dc(&["push", &name], None);
    d.ok(&["rmi", &name]);

    // Without credentials the registry refuses; with them (as the kubelet sends a pull
    // secret: `auth` is base64 of user:password) the image comes in.
    let anon = cri.call(cri.images().pull_image(api::PullImageRequest {
        image: spec(&name),
        ..Default::default()
    }));
    let e = anon.expect_err("anonymous pull from an auth registry");
    assert!(
        e.message().contains("401") || e.message().to_lowercase().contains("auth"),
        "{e:?}"
    );
    use base64::Engine as _;
    let pulled = cri
        .call(cri.images().pull_image(api::PullImageRequest {
            image: spec(&name),
            auth: Some(api::AuthConfig {
                auth: base64::engine::general_purpose::STANDARD.encode("kube:s3cret"),
                server_address: reg.addr.clone(),
                ..Default::default()
            }),
            sandbox_config: None,
        }))
        .unwrap()
        .into_inner();
    assert_eq!(
        pulled.image_ref, id,
        "the same config, so the same image id"
    );
    let tags = d.ok(&["image", "inspect", "-f", "{{json .RepoTags}}", &name]);
    assert!(tags.contains(&name), "{tags}");

    let fs = cri
        .call(cri.images().image_fs_info(api::ImageFsInfoRequest {}))
        .unwrap()
        .into_inner();
    let f = &fs.image_filesystems[0];
    assert!(f.used_bytes.as_ref().unwrap().value > 0);
    assert!(f.inodes_used.as_ref().unwrap().value > 0);
    assert!(f.fs_id.as_ref().unwrap().mountpoint.ends_with("/layers"));

    // RemoveImage takes every reference, and is idempotent.
    for _ in 0..2 {
        cri.call(
            cri.images()
                .remove_image(api::RemoveImageRequest { image: spec(&name) }),
        )
        .unwrap();
    }
    assert!(!d.docker(&["image", "inspect", "busybox"]).status.success());
    assert!(!d.docker(&["image", "inspect", &name]).status.success());
    let st = cri
        .call(cri.images().image_status(api::ImageStatusRequest {
            image: spec(&id),
            verbose: false,
        }))
        .unwrap()
        .into_inner();
    assert!(st.image.is_none(), "{st:?}");
}
