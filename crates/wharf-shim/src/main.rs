//! wharf-shim: one per container. See `docs/architecture.md` and `proto.rs` for the protocol.

mod backend;
mod memory;
mod monitor;

use std::io::Write;
use std::os::fd::{FromRawFd, RawFd};
use wharf_shim::args::ShimArgs;
use wharf_shim::proto::Ready;

/// The command line, checked beyond its syntax: a ready fd that is not open would later
/// alias another descriptor.
fn parse_args() -> Result<ShimArgs, String> {
    let a = ShimArgs::parse(std::env::args_os().skip(1)).map_err(|e| e.to_string())?;
    // SAFETY: F_GETFD only inspects the descriptor table.
    if a.ready_fd >= 0 && unsafe { libc::fcntl(a.ready_fd, libc::F_GETFD) } < 0 {
        return Err(format!(
            "--ready-fd {} is not an open descriptor",
            a.ready_fd
        ));
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
            report(args.ready_fd, &Ready::Failed(format!("fork: {e}")));
            std::process::exit(1);
        }
    }
    let _ = nix::unistd::setsid();
    std::process::exit(monitor::run(args));
}

/// Writes the one ready line to the daemon and closes the pipe.
pub fn report(fd: RawFd, ready: &Ready) {
    if fd < 0 {
        return;
    }
    // SAFETY: the daemon passed this fd for us to own; it is closed when the File drops.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    let _ = f.write_all(ready.encode().as_bytes());
}
