//! Cgroup managers: v2 against a temporary directory laid out like cgroupfs, and the real
//! hierarchies of this host (v1 controllers, and the cgroup2 mount of a hybrid host) when
//! running as root. The real tests use unique cgroup names, start their own children only,
//! and remove their cgroups even when they fail (a Drop guard).

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use oci_spec::runtime::LinuxResources;
use wharf_runtime::cgroups::layout::{Layout, OwnCgroups};
use wharf_runtime::cgroups::{
    create_manager, devices_bpf, CgroupError, CgroupManager, CgroupPath, FreezerState, Stats,
    V1Manager, V2Manager,
};

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn read(p: impl AsRef<Path>) -> String {
    fs::read_to_string(p.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", p.as_ref().display()))
        .trim()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// v2 against a fake cgroupfs

const V2_FILES: &[&str] = &[
    "cgroup.controllers",
    "cgroup.subtree_control",
    "cgroup.procs",
    "cgroup.freeze",
    "cgroup.events",
    "memory.max",
    "memory.swap.max",
    "memory.low",
    "memory.high",
    "memory.current",
    "memory.peak",
    "memory.stat",
    "memory.events",
    "cpu.max",
    "cpu.weight",
    "cpu.stat",
    "cpuset.cpus",
    "cpuset.mems",
    "pids.max",
    "pids.current",
    "io.max",
    "io.weight",
    "io.stat",
];

/// A root with `cgroup.controllers` at each level of `path` and all `V2_FILES` in the leaf.
fn fake_v2(path: &str) -> (tempfile::TempDir, V2Manager) {
    let root = tempfile::tempdir().unwrap();
    let mut dir = root.path().to_path_buf();
    for comp in Path::new(path).iter().skip(1) {
        fs::write(
            dir.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
        dir.push(comp);
        fs::create_dir_all(&dir).unwrap();
    }
    for f in V2_FILES {
        fs::write(dir.join(f), "").unwrap();
    }
    let m = V2Manager::with_root(root.path(), Path::new(path));
    (root, m)
}

#[test]
fn v2_apply_enables_controllers_in_every_ancestor_and_joins_the_pid() {
    let (root, m) = fake_v2("/wharf/ctr");
    assert_eq!(m.path(), root.path().join("wharf/ctr"));
    m.apply(4242).unwrap();
    let want = "+cpuset +cpu +io +memory +pids";
    assert_eq!(read(root.path().join("cgroup.subtree_control")), want);
    assert_eq!(read(root.path().join("wharf/cgroup.subtree_control")), want);
    // The leaf keeps its controllers to itself (no internal-process conflict).
    assert_eq!(read(m.path().join("cgroup.subtree_control")), "");
    assert_eq!(read(m.path().join("cgroup.procs")), "4242");
}

#[test]
fn v2_set_writes_converted_values() {
    let (_root, m) = fake_v2("/ctr");
    m.set(&resources(
        r#"{"memory": {"limit": 104857600, "swap": 314572800, "reservation": 52428800},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
            "pids": {"limit": 0},
            "blockIO": {"weight": 500,
                        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                        "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}]},
            "unified": {"memory.high": "90000000"}}"#,
    ))
    .unwrap();
    let f = |name: &str| read(m.path().join(name));
    assert_eq!(f("memory.max"), "104857600");
    assert_eq!(f("memory.swap.max"), "209715200"); // swap alone: 300M - 100M
    assert_eq!(f("memory.low"), "52428800");
    assert_eq!(f("cpu.weight"), "39");
    assert_eq!(f("cpu.max"), "50000 100000");
    assert_eq!(f("cpuset.cpus"), "0-1");
    assert_eq!(f("cpuset.mems"), "0");
    assert_eq!(f("pids.max"), "max");
    assert_eq!(f("io.weight"), "4950");
    assert_eq!(f("io.max"), "8:0 rbps=1048576 wiops=100");
    assert_eq!(f("memory.high"), "90000000");

    m.set(&resources(
        r#"{"memory": {"limit": -1}, "cpu": {"quota": -1}, "pids": {"limit": 64}}"#,
    ))
    .unwrap();
    assert_eq!(f("memory.max"), "max");
    assert_eq!(f("memory.swap.max"), "max");
    assert_eq!(f("cpu.max"), "max");
    assert_eq!(f("pids.max"), "64");
}

#[test]
fn v2_write_errors_name_the_file_and_value() {
    let (_root, m) = fake_v2("/ctr");
    let err = m
        .set(&resources(
            r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 1048576}]}"#,
        ))
        .unwrap_err();
    let file = m.path().join("hugetlb.2MB.max");
    let want = format!("writing 1048576 to {}: ", file.display());
    assert!(err.to_string().starts_with(&want), "{err}");
}

