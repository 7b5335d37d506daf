//! Registries that want credentials: htpasswd basic auth and distribution's token auth (a
//! token issuer fixture), driven with the real docker CLI through wharfd: `docker login`
//! (POST /auth), then push and pull carrying `X-Registry-Auth`, and the errors without it.

mod common;

use common::{Daemon, LocalRegistry, RegistryAuth};

/// docker with its own config dir (where `login` stores credentials).
fn docker_cfg(
    d: &Daemon,
    cfg: &std::path::Path,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> std::process::Output {
    let mut a = vec!["--config", cfg.to_str().unwrap()];
    a.extend_from_slice(args);
    d.docker_stdin(&a, stdin)
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn login_push_pull(auth: RegistryAuth) {
    let Some(reg) = LocalRegistry::start_with(auth) else {
        return;
    };
    let d = Daemon::start();
    d.busybox();
    let cfg = tempfile::tempdir().unwrap();
    let name = format!("{}/team/secret:1", reg.addr);
    d.ok(&["tag", "busybox", &name]);

    // Without credentials: refused, with the registry's reason.
    let o = docker_cfg(&d, cfg.path(), &["push", &name], None);
    assert!(
        !o.status.success(),
        "anonymous push must fail: {}",
        text(&o)
    );
    let t = text(&o);
    assert!(
        t.contains("401") || t.contains("unauthorized") || t.contains("authentication required"),
        "{t}"
    );

    // A wrong password: login fails, nothing stored.
    let o = docker_cfg(
        &d,
        cfg.path(),
        &["login", &reg.addr, "-u", "alice", "--password-stdin"],
        Some(b"wrong\n"),
    );
    assert!(!o.status.success(), "bad password accepted: {}", text(&o));
    assert!(
        !cfg.path().join("config.json").exists()
            || !std::fs::read_to_string(cfg.path().join("config.json"))
                .unwrap()
                .contains(&reg.addr)
    );

    let o = docker_cfg(
        &d,
        cfg.path(),
        &["login", &reg.addr, "-u", "alice", "--password-stdin"],
        Some(b"s3cret\n"),
    );
    assert!(o.status.success(), "login: {}", text(&o));
    assert!(text(&o).contains("Login Succeeded"), "{}", text(&o));
    let stored = std::fs::read_to_string(cfg.path().join("config.json")).unwrap();
    assert!(stored.contains(&reg.addr), "{stored}");

    let o = docker_cfg(&d, cfg.path(), &["push", &name], None);
    assert!(o.status.success(), "push after login: {}", text(&o));
    assert!(text(&o).contains("1: digest: sha256:"), "{}", text(&o));

    // Pull it back into a second daemon: anonymous fails, with the login it works.
    let e = Daemon::start();
    let o = docker_cfg(
        &e,
        tempfile::tempdir().unwrap().path(),
        &["pull", &name],
        None,
    );
    assert!(
        !o.status.success(),
        "anonymous pull must fail: {}",
        text(&o)
    );
    let o = docker_cfg(&e, cfg.path(), &["pull", &name], None);
    assert!(o.status.success(), "pull after login: {}", text(&o));
    assert_eq!(
        e.ok(&["run", "--rm", "--network", "none", &name, "echo", "pulled"]),
        "pulled\n"
    );
    // Pushed elsewhere on the registry, its layers are mounted from team/secret: with token
    // auth the token also grants pull on team/secret, asked for in the same request.
    let other = format!("{}/team/other:1", reg.addr);
    e.ok(&["tag", &name, &other]);
    let o = docker_cfg(&e, cfg.path(), &["push", &other], None);
    assert!(
        o.status.success(),
        "push to another repository: {}",
        text(&o)
    );
    assert!(
        text(&o).contains("Mounted from team/secret"),
        "{}",
        text(&o)
    );
    if let Some(issuer) = &reg.issuer {
        let grants = issuer.grants.lock().unwrap().clone();
        assert!(
            grants.iter().any(
                |g| g.contains(&"repository:team/other:pull,push".to_string())
                    && g.contains(&"repository:team/secret:pull".to_string())
            ),
            "the mount's token asked for both repositories: {grants:?}"
        );
        let scopes = issuer.requests.lock().unwrap().clone();
        assert!(
            scopes
                .iter()
                .any(|s| s == "repository:team/secret:pull,push"),
            "push asked for a push scope: {scopes:?}"
        );
        assert!(
            scopes.iter().any(|s| s == "repository:team/secret:pull"),
            "pull asked for a pull scope: {scopes:?}"
        );
    }
}

#[test]
fn basic_auth_login_push_pull() {
    require_env!();
    login_push_pull(RegistryAuth::Basic {
        user: "alice".into(),
        password: "s3cret".into(),
    });
}

#[test]
fn token_auth_login_push_pull() {
    require_env!();
    login_push_pull(RegistryAuth::Token {
        user: "alice".into(),
        password: "s3cret".into(),
    });
}

#[test]
fn python_sdk_login_push_pull() {
    require_env!();
    let venv = std::env::var("WHARF_TEST_VENV").unwrap_or_else(|_| "/var/tmp/wharf-venv".into());
    let python = std::path::Path::new(&venv).join("bin/python");
    let has_sdk = python.exists()
        && std::process::Command::new(&python)
            .args(["-c", "import docker, pytest"])
            .status()
            .is_ok_and(|s| s.success());
    if !has_sdk {
        wharf_testkit::skip(format!(
            "no venv with docker and pytest at {venv} (.ci/run makes one)"
        ));
        return;
    }
    let Some(reg) = LocalRegistry::start_with(RegistryAuth::Basic {
        user: "alice".into(),
        password: "s3cret".into(),
    }) else {
        return;
    };
    let d = Daemon::start();
    d.busybox();
    let test =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/test_sdk_registry.py");
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&test)
        .env("WHARF_HOST", d.host())
        .env("REGISTRY", &reg.addr)
        // The SDK reads ~/.docker/config.json: keep the host's out of it.
        .env("HOME", home.path())
        .env_remove("DOCKER_CONFIG")
        .output()
        .expect("run pytest");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "pytest failed:\n{text}\n--- wharfd log ---\n{}",
        d.log()
    );
    assert!(text.contains("3 passed"), "{text}");
}
