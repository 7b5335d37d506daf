//! The OCI runtime spec (`config.json`) for a container, from its merged config and HostConfig,
//! with Docker's defaults: capabilities, masked and read-only paths, mounts, namespaces.

use oci_spec::runtime::{
    Capabilities, Capability, Linux, LinuxBlockIo, LinuxCapabilities, LinuxCpu, LinuxDevice,
    LinuxDeviceCgroup, LinuxDeviceType, LinuxIdMapping, LinuxIdMappingBuilder, LinuxMemory,
    LinuxNamespace, LinuxNamespaceType, LinuxPids, LinuxResources, LinuxSeccomp, Mount,
    PosixRlimitBuilder, PosixRlimitType, Process, Root, Spec, User,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use wharf_api::types::HostConfig;

use crate::seccomp;

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

/// The largest `/etc/passwd` or `/etc/group` read from an image.
pub const ETC_FILE_MAX: u64 = 16 << 20;

/// Reads `rel` (e.g. `etc/passwd`) of an image's rootfs as the container would see it:
/// symlinks resolved inside the rootfs (openat2 `RESOLVE_IN_ROOT`, no magic links), and only a
/// regular file of at most [`ETC_FILE_MAX`] bytes, so an image whose `/etc/passwd` is a link to
/// `/dev/zero`, a FIFO or a huge file cannot make the daemon read the host's files, block or
/// eat memory. `None` when the file does not exist. Blocking: call it off the async threads.
pub fn read_image_file(rootfs: &Path, rel: &str) -> Result<Option<String>, SpecError> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    use std::io::Read;
    let shown = format!("/{rel}");
    let fail = |what: String| SpecError(format!("cannot read the image's {shown}: {what}"));
    let root = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| fail(format!("opening the rootfs {}: {e}", rootfs.display())))?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let path = match openat2(&root, rel, how) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) | Err(nix::errno::Errno::ENOTDIR) => return Ok(None),
        Err(e) => return Err(fail(e.to_string())),
    };
    let st = nix::sys::stat::fstat(&path).map_err(|e| fail(e.to_string()))?;
    let kind = st.st_mode & libc::S_IFMT;
    if kind != libc::S_IFREG {
        let what = match kind {
            libc::S_IFCHR => "a character device",
            libc::S_IFBLK => "a block device",
            libc::S_IFIFO => "a FIFO",
            libc::S_IFSOCK => "a socket",
            libc::S_IFDIR => "a directory",
            _ => "not a regular file",
        };
        return Err(fail(format!("it is {what}, not a regular file")));
    }
    if st.st_size as u64 > ETC_FILE_MAX {
        return Err(fail(format!(
            "it is {} bytes, more than the {} MiB wharf reads",
            st.st_size,
            ETC_FILE_MAX >> 20
        )));
    }
    // Reopen the checked inode for reading (an O_PATH fd cannot be read).
    let file = std::fs::File::open(format!("/proc/self/fd/{}", {
        use std::os::fd::AsRawFd;
        path.as_raw_fd()
    }))
    .map_err(|e| fail(e.to_string()))?;
    let mut buf = Vec::new();
    file.take(ETC_FILE_MAX + 1)
        .read_to_end(&mut buf)
        .map_err(|e| fail(e.to_string()))?;
    if buf.len() as u64 > ETC_FILE_MAX {
        return Err(fail(format!(
            "it grew past the {} MiB wharf reads",
            ETC_FILE_MAX >> 20
        )));
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

fn lookup(passwd: Option<&str>, name: &str) -> Option<(u32, u32)> {
    passwd?.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 4 && f[0] == name {
            Some((f[2].parse().ok()?, f[3].parse().ok()?))
        } else {
            None
        }
    })
}

