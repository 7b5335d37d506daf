//! `wharf compose`: loads the project with wharf-compose and runs its planner over this
//! client (the `Engine` seam below), so it drives wharfd and dockerd alike.

use super::{status, Ctx};
use crate::cli::{ComposeArgs, ComposeCmd};
use crate::client::{daemon_error, enc, enc_path};
use crate::format::names::{display_ports, ellipsis, go_quote};
use anyhow::{Context, Result};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use wharf_compose::engine::{
    BuildRequest, ContainerState, ContainerSummary, Engine, EngineError, EngineResult, LogChunk,
    LogEvent, Resource,
};
use wharf_compose::Out;

#[path = "compose_watch.rs"]
mod watch;

/// The Engine API calls of compose over wharf's client.
struct Api<'a> {
    ctx: &'a Ctx,
}

fn engine_err(e: anyhow::Error) -> EngineError {
    match daemon_error(&e) {
        Some(d) => EngineError {
            status: Some(d.status),
            message: format!("Error response from daemon: {}", d.message),
        },
        None => EngineError {
            status: None,
            message: format!("{e:#}"),
        },
    }
}

fn label_filters(labels: &[String]) -> String {
    enc(&json!({ "label": labels }).to_string())
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

fn resource(v: &Value) -> Resource {
    Resource {
        name: v["Name"].as_str().unwrap_or("").to_string(),
        labels: labels_of(&v["Labels"]),
    }
}

impl Api<'_> {
    async fn get_opt(&self, path: &str) -> EngineResult<Option<Value>> {
        match self.ctx.client.get_json(path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if daemon_error(&e).is_some_and(|d| d.status == 404) => Ok(None),
            Err(e) => Err(engine_err(e)),
        }
    }

    async fn post(&self, path: &str, body: Option<&Value>) -> EngineResult<Value> {
        self.ctx
            .client
            .post_json(path, body)
            .await
            .map_err(engine_err)
    }
}

