//! What `spec` writes (a default bundle config, like `runc spec`) and what `features`
//! reports (runtime-spec features.md).

use oci_spec::runtime::Spec;

/// The default config, as `runc spec` writes it: a shell with a terminal in new pid,
/// network, ipc, uts and mount namespaces (no cgroup namespace), read-only rootfs, runc's
/// default mounts, masked paths and capabilities, and every device denied to the cgroup
/// (the runtime adds the default nodes' rules), no inheritable capabilities.
pub fn spec(rootless: bool) -> Spec {
    use oci_spec::runtime::{LinuxDeviceCgroup, LinuxNamespaceType};
    let mut s = if rootless {
        Spec::rootless(
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    } else {
        Spec::default()
    };
    s.set_hostname(Some("wharf".into()));
    if let Some(p) = s.process_mut() {
        p.set_terminal(Some(true));
        // No inheritable set (runc dropped it for CVE-2022-29162).
        let mut caps = p.capabilities().clone();
        if let Some(c) = caps.as_mut() {
            c.set_inheritable(None);
        }
        p.set_capabilities(caps);
    }
    if let Some(l) = s.linux_mut() {
        if let Some(ns) = l.namespaces_mut() {
            ns.retain(|n| n.typ() != LinuxNamespaceType::Cgroup);
        }
        if !rootless {
            let mut deny = LinuxDeviceCgroup::default();
            deny.set_allow(false);
            deny.set_access(Some("rwm".into()));
            let mut r = l.resources().clone().unwrap_or_default();
            r.set_devices(Some(vec![deny]));
            l.set_resources(Some(r));
        }
    }
    s
}

/// The features document.
pub fn features() -> serde_json::Value {
    let caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    let mut caps = caps;
    caps.sort();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::state::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "mand",
            "noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime",
            "nosuid", "private", "rbind", "relatime", "remount", "ro", "rprivate", "rshared",
            "rslave", "runbindable", "rw", "shared", "slave", "strictatime", "suid", "sync",
            "unbindable"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": [
                    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
                    "SCMP_ACT_TRAP"
                ],
                "operators": [
                    "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"
                ],
                "archs": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {
            "org.opencontainers.runtime-spec.features.runtime": "wharf-runtime",
            "io.github.wharf.runtime.version": env!("CARGO_PKG_VERSION")
        }
    })
}
