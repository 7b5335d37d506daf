//! A container: its persisted record (`config.v2.json`) and its state machine.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use wharf_api::types::{ContainerConfig, HostConfig};

/// The states Docker reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
    /// A shim holds the container (it has a live process).
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
    /// `start` is allowed (else 304 when running, 409 otherwise).
    pub fn can_start(self) -> bool {
        matches!(self, Status::Created | Status::Exited)
    }
    /// `rm` without force is allowed.
    pub fn can_remove(self) -> bool {
        !matches!(
            self,
            Status::Running | Status::Paused | Status::Restarting | Status::Removing
        )
    }
}

/// `State` as Docker reports it in inspect.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct State {
    pub status: Status,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub oom_killed: bool,
    pub started_at: String,
    pub finished_at: String,
    /// `State.Health`, for a container with a healthcheck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::health::Health>,
}

/// What is persisted for a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// With the leading slash, as Docker reports it.
    pub name: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    /// The merged `Config` (image defaults applied).
    pub config: StoredConfig,
    pub host_config: StoredHostConfig,
    pub image_id: String,
    pub state: State,
    pub restart_count: u32,
    pub log_path: String,
    pub runtime: String,
    /// Incremented by every start, so waiters can tell a new run from the old one.
    #[serde(default)]
    pub generation: u64,
    /// Set by an explicit stop, so `unless-stopped`/`always` do not restart it.
    #[serde(default)]
    pub manually_stopped: bool,
    /// The networks the container is connected to (by network name), whether it runs or not.
    #[serde(default)]
    pub networks: std::collections::BTreeMap<String, NetAttachment>,
    /// Its endpoints on them while it runs (by network name).
    #[serde(default)]
    pub endpoints: std::collections::BTreeMap<String, EndpointRecord>,
    /// Its published ports while it runs.
    #[serde(default)]
    pub ports: Vec<wharf_net::PortMapping>,
    /// Binds and volumes.
    #[serde(default)]
    pub mounts: Vec<crate::volumes::MountRecord>,
}

/// A part of a container's record in Docker's JSON shape (its `Config`, its `HostConfig`),
/// kept twice: the object inspect shows (what the client sent, merged with the image's
/// defaults or with dockerd's zero values at create; on disk, exactly that object), and the
/// typed view the engine acts on, parsed once, when the record is made or read. A record
/// that does not parse is not read at all: defaults would start the container with no
/// limits.
#[derive(Debug, Clone)]
pub struct Stored<T> {
    raw: Map<String, Value>,
    typed: Arc<T>,
}

/// The record's `HostConfig`.
pub type StoredHostConfig = Stored<HostConfig>;
/// The record's merged `Config`.
pub type StoredConfig = Stored<ContainerConfig>;

impl<T: DeserializeOwned> Stored<T> {
    /// Parses `raw` into the typed view.
    pub fn new(raw: Map<String, Value>) -> Result<Stored<T>, serde_json::Error> {
        let typed = Arc::new(serde_json::from_value(Value::Object(raw.clone()))?);
        Ok(Stored { raw, typed })
    }
}

impl<T> Stored<T> {
    /// The object as inspect shows it.
    pub fn raw(&self) -> &Map<String, Value> {
        &self.raw
    }

    /// One field of the object as inspect shows it (null when absent), for what is passed
    /// through as it came.
    pub fn get(&self, key: &str) -> &Value {
        self.raw.get(key).unwrap_or(&Value::Null)
    }

    /// The typed view, shared.
    pub fn typed(&self) -> Arc<T> {
        self.typed.clone()
    }
}

impl<T: Default> Default for Stored<T> {
    fn default() -> Self {
        Stored {
            raw: Map::new(),
            typed: Default::default(),
        }
    }
}

impl<T> std::ops::Deref for Stored<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.typed
    }
}

impl<T> Serialize for Stored<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Stored<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        // `null`, as in records made by hand, is the empty one.
        let raw = Option::<Map<String, Value>>::deserialize(d)?.unwrap_or_default();
        Stored::new(raw).map_err(|e| D::Error::custom(format!("{}: {e}", short_type::<T>())))
    }
}

