//! wharfd: parses dockerd-style flags and daemon.json, takes the data-root lock, opens the
//! engine and serves the Engine API on every `-H` address.

mod config;
mod reload;
mod tls;

use anyhow::{bail, Context, Result};
use clap::Parser;
use config::{which, Flags};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use wharf_engine::{Engine, EngineConfig, LiveConfig};

/// The init for `--init`: `--init-path` if it needs no dynamic loader (it is bind-mounted into
/// images that have no libc), else the static wharf-init embedded in wharfd, written to
/// `<exec-root>/wharf-init`. None (with a warning: `--init` is then refused) when neither.
fn init_path(flag: Option<&Path>, exec_root: &Path) -> Option<PathBuf> {
    if let Some(p) = flag {
        if std::fs::read(p).is_ok_and(|d| wharf_init::is_static_elf(&d)) {
            return Some(p.to_path_buf());
        }
        tracing::warn!(
            "--init-path {}: not a statically linked executable, it cannot run in containers: --init is off",
            p.display()
        );
        return None;
    }
    match wharf_init::install(exec_root) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!("{e}: --init is off");
            None
        }
    }
}

fn main() -> Result<()> {
    let f = Flags::parse();
    let file = config::load_file(&f.config_file)?;
    let level = config::log_level(&f, &file)?;
    let (filter, filter_handle) = tracing_subscriber::reload::Layer::new(config::log_filter(level));
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .init();

    let data_root = f
        .data_root
        .clone()
        .or(file.data_root.clone())
        .unwrap_or_else(|| "/var/lib/wharf".into());
    let userns = match config::userns_remap(&f, &file) {
        Some(spec) => {
            let r = wharf_engine::userns::resolve(&spec, &Default::default())?;
            let (u, g) = r.root();
            tracing::info!(
                "user namespace remapping on: {}:{} (container root is {u}:{g} on the host)",
                r.user,
                r.group
            );
            Some(r)
        }
        None => None,
    };
    let outer_data_root = data_root.clone();
    let data_root = match &userns {
        Some(r) => r.data_root(&data_root),
        None => data_root,
    };
    let exec_root = f
        .exec_root
        .clone()
        .or(file.exec_root.clone())
        .unwrap_or_else(|| "/run/wharf".into());
    let live = config::live(&f, &file)?;
    let tls = match tls::options(&f, &file) {
        Some(o) => Some((tls::server_config(&o)?, o.verify)),
        None => None,
    };
    let shim_path = match f.shim_path.clone() {
        Some(p) => p,
        None => std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join("wharf-shim")))
            .filter(|p| p.is_file())
            .or_else(|| which("wharf-shim"))
            .context("wharf-shim not found next to wharfd nor on PATH: pass --shim-path")?,
    };
    // Not Docker's 172.17.0.0/16, so both engines can run side by side.
    let bridge_name = f
        .bridge
        .clone()
        .or(file.bridge.clone())
        .unwrap_or_else(|| "wharf0".into());
    let bridge = if bridge_name == "none" {
        None
    } else {
        let bip = f
            .bip
            .clone()
            .or(file.bip.clone())
            .unwrap_or_else(|| "172.30.0.1/16".into());
        Some(wharf_net::BridgeConfig {
            subnet: wharf_net::Subnet::parse(&bip).with_context(|| format!("--bip {bip}"))?,
            name: bridge_name,
            state_dir: data_root.join("network"),
            mtu: f.mtu.or(file.mtu).unwrap_or(1500),
        })
    };
    let cfg = EngineConfig {
        data_root: data_root.clone(),
        exec_root: exec_root.clone(),
        shim_path,
        log_driver: f
            .log_driver
            .clone()
            .or(file.log_driver.clone())
            .unwrap_or_else(|| "json-file".into()),
        cgroup_parent: f
            .cgroup_parent
            .clone()
            .or(file.cgroup_parent.clone())
            .unwrap_or_else(|| "/wharf".into()),
        bridge,
        address_pools: config::address_pools(&f, &file)?,
        init_path: init_path(f.init_path.as_deref(), &exec_root),
        userns: userns.clone(),
    };
    let mut hosts = if f.hosts.is_empty() {
        file.hosts.clone()
    } else {
        f.hosts.clone()
    };
    if hosts.is_empty() {
        hosts.push("unix:///run/wharf.sock".into());
    }
    let cri = config::cri_socket(&f, &file, &hosts)?;

    match &userns {
        None => wharf_engine::roots::secure_roots(&data_root, &cfg.exec_root)
            .map_err(anyhow::Error::msg)?,
        Some(r) => wharf_engine::userns::secure_roots(r, &outer_data_root, &cfg.exec_root)?,
    }
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
    if let Some(p) = f.pidfile.clone().or(file.pidfile.clone()) {
        std::fs::write(&p, std::process::id().to_string())
            .with_context(|| format!("writing pid file {}", p.display()))?;
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(serve(cfg, live, hosts, cri, tls, f, filter_handle))
}

