//! The runtime's operations on containers, the parent side of the lifecycle: create (fork
//! the init and drive its setup), start, state, kill, delete, pause/resume, exec, ps and
//! stats. Each is a method of [`Runtime`], which only holds the state root.

use crate::bundle::Bundle;
use crate::cgroups::{self, FreezerState};
use crate::error::{Context, Result, RuntimeError};
use crate::init::{self, Stdio};
use crate::namespaces::Plan;
use crate::state::{OciState, Saved, StateDir, Status};
use crate::sync::{self, Msg};
use crate::{hooks, util};
use nix::fcntl::OFlag;
use oci_spec::runtime::{LinuxNamespaceType as NsType, Process, Spec};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the console of a new process goes.
pub enum Console<'a> {
    /// No terminal (or the config asks for none).
    None,
    /// Send the pty master to this unix socket (runc's `--console-socket`).
    Socket(&'a Path),
    /// Return the pty master to the caller (in-process use).
    Return,
}

/// Options of `create`.
pub struct CreateOpts<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub console: Console<'a>,
    pub stdio: Option<Stdio>,
    pub pid_file: Option<&'a Path>,
    pub no_pivot: bool,
    /// Extra fds (from 3 on) passed to the container process.
    pub preserve_fds: i32,
}

/// Options of `exec`.
pub struct ExecOpts<'a> {
    pub process: Process,
    pub console: Console<'a>,
    pub stdio: Option<Stdio>,
    pub pid_file: Option<&'a Path>,
    /// Exec into a paused container too (runc's `--ignore-paused`): the process starts when
    /// the container is resumed, and the exec waits for that.
    pub ignore_paused: bool,
    /// Extra fds (from 3 on) passed to the process (runc's `exec --preserve-fds`).
    pub preserve_fds: i32,
    /// Existing sub-cgroups of the container's cgroup to put the process in (runc's
    /// `exec --cgroup`, see [`cgroups::parse_sub_cgroups`]); empty: the container's cgroup.
    pub cgroups: cgroups::SubCgroups,
}

/// A process the runtime started: host pid, and the pty master with [`Console::Return`].
pub struct Started {
    pub pid: i32,
    pub console: Option<OwnedFd>,
}

/// The runtime, rooted at its state directory.
pub struct Runtime {
    pub root: PathBuf,
}

/// The cgroup a container without `linux.cgroupsPath` gets.
fn default_cgroup(id: &str) -> PathBuf {
    PathBuf::from(format!("/wharf-runtime/{id}"))
}

