//! The child side of `create` and `exec`: everything that runs in the forked processes,
//! from the first fork to the execve of the container's process. On any error the child
//! reports it over the setup socket and exits; it never returns into the caller's code.
//!
//! The caller must be single-threaded when it forks (the runtime binary is; so is the
//! shim), so the child may allocate and run ordinary Rust code.

use crate::bundle::Bundle;
use crate::error::{Context, Result, RuntimeError};
use crate::namespaces::Plan;
use crate::state::{OciState, Status};
use crate::sync::{self, Msg};
use crate::{console, hooks, process, rootfs, seccomp};
use nix::fcntl::OFlag;
use oci_spec::runtime::{LinuxNamespaceType as NsType, Process, Spec};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// A descriptor the runtime's own log writes to (see [`set_log_fd`]); -1: none.
static LOG_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Keeps `fd` (close-on-exec, where this process's log goes) open in the container's
/// processes until their execve (a created init: until it reports ready), so that their
/// setup steps can still be logged after the inherited descriptors are closed (the runtime
/// binary's `--debug`).
pub fn set_log_fd(fd: RawFd) {
    LOG_FD.store(fd, std::sync::atomic::Ordering::Relaxed);
}

/// Ends this process's logging: the log descriptor's number is pointed at an `O_PATH`
/// descriptor (writes to it fail, and are dropped), so that the caller's file is no longer
/// held and the number cannot be reused by something a late log line would then write to.
fn detach_log() {
    let fd = LOG_FD.swap(-1, std::sync::atomic::Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    if let Ok(nothing) = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        // SAFETY: dup3 only replaces our descriptor `fd` (the log's, which the logger keeps
        // using by number) with a copy of `nothing`; no memory is involved.
        unsafe { libc::dup3(nothing.as_raw_fd(), fd, libc::O_CLOEXEC) };
    }
}

/// The stdio a container process gets: three fds dup'ed onto 0, 1, 2.
pub struct Stdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// What the first child needs, for create and exec alike.
pub struct Stage1<'a> {
    pub sock: &'a OwnedFd,
    pub plan: &'a Plan,
    pub stdio: Option<&'a Stdio>,
    /// The container's cgroup2 directory, for the init to be forked straight into it.
    pub cgroup2: Option<&'a OwnedFd>,
    /// Bind sources to open before the user namespace is entered (see [`open_sources`]), by
    /// the index of their mount.
    pub bind_sources: &'a [(usize, PathBuf)],
}

/// What the first child hands to the init it forks.
pub struct Stage1Out {
    /// The fork put it in its cgroup2 cgroup already.
    pub in_cgroup2: bool,
    /// [`Stage1::bind_sources`] opened `O_PATH`, by mount index (those that could be).
    pub mount_sources: Vec<(usize, OwnedFd)>,
}

/// Resets what a forked child inherits from its parent that a container must not: blocked
/// signals and ignored dispositions (the shim blocks signals for its signalfd).
pub fn reset_signals() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for s in Signal::iterator() {
        if s == Signal::SIGKILL || s == Signal::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL, which runs no code of ours.
        let _ = unsafe { sigaction(s, &dfl) };
    }
    let _ = SigSet::all().thread_unblock();
}