/// Resolves `user[:group]` (names or numbers) against the rootfs's /etc/passwd and /etc/group
/// (read with [`read_image_file`]). Blocking: call it off the async threads.
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32), SpecError> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let numeric_uid = u.parse::<u32>().ok();
    // A uid with a group given needs no passwd file (the file only names users and their
    // primary groups).
    let passwd = match (numeric_uid, g) {
        (Some(_), Some(_)) => None,
        _ => read_image_file(rootfs, "etc/passwd")?,
    };
    let (uid, mut gid) = match numeric_uid {
        Some(n) => (n, lookup_uid_gid(passwd.as_deref(), n).unwrap_or(0)),
        None => lookup(passwd.as_deref(), u).ok_or_else(|| {
            SpecError(format!(
                "unable to find user {u}: no matching entries in passwd file"
            ))
        })?,
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let data = read_image_file(rootfs, "etc/group")?.unwrap_or_default();
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

/// The owner `docker cp -a` (`copyUIDGID`) gives what it extracts into a container whose
/// `Config.User` is `user` (not empty), as moby resolves it in the container's /etc/passwd and
/// /etc/group (read with [`read_image_file`]): `user[:group]`, each a name or a number; a
/// missing part is 0 (root); a known numeric user brings its primary group, an unknown one
/// group 0; an unknown name is an error (moby's message). Blocking: call it off the async
/// threads.
pub fn resolve_copy_owner(rootfs: &Path, user: &str) -> Result<(u32, u32), SpecError> {
    // moby's getIDOrName: a 32-bit number no larger than i32::MAX is an id, anything else a
    // name.
    let id = |s: &str| s.parse::<u32>().ok().filter(|n| *n <= i32::MAX as u32);
    let (u, g) = user.split_once(':').unwrap_or((user, ""));
    let (mut uid, mut gid) = (0, 0);
    if !u.is_empty() {
        let passwd = read_image_file(rootfs, "etc/passwd")?;
        (uid, gid) = match id(u) {
            Some(n) => (n, lookup_uid_gid(passwd.as_deref(), n).unwrap_or(0)),
            None => {
                let why = if passwd.is_some() {
                    "no matching entries in passwd file"
                } else {
                    "open /etc/passwd: no such file or directory"
                };
                lookup(passwd.as_deref(), u).ok_or_else(|| {
                    SpecError(format!("failed to look up user {u:?} in container: {why}"))
                })?
            }
        };
    }
    if !g.is_empty() {
        gid = match id(g) {
            Some(n) => n,
            None => {
                let group = read_image_file(rootfs, "etc/group")?;
                let why = if group.is_some() {
                    "no matching entries in group file"
                } else {
                    "open /etc/group: no such file or directory"
                };
                group
                    .as_deref()
                    .unwrap_or_default()
                    .lines()
                    .find_map(|l| {
                        let f: Vec<&str> = l.split(':').collect();
                        (f.len() >= 3 && f[0] == g).then(|| f[2].parse().ok())?
                    })
                    .ok_or_else(|| {
                        SpecError(format!("failed to look up group {g:?} in container: {why}"))
                    })?
            }
        };
    }
    Ok((uid, gid))
}

/// The supplementary groups of the process, as dockerd gives them: the groups of the image's
/// /etc/group that list the user (by name) as a member, then `--group-add` entries (numbers,
/// or names looked up there). The primary group is not repeated. Blocking: call it off the
/// async threads.
pub fn supplementary_groups(
    rootfs: &Path,
    user: &str,
    (uid, gid): (u32, u32),
    group_add: &[String],
) -> Result<Vec<u32>, SpecError> {
    let name = user.split(':').next().unwrap_or_default();
    let need_files =
        !group_add.iter().all(|g| g.parse::<u32>().is_ok()) || !name.is_empty() || uid == 0;
    let group = if need_files {
        read_image_file(rootfs, "etc/group")?
    } else {
        None
    };
    // A numeric user is a member under the name its passwd entry gives.
    let name = match name.parse::<u32>() {
        Ok(n) => read_image_file(rootfs, "etc/passwd")?.and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 3 && f[2].parse() == Ok(n)).then(|| f[0].to_string())
            })
        }),
        Err(_) if name.is_empty() => Some("root".to_string()),
        Err(_) => Some(name.to_string()),
    };
    let entries: Vec<(String, u32, Vec<String>)> = group
        .as_deref()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4).then(|| {
                Some((
                    f[0].to_string(),
                    f[2].parse().ok()?,
                    f[3].split(',')
                        .filter(|m| !m.is_empty())
                        .map(String::from)
                        .collect(),
                ))
            })?
        })
        .collect();
    let mut out: Vec<u32> = Vec::new();
    if let Some(name) = &name {
        for (_, g, members) in &entries {
            if members.iter().any(|m| m == name) && *g != gid && !out.contains(g) {
                out.push(*g);
            }
        }
    }
    for g in group_add {
        let id = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => entries
                .iter()
                .find(|(n, _, _)| n == g)
                .map(|(_, id, _)| *id)
                .ok_or_else(|| {
                    SpecError(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

fn lookup_uid_gid(passwd: Option<&str>, uid: u32) -> Option<u32> {
    passwd?.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[2].parse() == Ok(uid)).then(|| f[3].parse().ok())?
    })
}

/// Everything the spec needs besides the config objects.
pub struct SpecInput<'a> {
    pub id: &'a str,
    pub rootfs: &'a Path,
    pub container_dir: &'a Path,
    pub args: &'a [String],
    pub env: &'a [String],
    pub cwd: &'a str,
    /// uid and gid, from [`resolve_user`] (which reads the image's files: done beforehand,
    /// off the async threads).
    pub user: (u32, u32),
    /// Supplementary groups, from [`supplementary_groups`].
    pub additional_gids: &'a [u32],
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
    /// `--userns-remap` (and not `--userns host`): a user namespace with these mappings.
    pub userns: Option<&'a wharf_image::IdMap>,
    /// With `userns`: the user namespace to join (that of the container whose network
    /// namespace is joined) instead of a new one.
    pub userns_path: Option<&'a str>,
    /// Namespaces joined by path instead of made (`--ipc container:x`, `--pid container:x`):
    /// kind (`ipc`, `pid`) and `/proc/<pid>/ns/<kind>` of x.
    pub joined: &'a [(&'static str, String)],
}

/// `linux.resources` for a HostConfig: the device allow-list and the cgroup limits. Also what
/// `docker update` applies to a running container.
pub fn resources(h: &HostConfig) -> Result<LinuxResources, SpecError> {
    let rule =
        |allow: bool, typ: Option<LinuxDeviceType>, major: Option<i64>, minor: Option<i64>| {
            let mut r = LinuxDeviceCgroup::default();
            r.set_allow(allow);
            r.set_typ(typ);
            r.set_major(major);
            r.set_minor(minor);
            r.set_access(Some("rwm".into()));
            r
        };
    let mut devices = vec![rule(false, None, None, None)];
    if !h.privileged {
        // The character devices of Docker's default allow-list: null, zero, full, tty,
        // urandom, random, console, ptmx, the pty slaves, tun.
        let c = Some(LinuxDeviceType::C);
        for (major, minor) in [
            (1, Some(3)),
            (1, Some(5)),
            (1, Some(7)),
            (1, Some(8)),
            (1, Some(9)),
            (5, Some(0)),
            (5, Some(1)),
            (5, Some(2)),
            (136, None),
            (10, Some(200)),
        ] {
            devices.push(rule(true, c, Some(major), minor));
        }
        devices.extend(device_rules(h)?);
    } else {
        devices = vec![rule(true, None, None, None)];
    }
    let mut resources = LinuxResources::default();
    resources.set_devices(Some(devices));
    let mut memory = LinuxMemory::default();
    if h.memory > 0 {
        memory.set_limit(Some(h.memory));
        // Docker: swap defaults to twice the memory; -1 is unlimited.
        let swap = match h.memory_swap {
            0 => h.memory.saturating_mul(2),
            s => s,
        };
        memory.set_swap(Some(swap));
    } else if h.memory_swap != 0 && h.memory_swap != -1 {
        return Err(SpecError(
            "You should always set the Memory limit when using Memoryswap limit, see usage".into(),
        ));
    }
    if h.memory_reservation > 0 {
        memory.set_reservation(Some(h.memory_reservation));
    }
    if memory != LinuxMemory::default() {
        resources.set_memory(Some(memory));
    }
    let mut cpu = LinuxCpu::default();
    if h.cpu_shares > 0 {
        cpu.set_shares(Some(h.cpu_shares as u64));
    }
    if h.nano_cpus > 0 {
        if h.cpu_quota > 0 || h.cpu_period > 0 {
            return Err(SpecError(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
            ));
        }
        cpu.set_period(Some(100_000));
        // nano_cpus * 100_000 / 1e9, without the overflow of the product.
        cpu.set_quota(Some(h.nano_cpus / 10_000));
    }
    if h.cpu_quota > 0 {
        cpu.set_quota(Some(h.cpu_quota));
    }
    if h.cpu_period > 0 {
        cpu.set_period(Some(h.cpu_period as u64));
    }
    if let Some(c) = h.cpuset_cpus.as_deref().filter(|c| !c.is_empty()) {
        cpu.set_cpus(Some(c.to_string()));
    }
    if let Some(m) = h.cpuset_mems.as_deref().filter(|c| !c.is_empty()) {
        cpu.set_mems(Some(m.to_string()));
    }
    if cpu != LinuxCpu::default() {
        resources.set_cpu(Some(cpu));
    }
    if let Some(p) = h.pids_limit.filter(|p| *p != 0) {
        let mut pids = LinuxPids::default();
        pids.set_limit(if p < 0 { -1 } else { p });
        resources.set_pids(Some(pids));
    }
    if h.blkio_weight > 0 {
        let mut io = LinuxBlockIo::default();
        io.set_weight(Some(h.blkio_weight));
        resources.set_block_io(Some(io));
    }
    Ok(resources)
}

