//! Top-level `include`: other compose files loaded as projects of their own (their own
//! directory, `.env` and relative paths, as the spec says) and their services, networks,
//! volumes, secrets and configs added to the including project; a resource defined on both
//! sides differently is an error, as in compose-go.

use crate::error::{invalid, Result};
use crate::load::{clean, load, Options};
use crate::model::Project;
use crate::yaml::{get, key_str, scalar_str};
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One `include` entry, its paths resolved against the including file's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    pub paths: Vec<PathBuf>,
    /// The included project's directory (default: the first path's directory).
    pub project_directory: PathBuf,
    pub env_files: Vec<PathBuf>,
}

fn one_or_many(file: &str, key: &str, v: &Value, dir: &Path) -> Result<Vec<PathBuf>> {
    let list: Vec<String> = match v {
        Value::Sequence(seq) => seq.iter().filter_map(scalar_str).collect(),
        other => vec![scalar_str(other)
            .ok_or_else(|| invalid(file, key, "must be a string or a list of strings"))?],
    };
    Ok(list.iter().map(|p| clean(&dir.join(p))).collect())
}

/// The entries of `include` (a list of paths or `{path, project_directory, env_file}`).
pub fn parse(file: &str, v: &Value, dir: &Path) -> Result<Vec<Include>> {
    let Value::Sequence(seq) = v else {
        return Err(invalid(file, "include", "must be a list"));
    };
    let mut out = Vec::new();
    for (i, e) in seq.iter().enumerate() {
        let key = format!("include[{i}]");
        let (paths, pd, env) = match e {
            Value::Mapping(m) => {
                for k in m.keys() {
                    let ks = key_str(k);
                    if !matches!(ks.as_str(), "path" | "project_directory" | "env_file") {
                        return Err(invalid(
                            file,
                            &key,
                            format!("additional property {ks} is not allowed"),
                        ));
                    }
                }
                let paths = match get(m, "path") {
                    Some(p) => one_or_many(file, &format!("{key}.path"), p, dir)?,
                    None => return Err(invalid(file, &key, "path is required")),
                };
                let pd = get(m, "project_directory")
                    .and_then(scalar_str)
                    .map(|d| clean(&dir.join(d)));
                let env = match get(m, "env_file") {
                    Some(v) => one_or_many(file, &format!("{key}.env_file"), v, dir)?,
                    None => vec![],
                };
                (paths, pd, env)
            }
            other => (one_or_many(file, &key, other, dir)?, None, vec![]),
        };
        if paths.is_empty() {
            return Err(invalid(file, &key, "path is required"));
        }
        let project_directory = pd.unwrap_or_else(|| {
            paths[0]
                .parent()
                .map_or_else(|| dir.to_path_buf(), Path::to_path_buf)
        });
        out.push(Include {
            paths,
            project_directory,
            env_files: env,
        });
    }
    Ok(out)
}

