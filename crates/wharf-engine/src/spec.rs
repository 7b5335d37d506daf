//! The OCI runtime spec (`config.json`) for a container, from its merged config and HostConfig,
//! with Docker's defaults: capabilities, masked and read-only paths, mounts, namespaces.

use serde_json::{json, Value};
use std::path::Path;
use wharf_api::types::HostConfig;

/// Docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Every capability this host can grant: `ALL_CAPS` (indexed by capability number) limited to
/// the daemon's own bounding set, since a runtime cannot give what it does not have (a
/// privileged container inside another container, or a kernel older than the list).
fn host_caps() -> Vec<String> {
    let bnd = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(i, _)| bnd & (1u64 << i) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Where `--init`'s binary appears in the container (Docker's path).
pub const INIT_PATH: &str = "/sbin/docker-init";

/// A spec request that cannot be satisfied, as a user-facing message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

fn normalize_cap(c: &str) -> String {
    let up = c.to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// The capability set after `--cap-add`/`--cap-drop` (`ALL` allowed in both).
pub fn capabilities(hc: &HostConfig) -> Result<Vec<String>, SpecError> {
    if hc.privileged {
        return Ok(host_caps());
    }
    let mut caps: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    let check = |c: &String| {
        if c == "CAP_ALL" || ALL_CAPS.contains(&c.as_str()) {
            Ok(())
        } else {
            Err(SpecError(format!("unknown capability: {:?}", c)))
        }
    };
    for c in hc.cap_drop.iter().flatten().map(|c| normalize_cap(c)) {
        check(&c)?;
        if c == "CAP_ALL" {
            caps.clear();
        } else {
            caps.retain(|x| *x != c);
        }
    }
    for c in hc.cap_add.iter().flatten().map(|c| normalize_cap(c)) {
        check(&c)?;
        if c == "CAP_ALL" {
            caps = host_caps();
        } else if !caps.contains(&c) {
            caps.push(c);
        }
    }
    Ok(caps)
}

fn lookup(file: &Path, name: &str) -> Option<(u32, u32)> {
    let data = std::fs::read_to_string(file).ok()?;
    data.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 4 && f[0] == name {
            Some((f[2].parse().ok()?, f[3].parse().ok()?))
        } else {
            None
        }
    })
}

/// Resolves `user[:group]` (names or numbers) against the rootfs's /etc/passwd and /etc/group.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32), SpecError> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let (uid, mut gid) = match u.parse::<u32>() {
        Ok(n) => (
            n,
            lookup_uid_gid(&rootfs.join("etc/passwd"), n).unwrap_or(0),
        ),
        Err(_) => lookup(&rootfs.join("etc/passwd"), u).ok_or_else(|| {
            SpecError(format!(
                "unable to find user {u}: no matching entries in passwd file"
            ))
        })?,
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let data = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
                data.lines()
                    .find_map(|l| {
                        let f: Vec<&str> = l.split(':').collect();
                        (f.len() >= 3 && f[0] == g).then(|| f[2].parse().ok())?
                    })
                    .ok_or_else(|| {
                        SpecError(format!(
                            "unable to find group {g}: no matching entries in group file"
                        ))
                    })?
            }
        };
    }
    Ok((uid, gid))
}

fn lookup_uid_gid(passwd: &Path, uid: u32) -> Option<u32> {
    let data = std::fs::read_to_string(passwd).ok()?;
    data.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[2].parse() == Ok(uid)).then(|| f[3].parse().ok())?
    })
}

fn parse_size(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1i64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        'b' => (&s[..s.len() - 1], 1),
        _ => (&s[..], 1),
    };
    num.parse::<i64>().ok().and_then(|n| n.checked_mul(mult))
}

/// Everything the spec needs besides the config objects.
pub struct SpecInput<'a> {
    pub id: &'a str,
    pub rootfs: &'a Path,
    pub container_dir: &'a Path,
    pub args: &'a [String],
    pub env: &'a [String],
    pub cwd: &'a str,
    pub user: &'a str,
    pub hostname: &'a str,
    /// `--domainname` (the NIS domain name of the container's UTS namespace).
    pub domainname: &'a str,
    pub tty: bool,
    pub host: &'a HostConfig,
    /// `None` for the host's network namespace, else a new one (`none`) or a path.
    pub netns: Option<Option<&'a str>>,
    pub cgroup_path: &'a str,
    /// Binds and volumes, resolved at create.
    pub mounts: &'a [crate::volumes::MountRecord],
    /// `--init`: the init binary to bind at /sbin/docker-init (the args already start with it).
    pub init: Option<&'a Path>,
}