/// One entry of `mounts`.
fn mount(destination: &str, typ: &str, source: impl Into<PathBuf>, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(destination.into());
    m.set_typ(Some(typ.into()));
    m.set_source(Some(source.into()));
    m.set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    m
}

fn namespace(typ: LinuxNamespaceType, path: Option<&str>) -> LinuxNamespace {
    let mut n = LinuxNamespace::default();
    n.set_typ(typ);
    n.set_path(path.map(PathBuf::from));
    n
}

/// Capability names (`CAP_CHOWN`) as the typed set.
fn capability_set(caps: &[String]) -> Result<Capabilities, SpecError> {
    caps.iter()
        .map(|c| {
            c.trim_start_matches("CAP_")
                .parse::<Capability>()
                .map_err(|_| SpecError(format!("unknown capability {c:?}")))
        })
        .collect()
}

/// A `linux.seccomp` in the OCI JSON shape (what `seccomp::Profile::resolve` gives) as the
/// typed value.
fn typed_seccomp(v: Value) -> Result<LinuxSeccomp, SpecError> {
    serde_json::from_value(v).map_err(|e| SpecError(format!("seccomp profile: {e}")))
}

/// Builds the OCI `config.json`.
pub fn build(i: &SpecInput) -> Result<Spec, SpecError> {
    use LinuxNamespaceType as Ns;
    let caps = capabilities(i.host)?;
    let (uid, gid) = i.user;
    let h = i.host;
    let security = security_opts(h)?;
    check_sysctls(h)?;
    let mut namespaces = vec![namespace(Ns::Mount, None)];
    for (kind, name, mode) in [
        (Ns::Pid, "pid", &h.pid_mode),
        (Ns::Ipc, "ipc", &h.ipc_mode),
        (Ns::Uts, "uts", &h.uts_mode),
    ] {
        if let Some((_, p)) = i.joined.iter().find(|(k, _)| *k == name) {
            namespaces.push(namespace(kind, Some(p)));
        } else if mode != "host" {
            namespaces.push(namespace(kind, None));
        }
    }
    if private_cgroupns(&h.cgroupns_mode) {
        namespaces.push(namespace(Ns::Cgroup, None));
    }
    // None: the host's network namespace; Some(None): a new one; Some(path): that one.
    if let Some(p) = i.netns {
        namespaces.push(namespace(Ns::Network, p));
    }
    if i.userns.is_some() {
        namespaces.push(namespace(Ns::User, i.userns_path));
    }
    let shm = if i.host.shm_size > 0 {
        i.host.shm_size
    } else {
        64 << 20
    };
    let shm_size = format!("size={shm}");
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        // sysfs may be mounted only by the owner of the network namespace: one joined
        // (`--network container:`) of a container in the host's user namespace is not this
        // one's, so the host's /sys is bound read-only instead.
        if i.userns.is_some() && i.userns_path.is_none() && i.netns != Some(None) {
            mount(
                "/sys",
                "bind",
                "/sys",
                &["rbind", "nosuid", "noexec", "nodev", "ro"],
            )
        } else {
            mount(
                "/sys",
                "sysfs",
                "sysfs",
                &["nosuid", "noexec", "nodev", "ro"],
            )
        },
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["ro", "nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_size],
        ),
    ];
    if i.userns.is_some() && h.ipc_mode == "host" {
        // mqueue may be mounted only by the owner of the IPC namespace: a user-namespaced
        // container with `--ipc host` binds the host's (as dockerd's rootless mode does), or
        // has none when the host has none mounted.
        mounts.retain(|m| m.destination() != Path::new("/dev/mqueue"));
        if Path::new("/dev/mqueue").is_dir() {
            let o = ["rbind", "nosuid", "noexec", "nodev"];
            mounts.push(mount("/dev/mqueue", "bind", "/dev/mqueue", &o));
        }
    }
    for f in ["hostname", "hosts", "resolv.conf"] {
        let (dest, src) = (format!("/etc/{f}"), i.container_dir.join(f));
        mounts.push(mount(&dest, "bind", src, &["rbind", "rprivate"]));
    }
    for (path, opts) in i.host.tmpfs.iter().flatten() {
        let mut m = mount(path, "tmpfs", "tmpfs", &["nosuid", "nodev", "noexec"]);
        let extra = opts.split(',').filter(|s| !s.is_empty()).map(String::from);
        m.options_mut().get_or_insert_with(Vec::new).extend(extra);
        mounts.push(m);
    }
    if let Some(init) = i.init {
        mounts.push(mount(
            INIT_PATH,
            "bind",
            init,
            &["bind", "ro", "nosuid", "nodev"],
        ));
    }
    for m in i.mounts {
        if m.kind == "tmpfs" {
            let opts = ["nosuid", "nodev", "noexec", "rprivate"];
            let mut t = mount(&m.destination, "tmpfs", "tmpfs", &opts);
            let extra = m.tmpfs.iter().cloned();
            t.options_mut().get_or_insert_with(Vec::new).extend(extra);
            mounts.push(t);
            continue;
        }
        let propagation = if m.propagation.is_empty() {
            "rprivate"
        } else {
            &m.propagation
        };
        let rw = if m.rw { "rw" } else { "ro" };
        let src = PathBuf::from(&m.source);
        mounts.push(mount(
            &m.destination,
            "bind",
            src,
            &["rbind", rw, propagation],
        ));
    }
    let mut rlimits = Vec::new();
    for u in h.ulimits.iter().flatten() {
        let name = format!("RLIMIT_{}", u.name.to_ascii_uppercase());
        let typ: PosixRlimitType = serde_json::from_value(json!(name))
            .map_err(|_| SpecError(format!("invalid ulimit type: {}", u.name)))?;
        let r = PosixRlimitBuilder::default()
            .typ(typ)
            .soft(u.soft as u64)
            .hard(u.hard as u64)
            .build()
            .map_err(|e| SpecError(format!("ulimit {}: {e}", u.name)))?;
        rlimits.push(r);
    }
    let sysctl: HashMap<String, String> =
        h.sysctls.clone().unwrap_or_default().into_iter().collect();
    let mut linux = Linux::default();
    linux.set_namespaces(Some(namespaces));
    linux.set_devices(Some(devices(h)?));
    linux.set_resources(Some(resources(h)?));
    linux.set_cgroups_path(Some(i.cgroup_path.into()));
    linux.set_sysctl(Some(sysctl));
    if let Some(m) = i.userns {
        let maps = |ranges: &[wharf_image::IdRange]| -> Result<Vec<LinuxIdMapping>, SpecError> {
            ranges
                .iter()
                .map(|r| {
                    LinuxIdMappingBuilder::default()
                        .container_id(r.container)
                        .host_id(r.host)
                        .size(r.size)
                        .build()
                        .map_err(|e| SpecError(format!("id mapping: {e}")))
                })
                .collect()
        };
        linux.set_uid_mappings(Some(maps(&m.uids)?));
        linux.set_gid_mappings(Some(maps(&m.gids)?));
    }
    // Linux::default() has lists of its own: only the ones asked for are set.
    let (masked, readonly) = if !h.privileged && !security.unconfined_paths {
        // The client's own lists (the docker CLI sends empty ones for systempaths=unconfined)
        // replace Docker's defaults.
        let or_default = |p: &Option<Vec<String>>, d: &[&str]| {
            p.clone()
                .unwrap_or_else(|| d.iter().map(|s| s.to_string()).collect())
        };
        (
            Some(or_default(&h.masked_paths, MASKED)),
            Some(or_default(&h.readonly_paths, READONLY)),
        )
    } else {
        (None, None)
    };
    linux.set_masked_paths(masked);
    linux.set_readonly_paths(readonly);
    if let Some(profile) = security.seccomp_profile(h)? {
        linux.set_seccomp(Some(if security.seccomp.is_none() {
            default_resolved(&caps)?
        } else {
            typed_seccomp(profile.resolve(&seccomp::Target {
                caps: &caps,
                arch: seccomp::native_arch(),
                kernel: seccomp::kernel_version(),
            }))?
        }));
    }
    let mut user = User::default();
    user.set_uid(uid);
    user.set_gid(gid);
    if !i.additional_gids.is_empty() {
        user.set_additional_gids(Some(i.additional_gids.to_vec()));
    }
    let cap_set = capability_set(&caps)?;
    // Not LinuxCapabilities::default(), which holds a set of its own in every field.
    let mut capabilities = LinuxCapabilities::default();
    capabilities.set_bounding(Some(cap_set.clone()));
    capabilities.set_effective(Some(cap_set.clone()));
    capabilities.set_permitted(Some(cap_set));
    capabilities.set_inheritable(None);
    capabilities.set_ambient(None);
    // Process::default() has arguments, variables and an rlimit of its own: every field
    // it sets is set here.
    let mut process = Process::default();
    process.set_terminal(Some(i.tty));
    process.set_user(user);
    process.set_args(Some(i.args.to_vec()));
    process.set_env(Some(i.env.to_vec()));
    process.set_cwd(if i.cwd.is_empty() { "/" } else { i.cwd }.into());
    process.set_capabilities(Some(capabilities));
    process.set_no_new_privileges(Some(security.no_new_privs));
    process.set_rlimits(Some(rlimits));
    if h.oom_score_adj != 0 {
        process.set_oom_score_adj(Some(h.oom_score_adj as i32));
    }
    let mut root = Root::default();
    root.set_path(i.rootfs.to_path_buf());
    root.set_readonly(Some(h.readonly_rootfs));
    let mut spec = Spec::default();
    spec.set_version("1.0.2".into());
    spec.set_process(Some(process));
    spec.set_root(Some(root));
    spec.set_mounts(Some(mounts));
    spec.set_linux(Some(linux));
    spec.set_annotations(None);
    // With the host's UTS namespace the host's name stays (and may not be set).
    if h.uts_mode != "host" {
        spec.set_hostname(Some(i.hostname.to_string()));
        if !i.domainname.is_empty() {
            spec.set_domainname(Some(i.domainname.to_string()));
        }
    } else {
        spec.set_hostname(None);
    }
    Ok(spec)
}

