//! The engine: containers, their shims and lifecycle, execs, and the image service.

use crate::config::{EngineConfig, LiveConfig};
use crate::container::{
    self, Container, Record, State, Status, StoredConfig, StoredHostConfig, ZERO_TIME,
};
use crate::events::Events;
use crate::names;
use crate::shim;
use crate::spec;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Notify;

pub mod exec_sync;
pub(crate) mod filters;
mod healthcheck;
mod links;
mod networking;
pub use networking::net_error;
use wharf_api::types::{CreateRequest, ExecConfig, HostConfig};
use wharf_api::ApiError;
use wharf_image::ImageStore;
use wharf_shim::proto::{ExitStatus, Request};

/// An exec instance (`docker exec`).
pub struct ExecInstance {
    pub id: String,
    pub container: String,
    pub config: ExecConfig,
    pub state: Mutex<ExecState>,
}

/// What an exec did.
#[derive(Debug, Clone, Default)]
pub struct ExecState {
    pub running: bool,
    pub pid: i32,
    pub exit_code: Option<i32>,
}

/// What `POST /commit` asks for besides the container.
#[derive(Debug, Default)]
pub struct CommitOptions {
    /// `repo[:tag]` to tag the new image with.
    pub reference: Option<String>,
    pub comment: String,
    pub author: String,
    /// Dockerfile instructions (`--change`) applied to the config.
    pub changes: Vec<String>,
    /// A `Config` object whose set fields replace the container's.
    pub overrides: Option<Value>,
    /// Freeze a running container while its layer is read.
    pub pause: bool,
}

/// The daemon's core.
pub struct Engine {
    pub cfg: EngineConfig,
    /// What SIGHUP may change; read with `live()`.
    live: RwLock<Arc<LiveConfig>>,
    pub images: Arc<ImageStore>,
    pub events: Events,
    containers: RwLock<HashMap<String, Arc<Container>>>,
    execs: Mutex<HashMap<String, Arc<ExecInstance>>>,
    create_lock: tokio::sync::Mutex<()>,
    attach_done: Notify,
    /// Networks, their IPAM, published ports and the embedded DNS.
    pub networks: wharf_net::Networks,
    pub volumes: crate::volumes::Volumes,
    /// Which registry blobs hold which layers (for cross-repository mounts on push).
    pub blob_sources: crate::blobsources::BlobSources,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn internal<E: std::fmt::Display>(e: E) -> ApiError {
    ApiError::internal(e.to_string())
}

/// Maps an image-store error to the API's status codes.
pub fn image_error(e: wharf_image::Error) -> ApiError {
    if e.is_not_found() {
        ApiError::not_found(e.to_string())
    } else if e.is_conflict() {
        ApiError::conflict(e.to_string())
    } else if e.is_invalid_input() {
        ApiError::bad_request(e.to_string())
    } else {
        ApiError::internal(e.to_string())
    }
}

/// `SIGTERM`, `TERM`, `15` → 15.
pub fn parse_signal(s: &str) -> Result<i32, ApiError> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| ApiError::bad_request(format!("Invalid signal: {s}")))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(internal)
}

impl Engine {
    /// Opens the stores under the data root and restores the containers (live restore).
    pub async fn open(cfg: EngineConfig, live: LiveConfig) -> Result<Arc<Engine>, String> {
        match &cfg.userns {
            None => crate::roots::secure_roots(&cfg.data_root, &cfg.exec_root)?,
            Some(remap) => {
                let outer = cfg.data_root.parent().unwrap_or(&cfg.data_root);
                crate::userns::secure_roots(remap, outer, &cfg.exec_root)
                    .map_err(|e| e.to_string())?;
            }
        }
        crate::roots::fix_state_files(&cfg.data_root, &cfg.exec_root);
        for d in [
            cfg.data_root.join("containers"),
            cfg.exec_root.join("containers"),
            cfg.exec_root.join("s"),
        ] {
            std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        if let Some(remap) = &cfg.userns {
            // The remapped root traverses the exec root to the containers' rootfs and nothing
            // else: the shims' sockets and the runtime's state stay root's.
            let gid = remap.root().1;
            let containers = cfg.exec_root.join("containers");
            crate::userns::own_dir(&containers, crate::roots::DATA_ROOT_MODE, gid)
                .map_err(|e| e.to_string())?;
            for d in [cfg.exec_root.join("s"), cfg.exec_root.join("runtime")] {
                crate::roots::secure_dir(&d, crate::roots::EXEC_ROOT_MODE)
                    .map_err(|e| format!("{}: {e}", d.display()))?;
            }
        }
        let root = cfg.data_root.clone();
        let ids = cfg.userns.as_ref().map(|r| r.ids.clone());
        let images = tokio::task::spawn_blocking(move || ImageStore::open_mapped(&root, ids))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("opening the image store: {e}"))?;
        let mut containers = HashMap::new();
        if let Ok(rd) = std::fs::read_dir(cfg.data_root.join("containers")) {
            for e in rd.flatten() {
                match Container::load(&e.path()) {
                    Ok(c) => {
                        containers.insert(c.id.clone(), Arc::new(c));
                    }
                    Err(err) => tracing::warn!("skipping {}: {err}", e.path().display()),
                }
            }
        }
        let mut net_cfg =
            wharf_net::NetConfig::new(cfg.data_root.join("network"), cfg.bridge.clone());
        if let Some(p) = &cfg.address_pools {
            net_cfg.pools = p.clone();
        }
        let networks =
            wharf_net::Networks::open(net_cfg).map_err(|e| format!("opening the networks: {e}"))?;
        let mut volumes = crate::volumes::Volumes::open(cfg.data_root.join("volumes"))?;
        volumes.set_owner(cfg.userns.as_ref().map(|r| r.root()));
        let engine = Arc::new(Engine {
            volumes,
            blob_sources: crate::blobsources::BlobSources::open(&cfg.data_root),
            networks,
            cfg,
            live: RwLock::new(Arc::new(live)),
            images: Arc::new(images),
            events: Events::default(),
            containers: RwLock::new(containers),
            execs: Mutex::new(HashMap::new()),
            create_lock: tokio::sync::Mutex::new(()),
            attach_done: Notify::new(),
        });
        engine.restore().await;
        engine.restore_networking();
        // What builds cut off by a crash left: step containers, layers, contexts.
        crate::build::clean_leftovers(&engine).await;
        let _ =
            std::fs::remove_dir_all(crate::build::build_root(&engine.cfg.data_root).join("tmp"));
        Ok(engine)
    }

    /// Reconnects to the shims of live containers; records exits that happened meanwhile.
    async fn restore(self: &Arc<Self>) {
        let all: Vec<Arc<Container>> = self.all();
        for c in all {
            let rec = c.snapshot();
            let sdir = self.state_dir(&c.id);
            if rec.state.status.is_live() || rec.state.status == Status::Restarting {
                match shim::call(&sdir, &Request::State).await {
                    Ok(s) if !s.starts_with("exited") => {
                        tracing::info!("reconnected to container {}", &c.id[..12]);
                        self.spawn_monitor(c.clone());
                        if let Some(cfg) = Self::health_config(&c) {
                            // The recorded status stands; probing goes on.
                            self.spawn_health(c.clone(), cfg);
                        }
                    }
                    _ => {
                        let st = shim::read_exit_file(&sdir).unwrap_or(ExitStatus {
                            code: 255,
                            oom_killed: false,
                            finished_at: now(),
                        });
                        self.handle_exit(&c, st).await;
                    }
                }
            } else {
                // Not running: nothing may stay mounted.
                let _ = self.images.layers().unmount_rw(&c.id, &sdir.join("rootfs"));
            }
        }
        self.release_unused_volumes();
    }

    /// `/proc/<pid>/ns/<kind>` of the running container `other` (`--ipc`/`--pid container:`).
    fn container_ns(&self, other: &str, kind: &str) -> Result<String, ApiError> {
        let o = self.lookup(other)?;
        let orec = o.snapshot();
        if !orec.state.status.is_live() || orec.state.pid <= 0 {
            return Err(ApiError::conflict(format!(
                "cannot join the {kind} namespace of a non running container: {}",
                o.id
            )));
        }
        Ok(format!("/proc/{}/ns/{kind}", orec.state.pid))
    }

    /// The user-namespace mapping container processes get: the daemon's `--userns-remap`,
    /// unless the container opted out with `--userns host`.
    pub fn id_map(&self, hc: &HostConfig) -> Option<&wharf_image::IdMap> {
        self.cfg
            .userns
            .as_ref()
            .filter(|_| hc.userns_mode != "host")
            .map(|r| &r.ids)
    }

    /// [`Self::id_map`] of container `c`.
    pub fn container_id_map(&self, c: &Container) -> Option<wharf_image::IdMap> {
        c.with_record(|r| self.id_map(&r.host_config).cloned())
    }

    fn state_dir(&self, id: &str) -> PathBuf {
        shim::state_dir(&self.cfg.exec_root, id)
    }

    pub fn all(&self) -> Vec<Arc<Container>> {
        self.containers
            .read()
            .expect("containers lock")
            .values()
            .cloned()
            .collect()
    }

    /// Finds a container by full id, name, or unique id prefix.
    pub fn lookup(&self, key: &str) -> Result<Arc<Container>, ApiError> {
        let map = self.containers.read().expect("containers lock");
        if let Some(c) = map.get(key) {
            return Ok(c.clone());
        }
        let name = format!("/{}", key.trim_start_matches('/'));
        if let Some(c) = map.values().find(|c| c.name() == name) {
            return Ok(c.clone());
        }
        let matches: Vec<_> = map.values().filter(|c| c.id.starts_with(key)).collect();
        match matches.len() {
            1 if !key.is_empty() => Ok(matches[0].clone()),
            n if n > 1 => Err(ApiError::bad_request(format!(
                "multiple IDs found with provided prefix: {key}"
            ))),
            _ => Err(ApiError::no_such_container(key)),
        }
    }

