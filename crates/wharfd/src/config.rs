//! wharfd's options: dockerd-style flags and daemon.json, and how the two combine (a flag wins
//! over the file). The same functions build the configuration at start and on SIGHUP, so a
//! reload means exactly what a restart with the new file would.

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wharf_engine::LiveConfig;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "wharfd",
    version,
    about = "The wharf container engine daemon (Docker Engine API)"
)]
pub struct Flags {
    /// Address to listen on: unix:///path or tcp://host:port (repeatable)
    #[arg(short = 'H', long = "host")]
    pub hosts: Vec<String>,
    /// Root of persistent state
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// Root of runtime state
    #[arg(long)]
    pub exec_root: Option<PathBuf>,
    /// Path of the pid file
    #[arg(short = 'p', long)]
    pub pidfile: Option<PathBuf>,
    /// Debug logging
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Log level: debug, info, warn, error, fatal
    #[arg(short = 'l', long)]
    pub log_level: Option<String>,
    /// daemon.json with the same keys as dockerd's where they apply (reloaded on SIGHUP)
    #[arg(long, default_value = "/etc/wharf/daemon.json")]
    pub config_file: PathBuf,
    /// Runtime used when a container names none
    #[arg(long)]
    pub default_runtime: Option<String>,
    /// Register an OCI runtime: name=path (repeatable)
    #[arg(long = "add-runtime")]
    pub add_runtime: Vec<String>,
    /// Set a daemon label: key=value (repeatable)
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// The wharf-shim binary (default: next to wharfd, else on PATH)
    #[arg(long)]
    pub shim_path: Option<PathBuf>,
    /// Default log driver (json-file, none)
    #[arg(long)]
    pub log_driver: Option<String>,
    /// Parent cgroup of the containers
    #[arg(long)]
    pub cgroup_parent: Option<String>,
    /// Bridge for the default network, or "none" to disable it
    #[arg(short = 'b', long)]
    pub bridge: Option<String>,
    /// Gateway address and prefix of the default bridge
    #[arg(long)]
    pub bip: Option<String>,
    /// MTU of container interfaces
    #[arg(long)]
    pub mtu: Option<u32>,
    /// Serve tcp:// hosts without TLS (anyone who can connect is root on this host)
    #[arg(long)]
    pub insecure_tcp: bool,
    /// Use TLS on tcp:// hosts; implied by --tlsverify
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tls: Option<bool>,
    /// Use TLS and require client certificates signed by --tlscacert (default: $DOCKER_TLS_VERIFY set)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tlsverify: Option<bool>,
    /// Trust client certificates signed only by this CA (default: $DOCKER_CERT_PATH/ca.pem, ~/.docker/ca.pem)
    #[arg(long)]
    pub tlscacert: Option<PathBuf>,
    /// The server's TLS certificate (default: $DOCKER_CERT_PATH/cert.pem, ~/.docker/cert.pem)
    #[arg(long)]
    pub tlscert: Option<PathBuf>,
    /// The server's TLS key (default: $DOCKER_CERT_PATH/key.pem, ~/.docker/key.pem)
    #[arg(long)]
    pub tlskey: Option<PathBuf>,
    /// The init binary for --init, statically linked (default: the wharf-init built into wharfd)
    #[arg(long)]
    pub init_path: Option<PathBuf>,
    /// Default log options: key=value (repeatable)
    #[arg(long = "log-opt")]
    pub log_opts: Vec<String>,
    /// A registry (host[:port] or CIDR) to reach over plain HTTP or unverified TLS
    /// (repeatable; loopback registries always are)
    #[arg(long = "insecure-registry")]
    pub insecure_registries: Vec<String>,
    /// Where networks created without --subnet get one: base=CIDR,size=N (repeatable)
    #[arg(long = "default-address-pool")]
    pub default_address_pools: Vec<String>,
    /// A mirror of docker.io to try first: http(s)://host[:port] (repeatable)
    #[arg(long = "registry-mirror")]
    pub registry_mirrors: Vec<String>,
    /// Layers downloaded at once by each pull (default 3)
    #[arg(long = "max-concurrent-downloads")]
    pub max_concurrent_downloads: Option<usize>,
    /// Run containers in a user namespace: default (the dockremap user, made when missing),
    /// user[:group] or uid[:gid], whose /etc/subuid and /etc/subgid ranges are used
    #[arg(long = "userns-remap")]
    pub userns_remap: Option<String>,
    /// Also serve the Kubernetes CRI (runtime.v1, gRPC) on this unix socket, e.g.
    /// /run/wharf/cri.sock (off by default)
    #[arg(long = "cri-socket")]
    pub cri_socket: Option<PathBuf>,
}

