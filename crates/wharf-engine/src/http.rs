//! The Engine API over HTTP/1.1: routes (from `wharf_api::route`) dispatched to the engine,
//! hijacked connections for attach and exec, streamed bodies for logs, events, wait and
//! progress.

use crate::archive;
use crate::container::Status;
use crate::engine::{image_error, net_error, parse_signal, Engine};
use crate::logs::{self, LogOptions};
use crate::shim;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use wharf_api::codec;
use wharf_api::types::{CreateRequest, ExecConfig, ExecStartConfig};
use wharf_api::units;
use wharf_api::{ApiError, Route};
use wharf_shim::proto::{self, Request as ShimRequest};

/// A response body: a whole buffer or a channel of chunks.
pub enum ApiBody {
    Full(Option<Bytes>),
    Chan(mpsc::Receiver<Bytes>),
    /// A stream that can fail after the 200 (export, save, cp out): an error ends the
    /// response without its last chunk, so the client sees a broken transfer and fails, as
    /// with dockerd, instead of a short tar and exit 0.
    Abortable(mpsc::Receiver<Result<Bytes, StreamAborted>>),
}

/// Why a streamed response was cut off (logged by hyper; the client sees the connection end).
#[derive(Debug, thiserror::Error)]
#[error("stream aborted: {0}")]
pub struct StreamAborted(pub String);

impl Body for ApiBody {
    type Data = Bytes;
    type Error = StreamAborted;
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamAborted>>> {
        match self.get_mut() {
            ApiBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ApiBody::Chan(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
            ApiBody::Abortable(rx) => rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data))),
        }
    }
}

type Resp = Response<ApiBody>;

fn with_headers(mut r: Resp) -> Resp {
    let h = r.headers_mut();
    h.insert(
        "Api-Version",
        HeaderValue::from_static(wharf_api::API_VERSION),
    );
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert(
        "Server",
        HeaderValue::from_static(concat!("wharf/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    r
}

fn json_resp(status: u16, v: &Value) -> Resp {
    let mut r = Response::new(ApiBody::Full(Some(Bytes::from(v.to_string()))));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn empty(status: u16) -> Resp {
    let mut r = Response::new(ApiBody::Full(None));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r
}

fn error_resp(e: &ApiError) -> Resp {
    if e.status == 304 {
        return empty(304);
    }
    json_resp(e.status, &json!({"message": e.message}))
}

fn stream_resp(content_type: &'static str) -> (Resp, mpsc::Sender<Bytes>) {
    let (tx, rx) = mpsc::channel(64);
    let mut r = Response::new(ApiBody::Chan(rx));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    (r, tx)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                // Bytes, not a str slice: a '%' before a multi-byte character must not panic.
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query parameters (repeated keys keep every value).
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        Query(
            q.unwrap_or_default()
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str())
    }
    pub fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(x, _)| x == k)
            .map(|(_, v)| v.clone())
            .collect()
    }
    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("1" | "true" | "True" | "yes"))
    }
    /// Docker's `filters` JSON: `{"key": ["v"]}` or the legacy `{"key": {"v": true}}`.
    pub fn filters(&self) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
        let Some(f) = self.get("filters").filter(|f| !f.is_empty()) else {
            return Ok(BTreeMap::new());
        };
        let v: Value = serde_json::from_str(f)
            .map_err(|e| ApiError::bad_request(format!("invalid filters: {e}")))?;
        let mut out = BTreeMap::new();
        for (k, vals) in v.as_object().into_iter().flatten() {
            let list = match vals {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                Value::Object(o) => o.keys().cloned().collect(),
                _ => vec![],
            };
            out.insert(k.clone(), list);
        }
        Ok(out)
    }
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    req.into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))
}

/// Serves one accepted connection.
/// A JSON request body (`{}` when empty).
async fn json_body(req: Request<Incoming>) -> Result<Value, ApiError> {
    let body = read_body(req).await?;
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

pub async fn serve_conn<IO>(engine: Arc<Engine>, io: IO)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let engine = engine.clone();
        async move { Ok::<_, Infallible>(with_headers(handle(engine, req).await)) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!("connection ended: {e}");
    }
}

async fn handle(engine: Arc<Engine>, req: Request<Incoming>) -> Resp {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = Query::parse(req.uri().query());
    tracing::debug!("{method} {path}");
    let route = match wharf_api::route(&method, &path) {
        Ok((_, r)) => r,
        Err(e) => return error_resp(&e),
    };
    let began = std::time::Instant::now();
    let resp = match dispatch(engine, route, query, req).await {
        Ok(r) => r,
        Err(e) => {
            if e.status >= 500 {
                tracing::warn!("{method} {path}: {}", e.message);
            }
            error_resp(&e)
        }
    };
    // When the response (or, for a stream, its head) is ready: where a request's time goes.
    tracing::debug!(
        "{method} {path} -> {} in {:.1?}",
        resp.status().as_u16(),
        began.elapsed()
    );
    resp
}