/// Runs in the first child: joins and creates namespaces, forks the second child (which
/// is pid 1 of a new pid namespace) and reports its pid. Returns in the second child only.
pub fn stage1(s: &Stage1) -> Result<Stage1Out> {
    reset_signals();
    tracing::debug!(
        "nsexec container setup: joining {} and creating {:?} namespace(s)",
        s.plan.join.len(),
        s.plan.unshare
    );
    let fd = s.sock.as_raw_fd();
    if let Some(io) = s.stdio {
        nix::unistd::dup2_stdin(&io.stdin).ctx(|| "dup2 stdin".into())?;
        nix::unistd::dup2_stdout(&io.stdout).ctx(|| "dup2 stdout".into())?;
        nix::unistd::dup2_stderr(&io.stderr).ctx(|| "dup2 stderr".into())?;
    }
    // A process joining a container's namespaces is visible there before it execs: while it
    // is not dumpable, the container's processes cannot open its /proc/<pid>/fd, exe, mem
    // or ptrace it (runc does the same). With a user namespace the process must stay able
    // to write its own /proc files, which a non-dumpable one is denied: those containers'
    // root is not root on the host.
    if !s.plan.join.is_empty() && !s.plan.new_user && !s.plan.joins(NsType::User) {
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    }
    s.plan.enter()?;
    if s.plan.joins(NsType::User) {
        // As runc's init (setuid/setgid 0 at its last stage): root of the joined namespace,
        // not the host's uid 0, which is unmapped there (files it made would be EOVERFLOW).
        let root_u = nix::unistd::Uid::from_raw(0);
        let root_g = nix::unistd::Gid::from_raw(0);
        nix::unistd::setresgid(root_g, root_g, root_g)
            .ctx(|| "setresgid 0 in the joined user namespace".into())?;
        nix::unistd::setresuid(root_u, root_u, root_u)
            .ctx(|| "setresuid 0 in the joined user namespace".into())?;
    }
    let opener = if s.plan.new_user
        && s.plan.unshare.contains(nix::sched::CloneFlags::CLONE_NEWNS)
        && !s.bind_sources.is_empty()
    {
        Some(SourceOpener::fork(s.bind_sources)?)
    } else {
        None
    };
    if s.plan.new_user {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
            .ctx(|| "creating the user namespace".into())?;
        sync::send(fd, &Msg::MapIds)?;
        match sync::recv(fd, "runtime")? {
            Msg::Go => {}
            m => return Err(RuntimeError::Init(format!("unexpected {m:?}"))),
        }
        let root_u = nix::unistd::Uid::from_raw(0);
        let root_g = nix::unistd::Gid::from_raw(0);
        nix::unistd::setresgid(root_g, root_g, root_g).ctx(|| "setresgid 0".into())?;
        nix::unistd::setresuid(root_u, root_u, root_u).ctx(|| "setresuid 0".into())?;
    }
    // The cgroup namespace is created later, by the init once it is in its cgroup: created
    // here, its root would be the runtime's cgroup instead of the container's.
    let now = s.plan.unshare - nix::sched::CloneFlags::CLONE_NEWCGROUP;
    if !now.is_empty() {
        nix::sched::unshare(now).ctx(|| format!("creating namespaces {now:?}"))?;
    }
    let mount_sources = match opener {
        Some(o) => o.receive(s.bind_sources.len())?,
        None => Vec::new(),
    };
    // Forked into its cgroup2 cgroup when there is one: entering it at fork takes no
    // global lock, where moving a task later waits for an RCU grace period (~10 ms).
    let (child, in_cgroup) = match s.cgroup2.map(|c| fork_into_cgroup(c.as_raw_fd())) {
        Some(Ok(pid)) => (pid, true),
        // An old kernel (no clone3 or CLONE_INTO_CGROUP): the init joins by itself.
        Some(Err(_)) | None => {
            // SAFETY: we are the single thread of a freshly forked process.
            match unsafe { nix::unistd::fork() }.ctx(|| "fork of the container init".into())? {
                nix::unistd::ForkResult::Parent { child } => (Some(child.as_raw()), false),
                nix::unistd::ForkResult::Child => (None, false),
            }
        }
    };
    match child {
        Some(pid) => {
            let _ = sync::send(fd, &Msg::Pid(pid));
            // SAFETY: _exit ends this intermediate process without running destructors
            // that belong to the caller's state.
            unsafe { libc::_exit(0) }
        }
        None => Ok(Stage1Out {
            in_cgroup2: in_cgroup,
            mount_sources,
        }),
    }
}

/// A helper forked by the first child before it enters its new user namespace, still the
/// runtime's user (root on the host). Bind sources the container's root cannot reach
/// (a directory only the host's root may enter) must be opened by such a process, and
/// opened in the container's mount namespace: a mount of another namespace cannot be bound
/// there. So the first child, once in its namespaces, sends the helper its mount namespace;
/// the helper joins it, opens every source `O_PATH` and sends the descriptors back. (runc's
/// parent does the same for its init.)
struct SourceOpener {
    sock: OwnedFd,
    pid: nix::unistd::Pid,
}

