//! Top-level `secrets` and `configs`: their parsing (a `file`, a variable of compose's
//! `environment`, inline `content` for configs, or `external`).

use crate::error::Result;
use crate::model::Secret;
use crate::parse::Ctx;
use crate::yaml::{key_str, scalar_str};
use serde_yaml_ng::Value;
use std::path::Path;

/// Parses `<section>.<name>` (`section` is `secrets` or `configs`); a relative `file` is
/// resolved against `dir`, the engine name is `<project>_<name>` unless `name` is given.
pub fn parse(
    cx: &Ctx,
    section: &str,
    name: &str,
    v: &Value,
    project: &str,
    dir: &Path,
) -> Result<Secret> {
    let key = format!("{section}.{name}");
    let mut s = Secret::default();
    let mut given_name = None;
    for (k, x) in cx.map(v, &key)? {
        let ks = key_str(k);
        let sub = format!("{key}.{ks}");
        match ks.as_str() {
            "name" => given_name = Some(cx.string(x, &sub)?),
            "file" => {
                let f = cx.string(x, &sub)?;
                s.file = Some(crate::load::clean(&dir.join(f)).display().to_string());
            }
            "environment" => s.environment = Some(cx.string(x, &sub)?),
            "content" if section == "configs" => s.content = Some(cx.string(x, &sub)?),
            "external" => {
                s.external = match x {
                    Value::Mapping(_) => true,
                    _ => cx.boolean(x, &sub)?,
                }
            }
            "labels" => {
                s.labels = match x {
                    Value::Sequence(seq) => seq
                        .iter()
                        .filter_map(scalar_str)
                        .map(|l| match l.split_once('=') {
                            Some((a, b)) => (a.to_string(), b.to_string()),
                            None => (l, String::new()),
                        })
                        .collect(),
                    _ => cx.string_map(x, &sub)?,
                }
            }
            "driver" | "driver_opts" | "template_driver" => {
                s.unsupported.insert(ks, x.clone());
            }
            k if k.starts_with("x-") => {}
            _ => return cx.err(&key, format!("additional property {ks} is not allowed")),
        }
    }
    let sources = [
        s.file.is_some(),
        s.environment.is_some(),
        s.content.is_some(),
        s.external,
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if sources != 1 {
        let what = if section == "configs" {
            "file, environment, content or external"
        } else {
            "file, environment or external"
        };
        return cx.err(&key, format!("needs exactly one of {what}"));
    }
    s.name = match (given_name, s.external) {
        (Some(n), _) => n,
        (None, true) => name.to_string(),
        (None, false) => format!("{project}_{name}"),
    };
    Ok(s)
}

/// A secret or config whose content is copied into a container after it is created (the ones
/// from `environment` or inline `content`, as compose v2 injects them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    /// Absolute, in the container.
    pub target: String,
    pub content: Vec<u8>,
    pub uid: u64,
    pub gid: u64,
    pub mode: u32,
    /// The tar's owner is kept (a `uid` or `gid` was given).
    pub copy_uid_gid: bool,
}

/// How a service's secrets and configs reach its containers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Read-only binds of the `file` ones (`HostConfig.Mounts` entries).
    pub mounts: Vec<serde_json::Value>,
    pub injections: Vec<Injection>,
    /// What compose v2 warns about (the `uid`/`gid`/`mode` a bind cannot honour).
    pub warnings: Vec<String>,
}

/// Where a use lands, as compose v2 puts it: secrets at `/run/secrets/<target or source>`,
/// configs at `/<target or source>`; an absolute `target` as it is.
pub fn target(is_secret: bool, u: &crate::model::ServiceSecret) -> String {
    let base = if is_secret { "/run/secrets/" } else { "/" };
    match &u.target {
        Some(t) if t.starts_with('/') => t.clone(),
        Some(t) => format!("{base}{t}"),
        None => format!("{base}{}", u.source),
    }
}

