//! Named and anonymous volumes (the `local` driver): directories under
//! `<data-root>/volumes/<name>/_data`, with their metadata kept atomically in
//! `<data-root>/volumes/metadata.json`. A volume with driver options (see
//! [`crate::local_driver`]) has its device mounted on `_data` while containers use it.

use crate::container::write_atomic;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use wharf_api::ApiError;

/// What is kept about a volume.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolumeMeta {
    pub name: String,
    pub created_at: String,
    pub labels: BTreeMap<String, String>,
    /// Made for a container's `-v /path` or an image VOLUME: removed with `rm -v`.
    pub anonymous: bool,
    /// Filled from the image's content at its first mount point (or chose not to be).
    pub populated: bool,
    /// The local driver's options (`type`, `device`, `o`).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// The volumes of one data-root.
pub struct Volumes {
    root: PathBuf,
    meta: Mutex<BTreeMap<String, VolumeMeta>>,
    /// Serializes mounts and unmounts of volume devices.
    mounting: Mutex<()>,
    /// Who owns a new volume's `_data` (`--userns-remap`: the remapped root), else root.
    owner: Option<(u32, u32)>,
}

fn valid_name(n: &str) -> bool {
    crate::names::valid(n)
}

impl Volumes {
    /// Loads the volume metadata under `root`.
    pub fn open(root: PathBuf) -> Result<Volumes, String> {
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        let p = root.join("metadata.json");
        let meta = match std::fs::read(&p) {
            Ok(d) => serde_json::from_slice(&d).map_err(|e| format!("{}: {e}", p.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("{}: {e}", p.display())),
        };
        Ok(Volumes {
            root,
            meta: Mutex::new(meta),
            mounting: Mutex::new(()),
            owner: None,
        })
    }

    fn save(&self, m: &BTreeMap<String, VolumeMeta>) -> Result<(), ApiError> {
        write_atomic(
            &self.root.join("metadata.json"),
            &serde_json::to_vec(m).expect("serializable"),
        )
        .map_err(|e| ApiError::internal(e.to_string()))
    }

    /// New volumes' `_data` are owned by `owner` (the remapped root of `--userns-remap`).
    pub fn set_owner(&mut self, owner: Option<(u32, u32)>) {
        self.owner = owner;
    }

    /// The directory containers see.
    pub fn data_path(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    /// Creates a volume (a random name when `None`) with the local driver's `options`; an
    /// existing name is returned as is, as Docker does.
    pub fn create(
        &self,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<VolumeMeta, ApiError> {
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) if !valid_name(n) => {
                return Err(ApiError::bad_request(format!(
                    "create {n}: \"{n}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
                )))
            }
            Some(n) => n.to_string(),
            None => crate::names::new_id(),
        };
        let mut m = self.meta.lock().expect("volumes lock");
        if let Some(v) = m.get(&name) {
            return Ok(v.clone());
        }
        crate::local_driver::validate(&options)
            .map_err(|e| ApiError::bad_request(format!("create {name}: {e}")))?;
        let data = self.data_path(&name);
        std::fs::create_dir_all(&data)
            .and_then(|()| match self.owner {
                Some((u, g)) => std::os::unix::fs::chown(&data, Some(u), Some(g)),
                None => Ok(()),
            })
            .map_err(|e| ApiError::internal(format!("{}: {e}", data.display())))?;
        let v = VolumeMeta {
            name: name.clone(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            labels,
            anonymous,
            populated: false,
            options,
        };
        m.insert(name, v.clone());
        self.save(&m)?;
        Ok(v)
    }

    pub fn get(&self, name: &str) -> Result<VolumeMeta, ApiError> {
        self.meta
            .lock()
            .expect("volumes lock")
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("get {name}: no such volume")))
    }

    pub fn list(&self) -> Vec<VolumeMeta> {
        self.meta
            .lock()
            .expect("volumes lock")
            .values()
            .cloned()
            .collect()
    }

