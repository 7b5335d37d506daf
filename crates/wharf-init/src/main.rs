//! wharf-init: PID 1 for `docker run --init`. Runs `wharf-init -- CMD ARGS...` as its child,
//! forwards the signals a container receives (TERM, INT, HUP, QUIT, USR1, USR2, WINCH) to it,
//! reaps every zombie reparented to it, and exits with the child's status (128+signal when the
//! child was killed), as Docker's docker-init (tini) does.

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{execvp, fork, ForkResult, Pid};
use std::ffi::CString;

const FORWARDED: &[Signal] = &[
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--") {
        args.remove(0);
    }
    if args.is_empty() {
        eprintln!("wharf-init: usage: wharf-init -- COMMAND [ARG...]");
        std::process::exit(2);
    }
    let cargs: Vec<CString> = match args.iter().map(|a| CString::new(a.as_bytes())).collect() {
        Ok(c) => c,
        Err(_) => {
            eprintln!("wharf-init: an argument contains a NUL byte");
            std::process::exit(2);
        }
    };
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(*s);
    }
    set.add(Signal::SIGCHLD);
    // Block them before forking so none is lost; the child unblocks before exec.
    if let Err(e) = set.thread_block() {
        eprintln!("wharf-init: blocking signals: {e}");
        std::process::exit(1);
    }
    // SAFETY: single-threaded; the child only unblocks signals and execs.
    let child = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let _ = set.thread_unblock();
            let err = execvp(&cargs[0], &cargs).unwrap_err();
            eprintln!("wharf-init: exec {}: {err}", args[0]);
            std::process::exit(if err == nix::Error::ENOENT { 127 } else { 126 });
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => {
            eprintln!("wharf-init: fork: {e}");
            std::process::exit(1);
        }
    };
    loop {
        let sig = match set.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig != Signal::SIGCHLD {
            let _ = kill(child, sig);
            continue;
        }
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => std::process::exit(code),
                Ok(WaitStatus::Signaled(pid, s, _)) if pid == child => {
                    std::process::exit(128 + s as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}
