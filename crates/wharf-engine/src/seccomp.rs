//! Seccomp profiles in Docker's JSON format (`--security-opt seccomp=<file>`, whose contents
//! the docker CLI sends in `HostConfig.SecurityOpt` as `seccomp=<json>`), resolved against a
//! container's capabilities, the host's architecture and kernel into the OCI `linux.seccomp`
//! that the runtime compiles.
//!
//! Semantics follow dockerd's: a rule with `includes` applies only when every listed
//! capability is in the bounding set, the host's architecture (Go's names: `amd64`, `arm64`)
//! is listed and the kernel is at least `minKernel`; a rule with `excludes` is dropped when
//! any listed capability is held, the architecture is listed or the kernel is at least
//! `minKernel`. `archMap` keeps the entry for the host's architecture and its
//! sub-architectures. The default profile is data: `resources/seccomp/default.json`.

use serde::Deserialize;
use serde_json::{json, Value};

/// wharf's default profile (same semantics as Docker's default).
pub const DEFAULT_PROFILE: &str = include_str!("../../../resources/seccomp/default.json");

/// A profile that cannot be used, as a user-facing message.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Not JSON of the expected shape.
    #[error("invalid seccomp profile: {0}")]
    Parse(#[from] serde_json::Error),
    /// A field combination or value that dockerd refuses too.
    #[error("invalid seccomp profile: {0}")]
    Invalid(String),
    /// The resolved profile does not compile.
    #[error("invalid seccomp profile: {0}")]
    Compile(#[from] wharf_runtime::seccomp::SeccompError),
}

/// Go's encoding/json reads `null` as the zero value; so do we.
fn null_is_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Docker's profile format (moby's `types.Seccomp`). Unknown fields are ignored, as dockerd
/// ignores them.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: String,
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub architectures: Vec<String>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub arch_map: Vec<ArchMap>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub syscalls: Vec<Syscall>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub flags: Vec<String>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub listener_path: String,
    #[serde(default, deserialize_with = "null_is_default")]
    pub listener_metadata: String,
}

/// One `archMap` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: String,
    #[serde(default, deserialize_with = "null_is_default")]
    pub sub_architectures: Vec<String>,
}

/// One `syscalls` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Syscall {
    #[serde(default, deserialize_with = "null_is_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_is_default")]
    pub names: Vec<String>,
    pub action: String,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub args: Vec<Arg>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub comment: String,
    #[serde(default, deserialize_with = "null_is_default")]
    pub includes: Filter,
    #[serde(default, deserialize_with = "null_is_default")]
    pub excludes: Filter,
}

/// `includes` / `excludes`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(default, deserialize_with = "null_is_default")]
    pub arches: Vec<String>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub caps: Vec<String>,
    #[serde(default)]
    pub min_kernel: Option<String>,
}

/// An argument condition.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: u32,
    pub value: u64,
    #[serde(default, deserialize_with = "null_is_default")]
    pub value_two: u64,
    pub op: String,
}

/// What a rule is matched against: the container's capabilities and the host.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The bounding set, `CAP_*` names.
    pub caps: &'a [String],
    /// Go's name of the architecture (`amd64`, `arm64`, ...).
    pub arch: &'a str,
    /// The kernel's (major, minor).
    pub kernel: (u32, u32),
}

/// Go's name for the architecture this binary runs on (what moby matches `arches` against).
pub fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// libseccomp's name for a Go architecture name (moby's `nativeToSeccomp`).
fn scmp_arch(go: &str) -> Option<&'static str> {
    Some(match go {
        "amd64" => "SCMP_ARCH_X86_64",
        "arm64" => "SCMP_ARCH_AARCH64",
        "386" => "SCMP_ARCH_X86",
        "arm" => "SCMP_ARCH_ARM",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        _ => return None,
    })
}

/// The running kernel's (major, minor), as uname(2) reports it.
pub fn kernel_version() -> (u32, u32) {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .and_then(|r| parse_kernel(r.trim()))
        .unwrap_or((0, 0))
}

