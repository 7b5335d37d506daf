//! `develop.watch` and `watch`: which changed files ask for what. A batch of changed host
//! paths becomes, per service, the files to sync into its containers (`sync`,
//! `sync+restart`, `sync+exec`), whether to restart them, the commands to run in them after
//! the sync (`sync+exec`'s `exec`), or whether to rebuild its image and recreate them
//! (`rebuild`), as compose v2 decides it: every rule whose `path` holds a file, whose
//! `include` patterns (if any) match it and whose `ignore` patterns do not, applies.
//! [`initial_sync`] lists what `initial_sync: true` copies when the watch starts. Watching
//! the files and acting is wharf-cli's.

use crate::error::Result;
use crate::model::Project;
use crate::parse::Ctx;
use crate::yaml::key_str;
use serde::Serialize;
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub enum Action {
    #[serde(rename = "sync")]
    Sync,
    #[serde(rename = "rebuild")]
    Rebuild,
    #[serde(rename = "sync+restart")]
    SyncRestart,
    #[serde(rename = "restart")]
    Restart,
    #[serde(rename = "sync+exec")]
    SyncExec,
}

impl Action {
    fn syncs(self) -> bool {
        matches!(self, Action::Sync | Action::SyncRestart | Action::SyncExec)
    }
}

/// `exec:` of a `sync+exec` rule (the spec's service hook): run in each container of the
/// service after the files are synced.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Hook {
    pub command: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `KEY=value` (a bare `KEY` is passed as it is, as `docker exec -e KEY`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rule {
    pub action: Action,
    /// Absolute after loading.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `.dockerignore` patterns, relative to `path`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
    /// The same kind of patterns: when there are some, only the files they match count.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub initial_sync: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<Hook>,
}

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Develop {
    pub watch: Vec<Rule>,
}

/// `ignore`/`include`: a list, or one pattern.
fn patterns(cx: &Ctx, v: &Value, key: &str) -> Result<Vec<String>> {
    match v {
        Value::Sequence(_) => cx.strings(v, key),
        _ => Ok(vec![cx.string(v, key)?]),
    }
}

fn hook(cx: &Ctx, v: &Value, key: &str) -> Result<Hook> {
    let mut h = Hook {
        command: Vec::new(),
        user: None,
        privileged: false,
        working_dir: None,
        environment: Vec::new(),
    };
    for (k, x) in cx.map(v, key)? {
        let ks = key_str(k);
        let sub = format!("{key}.{ks}");
        match ks.as_str() {
            "command" => h.command = cx.command(x, &sub)?.unwrap_or_default(),
            "user" => h.user = Some(cx.string(x, &sub)?),
            "privileged" => h.privileged = cx.boolean(x, &sub)?,
            "working_dir" => h.working_dir = Some(cx.string(x, &sub)?),
            "environment" => {
                h.environment = match x {
                    Value::Sequence(_) => cx.strings(x, &sub)?,
                    _ => cx
                        .map(x, &sub)?
                        .iter()
                        .map(|(ek, ev)| {
                            let eks = key_str(ek);
                            Ok(match ev {
                                Value::Null => eks,
                                _ => format!("{eks}={}", cx.string(ev, &format!("{sub}.{eks}"))?),
                            })
                        })
                        .collect::<Result<_>>()?,
                }
            }
            k if k.starts_with("x-") => {}
            _ => return cx.err(key, format!("additional property {ks} is not allowed")),
        }
    }
    Ok(h)
}

/// `service` names the service in errors compose v2 words with it.
pub fn parse(cx: &Ctx, key: &str, v: &Value, service: &str) -> Result<Develop> {
    let mut d = Develop::default();
    for (k, x) in cx.map(v, key)? {
        let ks = key_str(k);
        let sub = format!("{key}.{ks}");
        if ks != "watch" {
            if ks.starts_with("x-") {
                continue;
            }
            return cx.err(key, format!("additional property {ks} is not allowed"));
        }
        let Value::Sequence(seq) = x else {
            return cx.err(&sub, "must be a list");
        };
        for (i, r) in seq.iter().enumerate() {
            let rk = format!("{sub}[{i}]");
            let (mut action, mut path, mut target) = (None, None, None);
            let (mut ignore, mut include, mut initial_sync, mut exec) =
                (Vec::new(), Vec::new(), false, None);
            for (a, av) in cx.map(r, &rk)? {
                let aks = key_str(a);
                let ak = format!("{rk}.{aks}");
                match aks.as_str() {
                    "action" => {
                        action = Some(match cx.string(av, &ak)?.as_str() {
                            "sync" => Action::Sync,
                            "rebuild" => Action::Rebuild,
                            "sync+restart" => Action::SyncRestart,
                            "restart" => Action::Restart,
                            "sync+exec" => Action::SyncExec,
                            other => return cx.err(&ak, format!("invalid action {other:?}: must be rebuild, restart, sync, sync+exec or sync+restart")),
                        })
                    }
                    "path" => path = Some(cx.string(av, &ak)?),
                    "target" => target = Some(cx.string(av, &ak)?),
                    "ignore" => ignore = patterns(cx, av, &ak)?,
                    "include" => include = patterns(cx, av, &ak)?,
                    "initial_sync" => initial_sync = cx.boolean(av, &ak)?,
                    "exec" => exec = Some(hook(cx, av, &ak)?),
                    k if k.starts_with("x-") => {}
                    _ => return cx.err(&rk, format!("additional property {aks} is not allowed")),
                }
            }
            let (Some(action), Some(path)) = (action, path) else {
                return cx.err(&rk, "action and path are required");
            };
            if action.syncs() && target.is_none() {
                return cx.err(&rk, "target is required for sync");
            }
            if action == Action::SyncExec && exec.as_ref().is_none_or(|h| h.command.is_empty()) {
                return cx.err(
                    &rk,
                    format!("can't watch with action \"sync+exec\" on service {service} without a command"),
                );
            }
            d.watch.push(Rule {
                action,
                path,
                target,
                ignore,
                include,
                initial_sync,
                exec,
            });
        }
    }
    Ok(d)
}

/// What one service has to do after a batch of changes, in this order: rebuild (and nothing
/// else), or sync, restart, then the hooks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Host path → path in the container (a host path that no longer exists is deleted there).
    pub sync: BTreeMap<PathBuf, String>,
    pub restart: bool,
    pub rebuild: bool,
    /// The `exec` of each `sync+exec` rule that matched, once per rule, in rule order.
    pub exec: Vec<Hook>,
}

