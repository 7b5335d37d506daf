//! A wharfd started for one test (its own socket, data-root, exec-root, cgroup parent and
//! bridge), driven with the `wharf` client under test and, for comparison, the real docker
//! CLI; everything is torn down on drop, even when the test fails. Adapted from
//! crates/wharfd/tests/common/mod.rs.

#![allow(dead_code)]

/// The registry fixture is wharfd's, shared rather than copied.
#[path = "../../../wharfd/tests/common/registry.rs"]
pub mod registry;

pub mod dockerd;
pub mod target;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const DOCKER: &str = "/usr/local/bin/docker";
pub const WHARF: &str = env!("CARGO_BIN_EXE_wharf");

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skips the calling test (with a note) when not root or without a static busybox.
#[macro_export]
macro_rules! require_env {
    () => {
        if !common::is_root() || !common::have_busybox() {
            wharf_testkit::skip("needs root and busybox-static (/bin/busybox): run as root, apt-get install busybox-static");
            return;
        }
    };
}

pub fn have_busybox() -> bool {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .any(|p| Path::new(p).exists())
}

/// The docker CLI to compare with; `WHARF_TEST_NO_DOCKER=1` runs the tests as on a machine
/// without it (wharf's own checks only).
pub fn have_docker() -> bool {
    Path::new(DOCKER).exists() && std::env::var_os("WHARF_TEST_NO_DOCKER").is_none()
}

fn target_dir() -> PathBuf {
    PathBuf::from(WHARF)
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// wharfd and wharf-shim beside our binary, built once (a no-op when current).
fn daemon_bins() -> (PathBuf, PathBuf) {
    static BUILD: std::sync::Once = std::sync::Once::new();
    BUILD.call_once(|| {
        let st = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "wharfd", "-p", "wharf-shim"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build -p wharfd -p wharf-shim");
        assert!(st.success(), "building wharfd and wharf-shim failed");
    });
    let dir = PathBuf::from(WHARF).parent().unwrap().to_path_buf();
    (dir.join("wharfd"), dir.join("wharf-shim"))
}

fn random_bytes() -> [u8; 3] {
    use std::io::Read;
    let mut r = [0u8; 3];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut r))
        .expect("/dev/urandom");
    r
}

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    pub cgroup_parent: String,
    pub bridge: String,
    child: Option<Child>,
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::start_with(&[])
    }

    /// A daemon with more wharfd flags (after the fixture's own).
    pub fn start_with(extra_args: &[String]) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("wharf-cli-e2e-")
            .tempdir()
            .unwrap();
        let sock = dir.path().join("d.sock");
        let name = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let r = random_bytes();
        let bridge = format!("wc{:02x}{:02x}{:02x}", r[0], r[1], r[2]);
        let bip = format!("10.{}.{}.1/24", 100 + r[0] % 100, r[1]);
        let (wharfd, shim) = daemon_bins();
        let root = dir.path();
        let log = std::fs::File::create(root.join("wharfd.log")).unwrap();
        let child = Command::new(wharfd)
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--config-file")
            .arg(root.join("none.json"))
            .arg("--shim-path")
            .arg(shim)
            .arg("--cgroup-parent")
            .arg(format!("/{name}"))
            .arg("--bridge")
            .arg(&bridge)
            .arg("--bip")
            .arg(&bip)
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start wharfd");
        let d = Daemon {
            dir,
            sock,
            cgroup_parent: format!("/{name}"),
            bridge,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if d.sock.exists() && d.wharf(&["version"]).status.success() {
                return d;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("wharfd did not come up; log:\n{}", d.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("wharfd.log")).unwrap_or_default()
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    fn run(&self, bin: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
        self.run_env(bin, args, stdin, &[])
    }

    /// Runs a client (`WHARF` or `DOCKER`) with more environment variables.
    pub fn run_env(
        &self,
        bin: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
        env: &[(&str, &str)],
    ) -> Output {
        let mut cmd = Command::new(bin);
        cmd.arg("-H").arg(self.host()).args(args);
        cmd.env_remove("DOCKER_HOST").env_remove("WHARF_HOST");
        cmd.envs(env.iter().copied());
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn client");
        if let Some(data) = stdin {
            use std::io::Write;
            let mut s = child.stdin.take().unwrap();
            s.write_all(data).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    pub fn wharf(&self, args: &[&str]) -> Output {
        self.run(WHARF, args, None)
    }

    pub fn wharf_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        self.run(WHARF, args, Some(stdin))
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.run(DOCKER, args, None)
    }

    /// Runs wharf and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.wharf(args);
        assert!(
            o.status.success(),
            "wharf {args:?} failed ({:?}): {}\n--- wharfd log ---\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr),
            self.log()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Imports a busybox rootfs as `busybox:latest` (through wharf import).
    pub fn busybox(&self) {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mkbusybox-rootfs.sh");
        let tar = Command::new(script).output().expect("mkbusybox-rootfs.sh");
        assert!(
            tar.status.success(),
            "{}",
            String::from_utf8_lossy(&tar.stderr)
        );
        let o = self.wharf_stdin(&["import", "-", "busybox:latest"], &tar.stdout);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            let ids = self.wharf(&["ps", "-aq"]);
            for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                let _ = self.wharf(&["rm", "-f", id]);
            }
            let _ = self.wharf(&["network", "prune", "-f"]);
        }
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = c.wait();
        }
        // Its bridges and its iptables and ip6tables chains (named after its bridge).
        wharf_net::Networks::teardown(&self.bridge, &self.dir.path().join("data/network"));
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in rd.flatten() {
                let _ =
                    std::fs::remove_dir(h.path().join(self.cgroup_parent.trim_start_matches('/')));
            }
        }
        let _ = std::fs::remove_dir(
            Path::new("/sys/fs/cgroup").join(self.cgroup_parent.trim_start_matches('/')),
        );
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let root = self.dir.path().display().to_string();
        for m in mounts.lines().rev() {
            if let Some(p) = m.split_whitespace().nth(1) {
                if p.starts_with(&root) {
                    let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
                }
            }
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Polls `f` until it returns true or 10 s pass.
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for: {what}");
}

/// Runs `wharf` and `docker` with the same arguments until their outputs agree (the clock
/// may tick between the two), at most 5 times; returns both outputs of the last try.
pub fn same_as_docker(d: &Daemon, args: &[&str]) -> (String, String) {
    let mut last = (String::new(), String::new());
    for _ in 0..5 {
        let w = d.wharf(args);
        let k = d.docker(args);
        assert!(w.status.success(), "wharf {args:?}: {}", stderr(&w));
        assert!(k.status.success(), "docker {args:?}: {}", stderr(&k));
        last = (stdout(&w), stdout(&k));
        if last.0 == last.1 {
            return last;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    last
}
