//! `wharf login`/`logout` and credentials on pull/push, against a local registry wanting
//! basic or token auth, through a wharfd started per test; the real docker CLI shares the
//! same config directory, each client using what the other stored.

mod common;

use base64::Engine as _;
use common::registry::{LocalRegistry, RegistryAuth};
use common::{Daemon, DOCKER, WHARF};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

/// Runs `bin --config cfg args...` against `d`, with `env` added.
fn with_cfg(
    d: &Daemon,
    bin: &str,
    cfg: &Path,
    args: &[&str],
    stdin: Option<&[u8]>,
    env: &[(&str, &str)],
) -> Output {
    let mut a = vec!["--config", cfg.to_str().unwrap()];
    a.extend_from_slice(args);
    d.run_env(bin, &a, stdin, env)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn assert_ok(what: &str, o: &Output) {
    assert!(o.status.success(), "{what} failed: {}", text(o));
}

/// The registry refused for want of credentials.
fn assert_auth_error(what: &str, o: &Output) {
    assert!(
        !o.status.success(),
        "{what} should have failed: {}",
        text(o)
    );
    let t = text(o);
    assert!(
        t.contains("401") || t.contains("unauthorized") || t.contains("authentication required"),
        "{what}: not an auth error: {t}"
    );
}

fn config(cfg: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(cfg.join("config.json")).unwrap_or_default())
        .unwrap_or(Value::Null)
}

fn alice_s3cret() -> RegistryAuth {
    RegistryAuth::Basic {
        user: "alice".into(),
        password: "s3cret".into(),
    }
}

/// `wharf login` stores what docker then pushes with and wharf pulls with; a wrong password
/// stores nothing; `wharf logout` removes it (keeping the rest of the file) and pulls fail.
fn wharf_login_docker_push_wharf_pull(auth: RegistryAuth) {
    let Some(reg) = LocalRegistry::start_with(auth) else {
        return;
    };
    let d = Daemon::start();
    d.busybox();
    let cfg = tempfile::tempdir().unwrap();
    let cfg = cfg.path();
    std::fs::write(
        cfg.join("config.json"),
        r#"{"psFormat": "table {{.ID}}", "x-wharf-test": {"keep": [1, 2]}}"#,
    )
    .unwrap();
    let name = format!("{}/team/secret:1", reg.addr);
    d.ok(&["tag", "busybox", &name]);

    assert_auth_error(
        "anonymous wharf push",
        &with_cfg(&d, WHARF, cfg, &["push", &name], None, &[]),
    );

    let login = ["login", &reg.addr, "-u", "alice", "--password-stdin"];
    let o = with_cfg(&d, WHARF, cfg, &login, Some(b"wrong\n"), &[]);
    assert_eq!(o.status.code(), Some(1), "bad password: {}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).starts_with("Error response from daemon: "),
        "{}",
        text(&o)
    );
    assert_eq!(config(cfg)["auths"][&reg.addr], Value::Null);

    let o = with_cfg(&d, WHARF, cfg, &login, Some(b"s3cret\n"), &[]);
    assert_ok("wharf login", &o);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "Login Succeeded\n");
    let path = cfg.join("config.json");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!(
            "WARNING! Your credentials are stored unencrypted in '{}'.",
            path.display()
        )),
        "{}",
        text(&o)
    );
    let c = config(cfg);
    let expected = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    assert_eq!(c["auths"][&reg.addr], json!({ "auth": expected }), "{c}");
    assert_eq!(c["psFormat"], "table {{.ID}}");
    assert_eq!(c["x-wharf-test"], json!({"keep": [1, 2]}));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let o = with_cfg(&d, DOCKER, cfg, &["push", &name], None, &[]);
    assert_ok("docker push with wharf's login", &o);
    assert!(text(&o).contains("1: digest: sha256:"), "{}", text(&o));

    let e = Daemon::start();
    let o = with_cfg(&e, WHARF, cfg, &["pull", &name], None, &[]);
    assert_ok("wharf pull with wharf's login", &o);
    assert_eq!(
        e.ok(&["run", "--rm", "--network", "none", &name, "echo", "pulled"]),
        "pulled\n"
    );
    if let Some(issuer) = &reg.issuer {
        let scopes = issuer.requests.lock().unwrap().clone();
        assert!(
            scopes.iter().any(|s| s == "repository:team/secret:pull"),
            "the pull asked for a pull token: {scopes:?}"
        );
    }

    let o = with_cfg(&e, WHARF, cfg, &["logout", &reg.addr], None, &[]);
    assert_ok("wharf logout", &o);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("Removing login credentials for {}\n", reg.addr)
    );
    let c = config(cfg);
    assert_eq!(c["auths"], json!({}), "{c}");
    assert_eq!(c["x-wharf-test"], json!({"keep": [1, 2]}));
    e.ok(&["rmi", &name]);
    assert_auth_error(
        "wharf pull after logout",
        &with_cfg(&e, WHARF, cfg, &["pull", &name], None, &[]),
    );
}