/// `linux.resources` for a HostConfig: the device allow-list and the cgroup limits. Also what
/// `docker update` applies to a running container.
pub fn resources(h: &HostConfig) -> Result<Value, SpecError> {
    let mut resources = json!({"devices": [{"allow": false, "access": "rwm"}]});
    if !h.privileged {
        resources["devices"] = json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
        ]);
        let list = resources["devices"].as_array_mut().expect("array");
        list.extend(device_rules(h)?);
    } else {
        resources["devices"] = json!([{"allow": true, "access": "rwm"}]);
    }
    let mut memory = serde_json::Map::new();
    if h.memory > 0 {
        memory.insert("limit".into(), json!(h.memory));
        // Docker: swap defaults to twice the memory; -1 is unlimited.
        let swap = match h.memory_swap {
            0 => h.memory.saturating_mul(2),
            s => s,
        };
        memory.insert("swap".into(), json!(swap));
    } else if h.memory_swap != 0 && h.memory_swap != -1 {
        return Err(SpecError(
            "You should always set the Memory limit when using Memoryswap limit, see usage".into(),
        ));
    }
    if h.memory_reservation > 0 {
        memory.insert("reservation".into(), json!(h.memory_reservation));
    }
    if !memory.is_empty() {
        resources["memory"] = Value::Object(memory);
    }
    let mut cpu = serde_json::Map::new();
    if h.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(h.cpu_shares));
    }
    if h.nano_cpus > 0 {
        if h.cpu_quota > 0 || h.cpu_period > 0 {
            return Err(SpecError(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
            ));
        }
        cpu.insert("period".into(), json!(100_000));
        // nano_cpus * 100_000 / 1e9, without the overflow of the product.
        cpu.insert("quota".into(), json!(h.nano_cpus / 10_000));
    }
    if h.cpu_quota > 0 {
        cpu.insert("quota".into(), json!(h.cpu_quota));
    }
    if h.cpu_period > 0 {
        cpu.insert("period".into(), json!(h.cpu_period));
    }
    if let Some(c) = h.cpuset_cpus.as_deref().filter(|c| !c.is_empty()) {
        cpu.insert("cpus".into(), json!(c));
    }
    if let Some(m) = h.cpuset_mems.as_deref().filter(|c| !c.is_empty()) {
        cpu.insert("mems".into(), json!(m));
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = h.pids_limit.filter(|p| *p != 0) {
        resources["pids"] = json!({"limit": if p < 0 { -1 } else { p }});
    }
    if h.blkio_weight > 0 {
        resources["blockIO"] = json!({"weight": h.blkio_weight});
    }
    Ok(resources)
}

