//! The container process's identity and limits: rlimits, capabilities, user and groups,
//! no_new_privs, the executable lookup and execve.

use crate::error::{Context, Result, RuntimeError};
use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{LinuxCapabilities, PosixRlimit, Process};
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The libc resource number of an OCI rlimit type name (e.g. `RLIMIT_NOFILE`).
pub fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    })
}

pub fn set_rlimits(rlimits: &[PosixRlimit]) -> Result<()> {
    for r in rlimits {
        let name = r.typ().to_string();
        let res = rlimit_resource(&name)
            .ok_or_else(|| RuntimeError::Config(format!("unknown rlimit type {name}")))?;
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit reads a valid, initialised rlimit struct we own.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            return Err(std::io::Error::last_os_error())
                .ctx(|| format!("setting {name} to {}:{}", r.soft(), r.hard()));
        }
    }
    Ok(())
}

fn to_caps(set: &Option<oci_spec::runtime::Capabilities>) -> CapsHashSet {
    let mut out = CapsHashSet::new();
    for c in set.iter().flatten() {
        match Capability::from_str(&format!("CAP_{c}")) {
            Ok(cap) => {
                out.insert(cap);
            }
            Err(_) => tracing::warn!("ignoring unknown capability CAP_{c}"),
        }
    }
    out
}

/// The capability sets of a process, restricted to those the running kernel knows.
pub struct CapSets {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

impl CapSets {
    pub fn new(c: Option<&LinuxCapabilities>) -> CapSets {
        let supported = caps::runtime::thread_all_supported();
        let f = |s: CapsHashSet| s.intersection(&supported).copied().collect();
        match c {
            None => CapSets {
                bounding: CapsHashSet::new(),
                effective: CapsHashSet::new(),
                permitted: CapsHashSet::new(),
                inheritable: CapsHashSet::new(),
                ambient: CapsHashSet::new(),
            },
            Some(c) => CapSets {
                bounding: f(to_caps(c.bounding())),
                effective: f(to_caps(c.effective())),
                permitted: f(to_caps(c.permitted())),
                inheritable: f(to_caps(c.inheritable())),
                ambient: f(to_caps(c.ambient())),
            },
        }
    }

    /// Drops from the bounding set every capability not in it.
    pub fn apply_bounding(&self) -> Result<()> {
        for cap in caps::runtime::thread_all_supported() {
            if !self.bounding.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap).map_err(|e| {
                    RuntimeError::Config(format!("dropping {cap} from the bounding set: {e}"))
                })?;
            }
        }
        Ok(())
    }

    /// Sets the effective, permitted, inheritable and ambient sets.
    pub fn apply(&self) -> Result<()> {
        let set = |which: CapSet, v: &CapsHashSet| {
            caps::set(None, which, v).map_err(|e| {
                RuntimeError::Config(format!("setting the {which:?} capabilities: {e}"))
            })
        };
        // Each capset must keep effective ⊆ permitted and inheritable ⊆ permitted ∪ bounding:
        // inheritable while permitted is still full, then effective, then permitted.
        set(CapSet::Inheritable, &self.inheritable)?;
        let effective: CapsHashSet = self
            .effective
            .intersection(&self.permitted)
            .copied()
            .collect();
        set(CapSet::Effective, &effective)?;
        set(CapSet::Permitted, &self.permitted)?;
        caps::clear(None, CapSet::Ambient)
            .map_err(|e| RuntimeError::Config(format!("clearing ambient capabilities: {e}")))?;
        // The kernel only allows ambient capabilities that are permitted and inheritable;
        // like runc, others are skipped with a warning rather than failing the container.
        for cap in &self.ambient {
            if !(self.permitted.contains(cap) && self.inheritable.contains(cap)) {
                tracing::debug!("ambient {cap} is not permitted and inheritable: skipped");
                continue;
            }
            if let Err(e) = caps::raise(None, CapSet::Ambient, *cap) {
                tracing::debug!("raising ambient {cap}: {e}");
            }
        }
        Ok(())
    }
}

/// Switches to the process's user: groups, gid, uid (keeping capabilities across the uid
/// change, so that [`CapSets::apply`] can set them after), and the umask.
pub fn set_user(p: &Process, setgroups_allowed: bool) -> Result<()> {
    let u = p.user();
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    if setgroups_allowed {
        let groups: Vec<nix::unistd::Gid> = u
            .additional_gids()
            .iter()
            .flatten()
            .map(|g| nix::unistd::Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&groups).ctx(|| "setting the additional groups".into())?;
    }
    let gid = nix::unistd::Gid::from_raw(u.gid());
    nix::unistd::setresgid(gid, gid, gid).ctx(|| format!("setting gid {}", u.gid()))?;
    let uid = nix::unistd::Uid::from_raw(u.uid());
    nix::unistd::setresuid(uid, uid, uid).ctx(|| format!("setting uid {}", u.uid()))?;
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    if let Some(mask) = u.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    Ok(())
}