/// Editor and VCS files compose v2 never acts on.
fn always_ignored(rel: &Path) -> bool {
    rel.components().any(|c| c.as_os_str() == ".git")
        || rel.file_name().is_some_and(|n| {
            let n = n.to_string_lossy();
            n.ends_with('~') || n.ends_with(".swp") || n.ends_with(".swx") || n == "4913"
        })
}

/// Whether `patterns` (`.dockerignore` syntax) match a path relative to a rule's `path`: the
/// caller's matcher (wharf-build's), passed in.
pub type Matcher<'a> = &'a dyn Fn(&[String], &str) -> bool;

/// Whether rule `r` acts on the file at `rel` (relative to its path; empty: the path itself,
/// which no pattern applies to).
fn counts(r: &Rule, rel: &Path, matches: Matcher) -> bool {
    if always_ignored(rel) {
        return false;
    }
    let rel_s = rel.to_string_lossy();
    rel_s.is_empty()
        || ((r.include.is_empty() || matches(&r.include, &rel_s)) && !matches(&r.ignore, &rel_s))
}

/// The batches `changed` asks for, by service (`services` empty: all). Every rule of a
/// service that matches a path applies (as compose v2).
pub fn plan(
    p: &Project,
    services: &[String],
    changed: &[PathBuf],
    matches: Matcher,
) -> BTreeMap<String, Batch> {
    let mut out: BTreeMap<String, Batch> = BTreeMap::new();
    for (name, s) in &p.services {
        if !services.is_empty() && !services.contains(name) {
            continue;
        }
        let Some(d) = &s.develop else { continue };
        let mut hooks = Vec::new();
        for f in changed {
            for (i, r) in d.watch.iter().enumerate() {
                let Ok(rel) = f.strip_prefix(&r.path) else {
                    continue;
                };
                if !counts(r, rel, matches) {
                    continue;
                }
                let rel_s = rel.to_string_lossy().into_owned();
                let b = out.entry(name.clone()).or_default();
                match r.action {
                    Action::Rebuild => b.rebuild = true,
                    Action::Restart => b.restart = true,
                    Action::Sync | Action::SyncRestart | Action::SyncExec => {
                        let t = r.target.clone().unwrap_or_default();
                        let dest = if rel_s.is_empty() {
                            t
                        } else {
                            format!("{}/{rel_s}", t.trim_end_matches('/'))
                        };
                        b.sync.insert(f.clone(), dest);
                        b.restart |= r.action == Action::SyncRestart;
                        if r.action == Action::SyncExec {
                            hooks.push(i);
                        }
                    }
                }
            }
        }
        hooks.sort_unstable();
        hooks.dedup();
        if let Some(b) = out.get_mut(name) {
            b.exec = hooks
                .iter()
                .filter_map(|&i| d.watch[i].exec.clone())
                .collect();
        }
    }
    out
}