impl SourceOpener {
    fn fork(sources: &[(usize, PathBuf)]) -> Result<SourceOpener> {
        let (ours, theirs) = sync::pair()?;
        // SAFETY: the first child is single-threaded; the helper only makes syscalls and
        // ordinary allocations, then _exits.
        match unsafe { nix::unistd::fork() }.ctx(|| "fork of the mount source opener".into())? {
            nix::unistd::ForkResult::Parent { child } => Ok(SourceOpener {
                sock: ours,
                pid: child,
            }),
            nix::unistd::ForkResult::Child => {
                drop(ours);
                let ok = open_sources(theirs.as_raw_fd(), sources).is_ok();
                // SAFETY: _exit ends the helper without running the caller's destructors.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
        }
    }

    /// Sends the helper our mount namespace and receives `n` answers: a descriptor, or none
    /// for a source that could not be opened (the init then reports it by its path).
    fn receive(self, n: usize) -> Result<Vec<(usize, OwnedFd)>> {
        let r = (|| {
            let ns = nix::fcntl::open(
                "/proc/self/ns/mnt",
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .ctx(|| "opening the container's mount namespace".into())?;
            sync::send_fd(self.sock.as_raw_fd(), ns.as_raw_fd())?;
            let mut out = Vec::new();
            for _ in 0..n {
                let (payload, fd) = recv_maybe_fd(self.sock.as_raw_fd())?;
                let index = std::str::from_utf8(&payload)
                    .ok()
                    .and_then(|p| p.parse::<usize>().ok())
                    .ok_or_else(|| {
                        RuntimeError::Init("bad answer from the mount source opener".into())
                    })?;
                out.extend(fd.map(|fd| (index, fd)));
            }
            Ok(out)
        })();
        drop(self.sock);
        let _ = nix::sys::wait::waitpid(self.pid, None);
        r
    }
}

/// The helper's side of [`SourceOpener`]: joins the mount namespace it is sent, and answers
/// each source with its index and, when it could be opened, its descriptor.
fn open_sources(sock: RawFd, sources: &[(usize, PathBuf)]) -> Result<()> {
    let ns = sync::recv_fd(sock)?;
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNS)
        .ctx(|| "joining the container's mount namespace".into())?;
    for (i, p) in sources {
        let index = i.to_string();
        match nix::fcntl::open(
            p,
            OFlag::O_PATH | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        ) {
            Ok(fd) => sync::send_fd_with(sock, fd.as_raw_fd(), index.as_bytes())?,
            Err(_) => {
                nix::sys::socket::send(
                    sock,
                    index.as_bytes(),
                    nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
                )
                .ctx(|| "answering the first child".into())?;
            }
        }
    }
    Ok(())
}

/// Receives a message and the descriptor it may carry.
fn recv_maybe_fd(sock: RawFd) -> Result<(Vec<u8>, Option<OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::FromRawFd;
    let mut buf = [0u8; 64];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let (n, fd) = loop {
        match recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(m) => {
                let mut fd = None;
                for c in m.cmsgs().ctx(|| "reading a mount source".into())? {
                    if let ControlMessageOwned::ScmRights(fds) = c {
                        for (k, &f) in fds.iter().enumerate() {
                            // SAFETY: the kernel just installed these descriptors in our
                            // table (SCM_RIGHTS); nothing else owns them.
                            let owned = unsafe { OwnedFd::from_raw_fd(f) };
                            if k == 0 && fd.is_none() {
                                fd = Some(owned);
                            }
                        }
                    }
                }
                break (m.bytes, fd);
            }
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e).ctx(|| "receiving a mount source".into()),
        }
    };
    if n == 0 {
        return Err(RuntimeError::Init(
            "the mount source opener exited before it answered".into(),
        ));
    }
    Ok((buf[..n].to_vec(), fd))
}

