//! The channel between the runtime and the container's init while it is set up: a
//! SOCK_SEQPACKET socketpair carrying one short message per packet, and file descriptors
//! (the pty master) as SCM_RIGHTS.

use crate::error::{Context, Result, RuntimeError};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Messages of the setup protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// child → parent: map my uid/gid (I unshared a user namespace).
    MapIds,
    /// parent → child: done, go on.
    Go,
    /// child → parent: the init's pid (as the parent sees it).
    Pid(i32),
    /// child → parent: run the prestart and createRuntime hooks now.
    RunHooks,
    /// child → parent: set up, waiting for start.
    Ready,
    /// child → parent: setup failed with this message.
    Error(String),
}

impl Msg {
    fn encode(&self) -> Vec<u8> {
        match self {
            Msg::MapIds => b"map".to_vec(),
            Msg::Go => b"go".to_vec(),
            Msg::Pid(p) => format!("pid {p}").into_bytes(),
            Msg::RunHooks => b"hooks".to_vec(),
            Msg::Ready => b"ready".to_vec(),
            Msg::Error(m) => format!("error {m}").into_bytes(),
        }
    }

    fn decode(b: &[u8]) -> Option<Msg> {
        let s = String::from_utf8_lossy(b);
        Some(match s.as_ref() {
            "map" => Msg::MapIds,
            "go" => Msg::Go,
            "hooks" => Msg::RunHooks,
            "ready" => Msg::Ready,
            _ => {
                if let Some(p) = s.strip_prefix("pid ") {
                    Msg::Pid(p.parse().ok()?)
                } else if let Some(m) = s.strip_prefix("error ") {
                    Msg::Error(m.to_string())
                } else {
                    return None;
                }
            }
        })
    }
}

/// A connected SEQPACKET pair, close-on-exec.
pub fn pair() -> Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ctx(|| "creating the setup socketpair".into())
}

pub fn send(fd: RawFd, msg: &Msg) -> Result<()> {
    let data = msg.encode();
    sendmsg::<()>(
        fd,
        &[IoSlice::new(&data)],
        &[],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .ctx(|| "sending on the setup socket".into())?;
    Ok(())
}

/// How long the runtime waits for one answer of a container's init during setup (the init
/// mounts, opens devices, ... between two messages): past it, the setup fails.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

/// What [`recv_watched`] learns from its `watch` callback between two polls.
pub enum Watch {
    /// Go on waiting.
    Wait,
    /// Go on waiting, without counting the time (the peer is paused on purpose).
    Hold,
}

/// Receives one message from a peer process that may never answer: waits in short slices,
/// calls `watch` between them (which fails when the peer cannot answer, e.g. it is frozen),
/// and fails after `timeout` of waiting. An orderly close is reported as an error naming
/// `peer`, as by [`recv`].
pub fn recv_watched(
    fd: RawFd,
    peer: &str,
    timeout: Duration,
    mut watch: impl FnMut() -> Result<Watch>,
) -> Result<Msg> {
    use std::os::fd::BorrowedFd;
    // SAFETY: the caller owns `fd` for the duration of the call.
    let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
    let mut waited = Duration::ZERO;
    let slice = Duration::from_millis(100);
    loop {
        let mut pfd = [PollFd::new(bfd, PollFlags::POLLIN)];
        match poll(&mut pfd, PollTimeout::from(slice.as_millis() as u16)) {
            Ok(0) => {}
            Ok(_) => return recv(fd, peer),
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e).ctx(|| format!("waiting for the {peer}")),
        }
        match watch()? {
            Watch::Wait => waited += slice,
            Watch::Hold => {}
        }
        if waited >= timeout {
            return Err(RuntimeError::Init(format!(
                "the {peer} did not answer within {}s",
                timeout.as_secs()
            )));
        }
    }
}

