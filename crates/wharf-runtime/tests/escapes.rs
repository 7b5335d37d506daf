//! Known container escapes, performed against `wharf-runtime`: each test does what the
//! attack does and checks that it was refused or stayed inside the container. See
//! docs/security.md ("Attacks tried").
//!
//! `WRT_RUNTIME_UNDER_TEST` runs them against another build of the binary (an older one, to
//! see that the tests do catch the hole). Needs root (each test passes with a note otherwise).

mod common;

use common::{Case, Rt};
use serde_json::json;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

macro_rules! case {
    () => {
        match Case::new(module_path!()) {
            Some(c) => c,
            None => return,
        }
    };
}

const W: Rt = Rt::Wharf;

fn bin() -> PathBuf {
    std::env::var_os("WRT_RUNTIME_UNDER_TEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(W.bin()))
}

/// What a command printed.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\nstdout: {:?}\nstderr: {:?}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// `wharf-runtime --root <root> args...`, with `leak` (when given) open as fd 7 and not
/// close-on-exec: a descriptor the runtime's caller left open, as a shim or a daemon may.
fn rt(c: &Case, args: &[&str], leak: Option<&OwnedFd>) -> Out {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    // Files, not pipes: a created container keeps its stdio open after `create` returns.
    let logs = c.scratch(W, "escape-logs");
    let k = N.fetch_add(1, Ordering::SeqCst);
    let (out, err) = (logs.join(format!("{k}.out")), logs.join(format!("{k}.err")));
    let mut cmd = Command::new(bin());
    cmd.arg("--root")
        .arg(c.root(W))
        .args(args)
        .env("WRT_CASE", c.tag(W))
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap());
    if let Some(fd) = leak {
        let raw = fd.as_raw_fd();
        // SAFETY: dup2 is async-signal-safe; `raw` stays open in the parent until spawn returns.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(raw, 7) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().expect("spawning wharf-runtime");
    let end = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wharf-runtime {args:?} still running after 30 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Out {
        code: status.code().unwrap_or(-1),
        stdout: fs::read_to_string(&out).unwrap_or_default(),
        stderr: fs::read_to_string(&err).unwrap_or_default(),
    }
}

fn run(c: &Case, leak: Option<&OwnedFd>) -> Out {
    let b = c.bundle(W);
    rt(c, &["run", "--bundle", b.to_str().unwrap(), &c.id], leak)
}

/// A host directory holding a canary file whose name must never show up in a container.
fn canary_dir(c: &Case) -> (PathBuf, String) {
    let d = c.scratch(W, "host-secret");
    let name = format!("canary-{}", c.id);
    fs::write(d.join(&name), "host data\n").unwrap();
    (d, name)
}

fn open_dir(p: &Path) -> OwnedFd {
    fs::File::open(p).unwrap().into()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------
// CVE-2024-21626: a working directory reached through a descriptor the runtime left open

/// The container's cwd is `/proc/self/fd/7`, and fd 7 of the runtime is a host directory
/// (left open by its caller). Without closing it before the chdir, the container's process
/// would start in that host directory and see (and write) the host's files.
#[test]
fn cwd_through_a_leaked_descriptor_is_refused() {
    let c = case!();
    let (host, canary) = canary_dir(&c);
    let leak = open_dir(&host);
    for cwd in ["/proc/self/fd/7", "/proc/self/fd/7/..", "/proc/1/cwd"] {
        c.edit(|cfg| cfg["process"]["cwd"] = json!(cwd));
        c.sh("pwd; ls -a");
        let o = run(&c, Some(&leak));
        assert!(
            !o.stdout.contains(&canary) && !o.stdout.contains("(unreachable)"),
            "cwd {cwd}: the container started in a host directory\n{o}"
        );
        assert_ne!(
            o.code, 0,
            "cwd {cwd}: a magic-link cwd must be refused\n{o}"
        );
        assert!(
            o.stderr.contains(cwd),
            "cwd {cwd}: the error should name it\n{o}"
        );
    }
}

/// The same through `exec`: its process joins the container and changes directory there.
#[test]
fn exec_cwd_through_a_leaked_descriptor_is_refused() {
    let c = case!();
    let (host, canary) = canary_dir(&c);
    c.args(&["sleep", "60"]);
    let b = c.bundle(W);
    let o = rt(
        &c,
        &["create", "--bundle", b.to_str().unwrap(), &c.id],
        None,
    );
    assert_eq!(o.code, 0, "create: {o}");
    let o = rt(&c, &["start", &c.id], None);
    assert_eq!(o.code, 0, "start: {o}");
    let leak = open_dir(&host);
    for cwd in ["/proc/self/fd/7", "/proc/self/fd/7/.."] {
        let o = rt(
            &c,
            &["exec", "--cwd", cwd, &c.id, "sh", "-c", "pwd; ls -a"],
            Some(&leak),
        );
        assert!(
            !o.stdout.contains(&canary) && !o.stdout.contains("(unreachable)"),
            "exec --cwd {cwd}: the process started in a host directory\n{o}"
        );
        assert_ne!(o.code, 0, "exec --cwd {cwd} must be refused\n{o}");
    }
    // A cwd that is a symlink to a host path resolves inside the container's root.
    let rootfs = c.rootfs(W);
    fs::create_dir_all(rootfs.join(host.strip_prefix("/").unwrap())).unwrap();
    std::os::unix::fs::symlink(
        format!("/../../../../../..{}", host.display()),
        rootfs.join("esc"),
    )
    .unwrap();
    let o = rt(
        &c,
        &["exec", "--cwd", "/esc", &c.id, "sh", "-c", "pwd; ls -a"],
        None,
    );
    assert_eq!(o.code, 0, "exec --cwd /esc: {o}");
    assert!(
        !o.stdout.contains(&canary),
        "exec --cwd /esc listed the host directory\n{o}"
    );
}

/// No descriptor of the runtime's survives into the container's process (0-2 only, and the
/// ones --preserve-fds asks for).
#[test]
fn no_runtime_descriptor_reaches_the_container() {
    let c = case!();
    let (host, _) = canary_dir(&c);
    let leak = open_dir(&host);
    c.sh("ls /proc/self/fd");
    let o = run(&c, Some(&leak));
    assert_eq!(o.code, 0, "{o}");
    // ls's own directory descriptor (3) is the only one above 2.
    let fds: Vec<&str> = o.stdout.split_whitespace().collect();
    assert_eq!(
        fds,
        ["0", "1", "2", "3"],
        "descriptors in the container\n{o}"
    );
}

// ---------------------------------------------------------------------------------------------
// CVE-2021-30465: a mount destination swapped for a symlink while the mounts are made

/// A mount destination under a directory another party controls (a volume shared with
/// another container) is swapped, in a loop, between a directory and a symlink to a host
/// directory while containers are created. A createContainer hook (it runs in the container's
/// mount namespace before pivot_root) records whether a mount ever landed on the host path.
#[test]
fn mount_destination_swapped_for_a_symlink_stays_inside() {
    let c = case!();
    let shared = c.scratch(W, "shared");
    let payload = c.scratch(W, "payload");
    fs::write(payload.join("payload-file"), "x").unwrap();
    let host = c.scratch(W, "host-target");
    // Many mounts through the swapped directory: each is a window for the race.
    const N: usize = 16;
    for i in 0..N {
        fs::create_dir_all(host.join(format!("m{i}"))).unwrap();
        fs::create_dir_all(shared.join(format!("dir/m{i}"))).unwrap();
    }
    std::os::unix::fs::symlink(&host, shared.join("link")).unwrap();
    let log = c.scratch(W, "hooklog").join("log");
    let hook = c.scratch(W, "hooks").join("check.sh");
    fs::write(
        &hook,
        format!(
            "#!/bin/sh\nawk 'index($5, \"{}/\") == 1 {{ print \"ESCAPED\", $5 }}' /proc/self/mountinfo >> {}\necho run >> {}\n",
            host.display(),
            log.display(),
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    c.edit(|cfg| {
        let m = cfg["mounts"].as_array_mut().unwrap();
        m.push(json!({"destination": "/shared", "type": "bind", "source": shared, "options": ["rbind", "rw"]}));
        // Read-write: a read-only bind is remounted by path afterwards, which fails (and so
        // hides the escape from the hook) when the swap came back in between.
        for i in 0..N {
            m.push(json!({"destination": format!("/shared/dir/m{i}"), "type": "bind", "source": payload, "options": ["rbind", "rw"]}));
        }
        cfg["hooks"] = json!({"createContainer": [{"path": hook}]});
    });
    c.sh("test -e /shared/dir/m0/payload-file && echo inside || echo elsewhere");
    // The racer: swaps shared/dir and shared/link (a directory and a symlink to the host).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let (a, b) = (shared.join("dir"), shared.join("link"));
    let racer = std::thread::spawn(move || {
        let ca = std::ffi::CString::new(a.as_os_str().as_encoded_bytes()).unwrap();
        let cb = std::ffi::CString::new(b.as_os_str().as_encoded_bytes()).unwrap();
        let mut swaps = 0u64;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            // SAFETY: renameat2 reads two NUL-terminated paths.
            unsafe {
                libc::renameat2(
                    libc::AT_FDCWD,
                    ca.as_ptr(),
                    libc::AT_FDCWD,
                    cb.as_ptr(),
                    libc::RENAME_EXCHANGE,
                )
            };
            swaps += 1;
        }
        swaps
    });
    let mut inside = 0;
    for _ in 0..40 {
        let o = run(&c, None);
        if o.stdout.trim() == "inside" {
            inside += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = racer.join().unwrap();
    let log = fs::read_to_string(&log).unwrap_or_default();
    eprintln!("{swaps} swaps; {inside}/40 runs saw the payload where it belongs; hook log {log:?}");
    assert!(log.contains("run"), "the hook never ran: {log:?}");
    assert!(
        !log.contains("ESCAPED"),
        "a mount landed on the host directory {} ({swaps} swaps, {inside}/40 inside): {log}",
        host.display()
    );
}

/// The deterministic form: the destination already is a symlink to `/` and to a host
/// directory: the bind lands inside the root.
#[test]
fn mount_destination_symlink_to_the_host_lands_inside() {
    let c = case!();
    let payload = c.scratch(W, "payload");
    fs::write(payload.join("payload-file"), "x").unwrap();
    let host = c.scratch(W, "host-target");
    let rootfs = c.rootfs(W);
    std::os::unix::fs::symlink(
        format!("/../../../..{}", host.display()),
        rootfs.join("evil"),
    )
    .unwrap();
    c.mount(json!({"destination": "/evil/sub", "type": "bind", "source": payload, "options": ["rbind", "ro"]}));
    let inside = host.strip_prefix("/").unwrap().join("sub/payload-file");
    c.sh(&format!("test -e /{} && echo inside", inside.display()));
    let o = run(&c, None);
    assert_eq!(o.stdout.trim(), "inside", "{o}");
    assert!(
        !host.join("sub").exists(),
        "the mount point was made on the host"
    );
}

// ---------------------------------------------------------------------------------------------
// CVE-2019-5736: overwriting the runtime's binary through /proc/<pid>/exe

/// While the container is created, its init is still the runtime's process image. A process
/// in the container (here exec'd in) opens `/proc/1/exe`, waits until the init has exec'd
/// the container's program (the binary is no longer busy), and appends to it through
/// `/proc/self/fd`. It must fail, and the runtime's binary must be unchanged.
#[test]
fn container_cannot_write_the_runtime_binary() {
    let c = case!();
    let exe = bin();
    let before = fs::read(&exe).unwrap();
    c.args(&["sleep", "60"]);
    c.bind_scratch("x", "/x");
    let b = c.bundle(W);
    let o = rt(
        &c,
        &["create", "--bundle", b.to_str().unwrap(), &c.id],
        None,
    );
    assert_eq!(o.code, 0, "create: {o}");
    let rootfs = c.scratch(W, "x");
    let attack = "exec 3</proc/1/exe || { echo open-failed > /x/result; exit; }; \
                  readlink /proc/1/exe > /x/exe-name; touch /x/ready; \
                  while [ ! -e /x/go ]; do sleep 0.05; done; \
                  n=0; while :; do ( echo x >>/proc/self/fd/3 ) 2>/x/result; st=$?; \
                  grep -q busy /x/result && [ $n -lt 100 ] || break; n=$((n+1)); sleep 0.1; done; \
                  echo \"status $st\" >> /x/result";
    let o = rt(&c, &["exec", "--detach", &c.id, "sh", "-c", attack], None);
    assert_eq!(o.code, 0, "exec: {o}");
    wait_for("the attacker to hold /proc/1/exe", || {
        rootfs.join("ready").exists() || rootfs.join("result").exists()
    });
    let o = rt(&c, &["start", &c.id], None);
    assert_eq!(o.code, 0, "start: {o}");
    let pid: i32 = {
        let o = rt(&c, &["state", &c.id], None);
        let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
        v["pid"].as_i64().unwrap() as i32
    };
    wait_for("the init to exec sleep", || {
        fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|s| s.trim() == "sleep")
    });
    fs::write(rootfs.join("go"), "").unwrap();
    wait_for("the attack's result", || {
        fs::read_to_string(rootfs.join("result")).is_ok_and(|s| s.contains("status"))
            || rootfs.join("result").exists() && !rootfs.join("ready").exists()
    });
    let result = fs::read_to_string(rootfs.join("result")).unwrap();
    let name = fs::read_to_string(rootfs.join("exe-name")).unwrap_or_default();
    let after = fs::read(&exe).unwrap();
    assert!(
        before == after,
        "the runtime binary {} was modified\n{result}",
        exe.display()
    );
    assert!(
        // (ETXTBSY only while other tests still run the same binary after 10 s of retries.)
        (result.contains("Read-only file system") || result.contains("Text file busy"))
            && !result.contains("status 0"),
        "the write through /proc/1/exe ({}) should fail with EROFS: {result:?}",
        name.trim()
    );
    let _ = rt(&c, &["delete", "--force", &c.id], None);
}
