//! What the default seccomp profile costs per container start: resolving it for a
//! container's capabilities (the engine, per start), and in the container's init, parsing the
//! `linux.seccomp` out of config.json and compiling it to BPF.
//!   cargo run --release -p wharf-engine --example seccomp_cost
use std::time::Instant;
use wharf_engine::{seccomp, spec};

fn main() {
    let caps: Vec<String> = spec::DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    let profile = spec::default_profile();
    let n = 500;
    let t = Instant::now();
    let mut resolved = serde_json::Value::Null;
    for _ in 0..n {
        resolved = profile.resolve(&seccomp::Target {
            caps: &caps,
            arch: seccomp::native_arch(),
            kernel: seccomp::kernel_version(),
        });
    }
    let resolve = t.elapsed() / n;
    let json = serde_json::to_vec(&resolved).unwrap();
    let t = Instant::now();
    let mut oci = None;
    for _ in 0..n {
        oci = Some(serde_json::from_slice::<oci_spec::runtime::LinuxSeccomp>(&json).unwrap());
    }
    let parse = t.elapsed() / n;
    let oci = oci.unwrap();
    let t = Instant::now();
    let mut len = 0;
    for _ in 0..n {
        len = wharf_runtime::seccomp::compile_filter(&oci)
            .unwrap()
            .program
            .len();
    }
    let compile = t.elapsed() / n;
    let dir = std::env::temp_dir().join(format!("wharf-seccomp-cost-{}", std::process::id()));
    wharf_runtime::seccomp::set_cache_dir(dir.clone());
    wharf_runtime::seccomp::compile_filter(&oci).unwrap();
    let t = Instant::now();
    for _ in 0..n {
        len = wharf_runtime::seccomp::compile_filter(&oci)
            .unwrap()
            .program
            .len();
    }
    let cached = t.elapsed() / n;
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "profile JSON {} bytes, {len} BPF instructions; per start: resolve {resolve:?}, parse {parse:?}, compile {compile:?}, from the cache {cached:?}",
        json.len()
    );
}
