//! A wharfd started for one test: its own socket, data-root and exec-root, driven with the
//! real docker CLI; everything is torn down on drop, even when the test fails. Also in a
//! network namespace of its own (`Place::Netns`), and Debian's dockerd in one
//! (`Place::DockerdNetns`), for the scenarios that compare them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const DOCKER: &str = "/usr/local/bin/docker";
/// Debian's docker.io, for comparisons.
pub const DOCKERD: &str = "/usr/sbin/dockerd";

/// Where `Daemon::start` puts wharfd: the host's namespace, or with `WHARF_E2E_NETNS=1` one
/// of its own, to see which of all the e2e scenarios hold there too (those with a peer on
/// the host's loopback, such as a test registry, cannot: it is not the daemon's loopback).
fn default_place() -> Place {
    match std::env::var("WHARF_E2E_NETNS").as_deref() {
        Ok("1") => Place::Netns,
        _ => Place::Host,
    }
}

/// Where a test's daemon runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// wharfd in the host's network namespace.
    Host,
    /// wharfd in a network namespace the test made (`netns::Netns`), the host having a link
    /// of its bridge's name (`netns::HostNamesake`).
    Netns,
    /// Debian's dockerd in a network namespace the test made: its bridge, rules and
    /// docker-proxy stay there.
    DockerdNetns,
}

impl Place {
    /// The place a scenario's test is named after: `host` and `wharfd` (wharfd in the host's
    /// namespace), `netns`, `dockerd_netns`.
    pub fn named(test: &str) -> Place {
        match test {
            "host" | "wharfd" => Place::Host,
            "netns" => Place::Netns,
            "dockerd_netns" => Place::DockerdNetns,
            other => panic!("no place is named {other}"),
        }
    }
}