/// What the watch copies when it starts, by service: for each `sync` or `sync+restart` rule
/// with `initial_sync: true` (compose v2 does not for `sync+exec`), the files under its path
/// (or the file it names) that its patterns let through, host path → path in the container.
pub fn initial_sync(
    p: &Project,
    services: &[String],
    matches: Matcher,
) -> BTreeMap<String, BTreeMap<PathBuf, String>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out: BTreeMap<String, BTreeMap<PathBuf, String>> = BTreeMap::new();
    for (name, s) in &p.services {
        if !services.is_empty() && !services.contains(name) {
            continue;
        }
        let Some(d) = &s.develop else { continue };
        for r in &d.watch {
            if !r.initial_sync || !matches!(r.action, Action::Sync | Action::SyncRestart) {
                continue;
            }
            let root = Path::new(&r.path);
            let mut files = Vec::new();
            if root.is_dir() {
                walk(root, &mut files);
            } else if root.is_file() {
                files.push(root.to_path_buf());
            }
            files.sort();
            let t = r.target.clone().unwrap_or_default();
            for f in files {
                let Ok(rel) = f.strip_prefix(root) else {
                    continue;
                };
                if !counts(r, rel, matches) {
                    continue;
                }
                let rel_s = rel.to_string_lossy();
                let dest = if rel_s.is_empty() {
                    t.clone()
                } else {
                    format!("{}/{rel_s}", t.trim_end_matches('/'))
                };
                out.entry(name.clone()).or_default().insert(f, dest);
            }
        }
    }
    out
}

