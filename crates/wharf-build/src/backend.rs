//! What the executor needs from the engine: images, a way to run a command on an image and
//! keep its changes, and a way to write files into a new layer. The engine implements
//! [`Backend`] over its image store and container runtime (`wharf_engine::build`); the
//! executor never touches disks or processes itself, so it is tested against a fake.

use std::future::Future;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// A failure of the backend, as the user should read it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    pub message: String,
}

impl BackendError {
    pub fn new(message: impl Into<String>) -> Self {
        BackendError {
            message: message.into(),
        }
    }
}

/// An image as the builder sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInfo {
    /// `sha256:<hex>`.
    pub id: String,
    /// The image's config document (`architecture`, `os`, `config`, `rootfs`, `history`...).
    pub doc: Value,
}

/// How FROM and `COPY --from=<image>` get their images.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullPolicy {
    /// `pull=1`: always ask the registry for a newer image.
    pub always: bool,
    /// `os[/arch[/variant]]` asked for.
    pub platform: Option<String>,
}

/// A mount of a RUN step (`RUN --mount=...`), resolved to something on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMount {
    /// A host directory or file (a context path, a cache directory, a secret file, another
    /// stage's root) mounted at `target`.
    Bind {
        source: PathBuf,
        target: String,
        readonly: bool,
    },
    /// A tmpfs of `size` bytes (0: the kernel's default).
    Tmpfs { target: String, size: u64 },
    /// `source` of an image (another stage's, or one by name), mounted at `target`; writes
    /// to it are discarded with the step.
    Image {
        image: String,
        source: String,
        target: String,
        readonly: bool,
    },
}

/// A RUN step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    /// The image the command runs on.
    pub image: String,
    /// The whole argv (shell and script, or the exec form).
    pub argv: Vec<String>,
    /// The image's Env with the step's ARG values.
    pub env: Vec<String>,
    pub user: String,
    pub workdir: String,
    /// `--network` of the build, or the step's `RUN --network`.
    pub network: Option<String>,
    pub mounts: Vec<RunMount>,
    /// Whether the step's container is removed once it has run.
    pub removal: Removal,
}

/// Which RUN steps' containers go once they have run, as the classic builder's `rm` and
/// `forcerm` say: those of steps that succeeded unless `rm=0`; those of failed steps only
/// with `forcerm` (dockerd keeps them, to be looked at or committed). A kept container is
/// an ordinary stopped container: no longer the build's, it outlives a daemon restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removal {
    pub on_success: bool,
    pub on_failure: bool,
}

impl Default for Removal {
    /// Every container goes (what `wharf build` and the SDK's `forcerm` ask).
    fn default() -> Removal {
        Removal {
            on_success: true,
            on_failure: true,
        }
    }
}

impl Removal {
    /// The classic builder's `rm` (absent: true) and `forcerm` (which implies `rm`).
    pub fn classic(rm: bool, forcerm: bool) -> Removal {
        Removal {
            on_success: rm || forcerm,
            on_failure: forcerm,
        }
    }

    /// Whether a step of this outcome (exit code 0 or not) loses its container.
    pub fn removes(self, succeeded: bool) -> bool {
        if succeeded {
            self.on_success
        } else {
            self.on_failure
        }
    }
}

/// What a running step says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEvent {
    /// The step's container exists (its id; `Running in <id[..12]>`).
    Started(String),
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

/// A layer registered in the store and not yet referenced by an image: the store keeps it
/// while this value lives (the engine's layer lease), so a concurrent GC cannot take it.
pub struct NewLayer {
    pub diff_id: String,
    pub hold: Box<dyn std::any::Any + Send + Sync>,
}

impl std::fmt::Debug for NewLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewLayer")
            .field("diff_id", &self.diff_id)
            .finish()
    }
}

/// What a RUN step ended with.
#[derive(Debug)]
pub struct RunOutcome {
    pub exit_code: i32,
    /// The step's changes when it succeeded (`None`: it changed nothing).
    pub layer: Option<NewLayer>,
}

/// Kinds of file [`RootFs::stat`] tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Dir,
    File,
    Other,
}