/// The address to bind for a `tcp://` host; without a port, dockerd's 2375 (2376 with TLS).
fn tcp_addr(h: &str, tls: bool) -> Result<String> {
    let a = h.trim_start_matches("tcp://").trim_end_matches('/');
    if a.is_empty() {
        bail!("invalid host {h:?}: expected tcp://host:port");
    }
    let has_port = match a.rsplit_once(':') {
        Some((host, _)) => !a.starts_with('[') || host.ends_with(']'),
        None => false,
    };
    let port = if tls { 2376 } else { 2375 };
    Ok(if has_port {
        a.to_string()
    } else {
        format!("{a}:{port}")
    })
}

async fn serve(
    cfg: EngineConfig,
    live: LiveConfig,
    hosts: Vec<String>,
    cri: Option<PathBuf>,
    tls: Option<(Arc<rustls::ServerConfig>, bool)>,
    flags: Flags,
    filter: reload::FilterHandle,
) -> Result<()> {
    if let Some(h) = hosts.iter().find(|h| h.starts_with("tcp://")) {
        if tls.is_none() && !flags.insecure_tcp {
            bail!(
                "refusing to serve {h} without TLS: anyone who can connect would be root on this host. \
                 Pass --tlsverify with --tlscacert, --tlscert and --tlskey (clients then need a \
                 certificate signed by that CA), or --insecure-tcp to accept the risk, or use a unix:// socket"
            );
        }
    }
    let engine = Engine::open(cfg, live).await.map_err(anyhow::Error::msg)?;
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
        } else if h.starts_with("tcp://") {
            let addr = tcp_addr(h, tls.is_some())?;
            let l = tokio::net::TcpListener::bind(&addr)
                .await
                .with_context(|| format!("listening on {h}"))?;
            match &tls {
                Some((t, verify)) => {
                    if *verify {
                        tracing::info!(
                            "API listening on tcp://{addr} (TLS, client certificates required)"
                        );
                    } else {
                        tracing::warn!(
                            "API listening on tcp://{addr} with TLS but without --tlsverify: \
                             any client that can reach it is root on this host"
                        );
                    }
                    tokio::spawn(tls::serve(engine.clone(), l, t.clone()));
                }
                None => {
                    tracing::warn!(
                        "API listening on tcp://{addr} without TLS: anyone who can reach it is root on this host"
                    );
                    tokio::spawn(wharf_engine::http::serve_tcp(engine.clone(), l));
                }
            }
        } else {
            bail!("unsupported host {h:?}: use unix:///path or tcp://host:port");
        }
    }
    if let Some(path) = cri {
        let cfg = wharf_cri::CriConfig {
            socket: path.clone(),
        };
        let l = wharf_cri::bind(&cfg)?;
        if let Ok(Some(g)) = nix::unistd::Group::from_name("wharf") {
            let _ = nix::unistd::chown(&path, None, Some(g.gid));
        }
        tracing::info!("CRI (runtime.v1) listening on unix://{}", path.display());
        sockets.push(path);
        let engine = engine.clone();
        tokio::spawn(async move {
            if let Err(e) = wharf_cri::serve(engine, cfg, l).await {
                tracing::error!("{e}");
            }
        });
    }
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let reloader = reload::Reloader {
        flags,
        filter,
        engine,
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => reloader.on_sighup(),
        }
    }
    tracing::info!("shutting down; containers keep running (live restore)");
    for s in sockets {
        let _ = std::fs::remove_file(s);
    }
    Ok(())
}