    /// Whether any container uses image `id` (for `rmi`).
    pub fn container_using_image(&self, image_id: &str) -> Option<String> {
        self.all()
            .into_iter()
            .find(|c| c.snapshot().image_id == image_id)
            .map(|c| c.id.clone())
    }

    fn attrs(&self, rec: &Record) -> BTreeMap<String, String> {
        let mut a = BTreeMap::new();
        a.insert("name".into(), rec.name.trim_start_matches('/').to_string());
        a.insert("image".into(), rec.config.image.clone());
        for (k, v) in rec.config.labels.iter().flatten() {
            a.insert(k.clone(), v.clone());
        }
        a
    }

    pub(crate) fn event(&self, c: &Container, action: &str, extra: &[(&str, String)]) {
        let rec = c.snapshot();
        let mut a = self.attrs(&rec);
        for (k, v) in extra {
            a.insert(k.to_string(), v.clone());
        }
        self.events.publish("container", action, &c.id, a);
    }

    /// `POST /containers/create`.
    pub async fn create(
        self: &Arc<Self>,
        name: Option<String>,
        req: CreateRequest,
    ) -> Result<(String, Vec<String>), ApiError> {
        let mut unsupported = wharf_api::fields::refused_config_fields(&req.raw_config);
        unsupported.extend(wharf_api::fields::refused_host_fields(&req.raw_host_config));
        unsupported.extend(wharf_api::fields::refused_endpoint_fields(
            &req.networking_config,
        ));
        if !unsupported.is_empty() {
            return Err(ApiError::bad_request(format!(
                "wharf does not support {} yet",
                unsupported.join(", ")
            )));
        }
        let hc = &req.host_config;
        spec::validate(hc).map_err(|e| ApiError::bad_request(e.0))?;
        spec::check_userns(hc, self.cfg.userns.is_some())
            .map_err(|e| ApiError::bad_request(e.0))?;
        let mac = req.raw_config.get("MacAddress").and_then(Value::as_str);
        let attachments = self.plan_networks(hc, &req.networking_config, mac)?;
        self.check_links(hc)?;
        let embedded_dns = attachments
            .values()
            .any(|a| self.networks.get(&a.network_id).is_ok_and(|n| n.has_dns()));
        networking::port_requests(hc, &[]).map_err(net_error)?;
        if hc.init == Some(true) && self.cfg.init_path.is_none() {
            return Err(ApiError::bad_request(
                "--init is off in this wharfd: its --init-path is not a static executable, or it could not write its init to the exec-root (see its log)",
            ));
        }
        if let Some(rt) = hc.runtime.as_deref().filter(|r| !r.is_empty()) {
            if self.live().runtime_path(Some(rt)).is_none() {
                return Err(ApiError::bad_request(format!(
                    "unknown or invalid runtime name: {rt}"
                )));
            }
        }
        if let Some(rp) = &hc.restart_policy {
            match rp.name.as_str() {
                "" | "no" | "always" | "unless-stopped" | "on-failure" => {}
                other => {
                    return Err(ApiError::bad_request(format!(
                        "invalid restart policy '{other}'"
                    )))
                }
            }
            if hc.auto_remove && !matches!(rp.name.as_str(), "" | "no") {
                return Err(ApiError::bad_request(
                    "can't create 'AutoRemove' container with restart policy",
                ));
            }
        }
        if let Some(lc) = &hc.log_config {
            if !matches!(lc.kind.as_str(), "" | "json-file" | "none") {
                return Err(ApiError::bad_request(format!(
                    "logging driver {:?} is not supported by wharf yet (json-file, none)",
                    lc.kind
                )));
            }
        }
        let image_name = req.config.image.clone();
        if image_name.is_empty() {
            return Err(ApiError::bad_request("no image specified"));
        }
        if hc.uts_mode == "host" && !req.config.hostname.is_empty() {
            return Err(ApiError::bad_request(
                "conflicting options: hostname and the UTS mode",
            ));
        }
        let images = self.images.clone();
        let iname = image_name.clone();
        let image = blocking(move || images.resolve(&iname))
            .await?
            .map_err(image_error)?;

        if let Some(want) = &req.platform {
            let want = wharf_image::platform::Platform::parse(want)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            let variant_differs =
                want.variant.is_some() && image.variant.is_some() && want.variant != image.variant;
            if want.os != image.os || want.architecture != image.architecture || variant_differs {
                let actual = match &image.variant {
                    Some(v) => format!("{}/{}/{v}", image.os, image.architecture),
                    None => format!("{}/{}", image.os, image.architecture),
                };
                return Err(ApiError::not_found(format!(
                    "image with reference {image_name} was found but does not match the specified platform: wanted {want}, actual: {actual}"
                )));
            }
        }
        // Merge the image's config as Docker does.
        let cfg = &req.config;
        let healthcheck =
            crate::health::merge(cfg.healthcheck.as_ref(), image.config.get("Healthcheck"));
        crate::health::HealthConfig::from_healthcheck(healthcheck.as_ref())
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let mut env: Vec<String> = image.env();
        for e in cfg.env.iter().flatten() {
            let key = e.split('=').next().unwrap_or_default();
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(
                0,
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            );
        }
        // `[""]` (`--entrypoint ""`) resets the image's entrypoint, as an empty list does;
        // with no entrypoint the image's command is the default, as in dockerd.
        let given_entrypoint = cfg
            .entrypoint
            .clone()
            .map(|e| if e == [""] { vec![] } else { e });
        let entrypoint = match &given_entrypoint {
            Some(e) => e.clone(),
            None => image.entrypoint(),
        };
        let cmd = match (&cfg.cmd, &given_entrypoint) {
            (Some(c), _) => c.clone(),
            (None, Some(e)) if !e.is_empty() => vec![],
            (None, _) => image.cmd(),
        };
        let mut argv: Vec<String> = entrypoint.iter().chain(cmd.iter()).cloned().collect();
        if argv.is_empty() {
            return Err(ApiError::bad_request("No command specified"));
        }
        let path = argv.remove(0);

        let _guard = self.create_lock.lock().await;
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = n.trim_start_matches('/').to_string();
                if !names::valid(&n) {
                    return Err(ApiError::bad_request(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                if let Ok(other) = self.lookup(&n) {
                    if other.name() == format!("/{n}") {
                        return Err(ApiError::conflict(format!(
                            "Conflict. The container name \"/{n}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                            other.id
                        )));
                    }
                }
                n
            }
            None => {
                let mut retry = 0;
                loop {
                    let n = names::generate(retry);
                    if self
                        .lookup(&n)
                        .map(|c| c.name() != format!("/{n}"))
                        .unwrap_or(true)
                    {
                        break n;
                    }
                    retry += 1;
                }
            }
        };
        let id = names::new_id();
        let hostname = if cfg.hostname.is_empty() {
            if hc.network_mode == "host" || hc.uts_mode == "host" {
                nix::unistd::gethostname()
                    .map(|h| h.to_string_lossy().into_owned())
                    .unwrap_or_default()
            } else {
                id[..12].to_string()
            }
        } else {
            cfg.hostname.clone()
        };
        let dir = self.cfg.data_root.join("containers").join(&id);
        std::fs::create_dir_all(&dir).map_err(internal)?;
        let tmp_cleanup = |dir: &PathBuf| {
            let _ = std::fs::remove_dir_all(dir);
        };
        let remapped = self.id_map(hc).map(wharf_image::IdMap::root);
        let setup = (|| -> std::io::Result<()> {
            if let Some((_, g)) = remapped {
                // As dockerd: the remapped root may traverse its container's directory (to
                // the files bound into it), others may not.
                std::os::unix::fs::chown(&dir, Some(0), Some(g))?;
                std::fs::set_permissions(
                    &dir,
                    std::os::unix::fs::PermissionsExt::from_mode(crate::roots::DATA_ROOT_MODE),
                )?;
            }
            std::fs::write(dir.join("hostname"), format!("{hostname}\n"))?;
            let mut hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n");
            if hc.network_mode == "host" {
                hosts = std::fs::read_to_string("/etc/hosts").unwrap_or(hosts);
            }
            for h in hc.extra_hosts.iter().flatten() {
                if let Some((n, ip)) = h.split_once(':') {
                    hosts.push_str(&format!("{ip}\t{n}\n"));
                }
            }
            std::fs::write(dir.join("hosts"), hosts)?;
            std::fs::write(
                dir.join("resolv.conf"),
                networking::resolv_conf(hc, embedded_dns),
            )?;
            if let Some((u, g)) = remapped {
                // The container's root owns its /etc/hosts, hostname and resolv.conf.
                for f in ["hostname", "hosts", "resolv.conf"] {
                    std::os::unix::fs::chown(dir.join(f), Some(u), Some(g))?;
                }
            }
            Ok(())
        })();
        if let Err(e) = setup {
            tmp_cleanup(&dir);
            return Err(internal(e));
        }
        let layers_images = self.images.clone();
        let lid = id.clone();
        let top = image.top_layer.clone();
        if let Err(e) =
            blocking(move || layers_images.layers().create_rw(&lid, top.as_deref())).await?
        {
            tmp_cleanup(&dir);
            return Err(image_error(e));
        }
        let mounts = match self.resolve_mounts(hc, cfg, &image) {
            Ok(m) => m,
            Err(e) => {
                let _ = self.images.layers().remove_rw(&id);
                tmp_cleanup(&dir);
                return Err(e);
            }
        };
        let mut merged = req.raw_config.clone();
        merged.insert("Hostname".into(), json!(hostname));
        merged.insert("Env".into(), json!(env));
        merged.insert("Cmd".into(), json!(cmd));
        merged.insert(
            "Entrypoint".into(),
            if entrypoint.is_empty() {
                Value::Null
            } else {
                json!(entrypoint)
            },
        );
        merged.insert("Image".into(), json!(image_name));
        if cfg.working_dir.is_empty() {
            merged.insert("WorkingDir".into(), json!(image.working_dir()));
        }
        if cfg.user.is_empty() {
            merged.insert("User".into(), json!(image.user()));
        }
        match healthcheck {
            Some(h) => merged.insert("Healthcheck".into(), h),
            None => merged.remove("Healthcheck"),
        };
        if cfg.stop_signal.is_none() {
            if let Some(s) = image.stop_signal() {
                merged.insert("StopSignal".into(), json!(s));
            }
        }
        let mut labels = image.config["Labels"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (k, v) in cfg.labels.iter().flatten() {
            labels.insert(k.clone(), json!(v));
        }
        merged.insert("Labels".into(), Value::Object(labels));
        let runtime = hc
            .runtime
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| self.live().default_runtime.clone());
        let mut host_raw = req.raw_host_config.clone();
        fill_host_config_defaults(&mut host_raw);
        host_raw.insert("Runtime".into(), json!(runtime));
        // Inspect shows the effective values, as dockerd does (clients read them back).
        let log_type = hc
            .log_config
            .as_ref()
            .map(|l| l.kind.clone())
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| self.cfg.log_driver.clone());
        let log_opts = hc
            .log_config
            .as_ref()
            .and_then(|l| l.config.clone())
            .unwrap_or_default();
        host_raw.insert(
            "LogConfig".into(),
            json!({"Type": log_type, "Config": log_opts}),
        );
        let mode = match hc.network_mode.as_str() {
            "" | "default" => "bridge",
            m => m,
        };
        host_raw.insert("NetworkMode".into(), json!(mode));
        if hc.restart_policy.as_ref().is_none_or(|r| r.name.is_empty()) {
            host_raw.insert(
                "RestartPolicy".into(),
                json!({"Name": "no", "MaximumRetryCount": 0}),
            );
        }
        let rec = Record {
            id: id.clone(),
            name: format!("/{name}"),
            created: now(),
            path,
            args: argv,
            config: StoredConfig::new(merged)
                .map_err(|e| ApiError::bad_request(format!("invalid Config: {e}")))?,
            host_config: StoredHostConfig::new(host_raw)
                .map_err(|e| ApiError::bad_request(format!("invalid HostConfig: {e}")))?,
            image_id: image.id.clone(),
            state: State {
                started_at: ZERO_TIME.into(),
                finished_at: ZERO_TIME.into(),
                ..Default::default()
            },
            restart_count: 0,
            log_path: dir.join(format!("{id}-json.log")).display().to_string(),
            runtime,
            generation: 0,
            manually_stopped: false,
            networks: attachments,
            endpoints: BTreeMap::new(),
            ports: vec![],
            mounts,
        };
        let c = Arc::new(Container::new(dir.clone(), rec));
        if let Err(e) = c.update(|_| ()) {
            let _ = self.images.layers().remove_rw(&id);
            tmp_cleanup(&dir);
            return Err(internal(e));
        }
        self.containers
            .write()
            .expect("containers lock")
            .insert(id.clone(), c.clone());
        drop(_guard);
        self.event(&c, "create", &[]);
        Ok((id, vec![]))
    }

