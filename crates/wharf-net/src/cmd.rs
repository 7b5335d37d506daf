//! Running `iptables` with errors that say which command failed and why.

use crate::NetError;
use std::process::Command;

/// Runs a command; its stderr becomes the error message.
pub fn run(program: &str, args: &[&str]) -> Result<String, NetError> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| NetError::Command {
            cmd: program.to_string(),
            message: format!("cannot run it ({e}): install iptables"),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NetError::Command {
            cmd: format!("{program} {}", args.join(" ")),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Adds an iptables rule unless it is there already (`-C` first), so setup is idempotent.
pub fn iptables_ensure(table: &str, chain: &str, rule: &[&str]) -> Result<(), NetError> {
    let mut check = vec!["-w", "-t", table, "-C", chain];
    check.extend_from_slice(rule);
    if run("iptables", &check).is_ok() {
        return Ok(());
    }
    let mut add = vec!["-w", "-t", table, "-A", chain];
    add.extend_from_slice(rule);
    run("iptables", &add).map(drop)
}

/// Deletes an iptables rule if present.
pub fn iptables_delete(table: &str, chain: &str, rule: &[&str]) {
    let mut del = vec!["-w", "-t", table, "-D", chain];
    del.extend_from_slice(rule);
    while run("iptables", &del).is_ok() {}
}

/// Writes `data` to `path` atomically and durably, mode 0600 (see `wharf_fs`).
pub fn write_atomic(path: &std::path::Path, data: &[u8]) -> Result<(), NetError> {
    wharf_fs::write_atomic(path, data).map_err(|e| NetError::io(path, e))
}
