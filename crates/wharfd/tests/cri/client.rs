//! A CRI client as a kubelet has one: the tonic clients of `wharf_cri::api` over wharfd's
//! `--cri-socket`, with a current-thread runtime so the tests stay synchronous.

#![allow(dead_code)]

use hyper_util::rt::TokioIo;
use std::path::{Path, PathBuf};
use tonic::transport::{Channel, Endpoint, Uri};
use wharf_cri::api::image_service_client::ImageServiceClient;
use wharf_cri::api::runtime_service_client::RuntimeServiceClient;

pub struct Cri {
    pub rt: tokio::runtime::Runtime,
    rs: RuntimeServiceClient<Channel>,
    is: ImageServiceClient<Channel>,
    pub socket: PathBuf,
}

impl Cri {
    /// Connects to the CRI socket at `path`.
    pub fn connect(path: &Path) -> Cri {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let p = path.to_path_buf();
        let channel = rt
            .block_on(
                Endpoint::try_from("http://[::]:50051")
                    .unwrap()
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let p = p.clone();
                        async move {
                            Ok::<_, std::io::Error>(TokioIo::new(
                                tokio::net::UnixStream::connect(p).await?,
                            ))
                        }
                    })),
            )
            .expect("connect to the CRI socket");
        Cri {
            rt,
            rs: RuntimeServiceClient::new(channel.clone()),
            is: ImageServiceClient::new(channel),
            socket: path.to_path_buf(),
        }
    }

    /// The RuntimeService client (a handle on the one connection).
    pub fn runtime(&self) -> RuntimeServiceClient<Channel> {
        self.rs.clone()
    }

    /// The ImageService client.
    pub fn images(&self) -> ImageServiceClient<Channel> {
        self.is.clone()
    }

    /// Runs one call to its answer.
    pub fn call<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.rt.block_on(f)
    }
}
