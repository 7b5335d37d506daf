//! `.dockerignore`: which files of a build context the build may see.
//!
//! The rules are Docker's (moby's `ignorefile` reader and `patternmatcher`):
//! - a line starting with `#` is a comment (only at column 0); other lines are trimmed, and
//!   empty ones skipped; a UTF-8 BOM on the first line is dropped;
//! - `!pattern` is an exception: it re-includes what earlier patterns excluded; the last
//!   pattern that matches a path decides;
//! - patterns are cleaned like Go's `filepath.Clean` and made relative (`/a` is `a`);
//! - `*` and `?` match within one path component, `**` any number of components (also none),
//!   `[...]` a character class, `\` escapes the next character;
//! - a pattern that matches a directory excludes everything under it (a path is excluded
//!   when it or one of its parent directories matches).
//!
//! [`Matcher::prune`] applies the file to a context directory in place (what the engine
//! does with a context it received), [`Matcher::walk`] lists the paths a client sends.
//! The Dockerfile's own ignore file `<Dockerfile>.dockerignore` wins over `.dockerignore`
//! (BuildKit's rule), see [`Matcher::for_context`].

use std::path::{Path, PathBuf};

use regex::Regex;

/// A malformed `.dockerignore`.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error("illegal exclusion pattern: \"!\"")]
    BareExclusion,
    #[error("syntax error in pattern {pattern:?} of {file}: {reason}")]
    BadPattern {
        file: String,
        pattern: String,
        reason: String,
    },
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone)]
enum How {
    /// No wildcard: the path equals the pattern.
    Exact,
    /// `prefix**`: the path starts with the prefix.
    Prefix(String),
    /// `**suffix` without other wildcards: the path ends with the suffix, or (for
    /// `**/name`) is the name itself.
    Suffix(String),
    Regex(Regex),
}

#[derive(Debug, Clone)]
struct Pattern {
    /// As cleaned, without the `!`.
    text: String,
    exclusion: bool,
    how: How,
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.how {
            How::Exact => path == self.text,
            How::Prefix(p) => path.starts_with(p.as_str()),
            How::Suffix(s) => {
                path.ends_with(s.as_str()) || s.strip_prefix('/').is_some_and(|name| path == name)
            }
            How::Regex(r) => r.is_match(path),
        }
    }
}

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