fn parse_kernel(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

impl Profile {
    /// Parses Docker's format and checks what can be checked without a target.
    pub fn parse(json: &str) -> Result<Profile, ProfileError> {
        let p: Profile = serde_json::from_str(json)?;
        if !p.architectures.is_empty() && !p.arch_map.is_empty() {
            return Err(ProfileError::Invalid(
                "'architectures' and 'archMap' were both specified, use either one".into(),
            ));
        }
        // Every action, operator and architecture must be one the OCI spec has, so that a bad
        // profile is refused here (a 400 at create), not by the runtime at start.
        fn known<T: serde::de::DeserializeOwned>(what: &str, v: &str) -> Result<(), ProfileError> {
            serde_json::from_value::<T>(Value::String(v.to_string()))
                .map(drop)
                .map_err(|_| ProfileError::Invalid(format!("unknown {what} {v:?}")))
        }
        use oci_spec::runtime::{Arch, LinuxSeccompAction, LinuxSeccompOperator};
        known::<LinuxSeccompAction>("defaultAction", &p.default_action)?;
        for a in p.architectures.iter().chain(
            p.arch_map
                .iter()
                .flat_map(|m| std::iter::once(&m.architecture).chain(m.sub_architectures.iter())),
        ) {
            known::<Arch>("architecture", a)?;
        }
        for (i, s) in p.syscalls.iter().enumerate() {
            known::<LinuxSeccompAction>(&format!("syscalls[{i}].action"), &s.action)?;
            for a in &s.args {
                known::<LinuxSeccompOperator>(&format!("syscalls[{i}].args op"), &a.op)?;
            }
            if !s.name.is_empty() && !s.names.is_empty() {
                return Err(ProfileError::Invalid(format!(
                    "syscalls[{i}]: 'name' and 'names' were both specified, use either one"
                )));
            }
            if s.name.is_empty() && s.names.is_empty() {
                return Err(ProfileError::Invalid(format!(
                    "syscalls[{i}]: no syscall names (set 'names')"
                )));
            }
            for k in [&s.includes.min_kernel, &s.excludes.min_kernel]
                .into_iter()
                .flatten()
            {
                if parse_kernel(k).is_none() || !k.contains('.') {
                    return Err(ProfileError::Invalid(format!(
                        "syscalls[{i}]: minKernel {k:?} is not a kernel version (like \"4.8\")"
                    )));
                }
            }
        }
        Ok(p)
    }

    /// The OCI `linux.seccomp` for this target (dockerd's `setupSeccomp`).
    pub fn resolve(&self, t: &Target) -> Value {
        let mut architectures = self.architectures.clone();
        if let Some(native) = scmp_arch(t.arch) {
            for a in self.arch_map.iter().filter(|a| a.architecture == native) {
                architectures.push(a.architecture.clone());
                architectures.extend(a.sub_architectures.iter().cloned());
            }
        }
        let held = |c: &String| t.caps.iter().any(|h| h == c);
        let at_least = |k: &Option<String>| {
            k.as_deref()
                .and_then(parse_kernel)
                .is_some_and(|min| t.kernel >= min)
        };
        let mut syscalls = Vec::new();
        for s in &self.syscalls {
            let inc = &s.includes;
            if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == t.arch) {
                continue;
            }
            if !inc.caps.iter().all(held) {
                continue;
            }
            if inc.min_kernel.is_some() && !at_least(&inc.min_kernel) {
                continue;
            }
            let exc = &s.excludes;
            if exc.arches.iter().any(|a| a == t.arch)
                || exc.caps.iter().any(held)
                || at_least(&exc.min_kernel)
            {
                continue;
            }
            let names = if s.names.is_empty() {
                vec![s.name.clone()]
            } else {
                s.names.clone()
            };
            let mut rule = json!({"names": names, "action": s.action});
            if let Some(e) = s.errno_ret {
                rule["errnoRet"] = json!(e);
            }
            if !s.args.is_empty() {
                rule["args"] = s
                    .args
                    .iter()
                    .map(|a| json!({"index": a.index, "value": a.value, "valueTwo": a.value_two, "op": a.op}))
                    .collect();
            }
            syscalls.push(rule);
        }
        let mut out = json!({
            "defaultAction": self.default_action,
            "architectures": architectures,
            "syscalls": syscalls,
        });
        if let Some(e) = self.default_errno_ret {
            out["defaultErrnoRet"] = json!(e);
        }
        if !self.flags.is_empty() {
            out["flags"] = json!(self.flags);
        }
        if !self.listener_path.is_empty() {
            out["listenerPath"] = json!(self.listener_path);
        }
        if !self.listener_metadata.is_empty() {
            out["listenerMetadata"] = json!(self.listener_metadata);
        }
        out
    }
}