pub fn set_no_new_privs() -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "setting no_new_privs".into());
    }
    Ok(())
}

pub fn set_oom_score_adj(v: i32) -> Result<()> {
    std::fs::write("/proc/self/oom_score_adj", v.to_string())
        .ctx(|| format!("setting oom_score_adj to {v}"))
}

/// The value of `key` in an `env` list of `K=V`.
pub fn env_get<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Finds the executable `arg0` as Go's exec.LookPath does (runc's messages): a name with a
/// slash is checked as is, else each directory of `PATH` is tried.
pub fn look_path(arg0: &str, env: &[String]) -> Result<PathBuf> {
    let check = |p: &Path| -> std::result::Result<(), String> {
        let md =
            std::fs::metadata(p).map_err(|e| format!("stat {}: {}", p.display(), io_msg(&e)))?;
        if md.is_dir() || md.permissions().mode() & 0o111 == 0 {
            return Err("permission denied".into());
        }
        Ok(())
    };
    if arg0.contains('/') {
        return match check(Path::new(arg0)) {
            Ok(()) => Ok(PathBuf::from(arg0)),
            Err(m) => Err(RuntimeError::Init(format!("exec: {arg0:?}: {m}"))),
        };
    }
    let path = env_get(env, "PATH").unwrap_or(DEFAULT_PATH);
    let mut denied = false;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(arg0);
        match check(&cand) {
            Ok(()) => return Ok(cand),
            Err(m) if m == "permission denied" => denied = true,
            Err(_) => {}
        }
    }
    Err(RuntimeError::Init(if denied {
        format!("exec: {arg0:?}: permission denied")
    } else {
        format!("exec: {arg0:?}: executable file not found in $PATH")
    }))
}

fn io_msg(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::Error::from_raw(n).desc().to_lowercase(),
        None => e.to_string(),
    }
}

/// Replaces this process with `path`, `args`, `env`. Returns only on failure.
pub fn exec(path: &Path, args: &[String], env: &[String]) -> RuntimeError {
    let c = |s: &str| CString::new(s.as_bytes()).unwrap_or_default();
    let cpath = CString::new(path.as_os_str().as_encoded_bytes()).unwrap_or_default();
    let cargs: Vec<CString> = args.iter().map(|a| c(a)).collect();
    let cenv: Vec<CString> = env.iter().map(|a| c(a)).collect();
    match nix::unistd::execve(&cpath, &cargs, &cenv) {
        Err(e) => RuntimeError::Init(format!(
            "exec {:?}: {}",
            path.display().to_string(),
            e.desc().to_lowercase()
        )),
        Ok(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_path_messages_match_runc() {
        let env = vec!["PATH=/nonexistent:/bin".to_string()];
        assert_eq!(look_path("sh", &env).unwrap(), PathBuf::from("/bin/sh"));
        let e = look_path("no-such-cmd-xyz", &env).unwrap_err().to_string();
        assert_eq!(
            e,
            "exec: \"no-such-cmd-xyz\": executable file not found in $PATH"
        );
        let e = look_path("/no/such", &env).unwrap_err().to_string();
        assert_eq!(
            e,
            "exec: \"/no/such\": stat /no/such: no such file or directory"
        );
        let d = tempfile::tempdir().unwrap();
        let plain = d.path().join("plain");
        std::fs::write(&plain, "data").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = look_path(plain.to_str().unwrap(), &env)
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("permission denied"), "{e}");
    }

    #[test]
    fn rlimit_names() {
        assert_eq!(rlimit_resource("RLIMIT_NOFILE"), Some(libc::RLIMIT_NOFILE));
        assert_eq!(rlimit_resource("RLIMIT_BOGUS"), None);
        let r = oci_spec::runtime::PosixRlimitBuilder::default()
            .typ(oci_spec::runtime::PosixRlimitType::RlimitNofile)
            .soft(1u64)
            .hard(1u64)
            .build()
            .unwrap();
        assert_eq!(r.typ().to_string(), "RLIMIT_NOFILE");
    }

    #[test]
    fn oci_capability_names_map_to_caps() {
        let mut set = oci_spec::runtime::Capabilities::new();
        set.insert(oci_spec::runtime::Capability::NetBindService);
        set.insert(oci_spec::runtime::Capability::SysAdmin);
        let c = to_caps(&Some(set));
        assert!(c.contains(&Capability::CAP_NET_BIND_SERVICE));
        assert!(c.contains(&Capability::CAP_SYS_ADMIN));
        assert_eq!(c.len(), 2);
    }
}
