//! Who may reach the daemon's directories. The data root holds every image layer and
//! container layer (setuid binaries, device nodes) and the containers' configs (`-e` secrets),
//! the exec root the mounted rootfs and the shims' sockets: a local user who could traverse
//! them could run a layer's setuid-root binary or read another user's secrets
//! (CVE-2021-41091). So the data root is `0710` and the exec root `0700`, owned by root, and
//! every state file is written `0600`; existing installs are fixed when the daemon starts.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Mode of the data root (dockerd's: traversable by root's group only, not listable).
pub const DATA_ROOT_MODE: u32 = 0o710;
/// Mode of the exec root.
pub const EXEC_ROOT_MODE: u32 = 0o700;
/// Mode of every state file the daemon, the shims and the stores write.
pub const STATE_FILE_MODE: u32 = 0o600;

/// Creates `dir` if needed and makes it root-owned (when we are root) with `mode`, whatever
/// it was before.
pub fn secure_dir(dir: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)?;
    let meta = std::fs::metadata(dir)?;
    if nix::unistd::geteuid().is_root() && (meta.uid() != 0 || meta.gid() != 0) {
        std::os::unix::fs::chown(dir, Some(0), Some(0))?;
    }
    if meta.mode() & 0o7777 != mode {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// The data root and exec root with their modes.
pub fn secure_roots(data_root: &Path, exec_root: &Path) -> Result<(), String> {
    for (dir, mode) in [(data_root, DATA_ROOT_MODE), (exec_root, EXEC_ROOT_MODE)] {
        secure_dir(dir, mode).map_err(|e| {
            format!(
                "securing {} (mode {mode:o}, owner root): {e}",
                dir.display()
            )
        })?;
    }
    Ok(())
}

/// Files of an install from before this change that may carry secrets at `0644`: the
/// containers' records and bundles. Set to `0600`; missing ones are skipped.
pub fn fix_state_files(data_root: &Path, exec_root: &Path) {
    let files = ["config.v2.json", "hostconfig.json", "config.json"];
    for base in [data_root.join("containers"), exec_root.join("containers")] {
        let Ok(rd) = std::fs::read_dir(&base) else {
            continue;
        };
        for e in rd.flatten() {
            for f in files {
                let p = e.path().join(f);
                if let Ok(m) = std::fs::symlink_metadata(&p) {
                    if m.is_file() && m.mode() & 0o077 != 0 {
                        let _ = std::fs::set_permissions(
                            &p,
                            std::fs::Permissions::from_mode(STATE_FILE_MODE),
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_closed_and_old_installs_fixed() {
        let d = tempfile::tempdir().unwrap();
        let (data, exec) = (d.path().join("data"), d.path().join("exec"));
        // An existing install made with the umask's 0755 and a 0644 record.
        std::fs::create_dir_all(data.join("containers/abc")).unwrap();
        std::fs::create_dir_all(&exec).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        let rec = data.join("containers/abc/config.v2.json");
        std::fs::write(&rec, "{\"Env\":[\"SECRET=1\"]}").unwrap();
        std::fs::set_permissions(&rec, std::fs::Permissions::from_mode(0o644)).unwrap();
        secure_roots(&data, &exec).unwrap();
        fix_state_files(&data, &exec);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&data), 0o710);
        assert_eq!(mode(&exec), 0o700);
        assert_eq!(mode(&rec), 0o600);
        // New roots are made with the mode directly.
        let fresh = d.path().join("new/data");
        secure_dir(&fresh, DATA_ROOT_MODE).unwrap();
        assert_eq!(mode(&fresh), 0o710);
    }
}
