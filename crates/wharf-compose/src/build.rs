//! `build:`: its parsing, the request a service's build makes ([`request`]), and `compose
//! build` / the builds of `up` ([`build`], [`ensure_image`]). The build itself goes through the
//! engine's `POST /build` ([`crate::engine::Engine::build_image`]), as `wharf build` sends it.

use crate::engine::{BuildRequest, BuildSecret, Engine};
use crate::error::Result;
use crate::model::{Build, Project, Service, ServiceSecret};
use crate::parse::{kind, Ctx};
use crate::up::{UpError, UpResult};
use crate::yaml::{key_str, scalar_str};
use crate::Out;
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Keys of `build` in the spec that wharf does not implement: refused by name when building.
const UNSUPPORTED: &[&str] = &[
    "ssh",
    "cache_to",
    "additional_contexts",
    "isolation",
    "privileged",
    "ulimits",
    "platforms",
    "entitlements",
    "provenance",
    "sbom",
];

/// A list of `K=V` (or `K`) or a mapping, as `args` and `labels` take them.
fn pairs(cx: &Ctx, key: &str, v: &Value) -> Result<BTreeMap<String, Option<String>>> {
    let mut out = BTreeMap::new();
    match v {
        Value::Sequence(seq) => {
            for (i, x) in seq.iter().enumerate() {
                let s = cx.string(x, &format!("{key}[{i}]"))?;
                match s.split_once('=') {
                    Some((k, v)) => out.insert(k.to_string(), Some(v.to_string())),
                    None => out.insert(s, None),
                };
            }
        }
        _ => {
            for (k, x) in cx.map(v, key)? {
                let ks = key_str(k);
                let val = match x {
                    Value::Null => None,
                    _ => Some(cx.string(x, &format!("{key}.{ks}"))?),
                };
                out.insert(ks, val);
            }
        }
    }
    Ok(out)
}

/// The short (`name`) or long (`{source, target, uid, gid, mode}`) use of a secret or config.
pub fn service_secret(cx: &Ctx, key: &str, v: &Value) -> Result<ServiceSecret> {
    if let Some(s) = scalar_str(v) {
        return Ok(ServiceSecret {
            source: s,
            ..Default::default()
        });
    }
    let mut out = ServiceSecret::default();
    for (k, x) in cx.map(v, key)? {
        let ks = key_str(k);
        let sub = format!("{key}.{ks}");
        match ks.as_str() {
            "source" => out.source = cx.string(x, &sub)?,
            "target" => out.target = Some(cx.string(x, &sub)?),
            "uid" => out.uid = Some(cx.string(x, &sub)?),
            "gid" => out.gid = Some(cx.string(x, &sub)?),
            "mode" => out.mode = Some(mode(cx, &sub, x)?),
            k if k.starts_with("x-") => {}
            _ => return cx.err(key, format!("additional property {ks} is not allowed")),
        }
    }
    if out.source.is_empty() {
        return cx.err(key, "source is required");
    }
    Ok(out)
}

/// A file mode: a string is octal (serde_yaml_ng reads `0440` as the string "0440", which
/// compose-go's yaml.v3 reads as the octal integer: the same mode), a number is as written
/// (`0o440` or `288`).
fn mode(cx: &Ctx, key: &str, v: &Value) -> Result<u32> {
    match v {
        Value::String(s) => u32::from_str_radix(s.trim_start_matches("0o"), 8)
            .or_else(|_| cx.err(key, format!("invalid mode {s:?}: must be octal"))),
        Value::Number(n) => match n.as_u64() {
            Some(m) if m <= 0o7777 => Ok(m as u32),
            _ => cx.err(key, format!("invalid mode {n}")),
        },
        other => cx.err(key, format!("must be a number, not {}", kind(other))),
    }
}