    /// Fills an empty volume from `src` (the image's content at its mount point), once. The
    /// copy is made beside `_data` and renamed over it, so a failed copy leaves the volume as
    /// it was; a mounted device (driver options), or a volume a running container has
    /// mounted already (`shared`), is filled in place.
    pub fn populate(&self, name: &str, src: &Path, shared: bool) -> Result<(), ApiError> {
        let data = self.data_path(name);
        let empty = std::fs::read_dir(&data)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if src.is_dir() && empty {
            let fail = |what: String| {
                ApiError::internal(format!("copying image content into volume {name}: {what}"))
            };
            let in_place = shared || self.is_mounted(name);
            let staging = self.root.join(name).join("_data.populating");
            let _ = std::fs::remove_dir_all(&staging);
            let (from, to) = if in_place {
                (format!("{}/.", src.display()), data.clone())
            } else {
                // `cp -a dir new` makes `new` with the directory's own mode and owner too.
                (src.display().to_string(), staging.clone())
            };
            let copied = std::process::Command::new("cp")
                .arg("-a")
                .arg(&from)
                .arg(&to)
                .status()
                .map_err(|e| fail(format!("cp: {e}")))
                .and_then(|st| {
                    st.success()
                        .then_some(())
                        .ok_or_else(|| fail(format!("cp -a {from} {} failed", to.display())))
                })
                .and_then(|()| {
                    // Durable before it becomes visible.
                    let st = std::process::Command::new("sync")
                        .arg("-f")
                        .arg(&to)
                        .status();
                    st.map(|_| ()).map_err(|e| fail(format!("sync: {e}")))
                })
                .and_then(|()| {
                    if in_place {
                        Ok(())
                    } else {
                        // Replaces the empty `_data` directory in one step.
                        std::fs::rename(&staging, &data).map_err(|e| fail(e.to_string()))
                    }
                });
            if let Err(e) = copied {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(e);
            }
        }
        self.mark_populated(name)
    }

    /// Marks a volume as populated (first mount done).
    pub fn mark_populated(&self, name: &str) -> Result<(), ApiError> {
        let mut m = self.meta.lock().expect("volumes lock");
        if let Some(v) = m.get_mut(name) {
            v.populated = true;
        }
        self.save(&m)
    }

    /// Mounts the volume's device if its options ask for one (a container is about to use it).
    pub fn mount(&self, name: &str) -> Result<(), ApiError> {
        let v = self.get(name)?;
        let _g = self.mounting.lock().expect("volume mount lock");
        crate::local_driver::mount(&v.options, &self.data_path(name))
            .map_err(|e| ApiError::internal(e.to_string()))
    }

    /// Unmounts the volume's device, if mounted (no running container uses it any more).
    pub fn unmount(&self, name: &str) -> Result<(), ApiError> {
        let _g = self.mounting.lock().expect("volume mount lock");
        crate::local_driver::unmount(&self.data_path(name))
            .map_err(|e| ApiError::internal(e.to_string()))
    }

    /// Whether the volume's device is mounted now.
    pub fn is_mounted(&self, name: &str) -> bool {
        crate::local_driver::is_mounted(&self.data_path(name))
    }

    /// Removes a volume and its data (the caller checked it is unused). A mounted device is
    /// unmounted first, and nothing is deleted through a mount (a bind of a host directory
    /// keeps its content).
    pub fn remove(&self, name: &str) -> Result<(), ApiError> {
        let mut m = self.meta.lock().expect("volumes lock");
        if !m.contains_key(name) {
            return Err(ApiError::not_found(format!("get {name}: no such volume")));
        }
        let data = self.data_path(name);
        {
            let _g = self.mounting.lock().expect("volume mount lock");
            crate::local_driver::unmount(&data)
                .map_err(|e| ApiError::internal(format!("remove {name}: {e}")))?;
            if crate::local_driver::is_mounted(&data) {
                return Err(ApiError::internal(format!(
                    "remove {name}: {} is still mounted",
                    data.display()
                )));
            }
        }
        m.remove(name);
        self.save(&m)?;
        drop(m);
        let dir = self.root.join(name);
        // Out of sight first, then delete: a crash never leaves a half-deleted volume listed.
        let trash = self.root.join(format!(".trash-{}", crate::names::new_id()));
        if std::fs::rename(&dir, &trash).is_ok() {
            let _ = std::fs::remove_dir_all(&trash);
        }
        Ok(())
    }

    /// Docker's JSON for a volume.
    pub fn to_json(&self, v: &VolumeMeta) -> Value {
        json!({
            "Name": v.name,
            "Driver": "local",
            "Mountpoint": self.data_path(&v.name),
            "CreatedAt": v.created_at,
            "Labels": v.labels,
            "Scope": "local",
            "Options": v.options,
        })
    }
}