/// `HostConfig` for `wharf_api::types::HostConfig`: what an error names.
fn short_type<T>() -> &'static str {
    let t = std::any::type_name::<T>();
    match t.rsplit("::").next().unwrap_or(t) {
        "ContainerConfig" => "Config",
        other => other,
    }
}

/// A container's endpoint on a network while it runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EndpointRecord {
    pub ip: String,
    pub prefix: u8,
    pub gateway: String,
    pub mac: String,
    /// `eth<index>` in the container.
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub endpoint_id: String,
    /// Its IPv6 address, prefix length and gateway, on a network with IPv6 (empty else).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip6: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prefix6: u8,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gateway6: String,
}

fn is_zero(v: &u8) -> bool {
    *v == 0
}

/// A container's connection to a network, as asked (`--network`, `--network-alias`, `--ip`,
/// `network connect`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct NetAttachment {
    pub network_id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// A static address.
    #[serde(default)]
    pub ipv4_address: Option<String>,
    /// A static IPv6 address (`--ip6`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    /// A MAC address of its own (`--mac-address`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// Links on a user network (`name[:alias]`, as given): aliases only this container
    /// resolves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
}

/// Zero time as Docker prints it for never-started containers.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A container: its record and a channel that ticks on every state change.
pub struct Container {
    pub id: String,
    pub dir: PathBuf,
    record: Mutex<Record>,
    changed: watch::Sender<(Status, u64)>,
    /// Attach requests waiting for the shim of the next start.
    pub pending_attach: std::sync::atomic::AtomicUsize,
}

impl Container {
    pub fn new(dir: PathBuf, record: Record) -> Container {
        let st = (record.state.status, record.generation);
        Container {
            id: record.id.clone(),
            dir,
            record: Mutex::new(record),
            changed: watch::channel(st).0,
            pending_attach: Default::default(),
        }
    }

    /// Loads `config.v2.json` from `dir`.
    pub fn load(dir: &Path) -> std::io::Result<Container> {
        let data = std::fs::read(dir.join("config.v2.json"))?;
        // A host config that does not parse would start the container with no limits at
        // all: the record is refused (dockerd skips a container it cannot read, too).
        let rec: Record = serde_json::from_slice(&data).map_err(|e| {
            std::io::Error::other(format!(
                "{}: the container's record cannot be read: {e}",
                dir.join("config.v2.json").display()
            ))
        })?;
        Ok(Container::new(dir.to_path_buf(), rec))
    }

    /// Reads part of the record without copying the rest.
    pub fn with_record<T>(&self, f: impl FnOnce(&Record) -> T) -> T {
        f(&self.record.lock().expect("record lock"))
    }

    /// A copy of the record.
    pub fn snapshot(&self) -> Record {
        self.record.lock().expect("record lock").clone()
    }

    pub fn status(&self) -> Status {
        self.record.lock().expect("record lock").state.status
    }

    pub fn name(&self) -> String {
        self.record.lock().expect("record lock").name.clone()
    }

    /// Changes the record, persists it atomically, and notifies watchers.
    pub fn update<T>(&self, f: impl FnOnce(&mut Record) -> T) -> std::io::Result<T> {
        let mut rec = self.record.lock().expect("record lock");
        let out = f(&mut rec);
        let data = serde_json::to_vec_pretty(&*rec).map_err(std::io::Error::other)?;
        write_atomic(&self.dir.join("config.v2.json"), &data)?;
        let st = (rec.state.status, rec.generation);
        drop(rec);
        self.changed.send_replace(st);
        Ok(out)
    }

    /// Changes the record and notifies watchers without persisting: for transient steps on the
    /// start path whose outcome the next `update` persists anyway (saves an fsync per start).
    pub fn update_volatile<T>(&self, f: impl FnOnce(&mut Record) -> T) -> T {
        let mut rec = self.record.lock().expect("record lock");
        let out = f(&mut rec);
        let st = (rec.state.status, rec.generation);
        drop(rec);
        self.changed.send_replace(st);
        out
    }

    /// A receiver that sees every (status, generation) change.
    pub fn watch(&self) -> watch::Receiver<(Status, u64)> {
        self.changed.subscribe()
    }