#[test]
fn basic_auth_wharf_login_serves_docker_and_wharf() {
    require_env!();
    wharf_login_docker_push_wharf_pull(alice_s3cret());
}

#[test]
fn token_auth_wharf_login_serves_docker_and_wharf() {
    require_env!();
    wharf_login_docker_push_wharf_pull(RegistryAuth::Token {
        user: "alice".into(),
        password: "s3cret".into(),
    });
}

/// The reverse: `docker login` stores, wharf pushes and pulls with it; wharf then finds it
/// stored and logs in again without asking.
#[test]
fn docker_login_serves_wharf() {
    require_env!();
    let Some(reg) = LocalRegistry::start_with(alice_s3cret()) else {
        return;
    };
    let d = Daemon::start();
    d.busybox();
    let cfg = tempfile::tempdir().unwrap();
    let cfg = cfg.path();
    let name = format!("{}/team/other:2", reg.addr);
    d.ok(&["tag", "busybox", &name]);
    let login = ["login", &reg.addr, "-u", "alice", "--password-stdin"];
    assert_ok(
        "docker login",
        &with_cfg(&d, DOCKER, cfg, &login, Some(b"s3cret\n"), &[]),
    );
    let o = with_cfg(&d, WHARF, cfg, &["push", &name], None, &[]);
    assert_ok("wharf push with docker's login", &o);
    assert!(text(&o).contains("2: digest: sha256:"), "{}", text(&o));
    let e = Daemon::start();
    assert_ok(
        "wharf pull with docker's login",
        &with_cfg(&e, WHARF, cfg, &["pull", &name], None, &[]),
    );
    // No flags: wharf re-checks the stored credentials, as docker does.
    let o = with_cfg(&d, WHARF, cfg, &["login", &reg.addr], None, &[]);
    assert_ok("wharf login with stored credentials", &o);
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .starts_with("Authenticating with existing credentials... [Username: alice]"),
        "{}",
        text(&o)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "Login Succeeded\n");
}

/// A fake `docker-credential-wharftest` in `dir/bin` keeping one file per server in
/// `dir/store`; returns the PATH to run the clients with.
fn fake_helper(dir: &Path) -> String {
    let bin = dir.join("bin");
    let store = dir.join("store");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&store).unwrap();
    let script = bin.join("docker-credential-wharftest");
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/sh
d={}
case "$1" in
store) in=$(cat); s=$(printf '%s' "$in" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/' | tr '/:' '__'); printf '%s' "$in" > "$d/$s" ;;
get) s=$(cat | tr '/:' '__'); if [ -f "$d/$s" ]; then cat "$d/$s"; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) s=$(cat | tr '/:' '__'); rm -f "$d/$s" ;;
list) echo '{{}}' ;;
*) exit 2 ;;
esac
"#,
            store.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// `credsStore` (then `credHelpers`): the secret goes to the helper, config.json keeps an
