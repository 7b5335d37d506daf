//! `docker cp`: paths resolved inside a container's rootfs (symlinks never lead out of it),
//! Docker's path-stat header, and tar in and out.

use base64::Engine as _;
use serde_json::json;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use wharf_api::ApiError;

/// Resolves `path` inside `root` as the container would see it: symlinks are followed with
/// `root` as `/`, and `..` never climbs above it. The last component is followed only when
/// `follow_last`.
pub fn resolve_in_root(root: &Path, path: &str, follow_last: bool) -> Result<PathBuf, ApiError> {
    let mut parts: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .rev()
        .collect();
    let mut hops = 0;
    while let Some(p) = pending.pop() {
        if p == ".." {
            parts.pop();
            continue;
        }
        let candidate = parts
            .iter()
            .fold(root.to_path_buf(), |a, b| a.join(b))
            .join(&p);
        let is_last = pending.is_empty();
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() && (!is_last || follow_last) => {
                hops += 1;
                if hops > 40 {
                    return Err(ApiError::bad_request(format!(
                        "too many levels of symbolic links in {path}"
                    )));
                }
                let target = std::fs::read_link(&candidate)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                if target.is_absolute() {
                    parts.clear();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(x) => pending.push(x.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => parts.push(p),
        }
    }
    Ok(parts.iter().fold(root.to_path_buf(), |a, b| a.join(b)))
}

/// Docker's `X-Docker-Container-Path-Stat` header value for `resolved`, or 404.
pub fn stat_header(resolved: &Path, requested: &str, container: &str) -> Result<String, ApiError> {
    let m = std::fs::symlink_metadata(resolved).map_err(|_| {
        ApiError::not_found(format!(
            "Could not find the file {requested} in container {container}"
        ))
    })?;
    // Go's os.FileMode: permission bits plus type bits.
    let mut mode = m.permissions().mode() & 0o7777;
    if m.is_dir() {
        mode |= 1 << 31;
    }
    if m.file_type().is_symlink() {
        mode |= 1 << 27;
    }
    let link = if m.file_type().is_symlink() {
        std::fs::read_link(resolved)
            .map(|l| l.display().to_string())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let name = resolved
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    let mtime = chrono::DateTime::from_timestamp(m.mtime(), m.mtime_nsec() as u32)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        .unwrap_or_default();
    let v =
        json!({"name": name, "size": m.len(), "mode": mode, "mtime": mtime, "linkTarget": link});
    Ok(base64::engine::general_purpose::STANDARD.encode(v.to_string()))
}

/// A tar of `resolved` whose entries are named from its base name, as `docker cp` expects.
pub fn pack(resolved: &Path, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let name = resolved
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    if std::fs::symlink_metadata(resolved)?.is_dir() {
        b.append_dir_all(&name, resolved)?;
    } else {
        b.append_path_with_name(resolved, &name)?;
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink("usr/bin", r.join("bin")).unwrap();
        std::os::unix::fs::symlink("/../../../etc", r.join("escape")).unwrap();
        std::os::unix::fs::symlink("../../..", r.join("usr/up")).unwrap();
        assert_eq!(
            resolve_in_root(r, "/bin/sh", true).unwrap(),
            r.join("usr/bin/sh")
        );
        assert_eq!(
            resolve_in_root(r, "/escape/passwd", true).unwrap(),
            r.join("etc/passwd")
        );
        assert_eq!(resolve_in_root(r, "/usr/up/x", true).unwrap(), r.join("x"));
        assert_eq!(resolve_in_root(r, "/../../x", true).unwrap(), r.join("x"));
        assert_eq!(resolve_in_root(r, "/bin", false).unwrap(), r.join("bin"));
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        assert!(resolve_in_root(r, "/loop/x", true).is_err());
    }
}