    /// Marks the end of the notifications (the container was removed).
    pub fn mark_removed(&self) {
        self.changed.send_replace((Status::Dead, u64::MAX));
    }
}

/// Writes `data` to `path` atomically: temp file, fsync, rename. For the data-root, whose
/// records must survive a crash of the machine. Mode 0600: a container's record carries its
/// environment (`-e` secrets).
pub use wharf_fs::write_atomic;

/// Writes a file of the exec-root (a bundle's config.json, an exec's process spec) whole or
/// not at all, without the fsync: the exec-root is runtime state (a tmpfs `/run` on a normal
/// host) that means nothing after a reboot, and the rename alone already survives a crash
/// of any process. The fsync cost a few ms per container start on a disk-backed exec-root.
pub fn write_runtime_file(path: &Path, data: &[u8]) -> std::io::Result<()> {
    wharf_fs::AtomicWrite::default()
        .mode(crate::roots::STATE_FILE_MODE)
        .durable(false)
        .write(path, data)
}

/// Docker's human duration (`units.HumanDuration`).
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let mins = s / 60;
    let hours = s / 3600;
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if mins == 1 => "About a minute".into(),
        _ if mins < 60 => format!("{mins} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

fn since(ts: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(ts)
        .map(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds())
        .unwrap_or(0)
}

/// The `Status` column of `docker ps`.
pub fn status_line(st: &State) -> String {
    match st.status {
        Status::Created => "Created".into(),
        Status::Running => {
            let up = format!("Up {}", human_duration(since(&st.started_at)));
            match st.health.as_ref().map(|h| h.status.as_str()) {
                Some(crate::health::STARTING) => format!("{up} (health: starting)"),
                Some(s) => format!("{up} ({s})"),
                None => up,
            }
        }
        Status::Paused => format!("Up {} (Paused)", human_duration(since(&st.started_at))),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            st.exit_code,
            human_duration(since(&st.finished_at))
        ),
        Status::Removing => "Removal In Progress".into(),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            st.exit_code,
            human_duration(since(&st.finished_at))
        ),
        Status::Dead => "Dead".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(61), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3600 * 3), "3 hours");
        assert_eq!(human_duration(3600 * 24 * 3), "3 days");
    }

    #[test]
    fn guards() {
        assert!(Status::Created.can_start());
        assert!(Status::Exited.can_start());
        assert!(!Status::Running.can_start());
        assert!(!Status::Running.can_remove());
        assert!(Status::Exited.can_remove());
    }

    #[test]
    fn update_persists_atomically_and_notifies() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Record {
            id: "a".repeat(64),
            name: "/x".into(),
            created: ZERO_TIME.into(),
            path: "sh".into(),
            args: vec![],
            config: Default::default(),
            host_config: Default::default(),
            image_id: String::new(),
            state: State::default(),
            restart_count: 0,
            log_path: String::new(),
            runtime: "runc".into(),
            generation: 0,
            manually_stopped: false,
            networks: Default::default(),
            endpoints: Default::default(),
            ports: vec![],
            mounts: vec![],
        };
        let c = Container::new(dir.path().to_path_buf(), rec);
        let mut w = c.watch();
        c.update(|r| r.state.status = Status::Running).unwrap();
        assert!(w.has_changed().unwrap());
        assert_eq!(w.borrow_and_update().0, Status::Running);
        let loaded = Container::load(dir.path()).unwrap();
        assert_eq!(loaded.status(), Status::Running);

        // A host config that does not parse (a limit of the wrong type) is refused, not
        // read as "no limits".
        let file = dir.path().join("config.v2.json");
        let mut v: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        v["host_config"] = serde_json::json!({"Memory": "lots"});
        std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
        let err = Container::load(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains("record cannot be read") && err.contains("HostConfig"),
            "{err}"
        );
        // One that does is read once, into the typed view, and written back as it was.
        let hc = serde_json::json!({"Memory": 1 << 20, "Unmodelled": [1]});
        v["host_config"] = hc.clone();
        std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
        let loaded = Container::load(dir.path()).unwrap();
        assert_eq!(loaded.snapshot().host_config.memory, 1 << 20);
        loaded.update(|r| r.restart_count = 1).unwrap();
        let v: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(v["host_config"], hc);
    }
}
