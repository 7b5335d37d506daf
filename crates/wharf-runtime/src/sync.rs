//! The channel between the runtime and the container's init while it is set up: a
//! SOCK_SEQPACKET socketpair carrying one short message per packet, and file descriptors
//! (the pty master) as SCM_RIGHTS.

use crate::error::{Context, Result, RuntimeError};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

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

/// Receives one message; an orderly close is reported as an error naming `peer`.
pub fn recv(fd: RawFd, peer: &str) -> Result<Msg> {
    let mut buf = vec![0u8; 16 * 1024];
    let n = loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match recvmsg::<()>(fd, &mut iov, None, MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(m) => break m.bytes,
            Err(nix::Error::EINTR) => continue,
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
    fn fds_pass() {
        let (a, b) = pair().unwrap();
        let f = std::fs::File::open("/proc/self/stat").unwrap();
        send_fd(a.as_raw_fd(), f.as_raw_fd()).unwrap();
        let got = recv_fd(b.as_raw_fd()).unwrap();
        assert_ne!(got.as_raw_fd(), f.as_raw_fd());
    }
}
