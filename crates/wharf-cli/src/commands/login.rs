//! `login` and `logout`, as docker 28 does them: the daemon checks the credentials
//! (`POST /auth`), the client keeps them in config.json or a credential helper.

use super::{status, Ctx};
use crate::cli::{LoginArgs, LogoutArgs};
use crate::client::daemon_error;
use crate::credentials::{convert_to_hostname, store, AuthConfig, ConfigFile, INDEX_SERVER};
use crate::tty;
use anyhow::{Context, Result};
use serde_json::json;
use std::io::{BufRead, Read, Write};

const UNENCRYPTED_WARNING: &str = "\nWARNING! Your credentials are stored unencrypted in '{}'.\n\
Configure a credential helper to remove this warning. See\n\
https://docs.docker.com/go/credential-store/\n";

/// Checks the flags and reads `--password-stdin`; the (username, password) given.
fn given_credentials(a: &LoginArgs) -> Result<(String, String)> {
    if a.password.is_some() && a.password_stdin {
        return Err(status(
            1,
            "conflicting options: cannot specify both --password and --password-stdin",
        ));
    }
    let user = a.username.clone().unwrap_or_default().trim().to_string();
    if a.password_stdin {
        if user.is_empty() {
            return Err(status(
                1,
                "the --password-stdin option requires --username to be set",
            ));
        }
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the password from stdin")?;
        let p = s.strip_suffix('\n').unwrap_or(&s);
        let p = p.strip_suffix('\r').unwrap_or(p);
        return Ok((user, p.to_string()));
    }
    let password = a.password.clone().unwrap_or_default();
    if !password.is_empty() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    Ok((user, password))
}

/// Sends the credentials to the daemon; its status line ("Login Succeeded").
async fn check_with_daemon(ctx: &Ctx, auth: &AuthConfig) -> Result<String> {
    let body = json!({
        "username": auth.username,
        "password": auth.password,
        "serveraddress": auth.server_address,
    });
    match ctx.client.post_json("/auth", Some(&body)).await {
        Ok(v) => Ok(v["Status"]
            .as_str()
            .unwrap_or("Login Succeeded")
            .to_string()),
        Err(e) if daemon_error(&e).is_some_and(|d| d.status == 404) => Err(status(
            1,
            "wharf: login is not supported by this wharfd: it does not serve /auth (upgrade it)",
        )),
        Err(e) => Err(e),
    }
}

fn prompt_line(prompt: &str) -> Result<String> {
    print!("{prompt}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading from the terminal")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Asks on the terminal for what the flags left out (docker's PromptUserForCredentials).
fn prompt_credentials(user: &str, password: &str, default_user: &str) -> Result<(String, String)> {
    if (user.is_empty() || password.is_empty()) && !tty::stdin_is_tty() {
        return Err(status(
            1,
            "Error: Cannot perform an interactive login from a non TTY device",
        ));
    }
    let mut user = user.to_string();
    if user.is_empty() {
        let p = if default_user.is_empty() {
            "Username: ".to_string()
        } else {
            format!("Username ({default_user}): ")
        };
        user = prompt_line(&p)?.trim().to_string();
        if user.is_empty() {
            user = default_user.to_string();
        }
        if user.is_empty() {
            return Err(status(1, "Error: Non-null Username Required"));
        }
    }
    let mut password = password.to_string();
    if password.is_empty() {
        let guard = tty::NoEcho::enable().context("turning off the terminal's echo")?;
        let read = prompt_line("Password: ");
        drop(guard);
        println!();
        password = read?;
        if password.is_empty() {
            return Err(status(1, "Error: Password Required"));
        }
    }
    Ok((user, password))
}

/// docker's login with what is already stored, when no username or password was given:
/// Some(status) when the daemon accepted it, None to ask for new credentials.
async fn login_with_stored(ctx: &Ctx, stored: &AuthConfig) -> Result<Option<String>> {
    eprint!(
        "Authenticating with existing credentials... [Username: {}]\n\n Info -> To login with a different account, run 'docker logout' followed by 'docker login'\n\n\n",
        stored.username
    );
    match check_with_daemon(ctx, stored).await {
        Ok(s) => Ok(Some(s)),
        Err(e) if daemon_error(&e).is_some_and(|d| d.status == 401) => {
            eprintln!("Stored credentials invalid or expired");
            Ok(None)
        }
        Err(e) if daemon_error(&e).is_some() => {
            eprintln!("Login did not succeed, error: {e:#}");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

pub async fn login(ctx: &Ctx, a: LoginArgs) -> Result<i32> {
    let (user, password) = given_credentials(&a)?;
    let server = a
        .server
        .clone()
        .filter(|s| !s.is_empty() && s != "docker.io")
        .unwrap_or_else(|| INDEX_SERVER.to_string());
    let key = if server == INDEX_SERVER {
        server
    } else {
        convert_to_hostname(&server)
    };
    let mut cfg = ConfigFile::load(&ctx.config_dir)?;
    let mut default_user = String::new();
    if user.is_empty() && password.is_empty() {
        // As docker: a helper or file that cannot be read just means "ask".
        if let Ok(Some(stored)) = store::get(&cfg, &key) {
            if !stored.username.is_empty() && !stored.password.is_empty() {
                if let Some(s) = login_with_stored(ctx, &stored).await? {
                    println!("{s}");
                    return Ok(0);
                }
            }
            default_user = stored.username;
        }
    }
    let (user, password) = prompt_credentials(&user, &password, &default_user)?;
    let auth = AuthConfig {
        username: user,
        password,
        server_address: key,
        ..AuthConfig::default()
    };
    let status_line = check_with_daemon(ctx, &auth).await?;
    match store::save(&mut cfg, &auth) {
        Ok(store::Stored::File { changed: true }) => {
            eprintln!(
                "{}",
                UNENCRYPTED_WARNING.replace("{}", &cfg.path().display().to_string())
            );
        }
        Ok(_) => {}
        Err(e) => return Err(status(1, format!("Error saving credentials: {e:#}"))),
    }
    println!("{status_line}");
    Ok(0)
}

pub async fn logout(ctx: &Ctx, a: LogoutArgs) -> Result<i32> {
    let server = a
        .server
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| INDEX_SERVER.to_string());
    let (host, mut keys) = if server == INDEX_SERVER {
        (server.clone(), vec![server])
    } else {
        // docker also erases the forms older clients stored the registry under.
        let h = convert_to_hostname(&server);
        let keys = vec![
            server,
            h.clone(),
            format!("http://{h}"),
            format!("https://{h}"),
        ];
        (h, keys)
    };
    keys.dedup();
    println!("Removing login credentials for {host}");
    let mut cfg = ConfigFile::load(&ctx.config_dir)?;
    let errs: Vec<(String, anyhow::Error)> = keys
        .iter()
        .filter_map(|k| store::erase(&mut cfg, k).err().map(|e| (k.clone(), e)))
        .collect();
    if errs.len() == keys.len() {
        eprintln!("WARNING: could not erase credentials:");
        for (k, e) in errs {
            println!("{k}: {e:#}");
        }
    }
    Ok(0)
}