fn owner() -> String {
    String::new()
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime { root: root.into() }
    }

    fn dir(&self, id: &str) -> StateDir {
        StateDir::new(&self.root, id)
    }

    /// Creates the container `opts.id` from its bundle: on success its init waits for
    /// `start`, its state is saved; on failure nothing is left behind (no state, cgroup,
    /// mounts or process).
    pub fn create(&self, opts: CreateOpts) -> Result<Started> {
        util::validate_id(opts.id)?;
        // Filters compiled once per profile (the init, a fork of this process, looks there).
        crate::seccomp::set_cache_dir(self.root.join("seccomp"));
        let bundle = Bundle::load(opts.bundle)?;
        bundle.process()?;
        std::fs::create_dir_all(&self.root)
            .ctx(|| format!("creating the state root {}", self.root.display()))?;
        let dir = self.dir(opts.id);
        match std::fs::create_dir(&dir.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(RuntimeError::Exists(opts.id.to_string()))
            }
            Err(e) => return Err(e).ctx(|| format!("creating {}", dir.dir.display())),
        }
        let mut cleanup = Cleanup {
            dir: Some(dir.dir.clone()),
            pid: None,
            cgroup: None,
        };
        let started = self.create_in(&opts, &bundle, &dir, &mut cleanup)?;
        cleanup.disarm();
        Ok(started)
    }

    fn create_in(
        &self,
        opts: &CreateOpts,
        bundle: &Bundle,
        dir: &StateDir,
        cleanup: &mut Cleanup,
    ) -> Result<Started> {
        let spec = &bundle.spec;
        let linux = spec.linux().as_ref().expect("checked");
        let nss = linux.namespaces().clone().unwrap_or_default();
        let plan = Plan::new(&nss)?;
        // Checked before the fork, as runc's config validation does: an init that failed on
        // it would exit with the parent's next "go" unread, and the parent would read a
        // connection reset instead of this message.
        let private_uts = plan.has_new(NsType::Uts) || plan.joins(NsType::Uts);
        if spec.hostname().is_some() && !private_uts {
            return Err(RuntimeError::Config(
                "unable to set hostname without a private UTS namespace".into(),
            ));
        }
        if spec.domainname().is_some() && !private_uts {
            return Err(RuntimeError::Config(
                "unable to set domainname without a private UTS namespace".into(),
            ));
        }
        let cgroup_path = linux
            .cgroups_path()
            .clone()
            .unwrap_or_else(|| default_cgroup(opts.id));
        let manager = cgroups::create_manager(&cgroup_path)?;
        // An init forked into a frozen cgroup would freeze before its first answer. The
        // cgroup is not ours then: it stays as it is.
        if matches!(manager.freezer_state(), Ok(FreezerState::Frozen)) {
            return Err(RuntimeError::Init(format!(
                "container's cgroup unexpectedly frozen: {} (thaw it, or use another cgroupsPath)",
                cgroup_path.display()
            )));
        }
        if let Ok(pids) = manager.pids() {
            if !pids.is_empty() {
                // As runc: allowed (containers may share a cgroup), but rarely meant.
                tracing::warn!(
                    "container's cgroup is not empty: {} process(es) already in {}",
                    pids.len(),
                    cgroup_path.display()
                );
            }
        }
        cleanup.cgroup = Some(cgroup_path.clone());

        let data = serde_json::to_vec(spec).expect("spec serializes");
        util::atomic_write(&dir.config(), &data)?;
        nix::unistd::mkfifo(&dir.fifo(), nix::sys::stat::Mode::from_bits_truncate(0o622))
            .ctx(|| format!("creating {}", dir.fifo().display()))?;
        // Not the umask's 0600: a container process that is not root (process.user) opens
        // it for writing after changing its uid.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.fifo(), std::fs::Permissions::from_mode(0o622))
                .ctx(|| format!("chmod {}", dir.fifo().display()))?;
        }

        // Opened here, as the runtime's user: an init in a user namespace of its own is the
        // remapped root by the time it would open it, and may not traverse the state root.
        let fifo = nix::fcntl::open(
            &dir.fifo(),
            OFlag::O_PATH | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ctx(|| format!("opening {}", dir.fifo().display()))?;

        let terminal = bundle.process()?.terminal() == Some(true);
        let (console_child, console_parent) = console_pair(terminal, &opts.console)?;
        let (parent_sock, child_sock) = sync::pair()?;
        let listener = match linux
            .seccomp()
            .as_ref()
            .and_then(|s| s.listener_path().clone())
        {
            Some(p) => Some(OwnedFd::from(UnixStream::connect(&p).ctx(|| {
                format!("connecting to the seccomp listener {}", p.display())
            })?)),
            None => None,
        };

        // The cgroup is made and given its limits and device rules before the fork (v1
        // rewrites the rules starting with "deny a": the init's mknods must not fall in
        // between), so that the init can join it by itself, which is cheap (see
        // `init::join_cgroup`). In a user namespace of its own it may not write the host's
        // cgroup files: then the runtime moves it.
        let join = manager.join_dirs();
        let cgroup_dirs = join.all();
        // Nor in one it joins: it is that namespace's root by the time it would.
        let self_join = !plan.new_user && !plan.joins(oci_spec::runtime::LinuxNamespaceType::User);
        let cgroup2 = if self_join {
            manager.apply(0)?;
            manager.set(&with_default_devices(linux))?;
            join.v2.as_ref().and_then(|d| {
                nix::fcntl::open(
                    d,
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .ok()
            })
        } else {
            None
        };
        // In a user namespace of its own the init may not reach every bind source.
        let bind_sources = if plan.new_user {
            crate::rootfs::bind_sources(spec, &bundle.dir)
        } else {
            Vec::new()
        };
        // SAFETY: the runtime forks only while single-threaded (see the init module); the
        // child runs init code and never returns into ours.
        let fork = unsafe { nix::unistd::fork() }.ctx(|| "fork".into())?;
        if let nix::unistd::ForkResult::Child = fork {
            drop(parent_sock);
            let stage = init::Stage1 {
                sock: &child_sock,
                plan: &plan,
                stdio: opts.stdio.as_ref(),
                cgroup2: cgroup2.as_ref(),
                bind_sources: &bind_sources,
            };
            let r = init::stage1(&stage).and_then(|out| {
                init::container_init(&init::InitCtx {
                    id: opts.id,
                    bundle,
                    plan: &plan,
                    sock: &child_sock,
                    console: console_child.as_ref(),
                    fifo: &fifo,
                    no_pivot: opts.no_pivot,
                    preserve_fds: opts.preserve_fds,
                    seccomp_listener: listener.as_ref(),
                    cgroup_dirs: &cgroup_dirs,
                    self_join: self_join.then_some(&join),
                    in_cgroup2: out.in_cgroup2,
                    mount_sources: &out.mount_sources,
                })
            });
            let e = match r {
                Err(e) => e,
                Ok(never) => match never {},
            };
            init::fail(&child_sock, &e);
        }
        let nix::unistd::ForkResult::Parent { child: stage1 } = fork else {
            unreachable!()
        };
        drop(child_sock);
        drop(console_child);
        let fd = parent_sock.as_raw_fd();
        let mut pid = 0;
        let stage1_pid = stage1.as_raw();
        cleanup.pid = Some(stage1_pid);
        let result =
            (|| -> Result<()> {
                loop {
                    let msg =
                        sync::recv_watched(fd, "container init", sync::SETUP_TIMEOUT, || {
                            match manager.freezer_state() {
                                Ok(FreezerState::Frozen) => Err(RuntimeError::Init(format!(
                                    "container's cgroup {} was frozen during setup",
                                    cgroup_path.display()
                                ))),
                                _ => Ok(sync::Watch::Wait),
                            }
                        })?;
                    match msg {
                        Msg::MapIds => {
                            write_id_maps(stage1_pid, spec)?;
                            sync::send(fd, &Msg::Go)?;
                        }
                        Msg::Pid(p) => {
                            pid = p;
                            cleanup.pid = Some(p);
                            let _ = nix::sys::wait::waitpid(stage1, None);
                            if self_join {
                                // In its cgroup already (it joins before reading this).
                                sync::send(fd, &Msg::Pid(p))?;
                            } else {
                                // Limits first (see above), then the init builds its rootfs
                                // while it is moved in, which waits for an RCU grace period.
                                manager.apply(0)?;
                                manager.set(&with_default_devices(linux))?;
                                sync::send(fd, &Msg::Pid(p))?;
                                manager.apply(p)?;
                            }
                            // An init that failed meanwhile has sent its error and gone: the
                            // next receive reports that rather than a broken pipe.
                            let _ = sync::send(fd, &Msg::Go);
                        }
                        Msg::RunHooks => {
                            let st = Saved::fresh(opts.id, pid, bundle, &cgroup_path)
                                .oci(Status::Creating);
                            let h = spec.hooks().as_ref();
                            hooks::run("prestart", h.and_then(|h| h.prestart().as_ref()), &st)?;
                            hooks::run(
                                "createRuntime",
                                h.and_then(|h| h.create_runtime().as_ref()),
                                &st,
                            )?;
                            sync::send(fd, &Msg::Go)?;
                        }
                        Msg::Ready => return Ok(()),
                        Msg::Error(m) => return Err(RuntimeError::Init(m)),
                        Msg::Go => {
                            return Err(RuntimeError::Init("unexpected go from the init".into()))
                        }
                    }
                }
            })();
        if let Err(e) = result {
            if pid == 0 {
                let _ = nix::sys::wait::waitpid(stage1, None);
            }
            return Err(e);
        }
        let console = match console_parent {
            Some(s) => Some(sync::recv_fd(s.as_raw_fd())?),
            None => None,
        };
        let saved = Saved::fresh(opts.id, pid, bundle, &cgroup_path);
        dir.save(&saved)?;
        if let Some(p) = opts.pid_file {
            util::atomic_write(p, pid.to_string().as_bytes())?;
        }
        Ok(Started { pid, console })
    }

    fn load(&self, id: &str) -> Result<(StateDir, Saved)> {
        util::validate_id(id)?;
        let dir = self.dir(id);
        let saved = dir.load(id)?;
        Ok((dir, saved))
    }

    fn spec(&self, dir: &StateDir) -> Result<Spec> {
        let data =
            std::fs::read(dir.config()).ctx(|| format!("reading {}", dir.config().display()))?;
        serde_json::from_slice(&data)
            .map_err(|e| RuntimeError::Config(format!("corrupt {}: {e}", dir.config().display())))
    }

    fn status_of(&self, dir: &StateDir, saved: &Saved) -> Status {
        if !saved.init_alive() {
            return Status::Stopped;
        }
        if dir.fifo().exists() {
            return Status::Created;
        }
        match cgroups::create_manager(&saved.cgroup_path).and_then(|m| m.freezer_state()) {
            Ok(FreezerState::Frozen) => Status::Paused,
            _ => Status::Running,
        }
    }

    /// The container's state, as `runc state` prints it.
    pub fn state(&self, id: &str) -> Result<OciState> {
        let (dir, saved) = self.load(id)?;
        Ok(saved.oci(self.status_of(&dir, &saved)))
    }

    /// Every container under the root, sorted by id.
    pub fn list(&self) -> Result<Vec<OciState>> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).ctx(|| format!("reading {}", self.root.display())),
        };
        for e in rd.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if let Ok(s) = self.state(&id) {
                out.push(s);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Lets a created container's init exec the user process.
    pub fn start(&self, id: &str) -> Result<()> {
        let (dir, saved) = self.load(id)?;
        let status = self.status_of(&dir, &saved);
        if status != Status::Created {
            return Err(match status {
                Status::Stopped => RuntimeError::BadState {
                    op: "start",
                    id: id.into(),
                    status: status.to_string(),
                    hint: "delete it and create it again",
                },
                _ => RuntimeError::BadState {
                    op: "start",
                    id: id.into(),
                    status: status.to_string(),
                    hint: "it was already started",
                },
            });
        }
        let f = nix::fcntl::open(
            &dir.fifo(),
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_NONBLOCK
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ctx(|| format!("opening {}", dir.fifo().display()))?;
        // The init's blocking open for writing now completes; it writes one byte. A frozen
        // init never would.
        let manager = cgroups::create_manager(&saved.cgroup_path).ok();
        let frozen = || {
            manager
                .as_ref()
                .is_some_and(|m| matches!(m.freezer_state(), Ok(FreezerState::Frozen)))
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 1];
        loop {
            match nix::unistd::read(&f, &mut buf) {
                Ok(1) => break,
                Ok(_) | Err(nix::Error::EAGAIN) => {
                    if frozen() {
                        return Err(RuntimeError::Init(format!(
                            "container {id:?}: its cgroup is frozen, its init cannot start (resume it first)"
                        )));
                    }
                    if !saved.init_alive() {
                        // It may have written its byte, exec'd and exited (`true`) between
                        // the read above and this check: the byte then waits in the FIFO.
                        if matches!(nix::unistd::read(&f, &mut buf), Ok(1)) {
                            break;
                        }
                        return Err(RuntimeError::Init(format!(
                            "container {id:?}: its init exited before start"
                        )));
                    }
                    if Instant::now() > deadline {
                        return Err(RuntimeError::Init(format!(
                            "container {id:?}: its init did not answer start"
                        )));
                    }
                    let mut pfd = [nix::poll::PollFd::new(
                        std::os::fd::AsFd::as_fd(&f),
                        nix::poll::PollFlags::POLLIN,
                    )];
                    let _ = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(10u16));
                }
                Err(e) => return Err(e).ctx(|| "reading the exec fifo".into()),
            }
        }
        let _ = std::fs::remove_file(dir.fifo());
        // The init keeps its end open (close-on-exec) through the startContainer hooks: EOF
        // means it has exec'd the user process (or died), which poststart must come after.
        // A frozen init would never get there.
        loop {
            match nix::unistd::read(&f, &mut buf) {
                Ok(0) => break,
                Ok(_) | Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {
                    if frozen() {
                        return Err(RuntimeError::Init(format!(
                            "container {id:?}: its cgroup was frozen before its process started"
                        )));
                    }
                    let mut pfd = [nix::poll::PollFd::new(
                        std::os::fd::AsFd::as_fd(&f),
                        nix::poll::PollFlags::POLLIN,
                    )];
                    let _ = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(100u16));
                }
                Err(e) => return Err(e).ctx(|| "reading the exec fifo".into()),
            }
        }
        let spec = self.spec(&dir)?;
        if let Some(h) = spec.hooks().as_ref().and_then(|h| h.poststart().as_ref()) {
            if let Err(e) = hooks::run("poststart", Some(h), &saved.oci(Status::Running)) {
                tracing::warn!("{e}");
            }
        }
        Ok(())
    }

    /// Sends `sig` to the init, or with `all` to every process of the container.
    pub fn kill(&self, id: &str, sig: nix::sys::signal::Signal, all: bool) -> Result<()> {
        let (dir, saved) = self.load(id)?;
        let status = self.status_of(&dir, &saved);
        // With --all, as runc: nothing left to signal is no error.
        if status == Status::Stopped && all {
            return Ok(());
        }
        if status == Status::Stopped {
            return Err(RuntimeError::BadState {
                op: "kill",
                id: id.into(),
                status: status.to_string(),
                hint: "there is no process to signal",
            });
        }
        if all {
            let m = cgroups::create_manager(&saved.cgroup_path)?;
            let pids = m.pids()?;
            if sig == nix::sys::signal::Signal::SIGKILL && status == Status::Paused {
                let _ = m.thaw();
            }
            for p in pids {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), sig);
            }
            if status == Status::Paused && sig != nix::sys::signal::Signal::SIGKILL {
                // A frozen process only gets its signal when thawed, as runc leaves it.
            }
            return Ok(());
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(saved.pid), sig)
            .ctx(|| format!("sending {sig} to the init of {id} (pid {})", saved.pid))
    }

    /// Removes a stopped (or created) container: cgroup, state, and runs poststop hooks.
    /// With `force`, kills a running one first.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let (dir, saved) = match self.load(id) {
            Ok(x) => x,
            Err(RuntimeError::NotFound(_)) if force => return Ok(()),
            Err(e) => return Err(e),
        };
        let status = self.status_of(&dir, &saved);
        match status {
            Status::Stopped => {}
            Status::Created => self.kill_and_wait(&saved)?,
            _ if force => self.kill_and_wait(&saved)?,
            _ => {
                return Err(RuntimeError::BadState {
                    op: "delete",
                    id: id.into(),
                    status: status.to_string(),
                    hint: "stop it first or use --force",
                })
            }
        }
        if let Ok(m) = cgroups::create_manager(&saved.cgroup_path) {
            m.destroy()?;
        }
        let spec = self.spec(&dir).ok();
        std::fs::remove_dir_all(&dir.dir).ctx(|| format!("removing {}", dir.dir.display()))?;
        if let Some(h) = spec
            .as_ref()
            .and_then(|s| s.hooks().as_ref())
            .and_then(|h| h.poststop().as_ref())
        {
            if let Err(e) = hooks::run("poststop", Some(h), &saved.oci(Status::Stopped)) {
                tracing::warn!("{e}");
            }
        }
        Ok(())
    }

    fn kill_and_wait(&self, saved: &Saved) -> Result<()> {
        if let Ok(m) = cgroups::create_manager(&saved.cgroup_path) {
            let _ = m.thaw();
            for p in m.pids().unwrap_or_default() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(saved.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while saved.init_alive() {
            // Reap it if it is our child (run/create by this process).
            let _ = nix::sys::wait::waitpid(
                nix::unistd::Pid::from_raw(saved.pid),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
            if Instant::now() > deadline {
                return Err(RuntimeError::Init(format!(
                    "container {}: its init (pid {}) did not die after SIGKILL",
                    saved.id, saved.pid
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        let (dir, saved) = self.load(id)?;
        let status = self.status_of(&dir, &saved);
        if status != Status::Running {
            return Err(RuntimeError::BadState {
                op: "pause",
                id: id.into(),
                status: status.to_string(),
                hint: "only a running container can be paused",
            });
        }
        cgroups::create_manager(&saved.cgroup_path)?.freeze()?;
        Ok(())
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        let (dir, saved) = self.load(id)?;
        let status = self.status_of(&dir, &saved);
        if status != Status::Paused {
            return Err(RuntimeError::BadState {
                op: "resume",
                id: id.into(),
                status: status.to_string(),
                hint: "only a paused container can be resumed",
            });
        }
        cgroups::create_manager(&saved.cgroup_path)?.thaw()?;
        Ok(())
    }

    /// The host pids of the container's processes.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let (_, saved) = self.load(id)?;
        Ok(cgroups::create_manager(&saved.cgroup_path)?.pids()?)
    }

    pub fn stats(&self, id: &str) -> Result<cgroups::Stats> {
        let (_, saved) = self.load(id)?;
        Ok(cgroups::create_manager(&saved.cgroup_path)?.stats()?)
    }

    /// Stats with the per-cpu, memory.stat and hugetlb details.
    pub fn detailed_stats(&self, id: &str) -> Result<cgroups::DetailedStats> {
        let (_, saved) = self.load(id)?;
        Ok(cgroups::create_manager(&saved.cgroup_path)?.detailed_stats()?)
    }

    /// Applies new resource limits to a live container.
    pub fn update(&self, id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
        let (dir, saved) = self.load(id)?;
        if self.status_of(&dir, &saved) == Status::Stopped {
            return Err(RuntimeError::BadState {
                op: "update",
                id: id.into(),
                status: "stopped".into(),
                hint: "there is nothing to update",
            });
        }
        cgroups::create_manager(&saved.cgroup_path)?.set(resources)?;
        Ok(())
    }

    /// Runs a new process in the running container `id`.
    pub fn exec(&self, id: &str, opts: ExecOpts) -> Result<Started> {
        let (dir, saved) = self.load(id)?;
        let status = self.status_of(&dir, &saved);
        if status == Status::Paused && !opts.ignore_paused {
            return Err(RuntimeError::Init(format!(
                "cannot exec in a paused container {id:?}: resume it first (or --ignore-paused)"
            )));
        }
        if !matches!(status, Status::Running | Status::Created | Status::Paused) {
            return Err(RuntimeError::BadState {
                op: "exec in",
                id: id.into(),
                status: status.to_string(),
                hint: "start or resume it first",
            });
        }
        let spec = self.spec(&dir)?;
        let nss = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        let plan = Plan::of_process(saved.pid, &nss)?;
        let manager = cgroups::create_manager(&saved.cgroup_path)?;
        let terminal = opts.process.terminal() == Some(true);
        let (console_child, console_parent) = console_pair(terminal, &opts.console)?;
        let (parent_sock, child_sock) = sync::pair()?;
        // SAFETY: as in `create`: single-threaded caller, the child never returns.
        let fork = unsafe { nix::unistd::fork() }.ctx(|| "fork".into())?;
        if let nix::unistd::ForkResult::Child = fork {
            drop(parent_sock);
            let stage = init::Stage1 {
                sock: &child_sock,
                plan: &plan,
                stdio: opts.stdio.as_ref(),
                cgroup2: None,
                bind_sources: &[],
            };
            let r = init::stage1(&stage).and_then(|_| {
                init::exec_process(
                    &child_sock,
                    console_child.as_ref(),
                    &opts.process,
                    &spec,
                    opts.preserve_fds,
                )
            });
            let e = match r {
                Err(e) => e,
                Ok(never) => match never {},
            };
            init::fail(&child_sock, &e);
        }
        let nix::unistd::ForkResult::Parent { child: stage1 } = fork else {
            unreachable!()
        };
        drop(child_sock);
        drop(console_child);
        let fd = parent_sock.as_raw_fd();
        let mut pid = 0;
        let ignore_paused = opts.ignore_paused;
        let result = (|| -> Result<()> {
            loop {
                let msg =
                    sync::recv_watched(fd, "exec process", sync::SETUP_TIMEOUT, || match manager
                        .freezer_state()
                    {
                        Ok(FreezerState::Frozen) if ignore_paused => Ok(sync::Watch::Hold),
                        Ok(FreezerState::Frozen) => Err(RuntimeError::Init(format!(
                            "cannot exec in a paused container: {id} was paused meanwhile"
                        ))),
                        _ => Ok(sync::Watch::Wait),
                    })?;
                match msg {
                    Msg::Pid(p) => {
                        pid = p;
                        let _ = nix::sys::wait::waitpid(stage1, None);
                        if opts.cgroups.is_empty() {
                            manager.apply(p)?;
                        } else {
                            manager.join_sub(p, &opts.cgroups)?;
                        }
                        sync::send(fd, &Msg::Pid(p))?;
                    }
                    Msg::Ready => return Ok(()),
                    Msg::Error(m) => return Err(RuntimeError::Init(m)),
                    m => return Err(RuntimeError::Init(format!("unexpected {m:?} from exec"))),
                }
            }
        })();
        if let Err(e) = result {
            if pid > 0 {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            } else {
                let _ = nix::sys::wait::waitpid(stage1, None);
            }
            return Err(e);
        }
        let console = match console_parent {
            Some(s) => Some(sync::recv_fd(s.as_raw_fd())?),
            None => None,
        };
        if let Some(p) = opts.pid_file {
            util::atomic_write(p, pid.to_string().as_bytes())?;
        }
        Ok(Started { pid, console })
    }
}

/// The two ends of the console channel: the child's (where it sends the pty master) and,
/// with [`Console::Return`], ours.
fn console_pair(terminal: bool, c: &Console) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    if !terminal {
        return Ok((None, None));
    }
    match c {
        Console::None => Err(RuntimeError::Config(
            "cannot allocate a tty without a console socket: pass --console-socket, or set process.terminal to false".into(),
        )),
        Console::Socket(p) => Ok((Some(connect_console(p)?), None)),
        Console::Return => {
            let (a, b) = sync::pair()?;
            Ok((Some(a), Some(b)))
        }
    }
}

/// How long `connect` to a console socket may wait for the listener to accept.
const CONSOLE_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to the console socket at `p`. A listener whose backlog is full would block a
/// plain connect for as long as it does not accept: this one gives up after a while.
fn connect_console(p: &Path) -> Result<OwnedFd> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let what = || format!("connecting to the console socket {}", p.display());
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ctx(what)?;
    let addr = UnixAddr::new(p).ctx(what)?;
    let deadline = Instant::now() + CONSOLE_CONNECT_TIMEOUT;
    loop {
        match connect(fd.as_raw_fd(), &addr) {
            Ok(()) => break,
            Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(nix::Error::EAGAIN) => {
                return Err(RuntimeError::Init(format!(
                    "the console socket {} did not accept the connection within {}s",
                    p.display(),
                    CONSOLE_CONNECT_TIMEOUT.as_secs()
                )))
            }
            Err(e) => return Err(e).ctx(what),
        }
    }
    let flags = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFL).ctx(what)?;
    let flags = OFlag::from_bits_truncate(flags) & !OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(flags)).ctx(what)?;
    Ok(fd)
}

/// The config's resources with the device rules every container needs appended, as runc
/// does: mknod of anything, the default nodes, ptys and tun.
fn with_default_devices(linux: &oci_spec::runtime::Linux) -> oci_spec::runtime::LinuxResources {
    use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType as D};
    let mut r = linux.resources().clone().unwrap_or_default();
    let rule = |typ: D, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut d = LinuxDeviceCgroup::default();
        d.set_allow(true);
        d.set_typ(Some(typ));
        d.set_major(major);
        d.set_minor(minor);
        d.set_access(Some(access.to_string()));
        d
    };
    let mut rules = r.devices().clone().unwrap_or_default();
    rules.push(rule(D::C, None, None, "m"));
    rules.push(rule(D::B, None, None, "m"));
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
        (10, 200),
    ] {
        rules.push(rule(D::C, Some(major), Some(minor), "rwm"));
    }
    rules.push(rule(D::C, Some(136), None, "rwm"));
    // Not linux.devices: a node the config creates is usable only if the resources allow
    // it (runc's rule; engines add an allow rule per --device).
    r.set_devices(Some(rules));
    r
}

