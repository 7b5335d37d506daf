//! End-to-end: nothing half-done becomes visible, and bad input is a clear 400 (issue 15):
//! an upload cut off mid-body (import, load) leaves no image; a commit whose config has the
//! wrong shape is refused without a panic; `/info` reports this host, not constants.

mod common;

use common::{stderr, Daemon};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Sends a request whose body is announced as `announced` bytes but cut after `body`, then
/// closes the connection, as a client that dies mid-upload does.
fn cut_upload(sock: &Path, path: &str, announced: usize, body: &[u8]) {
    let mut s = UnixStream::connect(sock).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\n\
         Content-Length: {announced}\r\n\r\n"
    )
    .unwrap();
    s.write_all(body).unwrap();
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(s);
}

/// A tar of `n` files of 64 KiB each, so that a prefix of it is a valid tar by itself.
fn big_tar(n: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..n {
        let data = vec![b'x'; 64 * 1024];
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, format!("f{i}"), &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn an_interrupted_import_or_load_leaves_no_image() {
    require_env!();
    let d = Daemon::start();
    let tar = big_tar(64);
    // Cut at a file boundary: the part sent is a tar that parses, only the body is short.
    let cut = 512 + 64 * 1024 + 512 + 64 * 1024;
    cut_upload(
        &d.sock,
        "/v1.41/images/create?fromSrc=-&repo=cut&tag=import",
        tar.len(),
        &tar[..cut],
    );
    // A docker archive whose manifest never arrives.
    cut_upload(&d.sock, "/v1.41/images/load", tar.len(), &tar[..cut]);
    // The daemon has seen the end of both connections; nothing was made from them.
    std::thread::sleep(Duration::from_millis(500));
    let images = d.ok(&[
        "images",
        "-a",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
    ]);
    assert_eq!(images.trim(), "", "an interrupted upload left an image");
    // And the same upload, whole, works.
    let file = d.dir.path().join("whole.tar");
    std::fs::write(&file, &tar).unwrap();
    let o = d.docker(&["import", file.to_str().unwrap(), "whole:import"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let images = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(images.trim(), "whole:import");
}

#[test]
fn a_commit_config_of_the_wrong_shape_is_a_400_not_a_panic() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    d.ok(&[
        "create",
        "--name",
        "cc",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    for (config, change) in [
        (r#"{"ExposedPorts": "80"}"#, "EXPOSE%2081"),
        (r#"{"Volumes": ["/data"]}"#, "VOLUME%20/v"),
        (r#"{"Labels": 5}"#, "LABEL%20a=b"),
        (r#"["not", "an", "object"]"#, "CMD%20true"),
    ] {
        let (status, body) = request(
            &d.sock,
            "POST",
            &format!("/v1.41/commit?container=cc&repo=bad&changes={change}"),
            config.as_bytes(),
        );
        assert_eq!(status, 400, "{config}: {body}");
        assert!(body.contains("message"), "{body}");
    }
    // The daemon is still there, and a good commit works.
    d.ok(&["commit", "--change", "EXPOSE 80", "cc", "good:1"]);
    let ports = d.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.ExposedPorts}}",
        "good:1",
    ]);
    assert_eq!(ports.trim(), r#"{"80/tcp":{}}"#);
    let images = d.ok(&["images", "--format", "{{.Repository}}"]);
    assert!(!images.contains("bad"), "{images}");
}

#[test]
fn info_reports_this_hosts_architecture_and_backing_filesystem() {
    require_env!();
    let d = Daemon::start();
    let arch = d.ok(&["version", "--format", "{{.Server.Arch}}"]);
    let want = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    assert_eq!(arch.trim(), want);
    let status = d.ok(&["info", "--format", "{{json .DriverStatus}}"]);
    // What the data-root's filesystem is, by stat(1).
    let fs = std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(d.dir.path())
        .output()
        .unwrap();
    let fs = String::from_utf8_lossy(&fs.stdout).trim().to_string();
    let docker_name = match fs.as_str() {
        "ext2/ext3" => "extfs",
        other => other,
    };
    assert!(
        status.contains(&format!(r#"["Backing Filesystem","{docker_name}"]"#)),
        "{status} (stat -f says {fs})"
    );
}

/// One HTTP/1.1 request over the socket: (status, body).
fn request(sock: &Path, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = UnixStream::connect(sock).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// `save` and `export` that fail after the 200 was sent cut the stream off: the docker CLI
/// sees an error and exits non-zero, instead of writing a short tar and exiting 0.
#[test]
fn a_save_or_export_that_fails_midway_fails_for_the_client() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let root = data_root(&d);
    // The image's layer tar disappears from the content store (disk trouble, a hand edit).
    let diff = d.ok(&[
        "image",
        "inspect",
        "--format",
        "{{index .RootFS.Layers 0}}",
        "busybox",
    ]);
    let blob = root
        .join("layers/blobs/sha256")
        .join(diff.trim().trim_start_matches("sha256:"));
    std::fs::remove_file(&blob).unwrap_or_else(|e| panic!("{}: {e}", blob.display()));
    let out = d.dir.path().join("saved.tar");
    let o = d.docker(&["save", "-o", out.to_str().unwrap(), "busybox"]);
    assert!(
        !o.status.success(),
        "save of an image whose layer is gone succeeded"
    );

    // A container whose writable layer is gone cannot be exported.
    let id = d.ok(&["create", "--network", "none", "busybox", "true"]);
    let rw = root.join("layers/rw").join(id.trim());
    std::fs::remove_dir_all(rw.join("diff")).unwrap_or_else(|e| panic!("{}: {e}", rw.display()));
    let o = d.docker(&["export", "-o", out.to_str().unwrap(), id.trim()]);
    assert!(
        !o.status.success(),
        "export of a broken container succeeded"
    );
}

fn data_root(d: &Daemon) -> std::path::PathBuf {
    let root = d.ok(&["info", "--format", "{{.DockerRootDir}}"]);
    std::path::PathBuf::from(root.trim())
}

/// `volume rm` racing `run -v name:/d`: either the removal wins (the run then makes a new,
/// empty volume) or the run does (the removal is refused as in use). Never a container whose
/// volume was deleted under it.
#[test]
fn volume_rm_racing_a_run_never_deletes_a_volume_in_use() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    for i in 0..12 {
        let vol = format!("race{i}");
        d.ok(&["volume", "create", &vol]);
        let mount = format!("{vol}:/d");
        let host = d.host();
        let docker = |args: &[&str]| {
            std::process::Command::new(common::DOCKER)
                .arg("-H")
                .arg(&host)
                .args(args)
                .output()
                .unwrap()
        };
        let (run, rm) = std::thread::scope(|s| {
            let create = [
                "create",
                "--network",
                "none",
                "-v",
                &mount,
                "busybox",
                "true",
            ];
            let run = s.spawn(move || docker(&create));
            let rm = s.spawn(|| docker(&["volume", "rm", &vol]));
            (run.join().unwrap(), rm.join().unwrap())
        });
        assert!(run.status.success(), "{}", stderr(&run));
        let id = String::from_utf8_lossy(&run.stdout).trim().to_string();
        // Whoever won, the container's volume exists with its data directory.
        let src = d.ok(&["inspect", "--format", "{{(index .Mounts 0).Source}}", &id]);
        assert!(
            Path::new(src.trim()).is_dir(),
            "round {i}: the container's volume {} is gone (rm: {})",
            src.trim(),
            stderr(&rm)
        );
        d.ok(&["volume", "inspect", &vol]);
        if !rm.status.success() {
            assert!(stderr(&rm).contains("volume is in use"), "{}", stderr(&rm));
        }
        d.ok(&["rm", &id]);
    }
}

/// `export` of a running container reads its live root (no second overlay on the same upper
/// dir): what the container wrote is in the tar, and the layer store's mount space stays empty.
#[test]
fn export_of_a_running_container_reads_its_live_root() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let id = d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo live > /written-while-running; sleep 600",
    ]);
    let id = id.trim();
    common::eventually("the file is written", || {
        d.docker(&["exec", id, "cat", "/written-while-running"])
            .status
            .success()
    });
    let out = d.dir.path().join("live.tar");
    d.ok(&["export", "-o", out.to_str().unwrap(), id]);
    let mut a = tar::Archive::new(std::fs::File::open(&out).unwrap());
    let mut found = None;
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().ends_with("written-while-running") {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            found = Some(s);
        }
    }
    assert_eq!(found.as_deref(), Some("live\n"));
    let mnt = data_root(&d).join("layers/mnt");
    assert_eq!(
        std::fs::read_dir(&mnt).unwrap().count(),
        0,
        "a mount was made for a running container"
    );
    d.ok(&["rm", "-f", id]);
}

/// `commit` pauses a running container while it reads the layer (docker's default) and
/// resumes it; `--pause=false` leaves it running throughout.
#[test]
fn commit_pauses_a_running_container_unless_told_not_to() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let id = d.ok(&["run", "-d", "--network", "none", "busybox", "sleep", "600"]);
    let id = id.trim();
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;
    d.ok(&["commit", id, "paused:1"]);
    d.ok(&["commit", "--pause=false", id, "unpaused:1"]);
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let ev = d.ok(&[
        "events",
        "--since",
        &t0.to_string(),
        "--until",
        &until.to_string(),
        "--filter",
        &format!("container={id}"),
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = ev
        .lines()
        .filter(|a| matches!(*a, "pause" | "unpause" | "commit"))
        .collect();
    assert_eq!(actions, ["pause", "unpause", "commit", "commit"], "{ev}");
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.Status}}", id])
            .trim(),
        "running"
    );
    d.ok(&["rm", "-f", id]);
}

/// Fields wharf does not implement are refused by name through the real docker CLI, never
/// dropped; `--domainname` and `--security-opt systempaths=unconfined` take effect.
#[test]
fn unimplemented_fields_are_refused_and_domainname_and_system_paths_apply() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    for (flag, field) in [
        (
            &["--device-cgroup-rule", "c 1:3 r"][..],
            "DeviceCgroupRules",
        ),
        (&["--cgroup-parent", "elsewhere"][..], "CgroupParent"),
        (&["--annotation", "a=b"][..], "Annotations"),
        (&["--memory-swappiness", "10"][..], "MemorySwappiness"),
    ] {
        let mut args = vec!["run", "--rm", "--network", "bridge"];
        args.extend_from_slice(flag);
        args.extend(["busybox", "true"]);
        let o = d.docker(&args);
        assert!(!o.status.success(), "{flag:?} was accepted");
        assert!(stderr(&o).contains(field), "{flag:?}: {}", stderr(&o));
    }
    let o = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--domainname",
        "example.org",
        "busybox",
        "cat",
        "/proc/sys/kernel/domainname",
    ]);
    assert_eq!(o.trim(), "example.org");
    // --group-add: numbers and the image's group names, for the process and its execs.
    let id = d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--group-add",
        "4242",
        "--group-add",
        "nogroup",
        "busybox",
        "sleep",
        "600",
    ]);
    let id = id.trim();
    let groups = d.ok(&["exec", id, "id", "-G"]);
    assert_eq!(groups.trim(), "0 4242 65534");
    let groups = d.ok(&["exec", "-u", "nobody", id, "id", "-G"]);
    assert_eq!(groups.trim(), "65534 4242");
    // exec --privileged: every capability the daemon has, where the container has Docker's
    // default set (CAP_SYS_ADMIN, bit 21, is not in it).
    let caps = |args: &[&str]| -> u64 {
        let status = d.ok(args);
        let eff = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .unwrap_or_else(|| panic!("{status}"));
        u64::from_str_radix(eff.trim(), 16).unwrap()
    };
    let plain = caps(&["exec", id, "cat", "/proc/self/status"]);
    let privileged = caps(&["exec", "--privileged", id, "cat", "/proc/self/status"]);
    assert_eq!(plain & (1 << 21), 0, "{plain:x}");
    assert_ne!(privileged & (1 << 21), 0, "{privileged:x}");
    assert_eq!(plain & !privileged, 0, "{plain:x} {privileged:x}");
    d.ok(&["rm", "-f", id]);
    // --mac-address sets the container side of its veth.
    let o = d.ok(&[
        "run",
        "--rm",
        "--network",
        "bridge",
        "--mac-address",
        "02:42:AC:11:00:99",
        "busybox",
        "cat",
        "/sys/class/net/eth0/address",
    ]);
    assert_eq!(o.trim(), "02:42:ac:11:00:99");
    let o = d.docker(&[
        "run",
        "--rm",
        "--mac-address",
        "01:00:5e:00:00:01",
        "busybox",
        "true",
    ]);
    assert!(stderr(&o).contains("invalid MAC address"), "{}", stderr(&o));
    let masked = |extra: &[&str]| {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(extra);
        args.extend(["busybox", "cat", "/proc/self/mountinfo"]);
        d.ok(&args).contains(" /proc/keys ")
    };
    assert!(masked(&[]), "/proc/keys is not masked by default");
    assert!(!masked(&["--security-opt", "systempaths=unconfined"]));
}

