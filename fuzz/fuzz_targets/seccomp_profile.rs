//! Docker's seccomp profile format, as `--security-opt seccomp=<file>` sends it in a create
//! request (the engine's `seccomp::Profile`), resolved for a container and handed to the
//! runtime's compiler.
//!
//! Asserts: a profile that parses resolves, for any capability set, architecture and kernel,
//! to JSON that is a valid OCI `linux.seccomp` (it deserializes), and the compiler takes that
//! without panicking; a profile that does not parse is an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::LinuxSeccomp;
use wharf_engine::seccomp::{Profile, Target};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = Profile::parse(s) else {
        return;
    };
    let all_caps: Vec<String> = [
        "CAP_SYS_ADMIN",
        "CAP_SYS_PTRACE",
        "CAP_NET_ADMIN",
        "CAP_BPF",
    ]
    .iter()
    .map(|c| c.to_string())
    .collect();
    for caps in [&[][..], &all_caps[..]] {
        for arch in ["amd64", "arm64", "s390x", ""] {
            for kernel in [(0, 0), (4, 8), (6, 18)] {
                let v = p.resolve(&Target { caps, arch, kernel });
                let oci: LinuxSeccomp = serde_json::from_value(v.clone())
                    .unwrap_or_else(|e| panic!("resolved to an invalid OCI profile: {e}: {v}"));
                if arch == "amd64" {
                    let _ = wharf_runtime::seccomp::compile_filter(&oci);
                }
            }
        }
    }
});
