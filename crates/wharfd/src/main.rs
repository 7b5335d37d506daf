//! wharfd: parses dockerd-style flags and daemon.json, takes the data-root lock, opens the
//! engine and serves the Engine API on every `-H` address.

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wharf_engine::{Engine, EngineConfig};

#[derive(Parser, Debug)]
#[command(
    name = "wharfd",
    version,
    about = "The wharf container engine daemon (Docker Engine API)"
)]
struct Flags {
    /// Address to listen on: unix:///path or tcp://host:port (repeatable)
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    /// Root of persistent state
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// Root of runtime state
    #[arg(long)]
    exec_root: Option<PathBuf>,
    /// Path of the pid file
    #[arg(short = 'p', long)]
    pidfile: Option<PathBuf>,
    /// Debug logging
    #[arg(short = 'D', long)]
    debug: bool,
    /// Log level: debug, info, warn, error
    #[arg(short = 'l', long)]
    log_level: Option<String>,
    /// daemon.json with the same keys as dockerd's where they apply
    #[arg(long, default_value = "/etc/wharf/daemon.json")]
    config_file: PathBuf,
    /// Runtime used when a container names none
    #[arg(long)]
    default_runtime: Option<String>,
    /// Register an OCI runtime: name=path (repeatable)
    #[arg(long = "add-runtime")]
    add_runtime: Vec<String>,
    /// The wharf-shim binary (default: next to wharfd, else on PATH)
    #[arg(long)]
    shim_path: Option<PathBuf>,
    /// Default log driver (json-file, none)
    #[arg(long)]
    log_driver: Option<String>,
    /// Parent cgroup of the containers
    #[arg(long)]
    cgroup_parent: Option<String>,
    /// Bridge for the default network, or "none" to disable it
    #[arg(short = 'b', long)]
    bridge: Option<String>,
    /// Gateway address and prefix of the default bridge
    #[arg(long)]
    bip: Option<String>,
    /// MTU of container interfaces
    #[arg(long)]
    mtu: Option<u32>,
    /// Serve tcp:// hosts without TLS (anyone who can connect is root on this host)
    #[arg(long)]
    insecure_tcp: bool,
    /// The init binary for --init (default: wharf-init next to wharfd, else on PATH)
    #[arg(long)]
    init_path: Option<PathBuf>,
    /// Default log options: key=value (repeatable)
    #[arg(long = "log-opt")]
    log_opts: Vec<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "kebab-case", default)]
struct DaemonJson {
    hosts: Vec<String>,
    data_root: Option<PathBuf>,
    exec_root: Option<PathBuf>,
    pidfile: Option<PathBuf>,
    debug: Option<bool>,
    log_level: Option<String>,
    default_runtime: Option<String>,
    runtimes: BTreeMap<String, RuntimeJson>,
    log_driver: Option<String>,
    log_opts: BTreeMap<String, String>,
    cgroup_parent: Option<String>,
    bridge: Option<String>,
    bip: Option<String>,
    mtu: Option<u32>,
}