/// empty entry; docker and wharf both read it back through the helper; logout erases it.
#[test]
fn credential_helper_holds_the_secret() {
    require_env!();
    let Some(reg) = LocalRegistry::start_with(alice_s3cret()) else {
        return;
    };
    let d = Daemon::start();
    d.busybox();
    let tmp = tempfile::tempdir().unwrap();
    let path = fake_helper(tmp.path());
    let env = [("PATH", path.as_str())];
    let stored = tmp
        .path()
        .join("store")
        .join(reg.addr.replace([':', '/'], "_"));
    let cfg = tmp.path().join("cfg");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("config.json"), r#"{"credsStore": "wharftest"}"#).unwrap();
    let name = format!("{}/team/helper:3", reg.addr);
    d.ok(&["tag", "busybox", &name]);

    let login = ["login", &reg.addr, "-u", "alice", "--password-stdin"];
    let o = with_cfg(&d, WHARF, &cfg, &login, Some(b"s3cret\n"), &env);
    assert_ok("wharf login into the helper", &o);
    assert!(!text(&o).contains("unencrypted"), "{}", text(&o));
    let c = config(&cfg);
    assert_eq!(c["auths"], json!({ reg.addr.clone(): {} }), "{c}");
    assert_eq!(c["credsStore"], "wharftest");
    let secret: Value = serde_json::from_slice(&std::fs::read(&stored).unwrap()).unwrap();
    assert_eq!(
        secret,
        json!({"ServerURL": reg.addr, "Username": "alice", "Secret": "s3cret"})
    );

    assert_ok(
        "docker push through the helper",
        &with_cfg(&d, DOCKER, &cfg, &["push", &name], None, &env),
    );
    let e = Daemon::start();
    assert_ok(
        "wharf pull through the helper",
        &with_cfg(&e, WHARF, &cfg, &["pull", &name], None, &env),
    );

    assert_ok(
        "wharf logout",
        &with_cfg(&d, WHARF, &cfg, &["logout", &reg.addr], None, &env),
    );
    assert!(!stored.exists(), "logout left the secret in the helper");
    assert_eq!(config(&cfg)["auths"], json!({}));

    // A per-registry helper takes precedence the same way.
    std::fs::write(
        cfg.join("config.json"),
        json!({"credHelpers": { reg.addr.clone(): "wharftest" }}).to_string(),
    )
    .unwrap();
    assert_ok(
        "wharf login into credHelpers",
        &with_cfg(&d, WHARF, &cfg, &login, Some(b"s3cret\n"), &env),
    );
    assert!(stored.exists());
    assert!(!std::fs::read_to_string(cfg.join("config.json"))
        .unwrap()
        .contains("\"auth\""));
    e.ok(&["rmi", &name]);
    assert_ok(
        "wharf pull through credHelpers",
        &with_cfg(&e, WHARF, &cfg, &["pull", &name], None, &env),
    );
}

/// Flag errors and the non-terminal refusal, word for word as docker (no daemon needed:
/// both clients stop before connecting).
#[test]
fn login_flag_errors_match_docker() {
    let cfg = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "login",
                "r.example",
                "-u",
                "a",
                "-p",
                "x",
                "--password-stdin",
            ],
            "conflicting options: cannot specify both --password and --password-stdin\n",
        ),
        (
            &["login", "r.example", "--password-stdin"],
            "the --password-stdin option requires --username to be set\n",
        ),
        (
            &["login", "r.example", "-u", "a"],
            "Error: Cannot perform an interactive login from a non TTY device\n",
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["-H", "unix:///nonexistent/wharf.sock", "--config"];
        all.push(cfg.path().to_str().unwrap());
        all.extend_from_slice(args);
        let run = |bin: &str| {
            std::process::Command::new(bin)
                .args(&all)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap()
        };
        let w = run(WHARF);
        assert_eq!(w.status.code(), Some(1), "{args:?}: {}", text(&w));
        assert_eq!(String::from_utf8_lossy(&w.stderr), want, "{args:?}");
        if common::have_docker() {
            let k = run(DOCKER);
            assert_eq!(k.status.code(), Some(1), "docker {args:?}");
            assert_eq!(
                String::from_utf8_lossy(&k.stderr),
                want,
                "docker {args:?} disagrees"
            );
        }
    }
    assert!(!cfg.path().join("config.json").exists());
}

/// `wharf build` sends the config's credentials (`X-Registry-Config`): a FROM image of a
/// registry wanting auth pulls with them, and fails without.
#[test]
fn build_pulls_a_private_base_image_with_the_config_s_credentials() {
    require_env!();
    let Some(reg) = LocalRegistry::start_with(alice_s3cret()) else {
        return;
    };
    let d = Daemon::start();
    d.busybox();
    let cfg = tempfile::tempdir().unwrap();
    let cfg = cfg.path();
    let name = format!("{}/team/base:1", reg.addr);
    d.ok(&["tag", "busybox", &name]);
    let login = ["login", &reg.addr, "-u", "alice", "--password-stdin"];
    assert_ok(
        "wharf login",
        &with_cfg(&d, WHARF, cfg, &login, Some(b"s3cret\n"), &[]),
    );
    assert_ok(
        "wharf push",
        &with_cfg(&d, WHARF, cfg, &["push", &name], None, &[]),
    );

    let e = Daemon::start();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {name}\nRUN echo built-on-private > /p\n"),
    )
    .unwrap();
    let dir = ctx.path().to_str().unwrap();
    let build = ["build", "--network", "none", "-t", "from-private", dir];
    let empty = tempfile::tempdir().unwrap();
    assert_auth_error(
        "build without credentials",
        &with_cfg(&e, WHARF, empty.path(), &build, None, &[]),
    );
    let o = with_cfg(&e, WHARF, cfg, &build, None, &[]);
    assert_ok("build with the config's credentials", &o);
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "from-private",
            "cat",
            "/p"
        ]),
        "built-on-private\n"
    );
}
