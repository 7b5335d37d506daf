//! Known container escapes, end to end through wharfd and the docker CLI: each test performs
//! the attack and checks that it was refused or stayed inside. See docs/security.md.

mod common;

use common::{eventually, stderr, Daemon};
use std::fs;
use std::path::{Path, PathBuf};

fn shim_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wharfd")).with_file_name("wharf-shim")
}

/// Whether the file is on a read-only mount.
fn read_only(p: &str) -> bool {
    nix::sys::statvfs::statvfs(p)
        .unwrap()
        .flags()
        .contains(nix::sys::statvfs::FsFlags::ST_RDONLY)
}

fn host_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// CVE-2018-15664: while `docker cp` runs in and out of a container, the container swaps a
/// directory on the copied path for a symlink to `/`, in a loop. A copy resolved in the
/// container and then done by host path would read or write the host's files at that path;
/// the host holds a secret there (and an empty directory to write into), the container its
/// own copies at both places.
#[test]
fn cp_during_a_symlink_swap_stays_in_the_container() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let secret_dir = d.dir.path().join("host-secret");
    let victim = d.dir.path().join("host-victim");
    fs::create_dir_all(&secret_dir).unwrap();
    fs::create_dir_all(&victim).unwrap();
    let mut r = [0u8; 8];
    getrandom::fill(&mut r).unwrap();
    let secret = format!("host secret {}\n", hex::encode(r));
    fs::write(secret_dir.join("secret"), &secret).unwrap();
    let (sp, vp) = (secret_dir.display(), victim.display());
    let script = format!(
        "mkdir -p /w/dir{sp} /w/dir{vp} {sp} {vp}; \
         echo container > /w/dir{sp}/secret; echo container > {sp}/secret; \
         while :; do mv /w/dir /w/real; ln -s / /w/dir; rm /w/dir; mv /w/real /w/dir; done"
    );
    d.ok(&[
        "run",
        "-d",
        "--name",
        "swap",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    eventually("the container's files", || {
        d.docker(&["exec", "swap", "cat", &format!("{sp}/secret")])
            .status
            .success()
    });
    let out = d.dir.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let payload = d.dir.path().join("payload");
    fs::write(&payload, "from the test\n").unwrap();
    let (mut read, mut written) = (0, 0);
    for i in 0..60 {
        let dst = out.join(format!("{i}"));
        let o = d.docker(&[
            "cp",
            &format!("swap:/w/dir{sp}/secret"),
            dst.to_str().unwrap(),
        ]);
        // (A file the swap moved away between the stat and the tar comes out as an empty
        // archive: nothing is written.)
        if o.status.success() && dst.exists() {
            read += 1;
            let got = fs::read_to_string(&dst).unwrap();
            assert_ne!(got, secret, "docker cp read the host's file (copy {i})");
            assert_eq!(got, "container\n", "copy {i}");
        }
        let o = d.docker(&[
            "cp",
            payload.to_str().unwrap(),
            &format!("swap:/w/dir{vp}/"),
        ]);
        if o.status.success() {
            written += 1;
        }
        assert!(
            host_files(&victim).is_empty(),
            "docker cp wrote into the host's {vp} (copy {i}): {:?}",
            host_files(&victim)
        );
    }
    assert!(
        read > 0 && written > 0,
        "no copy got through ({read} read, {written} written): the test proves nothing"
    );
    assert_eq!(
        fs::read_to_string(secret_dir.join("secret")).unwrap(),
        secret
    );
}

/// `docker cp` sees (and writes) a container's volumes and binds, running or stopped, as
/// Docker's does.
#[test]
fn cp_goes_through_volumes_and_binds() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let bind = d.dir.path().join("bind");
    fs::create_dir_all(&bind).unwrap();
    fs::write(bind.join("bound.txt"), "bound\n").unwrap();
    d.ok(&["volume", "create", "v1"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "--network",
        "none",
        "-v",
        "v1:/vol",
        "-v",
        &format!("{}:/bnd", bind.display()),
        "busybox",
        "sh",
        "-c",
        "echo in-volume > /vol/v.txt; exec sleep 100",
    ]);
    eventually("the volume's file", || {
        d.docker(&["exec", "box", "cat", "/vol/v.txt"])
            .status
            .success()
    });
    let out = d.dir.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let payload = d.dir.path().join("payload.txt");
    fs::write(&payload, "copied in\n").unwrap();
    let volume_dir = d.dir.path().join("data/volumes/v1/_data");
    for state in ["running", "stopped"] {
        if state == "stopped" {
            d.ok(&["kill", "box"]);
            fs::remove_file(volume_dir.join("payload.txt")).unwrap();
            fs::remove_file(bind.join("payload.txt")).unwrap();
        }
        let o1 = out.join(format!("{state}-v.txt"));
        let o2 = out.join(format!("{state}-b.txt"));
        d.ok(&["cp", "box:/vol/v.txt", o1.to_str().unwrap()]);
        d.ok(&["cp", "box:/bnd/bound.txt", o2.to_str().unwrap()]);
        assert_eq!(fs::read_to_string(&o1).unwrap(), "in-volume\n", "{state}");
        assert_eq!(fs::read_to_string(&o2).unwrap(), "bound\n", "{state}");
        d.ok(&["cp", payload.to_str().unwrap(), "box:/vol/"]);
        d.ok(&["cp", payload.to_str().unwrap(), "box:/bnd/"]);
        assert_eq!(
            fs::read_to_string(volume_dir.join("payload.txt")).unwrap(),
            "copied in\n",
            "{state}: into the volume"
        );
        assert_eq!(
            fs::read_to_string(bind.join("payload.txt")).unwrap(),
            "copied in\n",
            "{state}: into the bind"
        );
    }
    // The stopped container's volume mounts were private to the copy.
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let data = d.dir.path().display().to_string();
    assert!(
        !mounts
            .lines()
            .any(|l| l.contains(&data) && l.contains("/cp-")),
        "a copy's mount was left behind:\n{mounts}"
    );
}

