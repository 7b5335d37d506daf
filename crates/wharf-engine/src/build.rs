//! Dockerfile builds (`POST /build`): the engine's side of [`wharf_build::Backend`].
//!
//! - FROM images come from the image store, pulled (with `X-Registry-Config` credentials)
//!   when missing or when `pull=1`;
//! - a RUN step is a container made through the engine's own create/start path (same
//!   isolation, networking, limits and seccomp as `docker run`), labelled
//!   `wharf.build=intermediate`, attached through its shim, and removed whatever the
//!   outcome; its writable layer becomes the step's layer. Containers left by a killed
//!   daemon are removed at start;
//! - COPY/ADD/WORKDIR write into a writable layer over the parent image, mounted for the step,
//!   through the same jailed extraction `docker cp` uses (the tar is unpacked by a child
//!   chrooted into the root: an image's symlinks cannot lead a write onto the host);
//! - each step's layer is registered under a lease held until its image is stored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Map, Value};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use wharf_api::ApiError;
use wharf_build::backend::{
    Backend, BackendError, FileKind, ImageInfo, LayerFn, LayerJob, NewLayer, PullPolicy, RootFs,
    RunEvent, RunMount, RunOutcome, RunSpec,
};
use wharf_shim::proto::Request as ShimRequest;

use crate::Engine;

/// The label on a build step's container.
pub const INTERMEDIATE_LABEL: &str = "wharf.build";

/// Host settings of a build's RUN containers (the `POST /build` query).
#[derive(Debug, Clone, Default)]
pub struct RunHost {
    pub extra_hosts: Vec<String>,
    pub shm_size: Option<i64>,
    /// Memory, MemorySwap, CpuShares, CpuPeriod, CpuQuota, CpusetCpus, CpusetMems.
    pub resources: Map<String, Value>,
}

/// One build's backend.
pub struct EngineBackend {
    pub engine: Arc<Engine>,
    pub host: RunHost,
    /// `X-Registry-Config`: credentials by registry.
    pub registry_config: BTreeMap<String, wharf_registry::Credentials>,
    pub cache_dir: PathBuf,
    /// The removals of finished steps' containers, run while the build goes on and awaited
    /// before the build's stream ends ([`run_build`]).
    pub removals: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

fn err(e: impl std::fmt::Display) -> BackendError {
    BackendError::new(e.to_string())
}

fn api(e: ApiError) -> BackendError {
    BackendError::new(e.message)
}

/// The build's directories under the data root.
pub fn build_root(data_root: &Path) -> PathBuf {
    data_root.join("build")
}

/// Where `RUN --mount=type=cache` directories live, kept between builds.
pub fn cache_mounts_dir(data_root: &Path) -> PathBuf {
    build_root(data_root).join("mounts")
}

/// The cache index of the daemon's builds.
pub fn cache_index(data_root: &Path) -> std::io::Result<wharf_build::cache::CacheIndex> {
    wharf_build::cache::CacheIndex::open(&build_root(data_root).join("cache"))
}

fn registry_of(reference: &str) -> Option<String> {
    wharf_image::reference::parse(reference)
        .ok()
        .map(|r| r.domain)
}

impl EngineBackend {
    fn creds_for(&self, reference: &str) -> Option<wharf_registry::Credentials> {
        let domain = registry_of(reference)?;
        self.registry_config.iter().find_map(|(k, v)| {
            let k = k
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .trim_end_matches("/v1")
                .trim_end_matches("/v2");
            let hub =
                |d: &str| d == "docker.io" || d == "index.docker.io" || d == "registry-1.docker.io";
            (k == domain || (hub(k) && hub(&domain))).then(|| v.clone())
        })
    }

    fn info(&self, img: &wharf_image::Image) -> ImageInfo {
        ImageInfo {
            id: img.id.clone(),
            doc: img.raw_config.clone(),
        }
    }

    /// The create body of a RUN step's container; `image_roots` are the host paths of the
    /// `RunMount::Image` sources, in order.
    fn create_body(&self, spec: &RunSpec, image_roots: &[PathBuf]) -> Value {
        let mut image_roots = image_roots.iter();
        let mut host = self.host.resources.clone();
        host.insert(
            "NetworkMode".into(),
            json!(spec.network.clone().unwrap_or_else(|| "default".into())),
        );
        if !self.host.extra_hosts.is_empty() {
            host.insert("ExtraHosts".into(), json!(self.host.extra_hosts));
        }
        if let Some(s) = self.host.shm_size {
            host.insert("ShmSize".into(), json!(s));
        }
        host.insert("LogConfig".into(), json!({"Type": "none", "Config": {}}));
        let mounts: Vec<Value> = spec
            .mounts
            .iter()
            .map(|m| match m {
                RunMount::Bind {
                    source,
                    target,
                    readonly,
                } => json!({"Type": "bind", "Source": source, "Target": target, "ReadOnly": readonly}),
                RunMount::Tmpfs { target, size } => {
                    let mut t = json!({"Type": "tmpfs", "Target": target});
                    if *size > 0 {
                        t["TmpfsOptions"] = json!({"SizeBytes": size});
                    }
                    t
                }
                RunMount::Image {
                    target, readonly, ..
                } => {
                    let source = image_roots.next().cloned().unwrap_or_default();
                    json!({"Type": "bind", "Source": source, "Target": target, "ReadOnly": readonly})
                }
            })
            .collect();
        if !mounts.is_empty() {
            host.insert("Mounts".into(), json!(mounts));
        }
        json!({
            "Image": spec.image,
            "Cmd": spec.argv,
            "Entrypoint": [],
            "Env": spec.env,
            "User": spec.user,
            "WorkingDir": spec.workdir,
            "Labels": {INTERMEDIATE_LABEL: "intermediate"},
            "AttachStdout": true,
            "AttachStderr": true,
            "HostConfig": Value::Object(host),
        })
    }
}

/// The writable layer of a step, mounted.
struct MountedRoot {
    root: PathBuf,
    /// The daemon's `--userns-remap` mapping: what COPY writes is owned by the host ids of
    /// the container ids it names, as the layers below it are.
    ids: Option<wharf_image::IdMap>,
}

impl RootFs for MountedRoot {
    fn stat(&self, path: &str) -> Option<FileKind> {
        let p = crate::archive::resolve_in_root(&self.root, path, true).ok()?;
        let m = std::fs::symlink_metadata(p).ok()?;
        Some(if m.is_dir() {
            FileKind::Dir
        } else if m.is_file() {
            FileKind::File
        } else {
            FileKind::Other
        })
    }

