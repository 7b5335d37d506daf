//! The Kubernetes Container Runtime Interface (`runtime.v1`) served by wharfd: gRPC over a
//! unix socket (`--cri-socket`), beside the Engine API and over the same engine, so an image
//! pulled with `docker pull` is one the kubelet sees, and back.
//!
//! The protobufs are `k8s-cri`'s (Kubernetes' `api.proto` compiled with tonic/prost); `api`
//! re-exports them, with the generated clients the tests drive the socket with.
//!
//! - `image.rs`: ImageService over `wharf_image::ImageStore` and the engine's pull.
//! - `runtime.rs`: RuntimeService; `pods.rs`: sandboxes and containers as engine containers;
//!   `pause.rs`: the sandbox image, made from the embedded wharf-init.

pub mod image;
pub mod pause;
pub mod pods;
pub mod runtime;

pub use k8s_cri::v1 as api;

use std::path::PathBuf;
use std::sync::Arc;
use wharf_engine::Engine;

/// The name and version the runtime reports (`crictl version`).
pub const RUNTIME_NAME: &str = "wharf";
/// The CRI version served.
pub const RUNTIME_API_VERSION: &str = "v1";

/// What the CRI server needs besides the engine.
#[derive(Debug, Clone)]
pub struct CriConfig {
    /// Where the socket is (for messages).
    pub socket: PathBuf,
}

/// Errors of serving the CRI.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cri socket {path}: {source}")]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("serving the cri on {path}: {source}")]
    Serve {
        path: PathBuf,
        source: tonic::transport::Error,
    },
}

/// Binds `cfg.socket` (a stale socket file is replaced; mode 0660, as the Engine API's).
pub fn bind(cfg: &CriConfig) -> Result<tokio::net::UnixListener, Error> {
    use std::os::unix::fs::PermissionsExt;
    let path = &cfg.socket;
    let err = |source| Error::Socket {
        path: path.clone(),
        source,
    };
    if path.exists() {
        std::fs::remove_file(path).map_err(err)?;
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let l = tokio::net::UnixListener::bind(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(err)?;
    Ok(l)
}

/// Serves RuntimeService and ImageService on `listener` until the listener fails.
pub async fn serve(
    engine: Arc<Engine>,
    cfg: CriConfig,
    listener: tokio::net::UnixListener,
) -> Result<(), Error> {
    let rt = runtime::Runtime::new(engine.clone(), cfg.clone());
    let img = image::Images::new(engine);
    tonic::transport::Server::builder()
        .add_service(api::runtime_service_server::RuntimeServiceServer::new(rt))
        .add_service(api::image_service_server::ImageServiceServer::new(img))
        .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener))
        .await
        .map_err(|source| Error::Serve {
            path: cfg.socket.clone(),
            source,
        })
}

/// An engine error as a gRPC status: 404 → NotFound, 409 → FailedPrecondition, 400 →
/// InvalidArgument, 401 → Unauthenticated, else Internal; the message is kept.
pub(crate) fn status(e: wharf_api::ApiError) -> tonic::Status {
    let code = match e.status {
        400 => tonic::Code::InvalidArgument,
        401 | 403 => tonic::Code::Unauthenticated,
        404 => tonic::Code::NotFound,
        409 | 304 => tonic::Code::FailedPrecondition,
        _ => tonic::Code::Internal,
    };
    tonic::Status::new(code, e.message)
}