async fn dispatch(
    engine: Arc<Engine>,
    route: Route,
    q: Query,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    use Route::*;
    Ok(match route {
        Auth => auth_login(&engine, req).await?,
        Ping => {
            let mut r = Response::new(ApiBody::Full(Some(Bytes::from_static(b"OK"))));
            let h = r.headers_mut();
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            h.insert(
                "Cache-Control",
                HeaderValue::from_static("no-cache, no-store, must-revalidate"),
            );
            h.insert("Pragma", HeaderValue::from_static("no-cache"));
            h.insert("Builder-Version", HeaderValue::from_static("1"));
            r
        }
        Version => json_resp(200, &version_info()),
        Info => json_resp(200, &info(&engine)),
        Events => events(&engine, &q)?,
        SystemDf => {
            let mut containers = engine.list(true, &BTreeMap::new(), None);
            for c in &mut containers {
                add_sizes(&engine, c);
            }
            let (imgs, layers_size) = images_usage(&engine, &containers)?;
            json_resp(
                200,
                &json!({"LayersSize": layers_size, "Images": imgs, "Containers": containers, "Volumes": volumes_usage(&engine), "BuildCache": crate::build::df_records(&engine)}),
            )
        }
        ContainerCreate => {
            let name = q.get("name").map(String::from);
            let body = read_body(req).await?;
            let mut cr = CreateRequest::parse(&body)?;
            cr.platform = q
                .get("platform")
                .filter(|p| !p.is_empty())
                .map(String::from);
            let (id, warnings) = engine.create(name, cr).await?;
            json_resp(201, &json!({"Id": id, "Warnings": warnings}))
        }
        ContainerList => {
            let limit = q
                .get("limit")
                .and_then(|l| l.parse::<i64>().ok())
                .filter(|l| *l > 0)
                .map(|l| l as usize);
            let limit = if q.flag("latest") { Some(1) } else { limit };
            let all = q.flag("all") || limit.is_some();
            let mut list = engine.list(all, &q.filters()?, limit);
            if q.flag("size") {
                for c in &mut list {
                    add_sizes(&engine, c);
                }
            }
            json_resp(200, &json!(list))
        }
        ContainerPrune => json_resp(200, &engine.prune(&q.filters()?).await?),
        ContainerInspect(id) => {
            let mut v = engine.inspect(engine.lookup(&id)?.as_ref());
            if q.flag("size") {
                add_sizes(&engine, &mut v);
            }
            json_resp(200, &v)
        }
        ContainerStart(id) => {
            let c = engine.lookup(&id)?;
            engine.start(&c).await?;
            empty(204)
        }
        ContainerStop(id) | ContainerRestart(id) => {
            let restart = matches!(route_kind(&path_of(&req)), "restart");
            let c = engine.lookup(&id)?;
            let t = q.get("t").and_then(|t| t.parse().ok());
            let sig = q
                .get("signal")
                .filter(|s| !s.is_empty())
                .map(parse_signal)
                .transpose()?;
            match engine.stop(&c, t, sig).await {
                Ok(()) => {}
                Err(e) if e.status == 304 && restart => {}
                Err(e) => return Err(e),
            }
            if restart {
                engine.start(&c).await?;
                engine.exec_event(&c.id, "restart", &[]);
            }
            empty(204)
        }
        ContainerKill(id) => {
            let c = engine.lookup(&id)?;
            let sig = parse_signal(
                q.get("signal")
                    .filter(|s| !s.is_empty())
                    .unwrap_or("SIGKILL"),
            )?;
            engine.kill(&c, sig).await?;
            empty(204)
        }
        ContainerWait(id) => {
            let c = engine.lookup(&id)?;
            let cond = q.get("condition").unwrap_or("not-running").to_string();
            if !matches!(cond.as_str(), "" | "not-running" | "next-exit" | "removed") {
                return Err(ApiError::bad_request(format!(
                    "invalid condition: {cond:?}"
                )));
            }
            // Headers go out at once; the body when the condition is met (as dockerd).
            let (r, tx) = stream_resp("application/json");
            tokio::spawn(async move {
                let code = engine.wait(&c, &cond).await.unwrap_or(-1);
                let err = c.snapshot().state.error;
                let body = if err.is_empty() {
                    json!({"StatusCode": code, "Error": null})
                } else {
                    json!({"StatusCode": code, "Error": {"Message": err}})
                };
                let _ = tx.send(Bytes::from(format!("{body}\n"))).await;
            });
            r
        }
        ContainerDelete(id) => {
            let c = engine.lookup(&id)?;
            engine.remove_with(&c, q.flag("force"), q.flag("v")).await?;
            empty(204)
        }
        ContainerLogs(id) => container_logs(&engine, &engine.lookup(&id)?, &q)?,
        ContainerAttach(id) => attach(engine.clone(), engine.lookup(&id)?, &q, req)?,
        ContainerResize(id) => {
            let c = engine.lookup(&id)?;
            let (h, w) = (
                q.get("h").and_then(|v| v.parse().ok()).unwrap_or(0),
                q.get("w").and_then(|v| v.parse().ok()).unwrap_or(0),
            );
            if !c.status().is_live() {
                return Err(ApiError::conflict(format!(
                    "Container {} is not running",
                    c.id
                )));
            }
            shim::call(
                &engine.shim_dir(&c.id),
                &ShimRequest::Resize { rows: h, cols: w },
            )
            .await
            .map_err(ApiError::bad_request)?;
            empty(200)
        }
        ContainerRename(id) => {
            let c = engine.lookup(&id)?;
            engine.rename(&c, q.get("name").unwrap_or_default()).await?;
            empty(204)
        }
        ContainerTop(id) => json_resp(
            200,
            &engine
                .top(engine.lookup(&id)?.as_ref(), q.get("ps_args"))
                .await?,
        ),
        ContainerChanges(id) => {
            let c = engine.lookup(&id)?;
            let images = engine.images.clone();
            let changes = tokio::task::spawn_blocking(move || images.layers().changes(&c.id))
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?
                .map_err(image_error)?;
            let v: Vec<Value> = changes
                .iter()
                .map(|c| json!({"Path": c.path, "Kind": c.kind}))
                .collect();
            json_resp(200, &json!(v))
        }
        ContainerExport(id) => {
            let c = engine.lookup(&id)?;
            // A running container's live root (a second overlay on its upper and work dirs
            // would be undefined in the kernel), else a temporary mount of its layers.
            let (r, w) = abortable_resp("application/x-tar");
            let engine = engine.clone();
            tokio::spawn(async move {
                let mut out = w.clone();
                let ids = engine.container_id_map(&c);
                // Walked from inside a chroot into that root (no mounts of volumes: export
                // leaves them out, as dockerd does).
                let done = engine
                    .with_rootfs(&c, move |root| {
                        let jail = archive::Jail::Stopped {
                            root: root.to_path_buf(),
                            mounts: Vec::new(),
                        };
                        archive::export_in(&jail, &mut out, ids.as_ref())
                    })
                    .await;
                if let Err(e) = done {
                    w.abort_async(format!("export of {}: {}", c.id, e.message))
                        .await;
                }
            });
            r
        }
        ContainerPause(id) => {
            engine.pause(engine.lookup(&id)?.as_ref(), true).await?;
            empty(204)
        }
        ContainerUnpause(id) => {
            engine.pause(engine.lookup(&id)?.as_ref(), false).await?;
            empty(204)
        }
        ExecCreate(id) => {
            let c = engine.lookup(&id)?;
            let body = read_body(req).await?;
            let cfg: ExecConfig = serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
            units::detach_keys(cfg.detach_keys.as_deref())
                .map_err(|e| ApiError::bad_request(e.0))?;
            let eid = engine.exec_create(&c, cfg)?;
            json_resp(201, &json!({"Id": eid}))
        }
        ExecStart(id) => exec_start(engine, &id, req).await?,
        ExecResize(id) => {
            let e = engine.exec(&id)?;
            let (h, w) = (
                q.get("h").and_then(|v| v.parse().ok()).unwrap_or(0),
                q.get("w").and_then(|v| v.parse().ok()).unwrap_or(0),
            );
            shim::call(
                &engine.shim_dir(&e.container),
                &ShimRequest::ExecResize {
                    id: e.id.clone(),
                    rows: h,
                    cols: w,
                },
            )
            .await
            .map_err(ApiError::bad_request)?;
            empty(200)
        }
        ExecInspect(id) => {
            let e = engine.exec(&id)?;
            let st = e.state.lock().expect("exec lock").clone();
            let cmd = e.config.cmd.clone().unwrap_or_default();
            json_resp(
                200,
                &json!({
                    "ID": e.id, "Running": st.running, "ExitCode": st.exit_code,
                    "ProcessConfig": {"tty": e.config.tty, "entrypoint": cmd.first(), "arguments": cmd.get(1..).unwrap_or_default(), "privileged": e.config.privileged, "user": e.config.user},
                    "OpenStdin": e.config.attach_stdin, "OpenStderr": e.config.attach_stderr, "OpenStdout": e.config.attach_stdout,
                    "CanRemove": false, "ContainerID": e.container, "DetachKeys": "", "Pid": st.pid,
                }),
            )
        }
        ImageCreate => image_create(&engine, &q, req).await?,
        Build => build(&engine, &q, req).await?,
        BuildContext => {
            let id = q.get("id").unwrap_or_default().to_string();
            let body = read_body(req).await?;
            json_resp(
                200,
                &crate::build::context_listing(&engine, &id, &body).await?,
            )
        }
        BuildPrune => {
            let filters = q.filters()?;
            let until = match filters.get("until").and_then(|v| v.first()) {
                Some(u) => Some(parse_until(u)?),
                None => None,
            };
            json_resp(200, &crate::build::prune(&engine, until).await?)
        }
        ImageList => {
            let imgs = engine.images.list().map_err(image_error)?;
            let filters = q.filters()?;
            let show_all = q.flag("all");
            let v: Vec<Value> = imgs
                .iter()
                .filter(|i| {
                    show_all
                        || !i.repo_tags.is_empty()
                        || filters
                            .get("dangling")
                            .is_some_and(|d| d.iter().any(|x| x == "true"))
                })
                .filter(|i| match filters.get("dangling") {
                    Some(d) if d.iter().any(|x| x == "true") => i.repo_tags.is_empty(),
                    Some(d) if d.iter().any(|x| x == "false") => !i.repo_tags.is_empty(),
                    _ => true,
                })
                .filter(|i| {
                    filters.get("reference").is_none_or(|refs| {
                        refs.iter()
                            .any(|r| i.repo_tags.iter().any(|t| ref_matches(t, r)))
                    })
                })
                .map(|i| {
                    let mut s = image_summary(i);
                    // As dockerd: a reference filter also narrows the tags listed.
                    if let Some(refs) = filters.get("reference") {
                        let tags: Vec<&String> = i
                            .repo_tags
                            .iter()
                            .filter(|t| refs.iter().any(|r| ref_matches(t, r)))
                            .collect();
                        s["RepoTags"] = json!(tags);
                    }
                    s
                })
                // dockerd: every label filter must hold (compose's test teardown removes
                // the images it labelled, and only those).
                .filter(|s| {
                    filters.get("label").is_none_or(|ls| {
                        ls.iter()
                            .all(|l| crate::engine::filters::label_matches(&s["Labels"], l))
                    })
                })
                .collect();
            json_resp(200, &json!(v))
        }
        ImageInspect(name) => {
            let img = engine.images.resolve(&name).map_err(image_error)?;
            json_resp(200, &image_inspect(&img, engine.images.layers().driver()))
        }
        ImageTag(name) => {
            let repo = q.get("repo").unwrap_or_default();
            let tag = q.get("tag").filter(|t| !t.is_empty()).unwrap_or("latest");
            if repo.is_empty() {
                return Err(ApiError::bad_request(
                    "repository name must have at least one component",
                ));
            }
            engine
                .images
                .tag(&name, &format!("{repo}:{tag}"))
                .map_err(image_error)?;
            engine.events.publish(
                "image",
                "tag",
                &name,
                [("name".to_string(), format!("{repo}:{tag}"))].into(),
            );
            empty(201)
        }
        ImageDelete(name) => {
            let force = q.flag("force");
            let e2 = engine.clone();
            let items = engine
                .images
                .remove(&name, force, &|id| e2.container_using_image(id))
                .map_err(image_error)?;
            let v: Vec<Value> = items
                .iter()
                .map(|i| match i {
                    wharf_image::DeleteResponseItem::Untagged(t) => {
                        engine.events.publish("image", "untag", t, BTreeMap::new());
                        json!({"Untagged": t})
                    }
                    wharf_image::DeleteResponseItem::Deleted(d) => {
                        engine.events.publish("image", "delete", d, BTreeMap::new());
                        json!({"Deleted": d})
                    }
                })
                .collect();
            json_resp(200, &json!(v))
        }
        ImageHistory(name) => {
            let h = engine.images.history(&name).map_err(image_error)?;
            json_resp(200, &serde_json::to_value(h).unwrap_or_default())
        }
        Commit => {
            let c = engine.lookup(q.get("container").unwrap_or_default())?;
            let repo = q.get("repo").unwrap_or_default();
            let reference =
                (!repo.is_empty()).then(|| match q.get("tag").filter(|t| !t.is_empty()) {
                    Some(t) => format!("{repo}:{t}"),
                    None => repo.to_string(),
                });
            let body = read_body(req).await?;
            let overrides = if body.is_empty() {
                None
            } else {
                Some(
                    serde_json::from_slice::<Value>(&body)
                        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?,
                )
            };
            let opts = crate::engine::CommitOptions {
                reference,
                comment: q.get("comment").unwrap_or_default().to_string(),
                author: q.get("author").unwrap_or_default().to_string(),
                changes: q
                    .all("changes")
                    .into_iter()
                    .filter(|c| !c.is_empty())
                    .collect(),
                overrides,
                // Docker pauses the container while it commits unless told `pause=false`.
                pause: q.get("pause").is_none_or(|_| q.flag("pause")),
            };
            let id = engine.commit(&c, opts).await?;
            json_resp(201, &json!({"Id": id}))
        }
        ArchiveHead(id) | ArchiveGet(id) => {
            let head = req.method() == hyper::Method::HEAD;
            let c = engine.lookup(&id)?;
            let path = q.get("path").unwrap_or_default().to_string();
            if path.is_empty() {
                return Err(ApiError::bad_request("path is required"));
            }
            // dockerd's "Could not find the file" names the container as the client did.
            let cid = id.clone();
            // Abortable: a copy that fails midway must reach the client as an error, not as
            // a tar cut short that looks whole.
            let (resp, w) = abortable_resp("application/x-tar");
            let p2 = path.clone();
            // The stat comes first (it decides 404); the tar streams from the same call so the
            // temporary mount of a stopped container lives exactly as long as the copy.
            let (stat_tx, stat_rx) = tokio::sync::oneshot::channel();
            let engine2 = engine.clone();
            let c_ev = c.clone();
            let ids = engine.container_id_map(&c);
            tokio::spawn(async move {
                let _ = engine2
                    .with_jail(&c, move |jail| {
                        let mut j = match archive::pack_in(jail, &p2, &cid, head, ids.as_ref()) {
                            Ok(j) => j,
                            Err(e) => {
                                let _ = stat_tx.send(Err(e));
                                return Ok(());
                            }
                        };
                        let ok = j.result.is_ok();
                        let _ = stat_tx.send(j.result.clone());
                        if !ok || head {
                            j.wait();
                            return Ok(());
                        }
                        let mut w = w;
                        let copied = std::io::copy(&mut j.data, &mut w);
                        match (copied, j.finish()) {
                            (Ok(_), Ok(())) => {}
                            (Err(e), _) => w.abort(format!("copying {p2} out of {cid}: {e}")),
                            (_, Err(e)) => {
                                w.abort(format!("copying {p2} out of {cid}: {}", e.message))
                            }
                        }
                        Ok(())
                    })
                    .await;
            });
            let stat = stat_rx
                .await
                .map_err(|_| ApiError::internal("copy failed"))??;
            if !head {
                // As moby's containerArchivePath, once the copy out is under way.
                engine.event(&c_ev, "archive-path", &[]);
            }
            let mut r = if head {
                let mut r = empty(200);
                r.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
                r
            } else {
                resp
            };
            r.headers_mut().insert(
                "X-Docker-Container-Path-Stat",
                HeaderValue::from_str(&stat).map_err(|e| ApiError::internal(e.to_string()))?,
            );
            r
        }
        ArchivePut(id) => {
            let c = engine.lookup(&id)?;
            let path = q.get("path").unwrap_or_default().to_string();
            if path.is_empty() {
                return Err(ApiError::bad_request("path is required"));
            }
            // moby: with copyUIDGID, what is extracted belongs to the container's user, if it
            // has one; otherwise (and without it) the archive's owners stay.
            let rec = c.snapshot();
            let user = rec.config.user.clone();
            let opts = archive::ExtractOptions {
                no_overwrite_dir_non_dir: q.flag("noOverwriteDirNonDir"),
                owner_user: (q.flag("copyUIDGID") && !user.is_empty()).then_some(user),
                read_only_rootfs: rec.host_config.readonly_rootfs,
                mounts: rec
                    .mounts
                    .iter()
                    .map(|m| (m.destination.clone(), m.rw))
                    .collect(),
                ids: engine.container_id_map(&c),
            };
            // The body streams into the extraction (see `archive::extract_in`); one that breaks
            // off, or a request cancelled mid-upload, is an error for it, not an end.
            let (pr, pw) = crate::upload::pipe().map_err(|e| ApiError::internal(e.to_string()))?;
            let cid = id.clone();
            let engine2 = engine.clone();
            let c2 = c.clone();
            let job = tokio::spawn(async move {
                engine2
                    .with_jail(&c, move |jail| {
                        let mut pr = pr;
                        archive::extract_in(jail, &path, &cid, &mut pr, &opts)
                    })
                    .await
            });
            let fed = pw.feed(req.into_body()).await;
            job.await.map_err(|e| ApiError::internal(e.to_string()))??;
            fed.map_err(|e| ApiError::bad_request(format!("reading the archive: {e}")))?;
            engine.event(&c2, "extract-to-dir", &[]);
            empty(200)
        }
        ImageGet(_) | ImageGetAll => {
            let names = match &route {
                ImageGet(n) => vec![n.clone()],
                _ => q.all("names"),
            };
            if names.is_empty() {
                return Err(ApiError::bad_request("no image names given"));
            }
            for n in &names {
                engine.images.resolve(n).map_err(image_error)?;
            }
            let (r, mut w) = abortable_resp("application/x-tar");
            let images = engine.images.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = images.save(&names, &mut w) {
                    w.abort(format!("save: {e}"));
                }
            });
            r
        }
        DistributionInspect(name) => {
            let creds = registry_auth(&req)?;
            let v = crate::pull::distribution_inspect(&engine, &name, creds).await?;
            json_resp(200, &v)
        }
        ImagePush(name) => {
            let tag = q.get("tag").map(String::from);
            let creds = registry_auth(&req)?;
            let (r, tx) = stream_resp("application/json");
            let engine = engine.clone();
            tokio::spawn(async move {
                if let Err(e) = crate::push::push(&engine, &name, tag.as_deref(), creds, &tx).await
                {
                    let _ = tx
                        .send(Bytes::from(codec::progress_error(&e.message)))
                        .await;
                }
            });
            r
        }
        ImageLoad => {
            // Not quiet (the docker CLI on a terminal): a "Loading layer" bar per layer.
            let (r, tx) = stream_resp("application/json");
            let progress = (!q.flag("quiet")).then(|| {
                let tx = tx.clone();
                wharf_image::load::LayerProgress(Arc::new(move |chain: &str, done, total| {
                    let short = chain.trim_start_matches("sha256:");
                    let line = json!({"status": "Loading layer", "progressDetail": {"current": done, "total": total}, "id": &short[..12.min(short.len())]});
                    let _ = tx.blocking_send(Bytes::from(format!("{line}\n")));
                }))
            });
            let opts = wharf_image::load::LoadOptions {
                platform: load_platform(q.get("platform"))?,
                layer_progress: progress,
            };
            // A body that breaks off fails the load (the reader sees an error, not EOF).
            let (pr, pw) = crate::upload::pipe().map_err(|e| ApiError::internal(e.to_string()))?;
            let images = engine.images.clone();
            let job = tokio::task::spawn_blocking(move || {
                let mut pr = pr;
                images.load_with(&mut pr, &opts, &mut |_| {})
            });
            let body = req.into_body();
            let engine = engine.clone();
            tokio::spawn(async move {
                let read_error = pw
                    .feed(body)
                    .await
                    .err()
                    .map(|e| format!("reading the archive: {e}"));
                let result = job.await;
                let lines = match (read_error, result) {
                    (Some(e), _) => Err(e),
                    (None, Err(e)) => Err(e.to_string()),
                    (None, Ok(r)) => r.map_err(|e| image_error(e).message),
                };
                match lines {
                    Ok(lines) => {
                        for l in lines {
                            engine.events.publish("image", "load", &l, BTreeMap::new());
                            let line = json!({"stream": format!("{l}\n")});
                            let _ = tx.send(Bytes::from(format!("{line}\n"))).await;
                        }
                    }
                    Err(m) => {
                        let _ = tx.send(Bytes::from(codec::progress_error(&m))).await;
                    }
                }
            });
            r
        }
        VolumeList => {
            let filters = q.filters()?;
            let mut vols = Vec::new();
            for v in engine.volumes.list() {
                let in_use = !engine.volume_users(&v.name).is_empty();
                if crate::volumes::filter_matches(&v, in_use, &filters, false)? {
                    vols.push(engine.volumes.to_json(&v));
                }
            }
            json_resp(200, &json!({"Volumes": vols, "Warnings": []}))
        }
        VolumeCreate => {
            let body = read_body(req).await?;
            let b: Value = if body.is_empty() {
                json!({})
            } else {
                serde_json::from_slice(&body)
                    .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?
            };
            let driver = b["Driver"].as_str().unwrap_or_default();
            if !driver.is_empty() && driver != "local" {
                return Err(ApiError::not_found(format!(
                    "plugin \"{driver}\" not found"
                )));
            }
            let opts = serde_json::from_value(b["DriverOpts"].clone()).unwrap_or_default();
            let labels = serde_json::from_value(b["Labels"].clone()).unwrap_or_default();
            let v = engine
                .volumes
                .create(b["Name"].as_str(), labels, opts, false)?;
            engine.events.publish(
                "volume",
                "create",
                &v.name,
                [("driver".to_string(), "local".to_string())].into(),
            );
            json_resp(201, &engine.volumes.to_json(&v))
        }
        VolumeInspect(name) => json_resp(200, &engine.volumes.to_json(&engine.volumes.get(&name)?)),
        VolumeDelete(name) => {
            // `force` only forgives a missing volume, as in Docker; one in use stays.
            if let Err(e) = engine.volumes.get(&name) {
                return if q.flag("force") {
                    Ok(empty(204))
                } else {
                    Err(e)
                };
            }
            engine.remove_volume_if_unused(&name).await?;
            engine
                .events
                .publish("volume", "destroy", &name, BTreeMap::new());
            empty(204)
        }
        NetworkList => json_resp(200, &json!(engine.network_list(&q.filters()?))),
        NetworkInspect(key) => {
            let n = engine.networks.get(&key).map_err(net_error)?;
            json_resp(200, &engine.network_json(&n))
        }
        NetworkCreate => {
            let b = json_body(req).await?;
            json_resp(201, &engine.network_create(&b).await?)
        }
        NetworkDelete(key) => {
            engine.network_remove(&key).await?;
            empty(204)
        }
        NetworkPrune => json_resp(200, &engine.network_prune(&q.filters()?).await),
        SwarmLeave => Err(ApiError::new(503, "This node is not part of a swarm"))?,
        NetworkConnect(key) => {
            let b = json_body(req).await?;
            engine.network_connect(&key, &b).await?;
            empty(200)
        }
        NetworkDisconnect(key) => {
            let b = json_body(req).await?;
            engine.network_disconnect(&key, &b).await?;
            empty(200)
        }
        VolumePrune => {
            let filters = q.filters()?;
            let all = filters
                .get("all")
                .is_some_and(|v| v.iter().any(|x| x == "true" || x == "1"));
            let mut deleted = Vec::new();
            let mut space = 0u64;
            for v in engine.volumes.list() {
                if !(all || v.anonymous)
                    || !engine.volume_users(&v.name).is_empty()
                    || !crate::volumes::filter_matches(&v, false, &filters, true)?
                {
                    continue;
                }
                let size = wharf_image::apply::dir_size(&engine.volumes.data_path(&v.name));
                match engine.remove_volume_if_unused(&v.name).await {
                    Ok(()) => {
                        space += size;
                        engine
                            .events
                            .publish("volume", "destroy", &v.name, BTreeMap::new());
                        deleted.push(v.name.clone());
                    }
                    Err(e) => tracing::warn!("prune: {e}"),
                }
            }
            json_resp(
                200,
                &json!({"VolumesDeleted": deleted, "SpaceReclaimed": space}),
            )
        }
        ContainerStats(id) => {
            let c = engine.lookup(&id)?;
            let stream = q.get("stream").is_none_or(|s| s == "1" || s == "true");
            let one_shot = q.flag("one-shot");
            let (r, tx) = stream_resp("application/json");
            tokio::spawn(async move {
                let mut prev = if one_shot {
                    Value::Null
                } else {
                    stats_sample(&engine, &c).await
                };
                loop {
                    if !one_shot {
                        tokio::time::sleep(std::time::Duration::from_millis(if stream {
                            1000
                        } else {
                            500
                        }))
                        .await;
                    }
                    let cur = stats_sample(&engine, &c).await;
                    let mut doc = cur.clone();
                    doc["precpu_stats"] = prev["cpu_stats"].clone();
                    doc["preread"] = prev
                        .get("read")
                        .cloned()
                        .unwrap_or(json!("0001-01-01T00:00:00Z"));
                    if tx.send(Bytes::from(format!("{doc}\n"))).await.is_err()
                        || !stream
                        || !c.status().is_live()
                    {
                        return;
                    }
                    prev = cur;
                }
            });
            r
        }
        ContainerUpdate(id) => {
            let c = engine.lookup(&id)?;
            let body = read_body(req).await?;
            let v: serde_json::Map<String, Value> = serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
            engine.update(&c, &v).await?;
            json_resp(200, &json!({"Warnings": []}))
        }
        ImagePrune => {
            // Dangling (untagged) images by default; every unused one with dangling=false.
            let filters = q.filters()?;
            let all = filters
                .get("dangling")
                .is_some_and(|d| d.iter().any(|x| x == "false" || x == "0"));
            let mut deleted = Vec::new();
            let mut space = 0u64;
            for img in engine.images.list().map_err(image_error)? {
                if (!all && !img.repo_tags.is_empty())
                    || engine.container_using_image(&img.id).is_some()
                {
                    continue;
                }
                let e2 = engine.clone();
                if let Ok(items) = engine
                    .images
                    .remove(&img.id, true, &|id| e2.container_using_image(id))
                {
                    space += img.size;
                    for i in items {
                        deleted.push(match i {
                            wharf_image::DeleteResponseItem::Untagged(t) => json!({"Untagged": t}),
                            wharf_image::DeleteResponseItem::Deleted(d) => json!({"Deleted": d}),
                        });
                    }
                }
            }
            json_resp(
                200,
                &json!({"ImagesDeleted": deleted, "SpaceReclaimed": space}),
            )
        }
    })
}

