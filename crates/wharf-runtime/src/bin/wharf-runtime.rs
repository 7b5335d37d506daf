//! wharf-runtime: runc's command line over the `wharf_runtime` library.

use anyhow::{bail, Context, Result};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use nix::sys::signal::Signal;
use oci_spec::runtime::Process;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use wharf_runtime::{foreground, Console, CreateOpts, ExecOpts, Runtime, Status};

/// urfave/cli's layout, as runc prints its help (callers match its first lines), for the
/// command `name`: the name this binary was invoked as (argv[0]'s file name, as clap's usage
/// lines), then the subcommand's.
fn help_template(name: &str) -> String {
    format!("NAME:\n   {name} - {{about}}\n\nUSAGE:\n   {{usage}}\n\n{{all-args}}{{after-help}}")
}

#[derive(Parser)]
#[command(
    name = "wharf-runtime",
    about = "Open Container Initiative runtime (wharf-runtime, with runc's command line)",
    disable_version_flag = true
)]
struct Cli {
    /// Print the version (runc's -v).
    #[arg(short = 'v', long, short_alias = 'V')]
    version: bool,
    /// Root directory for container state.
    #[arg(long, global = true, default_value = wharf_runtime::state::DEFAULT_ROOT)]
    root: PathBuf,
    /// Log file (default: stderr).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, global = true, default_value = "text")]
    log_format: String,
    #[arg(long, global = true)]
    debug: bool,
    /// Accepted for runc compatibility: "slice:prefix:name" cgroup paths are understood
    /// either way.
    #[arg(long, global = true, hide = true)]
    systemd_cgroup: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Args)]
struct CreateArgs {
    id: String,
    /// The bundle directory.
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Unix socket that receives the pty master (when process.terminal is true).
    #[arg(long)]
    console_socket: Option<PathBuf>,
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Use MS_MOVE and chroot instead of pivot_root (for a rootfs on ramfs).
    #[arg(long)]
    no_pivot: bool,
    #[arg(long, hide = true)]
    no_new_keyring: bool,
    /// Pass N extra fds (from 3) to the container process.
    #[arg(long, default_value_t = 0)]
    preserve_fds: i32,
}

#[derive(Args)]
struct CheckpointArgs {
    id: String,
    /// Path for saving the CRIU image files (default: ./checkpoint).
    #[arg(long)]
    image_path: Option<PathBuf>,
    #[arg(long)]
    work_path: Option<PathBuf>,
    /// Path of a previous pre-dump's images, relative to --image-path.
    #[arg(long)]
    parent_path: Option<PathBuf>,
    #[arg(long)]
    leave_running: bool,
    #[arg(long)]
    tcp_established: bool,
    #[arg(long)]
    ext_unix_sk: bool,
    #[arg(long)]
    shell_job: bool,
    #[arg(long)]
    lazy_pages: bool,
    #[arg(long, allow_negative_numbers = true)]
    status_fd: Option<i32>,
    #[arg(long)]
    page_server: Option<String>,
    #[arg(long)]
    file_locks: bool,
    #[arg(long)]
    pre_dump: bool,
    #[arg(long)]
    manage_cgroups_mode: Option<String>,
    #[arg(long)]
    empty_ns: Vec<String>,
    #[arg(long)]
    auto_dedup: bool,
}