/// `fork` into the cgroup2 directory `cgroup` (`clone3` with `CLONE_INTO_CGROUP`): `None` in
/// the child, the child's pid in the parent.
fn fork_into_cgroup(cgroup: RawFd) -> std::io::Result<Option<i32>> {
    // The kernel's `struct clone_args` (include/uapi/linux/sched.h), up to `cgroup`.
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup as u64,
        ..Default::default()
    };
    // SAFETY: clone3 reads `size` bytes of a live, properly laid out `clone_args`. Without
    // CLONE_VM it duplicates the process like fork; the caller is single-threaded, so the
    // child's copy of the address space (allocator and libc state included) is consistent.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match r {
        -1 => Err(std::io::Error::last_os_error()),
        0 => Ok(None),
        pid => Ok(Some(pid as i32)),
    }
}

/// Moves this (single-threaded) init into its cgroup: `0` into `tasks` in each v1 hierarchy,
/// which moves only the calling thread and so takes no global lock (unlike a pid written to
/// `cgroup.procs`, which waits for an RCU grace period), and into the cgroup2 directory
/// unless the fork already put it there.
fn join_cgroup(join: &crate::cgroups::JoinDirs, in_v2: bool) -> Result<()> {
    let write = |file: PathBuf| {
        std::fs::write(&file, "0")
            .ctx(|| format!("joining the container's cgroup ({})", file.display()))
    };
    for d in &join.v1 {
        write(d.join("tasks"))?;
    }
    match &join.v2 {
        Some(d) if !in_v2 => write(d.join("cgroup.procs")),
        _ => Ok(()),
    }
}

/// Waits for the runtime's go (a Pid message carrying our host pid).
fn wait_go(fd: RawFd) -> Result<i32> {
    match sync::recv(fd, "runtime")? {
        Msg::Pid(p) => Ok(p),
        Msg::Go => Ok(0),
        m => Err(RuntimeError::Init(format!(
            "unexpected {m:?} from the runtime"
        ))),
    }
}

/// Everything about a container init.
pub struct InitCtx<'a> {
    pub id: &'a str,
    pub bundle: &'a Bundle,
    pub plan: &'a Plan,
    pub sock: &'a OwnedFd,
    pub console: Option<&'a OwnedFd>,
    /// `exec.fifo`, opened `O_PATH` by the runtime before the fork.
    pub fifo: &'a OwnedFd,
    pub no_pivot: bool,
    pub preserve_fds: i32,
    pub seccomp_listener: Option<&'a OwnedFd>,
    /// The container's cgroup directories (see [`rootfs::Ctx::cgroup_dirs`]).
    pub cgroup_dirs: &'a [PathBuf],
    /// The init joins its cgroup itself (the runtime made and configured it before the fork);
    /// `None`: the runtime moves it.
    pub self_join: Option<&'a crate::cgroups::JoinDirs>,
    /// The fork already put the init in its cgroup2 cgroup.
    pub in_cgroup2: bool,
    /// Bind sources opened before the user namespace (see [`Stage1Out`]).
    pub mount_sources: &'a [(usize, OwnedFd)],
}