/// One stats sample in Docker's shape (zeros when the container is not running).
async fn stats_sample(engine: &Engine, c: &crate::container::Container) -> Value {
    let rec = c.snapshot();
    let raw = if rec.state.status.is_live() {
        shim::call(&engine.shim_dir(&c.id), &ShimRequest::Stats)
            .await
            .ok()
    } else {
        None
    };
    let data: Value = raw
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .map(|v| v["data"].clone())
        .unwrap_or(Value::Null);
    let system = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .take(7)
                    .filter_map(|x| x.parse::<u64>().ok())
                    .sum::<u64>()
            })
        })
        .unwrap_or(0)
        * 10_000_000; // USER_HZ (100) ticks to ns
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let cpu = &data["cpu"];
    let mem = &data["memory"];
    let io: Vec<Value> = data["blkio"]["ioServiceBytesRecursive"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| json!({"major": e["major"], "minor": e["minor"], "op": e["op"], "value": e["value"]}))
                .collect()
        })
        .unwrap_or_default();
    let live = rec.state.status.is_live();
    json!({
        "read": if live { chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true) } else { "0001-01-01T00:00:00Z".into() },
        "name": rec.name,
        "id": rec.id,
        "num_procs": 0,
        "pids_stats": {"current": n(&data["pids"]["current"]), "limit": n(&data["pids"]["limit"])},
        "blkio_stats": {"io_service_bytes_recursive": io, "io_serviced_recursive": null},
        "storage_stats": {},
        "cpu_stats": {
            "cpu_usage": {
                "total_usage": n(&cpu["usage"]["total"]),
                "percpu_usage": cpu["usage"]["percpu"],
                "usage_in_kernelmode": n(&cpu["usage"]["kernel"]),
                "usage_in_usermode": n(&cpu["usage"]["user"]),
            },
            "system_cpu_usage": if live { system } else { 0 },
            "online_cpus": if live { cpus } else { 0 },
            "throttling_data": {
                "periods": n(&cpu["throttling"]["periods"]),
                "throttled_periods": n(&cpu["throttling"]["throttledPeriods"]),
                "throttled_time": n(&cpu["throttling"]["throttledTime"]),
            },
        },
        "memory_stats": if live { json!({
            "usage": n(&mem["usage"]["usage"]),
            "max_usage": n(&mem["usage"]["max"]),
            "limit": match n(&mem["usage"]["limit"]) {
                // cgroup v1 "unlimited" is a page-rounded i64::MAX: report the host's memory.
                l if l == 0 || l > (1 << 60) => host_memory(),
                l => l,
            },
            "failcnt": n(&mem["usage"]["failcnt"]),
            "stats": mem["raw"],
        }) } else { json!({}) },
        "networks": {},
    })
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

