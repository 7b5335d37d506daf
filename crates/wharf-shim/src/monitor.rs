//! The shim's poll loop: container output to the log and attached clients, client requests,
//! child exits (signalfd), until the container has exited and everything is drained.

use crate::backend::builtin::Builtin;
use crate::backend::cli::CliBackend;
use crate::backend::{Backend, BackendError, ProcStdio};
use crate::report;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wharf_shim::args::ShimArgs as Args;
use wharf_shim::jsonlog::{self, JsonLog, LineSplitter};
use wharf_shim::proto::{self, ExitStatus, Ready, Request};
use wharf_shim::timefmt;

enum Role {
    Request,
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Waiter,
    Exec(String),
}

struct Conn {
    s: UnixStream,
    buf: Vec<u8>,
    role: Role,
    reading: bool,
    dead: bool,
}

impl Conn {
    fn send(&mut self, data: &[u8]) {
        if !self.dead && self.s.write_all(data).is_err() {
            self.dead = true;
        }
    }
    fn frame(&mut self, stream: u8, data: &[u8]) {
        let mut v = Vec::with_capacity(data.len() + 8);
        v.extend_from_slice(&proto::frame_header(stream, data.len()));
        v.extend_from_slice(data);
        self.send(&v);
    }
}

struct Output {
    fd: OwnedFd,
    stream: u8,
    exec: Option<String>,
    splitter: LineSplitter,
}

struct Exec {
    id: String,
    pid: i32,
    stdin: Option<File>,
    master: Option<OwnedFd>,
    exit: Option<i32>,
}

struct Shim {
    args: Args,
    /// Setup or a heavy request ran: release its pages when the loop goes idle.
    release_pending: bool,
    rt: Box<dyn Backend>,
    init: i32,
    started: bool,
    paused: bool,
    exit_code: Option<i32>,
    outputs: Vec<Output>,
    stdin: Option<File>,
    master: Option<OwnedFd>,
    log: Option<JsonLog>,
    conns: Vec<Conn>,
    execs: Vec<Exec>,
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

fn set_nonblocking(fd: &impl AsRawFd) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    // SAFETY: fd is open for the lifetime of this call.
    let bfd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd.as_raw_fd()) };
    if let Ok(fl) = fcntl(bfd, FcntlArg::F_GETFL) {
        let _ = fcntl(
            bfd,
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(fl) | OFlag::O_NONBLOCK),
        );
    }
}

fn devnull() -> std::io::Result<OwnedFd> {
    Ok(File::open("/dev/null")?.into())
}

fn code_of(status: WaitStatus) -> Option<(i32, i32)> {
    match status {
        WaitStatus::Exited(pid, c) => Some((pid.as_raw(), c)),
        WaitStatus::Signaled(pid, sig, _) => Some((pid.as_raw(), 128 + sig as i32)),
        _ => None,
    }
}

/// Writes `path` whole or not at all, so wharfd (restarted after a crash, for live restore)
/// reads the whole exit status or none. No fsync: these files live in the exec-root (runtime
/// state, a tmpfs `/run` on a normal host) and mean nothing after a reboot; the fsyncs cost
/// ~5 ms per container on a disk-backed `/run`.
fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    wharf_fs::AtomicWrite::default()
        .durable(false)
        .write(path, data)
}

fn oom_killed(cgroup: Option<&str>) -> bool {
    let Some(cg) = cgroup else { return false };
    let cg = cg.trim_start_matches('/');
    [
        "/sys/fs/cgroup/memory/".to_string() + cg + "/memory.oom_control",
        "/sys/fs/cgroup/".to_string() + cg + "/memory.events",
    ]
    .iter()
    .filter_map(|p| fs::read_to_string(p).ok())
    .any(|s| {
        s.lines().any(|l| {
            l.strip_prefix("oom_kill ")
                .and_then(|n| n.trim().parse::<u64>().ok())
                .is_some_and(|n| n > 0)
        })
    })
}

