//! `docker cp` into containers, end to end with the docker CLI: the owners of what is
//! extracted with and without `-a` (`copyUIDGID`), the refusal to replace a directory by a
//! file or the reverse (`noOverwriteDirNonDir`, which the CLI always sends), and uploads that
//! stream (bounded memory) or break off. The scenarios that Debian's dockerd (20.10) can run
//! run against it too (`*_dockerd_netns`): what wharfd is checked against is what it does.

mod common;

use common::{eventually, stderr, Daemon, Place};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// `uid:gid` of `path` in the running container `ctr`.
fn owner(d: &Daemon, ctr: &str, path: &str) -> String {
    d.ok(&["exec", ctr, "stat", "-c", "%u:%g", path])
        .trim()
        .to_string()
}

/// A busybox container `name` running `sleep`, with `extra` flags.
fn run_box(d: &Daemon, name: &str, extra: &[&str]) {
    let mut a = vec!["run", "-d", "--name", name, "--network", "none"];
    a.extend_from_slice(extra);
    a.extend_from_slice(&["busybox", "sleep", "300"]);
    d.ok(&a);
}

/// A host file and a host directory (with a file) owned by 1234:1234, under `dir`.
fn host_tree_owned_by_1234(dir: &Path) -> (String, String) {
    let (file, tree) = (dir.join("owned.txt"), dir.join("owned-dir"));
    std::fs::write(&file, "owned by 1234\n").unwrap();
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("inner.txt"), "inner\n").unwrap();
    for p in [&file, &tree, &tree.join("inner.txt")] {
        std::os::unix::fs::chown(p, Some(1234), Some(1234)).unwrap();
    }
    (
        file.to_str().unwrap().to_string(),
        tree.to_str().unwrap().to_string(),
    )
}

scenario!(ownership, wharfd, dockerd_netns);

/// As moby: without `-a` the archive's owners stay (the host's 1234, not the container's
/// root, whatever docker's reference page says: moby/moby#45793); with `-a`, a container
/// with a user gets everything owned by that user, one without keeps the archive's.
fn ownership(place: Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    let (file, tree) = host_tree_owned_by_1234(d.dir.path());
    run_box(&d, "plain", &[]);
    // `nobody` is 65534:65534 in busybox's /etc/passwd, and on the host, where dockerd 20.10
    // looks it up (moby/moby#34142).
    run_box(&d, "nob", &["--user", "nobody"]);
    for ctr in ["plain", "nob"] {
        d.ok(&["cp", &file, &format!("{ctr}:/tmp/")]);
        d.ok(&["cp", &tree, &format!("{ctr}:/tmp/")]);
        for p in [
            "/tmp/owned.txt",
            "/tmp/owned-dir",
            "/tmp/owned-dir/inner.txt",
        ] {
            assert_eq!(owner(&d, ctr, p), "1234:1234", "{ctr}:{p} without -a");
        }
    }
    d.ok(&["cp", "-a", &file, "plain:/tmp/a.txt"]);
    assert_eq!(owner(&d, "plain", "/tmp/a.txt"), "1234:1234");
    d.ok(&["cp", "-a", &file, "nob:/tmp/a.txt"]);
    d.ok(&["cp", "-a", &tree, "nob:/tmp/a-dir"]);
    for p in ["/tmp/a.txt", "/tmp/a-dir", "/tmp/a-dir/inner.txt"] {
        assert_eq!(owner(&d, "nob", p), "65534:65534", "nob:{p} with -a");
    }
    if place == Place::DockerdNetns {
        // 20.10 looks the user up on the host: what follows is moby 28's behaviour.
        return;
    }

    // A user only the container knows, in a stopped container (its layers mounted for the
    // copy, the lookup in them); a numeric one; one that is nowhere.
    d.ok(&[
        "run",
        "--name",
        "mk",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo app:x:2375:2376::/:/bin/sh >> /etc/passwd && echo appgrp:x:2376: >> /etc/group",
    ]);
    d.ok(&["commit", "mk", "withapp"]);
    for (user, want) in [("app", "2375:2376"), ("7777:appgrp", "7777:2376")] {
        let name = format!("u{}", &want[..4]);
        d.ok(&[
            "create",
            "--name",
            &name,
            "--user",
            user,
            "--network",
            "none",
            "withapp",
            "sleep",
            "300",
        ]);
        d.ok(&["cp", "-a", &file, &format!("{name}:/tmp/")]);
        d.ok(&["cp", &file, &format!("{name}:/tmp/plain.txt")]);
        d.ok(&["start", &name]);
        assert_eq!(owner(&d, &name, "/tmp/owned.txt"), want, "--user {user}");
        assert_eq!(owner(&d, &name, "/tmp/plain.txt"), "1234:1234", "{user}");
    }
    d.ok(&[
        "create",
        "--name",
        "ghost",
        "--user",
        "ghost",
        "--network",
        "none",
        "withapp",
        "true",
    ]);
    let o = d.docker(&["cp", "-a", &file, "ghost:/tmp/"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "failed to look up user \"ghost\" in container: no matching entries in passwd file"
        ),
        "{}",
        stderr(&o)
    );
}