#[derive(Args)]
struct RestoreArgs {
    id: String,
    #[arg(long)]
    image_path: Option<PathBuf>,
    #[arg(long)]
    work_path: Option<PathBuf>,
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    #[arg(short, long)]
    detach: bool,
    #[arg(long)]
    pid_file: Option<PathBuf>,
    #[arg(long)]
    console_socket: Option<PathBuf>,
    #[arg(long)]
    tcp_established: bool,
    #[arg(long)]
    ext_unix_sk: bool,
    #[arg(long)]
    shell_job: bool,
    #[arg(long)]
    file_locks: bool,
    #[arg(long)]
    manage_cgroups_mode: Option<String>,
    #[arg(long)]
    no_subreaper: bool,
    #[arg(long)]
    no_pivot: bool,
    #[arg(long)]
    empty_ns: Vec<String>,
    #[arg(long)]
    auto_dedup: bool,
    #[arg(long)]
    lazy_pages: bool,
    #[arg(long)]
    lsm_profile: Option<String>,
    #[arg(long)]
    lsm_mount_context: Option<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a container (its process waits for `start`).
    Create(CreateArgs),
    /// Start a created container.
    Start { id: String },
    /// Create and start a container, and wait for it unless --detach.
    Run {
        #[command(flatten)]
        c: CreateArgs,
        #[arg(short, long)]
        detach: bool,
        /// Do not delete the container when it exits.
        #[arg(long)]
        keep: bool,
    },
    /// Print a container's state as JSON.
    State { id: String },
    /// Send a signal (default SIGTERM) to a container.
    Kill {
        id: String,
        signal: Option<String>,
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a container.
    Delete {
        id: String,
        #[arg(short, long)]
        force: bool,
    },
    /// Run a new process in a running container.
    Exec {
        id: String,
        /// The process as JSON (runtime-spec's process object).
        #[arg(short, long)]
        process: Option<PathBuf>,
        #[arg(short, long)]
        tty: bool,
        #[arg(long)]
        cwd: Option<PathBuf>,
        #[arg(short, long)]
        env: Vec<String>,
        /// uid[:gid]
        #[arg(short, long)]
        user: Option<String>,
        #[arg(short = 'g', long)]
        additional_gids: Vec<u32>,
        #[arg(long)]
        console_socket: Option<PathBuf>,
        #[arg(long)]
        pid_file: Option<PathBuf>,
        #[arg(short, long)]
        detach: bool,
        /// Add a capability (e.g. CAP_NET_ADMIN).
        #[arg(short, long)]
        cap: Vec<String>,
        #[arg(long)]
        no_new_privs: bool,
        /// Exec into a paused container too: the process starts once it is resumed.
        #[arg(long)]
        ignore_paused: bool,
        /// Pass N extra fds (from 3) to the process.
        #[arg(long, default_value_t = 0)]
        preserve_fds: i32,
        /// Put the process in an existing sub-cgroup of the container's: PATH, or
        /// CONTROLLER[,CONTROLLER...]:PATH (cgroup v1); repeatable.
        #[arg(long = "cgroup")]
        cgroups: Vec<String>,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Checkpoint a running container (needs CRIU: not supported, the arguments are checked).
    Checkpoint(CheckpointArgs),
    /// Restore a container from a checkpoint (needs CRIU: not supported).
    Restore(RestoreArgs),
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// List a container's processes.
    Ps {
        id: String,
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// List containers.
    #[command(alias = "ls")]
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print a container's events; with --stats, one stats sample.
    Events {
        id: String,
        #[arg(long)]
        stats: bool,
        #[arg(long, default_value = "5s")]
        interval: String,
    },
    /// Update a container's resource limits.
    Update {
        id: String,
        /// The new linux.resources as JSON ("-" for stdin).
        #[arg(short, long)]
        resources: Option<PathBuf>,
        /// Bytes, or with a k, m, g, t suffix (powers of 1024), as runc; -1 for no limit.
        #[arg(long, value_parser = parse_bytes, allow_negative_numbers = true)]
        memory: Option<i64>,
        #[arg(long, value_parser = parse_bytes, allow_negative_numbers = true)]
        memory_swap: Option<i64>,
        /// Memory soft limit (v1 memory.soft_limit_in_bytes, v2 memory.low).
        #[arg(long, value_parser = parse_bytes, allow_negative_numbers = true)]
        memory_reservation: Option<i64>,
        /// CPU shares (runc's flag is --cpu-share).
        #[arg(long, visible_alias = "cpu-share")]
        cpu_shares: Option<u64>,
        /// Microseconds per period; -1 for no limit.
        #[arg(long, allow_negative_numbers = true)]
        cpu_quota: Option<i64>,
        #[arg(long)]
        cpu_period: Option<u64>,
        /// Realtime period (cgroup v1 cpu.rt_period_us).
        #[arg(long)]
        cpu_rt_period: Option<u64>,
        /// Realtime runtime per period (cgroup v1 cpu.rt_runtime_us).
        #[arg(long, allow_negative_numbers = true)]
        cpu_rt_runtime: Option<i64>,
        #[arg(long)]
        cpuset_cpus: Option<String>,
        #[arg(long, allow_negative_numbers = true)]
        pids_limit: Option<i64>,
    },
    /// Print the features this runtime supports.
    Features,
    /// Write a default config.json.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        #[arg(long)]
        rootless: bool,
    },
}

/// The command line, with runc's help layout on every subcommand too.
fn parse_cli() -> Cli {
    let bin = std::env::args_os()
        .next()
        .as_deref()
        .map(Path::new)
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "wharf-runtime".into());
    let mut cmd = Cli::command()
        .help_template(help_template(&bin))
        .mut_subcommands(|s| {
            let t = help_template(&format!("{bin} {}", s.get_name()));
            s.help_template(t)
        });
    let m = match cmd.try_get_matches_from_mut(std::env::args_os()) {
        Ok(m) => m,
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidSubcommand => {
            // As runc (urfave/cli) answers an unknown command.
            let name = match e.get(clap::error::ContextKind::InvalidSubcommand) {
                Some(clap::error::ContextValue::String(s)) => s.clone(),
                _ => String::new(),
            };
            eprintln!("No help topic for '{name}'");
            std::process::exit(3);
        }
        Err(e) => e.exit(),
    };
    let cli = Cli::from_arg_matches(&m).unwrap_or_else(|e| e.exit());
    if cli.version {
        // runc's three lines; the first names the program as it was invoked.
        // Under another name (a `runc` link), the program's own name follows.
        let own = if bin == "wharf-runtime" {
            ""
        } else {
            " (wharf-runtime)"
        };
        println!(
            "{bin} version {}{own}\ncommit: {}\nspec: {}",
            env!("CARGO_PKG_VERSION"),
            option_env!("WHARF_GIT_COMMIT").unwrap_or("unknown"),
            wharf_runtime::state::OCI_VERSION
        );
        std::process::exit(0);
    }
    if cli.cmd.is_none() {
        let _ = cmd.print_help();
        std::process::exit(0);
    }
    cli
}

fn main() {
    let cli = parse_cli();
    // The commands that fork processes into a container first run this binary again from a
    // read-only mount of itself, so that no container can write it through
    // /proc/<pid>/exe (see wharf_runtime::sealed).
    let sealed = matches!(
        cli.cmd,
        Some(Cmd::Create(_) | Cmd::Run { .. } | Cmd::Exec { .. })
    )
    .then(|| wharf_runtime::sealed::reexec_sealed("wharf-runtime"));
    init_logging(&cli);
    if let Some(Err(e)) = sealed {
        // Root can always clone a mount; without it (rootless use) this is expected.
        if nix::unistd::geteuid().is_root() {
            tracing::warn!(
                "cannot run from a read-only mount of this binary ({e}): a container could overwrite it"
            );
        } else {
            tracing::debug!("not running from a read-only mount of this binary: {e}");
        }
    }
    let code = match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            report(&cli, &e);
            // runc's exec fails with 255, so that its caller can tell a runtime error from
            // the exit status of the process.
            if matches!(cli.cmd, Some(Cmd::Exec { .. })) {
                255
            } else {
                1
            }
        }
    };
    std::process::exit(code);
}

