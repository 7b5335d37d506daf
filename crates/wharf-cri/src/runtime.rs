//! RuntimeService: version and status; pod sandboxes and containers are engine containers
//! (see `docs/architecture.md`, CRI).

use crate::api;
use crate::api::runtime_service_server::RuntimeService;
use crate::CriConfig;
use std::collections::HashMap;
use std::sync::Arc;
use tonic::{Request, Response, Status};
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

    type GetContainerEventsStream = EventStream;

    async fn get_container_events(
        &self,
        _req: Request<api::GetEventsRequest>,
    ) -> Result<Response<EventStream>, Status> {
        Err(Status::unimplemented(
            "get_container_events is not implemented by wharf yet",
        ))
    }

    async fn run_pod_sandbox(
        &self,
        _req: Request<api::RunPodSandboxRequest>,
    ) -> Result<Response<api::RunPodSandboxResponse>, Status> {
        Err(unimplemented("run_pod_sandbox"))
    }

    async fn stop_pod_sandbox(
        &self,
        _req: Request<api::StopPodSandboxRequest>,
    ) -> Result<Response<api::StopPodSandboxResponse>, Status> {
        Err(unimplemented("stop_pod_sandbox"))
    }

    async fn remove_pod_sandbox(
        &self,
        _req: Request<api::RemovePodSandboxRequest>,
    ) -> Result<Response<api::RemovePodSandboxResponse>, Status> {
        Err(unimplemented("remove_pod_sandbox"))
    }

    async fn pod_sandbox_status(
        &self,
        _req: Request<api::PodSandboxStatusRequest>,
    ) -> Result<Response<api::PodSandboxStatusResponse>, Status> {
        Err(unimplemented("pod_sandbox_status"))
    }

    async fn list_pod_sandbox(
        &self,
        _req: Request<api::ListPodSandboxRequest>,
    ) -> Result<Response<api::ListPodSandboxResponse>, Status> {
        Err(unimplemented("list_pod_sandbox"))
    }

    async fn create_container(
        &self,
        _req: Request<api::CreateContainerRequest>,
    ) -> Result<Response<api::CreateContainerResponse>, Status> {
        Err(unimplemented("create_container"))
    }

    async fn start_container(
        &self,
        _req: Request<api::StartContainerRequest>,
    ) -> Result<Response<api::StartContainerResponse>, Status> {
        Err(unimplemented("start_container"))
    }

    async fn stop_container(
        &self,
        _req: Request<api::StopContainerRequest>,
    ) -> Result<Response<api::StopContainerResponse>, Status> {
        Err(unimplemented("stop_container"))
    }

    async fn remove_container(
        &self,
        _req: Request<api::RemoveContainerRequest>,
    ) -> Result<Response<api::RemoveContainerResponse>, Status> {
        Err(unimplemented("remove_container"))
    }

    async fn list_containers(
        &self,
        _req: Request<api::ListContainersRequest>,
    ) -> Result<Response<api::ListContainersResponse>, Status> {
        Err(unimplemented("list_containers"))
    }

    async fn container_status(
        &self,
        _req: Request<api::ContainerStatusRequest>,
    ) -> Result<Response<api::ContainerStatusResponse>, Status> {
        Err(unimplemented("container_status"))
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

    async fn exec_sync(
        &self,
        _req: Request<api::ExecSyncRequest>,
    ) -> Result<Response<api::ExecSyncResponse>, Status> {
        Err(unimplemented("exec_sync"))
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