    /// The container's mounts, in Docker's order: `--volumes-from` first (overridden by the
    /// container's own mounts at the same destination), then `Binds` (`-v`), `Mounts`
    /// (`--mount`), and anonymous volumes for `Config.Volumes` and the image's `VOLUME`s not
    /// mounted otherwise. Volumes are created as needed.
    fn resolve_mounts(
        &self,
        hc: &HostConfig,
        cfg: &wharf_api::types::ContainerConfig,
        image: &wharf_image::Image,
    ) -> Result<Vec<crate::volumes::MountRecord>, ApiError> {
        use crate::mounts::{self, MountRequest, Source};
        use crate::volumes::MountRecord;
        let mut reqs: Vec<MountRequest> = Vec::new();
        for b in hc.binds.iter().flatten() {
            reqs.push(mounts::parse_bind(b)?);
        }
        for m in hc.mounts.iter().flatten() {
            reqs.push(mounts::parse_mount(m)?);
        }
        mounts::check_duplicates(&reqs)?;
        let mut out: Vec<MountRecord> = Vec::new();
        for spec in hc.volumes_from.iter().flatten() {
            let (name, mode) = mounts::parse_volumes_from(spec)?;
            let from = self.lookup(&name)?.snapshot();
            for m in from.mounts.iter().filter(|m| m.kind != "tmpfs") {
                out.retain(|o| o.destination != m.destination);
                out.push(MountRecord {
                    rw: m.rw && mode != Some(false),
                    nocopy: true,
                    ..m.clone()
                });
            }
        }
        for r in reqs {
            out.retain(|o| o.destination != r.destination);
            let rec = match r.source {
                Source::Host(src) => {
                    // `-v` creates a missing host path, as Docker does (`--mount` was checked;
                    // with `--userns-remap` the directories made are the remapped root's);
                    // an existing one, a file too, is used as it is.
                    if std::fs::metadata(&src).is_err() {
                        let owner = self.id_map(hc).map(wharf_image::IdMap::root);
                        crate::userns::mkdir_all_owned(std::path::Path::new(&src), owner).map_err(
                            |e| {
                                ApiError::bad_request(format!(
                                    "error while creating mount source path '{src}': {e}"
                                ))
                            },
                        )?;
                    }
                    MountRecord {
                        kind: "bind".into(),
                        name: String::new(),
                        source: src.into(),
                        destination: r.destination,
                        rw: r.rw,
                        propagation: r.propagation,
                        mode: r.mode,
                        nocopy: false,
                        tmpfs: Vec::new(),
                    }
                }
                Source::Volume {
                    name,
                    driver_opts,
                    labels,
                    nocopy,
                } => {
                    let anonymous = name.is_none();
                    let v = self
                        .volumes
                        .create(name.as_deref(), labels, driver_opts, anonymous)?;
                    MountRecord {
                        kind: "volume".into(),
                        source: self.volumes.data_path(&v.name),
                        name: v.name,
                        destination: r.destination,
                        rw: r.rw,
                        propagation: String::new(),
                        mode: r.mode,
                        nocopy,
                        tmpfs: Vec::new(),
                    }
                }
                Source::Tmpfs(opts) => MountRecord {
                    kind: "tmpfs".into(),
                    name: String::new(),
                    source: Default::default(),
                    destination: r.destination,
                    rw: r.rw,
                    propagation: String::new(),
                    mode: String::new(),
                    nocopy: true,
                    tmpfs: opts,
                },
            };
            out.push(rec);
        }
        let mut anon: Vec<String> = cfg
            .volumes
            .iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect();
        if let Some(iv) = image.config["Volumes"].as_object() {
            anon.extend(iv.keys().cloned());
        }
        let tmpfs = hc.tmpfs.clone().unwrap_or_default();
        for dst in anon {
            if !dst.starts_with('/') {
                return Err(ApiError::bad_request(format!(
                    "invalid volume specification: '{dst}': invalid mount path: '{dst}' mount path must be absolute"
                )));
            }
            let dst = dst.trim_end_matches('/').to_string();
            if dst.is_empty()
                || out.iter().any(|m| m.destination == dst)
                || tmpfs.contains_key(&dst)
            {
                continue;
            }
            let v = self
                .volumes
                .create(None, Default::default(), Default::default(), true)?;
            out.push(MountRecord {
                kind: "volume".into(),
                source: self.volumes.data_path(&v.name),
                name: v.name,
                destination: dst,
                rw: true,
                propagation: String::new(),
                mode: String::new(),
                nocopy: false,
                tmpfs: Vec::new(),
            });
        }
        Ok(out)
    }

    /// Fills new volumes from the image's content at their mount points (Docker's copy-up),
    /// once per volume; `rootfs` is the container's mounted root.
    fn populate_volumes(&self, rec: &Record, rootfs: &std::path::Path) -> Result<(), ApiError> {
        for m in rec
            .mounts
            .iter()
            .filter(|m| m.kind == "volume" && !m.nocopy)
        {
            let meta = self.volumes.get(&m.name)?;
            if meta.populated {
                continue;
            }
            let src = crate::archive::resolve_in_root(rootfs, &m.destination, true)?;
            let shared = self.all().iter().any(|c| {
                let r = c.snapshot();
                c.id != rec.id
                    && r.state.status.is_live()
                    && r.mounts
                        .iter()
                        .any(|o| o.kind == "volume" && o.name == m.name)
            });
            self.volumes.populate(&m.name, &src, shared)?;
        }
        Ok(())
    }

    /// Mounts the devices of the container's volumes that have driver options.
    fn mount_volumes(&self, rec: &Record) -> Result<(), ApiError> {
        for m in rec.mounts.iter().filter(|m| m.kind == "volume") {
            self.volumes.mount(&m.name)?;
        }
        Ok(())
    }