/// Warnings (and with --debug, debug events) to --log or stderr, in --log-format, as runc
/// (logrus) writes them: `time="..." level=debug msg="..."`, or one JSON object a line. The
/// container's processes log their setup steps through the same descriptor (a duplicate of
/// stderr, so that it stays the runtime's stderr after their stdio is replaced), which is
/// close-on-exec and kept open until their execve, or until a created init reports ready
/// (`wharf_runtime::init::set_log_fd`).
fn init_logging(cli: &Cli) {
    use std::os::fd::{AsFd, AsRawFd};
    let level = if cli.debug { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::new(level);
    let file = match &cli.log {
        Some(p) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok(),
        None => std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(std::fs::File::from),
    };
    let Some(file) = file else { return };
    wharf_runtime::init::set_log_fd(file.as_raw_fd());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .event_format(Logrus {
            json: cli.log_format == "json",
        })
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
}

/// logrus' text and JSON line formats (runc's log formats).
struct Logrus {
    json: bool,
}

/// An event's fields: the message, and the others in order.
#[derive(Default)]
struct Fields {
    msg: String,
    rest: Vec<(&'static str, String)>,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, f: &tracing::field::Field, v: &str) {
        if f.name() == "message" {
            self.msg = v.to_string();
        } else {
            self.rest.push((f.name(), v.to_string()));
        }
    }
    fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
        if f.name() == "message" {
            self.msg = format!("{v:?}");
        } else {
            self.rest.push((f.name(), format!("{v:?}")));
        }
    }
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Logrus
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut w: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut f = Fields::default();
        event.record(&mut f);
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            tracing::Level::DEBUG => "debug",
            tracing::Level::TRACE => "trace",
        };
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        if self.json {
            let mut o = serde_json::Map::new();
            for (k, v) in f.rest {
                o.insert(k.to_string(), v.into());
            }
            o.insert("level".into(), level.into());
            o.insert("msg".into(), f.msg.into());
            o.insert("time".into(), time.into());
            writeln!(w, "{}", serde_json::Value::Object(o))
        } else {
            write!(w, "time={time:?} level={level} msg={:?}", f.msg)?;
            for (k, v) in f.rest {
                write!(w, " {k}={v:?}")?;
            }
            writeln!(w)
        }
    }
}