#[test]
fn v2_refuses_what_it_cannot_express() {
    let (_root, m) = fake_v2("/ctr");
    for bad in [
        r#"{"memory": {"limit": 200, "swap": 100}}"#,
        r#"{"network": {"classID": 7}}"#,
        r#"{"cpu": {"realtimeRuntime": 1000}}"#,
        r#"{"unified": {"../escape": "1"}}"#,
    ] {
        let err = m.set(&resources(bad)).unwrap_err();
        assert!(
            matches!(err, CgroupError::InvalidResource(_)),
            "{bad}: {err}"
        );
    }
}

#[test]
fn v2_stats_are_parsed_from_the_interface_files() {
    let (_root, m) = fake_v2("/ctr");
    let w = |name: &str, text: &str| fs::write(m.path().join(name), text).unwrap();
    w("memory.current", "1048576\n");
    w("memory.peak", "2097152\n");
    w("memory.max", "max\n");
    w(
        "memory.events",
        "low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\noom_group_kill 0\n",
    );
    w("memory.stat", "anon 4096\nfile 8192\nkernel 100\n");
    w(
        "cpu.stat",
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 3\nthrottled_usec 250\n",
    );
    w("pids.current", "3\n");
    w("pids.max", "100\n");
    w(
        "io.stat",
        "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n",
    );
    let s = m.stats().unwrap();
    assert_eq!(
        s,
        Stats {
            memory_usage: 1048576,
            memory_max_usage: 2097152,
            memory_limit: u64::MAX,
            memory_failcnt: 7,
            oom_kills: 1,
            cpu_usage_total_ns: 1_500_000,
            cpu_usage_user_ns: 1_000_000,
            cpu_usage_kernel_ns: 500_000,
            cpu_throttled_periods: 3,
            cpu_throttled_time_ns: 250_000,
            pids_current: 3,
            pids_limit: 100,
            blkio_read_bytes: 4097,
            blkio_write_bytes: 8194,
        }
    );
    let d = m.detailed_stats().unwrap();
    assert_eq!(
        (d.memory_cache, d.memory_rss, d.cpu_periods),
        (8192, 4096, 10)
    );
    assert_eq!(d.base, s);
}

#[test]
fn v2_freeze_writes_cgroup_freeze_and_waits_for_cgroup_events() {
    let (_root, m) = fake_v2("/ctr");
    let events = m.path().join("cgroup.events");
    fs::write(&events, "populated 1\nfrozen 1\n").unwrap();
    m.freeze().unwrap();
    assert_eq!(read(m.path().join("cgroup.freeze")), "1");
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Frozen);

    fs::write(&events, "populated 1\nfrozen 0\n").unwrap();
    m.thaw().unwrap();
    assert_eq!(read(m.path().join("cgroup.freeze")), "0");
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Thawed);
}