/// The container's `--security-opt`s, parsed as dockerd parses them.
#[derive(Debug, Default)]
pub struct SecurityOpts {
    /// `no-new-privileges[=true]`.
    pub no_new_privs: bool,
    /// `seccomp=...`: `None` for the default profile.
    pub seccomp: Option<SeccompOpt>,
    /// `systempaths=unconfined`: no masked or read-only /proc and /sys paths.
    pub unconfined_paths: bool,
}

/// An explicit `seccomp=` option.
#[derive(Debug)]
pub enum SeccompOpt {
    /// `seccomp=unconfined`: no filter.
    Unconfined,
    /// `seccomp=<json>` (the docker CLI sends the file's contents).
    Custom(Arc<seccomp::Profile>),
}

impl SecurityOpts {
    /// The profile to apply: none for `--privileged` and `seccomp=unconfined` (as dockerd),
    /// else the given one or the built-in default.
    pub fn seccomp_profile(
        &self,
        h: &HostConfig,
    ) -> Result<Option<Arc<seccomp::Profile>>, SpecError> {
        if h.privileged {
            return Ok(None);
        }
        match &self.seccomp {
            Some(SeccompOpt::Unconfined) => Ok(None),
            Some(SeccompOpt::Custom(p)) => Ok(Some(p.clone())),
            None => Ok(Some(default_profile())),
        }
    }
}

/// The built-in profile, parsed once.
pub fn default_profile() -> Arc<seccomp::Profile> {
    static DEFAULT: OnceLock<Arc<seccomp::Profile>> = OnceLock::new();
    DEFAULT
        .get_or_init(|| {
            Arc::new(
                seccomp::Profile::parse(seccomp::DEFAULT_PROFILE)
                    .expect("resources/seccomp/default.json is checked by a test"),
            )
        })
        .clone()
}

