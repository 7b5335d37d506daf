//! A daemon the end-to-end scenarios run against: wharfd (the fixture in this directory) or
//! a real dockerd. Each scenario drives it with `wharf`, checks what `wharf` prints, and where
//! the docker CLI is installed checks that `docker` prints the same against the same daemon
//! (ids are the daemon's, so equal; times are made equal by retrying until the clock agrees).

use super::dockerd::Dockerd;
use super::{stderr, stdout, Daemon, DOCKER, WHARF};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// `scenario!(name)` runs `fn name(&Target)` as `name::on_wharfd` and `name::on_dockerd` (the
/// latter skipped where dockerd is not installed).
#[macro_export]
macro_rules! scenario {
    ($name:ident) => {
        mod $name {
            use super::*;
            #[test]
            fn on_wharfd() {
                require_env!();
                super::$name(&$crate::common::target::Target::wharfd());
            }
            #[test]
            fn on_dockerd() {
                require_env!();
                let Some(t) = $crate::common::target::Target::dockerd() else {
                    return;
                };
                super::$name(&t);
            }
        }
    };
}

pub enum Target {
    Wharfd(Daemon),
    Dockerd(Dockerd),
}

impl Target {
    pub fn wharfd() -> Target {
        let d = Daemon::start();
        d.busybox();
        Target::Wharfd(d)
    }

    /// None (the test is skipped) when dockerd is not installed.
    pub fn dockerd() -> Option<Target> {
        let t = Target::Dockerd(Dockerd::start()?);
        let tar = Command::new(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../scripts/mkbusybox-rootfs.sh"),
        )
        .output()
        .expect("mkbusybox-rootfs.sh");
        assert!(tar.status.success());
        let o = t.wharf_stdin(&["import", "-", "busybox:latest"], &tar.stdout);
        assert!(o.status.success(), "{}", stderr(&o));
        Some(t)
    }

    pub fn is_dockerd(&self) -> bool {
        matches!(self, Target::Dockerd(_))
    }

    pub fn host(&self) -> String {
        match self {
            Target::Wharfd(d) => d.host(),
            Target::Dockerd(d) => d.host(),
        }
    }

    pub fn log(&self) -> String {
        match self {
            Target::Wharfd(d) => d.log(),
            Target::Dockerd(d) => d.log(),
        }
    }

    /// Runs a client binary against the target, stdin from `input` (or nothing).
    pub fn client(&self, bin: &str, args: &[&str], input: Option<&[u8]>) -> Output {
        self.client_env(bin, args, input, &[])
    }

    /// `client` with more environment variables. The docker CLI builds with its classic
    /// builder (`DOCKER_BUILDKIT=0`), the API wharf speaks.
    pub fn client_env(
        &self,
        bin: &str,
        args: &[&str],
        input: Option<&[u8]>,
        env: &[(&str, &str)],
    ) -> Output {
        let mut cmd = Command::new(bin);
        cmd.arg("-H").arg(self.host()).args(args);
        cmd.env_remove("DOCKER_HOST").env_remove("WHARF_HOST");
        cmd.env("TZ", "UTC").env("DOCKER_BUILDKIT", "0");
        cmd.envs(env.iter().copied());
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn client");
        if let Some(data) = input {
            use std::io::Write;
            let mut s = child.stdin.take().unwrap();
            s.write_all(data).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    pub fn wharf(&self, args: &[&str]) -> Output {
        self.client(WHARF, args, None)
    }

    pub fn wharf_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        self.client(WHARF, args, Some(input))
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.client(DOCKER, args, None)
    }

    /// Runs wharf, asserts success, returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.wharf(args);
        assert!(
            o.status.success(),
            "wharf {args:?} failed ({:?}): {}\n--- daemon log (tail) ---\n{}",
            o.status,
            stderr(&o),
            tail(&self.log())
        );
        stdout(&o)
    }

    /// Runs wharf, asserts the exit status, returns (stdout, stderr).
    #[track_caller]
    pub fn fails(&self, code: i32, args: &[&str]) -> (String, String) {
        let o = self.wharf(args);
        assert_eq!(
            o.status.code(),
            Some(code),
            "wharf {args:?}: stdout {:?} stderr {:?}",
            stdout(&o),
            stderr(&o)
        );
        (stdout(&o), stderr(&o))
    }

    /// A read-only command through both clients: the same exit status and stdout (retried a
    /// few times while they differ, for "2 seconds ago" ticking between the two runs).
    /// Returns wharf's stdout. Without the docker CLI only wharf runs.
    #[track_caller]
    pub fn same(&self, args: &[&str]) -> String {
        let mut last = None;
        for _ in 0..5 {
            let w = self.wharf(args);
            if !super::have_docker() {
                return stdout(&w);
            }
            let k = self.docker(args);
            if w.status.code() == k.status.code() && w.stdout == k.stdout {
                return stdout(&w);
            }
            last = Some((w, k));
            std::thread::sleep(Duration::from_millis(300));
        }
        let (w, k) = last.unwrap();
        panic!(
            "wharf and docker differ on {args:?} against {}:\n--- wharf ({:?}) ---\n{}\n--- docker ({:?}) ---\n{}\n--- wharf stderr ---\n{}\n--- docker stderr ---\n{}",
            if self.is_dockerd() { "dockerd" } else { "wharfd" },
            w.status.code(),
            stdout(&w),
            k.status.code(),
            stdout(&k),
            stderr(&w),
            stderr(&k)
        );
    }

    /// Like `same` for output whose line order the daemon does not fix (dockerd's `diff`):
    /// the lines compared sorted. Returns wharf's stdout.
    #[track_caller]
    pub fn same_sorted(&self, args: &[&str]) -> String {
        let w = self.wharf(args);
        assert!(w.status.success(), "wharf {args:?}: {}", stderr(&w));
        if super::have_docker() {
            let k = self.docker(args);
            let sorted = |o: &Output| {
                let mut l: Vec<String> = stdout(o).lines().map(String::from).collect();
                l.sort();
                l
            };
            assert_eq!(
                sorted(&w),
                sorted(&k),
                "wharf (left) and docker (right) differ on {args:?}"
            );
        }
        stdout(&w)
    }

    /// Like `same` for a command that fails: the same status and stderr once the client's
    /// name is made the same (`wharf:` / `docker:`, `Run 'wharf run --help'`).
    #[track_caller]
    pub fn same_error(&self, args: &[&str]) -> (i32, String) {
        let w = self.wharf(args);
        let code = w.status.code().unwrap_or(-1);
        assert_ne!(code, 0, "wharf {args:?} succeeded: {}", stdout(&w));
        if super::have_docker() {
            let k = self.docker(args);
            // docker run also logs `level=error msg="Error waiting for container: ..."` on a
            // failed start (a known difference, docs/compatibility.md): dropped.
            let norm = |s: String| {
                s.lines()
                    .filter(|l| !l.starts_with("time=\""))
                    .map(|l| format!("{l}\n"))
                    .collect::<String>()
                    .replace("docker", "wharf")
            };
            assert_eq!(
                (w.status.code(), stdout(&w), stderr(&w)),
                (k.status.code(), stdout(&k), norm(stderr(&k))),
                "wharf (left) and docker (right) fail differently on {args:?}"
            );
        }
        (code, stderr(&w))
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