/// The container's init (second child): set up, report ready, wait for start, exec.
pub fn container_init(c: &InitCtx) -> Result<std::convert::Infallible> {
    let fd = c.sock.as_raw_fd();
    tracing::debug!("child process in init(): setting up container {}", c.id);
    let spec = &c.bundle.spec;
    let proc_ = c.bundle.process()?;
    // Two goes: our host pid (the cgroup exists, with its limits and device rules), then "you
    // are in it". Moving a task into a v1 cgroup waits for an RCU grace period (~10 ms), so
    // the rootfs is built meanwhile; a cgroup namespace must be rooted at the new cgroup,
    // so then both come first. Nothing forks or execs before the second.
    if let Some(join) = c.self_join {
        join_cgroup(join, c.in_cgroup2)?;
    }
    let host_pid = wait_go(fd)?;
    let own_cgroupns = c.plan.has_new(NsType::Cgroup);
    if own_cgroupns {
        wait_go(fd)?;
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .ctx(|| "creating the cgroup namespace".into())?;
    }
    nix::unistd::setsid().ctx(|| "setsid".into())?;

    if let Some(h) = spec.hostname() {
        if !c.plan.has_new(NsType::Uts) {
            return Err(RuntimeError::Config(
                "unable to set hostname without a private UTS namespace".into(),
            ));
        }
        nix::unistd::sethostname(h).ctx(|| format!("setting hostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname() {
        // SAFETY: setdomainname reads `len` bytes of a live buffer.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
            return Err(std::io::Error::last_os_error())
                .ctx(|| format!("setting domainname {d:?}"));
        }
    }

    // The fifo by fd (opened by the runtime): its path will be gone after pivot_root.
    let fifo = c.fifo;

    let program = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(seccomp::compile_filter(s)?),
        None => None,
    };
    let seccomp = Seccomp {
        filter: program.as_ref(),
        listener: c.seccomp_listener,
        pid: host_pid,
        id: c.id,
        bundle: &c.bundle.dir,
        metadata: spec
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .and_then(|s| s.listener_metadata().clone()),
    };

    let mount_ns = c.plan.has_new(NsType::Mount) || c.plan.joins(NsType::Mount);
    if mount_ns {
        let ctx = rootfs::Ctx {
            spec,
            bundle: &c.bundle.dir,
            rootfs: &c.bundle.rootfs,
            userns: c.plan.has_new(NsType::User) || c.plan.joins(NsType::User),
            cgroupns: own_cgroupns,
            cgroup_dirs: c.cgroup_dirs,
            sources: c.mount_sources,
        };
        rootfs::prepare(&ctx)?;
    }
    if !own_cgroupns {
        wait_go(fd)?;
    }

    let hooks = spec.hooks().as_ref();
    let state = |status| OciState {
        oci_version: crate::state::OCI_VERSION.into(),
        id: c.id.to_string(),
        pid: host_pid,
        status,
        bundle: c.bundle.dir.clone(),
        rootfs: c.bundle.rootfs.clone(),
        created: String::new(),
        owner: String::new(),
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
    };
    if hooks.is_some_and(|h| h.prestart().is_some() || h.create_runtime().is_some()) {
        sync::send(fd, &Msg::RunHooks)?;
        wait_go(fd)?;
    }
    hooks::run(
        "createContainer",
        hooks.and_then(|h| h.create_container().as_ref()),
        &state(Status::Creating),
    )?;

    if mount_ns {
        rootfs::enter(&c.bundle.rootfs, c.no_pivot)?;
    } else {
        nix::unistd::chroot(&c.bundle.rootfs).ctx(|| "chroot".into())?;
        nix::unistd::chdir("/").ctx(|| "chdir /".into())?;
    }
    // The working directory is created when missing, as runc does, inside the new root.
    {
        let root = own_root()?;
        crate::inroot::mkdir_all(std::os::fd::AsFd::as_fd(&root), proc_.cwd()).map_err(|e| {
            RuntimeError::Init(format!(
                "creating the working directory {}: {e}",
                proc_.cwd().display()
            ))
        })?;
    }
    for (k, v) in spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().clone())
        .unwrap_or_default()
    {
        let p = PathBuf::from("/proc/sys").join(k.replace('.', "/"));
        std::fs::write(&p, &v).ctx(|| format!("setting sysctl {k}={v}"))?;
    }
    if mount_ns {
        rootfs::finish(spec)?;
    }
    if proc_.terminal() == Some(true) {
        let sock = c.console.ok_or_else(|| {
            RuntimeError::Config("a terminal was requested but no --console-socket given".into())
        })?;
        console::setup(sock, true, proc_)?;
    }
    if mount_ns {
        rootfs::remount_read_only(spec)?;
    }
    let mut keep: Vec<RawFd> = (3..3 + c.preserve_fds).collect();
    keep.extend([fd, fifo.as_raw_fd()]);
    keep.extend(c.console.map(|f| f.as_raw_fd()));
    keep.extend(c.seccomp_listener.map(|f| f.as_raw_fd()));
    let exe = finalize(proc_, &seccomp, &keep)?;
    keep_only_fds(3 + c.preserve_fds);

    tracing::debug!("init: closing the pipe to signal completion (ready, waiting for start)");
    // The log is the caller's stderr (or its --log file): a created init must not hold it
    // until `start`, or a caller reading create's output to its end waits until then.
    detach_log();
    sync::send(fd, &Msg::Ready)?;
    // Blocks until `start` opens the fifo for reading.
    let w = nix::fcntl::open(
        Path::new(&format!("/proc/self/fd/{}", fifo.as_raw_fd())),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| "opening the exec fifo (is /proc mounted in the container?)".into())?;
    nix::unistd::write(&w, b"0").ctx(|| "writing the exec fifo".into())?;
    // `w` stays open until the execve closes it: `start` waits for that before it runs the
    // poststart hooks. The O_PATH descriptor of the fifo is close-on-exec too.
    late_seccomp(proc_, &seccomp)?;
    hooks::run(
        "startContainer",
        hooks.and_then(|h| h.start_container().as_ref()),
        &state(Status::Created),
    )?;
    let env = proc_.env().clone().unwrap_or_default();
    Err(process::exec(
        &exe,
        proc_.args().as_deref().unwrap_or(&[]),
        &env,
    ))
}

