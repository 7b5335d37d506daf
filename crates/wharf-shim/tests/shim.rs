//! The shim driven as the daemon drives it, over runc (and the default `builtin`, which falls
//! back to runc while `wharf_runtime` cannot create containers). Root only.

mod common;

use common::*;
use std::io::Write;
use std::net::Shutdown;
use wharf_shim::proto::{ExitStatus, STREAM_EXIT};

fn runc() -> Opts {
    Opts {
        runtime: Some(RUNC.into()),
        ..Opts::default()
    }
}

/// The reply to a WAIT sent before the exit.
fn wait_status(waiter: &mut std::io::BufReader<std::os::unix::net::UnixStream>) -> ExitStatus {
    let line = reply(waiter);
    let data = line
        .strip_prefix("OK ")
        .unwrap_or_else(|| panic!("{line:?}"));
    ExitStatus::parse(data).unwrap()
}

/// After the exit: status file, no socket or pid file, nothing left in the runtime or cgroups.
fn assert_cleaned_up(shim: &Shim, bundle: &Bundle, code: i32) {
    shim.wait_gone();
    let exit = std::fs::read_to_string(shim.state.join("exit")).unwrap();
    assert!(exit.ends_with('\n'));
    assert_eq!(ExitStatus::parse(&exit).unwrap().code, code);
    assert!(!shim.sock().exists(), "shim.sock left");
    assert!(!shim.state.join("shim.pid").exists(), "shim.pid left");
    assert!(
        !shim.runtime_ids().contains(&shim.id),
        "the runtime still lists {}",
        shim.id
    );
    assert_eq!(bundle.cgroups_left(), Vec::<std::path::PathBuf>::new());
}

