//! The client config file docker and wharf share: `config.json` in `--config DIR`,
//! `$DOCKER_CONFIG` or `~/.docker`. Kept as a JSON value so every key this client does not
//! know (psFormat, proxies, plugins...) survives a rewrite; written atomically, mode 0600.

use anyhow::{Context, Result};
use serde_json::{Map, Value};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// The config directory: `--config`, then `$DOCKER_CONFIG`, then `~/.docker`.
pub fn config_dir(flag: Option<&str>) -> PathBuf {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(d) = flag.map(str::to_string).or_else(|| env("DOCKER_CONFIG")) {
        return PathBuf::from(d);
    }
    home_dir().join(".docker")
}

fn home_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.dir)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// `config.json`, as read (an empty object when there is none yet).
#[derive(Debug)]
pub struct ConfigFile {
    path: PathBuf,
    root: Map<String, Value>,
}

impl ConfigFile {
    /// Reads `DIR/config.json`; a missing file is an empty config.
    pub fn load(dir: &Path) -> Result<ConfigFile> {
        let path = dir.join("config.json");
        let root = match std::fs::read(&path) {
            Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(b) => match serde_json::from_slice::<Value>(&b) {
                Ok(Value::Object(m)) => m,
                Ok(_) => anyhow::bail!(
                    "{} is not a JSON object: fix it or move it away",
                    path.display()
                ),
                Err(e) => anyhow::bail!(
                    "{} is not valid JSON ({e}): fix it or move it away",
                    path.display()
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", path.display()));
            }
        };
        Ok(ConfigFile { path, root })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `credsStore`: the helper for every registry without its own.
    pub fn creds_store(&self) -> Option<&str> {
        self.root
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// `credHelpers[key]`: the helper for one registry.
    pub fn cred_helper(&self, key: &str) -> Option<&str> {
        self.root
            .get("credHelpers")
            .and_then(|h| h.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The registries with a `credHelpers` entry.
    pub fn cred_helper_keys(&self) -> Vec<String> {
        self.root
            .get("credHelpers")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The `auths` entries (key, entry).
    pub fn auths(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.root
            .get("auths")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.iter())
    }

    pub fn auth_entry(&self, key: &str) -> Option<&Value> {
        self.root.get("auths").and_then(|a| a.get(key))
    }

    /// Sets `auths[key]`, creating `auths` when missing (or not an object).
    pub fn set_auth_entry(&mut self, key: &str, entry: Value) {
        let auths = self
            .root
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Some(m) = auths.as_object_mut() {
            m.insert(key.to_string(), entry);
        }
    }

    /// Removes `auths[key]`; whether it was there.
    pub fn remove_auth_entry(&mut self, key: &str) -> bool {
        self.root
            .get_mut("auths")
            .and_then(Value::as_object_mut)
            .is_some_and(|m| m.remove(key).is_some())
    }

    /// Writes the file atomically: a temporary file beside it (mode 0600), fsync, rename
    /// over the old one, fsync the directory. A symlinked config.json is written through.
    pub fn save(&self) -> Result<()> {
        let target = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let dir = target.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating the config directory {}", dir.display()))?;
        let mut text = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut text, fmt);
        serde::Serialize::serialize(&self.root, &mut ser).context("encoding config.json")?;
        // 0600: it holds registry credentials.
        wharf_fs::write_atomic(&target, &text)
            .with_context(|| format!("saving {} (is the directory writable?)", target.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn save_keeps_unknown_keys_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(
            &p,
            r#"{"psFormat":"table {{.ID}}","auths":{"a.example":{"auth":"eDp5","email":"e"}},"proxies":{"default":{"httpProxy":"h"}}}"#,
        )
        .unwrap();
        let mut c = ConfigFile::load(dir.path()).unwrap();
        c.set_auth_entry("b.example:5000", json!({"auth": "YTpi"}));
        assert!(c.remove_auth_entry("a.example"));
        assert!(!c.remove_auth_entry("a.example"));
        c.save().unwrap();
        let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["psFormat"], "table {{.ID}}");
        assert_eq!(v["proxies"]["default"]["httpProxy"], "h");
        assert_eq!(v["auths"], json!({"b.example:5000": {"auth": "YTpi"}}));
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Nothing left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_file_is_empty_and_save_creates_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("new");
        let mut c = ConfigFile::load(&sub).unwrap();
        assert_eq!(c.auths().count(), 0);
        c.set_auth_entry("x", json!({}));
        c.save().unwrap();
        let mode = std::fs::metadata(&sub).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(ConfigFile::load(&sub).unwrap().auth_entry("x").is_some());
    }

    #[test]
    fn invalid_json_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{nope").unwrap();
        let e = ConfigFile::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("config.json is not valid JSON"), "{e}");
    }

    #[test]
    fn dir_precedence() {
        assert_eq!(config_dir(Some("/x")), PathBuf::from("/x"));
    }
}