/// The default profile resolved for a capability set, once per set (0.2 ms saved per start).
fn default_resolved(caps: &[String]) -> Result<LinuxSeccomp, SpecError> {
    use std::sync::Mutex;
    static RESOLVED: OnceLock<Mutex<HashMap<Vec<String>, LinuxSeccomp>>> = OnceLock::new();
    let mut key = caps.to_vec();
    key.sort();
    let mut map = RESOLVED
        .get_or_init(Default::default)
        .lock()
        .expect("seccomp cache lock");
    if let Some(s) = map.get(&key) {
        return Ok(s.clone());
    }
    let resolved = typed_seccomp(default_profile().resolve(&seccomp::Target {
        caps,
        arch: seccomp::native_arch(),
        kernel: seccomp::kernel_version(),
    }))?;
    map.insert(key, resolved.clone());
    Ok(resolved)
}

fn parse_bool(opt: &str, v: &str) -> Result<bool, SpecError> {
    match v {
        "true" | "1" | "t" | "T" | "TRUE" | "True" => Ok(true),
        "false" | "0" | "f" | "F" | "FALSE" | "False" => Ok(false),
        _ => Err(SpecError(format!(
            "invalid --security-opt {opt:?}: {v:?} is not a boolean (true or false)"
        ))),
    }
}

/// Parses `HostConfig.SecurityOpt` (`key=value`, or dockerd's older `key:value`). AppArmor
/// and SELinux options are refused by name, except those that ask for what wharf does anyway
/// (`apparmor=unconfined`, `label=disable`): wharf applies no LSM profile.
pub fn security_opts(h: &HostConfig) -> Result<SecurityOpts, SpecError> {
    let mut out = SecurityOpts::default();
    for opt in h.security_opt.iter().flatten() {
        if opt == "no-new-privileges" {
            out.no_new_privs = true;
            continue;
        }
        let (k, v) = match (opt.find('='), opt.find(':')) {
            (Some(e), _) => (&opt[..e], &opt[e + 1..]),
            (None, Some(c)) => (&opt[..c], &opt[c + 1..]),
            (None, None) => {
                return Err(SpecError(format!(
                    "invalid --security-opt {opt:?}: expected key=value (seccomp, apparmor, label, no-new-privileges, systempaths)"
                )))
            }
        };
        match k {
            "no-new-privileges" => out.no_new_privs = parse_bool(opt, v)?,
            "seccomp" => {
                out.seccomp = Some(match v {
                    "unconfined" => SeccompOpt::Unconfined,
                    "builtin" | "default" => continue,
                    json if json.trim_start().starts_with('{') => {
                        let p = seccomp::Profile::parse(json)
                            .map_err(|e| SpecError(e.to_string()))?;
                        SeccompOpt::Custom(Arc::new(p))
                    }
                    path => {
                        return Err(SpecError(format!(
                            "invalid --security-opt seccomp={path:?}: expected unconfined or the profile's JSON (the docker CLI reads the file; an API client must send its contents)"
                        )))
                    }
                })
            }
            "apparmor" if v == "unconfined" => {}
            "apparmor" => {
                return Err(SpecError(format!(
                    "--security-opt apparmor={v} is not supported: wharf applies no AppArmor profile (only apparmor=unconfined is accepted)"
                )))
            }
            "label" if v == "disable" => {}
            "label" => {
                return Err(SpecError(format!(
                    "--security-opt label={v} is not supported: wharf applies no SELinux labels (only label=disable is accepted)"
                )))
            }
            "systempaths" if v == "unconfined" => out.unconfined_paths = true,
            "systempaths" => {
                return Err(SpecError(format!(
                    "invalid --security-opt {opt:?}: systempaths takes only unconfined"
                )))
            }
            _ => {
                return Err(SpecError(format!(
                    "invalid --security-opt {opt:?}: unknown option {k:?} (seccomp, apparmor, label, no-new-privileges, systempaths)"
                )))
            }
        }
    }
    Ok(out)
}

/// The IPC-namespaced sysctls (runc's list) besides `fs.mqueue.*`.
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// `--sysctl`: only sysctls the kernel namespaces, and only when the container has its own
/// namespace for them (as runc and dockerd check): `net.*` with a private network namespace,
/// the IPC ones with a private IPC namespace, `kernel.domainname` with a private UTS
/// namespace. Anything else (`kernel.core_pattern`, `vm.*`, ...) would be written to the
/// host's /proc/sys by the runtime, as root.
pub fn check_sysctls(h: &HostConfig) -> Result<(), SpecError> {
    for key in h.sysctls.iter().flatten().map(|(k, _)| k) {
        let valid_name = !key.is_empty()
            && key.split('.').all(|c| {
                !c.is_empty()
                    && c.chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
            });
        if !valid_name {
            return Err(SpecError(format!(
                "invalid sysctl {key:?}: a sysctl is dot-separated names of letters, digits, '_' and '-' (like net.ipv4.ip_forward)"
            )));
        }
        let refuse = |why: &str| Err(SpecError(format!("sysctl {key:?} is not allowed: {why}")));
        if key.starts_with("net.") {
            if h.network_mode == "host" {
                return refuse(
                    "net.* sysctls need the container's own network namespace, not --network host",
                );
            }
            if h.network_mode.starts_with("container:") {
                return refuse("net.* sysctls cannot be set with --network container: (that namespace belongs to another container)");
            }
        } else if IPC_SYSCTLS.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
            if h.ipc_mode == "host" || h.ipc_mode.starts_with("container:") {
                return refuse("IPC sysctls need the container's own IPC namespace, not --ipc host or container:");
            }
        } else if key == "kernel.domainname" {
            if h.uts_mode == "host" {
                return refuse(
                    "kernel.domainname needs the container's own UTS namespace, not --uts host",
                );
            }
        } else {
            return refuse(
                "it is not namespaced, so setting it would change the host; only net.*, fs.mqueue.*, kernel.domainname and the IPC ones (kernel.msgmax, msgmnb, msgmni, sem, shmall, shmmax, shmmni, shm_rmid_forced) can be set",
            );
        }
    }
    Ok(())
}

/// What create checks before anything is written: capabilities, security options (a custom
/// seccomp profile is resolved and compiled for the container's capabilities) and sysctls.
pub fn validate(h: &HostConfig) -> Result<(), SpecError> {
    let caps = capabilities(h)?;
    let security = security_opts(h)?;
    check_sysctls(h)?;
    if let (Some(SeccompOpt::Custom(p)), false) = (&security.seccomp, h.privileged) {
        let resolved = p.resolve(&seccomp::Target {
            caps: &caps,
            arch: seccomp::native_arch(),
            kernel: seccomp::kernel_version(),
        });
        seccomp::check(&resolved).map_err(|e| SpecError(e.to_string()))?;
    }
    Ok(())
}