/// Writes /proc/<pid>/uid_map and gid_map from the config.
fn write_id_maps(pid: i32, spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref().expect("checked");
    let fmt = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        m.iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    let uid = fmt(linux.uid_mappings());
    let gid = fmt(linux.gid_mappings());
    if !uid.is_empty() {
        std::fs::write(format!("/proc/{pid}/uid_map"), &uid)
            .ctx(|| format!("writing uid_map {uid:?}"))?;
    }
    if !gid.is_empty() {
        std::fs::write(format!("/proc/{pid}/gid_map"), &gid)
            .ctx(|| format!("writing gid_map {gid:?}"))?;
    }
    Ok(())
}

impl Saved {
    fn fresh(id: &str, pid: i32, bundle: &Bundle, cgroup: &Path) -> Saved {
        Saved {
            id: id.to_string(),
            pid,
            pid_start: util::pid_start_time(pid).unwrap_or(0),
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created: chrono::Utc::now(),
            owner: owner(),
            annotations: bundle
                .spec
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            cgroup_path: cgroup.to_path_buf(),
        }
    }
}

/// Undoes a failed create: kills the init, removes its cgroup and the state directory.
struct Cleanup {
    dir: Option<PathBuf>,
    pid: Option<i32>,
    cgroup: Option<PathBuf>,
}

impl Cleanup {
    fn disarm(&mut self) {
        self.dir = None;
        self.pid = None;
        self.cgroup = None;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(p) = self.pid {
            let pid = nix::unistd::Pid::from_raw(p);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        if let Some(c) = &self.cgroup {
            if let Ok(m) = cgroups::create_manager(c) {
                let deadline = Instant::now() + Duration::from_secs(2);
                while m.destroy().is_err() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
