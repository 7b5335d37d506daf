//! OCI hooks: each runs with the container's state JSON on stdin, its own args and env, and
//! an optional timeout. A failing prestart/createRuntime/createContainer/startContainer hook
//! fails the operation; poststart and poststop failures are logged (as the spec allows).

use crate::error::{Result, RuntimeError};
use crate::state::OciState;
use oci_spec::runtime::Hook;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `hooks` (named `kind` in errors) in order; stops at the first failure.
pub fn run(kind: &str, hooks: Option<&Vec<Hook>>, state: &OciState) -> Result<()> {
    let Some(hooks) = hooks else { return Ok(()) };
    let json = serde_json::to_vec(state).expect("state serializes");
    for h in hooks {
        run_one(kind, h, &json)?;
    }
    Ok(())
}

fn run_one(kind: &str, h: &Hook, state: &[u8]) -> Result<()> {
    let err = |message: String| RuntimeError::Hook {
        hook: kind.to_string(),
        path: h.path().clone(),
        message,
    };
    let mut cmd = Command::new(h.path());
    if let Some(args) = h.args() {
        // args[0] is argv[0], as in execve.
        if let Some((first, rest)) = args.split_first() {
            use std::os::unix::process::CommandExt;
            cmd.arg0(first);
            cmd.args(rest);
        }
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| err(format!("cannot run it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin must not fail us.
        let _ = stdin.write_all(state);
    }
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => return Err(err(format!("waiting for it: {e}"))),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(err(format!(
                "timed out after {} seconds",
                h.timeout().unwrap_or(0)
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        _ if status.success() => Ok(()),
        // The signal's name as runc reports it ("signal: bad system call").
        Some(sig) => Err(err(format!(
            "signal: {}",
            signal_description(sig).to_lowercase()
        ))),
        None => Err(err(format!("failed: {status}"))),
    }
}

/// strsignal(3) of `sig` ("Bad system call").
fn signal_description(sig: i32) -> String {
    // SAFETY: strsignal returns a pointer to a static (or thread-local) NUL-terminated
    // string, copied at once.
    let p = unsafe { libc::strsignal(sig) };
    if p.is_null() {
        return format!("signal {sig}");
    }
    // SAFETY: `p` is a valid C string (checked non-null above).
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Status;
    use oci_spec::runtime::HookBuilder;

    fn state() -> OciState {
        OciState {
            oci_version: "1.2.0".into(),
            id: "hooked".into(),
            pid: 42,
            status: Status::Created,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "now".into(),
            owner: String::new(),
            annotations: Default::default(),
        }
    }

    #[test]
    fn hooks_get_state_args_env_and_fail_on_error() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let hook = HookBuilder::default()
            .path("/bin/sh")
            .args(vec![
                "sh".to_string(),
                "-c".to_string(),
                format!("cat > {0}; echo \" $1 $X\" >> {0}", out.display()),
                "sh".to_string(),
                "arg1".to_string(),
            ])
            .env(vec!["X=envx".to_string()])
            .build()
            .unwrap();
        run("prestart", Some(&vec![hook]), &state()).unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        assert!(got.contains("\"id\":\"hooked\""), "{got}");
        assert!(got.contains("\"pid\":42"), "{got}");
        assert!(got.ends_with(" arg1 envx\n"), "{got}");

        let failing = HookBuilder::default().path("/bin/false").build().unwrap();
        let e = run("poststart", Some(&vec![failing]), &state()).unwrap_err();
        assert!(
            e.to_string()
                .contains("error running hook (poststart) /bin/false"),
            "{e}"
        );

        let slow = HookBuilder::default()
            .path("/bin/sleep")
            .args(vec!["sleep".into(), "5".into()])
            .timeout(1)
            .build()
            .unwrap();
        let t = Instant::now();
        let e = run("createRuntime", Some(&vec![slow]), &state()).unwrap_err();
        assert!(e.to_string().contains("timed out"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(4));
    }
}