/// `--userns` against the daemon's `--userns-remap` (`remapped`): `host` (opting out) is the
/// only mode; with remapping, a container that would share the host's network or pid
/// namespace, or be privileged, must opt out (dockerd's limits: neither can be had from a
/// user namespace of its own).
pub fn check_userns(h: &HostConfig, remapped: bool) -> Result<(), SpecError> {
    match h.userns_mode.as_str() {
        "host" => return Ok(()),
        "" => {}
        m => {
            return Err(SpecError(format!(
                "invalid userns mode {m:?}: the only mode is \"host\" (--userns=host: not the daemon's --userns-remap)"
            )))
        }
    }
    if !remapped {
        return Ok(());
    }
    if h.privileged {
        return Err(SpecError(
            "privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode (--userns=host)".into(),
        ));
    }
    if h.network_mode == "host" {
        return Err(SpecError(
            "cannot share the host's network namespace when user namespaces are enabled (add --userns=host)".into(),
        ));
    }
    if h.pid_mode == "host" {
        return Err(SpecError(
            "cannot share the host PID namespace when user namespaces are enabled (add --userns=host)".into(),
        ));
    }
    Ok(())
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
fn devices(h: &HostConfig) -> Result<Vec<LinuxDevice>, SpecError> {
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
            LinuxDeviceType::C
        } else if meta.file_type().is_block_device() {
            LinuxDeviceType::B
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
        let mut dev = LinuxDevice::default();
        dev.set_path(path.into());
        dev.set_typ(kind);
        dev.set_major(nix::sys::stat::major(rdev) as i64);
        dev.set_minor(nix::sys::stat::minor(rdev) as i64);
        dev.set_file_mode(Some(meta.mode() & 0o7777));
        dev.set_uid(Some(meta.uid()));
        dev.set_gid(Some(meta.gid()));
        out.push(dev);
    }
    Ok(out)
}

/// The cgroup rules that let the container use its `--device`s.
fn device_rules(h: &HostConfig) -> Result<Vec<LinuxDeviceCgroup>, SpecError> {
    let mut rules = Vec::new();
    for (d, dev) in h.devices.iter().flatten().zip(devices(h)?) {
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
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(dev.typ()));
        r.set_major(Some(dev.major()));
        r.set_minor(Some(dev.minor()));
        r.set_access(Some(access.to_string()));
        rules.push(r);
    }
    Ok(rules)
}

/// The OCI `process` of an exec, derived from the container's spec.
pub fn exec_process(
    container_spec: &Spec,
    args: &[String],
    env: &[String],
    cwd: &str,
    user: Option<(u32, u32)>,
    tty: bool,
    privileged: bool,
) -> Process {
    let mut p = container_spec.process().clone().unwrap_or_default();
    p.set_args(Some(args.to_vec()));
    p.set_terminal(Some(tty));
    if !env.is_empty() {
        let mut merged: Vec<String> = p.env().clone().unwrap_or_default();
        for e in env {
            let key = e.split('=').next().unwrap_or_default();
            merged.retain(|m| m.split('=').next() != Some(key));
            merged.push(e.clone());
        }
        p.set_env(Some(merged));
    }
    if !cwd.is_empty() {
        p.set_cwd(cwd.into());
    }
    if let Some((u, g)) = user {
        let mut who = User::default();
        who.set_uid(u);
        who.set_gid(g);
        p.set_user(who);
    }
    if privileged {
        let all: Capabilities = host_caps()
            .iter()
            .filter_map(|c| c.trim_start_matches("CAP_").parse().ok())
            .collect();
        // Not LinuxCapabilities::default(), which holds a set of its own in every field.
        let mut caps = p.capabilities().clone().unwrap_or_default();
        caps.set_bounding(Some(all.clone()));
        caps.set_effective(Some(all.clone()));
        caps.set_permitted(Some(all));
        caps.set_inheritable(None);
        caps.set_ambient(None);
        p.set_capabilities(Some(caps));
    }
    p
}