scenario!(overwrite_refusals, wharfd, dockerd_netns);

/// A raw `PUT /containers/{ctr}/archive?{query}` of `tar`: (status, body).
fn put_archive(d: &Daemon, ctr: &str, query: &str, tar: &[u8]) -> (u16, String) {
    let mut s = UnixStream::connect(&d.sock).unwrap();
    write!(
        s,
        "PUT /containers/{ctr}/archive?{query} HTTP/1.1\r\nHost: docker\r\n\
         Content-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        tar.len()
    )
    .unwrap();
    // A daemon may answer before it read the body, and close: what it wrote is kept.
    let _ = s.write_all(tar);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let out = String::from_utf8_lossy(&raw).into_owned();
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

/// A tar of one entry: a file `name`, or a directory `name/` when `data` is `None`.
fn one_entry_tar(name: &str, data: Option<&[u8]>) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(if data.is_some() {
        tar::EntryType::Regular
    } else {
        tar::EntryType::Directory
    });
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(data.map_or(0, |d| d.len() as u64));
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, name, data.unwrap_or_default())
        .unwrap();
    b.into_inner().unwrap()
}

/// The docker CLI sends `noOverwriteDirNonDir=true`: a host file copied over a directory of
/// the container, or a host directory over a file, fails (moby's message, exit code 1) and
/// changes nothing. The API without the flag replaces.
fn overwrite_refusals(place: Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    run_box(&d, "box", &[]);
    d.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "mkdir -p /tmp/x && echo keep > /tmp/x/keep && echo file > /tmp/y",
    ]);
    let src = d.dir.path().join("src");
    std::fs::create_dir_all(src.join("y")).unwrap();
    std::fs::write(src.join("y/inner"), "inner\n").unwrap();
    std::fs::write(src.join("x"), "a file\n").unwrap();

    let cases = [
        ("x", "cannot overwrite directory", "with non-directory"),
        ("y", "cannot overwrite non-directory", "with directory"),
    ];
    for (name, what, with) in cases {
        let o = d.docker(&["cp", src.join(name).to_str().unwrap(), "box:/tmp"]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.starts_with("Error response from daemon: "), "{err}");
        // moby 28.2's message (pkg/archive at the CLI's version); 20.10 puts "Error processing
        // tar file(exit status 1): " before it (its untar ran in a child process).
        let want = format!("{what} \"/tmp/{name}\" {with} \"/tmp\"");
        assert!(err.contains(&want), "{err}\nwanted: {want}");
        if place == Place::Host {
            assert_eq!(
                err.trim_end(),
                format!("Error response from daemon: {want}")
            );
        }
    }
    assert_eq!(
        d.ok(&["exec", "box", "cat", "/tmp/x/keep", "/tmp/y"]),
        "keep\nfile\n"
    );

    // A tar on stdin (`-`) goes through the same checks.
    let o = d.docker_stdin(
        &["cp", "-", "box:/tmp"],
        Some(&one_entry_tar("x", Some(b"s\n"))),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot overwrite directory"),
        "{}",
        stderr(&o)
    );
    let o = d.docker_stdin(
        &["cp", "-", "box:/tmp"],
        Some(&one_entry_tar("z", Some(b"s\n"))),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(d.ok(&["exec", "box", "cat", "/tmp/z"]), "s\n");

    // Compressed, as moby's Untar takes it.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&one_entry_tar("zipped", Some(b"gz\n")))
        .unwrap();
    let gz = gz.finish().unwrap();
    let o = d.docker_stdin(&["cp", "-", "box:/tmp"], Some(&gz));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(d.ok(&["exec", "box", "cat", "/tmp/zipped"]), "gz\n");

    // The API without noOverwriteDirNonDir replaces both.
    let (st, body) = put_archive(&d, "box", "path=/tmp", &one_entry_tar("x", Some(b"now\n")));
    assert_eq!(st, 200, "{body}");
    let (st, body) = put_archive(&d, "box", "path=/tmp", &one_entry_tar("y/", None));
    assert_eq!(st, 200, "{body}");
    assert_eq!(d.ok(&["exec", "box", "cat", "/tmp/x"]), "now\n");
    d.ok(&["exec", "box", "test", "-d", "/tmp/y"]);
    // With it, through the API: a server error, as moby's (the CLI's exit 1 above).
    let (st, body) = put_archive(
        &d,
        "box",
        "path=/tmp&noOverwriteDirNonDir=1",
        &one_entry_tar("y", Some(b"file again\n")),
    );
    assert_eq!(st, 500, "{body}");
}