/// `POST /containers/create?platform=`: an image of another platform is refused (dockerd's
/// 404 and message), the host's own is fine.
#[test]
fn create_with_a_platform_checks_the_image() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let body = br#"{"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}"#;
    let (status, msg) = request(
        &d.sock,
        "POST",
        "/v1.50/containers/create?platform=linux/s390x",
        body,
    );
    assert_eq!(status, 404, "{msg}");
    assert!(
        msg.contains("does not match the specified platform: wanted linux/s390x"),
        "{msg}"
    );
    let host = d.ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Os}}/{{.Architecture}}",
        "busybox",
    ]);
    let (status, msg) = request(
        &d.sock,
        "POST",
        &format!("/v1.50/containers/create?platform={}", host.trim()),
        body,
    );
    assert_eq!(status, 201, "{msg}");
}

/// The types of the entries of a tar stream, by name: (type byte, major, minor, mode).
fn special_entries(tar_bytes: &[u8]) -> std::collections::BTreeMap<String, (u8, u32, u32, u32)> {
    let mut out = std::collections::BTreeMap::new();
    let mut a = tar::Archive::new(tar_bytes);
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        let kind = h.entry_type();
        if kind.is_fifo() || kind.is_character_special() || kind.is_block_special() {
            let name = e
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            out.insert(
                name,
                (
                    kind.as_byte(),
                    h.device_major().unwrap().unwrap_or(0),
                    h.device_minor().unwrap().unwrap_or(0),
                    h.mode().unwrap() & 0o7777,
                ),
            );
        }
    }
    out
}

