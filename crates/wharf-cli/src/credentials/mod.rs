//! Registry credentials kept as the docker CLI keeps them, so wharf and docker share one
//! login: the config file ([`config`]), credential helpers ([`helper`]), which of the two
//! holds a registry's secret ([`store`]), and the `X-Registry-Auth` header sent with
//! pull and push.

pub mod config;
pub mod helper;
pub mod store;

use anyhow::{Context, Result};
use base64::Engine as _;
use serde::Serialize;
use std::path::Path;

pub use config::{config_dir, ConfigFile};

/// The key docker stores Docker Hub credentials under.
pub const INDEX_SERVER: &str = "https://index.docker.io/v1/";

/// One registry's credentials, serialised as docker's `AuthConfig` (empty fields left out).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuthConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    #[serde(rename = "serveraddress", skip_serializing_if = "String::is_empty")]
    pub server_address: String,
    #[serde(rename = "identitytoken", skip_serializing_if = "String::is_empty")]
    pub identity_token: String,
}

impl AuthConfig {
    pub fn is_empty(&self) -> bool {
        self.username.is_empty() && self.password.is_empty() && self.identity_token.is_empty()
    }

    /// The `X-Registry-Auth` value: URL-safe base64, padded, of the JSON (as docker).
    pub fn header(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        base64::engine::general_purpose::URL_SAFE.encode(json)
    }
}

/// docker's `ConvertToHostname`: "https://reg:5000/v2/" → "reg:5000"; a bare host stays.
pub fn convert_to_hostname(s: &str) -> String {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .unwrap_or(s);
    rest.split('/').next().unwrap_or("").to_string()
}

/// The config key for an image's registry: docker.io (and index.docker.io) are Docker
/// Hub's [`INDEX_SERVER`], any other registry its host[:port].
pub fn registry_key(image: &str) -> String {
    let first = image.split('/').next().unwrap_or("");
    let has_domain = image.contains('/')
        && (first.contains('.')
            || first.contains(':')
            || first == "localhost"
            || first.chars().any(|c| c.is_ascii_uppercase()));
    if !has_domain || first == "docker.io" || first == "index.docker.io" {
        INDEX_SERVER.to_string()
    } else {
        first.to_string()
    }
}

/// The `X-Registry-Auth` header for pulling or pushing `image` with the credentials in
/// `config_dir` (`{}` when there are none, as docker sends). An unreadable config file is
/// a warning, as in docker: the pull or push goes on without credentials.
pub fn header_for_image(config_dir: &Path, image: &str) -> Result<String> {
    let key = registry_key(image);
    let cfg = match ConfigFile::load(config_dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("WARNING: Error loading config file: {e:#}");
            return Ok(AuthConfig::default().header());
        }
    };
    let auth = store::get(&cfg, &key)
        .with_context(|| format!("looking up the credentials for {key}"))?
        .unwrap_or_default();
    Ok(auth.header())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert_eq!(
            convert_to_hostname("https://reg.example:5000/v2/"),
            "reg.example:5000"
        );
        assert_eq!(
            convert_to_hostname("http://127.0.0.1:5000"),
            "127.0.0.1:5000"
        );
        assert_eq!(convert_to_hostname("reg.example/path"), "reg.example");
        assert_eq!(convert_to_hostname("reg.example"), "reg.example");
    }

    #[test]
    fn registry_keys() {
        for hub in [
            "busybox",
            "library/busybox:1",
            "docker.io/x/y",
            "index.docker.io/x/y",
        ] {
            assert_eq!(registry_key(hub), INDEX_SERVER, "{hub}");
        }
        assert_eq!(registry_key("127.0.0.1:5000/team/app:1"), "127.0.0.1:5000");
        assert_eq!(registry_key("localhost/app"), "localhost");
        assert_eq!(registry_key("ghcr.io/o/app@sha256:ab"), "ghcr.io");
    }

    #[test]
    fn header_is_docker_s_encoding() {
        use base64::Engine as _;
        let a = AuthConfig {
            username: "alice".into(),
            password: "s3cret??>".into(),
            server_address: "127.0.0.1:5000".into(),
            ..Default::default()
        };
        let h = a.header();
        let json = base64::engine::general_purpose::URL_SAFE
            .decode(&h)
            .unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"username":"alice","password":"s3cret??>","serveraddress":"127.0.0.1:5000"}"#
        );
        assert_eq!(AuthConfig::default().header(), "e30=");
    }

    #[test]
    fn header_for_an_image_uses_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"http://127.0.0.1:5000":{"auth":"YWxpY2U6czNjcmV0"}}}"#,
        )
        .unwrap();
        let h = header_for_image(dir.path(), "127.0.0.1:5000/a:1").unwrap();
        let json = base64::engine::general_purpose::URL_SAFE.decode(h).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["username"], "alice");
        assert_eq!(v["password"], "s3cret");
        assert_eq!(header_for_image(dir.path(), "busybox").unwrap(), "e30=");
        std::fs::write(dir.path().join("config.json"), "{broken").unwrap();
        assert_eq!(
            header_for_image(dir.path(), "127.0.0.1:5000/a").unwrap(),
            "e30="
        );
    }
}