    fn lookup_user(&self, spec: &str) -> Result<(u32, u32), String> {
        crate::spec::resolve_user(&self.root, spec).map_err(|e| e.0)
    }

    fn extract(&self, tar: &mut dyn std::io::Read) -> Result<(), String> {
        let jail = crate::archive::Jail::Stopped {
            root: self.root.clone(),
            mounts: Vec::new(),
        };
        let opts = crate::archive::ExtractOptions {
            ids: self.ids.clone(),
            ..Default::default()
        };
        crate::archive::extract_in(&jail, "/", "build", tar, &opts).map_err(|e| e.message)
    }
}

/// A writable layer made for a step (and what is mounted of it), undone on drop.
struct StepLayer {
    images: Arc<wharf_image::ImageStore>,
    id: String,
    mnt: Option<PathBuf>,
}

impl StepLayer {
    fn new(
        images: &Arc<wharf_image::ImageStore>,
        parent: Option<&str>,
    ) -> Result<StepLayer, BackendError> {
        let id = format!("build-{}", crate::names::new_id());
        images.layers().create_rw(&id, parent).map_err(err)?;
        let mut l = StepLayer {
            images: images.clone(),
            id,
            mnt: None,
        };
        let mnt = images.layers().scratch_mountpoint("build");
        images.layers().mount_rw(&l.id, &mnt).map_err(err)?;
        l.mnt = Some(mnt);
        Ok(l)
    }
}

impl Drop for StepLayer {
    fn drop(&mut self) {
        if let Some(m) = self.mnt.take() {
            let _ = self.images.layers().unmount_rw(&self.id, &m);
            let _ = std::fs::remove_dir(&m);
        }
        let _ = self.images.layers().remove_rw(&self.id);
    }
}

/// The changes of writable layer `id` registered as a layer over `parent`; `None` when it
/// changed nothing.
fn register_changes(
    images: &wharf_image::ImageStore,
    id: &str,
    parent: Option<&str>,
    mount_targets: &[String],
) -> Result<Option<NewLayer>, BackendError> {
    images
        .layers()
        .remove_mount_stubs(id, mount_targets)
        .map_err(err)?;
    if images.layers().changes(id).map_err(err)?.is_empty() {
        return Ok(None);
    }
    let tmp = images
        .layers()
        .root_tmp()
        .join(format!("build-{id}-{}.tar", crate::names::new_id()));
    let r = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        images.layers().diff_tar(id, &mut f).map_err(err)?;
        f.sync_all().map_err(err)?;
        drop(f);
        let f = std::fs::File::open(&tmp).map_err(err)?;
        let lease = images.layers().lease();
        let layer = images.layers().register(&lease, parent, f).map_err(err)?;
        Ok(Some(NewLayer {
            diff_id: layer.diff_id,
            hold: Box::new(lease),
        }))
    })();
    let _ = std::fs::remove_file(&tmp);
    r
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, BackendError> {
    tokio::task::spawn_blocking(f).await.map_err(err)
}

impl Backend for EngineBackend {
    async fn image(
        &self,
        reference: &str,
        policy: &PullPolicy,
        progress: &(dyn Fn(Value) + Send + Sync),
    ) -> Result<ImageInfo, BackendError> {
        let images = self.engine.images.clone();
        if !policy.always {
            if let Ok(img) = images.resolve(reference) {
                return Ok(self.info(&img));
            }
        }
        let platform = match &policy.platform {
            Some(p) if !p.is_empty() => {
                Some(wharf_image::platform::Platform::parse(p).map_err(err)?)
            }
            _ => None,
        };
        let (tx, mut rx) = mpsc::channel::<bytes::Bytes>(64);
        let engine = self.engine.clone();
        let (r, creds) = (reference.to_string(), self.creds_for(reference));
        let job = tokio::spawn(async move {
            crate::pull::pull(&engine, &r, false, platform, creds, &tx).await
        });
        while let Some(b) = rx.recv().await {
            for line in b.split(|c| *c == b'\n').filter(|l| !l.is_empty()) {
                if let Ok(v) = serde_json::from_slice::<Value>(line) {
                    progress(v);
                }
            }
        }
        job.await.map_err(err)?.map_err(api)?;
        let img = images
            .resolve(reference)
            .map_err(|e| BackendError::new(e.to_string()))?;
        Ok(self.info(&img))
    }

    fn local_image(&self, reference: &str) -> Option<ImageInfo> {
        self.engine
            .images
            .resolve(reference)
            .ok()
            .map(|i| self.info(&i))
    }

    fn image_by_id(&self, id: &str) -> Option<ImageInfo> {
        let img = self.engine.images.resolve(id).ok()?;
        (img.id == id).then(|| self.info(&img))
    }

