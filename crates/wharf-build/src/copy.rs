//! COPY and ADD: which files a step takes (sources, wildcards, `--exclude`), where they land
//! (Docker's destination rules), the content digest that keys the step's cache entry, and
//! the tar that writes them into the step's layer.
//!
//! Sources are read from a host directory that is either the build context (extracted by the
//! engine, not shared with any container) or the root of an image mounted read-only for the
//! step (`COPY --from`); neither changes while a step reads it. Symlinks inside a copied
//! directory are copied as links; a source path itself is resolved inside its root (a link
//! never leads out of it).

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::backend::{FileKind, RootFs};
use crate::dockerignore::Matcher;

/// One file or directory a step copies, and its path in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// On the host (under the source root).
    pub host: PathBuf,
    /// In the image, absolute and clean.
    pub dest: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir {
        mode: u32,
    },
    File {
        mode: u32,
        size: u64,
    },
    Symlink {
        target: PathBuf,
    },
    /// A source given inline (a heredoc, a downloaded file).
    Data {
        mode: u32,
        data: Vec<u8>,
    },
}

/// One source as the Dockerfile names it, matched in its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// Path relative to the source root (clean, `.` for the root).
    pub rel: String,
    pub host: PathBuf,
    pub is_dir: bool,
}

/// Whether a source names files by pattern (Go's `filepath.Match` metacharacters).
pub fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Cleans a source path to be relative to its root; `..` may not climb out of it.
pub fn clean_source(src: &str) -> Result<String, String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(src).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str().unwrap_or_default()),
            Component::ParentDir if parts.pop().is_none() => {
                return Err(format!(
                    "forbidden path outside the build context: {src} ()"
                ));
            }
            _ => {}
        }
    }
    Ok(if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    })
}

/// Resolves `rel` under `root` following symlinks with `root` as `/` (nothing outside it is
/// ever reached). `None` when it does not exist.
pub fn resolve_in(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut parts: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = Path::new(rel)
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
        let m = std::fs::symlink_metadata(&candidate).ok()?;
        if m.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = std::fs::read_link(&candidate).ok()?;
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
        } else {
            parts.push(p);
        }
    }
    Some(parts.iter().fold(root.to_path_buf(), |a, b| a.join(b)))
}

/// Go's `filepath.Match` on whole paths: `*` and `?` stay within a component, `[...]`
/// classes (with `^`/`!` negation and ranges), `\` escapes.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob_at(&p, &n)
}

fn glob_at(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => {
            let rest = &p[1..];
            let mut i = 0;
            loop {
                if glob_at(rest, &n[i..]) {
                    return true;
                }
                if i >= n.len() || n[i] == '/' {
                    return false;
                }
                i += 1;
            }
        }
        Some('?') => !n.is_empty() && n[0] != '/' && glob_at(&p[1..], &n[1..]),
        Some('[') => {
            let Some(&c) = n.first() else { return false };
            if c == '/' {
                return false;
            }
            let mut i = 1;
            let negate = matches!(p.get(1), Some('^') | Some('!'));
            if negate {
                i += 1;
            }
            let mut matched = false;
            let mut first = true;
            while i < p.len() && (first || p[i] != ']') {
                first = false;
                let mut lo = p[i];
                if lo == '\\' && i + 1 < p.len() {
                    i += 1;
                    lo = p[i];
                }
                let mut hi = lo;
                if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
                    hi = p[i + 2];
                    if hi == '\\' && i + 3 < p.len() {
                        hi = p[i + 3];
                        i += 1;
                    }
                    i += 2;
                }
                if lo <= c && c <= hi {
                    matched = true;
                }
                i += 1;
            }
            if i >= p.len() {
                return false;
            }
            matched != negate && glob_at(&p[i + 1..], &n[1..])
        }
        Some('\\') if p.len() > 1 => !n.is_empty() && n[0] == p[1] && glob_at(&p[2..], &n[1..]),
        Some(&c) => !n.is_empty() && n[0] == c && glob_at(&p[1..], &n[1..]),
    }
}

