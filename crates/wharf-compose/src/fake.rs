//! A fake engine for the planner's tests: containers, networks and volumes in memory, every
//! call recorded.

use crate::engine::*;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct FakeContainer {
    pub id: String,
    pub name: String,
    pub body: Value,
    pub state: String,
    pub exit_code: i64,
    /// What inspect reports for health, in turn (the last repeats).
    pub health: Vec<String>,
    pub networks: Vec<String>,
}

#[derive(Default)]
pub struct Fake {
    pub containers: RefCell<Vec<FakeContainer>>,
    pub networks: RefCell<BTreeMap<String, BTreeMap<String, String>>>,
    pub volumes: RefCell<BTreeMap<String, BTreeMap<String, String>>>,
    pub calls: RefCell<Vec<String>>,
    next: RefCell<u32>,
    /// Health sequences given to containers of a name when they start.
    pub health_on_start: RefCell<BTreeMap<String, Vec<String>>>,
    /// Exit codes containers of a name get right after starting (they "complete").
    pub exit_on_start: RefCell<BTreeMap<String, i64>>,
    /// Images by name → id, as builds made them.
    pub images: RefCell<BTreeMap<String, String>>,
    /// Images that are not there (until built); every other one is.
    pub absent: RefCell<std::collections::BTreeSet<String>>,
    pub builds: RefCell<Vec<BuildRequest>>,
    /// The tars copied into containers, by container id.
    pub copied: RefCell<Vec<(String, Vec<u8>)>>,
}