impl Engine for Api<'_> {
    async fn list_containers(
        &self,
        labels: &[String],
        all: bool,
    ) -> EngineResult<Vec<ContainerSummary>> {
        let path = format!(
            "/containers/json?all={}&filters={}",
            u8::from(all),
            label_filters(labels)
        );
        let v = self.ctx.client.get_json(&path).await.map_err(engine_err)?;
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .map(|c| ContainerSummary {
                id: c["Id"].as_str().unwrap_or("").to_string(),
                name: c["Names"][0]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches('/')
                    .to_string(),
                state: c["State"].as_str().unwrap_or("").to_string(),
                status: c["Status"].as_str().unwrap_or("").to_string(),
                image: c["Image"].as_str().unwrap_or("").to_string(),
                command: c["Command"].as_str().unwrap_or("").to_string(),
                labels: labels_of(&c["Labels"]),
                created: c["Created"].as_i64().unwrap_or(0),
                ports: display_ports(&c["Ports"]),
            })
            .collect())
    }

    async fn create_container(&self, name: &str, body: &Value) -> EngineResult<String> {
        let v = self
            .post(
                &format!("/containers/create?name={}", enc(name)),
                Some(body),
            )
            .await?;
        Ok(v["Id"].as_str().unwrap_or("").to_string())
    }

    async fn start_container(&self, id: &str) -> EngineResult<()> {
        self.post(&format!("/containers/{}/start", enc_path(id)), None)
            .await
            .map(drop)
    }

    async fn stop_container(&self, id: &str, timeout: Option<u64>) -> EngineResult<()> {
        let t = timeout.map(|t| format!("?t={t}")).unwrap_or_default();
        self.post(&format!("/containers/{}/stop{t}", enc_path(id)), None)
            .await
            .map(drop)
    }

    async fn restart_container(&self, id: &str, timeout: Option<u64>) -> EngineResult<()> {
        let t = timeout.map(|t| format!("?t={t}")).unwrap_or_default();
        self.post(&format!("/containers/{}/restart{t}", enc_path(id)), None)
            .await
            .map(drop)
    }

    async fn kill_container(&self, id: &str, signal: Option<&str>) -> EngineResult<()> {
        let q = signal
            .map(|s| format!("?signal={}", enc(s)))
            .unwrap_or_default();
        self.post(&format!("/containers/{}/kill{q}", enc_path(id)), None)
            .await
            .map(drop)
    }

    async fn wait_container(&self, id: &str) -> EngineResult<i64> {
        let v = self
            .post(&format!("/containers/{}/wait", enc_path(id)), None)
            .await?;
        Ok(v["StatusCode"].as_i64().unwrap_or(0))
    }

    async fn pause_container(&self, id: &str) -> EngineResult<()> {
        self.post(&format!("/containers/{}/pause", enc_path(id)), None)
            .await
            .map(drop)
    }

    async fn unpause_container(&self, id: &str) -> EngineResult<()> {
        self.post(&format!("/containers/{}/unpause", enc_path(id)), None)
            .await
            .map(drop)
    }

    async fn remove_container(&self, id: &str, force: bool, volumes: bool) -> EngineResult<()> {
        self.ctx
            .client
            .delete(&format!(
                "/containers/{}?force={}&v={}",
                enc_path(id),
                u8::from(force),
                u8::from(volumes)
            ))
            .await
            .map(drop)
            .map_err(engine_err)
    }

    async fn inspect_container(&self, id: &str) -> EngineResult<ContainerState> {
        let v = self
            .ctx
            .client
            .get_json(&format!("/containers/{}/json", enc_path(id)))
            .await
            .map_err(engine_err)?;
        Ok(ContainerState {
            status: v["State"]["Status"].as_str().unwrap_or("").to_string(),
            exit_code: v["State"]["ExitCode"].as_i64().unwrap_or(0),
            health: v["State"]["Health"]["Status"].as_str().map(str::to_string),
        })
    }

    async fn connect_network(
        &self,
        network: &str,
        container: &str,
        endpoint: &Value,
    ) -> EngineResult<()> {
        let body = json!({"Container": container, "EndpointConfig": endpoint});
        self.post(
            &format!("/networks/{}/connect", enc_path(network)),
            Some(&body),
        )
        .await
        .map(drop)
    }

    async fn list_networks(&self, labels: &[String]) -> EngineResult<Vec<Resource>> {
        let v = self
            .ctx
            .client
            .get_json(&format!("/networks?filters={}", label_filters(labels)))
            .await
            .map_err(engine_err)?;
        Ok(v.as_array().into_iter().flatten().map(resource).collect())
    }

    async fn inspect_network(&self, name: &str) -> EngineResult<Option<Resource>> {
        let v = self
            .get_opt(&format!("/networks/{}", enc_path(name)))
            .await?;
        // The engine finds networks by id prefix too: only an exact name is this one.
        Ok(v.map(|v| resource(&v)).filter(|r| r.name == name))
    }

    async fn create_network(&self, body: &Value) -> EngineResult<()> {
        self.post("/networks/create", Some(body)).await.map(drop)
    }

    async fn remove_network(&self, name: &str) -> EngineResult<()> {
        self.ctx
            .client
            .delete(&format!("/networks/{}", enc_path(name)))
            .await
            .map(drop)
            .map_err(engine_err)
    }

    async fn list_volumes(&self, labels: &[String]) -> EngineResult<Vec<Resource>> {
        let v = self
            .ctx
            .client
            .get_json(&format!("/volumes?filters={}", label_filters(labels)))
            .await
            .map_err(engine_err)?;
        Ok(v["Volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(resource)
            .collect())
    }

    async fn inspect_volume(&self, name: &str) -> EngineResult<Option<Resource>> {
        let v = self
            .get_opt(&format!("/volumes/{}", enc_path(name)))
            .await?;
        Ok(v.map(|v| resource(&v)))
    }

    async fn create_volume(&self, body: &Value) -> EngineResult<()> {
        self.post("/volumes/create", Some(body)).await.map(drop)
    }

    async fn remove_volume(&self, name: &str) -> EngineResult<()> {
        self.ctx
            .client
            .delete(&format!("/volumes/{}", enc_path(name)))
            .await
            .map(drop)
            .map_err(engine_err)
    }

    async fn logs(
        &self,
        id: &str,
        tail: Option<&str>,
        timestamps: bool,
    ) -> EngineResult<Vec<LogChunk>> {
        let st = self
            .ctx
            .client
            .get_json(&format!("/containers/{}/json", enc_path(id)))
            .await
            .map_err(engine_err)?;
        let tty = st["Config"]["Tty"].as_bool().unwrap_or(false);
        let mut path = format!(
            "/containers/{}/logs?stdout=1&stderr=1&timestamps={}",
            enc_path(id),
            u8::from(timestamps)
        );
        if let Some(t) = tail {
            path.push_str(&format!("&tail={}", enc(t)));
        }
        let resp = self.ctx.client.get(&path).await.map_err(engine_err)?;
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| engine_err(anyhow::Error::new(e)))?
            .to_bytes();
        if tty {
            return Ok(vec![LogChunk {
                stream: 1,
                data: body.to_vec(),
            }]);
        }
        let mut dec = wharf_api::codec::FrameDecoder::default();
        Ok(dec
            .feed(&body)
            .into_iter()
            .map(|(stream, data)| LogChunk {
                stream: if stream == wharf_api::codec::STDERR {
                    2
                } else {
                    1
                },
                data: data.to_vec(),
            })
            .collect())
    }

    async fn follow_logs(
        &self,
        ids: &[String],
        tail: Option<&str>,
        timestamps: bool,
        each: &mut dyn FnMut(usize, LogEvent),
    ) -> EngineResult<()> {
        // One task per container, their chunks merged through a channel in arrival order.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for (i, id) in ids.iter().enumerate() {
            let client = self.ctx.client.clone();
            let tx = tx.clone();
            let id = id.clone();
            let mut path = format!(
                "/containers/{}/logs?stdout=1&stderr=1&follow=1&timestamps={}",
                enc_path(&id),
                u8::from(timestamps)
            );
            if let Some(t) = tail {
                path.push_str(&format!("&tail={}", enc(t)));
            }
            tokio::spawn(async move {
                let r = follow_one(&client, &id, &path, |ch| {
                    let _ = tx.send((i, Ok(LogEvent::Chunk(ch))));
                })
                .await;
                let end = match r {
                    Ok(exit_code) => Ok(LogEvent::End { exit_code }),
                    Err(e) => Err(engine_err(e)),
                };
                let _ = tx.send((i, end));
            });
        }
        drop(tx);
        while let Some((i, ev)) = rx.recv().await {
            each(i, ev?);
        }
        Ok(())
    }

    async fn image_id(&self, image: &str) -> EngineResult<Option<String>> {
        Ok(self
            .get_opt(&format!("/images/{}/json", enc_path(image)))
            .await?
            .map(|v| v["Id"].as_str().unwrap_or("").to_string()))
    }

    async fn build_image(&self, req: &BuildRequest) -> EngineResult<()> {
        // A `dockerfile_inline` is a file outside the context, which `wharf build` sends
        // under a name of its own.
        let inline = match &req.dockerfile_inline {
            Some(text) => {
                let f = tempfile_path("dockerfile-inline");
                std::fs::write(&f, text).map_err(|e| EngineError {
                    status: None,
                    message: format!("writing {}: {e}", f.display()),
                })?;
                Some(f)
            }
            None => None,
        };
        let secret = req
            .secrets
            .iter()
            .map(|s| match (&s.file, &s.env) {
                (Some(f), _) => format!("id={},src={}", s.id, f.display()),
                (None, Some(v)) => format!("id={},env={v}", s.id),
                (None, None) => format!("id={}", s.id),
            })
            .collect();
        let a = crate::cli::BuildArgs {
            tag: req.tags.clone(),
            file: inline
                .as_ref()
                .map(|f| f.display().to_string())
                .or_else(|| req.dockerfile.clone()),
            build_arg: req.args.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            target: req.target.clone(),
            no_cache: req.no_cache,
            pull: req.pull,
            quiet: req.quiet,
            iidfile: None,
            label: req.labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            cache_from: req.cache_from.clone(),
            network: req.network.clone().unwrap_or_else(|| "default".into()),
            add_host: req.extra_hosts.clone(),
            shm_size: req.shm_size.clone(),
            memory: None,
            memory_swap: None,
            cpu_shares: None,
            cpu_period: None,
            cpu_quota: None,
            cpuset_cpus: None,
            cpuset_mems: None,
            platform: None,
            compress: false,
            rm: true,
            force_rm: false,
            secret,
            progress: "plain".into(),
            context: req.context.display().to_string(),
        };
        let r = super::build::build_image(self.ctx, &a, false).await;
        if let Some(f) = inline {
            let _ = std::fs::remove_file(f);
        }
        r.map(drop).map_err(|e| EngineError {
            status: None,
            message: format!("failed to build {}: {e:#}", req.service),
        })
    }

    async fn copy_to_container(
        &self,
        id: &str,
        tar: Vec<u8>,
        copy_uid_gid: bool,
    ) -> EngineResult<()> {
        let q = format!(
            "/containers/{}/archive?path=/{}",
            enc_path(id),
            if copy_uid_gid { "&copyUIDGID=true" } else { "" }
        );
        self.ctx
            .client
            .request(
                "PUT",
                &q,
                Some((crate::client::full_body(tar), "application/x-tar")),
            )
            .await
            .map(drop)
            .map_err(engine_err)
    }

    async fn push_image(&self, image: &str) -> EngineResult<()> {
        let (repo, tag) = crate::format::names::split_tag(image);
        let q = format!(
            "/images/{}/push?tag={}",
            enc_path(&repo),
            enc(&tag.unwrap_or_else(|| "latest".into()))
        );
        let auth = crate::credentials::header_for_image(&self.ctx.config_dir, image)
            .map_err(engine_err)?;
        let resp = self
            .ctx
            .client
            .request_with_headers("POST", &q, None, &[("X-Registry-Auth", &auth)])
            .await
            .map_err(engine_err)?;
        let mut sink = std::io::sink();
        crate::stream::show_progress(resp.into_body(), &mut sink, false)
            .await
            .map(drop)
            .map_err(engine_err)
    }

    async fn pull_image(&self, image: &str) -> EngineResult<()> {
        let (repo, tag) = crate::format::names::split_tag(image);
        let q = match image.split_once('@') {
            Some((n, d)) => format!(
                "/images/create?fromImage={}",
                enc(&format!("{}@{d}", crate::format::names::split_tag(n).0))
            ),
            None => format!(
                "/images/create?fromImage={}&tag={}",
                enc(&repo),
                enc(&tag.unwrap_or_else(|| "latest".into()))
            ),
        };
        let auth = crate::credentials::header_for_image(&self.ctx.config_dir, image)
            .map_err(engine_err)?;
        let resp = self
            .ctx
            .client
            .request_with_headers("POST", &q, None, &[("X-Registry-Auth", &auth)])
            .await
            .map_err(engine_err)?;
        let mut sink = std::io::sink();
        crate::stream::show_progress(resp.into_body(), &mut sink, false)
            .await
            .map(drop)
            .map_err(engine_err)
    }

    async fn wait_change(&self, id: &str, seen: &ContainerState) -> EngineResult<ContainerState> {
        // Subscribe to the container's events first, then look: a change between the caller's
        // look and the subscription is seen by this look, a later one comes as an event
        // (health_status, die, ...). At most a second without one, then look again.
        let filters = json!({"container": [id], "type": ["container"]}).to_string();
        let path = format!("/events?filters={}", enc(&filters));
        let waited = tokio::time::timeout(std::time::Duration::from_secs(1), async {
            let mut body = self
                .ctx
                .client
                .get(&path)
                .await
                .map_err(engine_err)?
                .into_body();
            let st = self.inspect_container(id).await?;
            if &st != seen {
                return Ok(Some(st));
            }
            loop {
                match body.frame().await {
                    Some(Ok(f)) if f.data_ref().is_some_and(|d| !d.is_empty()) => return Ok(None),
                    Some(Ok(_)) => {}
                    // The stream ended or broke: do not spin on it.
                    Some(Err(_)) | None => {
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        return Ok(None);
                    }
                }
            }
        })
        .await;
        match waited {
            Ok(Ok(Some(st))) => Ok(st),
            Ok(Err(e)) => Err(e),
            Ok(Ok(None)) | Err(_) => self.inspect_container(id).await,
        }
    }
}

