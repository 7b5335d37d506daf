//! RuntimeService: version and status; pod sandboxes and containers are engine containers
//! (see `docs/architecture.md`, CRI).

use crate::api;
use crate::api::runtime_service_server::RuntimeService;
use crate::{pause, pods, CriConfig};
use std::collections::HashMap;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use wharf_engine::container::Container;
use wharf_engine::Engine;

/// The RuntimeService.
pub struct Runtime {
    engine: Arc<Engine>,
    #[allow(dead_code)]
    cfg: CriConfig,
}

impl Runtime {
    pub fn new(engine: Arc<Engine>, cfg: CriConfig) -> Runtime {
        Runtime { engine, cfg }
    }
}

fn condition(kind: &str, ok: bool, reason: &str, message: String) -> api::RuntimeCondition {
    api::RuntimeCondition {
        r#type: kind.to_string(),
        status: ok,
        reason: if ok { String::new() } else { reason.into() },
        message: if ok { String::new() } else { message },
    }
}

/// Stops a container (SIGTERM, then SIGKILL after `timeout` seconds); stopped already is fine.
async fn stop(engine: &Arc<Engine>, c: &Container, timeout: i64) -> Result<(), Status> {
    match engine.stop(c, Some(timeout.max(0)), None).await {
        Ok(()) => Ok(()),
        Err(e) if e.status == 304 => Ok(()),
        Err(e) => Err(crate::status(e)),
    }
}

/// Removes a container, running or not; gone already is fine.
async fn remove(engine: &Arc<Engine>, c: &Arc<Container>) -> Result<(), Status> {
    match engine.remove(c, true).await {
        Ok(()) => Ok(()),
        Err(e) if e.status == 404 => Ok(()),
        Err(e) => Err(crate::status(e)),
    }
}

/// What ExecSync keeps of each of stdout and stderr (16 MiB, the kubelet's own cap).
const EXEC_SYNC_LIMIT: usize = 16 << 20;

fn unimplemented(rpc: &str) -> Status {
    Status::unimplemented(format!("{rpc} is not implemented by wharf yet"))
}

type EventStream = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<api::ContainerEventResponse, Status>> + Send>,
>;

#[tonic::async_trait]
impl RuntimeService for Runtime {
    async fn version(
        &self,
        _req: Request<api::VersionRequest>,
    ) -> Result<Response<api::VersionResponse>, Status> {
        Ok(Response::new(api::VersionResponse {
            // The kubelet's API version: "0.1.0" for v1, as containerd and CRI-O answer.
            version: "0.1.0".into(),
            runtime_name: crate::RUNTIME_NAME.into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: crate::RUNTIME_API_VERSION.into(),
        }))
    }

    async fn status(
        &self,
        req: Request<api::StatusRequest>,
    ) -> Result<Response<api::StatusResponse>, Status> {
        // RuntimeReady: the engine answers and its shim is there to run containers.
        let shim = &self.engine.cfg.shim_path;
        let runtime_ok = shim.is_file();
        let conditions = vec![
            condition(
                "RuntimeReady",
                runtime_ok,
                "ShimMissing",
                format!("wharf-shim is not at {}", shim.display()),
            ),
            condition("NetworkReady", true, "", String::new()),
        ];
        let mut info = HashMap::new();
        if req.into_inner().verbose {
            info.insert(
                "config".to_string(),
                serde_json::json!({
                    "dataRoot": self.engine.cfg.data_root,
                    "execRoot": self.engine.cfg.exec_root,
                    "socket": self.cfg.socket,
                })
                .to_string(),
            );
        }
        let live = self.engine.live();
        let runtime_handlers = live
            .runtimes
            .keys()
            .map(|name| api::RuntimeHandler {
                name: if *name == live.default_runtime {
                    String::new()
                } else {
                    name.clone()
                },
                features: Some(api::RuntimeHandlerFeatures {
                    recursive_read_only_mounts: true,
                    user_namespaces: false,
                }),
            })
            .collect();
        Ok(Response::new(api::StatusResponse {
            status: Some(api::RuntimeStatus { conditions }),
            info,
            runtime_handlers,
            features: None,
        }))
    }