/// `scenario!(f, host, netns, dockerd_netns)` runs `fn f(Place)` as the tests `f::host`,
/// `f::netns` and `f::dockerd_netns` (any of the names of [`Place::named`]), each needing
/// root and the docker CLI.
#[macro_export]
macro_rules! scenario {
    ($name:ident, $($place:ident),+ $(,)?) => {
        mod $name {
            use super::*;
            $(
                #[test]
                fn $place() {
                    $crate::require_env!();
                    super::$name(common::Place::named(stringify!($place)));
                }
            )+
        }
    };
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skips the calling test (with a note) when not root or without the docker CLI.
#[macro_export]
macro_rules! require_env {
    () => {
        if !common::is_root() || !std::path::Path::new(common::DOCKER).exists() {
            wharf_testkit::skip(format!(
                "needs root and the docker CLI at {}",
                common::DOCKER
            ));
            return;
        }
    };
}

fn shim_path() -> PathBuf {
    let wharfd = PathBuf::from(env!("CARGO_BIN_EXE_wharfd"));
    let shim = wharfd.with_file_name("wharf-shim");
    // `cargo test -p wharfd` builds only this package's binaries: make sure the shim beside
    // wharfd is current (a no-op under `cargo test --workspace`).
    static BUILD: std::sync::Once = std::sync::Once::new();
    BUILD.call_once(|| {
        let st = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "wharf-shim"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build -p wharf-shim");
        assert!(st.success(), "building wharf-shim failed");
    });
    shim
}

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    /// This daemon's own parent cgroup, removed on drop.
    pub cgroup_parent: String,
    /// This daemon's own bridge (unique name and subnet), torn down on drop.
    pub bridge: wharf_net::BridgeConfig,
    /// Passed to wharfd after the fixture's own flags.
    pub extra_args: Vec<String>,
    /// Set in wharfd's environment.
    pub env: Vec<(String, String)>,
    child: Option<Child>,
    /// The daemon's network namespace when not the host's; dropped after the daemon.
    pub netns: Option<netns::Netns>,
    /// A dockerd, not a wharfd.
    pub dockerd: bool,
    /// For wharfd in a test namespace: a host link named like its bridge.
    namesake: Option<netns::HostNamesake>,
    /// Subnets `free_subnet` handed out.
    taken: std::cell::RefCell<Vec<String>>,
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::start_with(&[], None)
    }

    /// A daemon with more flags and, if given, this daemon.json (at `config_file()`).
    pub fn start_with(extra_args: &[String], daemon_json: Option<&str>) -> Daemon {
        Daemon::start_env(extra_args, daemon_json, &[])
    }

    /// Like `start_with`, with `env` set in wharfd's environment.
    pub fn start_env(
        extra_args: &[String],
        daemon_json: Option<&str>,
        env: &[(&str, &str)],
    ) -> Daemon {
        Daemon::start_at(default_place(), extra_args, daemon_json, env).expect("wharfd")
    }

    /// A daemon at `place`; `None` (with a note) for dockerd when it is not installed.
    pub fn launch(place: Place, daemon_json: Option<&str>) -> Option<Daemon> {
        Daemon::start_at(place, &[], daemon_json, &[])
    }

    fn start_at(
        place: Place,
        extra_args: &[String],
        daemon_json: Option<&str>,
        env: &[(&str, &str)],
    ) -> Option<Daemon> {
        if place == Place::DockerdNetns && !Path::new(DOCKERD).exists() {
            wharf_testkit::skip("dockerd is not installed: apt-get install docker.io");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("wharf-e2e-")
            .tempdir()
            .unwrap();
        let sock = dir.path().join("d.sock");
        let name = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mut r = [0u8; 3];
        getrandom::fill(&mut r).unwrap();
        let bridge = wharf_net::BridgeConfig {
            name: format!("wt{:02x}{:02x}{:02x}", r[0], r[1], r[2]),
            subnet: wharf_net::Subnet::parse(&format!("10.{}.{}.1/24", 100 + r[0] % 100, r[1]))
                .unwrap(),
            state_dir: dir.path().join("data/network"),
            mtu: 1500,
        };
        let bridge_name = bridge.name.clone();
        let mut d = Daemon {
            dir,
            sock,
            cgroup_parent: format!("/{name}"),
            bridge,
            extra_args: extra_args.to_vec(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
            netns: (place != Place::Host).then(netns::Netns::new),
            dockerd: place == Place::DockerdNetns,
            namesake: (place == Place::Netns).then(|| netns::HostNamesake::new(&bridge_name)),
            taken: Default::default(),
        };
        if d.dockerd {
            d.bridge.name = "docker0".into();
        }
        if extra_args.iter().any(|a| a.starts_with("--userns-remap"))
            || daemon_json.is_some_and(|j| j.contains("\"userns-remap\""))
        {
            // The remapped root must traverse the data-root's ancestors (wharfd checks, as
            // dockerd does); a tempdir is 0700.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        }
        if let Some(j) = daemon_json {
            std::fs::write(d.config_file(), j).unwrap();
        } else if d.dockerd {
            // dockerd reads /etc/docker/daemon.json unless given another.
            std::fs::write(d.config_file(), "{}").unwrap();
        }
        d.spawn();
        Some(d)
    }

    /// A command run where the daemon runs: its network namespace (the host's or the test's).
    pub fn host_command(&self, program: &str) -> Command {
        match &self.netns {
            Some(ns) => ns.command(program),
            None => Command::new(program),
        }
    }

    /// `program args` where the daemon runs; its stdout (the command must succeed).
    pub fn host_run(&self, program: &str, args: &[&str]) -> String {
        let o = self.host_command(program).args(args).output().unwrap();
        assert!(
            o.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs `f` on a thread in the daemon's network namespace (for clients of its loopback).
    pub fn in_host_netns<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        match &self.netns {
            Some(ns) => ns.enter(f),
            None => f(),
        }
    }

    /// The name prefix of the bridges of user networks: wharfd's are named after its own
    /// bridge, dockerd's `br-<id>`.
    pub fn user_bridge_prefix(&self) -> String {
        if self.dockerd {
            "br-".into()
        } else {
            format!("{}-", self.bridge.name)
        }
    }

    pub fn spawn(&mut self) {
        let root = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.join("wharfd.log"))
            .unwrap();
        let bip = format!(
            "{}/{}",
            self.bridge.subnet.gateway, self.bridge.subnet.prefix
        );
        let mut cmd = if self.dockerd {
            // Its own docker0 in its own namespace, with the fixture's subnet.
            let mut c = self.host_command(DOCKERD);
            c.arg("--pidfile")
                .arg(root.join("d.pid"))
                .arg("--bip")
                .arg(&bip);
            c
        } else {
            let mut c = self.host_command(env!("CARGO_BIN_EXE_wharfd"));
            // No --init-path: wharfd writes the static init it embeds (as started by hand).
            c.arg("--shim-path")
                .arg(shim_path())
                .arg("--bridge")
                .arg(&self.bridge.name)
                .arg("--bip")
                .arg(&bip);
            c
        };
        let child = cmd
            .arg("-H")
            .arg(format!("unix://{}", self.sock.display()))
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--config-file")
            .arg(self.config_file())
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .arg("--log-level")
            .arg("debug")
            .args(&self.extra_args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the daemon");
        // nsenter execs the daemon: the child's pid is the daemon's.
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(if self.dockerd { 60 } else { 10 });
        while Instant::now() < deadline {
            if self.sock.exists() && self.docker(&["version"]).status.success() {
                return;
            }
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!("the daemon exited ({st}); log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the daemon did not come up; log:\n{}", self.log());
    }

    /// The daemon.json this daemon reads (absent unless `start_with` was given one).
    pub fn config_file(&self) -> PathBuf {
        self.dir.path().join("daemon.json")
    }

    /// wharfd's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// wharfd's exit status once it has exited (it is then no longer this daemon's child).
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        let st = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        Some(st)
    }

    /// A /24 for a test network: random in 10.128.0.0/9 and routed nowhere where the daemon
    /// runs.
    pub fn free_subnet(&self) -> String {
        let routes = self
            .host_command("ip")
            .args(["-4", "route", "show", "table", "all"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        loop {
            let mut r = [0u8; 2];
            getrandom::fill(&mut r).unwrap();
            let prefix = format!("10.{}.{}.", 128 + r[0] % 100, r[1]);
            if !routes.contains(&prefix) && !self.taken.borrow().contains(&prefix) {
                self.taken.borrow_mut().push(prefix.clone());
                return format!("{prefix}0/24");
            }
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("wharfd.log")).unwrap_or_default()
    }

    /// Kills wharfd with SIGKILL (containers must survive).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops wharfd gracefully (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = c.wait();
        }
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_stdin(args, None)
    }

    pub fn docker_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = Command::new(DOCKER);
        cmd.arg("-H").arg(self.host()).args(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run docker");
        if let Some(data) = stdin {
            use std::io::Write;
            let mut s = child.stdin.take().unwrap();
            s.write_all(data).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Runs docker and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({:?}): {}\n--- wharfd log ---\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr),
            self.log()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Imports a busybox rootfs as `busybox:latest`.
    /// `busybox` plus `child:1` (busybox and a layer of 3 MB of random bytes), for the
    /// registry tests: two images sharing a layer.
    pub fn busybox_and_child(&self) {
        self.busybox();
        self.ok(&[
            "run",
            "--name",
            "top",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "head -c 3000000 /dev/urandom > /blob",
        ]);
        self.ok(&["commit", "top", "child:1"]);
    }

    pub fn busybox(&self) {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mkbusybox-rootfs.sh");
        let tar = Command::new(script).output().expect("mkbusybox-rootfs.sh");
        assert!(
            tar.status.success(),
            "{}",
            String::from_utf8_lossy(&tar.stderr)
        );
        let o = self.docker_stdin(&["import", "-", "busybox:latest"], Some(&tar.stdout));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    fn cleanup(&mut self) {
        if self.child.is_none() && self.sock.exists() {
            // Bring the daemon back so it can remove what it owns.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.spawn()));
        }
        if self.child.is_some() {
            let ids = self.docker(&["ps", "-aq"]);
            for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                let _ = self.docker(&["rm", "-f", id]);
            }
        }
        if self.child.is_some() && self.dockerd {
            // User networks' bridges; the namespace takes the rest.
            let _ = self.docker(&["network", "prune", "-f"]);
        }
        if let Some(mut c) = self.child.take() {
            // By pid, this daemon only (a dockerd takes its containerd with it).
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(30);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // Every bridge and iptables chain of this daemon (all named after its bridge), in the
        // namespace it ran in.
        if !self.dockerd {
            let (name, state) = (self.bridge.name.clone(), self.bridge.state_dir.clone());
            self.in_host_netns(|| wharf_net::Networks::teardown(&name, &state));
        }
        // Our parent cgroup in every hierarchy (empty once the containers are gone).
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in rd.flatten() {
                let _ =
                    std::fs::remove_dir(h.path().join(self.cgroup_parent.trim_start_matches('/')));
            }
        }
        // Anything still mounted under our dirs (a failed test) goes too.
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

impl Drop for Daemon {
    fn drop(&mut self) {
        self.cleanup();
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

pub mod netns;
pub mod registry;
#[allow(unused_imports)]
pub use registry::{LocalRegistry, RegistryAuth};