    /// Unmounts the devices of `rec`'s volumes that no other running container uses.
    fn release_volumes(&self, rec: &Record) {
        for m in rec.mounts.iter().filter(|m| m.kind == "volume") {
            let busy = self.all().iter().any(|c| {
                let r = c.snapshot();
                c.id != rec.id
                    && (r.state.status.is_live() || r.state.status == Status::Restarting)
                    && r.mounts
                        .iter()
                        .any(|o| o.kind == "volume" && o.name == m.name)
            });
            if !busy {
                if let Err(e) = self.volumes.unmount(&m.name) {
                    tracing::warn!("{e}");
                }
            }
        }
    }

    /// Unmounts every volume device no running container uses (after a daemon restart).
    fn release_unused_volumes(&self) {
        let live: Vec<Record> = self
            .all()
            .iter()
            .map(|c| c.snapshot())
            .filter(|r| r.state.status.is_live() || r.state.status == Status::Restarting)
            .collect();
        for v in self.volumes.list() {
            let used = live.iter().any(|r| {
                r.mounts
                    .iter()
                    .any(|m| m.kind == "volume" && m.name == v.name)
            });
            if !used && self.volumes.is_mounted(&v.name) {
                if let Err(e) = self.volumes.unmount(&v.name) {
                    tracing::warn!("{e}");
                }
            }
        }
    }

