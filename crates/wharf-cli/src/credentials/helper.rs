//! The docker-credential-helpers protocol: `docker-credential-<name> store|get|erase`, the
//! request on stdin (JSON for `store`, the server URL for `get` and `erase`), the answer
//! on stdout.

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::process::{Command, Stdio};

/// What helpers print (and exit non-zero with) for an unknown server.
const NOT_FOUND: &str = "credentials not found in native keychain";

/// The username helpers store for an identity token (the token is the secret).
pub const TOKEN_USERNAME: &str = "<token>";

#[derive(Debug, Serialize)]
struct StoreRequest<'a> {
    #[serde(rename = "ServerURL")]
    server_url: &'a str,
    #[serde(rename = "Username")]
    username: &'a str,
    #[serde(rename = "Secret")]
    secret: &'a str,
}

#[derive(Debug, Deserialize)]
struct GetAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// A credential helper program.
#[derive(Debug, Clone)]
pub struct Helper {
    program: std::ffi::OsString,
}

impl Helper {
    /// `docker-credential-<name>`, looked up on PATH.
    pub fn named(name: &str) -> Helper {
        Helper {
            program: format!("docker-credential-{name}").into(),
        }
    }

    #[cfg(test)]
    pub fn at(program: &std::path::Path) -> Helper {
        Helper {
            program: program.as_os_str().to_owned(),
        }
    }

    fn name(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }

    /// Runs `program action` with `input` on stdin; (success, stdout).
    fn call(&self, action: &str, input: &[u8]) -> Result<(bool, String)> {
        let mut child = Command::new(&self.program)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    anyhow!(
                        "the credential helper {} is not on PATH: install it, or remove it from credsStore/credHelpers in config.json",
                        self.name()
                    )
                } else {
                    anyhow!("running the credential helper {}: {e}", self.name())
                }
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper may exit without reading: a broken pipe is its answer, not ours.
            let _ = stdin.write_all(input);
        }
        let out = child
            .wait_with_output()
            .with_context(|| format!("waiting for the credential helper {}", self.name()))?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ))
    }

    pub fn store(&self, server: &str, username: &str, secret: &str) -> Result<()> {
        let req = serde_json::to_vec(&StoreRequest {
            server_url: server,
            username,
            secret,
        })?;
        match self.call("store", &req)? {
            (true, _) => Ok(()),
            (false, out) => Err(anyhow!(
                "error storing credentials - {} store failed, out: `{out}`",
                self.name()
            )),
        }
    }

    /// (username, secret) for `server`, None when the helper has none.
    pub fn get(&self, server: &str) -> Result<Option<(String, String)>> {
        match self.call("get", server.as_bytes())? {
            (true, out) => {
                let a: GetAnswer = serde_json::from_str(&out).with_context(|| {
                    format!(
                        "the credential helper {} answered `get` with no JSON",
                        self.name()
                    )
                })?;
                Ok((!a.username.is_empty() || !a.secret.is_empty())
                    .then_some((a.username, a.secret)))
            }
            (false, out) if out == NOT_FOUND => Ok(None),
            (false, out) => Err(anyhow!(
                "error getting credentials - {} get failed, out: `{out}`",
                self.name()
            )),
        }
    }

    /// Erases `server`; an unknown server is not an error.
    pub fn erase(&self, server: &str) -> Result<()> {
        match self.call("erase", server.as_bytes())? {
            (true, _) => Ok(()),
            (false, out) if out == NOT_FOUND => Ok(()),
            (false, out) => Err(anyhow!(
                "error erasing credentials - {} erase failed, out: `{out}`",
                self.name()
            )),
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    /// A helper keeping one file per server (its stored JSON) in `dir/store`.
    pub fn fake_helper(dir: &Path) -> PathBuf {
        let p = dir.join("docker-credential-unittest");
        let store = dir.join("store");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::write(
            &p,
            format!(
                r#"#!/bin/sh
d={store}
case "$1" in
store) in=$(cat); s=$(printf '%s' "$in" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/' | tr '/:' '__'); printf '%s' "$in" > "$d/$s" ;;
get) s=$(cat | tr '/:' '__'); if [ -f "$d/$s" ]; then cat "$d/$s"; else echo "{nf}"; exit 1; fi ;;
erase) s=$(cat | tr '/:' '__'); rm -f "$d/$s" ;;
*) exit 2 ;;
esac
"#,
                store = store.display(),
                nf = NOT_FOUND
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn store_get_erase() {
        let dir = tempfile::tempdir().unwrap();
        let h = Helper::at(&fake_helper(dir.path()));
        assert_eq!(h.get("reg.example:5000").unwrap(), None);
        h.store("reg.example:5000", "alice", "s3cret").unwrap();
        assert_eq!(
            h.get("reg.example:5000").unwrap(),
            Some(("alice".into(), "s3cret".into()))
        );
        h.erase("reg.example:5000").unwrap();
        assert_eq!(h.get("reg.example:5000").unwrap(), None);
    }

    #[test]
    fn a_missing_helper_says_what_to_do() {
        let e = Helper::named("surely-not-installed-here")
            .get("x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("docker-credential-surely-not-installed-here is not on PATH"),
            "{e}"
        );
    }
}