/// The directories and files to watch: every rule's path of the services.
pub fn paths(p: &Project, services: &[String]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = p
        .services
        .iter()
        .filter(|(n, _)| services.is_empty() || services.contains(n))
        .filter_map(|(_, s)| s.develop.as_ref())
        .flat_map(|d| d.watch.iter().map(|r| PathBuf::from(&r.path)))
        .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{load, Options};

    #[test]
    fn changes_become_syncs_restarts_and_rebuilds() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::write(
            d.join("compose.yaml"),
            "services:\n  web:\n    image: x\n    develop:\n      watch:\n        - {action: sync, path: ./src, target: /app/src, ignore: ['*.tmp']}\n        - {action: sync+restart, path: ./conf, target: /etc/app}\n        - {action: rebuild, path: ./package.json}\n  other:\n    image: x\n",
        )
        .unwrap();
        let p = load(&Options {
            cwd: d.to_path_buf(),
            ..Default::default()
        })
        .unwrap();
        let ign =
            |pats: &[String], rel: &str| pats.iter().any(|g| g == "*.tmp" && rel.ends_with(".tmp"));
        let b = plan(
            &p,
            &[],
            &[
                d.join("src/a/b.js"),
                d.join("src/x.tmp"),
                d.join("src/.git/HEAD"),
                d.join("src/y.swp"),
                d.join("elsewhere.txt"),
            ],
            &ign,
        );
        assert_eq!(b.len(), 1);
        let w = &b["web"];
        assert_eq!(
            w.sync.iter().collect::<Vec<_>>(),
            [(&d.join("src/a/b.js"), &"/app/src/a/b.js".to_string())]
        );
        assert!(!w.restart && !w.rebuild);
        let b = plan(
            &p,
            &[],
            &[d.join("conf/app.ini"), d.join("package.json")],
            &ign,
        );
        let w = &b["web"];
        assert_eq!(w.sync[&d.join("conf/app.ini")], "/etc/app/app.ini");
        assert!(w.restart && w.rebuild);
        assert!(plan(&p, &["other".into()], &[d.join("package.json")], &ign).is_empty());
        assert_eq!(
            paths(&p, &[]),
            [d.join("conf"), d.join("package.json"), d.join("src")]
        );
    }

    #[test]
    fn bad_rules_name_the_key() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("compose.yaml"),
            "services:\n  web:\n    image: x\n    develop:\n      watch:\n        - {action: sync, path: ./src}\n",
        )
        .unwrap();
        let e = load(&Options {
            cwd: t.path().to_path_buf(),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.ends_with("services.web.develop.watch[0]: target is required for sync"),
            "{e}"
        );
    }

    /// A matcher for the tests: `*.ext` patterns only.
    fn ext_matcher(pats: &[String], rel: &str) -> bool {
        pats.iter()
            .any(|g| g.strip_prefix('*').is_some_and(|ext| rel.ends_with(ext)))
    }

    #[test]
    fn sync_exec_include_and_every_matching_rule() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::write(
            d.join("compose.yaml"),
            "services:\n  web:\n    image: x\n    develop:\n      watch:\n        \
             - {action: sync+exec, path: ./src, target: /app, include: ['*.js'], exec: {command: reload now, user: app, environment: {A: '1', B: null}}}\n        \
             - {action: sync+exec, path: ./src, target: /app, include: '*.css', exec: {command: [css]}}\n        \
             - {action: restart, path: ./src/main.js}\n",
        )
        .unwrap();
        let p = load(&Options {
            cwd: d.to_path_buf(),
            ..Default::default()
        })
        .unwrap();
        let b = plan(
            &p,
            &[],
            &[d.join("src/a.js"), d.join("src/b.js"), d.join("src/c.txt")],
            &ext_matcher,
        );
        let w = &b["web"];
        // c.txt is in no rule's include; both .js files, one hook run.
        assert_eq!(
            w.sync.values().cloned().collect::<Vec<_>>(),
            ["/app/a.js", "/app/b.js"]
        );
        assert_eq!(
            w.exec,
            [Hook {
                command: vec!["reload".into(), "now".into()],
                user: Some("app".into()),
                privileged: false,
                working_dir: None,
                environment: vec!["A=1".into(), "B".into()],
            }]
        );
        assert!(!w.restart);
        // main.js: the sync+exec rule and the restart rule both apply.
        let b = plan(
            &p,
            &[],
            &[d.join("src/main.js"), d.join("src/x.css")],
            &ext_matcher,
        );
        let w = &b["web"];
        assert!(w.restart);
        assert_eq!(w.exec.len(), 2);
        assert_eq!(w.exec[1].command, ["css"]);
        assert!(plan(&p, &[], &[d.join("src/c.txt")], &ext_matcher).is_empty());
    }

    #[test]
    fn initial_sync_lists_what_the_patterns_let_through() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::create_dir_all(d.join("src/sub")).unwrap();
        for f in [
            "src/a.js",
            "src/sub/b.js",
            "src/c.tmp",
            "conf.ini",
            "other.js",
        ] {
            std::fs::write(d.join(f), "x").unwrap();
        }
        std::fs::write(
            d.join("compose.yaml"),
            "services:\n  web:\n    image: x\n    develop:\n      watch:\n        \
             - {action: sync, path: ./src, target: /app, ignore: ['*.tmp'], initial_sync: true}\n        \
             - {action: sync+restart, path: ./conf.ini, target: /etc/app.ini, initial_sync: true}\n        \
             - {action: sync, path: ./other.js, target: /o.js}\n        \
             - {action: sync+exec, path: ./src, target: /x, initial_sync: true, exec: {command: [echo]}}\n",
        )
        .unwrap();
        let p = load(&Options {
            cwd: d.to_path_buf(),
            ..Default::default()
        })
        .unwrap();
        let s = initial_sync(&p, &[], &ext_matcher);
        let got: Vec<(PathBuf, String)> = s["web"].clone().into_iter().collect();
        assert_eq!(
            got,
            [
                (d.join("conf.ini"), "/etc/app.ini".to_string()),
                (d.join("src/a.js"), "/app/a.js".to_string()),
                (d.join("src/sub/b.js"), "/app/sub/b.js".to_string()),
            ]
        );
    }

    #[test]
    fn sync_exec_needs_a_command() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("compose.yaml"),
            "services:\n  web:\n    image: x\n    develop:\n      watch:\n        - {action: sync+exec, path: ./src, target: /app}\n",
        )
        .unwrap();
        let e = load(&Options {
            cwd: t.path().to_path_buf(),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.ends_with("services.web.develop.watch[0]: can't watch with action \"sync+exec\" on service web without a command"),
            "{e}"
        );
    }
}