/// daemon.json: dockerd's keys that wharfd knows.
#[derive(serde::Deserialize, Default, Debug)]
#[serde(rename_all = "kebab-case", default)]
pub struct DaemonJson {
    pub hosts: Vec<String>,
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
    pub debug: Option<bool>,
    pub log_level: Option<String>,
    pub labels: Vec<String>,
    pub default_runtime: Option<String>,
    pub runtimes: BTreeMap<String, RuntimeJson>,
    pub log_driver: Option<String>,
    pub log_opts: BTreeMap<String, String>,
    pub cgroup_parent: Option<String>,
    pub bridge: Option<String>,
    pub bip: Option<String>,
    pub mtu: Option<u32>,
    pub tls: Option<bool>,
    pub tlsverify: Option<bool>,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
    pub insecure_registries: Vec<String>,
    pub default_address_pools: Vec<AddressPool>,
    pub registry_mirrors: Vec<String>,
    pub max_concurrent_downloads: Option<usize>,
    pub userns_remap: Option<String>,
    pub cri_socket: Option<PathBuf>,
}

/// One of daemon.json's `default-address-pools`.
#[derive(serde::Deserialize, Debug, Clone)]
pub struct AddressPool {
    pub base: String,
    pub size: u8,
}

/// `default-address-pools` from the flags (`base=CIDR,size=N`) or else the file, checked:
/// an IPv4 CIDR whose prefix is no longer than `size`, and `size` at most 30.
pub fn address_pools(f: &Flags, file: &DaemonJson) -> Result<Option<Vec<(String, u8)>>> {
    let mut pools = Vec::new();
    for p in &f.default_address_pools {
        let mut base = None;
        let mut size = None;
        for kv in p.split(',') {
            match kv.split_once('=') {
                Some(("base", v)) => base = Some(v.to_string()),
                Some(("size", v)) => size = v.parse::<u8>().ok(),
                _ => bail!("--default-address-pool {p:?}: expected base=CIDR,size=N"),
            }
        }
        match (base, size) {
            (Some(b), Some(s)) => pools.push(AddressPool { base: b, size: s }),
            _ => bail!("--default-address-pool {p:?}: expected base=CIDR,size=N"),
        }
    }
    if pools.is_empty() {
        pools = file.default_address_pools.clone();
    }
    if pools.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for p in pools {
        let prefix = p
            .base
            .split_once('/')
            .and_then(|(ip, bits)| {
                Some((
                    ip.parse::<std::net::Ipv4Addr>().ok()?,
                    bits.parse::<u8>().ok()?,
                ))
            })
            .map(|(_, bits)| bits)
            .with_context(|| {
                format!(
                    "default address pool base {:?} is not an IPv4 CIDR such as 10.10.0.0/16",
                    p.base
                )
            })?;
        if p.size < prefix || p.size > 30 {
            bail!(
                "default address pool {}: size {} must be between the base's prefix /{prefix} and 30",
                p.base,
                p.size
            );
        }
        out.push((p.base, p.size));
    }
    Ok(Some(out))
}

#[derive(serde::Deserialize, Debug)]
pub struct RuntimeJson {
    pub path: PathBuf,
}

