//! wharf-shim: one per container. See `docs/architecture.md` and `proto.rs` for the protocol.

mod backend;
mod memory;
mod monitor;

use std::io::Write;
use std::os::fd::{FromRawFd, RawFd};
use std::path::PathBuf;

/// Command-line arguments, parsed by hand: the shim stays small.
pub struct Args {
    pub id: String,
    pub bundle: PathBuf,
    pub state_dir: PathBuf,
    pub runtime_root: PathBuf,
    /// `builtin` (the in-process `wharf_runtime`) or the path of an OCI CLI runtime.
    pub runtime: PathBuf,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    pub log_path: Option<PathBuf>,
    pub log_max_size: Option<u64>,
    pub log_max_file: u32,
    pub cgroup_path: Option<String>,
    /// The control socket (default `<state-dir>/shim.sock`).
    pub socket: Option<PathBuf>,
    pub ready_fd: RawFd,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        id: String::new(),
        bundle: PathBuf::new(),
        state_dir: PathBuf::new(),
        runtime_root: PathBuf::from("/run/wharf/runtime"),
        runtime: PathBuf::from("builtin"),
        tty: false,
        stdin: false,
        stdin_once: false,
        log_path: None,
        log_max_size: None,
        log_max_file: 1,
        cgroup_path: None,
        socket: None,
        ready_fd: -1,
    };
    let mut log_driver = "json-file".to_string();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--id" => a.id = val()?,
            "--bundle" => a.bundle = val()?.into(),
            "--state-dir" => a.state_dir = val()?.into(),
            "--runtime-root" => a.runtime_root = val()?.into(),
            "--runtime" => a.runtime = val()?.into(),
            "--tty" => a.tty = true,
            "--stdin" => a.stdin = true,
            "--stdin-once" => a.stdin_once = true,
            "--log-driver" => log_driver = val()?,
            "--log-path" => a.log_path = Some(val()?.into()),
            "--log-max-size" => {
                a.log_max_size = Some(val()?.parse().map_err(|_| "bad --log-max-size")?)
            }
            "--log-max-file" => {
                a.log_max_file = val()?.parse().map_err(|_| "bad --log-max-file")?
            }
            "--cgroup-path" => a.cgroup_path = Some(val()?),
            "--socket" => a.socket = Some(val()?.into()),
            "--ready-fd" => a.ready_fd = val()?.parse().map_err(|_| "bad --ready-fd")?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if log_driver == "none" {
        a.log_path = None;
    } else if log_driver != "json-file" {
        return Err(format!("unsupported log driver {log_driver:?}"));
    }
    // A ready fd that is not open would later alias another descriptor: refuse it now.
    // SAFETY: F_GETFD only inspects the descriptor table.
    if a.ready_fd >= 0 && unsafe { libc::fcntl(a.ready_fd, libc::F_GETFD) } < 0 {
        return Err(format!(
            "--ready-fd {} is not an open descriptor",
            a.ready_fd
        ));
    }
    if a.id.is_empty() || a.state_dir.as_os_str().is_empty() || a.bundle.as_os_str().is_empty() {
        return Err("--id, --bundle and --state-dir are required".into());
    }
    Ok(a)
}

fn main() {
    // wharfd execs the shim through a descriptor (a read-only mount of the binary, see
    // wharf_runtime::sealed), which names the process after the descriptor's number.
    wharf_runtime::sealed::set_name("wharf-shim");
    // A panic must not unwind through the poll loop with half-written state: abort.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("wharf-shim: {info}");
        std::process::abort();
    }));
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("wharf-shim: {e}");
            std::process::exit(2);
        }
    };
    // SAFETY: single-threaded here; the parent only exits.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => std::process::exit(0),
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => {
            report(args.ready_fd, &format!("err fork: {e}\n"));
            std::process::exit(1);
        }
    }
    let _ = nix::unistd::setsid();
    std::process::exit(monitor::run(args));
}

/// Writes the one ready line to the daemon and closes the pipe.
pub fn report(fd: RawFd, line: &str) {
    if fd < 0 {
        return;
    }
    // SAFETY: the daemon passed this fd for us to own; it is closed when the File drops.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    let _ = f.write_all(line.as_bytes());
}
