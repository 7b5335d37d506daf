//! `docker push` (POST /images/{name}/push): layers the registry lacks are uploaded (HEAD
//! first), then the config and an OCI manifest. Layers go up as the exact uncompressed tars
//! kept by the layer store, so their digests are the image's diff ids.

use crate::engine::{image_error, Engine};
use bytes::Bytes;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::mpsc;
use wharf_api::ApiError;
use wharf_registry::Registry;

use crate::pull::reg_error;

async fn say(tx: &mpsc::Sender<Bytes>, v: Value) {
    let _ = tx.send(Bytes::from(format!("{v}\n"))).await;
}

/// Pushes `name` (with `tag`, default latest).
pub async fn push(
    engine: &Arc<Engine>,
    name: &str,
    tag: Option<&str>,
    creds: Option<wharf_registry::Credentials>,
    tx: &mpsc::Sender<Bytes>,
) -> Result<(), ApiError> {
    let full = match tag.filter(|t| !t.is_empty()) {
        Some(t) => format!("{name}:{t}"),
        None => name.to_string(),
    };
    let r =
        wharf_image::reference::parse(&full).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let img = engine
        .images
        .resolve(&r.familiar_string())
        .map_err(image_error)?;
    let insecure = engine.live().is_insecure_registry(&r.domain);
    let reg = Registry::connect(&r.domain, insecure, creds, &r.path, "pull,push")
        .await
        .map_err(reg_error)?;
    let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
    say(
        tx,
        json!({"status": format!("The push refers to repository [{}]", r.familiar_name())}),
    )
    .await;
    let mut descs = Vec::new();
    let mut chain: Option<String> = None;
    for d in &img.rootfs_diff_ids {
        let c = wharf_image::layers::chain_id(chain.as_deref(), d);
        let path = engine.images.layers().layer_tar(&c);
        let size = std::fs::metadata(&path)
            .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?
            .len();
        let short = d.trim_start_matches("sha256:")[..12].to_string();
        if reg.has_blob(&r.path, d).await.map_err(reg_error)? {
            say(
                tx,
                json!({"status": "Layer already exists", "progressDetail": {}, "id": short}),
            )
            .await;
        } else {
            say(tx, json!({"status": "Pushing", "progressDetail": {"current": 0, "total": size}, "id": short})).await;
            reg.upload_blob(&r.path, d, &path)
                .await
                .map_err(reg_error)?;
            say(
                tx,
                json!({"status": "Pushed", "progressDetail": {}, "id": short}),
            )
            .await;
        }
        descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": size}));
        chain = Some(c);
    }
    let cfg_path = engine.images.imagedb_path(&img.id);
    let cfg_size = std::fs::metadata(&cfg_path)
        .map_err(|e| ApiError::internal(e.to_string()))?
        .len();
    if !reg.has_blob(&r.path, &img.id).await.map_err(reg_error)? {
        reg.upload_blob(&r.path, &img.id, &cfg_path)
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