/// The root of a step's new layer while files are written into it (COPY, ADD, WORKDIR).
/// Paths are the container's: the backend resolves them inside the root, symlinks included.
pub trait RootFs {
    /// What `path` is (the last component followed), or `None` if nothing is there.
    fn stat(&self, path: &str) -> Option<FileKind>;
    /// `user[:group]` (names or ids) as the image's `/etc/passwd` and `/etc/group` say.
    fn lookup_user(&self, spec: &str) -> Result<(u32, u32), String>;
    /// Extracts a tar (names relative to `/`, ownership and modes as in the headers) into
    /// the root.
    fn extract(&self, tar: &mut dyn std::io::Read) -> Result<(), String>;
}

/// What the closure given to [`Backend::with_layer`] sees.
pub struct LayerJob<'a> {
    pub root: &'a dyn RootFs,
    /// The roots of the images asked for as `sources` (read-only; `COPY --from`), in order.
    pub sources: &'a [PathBuf],
}

/// The work of a COPY/ADD/WORKDIR step inside its new layer.
pub type LayerFn = Box<dyn FnOnce(LayerJob<'_>) -> Result<(), String> + Send>;

/// A file `ADD <url>` downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub path: PathBuf,
    /// `sha256:<hex>` of its content.
    pub digest: String,
    pub size: u64,
    /// The `Last-Modified` time, as Unix seconds (the file's mtime in the image).
    pub mtime: Option<u64>,
}

/// The engine's side of a build.
pub trait Backend: Send + Sync + 'static {
    /// The image FROM (or `COPY --from`) names: the local one, pulled when missing or when
    /// the policy says always. Pull progress goes to `progress` as JSON messages.
    fn image(
        &self,
        reference: &str,
        policy: &PullPolicy,
        progress: &(dyn Fn(Value) + Send + Sync),
    ) -> impl Future<Output = Result<ImageInfo, BackendError>> + Send;

    /// A local image by reference or id, never pulled (`--cache-from`).
    fn local_image(&self, reference: &str) -> Option<ImageInfo>;

    /// An image by id, if it is (still) in the store.
    fn image_by_id(&self, id: &str) -> Option<ImageInfo>;

    /// Runs a RUN step: a container on `spec.image` whose changes, when it exits 0, become a
    /// layer. Nothing of the container is left when this returns, whatever the outcome.
    fn run(
        &self,
        spec: RunSpec,
        events: &(dyn Fn(RunEvent) + Send + Sync),
    ) -> impl Future<Output = Result<RunOutcome, BackendError>> + Send;

    /// A new layer over `image`'s (`None`: scratch), written by `job` (run off the async
    /// threads, with `sources` images mounted read-only); `None` when it changed nothing.
    fn with_layer(
        &self,
        image: Option<&str>,
        sources: &[String],
        job: LayerFn,
    ) -> impl Future<Output = Result<Option<NewLayer>, BackendError>> + Send;

    /// The layer `diff_id` (made on scratch, by `COPY --link`) stacked on `image`'s layers:
    /// the same content over another base, with no step run again.
    fn stack_layer(
        &self,
        image: &str,
        diff_id: &str,
    ) -> impl Future<Output = Result<NewLayer, BackendError>> + Send;

    /// Downloads `url` (http or https, redirects followed) into a new file under `dir`.
    fn fetch(
        &self,
        url: &str,
        dir: &Path,
    ) -> impl Future<Output = Result<Fetched, BackendError>> + Send;

    /// Stores an image config document; its id.
    fn put_image(&self, doc: &Value) -> Result<String, BackendError>;

    /// Points `reference` (`name[:tag]`) at `id`.
    fn tag(&self, id: &str, reference: &str) -> Result<(), BackendError>;

    /// A directory the build may use for the life of the build (cache mounts live under
    /// `cache_dir`, kept between builds).
    fn cache_dir(&self) -> &Path;

    /// Where a RUN step's secret files are written for the step's life: a tmpfs (they must
    /// never reach a disk), private to the daemon.
    fn secrets_dir(&self) -> PathBuf;

    /// The host ids of the container ids `uid`:`gid` of a RUN step (they differ under
    /// `--userns-remap`): what a file made for the step is owned by.
    fn host_ids(&self, uid: u32, gid: u32) -> Result<(u32, u32), BackendError> {
        Ok((uid, gid))
    }
}
