//! The init of `docker run --init`, as a statically linked binary embedded in this library
//! (build.rs compiles src/program.rs with `+crt-static`): wharfd writes it out with
//! [`install`] and bind-mounts it at `/sbin/docker-init`, so `--init` works in images without
//! libc, from any build of wharfd, with no separate build step.

use std::path::{Path, PathBuf};

/// The static wharf-init executable.
pub const BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/wharf-init"));

/// The program, compiled here too so that clippy and the tests see it.
#[cfg(any(test, clippy))]
#[allow(dead_code)]
#[path = "program.rs"]
mod program;

/// Failures of [`install`], with the path that failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("writing the init to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes [`BINARY`] to `dir/wharf-init` (mode 0755, atomically: temp file, fsync, rename),
/// unless that file already holds the same bytes; returns its path. Containers that have the
/// old file bind-mounted keep its inode.
pub fn install(dir: &Path) -> Result<PathBuf, InstallError> {
    let path = dir.join("wharf-init");
    if std::fs::read(&path).is_ok_and(|d| d == BINARY) {
        return Ok(path);
    }
    let err = |p: &Path| {
        let p = p.to_path_buf();
        move |source| InstallError::Write { path: p, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    wharf_fs::AtomicWrite::default()
        .mode(0o755)
        .write(&path, BINARY)
        .map_err(err(&path))?;
    Ok(path)
}

/// Whether `data` is an ELF executable without a program interpreter (PT_INTERP), that is
/// one that needs no dynamic loader.
pub fn is_static_elf(data: &[u8]) -> bool {
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(data[32..40].try_into().expect("8 bytes")) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        // PT_INTERP = 3.
        o + 4 <= data.len() && u32::from_le_bytes(data[o..o + 4].try_into().expect("4 bytes")) != 3
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_init_needs_no_dynamic_loader() {
        assert!(
            is_static_elf(BINARY),
            "the embedded wharf-init has a PT_INTERP: it would not run in images without libc"
        );
    }

    #[test]
    fn a_dynamic_executable_is_recognised() {
        // The test binary itself is linked dynamically.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(!is_static_elf(&me));
        assert!(!is_static_elf(b"#!/bin/sh\n"));
    }

    #[test]
    fn install_writes_once_and_atomically() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let d = tempfile::tempdir().unwrap();
        let p = install(&d.path().join("sub")).unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o755);
        assert_eq!(std::fs::read(&p).unwrap(), BINARY);
        // Same bytes: left alone (same inode).
        assert_eq!(
            std::fs::metadata(install(&d.path().join("sub")).unwrap())
                .unwrap()
                .ino(),
            m.ino()
        );
        // Other bytes: replaced.
        std::fs::write(&p, b"old").unwrap();
        install(&d.path().join("sub")).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), BINARY);
        let names: Vec<_> = std::fs::read_dir(d.path().join("sub"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("wharf-init")]);
    }
}