    async fn run(
        &self,
        spec: RunSpec,
        events: &(dyn Fn(RunEvent) + Send + Sync),
    ) -> Result<RunOutcome, BackendError> {
        let engine = self.engine.clone();
        let t0 = std::time::Instant::now();
        // The images some mounts come from, each a writable layer of its own (what the step
        // writes there goes with it), the source resolved inside it.
        let mut image_layers = Vec::new();
        let mut image_roots = Vec::new();
        for m in &spec.mounts {
            if let RunMount::Image { image, source, .. } = m {
                let images = engine.images.clone();
                let top = images.resolve(image).map_err(err)?.top_layer;
                let source = source.clone();
                let (layer, root) =
                    blocking(move || -> Result<(StepLayer, PathBuf), BackendError> {
                        let l = StepLayer::new(&images, top.as_deref())?;
                        let mnt = l.mnt.clone().expect("mounted");
                        let p =
                            crate::archive::resolve_in_root(&mnt, &source, true).map_err(api)?;
                        if std::fs::symlink_metadata(&p).is_err() {
                            return Err(BackendError::new(format!(
                                "RUN --mount=type=bind,from=...: {source} not found in the image"
                            )));
                        }
                        Ok((l, p))
                    })
                    .await??;
                image_layers.push(layer);
                image_roots.push(root);
            }
        }
        let t_mounts = t0.elapsed();
        let body = serde_json::to_vec(&self.create_body(&spec, &image_roots)).map_err(err)?;
        let req = wharf_api::types::CreateRequest::parse(&body).map_err(api)?;
        let (id, _) = engine.create(None, req).await.map_err(api)?;
        let c = engine.lookup(&id).map_err(api)?;
        let t_create = t0.elapsed();
        events(RunEvent::Started(id.clone()));
        let mut phases = Phases {
            t0: Some(t0),
            ..Phases::default()
        };
        let outcome = run_attached(&engine, &c, events, &mut phases).await;
        let t_run = t0.elapsed();
        // The container goes whatever happened; its layer first, if the step succeeded.
        let layer = match &outcome {
            Ok(0) => {
                let images = engine.images.clone();
                let parent = images.resolve(&spec.image).map_err(err)?.top_layer;
                let id2 = id.clone();
                let targets: Vec<String> = spec
                    .mounts
                    .iter()
                    .map(|m| match m {
                        RunMount::Bind { target, .. }
                        | RunMount::Tmpfs { target, .. }
                        | RunMount::Image { target, .. } => target.clone(),
                    })
                    .collect();
                blocking(move || register_changes(&images, &id2, parent.as_deref(), &targets))
                    .await?
            }
            _ => Ok(None),
        };
        let t_layer = t0.elapsed();
        tracing::debug!(
            "build step {}: mounts {:?}, create {:?}, start {:?}, run {:?}, wait {:?}, \
             layer {:?}",
            &id[..12],
            t_mounts,
            t_create - t_mounts,
            phases.started.saturating_sub(t_create),
            phases.output_done.saturating_sub(phases.started),
            t_run.saturating_sub(phases.output_done),
            t_layer - t_run,
        );
        // The step's result is known: its exited container (and the image mounts) go while
        // the build goes on; the build's stream ends only once they are gone.
        let removal = tokio::spawn(async move {
            let t = std::time::Instant::now();
            if let Err(e) = engine.remove(&c, true).await {
                tracing::warn!("removing build container {id}: {}", e.message);
            }
            let _ = blocking(move || drop(image_layers)).await;
            tracing::debug!("build step {}: removed in {:?}", &id[..12], t.elapsed());
        });
        self.removals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(removal);
        let exit_code = outcome?;
        Ok(RunOutcome {
            exit_code,
            layer: layer?,
        })
    }

    async fn with_layer(
        &self,
        image: Option<&str>,
        sources: &[String],
        job: LayerFn,
    ) -> Result<Option<NewLayer>, BackendError> {
        let images = self.engine.images.clone();
        let parent = match image {
            Some(i) => images.resolve(i).map_err(err)?.top_layer,
            None => None,
        };
        let ids = self
            .engine
            .id_map(&wharf_api::types::HostConfig::default())
            .cloned();
        let mut source_tops = Vec::new();
        for s in sources {
            source_tops.push(images.resolve(s).map_err(err)?.top_layer);
        }
        blocking(move || {
            let step = StepLayer::new(&images, parent.as_deref())?;
            let mut src_layers = Vec::new();
            for top in &source_tops {
                src_layers.push(StepLayer::new(&images, top.as_deref())?);
            }
            let roots: Vec<PathBuf> = src_layers.iter().filter_map(|l| l.mnt.clone()).collect();
            let root = MountedRoot {
                root: step.mnt.clone().expect("mounted"),
                ids,
            };
            job(LayerJob {
                root: &root,
                sources: &roots,
            })
            .map_err(BackendError::new)?;
            drop(src_layers);
            register_changes(&images, &step.id, parent.as_deref(), &[])
        })
        .await?
    }

    async fn stack_layer(&self, image: &str, diff_id: &str) -> Result<NewLayer, BackendError> {
        let images = self.engine.images.clone();
        let parent = images.resolve(image).map_err(err)?.top_layer;
        let diff_id = diff_id.to_string();
        blocking(move || {
            // A layer made on scratch: its chain id is its diff id, its tar in the content
            // store as received.
            let tar = images.layers().layer_tar(&diff_id);
            let f = std::fs::File::open(&tar)
                .map_err(|e| BackendError::new(format!("{}: {e}", tar.display())))?;
            let lease = images.layers().lease();
            let layer = images
                .layers()
                .register_checked(&lease, parent.as_deref(), f, Some(&diff_id))
                .map_err(err)?;
            Ok(NewLayer {
                diff_id: layer.diff_id,
                hold: Box::new(lease),
            })
        })
        .await?
    }

