//! `docker pull` (POST /images/create?fromImage=): manifests and blobs from a registry, only
//! the layers not already here, each verified twice (the blob's digest while it downloads, the
//! layer's diff id while it is extracted), with Docker's JSON progress lines.

use crate::engine::{image_error, Engine};
use bytes::Bytes;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::mpsc;
use wharf_api::ApiError;
use wharf_registry::{pick_platform, Registry, RegistryError};

pub(crate) fn reg_error(e: RegistryError) -> ApiError {
    if e.is_not_found() {
        ApiError::not_found(e.to_string())
    } else if matches!(
        e,
        RegistryError::Status {
            status: 401 | 403,
            ..
        }
    ) {
        ApiError::new(401, e.to_string())
    } else {
        ApiError::internal(e.to_string())
    }
}

async fn say(tx: &mpsc::Sender<Bytes>, v: Value) {
    let _ = tx.send(Bytes::from(format!("{v}\n"))).await;
}

/// Pulls `reference`; progress goes to `tx`. Returns the image id.
pub async fn pull(
    engine: &Arc<Engine>,
    reference: &str,
    creds: Option<wharf_registry::Credentials>,
    tx: &mpsc::Sender<Bytes>,
) -> Result<String, ApiError> {
    let r = wharf_image::reference::parse(reference)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let reg = Registry::connect(&r.domain, creds, &r.path, "pull")
        .await
        .map_err(reg_error)?;
    let target = r
        .digest
        .clone()
        .or(r.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let shown = r.tag.clone().unwrap_or_else(|| target.clone());
    say(
        tx,
        json!({"status": format!("Pulling from {}", r.familiar_name()), "id": shown}),
    )
    .await;
    let (mut bytes, _, mut digest) = reg.manifest(&r.path, &target).await.map_err(reg_error)?;
    let parse = |b: &[u8]| {
        serde_json::from_slice::<Value>(b)
            .map_err(|e| ApiError::internal(format!("invalid manifest for {reference}: {e}")))
    };
    let mut m = parse(&bytes)?;
    if m["manifests"].is_array() {
        let d = pick_platform(&m).ok_or_else(|| {
            ApiError::not_found(format!(
                "no matching manifest for linux/amd64 in the manifest list entries of {reference}"
            ))
        })?;
        (bytes, _, digest) = reg.manifest(&r.path, &d).await.map_err(reg_error)?;
        m = parse(&bytes)?;
    }
    if m["schemaVersion"] == 1 {
        return Err(ApiError::bad_request(format!(
            "{reference}: schema 1 manifests are not supported"
        )));
    }
    let cfg_digest = m["config"]["digest"]
        .as_str()
        .ok_or_else(|| ApiError::internal("manifest without config"))?
        .to_string();
    let layers: Vec<(String, u64)> = m["layers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| {
                    Some((
                        l["digest"].as_str()?.to_string(),
                        l["size"].as_u64().unwrap_or(0),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let tmp = engine
        .images
        .layers()
        .root_tmp()
        .join(format!("pull-{}", crate::names::new_id()));
    tokio::fs::create_dir_all(&tmp)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let result = pull_into(engine, &reg, &r, &cfg_digest, &layers, &tmp, tx).await;
    let _ = tokio::fs::remove_dir_all(&tmp).await;
    let (id, was) = result?;
    say(tx, json!({"status": format!("Digest: {digest}")})).await;
    let status = if was.as_deref() == Some(id.as_str()) {
        "Image is up to date for"
    } else {
        "Downloaded newer image for"
    };
    say(
        tx,
        json!({"status": format!("Status: {status} {}", r.familiar_string())}),
    )
    .await;
    engine
        .events
        .publish("image", "pull", &r.familiar_string(), Default::default());
    Ok(id)
}

async fn pull_into(
    engine: &Arc<Engine>,
    reg: &Registry,
    r: &wharf_image::reference::Reference,
    cfg_digest: &str,
    layers: &[(String, u64)],
    tmp: &std::path::Path,
    tx: &mpsc::Sender<Bytes>,
) -> Result<(String, Option<String>), ApiError> {
    let was = engine
        .images
        .resolve(&r.familiar_string())
        .ok()
        .map(|i| i.id);
    let cfg_path = tmp.join("config.json");
    reg.blob_to_file(&r.path, cfg_digest, &cfg_path, &mut |_| {})
        .await
        .map_err(reg_error)?;
    let config = tokio::fs::read(&cfg_path)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let cfg: Value = serde_json::from_slice(&config)
        .map_err(|e| ApiError::internal(format!("image config: {e}")))?;
    let diff_ids: Vec<String> = cfg["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if diff_ids.len() != layers.len() {
        return Err(ApiError::internal(format!(
            "{r}: the config lists {} layers, the manifest {}",
            diff_ids.len(),
            layers.len()
        )));
    }
    let mut parent: Option<String> = None;
    for ((digest, size), diff_id) in layers.iter().zip(&diff_ids) {
        let short = digest.trim_start_matches("sha256:")[..12].to_string();
        let chain = wharf_image::layers::chain_id(parent.as_deref(), diff_id);
        if engine.images.layers().exists(&chain) {
            say(
                tx,
                json!({"status": "Already exists", "progressDetail": {}, "id": short}),
            )
            .await;
            parent = Some(chain);
            continue;
        }
        say(
            tx,
            json!({"status": "Pulling fs layer", "progressDetail": {}, "id": short}),
        )
        .await;
        let file = tmp.join(digest.trim_start_matches("sha256:"));
        let (ptx, total) = (tx.clone(), *size);
        let id2 = short.clone();
        let mut last = 0u64;
        reg.blob_to_file(&r.path, digest, &file, &mut |n| {
            if n - last >= 512 * 1024 || n == total {
                last = n;
                let _ = ptx.try_send(Bytes::from(format!(
                    "{}\n",
                    json!({"status": "Downloading", "progressDetail": {"current": n, "total": total}, "id": id2})
                )));
            }
        })
        .await
        .map_err(reg_error)?;
        say(
            tx,
            json!({"status": "Download complete", "progressDetail": {}, "id": short}),
        )
        .await;
        let images = engine.images.clone();
        let p = parent.clone();
        let info = tokio::task::spawn_blocking(move || {
            let f = std::fs::File::open(&file).map_err(|e| wharf_image::Error::Io {
                path: file.clone(),
                source: e,
            })?;
            images.layers().register(p.as_deref(), f)
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(image_error)?;
        if info.diff_id != *diff_id {
            let _ = engine.images.layers().remove_layer(&info.chain_id);
            return Err(ApiError::internal(format!("layer {digest}: its content (diff id {}) does not match the image config ({diff_id})", info.diff_id)));
        }
        say(
            tx,
            json!({"status": "Pull complete", "progressDetail": {}, "id": short}),
        )
        .await;
        parent = Some(chain);
    }
    let tags = if r.tag.is_some() {
        vec![r.clone()]
    } else {
        vec![]
    };
    let img = engine
        .images
        .put_image_raw(&config, &tags)
        .map_err(image_error)?;
    Ok((img.id, was))
}
