//! Loading a project as docker compose v2 does: file discovery, `.env`, interpolation,
//! `extends`, merging of several files, the project name, `env_file`, `profiles`, and the
//! implied `default` network.

use crate::env::{read_env_file, EnvMap};
use crate::error::{invalid, ComposeError, Result};
use crate::interpolate::{interpolate_tree, InterpError};
use crate::merge::{merge_files, merge_service, normalize_service};
use crate::model::*;
use crate::parse::{self, Ctx};
use crate::yaml::{get, key_str, scalar_str, str_key};
use serde_yaml_ng::{Mapping, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The file names looked for, in order, in the working directory and then its parents.
pub const CANDIDATES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// What the command line says about the project.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `-f`, in order (none: discovery, or `COMPOSE_FILE`).
    pub files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--project-directory`.
    pub project_directory: Option<PathBuf>,
    /// `--env-file` (none: `<project dir>/.env` when it exists).
    pub env_files: Vec<PathBuf>,
    /// `--profile`.
    pub profiles: Vec<String>,
    /// The process environment (passed in, so tests need not change their own).
    pub environ: BTreeMap<String, String>,
    /// Where discovery starts (the current directory).
    pub cwd: PathBuf,
    /// The files being included already (`include` loads its files with this set).
    pub include_chain: Vec<PathBuf>,
}

/// The `*.override.*` file beside a discovered one (`compose.yaml` → `compose.override.yaml`).
pub fn override_of(file: &Path) -> PathBuf {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (stem, ext) = name.rsplit_once('.').unwrap_or((&name, "yaml"));
    file.with_file_name(format!("{stem}.override.{ext}"))
}

/// Finds the compose file in `dir` or its parents, and its override if there is one.
pub fn discover(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut d = Some(dir);
    while let Some(cur) = d {
        for c in CANDIDATES {
            let p = cur.join(c);
            if p.is_file() {
                let mut out = vec![p.clone()];
                let o = override_of(&p);
                if o.is_file() {
                    out.push(o);
                }
                return Ok(out);
            }
        }
        d = cur.parent();
    }
    Err(ComposeError::NotFound {
        dir: dir.to_path_buf(),
        looked: CANDIDATES.join(", "),
    })
}

/// A directory name made into a project name: lowercase, only `[a-z0-9_-]`, starting with a
/// letter or digit.
pub fn normalize_project_name(s: &str) -> String {
    let lower: String = s
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    lower.trim_start_matches(['_', '-']).to_string()
}

fn check_project_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ComposeError::ProjectName {
            name: name.to_string(),
        })
    }
}

fn read_yaml(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| ComposeError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut v: Value = serde_yaml_ng::from_str(&text).map_err(|source| ComposeError::Yaml {
        path: path.to_path_buf(),
        source,
    })?;
    // `<<: *anchor` merge keys, as compose-go's YAML parser applies them.
    v.apply_merge().map_err(|source| ComposeError::Yaml {
        path: path.to_path_buf(),
        source,
    })?;
    match v {
        Value::Mapping(_) => Ok(v),
        Value::Null => Ok(Value::Mapping(Mapping::new())),
        _ => Err(invalid(
            &path.display().to_string(),
            "(top level)",
            "must be a mapping",
        )),
    }
}

fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}

/// A variable lookup: the process environment first, then the `.env` files.
struct Vars<'a> {
    environ: &'a BTreeMap<String, String>,
    dotenv: EnvMap,
}

impl Vars<'_> {
    fn get(&self, k: &str) -> Option<String> {
        self.environ.get(k).or_else(|| self.dotenv.get(k)).cloned()
    }
}

/// Reads, interpolates and resolves the `extends` of one file.
fn read_file(path: &Path, vars: &Vars, cache: &mut BTreeMap<PathBuf, Value>) -> Result<Value> {
    if let Some(v) = cache.get(path) {
        return Ok(v.clone());
    }
    let mut v = read_yaml(path)?;
    let file = path.display().to_string();
    let lookup = |k: &str| vars.get(k);
    interpolate_tree(&mut v, &mut Vec::new(), &lookup).map_err(|(key, value, e)| match e {
        InterpError::Required { var, message } => ComposeError::Required {
            file: file.clone(),
            key,
            var,
            message,
        },
        InterpError::Format(message) => ComposeError::Interpolation {
            file: file.clone(),
            key,
            value,
            message,
        },
    })?;
    crate::interpolate::cast_tree(&mut v, &mut Vec::new())
        .map_err(|(key, message)| invalid(&file, &key, message))?;
    crate::schema::validate(&file, &v)?;
    cache.insert(path.to_path_buf(), v.clone());
    resolve_extends(path, &mut v, vars, cache)?;
    cache.insert(path.to_path_buf(), v.clone());
    Ok(v)
}

/// Replaces each service that `extends` another by the other merged with it.
fn resolve_extends(
    path: &Path,
    file: &mut Value,
    vars: &Vars,
    cache: &mut BTreeMap<PathBuf, Value>,
) -> Result<()> {
    let names: Vec<String> = match file {
        Value::Mapping(m) => match get(m, "services") {
            Some(Value::Mapping(s)) => s.keys().map(key_str).collect(),
            _ => return Ok(()),
        },
        _ => return Ok(()),
    };
    for name in names {
        let resolved = extended(path, file, &name, vars, cache, &mut Vec::new())?;
        if let Value::Mapping(m) = file {
            if let Some(Value::Mapping(s)) = m.get_mut(str_key("services")) {
                s.insert(str_key(&name), resolved);
            }
        }
    }
    Ok(())
}

fn service_of(file: &Value, name: &str) -> Option<Value> {
    let Value::Mapping(m) = file else { return None };
    let Some(Value::Mapping(s)) = get(m, "services") else {
        return None;
    };
    get(s, name).cloned()
}

/// One service with its `extends` chain resolved.
fn extended(
    path: &Path,
    file: &Value,
    name: &str,
    vars: &Vars,
    cache: &mut BTreeMap<PathBuf, Value>,
    chain: &mut Vec<String>,
) -> Result<Value> {
    let fname = path.display().to_string();
    let key = format!("services.{name}");
    let Some(svc) = service_of(file, name) else {
        return Err(invalid(
            &fname,
            &key,
            "extends a service that does not exist",
        ));
    };
    let Value::Mapping(mut m) = svc else {
        return Ok(svc);
    };
    let Some(ext) = m.remove(str_key("extends")) else {
        return Ok(Value::Mapping(m));
    };
    let here = format!("{fname}:{name}");
    if chain.contains(&here) {
        chain.push(here);
        return Err(ComposeError::ExtendsCycle {
            service: name.to_string(),
            chain: chain.join(" -> "),
        });
    }
    chain.push(here);
    let (base_name, base_file) = match &ext {
        Value::String(s) => (s.clone(), None),
        Value::Mapping(e) => {
            let s = get(e, "service")
                .and_then(scalar_str)
                .ok_or_else(|| invalid(&fname, &format!("{key}.extends"), "needs a service"))?;
            (s, get(e, "file").and_then(scalar_str))
        }
        _ => {
            return Err(invalid(
                &fname,
                &format!("{key}.extends"),
                "must be a service name or a mapping",
            ))
        }
    };
    let mut base = match base_file {
        None => extended(path, file, &base_name, vars, cache, chain)?,
        Some(f) => {
            let other = absolute(path.parent().unwrap_or(Path::new(".")), Path::new(&f));
            let other_v = read_file(&other, vars, cache)?;
            if service_of(&other_v, &base_name).is_none() {
                return Err(invalid(
                    &fname,
                    &format!("{key}.extends"),
                    format!("service {base_name:?} not found in {}", other.display()),
                ));
            }
            let mut base = extended(&other, &other_v, &base_name, vars, cache, chain)?;
            rebase_paths(&mut base, other.parent().unwrap_or(Path::new("/")));
            base
        }
    };
    chain.pop();
    merge_service(&mut base, Value::Mapping(m));
    Ok(base)
}

/// Makes the relative paths of a service from another file (bind sources, `env_file`,
/// `build` contexts) relative to that file's directory, as compose does for `extends`.
fn rebase_paths(svc: &mut Value, dir: &Path) {
    let Value::Mapping(m) = svc else { return };
    let rel = |p: &str| -> Option<String> {
        (p.starts_with("./") || p.starts_with("../") || p == "." || p == "..")
            .then(|| clean(&dir.join(p)).display().to_string())
    };
    let join = |p: &mut String| *p = clean(&dir.join(&*p)).display().to_string();
    if let Some(Value::Sequence(vols)) = m.get_mut(str_key("volumes")) {
        for v in vols {
            match v {
                Value::String(s) => {
                    if let Some((src, rest)) = s.split_once(':') {
                        if let Some(abs) = rel(src) {
                            *s = format!("{abs}:{rest}");
                        }
                    }
                }
                Value::Mapping(vm) => {
                    if let Some(Value::String(src)) = vm.get_mut(str_key("source")) {
                        if let Some(abs) = rel(src) {
                            *src = abs;
                        }
                    }
                }
                _ => {}
            }
        }
    }
    match m.get_mut(str_key("env_file")) {
        Some(Value::String(p)) => join(p),
        Some(Value::Sequence(list)) => {
            for e in list {
                match e {
                    Value::String(p) => join(p),
                    Value::Mapping(em) => {
                        if let Some(Value::String(p)) = em.get_mut(str_key("path")) {
                            join(p);
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    match m.get_mut(str_key("build")) {
        Some(Value::String(c)) => join(c),
        Some(Value::Mapping(bm)) => {
            if let Some(Value::String(c)) = bm.get_mut(str_key("context")) {
                join(c);
            }
        }
        _ => {}
    }
}

/// Loads the project the options describe.
pub fn load(opts: &Options) -> Result<Project> {
    let files: Vec<PathBuf> = if !opts.files.is_empty() {
        opts.files.iter().map(|f| absolute(&opts.cwd, f)).collect()
    } else if let Some(cf) = opts.environ.get("COMPOSE_FILE").filter(|s| !s.is_empty()) {
        cf.split(':')
            .map(|f| absolute(&opts.cwd, Path::new(f)))
            .collect()
    } else {
        discover(opts.project_directory.as_deref().unwrap_or(&opts.cwd))?
    };
    let working_dir = match &opts.project_directory {
        Some(d) => absolute(&opts.cwd, d),
        None => files[0]
            .parent()
            .map_or_else(|| opts.cwd.clone(), Path::to_path_buf),
    };
    let env_files: Vec<PathBuf> = if opts.env_files.is_empty() {
        let d = working_dir.join(".env");
        if d.is_file() {
            vec![d]
        } else {
            vec![]
        }
    } else {
        opts.env_files
            .iter()
            .map(|f| absolute(&opts.cwd, f))
            .collect()
    };
    let mut dotenv = EnvMap::new();
    for f in &env_files {
        let outer = |k: &str| {
            opts.environ
                .get(k)
                .cloned()
                .or_else(|| dotenv.get(k).cloned())
        };
        let m = read_env_file(f, &outer)?;
        dotenv.extend(m);
    }
    let vars = Vars {
        environ: &opts.environ,
        dotenv,
    };
    let mut cache = BTreeMap::new();
    let mut merged = Value::Mapping(Mapping::new());
    let mut includes = Vec::new();
    for f in &files {
        let mut v = read_file(f, &vars, &mut cache)?;
        // `include` paths are relative to the file that names them.
        if let Value::Mapping(m) = &mut v {
            if let Some(inc) = m.remove(str_key("include")) {
                let dir = f.parent().unwrap_or(Path::new("/"));
                includes.extend(crate::include::parse(&f.display().to_string(), &inc, dir)?);
            }
        }
        merge_files(&mut merged, v);
    }
    let file_label = files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let cx = Ctx { file: &file_label };
    let Value::Mapping(top) = merged else {
        unreachable!("merge of mappings")
    };

    let name_from_file = get(&top, "name")
        .and_then(scalar_str)
        .filter(|s| !s.is_empty());
    let name = match (
        &opts.project_name,
        vars.get("COMPOSE_PROJECT_NAME").filter(|s| !s.is_empty()),
        name_from_file,
    ) {
        (Some(p), _, _) => p.clone(),
        (None, Some(e), _) => e,
        (None, None, Some(n)) => n,
        (None, None, None) => normalize_project_name(
            &working_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
    };
    check_project_name(&name)?;

    let mut project = Project {
        name: name.clone(),
        working_dir: working_dir.clone(),
        config_files: files.clone(),
        ..Default::default()
    };
    for (k, v) in &top {
        let ks = key_str(k);
        match ks.as_str() {
            "name" | "version" | "services" | "networks" | "volumes" | "secrets" | "configs" => {}
            "models" => {
                return Err(invalid(
                    &file_label,
                    &ks,
                    "is not supported by wharf compose yet",
                ))
            }
            k if k.starts_with("x-") => {}
            _ => {
                return Err(invalid(
                    &file_label,
                    "(top level)",
                    format!("additional property {ks} is not allowed"),
                ))
            }
        }
        let _ = v;
    }
    for (section, is_net) in [("networks", true), ("volumes", false)] {
        let Some(sec) = get(&top, section) else {
            continue;
        };
        if matches!(sec, Value::Null) {
            continue;
        }
        let Value::Mapping(sec) = sec else {
            return Err(invalid(&file_label, section, "must be a mapping"));
        };
        for (k, v) in sec {
            let rname = key_str(k);
            let r = parse::resource(&cx, section, &rname, v, &name)?;
            if is_net {
                project.networks.insert(rname, r);
            } else {
                let volume = Volume {
                    name: r.name,
                    driver: r.driver,
                    driver_opts: r.driver_opts,
                    external: r.external,
                    labels: r.labels,
                    unsupported: r.unsupported,
                };
                project.volumes.insert(rname, volume);
            }
        }
    }

    for section in ["secrets", "configs"] {
        let Some(sec) = get(&top, section).filter(|v| !matches!(v, Value::Null)) else {
            continue;
        };
        let Value::Mapping(sec) = sec else {
            return Err(invalid(&file_label, section, "must be a mapping"));
        };
        for (k, v) in sec {
            let sname = key_str(k);
            let mut parsed = crate::secrets::parse(&cx, section, &sname, v, &name, &working_dir)?;
            if let Some(var) = &parsed.environment {
                parsed.env_value = vars.get(var);
            }
            if section == "secrets" {
                project.secrets.insert(sname, parsed);
            } else {
                project.configs.insert(sname, parsed);
            }
        }
    }

    let lookup = |k: &str| vars.get(k);
    let mut active: BTreeSet<String> = opts.profiles.iter().cloned().collect();
    if let Some(p) = vars.get("COMPOSE_PROFILES") {
        active.extend(
            p.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
    }
    if let Some(services) = get(&top, "services") {
        let Value::Mapping(services) = services else {
            return Err(invalid(&file_label, "services", "must be a mapping"));
        };
        for (k, v) in services {
            let sname = key_str(k);
            let v = normalize_service(v.clone());
            let mut s = parse::service(&cx, &sname, &v)?;
            apply_env_files(&cx, &sname, &v, &working_dir, &lookup, &mut s)?;
            // `environment: [NAME]`: from the environment, when set there.
            let unset: Vec<String> = s
                .environment
                .iter()
                .filter(|(_, v)| v.is_none())
                .map(|(k, _)| k.clone())
                .collect();
            for k in unset {
                if let Some(v) = lookup(&k) {
                    s.environment.insert(k, Some(v));
                }
            }
            for vol in &mut s.volumes {
                if vol.kind == VolumeKind::Bind {
                    if let Some(src) = &vol.source {
                        let p = if let Some(rest) = src.strip_prefix("~/") {
                            PathBuf::from(opts.environ.get("HOME").cloned().unwrap_or_default())
                                .join(rest)
                        } else {
                            absolute(&working_dir, Path::new(src))
                        };
                        vol.source = Some(clean(&p).display().to_string());
                    }
                }
            }
            if let Some(d) = &mut s.develop {
                for w in &mut d.watch {
                    w.path = clean(&absolute(&working_dir, Path::new(&w.path)))
                        .display()
                        .to_string();
                }
            }
            if let Some(b) = &mut s.build {
                if !crate::build::is_remote(&b.context) {
                    b.context = clean(&absolute(&working_dir, Path::new(&b.context)))
                        .display()
                        .to_string();
                }
                // `args: [NAME]`: from the environment, when set there.
                for (k, v) in b.args.iter_mut() {
                    if v.is_none() {
                        *v = lookup(k);
                    }
                }
            }
            if s.networks.is_empty() {
                s.networks.insert("default".into(), None);
            }
            let enabled = s.profiles.is_empty()
                || s.profiles.iter().any(|p| active.contains(p) || p == "*")
                || active.contains("*");
            if enabled {
                project.services.insert(sname, s);
            } else {
                project.disabled.insert(sname, s);
            }
        }
    }
    crate::include::apply(&file_label, &includes, &mut project, opts)?;
    // The references between services, networks and volumes.
    let uses_default = project
        .services
        .values()
        .any(|s| s.networks.contains_key("default"));
    if uses_default && !project.networks.contains_key("default") {
        project.networks.insert(
            "default".into(),
            Network {
                name: format!("{name}_default"),
                ..Default::default()
            },
        );
    }
    for (sname, s) in &project.services {
        for n in s.networks.keys() {
            if !project.networks.contains_key(n) {
                return Err(invalid(
                    &file_label,
                    &format!("services.{sname}.networks"),
                    format!("service {sname:?} refers to undefined network {n}"),
                ));
            }
        }
        for v in &s.volumes {
            if let (VolumeKind::Volume, Some(src)) = (v.kind, &v.source) {
                if !project.volumes.contains_key(src) {
                    return Err(invalid(
                        &file_label,
                        &format!("services.{sname}.volumes"),
                        format!("service {sname:?} refers to undefined volume {src}"),
                    ));
                }
            }
        }
        for (what, uses, defined) in [
            ("secret", &s.secrets, &project.secrets),
            ("config", &s.configs, &project.configs),
        ] {
            for u in uses {
                if !defined.contains_key(&u.source) {
                    return Err(invalid(
                        &file_label,
                        &format!("services.{sname}.{what}s"),
                        format!("service {sname:?} refers to undefined {what} {}", u.source),
                    ));
                }
            }
        }
        for (d, dep) in &s.depends_on {
            if project.services.contains_key(d) {
                continue;
            }
            if project.disabled.contains_key(d) {
                if dep.required {
                    return Err(invalid(
                        &file_label,
                        &format!("services.{sname}.depends_on"),
                        format!(
                            "service {d:?} is required by {sname:?} but is disabled (profiles)"
                        ),
                    ));
                }
                continue;
            }
            if !dep.required {
                // compose: an optional dependency that is not there is left out.
                continue;
            }
            return Err(invalid(
                &file_label,
                &format!("services.{sname}.depends_on"),
                format!("service {sname:?} depends on undefined service {d:?}"),
            ));
        }
    }
    Ok(project)
}

/// `env_file` (a path, a list, or `{path, required}` entries), relative to the project
/// directory; `environment` wins over it.
fn apply_env_files(
    cx: &Ctx,
    sname: &str,
    v: &Value,
    dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    s: &mut Service,
) -> Result<()> {
    let Value::Mapping(m) = v else { return Ok(()) };
    let Some(ef) = get(m, "env_file") else {
        return Ok(());
    };
    let key = format!("services.{sname}.env_file");
    let entries: Vec<(String, bool)> = match ef {
        Value::String(p) => vec![(p.clone(), true)],
        Value::Sequence(seq) => {
            let mut out = Vec::new();
            for (i, e) in seq.iter().enumerate() {
                match e {
                    Value::Mapping(em) => {
                        let p = get(em, "path").and_then(scalar_str).ok_or_else(|| {
                            invalid(cx.file, &format!("{key}[{i}]"), "needs a path")
                        })?;
                        let req = !matches!(get(em, "required"), Some(Value::Bool(false)));
                        out.push((p, req));
                    }
                    other => out.push((
                        scalar_str(other).ok_or_else(|| {
                            invalid(cx.file, &format!("{key}[{i}]"), "must be a path")
                        })?,
                        true,
                    )),
                }
            }
            out
        }
        _ => return Err(invalid(cx.file, &key, "must be a path or a list of paths")),
    };
    let mut from_files = EnvMap::new();
    for (p, required) in entries {
        let path = absolute(dir, Path::new(&p));
        if !path.exists() && !required {
            continue;
        }
        from_files.extend(read_env_file(&path, lookup)?);
    }
    for (k, val) in from_files {
        s.environment.entry(k).or_insert(Some(val));
    }
    Ok(())
}

/// `a/./b/../c` → `a/c` without touching the file system.
pub(crate) fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn opts(dir: &Path) -> Options {
        Options {
            cwd: dir.to_path_buf(),
            ..Default::default()
        }
    }

    fn write(dir: &Path, name: &str, text: &str) {
        fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn discovery_order_override_and_parents() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(d, "docker-compose.yml", "services: {a: {image: x}}\n");
        write(d, "compose.yaml", "services: {b: {image: x}}\n");
        write(d, "compose.override.yaml", "services: {b: {image: y}}\n");
        fs::create_dir(d.join("sub")).unwrap();
        let found = discover(&d.join("sub")).unwrap();
        assert_eq!(
            found,
            [d.join("compose.yaml"), d.join("compose.override.yaml")]
        );
        let p = load(&opts(&d.join("sub"))).unwrap();
        assert_eq!(p.services["b"].image.as_deref(), Some("y"));
        assert!(!p.services.contains_key("a"));
        assert_eq!(
            override_of(Path::new("/x/docker-compose.yml")),
            Path::new("/x/docker-compose.override.yml")
        );
        let e = load(&opts(Path::new("/proc/self")))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("no configuration file provided: not found"),
            "{e}"
        );
    }

    #[test]
    fn project_name_precedence() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("My_App.v2");
        fs::create_dir(&d).unwrap();
        write(&d, "compose.yaml", "services: {a: {image: x}}\n");
        assert_eq!(load(&opts(&d)).unwrap().name, "my_appv2");
        write(
            &d,
            "compose.yaml",
            "name: fromfile\nservices: {a: {image: x}}\n",
        );
        assert_eq!(load(&opts(&d)).unwrap().name, "fromfile");
        write(&d, ".env", "COMPOSE_PROJECT_NAME=fromdotenv\n");
        assert_eq!(load(&opts(&d)).unwrap().name, "fromdotenv");
        let mut o = opts(&d);
        o.environ
            .insert("COMPOSE_PROJECT_NAME".into(), "fromenv".into());
        assert_eq!(load(&o).unwrap().name, "fromenv");
        o.project_name = Some("flag".into());
        assert_eq!(load(&o).unwrap().name, "flag");
        o.project_name = Some("Bad".into());
        assert!(matches!(load(&o), Err(ComposeError::ProjectName { .. })));
    }

    #[test]
    fn dotenv_env_file_flag_and_environment_precedence() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(d, "compose.yaml", "services:\n  a:\n    image: \"busybox:${TAG:-latest}\"\n    environment: [FROM_SHELL, UNSET_ALL]\n    command: echo ${MSG:?set MSG}\n");
        write(d, ".env", "TAG=1.36\nMSG=hi\n");
        let mut o = opts(d);
        o.environ.insert("FROM_SHELL".into(), "s".into());
        let p = load(&o).unwrap();
        assert_eq!(p.services["a"].image.as_deref(), Some("busybox:1.36"));
        assert_eq!(p.services["a"].command.as_ref().unwrap(), &["echo", "hi"]);
        assert_eq!(p.services["a"].environment["FROM_SHELL"], Some("s".into()));
        assert_eq!(p.services["a"].environment["UNSET_ALL"], None);
        o.environ.insert("TAG".into(), "env".into());
        assert_eq!(
            load(&o).unwrap().services["a"].image.as_deref(),
            Some("busybox:env")
        );
        write(d, "other.env", "TAG=other\n");
        let mut o = opts(d);
        o.env_files = vec!["other.env".into()];
        let e = load(&o).unwrap_err().to_string();
        assert!(
            e.ends_with("services.a.command: required variable MSG is missing a value: set MSG"),
            "{e}"
        );
    }

    #[test]
    fn each_file_is_validated_after_interpolation_and_named() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(d, "compose.yaml", "services:\n  web:\n    image: x\n");
        // The override breaks the schema: the error names it, not the base file.
        write(
            d,
            "compose.override.yaml",
            "services:\n  web:\n    ports: [{target: 80, host: h}]\n",
        );
        let e = load(&opts(d)).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "validating {}: services.web.ports.0 additional properties 'host' not allowed",
                d.join("compose.override.yaml").display()
            )
        );
        // Interpolated text cast where compose v2 casts it passes the schema (which wants a
        // boolean for depends_on's required) and reaches the model.
        write(
            d,
            "compose.override.yaml",
            "services:\n  web:\n    init: ${INIT:-true}\n    depends_on:\n      db: {condition: service_started, required: \"${REQ}\"}\n  db:\n    image: y\n",
        );
        let mut o = opts(d);
        o.environ.insert("REQ".into(), "false".into());
        let p = load(&o).unwrap();
        assert_eq!(p.services["web"].init, Some(true));
        assert!(!p.services["web"].depends_on["db"].required);
        // YAML merge keys are applied before validation.
        write(
            d,
            "compose.override.yaml",
            "x-base: &base\n  image: z\n  init: true\nservices:\n  web:\n    <<: *base\n    image: w\n",
        );
        let p = load(&opts(d)).unwrap();
        assert_eq!(p.services["web"].image.as_deref(), Some("w"));
        assert_eq!(p.services["web"].init, Some(true));
        // A type no cast fixes is the schema's error (of a oneOf, the first alternative's, as
        // compose-go picks it).
        write(
            d,
            "compose.override.yaml",
            "services:\n  web:\n    command: {a: b}\n",
        );
        let e = load(&opts(d)).unwrap_err().to_string();
        assert!(
            e.ends_with("compose.override.yaml: services.web.command must be a null"),
            "{e}"
        );
    }

    #[test]
    fn several_files_merged_in_order() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(
            d,
            "a.yml",
            "services:\n  web:\n    image: a\n    environment: {X: '1'}\n",
        );
        write(
            d,
            "b.yml",
            "services:\n  web:\n    environment: {Y: '2'}\n  db:\n    image: d\n",
        );
        let mut o = opts(d);
        o.files = vec!["a.yml".into(), "b.yml".into()];
        let p = load(&o).unwrap();
        assert_eq!(p.services["web"].environment.len(), 2);
        assert_eq!(p.services["db"].image.as_deref(), Some("d"));
        assert_eq!(p.config_files, [d.join("a.yml"), d.join("b.yml")]);
    }

    #[test]
    fn env_file_and_environment() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(d, "compose.yaml", "services:\n  a:\n    image: x\n    env_file: [one.env, {path: missing.env, required: false}]\n    environment: {B: fromcompose}\n");
        write(d, "one.env", "A=1\nB=fromfile\n");
        let p = load(&opts(d)).unwrap();
        assert_eq!(p.services["a"].environment["A"], Some("1".into()));
        assert_eq!(p.services["a"].environment["B"], Some("fromcompose".into()));
        write(
            d,
            "compose.yaml",
            "services:\n  a:\n    image: x\n    env_file: missing.env\n",
        );
        assert!(matches!(load(&opts(d)), Err(ComposeError::Read { .. })));
    }

    #[test]
    fn profiles() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(
            d,
            "compose.yaml",
            "services:\n  a: {image: x}\n  dbg: {image: x, profiles: [debug]}\n",
        );
        let p = load(&opts(d)).unwrap();
        assert!(p.services.contains_key("a") && !p.services.contains_key("dbg"));
        let mut o = opts(d);
        o.profiles = vec!["debug".into()];
        assert!(load(&o).unwrap().services.contains_key("dbg"));
        let mut o = opts(d);
        o.environ.insert("COMPOSE_PROFILES".into(), "debug".into());
        assert!(load(&o).unwrap().services.contains_key("dbg"));
        write(
            d,
            "compose.yaml",
            "services:\n  a: {image: x, depends_on: [dbg]}\n  dbg: {image: x, profiles: [debug]}\n",
        );
        assert!(load(&opts(d))
            .unwrap_err()
            .to_string()
            .contains("is disabled"));
    }

    #[test]
    fn extends_same_file_other_file_and_cycles() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        fs::create_dir(d.join("lib")).unwrap();
        write(
            &d.join("lib"),
            "common.yml",
            "services:\n  base:\n    image: busybox\n    environment: {A: '1'}\n    volumes: ['./data:/data', {type: bind, source: ../up, target: /up}]\n    env_file: base.env\n",
        );
        write(&d.join("lib"), "base.env", "FROM_BASE_ENV=1\n");
        write(d, "compose.yaml", "services:\n  mid:\n    extends: {file: lib/common.yml, service: base}\n    environment: {B: '2'}\n  web:\n    extends: mid\n    command: [sleep, '1']\n");
        let p = load(&opts(d)).unwrap();
        let web = &p.services["web"];
        assert_eq!(web.image.as_deref(), Some("busybox"));
        assert_eq!(web.environment.len(), 3);
        assert_eq!(web.command.as_ref().unwrap(), &["sleep", "1"]);
        // Relative paths of the other file: relative to that file's directory.
        assert_eq!(
            web.volumes[0].source.as_deref(),
            d.join("lib/data").to_str()
        );
        assert_eq!(web.volumes[1].source.as_deref(), d.join("up").to_str());
        assert_eq!(web.environment["FROM_BASE_ENV"], Some("1".into()));
        write(
            d,
            "compose.yaml",
            "services:\n  a: {extends: b}\n  b: {extends: a, image: x}\n",
        );
        assert!(matches!(
            load(&opts(d)),
            Err(ComposeError::ExtendsCycle { .. })
        ));
    }

    #[test]
    fn default_network_and_references() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(d, "compose.yaml", "name: p\nservices:\n  a: {image: x, volumes: ['data:/d']}\n  b: {image: x, networks: {back: {aliases: [bee]}}}\nnetworks:\n  back: {}\nvolumes:\n  data: {}\n");
        let p = load(&opts(d)).unwrap();
        assert_eq!(p.networks["default"].name, "p_default");
        assert_eq!(p.networks["back"].name, "p_back");
        assert_eq!(p.volumes["data"].name, "p_data");
        assert_eq!(
            p.services["b"].networks["back"].as_ref().unwrap().aliases,
            ["bee"]
        );
        write(
            d,
            "compose.yaml",
            "services:\n  a: {image: x, volumes: ['nope:/d']}\n",
        );
        assert!(load(&opts(d))
            .unwrap_err()
            .to_string()
            .contains("refers to undefined volume nope"));
        write(
            d,
            "compose.yaml",
            "services:\n  a: {image: x, depends_on: [zz]}\n",
        );
        assert!(load(&opts(d))
            .unwrap_err()
            .to_string()
            .contains("depends on undefined service"));
        write(
            d,
            "compose.yaml",
            "services:\n  a: {image: x, depends_on: {zz: {condition: service_started, required: false}}}\n",
        );
        assert!(load(&opts(d)).is_ok());
        write(
            d,
            "compose.yaml",
            "services:\n  a: {image: x}\nmodels: {}\n",
        );
        assert!(load(&opts(d))
            .unwrap_err()
            .to_string()
            .ends_with("models: is not supported by wharf compose yet"));
    }
}