/// Parses `build` (a context path, or the long form).
pub fn parse(cx: &Ctx, key: &str, v: &Value) -> Result<Build> {
    if let Some(s) = scalar_str(v) {
        return Ok(Build {
            context: s,
            ..Default::default()
        });
    }
    let mut b = Build {
        context: ".".into(),
        ..Default::default()
    };
    for (k, x) in cx.map(v, key)? {
        let ks = key_str(k);
        let sub = format!("{key}.{ks}");
        match ks.as_str() {
            "context" => b.context = cx.string(x, &sub)?,
            "dockerfile" => b.dockerfile = Some(cx.string(x, &sub)?),
            "dockerfile_inline" => b.dockerfile_inline = Some(cx.string(x, &sub)?),
            "args" => b.args = pairs(cx, &sub, x)?,
            "labels" => {
                b.labels = pairs(cx, &sub, x)?
                    .into_iter()
                    .map(|(k, v)| (k, v.unwrap_or_default()))
                    .collect()
            }
            "cache_from" => b.cache_from = cx.strings(x, &sub)?,
            "tags" => b.tags = cx.strings(x, &sub)?,
            "network" => b.network = Some(cx.string(x, &sub)?),
            "target" => b.target = Some(cx.string(x, &sub)?),
            "shm_size" => b.shm_size = Some(cx.string(x, &sub)?),
            "no_cache" => b.no_cache = cx.boolean(x, &sub)?,
            "pull" => b.pull = cx.boolean(x, &sub)?,
            "extra_hosts" => {
                b.extra_hosts = match x {
                    Value::Sequence(_) => cx
                        .strings(x, &sub)?
                        .into_iter()
                        // `host=ip` and `host:ip` are both allowed; `--add-host` takes `:`.
                        .map(|h| match h.split_once('=') {
                            Some((n, ip)) => format!("{n}:{ip}"),
                            None => h,
                        })
                        .collect(),
                    _ => cx
                        .string_map(x, &sub)?
                        .into_iter()
                        .map(|(n, ip)| format!("{n}:{ip}"))
                        .collect(),
                }
            }
            "secrets" => {
                let Value::Sequence(seq) = x else {
                    return cx.err(&sub, "must be a list");
                };
                for (i, s) in seq.iter().enumerate() {
                    b.secrets
                        .push(service_secret(cx, &format!("{sub}[{i}]"), s)?);
                }
            }
            k if k.starts_with("x-") => {}
            k if UNSUPPORTED.contains(&k) => {
                b.unsupported.insert(ks.clone(), x.clone());
            }
            _ => return cx.err(key, format!("additional property {ks} is not allowed")),
        }
    }
    if b.dockerfile.is_some() && b.dockerfile_inline.is_some() {
        return cx.err(
            key,
            "dockerfile and dockerfile_inline are mutually exclusive",
        );
    }
    Ok(b)
}

pub(crate) fn is_remote(context: &str) -> bool {
    ["http://", "https://", "git://", "github.com/", "git@"]
        .iter()
        .any(|p| context.starts_with(p))
}

/// How `compose build` (or `up --build`) builds.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub no_cache: bool,
    pub pull: bool,
    pub quiet: bool,
}

/// The `POST /build` a service's `build` makes: tagged with its image name (and `tags`).
pub fn request(p: &Project, name: &str, s: &Service, o: &BuildOptions) -> UpResult<BuildRequest> {
    let b = s
        .build
        .as_ref()
        .ok_or_else(|| UpError::NoBuild(name.to_string()))?;
    let unsupported = |key: String| UpError::Unsupported {
        service: name.to_string(),
        key,
    };
    if let Some(k) = b.unsupported.keys().next() {
        return Err(unsupported(format!("build.{k}")));
    }
    if is_remote(&b.context) {
        return Err(unsupported("build.context from a URL or git".into()));
    }
    let context = Path::new(&b.context).to_path_buf();
    let mut secrets = Vec::new();
    for use_ in &b.secrets {
        let sec = p
            .secrets
            .get(&use_.source)
            .ok_or_else(|| UpError::UndefinedSecret {
                service: name.to_string(),
                secret: use_.source.clone(),
            })?;
        if sec.external {
            return Err(unsupported(format!(
                "build.secrets: external secret {}",
                use_.source
            )));
        }
        secrets.push(BuildSecret {
            id: use_.target.clone().unwrap_or_else(|| use_.source.clone()),
            file: sec.file.as_ref().map(Into::into),
            env: sec.environment.clone(),
        });
    }
    let mut tags = vec![s.image_name(&p.name, name)];
    tags.extend(b.tags.iter().cloned());
    Ok(BuildRequest {
        service: name.to_string(),
        dockerfile: b
            .dockerfile
            .as_ref()
            .map(|d| context.join(d).display().to_string()),
        context,
        dockerfile_inline: b.dockerfile_inline.clone(),
        tags,
        args: b
            .args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect(),
        target: b.target.clone(),
        labels: b.labels.clone(),
        cache_from: b.cache_from.clone(),
        network: b.network.clone(),
        extra_hosts: b.extra_hosts.clone(),
        shm_size: b.shm_size.clone(),
        secrets,
        no_cache: o.no_cache || b.no_cache,
        pull: o.pull || b.pull,
        quiet: o.quiet,
    })
}