    async fn fetch(
        &self,
        url: &str,
        dir: &Path,
    ) -> Result<wharf_build::backend::Fetched, BackendError> {
        fetch_url(url, dir).await.map_err(BackendError::new)
    }

    fn put_image(&self, doc: &Value) -> Result<String, BackendError> {
        self.engine
            .images
            .put_image(doc, &[])
            .map(|i| i.id)
            .map_err(err)
    }

    fn tag(&self, id: &str, reference: &str) -> Result<(), BackendError> {
        self.engine.images.tag(id, reference).map_err(err)?;
        self.engine.events.publish(
            "image",
            "tag",
            id,
            BTreeMap::from([("name".to_string(), reference.to_string())]),
        );
        Ok(())
    }

    fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    fn host_ids(&self, uid: u32, gid: u32) -> Result<(u32, u32), BackendError> {
        match self.engine.id_map(&wharf_api::types::HostConfig::default()) {
            Some(m) => m.to_host(uid, gid).map_err(BackendError::new),
            None => Ok((uid, gid)),
        }
    }

    fn secrets_dir(&self) -> PathBuf {
        // The exec-root is a tmpfs (/run/wharf by default): secrets never reach a disk.
        self.engine.cfg.exec_root.join("build-secrets")
    }
}

/// Starts `c` with its stdout and stderr attached; its exit code.
/// When a RUN step's phases ended, since the step began (for the debug log).
#[derive(Default)]
struct Phases {
    t0: Option<std::time::Instant>,
    /// The runtime's create and start done.
    started: std::time::Duration,
    output_done: std::time::Duration,
}

async fn run_attached(
    engine: &Arc<Engine>,
    c: &Arc<crate::container::Container>,
    events: &(dyn Fn(RunEvent) + Send + Sync),
    phases: &mut Phases,
) -> Result<i32, BackendError> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(u8, Vec<u8>)>();
    c.pending_attach.fetch_add(1, Ordering::SeqCst);
    let gen0 = c.snapshot().generation;
    let attach = {
        let (engine, c) = (engine.clone(), c.clone());
        tokio::spawn(async move {
            let mut w = c.watch();
            loop {
                let (_, gen) = *w.borrow_and_update();
                if gen > gen0 || w.changed().await.is_err() {
                    break;
                }
            }
            let sdir = engine.shim_dir(&c.id);
            let conn = crate::shim::request(
                &sdir,
                &ShimRequest::Attach {
                    stdin: false,
                    stdout: true,
                    stderr: true,
                },
            )
            .await;
            engine.attach_registered(&c);
            let Ok((Ok(_), mut s)) = conn else {
                return;
            };
            // Docker's multiplexed frames: [stream, 0, 0, 0, size u32 BE] then the data.
            let mut head = [0u8; 8];
            loop {
                if s.read_exact(&mut head).await.is_err() {
                    break;
                }
                let n = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
                let mut data = vec![0u8; n];
                if s.read_exact(&mut data).await.is_err() {
                    break;
                }
                if tx.send((head[0], data)).is_err() {
                    break;
                }
            }
        })
    };
    if let Err(e) = engine.start(c).await {
        attach.abort();
        return Err(BackendError::new(e.message));
    }
    let since = |t: Option<std::time::Instant>| t.map(|t| t.elapsed()).unwrap_or_default();
    phases.started = since(phases.t0);
    while let Some((stream, data)) = rx.recv().await {
        events(if stream == 2 {
            RunEvent::Stderr(data)
        } else {
            RunEvent::Stdout(data)
        });
    }
    let _ = attach.await;
    phases.output_done = since(phases.t0);
    engine.wait(c, "not-running").await.map_err(api)
}

/// Removes what a killed daemon's builds left: step containers and writable layers.
pub async fn clean_leftovers(engine: &Arc<Engine>) {
    let leftovers: Vec<_> = engine
        .all()
        .into_iter()
        .filter(|c| {
            c.with_record(|r| {
                let mut labels = r.config.labels.iter().flatten();
                labels.any(|(k, v)| k == INTERMEDIATE_LABEL && v == "intermediate")
            })
        })
        .collect();
    for c in leftovers {
        tracing::info!("removing build container {} left by an earlier run", c.id);
        let _ = engine.remove(&c, true).await;
    }
    let images = engine.images.clone();
    let store = context_store(&engine.cfg.data_root);
    let _ = tokio::task::spawn_blocking(move || {
        store.clean_leftovers();
        for id in images.layers().rw_ids() {
            if id.starts_with("build-") {
                let _ = images.layers().remove_rw(&id);
            }
        }
    })
    .await;
}

/// The build context of one request, removed on drop.
pub struct ContextDir {
    pub dir: PathBuf,
}

impl ContextDir {
    pub fn new(data_root: &Path) -> std::io::Result<ContextDir> {
        let dir = build_root(data_root)
            .join("tmp")
            .join(crate::names::new_id());
        std::fs::create_dir_all(&dir)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        Ok(ContextDir { dir })
    }
}