/// Receives one message; an orderly close is reported as an error naming `peer`.
pub fn recv(fd: RawFd, peer: &str) -> Result<Msg> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut reset_seen = false;
    let n = loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match recvmsg::<()>(fd, &mut iov, None, MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(m) => break m.bytes,
            Err(nix::Error::EINTR) => continue,
            // A peer that exits with one of our messages unread leaves ECONNRESET pending on
            // our end, and a seqpacket read reports it before the messages still queued (the
            // peer's last words, often its error). Reading the error clears it: read again.
            Err(nix::Error::ECONNRESET) if !reset_seen => reset_seen = true,
            Err(e) => return Err(e).ctx(|| format!("reading from the {peer}")),
        }
    };
    if n == 0 {
        return Err(RuntimeError::Init(format!(
            "the {peer} exited during container setup"
        )));
    }
    Msg::decode(&buf[..n])
        .ok_or_else(|| RuntimeError::Init(format!("unexpected message from the {peer}")))
}

/// Sends `fd` over the unix socket `sock` (SCM_RIGHTS), with a one-byte payload.
pub fn send_fd(sock: RawFd, fd: RawFd) -> Result<()> {
    send_fd_with(sock, fd, b"c")
}

/// Sends `fd` with `payload` as the message's data.
pub fn send_fd_with(sock: RawFd, fd: RawFd, payload: &[u8]) -> Result<()> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        sock,
        &[IoSlice::new(payload)],
        &cmsg,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .ctx(|| "sending a file descriptor over a unix socket".into())?;
    Ok(())
}

/// Receives one fd sent with [`send_fd`].
pub fn recv_fd(sock: RawFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 64];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = loop {
        match recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(m) => break m,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e).ctx(|| "receiving the console".into()),
        }
    };
    for c in msg.cmsgs().ctx(|| "reading the console message".into())? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed `fd` in our table for us (SCM_RIGHTS);
                // nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(RuntimeError::Init("no console received".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn messages_round_trip() {
        let (a, b) = pair().unwrap();
        for m in [
            Msg::MapIds,
            Msg::Go,
            Msg::Pid(4242),
            Msg::RunHooks,
            Msg::Ready,
            Msg::Error("exec: \"x\": boom".into()),
        ] {
            send(a.as_raw_fd(), &m).unwrap();
            assert_eq!(recv(b.as_raw_fd(), "test").unwrap(), m);
        }
        drop(a);
        assert!(recv(b.as_raw_fd(), "test").is_err());
    }

    #[test]
    fn a_peer_that_exits_with_our_message_unread_still_gets_its_error_read() {
        let (parent, child) = pair().unwrap();
        // The parent's "go" the child never reads, then the child's last words and exit.
        send(parent.as_raw_fd(), &Msg::Go).unwrap();
        send(child.as_raw_fd(), &Msg::Error("unable to do x".into())).unwrap();
        drop(child);
        let m = recv(parent.as_raw_fd(), "container init").unwrap();
        assert_eq!(m, Msg::Error("unable to do x".into()));
        let e = recv(parent.as_raw_fd(), "container init").unwrap_err();
        assert!(
            e.to_string().contains("exited during container setup"),
            "{e}"
        );
    }

    #[test]
    fn a_silent_peer_is_an_error_not_a_hang() {
        let (a, b) = pair().unwrap();
        let mut calls = 0;
        let e = recv_watched(
            b.as_raw_fd(),
            "test peer",
            Duration::from_millis(300),
            || {
                calls += 1;
                Ok(Watch::Wait)
            },
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("the test peer did not answer"),
            "{e}"
        );
        assert!(calls >= 3);
        // The watcher's verdict ends the wait at once.
        let e = recv_watched(b.as_raw_fd(), "test peer", SETUP_TIMEOUT, || {
            Err(RuntimeError::Init("peer is frozen".into()))
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "peer is frozen");
        // A message that is there is read.
        send(a.as_raw_fd(), &Msg::Ready).unwrap();
        let m = recv_watched(b.as_raw_fd(), "test peer", SETUP_TIMEOUT, || {
            Ok(Watch::Wait)
        });
        assert_eq!(m.unwrap(), Msg::Ready);
    }

    #[test]
    fn fds_pass() {
        let (a, b) = pair().unwrap();
        let f = std::fs::File::open("/proc/self/stat").unwrap();
        send_fd(a.as_raw_fd(), f.as_raw_fd()).unwrap();
        let got = recv_fd(b.as_raw_fd()).unwrap();
        assert_ne!(got.as_raw_fd(), f.as_raw_fd());
    }
}
