//! The local terminal: raw mode (restored when the guard drops, even on error or panic
//! unwinding), its size, and forwarding size changes (SIGWINCH) to the daemon.

use nix::sys::termios::{self, SetArg, Termios};
use std::os::fd::{AsFd, BorrowedFd};

/// Whether `fd` is a terminal.
pub fn is_tty(fd: BorrowedFd<'_>) -> bool {
    nix::unistd::isatty(fd).unwrap_or(false)
}

pub fn stdin_is_tty() -> bool {
    is_tty(std::io::stdin().as_fd())
}

pub fn stdout_is_tty() -> bool {
    is_tty(std::io::stdout().as_fd())
}

/// Puts stdin in raw mode until dropped.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    pub fn enable() -> anyhow::Result<RawMode> {
        let fd = std::io::stdin();
        let saved = termios::tcgetattr(fd.as_fd())?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd.as_fd(), SetArg::TCSANOW, &raw)?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// Turns off the echo of stdin (a terminal) until dropped: for typing a password.
pub struct NoEcho {
    saved: Termios,
}

impl NoEcho {
    pub fn enable() -> anyhow::Result<NoEcho> {
        let fd = std::io::stdin();
        let saved = termios::tcgetattr(fd.as_fd())?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(termios::LocalFlags::ECHO);
        termios::tcsetattr(fd.as_fd(), SetArg::TCSANOW, &quiet)?;
        Ok(NoEcho { saved })
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// The terminal size (rows, columns) of stdout, else stdin.
pub fn size() -> Option<(u16, u16)> {
    for fd in [libc::STDOUT_FILENO, libc::STDIN_FILENO] {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one `winsize` into the valid, exclusively borrowed `ws`.
        let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
        if r == 0 && ws.ws_row > 0 {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

/// Sends the current size now and on every SIGWINCH to `resize_path`
/// (`/containers/{id}/resize` or `/exec/{id}/resize`); the task ends with the runtime.
pub fn forward_resizes(client: std::sync::Arc<crate::client::Client>, resize_path: String) {
    tokio::spawn(async move {
        let send = |c: std::sync::Arc<crate::client::Client>, p: String| async move {
            if let Some((h, w)) = size() {
                let _ = c.post_json(&format!("{p}?h={h}&w={w}"), None).await;
            }
        };
        send(client.clone(), resize_path.clone()).await;
        let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while sig.recv().await.is_some() {
            send(client.clone(), resize_path.clone()).await;
        }
    });
}
