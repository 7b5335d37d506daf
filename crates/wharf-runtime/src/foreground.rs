//! Waiting in the foreground for a process the runtime started (`run` and `exec` without
//! `--detach`): signals we get are forwarded to it, its pty (when we hold the master) is
//! relayed to our stdio, and its exit status becomes ours.
//!
//! The caller makes itself a child subreaper before creating the process, so that the
//! process (whose first parent is an intermediate child) is reparented to us.

use crate::error::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// Makes this process a child subreaper.
pub fn become_subreaper() -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "PR_SET_CHILD_SUBREAPER".into());
    }
    Ok(())
}

/// The signals we forward; SIGCHLD and SIGWINCH are handled.
fn forwarded() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGPIPE,
        Signal::SIGALRM,
        Signal::SIGCONT,
        Signal::SIGCHLD,
        Signal::SIGWINCH,
    ] {
        s.add(sig);
    }
    s
}

/// Blocks the signals we handle, so that they queue for the signalfd. Call before the
/// process is created (its children unblock them).
pub fn block_signals() -> Result<SigSet> {
    let s = forwarded();
    s.thread_block().ctx(|| "blocking signals".into())?;
    Ok(s)
}

/// Raw mode for our terminal while relaying, restored on drop.
struct RawMode {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawMode {
    fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let saved = nix::sys::termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            nix::sys::termios::cfmakeraw(&mut raw);
            let _ = nix::sys::termios::tcsetattr(
                stdin.as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                &raw,
            );
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin().as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}

fn copy_winsize(master: &OwnedFd) {
    let mut ws: libc::winsize = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into our local; TIOCSWINSZ reads it.
    unsafe {
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Waits for `pid` and returns the exit code to report (128+signal when killed),
/// forwarding signals and relaying `console`.
pub fn wait(pid: i32, signals: SigSet, console: Option<OwnedFd>) -> Result<i32> {
    let sfd = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC)
        .ctx(|| "creating a signalfd".into())?;
    let _raw = console.as_ref().map(|m| {
        copy_winsize(m);
        RawMode::enter()
    });
    let target = Pid::from_raw(pid);
    let mut stdin_open = console.is_some();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // Reap everything that exited (orphans reparented to us too).
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p == target => {
                    drain(console.as_ref(), &mut buf);
                    return Ok(code);
                }
                Ok(WaitStatus::Signaled(p, sig, _)) if p == target => {
                    drain(console.as_ref(), &mut buf);
                    return Ok(128 + sig as i32);
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        let stdin = std::io::stdin();
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = &console {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e).ctx(|| "poll".into()),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[0] {
            if let Ok(Some(si)) = sfd.read_signal() {
                let sig = si.ssi_signo as i32;
                if sig == libc::SIGWINCH {
                    if let Some(m) = &console {
                        copy_winsize(m);
                    }
                } else if sig != libc::SIGCHLD {
                    if let Ok(s) = Signal::try_from(sig) {
                        let _ = nix::sys::signal::kill(target, s);
                    }
                }
            }
        }
        if let Some(m) = &console {
            if ready.get(1) == Some(&true) {
                match nix::unistd::read(m, &mut buf) {
                    Ok(n) if n > 0 => write_all(std::io::stdout().as_fd(), &buf[..n]),
                    _ => {}
                }
            }
            if stdin_open && ready.get(2) == Some(&true) {
                match nix::unistd::read(stdin.as_fd(), &mut buf) {
                    Ok(n) if n > 0 => {
                        // SAFETY: the master outlives this borrow.
                        let b = unsafe { BorrowedFd::borrow_raw(m.as_raw_fd()) };
                        write_all(b, &buf[..n]);
                    }
                    _ => stdin_open = false,
                }
            }
        }
    }
}

fn drain(console: Option<&OwnedFd>, buf: &mut [u8]) {
    let Some(m) = console else { return };
    let _ = nix::fcntl::fcntl(
        m,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    while let Ok(n) = nix::unistd::read(m, buf) {
        if n == 0 {
            break;
        }
        write_all(std::io::stdout().as_fd(), &buf[..n]);
    }
}

fn write_all(fd: BorrowedFd, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) if n > 0 => data = &data[n..],
            Err(nix::Error::EINTR) => {}
            _ => return,
        }
    }
}