/// `--tmpfs`/`--shm-size` style sizes ("64m").
pub fn size_of(s: &str) -> Option<i64> {
    wharf_api::units::ram_in_bytes(s).ok()
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
        let r = serde_json::to_value(resources(&h).unwrap()).unwrap();
        assert_eq!(r["memory"]["swap"], json!(i64::MAX));
        assert_eq!(r["cpu"]["quota"], json!(i64::MAX / 10_000));
        let h = HostConfig {
            nano_cpus: 1_500_000_000,
            ..Default::default()
        };
        let r = resources(&h).unwrap();
        assert_eq!(r.cpu().as_ref().and_then(|c| c.quota()), Some(150_000));
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
            user: (0, 0),
            hostname: "abc",
            domainname: "",
            additional_gids: &[],
            tty: false,
            host,
            netns: Some(None),
            cgroup_path: "/wharf/abc",
            mounts: &[],
            init: None,
            userns: None,
            userns_path: None,
            joined: &[],
        }
    }

    #[test]
    fn userns_remap_maps_ids_and_binds_sys_for_a_joined_netns() {
        let d = tempfile::tempdir().unwrap();
        let hc = HostConfig::default();
        let args = vec!["true".to_string()];
        let ids = wharf_image::IdMap::from_ranges(&[(100000, 65536)], &[(200000, 65536)]);
        let mut i = input(&hc, d.path(), &args);
        i.userns = Some(&ids);
        let s = serde_json::to_value(build(&i).unwrap()).unwrap();
        assert!(s["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&json!({"type": "user"})));
        assert_eq!(
            s["linux"]["uidMappings"],
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}])
        );
        assert_eq!(s["linux"]["gidMappings"][0]["hostID"], json!(200000));
        let sys = |s: &Value| {
            s["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["destination"] == "/sys")
                .unwrap()["type"]
                .clone()
        };
        assert_eq!(sys(&s), json!("sysfs"));
        i.netns = Some(Some("/proc/1/ns/net"));
        assert_eq!(
            sys(&serde_json::to_value(build(&i).unwrap()).unwrap()),
            json!("bind")
        );
        // Joining the user namespace that owns that network namespace: sysfs again.
        i.userns_path = Some("/proc/1/ns/user");
        let s = serde_json::to_value(build(&i).unwrap()).unwrap();
        assert_eq!(sys(&s), json!("sysfs"));
        assert!(s["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&json!({"type": "user", "path": "/proc/1/ns/user"})));
        // --ipc host: the host's mqueue bound (or none), never a new mqueue mount.
        let ipc_host = HostConfig {
            ipc_mode: "host".into(),
            ..Default::default()
        };
        let mut i = input(&ipc_host, d.path(), &args);
        i.userns = Some(&ids);
        let s = serde_json::to_value(build(&i).unwrap()).unwrap();
        let mq: Vec<&Value> = s["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["destination"] == "/dev/mqueue")
            .collect();
        assert!(mq.iter().all(|m| m["type"] == "bind"), "{mq:?}");
        // Without a mapping: no user namespace.
        let s = serde_json::to_value(build(&input(&hc, d.path(), &args)).unwrap()).unwrap();
        assert!(s["linux"].get("uidMappings").is_none());
    }

    #[test]
    fn userns_modes_are_checked() {
        let mut h = HostConfig::default();
        assert!(check_userns(&h, true).is_ok());
        h.userns_mode = "private".into();
        assert!(check_userns(&h, false)
            .unwrap_err()
            .0
            .contains("invalid userns mode"));
        h.userns_mode = String::new();
        h.privileged = true;
        assert!(check_userns(&h, false).is_ok());
        assert!(check_userns(&h, true).unwrap_err().0.contains("privileged"));
        h.userns_mode = "host".into();
        assert!(check_userns(&h, true).is_ok());
        let h = HostConfig {
            network_mode: "host".into(),
            ..Default::default()
        };
        assert!(check_userns(&h, true).is_err());
    }

    #[test]
    fn defaults_match_docker() {
        let d = tempfile::tempdir().unwrap();
        let hc = HostConfig::default();
        let args = vec!["true".to_string()];
        let s = serde_json::to_value(build(&input(&hc, d.path(), &args)).unwrap()).unwrap();
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
        let s = serde_json::to_value(build(&input(&hc, d.path(), &args)).unwrap()).unwrap();
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

    fn sysctls(pairs: &[(&str, &str)]) -> Option<std::collections::BTreeMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The attack: `--sysctl kernel.core_pattern=|/tmp/x` would be written by the runtime to
    /// the host's /proc/sys (core_pattern is not namespaced). Refused at create and at start.
    #[test]
    fn host_sysctls_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let args = vec!["true".to_string()];
        for key in [
            "kernel.core_pattern",
            "vm.overcommit_memory",
            "kernel.modprobe",
            "fs.file-max",
            "kernel.hostname",
        ] {
            let hc = HostConfig {
                sysctls: sysctls(&[(key, "|/tmp/pwn")]),
                ..Default::default()
            };
            let err = validate(&hc).unwrap_err().0;
            assert!(err.contains("not namespaced") && err.contains(key), "{err}");
            assert!(build(&input(&hc, d.path(), &args)).is_err());
        }
        for key in ["net/../kernel/core_pattern", "net..ipv4", "net.ipv4.*", ""] {
            let hc = HostConfig {
                sysctls: sysctls(&[(key, "1")]),
                ..Default::default()
            };
            assert!(
                validate(&hc).unwrap_err().0.contains("invalid sysctl"),
                "{key}"
            );
        }
    }

    #[test]
    fn namespaced_sysctls_need_their_namespace() {
        let ok = HostConfig {
            sysctls: sysctls(&[
                ("net.ipv4.ip_forward", "1"),
                ("kernel.shmmax", "1000000"),
                ("fs.mqueue.msg_max", "20"),
                ("kernel.domainname", "example"),
            ]),
            ..Default::default()
        };
        validate(&ok).unwrap();
        let d = tempfile::tempdir().unwrap();
        let args = vec!["true".to_string()];
        let s = serde_json::to_value(build(&input(&ok, d.path(), &args)).unwrap()).unwrap();
        assert_eq!(s["linux"]["sysctl"]["net.ipv4.ip_forward"], "1");
        for (key, field, mode) in [
            ("net.ipv4.ip_forward", "network", "host"),
            ("net.ipv4.ip_forward", "network", "container:abc"),
            ("kernel.shmmax", "ipc", "host"),
            ("fs.mqueue.msg_max", "ipc", "host"),
            ("kernel.domainname", "uts", "host"),
        ] {
            let mut hc = HostConfig {
                sysctls: sysctls(&[(key, "1")]),
                ..Default::default()
            };
            match field {
                "network" => hc.network_mode = mode.into(),
                "ipc" => hc.ipc_mode = mode.into(),
                _ => hc.uts_mode = mode.into(),
            }
            let err = validate(&hc).unwrap_err().0;
            assert!(err.contains("namespace"), "{key} {mode}: {err}");
        }
    }

    fn with_opts(opts: &[&str]) -> HostConfig {
        HostConfig {
            security_opt: Some(opts.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn seccomp_is_on_by_default_and_off_when_asked() {
        let d = tempfile::tempdir().unwrap();
        let args = vec!["true".to_string()];
        let s =
            serde_json::to_value(build(&input(&HostConfig::default(), d.path(), &args)).unwrap())
                .unwrap();
        assert_eq!(s["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        assert!(s["linux"]["seccomp"]["syscalls"].as_array().unwrap().len() > 10);
        for hc in [
            with_opts(&["seccomp=unconfined"]),
            with_opts(&["seccomp:unconfined"]),
            HostConfig {
                privileged: true,
                ..Default::default()
            },
        ] {
            let s = serde_json::to_value(build(&input(&hc, d.path(), &args)).unwrap()).unwrap();
            assert!(s["linux"]["seccomp"].is_null());
        }
        let custom = with_opts(&[
            r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
        ]);
        validate(&custom).unwrap();
        let s = serde_json::to_value(build(&input(&custom, d.path(), &args)).unwrap()).unwrap();
        assert_eq!(s["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
        assert_eq!(s["linux"]["seccomp"]["syscalls"][0]["errnoRet"], 13);
        let bad = with_opts(&[r#"seccomp={"defaultAction":"SCMP_ACT_MAYBE"}"#]);
        assert!(validate(&bad)
            .unwrap_err()
            .0
            .starts_with("invalid seccomp profile"));
        assert!(validate(&with_opts(&["seccomp=/etc/profile.json"]))
            .unwrap_err()
            .0
            .contains("profile's JSON"));
    }

    #[test]
    fn lsm_options_are_refused_by_name() {
        for (opt, word) in [
            ("apparmor=docker-default", "AppArmor"),
            ("label=type:svirt_apache_t", "SELinux"),
            ("label:level:s0:c100,c200", "SELinux"),
            ("bogus=1", "unknown option"),
            ("nonsense", "key=value"),
            ("no-new-privileges=maybe", "boolean"),
        ] {
            let err = validate(&with_opts(&[opt])).unwrap_err().0;
            assert!(err.contains(word), "{opt}: {err}");
        }
        let ok = security_opts(&with_opts(&[
            "apparmor=unconfined",
            "label=disable",
            "no-new-privileges",
            "systempaths=unconfined",
        ]))
        .unwrap();
        assert!(ok.no_new_privs && ok.unconfined_paths);
        let d = tempfile::tempdir().unwrap();
        let args = vec!["true".to_string()];
        let hc = with_opts(&["systempaths=unconfined"]);
        let s = serde_json::to_value(build(&input(&hc, d.path(), &args)).unwrap()).unwrap();
        assert!(s["linux"]["maskedPaths"].is_null());
    }

    /// The attack: an image whose /etc/passwd is a link to /dev/zero (or a FIFO, or a huge
    /// file, or a link out of the rootfs) made the daemon read forever or read the host's.
    #[test]
    fn supplementary_groups_come_from_membership_and_group_add() {
        let d = tempfile::tempdir().unwrap();
        let etc = d.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(
            etc.join("passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            etc.join("group"),
            "root:x:0:root\nwheel:x:10:root,app\naudio:x:29:app\napp:x:1000:app\nstaff:x:50:\n",
        )
        .unwrap();
        let root = d.path();
        assert_eq!(supplementary_groups(root, "", (0, 0), &[]).unwrap(), [10]);
        // By name or by uid; the primary group is not repeated.
        assert_eq!(
            supplementary_groups(root, "app", (1000, 1000), &[]).unwrap(),
            [10, 29]
        );
        assert_eq!(
            supplementary_groups(root, "1000", (1000, 1000), &[]).unwrap(),
            [10, 29]
        );
        let add = ["staff".to_string(), "4242".to_string(), "wheel".to_string()];
        assert_eq!(
            supplementary_groups(root, "app", (1000, 1000), &add).unwrap(),
            [10, 29, 50, 4242]
        );
        let e = supplementary_groups(root, "", (0, 0), &["ghosts".into()])
            .unwrap_err()
            .0;
        assert!(e.contains("unable to find group ghosts"), "{e}");
    }

    /// moby's `TestCopyToContainerCopyUIDGID` table (integration/container/copy_test.go),
    /// plus the lookups that fail.
    #[test]
    fn copy_owner_resolves_as_moby_does() {
        let d = tempfile::tempdir().unwrap();
        let etc = d.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(
            etc.join("passwd"),
            "root:x:0:0:root:/root:/bin/sh\ntestuser:x:2375:2376::/home/testuser:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(etc.join("group"), "root:x:0:\ntestgroup:x:2376:\n").unwrap();
        for (user, want) in [
            ("7777:", (7777, 0)),
            (":7777", (0, 7777)),
            ("2375", (2375, 2376)),
            ("7777", (7777, 0)),
            ("2375:2376", (2375, 2376)),
            ("testuser:testgroup", (2375, 2376)),
            ("testuser", (2375, 2376)),
            ("testuser:7777", (2375, 7777)),
            ("7777:testgroup", (7777, 2376)),
        ] {
            assert_eq!(resolve_copy_owner(d.path(), user).unwrap(), want, "{user}");
        }
        let e = resolve_copy_owner(d.path(), "ghost").unwrap_err().0;
        assert_eq!(
            e,
            "failed to look up user \"ghost\" in container: no matching entries in passwd file"
        );
        let e = resolve_copy_owner(d.path(), "testuser:ghosts")
            .unwrap_err()
            .0;
        assert_eq!(
            e,
            "failed to look up group \"ghosts\" in container: no matching entries in group file"
        );
        std::fs::remove_file(etc.join("passwd")).unwrap();
        assert_eq!(resolve_copy_owner(d.path(), "42").unwrap(), (42, 0));
        let e = resolve_copy_owner(d.path(), "testuser").unwrap_err().0;
        assert!(
            e.ends_with("open /etc/passwd: no such file or directory"),
            "{e}"
        );
    }

    #[test]
    fn hostile_passwd_files_are_refused_or_contained() {
        use std::os::unix::fs::symlink;
        let d = tempfile::tempdir().unwrap();
        let etc = d.path().join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        symlink("/dev/zero", etc.join("passwd")).unwrap();
        // Resolved inside the rootfs: its /dev/zero does not exist → no passwd file.
        assert!(resolve_user(d.path(), "1000").is_ok());
        let e = resolve_user(d.path(), "nobody").unwrap_err().0;
        assert!(e.contains("unable to find user nobody"), "{e}");
        // A /dev/zero inside the rootfs, as a layer could carry it.
        std::fs::create_dir_all(d.path().join("dev")).unwrap();
        nix::sys::stat::mknod(
            &d.path().join("dev/zero"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 5),
        )
        .unwrap();
        let e = resolve_user(d.path(), "nobody").unwrap_err().0;
        assert!(e.contains("character device"), "{e}");
        // A FIFO would block the reader.
        std::fs::remove_file(etc.join("passwd")).unwrap();
        nix::unistd::mkfifo(
            &etc.join("passwd"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        let e = resolve_user(d.path(), "nobody").unwrap_err().0;
        assert!(e.contains("FIFO"), "{e}");
        // Too big.
        std::fs::remove_file(etc.join("passwd")).unwrap();
        let f = std::fs::File::create(etc.join("passwd")).unwrap();
        f.set_len(ETC_FILE_MAX + 1).unwrap();
        let e = resolve_user(d.path(), "nobody").unwrap_err().0;
        assert!(e.contains("MiB"), "{e}");
        // An absolute link to the host's /etc/passwd reads the rootfs's own instead.
        std::fs::remove_file(etc.join("passwd")).unwrap();
        std::fs::create_dir_all(d.path().join("real")).unwrap();
        std::fs::write(
            d.path().join("real/passwd"),
            "daemon:x:4242:4343::/:/bin/sh\n",
        )
        .unwrap();
        symlink("/../../../../real/passwd", etc.join("passwd")).unwrap();
        assert_eq!(resolve_user(d.path(), "daemon").unwrap(), (4242, 4343));
        assert!(resolve_user(d.path(), "root").is_err());
        // A group file that is a directory.
        std::fs::create_dir_all(etc.join("group")).unwrap();
        let e = resolve_user(d.path(), "daemon:staff").unwrap_err().0;
        assert!(e.contains("directory"), "{e}");
        // Numbers alone need no file.
        assert_eq!(resolve_user(d.path(), "7:8").unwrap(), (7, 8));
    }
}