/// The process's root directory (the container's, once entered), opened `O_PATH`.
fn own_root() -> Result<OwnedFd> {
    nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| "opening the container's root".into())
}

/// The last steps of every container process (init and exec): rlimits, oom score, the
/// executable lookup, capabilities, user, no_new_privs and seccomp, and the working
/// directory. Every descriptor from 3 on but `keep` is closed before the working directory
/// is entered, and that directory is resolved inside the root without magic links, so no
/// inherited descriptor (a cgroup directory, the caller's files) can become the cwd through
/// `/proc/self/fd/N` (CVE-2024-21626). Returns the executable to exec.
pub fn finalize(p: &Process, seccomp: &Seccomp, keep: &[RawFd]) -> Result<PathBuf> {
    if let Some(r) = p.rlimits() {
        process::set_rlimits(r)?;
    }
    if let Some(v) = p.oom_score_adj() {
        process::set_oom_score_adj(v)?;
    }
    let env = p.env().clone().unwrap_or_default();
    let arg0 = p
        .args()
        .as_ref()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or_default();
    let exe = process::look_path(&arg0, &env)?;
    let caps = process::CapSets::new(p.capabilities().as_ref());
    caps.apply_bounding()?;
    let nnp = p.no_new_privileges() == Some(true);
    // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: do it while we have it.
    if !nnp {
        seccomp.install()?;
    }
    let setgroups = std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true);
    let mut keep = keep.to_vec();
    keep.push(LOG_FD.load(std::sync::atomic::Ordering::Relaxed));
    crate::inroot::close_fds_except(&keep);
    let root = own_root()?;
    let chdir = || {
        crate::inroot::chdir(std::os::fd::AsFd::as_fd(&root), p.cwd())
            .map_err(|e| RuntimeError::Init(format!("chdir to {}: {e}", p.cwd().display())))
    };
    // As runc: the working directory is entered while the runtime is still root with all
    // its capabilities (a process running as root without CAP_DAC_OVERRIDE may not enter a
    // directory only another user can); when that fails, as the process's user (a cwd that
    // only that user can enter, e.g. on a root-squashing filesystem), before capabilities are
    // dropped.
    let entered = chdir().is_ok();
    process::set_user(p, setgroups)?;
    if !entered {
        chdir()?;
    }
    caps.apply()?;
    drop(root);
    if nnp {
        process::set_no_new_privs()?;
    }
    Ok(exe)
}

/// With no_new_privs the filter goes on as late as possible, right before execve, so that
/// profiles need not allow the runtime's own last syscalls.
pub fn late_seccomp(p: &Process, seccomp: &Seccomp) -> Result<()> {
    if p.no_new_privileges() == Some(true) {
        seccomp.install()?;
    }
    Ok(())
}