#[test]
fn v2_freeze_that_never_completes_times_out_and_thaws_back() {
    let (_root, m) = fake_v2("/ctr");
    let m = m.with_freeze_timeout(Duration::from_millis(50));
    fs::write(m.path().join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
    let err = m.freeze().unwrap_err();
    assert!(matches!(err, CgroupError::FreezerTimeout { .. }), "{err}");
    assert_eq!(read(m.path().join("cgroup.freeze")), "0");
    // Asked to freeze but not yet frozen: not reported as frozen.
    fs::write(m.path().join("cgroup.freeze"), "1").unwrap();
    assert_eq!(m.freezer_state().unwrap(), FreezerState::Thawed);
}

#[test]
fn v2_pids_are_recursive_and_destroying_a_missing_cgroup_is_ok() {
    let (root, m) = fake_v2("/ctr");
    fs::write(m.path().join("cgroup.procs"), "12\n10\n").unwrap();
    fs::create_dir(m.path().join("sub")).unwrap();
    fs::write(m.path().join("sub/cgroup.procs"), "11\n").unwrap();
    assert_eq!(m.pids().unwrap(), [10, 11, 12]);
    V2Manager::with_root(root.path(), Path::new("/never-created"))
        .destroy()
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// v1 against a fake hierarchy

#[test]
fn v1_fake_hierarchies_get_the_v1_files() {
    let root = tempfile::tempdir().unwrap();
    let mut mounts = BTreeMap::new();
    for c in ["memory", "cpu", "pids", "devices", "blkio"] {
        mounts.insert(c.to_string(), root.path().join(c));
    }
    let m = V1Manager::with_mounts(mounts, Path::new("/ctr"));
    m.apply(0).unwrap();
    let files = [
        ("memory", "memory.limit_in_bytes"),
        ("memory", "memory.memsw.limit_in_bytes"),
        ("memory", "memory.soft_limit_in_bytes"),
        ("memory", "memory.swappiness"),
        ("memory", "memory.oom_control"),
        ("cpu", "cpu.shares"),
        ("cpu", "cpu.cfs_quota_us"),
        ("cpu", "cpu.cfs_period_us"),
        ("pids", "pids.max"),
        ("devices", "devices.allow"),
        ("devices", "devices.deny"),
        ("blkio", "blkio.weight"),
        ("blkio", "blkio.throttle.read_bps_device"),
    ];
    for (c, f) in files {
        fs::write(m.path(c).unwrap().join(f), "").unwrap();
    }
    // The current limit decides the write order of limit and memsw.
    let unlimited = "9223372036854771712\n";
    fs::write(
        m.path("memory").unwrap().join("memory.limit_in_bytes"),
        unlimited,
    )
    .unwrap();
    m.set(&resources(
        r#"{"memory": {"limit": 1000, "swap": 3000, "reservation": 500, "swappiness": 10,
                       "disableOOMKiller": true, "kernel": 12345},
            "cpu": {"shares": 512, "quota": 20000, "period": 100000},
            "pids": {"limit": -1},
            "devices": [{"allow": false, "access": "rwm"},
                        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
            "blockIO": {"weight": 300,
                        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1024}]}}"#,
    ))
    .unwrap();
    let f = |c: &str, name: &str| read(m.path(c).unwrap().join(name));
    assert_eq!(f("memory", "memory.limit_in_bytes"), "1000");
    assert_eq!(f("memory", "memory.memsw.limit_in_bytes"), "3000"); // memory + swap, as given
    assert_eq!(f("memory", "memory.soft_limit_in_bytes"), "500");
    assert_eq!(f("memory", "memory.swappiness"), "10");
    assert_eq!(f("memory", "memory.oom_control"), "1");
    assert_eq!(f("cpu", "cpu.shares"), "512");
    assert_eq!(f("cpu", "cpu.cfs_quota_us"), "20000");
    assert_eq!(f("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(f("pids", "pids.max"), "max");
    assert_eq!(f("devices", "devices.deny"), "a");
    assert_eq!(f("devices", "devices.allow"), "c 1:3 rwm");
    assert_eq!(f("blkio", "blkio.weight"), "300");
    assert_eq!(f("blkio", "blkio.throttle.read_bps_device"), "8:0 1024");

    let err = m
        .set(&resources(r#"{"unified": {"memory.high": "1"}}"#))
        .unwrap_err();
    assert!(matches!(err, CgroupError::InvalidResource(_)), "{err}");
    m.set(&resources(r#"{"unified": {}}"#)).unwrap();
    let err = m
        .set(&resources(r#"{"network": {"classID": 1}}"#))
        .unwrap_err();
    assert!(
        matches!(err, CgroupError::ControllerMissing(ref c) if c == "net_cls"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// The real hierarchies

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// `/wharf-cgtest-<pid>-<n>`: unique on a shared machine.
fn unique_name() -> String {
    format!(
        "/wharf-cgtest-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn is_root() -> bool {
    // SAFETY: getuid cannot fail and has no side effects.
    unsafe { libc::getuid() == 0 }
}

/// A v1 manager on this host's hierarchies, or why the real v1 tests cannot run.
fn real_v1(name: &str) -> Result<V1Manager, String> {
    if !is_root() {
        return Err("not root".into());
    }
    let Layout::Legacy {
        controllers,
        unified,
    } = Layout::detect().map_err(|e| e.to_string())?
    else {
        return Err("this host has no v1 controllers (pure cgroup v2)".into());
    };
    for c in ["memory", "cpu", "cpuacct", "pids", "freezer", "devices"] {
        if !controllers.contains_key(c) {
            return Err(format!("v1 controller {c} is not mounted"));
        }
    }
    let own = OwnCgroups::detect().map_err(|e| e.to_string())?;
    let path = CgroupPath::parse(Path::new(name)).unwrap();
    Ok(V1Manager::from_layout(
        &controllers,
        unified.as_ref(),
        &own,
        &path,
    ))
}

/// A v2 manager on this host's cgroup2 mount (pure v2 or the hybrid one), or why not.
fn real_v2(name: &str) -> Result<V2Manager, String> {
    if !is_root() {
        return Err("not root".into());
    }
    let mount = match Layout::detect().map_err(|e| e.to_string())? {
        Layout::Unified { root } => root,
        Layout::Legacy {
            unified: Some(u), ..
        } => u,
        Layout::Legacy { unified: None, .. } => return Err("no cgroup2 mount".into()),
    };
    let own = OwnCgroups::detect().map_err(|e| e.to_string())?;
    let path = CgroupPath::parse(Path::new(name)).unwrap();
    Ok(V2Manager::from_layout(&mount, &own, &path))
}

macro_rules! or_skip {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(why) => {
                wharf_testkit::skip(why);
                return;
            }
        }
    };
}

/// Kills and reaps the test's own child, thaws and removes the cgroup, whatever happened.
struct Guard<M: CgroupManager> {
    manager: M,
    child: Option<Child>,
}

impl<M: CgroupManager> Guard<M> {
    fn new(manager: M) -> Self {
        Guard {
            manager,
            child: None,
        }
    }

    fn spawn(&mut self, cmd: &mut Command) -> i32 {
        let child = cmd.spawn().expect("spawn test child");
        let pid = child.id() as i32;
        self.child = Some(child);
        pid
    }

    fn kill_child(&mut self) {
        // A frozen process cannot die: thaw first.
        let _ = self.manager.thaw();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl<M: CgroupManager> Drop for Guard<M> {
    fn drop(&mut self) {
        self.kill_child();
        if let Err(e) = self.manager.destroy() {
            eprintln!("cleanup: {e}");
        }
    }
}

fn proc_state(pid: i32) -> char {
    let stat = read(format!("/proc/{pid}/stat"));
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.chars().next().unwrap()
}

fn procs(dir: &Path) -> Vec<i32> {
    read(dir.join("cgroup.procs"))
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

#[test]
fn create_manager_works_on_this_host() {
    or_skip!(if is_root() { Ok(()) } else { Err("not root") });
    let m = create_manager(Path::new(&unique_name())).unwrap();
    // Nothing was created: destroying is a no-op.
    m.destroy().unwrap();
}

#[test]
fn real_v1_limits_freeze_pids_and_destroy() {
    let name = unique_name();
    let mut g = Guard::new(or_skip!(real_v1(&name)));
    let pid = g.spawn(Command::new("sleep").arg("30"));
    g.manager.apply(pid).unwrap();
    for c in ["memory", "cpu", "pids", "freezer", "devices"] {
        let dir = g.manager.path(c).unwrap().to_path_buf();
        assert!(dir.ends_with(&name[1..]), "{}", dir.display());
        assert_eq!(procs(&dir), [pid], "{c}");
    }
    // A new cpuset cgroup takes no process until cpus/mems are copied down from the parent.
    if let Some(cpuset) = g.manager.path("cpuset") {
        assert_ne!(read(cpuset.join("cpuset.cpus")), "");
        assert_ne!(read(cpuset.join("cpuset.mems")), "");
        assert_eq!(procs(cpuset), [pid]);
    }
    if let Some(u) = g.manager.unified_path() {
        assert_eq!(procs(u), [pid], "hybrid cgroup2 membership");
    }

    let memsw = g
        .manager
        .path("memory")
        .unwrap()
        .join("memory.memsw.limit_in_bytes")
        .exists();
    let swap = if memsw { r#", "swap": 134217728"# } else { "" };
    g.manager
        .set(&resources(&format!(
            r#"{{"memory": {{"limit": 67108864{swap}}},
                 "pids": {{"limit": 16}},
                 "cpu": {{"shares": 512, "quota": 20000, "period": 100000}}}}"#
        )))
        .unwrap();
    let f = |c: &str, file: &str| read(g.manager.path(c).unwrap().join(file));
    assert_eq!(f("memory", "memory.limit_in_bytes"), "67108864");
    if memsw {
        assert_eq!(f("memory", "memory.memsw.limit_in_bytes"), "134217728");
    }
    assert_eq!(f("pids", "pids.max"), "16");
    assert_eq!(f("cpu", "cpu.cfs_quota_us"), "20000");
    assert_eq!(f("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(f("cpu", "cpu.shares"), "512");

    // Lowering, then raising both: each needs its own write order (limit <= memsw always).
    let mut limit = 67108864u64;
    if memsw {
        g.manager
            .set(&resources(
                r#"{"memory": {"limit": 33554432, "swap": 33554432}}"#,
            ))
            .unwrap();
        assert_eq!(f("memory", "memory.memsw.limit_in_bytes"), "33554432");
        g.manager
            .set(&resources(
                r#"{"memory": {"limit": 268435456, "swap": 536870912}}"#,
            ))
            .unwrap();
        assert_eq!(f("memory", "memory.limit_in_bytes"), "268435456");
        assert_eq!(f("memory", "memory.memsw.limit_in_bytes"), "536870912");
        limit = 268435456;
    }

    g.manager.freeze().unwrap();
    assert_eq!(f("freezer", "freezer.state"), "FROZEN");
    assert_eq!(g.manager.freezer_state().unwrap(), FreezerState::Frozen);
    let state = proc_state(pid);
    // The freezer parks tasks uninterruptibly: /proc shows them as D.
    assert_eq!(state, 'D', "frozen child in state {state}");
    g.manager.thaw().unwrap();
    assert_eq!(f("freezer", "freezer.state"), "THAWED");
    assert_eq!(g.manager.freezer_state().unwrap(), FreezerState::Thawed);

    assert_eq!(g.manager.pids().unwrap(), [pid]);
    let s = g.manager.stats().unwrap();
    assert_eq!((s.pids_current, s.pids_limit), (1, 16));
    assert_eq!(s.memory_limit, limit);

    g.kill_child();
    let dirs: Vec<PathBuf> = ["memory", "cpu", "pids", "freezer"]
        .iter()
        .map(|c| g.manager.path(c).unwrap().to_path_buf())
        .collect();
    g.manager.destroy().unwrap();
    for d in dirs {
        assert!(!d.exists(), "{} still exists", d.display());
    }
    // A second destroy finds nothing to do.
    g.manager.destroy().unwrap();
}

#[test]
fn real_v1_busy_child_shows_cpu_usage_and_throttling() {
    let name = unique_name();
    let mut g = Guard::new(or_skip!(real_v1(&name)));
    g.manager.apply(0).unwrap();
    g.manager
        .set(&resources(r#"{"cpu": {"quota": 10000, "period": 100000}}"#))
        .unwrap();
    let pid = g.spawn(Command::new("sh").args(["-c", "while :; do :; done"]));
    g.manager.apply(pid).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let s = g.manager.stats().unwrap();
    assert!(s.cpu_usage_total_ns > 0, "{s:?}");
    assert!(s.cpu_usage_user_ns + s.cpu_usage_kernel_ns > 0, "{s:?}");
    assert!(
        s.cpu_throttled_periods > 0,
        "10% quota on a busy loop: {s:?}"
    );
    let d = g.manager.detailed_stats().unwrap();
    assert!(d.cpu_usage_percpu_ns.iter().sum::<u64>() > 0, "{d:?}");
    assert!(d.cpu_periods >= s.cpu_throttled_periods);
}

#[test]
fn real_v1_device_rules_reach_devices_list() {
    let name = unique_name();
    let g = Guard::new(or_skip!(real_v1(&name)));
    g.manager.apply(0).unwrap();
    g.manager
        .set(&resources(
            r#"{"devices": [{"allow": false, "access": "rwm"},
                            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"},
                            {"allow": true, "type": "c", "major": 136, "access": "rw"}]}"#,
        ))
        .unwrap();
    let list = read(g.manager.path("devices").unwrap().join("devices.list"));
    let mut lines: Vec<&str> = list.lines().collect();
    lines.sort();
    assert_eq!(lines, ["c 136:* rw", "c 1:3 rwm", "c 1:5 r"]);
}

#[test]
fn real_v1_write_errors_name_the_file_and_value() {
    let name = unique_name();
    let g = Guard::new(or_skip!(real_v1(&name)));
    g.manager.apply(0).unwrap();
    let err = g
        .manager
        .set(&resources(r#"{"cpu": {"quota": 1}}"#)) // below the kernel's 1ms minimum
        .unwrap_err();
    let file = g.manager.path("cpu").unwrap().join("cpu.cfs_quota_us");
    let want = format!("writing 1 to {}: Invalid argument", file.display());
    assert!(err.to_string().starts_with(&want), "{err}");
}

#[test]
fn real_v2_freeze_pids_and_device_filter() {
    let name = unique_name();
    let mut g = Guard::new(or_skip!(real_v2(&name)));
    let pid = g.spawn(
        Command::new("sh")
            .args([
                "-c",
                "read go; \
                 if echo x > /dev/null; then echo null-ok; else echo null-denied; fi; \
                 if head -c1 /dev/zero > /dev/zero; then echo zero-ok; else echo zero-denied; fi; \
                 read done",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    g.manager.apply(pid).unwrap();
    assert_eq!(g.manager.pids().unwrap(), [pid]);

    g.manager.freeze().unwrap();
    assert_eq!(g.manager.freezer_state().unwrap(), FreezerState::Frozen);
    assert_eq!(read(g.manager.path().join("cgroup.freeze")), "1");
    g.manager.thaw().unwrap();
    assert_eq!(g.manager.freezer_state().unwrap(), FreezerState::Thawed);

    let rules = r#"{"devices": [{"allow": false, "access": "rwm"},
                                {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"}]}"#;
    match g.manager.set(&resources(rules)) {
        Err(CgroupError::Bpf { source, .. }) if source.raw_os_error() == Some(libc::EPERM) => {
            wharf_testkit::skip(format!(
                "device filter: bpf(2) not permitted here: {source}"
            ));
            return;
        }
        r => r.unwrap(),
    }
    assert_eq!(devices_bpf::attached_programs(g.manager.path()).unwrap(), 1);
    // Setting again replaces the program instead of stacking another.
    g.manager.set(&resources(rules)).unwrap();
    assert_eq!(devices_bpf::attached_programs(g.manager.path()).unwrap(), 1);

    let child = g.child.as_mut().unwrap();
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..2 {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        lines.push(l.trim().to_string());
    }
    assert_eq!(lines, ["null-denied", "zero-ok"]);

    g.kill_child();
    let dir = g.manager.path().to_path_buf();
    g.manager.destroy().unwrap();
    assert!(!dir.exists());
}