fn path_of(req: &Request<Incoming>) -> String {
    req.uri().path().to_string()
}

fn route_kind(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or_default()
}

/// An abortable streamed response and the blocking writer that feeds it.
fn abortable_resp(content_type: &'static str) -> (Resp, AbortableWriter) {
    let (tx, rx) = mpsc::channel(64);
    let mut r = Response::new(ApiBody::Abortable(rx));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    (r, AbortableWriter { tx })
}

/// Writes into an abortable response from blocking code; [`AbortableWriter::abort`] cuts the
/// response off so the client sees the failure. Clones feed the same response.
#[derive(Clone)]
struct AbortableWriter {
    tx: mpsc::Sender<Result<Bytes, StreamAborted>>,
}

impl AbortableWriter {
    fn abort(self, why: impl std::fmt::Display) {
        let why = why.to_string();
        tracing::warn!("aborting a streamed response: {why}");
        let _ = self.tx.blocking_send(Err(StreamAborted(why)));
    }

    async fn abort_async(self, why: impl std::fmt::Display) {
        let why = why.to_string();
        tracing::warn!("aborting a streamed response: {why}");
        let _ = self.tx.send(Err(StreamAborted(why))).await;
    }
}

impl std::io::Write for AbortableWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn version_info() -> Value {
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let v = env!("CARGO_PKG_VERSION");
    let arch = wharf_image::platform::Platform::host().architecture;
    json!({
        "Platform": {"Name": "wharf"},
        "Components": [{"Name": "Engine", "Version": v, "Details": {"ApiVersion": wharf_api::API_VERSION, "MinAPIVersion": wharf_api::MIN_API_VERSION, "Os": "linux", "Arch": arch, "KernelVersion": kernel}}],
        "Version": v,
        "ApiVersion": wharf_api::API_VERSION,
        "MinAPIVersion": wharf_api::MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "rust",
        "Os": "linux",
        "Arch": arch,
        "KernelVersion": kernel,
        "BuildTime": "",
    })
}

