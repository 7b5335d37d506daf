//! Compiles src/program.rs alone (it needs nothing but std) into a statically linked
//! `$OUT_DIR/wharf-init`, which lib.rs embeds. `+crt-static` cannot be given to one crate of
//! a workspace build, and on the host target it would break the workspace's proc-macros: a
//! separate rustc call keeps it to this one binary, with plain `cargo build`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let src = dir.join("src/program.rs");
    println!("cargo:rerun-if-changed={}", src.display());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it")).join("wharf-init");
    let target = std::env::var("TARGET").expect("cargo sets it");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let mut c = Command::new(rustc);
    c.args([
        "--edition",
        "2021",
        "--crate-type",
        "bin",
        "--crate-name",
        "wharf_init",
    ])
    .args(["--target", &target])
    .args(["-C", "target-feature=+crt-static"])
    .args([
        "-C",
        "opt-level=s",
        "-C",
        "panic=abort",
        "-C",
        "strip=symbols",
    ])
    .args(["-C", "codegen-units=1"])
    .arg("-o")
    .arg(&out)
    .arg(&src);
    // The linker cargo would use for this target, when set through the environment.
    let var = format!(
        "CARGO_TARGET_{}_LINKER",
        target.to_uppercase().replace('-', "_")
    );
    println!("cargo:rerun-if-env-changed={var}");
    if let Some(l) = std::env::var_os(&var) {
        c.arg("-C").arg(format!("linker={}", l.to_string_lossy()));
    }
    let st = c
        .status()
        .unwrap_or_else(|e| panic!("running rustc for wharf-init: {e}"));
    assert!(
        st.success(),
        "building the static wharf-init failed ({st}): linking with +crt-static needs the C \
         library's static archives (Debian: libc6-dev)"
    );
}