impl Drop for ContextDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs a build to the end, sending the classic builder's JSON lines to `tx`; a client that
/// goes away cancels the build at the next step.
pub async fn run_build(
    backend: EngineBackend,
    context: (ContextDir, wharf_build::tree::TarTree),
    opts: wharf_build::BuildOptions,
    tx: mpsc::Sender<bytes::Bytes>,
) {
    let (context, tree) = context;
    let cancelled = Arc::new(AtomicBool::new(false));
    let (ltx, mut lrx) = mpsc::unbounded_channel::<Value>();
    let sink: wharf_build::output::Sink = Arc::new(move |v| {
        let _ = ltx.send(v);
    });
    let forward = {
        let (tx, cancelled) = (tx.clone(), cancelled.clone());
        tokio::spawn(async move {
            while let Some(v) = lrx.recv().await {
                let mut line = serde_json::to_vec(&v).unwrap_or_default();
                line.extend_from_slice(b"\r\n");
                if tx.send(bytes::Bytes::from(line)).await.is_err() {
                    cancelled.store(true, Ordering::SeqCst);
                }
            }
        })
    };
    let engine = backend.engine.clone();
    let cache = match cache_index(&engine.cfg.data_root) {
        Ok(c) => c,
        Err(e) => {
            let _ = tx
                .send(bytes::Bytes::from(wharf_api::codec::progress_error(
                    &format!("opening the build cache: {e}"),
                )))
                .await;
            return;
        }
    };
    let backend = Arc::new(backend);
    let r = wharf_build::build(
        backend.clone(),
        cache,
        Arc::new(tree),
        context.dir.join("work"),
        opts,
        sink.clone(),
        cancelled,
    )
    .await;
    drop(sink);
    let _ = forward.await;
    let removals = std::mem::take(&mut *backend.removals.lock().unwrap_or_else(|e| e.into_inner()));
    for r in removals {
        let _ = r.await;
    }
    if let Err(e) = r {
        let mut detail = json!({"message": e.message});
        if let Some(c) = e.code {
            detail["code"] = json!(c);
        }
        let line = format!("{}\r\n", json!({"errorDetail": detail, "error": e.message}));
        let _ = tx.send(bytes::Bytes::from(line)).await;
    }
    drop(context);
}

/// What `POST /build` asks for, from its query.
pub struct BuildRequest {
    pub opts: wharf_build::BuildOptions,
    pub host: RunHost,
}

fn json_param<T: serde::de::DeserializeOwned + Default>(
    v: Option<String>,
    what: &str,
) -> Result<T, ApiError> {
    match v.filter(|s| !s.is_empty()) {
        None => Ok(T::default()),
        Some(s) => serde_json::from_str(&s)
            .map_err(|e| ApiError::bad_request(format!("invalid {what} value {s:?}: {e}"))),
    }
}

fn bool_param(v: Option<String>, default: bool) -> Result<bool, ApiError> {
    match v.as_deref() {
        None | Some("") => Ok(default),
        Some("1" | "true" | "True" | "TRUE" | "yes") => Ok(true),
        Some("0" | "false" | "False" | "FALSE" | "no") => Ok(false),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid boolean value {other:?}: use 1/0 or true/false"
        ))),
    }
}

fn int_param(v: Option<String>, what: &str) -> Result<Option<i64>, ApiError> {
    match v.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s.parse::<i64>().map(Some).map_err(|_| {
            ApiError::bad_request(format!("invalid {what} value {s:?}: not an integer"))
        }),
    }
}

impl BuildRequest {
    /// Reads the query (`get` returns every value of a key, in order).
    pub fn from_query(get: impl Fn(&str) -> Vec<String>) -> Result<BuildRequest, ApiError> {
        // The first value, as Go's FormValue: docker-py sends `dockerfile` twice (the name
        // of a Dockerfile it added to the context, then its text).
        let one = |k: &str| get(k).into_iter().next();
        if let Some(remote) = one("remote").filter(|s| !s.is_empty()) {
            return Err(ApiError::bad_request(format!(
                "building from a remote context ({remote}) is not supported yet: clone or download it and build the directory"
            )));
        }
        if one("version").as_deref() == Some("2") {
            return Err(ApiError::bad_request(
                "BuildKit sessions (version=2) are not supported: wharf serves the classic build API (DOCKER_BUILDKIT=0)",
            ));
        }
        let build_args: BTreeMap<String, Option<String>> =
            json_param(one("buildargs"), "buildargs")?;
        let labels: BTreeMap<String, String> = json_param(one("labels"), "labels")?;
        let mut tags = Vec::new();
        for t in get("t") {
            if t.is_empty() {
                continue;
            }
            let r = wharf_image::reference::parse(&t).map_err(|e| {
                ApiError::bad_request(format!("invalid reference format: {t:?}: {e}"))
            })?;
            if r.digest.is_some() {
                return Err(ApiError::bad_request(format!(
                    "invalid reference format: {t:?}: a build's tag cannot have a digest"
                )));
            }
            tags.push(t);
        }
        let mut resources = Map::new();
        for (q, field) in [
            ("memory", "Memory"),
            ("memswap", "MemorySwap"),
            ("cpushares", "CpuShares"),
            ("cpuperiod", "CpuPeriod"),
            ("cpuquota", "CpuQuota"),
        ] {
            if let Some(v) = int_param(one(q), q)?.filter(|v| *v != 0) {
                resources.insert(field.into(), json!(v));
            }
        }
        for (q, field) in [("cpusetcpus", "CpusetCpus"), ("cpusetmems", "CpusetMems")] {
            if let Some(v) = one(q).filter(|s| !s.is_empty()) {
                resources.insert(field.into(), json!(v));
            }
        }
        let extra_hosts = get("extrahosts")
            .iter()
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let network = one("networkmode").filter(|s| !s.is_empty() && s != "default");
        Ok(BuildRequest {
            opts: wharf_build::BuildOptions {
                dockerfile: String::new(),
                dockerfile_name: one("dockerfile")
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "Dockerfile".into()),
                tags,
                target: one("target").filter(|s| !s.is_empty()),
                build_args,
                labels,
                no_cache: bool_param(one("nocache"), false)?,
                pull: bool_param(one("pull"), false)?,
                quiet: bool_param(one("q"), false)?,
                network,
                platform: one("platform").filter(|s| !s.is_empty()),
                cache_from: json_param(one("cachefrom"), "cachefrom")?,
                secrets: Default::default(),
            },
            host: RunHost {
                extra_hosts,
                shm_size: int_param(one("shmsize"), "shmsize")?.filter(|v| *v > 0),
                resources,
            },
        })
    }
}

