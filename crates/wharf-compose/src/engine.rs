//! The seam to the engine: the Engine API calls compose makes, as a small async trait.
//! `wharf-cli` implements it over its HTTP client (so it drives wharfd and dockerd alike);
//! the planner's tests use a fake.

use serde_json::Value;
use std::collections::BTreeMap;

/// An engine's refusal or a transport failure.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct EngineError {
    /// The HTTP status when the daemon answered (404: no such object).
    pub status: Option<u16>,
    pub message: String,
}

impl EngineError {
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }
}

pub type EngineResult<T> = std::result::Result<T, EngineError>;

/// A container as `GET /containers/json` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSummary {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    /// `created`, `running`, `exited`, `paused`, ...
    pub state: String,
    /// The `Status` column (`Up 2 seconds`).
    pub status: String,
    pub image: String,
    pub command: String,
    pub labels: BTreeMap<String, String>,
    /// Unix seconds.
    pub created: i64,
    /// The published ports as `docker ps` shows them.
    pub ports: String,
}

impl ContainerSummary {
    pub fn label(&self, k: &str) -> Option<&str> {
        self.labels.get(k).map(String::as_str)
    }
}

/// A network or volume as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// What `inspect` tells about a container's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    pub status: String,
    pub exit_code: i64,
    /// `State.Health.Status` (`starting`, `healthy`, `unhealthy`) when it has a healthcheck.
    pub health: Option<String>,
}

/// A chunk of a container's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    /// 1 stdout, 2 stderr.
    pub stream: u8,
    pub data: Vec<u8>,
}

/// What following a container's log yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvent {
    Chunk(LogChunk),
    /// The log ended: the container stopped, with this exit code.
    End {
        exit_code: i64,
    },
}

/// A secret a build may mount, from a file or a variable of compose's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSecret {
    pub id: String,
    pub file: Option<std::path::PathBuf>,
    pub env: Option<String>,
}

/// What a service's build asks `POST /build` for (see [`crate::build::request`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRequest {
    pub service: String,
    pub context: std::path::PathBuf,
    /// Absolute (the context joined with `dockerfile`); `None`: the context's `Dockerfile`.
    pub dockerfile: Option<String>,
    pub dockerfile_inline: Option<String>,
    /// The image name first, then `tags`.
    pub tags: Vec<String>,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub cache_from: Vec<String>,
    pub network: Option<String>,
    /// `host:ip`.
    pub extra_hosts: Vec<String>,
    pub shm_size: Option<String>,
    pub secrets: Vec<BuildSecret>,
    pub no_cache: bool,
    pub pull: bool,
    /// No build output.
    pub quiet: bool,
}

/// The Engine API calls compose needs. Bodies are Engine API JSON (`ContainerCreate`,
/// `NetworkCreate`, `VolumeCreate`), built by the planner.
#[allow(async_fn_in_trait)]
pub trait Engine {
    /// Containers with every label of `labels` (`key=value`), stopped ones too when `all`.
    async fn list_containers(
        &self,
        labels: &[String],
        all: bool,
    ) -> EngineResult<Vec<ContainerSummary>>;
    async fn create_container(&self, name: &str, body: &Value) -> EngineResult<String>;
    async fn start_container(&self, id: &str) -> EngineResult<()>;
    async fn stop_container(&self, id: &str, timeout: Option<u64>) -> EngineResult<()>;
    async fn restart_container(&self, id: &str, timeout: Option<u64>) -> EngineResult<()>;
    async fn kill_container(&self, id: &str, signal: Option<&str>) -> EngineResult<()>;
    async fn pause_container(&self, id: &str) -> EngineResult<()>;
    async fn unpause_container(&self, id: &str) -> EngineResult<()>;
    /// Waits for the container to stop (`POST /containers/{id}/wait`); its exit code.
    async fn wait_container(&self, id: &str) -> EngineResult<i64>;
    async fn remove_container(&self, id: &str, force: bool, volumes: bool) -> EngineResult<()>;
    async fn inspect_container(&self, id: &str) -> EngineResult<ContainerState>;
    /// `POST /networks/{net}/connect` with an `EndpointConfig`.
    async fn connect_network(
        &self,
        network: &str,
        container: &str,
        endpoint: &Value,
    ) -> EngineResult<()>;
    async fn list_networks(&self, labels: &[String]) -> EngineResult<Vec<Resource>>;
    /// `Ok(None)` when there is no such network.
    async fn inspect_network(&self, name: &str) -> EngineResult<Option<Resource>>;
    async fn create_network(&self, body: &Value) -> EngineResult<()>;
    async fn remove_network(&self, name: &str) -> EngineResult<()>;
    async fn list_volumes(&self, labels: &[String]) -> EngineResult<Vec<Resource>>;
    async fn inspect_volume(&self, name: &str) -> EngineResult<Option<Resource>>;
    async fn create_volume(&self, body: &Value) -> EngineResult<()>;
    async fn remove_volume(&self, name: &str) -> EngineResult<()>;
    /// The whole log so far (stdout and stderr, in order).
    async fn logs(
        &self,
        id: &str,
        tail: Option<&str>,
        timestamps: bool,
    ) -> EngineResult<Vec<LogChunk>>;
    /// Follows the logs of several containers at once (`follow=1`), giving each chunk with
    /// the index of its container as it comes, and `End` when a container's log ends; returns
    /// when all have ended.
    async fn follow_logs(
        &self,
        ids: &[String],
        tail: Option<&str>,
        timestamps: bool,
        each: &mut dyn FnMut(usize, LogEvent),
    ) -> EngineResult<()>;
    /// The image's id, `None` when there is no such image.
    async fn image_id(&self, image: &str) -> EngineResult<Option<String>>;
    /// Builds and tags an image (`POST /build`; the output is the implementation's to show).
    async fn build_image(&self, req: &BuildRequest) -> EngineResult<()>;
    /// Extracts a tar at the container's `/` (`PUT /containers/{id}/archive?path=/`), keeping
    /// the tar's owners when `copy_uid_gid`.
    async fn copy_to_container(
        &self,
        id: &str,
        tar: Vec<u8>,
        copy_uid_gid: bool,
    ) -> EngineResult<()>;
    /// Pushes an image to its registry.
    async fn push_image(&self, image: &str) -> EngineResult<()>;
    /// Pulls an image (progress is the implementation's to show or not).
    async fn pull_image(&self, image: &str) -> EngineResult<()>;
    /// Returns the container's state once it differs from `seen` (health, status or exit
    /// code), waiting on the engine's events rather than polling; an implementation may also
    /// return the same state after a while (a bounded wait).
    async fn wait_change(&self, id: &str, seen: &ContainerState) -> EngineResult<ContainerState>;
}
