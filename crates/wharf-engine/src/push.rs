//! `docker push` (POST /images/{name}/push): layers the registry lacks are mounted from
//! another repository of the same registry when a blob of theirs is known to hold them
//! (`blobsources`), else uploaded (HEAD first), then the config and an OCI manifest. Uploaded
//! layers go up as the exact uncompressed tars kept by the layer store, so their digests are
//! the image's diff ids; mounted or already present ones keep the registry's (compressed)
//! blob.

use crate::engine::{image_error, Engine};
use bytes::Bytes;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::mpsc;
use wharf_api::ApiError;
use wharf_registry::{Mount, Registry};

use crate::blobsources::BlobSource;

/// Mounts tried per layer before uploading it (as moby's `maxMountAttempts`).
const MOUNT_ATTEMPTS: usize = 3;

/// Media type of a layer blob in the OCI manifest we push (Docker's types mapped to OCI's).
fn oci_layer_type(media: &str) -> &'static str {
    if media.ends_with("gzip") {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    } else if media.ends_with("zstd") {
        "application/vnd.oci.image.layer.v1.tar+zstd"
    } else {
        "application/vnd.oci.image.layer.v1.tar"
    }
}

/// Puts layer `diff_id` in `repo`, as cheaply as the registry allows: a blob it already has
/// there (one recorded for this layer, or the uncompressed tar), else a blob mounted from
/// another repository of the registry known to hold it, else an upload of the layer's tar
/// from the content store. Returns the blob for the manifest and records it.
async fn push_layer(
    engine: &Arc<Engine>,
    reg: &Registry,
    repo: &str,
    diff_id: &str,
    tar: &std::path::Path,
    short: &str,
    tx: &mpsc::Sender<Bytes>,
) -> Result<BlobSource, ApiError> {
    let size = std::fs::metadata(tar)
        .map_err(|e| ApiError::internal(format!("{}: {e}", tar.display())))?
        .len();
    let own = BlobSource {
        digest: diff_id.to_string(),
        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
        size,
        registry: reg.host.clone(),
        repository: repo.to_string(),
    };
    let mut known: Vec<BlobSource> = engine
        .blob_sources
        .get(diff_id)
        .into_iter()
        .filter(|s| s.registry == reg.host)
        .collect();
    known.reverse(); // the newest first
    let found = |s: &BlobSource| BlobSource {
        repository: repo.to_string(),
        media_type: oci_layer_type(&s.media_type).to_string(),
        ..s.clone()
    };
    // Already there?
    let mut candidates: Vec<BlobSource> = known
        .iter()
        .filter(|s| s.repository == repo)
        .cloned()
        .collect();
    candidates.push(own.clone());
    for s in &candidates {
        if reg.has_blob(repo, &s.digest).await.map_err(reg_error)? {
            say(
                tx,
                json!({"status": "Layer already exists", "progressDetail": {}, "id": short}),
            )
            .await;
            let b = found(s);
            engine.blob_sources.note(diff_id, b.clone());
            return Ok(b);
        }
    }
    // Known in another repository of this registry: mount it.
    let mut upload_at = None;
    for s in known
        .iter()
        .filter(|s| s.repository != repo)
        .take(MOUNT_ATTEMPTS)
    {
        match reg.mount_blob(repo, &s.digest, &s.repository).await {
            Ok(Mount::Mounted) => {
                say(
                    tx,
                    json!({"status": format!("Mounted from {}", s.repository), "progressDetail": {}, "id": short}),
                )
                .await;
                let b = found(s);
                engine.blob_sources.note(diff_id, b.clone());
                return Ok(b);
            }
            Ok(Mount::Upload(loc)) => {
                tracing::debug!(
                    "{repo}: {} could not be mounted from {}",
                    s.digest,
                    s.repository
                );
                if let Some(old) = upload_at.replace(loc) {
                    reg.cancel_upload(&old).await;
                }
            }
            Err(e) => tracing::info!("mount of {} from {}: {e}", s.digest, s.repository),
        }
    }
    say(
        tx,
        json!({"status": "Pushing", "progressDetail": {"current": 0, "total": size}, "id": short}),
    )
    .await;
    let progress = {
        let (tx, short) = (tx.clone(), short.to_string());
        let last = std::sync::atomic::AtomicU64::new(0);
        Arc::new(move |n: u64| {
            let prev = last.load(std::sync::atomic::Ordering::Relaxed);
            if n - prev.min(n) >= 512 * 1024 || n == size {
                last.store(n, std::sync::atomic::Ordering::Relaxed);
                let _ = tx.try_send(Bytes::from(format!(
                    "{}\n",
                    json!({"status": "Pushing", "progressDetail": {"current": n, "total": size}, "id": short})
                )));
            }
        })
    };
    match upload_at {
        Some(loc) => {
            reg.upload_to(repo, diff_id, tar, &loc, None, progress)
                .await
        }
        None => reg.upload_blob(repo, diff_id, tar, progress).await,
    }
    .map_err(reg_error)?;
    say(
        tx,
        json!({"status": "Pushed", "progressDetail": {}, "id": short}),
    )
    .await;
    engine.blob_sources.note(diff_id, own.clone());
    Ok(own)
}

