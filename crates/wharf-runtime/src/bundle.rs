//! Loading and checking a bundle: `config.json` and its rootfs.

use crate::error::{Result, RuntimeError};
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

/// A bundle's parsed config with its rootfs resolved to an absolute path.
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
}

impl Bundle {
    /// Reads `<dir>/config.json` and checks what the runtime relies on.
    pub fn load(dir: &Path) -> Result<Bundle> {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let cfg = dir.join("config.json");
        let bad = |message: String| RuntimeError::Bundle {
            path: dir.clone(),
            message,
        };
        let data = std::fs::read(&cfg).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                bad("config.json not found: is this the bundle directory? (`wharf-runtime spec` writes a default one)".into())
            } else {
                bad(format!("reading config.json: {e}"))
            }
        })?;
        let spec: Spec = serde_json::from_slice(&data).map_err(|e| {
            bad(format!(
                "config.json is not a valid OCI runtime config: {e}"
            ))
        })?;
        Self::from_spec(dir, spec)
    }

    /// Checks an already parsed config for the bundle `dir`.
    pub fn from_spec(dir: PathBuf, spec: Spec) -> Result<Bundle> {
        let root = spec.root().as_ref().ok_or_else(|| RuntimeError::Bundle {
            path: dir.clone(),
            message: "config.json has no \"root\"".into(),
        })?;
        let rootfs = if root.path().is_absolute() {
            root.path().clone()
        } else {
            dir.join(root.path())
        };
        match std::fs::metadata(&rootfs) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(RuntimeError::Bundle {
                    path: dir,
                    message: format!("invalid rootfs: {} is not a directory", rootfs.display()),
                })
            }
            Err(e) => {
                return Err(RuntimeError::Bundle {
                    path: dir,
                    message: format!("invalid rootfs: stat {}: {e}", rootfs.display()),
                })
            }
        }
        if spec.linux().is_none() {
            return Err(RuntimeError::Config(
                "config.json has no \"linux\" section: only Linux containers are supported".into(),
            ));
        }
        check_namespaces(&spec)?;
        Ok(Bundle { dir, spec, rootfs })
    }

    /// The process to run; `create` needs one.
    pub fn process(&self) -> Result<&oci_spec::runtime::Process> {
        let p = self
            .spec
            .process()
            .as_ref()
            .ok_or_else(|| RuntimeError::Config("config.json has no \"process\"".into()))?;
        if p.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(RuntimeError::Config(
                "process.args must not be empty: give the command to run".into(),
            ));
        }
        Ok(p)
    }
}

fn check_namespaces(spec: &Spec) -> Result<()> {
    let Some(nss) = spec.linux().as_ref().and_then(|l| l.namespaces().clone()) else {
        return Ok(());
    };
    let mut seen = std::collections::HashSet::new();
    for ns in &nss {
        if !seen.insert(ns.typ()) {
            return Err(RuntimeError::Config(format!(
                "namespace {:?} is listed twice in linux.namespaces",
                ns.typ().to_string()
            )));
        }
        if let Some(p) = ns.path() {
            if !p.exists() {
                return Err(RuntimeError::Config(format!(
                    "namespace path {} of {} does not exist",
                    p.display(),
                    ns.typ()
                )));
            }
        }
    }
    let has = |t| nss.iter().any(|n| n.typ() == t);
    use oci_spec::runtime::LinuxNamespaceType as T;
    if has(T::User) {
        let l = spec.linux().as_ref().expect("checked");
        let joined = nss.iter().any(|n| n.typ() == T::User && n.path().is_some());
        if !joined && (l.uid_mappings().is_none() || l.gid_mappings().is_none()) {
            return Err(RuntimeError::Config(
                "a user namespace needs linux.uidMappings and linux.gidMappings".into(),
            ));
        }
    }
    Ok(())
}