/// Runs the shim until the container has exited; returns the process exit code.
pub fn run(args: Args) -> i32 {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    // SAFETY: setting SIGPIPE to ignored is always sound; writes to gone clients return EPIPE.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    let _ = mask.thread_block();
    let sigfd = match SignalFd::with_flags(
        &mask,
        nix::sys::signalfd::SfdFlags::SFD_NONBLOCK | nix::sys::signalfd::SfdFlags::SFD_CLOEXEC,
    ) {
        Ok(s) => s,
        Err(e) => {
            report(args.ready_fd, &Ready::Failed(format!("signalfd: {e}")));
            return 1;
        }
    };
    match setup(args) {
        Ok(mut shim) => shim.event_loop(&sigfd),
        Err((fd, msg)) => {
            report(fd, &Ready::Failed(msg));
            1
        }
    }
}

fn backend_for(args: &Args, runtime: &Path) -> Box<dyn Backend> {
    if runtime == Path::new("builtin") {
        return Box::new(Builtin::new(args.id.clone(), &args.runtime_root));
    }
    Box::new(CliBackend::new(
        runtime.to_path_buf(),
        args.runtime_root.clone(),
        args.id.clone(),
        args.state_dir.clone(),
        args.socket
            .as_ref()
            .and_then(|s| s.parent())
            .unwrap_or(&args.state_dir)
            .to_path_buf(),
    ))
}

/// The container's side of its stdio, and the shim's ends (stdin writer, stdout and stderr
/// readers). With a tty the pty replaces them all: the container gets /dev/null here.
type StdioEnds = (Option<OwnedFd>, Option<OwnedFd>, Option<OwnedFd>);