/// Builds the OCI `config.json`.
pub fn build(i: &SpecInput) -> Result<Value, SpecError> {
    let caps = capabilities(i.host)?;
    let (uid, gid) = resolve_user(i.rootfs, i.user)?;
    let h = i.host;
    let mut namespaces = vec![json!({"type": "mount"})];
    for (kind, mode) in [
        ("pid", &h.pid_mode),
        ("ipc", &h.ipc_mode),
        ("uts", &h.uts_mode),
    ] {
        if mode != "host" {
            namespaces.push(json!({ "type": kind }));
        }
    }
    if private_cgroupns(&h.cgroupns_mode) {
        namespaces.push(json!({"type": "cgroup"}));
    }
    match i.netns {
        Some(None) => namespaces.push(json!({"type": "network"})),
        Some(Some(p)) => namespaces.push(json!({"type": "network", "path": p})),
        None => {}
    }
    let shm = if i.host.shm_size > 0 {
        i.host.shm_size
    } else {
        64 << 20
    };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}),
    ];
    for f in ["hostname", "hosts", "resolv.conf"] {
        mounts.push(json!({
            "destination": format!("/etc/{f}"),
            "type": "bind",
            "source": i.container_dir.join(f),
            "options": ["rbind", "rprivate"],
        }));
    }
    for (path, opts) in i.host.tmpfs.iter().flatten() {
        let mut o = vec![
            "nosuid".to_string(),
            "nodev".to_string(),
            "noexec".to_string(),
        ];
        o.extend(opts.split(',').filter(|s| !s.is_empty()).map(String::from));
        mounts.push(json!({"destination": path, "type": "tmpfs", "source": "tmpfs", "options": o}));
    }
    if let Some(init) = i.init {
        mounts.push(json!({"destination": INIT_PATH, "type": "bind", "source": init, "options": ["bind", "ro", "nosuid", "nodev"]}));
    }
    for m in i.mounts {
        if m.kind == "tmpfs" {
            let mut o: Vec<String> = ["nosuid", "nodev", "noexec", "rprivate"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            o.extend(m.tmpfs.iter().cloned());
            mounts.push(json!({"destination": m.destination, "type": "tmpfs", "source": "tmpfs", "options": o}));
            continue;
        }
        let mut o = vec![
            "rbind".to_string(),
            if m.rw { "rw" } else { "ro" }.to_string(),
        ];
        o.push(if m.propagation.is_empty() {
            "rprivate".to_string()
        } else {
            m.propagation.clone()
        });
        mounts.push(
            json!({"destination": m.destination, "type": "bind", "source": m.source, "options": o}),
        );
    }
    let resources = resources(h)?;
    let devices = devices(h)?;
    let mut rlimits = Vec::new();
    for u in h.ulimits.iter().flatten() {
        rlimits.push(json!({"type": format!("RLIMIT_{}", u.name.to_ascii_uppercase()), "soft": u.soft, "hard": u.hard}));
    }
    let mut no_new_privs = false;
    for o in h.security_opt.iter().flatten() {
        match o.as_str() {
            "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => {
                no_new_privs = true
            }
            "no-new-privileges:false" | "no-new-privileges=false" => {}
            other => {
                return Err(SpecError(format!(
                    "security option {other:?} is not supported by wharf yet"
                )))
            }
        }
    }
    let mut sysctl = serde_json::Map::new();
    for (k, v) in h.sysctls.iter().flatten() {
        sysctl.insert(k.clone(), json!(v));
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "devices": devices,
        "resources": resources,
        "cgroupsPath": i.cgroup_path,
        "sysctl": sysctl,
    });
    if !h.privileged {
        linux["maskedPaths"] = match &h.masked_paths {
            Some(p) => json!(p),
            None => json!(MASKED),
        };
        linux["readonlyPaths"] = match &h.readonly_paths {
            Some(p) => json!(p),
            None => json!(READONLY),
        };
    }
    let mut process = json!({
        "terminal": i.tty,
        "user": {"uid": uid, "gid": gid},
        "args": i.args,
        "env": i.env,
        "cwd": if i.cwd.is_empty() { "/" } else { i.cwd },
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": no_new_privs,
        "rlimits": rlimits,
    });
    if h.oom_score_adj != 0 {
        process["oomScoreAdj"] = json!(h.oom_score_adj);
    }
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": i.rootfs, "readonly": h.readonly_rootfs},
        "mounts": mounts,
        "linux": linux,
    });
    // With the host's UTS namespace the host's name stays (and may not be set).
    if h.uts_mode != "host" {
        spec["hostname"] = json!(i.hostname);
        if !i.domainname.is_empty() {
            spec["domainname"] = json!(i.domainname);
        }
    }
    Ok(spec)
}

/// Whether a container gets its own cgroup namespace: `--cgroupns private`, or by default on
/// a cgroup v2 host (dockerd's `default-cgroupns-mode`: private on v2, host on v1).
pub fn private_cgroupns(mode: &str) -> bool {
    match mode {
        "private" => true,
        "host" => false,
        _ => Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
    }
}

/// `--device`: the host's device nodes as `linux.devices`, checked here so that a wrong path
/// is a clear error at create.
fn devices(h: &HostConfig) -> Result<Value, SpecError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    for d in h.devices.iter().flatten() {
        let meta = std::fs::metadata(&d.path_on_host).map_err(|e| {
            SpecError(format!(
                "error gathering device information while adding custom device {:?}: {e}",
                d.path_on_host
            ))
        })?;
        let kind = if meta.file_type().is_char_device() {
            "c"
        } else if meta.file_type().is_block_device() {
            "b"
        } else {
            return Err(SpecError(format!(
                "error gathering device information while adding custom device {:?}: not a device node",
                d.path_on_host
            )));
        };
        let path = if d.path_in_container.is_empty() {
            &d.path_on_host
        } else {
            &d.path_in_container
        };
        let rdev = meta.rdev();
        out.push(json!({
            "path": path,
            "type": kind,
            "major": nix::sys::stat::major(rdev),
            "minor": nix::sys::stat::minor(rdev),
            "fileMode": meta.mode() & 0o7777,
            "uid": meta.uid(),
            "gid": meta.gid(),
        }));
    }
    Ok(Value::Array(out))
}

/// The cgroup rules that let the container use its `--device`s.
fn device_rules(h: &HostConfig) -> Result<Vec<Value>, SpecError> {
    let mut rules = Vec::new();
    for (d, dev) in h
        .devices
        .iter()
        .flatten()
        .zip(devices(h)?.as_array().into_iter().flatten())
    {
        let access = if d.cgroup_permissions.is_empty() {
            "rwm"
        } else {
            &d.cgroup_permissions
        };
        if access.is_empty() || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
            return Err(SpecError(format!(
                "invalid device permissions {access:?} for {:?}: use a combination of r, w and m",
                d.path_on_host
            )));
        }
        rules.push(json!({"allow": true, "type": dev["type"], "major": dev["major"], "minor": dev["minor"], "access": access}));
    }
    Ok(rules)
}

