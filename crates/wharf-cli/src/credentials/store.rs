//! Where one registry's credentials live, as docker decides: `credHelpers[key]`, else
//! `credsStore`, else the config file itself (`auths[key].auth` = base64 "user:password").

use super::config::ConfigFile;
use super::helper::{Helper, TOKEN_USERNAME};
use super::{convert_to_hostname, AuthConfig};
use anyhow::{Context, Result};
use base64::Engine as _;
use serde_json::{json, Value};

/// Where a login was stored.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    /// In config.json in the clear; `changed` when the file was rewritten.
    File { changed: bool },
    /// In a credential helper (config.json keeps an empty entry).
    Helper,
}

fn helper_for(cfg: &ConfigFile, key: &str) -> Option<Helper> {
    cfg.cred_helper(key)
        .or_else(|| cfg.creds_store())
        .map(Helper::named)
}

/// The credentials stored for `key`, None when there are none.
pub fn get(cfg: &ConfigFile, key: &str) -> Result<Option<AuthConfig>> {
    if let Some(h) = helper_for(cfg, key) {
        let Some((user, secret)) = h.get(key)? else {
            return Ok(None);
        };
        let mut a = AuthConfig {
            server_address: key.to_string(),
            ..AuthConfig::default()
        };
        if user == TOKEN_USERNAME {
            a.identity_token = secret;
        } else {
            a.username = user;
            a.password = secret;
        }
        return Ok(Some(a));
    }
    // docker also accepts entries written as a URL ("https://host/", "http://host:5000").
    let found = cfg.auth_entry(key).map(|e| (key, e)).or_else(|| {
        cfg.auths()
            .find(|(k, _)| convert_to_hostname(k) == key)
            .map(|(k, e)| (k.as_str(), e))
    });
    let Some((found_key, entry)) = found else {
        return Ok(None);
    };
    let a = decode_entry(found_key, entry).with_context(|| {
        format!(
            "the credentials for {found_key} in {} are damaged: log in again",
            cfg.path().display()
        )
    })?;
    Ok((!a.is_empty()).then_some(a))
}

fn decode_entry(key: &str, entry: &Value) -> Result<AuthConfig> {
    let s = |k: &str| entry[k].as_str().unwrap_or_default().to_string();
    let mut a = AuthConfig {
        username: s("username"),
        password: s("password"),
        identity_token: s("identitytoken"),
        server_address: key.to_string(),
    };
    let auth = s("auth");
    if !auth.is_empty() {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .context("`auth` is not base64")?;
        let raw = String::from_utf8(raw).context("`auth` is not text")?;
        let (u, p) = raw
            .split_once(':')
            .context("`auth` is not \"user:password\"")?;
        a.username = u.to_string();
        a.password = p.trim_end_matches('\0').to_string();
    }
    Ok(a)
}

/// Stores `a` under `a.server_address`, in its helper or in the file.
pub fn save(cfg: &mut ConfigFile, a: &AuthConfig) -> Result<Stored> {
    let key = a.server_address.as_str();
    if let Some(h) = helper_for(cfg, key) {
        let (user, secret) = if a.identity_token.is_empty() {
            (a.username.as_str(), a.password.as_str())
        } else {
            (TOKEN_USERNAME, a.identity_token.as_str())
        };
        h.store(key, user, secret)?;
        // As docker: the file keeps an entry without secrets, so the registry is listed.
        if cfg.auth_entry(key) != Some(&json!({})) {
            cfg.set_auth_entry(key, json!({}));
            cfg.save()?;
        }
        return Ok(Stored::Helper);
    }
    let mut entry = cfg
        .auth_entry(key)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let before = entry.clone();
    for k in ["auth", "username", "password", "identitytoken"] {
        entry.remove(k);
    }
    if !a.username.is_empty() || !a.password.is_empty() {
        let raw = format!("{}:{}", a.username, a.password);
        entry.insert(
            "auth".into(),
            base64::engine::general_purpose::STANDARD.encode(raw).into(),
        );
    }
    if !a.identity_token.is_empty() {
        entry.insert("identitytoken".into(), a.identity_token.clone().into());
    }
    if cfg.auth_entry(key).is_some() && entry == before {
        return Ok(Stored::File { changed: false });
    }
    cfg.set_auth_entry(key, Value::Object(entry));
    cfg.save()?;
    Ok(Stored::File { changed: true })
}

/// Erases `key` from its helper and from the file; whether the file had an entry.
pub fn erase(cfg: &mut ConfigFile, key: &str) -> Result<bool> {
    if let Some(h) = helper_for(cfg, key) {
        h.erase(key)?;
    }
    if cfg.remove_auth_entry(key) {
        cfg.save()?;
        return Ok(true);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg_with(text: &str) -> (tempfile::TempDir, ConfigFile) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), text).unwrap();
        let c = ConfigFile::load(dir.path()).unwrap();
        (dir, c)
    }

    #[test]
    fn file_store_round_trip_and_url_keys() {
        let (_d, mut c) =
            cfg_with(r#"{"auths":{"https://old.example:5000/v2/":{"auth":"Ym9iOnB3"}}}"#);
        let bob = get(&c, "old.example:5000").unwrap().unwrap();
        assert_eq!(
            (bob.username.as_str(), bob.password.as_str()),
            ("bob", "pw")
        );
        assert_eq!(get(&c, "other.example").unwrap(), None);
        let a = AuthConfig {
            username: "alice".into(),
            password: "s3:cret".into(),
            server_address: "reg.example".into(),
            ..Default::default()
        };
        assert_eq!(save(&mut c, &a).unwrap(), Stored::File { changed: true });
        assert_eq!(save(&mut c, &a).unwrap(), Stored::File { changed: false });
        assert_eq!(
            c.auth_entry("reg.example").unwrap()["auth"],
            "YWxpY2U6czM6Y3JldA=="
        );
        assert_eq!(get(&c, "reg.example").unwrap().unwrap(), a);
        assert!(erase(&mut c, "reg.example").unwrap());
        assert!(!erase(&mut c, "reg.example").unwrap());
        assert_eq!(get(&c, "reg.example").unwrap(), None);
    }

    #[test]
    fn damaged_entries_say_so() {
        let (_d, c) = cfg_with(r#"{"auths":{"r.example":{"auth":"!!"}}}"#);
        let e = format!("{:#}", get(&c, "r.example").unwrap_err());
        assert!(e.contains("damaged: log in again"), "{e}");
    }
}