/// CVE-2019-5736 through the shim: a container runs the shim's own image inside it (`exec` of
/// `/proc/self/exe`, which is the shim until the exec; the host's libc is bound in so that it
/// can start), whose child (`--runtime` pointing at a script of the container's) opens its
/// parent's `/proc/<pid>/exe` and writes to it. The write must fail and the shim's binary
/// stay unchanged; the shim processes run from a read-only mount (while any shim runs, the
/// kernel answers ETXTBSY before it looks at the mount; once none does, EROFS remains).
#[test]
fn container_cannot_write_the_shim_binary() {
    require_env!();
    let d = Daemon::start();
    d.busybox();
    let shim = shim_binary();
    let before = fs::read(&shim).unwrap();
    let x = d.dir.path().join("x");
    fs::create_dir_all(&x).unwrap();
    fs::write(
        x.join("blocker"),
        "#!/bin/sh\n\
         exec 3</proc/$PPID/exe || { echo open-failed > /x/result; exit 1; }\n\
         readlink /proc/$PPID/exe > /x/name\n\
         ( echo x >> /proc/self/fd/3 ) 2>/x/result; echo \"status $?\" >> /x/result\n\
         exit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(x.join("blocker"), fs::Permissions::from_mode(0o755)).unwrap();
    // The shim is linked against the host's libc: give the container the loader and the
    // libraries (read-only) so that the kernel can run it there, as in an image with glibc.
    let libs = std::process::Command::new("ldd")
        .arg(&shim)
        .output()
        .unwrap();
    let mut args: Vec<String> = ["run", "-d", "--name", "box", "--network", "none", "-v"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(format!("{}:/x", x.display()));
    for lib in String::from_utf8_lossy(&libs.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let real = fs::canonicalize(lib).unwrap();
        args.push("--mount".into());
        args.push(format!(
            "type=bind,src={},dst={lib},readonly",
            real.display()
        ));
    }
    args.extend(["busybox", "sleep", "100"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let id = d.ok(&args).trim().to_string();
    // The shim of this container runs from a read-only mount.
    let shim_pid = fs::read_to_string(d.dir.path().join(format!("exec/containers/{id}/shim.pid")))
        .unwrap()
        .trim()
        .to_string();
    assert!(
        read_only(&format!("/proc/{shim_pid}/exe")),
        "the shim's exe is writable"
    );
    let o = d.docker(&[
        "exec",
        "box",
        "/proc/self/exe",
        "--id",
        "evil",
        "--bundle",
        "/x/b",
        "--state-dir",
        "/x/s",
        "--runtime",
        "/x/blocker",
    ]);
    eventually("the attack's result", || {
        fs::read_to_string(x.join("result"))
            .is_ok_and(|s| s.contains("status") || s.contains("failed"))
    });
    let result = fs::read_to_string(x.join("result")).unwrap();
    let name = fs::read_to_string(x.join("name")).unwrap_or_default();
    assert!(
        before == fs::read(&shim).unwrap(),
        "the shim binary {} was modified: {result}",
        shim.display()
    );
    // While any shim runs the binary the kernel says ETXTBSY first; the read-only mount is
    // what still refuses once none does.
    assert!(
        (result.contains("Read-only file system") || result.contains("Text file busy"))
            && !result.contains("status 0"),
        "writing /proc/<pid>/exe ({}) should fail with EROFS: {result:?} (exec: {})",
        name.trim(),
        stderr(&o)
    );
}
