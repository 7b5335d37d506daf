//! wharf-init: PID 1 for `docker run --init`. Runs `wharf-init -- CMD ARGS...` as its child,
//! forwards the signals a container receives (TERM, INT, HUP, QUIT, USR1, USR2, WINCH) to it,
//! reaps every zombie reparented to it, and exits with the child's status (128+signal when the
//! child was killed), as Docker's docker-init (tini) does.
//!
//! `wharf-init --pause` runs no command: it holds a pod sandbox's namespaces for the CRI
//! (what Kubernetes' pause container does), reaps what is reparented to it and exits 0 on
//! TERM, INT or QUIT.
//!
//! This file is a whole program with no dependency but std: build.rs compiles it alone with
//! `rustc -C target-feature=+crt-static`, so that the binary needs no libc or dynamic loader
//! in the container (see lib.rs). The few libc calls std does not wrap are declared here.

use std::ffi::c_int;
use std::os::unix::process::CommandExt;
use std::process::Command;

// Linux's generic signal numbers and flags (x86, arm, riscv, s390x, powerpc; not mips,
// sparc or alpha).
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "riscv64",
    target_arch = "s390x",
    target_arch = "powerpc64"
)))]
compile_error!("wharf-init: signal numbers of this architecture are not known");
const SIGHUP: c_int = 1;
const SIGINT: c_int = 2;
const SIGQUIT: c_int = 3;
const SIGUSR1: c_int = 10;
const SIGUSR2: c_int = 12;
const SIGTERM: c_int = 15;
const SIGCHLD: c_int = 17;
const SIGWINCH: c_int = 28;
const SIG_BLOCK: c_int = 0;
const SIG_UNBLOCK: c_int = 1;
const WNOHANG: c_int = 1;

const FORWARDED: &[c_int] = &[SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH];

/// sigset_t: 1024 bits in glibc and musl.
#[repr(C)]
struct SigSet([u64; 16]);

extern "C" {
    fn sigemptyset(set: *mut SigSet) -> c_int;
    fn sigaddset(set: *mut SigSet, sig: c_int) -> c_int;
    fn sigprocmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    fn sigwait(set: *const SigSet, sig: *mut c_int) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
}

fn die(what: &str, e: std::io::Error, code: i32) -> ! {
    eprintln!("wharf-init: {what}: {e}");
    std::process::exit(code)
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let pause = args.first().map(String::as_str) == Some("--pause");
    if args.first().map(String::as_str) == Some("--") {
        args.remove(0);
    }
    if args.is_empty() && !pause {
        eprintln!("wharf-init: usage: wharf-init -- COMMAND [ARG...]");
        std::process::exit(2);
    }
    let mut set = SigSet([0; 16]);
    // SAFETY: `set` is a valid, writable sigset_t-sized buffer; the numbers are valid signals.
    unsafe {
        sigemptyset(&mut set);
        for s in FORWARDED.iter().chain(&[SIGCHLD]) {
            sigaddset(&mut set, *s);
        }
    }
    // Blocked before the child exists so that none is lost; the child unblocks them before
    // exec (a blocked mask is inherited across exec, and std's spawn keeps it).
    // SAFETY: `set` is initialised above; no old mask is asked for.
    if unsafe { sigprocmask(SIG_BLOCK, &set, std::ptr::null_mut()) } != 0 {
        die("blocking signals", std::io::Error::last_os_error(), 1);
    }
    if pause {
        loop {
            let mut sig: c_int = 0;
            // SAFETY: `set` is initialised and `sig` is a valid out-pointer.
            if unsafe { sigwait(&set, &mut sig) } != 0 {
                continue;
            }
            match sig {
                SIGTERM | SIGINT | SIGQUIT => std::process::exit(0),
                // SAFETY: waitpid(2) for any child, no status wanted.
                SIGCHLD => while unsafe { waitpid(-1, std::ptr::null_mut(), WNOHANG) } > 0 {},
                _ => {}
            }
        }
    }
    let mut cmd = Command::new(&args[0]);
    cmd.args(&args[1..]);
    let unblock = SigSet(set.0);
    // SAFETY: the hook runs in the forked child before exec and only calls sigprocmask(2),
    // which is async-signal-safe, on a set owned by the closure.
    unsafe {
        cmd.pre_exec(move || {
            if sigprocmask(SIG_UNBLOCK, &unblock, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = match cmd.spawn() {
        Ok(c) => c.id() as c_int,
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            die(&format!("exec {}", args[0]), e, code)
        }
    };
    loop {
        let mut sig: c_int = 0;
        // SAFETY: `set` is initialised and `sig` is a valid out-pointer.
        if unsafe { sigwait(&set, &mut sig) } != 0 {
            continue;
        }
        if sig != SIGCHLD {
            // SAFETY: plain kill(2) of our child's pid.
            unsafe { kill(child, sig) };
            continue;
        }
        loop {
            let mut status: c_int = 0;
            // SAFETY: waitpid(2) for any child, `status` a valid out-pointer.
            let pid = unsafe { waitpid(-1, &mut status, WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == child {
                let (signal, code) = (status & 0x7f, (status >> 8) & 0xff);
                if signal == 0 {
                    std::process::exit(code);
                }
                if signal != 0x7f {
                    std::process::exit(128 + signal);
                }
            }
        }
    }
}