use crate::pull::reg_error;

async fn say(tx: &mpsc::Sender<Bytes>, v: Value) {
    let _ = tx.send(Bytes::from(format!("{v}\n"))).await;
}

/// Pushes `name` with `tag`; without a tag (in `tag` or `name`), every local tag of the
/// repository, as the Engine API says (`docker push --all-tags`).
pub async fn push(
    engine: &Arc<Engine>,
    name: &str,
    tag: Option<&str>,
    creds: Option<wharf_registry::Credentials>,
    tx: &mpsc::Sender<Bytes>,
) -> Result<(), ApiError> {
    let after_slash = &name[name.rfind('/').map_or(0, |i| i + 1)..];
    let all_tags =
        tag.is_none_or(|t| t.is_empty()) && !after_slash.contains(':') && !name.contains('@');
    let full = match tag.filter(|t| !t.is_empty()) {
        Some(t) => format!("{name}:{t}"),
        None => name.to_string(),
    };
    let r =
        wharf_image::reference::parse(&full).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let refs: Vec<wharf_image::reference::Reference> = if all_tags {
        let mut tags: Vec<_> = engine
            .images
            .list()
            .map_err(image_error)?
            .iter()
            .flat_map(|i| i.repo_tags.iter())
            .filter_map(|t| wharf_image::reference::parse(t).ok())
            .filter(|t| t.domain == r.domain && t.path == r.path && t.tag.is_some())
            .collect();
        tags.sort_by(|a, b| a.tag.cmp(&b.tag));
        tags.dedup();
        if tags.is_empty() {
            return Err(ApiError::not_found(format!(
                "An image does not exist locally with the tag: {}",
                r.familiar_name()
            )));
        }
        tags
    } else {
        vec![r.clone()]
    };
    // Every image exists before anything is sent.
    let mut imgs = Vec::new();
    for one in &refs {
        imgs.push(
            engine
                .images
                .resolve(&one.familiar_string())
                .map_err(image_error)?,
        );
    }
    let insecure = engine.live().is_insecure_registry(&r.domain);
    let reg = Registry::connect(&r.domain, insecure, creds, &r.path, "pull,push")
        .await
        .map_err(reg_error)?;
    say(
        tx,
        json!({"status": format!("The push refers to repository [{}]", r.familiar_name())}),
    )
    .await;
    for (one, img) in refs.iter().zip(&imgs) {
        push_one(engine, &reg, one, img, tx).await?;
    }
    Ok(())
}

/// Pushes one tagged image `img` as `r` through `reg`: layers, config, manifest.
async fn push_one(
    engine: &Arc<Engine>,
    reg: &Registry,
    r: &wharf_image::reference::Reference,
    img: &wharf_image::store::Image,
    tx: &mpsc::Sender<Bytes>,
) -> Result<(), ApiError> {
    let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
    let mut descs = Vec::new();
    let mut chain: Option<String> = None;
    for d in &img.rootfs_diff_ids {
        let c = wharf_image::layers::chain_id(chain.as_deref(), d);
        let short = wharf_image::digest::short(d).to_string();
        say(
            tx,
            json!({"status": "Preparing", "progressDetail": {}, "id": short}),
        )
        .await;
        let path = engine.images.layers().layer_tar(&c);
        let desc = push_layer(engine, reg, &r.path, d, &path, &short, tx).await?;
        descs.push(json!({"mediaType": desc.media_type, "digest": desc.digest, "size": desc.size}));
        chain = Some(c);
    }
    let cfg_path = engine.images.imagedb_path(&img.id);
    let cfg_size = std::fs::metadata(&cfg_path)
        .map_err(|e| ApiError::internal(e.to_string()))?
        .len();
    if !reg.has_blob(&r.path, &img.id).await.map_err(reg_error)? {
        reg.upload_blob(&r.path, &img.id, &cfg_path, Arc::new(|_| {}))
            .await
            .map_err(reg_error)?;
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": img.id, "size": cfg_size},
        "layers": descs,
    });
    let bytes = serde_json::to_vec(&manifest).expect("serializable");
    let size = bytes.len();
    let digest = reg
        .put_manifest(
            &r.path,
            &tag,
            "application/vnd.oci.image.manifest.v1+json",
            bytes,
        )
        .await
        .map_err(reg_error)?;
    let (images, iid, name, d) = (
        engine.images.clone(),
        img.id.clone(),
        r.to_string(),
        digest.clone(),
    );
    // The pushed image is now known by its digest there too (RepoDigests), as in dockerd.
    if let Ok(Err(e)) =
        tokio::task::spawn_blocking(move || images.add_digest(&iid, &name, &d)).await
    {
        tracing::warn!("recording the digest of {}: {e}", r.familiar_string());
    }
    say(
        tx,
        json!({"status": format!("{tag}: digest: {digest} size: {size}")}),
    )
    .await;
    say(
        tx,
        json!({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": size}}),
    )
    .await;
    engine
        .events
        .publish("image", "push", &r.familiar_string(), Default::default());
    Ok(())
}