/// Errors go to --log in the chosen format (where the shim looks for them) and to stderr.
fn report(cli: &Cli, e: &anyhow::Error) {
    let msg = format!("{e:#}");
    if let Some(log) = &cli.log {
        let line = if cli.log_format == "json" {
            serde_json::json!({
                "level": "error",
                "msg": msg,
                "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            })
            .to_string()
        } else {
            format!(
                "time={:?} level=error msg={msg:?}",
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
            )
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(f, "{line}");
        }
    }
    eprintln!("wharf-runtime: {msg}");
}

/// A size as runc's `update` takes it: `-1`, or a number with an optional k/m/g/t/p suffix
/// (binary multiples, upper or lower case, an optional trailing b/B or iB).
fn parse_bytes(s: &str) -> std::result::Result<i64, String> {
    if s == "-1" {
        return Ok(-1);
    }
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix(['b', 'B']))
        .unwrap_or(t);
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: i64 = match c.to_ascii_lowercase() {
                'k' => 1 << 10,
                'm' => 1 << 20,
                'g' => 1 << 30,
                't' => 1 << 40,
                'p' => 1 << 50,
                _ => {
                    return Err(format!(
                        "{s:?}: unknown size suffix {c:?} (use k, m, g, t or p)"
                    ))
                }
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size (bytes, or a number with k, m, g, t or p)"))?;
    if n < 0.0 {
        return Err(format!(
            "{s:?}: a size cannot be negative (but -1: no limit)"
        ));
    }
    Ok((n * mult as f64) as i64)
}

fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).with_context(|| format!("unknown signal number {n}"));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    Signal::from_str(&name).with_context(|| format!("unknown signal {s:?}"))
}