fn add<T: PartialEq + Clone>(
    file: &str,
    what: &str,
    into: &mut BTreeMap<String, T>,
    from: &BTreeMap<String, T>,
    imported: &Path,
) -> Result<()> {
    for (k, v) in from {
        match into.get(k) {
            Some(old) if old != v => {
                return Err(invalid(
                    file,
                    "include",
                    format!(
                        "imported compose file {} defines conflicting {what} {k}",
                        imported.display()
                    ),
                ))
            }
            Some(_) => {}
            None => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(())
}

/// Loads each entry as a project named `name` (so its resources get this project's names)
/// and adds what it defines to `project`. `chain` are the files being included already.
pub fn apply(
    file: &str,
    includes: &[Include],
    project: &mut Project,
    opts: &Options,
) -> Result<()> {
    for inc in includes {
        if let Some(p) = inc.paths.iter().find(|p| opts.include_chain.contains(p)) {
            return Err(invalid(
                file,
                "include",
                format!("include cycle through {}", p.display()),
            ));
        }
        let mut chain = opts.include_chain.clone();
        chain.extend(inc.paths.iter().cloned());
        let sub = load(&Options {
            files: inc.paths.clone(),
            project_name: Some(project.name.clone()),
            project_directory: Some(inc.project_directory.clone()),
            env_files: inc.env_files.clone(),
            profiles: opts.profiles.clone(),
            environ: opts.environ.clone(),
            cwd: inc.project_directory.clone(),
            include_chain: chain,
        })?;
        let imported = &inc.paths[0];
        add(
            file,
            "service",
            &mut project.services,
            &sub.services,
            imported,
        )?;
        add(
            file,
            "service",
            &mut project.disabled,
            &sub.disabled,
            imported,
        )?;
        add(
            file,
            "network",
            &mut project.networks,
            &sub.networks,
            imported,
        )?;
        add(file, "volume", &mut project.volumes, &sub.volumes, imported)?;
        add(file, "secret", &mut project.secrets, &sub.secrets, imported)?;
        add(file, "config", &mut project.configs, &sub.configs, imported)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::load::{load, Options};

    fn write(dir: &std::path::Path, name: &str, text: &str) {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn opts(dir: &std::path::Path) -> Options {
        Options {
            cwd: dir.to_path_buf(),
            environ: [("SHELL_VAR".to_string(), "from-shell".to_string())].into(),
            ..Default::default()
        }
    }

    #[test]
    fn included_files_keep_their_own_directory_and_env() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(
            d,
            "compose.yaml",
            "name: main\ninclude:\n  - sub/compose.yaml\n  - path: other/o.yaml\n    project_directory: other/pd\n    env_file: other/vars.env\nservices:\n  web:\n    image: busybox\n    depends_on: [db]\n    networks: [back]\n",
        );
        // Its own .env (beside it), its relative paths against its directory, the including
        // project's name on its resources.
        write(d, "sub/.env", "TAG=1.36\n");
        write(
            d,
            "sub/compose.yaml",
            "services:\n  db:\n    image: busybox:${TAG}\n    volumes: [./data:/data, vol:/v]\n    env_file: db.env\n    networks: [back]\nnetworks:\n  back: {}\nvolumes:\n  vol: {}\n",
        );
        write(d, "sub/db.env", "DB=yes\n");
        write(
            d,
            "other/o.yaml",
            "services:\n  cache:\n    image: busybox:${OTAG}\n    environment: [SHELL_VAR]\n    volumes: [./c:/c]\n",
        );
        write(d, "other/vars.env", "OTAG=2\n");
        let p = load(&opts(d)).unwrap();
        assert_eq!(
            p.services.keys().collect::<Vec<_>>(),
            ["cache", "db", "web"]
        );
        let db = &p.services["db"];
        assert_eq!(db.image.as_deref(), Some("busybox:1.36"));
        assert_eq!(
            db.volumes[0].source.as_deref(),
            Some(d.join("sub/data").to_str().unwrap())
        );
        assert_eq!(db.environment["DB"].as_deref(), Some("yes"));
        assert_eq!(p.networks["back"].name, "main_back");
        assert_eq!(p.volumes["vol"].name, "main_vol");
        let cache = &p.services["cache"];
        assert_eq!(cache.image.as_deref(), Some("busybox:2"));
        assert_eq!(
            cache.environment["SHELL_VAR"].as_deref(),
            Some("from-shell")
        );
        // project_directory: relative paths go against it.
        assert_eq!(
            cache.volumes[0].source.as_deref(),
            Some(d.join("other/pd/c").to_str().unwrap())
        );
    }

    #[test]
    fn conflicts_and_cycles_are_errors() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(
            d,
            "compose.yaml",
            "include: [sub.yaml]\nservices:\n  a: {image: x}\n",
        );
        write(d, "sub.yaml", "services:\n  a: {image: y}\n");
        let e = load(&opts(d)).unwrap_err().to_string();
        assert!(
            e.ends_with(&format!(
                "include: imported compose file {} defines conflicting service a",
                d.join("sub.yaml").display()
            )),
            "{e}"
        );
        write(
            d,
            "sub.yaml",
            "include: [compose.yaml]\nservices:\n  b: {image: y}\n",
        );
        let e = load(&opts(d)).unwrap_err().to_string();
        assert!(e.contains("include cycle through"), "{e}");
        write(
            d,
            "compose.yaml",
            "include: [{path: sub.yaml, bogus: 1}]\nservices:\n  a: {image: x}\n",
        );
        let e = load(&opts(d)).unwrap_err().to_string();
        assert!(
            e.ends_with("compose.yaml: include.0 additional properties 'bogus' not allowed"),
            "{e}"
        );
    }
}
