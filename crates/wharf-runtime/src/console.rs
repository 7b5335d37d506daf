//! The container's terminal: a pty from the container's own devpts, its master sent to the
//! caller over the console socket (as runc does), its slave made the process's stdio and
//! controlling terminal, and bound over /dev/console.

use crate::error::{Context, Result};
use crate::sync;
use nix::fcntl::OFlag;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

/// Creates the pty, sends its master on `socket`, and makes the slave our stdio and
/// controlling terminal, owned by the process's user (its group stays devpts' gid=) and
/// sized as its `consoleSize` says. `bind_console`: also bind it over /dev/console.
pub fn setup(socket: &OwnedFd, bind_console: bool, p: &oci_spec::runtime::Process) -> Result<()> {
    let uid = p.user().uid();
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .ctx(|| "opening /dev/ptmx in the container".into())?;
    nix::pty::grantpt(&master).ctx(|| "grantpt".into())?;
    nix::pty::unlockpt(&master).ctx(|| "unlockpt".into())?;
    let name = nix::pty::ptsname_r(&master).ctx(|| "ptsname".into())?;
    let slave = nix::fcntl::open(
        Path::new(&name),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("opening {name}"))?;
    nix::unistd::fchown(&slave, Some(nix::unistd::Uid::from_raw(uid)), None)
        .ctx(|| format!("chown {name} to uid {uid}"))?;
    if let Some(size) = p.console_size() {
        let ws = libc::winsize {
            ws_row: size.height().min(u16::MAX as u64) as u16,
            ws_col: size.width().min(u16::MAX as u64) as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: ioctl(TIOCSWINSZ) on the pty master we own, with a valid winsize.
        if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
            return Err(std::io::Error::last_os_error())
                .ctx(|| format!("setting the size of {name}"));
        }
    }
    if bind_console {
        let console = Path::new("/dev/console");
        if std::fs::symlink_metadata(console).is_err() {
            std::fs::File::create(console).ctx(|| "creating /dev/console".into())?;
        }
        nix::mount::mount(
            Some(Path::new(&name)),
            console,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .ctx(|| format!("binding {name} over /dev/console"))?;
    }
    sync::send_fd(socket.as_raw_fd(), master.as_raw_fd())?;
    drop(master);
    make_stdio(&slave)?;
    // SAFETY: ioctl(TIOCSCTTY) on fd 0, which we just made the pty slave; arg 0 = do not
    // steal it from another session.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
        return Err(std::io::Error::last_os_error())
            .ctx(|| "making the pty the controlling terminal".into());
    }
    Ok(())
}

/// dup2 `fd` onto 0, 1 and 2.
pub fn make_stdio(fd: &OwnedFd) -> Result<()> {
    nix::unistd::dup2_stdin(fd).ctx(|| "dup2 stdin".into())?;
    nix::unistd::dup2_stdout(fd).ctx(|| "dup2 stdout".into())?;
    nix::unistd::dup2_stderr(fd).ctx(|| "dup2 stderr".into())?;
    Ok(())
}