fn labels_of(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn matches(labels: &BTreeMap<String, String>, filters: &[String]) -> bool {
    filters.iter().all(|f| match f.split_once('=') {
        Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
        None => labels.contains_key(f),
    })
}

fn nf(what: &str) -> EngineError {
    EngineError {
        status: Some(404),
        message: format!("no such {what}"),
    }
}

impl Fake {
    fn call(&self, s: String) {
        self.calls.borrow_mut().push(s);
    }

    pub fn by_name(&self, name: &str) -> FakeContainer {
        self.containers
            .borrow()
            .iter()
            .find(|c| c.name == name)
            .cloned()
            .expect(name)
    }
}

impl Engine for Fake {
    async fn list_containers(
        &self,
        labels: &[String],
        all: bool,
    ) -> EngineResult<Vec<ContainerSummary>> {
        Ok(self
            .containers
            .borrow()
            .iter()
            .filter(|c| all || c.state == "running")
            .filter(|c| matches(&labels_of(&c.body["Labels"]), labels))
            .map(|c| ContainerSummary {
                id: c.id.clone(),
                name: c.name.clone(),
                state: c.state.clone(),
                status: String::new(),
                image: c.body["Image"].as_str().unwrap_or("").into(),
                command: String::new(),
                labels: labels_of(&c.body["Labels"]),
                created: 0,
                ports: String::new(),
            })
            .collect())
    }
    async fn create_container(&self, name: &str, body: &Value) -> EngineResult<String> {
        self.call(format!("create {name}"));
        if self.containers.borrow().iter().any(|c| c.name == name) {
            return Err(EngineError {
                status: Some(409),
                message: format!("name {name} in use"),
            });
        }
        for net in body["NetworkingConfig"]["EndpointsConfig"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.keys())
        {
            if !self.networks.borrow().contains_key(net) {
                return Err(nf("network"));
            }
        }
        *self.next.borrow_mut() += 1;
        let id = format!("id{}", self.next.borrow());
        let networks = body["NetworkingConfig"]["EndpointsConfig"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        self.containers.borrow_mut().push(FakeContainer {
            id: id.clone(),
            name: name.into(),
            body: body.clone(),
            state: "created".into(),
            exit_code: 0,
            health: vec![],
            networks,
        });
        Ok(id)
    }
    async fn start_container(&self, id: &str) -> EngineResult<()> {
        let mut cs = self.containers.borrow_mut();
        let c = cs
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or_else(|| nf("container"))?;
        self.calls.borrow_mut().push(format!("start {}", c.name));
        c.state = "running".into();
        let svc = c.body["Labels"]["com.docker.compose.service"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if let Some(h) = self.health_on_start.borrow().get(&svc) {
            c.health = h.clone();
        }
        if let Some(code) = self.exit_on_start.borrow().get(&svc) {
            c.state = "exited".into();
            c.exit_code = *code;
        }
        Ok(())
    }
    async fn stop_container(&self, id: &str, _t: Option<u64>) -> EngineResult<()> {
        let mut cs = self.containers.borrow_mut();
        let c = cs
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or_else(|| nf("container"))?;
        self.calls.borrow_mut().push(format!("stop {}", c.name));
        if c.state == "running" {
            c.state = "exited".into();
        }
        Ok(())
    }
    async fn restart_container(&self, id: &str, _t: Option<u64>) -> EngineResult<()> {
        let mut cs = self.containers.borrow_mut();
        let c = cs
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or_else(|| nf("container"))?;
        self.calls.borrow_mut().push(format!("restart {}", c.name));
        c.state = "running".into();
        Ok(())
    }
    async fn kill_container(&self, id: &str, signal: Option<&str>) -> EngineResult<()> {
        let mut cs = self.containers.borrow_mut();
        let c = cs
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or_else(|| nf("container"))?;
        self.calls
            .borrow_mut()
            .push(format!("kill {} {}", c.name, signal.unwrap_or("KILL")));
        c.state = "exited".into();
        c.exit_code = 137;
        Ok(())
    }
    async fn wait_container(&self, id: &str) -> EngineResult<i64> {
        let mut cs = self.containers.borrow_mut();
        let c = cs
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or_else(|| nf("container"))?;
        c.state = "exited".into();
        Ok(c.exit_code)
    }
    async fn pause_container(&self, id: &str) -> EngineResult<()> {
        let mut cs = self.containers.borrow_mut();
        let c = cs
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or_else(|| nf("container"))?;
        c.state = "paused".into();
        Ok(())
    }
    async fn unpause_container(&self, id: &str) -> EngineResult<()> {
        let mut cs = self.containers.borrow_mut();
        let c = cs
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or_else(|| nf("container"))?;
        c.state = "running".into();
        Ok(())
    }
    async fn remove_container(&self, id: &str, force: bool, _v: bool) -> EngineResult<()> {
        let mut cs = self.containers.borrow_mut();
        let i = cs
            .iter()
            .position(|c| c.id == id)
            .ok_or_else(|| nf("container"))?;
        if cs[i].state == "running" && !force {
            return Err(EngineError {
                status: Some(409),
                message: "running".into(),
            });
        }
        self.calls.borrow_mut().push(format!("rm {}", cs[i].name));
        cs.remove(i);
        Ok(())
    }
    async fn inspect_container(&self, id: &str) -> EngineResult<ContainerState> {
        let mut cs = self.containers.borrow_mut();
        let c = cs
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or_else(|| nf("container"))?;
        let health = if c.health.len() > 1 {
            Some(c.health.remove(0))
        } else {
            c.health.first().cloned()
        };
        Ok(ContainerState {
            status: c.state.clone(),
            exit_code: c.exit_code,
            health,
        })
    }
    async fn connect_network(
        &self,
        network: &str,
        container: &str,
        _ep: &Value,
    ) -> EngineResult<()> {
        if !self.networks.borrow().contains_key(network) {
            return Err(nf("network"));
        }
        let mut cs = self.containers.borrow_mut();
        let c = cs
            .iter_mut()
            .find(|c| c.id == container)
            .ok_or_else(|| nf("container"))?;
        c.networks.push(network.into());
        Ok(())
    }
    async fn list_networks(&self, labels: &[String]) -> EngineResult<Vec<Resource>> {
        Ok(self
            .networks
            .borrow()
            .iter()
            .filter(|(_, l)| matches(l, labels))
            .map(|(n, l)| Resource {
                name: n.clone(),
                labels: l.clone(),
            })
            .collect())
    }
    async fn inspect_network(&self, name: &str) -> EngineResult<Option<Resource>> {
        Ok(self.networks.borrow().get(name).map(|l| Resource {
            name: name.into(),
            labels: l.clone(),
        }))
    }
    async fn create_network(&self, body: &Value) -> EngineResult<()> {
        let name = body["Name"].as_str().unwrap_or("").to_string();
        self.call(format!("network create {name}"));
        self.networks
            .borrow_mut()
            .insert(name, labels_of(&body["Labels"]));
        Ok(())
    }
    async fn remove_network(&self, name: &str) -> EngineResult<()> {
        self.call(format!("network rm {name}"));
        if self
            .containers
            .borrow()
            .iter()
            .any(|c| c.networks.iter().any(|n| n == name))
        {
            return Err(EngineError {
                status: Some(403),
                message: "network has active endpoints".into(),
            });
        }
        self.networks
            .borrow_mut()
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| nf("network"))
    }
    async fn list_volumes(&self, labels: &[String]) -> EngineResult<Vec<Resource>> {
        Ok(self
            .volumes
            .borrow()
            .iter()
            .filter(|(_, l)| matches(l, labels))
            .map(|(n, l)| Resource {
                name: n.clone(),
                labels: l.clone(),
            })
            .collect())
    }
    async fn inspect_volume(&self, name: &str) -> EngineResult<Option<Resource>> {
        Ok(self.volumes.borrow().get(name).map(|l| Resource {
            name: name.into(),
            labels: l.clone(),
        }))
    }
    async fn create_volume(&self, body: &Value) -> EngineResult<()> {
        let name = body["Name"].as_str().unwrap_or("").to_string();
        self.call(format!("volume create {name}"));
        self.volumes
            .borrow_mut()
            .insert(name, labels_of(&body["Labels"]));
        Ok(())
    }
    async fn remove_volume(&self, name: &str) -> EngineResult<()> {
        self.call(format!("volume rm {name}"));
        self.volumes
            .borrow_mut()
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| nf("volume"))
    }
    async fn logs(&self, id: &str, _tail: Option<&str>, _ts: bool) -> EngineResult<Vec<LogChunk>> {
        let cs = self.containers.borrow();
        let c = cs
            .iter()
            .find(|c| c.id == id)
            .ok_or_else(|| nf("container"))?;
        Ok(vec![
            LogChunk {
                stream: 1,
                data: format!("hello from {}\nsecond", c.name).into_bytes(),
            },
            LogChunk {
                stream: 1,
                data: b" line\n".to_vec(),
            },
            LogChunk {
                stream: 2,
                data: b"oops\n".to_vec(),
            },
        ])
    }
    async fn follow_logs(
        &self,
        ids: &[String],
        tail: Option<&str>,
        ts: bool,
        each: &mut dyn FnMut(usize, LogEvent),
    ) -> EngineResult<()> {
        // Interleaved: the first chunk of each, then the rest, then the ends.
        let mut all = Vec::new();
        for id in ids {
            all.push(self.logs(id, tail, ts).await?);
        }
        for round in 0..3 {
            for (i, chunks) in all.iter().enumerate() {
                if let Some(ch) = chunks.get(round) {
                    each(i, LogEvent::Chunk(ch.clone()));
                }
            }
        }
        for i in 0..ids.len() {
            each(i, LogEvent::End { exit_code: 0 });
        }
        Ok(())
    }
    async fn image_id(&self, image: &str) -> EngineResult<Option<String>> {
        if let Some(id) = self.images.borrow().get(image) {
            return Ok(Some(id.clone()));
        }
        // Every other image is there, unless the test says it is not.
        Ok((!self.absent.borrow().contains(image)).then(|| format!("sha256:{image}")))
    }
    async fn build_image(&self, req: &BuildRequest) -> EngineResult<()> {
        self.call(format!("build {}", req.tags.join(",")));
        let n = self.builds.borrow().len();
        for t in &req.tags {
            self.images
                .borrow_mut()
                .insert(t.clone(), format!("sha256:built{n}"));
        }
        self.builds.borrow_mut().push(req.clone());
        Ok(())
    }
    async fn copy_to_container(
        &self,
        id: &str,
        tar: Vec<u8>,
        copy_uid_gid: bool,
    ) -> EngineResult<()> {
        self.call(format!("copy {id} {} bytes {copy_uid_gid}", tar.len()));
        self.copied.borrow_mut().push((id.to_string(), tar));
        Ok(())
    }
    async fn push_image(&self, image: &str) -> EngineResult<()> {
        self.call(format!("push {image}"));
        Ok(())
    }
    async fn pull_image(&self, image: &str) -> EngineResult<()> {
        self.call(format!("pull {image}"));
        if self.absent.borrow().contains(image) {
            return Err(EngineError {
                status: Some(404),
                message: format!("pull access denied for {image}"),
            });
        }
        Ok(())
    }
    async fn wait_change(&self, id: &str, _seen: &ContainerState) -> EngineResult<ContainerState> {
        self.call(format!("wait {id}"));
        self.inspect_container(id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::down::{down, DownOptions};
    use crate::load::{load, Options};
    use crate::up::{up, UpError, UpOptions};
    use crate::Project;

    fn project(yaml: &str) -> (tempfile::TempDir, Project) {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("compose.yaml"), yaml).unwrap();
        let p = load(&Options {
            cwd: t.path().to_path_buf(),
            ..Default::default()
        })
        .unwrap();
        (t, p)
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    const APP: &str = "name: p\nservices:\n  web:\n    image: busybox\n    depends_on: [api]\n    networks: [front]\n  api:\n    image: busybox\n    depends_on: {db: {condition: service_healthy}}\n    networks: {front: {aliases: [backend]}, back: {}}\n  db:\n    image: busybox\n    volumes: ['data:/var/lib/db']\n    networks: [back]\n    healthcheck: {test: 'true', interval: 1s}\nnetworks:\n  front: {}\n  back: {}\nvolumes:\n  data: {}\n";

    #[test]
    fn up_creates_in_order_waits_for_health_and_labels() {
        let (_t, p) = project(APP);
        let f = Fake::default();
        f.health_on_start.borrow_mut().insert(
            "db".into(),
            vec!["starting".into(), "starting".into(), "healthy".into()],
        );
        let mut out = Vec::new();
        run(up(&f, &p, &UpOptions::default(), &mut out)).unwrap();
        assert_eq!(
            out,
            [
                " Network p_back  Creating",
                " Network p_back  Created",
                " Network p_front  Creating",
                " Network p_front  Created",
                " Volume \"p_data\"  Creating",
                " Volume \"p_data\"  Created",
                " Container p-db-1  Creating",
                " Container p-db-1  Created",
                " Container p-api-1  Creating",
                " Container p-api-1  Created",
                " Container p-web-1  Creating",
                " Container p-web-1  Created",
                " Container p-db-1  Starting",
                " Container p-db-1  Started",
                " Container p-db-1  Waiting",
                " Container p-db-1  Healthy",
                " Container p-api-1  Starting",
                " Container p-api-1  Started",
                " Container p-web-1  Starting",
                " Container p-web-1  Started",
            ]
        );
        let api = f.by_name("p-api-1");
        let l = &api.body["Labels"];
        assert_eq!(l["com.docker.compose.project"], "p");
        assert_eq!(l["com.docker.compose.service"], "api");
        assert_eq!(l["com.docker.compose.container-number"], "1");
        assert_eq!(l["com.docker.compose.oneoff"], "False");
        assert_eq!(
            l["com.docker.compose.config-hash"].as_str().unwrap().len(),
            64
        );
        assert_eq!(api.networks, ["p_back", "p_front"]);
        assert_eq!(
            api.body["NetworkingConfig"]["EndpointsConfig"]["p_back"]["Aliases"],
            serde_json::json!(["p-api-1", "api"])
        );
        let db = f.by_name("p-db-1");
        assert_eq!(db.body["HostConfig"]["Mounts"][0]["Source"], "p_data");
        assert_eq!(db.body["Healthcheck"]["Interval"], 1_000_000_000i64);

        // A second up changes nothing.
        let mut out = Vec::new();
        let calls = f.calls.borrow().len();
        run(up(&f, &p, &UpOptions::default(), &mut out)).unwrap();
        assert_eq!(
            out,
            [
                " Container p-db-1  Running",
                " Container p-api-1  Running",
                " Container p-web-1  Running",
                " Container p-db-1  Waiting",
                " Container p-db-1  Healthy"
            ]
        );
        assert_eq!(f.calls.borrow().len(), calls);
    }

    #[test]
    fn a_changed_service_alone_is_recreated_and_scale_adds_and_removes() {
        let (_t, p) = project(APP);
        let f = Fake::default();
        f.health_on_start
            .borrow_mut()
            .insert("db".into(), vec!["healthy".into()]);
        run(up(&f, &p, &UpOptions::default(), &mut Vec::new())).unwrap();
        let before_db = f.by_name("p-db-1").id;
        let (_t2, p2) = project(&APP.replace(
            "    depends_on: [api]\n",
            "    depends_on: [api]\n    environment: {NEW: '1'}\n    scale: 2\n",
        ));
        let mut out = Vec::new();
        run(up(&f, &p2, &UpOptions::default(), &mut out)).unwrap();
        assert!(
            out.contains(&" Container p-web-1  Recreate".to_string()),
            "{out:?}"
        );
        assert!(
            out.contains(&" Container p-web-2  Created".to_string()),
            "{out:?}"
        );
        assert_eq!(f.by_name("p-db-1").id, before_db);
        assert!(!out.iter().any(|l| l.contains("p-api-1  Recreate")));
        let (_t3, p3) = project(&APP.replace(
            "    depends_on: [api]\n",
            "    depends_on: [api]\n    environment: {NEW: '1'}\n    scale: 1\n",
        ));
        let mut out = Vec::new();
        run(up(&f, &p3, &UpOptions::default(), &mut out)).unwrap();
        assert!(
            out.contains(&" Container p-web-2  Removed".to_string()),
            "{out:?}"
        );
        assert!(
            !out.iter().any(|l| l.contains("p-web-1  Recreate")),
            "{out:?}"
        );
    }

    #[test]
    fn unhealthy_and_failed_completion_stop_up() {
        let (_t, p) = project(APP);
        let f = Fake::default();
        f.health_on_start
            .borrow_mut()
            .insert("db".into(), vec!["starting".into(), "unhealthy".into()]);
        let e = run(up(&f, &p, &UpOptions::default(), &mut Vec::new())).unwrap_err();
        assert!(
            matches!(e, UpError::Unhealthy(ref n) if n == "p-db-1"),
            "{e}"
        );
        assert!(!f.calls.borrow().contains(&"start p-api-1".to_string()));

        let (_t, p) = project("name: q\nservices:\n  init: {image: x}\n  app: {image: x, depends_on: {init: {condition: service_completed_successfully}}}\n");
        let f = Fake::default();
        f.exit_on_start.borrow_mut().insert("init".into(), 3);
        let e = run(up(&f, &p, &UpOptions::default(), &mut Vec::new())).unwrap_err();
        assert_eq!(
            e.to_string(),
            "service \"init\" didn't complete successfully: exit 3"
        );
        let f = Fake::default();
        f.exit_on_start.borrow_mut().insert("init".into(), 0);
        let mut out = Vec::new();
        run(up(&f, &p, &UpOptions::default(), &mut out)).unwrap();
        assert!(out.contains(&" Container q-init-1  Exited".to_string()));
    }

    #[test]
    fn attach_follows_and_reports_exits() {
        let (_t, p) = project("name: p\nservices:\n  a: {image: x}\n");
        let f = Fake::default();
        run(up(&f, &p, &UpOptions::default(), &mut Vec::new())).unwrap();
        let (mut so, mut se) = (Vec::new(), Vec::new());
        run(crate::up::attach(&f, &p, &[], &mut so, &mut se)).unwrap();
        assert_eq!(
            so,
            [
                "Attaching to p-a-1",
                "p-a-1  | hello from p-a-1",
                "p-a-1  | second line",
                "p-a-1 exited with code 0"
            ]
        );
        assert_eq!(se, ["p-a-1  | oops"]);
    }

    #[test]
    fn unsupported_keys_refused_by_name() {
        let (_t, p) = project("services:\n  a: {image: x, cap_add: [ALL]}\n");
        let e = run(up(
            &Fake::default(),
            &p,
            &UpOptions::default(),
            &mut Vec::new(),
        ))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "service \"a\": cap_add is not supported by wharf compose yet"
        );
    }

    #[test]
    fn down_removes_everything_dependents_first_and_orphans() {
        let (_t, p) = project(APP);
        let f = Fake::default();
        f.health_on_start
            .borrow_mut()
            .insert("db".into(), vec!["healthy".into()]);
        run(up(&f, &p, &UpOptions::default(), &mut Vec::new())).unwrap();
        // An orphan: a container of the project whose service is gone; up warns about it.
        let (_t2, p2) = project(&APP.replace(
            "  web:\n    image: busybox\n    depends_on: [api]\n    networks: [front]\n",
            "",
        ));
        let mut out = Vec::new();
        run(up(&f, &p2, &UpOptions::default(), &mut out)).unwrap();
        assert!(
            out[0].starts_with("WARN[0000] Found orphan containers ([p-web-1])"),
            "{out:?}"
        );
        let mut out = Vec::new();
        run(down(
            &f,
            &p,
            &DownOptions {
                volumes: true,
                remove_orphans: false,
                timeout: None,
            },
            &mut out,
        ))
        .unwrap();
        let removed: Vec<&String> = out.iter().filter(|l| l.ends_with("Removed")).collect();
        assert_eq!(
            removed,
            [
                " Container p-web-1  Removed",
                " Container p-api-1  Removed",
                " Container p-db-1  Removed",
                " Network p_back  Removed",
                " Network p_front  Removed",
                " Volume p_data  Removed"
            ]
        );
        assert!(f.containers.borrow().is_empty());
        assert!(f.networks.borrow().is_empty());
        assert!(f.volumes.borrow().is_empty());
    }

    #[test]
    fn down_by_name_alone_finds_everything_by_label() {
        let (_t, p) = project(APP);
        let f = Fake::default();
        f.health_on_start
            .borrow_mut()
            .insert("db".into(), vec!["healthy".into()]);
        run(up(&f, &p, &UpOptions::default(), &mut Vec::new())).unwrap();
        let mut out = Vec::new();
        let by_name = Project::by_name("p".into());
        run(down(
            &f,
            &by_name,
            &DownOptions {
                volumes: true,
                ..Default::default()
            },
            &mut out,
        ))
        .unwrap();
        assert!(f.containers.borrow().is_empty(), "{out:?}");
        assert!(f.networks.borrow().is_empty(), "{out:?}");
        assert!(f.volumes.borrow().is_empty(), "{out:?}");
        assert!(!out.iter().any(|l| l.starts_with("WARN")), "{out:?}");
    }

    #[test]
    fn kill_pause_unpause_and_ls() {
        let (_t, p) =
            project("name: p\nservices:\n  a: {image: x}\n  b: {image: x, depends_on: [a]}\n");
        let f = Fake::default();
        run(up(&f, &p, &UpOptions::default(), &mut Vec::new())).unwrap();
        let mut out = Vec::new();
        run(crate::ops::pause(&f, &p, &[], &mut out)).unwrap();
        assert_eq!(
            out,
            [
                " Container p-a-1  Pausing",
                " Container p-a-1  Paused",
                " Container p-b-1  Pausing",
                " Container p-b-1  Paused"
            ]
        );
        let rows = run(crate::ops::ls(&f, false)).unwrap();
        assert_eq!(
            rows,
            [(
                "p".to_string(),
                "paused(2)".to_string(),
                p.config_files[0].display().to_string()
            )]
        );
        let mut out = Vec::new();
        run(crate::ops::unpause(&f, &p, &[], &mut out)).unwrap();
        assert_eq!(out.len(), 4);
        let mut out = Vec::new();
        run(crate::ops::kill(
            &f,
            &p,
            &["b".into()],
            Some("TERM"),
            &mut out,
        ))
        .unwrap();
        assert_eq!(
            out,
            [" Container p-b-1  Killing", " Container p-b-1  Killed"]
        );
        assert!(f.calls.borrow().contains(&"kill p-b-1 TERM".to_string()));
        let rows = run(crate::ops::ls(&f, false)).unwrap();
        assert_eq!(rows[0].1, "exited(1), running(1)");
        // Stopped projects only with -a.
        run(crate::ops::kill(&f, &p, &[], None, &mut Vec::new())).unwrap();
        assert!(run(crate::ops::ls(&f, false)).unwrap().is_empty());
        assert_eq!(run(crate::ops::ls(&f, true)).unwrap()[0].1, "exited(2)");
    }

    #[test]
    fn pull_each_service_image() {
        let (_t, p) = project("services:\n  a: {image: 'busybox:1'}\n  b: {image: alpine}\n");
        let f = Fake::default();
        let mut out = Vec::new();
        run(crate::ops::pull(&f, &p, &[], &mut out)).unwrap();
        assert_eq!(
            out,
            [" a Pulling ", " a Pulled ", " b Pulling ", " b Pulled "]
        );
        assert_eq!(*f.calls.borrow(), ["pull busybox:1", "pull alpine"]);
        assert!(run(crate::ops::pull(&f, &p, &["zz".into()], &mut out)).is_err());
    }

    #[test]
    fn logs_are_prefixed_per_container() {
        let (_t, p) = project("name: p\nservices:\n  a: {image: x}\n  bbbb: {image: x}\n");
        let f = Fake::default();
        run(up(&f, &p, &UpOptions::default(), &mut Vec::new())).unwrap();
        let (mut so, mut se) = (Vec::new(), Vec::new());
        let opts = crate::ops::LogOptions {
            prefix: true,
            ..Default::default()
        };
        run(crate::ops::logs(&f, &p, &opts, &mut so, &mut se)).unwrap();
        assert_eq!(
            so,
            [
                "p-a-1     | hello from p-a-1",
                "p-a-1     | second line",
                "p-bbbb-1  | hello from p-bbbb-1",
                "p-bbbb-1  | second line"
            ]
        );
        assert_eq!(se, ["p-a-1     | oops", "p-bbbb-1  | oops"]);
        // Followed, lines of different containers interleave but each stays whole.
        let (mut so, mut se) = (Vec::new(), Vec::new());
        let opts = crate::ops::LogOptions {
            prefix: true,
            follow: true,
            ..Default::default()
        };
        run(crate::ops::logs(&f, &p, &opts, &mut so, &mut se)).unwrap();
        assert_eq!(
            so,
            [
                "p-a-1     | hello from p-a-1",
                "p-bbbb-1  | hello from p-bbbb-1",
                "p-a-1     | second line",
                "p-bbbb-1  | second line"
            ]
        );
        assert_eq!(se, ["p-a-1     | oops", "p-bbbb-1  | oops"]);
    }
}
