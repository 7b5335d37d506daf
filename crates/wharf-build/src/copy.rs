//! COPY and ADD: which files a step takes (sources, wildcards, `--exclude`), where they land
//! (Docker's destination rules), the content digest that keys the step's cache entry, and
//! the tar that writes them into the step's layer.
//!
//! Sources are read from a [`Tree`]: the build context (the tar it came in, indexed) or the
//! root of an image mounted read-only for the step (`COPY --from`); neither changes while a
//! step reads it. Symlinks inside a copied directory are copied as links; a source path itself
//! is resolved inside its root (a link never leads out of it).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::backend::{FileKind, RootFs};
use crate::dockerignore::Matcher;
use crate::tree::{self, Meta, NodeKind, Tree};

/// Where a copied file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSrc {
    /// A path of the step's source tree.
    Tree(String),
    /// A file on the host (a download).
    Host(PathBuf),
}

/// One file or directory a step copies, and its path in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// In the image, absolute and clean.
    pub dest: String,
    pub kind: Kind,
    /// Unix seconds (`None`: the time of the step).
    pub mtime: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir {
        mode: u32,
    },
    File {
        mode: u32,
        size: u64,
        src: FileSrc,
    },
    Symlink {
        target: PathBuf,
    },
    /// A source given inline (a heredoc).
    Data {
        mode: u32,
        data: Vec<u8>,
    },
}

/// One source as the Dockerfile names it, matched in its tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// Path as named, relative to the tree's root (clean, `.` for the root).
    pub rel: String,
    /// Where it is in the tree once symlinks are followed.
    pub resolved: String,
    pub is_dir: bool,
    /// `--parents`: the leading part of `rel` not kept under the destination (the source's
    /// path up to a `/./` pivot, as rsync's `--relative`); empty: all of it is kept.
    pub pivot: String,
}

/// The pivot of a source (`x/./y/*.txt`: `x`), cleaned; empty when it has none.
fn pivot_of(src: &str) -> Result<String, String> {
    let s = src.strip_prefix("./").unwrap_or(src);
    match s.find("/./") {
        Some(i) => {
            let p = clean_source(&s[..i])?;
            Ok(if p == "." { String::new() } else { p })
        }
        None => Ok(String::new()),
    }
}

