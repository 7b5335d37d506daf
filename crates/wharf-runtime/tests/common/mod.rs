//! Fixtures for the runtime integration tests: a busybox bundle per test and per runtime, a
//! way to run either runtime (ours or runc, the reference) on it and capture what the
//! container printed, and a guard that removes everything a test made, even when it fails.
//!
//! Every test gets a unique container id `wrt-<pid>-<n>`, a state root per runtime and a
//! cgroup per runtime (`/wharf-rtest-<pid>-<n>-<runtime>`). Every process a runtime starts
//! for the test carries a `WRT_CASE` tag in its environment (the runtime inherits it from the
//! test, the container gets it in its config; `<id>-<runtime>`), which is how the leftover checks, and the
//! guard, recognise the test's own processes.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The runtimes under comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rt {
    Wharf,
    Runc,
}

pub const BOTH: [Rt; 2] = [Rt::Wharf, Rt::Runc];

impl Rt {
    pub fn bin(self) -> &'static str {
        match self {
            Rt::Wharf => env!("CARGO_BIN_EXE_wharf-runtime"),
            Rt::Runc => "/usr/sbin/runc",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Rt::Wharf => "wharf",
            Rt::Runc => "runc",
        }
    }
}

impl fmt::Display for Rt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How long any one runtime command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// What a runtime command did: its exit code (128+signal when killed) and output.
#[derive(Clone)]
pub struct Out {
    pub rt: Rt,
    pub cmd: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Where stdout went: a created container keeps writing there after `create` returns.
    pub stdout_path: PathBuf,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.code == 0
    }

    /// Stdout again, with what the container wrote since.
    pub fn reread(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// Panics unless the command succeeded.
    #[track_caller]
    pub fn expect_ok(&self) -> &Out {
        assert!(self.ok(), "{} failed:\n{self}", self.rt);
        self
    }

    /// The error message on stderr, without runc's logrus framing (`time=… level=error
    /// msg="…"`, with its quotes escaped).
    pub fn message(&self) -> String {
        self.stderr
            .lines()
            .map(|l| match l.split_once(" msg=\"") {
                Some((_, m)) => m
                    .strip_suffix('"')
                    .unwrap_or(m)
                    .replace("\\\"", "\"")
                    .replace("\\\\", "\\"),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The stdout lines, trimmed.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().map(str::trim).collect()
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  [{}] $ {}", self.rt, self.cmd)?;
        writeln!(f, "  [{}] exit code {}", self.rt, self.code)?;
        writeln!(f, "  [{}] stdout: {:?}", self.rt, self.stdout)?;
        write!(f, "  [{}] stderr: {:?}", self.rt, self.stderr)
    }
}

/// The same command run with both runtimes.
pub struct Pair {
    pub wharf: Out,
    pub runc: Out,
}

impl Pair {
    pub fn get(&self, rt: Rt) -> &Out {
        match rt {
            Rt::Wharf => &self.wharf,
            Rt::Runc => &self.runc,
        }
    }

    /// Panics, showing both runtimes' output, unless `f` holds for both.
    #[track_caller]
    pub fn each(&self, what: &str, f: impl Fn(&Out) -> bool) -> &Pair {
        for rt in BOTH {
            assert!(f(self.get(rt)), "{rt}: expected {what}\n{self}");
        }
        self
    }

    #[track_caller]
    pub fn both_ok(&self) -> &Pair {
        self.each("exit code 0", Out::ok)
    }

    #[track_caller]
    pub fn stdout_is(&self, want: &str) -> &Pair {
        self.each(&format!("stdout {want:?}"), |o| o.stdout.trim_end() == want)
    }

    #[track_caller]
    pub fn stdout_has(&self, want: &str) -> &Pair {
        self.each(&format!("stdout containing {want:?}"), |o| {
            o.stdout.contains(want)
        })
    }

    /// Both error messages (see [`Out::message`]) contain `want`.
    #[track_caller]
    pub fn message_has(&self, want: &str) -> &Pair {
        self.each(&format!("an error message containing {want:?}"), |o| {
            o.message().contains(want)
        })
    }

    #[track_caller]
    pub fn stderr_has(&self, want: &str) -> &Pair {
        self.each(&format!("stderr containing {want:?}"), |o| {
            o.stderr.contains(want)
        })
    }

    #[track_caller]
    pub fn code_is(&self, want: i32) -> &Pair {
        self.each(&format!("exit code {want}"), |o| o.code == want)
    }

    /// Panics unless both runtimes printed the same stdout.
    #[track_caller]
    pub fn same_stdout(&self) -> &Pair {
        assert_eq!(
            self.wharf.stdout, self.runc.stdout,
            "the container saw something else under wharf than under runc\n{self}"
        );
        self
    }
}

impl fmt::Display for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.wharf)?;
        write!(f, "{}", self.runc)
    }
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A rootfs extracted once per test process from scripts/mkbusybox-rootfs.sh.
fn master_rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // Rootfs copies of earlier test processes that are gone.
        for e in fs::read_dir(base).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("rtests-rootfs-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = base.join(format!("rtests-rootfs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mkbusybox-rootfs.sh");
        let st = Command::new("sh")
            .arg("-c")
            .arg(r#""$0" | tar -C "$1" -x"#)
            .arg(&script)
            .arg(&dir)
            .status()
            .expect("running mkbusybox-rootfs.sh");
        assert!(st.success(), "{} | tar failed: {st}", script.display());
        // The script's tar has the mode of a mktemp directory (0700) for "/": give it an
        // image's usual 0755, so that non-root container users can reach /bin.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(dir.join("bin/busybox").exists());
        dir
    })
}

