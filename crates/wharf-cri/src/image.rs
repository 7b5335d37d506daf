//! ImageService: the engine's image store as the kubelet sees it. References are reported
//! fully qualified (`docker.io/library/busybox:latest`), as containerd reports them; pulls go
//! through the engine's pull (`wharf_engine::pull::pull`), so mirrors, insecure registries,
//! auth challenges and layer sharing are the Engine API's.

use crate::api;
use crate::api::image_service_server::ImageService;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tonic::{Request, Response, Status};
use wharf_engine::Engine;
use wharf_image::Image;

/// The ImageService.
pub struct Images {
    engine: Arc<Engine>,
}

impl Images {
    pub fn new(engine: Arc<Engine>) -> Images {
        Images { engine }
    }

    /// The image `name` names (a reference, or a full or short id); None when absent.
    async fn find(&self, name: &str) -> Result<Option<Image>, Status> {
        let images = self.engine.images.clone();
        let n = name.to_string();
        match tokio::task::spawn_blocking(move || images.resolve(&n))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
        {
            Ok(i) => Ok(Some(i)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) if e.is_invalid_input() => Err(Status::invalid_argument(e.to_string())),
            Err(e) => Err(Status::internal(e.to_string())),
        }
    }
}

/// A reference as the CRI reports it: normalized (`busybox` → `docker.io/library/busybox:latest`).
fn qualified(r: &str) -> String {
    wharf_image::reference::parse(r)
        .map(|p| p.to_string())
        .unwrap_or_else(|_| r.to_string())
}

/// `User` of an image config as the CRI splits it: a uid when numeric, else a user name.
fn image_user(user: &str) -> (Option<api::Int64Value>, String) {
    let name = user.split(':').next().unwrap_or_default();
    match name.parse::<i64>() {
        Ok(uid) => (Some(api::Int64Value { value: uid }), String::new()),
        Err(_) if name.is_empty() => (Some(api::Int64Value { value: 0 }), String::new()),
        Err(_) => (None, name.to_string()),
    }
}

/// The CRI view of an image.
pub fn to_cri(img: &Image) -> api::Image {
    let (uid, username) = image_user(img.user());
    api::Image {
        id: img.id.clone(),
        repo_tags: img.repo_tags.iter().map(|t| qualified(t)).collect(),
        repo_digests: img.repo_digests.iter().map(|t| qualified(t)).collect(),
        size: img.size,
        uid,
        username,
        spec: Some(api::ImageSpec {
            image: img.id.clone(),
            ..Default::default()
        }),
        // The sandbox image is the runtime's: a kubelet's image GC must leave it.
        pinned: img.repo_tags.iter().any(|t| crate::pause::is_pause(t)),
    }
}

/// The credentials a PullImageRequest carries: username/password, or `auth` (base64 of
/// `user:password`, as in a docker config.json), or an identity token. A registry token
/// (a bearer token to send as is) is refused: the engine's client gets its tokens itself.
pub fn credentials(
    auth: Option<&api::AuthConfig>,
) -> Result<Option<wharf_registry::Credentials>, Status> {
    let Some(a) = auth else { return Ok(None) };
    if !a.registry_token.is_empty() {
        return Err(Status::invalid_argument(
            "auth.registry_token is not supported by wharf: pass username and password, auth or identity_token",
        ));
    }
    let (mut username, mut password) = (a.username.clone(), a.password.clone());
    if username.is_empty() && !a.auth.is_empty() {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.auth.trim())
            .map_err(|e| Status::invalid_argument(format!("auth.auth is not base64: {e}")))?;
        let s = String::from_utf8(raw)
            .map_err(|_| Status::invalid_argument("auth.auth is not UTF-8"))?;
        let (u, p) = s
            .split_once(':')
            .ok_or_else(|| Status::invalid_argument("auth.auth is not base64 of user:password"))?;
        username = u.to_string();
        password = p.to_string();
    }
    let c = wharf_registry::Credentials {
        username,
        password,
        identity_token: a.identity_token.clone(),
        server_address: a.server_address.clone(),
    };
    Ok((!c.is_empty()).then_some(c))
}

fn image_name(spec: Option<&api::ImageSpec>) -> Result<&str, Status> {
    spec.map(|s| s.image.as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Status::invalid_argument("image.image is empty: name the image"))
}

/// Bytes and inodes used under `dir` (each inode once, as `du` counts).
fn usage(dir: &std::path::Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let (mut bytes, mut inodes) = (0u64, 0u64);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.nlink() > 1 && !seen.insert((m.dev(), m.ino())) {
                continue;
            }
            bytes += m.blocks() * 512;
            inodes += 1;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    (bytes, inodes)
}

#[tonic::async_trait]
impl ImageService for Images {
    async fn list_images(
        &self,
        req: Request<api::ListImagesRequest>,
    ) -> Result<Response<api::ListImagesResponse>, Status> {
        let want = req
            .into_inner()
            .filter
            .and_then(|f| f.image)
            .map(|s| s.image)
            .filter(|s| !s.is_empty());
        let images = match want {
            Some(w) => self.find(&w).await?.into_iter().collect(),
            None => self
                .engine
                .images
                .list()
                .map_err(|e| Status::internal(e.to_string()))?,
        };
        Ok(Response::new(api::ListImagesResponse {
            images: images.iter().map(to_cri).collect(),
        }))
    }

