//! Seccomp filters installed for real: each test forks a child that installs a compiled
//! profile and tries syscalls, reporting through its exit code (or dying of SIGSYS); the
//! parent waits and checks. Profiles are compiled in the parent, so the child only makes
//! raw syscalls (no allocation after fork in a multi-threaded test process).

#[path = "fixtures/moby_profile.rs"]
#[allow(dead_code)]
mod moby_profile;

use std::os::fd::AsRawFd;

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxSeccomp;
use serde_json::json;
use wharf_runtime::seccomp::{
    compile, compile_filter, install, install_with_flags, install_with_listener, FilterFlags,
    Program, SeccompError, BPF_MAXINSNS,
};

/// Exit codes the children use to say what went wrong.
const OK: i32 = 0;
const INSTALL_FAILED: i32 = 100;
const NNP_FAILED: i32 = 101;
const PANICKED: i32 = 102;

fn profile(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("valid OCI seccomp JSON")
}

fn errno() -> i32 {
    nix::errno::Errno::last_raw()
}

fn set_no_new_privs() -> bool {
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) takes no pointers.
    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 }
}

/// Run `f` in a forked child with a 10 s alarm; return how the child ended.
fn in_child(f: impl FnOnce() -> i32) -> WaitStatus {
    // SAFETY: fork(2) takes no arguments. The child only runs `f` (raw syscalls, no locks
    // that another thread of the test process could hold) and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: alarm(2) takes no pointers; SIGALRM bounds a hung child.
        unsafe { libc::alarm(10) };
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(PANICKED);
        // SAFETY: _exit(2) ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    waitpid(Pid::from_raw(pid), None).expect("waitpid")
}

/// Install `program` (no_new_privs first) in a child, then run `f`.
fn with_filter(program: &Program, f: impl FnOnce() -> i32) -> WaitStatus {
    in_child(|| {
        if !set_no_new_privs() {
            return NNP_FAILED;
        }
        if install(program).is_err() {
            return INSTALL_FAILED;
        }
        f()
    })
}

fn exited(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        other => panic!("child did not exit normally: {other:?}"),
    }
}

/// A path whose parent does not exist, so mkdir fails (ENOENT) when the filter lets it through.
const MISSING: &std::ffi::CStr = c"/nonexistent-wharf-seccomp-test/dir";

#[test]
fn errno_rule_reaches_the_child_and_others_are_allowed() {
    let p = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77 }]
    })))
    .unwrap();
    let status = with_filter(&p, || {
        // SAFETY: mkdirat with a NUL-terminated path that outlives the call.
        let rc =
            unsafe { libc::syscall(libc::SYS_mkdirat, libc::AT_FDCWD, MISSING.as_ptr(), 0o755) };
        if rc != -1 || errno() != 77 {
            return 1;
        }
        // SAFETY: getpid takes no arguments.
        let pid = unsafe { libc::syscall(libc::SYS_getpid) };
        if pid <= 0 {
            return 2;
        }
        OK
    });
    assert_eq!(exited(status), OK);

    // Without the filter the same mkdir fails differently: the errno above came from it.
    let status = in_child(|| {
        // SAFETY: mkdirat with a NUL-terminated static path.
        let rc =
            unsafe { libc::syscall(libc::SYS_mkdirat, libc::AT_FDCWD, MISSING.as_ptr(), 0o755) };
        if rc == -1 && errno() == libc::ENOENT {
            OK
        } else {
            1
        }
    });
    assert_eq!(exited(status), OK);
}

#[test]
fn argument_condition_decides_between_rules() {
    // personality(0xffffffff) only queries; anything else is refused with 77, including a
    // value whose low word is 0xffffffff but whose high word is not zero.
    let p = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            { "names": ["personality"], "action": "SCMP_ACT_ALLOW",
              "args": [{ "index": 0, "value": 0xffff_ffffu64, "op": "SCMP_CMP_EQ" }] },
            { "names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77 },
        ]
    })))
    .unwrap();
    let status = with_filter(&p, || {
        let personality = |v: u64| {
            // SAFETY: personality takes an integer.
            unsafe { libc::syscall(libc::SYS_personality, v) }
        };
        if personality(0xffff_ffff) < 0 {
            return 1;
        }
        if personality(0) != -1 || errno() != 77 {
            return 2;
        }
        if personality(0x1_ffff_ffff) != -1 || errno() != 77 {
            return 3;
        }
        OK
    });
    assert_eq!(exited(status), OK);
}

#[test]
fn kill_process_and_trap_end_the_child_with_sigsys() {
    for action in ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_KILL"] {
        let p = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["getppid"], "action": action }]
        })))
        .unwrap();
        let status = with_filter(&p, || {
            // SAFETY: getppid takes no arguments.
            unsafe { libc::syscall(libc::SYS_getppid) };
            OK
        });
        assert!(
            matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
            "{action}: {status:?}"
        );
    }
}

#[test]
fn docker_default_profile_compiles_below_bpf_maxinsns() {
    let caps = moby_profile::DOCKER_DEFAULT_CAPS;
    let p = compile(&moby_profile::docker_default(
        moby_profile::host_goarch(),
        caps,
    ))
    .unwrap();
    eprintln!(
        "Docker default profile, default caps: {} instructions",
        p.len()
    );
    assert!(p.len() < BPF_MAXINSNS, "{}", p.len());
    let all = [
        "CAP_SYS_ADMIN",
        "CAP_SYS_PTRACE",
        "CAP_SYS_MODULE",
        "CAP_SYS_TIME",
    ];
    let p = compile(&moby_profile::docker_default(
        moby_profile::host_goarch(),
        &all,
    ))
    .unwrap();
    eprintln!(
        "Docker default profile, privileged caps: {} instructions",
        p.len()
    );
    assert!(p.len() < BPF_MAXINSNS, "{}", p.len());
}

