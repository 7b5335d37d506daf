//! A harness for driving `wharf-shim` as the daemon does: a busybox bundle in a temp dir, the
//! shim spawned with its ready pipe on fd 3, and the control socket. Everything a test makes
//! (shim process, runtime state, cgroups) is removed by Drop guards, even on failure.

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use wharf_shim::args::ShimArgs;
use wharf_shim::proto::Ready;

pub const RUNC: &str = "/usr/sbin/runc";

/// True when the test can run (root); otherwise prints why it is skipped.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        wharf_testkit::skip(format!("{test}: needs root"));
        return false;
    }
    if !Path::new(RUNC).exists() {
        wharf_testkit::skip(format!("{test}: no {RUNC}: apt-get install runc"));
        return false;
    }
    true
}

/// `wharf-test-<unique>`: unique on this machine (pid, time, counter).
pub fn unique_id() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "wharf-test-{:x}{:x}{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A bundle: busybox rootfs plus `config.json` from `runc spec`, with `args` as the process.
pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub id: String,
}

impl Bundle {
    pub fn new(args: &[&str], tty: bool) -> Bundle {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
            fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        fs::copy("/usr/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        let list = Command::new("/usr/bin/busybox")
            .arg("--list")
            .output()
            .unwrap();
        for applet in String::from_utf8(list.stdout).unwrap().lines() {
            if applet != "busybox" {
                let _ = symlink("busybox", rootfs.join("bin").join(applet));
            }
        }
        let st = Command::new(RUNC)
            .arg("spec")
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "runc spec failed");
        let id = unique_id();
        let p = dir.path().join("config.json");
        let mut spec: serde_json::Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        spec["process"]["args"] = serde_json::json!(args);
        spec["process"]["terminal"] = serde_json::json!(tty);
        spec["process"]["env"] = serde_json::json!(["PATH=/bin", "TERM=xterm"]);
        spec["root"]["readonly"] = serde_json::json!(false);
        spec["linux"]["cgroupsPath"] = serde_json::json!(format!("/{id}"));
        fs::write(&p, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        Bundle { dir, id }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes an OCI process.json for an exec of `args`.
    pub fn process_json(&self, name: &str, args: &[&str], tty: bool) -> PathBuf {
        let spec: serde_json::Value =
            serde_json::from_slice(&fs::read(self.path().join("config.json")).unwrap()).unwrap();
        let mut process = spec["process"].clone();
        process["args"] = serde_json::json!(args);
        process["terminal"] = serde_json::json!(tty);
        let p = self.path().join(name);
        fs::write(&p, serde_json::to_vec(&process).unwrap()).unwrap();
        p
    }

    /// The container's cgroup directories that exist now.
    pub fn cgroups_left(&self) -> Vec<PathBuf> {
        let mut left = vec![];
        if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
            for c in rd.flatten() {
                let p = c.path().join(&self.id);
                if p.exists() {
                    left.push(p);
                }
            }
        }
        left
    }
}

/// Options of one shim spawn.
#[derive(Default, Clone)]
pub struct Opts {
    /// None: the shim's default (builtin, falling back to runc).
    pub runtime: Option<String>,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    pub no_log: bool,
}

/// A running shim. Drop kills it (by pid) and force-deletes the container.
pub struct Shim {
    pub id: String,
    pub state: PathBuf,
    pub runtime_root: PathBuf,
    pub log: PathBuf,
    pub pid: i32,
    pub init: i32,
    _dir: tempfile::TempDir,
}

/// What the ready pipe said when the shim failed.
pub struct Failed {
    pub line: String,
    pub runtime_root: PathBuf,
    _dir: tempfile::TempDir,
}

pub fn spawn(bundle: &Bundle, o: &Opts) -> Result<Shim, Failed> {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let runtime_root = dir.path().join("runc");
    let log = dir.path().join("ctr-json.log");
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let mut args = ShimArgs::new(bundle.id.clone(), bundle.path().into(), state.clone());
    args.runtime_root = runtime_root.clone();
    args.cgroup_path = Some(format!("/{}", bundle.id));
    args.ready_fd = 3;
    if let Some(rt) = &o.runtime {
        args.runtime = rt.into();
    }
    args.log_path = (!o.no_log).then(|| log.clone());
    args.tty = o.tty;
    args.stdin = o.stdin;
    args.stdin_once = o.stdin_once;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf-shim"));
    cmd.args(args.to_args());
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let wfd = w.as_raw_fd();
    // SAFETY: runs in the forked child before exec; dup2 is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(wfd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut first = cmd.spawn().unwrap();
    drop(w);
    // The first process exits at once: the shim lives on in its fork.
    let st = first.wait().unwrap();
    assert!(st.success(), "the shim's first process exited with {st}");
    let mut line = String::new();
    BufReader::new(fs::File::from(r))
        .read_line(&mut line)
        .unwrap();
    match Ready::parse(&line) {
        Ok(Ready::Created { pid: init }) => {
            let pid = fs::read_to_string(state.join("shim.pid"))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            let shim = Shim {
                id: bundle.id.clone(),
                state,
                runtime_root,
                log,
                pid,
                init,
                _dir: dir,
            };
            Ok(shim)
        }
        _ => Err(Failed {
            line,
            runtime_root,
            _dir: dir,
        }),
    }
}

impl Shim {
    pub fn sock(&self) -> PathBuf {
        self.state.join("shim.sock")
    }