#[derive(serde::Deserialize)]
struct RuntimeJson {
    path: PathBuf,
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Whether `p` is an ELF executable without a program interpreter (no dynamic loader needed):
/// the init is bind-mounted into images that have no libc.
fn is_static_elf(p: &Path) -> bool {
    let Ok(d) = std::fs::read(p) else {
        return false;
    };
    if d.len() < 64 || &d[..4] != b"\x7fELF" || d[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([d[o], d[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(d[32..40].try_into().expect("8 bytes")) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        // PT_INTERP = 3.
        o + 4 <= d.len() && u32::from_le_bytes(d[o..o + 4].try_into().expect("4 bytes")) != 3
    })
}

fn main() -> Result<()> {
    let f = Flags::parse();
    let file: DaemonJson = match std::fs::read(&f.config_file) {
        Ok(d) => serde_json::from_slice(&d)
            .with_context(|| format!("invalid daemon config {}", f.config_file.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DaemonJson::default(),
        Err(e) => return Err(e).context(format!("reading {}", f.config_file.display())),
    };
    let level = if f.debug || file.debug == Some(true) {
        "debug".to_string()
    } else {
        f.log_level
            .clone()
            .or(file.log_level.clone())
            .unwrap_or_else(|| "info".into())
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "wharf={level},wharfd={level},wharf_engine={level}"
        )))
        .with_writer(std::io::stderr)
        .init();

    let data_root = f
        .data_root
        .or(file.data_root)
        .unwrap_or_else(|| "/var/lib/wharf".into());
    let exec_root = f
        .exec_root
        .or(file.exec_root)
        .unwrap_or_else(|| "/run/wharf".into());
    let mut runtimes: BTreeMap<String, PathBuf> = BTreeMap::new();
    // "wharf" is wharf-runtime linked into the shim: always there, no binary to exec.
    runtimes.insert("wharf".into(), PathBuf::from("builtin"));
    for (name, bin) in [("runc", "runc"), ("crun", "crun")] {
        if let Some(p) = which(bin) {
            runtimes.insert(name.into(), p);
        }
    }
    for (k, v) in file.runtimes {
        runtimes.insert(k, v.path);
    }
    for r in &f.add_runtime {
        let (k, v) = r
            .split_once('=')
            .with_context(|| format!("--add-runtime {r}: expected name=path"))?;
        runtimes.insert(k.into(), v.into());
    }
    let default_runtime = f
        .default_runtime
        .or(file.default_runtime)
        .unwrap_or_else(|| "wharf".into());
    if !runtimes.contains_key(&default_runtime) {
        bail!("default runtime {default_runtime:?} is not installed: install it, pass --add-runtime {default_runtime}=/path/to/binary, or use the built-in --default-runtime wharf");
    }
    let shim_path = match f.shim_path {
        Some(p) => p,
        None => std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join("wharf-shim")))
            .filter(|p| p.is_file())
            .or_else(|| which("wharf-shim"))
            .context("wharf-shim not found next to wharfd nor on PATH: pass --shim-path")?,
    };
    let mut log_opts = file.log_opts;
    for o in &f.log_opts {
        let (k, v) = o
            .split_once('=')
            .with_context(|| format!("--log-opt {o}: expected key=value"))?;
        log_opts.insert(k.into(), v.into());
    }
    // Not Docker's 172.17.0.0/16, so both engines can run side by side.
    let bridge_name = f.bridge.or(file.bridge).unwrap_or_else(|| "wharf0".into());
    let bridge = if bridge_name == "none" {
        None
    } else {
        let bip = f.bip.or(file.bip).unwrap_or_else(|| "172.30.0.1/16".into());
        Some(wharf_net::BridgeConfig {
            subnet: wharf_net::Subnet::parse(&bip).with_context(|| format!("--bip {bip}"))?,
            name: bridge_name,
            state_dir: data_root.join("network"),
            mtu: f.mtu.or(file.mtu).unwrap_or(1500),
        })
    };
    let cfg = EngineConfig {
        data_root: data_root.clone(),
        exec_root,
        runtimes,
        default_runtime,
        shim_path,
        log_driver: f
            .log_driver
            .or(file.log_driver)
            .unwrap_or_else(|| "json-file".into()),
        log_opts,
        cgroup_parent: f
            .cgroup_parent
            .or(file.cgroup_parent)
            .unwrap_or_else(|| "/wharf".into()),
        bridge,
        init_path: f
            .init_path
            .clone()
            .or_else(|| {
                std::env::current_exe()
                    .ok()
                    .and_then(|e| e.parent().map(|d| d.join("wharf-init")))
                    .filter(|p| p.is_file())
                    .or_else(|| which("wharf-init"))
            })
            .filter(|p| {
                let ok = is_static_elf(p);
                if !ok {
                    tracing::warn!(
                        "{} is dynamically linked and cannot run in containers: --init is off (build it with scripts/build-init.sh)",
                        p.display()
                    );
                }
                ok
            }),
    };
    let mut hosts = if f.hosts.is_empty() {
        file.hosts
    } else {
        f.hosts
    };
    if hosts.is_empty() {
        hosts.push("unix:///run/wharf.sock".into());
    }

    std::fs::create_dir_all(&data_root)
        .with_context(|| format!("creating {}", data_root.display()))?;
    let lock_path = data_root.join("wharfd.lock");
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|_| {
            anyhow::anyhow!(
                "another wharfd is using {}: stop it, or pass a different --data-root",
                data_root.display()
            )
        })?;
    if let Some(p) = f.pidfile.or(file.pidfile) {
        std::fs::write(&p, std::process::id().to_string())
            .with_context(|| format!("writing pid file {}", p.display()))?;
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(cfg, hosts, f.insecure_tcp))
}

async fn serve(cfg: EngineConfig, hosts: Vec<String>, insecure_tcp: bool) -> Result<()> {
    if let Some(h) = hosts.iter().find(|h| h.starts_with("tcp://")) {
        if !insecure_tcp {
            bail!(
                "refusing to serve {h} without TLS: TLS listeners are not implemented yet; \
                 pass --insecure-tcp to accept that anyone who can connect is root on this host, \
                 or use a unix:// socket"
            );
        }
    }
    let engine = Engine::open(cfg).await.map_err(anyhow::Error::msg)?;
    let mut sockets = Vec::new();
    for h in &hosts {
        if let Some(path) = h.strip_prefix("unix://") {
            let path = PathBuf::from(path);
            if path.exists() {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing stale {}", path.display()))?;
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let l = tokio::net::UnixListener::bind(&path)
                .with_context(|| format!("listening on {h}"))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))?;
            if let Ok(Some(g)) = nix::unistd::Group::from_name("wharf") {
                let _ = nix::unistd::chown(&path, None, Some(g.gid));
            }
            tracing::info!("API listening on {h}");
            sockets.push(path);
            tokio::spawn(wharf_engine::http::serve_unix(engine.clone(), l));
        } else if let Some(addr) = h.strip_prefix("tcp://") {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {h}"))?;
            tracing::warn!(
                "API listening on {h} without TLS: anyone who can reach it is root on this host"
            );
            tokio::spawn(wharf_engine::http::serve_tcp(engine.clone(), l));
        } else {
            bail!("unsupported host {h:?}: use unix:///path or tcp://host:port");
        }
    }
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => tracing::info!("SIGHUP: nothing to reload yet"),
        }
    }
    tracing::info!("shutting down; containers keep running (live restore)");
    for s in sockets {
        let _ = std::fs::remove_file(s);
    }
    Ok(())
}