fn info(engine: &Engine) -> Value {
    let (total, running, paused, stopped) = engine.counts();
    let u = nix::sys::utsname::uname().ok();
    let s = |f: &dyn Fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        u.as_ref()
            .map(|u| f(u).to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mem = host_memory();
    let live = engine.live();
    let runtimes: serde_json::Map<String, Value> = live
        .runtimes
        .iter()
        .map(|(k, v)| (k.clone(), json!({"path": v})))
        .collect();
    let cgv2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    json!({
        "ID": "wharf",
        "Containers": total, "ContainersRunning": running, "ContainersPaused": paused, "ContainersStopped": stopped,
        "Images": engine.images.list().map(|l| l.len()).unwrap_or(0),
        "Driver": engine.images.layers().driver(),
        "DriverStatus": [["Backing Filesystem", engine.images.layers().backing_filesystem()]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Authorization": null, "Log": ["json-file", "none"]},
        "MemoryLimit": true, "SwapLimit": true, "CpuCfsPeriod": true, "CpuCfsQuota": true, "CPUShares": true, "CPUSet": true, "PidsLimit": true,
        "IPv4Forwarding": true, "Debug": live.debug, "NFd": 0, "OomKillDisable": false, "NGoroutines": 0,
        "SystemTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "LoggingDriver": engine.cfg.log_driver,
        "CgroupDriver": "cgroupfs", "CgroupVersion": if cgv2 { "2" } else { "1" },
        "NEventsListener": 0,
        "KernelVersion": s(&|u| u.release()),
        "OperatingSystem": "Linux", "OSVersion": "", "OSType": "linux",
        "Architecture": s(&|u| u.machine()),
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": registry_config(&live),
        "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "MemTotal": mem,
        "DockerRootDir": engine.cfg.data_root,
        "Name": s(&|u| u.nodename()),
        "Labels": live.labels, "ExperimentalBuild": false, "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Runtimes": runtimes, "DefaultRuntime": live.default_runtime,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
        "LiveRestoreEnabled": true, "Isolation": "", "InitBinary": "",
        "ContainerdCommit": {"ID": ""}, "RuncCommit": {"ID": ""}, "InitCommit": {"ID": ""},
        "SecurityOptions": security_options(engine.cfg.userns.is_some()),
        "Warnings": [],
    })
}

/// The images of `GET /system/df`: each with its `SharedSize` (layers other images use too)
/// and `Containers` (how many use it), and the size of all their layers counted once.
fn images_usage(engine: &Engine, containers: &[Value]) -> Result<(Vec<Value>, u64), ApiError> {
    let images = engine.images.list().map_err(image_error)?;
    let layers = engine.images.layers();
    let chains: Vec<Vec<wharf_image::LayerInfo>> = images
        .iter()
        .map(|i| {
            i.top_layer
                .as_deref()
                .and_then(|t| layers.ancestry(t).ok())
                .unwrap_or_default()
        })
        .collect();
    let mut users: HashMap<&str, (u64, usize)> = HashMap::new();
    for chain in &chains {
        for l in chain {
            users.entry(&l.chain_id).or_insert((l.size, 0)).1 += 1;
        }
    }
    let layers_size = users.values().map(|(size, _)| size).sum();
    let out = images
        .iter()
        .zip(&chains)
        .map(|(i, chain)| {
            let mut v = image_summary(i);
            v["SharedSize"] = json!(chain
                .iter()
                .filter(|l| users.get(l.chain_id.as_str()).is_some_and(|u| u.1 > 1))
                .map(|l| l.size)
                .sum::<u64>());
            v["Containers"] = json!(containers
                .iter()
                .filter(|c| c["ImageID"].as_str() == Some(i.id.as_str()))
                .count());
            v
        })
        .collect();
    Ok((out, layers_size))
}

fn image_summary(i: &wharf_image::Image) -> Value {
    let created = chrono::DateTime::parse_from_rfc3339(&i.created)
        .map(|t| t.timestamp())
        .unwrap_or(0);
    json!({
        "Id": i.id, "ParentId": i.parent, "RepoTags": i.repo_tags, "RepoDigests": i.repo_digests,
        "Created": created, "Size": i.size, "SharedSize": -1, "VirtualSize": i.size,
        "Labels": i.config["Labels"], "Containers": -1,
    })
}

/// An image's config with every field dockerd 20.10 shows, absent ones at their zero value
/// (clients index `Config['OnBuild']` and the like without checking).
fn full_image_config(c: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for (k, zero) in [
        ("Hostname", json!("")),
        ("Domainname", json!("")),
        ("User", json!("")),
        ("AttachStdin", json!(false)),
        ("AttachStdout", json!(false)),
        ("AttachStderr", json!(false)),
        ("Tty", json!(false)),
        ("OpenStdin", json!(false)),
        ("StdinOnce", json!(false)),
        ("Env", Value::Null),
        ("Cmd", Value::Null),
        ("Image", json!("")),
        ("Volumes", Value::Null),
        ("WorkingDir", json!("")),
        ("Entrypoint", Value::Null),
        ("OnBuild", Value::Null),
        ("Labels", Value::Null),
    ] {
        out.insert(k.to_string(), zero);
    }
    if let Some(m) = c.as_object() {
        for (k, v) in m {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

fn image_inspect(i: &wharf_image::Image, driver: &str) -> Value {
    let config = full_image_config(&i.config);
    // A classic build's image keeps its step's container config; other images show theirs.
    let container_config = match &i.raw_config["container_config"] {
        c if c.is_object() => full_image_config(c),
        _ => config.clone(),
    };
    json!({
        "Id": i.id, "RepoTags": i.repo_tags, "RepoDigests": i.repo_digests, "Parent": i.parent,
        "Comment": i.comment, "Created": i.created, "DockerVersion": "", "Author": i.author,
        "Config": config,
        // v1.41 (removed in v1.45): docker-compose 1.29 reads its Volumes when it recreates.
        "Container": "", "ContainerConfig": container_config,
        "Architecture": i.architecture, "Variant": i.variant, "Os": i.os,
        "Size": i.size, "VirtualSize": i.size,
        "GraphDriver": {"Name": driver, "Data": null},
        "RootFS": {"Type": "layers", "Layers": i.rootfs_diff_ids},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    })
}

/// `RegistryConfig` of `/info` as dockerd builds it: configured CIDRs then the loopback ones
/// (insecure by default), an `IndexConfigs` entry per insecure `host[:port]` and one for
/// docker.io with the mirrors (normalized to `scheme://host/`).
/// `/info`'s `SecurityOptions`, as dockerd reports them: the built-in seccomp profile,
/// `name=userns` with `--userns-remap`, and cgroup namespaces on a cgroup v2 host (containers
/// get a private one by default).
fn security_options(userns: bool) -> Value {
    let mut opts = vec!["name=seccomp,profile=builtin"];
    if userns {
        opts.push("name=userns");
    }
    if crate::spec::private_cgroupns("") {
        opts.push("name=cgroupns");
    }
    json!(opts)
}

fn registry_config(live: &crate::LiveConfig) -> Value {
    let mirrors: Vec<String> = live
        .registry_mirrors
        .iter()
        .map(|m| {
            let (scheme, rest) = m.split_once("://").unwrap_or(("https", m.as_str()));
            format!("{scheme}://{}/", rest.split('/').next().unwrap_or(rest))
        })
        .collect();
    let mut cidrs: Vec<String> = Vec::new();
    let mut index = serde_json::Map::new();
    for r in live
        .insecure_registries
        .iter()
        .map(|r| r.trim_start_matches("http://").to_string())
        .chain(["::1/128".to_string(), "127.0.0.0/8".to_string()])
    {
        if r.contains('/') {
            if !cidrs.contains(&r) {
                cidrs.push(r);
            }
        } else {
            index.insert(
                r.clone(),
                json!({"Name": r, "Mirrors": [], "Secure": false, "Official": false}),
            );
        }
    }
    index.insert(
        "docker.io".into(),
        json!({"Name": "docker.io", "Mirrors": mirrors, "Secure": true, "Official": true}),
    );
    json!({"IndexConfigs": index, "InsecureRegistryCIDRs": cidrs, "Mirrors": mirrors})
}

/// `?platform=` of `POST /images/load`: a JSON-encoded OCI platform (API 1.48+) or
/// `os/arch[/variant]`.
fn load_platform(q: Option<&str>) -> Result<Option<wharf_image::platform::Platform>, ApiError> {
    let Some(p) = q.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let text = if p.starts_with('{') {
        let v: Value = serde_json::from_str(p)
            .map_err(|e| ApiError::bad_request(format!("invalid platform {p:?}: {e}")))?;
        let mut t = format!(
            "{}/{}",
            v["os"].as_str().unwrap_or("linux"),
            v["architecture"].as_str().unwrap_or_default()
        );
        if let Some(var) = v["variant"].as_str().filter(|s| !s.is_empty()) {
            t.push('/');
            t.push_str(var);
        }
        t
    } else {
        p.to_string()
    };
    wharf_image::platform::Platform::parse(&text)
        .map(Some)
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The credentials a client sent in `X-Registry-Auth`, if any.
fn registry_auth(req: &Request<Incoming>) -> Result<Option<wharf_registry::Credentials>, ApiError> {
    match req.headers().get("X-Registry-Auth").map(|h| h.to_str()) {
        None => Ok(None),
        Some(Ok(h)) => wharf_registry::auth::decode_registry_auth(h).map_err(ApiError::bad_request),
        Some(Err(_)) => Err(ApiError::bad_request("X-Registry-Auth is not ASCII")),
    }
}

/// `POST /auth`: checks the credentials against the registry, as `docker login` expects.
async fn auth_login(engine: &Arc<Engine>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?
        .to_bytes();
    let creds: wharf_registry::Credentials = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid auth config: {e}")))?;
    let server = creds
        .server_address
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .trim_end_matches("/v1")
        .trim_end_matches("/v2")
        .to_string();
    let server = if server.is_empty() || server.contains("index.docker.io") {
        "docker.io".to_string()
    } else {
        server
    };
    let insecure = engine.live().is_insecure_registry(&server);
    match wharf_registry::login(&server, insecure, creds).await {
        Ok(()) => Ok(json_resp(
            200,
            &json!({"Status": "Login Succeeded", "IdentityToken": ""}),
        )),
        Err(e) if matches!(e, wharf_registry::RegistryError::Status { status: 401, .. }) => {
            Err(ApiError::new(401, e.to_string()))
        }
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

async fn image_create(
    engine: &Arc<Engine>,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    if let Some(img) = q.get("fromImage").filter(|s| !s.is_empty()) {
        // No tag: every tag of the repository (`docker pull -a`), as dockerd.
        let all_tags = q.get("tag").is_none_or(|t| t.is_empty());
        let platform = load_platform(q.get("platform"))?;
        let reference = match q.get("tag").filter(|t| !t.is_empty()) {
            Some(t) if t.starts_with("sha256:") => format!("{img}@{t}"),
            Some(t) => format!("{img}:{t}"),
            None => img.to_string(),
        };
        let creds = registry_auth(&req)?;
        // Progress streams; an error after the headers is Docker's errorDetail line.
        let (r, tx) = stream_resp("application/json");
        let engine = engine.clone();
        tokio::spawn(async move {
            if let Err(e) =
                crate::pull::pull(&engine, &reference, all_tags, platform, creds, &tx).await
            {
                let _ = tx
                    .send(Bytes::from(codec::progress_error(&e.message)))
                    .await;
            }
        });
        return Ok(r);
    }
    let src = q.get("fromSrc").unwrap_or_default();
    if src != "-" {
        return Err(ApiError::bad_request(
            "import from a URL is not supported: use fromSrc=-",
        ));
    }
    let repo = q.get("repo").unwrap_or_default();
    let tag = q.get("tag").filter(|t| !t.is_empty());
    let reference = match (repo.is_empty(), tag) {
        (true, _) => None,
        (false, Some(t)) => Some(format!("{repo}:{t}")),
        (false, None) => Some(repo.to_string()),
    };
    let opts = wharf_image::ImportOptions {
        reference,
        changes: q.all("changes"),
        message: q.get("message").map(String::from),
        platform: q.get("platform").map(String::from),
    };
    // Stream the body into a pipe read by the blocking import (no whole-image buffering). A
    // body that breaks off, or a request cancelled mid-upload, fails the import: no image.
    let (r, w) = crate::upload::pipe().map_err(|e| ApiError::internal(e.to_string()))?;
    let images = engine.images.clone();
    let job = tokio::task::spawn_blocking(move || {
        let mut r = r;
        images.import(&mut r, &opts)
    });
    if let Err(e) = w.feed(req.into_body()).await {
        return Err(ApiError::bad_request(format!("reading the image: {e}")));
    }
    let img = job
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(image_error)?;
    engine
        .events
        .publish("image", "import", &img.id, BTreeMap::new());
    let mut r = json_resp(200, &json!({"status": img.id}));
    *r.body_mut() = ApiBody::Full(Some(Bytes::from(codec::progress(&img.id, None))));
    Ok(r)
}

/// A prune filter's `until`: a duration before now (`24h`) or a Unix time.
fn parse_until(u: &str) -> Result<i64, ApiError> {
    let now = chrono::Utc::now().timestamp();
    if let Ok(t) = u.parse::<f64>() {
        return Ok(t as i64);
    }
    if let Ok(ns) = units::go_duration(u) {
        return Ok(now - ns / 1_000_000_000);
    }
    chrono::DateTime::parse_from_rfc3339(u)
        .map(|d| d.timestamp())
        .map_err(|_| {
            ApiError::bad_request(format!(
                "invalid until filter {u:?}: a duration (24h) or a timestamp"
            ))
        })
}

/// `POST /build`: the context is received, then the build streams its progress.
/// Reads and drops what a client is still sending of a request the handler refuses before
/// reading its body, as Go's server does for dockerd: the client (the docker CLI writing a
/// build context) then reads the 400 instead of failing on a broken pipe. Bounded in bytes and
/// time, so a refused upload cannot hold the connection.
async fn drain_refused(mut body: Incoming) {
    const LIMIT: usize = 16 << 20;
    let mut seen = 0;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len());
            if seen > LIMIT {
                break;
            }
        }
    })
    .await;
}

async fn build(engine: &Arc<Engine>, q: &Query, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let header = |name: &str| req.headers().get(name).and_then(|h| h.to_str().ok());
    let parsed = (|| {
        let mut br = crate::build::BuildRequest::from_query(|k| q.all(k))?;
        let registry_config = crate::build::registry_config(header("X-Registry-Config"))?;
        br.opts.secrets = crate::build::build_secrets(header(crate::build::SECRETS_HEADER))?;
        Ok::<_, ApiError>((br, registry_config))
    })();
    let (mut br, registry_config) = match parsed {
        Ok(p) => p,
        Err(e) => {
            drain_refused(req.into_body()).await;
            return Err(e);
        }
    };
    let token = req
        .headers()
        .get(crate::build::CONTEXT_HEADER)
        .and_then(|h| h.to_str().ok())
        .map(String::from);
    let ctx = match token {
        Some(t) => crate::build::receive_synced(engine, &t, req.into_body(), &mut br.opts).await?,
        None => crate::build::receive_context(engine, req.into_body(), &mut br.opts).await?,
    };
    let backend = crate::build::EngineBackend {
        engine: engine.clone(),
        host: br.host,
        registry_config,
        cache_dir: crate::build::cache_mounts_dir(&engine.cfg.data_root),
        removals: Default::default(),
    };
    let (r, tx) = stream_resp("application/json");
    tokio::spawn(crate::build::run_build(backend, ctx, br.opts, tx));
    Ok(r)
}

fn events(engine: &Arc<Engine>, q: &Query) -> Result<Resp, ApiError> {
    // `--since 0` asks for every event kept, not for none of the past (as `since` absent).
    let since = q.get("since").and_then(|s| {
        if s == "0" {
            Some(0.0)
        } else {
            logs::parse_time(s)
        }
    });
    let until = q.get("until").and_then(logs::parse_time);
    let filters = q.filters()?;
    let (past, mut rx) = engine.events.subscribe();
    let (r, tx) = stream_resp("application/json");
    tokio::spawn(async move {
        let t = |e: &crate::events::Event| e.time_nano as f64 / 1e9;
        if since.is_some() {
            for e in past
                .iter()
                .filter(|e| since.is_none_or(|s| t(e) >= s) && until.is_none_or(|u| t(e) <= u))
            {
                if e.matches(&filters)
                    && tx
                        .send(Bytes::from(format!("{}\n", e.to_json())))
                        .await
                        .is_err()
                {
                    return;
                }
            }
        }
        let now = chrono::Utc::now().timestamp() as f64;
        if until.is_some_and(|u| u <= now) {
            return;
        }
        loop {
            let next = match until {
                Some(u) => match tokio::time::timeout(
                    std::time::Duration::from_secs_f64(
                        (u - chrono::Utc::now().timestamp() as f64).max(0.0),
                    ),
                    rx.recv(),
                )
                .await
                {
                    Ok(r) => r,
                    Err(_) => return,
                },
                None => rx.recv().await,
            };
            match next {
                Ok(e) => {
                    if e.matches(&filters)
                        && tx
                            .send(Bytes::from(format!("{}\n", e.to_json())))
                            .await
                            .is_err()
                    {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            }
        }
    });
    Ok(r)
}

fn container_logs(
    engine: &Arc<Engine>,
    c: &Arc<crate::container::Container>,
    q: &Query,
) -> Result<Resp, ApiError> {
    let rec = c.snapshot();
    let tty = rec.config.tty;
    let opts = LogOptions {
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        since: q.get("since").and_then(logs::parse_time),
        until: q.get("until").and_then(logs::parse_time),
        timestamps: q.flag("timestamps"),
        tail: q.get("tail").and_then(|t| t.parse().ok()),
    };
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let driver = rec
        .host_config
        .log_config
        .as_ref()
        .map(|l| l.kind.clone())
        .unwrap_or_default();
    if driver == "none" {
        return Err(ApiError::bad_request(
            "configured logging driver does not support reading",
        ));
    }
    let follow = q.flag("follow");
    let (r, tx) = stream_resp(if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    });
    let path = std::path::PathBuf::from(&rec.log_path);
    let c = c.clone();
    let _ = engine;
    tokio::spawn(async move {
        let emit = |e: &logs::Entry| -> Bytes {
            let payload = opts.render(e);
            if tty {
                Bytes::from(payload)
            } else {
                Bytes::from(codec::frame(
                    if e.stream == "stderr" { 2 } else { 1 },
                    &payload,
                ))
            }
        };
        let data = tokio::fs::read(&path).await.unwrap_or_default();
        let mut offset = data.len();
        let text = String::from_utf8_lossy(&data);
        let complete = &text[..text.rfind('\n').map(|i| i + 1).unwrap_or(0)];
        offset -= text.len() - complete.len();
        let mut entries: Vec<_> = logs::parse_lines(complete)
            .into_iter()
            .filter(|e| opts.accepts(e))
            .collect();
        if let Some(t) = opts.tail {
            let skip = entries.len().saturating_sub(t);
            entries.drain(..skip);
        }
        for e in &entries {
            if tx.send(emit(e)).await.is_err() {
                return;
            }
        }
        if !follow {
            return;
        }
        let mut w = c.watch();
        loop {
            let live = {
                let (st, gen) = *w.borrow_and_update();
                gen != u64::MAX && (st.is_live() || st == Status::Restarting)
            };
            // Read what was appended since.
            if let Ok(mut f) = tokio::fs::File::open(&path).await {
                use tokio::io::AsyncSeekExt;
                if f.seek(std::io::SeekFrom::Start(offset as u64))
                    .await
                    .is_ok()
                {
                    let mut buf = Vec::new();
                    if f.read_to_end(&mut buf).await.is_ok() && !buf.is_empty() {
                        let text = String::from_utf8_lossy(&buf);
                        let end = text.rfind('\n').map(|i| i + 1).unwrap_or(0);
                        offset += end;
                        for e in logs::parse_lines(&text[..end])
                            .iter()
                            .filter(|e| opts.accepts(e))
                        {
                            if tx.send(emit(e)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
            if !live {
                return;
            }
            // Wake on a state change or every 50 ms to pick up new lines.
            let _ = tokio::time::timeout(std::time::Duration::from_millis(50), w.changed()).await;
        }
    });
    Ok(r)
}

fn hijack_response(tty: bool) -> Resp {
    let mut r = empty(101);
    let h = r.headers_mut();
    h.insert("Connection", HeaderValue::from_static("Upgrade"));
    h.insert("Upgrade", HeaderValue::from_static("tcp"));
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(if tty {
            "application/vnd.docker.raw-stream"
        } else {
            "application/vnd.docker.multiplexed-stream"
        }),
    );
    r
}

/// Copies the shim's frames to the client (raw payloads for a tty), and the client's bytes to
/// the shim (stdin), honoring detach keys. Returns the exit code if an exit frame came;
/// `before_close` gets it before the client's stream is closed, so that a client that
/// inspects the exec as soon as its stream ends finds the exit recorded.
async fn pump<C>(
    client: C,
    shim_stream: tokio::net::UnixStream,
    tty: bool,
    stdin: bool,
    detach_keys: Vec<u8>,
    before_close: impl FnOnce(Option<i32>) + Send,
) -> Option<i32>
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = shim_stream.into_split();
    let input = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        let mut matched = 0usize;
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if !stdin {
                continue;
            }
            if !detach_keys.is_empty() {
                for &b in &buf[..n] {
                    if b == detach_keys[matched] {
                        matched += 1;
                        if matched == detach_keys.len() {
                            return true;
                        }
                    } else {
                        matched = usize::from(b == detach_keys[0]);
                    }
                }
            }
            if sw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = sw.shutdown().await;
        false
    });
    let mut dec = codec::FrameDecoder::default();
    let mut buf = vec![0u8; 32 * 1024];
    let mut exit = None;
    let mut input = Some(input);
    loop {
        let n = tokio::select! {
            r = sr.read(&mut buf) => match r { Ok(0) | Err(_) => break, Ok(n) => n },
            d = async { input.as_mut().expect("input task").await }, if input.is_some() => {
                input = None;
                if d.unwrap_or(false) {
                    break; // detached
                }
                continue;
            }
        };
        for (stream, payload) in dec.feed(&buf[..n]) {
            if stream == proto::STREAM_EXIT && payload.len() == 4 {
                exit = Some(i32::from_be_bytes([
                    payload[0], payload[1], payload[2], payload[3],
                ]));
                continue;
            }
            let out = if tty {
                payload
            } else {
                codec::frame(stream, &payload)
            };
            if cw.write_all(&out).await.is_err() {
                before_close(exit);
                return exit;
            }
        }
    }
    let _ = cw.flush().await;
    before_close(exit);
    let _ = cw.shutdown().await;
    exit
}

fn attach(
    engine: Arc<Engine>,
    c: Arc<crate::container::Container>,
    q: &Query,
    mut req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let rec = c.snapshot();
    let tty = rec.config.tty;
    let (stdin, stdout, stderr) = (q.flag("stdin"), q.flag("stdout"), q.flag("stderr"));
    let stream = q.flag("stream");
    let keys = units::detach_keys(q.get("detachKeys")).map_err(|e| ApiError::bad_request(e.0))?;
    let live = rec.state.status.is_live();
    if stream && !live && !rec.state.status.can_start() {
        return Err(ApiError::conflict(format!(
            "container {} is not running",
            c.id
        )));
    }
    let waits_for_start = stream && !live;
    if waits_for_start {
        c.pending_attach
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    let gen0 = rec.generation;
    tokio::spawn(async move {
        let sdir = engine.shim_dir(&c.id);
        let mut registered = !waits_for_start;
        let mut w = c.watch();
        if waits_for_start {
            loop {
                let (_, gen) = *w.borrow_and_update();
                if gen > gen0 {
                    break;
                }
                if w.changed().await.is_err() {
                    break;
                }
            }
        }
        let shim_conn = match shim::request(
            &sdir,
            &ShimRequest::Attach {
                stdin,
                stdout,
                stderr,
            },
        )
        .await
        {
            Ok((Ok(_), r)) => Some(r),
            _ => None,
        };
        if !registered {
            engine.attach_registered(&c);
            registered = true;
        }
        let _ = registered;
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let io = TokioIo::new(upgraded);
        match shim_conn {
            Some(s) => {
                pump(io, s, tty, stdin, keys, |_| {}).await;
            }
            None => {
                let mut io = io;
                let _ = io.shutdown().await;
            }
        }
    });
    Ok(hijack_response(tty))
}

async fn exec_start(
    engine: Arc<Engine>,
    id: &str,
    mut req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let e = engine.exec(id)?;
    let body = {
        let b = req
            .body_mut()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        if b.is_empty() {
            ExecStartConfig::default()
        } else {
            serde_json::from_slice::<ExecStartConfig>(&b)
                .map_err(|err| ApiError::bad_request(format!("invalid JSON: {err}")))?
        }
    };
    {
        let st = e.state.lock().expect("exec lock");
        if st.running || st.exit_code.is_some() {
            return Err(ApiError::conflict(format!(
                "Error: Exec command {id} has already run"
            )));
        }
    }
    let c = engine.lookup(&e.container)?;
    if !c.status().is_live() {
        return Err(ApiError::conflict(format!(
            "container {} is not running",
            c.id
        )));
    }
    let process = engine.exec_process_file(&e).await?;
    let tty = e.config.tty;
    let sdir = engine.shim_dir(&e.container);
    // Starts the process in the container: (pid, stream) or (exit code, Docker's message).
    let launch = {
        let (engine, e, process) = (engine.clone(), e.clone(), process.clone());
        move || async move {
            let req = ShimRequest::Exec {
                id: e.id.clone(),
                tty,
                stdin: e.config.attach_stdin,
                process: process.display().to_string(),
            };
            let (reply, stream) = shim::request(&sdir, &req)
                .await
                .map_err(|err| (126, format!("cannot reach the container's shim: {err}")))?;
            match reply {
                Ok(p) => {
                    let pid = p.parse().unwrap_or(0);
                    let mut st = e.state.lock().expect("exec lock");
                    st.running = true;
                    st.pid = pid;
                    drop(st);
                    let cmd = e.config.cmd.clone().unwrap_or_default().join(" ");
                    engine.exec_event(
                        &e.container,
                        &format!("exec_start: {cmd}"),
                        &[("execID", e.id.clone())],
                    );
                    Ok(stream)
                }
                Err(msg) => {
                    let code = crate::shim::exit_code_of_runtime_error(&msg).unwrap_or(126);
                    Err((
                        code,
                        format!("OCI runtime exec failed: exec failed: {msg}: unknown"),
                    ))
                }
            }
        }
    };
    let finish = {
        let engine = engine.clone();
        let e = e.clone();
        move |code: Option<i32>| {
            let mut st = e.state.lock().expect("exec lock");
            st.running = false;
            st.exit_code = Some(code.unwrap_or(-1));
            drop(st);
            let _ = std::fs::remove_file(&process);
            engine.exec_event(
                &e.container,
                "exec_die",
                &[
                    ("execID", e.id.clone()),
                    ("exitCode", code.unwrap_or(-1).to_string()),
                ],
            );
        }
    };
    if body.detach {
        let mut s = match launch().await {
            Ok(s) => s,
            Err((code, msg)) => {
                finish(Some(code));
                return Err(ApiError::bad_request(msg));
            }
        };
        tokio::spawn(async move {
            let mut dec = codec::FrameDecoder::default();
            let mut buf = vec![0u8; 16 * 1024];
            let mut code = None;
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                for (stream, p) in dec.feed(&buf[..n]) {
                    if stream == proto::STREAM_EXIT && p.len() == 4 {
                        code = Some(i32::from_be_bytes([p[0], p[1], p[2], p[3]]));
                    }
                }
            }
            finish(code);
        });
        return Ok(empty(200));
    }
    // The process starts only once the connection is upgraded: output written right behind
    // the 101 headers would land in a client's header buffer (docker-py reads the raw socket
    // after the headers and would miss it).
    let on_upgrade = hyper::upgrade::on(&mut req);
    let stdin = e.config.attach_stdin;
    // Checked at create.
    let keys = units::detach_keys(e.config.detach_keys.as_deref()).unwrap_or_default();
    tokio::spawn(async move {
        let Ok(up) = on_upgrade.await else {
            finish(None);
            return;
        };
        let mut io = TokioIo::new(up);
        let code = match launch().await {
            Ok(shim_conn) => {
                let keys = if stdin { keys } else { vec![] };
                // The exit is recorded before the client sees the end of its stream.
                pump(io, shim_conn, tty, stdin, keys, &finish).await;
                return;
            }
            Err((code, msg)) => {
                let line = format!("{msg}\r\n");
                let out = if tty {
                    line.into_bytes()
                } else {
                    codec::frame(codec::STDOUT, line.as_bytes())
                };
                let _ = io.write_all(&out).await;
                let _ = io.shutdown().await;
                Some(code)
            }
        };
        finish(code);
    });
    Ok(hijack_response(tty))
}

/// Accepts connections on a unix socket forever.
pub async fn serve_unix(engine: Arc<Engine>, listener: tokio::net::UnixListener) {
    loop {
        match listener.accept().await {
            Ok((s, _)) => {
                tokio::spawn(serve_conn(engine.clone(), s));
            }
            Err(e) => tracing::warn!("accept: {e}"),
        }
    }
}

/// Accepts connections on a TCP socket forever.
pub async fn serve_tcp(engine: Arc<Engine>, listener: tokio::net::TcpListener) {
    loop {
        match listener.accept().await {
            Ok((s, _)) => {
                let _ = s.set_nodelay(true);
                tokio::spawn(serve_conn(engine.clone(), s));
            }
            Err(e) => tracing::warn!("accept: {e}"),
        }
    }
}

/// The volumes of `GET /system/df`, each with its `UsageData` (size on disk, containers
/// using it).
/// `size=1` on list and inspect: `SizeRw` (the writable layer) and `SizeRootFs` (that plus
/// the image), as dockerd reports them.
fn add_sizes(engine: &Engine, c: &mut Value) {
    let Some(id) = c["Id"].as_str().map(String::from) else {
        return;
    };
    let rw = engine.images.layers().rw_size(&id).unwrap_or(0);
    let image = c["ImageID"]
        .as_str()
        .or(c["Image"].as_str())
        .and_then(|i| engine.images.resolve(i).ok())
        .map_or(0, |i| i.size);
    c["SizeRw"] = rw.into();
    c["SizeRootFs"] = (rw + image).into();
}

/// `reference=` filter: the whole `repo:tag`, or the repository alone.
fn ref_matches(tag: &str, r: &str) -> bool {
    // The repository is before the tag's ':', not a registry port's.
    tag == r
        || tag
            .rsplit_once(':')
            .filter(|(_, t)| !t.contains('/'))
            .is_some_and(|(repo, _)| repo == r)
}

fn volumes_usage(engine: &Engine) -> Vec<Value> {
    engine
        .volumes
        .list()
        .iter()
        .map(|v| {
            let mut j = engine.volumes.to_json(v);
            j["UsageData"] = json!({
                "Size": wharf_image::apply::dir_size(&engine.volumes.data_path(&v.name)),
                "RefCount": engine.volume_users(&v.name).len(),
            });
            j
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_filters() {
        let q = Query::parse(Some("all=1&filters=%7B%22status%22%3A%5B%22running%22%5D%7D&changes=CMD+sh&changes=ENV%20A%3D1"));
        assert!(q.flag("all"));
        assert_eq!(q.filters().unwrap()["status"], vec!["running".to_string()]);
        assert_eq!(
            q.all("changes"),
            vec!["CMD sh".to_string(), "ENV A=1".to_string()]
        );
        let legacy = Query::parse(Some("filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D"));
        assert_eq!(Query::parse(Some("a=%é%4")).get("a"), Some("%é%4"));
        assert_eq!(legacy.filters().unwrap()["label"], vec!["a=b".to_string()]);
    }
}