/// Filters of `GET /volumes` (`prune == false`) and `POST /volumes/prune`, as Docker takes
/// them; `in_use` says whether a container uses the volume. An unknown key is a 400.
pub fn filter_matches(
    v: &VolumeMeta,
    in_use: bool,
    filters: &BTreeMap<String, Vec<String>>,
    prune: bool,
) -> Result<bool, ApiError> {
    let has_label = |f: &String| {
        let (k, val) = match f.split_once('=') {
            Some((k, val)) => (k, Some(val)),
            None => (f.as_str(), None),
        };
        v.labels
            .get(k)
            .is_some_and(|x| val.is_none_or(|val| x == val))
    };
    for (k, vals) in filters {
        let ok = match (k.as_str(), prune) {
            (_, _) if vals.is_empty() => true,
            ("label", _) => vals.iter().all(has_label),
            ("label!", true) => !vals.iter().any(has_label),
            ("all", true) => true,
            ("name", false) => vals.iter().any(|f| v.name.contains(f.as_str())),
            ("driver", false) => vals.iter().any(|f| f == "local"),
            ("dangling", false) => vals.iter().any(|f| {
                let want = matches!(f.as_str(), "true" | "1");
                want != in_use
            }),
            _ => return Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One mount of a container, resolved at create.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountRecord {
    /// "bind", "volume" or "tmpfs".
    pub kind: String,
    /// The volume's name ("" for binds).
    pub name: String,
    pub source: PathBuf,
    pub destination: String,
    pub rw: bool,
    pub propagation: String,
    /// Options as given ("ro,z"...), for inspect's `Mode`.
    pub mode: String,
    /// `nocopy`: do not fill a new volume from the image.
    pub nocopy: bool,
    /// A tmpfs's mount data (`size=1m`, `mode=1777`).
    #[serde(default)]
    pub tmpfs: Vec<String>,
}

impl MountRecord {
    /// Docker's `Mounts[]` entry.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "Type": self.kind,
            "Source": self.source,
            "Destination": self.destination,
            "Mode": self.mode,
            "RW": self.rw,
            "Propagation": self.propagation,
        });
        if self.kind == "volume" {
            v["Name"] = json!(self.name);
            v["Driver"] = json!("local");
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_persist_and_remove() {
        let d = tempfile::tempdir().unwrap();
        let v = Volumes::open(d.path().to_path_buf()).unwrap();
        let a = v
            .create(Some("data"), BTreeMap::new(), BTreeMap::new(), false)
            .unwrap();
        assert!(v.data_path("data").is_dir());
        let again = v
            .create(Some("data"), BTreeMap::new(), BTreeMap::new(), true)
            .unwrap();
        assert_eq!(
            a.created_at, again.created_at,
            "an existing volume is reused"
        );
        assert!(v
            .create(Some("bad/name"), BTreeMap::new(), BTreeMap::new(), false)
            .is_err());
        let anon = v
            .create(None, BTreeMap::new(), BTreeMap::new(), true)
            .unwrap();
        assert_eq!(anon.name.len(), 64);
        let reopened = Volumes::open(d.path().to_path_buf()).unwrap();
        assert_eq!(reopened.list().len(), 2);
        reopened.remove("data").unwrap();
        assert!(!d.path().join("data").exists());
        assert_eq!(reopened.get("data").unwrap_err().status, 404);
    }

    #[test]
    fn populate_copies_once_with_the_directory_mode() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let v = Volumes::open(d.path().join("v")).unwrap();
        v.create(Some("seed"), BTreeMap::new(), BTreeMap::new(), false)
            .unwrap();
        let src = d.path().join("img");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/f"), "x").unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o1777)).unwrap();
        v.populate("seed", &src, false).unwrap();
        let data = v.data_path("seed");
        assert_eq!(std::fs::read_to_string(data.join("sub/f")).unwrap(), "x");
        let mode = std::fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o1777);
        assert!(v.get("seed").unwrap().populated);
        assert!(!data.with_file_name("_data.populating").exists());
    }

    #[test]
    fn filters_like_docker() {
        let v = VolumeMeta {
            name: "web-data".into(),
            created_at: String::new(),
            labels: [("team".to_string(), "db".to_string())].into(),
            anonymous: false,
            populated: false,
            options: BTreeMap::new(),
        };
        let f = |k: &str, vals: &[&str]| -> BTreeMap<String, Vec<String>> {
            [(k.to_string(), vals.iter().map(|s| s.to_string()).collect())].into()
        };
        assert!(filter_matches(&v, false, &f("label", &["team"]), false).unwrap());
        assert!(filter_matches(&v, false, &f("label", &["team=db"]), true).unwrap());
        assert!(!filter_matches(&v, false, &f("label", &["team=web"]), false).unwrap());
        assert!(!filter_matches(&v, false, &f("label!", &["team"]), true).unwrap());
        assert!(filter_matches(&v, false, &f("name", &["web"]), false).unwrap());
        assert!(filter_matches(&v, false, &f("dangling", &["true"]), false).unwrap());
        assert!(!filter_matches(&v, true, &f("dangling", &["true"]), false).unwrap());
        assert_eq!(
            filter_matches(&v, false, &f("bogus", &["x"]), false)
                .unwrap_err()
                .status,
            400
        );
    }
}
