//! `develop.watch` and `watch`: which changed files ask for what. A batch of changed host
//! paths becomes, per service, the files to sync into its containers (`sync`,
//! `sync+restart`), and whether to restart them or rebuild its image and recreate them
//! (`rebuild`), as compose v2 decides it. Watching the files and acting is wharf-cli's.

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
}

#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Develop {
    pub watch: Vec<Rule>,
}

pub fn parse(cx: &Ctx, key: &str, v: &Value) -> Result<Develop> {
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
            let (mut action, mut path, mut target, mut ignore) = (None, None, None, Vec::new());
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
                            other => return cx.err(&ak, format!("invalid action {other:?}: must be sync, rebuild, sync+restart or restart (sync+exec is not supported by wharf compose yet)")),
                        })
                    }
                    "path" => path = Some(cx.string(av, &ak)?),
                    "target" => target = Some(cx.string(av, &ak)?),
                    "ignore" => ignore = cx.strings(av, &ak)?,
                    "include" | "initial_sync" | "exec" => {
                        return cx.err(&ak, "is not supported by wharf compose yet")
                    }
                    k if k.starts_with("x-") => {}
                    _ => return cx.err(&rk, format!("additional property {aks} is not allowed")),
                }
            }
            let (Some(action), Some(path)) = (action, path) else {
                return cx.err(&rk, "action and path are required");
            };
            if matches!(action, Action::Sync | Action::SyncRestart) && target.is_none() {
                return cx.err(&rk, "target is required for sync");
            }
            d.watch.push(Rule {
                action,
                path,
                target,
                ignore,
            });
        }
    }
    Ok(d)
}

/// What one service has to do after a batch of changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Host path → path in the container (a host path that no longer exists is deleted there).
    pub sync: BTreeMap<PathBuf, String>,
    pub restart: bool,
    pub rebuild: bool,
}

/// Editor and VCS files compose v2 never acts on.
fn always_ignored(rel: &Path) -> bool {
    rel.components().any(|c| c.as_os_str() == ".git")
        || rel.file_name().is_some_and(|n| {
            let n = n.to_string_lossy();
            n.ends_with('~') || n.ends_with(".swp") || n.ends_with(".swx") || n == "4913"
        })
}

/// The batches `changed` asks for, by service (`services` empty: all). `ignored(rule, rel)`
/// says whether a rule's ignore patterns exclude the path relative to its `path`. The first
/// rule of a service that matches a path decides for it (as compose v2).
pub fn plan(
    p: &Project,
    services: &[String],
    changed: &[PathBuf],
    ignored: &dyn Fn(&Rule, &str) -> bool,
) -> BTreeMap<String, Batch> {
    let mut out: BTreeMap<String, Batch> = BTreeMap::new();
    for (name, s) in &p.services {
        if !services.is_empty() && !services.contains(name) {
            continue;
        }
        let Some(d) = &s.develop else { continue };
        for f in changed {
            for r in &d.watch {
                let Ok(rel) = f.strip_prefix(&r.path) else {
                    continue;
                };
                let rel_s = rel.to_string_lossy().into_owned();
                if always_ignored(rel) || (!rel_s.is_empty() && ignored(r, &rel_s)) {
                    break;
                }
                let b = out.entry(name.clone()).or_default();
                match r.action {
                    Action::Rebuild => b.rebuild = true,
                    Action::Restart => b.restart = true,
                    Action::Sync | Action::SyncRestart => {
                        let t = r.target.clone().unwrap_or_default();
                        let dest = if rel_s.is_empty() {
                            t
                        } else {
                            format!("{}/{rel_s}", t.trim_end_matches('/'))
                        };
                        b.sync.insert(f.clone(), dest);
                        b.restart |= r.action == Action::SyncRestart;
                    }
                }
                break;
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
        let ign = |r: &Rule, rel: &str| {
            r.ignore
                .iter()
                .any(|g| g == "*.tmp" && rel.ends_with(".tmp"))
        };
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
}