/// The container's seccomp filter, and where its notify listener fd goes.
pub struct Seccomp<'a> {
    pub filter: Option<&'a seccomp::Filter>,
    /// A connection to `listenerPath` (made by the runtime before forking).
    pub listener: Option<&'a OwnedFd>,
    pub pid: i32,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub metadata: Option<String>,
}

impl Seccomp<'_> {
    /// Installs the filter; a SCMP_ACT_NOTIFY listener fd is sent to `listenerPath` with the
    /// container process state, as the runtime spec defines.
    fn install(&self) -> Result<()> {
        let Some(f) = self.filter else { return Ok(()) };
        let Some(fd) = f.install()? else {
            return Ok(());
        };
        let sock = self.listener.ok_or_else(|| {
            RuntimeError::Config(
                "the seccomp profile uses SCMP_ACT_NOTIFY but has no listenerPath".into(),
            )
        })?;
        let state = serde_json::json!({
            "ociVersion": crate::state::OCI_VERSION,
            "fds": ["seccompFd"],
            "pid": self.pid,
            "metadata": self.metadata.clone().unwrap_or_default(),
            "state": {
                "ociVersion": crate::state::OCI_VERSION,
                "id": self.id,
                "status": "creating",
                "pid": self.pid,
                "bundle": self.bundle,
            }
        })
        .to_string();
        sync::send_fd_with(sock.as_raw_fd(), fd.as_raw_fd(), state.as_bytes())
    }
}

/// Marks every fd from `first` on close-on-exec.
pub fn keep_only_fds(first: i32) {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on our own fds.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
}

/// Reports `e` to the runtime and ends the child.
pub fn fail(sock: &OwnedFd, e: &RuntimeError) -> ! {
    // After `start` nobody reads the setup socket any more (e.g. a startContainer hook
    // failed): the error goes to the container's stderr then, where the caller of `run`, or
    // the container's log, sees it.
    if sync::send(sock.as_raw_fd(), &Msg::Error(e.to_string())).is_err() {
        eprintln!("wharf-runtime: {e}");
    }
    // SAFETY: _exit ends the child without unwinding into the caller's frames.
    unsafe { libc::_exit(1) }
}

/// The exec'd process (second child of `exec`): like the init's last steps, no fifo.
pub fn exec_process(
    sock: &OwnedFd,
    console: Option<&OwnedFd>,
    p: &Process,
    spec: &Spec,
    preserve_fds: i32,
) -> Result<std::convert::Infallible> {
    let fd = sock.as_raw_fd();
    tracing::debug!("child process in init(): waiting to be moved into the container's cgroup");
    wait_go(fd)?;
    nix::unistd::setsid().ctx(|| "setsid".into())?;
    let program = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(seccomp::compile_filter(s)?),
        None => None,
    };
    let seccomp = Seccomp {
        filter: program.as_ref(),
        listener: None,
        pid: 0,
        id: "",
        bundle: Path::new(""),
        metadata: None,
    };
    if p.terminal() == Some(true) {
        let sock = console.ok_or_else(|| {
            RuntimeError::Config("a terminal was requested but no --console-socket given".into())
        })?;
        console::setup(sock, false, p)?;
    }
    let mut keep: Vec<RawFd> = (3..3 + preserve_fds.max(0)).collect();
    keep.push(fd);
    keep.extend(console.map(|f| f.as_raw_fd()));
    let exe = finalize(p, &seccomp, &keep)?;
    keep_only_fds(3 + preserve_fds.max(0));
    // Before the filter: a profile need not allow the log's write.
    tracing::debug!("setns_init: about to exec {}", exe.display());
    sync::send(fd, &Msg::Ready)?;
    late_seccomp(p, &seccomp)?;
    let env = p.env().clone().unwrap_or_default();
    Err(process::exec(
        &exe,
        p.args().as_deref().unwrap_or(&[]),
        &env,
    ))
}