fn create_opts<'a>(c: &'a CreateArgs, console: Console<'a>) -> CreateOpts<'a> {
    CreateOpts {
        id: &c.id,
        bundle: &c.bundle,
        console,
        stdio: None,
        pid_file: c.pid_file.as_deref(),
        no_pivot: c.no_pivot,
        preserve_fds: c.preserve_fds,
    }
}

fn run(cli: &Cli) -> Result<i32> {
    let rt = Runtime::new(&cli.root);
    let Some(cmd) = &cli.cmd else {
        return Ok(0);
    };
    match cmd {
        Cmd::Create(c) => {
            let console = c
                .console_socket
                .as_deref()
                .map_or(Console::None, Console::Socket);
            rt.create(create_opts(c, console))?;
        }
        Cmd::Start { id } => rt.start(id)?,
        Cmd::Run { c, detach, keep } => {
            if *detach {
                let console = c
                    .console_socket
                    .as_deref()
                    .map_or(Console::None, Console::Socket);
                rt.create(create_opts(c, console))?;
                rt.start(&c.id)?;
                return Ok(0);
            }
            foreground::become_subreaper()?;
            let signals = foreground::block_signals()?;
            let console = match &c.console_socket {
                Some(p) => Console::Socket(p),
                None => Console::Return,
            };
            let started = rt.create(create_opts(c, console))?;
            if let Err(e) = rt.start(&c.id) {
                let _ = rt.delete(&c.id, true);
                return Err(e.into());
            }
            let code = foreground::wait(started.pid, signals, started.console)?;
            if !keep {
                rt.delete(&c.id, true)?;
            }
            return Ok(code);
        }
        Cmd::State { id } => {
            let s = rt.state(id)?;
            println!("{}", serde_json::to_string_pretty(&s)?);
        }
        Cmd::Kill { id, signal, all } => {
            let s = signal.as_deref().unwrap_or("SIGTERM");
            if s == "0" {
                // Signal 0 only checks that there is a process to signal.
                if rt.state(id)?.status == Status::Stopped && !*all {
                    bail!("container {id:?} is not running");
                }
            } else {
                rt.kill(id, parse_signal(s)?, *all)?;
            }
        }
        Cmd::Delete { id, force } => rt.delete(id, *force)?,
        Cmd::Exec {
            id,
            process,
            tty,
            cwd,
            env,
            user,
            additional_gids,
            console_socket,
            pid_file,
            detach,
            cap,
            no_new_privs,
            ignore_paused,
            preserve_fds,
            cgroups,
            args,
        } => {
            let cgroups = wharf_runtime::cgroups::parse_sub_cgroups(cgroups)?;
            let p = exec_process(
                &rt,
                id,
                process.as_deref(),
                *tty,
                cwd,
                env,
                user,
                additional_gids,
                cap,
                *no_new_privs,
                args,
            )?;
            let terminal = p.terminal() == Some(true);
            let console = match console_socket {
                Some(s) => Console::Socket(s),
                None if terminal && !detach => Console::Return,
                None => Console::None,
            };
            let signals = if *detach {
                None
            } else {
                foreground::become_subreaper()?;
                Some(foreground::block_signals()?)
            };
            let started = rt.exec(
                id,
                ExecOpts {
                    process: p,
                    console,
                    stdio: None,
                    pid_file: pid_file.as_deref(),
                    ignore_paused: *ignore_paused,
                    preserve_fds: *preserve_fds,
                    cgroups,
                },
            )?;
            if let Some(signals) = signals {
                return foreground::wait(started.pid, signals, started.console).map_err(Into::into);
            }
        }
        Cmd::Checkpoint(c) => checkpoint(&rt, c)?,
        Cmd::Restore(r) => {
            // runc needs the bundle's config before it calls CRIU.
            let cfg = r.bundle.join("config.json");
            if !cfg.exists() {
                bail!("{}: no config.json in the bundle", cfg.display());
            }
            bail!(
                "restore of {:?} needs CRIU, which wharf-runtime does not support",
                r.id
            );
        }
        Cmd::Pause { id } => rt.pause(id)?,
        Cmd::Resume { id } => rt.resume(id)?,
        Cmd::Ps {
            id,
            format,
            ps_args,
        } => {
            let pids = rt.pids(id)?;
            if format == "json" {
                println!("{}", serde_json::to_string(&pids)?);
            } else {
                ps_table(&pids, ps_args)?;
            }
        }
        Cmd::List { format, quiet } => {
            let all = rt.list()?;
            if *quiet {
                for s in &all {
                    println!("{}", s.id);
                }
            } else if format == "json" {
                println!("{}", serde_json::to_string(&all)?);
            } else {
                let mut out = String::from("ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n");
                for s in &all {
                    out.push_str(&format!(
                        "{}\t{}\t{}\t{}\t{}\t{}\n",
                        s.id,
                        s.pid,
                        s.status,
                        s.bundle.display(),
                        s.created,
                        if s.owner.is_empty() { "root" } else { &s.owner }
                    ));
                }
                print!("{}", tabulate(&out));
            }
        }
        Cmd::Events {
            id,
            stats,
            interval,
        } => {
            let every = humantime_secs(interval)?;
            // runc's key order (type, id, data): callers match the line as text.
            #[derive(serde::Serialize)]
            struct Event<'a> {
                r#type: &'static str,
                id: &'a str,
                #[serde(skip_serializing_if = "Option::is_none")]
                data: Option<serde_json::Value>,
            }
            let print = |e: &Event| -> Result<()> {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{}", serde_json::to_string(e)?)?;
                out.flush()?;
                Ok(())
            };
            let mut ooms = None;
            loop {
                let st = rt.state(id)?;
                if st.status == Status::Stopped {
                    bail!("container {id:?} is not running");
                }
                let s = rt.detailed_stats(id)?;
                print(&Event {
                    r#type: "stats",
                    id,
                    data: Some(wharf_runtime::events::runc_data(&s)),
                })?;
                if *stats {
                    break;
                }
                // Between two stats, OOM kills are reported as they happen (polled).
                let until = std::time::Instant::now() + every;
                loop {
                    let kills = rt.stats(id).map(|s| s.oom_kills).unwrap_or(0);
                    if ooms.is_some_and(|o| kills > o) {
                        print(&Event {
                            r#type: "oom",
                            id,
                            data: None,
                        })?;
                    }
                    ooms = Some(kills);
                    let now = std::time::Instant::now();
                    if now >= until {
                        break;
                    }
                    std::thread::sleep((until - now).min(Duration::from_millis(200)));
                }
            }
        }
        Cmd::Update {
            id,
            resources,
            memory,
            memory_swap,
            memory_reservation,
            cpu_shares,
            cpu_quota,
            cpu_period,
            cpu_rt_period,
            cpu_rt_runtime,
            cpuset_cpus,
            pids_limit,
        } => {
            let mut r: oci_spec::runtime::LinuxResources = match resources.as_deref() {
                Some(p) if p == Path::new("-") => serde_json::from_reader(std::io::stdin())
                    .context("reading resources JSON from stdin")?,
                Some(p) => serde_json::from_slice(
                    &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
                )
                .with_context(|| format!("{} is not linux.resources JSON", p.display()))?,
                None => Default::default(),
            };
            if memory.is_some() || memory_swap.is_some() || memory_reservation.is_some() {
                let mut m = r.memory().unwrap_or_default();
                if let Some(v) = memory {
                    m.set_limit(Some(*v));
                }
                if let Some(v) = memory_swap {
                    m.set_swap(Some(*v));
                }
                if let Some(v) = memory_reservation {
                    m.set_reservation(Some(*v));
                }
                r.set_memory(Some(m));
            }
            if cpu_shares.is_some()
                || cpu_quota.is_some()
                || cpu_period.is_some()
                || cpu_rt_period.is_some()
                || cpu_rt_runtime.is_some()
                || cpuset_cpus.is_some()
            {
                let mut c = r.cpu().clone().unwrap_or_default();
                if let Some(v) = cpu_shares {
                    c.set_shares(Some(*v));
                }
                if let Some(v) = cpu_quota {
                    c.set_quota(Some(*v));
                }
                if let Some(v) = cpu_period {
                    c.set_period(Some(*v));
                }
                if let Some(v) = cpu_rt_period {
                    c.set_realtime_period(Some(*v));
                }
                if let Some(v) = cpu_rt_runtime {
                    c.set_realtime_runtime(Some(*v));
                }
                if let Some(v) = cpuset_cpus {
                    c.set_cpus(Some(v.clone()));
                }
                r.set_cpu(Some(c));
            }
            if let Some(v) = pids_limit {
                let mut p = oci_spec::runtime::LinuxPids::default();
                p.set_limit(*v);
                r.set_pids(Some(p));
            }
            rt.update(id, &r)?;
        }
        Cmd::Features => println!(
            "{}",
            serde_json::to_string_pretty(&wharf_runtime::defaults::features())?
        ),
        Cmd::Spec { bundle, rootless } => {
            let path = bundle.join("config.json");
            if path.exists() {
                bail!("{} already exists: remove it first", path.display());
            }
            let s = wharf_runtime::defaults::spec(*rootless);
            std::fs::write(&path, serde_json::to_vec_pretty(&s)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(0)
}

/// `checkpoint`: runc's checks of the container and the image paths, which come before it
/// needs CRIU; then the error that CRIU is not supported. Nothing is created.
fn checkpoint(rt: &Runtime, c: &CheckpointArgs) -> Result<()> {
    let st = rt.state(&c.id)?;
    if matches!(st.status, Status::Created | Status::Stopped) {
        bail!("container cannot be checkpointed in {} state", st.status);
    }
    let image = match &c.image_path {
        Some(p) => p.clone(),
        None => std::env::current_dir()
            .context("the current directory")?
            .join("checkpoint"),
    };
    if let Some(parent) = &c.parent_path {
        if parent.is_absolute() {
            bail!("--parent-path must be relative (to --image-path)");
        }
        let real = image.join(parent);
        match std::fs::metadata(&real) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!("invalid --parent-path: {}: not a directory", real.display()),
            Err(e) => bail!("invalid --parent-path: {}: {e}", real.display()),
        }
    }
    if let Some(mode) = &c.manage_cgroups_mode {
        if !matches!(mode.as_str(), "soft" | "full" | "strict") {
            bail!("invalid --manage-cgroups-mode {mode:?} (soft, full or strict)");
        }
    }
    if let Some(ns) = c.empty_ns.iter().find(|n| n.as_str() != "network") {
        bail!("namespace {ns:?} is not supported by --empty-ns (only network)");
    }
    if let Some(ps) = &c.page_server {
        if !ps
            .rsplit_once(':')
            .is_some_and(|(a, p)| !a.is_empty() && p.parse::<u16>().is_ok())
        {
            bail!("use --page-server ADDRESS:PORT to specify the page server");
        }
    }
    bail!(
        "checkpoint of {:?} needs CRIU, which wharf-runtime does not support",
        c.id
    )
}

#[allow(clippy::too_many_arguments)]
fn exec_process(
    rt: &Runtime,
    id: &str,
    process: Option<&Path>,
    tty: bool,
    cwd: &Option<PathBuf>,
    env: &[String],
    user: &Option<String>,
    gids: &[u32],
    cap: &[String],
    nnp: bool,
    args: &[String],
) -> Result<Process> {
    if let Some(p) = process {
        let data = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        let bad = || format!("{} is not a runtime-spec process object", p.display());
        let mut v: serde_json::Value = serde_json::from_slice(&data).with_context(bad)?;
        // runc takes a process without user (root: Go's zero value).
        if let Some(o) = v.as_object_mut() {
            o.entry("user")
                .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
        }
        return serde_json::from_value(v).with_context(bad);
    }
    if args.is_empty() {
        bail!("exec needs a command (after the container id) or --process FILE");
    }
    // Defaults from the container's own process.
    let cfg: oci_spec::runtime::Spec = serde_json::from_slice(
        &std::fs::read(rt.root.join(id).join("config.json"))
            .context("reading the container's config")?,
    )?;
    let mut p = cfg.process().clone().unwrap_or_default();
    p.set_args(Some(args.to_vec()));
    p.set_terminal(Some(tty));
    if let Some(c) = cwd {
        p.set_cwd(c.clone());
    }
    let mut e = p.env().clone().unwrap_or_default();
    for kv in env {
        let key = kv.split('=').next().unwrap_or_default();
        e.retain(|x| x.split('=').next() != Some(key));
        e.push(kv.clone());
    }
    p.set_env(Some(e));
    if let Some(u) = user {
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a.parse::<u32>()?, b.parse::<u32>()?),
            None => (u.parse::<u32>().context("--user takes uid[:gid]")?, 0),
        };
        let mut usr = p.user().clone();
        usr.set_uid(uid);
        usr.set_gid(gid);
        p.set_user(usr);
    }
    if !gids.is_empty() {
        let mut usr = p.user().clone();
        usr.set_additional_gids(Some(gids.to_vec()));
        p.set_user(usr);
    }
    if !cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for c in cap {
            let name = c.trim_start_matches("CAP_");
            let oc: oci_spec::runtime::Capability =
                serde_json::from_value(serde_json::json!(format!("CAP_{name}")))
                    .with_context(|| format!("unknown capability {c}"))?;
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(oc);
                Some(s)
            };
            let (b, e, pm) = (
                add(caps.bounding()),
                add(caps.effective()),
                add(caps.permitted()),
            );
            caps.set_bounding(b);
            caps.set_effective(e);
            caps.set_permitted(pm);
        }
        p.set_capabilities(Some(caps));
    }
    if nnp {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

/// `ps -ef` (or the given ps options) limited to the container's pids, as runc prints it.
fn ps_table(pids: &[i32], ps_args: &[String]) -> Result<()> {
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("running ps")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Ok(());
    };
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .context("ps printed no PID column")?;
    println!("{header}");
    for l in lines {
        if let Some(p) = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
        {
            if pids.contains(&p) {
                println!("{l}");
            }
        }
    }
    Ok(())
}