impl Matcher {
    /// Parses the text of an ignore file; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Matcher, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (exclusion, rest) = match line.strip_prefix('!') {
                Some(r) => (true, r.trim()),
                None => (false, line),
            };
            if exclusion && rest.is_empty() {
                return Err(IgnoreError::BareExclusion);
            }
            let mut text = clean(rest);
            if text.len() > 1 {
                if let Some(r) = text.strip_prefix('/') {
                    text = r.to_string();
                }
            }
            let how = compile(&text).map_err(|reason| IgnoreError::BadPattern {
                file: file.to_string(),
                pattern: line.to_string(),
                reason,
            })?;
            patterns.push(Pattern {
                text,
                exclusion,
                how,
            });
        }
        Ok(Matcher { patterns })
    }

    /// The ignore file of a context: `<dockerfile>.dockerignore` beside the Dockerfile if
    /// there is one, else `.dockerignore` at the context's root, else nothing is ignored.
    pub fn for_context(context: &Path, dockerfile: &str) -> Result<Matcher, IgnoreError> {
        let own = context.join(format!("{dockerfile}.dockerignore"));
        for (path, name) in [
            (own, format!("{dockerfile}.dockerignore")),
            (context.join(".dockerignore"), ".dockerignore".to_string()),
        ] {
            match std::fs::read(&path) {
                Ok(bytes) => return Matcher::parse(&String::from_utf8_lossy(&bytes), &name),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {}
                Err(source) => return Err(IgnoreError::Io { path, source }),
            }
        }
        Ok(Matcher::default())
    }

    /// As [`Matcher::for_context`], for a context held as a [`crate::tree::Tree`].
    pub fn for_tree(
        tree: &dyn crate::tree::Tree,
        dockerfile: &str,
    ) -> Result<Matcher, IgnoreError> {
        for name in [
            format!("{dockerfile}.dockerignore"),
            ".dockerignore".to_string(),
        ] {
            let Some(resolved) = crate::tree::resolve(tree, &name) else {
                continue;
            };
            match crate::tree::read_to_vec(tree, &resolved, 16 << 20) {
                Ok(bytes) => return Matcher::parse(&String::from_utf8_lossy(&bytes), &name),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(IgnoreError::Io {
                        path: name.into(),
                        source,
                    })
                }
            }
        }
        Ok(Matcher::default())
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (relative to the context, `/`-separated) is excluded: the last pattern
    /// that matches it or one of its parent directories decides.
    pub fn excludes(&self, path: &str) -> bool {
        let path = clean(path);
        let path = path.trim_start_matches('/');
        let parents: Vec<&str> = match path.rfind('/') {
            Some(i) => {
                let dir = &path[..i];
                (0..dir.len())
                    .filter(|&j| dir.as_bytes()[j] == b'/')
                    .map(|j| &dir[..j])
                    .chain(std::iter::once(dir))
                    .collect()
            }
            None => Vec::new(),
        };
        let mut excluded = false;
        for p in &self.patterns {
            // An exception only matters once something excluded the path, a pattern only
            // while it is not excluded.
            if p.exclusion != excluded {
                continue;
            }
            if p.matches(path) || parents.iter().any(|d| p.matches(d)) {
                excluded = !p.exclusion;
            }
        }
        excluded
    }

    /// Whether some exception (`!pattern`) could re-include a path under the excluded
    /// directory `dir`: then the directory must be walked, else it is skipped whole.
    fn may_reinclude_under(&self, dir: &str) -> bool {
        let dir_slash = format!("{dir}/");
        self.patterns.iter().any(|p| {
            p.exclusion && {
                let t = format!("{}/", p.text);
                // A wildcard before the directory's depth can match anywhere.
                t.starts_with(&dir_slash) || !matches!(p.how, How::Exact)
            }
        })
    }

    /// Every path of the context the build may see, relative and `/`-separated, parents
    /// before children, in name order; excluded directories whose contents are re-included
    /// by an exception are not listed themselves (a client's tar makes them implicitly).
    pub fn walk(&self, context: &Path) -> Result<Vec<String>, IgnoreError> {
        let mut out = Vec::new();
        self.walk_dir(context, "", &mut |rel, _excluded_dir| {
            out.push(rel.to_string());
        })?;
        Ok(out)
    }

    /// Removes every excluded path from the context directory (symlinks are removed, never
    /// followed). What is left is what [`Matcher::walk`] lists, plus excluded directories
    /// that still hold re-included files.
    pub fn prune(&self, context: &Path) -> Result<(), IgnoreError> {
        if self.is_empty() {
            return Ok(());
        }
        let mut doomed: Vec<(PathBuf, bool)> = Vec::new();
        self.visit(context, "", &mut doomed)?;
        for (path, is_dir) in doomed {
            let r = if is_dir {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match r {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(IgnoreError::Io { path, source }),
            }
        }
        Ok(())
    }

    fn visit(
        &self,
        dir: &Path,
        rel: &str,
        doomed: &mut Vec<(PathBuf, bool)>,
    ) -> Result<(), IgnoreError> {
        for (name, path, is_dir) in entries(dir)? {
            let r = join(rel, &name);
            if !self.excludes(&r) {
                if is_dir {
                    self.visit(&path, &r, doomed)?;
                }
                continue;
            }
            if is_dir && self.may_reinclude_under(&r) {
                self.visit(&path, &r, doomed)?;
                if dir_is_empty(&path) {
                    doomed.push((path, true));
                }
            } else {
                doomed.push((path, is_dir));
            }
        }
        Ok(())
    }

    fn walk_dir(
        &self,
        dir: &Path,
        rel: &str,
        f: &mut dyn FnMut(&str, bool),
    ) -> Result<(), IgnoreError> {
        for (name, path, is_dir) in entries(dir)? {
            let r = join(rel, &name);
            let excluded = self.excludes(&r);
            if !excluded {
                f(&r, false);
            }
            if is_dir && (!excluded || self.may_reinclude_under(&r)) {
                self.walk_dir(&path, &r, f)?;
            }
        }
        Ok(())
    }
}

fn join(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

fn dir_is_empty(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none())
}