    /// Removes volume `name` unless a container uses it (409 naming them). The check and the
    /// removal happen under the lock that container creation holds while it resolves its
    /// mounts, so a `run -v name:/x` racing a `volume rm name` either gets the volume (and the
    /// removal is refused) or comes after it (and makes a new, empty one): data in use is
    /// never deleted.
    pub async fn remove_volume_if_unused(&self, name: &str) -> Result<(), ApiError> {
        let _guard = self.create_lock.lock().await;
        let users = self.volume_users(name);
        if !users.is_empty() {
            return Err(ApiError::conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        self.volumes.remove(name)
    }

    /// Containers (ids) that mount volume `name`.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.all()
            .iter()
            .filter(|c| {
                c.snapshot()
                    .mounts
                    .iter()
                    .any(|m| m.kind == "volume" && m.name == name)
            })
            .map(|c| c.id.clone())
            .collect()
    }

    /// `POST /containers/{id}/start`.
    pub async fn start(self: &Arc<Self>, c: &Arc<Container>) -> Result<(), ApiError> {
        let rec = c.snapshot();
        if rec.state.status.is_live() {
            return Err(ApiError::not_modified());
        }
        if !rec.state.status.can_start() {
            return Err(ApiError::conflict(format!(
                "cannot start container {}: it is {}",
                rec.name.trim_start_matches('/'),
                rec.state.status.as_str()
            )));
        }
        let auto_remove = rec.host_config.auto_remove;
        let started = self.start_inner(c, rec).await;
        if started.is_err() && auto_remove {
            // `run --rm` waits for the removal whatever made the start fail (a bad device,
            // a missing binary, a network): remove it, as dockerd does.
            let (engine, c) = (self.clone(), c.clone());
            tokio::spawn(async move {
                let _ = engine.remove_with(&c, true, true).await;
            });
        }
        started
    }

    async fn start_inner(
        self: &Arc<Self>,
        c: &Arc<Container>,
        rec: Record,
    ) -> Result<(), ApiError> {
        let hc = rec.host_config.typed();
        let id = c.id.clone();
        let sdir = self.state_dir(&id);
        std::fs::create_dir_all(&sdir).map_err(internal)?;
        for f in ["exit", "shim.pid", "init.pid"] {
            let _ = std::fs::remove_file(sdir.join(f));
        }
        let _ = std::fs::remove_file(shim::sock_path(&sdir));
        let rootfs = sdir.join("rootfs");
        let images = self.images.clone();
        let (mid, mroot) = (id.clone(), rootfs.clone());
        blocking(move || images.layers().mount_rw(&mid, &mroot))
            .await?
            .map_err(image_error)?;
        let fail = |engine: &Arc<Engine>, msg: String| {
            let _ = engine.images.layers().unmount_rw(&id, &rootfs);
            msg
        };
        if let Err(e) = self
            .mount_volumes(&rec)
            .and_then(|()| self.populate_volumes(&rec, &rootfs))
        {
            self.release_volumes(&rec);
            return Err(ApiError::new(e.status, fail(self, e.message)));
        }
        let cfg = rec.config.typed();
        let mut env = cfg.env.clone().unwrap_or_default();
        let tty = cfg.tty;
        let hostname = cfg.hostname.clone();
        env.push(format!("HOSTNAME={hostname}"));
        if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push("HOME=/root".into());
        }
        // Links' variables come first; the container's own override them (as dockerd).
        match self.apply_links(c, &rec) {
            Ok(link_env) => {
                let own = |k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
                let link_env: Vec<String> = link_env
                    .into_iter()
                    .filter(|e| !own(e.split('=').next().unwrap_or_default()))
                    .collect();
                env.splice(0..0, link_env);
            }
            Err(e) => {
                self.release_volumes(&rec);
                return Err(ApiError::new(e.status, fail(self, e.message)));
            }
        }
        let init = (hc.init == Some(true))
            .then_some(self.cfg.init_path.as_deref())
            .flatten();
        let mut args = match init {
            Some(_) => vec![
                spec::INIT_PATH.to_string(),
                "--".to_string(),
                rec.path.clone(),
            ],
            None => vec![rec.path.clone()],
        };
        args.extend(rec.args.iter().cloned());
        let cgroup_path = format!("{}/{id}", self.cfg.cgroup_parent.trim_end_matches('/'));
        let netns_path = match networking::container_mode(&hc.network_mode) {
            Some(other) => match self.join_container_netns(c, other) {
                Ok(p) => Some(p),
                Err(e) => return Err(ApiError::new(e.status, fail(self, e.message))),
            },
            None => None,
        };
        // `--ipc container:x`, `--pid container:x`: x's namespaces, x running.
        let mut joined = Vec::new();
        for (kind, mode) in [("ipc", &hc.ipc_mode), ("pid", &hc.pid_mode)] {
            if let Some(other) = mode.strip_prefix("container:") {
                match self.container_ns(other, kind) {
                    Ok(p) => joined.push((kind, p)),
                    Err(e) => return Err(ApiError::new(e.status, fail(self, e.message))),
                }
            }
        }
        let netns = if hc.network_mode == "host" {
            None
        } else {
            Some(netns_path.as_deref())
        };
        // As dockerd: a remapped container sharing a remapped container's network namespace
        // shares its user namespace too (the owner of the network namespace).
        let userns_path = match (
            self.id_map(&hc),
            networking::container_mode(&hc.network_mode),
            netns_path.as_deref(),
        ) {
            (Some(_), Some(other), Some(p)) => self
                .lookup(other)
                .ok()
                .filter(|o| o.with_record(|r| self.id_map(&r.host_config).is_some()))
                .and_then(|_| p.strip_suffix("/net").map(|b| format!("{b}/user"))),
            _ => None,
        };
        // Reads the image's /etc/passwd and /etc/group: off the async threads.
        let (user_root, user) = (rootfs.clone(), cfg.user.clone());
        let group_add = hc.group_add.clone().unwrap_or_default();
        let resolved = blocking(move || {
            let ids = spec::resolve_user(&user_root, &user)?;
            let groups = spec::supplementary_groups(&user_root, &user, ids, &group_add)?;
            Ok::<_, spec::SpecError>((ids, groups))
        })
        .await?;
        let (user, additional_gids) = match resolved {
            Ok(r) => r,
            Err(e) => return Err(ApiError::bad_request(fail(self, e.0))),
        };
        let spec_in = spec::SpecInput {
            id: &id,
            rootfs: &rootfs,
            container_dir: &c.dir,
            args: &args,
            env: &env,
            cwd: &cfg.working_dir,
            user,
            hostname: &hostname,
            domainname: &cfg.domainname,
            additional_gids: &additional_gids,
            tty,
            host: &hc,
            netns,
            cgroup_path: &cgroup_path,
            mounts: &rec.mounts,
            init,
            userns: self.id_map(&hc),
            userns_path: userns_path.as_deref(),
            joined: &joined,
        };
        let spec = match spec::build(&spec_in) {
            Ok(s) => s,
            Err(e) => return Err(ApiError::bad_request(fail(self, e.0))),
        };
        container::write_runtime_file(
            &sdir.join("config.json"),
            &serde_json::to_vec(&spec).expect("serializable"),
        )
        .map_err(|e| ApiError::internal(fail(self, e.to_string())))?;
        let runtime = self
            .live()
            .runtime_path(Some(&rec.runtime))
            .cloned()
            .ok_or_else(|| {
                ApiError::bad_request(fail(self, format!("unknown runtime {}", rec.runtime)))
            })?;
        let log_cfg = hc.log_config.clone().unwrap_or_default();
        let driver = if log_cfg.kind.is_empty() {
            self.cfg.log_driver.clone()
        } else {
            log_cfg.kind.clone()
        };
        let mut opts = self.live().log_opts.clone();
        opts.extend(log_cfg.config.clone().unwrap_or_default());
        let log_path = PathBuf::from(&rec.log_path);
        let open_stdin = cfg.open_stdin;
        let spawn_args = wharf_shim::args::ShimArgs {
            runtime_root: self.cfg.exec_root.join("runtime"),
            runtime: runtime.clone(),
            tty,
            stdin: open_stdin,
            stdin_once: cfg.stdin_once,
            log_path: (driver != "none").then(|| log_path.clone()),
            log_max_size: opts
                .get("max-size")
                .and_then(|s| spec::size_of(s))
                .map(|s| s as u64),
            log_max_file: opts
                .get("max-file")
                .and_then(|s| s.parse().ok())
                .unwrap_or(1),
            cgroup_path: Some(cgroup_path.clone()),
            ..wharf_shim::args::ShimArgs::new(id.clone(), sdir.clone(), sdir.clone())
        };
        let pid = match shim::spawn(&self.cfg.shim_path, &spawn_args).await {
            Ok(pid) => pid,
            Err(msg) => {
                let msg = fail(self, msg);
                let code = shim::exit_code_of_runtime_error(&msg).unwrap_or(128);
                let full = format!("failed to create task for container: failed to create shim task: OCI runtime create failed: {msg}: unknown");
                let _ = c.update(|r| {
                    r.state.exit_code = code;
                    r.state.error = full.clone();
                    r.state.status = if r.state.status == Status::Created {
                        Status::Created
                    } else {
                        Status::Exited
                    };
                });
                self.event(c, "die", &[("exitCode", code.to_string())]);
                return Err(ApiError::bad_request(full));
            }
        };
        if let Err(msg) = self.connect_all(c, pid).await {
            // The created container goes, and the start fails like a failed create: recorded,
            // `die`, and removed for `run --rm` (whose client waits for that).
            force_kill(&sdir).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), shim::wait_exit(&sdir)).await;
            let msg = fail(self, msg);
            let _ = c.update(|r| {
                r.state.exit_code = 128;
                r.state.error = msg.clone();
                if r.state.status != Status::Created {
                    r.state.status = Status::Exited;
                }
            });
            self.event(c, "die", &[("exitCode", "128".to_string())]);
            return Err(ApiError::internal(msg));
        }
        // Let attach requests that were waiting for this run connect before the process runs,
        // so no output is lost.
        c.update_volatile(|r| {
            r.generation += 1;
            r.state.pid = pid;
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while c.pending_attach.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            if tokio::time::timeout_at(deadline, self.attach_done.notified())
                .await
                .is_err()
            {
                break;
            }
        }
        if let Err(e) = shim::call(&sdir, &Request::Start).await {
            force_kill(&sdir).await;
            return Err(ApiError::internal(fail(self, e)));
        }
        // A healthcheck starts over with every run, in the same record write as the start.
        let probe = Self::health_config(c);
        c.update(|r| {
            r.state.status = Status::Running;
            r.state.started_at = now();
            r.state.error.clear();
            r.manually_stopped = false;
            r.state.health = probe.is_some().then(crate::health::Health::starting);
        })
        .map_err(internal)?;
        self.event(c, "start", &[]);
        self.spawn_monitor(c.clone());
        if let Some(cfg) = probe {
            self.spawn_health(c.clone(), cfg);
        }
        Ok(())
    }

    /// Called by an attach request that arrived before start; returns when it may connect.
    pub fn attach_registered(&self, c: &Container) {
        c.pending_attach
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.attach_done.notify_waiters();
        self.attach_done.notify_one();
    }

    fn spawn_monitor(self: &Arc<Self>, c: Arc<Container>) {
        let engine = self.clone();
        tokio::spawn(async move {
            let sdir = engine.state_dir(&c.id);
            let st = shim::wait_exit(&sdir).await.unwrap_or(ExitStatus {
                code: 255,
                oom_killed: false,
                finished_at: now(),
            });
            engine.handle_exit(&c, st).await;
        });
    }

    async fn handle_exit(self: &Arc<Self>, c: &Arc<Container>, st: ExitStatus) {
        tracing::debug!("{}: exited with {}", &c.id[..12], st.code);
        let sdir = self.state_dir(&c.id);
        let images = self.images.clone();
        let (id, rootfs) = (c.id.clone(), sdir.join("rootfs"));
        let _ = blocking(move || images.layers().unmount_rw(&id, &rootfs)).await;
        self.release_volumes(&c.snapshot());
        let dying = !self.netns_shared(c);
        self.disconnect_all(c, dying).await;
        let rec = c.snapshot();
        let hc = rec.host_config.typed();
        let policy = hc.restart_policy.clone().unwrap_or_default();
        let restart = !rec.manually_stopped
            && match policy.name.as_str() {
                "always" | "unless-stopped" => true,
                "on-failure" => {
                    st.code != 0
                        && (policy.maximum_retry_count == 0
                            || (rec.restart_count as i64) < policy.maximum_retry_count)
                }
                _ => false,
            };
        let _ = c.update(|r| {
            r.state.status = if restart {
                Status::Restarting
            } else {
                Status::Exited
            };
            r.state.exit_code = st.code;
            r.state.oom_killed = st.oom_killed;
            r.state.finished_at = st.finished_at.clone();
            r.state.pid = 0;
        });
        if st.oom_killed {
            self.event(c, "oom", &[]);
        }
        self.event(c, "die", &[("exitCode", st.code.to_string())]);
        if restart {
            let engine = self.clone();
            let c = c.clone();
            tokio::spawn(async move {
                // Docker's back-off: 100ms doubling, reset once a run lasted 10 s.
                let ran = chrono::DateTime::parse_from_rfc3339(&rec.state.started_at)
                    .map(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds())
                    .unwrap_or(0);
                let n = if ran >= 10 {
                    0
                } else {
                    rec.restart_count.min(10)
                };
                tokio::time::sleep(Duration::from_millis(100u64 << n)).await;
                let rec = c.snapshot();
                if rec.state.status != Status::Restarting || rec.manually_stopped {
                    return;
                }
                let _ = c.update(|r| r.restart_count += 1);
                if let Err(e) = engine.start_inner(&c, c.snapshot()).await {
                    tracing::warn!("restart of {} failed: {}", &c.id[..12], e.message);
                    let _ = c.update(|r| r.state.status = Status::Exited);
                }
            });
        } else if hc.auto_remove {
            let _ = self.remove_with(c, true, true).await;
            tracing::debug!("{}: removed (--rm)", &c.id[..12]);
        }
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill(&self, c: &Container, signal: i32) -> Result<(), ApiError> {
        if !c.status().is_live() {
            return Err(ApiError::conflict(format!(
                "Cannot kill container: {}: Container {} is not running",
                c.name().trim_start_matches('/'),
                c.id
            )));
        }
        shim::call(
            &self.state_dir(&c.id),
            &Request::Kill { signal, all: false },
        )
        .await
        .map_err(ApiError::internal)?;
        self.event(c, "kill", &[("signal", signal.to_string())]);
        // SIGKILL answers once the container is down (dockerd waits too, 10 s at most), so a
        // client's next look sees it exited (compose kills, then starts what is stopped).
        if signal == libc::SIGKILL {
            Self::wait_not_live(c, Some(Duration::from_secs(10))).await;
        }
        Ok(())
    }

    async fn wait_not_live(c: &Container, timeout: Option<Duration>) -> bool {
        let mut w = c.watch();
        let fut = async {
            loop {
                if !w.borrow_and_update().0.is_live() {
                    return;
                }
                if w.changed().await.is_err() {
                    return;
                }
            }
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, fut).await.is_ok(),
            None => {
                fut.await;
                true
            }
        }
    }

    /// `POST /containers/{id}/stop`.
    pub async fn stop(
        &self,
        c: &Container,
        timeout: Option<i64>,
        signal: Option<i32>,
    ) -> Result<(), ApiError> {
        let rec = c.snapshot();
        if rec.state.status == Status::Restarting {
            c.update(|r| {
                r.manually_stopped = true;
                r.state.status = Status::Exited;
            })
            .map_err(internal)?;
            return Ok(());
        }
        if !rec.state.status.is_live() {
            return Err(ApiError::not_modified());
        }
        c.update(|r| r.manually_stopped = true).map_err(internal)?;
        let sig = match signal {
            Some(s) => s,
            None => match rec.config.stop_signal.as_deref() {
                Some(s) if !s.is_empty() => parse_signal(s)?,
                _ => 15,
            },
        };
        let t = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        let sdir = self.state_dir(&c.id);
        if rec.state.status == Status::Paused {
            let _ = shim::call(&sdir, &Request::Resume).await;
        }
        let _ = shim::call(
            &sdir,
            &Request::Kill {
                signal: sig,
                all: false,
            },
        )
        .await;
        self.event(c, "kill", &[("signal", sig.to_string())]);
        let graceful = t >= 0 && Self::wait_not_live(c, Some(Duration::from_secs(t as u64))).await;
        if !graceful {
            force_kill(&sdir).await;
            self.event(c, "kill", &[("signal", "9".to_string())]);
            Self::wait_not_live(c, Some(Duration::from_secs(30))).await;
        }
        self.event(c, "stop", &[]);
        Ok(())
    }

    /// `DELETE /containers/{id}`.
    pub async fn remove(self: &Arc<Self>, c: &Arc<Container>, force: bool) -> Result<(), ApiError> {
        self.remove_with(c, force, false).await
    }

    /// `DELETE /containers/{id}?v=`: also removes its anonymous volumes when `volumes`.
    pub async fn remove_with(
        self: &Arc<Self>,
        c: &Arc<Container>,
        force: bool,
        volumes: bool,
    ) -> Result<(), ApiError> {
        let rec = c.snapshot();
        if !rec.state.status.can_remove() {
            if !force {
                return Err(ApiError::conflict(format!(
                    "cannot remove container \"{}\": container is {}: stop the container before removing or force remove",
                    rec.name,
                    rec.state.status.as_str()
                )));
            }
            let _ = c.update(|r| r.manually_stopped = true);
            let sdir = self.state_dir(&c.id);
            force_kill(&sdir).await;
            self.event(c, "kill", &[("signal", "9".to_string())]);
            Self::wait_not_live(c, Some(Duration::from_secs(30))).await;
        }
        if self
            .containers
            .write()
            .expect("containers lock")
            .remove(&c.id)
            .is_none()
        {
            return Ok(()); // someone else removed it (AutoRemove racing an explicit rm)
        }
        let images = self.images.clone();
        let id = c.id.clone();
        let sdir = self.state_dir(&id);
        let dir = c.dir.clone();
        blocking(move || {
            let _ = images.layers().unmount_rw(&id, &sdir.join("rootfs"));
            let _ = images.layers().remove_rw(&id);
            let _ = std::fs::remove_dir_all(&sdir);
            let _ = std::fs::remove_dir_all(&dir);
        })
        .await?;
        self.event(c, "destroy", &[]);
        c.mark_removed();
        if volumes {
            for m in rec.mounts.iter().filter(|m| m.kind == "volume") {
                let anonymous = self
                    .volumes
                    .get(&m.name)
                    .map(|v| v.anonymous)
                    .unwrap_or(false);
                if anonymous {
                    let _ = self.remove_volume_if_unused(&m.name).await;
                }
            }
        }
        Ok(())
    }

    /// `POST /containers/{id}/wait`: returns the exit code.
    pub async fn wait(&self, c: &Container, condition: &str) -> Result<i32, ApiError> {
        let mut w = c.watch();
        let (_, gen0) = *w.borrow_and_update();
        loop {
            let (st, gen) = *w.borrow_and_update();
            let done = match condition {
                "next-exit" => {
                    gen == u64::MAX || (gen > gen0 && matches!(st, Status::Exited | Status::Dead))
                }
                "removed" => gen == u64::MAX,
                _ => gen == u64::MAX || !(st.is_live() || st == Status::Restarting),
            };
            if done {
                return Ok(c.snapshot().state.exit_code);
            }
            if w.changed().await.is_err() {
                return Ok(c.snapshot().state.exit_code);
            }
        }
    }

    /// `POST /containers/{id}/pause` and `unpause`.
    pub async fn pause(&self, c: &Container, pause: bool) -> Result<(), ApiError> {
        let st = c.status();
        let name = c.name();
        let name = name.trim_start_matches('/');
        if pause && st == Status::Paused {
            return Err(ApiError::conflict(format!(
                "Container {} is already paused",
                c.id
            )));
        }
        if !pause && st != Status::Paused {
            return Err(ApiError::conflict(format!(
                "Container {} is not paused",
                c.id
            )));
        }
        if !st.is_live() {
            return Err(ApiError::conflict(format!(
                "Container {name} is not running"
            )));
        }
        let req = if pause {
            Request::Pause
        } else {
            Request::Resume
        };
        shim::call(&self.state_dir(&c.id), &req)
            .await
            .map_err(ApiError::internal)?;
        c.update(|r| {
            r.state.status = if pause {
                Status::Paused
            } else {
                Status::Running
            }
        })
        .map_err(internal)?;
        self.event(c, if pause { "pause" } else { "unpause" }, &[]);
        Ok(())
    }

    /// `POST /containers/{id}/rename`.
    pub async fn rename(&self, c: &Container, new: &str) -> Result<(), ApiError> {
        let _g = self.create_lock.lock().await;
        let new = new.trim_start_matches('/');
        if !names::valid(new) {
            return Err(ApiError::bad_request(format!(
                "Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        if let Ok(o) = self.lookup(new) {
            if o.name() == format!("/{new}") {
                return Err(ApiError::conflict(format!(
                    "Conflict. The container name \"/{new}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                    o.id
                )));
            }
        }
        let old = c.name();
        c.update(|r| r.name = format!("/{new}")).map_err(internal)?;
        self.event(c, "rename", &[("oldName", old)]);
        Ok(())
    }

    /// `GET /containers/{id}/top`: `ps -ef`-like rows of the container's processes.
    /// `GET /containers/{id}/top`: as dockerd, `ps` with the client's options (default
    /// `-ef`) on the host, keeping the rows whose PID column is one of the container's
    /// (and the thread lines, PID `-`, that follow them).
    pub async fn top(&self, c: &Container, ps_args: Option<&str>) -> Result<Value, ApiError> {
        if !c.status().is_live() {
            return Err(ApiError::conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let pids = shim::call(&self.state_dir(&c.id), &Request::Pids)
            .await
            .map_err(ApiError::internal)?;
        let pids: std::collections::HashSet<&str> = pids.split_whitespace().collect();
        let args = ps_args.filter(|a| !a.is_empty()).unwrap_or("-ef");
        let out = tokio::process::Command::new("ps")
            .args(args.split(' '))
            .output()
            .await
            .map_err(internal)?;
        if !out.status.success() {
            return Err(ApiError::internal(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let titles: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
        let pid_col = titles
            .iter()
            .position(|t| *t == "PID")
            .ok_or_else(|| ApiError::internal("Couldn't find PID field in ps output"))?;
        let mut procs: Vec<Vec<String>> = Vec::new();
        let mut after_ours = false;
        for l in lines {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < titles.len() {
                continue;
            }
            let keep = if f[pid_col] == "-" {
                after_ours
            } else {
                after_ours = pids.contains(f[pid_col]);
                after_ours
            };
            if keep {
                let n = titles.len() - 1;
                let mut row: Vec<String> = f[..n].iter().map(|s| s.to_string()).collect();
                row.push(f[n..].join(" "));
                procs.push(row);
            }
        }
        Ok(json!({"Titles": titles, "Processes": procs}))
    }

    /// `GET /containers/json`.
    pub fn list(
        &self,
        all: bool,
        filters: &BTreeMap<String, Vec<String>>,
        limit: Option<usize>,
    ) -> Vec<Value> {
        let mut recs: Vec<Record> = self.all().iter().map(|c| c.snapshot()).collect();
        recs.sort_by(|a, b| b.created.cmp(&a.created));
        let mut out = Vec::new();
        for r in recs {
            let st = r.state.status;
            let explicit_status = filters.contains_key("status") || filters.contains_key("exited");
            if !all
                && !explicit_status
                && !matches!(st, Status::Running | Status::Paused | Status::Restarting)
            {
                continue;
            }
            let ok = filters.iter().all(|(k, vals)| {
                if k == "label" {
                    // Docker: every label filter must hold (the other keys: any value).
                    return vals
                        .iter()
                        .all(|v| filters::label_matches(r.config.get("Labels"), v));
                }
                vals.is_empty()
                    || vals.iter().any(|v| match k.as_str() {
                        "status" => st.as_str() == v,
                        "id" => r.id.starts_with(v.as_str()),
                        "name" => r
                            .name
                            .trim_start_matches('/')
                            .contains(v.trim_start_matches('/')),
                        "exited" => st == Status::Exited && v.parse() == Ok(r.state.exit_code),
                        "health" => {
                            let h = r.state.health.as_ref().map(|h| h.status.as_str());
                            match v.as_str() {
                                "none" => h.is_none(),
                                want => h == Some(want),
                            }
                        }
                        "ancestor" => {
                            r.config.image == *v
                                || r.image_id == *v
                                || r.image_id
                                    .trim_start_matches("sha256:")
                                    .starts_with(v.as_str())
                        }
                        _ => true,
                    })
            });
            if !ok {
                continue;
            }
            out.push(summary(self, &r));
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        out
    }

    /// `GET /containers/{id}/json`.
    pub fn inspect(&self, c: &Container) -> Value {
        let r = c.snapshot();
        let st = &r.state;
        let dir = c.dir.display().to_string();
        let execs: Vec<String> = self
            .execs
            .lock()
            .expect("execs lock")
            .values()
            .filter(|e| e.container == c.id)
            .map(|e| e.id.clone())
            .collect();
        let mut doc = json!({
            "Id": r.id,
            "Created": r.created,
            "Path": r.path,
            "Args": r.args,
            "State": {
                "Status": st.status.as_str(),
                "Running": st.status.is_live(),
                "Paused": st.status == Status::Paused,
                "Restarting": st.status == Status::Restarting,
                "OOMKilled": st.oom_killed,
                "Dead": st.status == Status::Dead,
                "Pid": st.pid,
                "ExitCode": st.exit_code,
                "Error": st.error,
                "StartedAt": st.started_at,
                "FinishedAt": st.finished_at,
            },
            "Image": r.image_id,
            "ResolvConfPath": format!("{dir}/resolv.conf"),
            "HostnamePath": format!("{dir}/hostname"),
            "HostsPath": format!("{dir}/hosts"),
            "LogPath": r.log_path,
            "Name": r.name,
            "RestartCount": r.restart_count,
            "Driver": self.images.layers().driver(),
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": if execs.is_empty() { Value::Null } else { json!(execs) },
            "HostConfig": r.host_config,
            "GraphDriver": {"Name": self.images.layers().driver(), "Data": null},
            "Mounts": r.mounts.iter().map(|m| m.to_json()).collect::<Vec<_>>(),
            "Config": r.config,
            "NetworkSettings": networking::network_settings(self, &r),
        });
        // Only a container with a healthcheck has State.Health (omitted otherwise, as dockerd).
        if let Some(h) = &st.health {
            doc["State"]["Health"] = json!(h);
        }
        if doc["HostConfig"].is_object() {
            doc["HostConfig"]["Links"] = self.links_json(&r);
        }
        doc
    }

    /// `POST /containers/{id}/exec`.
    pub fn exec_create(&self, c: &Container, cfg: ExecConfig) -> Result<String, ApiError> {
        if !c.status().is_live() {
            return Err(ApiError::conflict(format!(
                "container {} is not running",
                c.id
            )));
        }
        if c.status() == Status::Paused {
            return Err(ApiError::conflict(format!(
                "container {} is paused, unpause the container before exec",
                c.id
            )));
        }
        if cfg.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(ApiError::bad_request("No exec command specified"));
        }
        let id = names::new_id();
        // dockerd's action names the command: `exec_create: sh -c date`.
        let action = format!(
            "exec_create: {}",
            cfg.cmd.clone().unwrap_or_default().join(" ")
        );
        self.execs.lock().expect("execs lock").insert(
            id.clone(),
            Arc::new(ExecInstance {
                id: id.clone(),
                container: c.id.clone(),
                config: cfg,
                state: Mutex::new(ExecState::default()),
            }),
        );
        self.event(c, &action, &[("execID", id.clone())]);
        Ok(id)
    }

    /// An exec instance by id.
    pub fn exec(&self, id: &str) -> Result<Arc<ExecInstance>, ApiError> {
        self.execs
            .lock()
            .expect("execs lock")
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))
    }

    /// Writes the exec's OCI process and returns the path the shim reads it from.
    pub async fn exec_process_file(&self, e: &ExecInstance) -> Result<PathBuf, ApiError> {
        let sdir = self.state_dir(&e.container);
        let spec: oci_spec::runtime::Spec =
            serde_json::from_slice(&std::fs::read(sdir.join("config.json")).map_err(internal)?)
                .map_err(internal)?;
        let user = if e.config.user.is_empty() {
            None
        } else {
            // Reads the image's /etc/passwd and /etc/group: off the async threads. The
            // user's groups, and the container's --group-add, as dockerd gives an exec.
            let (root, user) = (sdir.join("rootfs"), e.config.user.clone());
            let group_add: Vec<String> = self
                .lookup(&e.container)
                .ok()
                .and_then(|c| c.with_record(|r| r.host_config.group_add.clone()))
                .unwrap_or_default();
            Some(
                blocking(move || {
                    let ids = spec::resolve_user(&root, &user)?;
                    let groups = spec::supplementary_groups(&root, &user, ids, &group_add)?;
                    Ok::<_, spec::SpecError>((ids, groups))
                })
                .await?
                .map_err(|err| ApiError::bad_request(err.0))?,
            )
        };
        let mut p = spec::exec_process(
            &spec,
            e.config.cmd.as_deref().unwrap_or_default(),
            e.config.env.as_deref().unwrap_or_default(),
            &e.config.working_dir,
            user.as_ref().map(|(ids, _)| *ids),
            e.config.tty,
            e.config.privileged,
        );
        if let Some((_, groups)) = user.filter(|(_, g)| !g.is_empty()) {
            let mut who = p.user().clone();
            who.set_additional_gids(Some(groups));
            p.set_user(who);
        }
        let path = sdir.join(format!("exec-{}.json", e.id));
        container::write_runtime_file(&path, &serde_json::to_vec(&p).expect("serializable"))
            .map_err(internal)?;
        Ok(path)
    }

    /// The state dir of a container's shim.
    pub fn shim_dir(&self, id: &str) -> PathBuf {
        self.state_dir(id)
    }

    /// Publishes an exec_start / exec_die event.
    pub fn exec_event(&self, container: &str, action: &str, extra: &[(&str, String)]) {
        if let Ok(c) = self.lookup(container) {
            self.event(&c, action, extra);
        }
    }

    /// `POST /commit`: the container's changes become a new layer on its image; the new
    /// image's config is the container's, with `overrides` (a Config object) and Dockerfile-style
    /// `changes` applied, and its history records the container's command.
    pub async fn commit(
        self: &Arc<Self>,
        c: &Container,
        opts: CommitOptions,
    ) -> Result<String, ApiError> {
        let CommitOptions {
            reference,
            comment,
            author,
            changes,
            overrides,
            pause,
        } = opts;
        let rec = c.snapshot();
        let tags = match reference.as_deref() {
            Some(r) => vec![wharf_image::reference::parse(r)
                .map_err(|e| ApiError::bad_request(e.to_string()))?],
            None => vec![],
        };
        let images = self.images.clone();
        let id = c.id.clone();
        let image_id = rec.image_id.clone();
        let history_cmd = shell_join(&rec.path, &rec.args);
        let doc_config = {
            let mut cfg = serde_json::Map::new();
            for k in [
                "Env",
                "Cmd",
                "Entrypoint",
                "WorkingDir",
                "User",
                "ExposedPorts",
                "Volumes",
                "Labels",
                "StopSignal",
                "OnBuild",
                "Healthcheck",
                "Hostname",
                "Domainname",
                "Tty",
                "OpenStdin",
                "StdinOnce",
                "AttachStdin",
                "AttachStdout",
                "AttachStderr",
            ] {
                if let Some(v) = rec.config.raw().get(k) {
                    cfg.insert(k.to_string(), v.clone());
                }
            }
            match overrides {
                Some(Value::Object(o)) => {
                    for (k, v) in o {
                        let object_field =
                            matches!(k.as_str(), "ExposedPorts" | "Volumes" | "Labels");
                        if object_field && !(v.is_object() || v.is_null()) {
                            return Err(ApiError::bad_request(format!(
                                "invalid commit config: {k} must be an object, not {v}"
                            )));
                        }
                        if !v.is_null() {
                            cfg.insert(k, v);
                        }
                    }
                }
                None | Some(Value::Null) => {}
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "invalid commit config: expected a JSON object, got {other}"
                    )))
                }
            }
            for ch in &changes {
                wharf_image::store::apply_change(&mut cfg, ch)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
            }
            cfg
        };
        // A running container is frozen while its layer is read, so the image is one moment
        // of its filesystem (`docker commit` default); a paused one stays as it is.
        let paused_here = pause && c.status() == Status::Running;
        if paused_here {
            self.pause(c, true).await?;
        }
        let img = blocking(move || -> Result<wharf_image::Image, wharf_image::Error> {
            let parent = images.resolve(&image_id)?;
            let dir = images.layers().root_tmp();
            // Unique per commit: two commits of one container at once must not share a file.
            let tmp = dir.join(format!("commit-{id}-{}.tar", crate::names::new_id()));
            let result = (|| {
                let mut f = std::fs::File::create(&tmp).map_err(|e| wharf_image::Error::Io { path: tmp.clone(), source: e })?;
                images.layers().diff_tar(&id, &mut f)?;
                drop(f);
                let f = std::fs::File::open(&tmp).map_err(|e| wharf_image::Error::Io { path: tmp.clone(), source: e })?;
                let lease = images.layers().lease();
                let layer = images.layers().register(&lease, parent.top_layer.as_deref(), f)?;
                let mut doc = parent.raw_config.clone();
                let now = now();
                doc["created"] = json!(now);
                doc["config"] = Value::Object(doc_config);
                doc["container"] = json!(id);
                doc["author"] = json!(author);
                doc["comment"] = json!(comment);
                let mut diff_ids = parent.rootfs_diff_ids.clone();
                diff_ids.push(layer.diff_id.clone());
                doc["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
                let mut history = doc["history"].as_array().cloned().unwrap_or_default();
                history.push(json!({"created": now, "created_by": history_cmd, "author": author, "comment": comment}));
                doc["history"] = json!(history);
                images.put_image(&doc, &tags)
            })();
            let _ = std::fs::remove_file(&tmp);
            result
        })
        .await;
        if paused_here {
            if let Err(e) = self.pause(c, false).await {
                tracing::warn!("unpausing {} after its commit: {}", c.id, e.message);
            }
        }
        let img = img?.map_err(image_error)?;
        self.event(c, "commit", &[]);
        Ok(img.id)
    }

    /// Runs `f` (blocking) with the container's root as a copy sees it (see
    /// `archive`): a running container's init's root (its mount namespace's view, volumes
    /// included), else its layers mounted for the call with its volumes and binds to mount.
    pub async fn with_jail<T: Send + 'static>(
        &self,
        c: &Container,
        f: impl FnOnce(&crate::archive::Jail) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let rec = c.snapshot();
        if rec.state.status.is_live() && rec.state.pid > 0 {
            let path = format!("/proc/{}/root", rec.state.pid);
            let fd = nix::fcntl::open(
                path.as_str(),
                nix::fcntl::OFlag::O_PATH
                    | nix::fcntl::OFlag::O_DIRECTORY
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            );
            // The pid is still the container's (not a reused one) if it is still running.
            if let (Ok(fd), true) = (fd, c.status().is_live()) {
                return blocking(move || f(&crate::archive::Jail::Live(fd))).await?;
            }
        }
        let images = self.images.clone();
        let id = c.id.clone();
        let mounts = rec
            .mounts
            .iter()
            .filter(|m| m.kind == "bind" || m.kind == "volume")
            .map(|m| (m.source.clone(), m.destination.clone(), m.rw))
            .collect();
        blocking(move || {
            let tmp = images.layers().scratch_mountpoint("cp");
            images.layers().mount_rw(&id, &tmp).map_err(image_error)?;
            let r = f(&crate::archive::Jail::Stopped {
                root: tmp.clone(),
                mounts,
            });
            let _ = images.layers().unmount_rw(&id, &tmp);
            let _ = std::fs::remove_dir(&tmp);
            r
        })
        .await?
    }

    /// Runs `f` (blocking) on the container's root filesystem: the live mount of a running
    /// container, else a temporary mount made for the call.
    pub async fn with_rootfs<T: Send + 'static>(
        &self,
        c: &Container,
        f: impl FnOnce(&std::path::Path) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let images = self.images.clone();
        let id = c.id.clone();
        let live_root = self.state_dir(&id).join("rootfs");
        let live = c.status().is_live();
        blocking(move || {
            if live {
                return f(&live_root);
            }
            let tmp = images.layers().scratch_mountpoint("cp");
            images.layers().mount_rw(&id, &tmp).map_err(image_error)?;
            let r = f(&tmp);
            let _ = images.layers().unmount_rw(&id, &tmp);
            let _ = std::fs::remove_dir(&tmp);
            r
        })
        .await?
    }

    /// `POST /containers/{id}/update`: new resource limits (applied at once when running) and
    /// restart policy.
    pub async fn update(
        &self,
        c: &Container,
        body: &serde_json::Map<String, Value>,
    ) -> Result<(), ApiError> {
        const ALLOWED: &[&str] = &[
            "Memory",
            "MemorySwap",
            "MemoryReservation",
            "CpuShares",
            "NanoCpus",
            "CpuPeriod",
            "CpuQuota",
            "CpusetCpus",
            "CpusetMems",
            "PidsLimit",
            "BlkioWeight",
            "RestartPolicy",
        ];
        let mut hc_raw = c.with_record(|r| r.host_config.raw().clone());
        for (k, v) in body {
            let zero = v.is_null()
                || v == &json!(0)
                || v == &json!("")
                || v == &json!([])
                || v == &json!({});
            if ALLOWED.contains(&k.as_str()) {
                // Clients send every field; zeros mean "leave as is" (except a policy).
                let given = !v.is_null() && (k == "RestartPolicy" || !zero);
                if given {
                    hc_raw.insert(k.clone(), v.clone());
                }
            } else if !zero {
                return Err(ApiError::bad_request(format!(
                    "wharf cannot update {k} yet"
                )));
            }
        }
        let stored = StoredHostConfig::new(hc_raw)
            .map_err(|e| ApiError::bad_request(format!("invalid update: {e}")))?;
        let hc = stored.typed();
        if hc.auto_remove
            && hc
                .restart_policy
                .as_ref()
                .is_some_and(|r| !matches!(r.name.as_str(), "" | "no"))
        {
            return Err(ApiError::bad_request(
                "Restart policy cannot be updated because AutoRemove is enabled for the container",
            ));
        }
        let res = spec::resources(&hc).map_err(|e| ApiError::bad_request(e.0))?;
        if c.status().is_live() {
            let sdir = self.state_dir(&c.id);
            let path = sdir.join("update-resources.json");
            container::write_runtime_file(&path, &serde_json::to_vec(&res).expect("serializable"))
                .map_err(internal)?;
            shim::call(
                &sdir,
                &Request::Update {
                    resources: path.display().to_string(),
                },
            )
            .await
            .map_err(|e| ApiError::bad_request(format!("Cannot update container {}: {e}", c.id)))?;
        }
        c.update(|r| r.host_config = stored).map_err(internal)?;
        self.event(c, "update", &[]);
        Ok(())
    }

    /// `POST /containers/prune`.
    /// `POST /containers/prune` with dockerd's filters `until` (a time, or a duration back
    /// from now) and `label` / `label!` (`key` or `key=value`).
    pub async fn prune(
        self: &Arc<Self>,
        filters: &BTreeMap<String, Vec<String>>,
    ) -> Result<Value, ApiError> {
        let now = chrono::Utc::now().timestamp() as f64;
        let mut until = None;
        for u in filters.get("until").into_iter().flatten() {
            let t = crate::logs::parse_time(u)
                .or_else(|| {
                    wharf_api::units::go_duration(u)
                        .ok()
                        .map(|ns| now - ns as f64 / 1e9)
                })
                .ok_or_else(|| ApiError::bad_request(format!("invalid filter 'until={u}'")))?;
            until = Some(t);
        }
        let label_is = |labels: &Value, spec: &str| {
            let (k, v) = spec.split_once('=').unwrap_or((spec, ""));
            labels[k]
                .as_str()
                .is_some_and(|x| !spec.contains('=') || x == v)
        };
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for c in self.all() {
            if !matches!(c.status(), Status::Exited | Status::Created | Status::Dead) {
                continue;
            }
            let rec = c.snapshot();
            let created = chrono::DateTime::parse_from_rfc3339(&rec.created)
                .map(|t| t.timestamp() as f64)
                .unwrap_or(0.0);
            if until.is_some_and(|u| created >= u) {
                continue;
            }
            let labels = rec.config.get("Labels");
            if !filters
                .get("label")
                .into_iter()
                .flatten()
                .all(|l| label_is(labels, l))
                || filters
                    .get("label!")
                    .into_iter()
                    .flatten()
                    .any(|l| label_is(labels, l))
            {
                continue;
            }
            // What the writable layer held, as dockerd reports it.
            let size = self.images.layers().rw_size(&c.id).unwrap_or(0);
            if self.remove(&c, false).await.is_ok() {
                deleted.push(c.id.clone());
                reclaimed += size;
            }
        }
        Ok(json!({"ContainersDeleted": deleted, "SpaceReclaimed": reclaimed}))
    }

    /// Counts for `/info`.
    /// The reloadable options in force now.
    pub fn live(&self) -> Arc<LiveConfig> {
        self.live.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the reloadable options (wharfd's SIGHUP); what is running keeps its settings.
    pub fn set_live(&self, live: LiveConfig) {
        *self.live.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(live);
    }

    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let all = self.all();
        let n = |s: Status| all.iter().filter(|c| c.status() == s).count();
        (
            all.len(),
            n(Status::Running),
            n(Status::Paused),
            all.len() - n(Status::Running) - n(Status::Paused),
        )
    }
}

/// SIGKILL to every process of the container, through its shim (errors mean it is gone).
async fn force_kill(sdir: &std::path::Path) {
    let _ = shim::call(
        sdir,
        &Request::Kill {
            signal: 9,
            all: true,
        },
    )
    .await;
}

fn shell_join(path: &str, args: &[String]) -> String {
    std::iter::once(path)
        .chain(args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `Command` of a container in a list, as dockerd writes it: the path, then the args
/// with those holding a space in single quotes (`/bin/sh -c 'echo a > /a'`).
fn list_command(path: &str, args: &[String]) -> String {
    let mut out = path.to_string();
    for a in args {
        out.push(' ');
        if a.contains(' ') {
            out.push('\'');
            out.push_str(a);
            out.push('\'');
        } else {
            out.push_str(a);
        }
    }
    out
}

fn summary(engine: &Engine, r: &Record) -> Value {
    let created = chrono::DateTime::parse_from_rfc3339(&r.created)
        .map(|t| t.timestamp())
        .unwrap_or(0);
    let mode = match r.host_config.network_mode.as_str() {
        "" => "none",
        m => m,
    };
    json!({
        "Id": r.id,
        "Names": [r.name],
        "Image": r.config.get("Image"),
        "ImageID": r.image_id,
        "Command": list_command(&r.path, &r.args),
        "Created": created,
        "Ports": networking::port_summaries(r),
        "Labels": r.config.get("Labels"),
        "State": r.state.status.as_str(),
        "Status": container::status_line(&r.state),
        "HostConfig": {"NetworkMode": mode},
        "NetworkSettings": {"Networks": networking::network_settings(engine, r)["Networks"]},
        "Mounts": r.mounts.iter().map(|m| m.to_json()).collect::<Vec<_>>(),
    })
}

/// dockerd keeps a container's `HostConfig` as a Go struct: every field is in its inspect,
/// a field the client left out (or sent as null) with its zero value, and `IpcMode` with
/// the daemon's default (dockerd 20.10's: `shareable` on cgroup v1, `private` on v2). Clients
/// read them back (compose checks `HostConfig.Privileged`, `PidMode`, `UsernsMode`).
fn fill_host_config_defaults(hc: &mut serde_json::Map<String, Value>) {
    let ipc = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "private"
    } else {
        "shareable"
    };
    let zero: [(&str, Value); 30] = [
        ("IpcMode", json!(ipc)),
        ("PidMode", json!("")),
        ("UsernsMode", json!("")),
        ("UTSMode", json!("")),
        ("Cgroup", json!("")),
        ("CgroupParent", json!("")),
        ("ContainerIDFile", json!("")),
        ("VolumeDriver", json!("")),
        ("Isolation", json!("")),
        ("CpusetCpus", json!("")),
        ("CpusetMems", json!("")),
        ("Privileged", json!(false)),
        ("PublishAllPorts", json!(false)),
        ("ReadonlyRootfs", json!(false)),
        ("AutoRemove", json!(false)),
        ("OomScoreAdj", json!(0)),
        ("CpuShares", json!(0)),
        ("Memory", json!(0)),
        ("MemoryReservation", json!(0)),
        ("MemorySwap", json!(0)),
        ("NanoCpus", json!(0)),
        ("CpuPeriod", json!(0)),
        ("CpuQuota", json!(0)),
        ("CpuRealtimePeriod", json!(0)),
        ("CpuRealtimeRuntime", json!(0)),
        ("BlkioWeight", json!(0)),
        ("KernelMemory", json!(0)),
        ("KernelMemoryTCP", json!(0)),
        ("CpuCount", json!(0)),
        ("CpuPercent", json!(0)),
    ];
    for (k, v) in zero {
        let empty = match hc.get(k) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty() && k == "IpcMode",
            _ => false,
        };
        if empty {
            hc.insert(k.into(), v);
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn list_command_quotes_args_with_spaces_as_dockerd() {
        let args = ["-c".to_string(), "echo a > /a".to_string(), "x".to_string()];
        assert_eq!(
            super::list_command("/bin/sh", &args),
            "/bin/sh -c 'echo a > /a' x"
        );
        assert_eq!(super::list_command("sleep", &[]), "sleep");
    }
    use super::*;

    #[test]
    fn signals_parse_like_docker() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("kill").unwrap(), 9);
        assert_eq!(parse_signal("2").unwrap(), 2);
        assert_eq!(parse_signal("SIGNOPE").unwrap_err().status, 400);
    }
}