/// A config from `wharf-runtime spec`, made non-interactive and tagged for the leftover checks.
fn base_config(dir: &Path) -> Value {
    let st = Command::new(Rt::Wharf.bin())
        .arg("spec")
        .arg("--bundle")
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success(), "wharf-runtime spec failed: {st}");
    let path = dir.join("config.json");
    let mut c: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    fs::remove_file(&path).unwrap();
    c["process"]["terminal"] = json!(false);
    c
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One test's world: a bundle, a state root and a cgroup per runtime, one container id.
/// Dropping it removes everything (containers, cgroups, network namespaces, processes).
pub struct Case {
    pub id: String,
    pub n: u32,
    pub dir: tempfile::TempDir,
    /// Extra container ids the test created (deleted by the guard too).
    extra_ids: std::cell::RefCell<Vec<String>>,
    /// Named network namespaces to delete (`ip netns del`).
    netns: std::cell::RefCell<Vec<String>>,
    calls: AtomicU32,
}

impl Case {
    /// A fresh case, or None (with a note) when not running as root.
    pub fn new(test: &str) -> Option<Case> {
        if !is_root() {
            wharf_testkit::skip(format!("{test}: the runtime tests need root"));
            return None;
        }
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("wrt-{}-{n}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix(&format!("{id}-"))
            .tempdir()
            .unwrap();
        let master = master_rootfs();
        for rt in BOTH {
            let b = dir.path().join(rt.name()).join("bundle");
            fs::create_dir_all(&b).unwrap();
            let st = Command::new("cp")
                .arg("-a")
                .arg(master)
                .arg(b.join("rootfs"))
                .status()
                .unwrap();
            assert!(st.success(), "copying the rootfs: {st}");
            fs::create_dir_all(dir.path().join(rt.name()).join("root")).unwrap();
        }
        let case = Case {
            id,
            n,
            dir,
            extra_ids: Default::default(),
            netns: Default::default(),
            calls: AtomicU32::new(0),
        };
        let cfg = base_config(case.dir.path());
        for rt in BOTH {
            let mut c = cfg.clone();
            c["linux"]["cgroupsPath"] = json!(case.cgroup(rt));
            c["process"]["env"]
                .as_array_mut()
                .unwrap()
                .push(json!(format!("WRT_CASE={}", case.tag(rt))));
            case.write_config(rt, &c);
        }
        Some(case)
    }

    /// The WRT_CASE tag of the processes this runtime starts for the test.
    pub fn tag(&self, rt: Rt) -> String {
        format!("{}-{}", self.id, rt.name())
    }

    pub fn bundle(&self, rt: Rt) -> PathBuf {
        self.dir.path().join(rt.name()).join("bundle")
    }

    pub fn rootfs(&self, rt: Rt) -> PathBuf {
        self.bundle(rt).join("rootfs")
    }

    /// The runtime's state root (--root).
    pub fn root(&self, rt: Rt) -> PathBuf {
        self.dir.path().join(rt.name()).join("root")
    }

    /// A scratch directory of this runtime's half of the test.
    pub fn scratch(&self, rt: Rt, name: &str) -> PathBuf {
        let d = self.dir.path().join(rt.name()).join(name);
        fs::create_dir_all(&d).unwrap();
        d
    }

    /// `linux.cgroupsPath` of this runtime's container.
    pub fn cgroup(&self, rt: Rt) -> String {
        format!(
            "/wharf-rtest-{}-{}-{}",
            std::process::id(),
            self.n,
            rt.name()
        )
    }

    pub fn config(&self, rt: Rt) -> Value {
        serde_json::from_slice(&fs::read(self.bundle(rt).join("config.json")).unwrap()).unwrap()
    }

    pub fn write_config(&self, rt: Rt, c: &Value) {
        fs::write(
            self.bundle(rt).join("config.json"),
            serde_json::to_vec_pretty(c).unwrap(),
        )
        .unwrap();
    }

    /// Edits both runtimes' config.json the same way.
    pub fn edit(&self, f: impl Fn(&mut Value)) {
        self.edit_each(|_, c| f(c));
    }

    /// Edits each runtime's config.json (for per-runtime paths).
    pub fn edit_each(&self, f: impl Fn(Rt, &mut Value)) {
        for rt in BOTH {
            let mut c = self.config(rt);
            f(rt, &mut c);
            self.write_config(rt, &c);
        }
    }

    pub fn args(&self, args: &[&str]) {
        self.edit(|c| c["process"]["args"] = json!(args));
    }

    /// The container runs `sh -c script`.
    pub fn sh(&self, script: &str) {
        self.args(&["sh", "-c", script]);
    }

    /// Adds a mount to both configs.
    pub fn mount(&self, m: Value) {
        self.edit(|c| c["mounts"].as_array_mut().unwrap().push(m.clone()));
    }

    /// A writable tmpfs at `dest`.
    pub fn tmpfs(&self, dest: &str) {
        self.mount(
            json!({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                          "options": ["nosuid", "nodev", "size=4m"]}),
        );
    }

    /// Binds each runtime's scratch dir `name` at `dest` (read-write) and returns nothing;
    /// the host side is [`Case::scratch`].
    pub fn bind_scratch(&self, name: &str, dest: &str) {
        self.edit_each(|rt, c| {
            let src = self.scratch(rt, name);
            c["mounts"].as_array_mut().unwrap().push(json!({
                "destination": dest, "type": "bind", "source": src, "options": ["rbind", "rw"]}));
        });
    }

    /// Runs `<runtime> --root <root> args...`, stdin from /dev/null, stdout and stderr to
    /// files (a created container inherits them and may outlive the command).
    pub fn cmd(&self, rt: Rt, args: &[&str]) -> Out {
        let k = self.calls.fetch_add(1, Ordering::SeqCst);
        let logs = self.scratch(rt, "logs");
        let stdout_path = logs.join(format!("{k}.out"));
        let stderr_path = logs.join(format!("{k}.err"));
        let mut c = Command::new(rt.bin());
        c.arg("--root")
            .arg(self.root(rt))
            .args(args)
            .env("WRT_CASE", self.tag(rt))
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout_path).unwrap())
            .stderr(fs::File::create(&stderr_path).unwrap());
        let cmd = format!("{} {}", rt.name(), args.join(" "));
        let mut child = c.spawn().unwrap_or_else(|e| panic!("{cmd}: {e}"));
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{cmd}: still running after {COMMAND_TIMEOUT:?}, killed");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        use std::os::unix::process::ExitStatusExt;
        let code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        Out {
            rt,
            cmd,
            code,
            stdout: fs::read_to_string(&stdout_path).unwrap_or_default(),
            stderr: fs::read_to_string(&stderr_path).unwrap_or_default(),
            stdout_path,
        }
    }

    /// The same command with both runtimes; `{id}` in an argument is the container id.
    pub fn both(&self, args: &[&str]) -> Pair {
        let run = |rt| {
            let a: Vec<String> = args.iter().map(|a| a.replace("{id}", &self.id)).collect();
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            self.cmd(rt, &a)
        };
        Pair {
            wharf: run(Rt::Wharf),
            runc: run(Rt::Runc),
        }
    }

    /// `run` in the foreground: the container's output and exit code.
    pub fn run(&self, rt: Rt) -> Out {
        let b = self.bundle(rt);
        self.cmd(rt, &["run", "--bundle", b.to_str().unwrap(), &self.id])
    }

    pub fn run_both(&self) -> Pair {
        Pair {
            wharf: self.run(Rt::Wharf),
            runc: self.run(Rt::Runc),
        }
    }

    /// `create` (container output goes to the returned [`Out::stdout_path`]).
    pub fn create(&self, rt: Rt) -> Out {
        self.create_id(rt, &self.id)
    }

    pub fn create_id(&self, rt: Rt, id: &str) -> Out {
        if id != self.id {
            self.extra_ids.borrow_mut().push(id.to_string());
        }
        let b = self.bundle(rt);
        self.cmd(rt, &["create", "--bundle", b.to_str().unwrap(), id])
    }

    pub fn create_both(&self) -> Pair {
        Pair {
            wharf: self.create(Rt::Wharf),
            runc: self.create(Rt::Runc),
        }
    }

    pub fn start(&self, rt: Rt) -> Out {
        self.cmd(rt, &["start", &self.id])
    }

    /// `state` as JSON (panics when the command fails).
    #[track_caller]
    pub fn state(&self, rt: Rt) -> Value {
        let o = self.cmd(rt, &["state", &self.id]);
        o.expect_ok();
        serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("state is not JSON: {e}\n{o}"))
    }

    #[track_caller]
    pub fn status(&self, rt: Rt) -> String {
        self.state(rt)["status"].as_str().unwrap().to_string()
    }

    /// The container's init pid from `state`.
    #[track_caller]
    pub fn pid(&self, rt: Rt) -> i32 {
        self.state(rt)["pid"].as_i64().unwrap() as i32
    }

    /// Polls `state` until the status is `want` (or panics after 10 s).
    #[track_caller]
    pub fn wait_status(&self, rt: Rt, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.status(rt);
            if s == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{rt}: status still {s:?}, not {want:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `exec` of `args` in the container, output captured.
    pub fn exec(&self, rt: Rt, args: &[&str]) -> Out {
        let mut a = vec!["exec", &self.id];
        a.extend_from_slice(args);
        self.cmd(rt, &a)
    }

    /// create + start a long-running container with both runtimes.
    #[track_caller]
    pub fn start_both(&self) {
        self.create_both().both_ok();
        for rt in BOTH {
            self.start(rt).expect_ok();
        }
    }

    /// A named network namespace (`ip netns add`), deleted by the guard.
    pub fn netns(&self) -> String {
        let name = format!("{}-{}", self.id, self.netns.borrow().len());
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(st.success(), "ip netns add {name}: {st}");
        self.netns.borrow_mut().push(name.clone());
        name
    }

    /// What a failed operation left behind, described; empty when nothing.
    pub fn leftovers(&self, rt: Rt) -> Vec<String> {
        let mut out = Vec::new();
        let ids = std::iter::once(self.id.clone()).chain(self.extra_ids.borrow().clone());
        for id in ids {
            let d = self.root(rt).join(&id);
            if d.exists() {
                out.push(format!("state dir {}", d.display()));
            }
        }
        for d in cgroup_dirs(&self.cgroup(rt)) {
            out.push(format!("cgroup {}", d.display()));
        }
        let bundle = self.bundle(rt);
        for m in mount_points() {
            if m.starts_with(&bundle) {
                out.push(format!("mount {}", m.display()));
            }
        }
        for p in self.processes(rt) {
            out.push(format!("process {p}: {}", cmdline(p)));
        }
        out
    }

    /// Pids whose environment holds this test's WRT_CASE tag for `rt`, or a path of its
    /// (runc's init has a clean environment but for `_LIBCONTAINER_STATEDIR=<root>/<id>`).
    pub fn processes(&self, rt: Rt) -> Vec<i32> {
        let tag = format!("WRT_CASE={}", self.tag(rt));
        let ours = format!("{}/", self.dir.path().join(rt.name()).display());
        let mut out = Vec::new();
        for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if pid == std::process::id() as i32 {
                continue;
            }
            let env = fs::read(e.path().join("environ")).unwrap_or_default();
            if env
                .split(|b| *b == 0)
                .any(|kv| kv == tag.as_bytes() || String::from_utf8_lossy(kv).contains(&ours))
            {
                // Zombies are reaped by their parent; they hold nothing.
                if !matches!(proc_state(pid), Some('Z') | None) {
                    out.push(pid);
                }
            }
        }
        out
    }

    /// Panics, listing them, when a failed operation left anything behind.
    #[track_caller]
    pub fn assert_clean(&self, rt: Rt, after: &str) {
        // A failed runtime's children may take a moment to die.
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut left = self.leftovers(rt);
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            left = self.leftovers(rt);
        }
        assert!(left.is_empty(), "{rt}: {after} left behind: {left:#?}");
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let ids: Vec<String> = std::iter::once(self.id.clone())
            .chain(self.extra_ids.borrow().clone())
            .collect();
        for rt in BOTH {
            for id in &ids {
                let _ = Command::new(rt.bin())
                    .arg("--root")
                    .arg(self.root(rt))
                    .args(["delete", "--force", id])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        // Whatever of ours survived (e.g. a runtime that failed half way).
        for p in BOTH.into_iter().flat_map(|rt| self.processes(rt)) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        for rt in BOTH {
            remove_cgroup(&self.cgroup(rt));
        }
        for n in self.netns.borrow().iter() {
            let _ = Command::new("ip")
                .args(["netns", "del", n])
                .stderr(Stdio::null())
                .status();
        }
        // Mounts a broken runtime may have leaked into our namespace, deepest first.
        let mut leaked: Vec<PathBuf> = mount_points()
            .into_iter()
            .filter(|m| m.starts_with(self.dir.path()))
            .collect();
        leaked.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
        for m in leaked {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn proc_state(pid: i32) -> Option<char> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(") ")?.1.chars().next()
}

pub fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// The mount points of our mount namespace.
pub fn mount_points() -> Vec<PathBuf> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .collect()
}

/// The cgroup hierarchies mounted on this host (v1 controllers and cgroup2).
pub fn cgroup_mounts() -> Vec<PathBuf> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split(' ').next()?;
            let point = pre.split(' ').nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| PathBuf::from(point))
        })
        .collect()
}