#[test]
fn docker_default_profile_runs_ordinary_syscalls_and_blocks_others() {
    let dir = tempfile::tempdir().unwrap();
    let new_dir = std::ffi::CString::new(dir.path().join("made").to_str().unwrap()).unwrap();
    let p = compile(&moby_profile::docker_default(
        moby_profile::host_goarch(),
        moby_profile::DOCKER_DEFAULT_CAPS,
    ))
    .unwrap();
    let status = with_filter(&p, || {
        // SAFETY: open with a NUL-terminated static path.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return 1;
        }
        let mut buf = [0u8; 8];
        // SAFETY: read into `buf`, which is 8 bytes long and outlives the call.
        if unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } != 0 {
            return 2;
        }
        // SAFETY: write from `buf`, 8 bytes long, alive across the call.
        if unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) } != 8 {
            return 3;
        }
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into `ts`, alive across the call.
        if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
            return 4;
        }
        // SAFETY: mkdir with `new_dir`, a NUL-terminated CString owned by the parent frame.
        if unsafe { libc::mkdir(new_dir.as_ptr(), 0o755) } != 0 {
            return 5;
        }
        // SAFETY: close of the fd opened above, not used afterwards.
        if unsafe { libc::close(fd) } != 0 {
            return 6;
        }
        // Blocked: unshare → EPERM (the default), clone3 → ENOSYS (its own rule; without
        // the filter a NULL clone_args is EFAULT/EINVAL).
        // SAFETY: unshare takes only flags.
        if unsafe { libc::unshare(libc::CLONE_NEWUTS) } != -1 || errno() != libc::EPERM {
            return 7;
        }
        // SAFETY: clone3 with a NULL pointer: the kernel (or the filter) rejects it before any access.
        let rc = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) };
        if rc != -1 || errno() != libc::ENOSYS {
            return 8;
        }
        OK
    });
    assert_eq!(exited(status), OK);
    assert!(dir.path().join("made").is_dir());
}

#[test]
fn notify_returns_a_working_listener_fd() {
    let filter = compile_filter(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getppid"], "action": "SCMP_ACT_NOTIFY" }]
    })))
    .unwrap();
    assert!(filter.program.uses_notify());
    assert!(matches!(
        install(&filter.program),
        Err(SeccompError::NeedsListener)
    ));
    let status = in_child(|| {
        if !set_no_new_privs() {
            return NNP_FAILED;
        }
        let Ok(Some(listener)) = filter.install() else {
            return INSTALL_FAILED;
        };
        // The grandchild inherits the filter; its getppid waits for us to answer.
        // SAFETY: fork in a single-threaded child.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: getppid takes no arguments; _exit ends the grandchild.
            unsafe {
                let got = libc::syscall(libc::SYS_getppid);
                libc::_exit(if got == 4242 { 0 } else { 1 });
            }
        }
        // SAFETY: seccomp_notif is plain old data; all-zero is its required initial state.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: SECCOMP_IOCTL_NOTIF_RECV fills `req`, which lives across the call.
        if unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV,
                &mut req,
            )
        } != 0
        {
            return 2;
        }
        if i64::from(req.data.nr) != libc::SYS_getppid {
            return 3;
        }
        let mut resp = libc::seccomp_notif_resp {
            id: req.id,
            val: 4242,
            error: 0,
            flags: 0,
        };
        // SAFETY: SECCOMP_IOCTL_NOTIF_SEND reads `resp`, which lives across the call.
        if unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                &mut resp,
            )
        } != 0
        {
            return 4;
        }
        let mut st = 0;
        // SAFETY: waitpid writes the status into `st`.
        if unsafe { libc::waitpid(pid, &mut st, 0) } != pid {
            return 5;
        }
        if libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0 {
            OK
        } else {
            6
        }
    });
    assert_eq!(exited(status), OK);
}

#[test]
fn profile_flags_are_passed_to_the_kernel() {
    let filter = compile_filter(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [{ "names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77 }]
    })))
    .unwrap();
    assert_eq!(filter.flags, FilterFlags::LOG | FilterFlags::TSYNC);
    let status = in_child(|| {
        if !set_no_new_privs() {
            return NNP_FAILED;
        }
        if !matches!(filter.install(), Ok(None)) {
            return INSTALL_FAILED;
        }
        // SAFETY: getppid takes no arguments.
        let rc = unsafe { libc::syscall(libc::SYS_getppid) };
        if rc == -1 && errno() == 77 {
            OK
        } else {
            1
        }
    });
    assert_eq!(exited(status), OK);

    // A combination the kernel rejects is reported with its errno.
    let status = in_child(|| {
        if !set_no_new_privs() {
            return NNP_FAILED;
        }
        // WAIT_KILLABLE_RECV only makes sense with NEW_LISTENER: EINVAL.
        match install_with_flags(&filter.program, FilterFlags::WAIT_KILLABLE_RECV) {
            Err(SeccompError::Install {
                errno: nix::errno::Errno::EINVAL,
                ..
            }) => OK,
            _ => 1,
        }
    });
    assert_eq!(exited(status), OK);
}

#[test]
fn listener_install_adds_tsync_esrch_when_tsync_is_requested() {
    let p = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["getppid"], "action": "SCMP_ACT_NOTIFY" }]
    })))
    .unwrap();
    let status = in_child(|| {
        if !set_no_new_privs() {
            return NNP_FAILED;
        }
        match install_with_listener(&p, FilterFlags::TSYNC) {
            Ok(fd) if fd.as_raw_fd() >= 0 => OK,
            _ => 1,
        }
    });
    assert_eq!(exited(status), OK);
}