    async fn image_status(
        &self,
        req: Request<api::ImageStatusRequest>,
    ) -> Result<Response<api::ImageStatusResponse>, Status> {
        let req = req.into_inner();
        let name = image_name(req.image.as_ref())?;
        // An absent image is no error: the answer has no image (the kubelet then pulls).
        let img = self.find(name).await?;
        let mut info = HashMap::new();
        if req.verbose {
            if let Some(i) = &img {
                info.insert(
                    "info".to_string(),
                    serde_json::json!({"config": i.raw_config, "chainTop": i.top_layer})
                        .to_string(),
                );
            }
        }
        Ok(Response::new(api::ImageStatusResponse {
            image: img.as_ref().map(to_cri),
            info,
        }))
    }

    async fn pull_image(
        &self,
        req: Request<api::PullImageRequest>,
    ) -> Result<Response<api::PullImageResponse>, Status> {
        let req = req.into_inner();
        let name = image_name(req.image.as_ref())?.to_string();
        let creds = credentials(req.auth.as_ref())?;
        // The engine streams Docker's JSON progress: nobody reads it here.
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let r = wharf_engine::pull::pull(&self.engine, &name, false, None, creds, &tx).await;
        drop(tx);
        let _ = drain.await;
        r.map_err(crate::status)?;
        let img = self.find(&name).await?.ok_or_else(|| {
            Status::internal(format!("{name} was pulled but is not in the image store"))
        })?;
        tracing::info!("cri: pulled {name} as {}", img.id);
        Ok(Response::new(api::PullImageResponse { image_ref: img.id }))
    }

    async fn remove_image(
        &self,
        req: Request<api::RemoveImageRequest>,
    ) -> Result<Response<api::RemoveImageResponse>, Status> {
        let req = req.into_inner();
        let name = image_name(req.image.as_ref())?;
        // Idempotent: an image already gone is no error.
        let Some(img) = self.find(name).await? else {
            return Ok(Response::new(api::RemoveImageResponse {}));
        };
        if let Some(c) = self.engine.container_using_image(&img.id) {
            return Err(Status::failed_precondition(format!(
                "image {name} is in use by container {}",
                &c[..12.min(c.len())]
            )));
        }
        // Every reference of the image goes with it, as containerd's CRI removes it.
        let e2 = self.engine.clone();
        let items = self
            .engine
            .images
            .remove(&img.id, true, &|id| e2.container_using_image(id))
            .map_err(|e| crate::status(wharf_engine::engine::image_error(e)))?;
        for i in items {
            match i {
                wharf_image::DeleteResponseItem::Untagged(t) => {
                    self.engine
                        .events
                        .publish("image", "untag", &t, BTreeMap::new())
                }
                wharf_image::DeleteResponseItem::Deleted(d) => {
                    self.engine
                        .events
                        .publish("image", "delete", &d, BTreeMap::new())
                }
            }
        }
        Ok(Response::new(api::RemoveImageResponse {}))
    }

    async fn image_fs_info(
        &self,
        _req: Request<api::ImageFsInfoRequest>,
    ) -> Result<Response<api::ImageFsInfoResponse>, Status> {
        let root = self.engine.cfg.data_root.join("layers");
        let r2 = root.clone();
        let (bytes, inodes) = tokio::task::spawn_blocking(move || usage(&r2))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        let fs = api::FilesystemUsage {
            timestamp: chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default(),
            fs_id: Some(api::FilesystemIdentifier {
                mountpoint: root.display().to_string(),
            }),
            used_bytes: Some(api::UInt64Value { value: bytes }),
            inodes_used: Some(api::UInt64Value { value: inodes }),
        };
        Ok(Response::new(api::ImageFsInfoResponse {
            image_filesystems: vec![fs.clone()],
            container_filesystems: vec![fs],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_forms() {
        assert_eq!(credentials(None).unwrap(), None);
        assert_eq!(credentials(Some(&Default::default())).unwrap(), None);
        let a = api::AuthConfig {
            auth: "dTpwQHNz".into(), // u:p@ss
            ..Default::default()
        };
        let c = credentials(Some(&a)).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p@ss"));
        let a = api::AuthConfig {
            username: "x".into(),
            password: "y".into(),
            auth: "bm90IHVzZWQ6LQ==".into(),
            ..Default::default()
        };
        let c = credentials(Some(&a)).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("x", "y"));
        let bad = api::AuthConfig {
            auth: "!!".into(),
            ..Default::default()
        };
        assert!(credentials(Some(&bad)).is_err());
        let tok = api::AuthConfig {
            registry_token: "t".into(),
            ..Default::default()
        };
        assert_eq!(
            credentials(Some(&tok)).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }

    #[test]
    fn users() {
        assert_eq!(image_user("").0.unwrap().value, 0);
        assert_eq!(image_user("1000:1000").0.unwrap().value, 1000);
        assert_eq!(image_user("nobody"), (None, "nobody".to_string()));
        assert_eq!(qualified("busybox"), "docker.io/library/busybox:latest");
    }
}
