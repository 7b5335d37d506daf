//! A real dockerd (Debian's docker.io) for one test: its own socket, data-root, exec-root
//! and pidfile, no bridge and no iptables, so it can run beside anything else on the host.
//! Stopped on drop (SIGTERM; its containerd goes with it), and whatever it left mounted under
//! its directory is unmounted, even when the test failed.

use super::WHARF;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const DOCKERD: &str = "/usr/sbin/dockerd";

/// Debian's docker.io; the docker CLI is not needed (wharf drives it, and `Target::same`
/// compares with docker only when the docker CLI is there).
pub fn have_dockerd() -> bool {
    Path::new(DOCKERD).exists()
}

pub struct Dockerd {
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Dockerd {
    /// None (with a note) when dockerd or the docker CLI is not installed.
    pub fn start() -> Option<Dockerd> {
        if !have_dockerd() {
            wharf_testkit::skip("dockerd is not installed: apt-get install docker.io");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("wharf-dockerd-")
            .tempdir()
            .unwrap();
        let p = dir.path();
        std::fs::write(p.join("daemon.json"), "{}").unwrap();
        let log = std::fs::File::create(p.join("dockerd.log")).unwrap();
        let child = Command::new(DOCKERD)
            .arg("-H")
            .arg(format!("unix://{}", p.join("d.sock").display()))
            .arg("--data-root")
            .arg(p.join("data"))
            .arg("--exec-root")
            .arg(p.join("exec"))
            .arg("--pidfile")
            .arg(p.join("d.pid"))
            .args(["--bridge", "none", "--iptables=false", "--ip6tables=false"])
            .arg("--config-file")
            .arg(p.join("daemon.json"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let d = Dockerd { dir, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !d.wharf(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "dockerd did not come up: {}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(d)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("d.sock").display())
    }

    /// The wharf client against this dockerd (setup and teardown).
    fn wharf(&self, args: &[&str]) -> Output {
        Command::new(WHARF)
            .arg("-H")
            .arg(self.host())
            .args(args)
            .env_remove("DOCKER_HOST")
            .env_remove("WHARF_HOST")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // Containers first (their mounts), then user networks (their bridges on the host).
        let ids = self.wharf(&["ps", "-aq"]);
        let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids);
            let _ = self.wharf(&args);
        }
        let _ = self.wharf(&["network", "prune", "-f"]);
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
        if let Ok(m) = std::fs::read_to_string("/proc/mounts") {
            let root = self.dir.path().display().to_string();
            let mut points: Vec<&str> = m
                .lines()
                .filter_map(|l| l.split_whitespace().nth(1))
                .filter(|p| p.starts_with(&root))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}