/// The existing directories of cgroup `path` (absolute cgroupsPath) in every hierarchy.
pub fn cgroup_dirs(path: &str) -> Vec<PathBuf> {
    cgroup_mounts()
        .into_iter()
        .map(|m| m.join(path.trim_start_matches('/')))
        .filter(|d| d.is_dir())
        .collect()
}

/// Kills what is in the test's own cgroup (thawing it first) and removes it.
fn remove_cgroup(path: &str) {
    for d in cgroup_dirs(path) {
        let _ = fs::write(d.join("freezer.state"), "THAWED");
        let _ = fs::write(d.join("cgroup.freeze"), "0");
        let _ = fs::write(d.join("cgroup.kill"), "1");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            for pid in fs::read_to_string(d.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.parse::<i32>().ok())
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            if rmdir_tree(&d) || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// rmdir of a cgroup directory and its children, deepest first.
fn rmdir_tree(d: &Path) -> bool {
    for e in fs::read_dir(d).into_iter().flatten().flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            rmdir_tree(&e.path());
        }
    }
    fs::remove_dir(d).is_ok() || !d.exists()
}

/// Reads a file of this runtime's cgroup in the v1 controller `ctrl` (or "unified").
pub fn cgroup_file(path: &str, ctrl: &str, file: &str) -> Option<String> {
    let p = Path::new("/sys/fs/cgroup")
        .join(ctrl)
        .join(path.trim_start_matches('/'))
        .join(file);
    fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

/// Polls `f` until it returns Some, for at most `secs`.
pub fn poll<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