/// Aligns tab-separated columns with three spaces of padding.
fn tabulate(s: &str) -> String {
    let rows: Vec<Vec<&str>> = s.lines().map(|l| l.split('\t').collect()).collect();
    let n = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        out.push('\n');
    }
    out
}

fn humantime_secs(s: &str) -> Result<std::time::Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().with_context(|| format!("bad interval {s:?}"))?;
    Ok(match unit {
        "" | "s" => std::time::Duration::from_secs(n),
        "ms" => std::time::Duration::from_millis(n),
        "m" => std::time::Duration::from_secs(n * 60),
        _ => bail!("bad interval {s:?}: use e.g. 5s, 500ms, 1m"),
    })
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes_as_runc_update_takes_them() {
        assert_eq!(parse_bytes("67108864"), Ok(67108864));
        assert_eq!(parse_bytes("50M"), Ok(50 << 20));
        assert_eq!(parse_bytes("50m"), Ok(50 << 20));
        assert_eq!(parse_bytes("10MB"), Ok(10 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("512k"), Ok(512 << 10));
        assert_eq!(parse_bytes("-1"), Ok(-1));
        assert!(parse_bytes("12x")
            .unwrap_err()
            .contains("unknown size suffix"));
        assert!(parse_bytes("lots").is_err());
    }
}