async fn build_one<E: Engine>(
    e: &E,
    p: &Project,
    name: &str,
    o: &BuildOptions,
    out: &mut dyn Out,
) -> UpResult<()> {
    let s = &p.services[name];
    let req = request(p, name, s, o)?;
    out.line(&format!(" Service {name}  Building"));
    e.build_image(&req).await?;
    out.line(&format!(" Service {name}  Built"));
    Ok(())
}

/// `compose build [SERVICE...]`: the named services (all when none) that have a `build`.
pub async fn build<E: Engine>(
    e: &E,
    p: &Project,
    services: &[String],
    o: &BuildOptions,
    out: &mut dyn Out,
) -> UpResult<()> {
    for s in services {
        if !p.services.contains_key(s) {
            return Err(UpError::NoSuchService(s.clone()));
        }
    }
    for (name, s) in &p.services {
        if s.build.is_none() || (!services.is_empty() && !services.contains(name)) {
            continue;
        }
        build_one(e, p, name, o, out).await?;
    }
    Ok(())
}

/// The image `up` runs for a service, made there if needed, and its id: built when `up
/// --build` says so or it is missing; pulled when missing and it has no `build` (or, with
/// both `image` and `build`, pulled first and built when the pull fails, as compose v2 does).
pub async fn ensure_image<E: Engine>(
    e: &E,
    p: &Project,
    name: &str,
    force_build: bool,
    out: &mut dyn Out,
) -> UpResult<String> {
    let s = &p.services[name];
    let image = s.image_name(&p.name, name);
    let mut id = e.image_id(&image).await?;
    let must_build = s.build.is_some() && (force_build || id.is_none());
    if !must_build && id.is_none() {
        out.line(&format!(" {name} Pulling "));
        e.pull_image(&image).await?;
        out.line(&format!(" {name} Pulled "));
    } else if must_build {
        let pulled = if s.image.is_some() && !force_build {
            out.line(&format!(" {name} Pulling "));
            let r = e.pull_image(&image).await;
            if r.is_ok() {
                out.line(&format!(" {name} Pulled "));
            } else {
                out.line(&format!(" {name} Warning pull failed, building"));
            }
            r.is_ok()
        } else {
            false
        };
        if !pulled {
            build_one(e, p, name, &BuildOptions::default(), out).await?;
        }
    }
    if id.is_none() || must_build {
        id = e.image_id(&image).await?;
    }
    id.ok_or(UpError::NoImage(image))
}