/// A directory's entries, sorted by name: (name, path, is a real directory).
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>, IgnoreError> {
    let io = |source| IgnoreError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io)? {
        let e = e.map_err(io)?;
        let is_dir = e.file_type().map_err(io)?.is_dir();
        out.push((
            e.file_name().to_string_lossy().into_owned(),
            e.path(),
            is_dir,
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Go's `filepath.Clean` on a `/`-separated path: no empty, `.` or inner `..` components;
/// `..` above a relative root is kept, above `/` dropped; `""` is `.`.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&l) if l != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Turns a cleaned pattern into its matcher, as moby's patternmatcher does: `*` is
/// `[^/]*`, `?` is `[^/]`, `**` is `(.*/)?` (or `.*` at the end), `\x` is a literal `x`,
/// classes pass through; the regex is anchored at both ends.
fn compile(pattern: &str) -> Result<How, String> {
    check_go_syntax(pattern)?;
    let chars: Vec<char> = pattern.chars().collect();
    let mut re = String::from("^");
    #[derive(PartialEq)]
    enum Kind {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut kind = Kind::Exact;
    let mut i = 0;
    let mut first = true;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= chars.len() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = Kind::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = Kind::Regex;
                }
                if first {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                kind = Kind::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                kind = Kind::Regex;
            }
            '\\' => match chars.get(i) {
                Some(&next) => {
                    i += 1;
                    re.push_str(&regex::escape(&next.to_string()));
                    kind = Kind::Regex;
                }
                None => re.push_str(r"\\"),
            },
            '[' | ']' => {
                re.push(ch);
                kind = Kind::Regex;
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        first = false;
    }
    Ok(match kind {
        Kind::Exact => How::Exact,
        Kind::Prefix => How::Prefix(pattern[..pattern.len() - 2].to_string()),
        Kind::Suffix => How::Suffix(pattern[2..].to_string()),
        Kind::Regex => {
            re.push('$');
            How::Regex(Regex::new(&re).map_err(|e| e.to_string())?)
        }
    })
}

/// The pattern errors Go's `filepath.Match` reports (moby checks each pattern with it):
/// an unclosed `[`, an empty class, a bad range, a trailing `\`.
fn check_go_syntax(pattern: &str) -> Result<(), String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if i + 1 >= chars.len() {
                    return Err("a trailing \\ escapes nothing".into());
                }
                i += 2;
            }
            '[' => {
                i += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut n = 0;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err("unclosed [ character class".into());
                    };
                    if c == ']' && n > 0 {
                        i += 1;
                        break;
                    }
                    if c == ']' {
                        return Err("empty character class".into());
                    }
                    let lo = class_char(&chars, &mut i)?;
                    if chars.get(i) == Some(&'-') && chars.get(i + 1) != Some(&']') {
                        i += 1;
                        let hi = class_char(&chars, &mut i)?;
                        if hi < lo {
                            return Err(format!("bad range {lo}-{hi}"));
                        }
                    }
                    n += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

fn class_char(chars: &[char], i: &mut usize) -> Result<char, String> {
    let c = chars[*i];
    if c == '\\' {
        *i += 1;
        let Some(&e) = chars.get(*i) else {
            return Err("unclosed [ character class".into());
        };
        *i += 1;
        return Ok(e);
    }
    if c == '-' {
        return Err("a range without its start in a character class".into());
    }
    *i += 1;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> Matcher {
        Matcher::parse(text, ".dockerignore").unwrap()
    }

    #[test]
    fn a_name_excludes_itself_and_everything_under_it() {
        let i = m("node_modules\n/build\n");
        for p in ["node_modules", "node_modules/a/b.js", "build", "build/x"] {
            assert!(i.excludes(p), "{p}");
        }
        for p in ["src/node_modules", "buildx", "src/build", "README"] {
            assert!(!i.excludes(p), "{p}");
        }
    }

    #[test]
    fn single_star_stays_in_its_component_and_double_star_crosses_them() {
        let i = m("*.log\n");
        assert!(i.excludes("a.log"));
        assert!(!i.excludes("dir/a.log"));
        let i = m("**/*.log\n");
        assert!(i.excludes("a.log"));
        assert!(i.excludes("dir/sub/a.log"));
        assert!(!i.excludes("a.logx"));
        let i = m("docs/**\n");
        assert!(i.excludes("docs/a"));
        assert!(i.excludes("docs/a/b"));
        assert!(!i.excludes("docsx"));
        let i = m("a/**/z\n");
        assert!(i.excludes("a/z"));
        assert!(i.excludes("a/b/c/z"));
        assert!(!i.excludes("a/b/c/zz"));
        let i = m("**/cache\n");
        assert!(i.excludes("cache"));
        assert!(i.excludes("x/cache/file"));
        assert!(!i.excludes("xcache"));
        let i = m("?.txt\n[ab]c\n");
        assert!(i.excludes("a.txt"));
        assert!(!i.excludes("ab.txt"));
        assert!(i.excludes("ac") && i.excludes("bc") && !i.excludes("cc"));
    }

    #[test]
    fn the_last_matching_pattern_decides_and_exceptions_re_include() {
        let i = m("*.md\n!README.md\n");
        assert!(i.excludes("CHANGES.md"));
        assert!(!i.excludes("README.md"));
        let i = m("*.md\n!README*.md\nREADME-secret.md\n");
        assert!(!i.excludes("README.md"));
        assert!(i.excludes("README-secret.md"));
        // An exception under an excluded directory.
        let i = m("vendor\n!vendor/keep\n");
        assert!(i.excludes("vendor/x"));
        assert!(!i.excludes("vendor/keep"));
        assert!(!i.excludes("vendor/keep/deep"));
    }

    #[test]
    fn comments_blank_lines_bom_cleaning_and_escapes() {
        let i = m("\u{feff}# comment\n\n   \n  ./a/../b/  \n /abs\n\\#hash\n a\\*b\n");
        assert!(i.excludes("b/x"));
        assert!(i.excludes("abs"));
        assert!(i.excludes("#hash"));
        assert!(i.excludes("a*b"));
        assert!(!i.excludes("axb"));
        assert!(!i.excludes("a"));
        // `#` only at column 0 starts a comment.
        let i = m(" #x\n");
        assert!(i.excludes("#x"));
        // Regex specials are literal.
        let i = m("a.b\n(x)+\n");
        assert!(i.excludes("a.b") && !i.excludes("axb"));
        assert!(i.excludes("(x)+"));
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        let e = Matcher::parse("!\n", ".dockerignore").unwrap_err();
        assert_eq!(e.to_string(), "illegal exclusion pattern: \"!\"");
        for bad in ["[", "a[b", "[]", "x\\", "[z-a]"] {
            let e = Matcher::parse(bad, ".dockerignore").unwrap_err();
            assert!(
                e.to_string().starts_with("syntax error in pattern"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn clean_is_gos() {
        for (a, b) in [
            ("", "."),
            ("a//b", "a/b"),
            ("./a/./b/", "a/b"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("a/b/../../c", "c"),
            ("/", "/"),
        ] {
            assert_eq!(clean(a), b, "{a}");
        }
    }

    fn tree(root: &Path, files: &[&str]) {
        for f in files {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
    }

    #[test]
    fn walk_and_prune_agree_and_skip_excluded_directories() {
        let d = tempfile::tempdir().unwrap();
        tree(
            d.path(),
            &[
                "Dockerfile",
                "src/main.rs",
                "src/debug.log",
                "target/big",
                "vendor/keep/a",
                "vendor/drop/b",
                "notes.md",
            ],
        );
        std::os::unix::fs::symlink("/etc", d.path().join("link")).unwrap();
        let i = m("target\n**/*.log\nvendor\n!vendor/keep\n*.md\nlink\n");
        let listed = i.walk(d.path()).unwrap();
        assert_eq!(
            listed,
            [
                "Dockerfile",
                "src",
                "src/main.rs",
                "vendor/keep",
                "vendor/keep/a"
            ]
        );
        i.prune(d.path()).unwrap();
        assert!(d.path().join("src/main.rs").exists());
        assert!(d.path().join("vendor/keep/a").exists());
        for gone in ["target", "src/debug.log", "vendor/drop", "notes.md", "link"] {
            assert!(
                std::fs::symlink_metadata(d.path().join(gone)).is_err(),
                "{gone}"
            );
        }
        // The symlink was removed, not followed.
        assert!(Path::new("/etc/passwd").exists());
    }

    #[test]
    fn the_dockerfiles_own_ignore_file_wins() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(".dockerignore"), "a\n").unwrap();
        let i = Matcher::for_context(d.path(), "Dockerfile").unwrap();
        assert!(i.excludes("a") && !i.excludes("b"));
        std::fs::write(d.path().join("Dockerfile.dockerignore"), "b\n").unwrap();
        let i = Matcher::for_context(d.path(), "Dockerfile").unwrap();
        assert!(!i.excludes("a") && i.excludes("b"));
        let e = tempfile::tempdir().unwrap();
        assert!(Matcher::for_context(e.path(), "Dockerfile")
            .unwrap()
            .is_empty());
    }
}