fn echo_attach_wait_log(opts: Opts) {
    let bundle = Bundle::new(&["sh", "-c", "echo hi; echo err >&2"], false);
    let shim = spawn(&bundle, &opts).unwrap_or_else(|f| panic!("{}", f.line));
    assert!(shim.init > 0);
    assert_eq!(shim.call("STATE"), format!("OK created {}", shim.init));
    // The daemon's role is played by this process: the shim is not our child.
    assert_ne!(shim.ppid(), std::process::id() as i32);
    let (ok, mut attach) = shim.open("ATTACH 0 1 1");
    assert_eq!(ok, "OK");
    // Several clients at once: each gets what it asked for.
    let (ok, mut stderr_only) = shim.open("ATTACH 0 0 1");
    assert_eq!(ok, "OK");
    let mut waiter = shim.send("WAIT");
    assert_eq!(shim.call("START"), format!("OK {}", shim.init));
    let frames = read_frames(&mut attach);
    assert_eq!(stream_text(&frames, 1), "hi\n");
    assert_eq!(stream_text(&frames, 2), "err\n");
    let frames = read_frames(&mut stderr_only);
    assert_eq!(frames, vec![(2, b"err\n".to_vec())]);
    let st = wait_status(&mut waiter);
    assert_eq!((st.code, st.oom_killed), (0, false));
    assert!(st.finished_at.ends_with('Z'), "{}", st.finished_at);
    let log = std::fs::read_to_string(&shim.log).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{log}");
    let mut got: Vec<(String, String)> = lines
        .iter()
        .map(|v| {
            (
                v["log"].as_str().unwrap().to_string(),
                v["stream"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("err\n".to_string(), "stderr".to_string()),
            ("hi\n".to_string(), "stdout".to_string())
        ]
    );
    assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    assert_cleaned_up(&shim, &bundle, 0);
}

#[test]
fn runc_echo_attach_wait_log() {
    if root_or_skip("runc_echo_attach_wait_log") {
        echo_attach_wait_log(runc());
    }
}

#[test]
fn builtin_echo_attach_wait_log() {
    if root_or_skip("builtin_echo_attach_wait_log") {
        // The default runtime: wharf_runtime in process.
        echo_attach_wait_log(Opts::default());
    }
}

#[test]
fn exit_code_and_exit_file_with_nobody_connected() {
    if !root_or_skip("exit_code_and_exit_file_with_nobody_connected") {
        return;
    }
    let bundle = Bundle::new(&["sh", "-c", "exit 3"], false);
    let shim = spawn(&bundle, &runc()).unwrap_or_else(|f| panic!("{}", f.line));
    assert_eq!(shim.call("START"), format!("OK {}", shim.init));
    // Nobody waits: the exit file is how a daemon that was down learns the status.
    assert_cleaned_up(&shim, &bundle, 3);
}

#[test]
fn kill_9_gives_137_and_control_requests() {
    if !root_or_skip("kill_9_gives_137_and_control_requests") {
        return;
    }
    let bundle = Bundle::new(&["sleep", "100"], false);
    let shim = spawn(&bundle, &runc()).unwrap_or_else(|f| panic!("{}", f.line));
    assert_eq!(shim.call("START"), format!("OK {}", shim.init));
    // (Here, not with a container that exits at once: the shim may be gone by the second.)
    assert!(shim.call("START").starts_with("ERR "), "started twice");
    assert_eq!(shim.call("STATE"), format!("OK running {}", shim.init));
    let pids = shim.call("PIDS");
    assert_eq!(pids, format!("OK {}", shim.init));
    let stats = shim.call("STATS");
    let json: serde_json::Value = serde_json::from_str(stats.strip_prefix("OK ").unwrap()).unwrap();
    assert!(json["pids_current"].as_u64().unwrap() >= 1, "{stats}");
    assert!(json["memory_usage"].as_u64().unwrap() > 0, "{stats}");
    assert!(shim.call("RESIZE 24 80").starts_with("ERR "), "no tty");
    assert!(shim.call("BOGUS").starts_with("ERR "));
    assert_eq!(shim.call("PAUSE"), "OK");
    assert_eq!(shim.call("STATE"), format!("OK paused {}", shim.init));
    assert_eq!(shim.call("RESUME"), "OK");
    assert_eq!(shim.call("STATE"), format!("OK running {}", shim.init));
    let mut waiter = shim.send("WAIT");
    assert_eq!(shim.call("KILL 9"), "OK");
    assert_eq!(wait_status(&mut waiter).code, 137);
    assert_cleaned_up(&shim, &bundle, 137);
}

#[test]
fn stdin_once_closes_the_containers_stdin() {
    if !root_or_skip("stdin_once_closes_the_containers_stdin") {
        return;
    }
    let bundle = Bundle::new(&["cat"], false);
    let opts = Opts {
        stdin: true,
        stdin_once: true,
        ..runc()
    };
    let shim = spawn(&bundle, &opts).unwrap_or_else(|f| panic!("{}", f.line));
    let (ok, mut attach) = shim.open("ATTACH 1 1 1");
    assert_eq!(ok, "OK");
    let mut waiter = shim.send("WAIT");
    assert_eq!(shim.call("START"), format!("OK {}", shim.init));
    attach.get_mut().write_all(b"hello\nworld").unwrap();
    attach.get_ref().shutdown(Shutdown::Write).unwrap();
    let frames = read_frames(&mut attach);
    assert_eq!(stream_text(&frames, 1), "hello\nworld");
    assert_eq!(wait_status(&mut waiter).code, 0);
    // The partial last line is logged at exit.
    let log = std::fs::read_to_string(&shim.log).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(log.contains("\"log\":\"world\""), "{log}");
    assert_cleaned_up(&shim, &bundle, 0);
}

#[test]
fn tty_output_goes_through_the_pty() {
    if !root_or_skip("tty_output_goes_through_the_pty") {
        return;
    }
    let bundle = Bundle::new(&["sh", "-c", "stty size; echo err >&2"], true);
    let opts = Opts {
        tty: true,
        ..runc()
    };
    let shim = spawn(&bundle, &opts).unwrap_or_else(|f| panic!("{}", f.line));
    let (ok, mut attach) = shim.open("ATTACH 0 1 1");
    assert_eq!(ok, "OK");
    assert_eq!(shim.call("RESIZE 30 100"), "OK");
    let mut waiter = shim.send("WAIT");
    assert_eq!(shim.call("START"), format!("OK {}", shim.init));
    let frames = read_frames(&mut attach);
    assert!(frames.iter().all(|(s, _)| *s == 1), "a tty has one stream");
    // The pty's line discipline turns \n into \r\n.
    assert_eq!(stream_text(&frames, 1), "30 100\r\nerr\r\n");
    assert_eq!(wait_status(&mut waiter).code, 0);
    assert_cleaned_up(&shim, &bundle, 0);
}

#[test]
fn exec_streams_output_and_exit_code() {
    if !root_or_skip("exec_streams_output_and_exit_code") {
        return;
    }
    let bundle = Bundle::new(&["sleep", "100"], false);
    let shim = spawn(&bundle, &runc()).unwrap_or_else(|f| panic!("{}", f.line));
    assert_eq!(shim.call("START"), format!("OK {}", shim.init));
    let p = bundle.process_json(
        "p1.json",
        &["sh", "-c", "echo $$; echo e >&2; exit 5"],
        false,
    );
    let (ok, mut conn) = shim.open(&format!("EXEC e1 0 0 {}", p.display()));
    let pid: i32 = ok.strip_prefix("OK ").unwrap().parse().unwrap();
    assert!(pid > 0 && pid != shim.init);
    let frames = read_frames(&mut conn);
    let (last_stream, last) = frames.last().unwrap();
    assert_eq!(*last_stream, STREAM_EXIT);
    assert_eq!(last.as_slice(), 5i32.to_be_bytes());
    // $$ is the process's pid inside the container's pid namespace.
    let inner: i32 = stream_text(&frames, 1).trim().parse().unwrap();
    assert!(inner > 1);
    assert_eq!(stream_text(&frames, 2), "e\n");
    // Exec with stdin: cat echoes until the client half-closes.
    let p = bundle.process_json("p2.json", &["cat"], false);
    let (ok, mut conn) = shim.open(&format!("EXEC e2 0 1 {}", p.display()));
    assert!(ok.starts_with("OK "), "{ok}");
    conn.get_mut().write_all(b"abc").unwrap();
    conn.get_ref().shutdown(Shutdown::Write).unwrap();
    let frames = read_frames(&mut conn);
    assert_eq!(stream_text(&frames, 1), "abc");
    assert_eq!(frames.last().unwrap().1, 0i32.to_be_bytes());
    // Exec output is not logged.
    assert_eq!(std::fs::read_to_string(&shim.log).unwrap_or_default(), "");
    let mut waiter = shim.send("WAIT");
    assert_eq!(shim.call("KILL 9"), "OK");
    assert_eq!(wait_status(&mut waiter).code, 137);
    assert_cleaned_up(&shim, &bundle, 137);
}

#[test]
fn create_failure_reports_the_runtime_error() {
    if !root_or_skip("create_failure_reports_the_runtime_error") {
        return;
    }
    let bundle = Bundle::new(&["no-such-binary"], false);
    let failed = match spawn(&bundle, &runc()) {
        Ok(_) => panic!("the shim created a container with no binary"),
        Err(f) => f,
    };
    assert!(failed.line.starts_with("err "), "{}", failed.line);
    assert!(failed.line.ends_with('\n'));
    assert!(
        failed.line.contains("executable file not found"),
        "{}",
        failed.line
    );
    assert!(!runtime_ids(&failed.runtime_root).contains(&bundle.id));
    assert_eq!(bundle.cgroups_left(), Vec::<std::path::PathBuf>::new());
}