/// Checks that a resolved profile is one the runtime accepts: OCI's field values (actions,
/// operators, architectures, flags) and a program the kernel takes. Returns the compiled
/// filter's length in instructions.
pub fn check(resolved: &Value) -> Result<usize, ProfileError> {
    let oci: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(resolved.clone())?;
    if oci.listener_path().is_none()
        && oci
            .syscalls()
            .iter()
            .flatten()
            .any(|s| s.action() == oci_spec::runtime::LinuxSeccompAction::ScmpActNotify)
    {
        return Err(ProfileError::Invalid(
            "SCMP_ACT_NOTIFY needs a listenerPath".into(),
        ));
    }
    Ok(wharf_runtime::seccomp::compile_filter(&oci)?.program.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn rules_for<'a>(resolved: &'a Value, name: &str) -> Vec<&'a Value> {
        resolved["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == name))
            .collect()
    }

    fn default_target(c: &[String]) -> Target<'_> {
        Target {
            caps: c,
            arch: "amd64",
            kernel: (6, 1),
        }
    }

    #[test]
    fn default_profile_parses_and_denies_with_eperm() {
        let p = Profile::parse(DEFAULT_PROFILE).unwrap();
        assert_eq!(p.default_action, "SCMP_ACT_ERRNO");
        assert_eq!(p.default_errno_ret, Some(1));
        let c = caps(crate::spec::DEFAULT_CAPS);
        let r = p.resolve(&default_target(&c));
        assert_eq!(
            r["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        // What a default container must not do.
        for denied in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "keyctl",
            "add_key",
            "bpf",
            "reboot",
            "init_module",
            "kexec_load",
            "open_by_handle_at",
            "pivot_root",
            "swapon",
        ] {
            assert!(rules_for(&r, denied).is_empty(), "{denied} is allowed");
        }
        for allowed in [
            "read", "write", "execve", "clone", "chroot", "ptrace", "socket",
        ] {
            assert!(!rules_for(&r, allowed).is_empty(), "{allowed} is denied");
        }
        assert!(check(&r).unwrap() > 100);
    }

    #[test]
    fn capabilities_widen_the_allow_list_as_docker_does() {
        let p = Profile::parse(DEFAULT_PROFILE).unwrap();
        let base = caps(crate::spec::DEFAULT_CAPS);
        let r = p.resolve(&default_target(&base));
        // clone without CAP_SYS_ADMIN: only without namespace flags; clone3 → ENOSYS.
        let clone = rules_for(&r, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0]["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert_eq!(clone[0]["args"][0]["value"], 0x7E02_0000u64);
        let clone3 = rules_for(&r, "clone3");
        assert_eq!(clone3[0]["action"], "SCMP_ACT_ERRNO");
        assert_eq!(clone3[0]["errnoRet"], 38);

        let mut admin = base.clone();
        admin.push("CAP_SYS_ADMIN".into());
        let r = p.resolve(&default_target(&admin));
        for now in ["mount", "unshare", "setns", "umount2", "clone3"] {
            let rules = rules_for(&r, now);
            assert!(
                rules.iter().any(|x| x["action"] == "SCMP_ACT_ALLOW"),
                "{now} with CAP_SYS_ADMIN"
            );
        }
        assert!(rules_for(&r, "clone")
            .iter()
            .any(|x| x["args"].is_null() && x["action"] == "SCMP_ACT_ALLOW"));
        assert!(!rules_for(&r, "clone3")
            .iter()
            .any(|x| x["action"] == "SCMP_ACT_ERRNO"));

        let mut ptrace = base.clone();
        ptrace.push("CAP_SYS_PTRACE".into());
        assert!(!rules_for(&p.resolve(&default_target(&ptrace)), "kcmp").is_empty());
        // chroot needs CAP_SYS_CHROOT, which the default set has; dropping it removes it.
        let no_chroot: Vec<String> = base
            .iter()
            .filter(|c| *c != "CAP_SYS_CHROOT")
            .cloned()
            .collect();
        assert!(rules_for(&p.resolve(&default_target(&no_chroot)), "chroot").is_empty());
    }

    #[test]
    fn arches_and_kernels_select_rules() {
        let p = Profile::parse(DEFAULT_PROFILE).unwrap();
        let c = caps(crate::spec::DEFAULT_CAPS);
        let arm = p.resolve(&Target {
            caps: &c,
            arch: "arm64",
            kernel: (6, 1),
        });
        assert_eq!(
            arm["architectures"],
            json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
        );
        assert!(rules_for(&arm, "arch_prctl").is_empty());
        assert!(!rules_for(&arm, "arm_fadvise64_64").is_empty());
        let amd = p.resolve(&default_target(&c));
        assert!(!rules_for(&amd, "arch_prctl").is_empty());
        // ptrace needs 4.8 (seccomp re-checked after ptrace changes a syscall).
        let old = p.resolve(&Target {
            caps: &c,
            arch: "amd64",
            kernel: (4, 4),
        });
        assert!(rules_for(&old, "ptrace").is_empty());
        assert_eq!(parse_kernel("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(parse_kernel("4.8"), Some((4, 8)));
    }

    #[test]
    fn bad_profiles_are_refused_with_the_reason() {
        let e = |s: &str| {
            let c = caps(crate::spec::DEFAULT_CAPS);
            match Profile::parse(s) {
                Err(e) => e.to_string(),
                Ok(p) => check(&p.resolve(&default_target(&c)))
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
            }
        };
        assert!(e("{not json").starts_with("invalid seccomp profile:"));
        assert!(e(r#"{"syscalls": []}"#).contains("defaultAction"));
        assert!(e(r#"{"defaultAction": "SCMP_ACT_NOPE"}"#).contains("SCMP_ACT_NOPE"));
        // Found by fuzz/seccomp_profile: a bad action in a rule this host's arch leaves out
        // was accepted (and resolved to an invalid OCI profile for other arches).
        assert!(Profile::parse(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACTLLOW", "excludes": {"arches": ["amd64", "arm64"]}}]}"#
        )
        .unwrap_err()
        .to_string()
        .contains("SCMP_ACTLLOW"));
        assert!(Profile::parse(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_Z80"]}"#
        )
        .unwrap_err()
        .to_string()
        .contains("SCMP_ARCH_Z80"));
        assert!(e(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}]}"#
        )
        .contains("'name' and 'names'"));
        assert!(e(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#
        )
        .contains("argument index 9"));
        assert!(e(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}]}]}"#
        )
        .contains("SCMP_CMP_ALMOST"));
        assert!(e(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#
        )
        .contains("archMap"));
        assert_eq!(
            e(
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}"#
            ),
            ""
        );
    }

    /// The profile resolves to the same rules as the reference copy of Docker's default
    /// (shared/reference/seccomp/docker-default.json beside the repository), for the default
    /// capability set, with CAP_SYS_ADMIN, and with every capability, on both architectures.
    #[test]
    fn same_semantics_as_dockers_default_profile() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let Some(reference) = ["../shared", "../../shared", "shared"]
            .iter()
            .map(|d| root.join(d).join("reference/seccomp/docker-default.json"))
            .find(|p| p.exists())
        else {
            eprintln!("shared/reference/seccomp/docker-default.json not found beside the repository: comparison skipped");
            return;
        };
        let theirs = Profile::parse(&std::fs::read_to_string(reference).unwrap()).unwrap();
        let ours = Profile::parse(DEFAULT_PROFILE).unwrap();
        let base = caps(crate::spec::DEFAULT_CAPS);
        let mut admin = base.clone();
        admin.push("CAP_SYS_ADMIN".into());
        let all = caps(&[
            "CAP_SYS_ADMIN",
            "CAP_SYS_PTRACE",
            "CAP_SYS_BOOT",
            "CAP_SYS_MODULE",
            "CAP_SYS_TIME",
            "CAP_SYS_RAWIO",
            "CAP_SYS_NICE",
            "CAP_SYSLOG",
            "CAP_BPF",
            "CAP_PERFMON",
            "CAP_DAC_READ_SEARCH",
            "CAP_SYS_PACCT",
            "CAP_SYS_TTY_CONFIG",
        ]);
        // Order of names inside a rule is not semantics: compare sorted.
        let norm = |v: Value| -> Value {
            let mut v = v;
            for r in v["syscalls"].as_array_mut().unwrap() {
                let mut n: Vec<String> = serde_json::from_value(r["names"].clone()).unwrap();
                n.sort();
                r["names"] = json!(n);
            }
            v
        };
        for c in [&base, &admin, &all] {
            for arch in ["amd64", "arm64", "s390x"] {
                let t = Target {
                    caps: c,
                    arch,
                    kernel: (6, 1),
                };
                assert_eq!(norm(ours.resolve(&t)), norm(theirs.resolve(&t)), "{arch}");
            }
        }
    }
}