/// The files a source names in `root`: itself, or every path matching it as a pattern.
/// Errors are Docker's (`file not found in build context or excluded by .dockerignore`).
pub fn match_source(root: &Path, src: &str, what: &str) -> Result<Vec<Matched>, String> {
    let rel = clean_source(src)?;
    if !has_wildcards(&rel) {
        let Some(host) = resolve_in(root, &rel) else {
            return Err(format!(
                "{what} failed: file not found in {}: stat {rel}: file does not exist",
                if what == "COPY --from" {
                    "the source image"
                } else {
                    "build context or excluded by .dockerignore"
                }
            ));
        };
        let is_dir = host.is_dir();
        return Ok(vec![Matched { rel, host, is_dir }]);
    }
    let mut out = Vec::new();
    walk_matching(root, root, "", &rel, &mut out);
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

fn walk_matching(root: &Path, dir: &Path, prefix: &str, pattern: &str, out: &mut Vec<Matched>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let depth = pattern.split('/').count();
    let here = if prefix.is_empty() {
        0
    } else {
        prefix.split('/').count()
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let path = e.path();
        if glob_match(pattern, &rel) {
            let host = resolve_in(root, &rel).unwrap_or(path.clone());
            let is_dir = host.is_dir();
            out.push(Matched { rel, host, is_dir });
            continue;
        }
        let is_real_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_real_dir && here + 1 < depth {
            walk_matching(root, &path, &rel, pattern, out);
        }
    }
}

/// Everything under a matched source (the source itself for a file), as entries whose `dest`
/// is relative to the source (`""` for the source itself); `--exclude` patterns applied to
/// paths relative to the source root.
pub fn walk(
    m: &Matched,
    exclude: &Matcher,
) -> Result<Vec<(String, PathBuf, std::fs::Metadata)>, String> {
    let meta = std::fs::symlink_metadata(&m.host).map_err(|e| format!("{}: {e}", m.rel))?;
    let mut out = vec![(String::new(), m.host.clone(), meta.clone())];
    if meta.is_dir() {
        walk_dir(&m.host, "", &m.rel, exclude, &mut out)?;
    }
    Ok(out)
}

fn walk_dir(
    dir: &Path,
    prefix: &str,
    src_rel: &str,
    exclude: &Matcher,
    out: &mut Vec<(String, PathBuf, std::fs::Metadata)>,
) -> Result<(), String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        let name = name.to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let root_rel = if src_rel == "." {
            rel.clone()
        } else {
            format!("{src_rel}/{rel}")
        };
        if !exclude.is_empty() && exclude.excludes(&root_rel) {
            continue;
        }
        let path = dir.join(&name);
        let meta = std::fs::symlink_metadata(&path).map_err(|e| format!("{rel}: {e}"))?;
        let is_dir = meta.is_dir();
        out.push((rel.clone(), path.clone(), meta));
        if is_dir {
            walk_dir(&path, &rel, src_rel, exclude, out)?;
        }
    }
    Ok(())
}