fn container_stdio(args: &Args) -> std::io::Result<(ProcStdio, StdioEnds)> {
    if args.tty {
        let io = ProcStdio {
            stdin: devnull()?,
            stdout: devnull()?,
            stderr: devnull()?,
        };
        return Ok((io, (None, None, None)));
    }
    let (stdin_r, stdin_w) = if args.stdin {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        (devnull()?, None)
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let io = ProcStdio {
        stdin: stdin_r,
        stdout: out_w,
        stderr: err_w,
    };
    Ok((io, (stdin_w, Some(out_r), Some(err_r))))
}

fn setup(args: Args) -> Result<Shim, (i32, String)> {
    let fd = args.ready_fd;
    let fail = |m: String| (fd, m);
    fs::create_dir_all(&args.state_dir)
        .map_err(|e| fail(format!("{}: {e}", args.state_dir.display())))?;
    let io = |e: std::io::Error| fail(e.to_string());
    let mut rt = backend_for(&args, &args.runtime);
    let (stdio, ends) = container_stdio(&args).map_err(io)?;
    let created = rt.create(&args.bundle, stdio, args.tty);
    let (init, console) = match created {
        Ok(c) => (c.pid, c.console),
        Err(e) => {
            let _ = rt.delete();
            return Err(fail(e.to_string()));
        }
    };
    let (stdin_w, out_r, err_r) = ends;
    let mut outputs = Vec::new();
    let mut stdin = stdin_w.map(File::from);
    let mut master = None;
    if let Some(m) = console {
        set_nonblocking(&m);
        let dup = m.try_clone().map_err(io)?;
        if args.stdin {
            stdin = Some(File::from(m.try_clone().map_err(io)?));
        }
        outputs.push(Output {
            fd: dup,
            stream: 1,
            exec: None,
            splitter: LineSplitter::default(),
        });
        master = Some(m);
    }
    for (fd, stream) in [(out_r, 1), (err_r, 2)] {
        if let Some(fd) = fd {
            set_nonblocking(&fd);
            outputs.push(Output {
                fd,
                stream,
                exec: None,
                splitter: LineSplitter::default(),
            });
        }
    }
    let log = match &args.log_path {
        Some(p) => Some(
            JsonLog::open(p.clone(), args.log_max_size, args.log_max_file).map_err(|e| {
                let _ = rt.delete();
                fail(format!("log {}: {e}", p.display()))
            })?,
        ),
        None => None,
    };
    Ok(Shim {
        rt,
        init,
        started: false,
        paused: false,
        exit_code: None,
        outputs,
        stdin,
        master,
        log,
        conns: Vec::new(),
        execs: Vec::new(),
        args,
        release_pending: true,
    })
}

/// How long the loop must be idle before pages are released.
const RELEASE_AFTER_IDLE_MS: u16 = 200;

impl Shim {
    fn sock_path(&self) -> PathBuf {
        self.args
            .socket
            .clone()
            .unwrap_or_else(|| self.args.state_dir.join("shim.sock"))
    }

    fn event_loop(&mut self, sigfd: &SignalFd) -> i32 {
        let sock = self.sock_path();
        let _ = fs::remove_file(&sock);
        let listener = match UnixListener::bind(&sock) {
            Ok(l) => l,
            Err(e) => {
                let _ = self.rt.delete();
                report(
                    self.args.ready_fd,
                    &Ready::Failed(format!("bind {}: {e}", sock.display())),
                );
                return 1;
            }
        };
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(&sock, fs::Permissions::from_mode(0o600));
        let _ = write_atomic(
            &self.args.state_dir.join("shim.pid"),
            std::process::id().to_string().as_bytes(),
        );
        report(self.args.ready_fd, &Ready::Created { pid: self.init });

        loop {
            self.reap();
            self.finish_execs();
            if self.exit_code.is_some() && !self.outputs.iter().any(|o| o.exec.is_none()) {
                break;
            }
            // Poll: listener, signalfd, outputs, readable client conns.
            let mut fds: Vec<PollFd> = Vec::new();
            fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
            fds.push(PollFd::new(sigfd.as_fd(), PollFlags::POLLIN));
            for o in &self.outputs {
                fds.push(PollFd::new(o.fd.as_fd(), PollFlags::POLLIN));
            }
            let conn_idx: Vec<usize> = (0..self.conns.len())
                .filter(|&i| self.conns[i].reading && !self.conns[i].dead)
                .collect();
            for &i in &conn_idx {
                fds.push(PollFd::new(self.conns[i].s.as_fd(), PollFlags::POLLIN));
            }
            // After setup or a heavy request, give its pages back once the loop has been idle
            // for a moment (the daemon's follow-up requests touch more code).
            let timeout = if self.release_pending {
                PollTimeout::from(RELEASE_AFTER_IDLE_MS)
            } else {
                PollTimeout::NONE
            };
            let mut polled = poll(&mut fds, timeout);
            if let Ok(0) = polled {
                self.release_pending = false;
                crate::memory::release_setup_pages();
                // Straight back to waiting on the same descriptors: the loop's own code and
                // constants fault back in only once there is something to do.
                polled = poll(&mut fds, PollTimeout::NONE);
            }
            match polled {
                Ok(0) | Err(nix::Error::EINTR) => continue,
                Ok(_) => {}
                Err(_) => break,
            }
            let ready: Vec<bool> = fds
                .iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            let broken = |f: &PollFd| f.revents().is_some_and(|r| r.contains(PollFlags::POLLNVAL));
            if broken(&fds[0]) || broken(&fds[1]) {
                // Our own listener or signalfd is gone: nothing sensible is left to do.
                break;
            }
            drop(fds);
            if ready[1] {
                while sigfd.read_signal().ok().flatten().is_some() {}
            }
            let n_out = self.outputs.len();
            for i in (0..n_out).rev() {
                if ready[2 + i] {
                    self.read_output(i);
                }
            }
            for (k, &ci) in conn_idx.iter().enumerate() {
                if ready[2 + n_out + k] {
                    self.read_conn(ci);
                }
            }
            if ready[0] {
                if let Ok((s, _)) = listener.accept() {
                    let _ = s.set_write_timeout(Some(Duration::from_secs(30)));
                    self.conns.push(Conn {
                        s,
                        buf: Vec::new(),
                        role: Role::Request,
                        reading: true,
                        dead: false,
                    });
                }
            }
            self.conns.retain(|c| !c.dead);
        }
        self.finish(&sock, &listener, sigfd);
        0
    }

    fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(st) => {
                    if let Some((pid, code)) = code_of(st) {
                        if pid == self.init {
                            self.exit_code = Some(code);
                        } else if let Some(e) = self.execs.iter_mut().find(|e| e.pid == pid) {
                            e.exit = Some(code);
                        }
                    }
                }
            }
        }
    }

    fn finish_execs(&mut self) {
        let done: Vec<String> = self
            .execs
            .iter()
            .filter(|e| {
                e.exit.is_some()
                    && !self
                        .outputs
                        .iter()
                        .any(|o| o.exec.as_deref() == Some(e.id.as_str()))
            })
            .map(|e| e.id.clone())
            .collect();
        for id in done {
            let pos = self.execs.iter().position(|e| e.id == id).expect("exec");
            let e = self.execs.remove(pos);
            let code = e.exit.unwrap_or(-1);
            for c in &mut self.conns {
                if matches!(&c.role, Role::Exec(x) if *x == id) {
                    c.frame(proto::STREAM_EXIT, &code.to_be_bytes());
                    let _ = c.s.shutdown(std::net::Shutdown::Both);
                    c.dead = true;
                }
            }
        }
    }

    fn read_output(&mut self, i: usize) {
        let mut buf = [0u8; 32 * 1024];
        loop {
            let n = nix::unistd::read(&self.outputs[i].fd, &mut buf);
            match n {
                Ok(0) | Err(nix::Error::EIO) => {
                    let mut o = self.outputs.remove(i);
                    if o.exec.is_none() {
                        let stream = o.stream;
                        let mut lines = Vec::new();
                        o.splitter.flush(&mut |l| lines.push(l.to_vec()));
                        for l in lines {
                            self.log_line(stream, &l);
                        }
                    }
                    return;
                }
                Ok(n) => self.dispatch(i, &buf[..n]),
                Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => return,
                Err(_) => {
                    self.outputs.remove(i);
                    return;
                }
            }
        }
    }

    fn log_line(&mut self, stream: u8, line: &[u8]) {
        if let Some(log) = &mut self.log {
            let name = if stream == 2 { "stderr" } else { "stdout" };
            let _ = log.write_entry(&jsonlog::entry(line, name, &timefmt::now()));
        }
    }

    fn dispatch(&mut self, i: usize, data: &[u8]) {
        let stream = self.outputs[i].stream;
        match self.outputs[i].exec.clone() {
            Some(id) => {
                for c in &mut self.conns {
                    if matches!(&c.role, Role::Exec(x) if *x == id) {
                        c.frame(stream, data);
                    }
                }
            }
            None => {
                for c in &mut self.conns {
                    if let Role::Attach { stdout, stderr, .. } = c.role {
                        if (stream == 1 && stdout) || (stream == 2 && stderr) {
                            c.frame(stream, data);
                        }
                    }
                }
                if self.log.is_some() {
                    let mut lines = Vec::new();
                    self.outputs[i]
                        .splitter
                        .feed(data, &mut |l| lines.push(l.to_vec()));
                    for l in lines {
                        self.log_line(stream, &l);
                    }
                }
            }
        }
    }

    fn read_conn(&mut self, ci: usize) {
        let mut buf = [0u8; 32 * 1024];
        let n = match self.conns[ci].s.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                return
            }
            Err(_) => 0,
        };
        let role_is_request = matches!(self.conns[ci].role, Role::Request);
        if role_is_request {
            if n == 0 {
                self.conns[ci].dead = true;
                return;
            }
            self.conns[ci].buf.extend_from_slice(&buf[..n]);
            let Some(pos) = self.conns[ci].buf.iter().position(|&b| b == b'\n') else {
                if self.conns[ci].buf.len() > 4096 {
                    self.conns[ci].dead = true;
                }
                return;
            };
            let line = String::from_utf8_lossy(&self.conns[ci].buf[..pos]).into_owned();
            let rest = self.conns[ci].buf[pos + 1..].to_vec();
            self.conns[ci].buf.clear();
            match Request::parse(&line) {
                Ok(req) => self.handle(ci, req),
                Err(e) => {
                    self.conns[ci].send(format!("ERR {e}\n").as_bytes());
                    self.conns[ci].dead = true;
                }
            }
            if !rest.is_empty() {
                self.forward_input(ci, &rest);
            }
            return;
        }
        if n == 0 {
            self.input_eof(ci);
        } else {
            self.forward_input(ci, &buf[..n]);
        }
    }

    fn forward_input(&mut self, ci: usize, data: &[u8]) {
        match &self.conns[ci].role {
            Role::Attach { stdin: true, .. } => {
                if let Some(w) = &mut self.stdin {
                    if w.write_all(data).is_err() {
                        self.stdin = None;
                    }
                }
            }
            Role::Exec(id) => {
                let id = id.clone();
                if let Some(e) = self.execs.iter_mut().find(|e| e.id == id) {
                    if let Some(w) = &mut e.stdin {
                        if w.write_all(data).is_err() {
                            e.stdin = None;
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn input_eof(&mut self, ci: usize) {
        let c = &mut self.conns[ci];
        c.reading = false;
        match &c.role {
            // As Docker: a client's end of input closes the container's stdin only without
            // a tty. With one, the client may just have detached (ctrl-p ctrl-q) or gone
            // away, and the terminal stays open for the next attach.
            Role::Attach { stdin: true, .. } => {
                if self.args.stdin_once && self.master.is_none() {
                    self.stdin = None;
                }
            }
            Role::Exec(id) => {
                let id = id.clone();
                if let Some(e) = self.execs.iter_mut().find(|e| e.id == id) {
                    if e.master.is_none() {
                        e.stdin = None;
                    }
                }
            }
            // An output-only attach that half-closed still wants output; a write error
            // will tell when it is gone.
            Role::Attach { .. } => {}
            // A waiter that closed: drop it.
            _ => c.dead = true,
        }
    }

    fn reply(&mut self, ci: usize, r: Result<String, String>) {
        let line = match r {
            Ok(d) if d.is_empty() => "OK\n".to_string(),
            Ok(d) => format!("OK {d}\n"),
            Err(e) => format!("ERR {}\n", e.replace('\n', " ")),
        };
        self.conns[ci].send(line.as_bytes());
    }

    fn handle(&mut self, ci: usize, req: Request) {
        // Requests that run runtime code leave its pages mapped: release them after.
        let heavy = matches!(
            req,
            Request::Start | Request::Exec { .. } | Request::Stats | Request::Update { .. }
        );
        self.handle_request(ci, req);
        if heavy {
            self.release_pending = true;
        }
    }

    fn handle_request(&mut self, ci: usize, req: Request) {
        let exited = self.exit_code.is_some();
        let not_running = || Err::<String, String>("container is not running".into());
        match req {
            Request::Start => {
                let r = if self.started {
                    Err("container already started".into())
                } else if exited {
                    not_running()
                } else {
                    self.rt.start().map_err(text).map(|_| {
                        self.started = true;
                        self.init.to_string()
                    })
                };
                self.reply(ci, r);
                self.conns[ci].dead = true;
            }
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => {
                self.reply(ci, Ok(String::new()));
                let c = &mut self.conns[ci];
                c.role = Role::Attach {
                    stdin,
                    stdout,
                    stderr,
                };
                // Keep reading even without stdin, to notice when the client goes away.
                c.reading = true;
            }
            Request::Wait => {
                self.conns[ci].role = Role::Waiter;
            }
            Request::Kill { signal, all } => {
                let r = if exited {
                    not_running()
                } else if all || !self.started {
                    self.rt
                        .kill(signal, all)
                        .map_err(text)
                        .map(|_| String::new())
                } else {
                    nix::sys::signal::kill(
                        Pid::from_raw(self.init),
                        Signal::try_from(signal).map_err(|e| e.to_string()).ok(),
                    )
                    .map(|_| String::new())
                    .map_err(|e| e.to_string())
                };
                self.reply(ci, r);
                self.conns[ci].dead = true;
            }
            Request::Resize { rows, cols } => {
                let r = match &self.master {
                    Some(m) => resize(m, rows, cols),
                    None => Err("the container has no tty".into()),
                };
                self.reply(ci, r);
                self.conns[ci].dead = true;
            }
            Request::State => {
                let s = match self.exit_code {
                    Some(c) => format!("exited {c}"),
                    None if self.paused => format!("paused {}", self.init),
                    None if self.started => format!("running {}", self.init),
                    None => format!("created {}", self.init),
                };
                self.reply(ci, Ok(s));
                self.conns[ci].dead = true;
            }
            Request::Pause | Request::Resume => {
                let pause = matches!(req, Request::Pause);
                let r = if exited {
                    not_running()
                } else if pause {
                    self.rt.pause().map_err(text).map(|_| String::new())
                } else {
                    self.rt.resume().map_err(text).map(|_| String::new())
                };
                if r.is_ok() {
                    self.paused = pause;
                }
                self.reply(ci, r);
                self.conns[ci].dead = true;
            }
            Request::Pids => {
                let r = if exited {
                    not_running()
                } else {
                    self.rt
                        .pids()
                        .map_err(text)
                        .map(|p| p.iter().map(i32::to_string).collect::<Vec<_>>().join(" "))
                };
                self.reply(ci, r);
                self.conns[ci].dead = true;
            }
            Request::Stats => {
                let r = if exited {
                    not_running()
                } else {
                    self.rt.stats().map_err(text)
                };
                self.reply(ci, r);
                self.conns[ci].dead = true;
            }
            Request::Exec {
                id,
                tty,
                stdin,
                process,
            } => {
                let r = if exited || !self.started {
                    not_running()
                } else {
                    self.start_exec(&id, tty, stdin, Path::new(&process))
                };
                let ok = r.is_ok();
                self.reply(ci, r);
                if ok {
                    self.conns[ci].role = Role::Exec(id);
                    self.conns[ci].reading = true;
                } else {
                    self.conns[ci].dead = true;
                }
            }
            Request::Update { resources } => {
                let r = if exited {
                    not_running()
                } else {
                    self.rt
                        .update(Path::new(&resources))
                        .map_err(text)
                        .map(|_| String::new())
                };
                self.reply(ci, r);
                self.conns[ci].dead = true;
            }
            Request::ExecResize { id, rows, cols } => {
                let r = match self
                    .execs
                    .iter()
                    .find(|e| e.id == id)
                    .and_then(|e| e.master.as_ref())
                {
                    Some(m) => resize(m, rows, cols),
                    None => Err(format!("no exec {id} with a tty")),
                };
                self.reply(ci, r);
                self.conns[ci].dead = true;
            }
        }
    }

    fn start_exec(
        &mut self,
        id: &str,
        tty: bool,
        stdin: bool,
        process: &Path,
    ) -> Result<String, String> {
        let e = |e: std::io::Error| e.to_string();
        let (in_r, in_w) = if stdin && !tty {
            let (r, w) = pipe().map_err(e)?;
            (r, Some(w))
        } else {
            (devnull().map_err(e)?, None)
        };
        let (out_r, out_w) = pipe().map_err(e)?;
        let (err_r, err_w) = pipe().map_err(e)?;
        let created = self
            .rt
            .exec(
                id,
                process,
                ProcStdio {
                    stdin: in_r,
                    stdout: out_w,
                    stderr: err_w,
                },
                tty,
            )
            .map_err(text)?;
        let (pid, console) = (created.pid, created.console);
        let mut exec = Exec {
            id: id.to_string(),
            pid,
            stdin: in_w.map(File::from),
            master: None,
            exit: None,
        };
        if let Some(m) = console {
            set_nonblocking(&m);
            if stdin {
                exec.stdin = Some(File::from(m.try_clone().map_err(e)?));
            }
            self.outputs.push(Output {
                fd: m.try_clone().map_err(e)?,
                stream: 1,
                exec: Some(id.to_string()),
                splitter: LineSplitter::default(),
            });
            exec.master = Some(m);
        } else {
            for (fd, stream) in [(out_r, 1), (err_r, 2)] {
                set_nonblocking(&fd);
                self.outputs.push(Output {
                    fd,
                    stream,
                    exec: Some(id.to_string()),
                    splitter: LineSplitter::default(),
                });
            }
        }
        self.execs.push(exec);
        Ok(pid.to_string())
    }

    fn finish(&mut self, sock: &Path, listener: &UnixListener, sigfd: &SignalFd) {
        let status = ExitStatus {
            code: self.exit_code.unwrap_or(-1),
            // Read before the runtime removes the cgroup that records it.
            oom_killed: oom_killed(self.args.cgroup_path.as_deref()),
            finished_at: timefmt::now(),
        };
        // The kernel kills the rest of the container when its init dies, and they are
        // reparented to us (subreaper): reap them, or their zombies keep the cgroup busy and
        // the runtime cannot remove it. Bounded: without a pid namespace some may live on
        // until the runtime's delete kills them.
        reap_all(sigfd, Instant::now() + Duration::from_secs(2));
        // Clean up before telling anyone: when wharfd learns of the exit, the container's
        // cgroups and runtime state are gone already.
        if let Err(e) = self.rt.delete() {
            eprintln!("wharf-shim: {e}");
        }
        reap_all(sigfd, Instant::now());
        let line = format!("{}\n", status.encode());
        let _ = write_atomic(&self.args.state_dir.join("exit"), line.as_bytes());
        let reply = format!("OK {}", line);
        self.answer_late_requests(listener, &status);
        for c in &mut self.conns {
            if matches!(c.role, Role::Waiter) {
                c.send(reply.as_bytes());
            }
            let _ = c.s.shutdown(std::net::Shutdown::Both);
        }
        self.conns.clear();
        let _ = fs::remove_file(sock);
        let _ = fs::remove_file(self.args.state_dir.join("shim.pid"));
    }
}

impl Shim {
    /// Clients that connected before the exit but whose request line was not read yet (a
    /// WAIT racing the exit) still get an answer: waiters their status, others the state.
    fn answer_late_requests(&mut self, listener: &UnixListener, status: &ExitStatus) {
        let _ = listener.set_nonblocking(true);
        while let Ok((s, _)) = listener.accept() {
            self.conns.push(Conn {
                s,
                buf: Vec::new(),
                role: Role::Request,
                reading: true,
                dead: false,
            });
        }
        for c in &mut self.conns {
            if !matches!(c.role, Role::Request) || c.dead {
                continue;
            }
            // The client sent its line with the connect; a stuck one costs at most this.
            let _ = c.s.set_nonblocking(false);
            let _ = c.s.set_read_timeout(Some(Duration::from_millis(200)));
            let mut b = [0u8; 512];
            while !c.buf.contains(&b'\n') && c.buf.len() < 4096 {
                match c.s.read(&mut b) {
                    Ok(n) if n > 0 => c.buf.extend_from_slice(&b[..n]),
                    _ => break,
                }
            }
            let Some(end) = c.buf.iter().position(|&b| b == b'\n') else {
                continue;
            };
            let line = String::from_utf8_lossy(&c.buf[..end]).into_owned();
            match Request::parse(&line) {
                Ok(Request::Wait) => c.role = Role::Waiter,
                Ok(Request::State) => c.send(format!("OK exited {}\n", status.code).as_bytes()),
                _ => c.send(b"ERR container is not running\n"),
            }
        }
    }
}

/// Reaps children until none is left or `deadline` passes, waiting on SIGCHLD (the signalfd),
/// not on a timer.
fn reap_all(sigfd: &SignalFd, deadline: Instant) {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return;
                }
                let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
                let mut fds = [PollFd::new(sigfd.as_fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::from(ms));
                while sigfd.read_signal().ok().flatten().is_some() {}
            }
            // ECHILD: nobody left.
            Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// A backend error as the text of an `ERR` reply.
fn text(e: BackendError) -> String {
    e.to_string()
}

fn resize(m: &OwnedFd, rows: u16, cols: u16) -> Result<String, String> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct from a valid pointer; m is an open pty master.
    let rc = unsafe { libc::ioctl(m.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if rc < 0 {
        Err(std::io::Error::last_os_error().to_string())
    } else {
        Ok(String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("exit");
        write_atomic(&p, b"1 0 t\n").unwrap();
        write_atomic(&p, b"137 1 u\n").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"137 1 u\n");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("exit")]);
        // A directory in the way: the write fails and leaves no temp file behind.
        fs::create_dir(dir.path().join("d")).unwrap();
        assert!(write_atomic(&dir.path().join("d"), b"x").is_err());
        assert!(!dir.path().join("d.tmp").exists());
    }

    #[test]
    fn docker_exit_codes() {
        let pid = Pid::from_raw(7);
        assert_eq!(code_of(WaitStatus::Exited(pid, 3)), Some((7, 3)));
        assert_eq!(
            code_of(WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
            Some((7, 137))
        );
        assert_eq!(code_of(WaitStatus::StillAlive), None);
    }
}
