//! Linux namespaces of a container: which to create, which to join by path.

use crate::error::{Context, Result};
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The file name under /proc/<pid>/ns/ of a namespace type.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// Joining order: the user namespace first (it grants the rights to join the others), the
/// mount namespace last (after it, host paths are gone).
const ORDER: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::Mount,
];

/// A namespace to join: its type and an open fd (opened before any setns, so that the
/// paths resolve in the runtime's own mount namespace).
pub struct Join {
    pub typ: LinuxNamespaceType,
    pub fd: OwnedFd,
}

/// What a container's namespaces config asks for.
pub struct Plan {
    /// New namespaces to unshare (without CLONE_NEWUSER, which is done separately first).
    pub unshare: CloneFlags,
    pub new_user: bool,
    /// Namespaces to join, in a safe order.
    pub join: Vec<Join>,
}

impl Plan {
    pub fn new(nss: &[LinuxNamespace]) -> Result<Plan> {
        let mut unshare = CloneFlags::empty();
        let mut new_user = false;
        let mut join = Vec::new();
        for t in ORDER {
            let Some(ns) = nss.iter().find(|n| n.typ() == t) else {
                continue;
            };
            match ns.path() {
                Some(p) => join.push(open(t, p.clone())?),
                None if t == LinuxNamespaceType::User => new_user = true,
                None => unshare |= flag(t),
            }
        }
        Ok(Plan {
            unshare,
            new_user,
            join,
        })
    }

    /// The namespaces of a running process `pid`, for `exec`: every type the container's
    /// config names (new or joined) is joined through /proc/<pid>/ns.
    pub fn of_process(pid: i32, nss: &[LinuxNamespace]) -> Result<Plan> {
        let mut join = Vec::new();
        for t in ORDER {
            if nss.iter().any(|n| n.typ() == t) {
                join.push(open(
                    t,
                    PathBuf::from(format!("/proc/{pid}/ns/{}", proc_name(t))),
                )?);
            }
        }
        Ok(Plan {
            unshare: CloneFlags::empty(),
            new_user: false,
            join,
        })
    }

    pub fn has_new(&self, t: LinuxNamespaceType) -> bool {
        if t == LinuxNamespaceType::User {
            self.new_user
        } else {
            self.unshare.contains(flag(t))
        }
    }

    pub fn joins(&self, t: LinuxNamespaceType) -> bool {
        self.join.iter().any(|j| j.typ == t)
    }

    /// setns into every namespace to join.
    pub fn enter(&self) -> Result<()> {
        for j in &self.join {
            nix::sched::setns(&j.fd, flag(j.typ))
                .ctx(|| format!("joining the {} namespace", proc_name(j.typ)))?;
        }
        Ok(())
    }
}

fn open(t: LinuxNamespaceType, path: PathBuf) -> Result<Join> {
    let f = std::fs::File::open(&path)
        .ctx(|| format!("opening the {} namespace {}", proc_name(t), path.display()))?;
    Ok(Join {
        typ: t,
        fd: f.into(),
    })
}