/// The OCI `process` of an exec, derived from the container's spec.
pub fn exec_process(
    container_spec: &Value,
    args: &[String],
    env: &[String],
    cwd: &str,
    user: Option<(u32, u32)>,
    tty: bool,
    privileged: bool,
) -> Value {
    let mut p = container_spec["process"].clone();
    p["args"] = json!(args);
    p["terminal"] = json!(tty);
    if !env.is_empty() {
        let mut merged: Vec<String> = p["env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        for e in env {
            let key = e.split('=').next().unwrap_or_default();
            merged.retain(|m| m.split('=').next() != Some(key));
            merged.push(e.clone());
        }
        p["env"] = json!(merged);
    }
    if !cwd.is_empty() {
        p["cwd"] = json!(cwd);
    }
    if let Some((u, g)) = user {
        p["user"] = json!({"uid": u, "gid": g});
    }
    if privileged {
        let all = host_caps();
        p["capabilities"] = json!({"bounding": all, "effective": all, "permitted": all});
    }
    p
}

/// `--tmpfs`/`--shm-size` style sizes ("64m").
pub fn size_of(s: &str) -> Option<i64> {
    parse_size(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_sizes_and_limits_do_not_overflow() {
        // These multiplied past i64::MAX (a panic in debug builds, a wrapped limit in release):
        // the fuzz/fuzz_targets/create_request.rs binary panicked on them.
        let h = HostConfig {
            memory: i64::MAX,
            nano_cpus: i64::MAX,
            ..Default::default()
        };
        let r = resources(&h).unwrap();
        assert_eq!(r["memory"]["swap"], json!(i64::MAX));
        assert_eq!(r["cpu"]["quota"], json!(i64::MAX / 10_000));
        let h = HostConfig {
            nano_cpus: 1_500_000_000,
            ..Default::default()
        };
        assert_eq!(resources(&h).unwrap()["cpu"]["quota"], json!(150_000));
        assert_eq!(size_of("9223372036854775807k"), None);
        assert_eq!(size_of("64m"), Some(64 << 20));
    }

    fn input<'a>(host: &'a HostConfig, rootfs: &'a Path, args: &'a [String]) -> SpecInput<'a> {
        SpecInput {
            id: "abc",
            rootfs,
            container_dir: rootfs,
            args,
            env: &[],
            cwd: "",
            user: "",
            hostname: "abc",
            domainname: "",
            tty: false,
            host,
            netns: Some(None),
            cgroup_path: "/wharf/abc",
            mounts: &[],
            init: None,
        }
    }

    #[test]
    fn defaults_match_docker() {
        let d = tempfile::tempdir().unwrap();
        let hc = HostConfig::default();
        let args = vec!["true".to_string()];
        let s = build(&input(&hc, d.path(), &args)).unwrap();
        assert_eq!(
            s["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            14
        );
        assert!(s["linux"]["maskedPaths"]
            .as_array()
            .unwrap()
            .contains(&json!("/proc/kcore")));
        assert_eq!(s["process"]["cwd"], "/");
        assert!(s["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&json!({"type": "network"})));
    }

    #[test]
    fn resources_and_caps() {
        let d = tempfile::tempdir().unwrap();
        let hc = HostConfig {
            memory: 64 << 20,
            nano_cpus: 500_000_000,
            pids_limit: Some(10),
            cap_drop: Some(vec!["chown".into()]),
            cap_add: Some(vec!["NET_ADMIN".into()]),
            ..Default::default()
        };
        let args = vec!["true".to_string()];
        let s = build(&input(&hc, d.path(), &args)).unwrap();
        assert_eq!(s["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(s["linux"]["resources"]["memory"]["swap"], 128 << 20);
        assert_eq!(s["linux"]["resources"]["cpu"]["quota"], 50_000);
        assert_eq!(s["linux"]["resources"]["pids"]["limit"], 10);
        let caps = s["process"]["capabilities"]["effective"]
            .as_array()
            .unwrap();
        assert!(!caps.contains(&json!("CAP_CHOWN")));
        assert!(caps.contains(&json!("CAP_NET_ADMIN")));
        let bad = HostConfig {
            cap_add: Some(vec!["FLY".into()]),
            ..Default::default()
        };
        assert!(build(&input(&bad, d.path(), &args)).is_err());
    }

    #[test]
    fn users_resolve_from_the_rootfs() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(d.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(resolve_user(d.path(), "nobody").unwrap(), (65534, 65534));
        assert_eq!(resolve_user(d.path(), "nobody:staff").unwrap(), (65534, 50));
        assert_eq!(resolve_user(d.path(), "1000:1000").unwrap(), (1000, 1000));
        assert!(resolve_user(d.path(), "ghost").is_err());
    }
}