/// `n` random bytes in hex.
fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A path for a file of ours under the temporary directory.
fn tempfile_path(what: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("wharf-compose-{what}-{}", random_hex(8)))
}

/// A `cp` argument: `SERVICE:PATH` becomes the service's container `index` (`NAME:PATH`), a
/// local path (with a `/` or `.` before any `:`) stays as it is.
async fn cp_arg(
    api: &Api<'_>,
    project: &wharf_compose::Project,
    arg: &str,
    index: u32,
) -> Result<String> {
    let Some((svc, path)) = arg.split_once(':') else {
        return Ok(arg.to_string());
    };
    if svc.is_empty() || svc.contains('/') || svc.starts_with('.') {
        return Ok(arg.to_string());
    }
    let cs = wharf_compose::ops::containers(api, project, &[svc.to_string()], true)
        .await
        .map_err(|e| status(1, e.to_string()))?;
    let Some(c) = cs.iter().find(|c| wharf_compose::up::number(c) == index) else {
        return Err(status(1, format!("service \"{svc}\" is not running")));
    };
    Ok(format!("{}:{path}", c.name))
}

/// Follows one container's log to its end; returns the container's exit code then.
async fn follow_one(
    client: &crate::client::Client,
    id: &str,
    path: &str,
    mut each: impl FnMut(LogChunk),
) -> Result<i64> {
    let inspect = format!("/containers/{}/json", enc_path(id));
    let tty = client.get_json(&inspect).await?["Config"]["Tty"]
        .as_bool()
        .unwrap_or(false);
    let mut body = client.get(path).await?.into_body();
    let mut dec = wharf_api::codec::FrameDecoder::default();
    while let Some(fr) = body.frame().await {
        let fr = fr.context("reading a log stream")?;
        let Some(data) = fr.data_ref() else { continue };
        if tty {
            each(LogChunk {
                stream: 1,
                data: data.to_vec(),
            });
            continue;
        }
        for (stream, payload) in dec.feed(data) {
            each(LogChunk {
                stream: if stream == wharf_api::codec::STDERR {
                    2
                } else {
                    1
                },
                data: payload.to_vec(),
            });
        }
    }
    // The stream ends when the container stops; its exit code may take a moment to be set.
    let v = client.get_json(&inspect).await?;
    Ok(v["State"]["ExitCode"].as_i64().unwrap_or(0))
}