/// Device nodes and FIFOs made in a container survive `commit` (the layer tar, its
/// extraction into the store), a container of the new image, `export` and `save`, as the
/// kinds they are (they were extracted as empty regular files, and a commit of a FIFO was a
/// 500).
#[test]
fn device_nodes_and_fifos_survive_commit_export_and_save() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    d.ok(&[
        "run",
        "--name",
        "maker",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "mkfifo -m 640 /pipe && mknod -m 600 /null2 c 1 3 && mknod -m 660 /loop9 b 7 9 \
         && chown 5:6 /pipe",
    ]);
    d.ok(&["commit", "maker", "special:v1"]);
    let seen = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "special:v1",
        "stat",
        "-c",
        "%n %F %t:%T %a %u:%g",
        "/pipe",
        "/null2",
        "/loop9",
    ]);
    assert_eq!(
        seen,
        "/pipe fifo 0:0 640 5:6\n/null2 character special file 1:3 600 0:0\n\
         /loop9 block special file 7:9 660 0:0\n",
    );
    // The committed layer as saved: the entries keep their kinds and numbers.
    let o = d.docker(&["save", "special:v1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut layers = std::collections::BTreeMap::new();
    let mut a = tar::Archive::new(&o.stdout[..]);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        // Layers (docker's `<id>/layer.tar`, or OCI blobs that are tars, not JSON).
        if name.ends_with("layer.tar")
            || (name.starts_with("blobs/") && data.first() != Some(&b'{'))
        {
            layers.extend(special_entries(&data));
        }
    }
    let want = |m: &std::collections::BTreeMap<String, (u8, u32, u32, u32)>| {
        assert_eq!(m.get("pipe"), Some(&(b'6', 0, 0, 0o640)), "{m:?}");
        assert_eq!(m.get("null2"), Some(&(b'3', 1, 3, 0o600)), "{m:?}");
        assert_eq!(m.get("loop9"), Some(&(b'4', 7, 9, 0o660)), "{m:?}");
    };
    want(&layers);
    // And a container of it, exported.
    d.ok(&["create", "--name", "again", "special:v1"]);
    let o = d.docker(&["export", "again"]);
    assert!(o.status.success(), "{}", stderr(&o));
    want(&special_entries(&o.stdout));
}