/// The header `wharf build --secret` sends its secrets in (base64 of a JSON object of id →
/// base64 value): wharf's own, since the classic API has no secrets and wharfd serves no
/// BuildKit session. Other daemons ignore it, so the CLI sends it to wharfd only.
pub const SECRETS_HEADER: &str = "X-Wharf-Build-Secrets";

/// The most the secrets header may carry (hyper's header buffer is far larger; secrets are
/// tokens and keys).
const MAX_SECRETS: usize = 64 << 10;

/// Parses [`SECRETS_HEADER`].
pub fn build_secrets(header: Option<&str>) -> Result<wharf_build::executor::Secrets, ApiError> {
    use base64::Engine as _;
    let mut out = wharf_build::executor::Secrets::default();
    let Some(h) = header.filter(|h| !h.is_empty()) else {
        return Ok(out);
    };
    let bad =
        |why: String| ApiError::bad_request(format!("invalid {SECRETS_HEADER} header: {why}"));
    if h.len() > MAX_SECRETS {
        return Err(bad(format!(
            "more than {} KiB of secrets",
            MAX_SECRETS >> 10
        )));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let json = b64.decode(h.trim()).map_err(|e| bad(e.to_string()))?;
    let map: BTreeMap<String, String> =
        serde_json::from_slice(&json).map_err(|e| bad(e.to_string()))?;
    for (id, v) in map {
        if id.is_empty() || id.contains('/') {
            return Err(bad(format!("invalid secret id {id:?}")));
        }
        let value = b64
            .decode(v)
            .map_err(|e| bad(format!("secret {id}: {e}")))?;
        out.0.insert(id, value);
    }
    Ok(out)
}

/// `X-Registry-Config`: base64 (URL-safe or standard) JSON of registry → auth config.
pub fn registry_config(
    header: Option<&str>,
) -> Result<BTreeMap<String, wharf_registry::Credentials>, ApiError> {
    use base64::Engine as _;
    let Some(h) = header.map(str::trim).filter(|h| !h.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(h)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(h))
        .or_else(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h.trim_end_matches('='))
        })
        .map_err(|e| ApiError::bad_request(format!("invalid X-Registry-Config header: {e}")))?;
    serde_json::from_slice(&raw)
        .map_err(|e| ApiError::bad_request(format!("invalid X-Registry-Config header: {e}")))
}

/// Receives a build context (a tar, gzip-compressed or not) as one indexed file of its own
/// (`wharf_build::tree::TarTree`: nothing is unpacked), and reads the Dockerfile from it.
/// The `.dockerignore` of the context removes the Dockerfile and itself when it excludes
/// them, as the classic builder does (clients send them regardless; they filter the rest).
pub async fn receive_context<B>(
    engine: &Arc<Engine>,
    body: B,
    opts: &mut wharf_build::BuildOptions,
) -> Result<(ContextDir, wharf_build::tree::TarTree), ApiError>
where
    B: hyper::body::Body + Unpin,
    B::Error: std::fmt::Display,
{
    use wharf_build::tree::TarTree;
    let ctx = ContextDir::new(&engine.cfg.data_root)
        .map_err(|e| ApiError::internal(format!("making the build context directory: {e}")))?;
    let (r, w) = crate::upload::pipe().map_err(|e| ApiError::internal(e.to_string()))?;
    let file = ctx.dir.join("context.tar");
    let job = tokio::task::spawn_blocking(move || -> Result<TarTree, String> {
        let mut r = std::io::BufReader::with_capacity(256 * 1024, r);
        use std::io::BufRead;
        let head = r.fill_buf().map_err(|e| e.to_string())?.to_vec();
        let mut reader: Box<dyn std::io::Read> = if head.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::GzDecoder::new(r))
        } else if head.is_empty() {
            // No context at all: an empty tar (a Dockerfile-only build has one).
            Box::new(std::io::Cursor::new(vec![0u8; 1024]))
        } else {
            Box::new(r)
        };
        TarTree::receive(&mut reader, &file)
    });
    let fed = w.feed(body).await;
    let received = job.await.map_err(|e| ApiError::internal(e.to_string()))?;
    if let Err(e) = fed {
        return Err(ApiError::bad_request(format!(
            "reading the build context: {e}"
        )));
    }
    let tree =
        received.map_err(|e| ApiError::bad_request(format!("reading the build context: {e}")))?;
    Ok((ctx, read_dockerfile(tree, opts)?))
}