    async fn run_pod_sandbox(
        &self,
        req: Request<api::RunPodSandboxRequest>,
    ) -> Result<Response<api::RunPodSandboxResponse>, Status> {
        let req = req.into_inner();
        let cfg = req
            .config
            .ok_or_else(|| Status::invalid_argument("config is missing"))?;
        let meta = cfg
            .metadata
            .clone()
            .ok_or_else(|| Status::invalid_argument("config.metadata is missing"))?;
        let e = &self.engine;
        let image = pause::ensure(e).await?;
        let mut body = pods::sandbox_body(&cfg, &image)?;
        if !req.runtime_handler.is_empty() {
            body["HostConfig"]["Runtime"] = serde_json::json!(req.runtime_handler);
        }
        let id = pods::create(e, pods::sandbox_name(&meta), &body).await?;
        let c = e.lookup(&id).map_err(crate::status)?;
        if let Err(err) = e.start(&c).await {
            let _ = e.remove(&c, true).await;
            return Err(crate::status(err));
        }
        tracing::info!(
            "cri: pod sandbox {} ({}/{}) ready",
            &id[..12],
            meta.namespace,
            meta.name
        );
        Ok(Response::new(api::RunPodSandboxResponse {
            pod_sandbox_id: id,
        }))
    }

    async fn stop_pod_sandbox(
        &self,
        req: Request<api::StopPodSandboxRequest>,
    ) -> Result<Response<api::StopPodSandboxResponse>, Status> {
        let id = req.into_inner().pod_sandbox_id;
        let e = &self.engine;
        // Idempotent: a sandbox already gone is stopped.
        let Some((sb, _)) = pods::sandbox(e, &id)? else {
            return Ok(Response::new(api::StopPodSandboxResponse {}));
        };
        for (c, r) in pods::all(e, pods::is_container) {
            if pods::label(&r, pods::SANDBOX) == Some(sb.id.as_str()) && r.state.status.is_live() {
                stop(e, &c, 10).await?;
            }
        }
        stop(e, &sb, 10).await?;
        Ok(Response::new(api::StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(
        &self,
        req: Request<api::RemovePodSandboxRequest>,
    ) -> Result<Response<api::RemovePodSandboxResponse>, Status> {
        let id = req.into_inner().pod_sandbox_id;
        let e = &self.engine;
        let Some((sb, _)) = pods::sandbox(e, &id)? else {
            return Ok(Response::new(api::RemovePodSandboxResponse {}));
        };
        // Its containers first (forced: a sandbox may be removed without being stopped).
        for (c, r) in pods::all(e, pods::is_container) {
            if pods::label(&r, pods::SANDBOX) == Some(sb.id.as_str()) {
                remove(e, &c).await?;
            }
        }
        remove(e, &sb).await?;
        Ok(Response::new(api::RemovePodSandboxResponse {}))
    }

    async fn pod_sandbox_status(
        &self,
        req: Request<api::PodSandboxStatusRequest>,
    ) -> Result<Response<api::PodSandboxStatusResponse>, Status> {
        let req = req.into_inner();
        let (_, r) = pods::sandbox(&self.engine, &req.pod_sandbox_id)?.ok_or_else(|| {
            Status::not_found(format!("pod sandbox {} not found", req.pod_sandbox_id))
        })?;
        let cfg: api::PodSandboxConfig = pods::stored(&r);
        let ns = cfg
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.clone());
        let status = api::PodSandboxStatus {
            id: r.id.clone(),
            metadata: cfg.metadata.clone(),
            state: pods::sandbox_state(&r),
            created_at: pods::nanos(&r.created),
            network: Some(api::PodSandboxNetworkStatus::default()),
            linux: Some(api::LinuxPodSandboxStatus {
                namespaces: Some(api::Namespace { options: ns }),
            }),
            labels: cfg.labels.clone(),
            annotations: cfg.annotations.clone(),
            runtime_handler: String::new(),
        };
        let mut info = HashMap::new();
        if req.verbose {
            info.insert(
                "info".to_string(),
                serde_json::json!({"pid": r.state.pid, "image": r.image_id, "name": r.name.trim_start_matches('/')}).to_string(),
            );
        }
        Ok(Response::new(api::PodSandboxStatusResponse {
            status: Some(status),
            info,
            containers_statuses: vec![],
            timestamp: chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default(),
        }))
    }

    async fn list_pod_sandbox(
        &self,
        req: Request<api::ListPodSandboxRequest>,
    ) -> Result<Response<api::ListPodSandboxResponse>, Status> {
        let f = req.into_inner().filter.unwrap_or_default();
        let items = pods::all(&self.engine, pods::is_sandbox)
            .into_iter()
            .filter(|(_, r)| r.id.starts_with(&f.id))
            .map(|(_, r)| {
                let cfg: api::PodSandboxConfig = pods::stored(&r);
                api::PodSandbox {
                    id: r.id.clone(),
                    metadata: cfg.metadata,
                    state: pods::sandbox_state(&r),
                    created_at: pods::nanos(&r.created),
                    labels: cfg.labels,
                    annotations: cfg.annotations,
                    runtime_handler: String::new(),
                }
            })
            .filter(|p| f.state.as_ref().is_none_or(|s| s.state == p.state))
            .filter(|p| pods::selector_matches(&f.label_selector, &p.labels))
            .collect();
        Ok(Response::new(api::ListPodSandboxResponse { items }))
    }

    async fn create_container(
        &self,
        req: Request<api::CreateContainerRequest>,
    ) -> Result<Response<api::CreateContainerResponse>, Status> {
        let req = req.into_inner();
        let cfg = req
            .config
            .ok_or_else(|| Status::invalid_argument("config is missing"))?;
        let meta = cfg
            .metadata
            .clone()
            .ok_or_else(|| Status::invalid_argument("config.metadata is missing"))?;
        let e = &self.engine;
        let (sb, sr) = pods::sandbox(e, &req.pod_sandbox_id)?.ok_or_else(|| {
            Status::not_found(format!("pod sandbox {} not found", req.pod_sandbox_id))
        })?;
        let pod: api::PodSandboxConfig = pods::stored(&sr);
        let sandbox_cfg = req.sandbox_config.unwrap_or(pod);
        let body = pods::container_body(&sb.id, &sandbox_cfg, &cfg)?;
        let pod_meta = sandbox_cfg.metadata.clone().unwrap_or_default();
        let id = pods::create(e, pods::container_name(&meta, &pod_meta), &body).await?;
        Ok(Response::new(api::CreateContainerResponse {
            container_id: id,
        }))
    }

    async fn start_container(
        &self,
        req: Request<api::StartContainerRequest>,
    ) -> Result<Response<api::StartContainerResponse>, Status> {
        let id = req.into_inner().container_id;
        let (c, _) = pods::container(&self.engine, &id)?
            .ok_or_else(|| Status::not_found(format!("container {id} not found")))?;
        self.engine.start(&c).await.map_err(crate::status)?;
        Ok(Response::new(api::StartContainerResponse {}))
    }

    async fn stop_container(
        &self,
        req: Request<api::StopContainerRequest>,
    ) -> Result<Response<api::StopContainerResponse>, Status> {
        let req = req.into_inner();
        let Some((c, _)) = pods::container(&self.engine, &req.container_id)? else {
            return Err(Status::not_found(format!(
                "container {} not found",
                req.container_id
            )));
        };
        stop(&self.engine, &c, req.timeout).await?;
        Ok(Response::new(api::StopContainerResponse {}))
    }

    async fn remove_container(
        &self,
        req: Request<api::RemoveContainerRequest>,
    ) -> Result<Response<api::RemoveContainerResponse>, Status> {
        let id = req.into_inner().container_id;
        // Idempotent.
        if let Some((c, _)) = pods::container(&self.engine, &id)? {
            remove(&self.engine, &c).await?;
        }
        Ok(Response::new(api::RemoveContainerResponse {}))
    }

    async fn list_containers(
        &self,
        req: Request<api::ListContainersRequest>,
    ) -> Result<Response<api::ListContainersResponse>, Status> {
        let f = req.into_inner().filter.unwrap_or_default();
        let containers = pods::all(&self.engine, pods::is_container)
            .into_iter()
            .filter(|(_, r)| r.id.starts_with(&f.id))
            .filter(|(_, r)| {
                f.pod_sandbox_id.is_empty()
                    || pods::label(r, pods::SANDBOX)
                        .is_some_and(|s| s.starts_with(&f.pod_sandbox_id))
            })
            .map(|(_, r)| {
                let cfg: api::ContainerConfig = pods::stored(&r);
                api::Container {
                    id: r.id.clone(),
                    pod_sandbox_id: pods::label(&r, pods::SANDBOX)
                        .unwrap_or_default()
                        .to_string(),
                    metadata: cfg.metadata,
                    image: cfg.image,
                    image_ref: r.image_id.clone(),
                    state: pods::container_state(&r),
                    created_at: pods::nanos(&r.created),
                    labels: cfg.labels,
                    annotations: cfg.annotations,
                    image_id: r.image_id.clone(),
                }
            })
            .filter(|c| f.state.as_ref().is_none_or(|s| s.state == c.state))
            .filter(|c| pods::selector_matches(&f.label_selector, &c.labels))
            .collect();
        Ok(Response::new(api::ListContainersResponse { containers }))
    }

    async fn container_status(
        &self,
        req: Request<api::ContainerStatusRequest>,
    ) -> Result<Response<api::ContainerStatusResponse>, Status> {
        let req = req.into_inner();
        let (_, r) = pods::container(&self.engine, &req.container_id)?.ok_or_else(|| {
            Status::not_found(format!("container {} not found", req.container_id))
        })?;
        let cfg: api::ContainerConfig = pods::stored(&r);
        let state = pods::container_state(&r);
        let exited = state == api::ContainerState::ContainerExited as i32;
        let sandbox: Option<api::PodSandboxConfig> = pods::label(&r, pods::SANDBOX)
            .and_then(|s| pods::sandbox(&self.engine, s).ok().flatten())
            .map(|(_, sr)| pods::stored(&sr));
        let log_dir = sandbox.map(|s| s.log_directory).unwrap_or_default();
        let log_path = if cfg.log_path.is_empty() || log_dir.is_empty() {
            cfg.log_path.clone()
        } else {
            std::path::Path::new(&log_dir)
                .join(&cfg.log_path)
                .display()
                .to_string()
        };
        let status = api::ContainerStatus {
            id: r.id.clone(),
            metadata: cfg.metadata.clone(),
            state,
            created_at: pods::nanos(&r.created),
            started_at: pods::nanos(&r.state.started_at),
            finished_at: if exited {
                pods::nanos(&r.state.finished_at)
            } else {
                0
            },
            exit_code: if exited { r.state.exit_code } else { 0 },
            image: cfg.image.clone(),
            image_ref: r.image_id.clone(),
            reason: if exited {
                pods::exit_reason(&r).into()
            } else {
                String::new()
            },
            message: r.state.error.clone(),
            labels: cfg.labels.clone(),
            annotations: cfg.annotations.clone(),
            mounts: cfg.mounts.clone(),
            log_path,
            resources: None,
            image_id: r.image_id.clone(),
            user: None,
        };
        let mut info = HashMap::new();
        if req.verbose {
            info.insert(
                "info".to_string(),
                serde_json::json!({"pid": r.state.pid, "name": r.name.trim_start_matches('/')})
                    .to_string(),
            );
        }
        Ok(Response::new(api::ContainerStatusResponse {
            status: Some(status),
            info,
        }))
    }

    async fn exec_sync(
        &self,
        req: Request<api::ExecSyncRequest>,
    ) -> Result<Response<api::ExecSyncResponse>, Status> {
        let req = req.into_inner();
        let (c, r) = pods::container(&self.engine, &req.container_id)?.ok_or_else(|| {
            Status::not_found(format!("container {} not found", req.container_id))
        })?;
        if !r.state.status.is_live() {
            return Err(Status::failed_precondition(format!(
                "container {} is not running",
                req.container_id
            )));
        }
        let timeout = (req.timeout > 0).then(|| std::time::Duration::from_secs(req.timeout as u64));
        let out = self
            .engine
            .exec_sync(&c, req.cmd.clone(), timeout, EXEC_SYNC_LIMIT)
            .await
            .map_err(crate::status)?;
        let exit_code = out.exit_code.ok_or_else(|| {
            Status::deadline_exceeded(format!(
                "command {:?} timed out after {}s",
                req.cmd, req.timeout
            ))
        })?;
        Ok(Response::new(api::ExecSyncResponse {
            stdout: out.stdout,
            stderr: out.stderr,
            exit_code,
        }))
    }

    type GetContainerEventsStream = EventStream;

    async fn get_container_events(
        &self,
        _req: Request<api::GetEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        Err(Status::unimplemented(
            "get_container_events is not implemented by wharf yet",
        ))
    }

    async fn update_container_resources(
        &self,
        _req: Request<api::UpdateContainerResourcesRequest>,
    ) -> Result<Response<api::UpdateContainerResourcesResponse>, Status> {
        Err(unimplemented("update_container_resources"))
    }

    async fn reopen_container_log(
        &self,
        _req: Request<api::ReopenContainerLogRequest>,
    ) -> Result<Response<api::ReopenContainerLogResponse>, Status> {
        Err(unimplemented("reopen_container_log"))
    }

    async fn exec(
        &self,
        _req: Request<api::ExecRequest>,
    ) -> Result<Response<api::ExecResponse>, Status> {
        Err(unimplemented("exec"))
    }

    async fn attach(
        &self,
        _req: Request<api::AttachRequest>,
    ) -> Result<Response<api::AttachResponse>, Status> {
        Err(unimplemented("attach"))
    }

    async fn port_forward(
        &self,
        _req: Request<api::PortForwardRequest>,
    ) -> Result<Response<api::PortForwardResponse>, Status> {
        Err(unimplemented("port_forward"))
    }

    async fn container_stats(
        &self,
        _req: Request<api::ContainerStatsRequest>,
    ) -> Result<Response<api::ContainerStatsResponse>, Status> {
        Err(unimplemented("container_stats"))
    }

    async fn list_container_stats(
        &self,
        _req: Request<api::ListContainerStatsRequest>,
    ) -> Result<Response<api::ListContainerStatsResponse>, Status> {
        Err(unimplemented("list_container_stats"))
    }

    async fn pod_sandbox_stats(
        &self,
        _req: Request<api::PodSandboxStatsRequest>,
    ) -> Result<Response<api::PodSandboxStatsResponse>, Status> {
        Err(unimplemented("pod_sandbox_stats"))
    }

    async fn list_pod_sandbox_stats(
        &self,
        _req: Request<api::ListPodSandboxStatsRequest>,
    ) -> Result<Response<api::ListPodSandboxStatsResponse>, Status> {
        Err(unimplemented("list_pod_sandbox_stats"))
    }

    async fn update_runtime_config(
        &self,
        _req: Request<api::UpdateRuntimeConfigRequest>,
    ) -> Result<Response<api::UpdateRuntimeConfigResponse>, Status> {
        Err(unimplemented("update_runtime_config"))
    }

    async fn checkpoint_container(
        &self,
        _req: Request<api::CheckpointContainerRequest>,
    ) -> Result<Response<api::CheckpointContainerResponse>, Status> {
        Err(unimplemented("checkpoint_container"))
    }

    async fn list_metric_descriptors(
        &self,
        _req: Request<api::ListMetricDescriptorsRequest>,
    ) -> Result<Response<api::ListMetricDescriptorsResponse>, Status> {
        Err(unimplemented("list_metric_descriptors"))
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _req: Request<api::ListPodSandboxMetricsRequest>,
    ) -> Result<Response<api::ListPodSandboxMetricsResponse>, Status> {
        Err(unimplemented("list_pod_sandbox_metrics"))
    }

    async fn runtime_config(
        &self,
        _req: Request<api::RuntimeConfigRequest>,
    ) -> Result<Response<api::RuntimeConfigResponse>, Status> {
        Err(unimplemented("runtime_config"))
    }
}