    /// Sends one request line; the reply is read later with `reply`.
    pub fn send(&self, req: &str) -> BufReader<UnixStream> {
        let mut s = UnixStream::connect(self.sock()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(format!("{req}\n").as_bytes()).unwrap();
        BufReader::new(s)
    }

    /// Sends one request line; returns the connection after its reply line.
    pub fn open(&self, req: &str) -> (String, BufReader<UnixStream>) {
        let mut r = self.send(req);
        (reply(&mut r), r)
    }

    /// One request, one reply line.
    pub fn call(&self, req: &str) -> String {
        self.open(req).0
    }

    /// Waits (on a pidfd, up to a minute) until the shim process is gone.
    pub fn wait_gone(&self) {
        // SAFETY: pidfd_open takes a pid and flags; returns an fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, self.pid, 0) };
        if fd < 0 {
            return; // already gone
        }
        // SAFETY: the kernel just returned this fd.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let mut fds = [nix::poll::PollFd::new(
            fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let n = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(60_000u16)).unwrap();
        assert_eq!(n, 1, "the shim {} did not exit", self.pid);
    }

    /// The ids the runtime still knows under this shim's runtime root.
    pub fn runtime_ids(&self) -> Vec<String> {
        runtime_ids(&self.runtime_root)
    }

    /// Parent pid of the shim.
    pub fn ppid(&self) -> i32 {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        after.split(' ').nth(1).unwrap().parse().unwrap()
    }
}

/// The containers a runtime root still holds: runc and wharf-runtime both keep one
/// directory per container there.
pub fn runtime_ids(root: &Path) -> Vec<String> {
    match fs::read_dir(root) {
        Ok(rd) => rd
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn is_our_shim(pid: i32) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("wharf-shim"))
        .unwrap_or(false)
}

impl Drop for Shim {
    fn drop(&mut self) {
        if is_our_shim(self.pid) {
            // SAFETY: kill with a pid we started and a valid signal.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
        let _ = Command::new(RUNC)
            .arg("--root")
            .arg(&self.runtime_root)
            .args(["delete", "--force", &self.id])
            .stderr(Stdio::null())
            .status();
        if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
            for c in rd.flatten() {
                let _ = fs::remove_dir(c.path().join(&self.id));
            }
        }
    }
}

/// The reply line of a request sent with `Shim::send`, without its newline.
pub fn reply(r: &mut BufReader<UnixStream>) -> String {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    line.trim_end().to_string()
}

/// Reads Docker frames until EOF: (stream, payload) in order.
pub fn read_frames(r: &mut impl Read) -> Vec<(u8, Vec<u8>)> {
    let mut frames = vec![];
    loop {
        let mut h = [0u8; 8];
        if r.read_exact(&mut h).is_err() {
            return frames;
        }
        let (stream, len) = wharf_shim::proto::parse_frame_header(&h);
        let mut payload = vec![0u8; len];
        r.read_exact(&mut payload).unwrap();
        frames.push((stream, payload));
    }
}

/// The concatenated payload of `stream`.
pub fn stream_text(frames: &[(u8, Vec<u8>)], stream: u8) -> String {
    let bytes: Vec<u8> = frames
        .iter()
        .filter(|(s, _)| *s == stream)
        .flat_map(|(_, p)| p.clone())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}