/// VmHWM (peak resident set) of `pid`, in KiB.
fn vm_hwm_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

/// A 320 MiB upload (a sparse host file: zeros) streams into the container: wharfd's peak
/// memory grows by far less than that (it used to hold the whole body).
#[test]
fn a_big_upload_streams_in_bounded_memory() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    run_box(&d, "box", &[]);
    let size: u64 = 320 << 20;
    let big = d.dir.path().join("big.bin");
    std::fs::File::create(&big).unwrap().set_len(size).unwrap();
    let pid = d.pid().unwrap();
    let before = vm_hwm_kib(pid);
    d.ok(&["cp", big.to_str().unwrap(), "box:/tmp/"]);
    let after = vm_hwm_kib(pid);
    let grown_mib = after.saturating_sub(before) / 1024;
    eprintln!("running: VmHWM {before} kB -> {after} kB");
    assert!(
        grown_mib < 150,
        "wharfd's VmHWM grew by {grown_mib} MiB ({before} kB -> {after} kB) for a {} MiB upload",
        size >> 20
    );
    assert_eq!(
        d.ok(&["exec", "box", "stat", "-c", "%s", "/tmp/big.bin"])
            .trim(),
        size.to_string()
    );
    // All zeros, all there.
    assert_eq!(
        d.ok(&[
            "exec",
            "box",
            "sh",
            "-c",
            "tr -d '\\000' < /tmp/big.bin | wc -c"
        ])
        .trim(),
        "0"
    );
    // A stopped container too (its layers mounted for the copy).
    d.ok(&["stop", "-t", "0", "box"]);
    let before = vm_hwm_kib(pid);
    d.ok(&["cp", big.to_str().unwrap(), "box:/tmp/again.bin"]);
    let grown_mib = vm_hwm_kib(pid).saturating_sub(before) / 1024;
    assert!(grown_mib < 150, "stopped: VmHWM grew by {grown_mib} MiB");
    d.ok(&["start", "box"]);
    assert_eq!(
        d.ok(&["exec", "box", "stat", "-c", "%s", "/tmp/again.bin"])
            .trim(),
        size.to_string()
    );
}

