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

fn pod_config(name: &str, uid: &str) -> api::PodSandboxConfig {
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: name.into(),
            uid: uid.into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "podhost".into(),
        labels: [("app".to_string(), name.to_string())].into(),
        annotations: [("note".to_string(), "kept".to_string())].into(),
        dns_config: Some(api::DnsConfig {
            servers: vec!["10.96.0.10".into()],
            searches: vec!["default.svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        }),
        ..Default::default()
    }
}

fn container_config(
    name: &str,
    script: &str,
    out: &std::path::Path,
    uid: Option<i64>,
) -> api::ContainerConfig {
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: spec("busybox"),
        command: vec!["sh".into(), "-c".into()],
        args: vec![script.into()],
        working_dir: "/tmp".into(),
        envs: vec![api::KeyValue {
            key: "WHO".into(),
            value: name.into(),
        }],
        mounts: vec![api::Mount {
            container_path: "/out".into(),
            host_path: out.display().to_string(),
            ..Default::default()
        }],
        labels: [("c".to_string(), name.to_string())].into(),
        linux: Some(api::LinuxContainerConfig {
            security_context: Some(api::LinuxContainerSecurityContext {
                run_as_user: uid.map(|value| api::Int64Value { value }),
                namespace_options: Some(api::NamespaceOption {
                    pid: 0, // POD: one pid namespace for the pod
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn read(p: &std::path::Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A pod with two containers sharing the sandbox's network, IPC and pid namespaces: one
/// listens on 127.0.0.1, the other connects to it. Still running after a wharfd restart;
/// stop and remove leave nothing behind.
#[test]
fn pod_with_two_containers_sharing_localhost() {
    require_env!();
    let (mut d, sockdir, cri) = daemon_with_cri();
    d.busybox();
    let out = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(out.path(), std::fs::Permissions::from_mode(0o777)).unwrap();

    let pod = pod_config("web", "uid-1");
    let sid = cri
        .call(cri.runtime().run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: String::new(),
        }))
        .unwrap()
        .into_inner()
        .pod_sandbox_id;
    let server = container_config(
        "server",
        "echo $WHO > /out/server-env; pwd > /out/server-pwd; readlink /proc/self/ns/net > /out/server-net; \
         readlink /proc/self/ns/ipc > /out/server-ipc; hostname > /out/server-host; cat /etc/resolv.conf > /out/resolv; \
         echo hello-from-server > /tmp/msg; while true; do nc -l -p 8080 < /tmp/msg; done",
        out.path(),
        None,
    );
    let client = container_config(
        "client",
        "id -u > /out/client-uid; readlink /proc/self/ns/net > /out/client-net; readlink /proc/self/ns/ipc > /out/client-ipc; \
         ps -o comm > /out/client-ps; \
         i=0; while [ $i -lt 200 ]; do nc 127.0.0.1 8080 > /out/got.tmp 2>/dev/null && [ -s /out/got.tmp ] && mv /out/got.tmp /out/got && break; i=$((i+1)); sleep 0.05; done; \
         exec sleep 1000",
        out.path(),
        Some(1000),
    );
    let mut ids = Vec::new();
    for c in [server, client] {
        let id = cri
            .call(cri.runtime().create_container(api::CreateContainerRequest {
                pod_sandbox_id: sid.clone(),
                config: Some(c),
                sandbox_config: Some(pod.clone()),
            }))
            .unwrap()
            .into_inner()
            .container_id;
        cri.call(cri.runtime().start_container(api::StartContainerRequest {
            container_id: id.clone(),
        }))
        .unwrap();
        ids.push(id);
    }
    common::eventually("the client got the server's message over 127.0.0.1", || {
        read(&out.path().join("got")) == "hello-from-server"
    });
    assert_eq!(read(&out.path().join("server-env")), "server");
    assert_eq!(read(&out.path().join("server-pwd")), "/tmp");
    assert_eq!(read(&out.path().join("client-uid")), "1000");
    assert_eq!(read(&out.path().join("server-host")), "podhost");
    let resolv = read(&out.path().join("resolv"));
    assert!(
        resolv.contains("nameserver 10.96.0.10")
            && resolv.contains("search default.svc.cluster.local")
            && resolv.contains("ndots:5"),
        "{resolv}"
    );
    for ns in ["net", "ipc"] {
        let (s, c) = (
            read(&out.path().join(format!("server-{ns}"))),
            read(&out.path().join(format!("client-{ns}"))),
        );
        assert!(!s.is_empty() && s == c, "{ns}: {s} vs {c}");
    }
    // One pid namespace for the pod: the client sees the sandbox's pause and the server.
    let ps = read(&out.path().join("client-ps"));
    assert!(ps.contains("pause") && ps.contains("nc"), "{ps}");

    let list = |cri: &Cri| {
        let pods = cri
            .call(
                cri.runtime()
                    .list_pod_sandbox(api::ListPodSandboxRequest::default()),
            )
            .unwrap()
            .into_inner()
            .items;
        let cs = cri
            .call(
                cri.runtime()
                    .list_containers(api::ListContainersRequest::default()),
            )
            .unwrap()
            .into_inner()
            .containers;
        (pods, cs)
    };
    let check_running = |cri: &Cri| {
        let (pods, cs) = list(cri);
        assert_eq!(pods.len(), 1, "{pods:?}");
        assert_eq!(pods[0].id, sid);
        assert_eq!(pods[0].state, api::PodSandboxState::SandboxReady as i32);
        assert_eq!(pods[0].labels["app"], "web");
        assert_eq!(pods[0].annotations["note"], "kept");
        assert_eq!(pods[0].metadata.as_ref().unwrap().name, "web");
        assert_eq!(cs.len(), 2, "{cs:?}");
        for c in &cs {
            assert_eq!(c.pod_sandbox_id, sid);
            assert_eq!(
                c.state,
                api::ContainerState::ContainerRunning as i32,
                "{c:?}"
            );
        }
        let st = cri
            .call(cri.runtime().container_status(api::ContainerStatusRequest {
                container_id: ids[0].clone(),
                verbose: false,
            }))
            .unwrap()
            .into_inner()
            .status
            .unwrap();
        assert_eq!(st.metadata.unwrap().name, "server");
        assert!(st.started_at > 0 && st.created_at > 0);
        assert_eq!(st.labels["c"], "server");
        let by_label = cri
            .call(cri.runtime().list_containers(api::ListContainersRequest {
                filter: Some(api::ContainerFilter {
                    label_selector: [("c".to_string(), "client".to_string())].into(),
                    ..Default::default()
                }),
            }))
            .unwrap()
            .into_inner()
            .containers;
        assert_eq!(by_label.len(), 1);
        assert_eq!(by_label[0].id, ids[1]);
    };
    check_running(&cri);
    // ExecSync: in the client, as its user, over the pod's loopback, stdout and stderr apart.
    let ex = cri
        .call(cri.runtime().exec_sync(api::ExecSyncRequest {
            container_id: ids[1].clone(),
            cmd: vec![
                "sh".into(),
                "-c".into(),
                "id -u; nc 127.0.0.1 8080; echo oops >&2; exit 3".into(),
            ],
            timeout: 10,
        }))
        .unwrap()
        .into_inner();
    assert_eq!(
        String::from_utf8_lossy(&ex.stdout),
        "1000\nhello-from-server\n"
    );
    assert_eq!(String::from_utf8_lossy(&ex.stderr), "oops\n");
    assert_eq!(ex.exit_code, 3);
    let slow = cri.call(cri.runtime().exec_sync(api::ExecSyncRequest {
        container_id: ids[1].clone(),
        cmd: vec!["sleep".into(), "30".into()],
        timeout: 1,
    }));
    assert_eq!(
        slow.unwrap_err().code(),
        tonic::Code::DeadlineExceeded,
        "a command over its timeout"
    );
    // The engine's containers, as docker sees them.
    let names = d.ok(&["ps", "--format", "{{.Names}}"]);
    assert!(names.contains("k8s_POD_web_default_uid-1_0"), "{names}");
    assert!(names.contains("k8s_server_web_default_uid-1_0"), "{names}");

    // wharfd restarts; the pod goes on and is found again.
    drop(cri);
    d.stop();
    d.spawn();
    let cri = Cri::connect(&sockdir.path().join("cri.sock"));
    check_running(&cri);

    cri.call(cri.runtime().stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: sid.clone(),
    }))
    .unwrap();
    let (pods, cs) = list(&cri);
    assert_eq!(pods[0].state, api::PodSandboxState::SandboxNotready as i32);
    for c in &cs {
        assert_eq!(
            c.state,
            api::ContainerState::ContainerExited as i32,
            "{c:?}"
        );
    }
    let st = cri
        .call(cri.runtime().container_status(api::ContainerStatusRequest {
            container_id: ids[1].clone(),
            verbose: false,
        }))
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert!(st.finished_at >= st.started_at && st.finished_at > 0);
    assert!(!st.reason.is_empty());
    for _ in 0..2 {
        cri.call(
            cri.runtime()
                .remove_pod_sandbox(api::RemovePodSandboxRequest {
                    pod_sandbox_id: sid.clone(),
                }),
        )
        .unwrap();
    }
    let (pods, cs) = list(&cri);
    assert!(pods.is_empty() && cs.is_empty(), "{pods:?} {cs:?}");
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
    // Nothing left mounted under the daemon's roots, no cgroup of the pod's containers.
    let root = d.dir.path().display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts
            .lines()
            .any(|l| l.contains(&root) && l.contains("/containers/")),
        "{mounts}"
    );
    for id in std::iter::once(&sid).chain(&ids) {
        for h in [
            "/sys/fs/cgroup",
            "/sys/fs/cgroup/memory",
            "/sys/fs/cgroup/pids",
        ] {
            let p = std::path::Path::new(h)
                .join(d.cgroup_parent.trim_start_matches('/'))
                .join(id);
            assert!(!p.exists(), "{} is left", p.display());
        }
    }
}