/// `push [SERVICE...]`: the images of the named services (all when none) that have an
/// `image` name (compose v2 pushes the services with `image`; the others have nowhere to go).
pub async fn push<E: Engine>(
    e: &E,
    p: &Project,
    services: &[String],
    ignore_failures: bool,
    out: &mut dyn Out,
) -> UpResult<()> {
    for s in services {
        if !p.services.contains_key(s) {
            return Err(UpError::NoSuchService(s.clone()));
        }
    }
    for (name, s) in &p.services {
        if !services.is_empty() && !services.contains(name) {
            continue;
        }
        let Some(image) = &s.image else { continue };
        let mut all = vec![image.clone()];
        if let Some(b) = &s.build {
            all.extend(b.tags.iter().cloned());
        }
        for img in all {
            out.line(&format!(" Image {img}  Pushing"));
            match e.push_image(&img).await {
                Ok(()) => out.line(&format!(" Image {img}  Pushed")),
                Err(err) if ignore_failures => {
                    out.line(&format!(" Image {img}  Error {}", err.message))
                }
                Err(err) => return Err(err.into()),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::Fake;
    use crate::load::{load, Options};
    use crate::up::{up, UpOptions};

    fn project(yaml: &str, environ: &[(&str, &str)]) -> (tempfile::TempDir, Project) {
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

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn short_and_long_forms_resolve_against_the_project_directory() {
        let (t, p) = project(
            "name: p\nservices:\n  a: {build: ./app}\n  b:\n    image: reg/b:1\n    build:\n      context: sub\n      dockerfile: ../Other.df\n      args: [FROM_ENV, SET=1, UNSET]\n      labels: [l=v]\n      target: dev\n      cache_from: [x:1]\n      network: host\n      extra_hosts: ['h=10.0.0.1', 'g:10.0.0.2']\n      tags: ['reg/b:latest']\n      no_cache: true\n",
            &[("FROM_ENV", "e")],
        );
        let dir = t.path().display().to_string();
        let a = p.services["a"].build.as_ref().unwrap();
        assert_eq!(a.context, format!("{dir}/app"));
        let r = request(&p, "a", &p.services["a"], &BuildOptions::default()).unwrap();
        assert_eq!(r.tags, ["p-a"]);
        assert_eq!(r.dockerfile, None);
        let r = request(&p, "b", &p.services["b"], &BuildOptions::default()).unwrap();
        assert_eq!(r.context.display().to_string(), format!("{dir}/sub"));
        assert_eq!(
            r.dockerfile.as_deref(),
            Some(format!("{dir}/sub/../Other.df").as_str())
        );
        assert_eq!(r.tags, ["reg/b:1", "reg/b:latest"]);
        // A name alone takes the environment's value, and is left out when it has none.
        assert_eq!(
            r.args.iter().collect::<Vec<_>>(),
            [
                (&"FROM_ENV".to_string(), &"e".to_string()),
                (&"SET".into(), &"1".into())
            ]
        );
        assert_eq!(r.labels["l"], "v");
        assert_eq!(r.target.as_deref(), Some("dev"));
        assert_eq!(r.cache_from, ["x:1"]);
        assert_eq!(r.network.as_deref(), Some("host"));
        assert_eq!(r.extra_hosts, ["h:10.0.0.1", "g:10.0.0.2"]);
        assert!(r.no_cache && !r.pull);
    }

    #[test]
    fn errors_name_the_key() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("compose.yaml"),
            "services:\n  a:\n    build: {context: ., bogus: 1}\n",
        )
        .unwrap();
        let e = load(&Options {
            cwd: t.path().to_path_buf(),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.ends_with("compose.yaml: services.a.build additional properties 'bogus' not allowed"),
            "{e}"
        );
        let (_t, p) = project(
            "services:\n  a:\n    build: {context: ., ssh: [default]}\n",
            &[],
        );
        let e = request(&p, "a", &p.services["a"], &BuildOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "service \"a\": build.ssh is not supported by wharf compose yet"
        );
        let (_t, p) = project(
            "services:\n  a:\n    build: {context: ., secrets: [nope]}\n",
            &[],
        );
        let e = request(&p, "a", &p.services["a"], &BuildOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "service \"a\" refers to undefined secret nope"
        );
    }

    #[test]
    fn build_secrets_come_from_top_level_secrets() {
        let (t, p) = project(
            "services:\n  a:\n    build:\n      context: .\n      secrets: [tok, {source: key, target: k2}]\nsecrets:\n  tok: {file: ./tok.txt}\n  key: {environment: KEY}\n",
            &[],
        );
        let r = request(&p, "a", &p.services["a"], &BuildOptions::default()).unwrap();
        assert_eq!(
            r.secrets,
            [
                BuildSecret {
                    id: "tok".into(),
                    file: Some(t.path().join("tok.txt")),
                    env: None
                },
                BuildSecret {
                    id: "k2".into(),
                    file: None,
                    env: Some("KEY".into())
                }
            ]
        );
    }

    #[test]
    fn up_builds_what_is_missing_and_up_build_rebuilds_and_recreates() {
        let (_t, p) = project(
            "name: p\nservices:\n  web: {build: .}\n  db: {image: busybox}\n",
            &[],
        );
        let e = Fake::default();
        e.absent.borrow_mut().insert("p-web".into());
        run(up(&e, &p, &UpOptions::default(), &mut Vec::new())).unwrap();
        let calls = e.calls.borrow().clone();
        assert!(calls.contains(&"build p-web".to_string()), "{calls:?}");
        assert!(!calls.iter().any(|c| c.starts_with("pull")), "{calls:?}");
        let web = e.by_name("p-web-1");
        assert_eq!(web.body["Image"], "p-web");
        assert_eq!(
            web.body["Labels"]["com.docker.compose.image"],
            "sha256:built0"
        );
        // Again: nothing built, nothing recreated.
        e.calls.borrow_mut().clear();
        let mut out = Vec::new();
        run(up(&e, &p, &UpOptions::default(), &mut out)).unwrap();
        assert!(!e.calls.borrow().iter().any(|c| c.starts_with("build")));
        assert!(
            out.contains(&" Container p-web-1  Running".to_string()),
            "{out:?}"
        );
        // --build: built again, a new image id, so the container is recreated (db is not).
        let mut out = Vec::new();
        let o = UpOptions {
            build: true,
            ..Default::default()
        };
        run(up(&e, &p, &o, &mut out)).unwrap();
        assert!(
            out.contains(&" Container p-web-1  Recreate".to_string()),
            "{out:?}"
        );
        assert!(
            out.contains(&" Container p-db-1  Running".to_string()),
            "{out:?}"
        );
        assert_eq!(
            e.by_name("p-web-1").body["Labels"]["com.docker.compose.image"],
            "sha256:built1"
        );
    }

    #[test]
    fn image_and_build_pull_first_then_build_when_the_pull_fails() {
        let (_t, p) = project(
            "name: p\nservices:\n  web: {image: 'mine/web:1', build: .}\n",
            &[],
        );
        let e = Fake::default();
        e.absent.borrow_mut().insert("mine/web:1".into());
        run(up(&e, &p, &UpOptions::default(), &mut Vec::new())).unwrap();
        let calls = e.calls.borrow().clone();
        let pull = calls.iter().position(|c| c == "pull mine/web:1");
        let build = calls.iter().position(|c| c == "build mine/web:1");
        assert!(
            pull.is_some() && build.is_some() && pull < build,
            "{calls:?}"
        );
    }

    #[test]
    fn compose_build_and_push_take_the_services_named() {
        let (_t, p) = project(
            "name: p\nservices:\n  a: {build: ., image: 'r/a:1'}\n  b: {build: .}\n  c: {image: busybox}\n",
            &[],
        );
        let e = Fake::default();
        let o = BuildOptions {
            no_cache: true,
            pull: true,
            quiet: true,
        };
        run(build(&e, &p, &[], &o, &mut Vec::new())).unwrap();
        assert_eq!(*e.calls.borrow(), ["build r/a:1", "build p-b"]);
        assert!(e
            .builds
            .borrow()
            .iter()
            .all(|b| b.no_cache && b.pull && b.quiet));
        e.calls.borrow_mut().clear();
        run(build(&e, &p, &["b".into()], &o, &mut Vec::new())).unwrap();
        assert_eq!(*e.calls.borrow(), ["build p-b"]);
        assert!(run(build(&e, &p, &["z".into()], &o, &mut Vec::new())).is_err());
        e.calls.borrow_mut().clear();
        run(push(&e, &p, &[], false, &mut Vec::new())).unwrap();
        // Only services with an image name are pushed (compose v2's rule).
        assert_eq!(*e.calls.borrow(), ["push r/a:1", "push busybox"]);
    }

    #[test]
    fn modes_are_octal() {
        let (_t, p) = project(
            "services:\n  a:\n    build:\n      context: .\n      secrets: [{source: s, mode: 0440}, {source: s, target: t, mode: 0o400}]\nsecrets:\n  s: {file: f}\n",
            &[],
        );
        let b = p.services["a"].build.as_ref().unwrap();
        assert_eq!(b.secrets[0].mode, Some(0o440));
        assert_eq!(b.secrets[1].mode, Some(0o400));
    }
}