impl Matched {
    /// The part of the source's path `--parents` keeps under the destination.
    pub fn kept(&self) -> &str {
        if self.pivot.is_empty() {
            return &self.rel;
        }
        match self.rel.strip_prefix(&self.pivot) {
            Some("") => ".",
            Some(rest) => rest.strip_prefix('/').unwrap_or(&self.rel),
            None => &self.rel,
        }
    }
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

/// The files a source names in `tree`: itself, or every path matching it as a pattern.
/// Errors are Docker's (`file not found in build context or excluded by .dockerignore`).
pub fn match_source(tree: &dyn Tree, src: &str, what: &str) -> Result<Vec<Matched>, String> {
    let rel = clean_source(src)?;
    let pivot = pivot_of(src)?;
    if !has_wildcards(&rel) {
        let Some(resolved) = tree::resolve(tree, &rel) else {
            return Err(format!(
                "{what} failed: file not found in {}: stat {rel}: file does not exist",
                if what == "COPY --from" {
                    "the source image"
                } else {
                    "build context or excluded by .dockerignore"
                }
            ));
        };
        let is_dir = tree
            .lstat(&resolved)
            .is_some_and(|m| m.kind == NodeKind::Dir);
        return Ok(vec![Matched {
            rel,
            resolved,
            is_dir,
            pivot,
        }]);
    }
    let mut out = Vec::new();
    walk_matching(tree, ".", &rel, &mut out);
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    for m in &mut out {
        m.pivot = pivot.clone();
    }
    Ok(out)
}

fn walk_matching(tree: &dyn Tree, dir: &str, pattern: &str, out: &mut Vec<Matched>) {
    let depth = pattern.split('/').count();
    let here = if dir == "." {
        0
    } else {
        dir.split('/').count()
    };
    for name in tree.list(dir) {
        let rel = tree::join(dir, &name);
        if glob_match(pattern, &rel) {
            let resolved = tree::resolve(tree, &rel).unwrap_or(rel.clone());
            let is_dir = tree
                .lstat(&resolved)
                .is_some_and(|m| m.kind == NodeKind::Dir);
            out.push(Matched {
                rel,
                resolved,
                is_dir,
                pivot: String::new(),
            });
            continue;
        }
        let is_real_dir = tree.lstat(&rel).is_some_and(|m| m.kind == NodeKind::Dir);
        if is_real_dir && here + 1 < depth {
            walk_matching(tree, &rel, pattern, out);
        }
    }
}

/// Everything under a matched source (the source itself for a file), as (path relative to
/// the source (`""` for itself), path in the tree, metadata). `--exclude` patterns apply as
/// BuildKit's: to what a directory holds, by its path relative to that directory
/// (`COPY --exclude=setup root/ /` leaves `root/setup` out); to a file source by its path
/// in the tree (`COPY --exclude=*.txt hom* /d/` leaves `home.txt` out).
pub fn walk(
    tree: &dyn Tree,
    m: &Matched,
    exclude: &Matcher,
) -> Result<Vec<(String, String, Meta)>, String> {
    let meta = tree
        .lstat(&m.resolved)
        .ok_or_else(|| format!("{}: file does not exist", m.rel))?;
    let is_dir = meta.kind == NodeKind::Dir;
    if !is_dir && !exclude.is_empty() && exclude.excludes(&m.rel) {
        return Ok(Vec::new());
    }
    let mut out = vec![(String::new(), m.resolved.clone(), meta)];
    if is_dir {
        walk_dir(tree, &m.resolved, "", exclude, &mut out);
    }
    Ok(out)
}

fn walk_dir(
    tree: &dyn Tree,
    dir: &str,
    prefix: &str,
    exclude: &Matcher,
    out: &mut Vec<(String, String, Meta)>,
) {
    for name in tree.list(dir) {
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        if !exclude.is_empty() && exclude.excludes(&rel) {
            continue;
        }
        let path = tree::join(dir, &name);
        let Some(meta) = tree.lstat(&path) else {
            continue;
        };
        let is_dir = meta.kind == NodeKind::Dir;
        out.push((rel.clone(), path.clone(), meta));
        if is_dir {
            walk_dir(tree, &path, &rel, exclude, out);
        }
    }
}

/// The digest of what a list of matched sources holds: names, kinds, modes and contents
/// (not times or owners: a `touch` or a fresh checkout keeps the cache), as `sha256:<hex>`.
pub fn digest(tree: &dyn Tree, matched: &[Matched], exclude: &Matcher) -> Result<String, String> {
    let mut h = Sha256::new();
    for m in matched {
        h.update(m.rel.as_bytes());
        h.update([0]);
        for (rel, path, meta) in walk(tree, m, exclude)? {
            h.update(rel.as_bytes());
            h.update([0]);
            h.update(meta.mode.to_le_bytes());
            match meta.kind {
                NodeKind::Symlink => {
                    h.update(b"l");
                    let t = tree.read_link(&path).unwrap_or_default();
                    h.update(t.as_os_str().as_encoded_bytes());
                }
                NodeKind::File => {
                    h.update(b"f");
                    h.update(meta.size.to_le_bytes());
                    h.update(
                        tree.content_digest(&path)
                            .map_err(|e| format!("{rel}: {e}"))?,
                    );
                }
                NodeKind::Dir => h.update(b"d"),
                NodeKind::Other => h.update(b"o"),
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
    tree: &dyn Tree,
    matched: &[Matched],
    dest: &str,
    dest_is_dir: bool,
    parents: bool,
    exclude: &Matcher,
) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for m in matched {
        let base = if m.is_dir {
            if parents && m.kept() != "." {
                join_abs(dest, m.kept())
            } else {
                dest.to_string()
            }
        } else if parents {
            join_abs(dest, m.kept())
        } else if dest_is_dir {
            let name = Path::new(&m.rel)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            join_abs(dest, &name)
        } else {
            dest.to_string()
        };
        for (rel, path, meta) in walk(tree, m, exclude)? {
            let dest = if rel.is_empty() {
                base.clone()
            } else {
                join_abs(&base, &rel)
            };
            let kind = match meta.kind {
                NodeKind::Dir => Kind::Dir { mode: meta.mode },
                NodeKind::Symlink => Kind::Symlink {
                    target: tree.read_link(&path).unwrap_or_default(),
                },
                NodeKind::File => Kind::File {
                    mode: meta.mode,
                    size: meta.size,
                    src: FileSrc::Tree(path.clone()),
                },
                // Sockets, FIFOs, devices in a context are skipped as Docker does.
                NodeKind::Other => continue,
            };
            out.push(Entry {
                dest,
                kind,
                mtime: Some(meta.mtime),
            });
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
    tree: Option<&dyn Tree>,
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
        let mtime = e.mtime.unwrap_or(mtime_now);
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
            Kind::File { mode, size, src } => {
                let r: Box<dyn Read + '_> = match src {
                    FileSrc::Tree(p) => tree
                        .ok_or("no source tree for a file")?
                        .open(p)
                        .map_err(|x| format!("{p}: {x}"))?,
                    FileSrc::Host(p) => Box::new(
                        std::fs::File::open(p).map_err(|x| format!("{}: {x}", p.display()))?,
                    ),
                };
                let mut h = header(
                    tar::EntryType::Regular,
                    owner.mode.unwrap_or(*mode),
                    owner,
                    mtime,
                );
                h.set_size(*size);
                b.append_data(&mut h, name, r.take(*size))
                    .map_err(|x| x.to_string())?;
            }
            Kind::Data { mode, data } => {
                let mut h = header(
                    tar::EntryType::Regular,
                    owner.mode.unwrap_or(*mode),
                    owner,
                    mtime,
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
        let t = tree::HostTree {
            root: d.path().to_path_buf(),
        };
        assert_eq!(tree::resolve(&t, "abs/f").as_deref(), Some("real/f"));
        // `..` stops at the root: `up` is the root's own `etc`, which does not exist here.
        assert_eq!(tree::resolve(&t, "up/passwd"), None);
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
        let t = tree::HostTree {
            root: d.path().to_path_buf(),
        };
        let a = match_source(&t, "a", "COPY").unwrap();
        let before = digest(&t, &a, &none).unwrap();
        std::fs::write(d.path().join("b"), "changed").unwrap();
        assert_eq!(digest(&t, &a, &none).unwrap(), before);
        std::fs::write(d.path().join("a"), "ONE").unwrap();
        assert_ne!(digest(&t, &a, &none).unwrap(), before);
        let all = match_source(&t, ".", "COPY").unwrap();
        let whole = digest(&t, &all, &none).unwrap();
        let ex = Matcher::parse("b", "--exclude").unwrap();
        let excluded = digest(&t, &all, &ex).unwrap();
        std::fs::write(d.path().join("b"), "again").unwrap();
        assert_ne!(digest(&t, &all, &none).unwrap(), whole);
        // An excluded file does not count.
        assert_eq!(digest(&t, &all, &ex).unwrap(), excluded);
    }

    #[test]
    fn plans_put_files_where_docker_does() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("src/sub")).unwrap();
        std::fs::write(d.path().join("src/sub/f"), "x").unwrap();
        std::fs::write(d.path().join("top.txt"), "y").unwrap();
        let none = Matcher::default();
        let t = tree::HostTree {
            root: d.path().to_path_buf(),
        };
        let dir = match_source(&t, "src", "COPY").unwrap();
        let p = plan(&t, &dir, "/app", true, false, &none).unwrap();
        let dests: Vec<&str> = p.iter().map(|e| e.dest.as_str()).collect();
        assert_eq!(dests, ["/app", "/app/sub", "/app/sub/f"]);
        let file = match_source(&t, "top.txt", "COPY").unwrap();
        let first = |m: &[Matched], dest: &str, is_dir: bool, parents: bool| {
            plan(&t, m, dest, is_dir, parents, &none).unwrap()[0]
                .dest
                .clone()
        };
        assert_eq!(first(&file, "/app", true, false), "/app/top.txt");
        assert_eq!(first(&file, "/renamed", false, false), "/renamed");
        let g = match_source(&t, "src/*/f", "COPY").unwrap();
        assert_eq!(first(&g, "/p", true, true), "/p/src/sub/f");
        // A `/./` pivot: only what follows it is kept.
        let pivoted = match_source(&t, "./src/./sub/f", "COPY").unwrap();
        assert_eq!(first(&pivoted, "/p", true, true), "/p/sub/f");
        let pivoted = match_source(&t, "src/./*/f", "COPY").unwrap();
        assert_eq!(first(&pivoted, "/p", true, true), "/p/sub/f");
        let whole = match_source(&t, "src/./sub", "COPY").unwrap();
        let p = plan(&t, &whole, "/p", true, true, &none).unwrap();
        let dests: Vec<&str> = p.iter().map(|e| e.dest.as_str()).collect();
        assert_eq!(dests, ["/p/sub", "/p/sub/f"]);
    }

    #[test]
    fn excludes_match_inside_a_directory_source_and_file_sources_by_path() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "root/setup/a",
            "root/keep",
            "root/x.log",
            "home.txt",
            "home.md",
        ] {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        let t = tree::HostTree {
            root: d.path().to_path_buf(),
        };
        let ex = Matcher::parse("setup\n*.log\n*.txt", "--exclude").unwrap();
        let dests = |src: &str| -> Vec<String> {
            let m = match_source(&t, src, "COPY").unwrap();
            plan(&t, &m, "/d", true, false, &ex)
                .unwrap()
                .into_iter()
                .map(|e| e.dest)
                .collect()
        };
        assert_eq!(dests("root/"), ["/d", "/d/keep"]);
        assert_eq!(dests("hom*"), ["/d/home.md"]);
    }
}