/// The plan of service `svc`'s secrets and configs. Refused: external ones (no swarm), and an
/// `environment` one whose variable is not set.
pub fn plan(p: &crate::model::Project, svc: &str) -> crate::up::UpResult<Plan> {
    use crate::up::UpError;
    let s = &p.services[svc];
    let mut out = Plan::default();
    for (is_secret, uses, defined) in [
        (true, &s.secrets, &p.secrets),
        (false, &s.configs, &p.configs),
    ] {
        let what = if is_secret { "secret" } else { "config" };
        let mut warned = false;
        for u in uses {
            let Some(def) = defined.get(&u.source) else {
                return Err(if is_secret {
                    UpError::UndefinedSecret {
                        service: svc.into(),
                        secret: u.source.clone(),
                    }
                } else {
                    UpError::UndefinedConfig {
                        service: svc.into(),
                        config: u.source.clone(),
                    }
                });
            };
            if def.external {
                return Err(UpError::Unsupported {
                    service: svc.into(),
                    key: format!("external {what} {} (a swarm feature)", def.name),
                });
            }
            if let Some(k) = def.unsupported.keys().next() {
                return Err(UpError::Unsupported {
                    service: svc.into(),
                    key: format!("{what}s.{}.{k}", u.source),
                });
            }
            let target = target(is_secret, u);
            let content = match (&def.file, &def.environment, &def.content) {
                (Some(file), _, _) => {
                    if (u.uid.is_some() || u.gid.is_some() || u.mode.is_some()) && !warned {
                        // compose v2's words: a bind keeps the file's own owner and mode.
                        let w = if is_secret {
                            "secrets `uid`, `gid` and `mode` are not supported, they will be ignored"
                        } else {
                            "config `uid`, `gid` and `mode` are not supported, they will be ignored"
                        };
                        out.warnings.push(format!("WARN[0000] {w} "));
                        warned = true;
                    }
                    out.mounts.push(serde_json::json!({
                        "Type": "bind",
                        "Source": file,
                        "Target": target,
                        "ReadOnly": true,
                    }));
                    continue;
                }
                (None, Some(var), _) => {
                    def.env_value
                        .clone()
                        .ok_or_else(|| UpError::MissingVariable {
                            var: var.clone(),
                            what: format!("{what} {}", u.source),
                        })?
                }
                (None, None, Some(c)) => c.clone(),
                (None, None, None) => continue,
            };
            let id = |v: &Option<String>| -> crate::up::UpResult<u64> {
                v.as_deref().map_or(Ok(0), |x| {
                    x.parse().map_err(|_| UpError::Unsupported {
                        service: svc.into(),
                        key: format!("{what} {} uid/gid {x:?} (not a number)", u.source),
                    })
                })
            };
            out.injections.push(Injection {
                target,
                content: content.into_bytes(),
                uid: id(&u.uid)?,
                gid: id(&u.gid)?,
                mode: u.mode.unwrap_or(0o444),
                copy_uid_gid: u.uid.is_some() || u.gid.is_some(),
            });
        }
    }
    Ok(out)
}