/// Reads the Dockerfile from the context; its `.dockerignore` removes the Dockerfile and
/// itself when it excludes them.
fn read_dockerfile(
    mut tree: wharf_build::tree::TarTree,
    opts: &mut wharf_build::BuildOptions,
) -> Result<wharf_build::tree::TarTree, ApiError> {
    use wharf_build::tree;
    let name = opts.dockerfile_name.clone();
    let rel = wharf_build::copy::clean_source(&name).map_err(|_| {
        ApiError::bad_request(format!(
            "The Dockerfile ({name}) must be within the build context"
        ))
    })?;
    let resolved = tree::resolve(&tree, &rel)
        .filter(|p| tree::Tree::lstat(&tree, p).is_some_and(|m| m.kind == tree::NodeKind::File));
    let Some(resolved) = resolved else {
        return Err(ApiError::bad_request(format!(
            "Cannot locate specified Dockerfile: {name}"
        )));
    };
    let text = tree::read_to_vec(&tree, &resolved, 64 << 20)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    opts.dockerfile = String::from_utf8(text)
        .map_err(|_| ApiError::bad_request(format!("the Dockerfile {name} is not UTF-8 text")))?;
    let matcher = wharf_build::dockerignore::Matcher::for_tree(&tree, &rel)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    for f in [rel.as_str(), ".dockerignore"] {
        if matcher.excludes(f) {
            tree.remove(f);
        }
    }
    Ok(tree)
}

/// The header of a `POST /build` whose body holds only the entries a synced context needs:
/// the token `POST /build/context` answered.
pub const CONTEXT_HEADER: &str = "X-Wharf-Build-Context";

/// The kept contexts of the daemon of `data_root` (one store per data root).
pub fn context_store(data_root: &Path) -> Arc<wharf_build::synced::Store> {
    static STORES: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<PathBuf, Arc<wharf_build::synced::Store>>>,
    > = std::sync::OnceLock::new();
    let mut g = STORES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    g.entry(data_root.to_path_buf())
        .or_insert_with(|| {
            Arc::new(wharf_build::synced::Store::new(
                &build_root(data_root).join("contexts"),
            ))
        })
        .clone()
}

/// Listings answered and not yet followed by their build, by token.
type PendingMap =
    std::collections::HashMap<String, (std::time::Instant, wharf_build::synced::Pending)>;

fn pending() -> std::sync::MutexGuard<'static, PendingMap> {
    static PENDING: std::sync::OnceLock<std::sync::Mutex<PendingMap>> = std::sync::OnceLock::new();
    PENDING
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// How long an answered listing waits for its build.
const PENDING_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// `POST /build/context?id=`: the client's listing (`{"root": .., "entries": [[path, key],
/// ..]}`) against the context kept under `id`; answers `{"Token": .., "Need": [index, ..]}`.
pub async fn context_listing(
    engine: &Arc<Engine>,
    id: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let listing: wharf_build::synced::Listing = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid context listing: {e}")))?;
    let store = context_store(&engine.cfg.data_root);
    let id = id.to_string();
    let p = tokio::task::spawn_blocking(move || store.begin(&id, listing))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(ApiError::bad_request)?;
    let need = p.need.clone();
    let token = crate::names::new_id();
    let mut g = pending();
    g.retain(|_, (t, _)| t.elapsed() < PENDING_TTL);
    g.insert(token.clone(), (std::time::Instant::now(), p));
    Ok(json!({"Token": token, "Need": need}))
}

/// Receives the entries a listing asked for (a tar, gzip-compressed or not) into the kept
/// context, and reads the Dockerfile from the tree it makes.
pub async fn receive_synced<B>(
    engine: &Arc<Engine>,
    token: &str,
    body: B,
    opts: &mut wharf_build::BuildOptions,
) -> Result<(ContextDir, wharf_build::tree::TarTree), ApiError>
where
    B: hyper::body::Body + Unpin,
    B::Error: std::fmt::Display,
{
    let p = pending()
        .remove(token)
        .map(|(_, p)| p)
        .ok_or_else(|| ApiError::bad_request(format!("unknown build context token {token:?}")))?;
    let ctx = ContextDir::new(&engine.cfg.data_root)
        .map_err(|e| ApiError::internal(format!("making the build context directory: {e}")))?;
    let (r, w) = crate::upload::pipe().map_err(|e| ApiError::internal(e.to_string()))?;
    let store = context_store(&engine.cfg.data_root);
    let job = tokio::task::spawn_blocking(move || {
        let mut r = std::io::BufReader::with_capacity(256 * 1024, r);
        use std::io::BufRead;
        let head = r.fill_buf().map_err(|e| e.to_string())?.to_vec();
        let mut reader: Box<dyn std::io::Read> = if head.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::GzDecoder::new(r))
        } else if head.is_empty() {
            Box::new(std::io::Cursor::new(vec![0u8; 1024]))
        } else {
            Box::new(r)
        };
        store.finish(p, &mut reader)
    });
    let fed = w.feed(body).await;
    let received = job.await.map_err(|e| ApiError::internal(e.to_string()))?;
    if let Err(e) = fed {
        return Err(ApiError::bad_request(format!(
            "reading the build context: {e}"
        )));
    }
    let tree =
        received.map_err(|e| ApiError::bad_request(format!("reading the build context: {e}")))?;
    Ok((ctx, read_dockerfile(tree, opts)?))
}