/// wharfd's children that are zombies (a copy's helper nobody reaped).
fn zombie_children(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        for k in kids.split_whitespace() {
            let st = std::fs::read_to_string(format!("/proc/{k}/stat")).unwrap_or_default();
            // pid (comm) state ...
            if st
                .rsplit_once(") ")
                .is_some_and(|(_, r)| r.starts_with('Z'))
            {
                out.push(k.to_string());
            }
        }
    }
    out
}

/// An upload cut off midway (the client dies) fails the copy: the entries before the cut are
/// there, as Docker leaves them (it extracts as it reads), the helper is reaped, a stopped
/// container's temporary mount is gone, and the next copy works.
#[test]
fn a_cut_upload_fails_and_leaves_nothing_running_or_mounted() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    d.ok(&[
        "create",
        "--name",
        "box",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..40 {
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
    let tar = b.into_inner().unwrap();
    // 10 whole entries and half of the 11th, of a body announced whole.
    let cut = 10 * (512 + 64 * 1024) + 512 + 32 * 1024;
    let mut s = UnixStream::connect(&d.sock).unwrap();
    write!(
        s,
        "PUT /containers/box/archive?path=/tmp HTTP/1.1\r\nHost: docker\r\n\
         Content-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        tar.len()
    )
    .unwrap();
    s.write_all(&tar[..cut]).unwrap();
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    drop(s);

    let pid = d.pid().unwrap();
    let data_root = d.dir.path().join("data").display().to_string();
    eventually("the copy's helper reaped and its mount gone", || {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        zombie_children(pid).is_empty()
            && !mounts.lines().any(|l| {
                l.split(' ')
                    .nth(4)
                    .is_some_and(|m| m.starts_with(&data_root) && m.contains("cp"))
            })
    });
    d.ok(&["start", "box"]);
    let listed = d.ok(&["exec", "box", "ls", "/tmp"]);
    let names: Vec<&str> = listed.split_whitespace().collect();
    for i in 0..10 {
        assert!(names.contains(&format!("f{i}").as_str()), "{listed}");
    }
    assert!(!names.contains(&"f12"), "{listed}");
    for i in 0..10 {
        let m = d.ok(&["exec", "box", "stat", "-c", "%s", &format!("/tmp/f{i}")]);
        assert_eq!(m.trim(), (64 * 1024).to_string());
    }
    // The daemon goes on: the next copy works.
    let f = d.dir.path().join("after.txt");
    std::fs::write(&f, "after\n").unwrap();
    d.ok(&["cp", f.to_str().unwrap(), "box:/tmp/"]);
    assert_eq!(d.ok(&["exec", "box", "cat", "/tmp/after.txt"]), "after\n");
}

scenario!(read_only_targets, wharfd, dockerd_netns);

/// moby's `checkWritablePath`: no copy into a read-only rootfs (outside its read-write
/// mounts) or a read-only volume, running or stopped (a stopped container's layers are
/// mounted read-write for the copy: the check is the daemon's, not the kernel's); and an
/// extraction point that is a file is refused.
fn read_only_targets(place: Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    run_box(
        &d,
        "ro",
        &["--read-only", "-v", "rwvol:/rw", "-v", "rovol:/ro:ro"],
    );
    let f = d.dir.path().join("f.txt");
    std::fs::write(&f, "f\n").unwrap();
    let f = f.to_str().unwrap();
    let refused = |dest: &str, want: &str| {
        let o = d.docker(&["cp", f, dest]);
        assert_eq!(o.status.code(), Some(1), "{dest}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{dest}: {}", stderr(&o));
    };
    for running in [true, false] {
        refused("ro:/tmp/", "container rootfs is marked read-only");
        refused("ro:/ro/", "mounted volume is marked read-only");
        d.ok(&["cp", f, "ro:/rw/"]);
        if running {
            d.ok(&["stop", "-t", "0", "ro"]);
        }
    }
    d.ok(&["start", "ro"]);
    assert_eq!(d.ok(&["exec", "ro", "cat", "/rw/f.txt"]), "f\n");
    d.ok(&["exec", "ro", "test", "!", "-e", "/tmp/f.txt"]);
    let (st, body) = put_archive(&d, "ro", "path=/rw/f.txt", &one_entry_tar("x", Some(b"x")));
    assert!(
        body.contains("extraction point is not a directory"),
        "{body}"
    );
    if place == Place::Host {
        // moby 28's status (20.10 answered 500).
        assert_eq!(st, 400, "{body}");
        let (st, body) = put_archive(&d, "ro", "path=/tmp", &one_entry_tar("x", Some(b"x")));
        assert_eq!(
            (st, body.contains("container rootfs is marked read-only")),
            (400, true)
        );
    }
}

scenario!(copy_events, wharfd, dockerd_netns);

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A copy in logs `extract-to-dir`, a copy out `archive-path` (a refused copy in, and the
/// CLI's stat of the destination, nothing).
fn copy_events(place: Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    run_box(&d, "box", &[]);
    d.ok(&["exec", "box", "mkdir", "/tmp/x"]);
    let since = unix_now();
    let f = d.dir.path().join("x");
    std::fs::write(&f, "x\n").unwrap();
    d.ok(&["cp", f.to_str().unwrap(), "box:/tmp/x/"]);
    assert!(!d
        .docker(&["cp", f.to_str().unwrap(), "box:/tmp"])
        .status
        .success());
    d.ok(&[
        "cp",
        "box:/tmp/x/x",
        d.dir.path().join("back").to_str().unwrap(),
    ]);
    let ev = d.ok(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &(unix_now() + 1).to_string(),
        "--filter",
        "event=extract-to-dir",
        "--filter",
        "event=archive-path",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    assert_eq!(
        ev.lines().collect::<Vec<_>>(),
        ["extract-to-dir box", "archive-path box"],
        "{ev}"
    );
}

/// A sparse file copied out comes as a plain file entry (Go's archive/tar, which the docker
/// CLI extracts with, refuses GNU sparse entries: "unhandled tar header type 83"), and one
/// copied in by the docker CLI is whole.
#[test]
fn sparse_files_copy_out_as_plain_entries() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    run_box(&d, "box", &[]);
    d.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "truncate -s 5M /tmp/sp && echo tail >> /tmp/sp",
    ]);
    let back = d.dir.path().join("sp");
    d.ok(&["cp", "box:/tmp/sp", back.to_str().unwrap()]);
    assert_eq!(std::fs::metadata(&back).unwrap().len(), (5 << 20) + 5);
    let o = d.docker(&["cp", "box:/tmp/sp", "-"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut ar = tar::Archive::new(&o.stdout[..]);
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        assert_eq!(e.header().entry_type(), tar::EntryType::Regular);
    }
}

scenario!(
    a_copy_out_that_fails_midway_is_an_error,
    wharfd,
    dockerd_netns
);

/// A file whose data is shorter than its stat size (a sysfs attribute: a page announced, a
/// few bytes there; or a file that shrinks while it is copied) cannot be archived as
/// announced: the copy out fails and the client exits non-zero instead of getting a tar cut
/// short that looks whole. Beside it, a sound copy still works.
fn a_copy_out_that_fails_midway_is_an_error(place: Place) {
    let Some(d) = Daemon::launch(place, None) else {
        return;
    };
    d.busybox();
    run_box(&d, "box", &[]);
    let o = d.docker(&["cp", "box:/sys/class/net/lo/mtu", "-"]);
    assert!(
        !o.status.success(),
        "a short sysfs read was archived as whole ({} bytes out)",
        o.stdout.len()
    );
    let o = d.docker(&["cp", "box:/etc/passwd", "-"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut a = tar::Archive::new(&o.stdout[..]);
    let names: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["passwd"]);
}