/// The tar `PUT /containers/{id}/archive?path=/` takes for one injection.
pub fn tar_of(i: &Injection) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(i.content.len() as u64);
    h.set_mode(i.mode);
    h.set_uid(i.uid);
    h.set_gid(i.gid);
    h.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    h.set_entry_type(tar::EntryType::Regular);
    // Relative to `/`, where it is extracted (the tar crate refuses absolute names).
    let name = i.target.trim_start_matches('/');
    // Infallible for a relative name into a Vec.
    let _ = b.append_data(&mut h, name, i.content.as_slice());
    b.into_inner().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::Fake;
    use crate::load::{load, Options};
    use crate::up::{up, UpOptions};

    fn project(yaml: &str, environ: &[(&str, &str)]) -> (tempfile::TempDir, crate::Project) {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("compose.yaml"), yaml).unwrap();
        let p = load(&Options {
            cwd: t.path().to_path_buf(),
            environ: environ
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        })
        .unwrap();
        (t, p)
    }

    const APP: &str = "name: p\nservices:\n  a:\n    image: x\n    secrets: [f, {source: e, target: tok, uid: '100', mode: 0400}, {source: f, target: /etc/abs}]\n    configs: [c, {source: inline, target: conf/app.ini}]\nsecrets:\n  f: {file: ./f.txt}\n  e: {environment: TOKEN}\nconfigs:\n  c: {file: c.txt}\n  inline: {content: 'k=v'}\n";

    #[test]
    fn files_are_bound_read_only_the_others_injected() {
        let (t, p) = project(APP, &[("TOKEN", "t0k")]);
        let dir = t.path().display().to_string();
        let pl = plan(&p, "a").unwrap();
        let binds: Vec<(String, String, bool)> = pl
            .mounts
            .iter()
            .map(|m| {
                (
                    m["Source"].as_str().unwrap().to_string(),
                    m["Target"].as_str().unwrap().to_string(),
                    m["ReadOnly"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            binds,
            [
                (format!("{dir}/f.txt"), "/run/secrets/f".into(), true),
                (format!("{dir}/f.txt"), "/etc/abs".into(), true),
                (format!("{dir}/c.txt"), "/c".into(), true),
            ]
        );
        assert_eq!(
            pl.injections,
            [
                Injection {
                    target: "/run/secrets/tok".into(),
                    content: b"t0k".to_vec(),
                    uid: 100,
                    gid: 0,
                    mode: 0o400,
                    copy_uid_gid: true
                },
                Injection {
                    target: "/conf/app.ini".into(),
                    content: b"k=v".to_vec(),
                    uid: 0,
                    gid: 0,
                    mode: 0o444,
                    copy_uid_gid: false
                }
            ]
        );
        assert!(pl.warnings.is_empty());
        // The tar names the file relative to `/`, with its mode and owner.
        let tar = tar_of(&pl.injections[0]);
        let mut a = tar::Archive::new(tar.as_slice());
        let e = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.path().unwrap().display().to_string(), "run/secrets/tok");
        assert_eq!(e.header().mode().unwrap(), 0o400);
        assert_eq!(e.header().uid().unwrap(), 100);
    }

    #[test]
    fn up_mounts_and_copies_before_starting() {
        let (_t, p) = project(APP, &[("TOKEN", "t0k")]);
        let e = Fake::default();
        run(up(&e, &p, &UpOptions::default(), &mut Vec::new())).unwrap();
        let calls = e.calls.borrow().clone();
        let copy = calls.iter().position(|c| c.starts_with("copy ")).unwrap();
        let start = calls.iter().position(|c| c.starts_with("start ")).unwrap();
        assert!(copy < start, "{calls:?}");
        assert_eq!(e.copied.borrow().len(), 2);
        let a = e.by_name("p-a-1");
        let targets: Vec<&str> = a.body["HostConfig"]["Mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Target"].as_str().unwrap())
            .collect();
        assert_eq!(targets, ["/run/secrets/f", "/etc/abs", "/c"]);
    }

    #[test]
    fn what_compose_v2_refuses_or_warns_about() {
        // A bind cannot take uid/gid/mode: warned about, as v2 does, and ignored.
        let (_t, p) = project(
            "services:\n  a:\n    image: x\n    secrets: [{source: f, mode: 0400}]\nsecrets:\n  f: {file: f}\n",
            &[],
        );
        assert_eq!(
            plan(&p, "a").unwrap().warnings,
            ["WARN[0000] secrets `uid`, `gid` and `mode` are not supported, they will be ignored "]
        );
        let (_t, p) = project(
            "services:\n  a:\n    image: x\n    secrets: [e]\nsecrets:\n  e: {environment: NOPE}\n",
            &[],
        );
        assert_eq!(
            plan(&p, "a").unwrap_err().to_string(),
            "environment variable NOPE required by secret e is not set"
        );
        let (_t, p) = project(
            "services:\n  a:\n    image: x\n    secrets: [x]\nsecrets:\n  x: {external: true}\n",
            &[],
        );
        assert!(plan(&p, "a")
            .unwrap_err()
            .to_string()
            .contains("external secret x"));
        // Loading: an undefined one, a secret with two sources, content for a secret.
        for (yaml, want) in [
            (
                "services:\n  a: {image: x, secrets: [nope]}\n",
                "services.a.secrets: service \"a\" refers to undefined secret nope",
            ),
            (
                "services:\n  a: {image: x}\nsecrets:\n  s: {file: f, environment: E}\n",
                "secrets.s: needs exactly one of file, environment or external",
            ),
            (
                "services:\n  a: {image: x}\nsecrets:\n  s: {content: c}\n",
                "compose.yaml: secrets.s additional properties 'content' not allowed",
            ),
        ] {
            let t = tempfile::tempdir().unwrap();
            std::fs::write(t.path().join("compose.yaml"), yaml).unwrap();
            let e = load(&Options {
                cwd: t.path().to_path_buf(),
                ..Default::default()
            })
            .unwrap_err()
            .to_string();
            assert!(e.ends_with(want), "{e}");
        }
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }
}