/// Progress lines go to stderr, as compose v2 prints them.
struct Stderr;

impl Out for Stderr {
    fn line(&mut self, s: &str) {
        eprintln!("{s}");
    }
}

struct Stdout;

impl Out for Stdout {
    fn line(&mut self, s: &str) {
        println!("{s}");
    }
}

/// compose v2's commands that wharf compose does not have yet.
const NOT_YET: &[&str] = &[
    "attach", "commit", "export", "stats", "alpha", "publish", "volumes",
];

pub async fn run(ctx: &Ctx, a: ComposeArgs) -> Result<i32> {
    if let ComposeCmd::Other(words) = &a.cmd {
        let name = words.first().map(String::as_str).unwrap_or("");
        if NOT_YET.contains(&name) {
            return Err(status(
                1,
                format!("wharf compose: '{name}' is not supported yet (see docs/compatibility.md)"),
            ));
        }
        return Err(status(
            1,
            format!("unknown docker command: \"compose {name}\""),
        ));
    }
    if let ComposeCmd::Version(v) = &a.cmd {
        if v.short {
            println!("{}", env!("CARGO_PKG_VERSION"));
        } else {
            println!("wharf compose version {}", env!("CARGO_PKG_VERSION"));
        }
        return Ok(0);
    }
    if let ComposeCmd::Ls(l) = &a.cmd {
        // Over the engine's labels alone: no compose file.
        let rows = wharf_compose::ops::ls(&Api { ctx }, l.all)
            .await
            .map_err(|e| status(1, e.to_string()))?;
        if l.quiet {
            for (name, _, _) in rows {
                println!("{name}");
            }
            return Ok(0);
        }
        let mut t = String::from("NAME\tSTATUS\tCONFIG FILES\n");
        for (name, st, files) in rows {
            t.push_str(&format!("{name}\t{st}\t{files}\n"));
        }
        print!("{}", crate::format::table::align_with(&t, 20, 3));
        return Ok(0);
    }
    if let Some(p) = a.progress.as_deref() {
        if !matches!(p, "auto" | "tty" | "plain") {
            return Err(status(
                1,
                format!("wharf compose: --progress {p} is not supported yet (plain lines only)"),
            ));
        }
    }
    let opts = wharf_compose::Options {
        files: a.file.clone(),
        project_name: a.project_name.clone(),
        project_directory: a.project_directory.clone(),
        env_files: a.env_file.clone(),
        profiles: a.profile.clone(),
        environ: std::env::vars().collect(),
        cwd: std::env::current_dir().context("the current directory")?,
        include_chain: Vec::new(),
    };
    let by_label = matches!(
        a.cmd,
        ComposeCmd::Events(_)
            | ComposeCmd::Kill(_)
            | ComposeCmd::Images(_)
            | ComposeCmd::Top(_)
            | ComposeCmd::Wait(_)
            | ComposeCmd::Port(_)
            | ComposeCmd::Pause(_)
            | ComposeCmd::Unpause(_)
            | ComposeCmd::Exec(_)
            | ComposeCmd::Down(_)
            | ComposeCmd::Ps(_)
            | ComposeCmd::Logs(_)
            | ComposeCmd::Start(_)
            | ComposeCmd::Stop(_)
            | ComposeCmd::Restart(_)
            | ComposeCmd::Rm(_)
    );
    let named = a.project_name.clone().or_else(|| {
        std::env::var("COMPOSE_PROJECT_NAME")
            .ok()
            .filter(|s| !s.is_empty())
    });
    let project = match wharf_compose::load(&opts) {
        Ok(p) => p,
        // As compose v2: without a file, `-p NAME` finds the project by its labels.
        Err(wharf_compose::ComposeError::NotFound { .. }) if by_label && named.is_some() => {
            wharf_compose::Project::by_name(named.unwrap_or_default())
        }
        Err(e) => return Err(status(1, e.to_string())),
    };
    let api = Api { ctx };
    let fail = |e: wharf_compose::up::UpError| status(1, e.to_string());
    match a.cmd {
        ComposeCmd::Config(c) => {
            let text = if c.services {
                lines(wharf_compose::config::services(&project))
            } else if c.volumes {
                lines(wharf_compose::config::volumes(&project))
            } else {
                wharf_compose::config::to_yaml(&project)
            };
            if c.quiet {
                return Ok(0);
            }
            match c.output {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => print!("{text}"),
            }
        }
        ComposeCmd::Up(u) => {
            let o = wharf_compose::up::UpOptions {
                services: u.services.clone(),
                remove_orphans: u.remove_orphans,
                force_recreate: u.force_recreate,
                no_start: u.no_start,
                build: u.build,
            };
            wharf_compose::up::up(&api, &project, &o, &mut Stderr)
                .await
                .map_err(fail)?;
            if !u.detach && !u.no_start {
                // Attached: the logs until every container stops, or Ctrl-C stops them.
                let (mut so, mut se, mut se2) = (Stdout, Stderr, Stderr);
                tokio::select! {
                    r = wharf_compose::up::attach(&api, &project, &u.services, &mut so, &mut se) => r.map_err(fail)?,
                    _ = tokio::signal::ctrl_c() => {
                        eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
                        tokio::select! {
                            r = wharf_compose::ops::stop(&api, &project, &u.services, None, &mut se2) => r.map_err(fail)?,
                            _ = tokio::signal::ctrl_c() => return Err(status(130, "")),
                        }
                        return Err(status(130, ""));
                    }
                }
            }
        }
        ComposeCmd::Down(d) => {
            let o = wharf_compose::down::DownOptions {
                volumes: d.volumes,
                remove_orphans: d.remove_orphans,
                timeout: d.timeout,
            };
            wharf_compose::down::down(&api, &project, &o, &mut Stderr)
                .await
                .map_err(fail)?;
        }
        ComposeCmd::Ps(p) => {
            if p.services {
                let mut names: Vec<String> = Vec::new();
                for c in wharf_compose::ops::containers(&api, &project, &p.service_names, p.all)
                    .await
                    .map_err(fail)?
                {
                    let s = c
                        .label(wharf_compose::labels::SERVICE)
                        .unwrap_or("")
                        .to_string();
                    if !names.contains(&s) {
                        names.push(s);
                    }
                }
                print!("{}", lines(names));
                return Ok(0);
            }
            let cs = wharf_compose::ops::containers(&api, &project, &p.service_names, p.all)
                .await
                .map_err(fail)?;
            if p.quiet {
                for c in cs {
                    println!("{}", c.id);
                }
                return Ok(0);
            }
            print!("{}", ps_table(&cs));
        }
        ComposeCmd::Logs(l) => {
            let o = wharf_compose::ops::LogOptions {
                services: l.services,
                tail: l.tail,
                timestamps: l.timestamps,
                prefix: !l.no_log_prefix,
                follow: l.follow,
            };
            wharf_compose::ops::logs(&api, &project, &o, &mut Stdout, &mut Stderr)
                .await
                .map_err(fail)?;
        }
        ComposeCmd::Start(s) => wharf_compose::ops::start(&api, &project, &s.services, &mut Stderr)
            .await
            .map_err(fail)?,
        ComposeCmd::Stop(s) => {
            wharf_compose::ops::stop(&api, &project, &s.services, s.timeout, &mut Stderr)
                .await
                .map_err(fail)?
        }
        ComposeCmd::Restart(s) => {
            wharf_compose::ops::restart(&api, &project, &s.services, s.timeout, &mut Stderr)
                .await
                .map_err(fail)?
        }
        ComposeCmd::Rm(r) => {
            let force = r.force;
            let mut confirm = |names: &[String]| {
                if force {
                    return true;
                }
                // compose asks on a terminal; without one (and without -f) it removes nothing.
                eprintln!("Going to remove {}", names.join(", "));
                if !crate::tty::is_tty(std::os::fd::AsFd::as_fd(&std::io::stdin())) {
                    return false;
                }
                eprint!("? Are you sure? (y/N) ");
                let mut ans = String::new();
                let _ = std::io::stdin().read_line(&mut ans);
                matches!(ans.trim(), "y" | "Y" | "yes")
            };
            wharf_compose::ops::rm(
                &api,
                &project,
                &r.services,
                r.stop,
                r.volumes,
                &mut confirm,
                &mut Stderr,
            )
            .await
            .map_err(fail)?;
        }
        ComposeCmd::Exec(x) => {
            let service = x.service_and_cmd[0].clone();
            let running = wharf_compose::ops::containers(
                &api,
                &project,
                std::slice::from_ref(&service),
                false,
            )
            .await
            .map_err(fail)?;
            let Some(c) = running
                .iter()
                .find(|c| wharf_compose::up::number(c) == x.index)
            else {
                return Err(status(1, format!("service \"{service}\" is not running")));
            };
            let on_tty = crate::tty::is_tty(std::os::fd::AsFd::as_fd(&std::io::stdin()))
                && crate::tty::stdout_is_tty();
            let mut container_and_cmd = vec![c.name.clone()];
            container_and_cmd.extend(x.service_and_cmd[1..].iter().cloned());
            let args = crate::cli::ExecArgs {
                detach: x.detach,
                interactive: !x.detach,
                tty: !x.no_tty && !x.detach && on_tty,
                env: x.env,
                env_file: Vec::new(),
                workdir: x.workdir,
                user: x.user,
                privileged: x.privileged,
                detach_keys: None,
                container_and_cmd,
            };
            return super::container::exec(ctx, args).await;
        }
        ComposeCmd::Kill(k) => wharf_compose::ops::kill(
            &api,
            &project,
            &k.services,
            k.signal.as_deref(),
            &mut Stderr,
        )
        .await
        .map_err(fail)?,
        ComposeCmd::Pause(x) => wharf_compose::ops::pause(&api, &project, &x.services, &mut Stderr)
            .await
            .map_err(fail)?,
        ComposeCmd::Unpause(x) => {
            wharf_compose::ops::unpause(&api, &project, &x.services, &mut Stderr)
                .await
                .map_err(fail)?
        }
        ComposeCmd::Create(c) => {
            let o = wharf_compose::up::UpOptions {
                services: c.services,
                remove_orphans: c.remove_orphans,
                force_recreate: c.force_recreate,
                no_start: true,
                build: c.build,
            };
            wharf_compose::up::up(&api, &project, &o, &mut Stderr)
                .await
                .map_err(fail)?;
        }
        ComposeCmd::Wait(w) => {
            // The exit code of each service's containers, printed as they stop.
            let cs = wharf_compose::ops::containers(&api, &project, &w.services, true)
                .await
                .map_err(fail)?;
            let mut last = 0;
            for c in cs {
                last = api
                    .wait_container(&c.id)
                    .await
                    .map_err(|e| status(1, e.to_string()))?;
                println!("{last}");
            }
            return Ok(last as i32);
        }
        ComposeCmd::Port(x) => {
            let cs = wharf_compose::ops::containers(
                &api,
                &project,
                std::slice::from_ref(&x.service),
                false,
            )
            .await
            .map_err(fail)?;
            let Some(c) = cs.iter().find(|c| wharf_compose::up::number(c) == x.index) else {
                return Err(status(
                    1,
                    format!("service \"{}\" is not running", x.service),
                ));
            };
            let v = ctx
                .client
                .get_json(&format!("/containers/{}/json", enc_path(&c.id)))
                .await?;
            let key = format!("{}/{}", x.private_port, x.protocol);
            let Some(b) = v["NetworkSettings"]["Ports"][&key]
                .as_array()
                .and_then(|a| a.first())
            else {
                return Err(status(1, format!("no port {key} for container {}", c.name)));
            };
            let ip = b["HostIp"].as_str().unwrap_or("");
            let ip = if ip.is_empty() { "0.0.0.0" } else { ip };
            println!("{ip}:{}", b["HostPort"].as_str().unwrap_or(""));
        }
        ComposeCmd::Top(x) => {
            // Each running container's name, its processes as `wharf top` prints them, a blank
            // line.
            let cs = wharf_compose::ops::containers(&api, &project, &x.services, false)
                .await
                .map_err(fail)?;
            for c in cs {
                println!("{}", c.name);
                let args = crate::cli::TopArgs {
                    container: c.id.clone(),
                    ps_args: Vec::new(),
                };
                super::container::top(ctx, args).await?;
                println!();
            }
        }
        ComposeCmd::Build(b) => {
            let o = wharf_compose::build::BuildOptions {
                no_cache: b.no_cache,
                pull: b.pull,
                quiet: b.quiet,
            };
            let mut quiet_out: Vec<String> = Vec::new();
            let out: &mut dyn Out = if b.quiet { &mut quiet_out } else { &mut Stderr };
            wharf_compose::build::build(&api, &project, &b.services, &o, out)
                .await
                .map_err(fail)?;
        }
        ComposeCmd::Push(x) => wharf_compose::build::push(
            &api,
            &project,
            &x.services,
            x.ignore_push_failures,
            &mut Stderr,
        )
        .await
        .map_err(fail)?,
        ComposeCmd::Run(r) => {
            let on_tty = crate::tty::is_tty(std::os::fd::AsFd::as_fd(&std::io::stdin()))
                && crate::tty::stdout_is_tty();
            let o = wharf_compose::run::RunOptions {
                service: r.service_and_cmd[0].clone(),
                command: r.service_and_cmd[1..].to_vec(),
                entrypoint: r.entrypoint,
                env: r.env,
                name: r.name,
                service_ports: r.service_ports,
                no_deps: r.no_deps,
                rm: r.rm,
                tty: !r.no_tty && !r.detach && on_tty,
                user: r.user,
                workdir: r.workdir,
                slug: random_hex(6),
            };
            let environ = |k: &str| std::env::var(k).ok();
            let (id, name) = wharf_compose::run::create(&api, &project, &o, &environ, &mut Stderr)
                .await
                .map_err(fail)?;
            if r.detach {
                api.start_container(&id)
                    .await
                    .map_err(|e| status(1, e.to_string()))?;
                println!("{name}");
                return Ok(0);
            }
            let args = crate::cli::StartArgs {
                attach: true,
                interactive: true,
                detach_keys: None,
                containers: vec![id],
            };
            return super::container::start(ctx, args).await;
        }
        ComposeCmd::Watch(w) => return watch::watch(&api, &project, &w.services, w.no_up).await,
        ComposeCmd::Events(x) => {
            let filters = wharf_compose::events::filters(&project.name).to_string();
            let resp = ctx
                .client
                .get(&format!("/events?filters={}", enc(&filters)))
                .await?;
            crate::stream::json_lines(resp.into_body(), |ev| {
                if let Some(l) = wharf_compose::events::line(&ev, &x.services, x.json) {
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "{l}")?;
                    out.flush()?;
                }
                Ok(true)
            })
            .await?;
        }
        ComposeCmd::Cp(c) => {
            let src = cp_arg(&api, &project, &c.src, c.index).await?;
            let dest = cp_arg(&api, &project, &c.dest, c.index).await?;
            let args = crate::cli::CpArgs {
                follow_link: c.follow_link,
                archive: c.archive,
                quiet: true,
                src,
                dest,
            };
            return super::container::cp(ctx, args).await;
        }
        ComposeCmd::Pull(x) => wharf_compose::ops::pull(&api, &project, &x.services, &mut Stderr)
            .await
            .map_err(fail)?,
        ComposeCmd::Scale(x) => {
            // SERVICE=N for each: that many replicas, then up of those services alone.
            let mut project = project;
            let mut services = Vec::new();
            for arg in &x.services {
                let Some((name, n)) = arg.split_once('=') else {
                    return Err(status(1, format!("invalid scale specifier: {arg}")));
                };
                let n: u32 = n
                    .parse()
                    .map_err(|_| status(1, format!("invalid scale specifier: {arg}")))?;
                let Some(s) = project.services.get_mut(name) else {
                    return Err(status(1, format!("no such service: {name}")));
                };
                s.scale = Some(n);
                if let Some(d) = &mut s.deploy {
                    d.replicas = Some(n);
                }
                services.push(name.to_string());
            }
            let o = wharf_compose::up::UpOptions {
                services,
                ..Default::default()
            };
            wharf_compose::up::up(&api, &project, &o, &mut Stderr)
                .await
                .map_err(fail)?;
        }
        ComposeCmd::Images(x) => {
            let cs = wharf_compose::ops::containers(&api, &project, &x.services, true)
                .await
                .map_err(fail)?;
            let mut t = String::from("CONTAINER\tREPOSITORY\tTAG\tIMAGE ID\tSIZE\n");
            for c in cs {
                let v = ctx
                    .client
                    .get_json(&format!("/images/{}/json", enc_path(&c.image)))
                    .await?;
                let id = v["Id"].as_str().unwrap_or("");
                let short = crate::format::names::short_id(id);
                if x.quiet {
                    println!("{short}");
                    continue;
                }
                let (repo, tag) = crate::format::names::split_tag(&c.image);
                let size =
                    crate::format::human::human_size_prec(v["Size"].as_f64().unwrap_or(0.0), 3);
                t.push_str(&format!(
                    "{}\t{}\t{}\t{short}\t{size}\n",
                    c.name,
                    crate::format::names::familiar(&repo),
                    tag.unwrap_or_else(|| "latest".into())
                ));
            }
            if !x.quiet {
                print!("{}", crate::format::table::align_with(&t, 20, 3));
            }
        }
        ComposeCmd::Other(_) | ComposeCmd::Ls(_) | ComposeCmd::Version(_) => {
            unreachable!("handled above")
        }
    }
    Ok(0)
}

fn lines(v: Vec<String>) -> String {
    v.into_iter().map(|s| s + "\n").collect()
}

/// `compose ps`: NAME IMAGE COMMAND SERVICE CREATED STATUS PORTS, aligned as compose's
/// tabwriter does.
fn ps_table(cs: &[ContainerSummary]) -> String {
    let mut t = String::from("NAME\tIMAGE\tCOMMAND\tSERVICE\tCREATED\tSTATUS\tPORTS\n");
    for c in cs {
        t.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            c.name,
            c.image,
            go_quote(&ellipsis(&c.command, 20)),
            c.label(wharf_compose::labels::SERVICE).unwrap_or(""),
            crate::format::human::ago(c.created),
            c.status,
            c.ports
        ));
    }
    crate::format::table::align(&t)
}