/// `POST /build/prune`: drops the build cache (entries and the step images only it kept:
/// untagged and used by no container), and the layers no image needs any more. The
/// `until` filter keeps entries used more recently than the given time.
pub async fn prune(engine: &Arc<Engine>, until: Option<i64>) -> Result<Value, ApiError> {
    let cache =
        cache_index(&engine.cfg.data_root).map_err(|e| ApiError::internal(e.to_string()))?;
    let e2 = engine.clone();
    let (deleted, reclaimed) = tokio::task::spawn_blocking(move || {
        let mut deleted = Vec::new();
        for (key, rec) in cache.list() {
            if until.is_some_and(|t| rec.last_used >= t) {
                continue;
            }
            if cache.remove(&key).is_err() {
                continue;
            }
            deleted.push(key);
            let Ok(img) = e2.images.resolve(&rec.image) else {
                continue;
            };
            if img.id != rec.image || !img.repo_tags.is_empty() {
                continue;
            }
            let e3 = e2.clone();
            if let Ok(items) = e2
                .images
                .remove(&img.id, false, &|id| e3.container_using_image(id))
            {
                for i in items {
                    if let wharf_image::DeleteResponseItem::Deleted(d) = i {
                        e2.events.publish("image", "delete", &d, BTreeMap::new());
                    }
                }
            }
        }
        let reclaimed = e2.images.gc_layers().unwrap_or(0);
        let mounts = cache_mounts_dir(&e2.cfg.data_root);
        let mut mount_bytes = 0;
        if until.is_none() {
            if let Ok(rd) = std::fs::read_dir(&mounts) {
                for e in rd.flatten() {
                    mount_bytes += dir_size(&e.path());
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let (contexts, context_bytes) = context_store(&e2.cfg.data_root).prune(until);
        deleted.extend(contexts);
        (deleted, reclaimed + mount_bytes + context_bytes)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(json!({"CachesDeleted": deleted, "SpaceReclaimed": reclaimed}))
}

fn dir_size(p: &Path) -> u64 {
    let Ok(m) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !m.is_dir() {
        return m.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

/// `system df`'s BuildCache: one record per cache entry.
pub fn df_records(engine: &Engine) -> Vec<Value> {
    let Ok(cache) = cache_index(&engine.cfg.data_root) else {
        return Vec::new();
    };
    let ts = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    let contexts = context_store(&engine.cfg.data_root)
        .list()
        .into_iter()
        .map(|k| {
            json!({
                "ID": &k.id[..25],
                "Parent": "",
                "Parents": [],
                "Type": "source.local",
                "Description": "local source for context",
                "InUse": false,
                "Shared": false,
                "Size": k.size,
                "CreatedAt": ts(k.last_used),
                "LastUsedAt": ts(k.last_used),
                "UsageCount": 1,
            })
        })
        .collect::<Vec<_>>();
    cache
        .list()
        .into_iter()
        .map(|(key, r)| {
            let used = engine
                .images
                .resolve(&r.image)
                .is_ok_and(|i| !i.repo_tags.is_empty());
            json!({
                "ID": &key[..25.min(key.len())],
                "Parent": "",
                "Parents": [],
                "Type": "regular",
                "Description": r.description,
                "InUse": used,
                "Shared": false,
                "Size": 0,
                "CreatedAt": ts(r.created),
                "LastUsedAt": ts(r.last_used),
                "UsageCount": 1,
            })
        })
        .chain(contexts)
        .collect()
}

/// A URL's parts: (https, host:port, path and query).
fn split_url(url: &str) -> Result<(bool, String, String), String> {
    if !url.starts_with("https://") && !url.starts_with("http://") {
        return Err(format!(
            "{url}: only http:// and https:// URLs can be added"
        ));
    }
    let u = wharf_registry::transport::Url::parse(url).ok_or_else(|| format!("{url}: no host"))?;
    Ok((u.https, u.host, u.path))
}

/// Downloads `url` to a new file in `dir` (redirects followed, up to 10; https verified).
pub async fn fetch_url(url: &str, dir: &Path) -> Result<wharf_build::backend::Fetched, String> {
    use http_body_util::BodyExt;
    use sha2::Digest;
    use tokio::io::AsyncWriteExt;
    let mut url = url.to_string();
    for _ in 0..10 {
        let (tls, host, path) = split_url(&url)?;
        let cfg = tls.then(|| wharf_registry::transport::client_config(&host, false));
        let io = wharf_registry::transport::connect(&host, cfg.as_ref())
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
                .await
                .map_err(|e| format!("{url}: {e}"))?;
        tokio::spawn(conn);
        let host_header = wharf_registry::transport::host_header(&host, tls).to_string();
        let req = hyper::Request::get(&path)
            .header("Host", host_header)
            .header("User-Agent", "wharf-build")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .map_err(|e| format!("{url}: {e}"))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status();
        if status.is_redirection() {
            let loc = resp
                .headers()
                .get("Location")
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| format!("{url}: redirect without a Location"))?;
            url = if loc.starts_with("http://") || loc.starts_with("https://") {
                loc.to_string()
            } else {
                let (_, h, _) = split_url(&url)?;
                format!("{}://{h}{loc}", if tls { "https" } else { "http" })
            };
            continue;
        }
        if !status.is_success() {
            return Err(format!(
                "failed to GET {url} with status {status}: download it yourself and ADD the file"
            ));
        }
        let mtime = resp
            .headers()
            .get("Last-Modified")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
            .map(|d| d.timestamp().max(0) as u64);
        let path = dir.join(format!("download-{}", crate::names::new_id()));
        let mut f = tokio::fs::File::create(&path)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let mut h = sha2::Sha256::new();
        let mut size = 0u64;
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("{url}: {e}"))?;
            if let Ok(data) = frame.into_data() {
                h.update(&data);
                size += data.len() as u64;
                f.write_all(&data)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        f.flush().await.map_err(|e| e.to_string())?;
        return Ok(wharf_build::backend::Fetched {
            path,
            digest: format!("sha256:{}", hex::encode(h.finalize())),
            size,
            mtime,
        });
    }
    Err(format!("{url}: more than 10 redirects"))
}