/// The digest of what a list of matched sources holds: names, kinds, modes and contents
/// (not times or owners: a `touch` or a fresh checkout keeps the cache), as `sha256:<hex>`.
pub fn digest(matched: &[Matched], exclude: &Matcher) -> Result<String, String> {
    let mut h = Sha256::new();
    for m in matched {
        h.update(m.rel.as_bytes());
        h.update([0]);
        for (rel, path, meta) in walk(m, exclude)? {
            h.update(rel.as_bytes());
            h.update([0]);
            h.update(meta.mode().to_le_bytes());
            let ft = meta.file_type();
            if ft.is_symlink() {
                h.update(b"l");
                let t = std::fs::read_link(&path).map_err(|e| format!("{rel}: {e}"))?;
                h.update(t.as_os_str().as_encoded_bytes());
            } else if ft.is_file() {
                h.update(b"f");
                h.update(meta.len().to_le_bytes());
                let mut f = std::fs::File::open(&path).map_err(|e| format!("{rel}: {e}"))?;
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = f.read(&mut buf).map_err(|e| format!("{rel}: {e}"))?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
            } else if ft.is_dir() {
                h.update(b"d");
            }
            h.update([0]);
        }
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// Joins a Dockerfile destination with the working directory (Docker: a relative
/// destination is relative to WORKDIR), keeping whether it names a directory (trailing `/`
/// or `.`).
pub fn destination(dest: &str, workdir: &str) -> (String, bool) {
    let names_dir = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    let joined = if dest.starts_with('/') {
        dest.to_string()
    } else {
        format!("{}/{dest}", if workdir.is_empty() { "/" } else { workdir })
    };
    (clean_abs(&joined), names_dir)
}

/// A clean absolute path (`/a/b`), `..` stopping at `/`.
pub fn clean_abs(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Ownership and mode a step gives what it copies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    /// `--chmod`: replaces the mode of every file and directory copied.
    pub mode: Option<u32>,
}

/// Plans the entries of one step: each matched source to its place under `dest`.
/// `dest_is_dir` is what the Dockerfile or the image says (a trailing `/`, several sources,
/// a directory already there).
pub fn plan(
    matched: &[Matched],
    dest: &str,
    dest_is_dir: bool,
    parents: bool,
    exclude: &Matcher,
) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for m in matched {
        let base = if m.is_dir {
            if parents && m.rel != "." {
                join_abs(dest, &m.rel)
            } else {
                dest.to_string()
            }
        } else if parents {
            join_abs(dest, &m.rel)
        } else if dest_is_dir {
            let name = Path::new(&m.rel)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            join_abs(dest, &name)
        } else {
            dest.to_string()
        };
        for (rel, host, meta) in walk(m, exclude)? {
            let dest = if rel.is_empty() {
                base.clone()
            } else {
                join_abs(&base, &rel)
            };
            let ft = meta.file_type();
            // The source itself, when it was named through a link, is what the link names.
            let (host, meta) = if rel.is_empty() && ft.is_symlink() {
                let m2 = std::fs::metadata(&host).map_err(|e| format!("{}: {e}", m.rel))?;
                (host, m2)
            } else {
                (host, meta)
            };
            let ft = meta.file_type();
            let kind = if ft.is_dir() {
                Kind::Dir {
                    mode: meta.permissions().mode() & 0o7777,
                }
            } else if ft.is_symlink() {
                Kind::Symlink {
                    target: std::fs::read_link(&host).map_err(|e| format!("{rel}: {e}"))?,
                }
            } else if ft.is_file() {
                Kind::File {
                    mode: meta.permissions().mode() & 0o7777,
                    size: meta.len(),
                }
            } else {
                // Sockets, FIFOs, devices in a context are skipped as Docker does.
                continue;
            };
            out.push(Entry { host, dest, kind });
        }
    }
    Ok(out)
}

fn join_abs(base: &str, rel: &str) -> String {
    clean_abs(&format!("{base}/{rel}"))
}

/// Writes `entries` as a tar (names relative to `/`), with the parent directories that
/// `root` lacks created as Docker does (0755, owned by the step's owner).
pub fn tar(
    entries: &[Entry],
    owner: Owner,
    root: &dyn RootFs,
    mtime_now: u64,
) -> Result<Vec<u8>, String> {
    let mut b = tar::Builder::new(Vec::new());
    b.mode(tar::HeaderMode::Complete);
    let mut made: BTreeSet<String> = BTreeSet::new();
    for e in entries {
        parents_of(&e.dest, &mut b, &mut made, owner, root, mtime_now)?;
        let name = e.dest.trim_start_matches('/');
        let mtime = std::fs::symlink_metadata(&e.host)
            .map(|m| m.mtime().max(0) as u64)
            .unwrap_or(mtime_now);
        match &e.kind {
            Kind::Dir { mode } => {
                made.insert(e.dest.clone());
                if name.is_empty() || root.stat(&e.dest) == Some(FileKind::Dir) {
                    continue;
                }
                let mut h = header(
                    tar::EntryType::Directory,
                    owner.mode.unwrap_or(*mode),
                    owner,
                    mtime,
                );
                b.append_data(&mut h, name, std::io::empty())
                    .map_err(|x| x.to_string())?;
            }
            Kind::File { mode, size } => {
                let f = std::fs::File::open(&e.host)
                    .map_err(|x| format!("{}: {x}", e.host.display()))?;
                let mut h = header(
                    tar::EntryType::Regular,
                    owner.mode.unwrap_or(*mode),
                    owner,
                    mtime,
                );
                h.set_size(*size);
                b.append_data(&mut h, name, f.take(*size))
                    .map_err(|x| x.to_string())?;
            }
            Kind::Data { mode, data } => {
                let mut h = header(
                    tar::EntryType::Regular,
                    owner.mode.unwrap_or(*mode),
                    owner,
                    mtime_now,
                );
                h.set_size(data.len() as u64);
                b.append_data(&mut h, name, &data[..])
                    .map_err(|x| x.to_string())?;
            }
            Kind::Symlink { target } => {
                let mut h = header(tar::EntryType::Symlink, 0o777, owner, mtime);
                b.append_link(&mut h, name, target)
                    .map_err(|x| x.to_string())?;
            }
        }
    }
    b.into_inner().map_err(|e| e.to_string())
}

/// The parent directories of `dest` that neither the root nor this tar has yet.
fn parents_of(
    dest: &str,
    b: &mut tar::Builder<Vec<u8>>,
    made: &mut BTreeSet<String>,
    owner: Owner,
    root: &dyn RootFs,
    mtime_now: u64,
) -> Result<(), String> {
    let mut acc = String::new();
    let comps: Vec<&str> = dest.split('/').filter(|c| !c.is_empty()).collect();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        acc.push('/');
        acc.push_str(c);
        if !made.insert(acc.clone()) || root.stat(&acc).is_some() {
            continue;
        }
        let mut h = header(tar::EntryType::Directory, 0o755, owner, mtime_now);
        b.append_data(&mut h, acc.trim_start_matches('/'), std::io::empty())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn header(kind: tar::EntryType, mode: u32, owner: Owner, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(owner.uid.into());
    h.set_gid(owner.gid.into());
    h.set_mtime(mtime);
    h.set_size(0);
    h
}

/// Parses `--chmod=` (octal, as Docker's classic builder and BuildKit without the
/// symbolic form).
pub fn parse_chmod(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("invalid chmod parameter: {s:?}: must be an octal mode such as 755"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_are_go_filepath_match() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "d/a.txt"));
        assert!(glob_match("d/*.txt", "d/a.txt"));
        assert!(glob_match("fil?", "file"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[^a-c]x", "bx"));
        assert!(glob_match("\\*", "*"));
        assert!(!glob_match("\\*", "a"));
    }

    #[test]
    fn sources_cannot_climb_out_of_their_root() {
        assert_eq!(clean_source("./a/../b").unwrap(), "b");
        assert_eq!(clean_source("/").unwrap(), ".");
        assert!(clean_source("../etc/passwd").is_err());
    }

    #[test]
    fn links_in_a_source_root_stay_inside_it() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("real")).unwrap();
        std::fs::write(d.path().join("real/f"), "x").unwrap();
        std::os::unix::fs::symlink("/real", d.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", d.path().join("up")).unwrap();
        assert_eq!(
            resolve_in(d.path(), "abs/f").unwrap(),
            d.path().join("real/f")
        );
        // `..` stops at the root: `up` is the root's own `etc`, which does not exist here.
        assert_eq!(resolve_in(d.path(), "up/passwd"), None);
    }

    #[test]
    fn destinations_follow_workdir_and_trailing_slashes() {
        assert_eq!(destination("app/", "/w"), ("/w/app".into(), true));
        assert_eq!(destination("/x", "/w"), ("/x".into(), false));
        assert_eq!(destination(".", "/w"), ("/w".into(), true));
        assert_eq!(destination("f", ""), ("/f".into(), false));
    }

    #[test]
    fn a_digest_changes_with_content_and_not_with_unrelated_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), "one").unwrap();
        std::fs::write(d.path().join("b"), "two").unwrap();
        let none = Matcher::default();
        let a = match_source(d.path(), "a", "COPY").unwrap();
        let before = digest(&a, &none).unwrap();
        std::fs::write(d.path().join("b"), "changed").unwrap();
        assert_eq!(digest(&a, &none).unwrap(), before);
        std::fs::write(d.path().join("a"), "ONE").unwrap();
        assert_ne!(digest(&a, &none).unwrap(), before);
        let all = match_source(d.path(), ".", "COPY").unwrap();
        let whole = digest(&all, &none).unwrap();
        let ex = Matcher::parse("b", "--exclude").unwrap();
        std::fs::write(d.path().join("b"), "again").unwrap();
        assert_ne!(digest(&all, &none).unwrap(), whole);
        assert_eq!(digest(&all, &ex).unwrap(), digest(&all, &ex).unwrap());
    }

    #[test]
    fn plans_put_files_where_docker_does() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("src/sub")).unwrap();
        std::fs::write(d.path().join("src/sub/f"), "x").unwrap();
        std::fs::write(d.path().join("top.txt"), "y").unwrap();
        let none = Matcher::default();
        let dir = match_source(d.path(), "src", "COPY").unwrap();
        let p = plan(&dir, "/app", true, false, &none).unwrap();
        let dests: Vec<&str> = p.iter().map(|e| e.dest.as_str()).collect();
        assert_eq!(dests, ["/app", "/app/sub", "/app/sub/f"]);
        let file = match_source(d.path(), "top.txt", "COPY").unwrap();
        assert_eq!(
            plan(&file, "/app", true, false, &none).unwrap()[0].dest,
            "/app/top.txt"
        );
        assert_eq!(
            plan(&file, "/renamed", false, false, &none).unwrap()[0].dest,
            "/renamed"
        );
        let g = match_source(d.path(), "src/*/f", "COPY").unwrap();
        assert_eq!(
            plan(&g, "/p", true, true, &none).unwrap()[0].dest,
            "/p/src/sub/f"
        );
    }
}