/// Reads daemon.json; a missing file is an empty one.
pub fn load_file(path: &Path) -> Result<DaemonJson> {
    match std::fs::read(path) {
        Ok(d) => serde_json::from_slice(&d).with_context(|| {
            format!(
                "invalid daemon config {}: fix the JSON (keys as in dockerd's daemon.json)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DaemonJson::default()),
        Err(e) => Err(e).context(format!("reading {}", path.display())),
    }
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The tracing level: `debug` when debug is on, else the log level (default info).
pub fn log_level(f: &Flags, file: &DaemonJson) -> Result<&'static str> {
    if f.debug || file.debug == Some(true) {
        return Ok("debug");
    }
    let l = f
        .log_level
        .as_deref()
        .or(file.log_level.as_deref())
        .unwrap_or("info");
    Ok(match l.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" | "fatal" | "panic" => "error",
        _ => bail!("unknown log level {l:?}: use debug, info, warn, error or fatal"),
    })
}

/// The tracing filter for `level` (one of `log_level`'s answers).
pub fn log_filter(level: &str) -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::new(format!("wharf={level},wharfd={level},wharf_engine={level}"))
}

/// What SIGHUP reloads: debug, labels, runtimes, default runtime, default log options.
pub fn live(f: &Flags, file: &DaemonJson) -> Result<LiveConfig> {
    let mut runtimes: BTreeMap<String, PathBuf> = BTreeMap::new();
    // "wharf" is wharf-runtime linked into the shim: always there, no binary to exec.
    runtimes.insert("wharf".into(), PathBuf::from("builtin"));
    for (name, bin) in [("runc", "runc"), ("crun", "crun")] {
        if let Some(p) = which(bin) {
            runtimes.insert(name.into(), p);
        }
    }
    for (k, v) in &file.runtimes {
        if v.path.as_os_str().is_empty() {
            bail!("runtime {k:?} in daemon.json has no \"path\"");
        }
        runtimes.insert(k.clone(), v.path.clone());
    }
    for r in &f.add_runtime {
        let (k, v) = r
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .with_context(|| format!("--add-runtime {r}: expected name=path"))?;
        runtimes.insert(k.into(), v.into());
    }
    let default_runtime = f
        .default_runtime
        .clone()
        .or(file.default_runtime.clone())
        .unwrap_or_else(|| "wharf".into());
    if !runtimes.contains_key(&default_runtime) {
        bail!("default runtime {default_runtime:?} is not installed: install it, add it to \"runtimes\" in daemon.json or pass --add-runtime {default_runtime}=/path/to/binary, or use the built-in runtime \"wharf\"");
    }
    let mut log_opts = file.log_opts.clone();
    for o in &f.log_opts {
        let (k, v) = o
            .split_once('=')
            .with_context(|| format!("--log-opt {o}: expected key=value"))?;
        log_opts.insert(k.into(), v.into());
    }
    let mut labels = Vec::new();
    for l in file.labels.iter().chain(&f.labels) {
        match l.split_once('=') {
            Some((k, _)) if !k.trim().is_empty() => {}
            _ => bail!("label {l:?} is not valid: labels are key=value"),
        }
        if !labels.contains(l) {
            labels.push(l.clone());
        }
    }
    let mut insecure_registries = Vec::new();
    for r in file
        .insecure_registries
        .iter()
        .chain(&f.insecure_registries)
    {
        let r = r
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/');
        if r.is_empty()
            || r.contains('/')
                && r.split_once('/')
                    .is_none_or(|(_, b)| b.parse::<u8>().is_err())
        {
            bail!("insecure registry {r:?} is not valid: give host[:port] or a CIDR such as 10.0.0.0/8");
        }
        if !insecure_registries.iter().any(|x| x == r) {
            insecure_registries.push(r.to_string());
        }
    }
    let mut registry_mirrors = Vec::new();
    for m in file.registry_mirrors.iter().chain(&f.registry_mirrors) {
        let m = m.trim_end_matches('/');
        let host = m
            .strip_prefix("https://")
            .or_else(|| m.strip_prefix("http://"))
            .filter(|h| !h.is_empty() && !h.contains('/'))
            .with_context(|| {
                format!("registry mirror {m:?} is not valid: give http(s)://host[:port]")
            })?;
        let _ = host;
        if !registry_mirrors.iter().any(|x| x == m) {
            registry_mirrors.push(m.to_string());
        }
    }
    let max_concurrent_downloads = f
        .max_concurrent_downloads
        .or(file.max_concurrent_downloads)
        .unwrap_or(3);
    if max_concurrent_downloads == 0 {
        bail!("max-concurrent-downloads must be at least 1 (dockerd's default is 3)");
    }
    Ok(LiveConfig {
        max_concurrent_downloads,
        debug: f.debug || file.debug == Some(true),
        labels,
        runtimes,
        default_runtime,
        log_opts,
        insecure_registries,
        registry_mirrors,
    })
}

/// `--userns-remap` or else daemon.json's `userns-remap`; empty is off, as with dockerd.
pub fn userns_remap(f: &Flags, file: &DaemonJson) -> Option<String> {
    f.userns_remap
        .clone()
        .or(file.userns_remap.clone())
        .filter(|s| !s.is_empty())
}

/// `--cri-socket` or else daemon.json's `cri-socket`: None (the CRI is off) when neither or
/// empty. An absolute path, not one of the Engine API's sockets.
pub fn cri_socket(f: &Flags, file: &DaemonJson, hosts: &[String]) -> Result<Option<PathBuf>> {
    let Some(p) = f
        .cri_socket
        .clone()
        .or(file.cri_socket.clone())
        .filter(|p| !p.as_os_str().is_empty())
    else {
        return Ok(None);
    };
    let p = match p.to_str().and_then(|s| s.strip_prefix("unix://")) {
        Some(s) => PathBuf::from(s),
        None => p,
    };
    if !p.is_absolute() {
        bail!(
            "cri-socket {}: give an absolute path such as /run/wharf/cri.sock",
            p.display()
        );
    }
    if hosts
        .iter()
        .filter_map(|h| h.strip_prefix("unix://"))
        .any(|h| Path::new(h) == p)
    {
        bail!(
            "cri-socket {} is also an Engine API host (-H): give the CRI a socket of its own",
            p.display()
        );
    }
    Ok(Some(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        Flags::parse_from(std::iter::once("wharfd").chain(args.iter().copied()))
    }

    #[test]
    fn default_address_pools_from_flags_or_file() {
        let file: DaemonJson = serde_json::from_str(
            r#"{"default-address-pools": [{"base": "10.123.0.0/16", "size": 24}]}"#,
        )
        .unwrap();
        assert_eq!(
            address_pools(&flags(&[]), &file).unwrap(),
            Some(vec![("10.123.0.0/16".to_string(), 24)])
        );
        assert_eq!(
            address_pools(
                &flags(&["--default-address-pool", "base=10.9.0.0/16,size=28"]),
                &file
            )
            .unwrap(),
            Some(vec![("10.9.0.0/16".to_string(), 28)])
        );
        assert_eq!(
            address_pools(&flags(&[]), &DaemonJson::default()).unwrap(),
            None
        );
        for bad in [
            "base=10.0.0.0/16",
            "base=nope,size=24",
            "base=10.0.0.0/16,size=8",
        ] {
            assert!(
                address_pools(&flags(&["--default-address-pool", bad]), &file).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn insecure_registries_from_flags_and_file() {
        let file: DaemonJson =
            serde_json::from_str(r#"{"insecure-registries": ["reg.lan:5000", "10.0.0.0/8"]}"#)
                .unwrap();
        let l = live(&flags(&["--insecure-registry", "http://other:80/"]), &file).unwrap();
        assert_eq!(
            l.insecure_registries,
            vec!["reg.lan:5000", "10.0.0.0/8", "other:80"]
        );
        assert!(l.is_insecure_registry("10.9.8.7:5000"));
        let bad: DaemonJson =
            serde_json::from_str(r#"{"insecure-registries": ["a/b/c"]}"#).unwrap();
        assert!(live(&flags(&[]), &bad).is_err());
    }

    #[test]
    fn max_concurrent_downloads_from_flags_or_file() {
        let file: DaemonJson = serde_json::from_str(r#"{"max-concurrent-downloads": 5}"#).unwrap();
        assert_eq!(
            live(&flags(&[]), &file).unwrap().max_concurrent_downloads,
            5
        );
        let l = live(&flags(&["--max-concurrent-downloads", "1"]), &file).unwrap();
        assert_eq!(l.max_concurrent_downloads, 1);
        let none = DaemonJson::default();
        assert_eq!(
            live(&flags(&[]), &none).unwrap().max_concurrent_downloads,
            3
        );
        assert!(live(&flags(&["--max-concurrent-downloads", "0"]), &none).is_err());
    }

    #[test]
    fn userns_remap_from_flag_or_file() {
        let file: DaemonJson = serde_json::from_str(r#"{"userns-remap": "default"}"#).unwrap();
        assert_eq!(userns_remap(&flags(&[]), &file).as_deref(), Some("default"));
        assert_eq!(
            userns_remap(&flags(&["--userns-remap", "u:g"]), &file).as_deref(),
            Some("u:g")
        );
        let off: DaemonJson = serde_json::from_str(r#"{"userns-remap": ""}"#).unwrap();
        assert_eq!(userns_remap(&flags(&[]), &off), None);
        assert_eq!(userns_remap(&flags(&[]), &DaemonJson::default()), None);
    }

    #[test]
    fn cri_socket_from_flag_or_file() {
        let file: DaemonJson =
            serde_json::from_str(r#"{"cri-socket": "/run/wharf/cri.sock"}"#).unwrap();
        let hosts = ["unix:///run/wharf.sock".to_string()];
        assert_eq!(
            cri_socket(&flags(&[]), &file, &hosts).unwrap(),
            Some(PathBuf::from("/run/wharf/cri.sock"))
        );
        assert_eq!(
            cri_socket(
                &flags(&["--cri-socket", "unix:///tmp/c.sock"]),
                &file,
                &hosts
            )
            .unwrap(),
            Some(PathBuf::from("/tmp/c.sock"))
        );
        assert_eq!(
            cri_socket(&flags(&[]), &DaemonJson::default(), &hosts).unwrap(),
            None
        );
        assert!(cri_socket(&flags(&["--cri-socket", "cri.sock"]), &file, &hosts).is_err());
        assert!(cri_socket(&flags(&["--cri-socket", "/run/wharf.sock"]), &file, &hosts).is_err());
    }

    #[test]
    fn flags_win_over_the_file() {
        let file: DaemonJson =
            serde_json::from_str(r#"{"labels": ["a=1"], "log-level": "warn", "debug": false}"#)
                .unwrap();
        let l = live(&flags(&["--label", "b=2"]), &file).unwrap();
        assert_eq!(l.labels, vec!["a=1".to_string(), "b=2".to_string()]);
        assert!(!l.debug);
        assert_eq!(log_level(&flags(&[]), &file).unwrap(), "warn");
        assert_eq!(log_level(&flags(&["-l", "error"]), &file).unwrap(), "error");
        assert_eq!(log_level(&flags(&["-D"]), &file).unwrap(), "debug");
    }

    #[test]
    fn invalid_values_are_refused() {
        let bad_label: DaemonJson = serde_json::from_str(r#"{"labels": ["nokey"]}"#).unwrap();
        assert!(live(&flags(&[]), &bad_label).is_err());
        let bad_rt: DaemonJson = serde_json::from_str(r#"{"default-runtime": "nope"}"#).unwrap();
        assert!(live(&flags(&[]), &bad_rt).is_err());
        let bad_level: DaemonJson = serde_json::from_str(r#"{"log-level": "loud"}"#).unwrap();
        assert!(log_level(&flags(&[]), &bad_level).is_err());
    }

    #[test]
    fn tls_flags_take_optional_values() {
        assert_eq!(flags(&["--tlsverify"]).tlsverify, Some(true));
        assert_eq!(flags(&["--tlsverify=false"]).tlsverify, Some(false));
        assert_eq!(flags(&[]).tls, None);
        let f: DaemonJson =
            serde_json::from_str(r#"{"tls": true, "tlsverify": true, "tlscacert": "/c.pem"}"#)
                .unwrap();
        assert_eq!(f.tlscacert.as_deref(), Some(Path::new("/c.pem")));
    }
}
