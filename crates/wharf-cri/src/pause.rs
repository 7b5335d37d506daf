//! The sandbox image: one layer holding `/pause`, the static wharf-init that wharfd embeds,
//! whose `--pause` mode holds the pod's namespaces. It is made from the binary on first use
//! and named after the binary's digest, so no registry is needed and a new wharfd gets a new
//! image. The CRI reports it pinned, so a kubelet's image GC leaves it.

use sha2::Digest;
use std::sync::Arc;
use tonic::Status;
use wharf_engine::Engine;

/// The repository of the sandbox image.
pub const REPOSITORY: &str = "wharf.local/pause";

/// `wharf.local/pause:<first 12 hex digits of the init's sha256>`.
pub fn reference() -> String {
    let d = sha2::Sha256::digest(wharf_init::BINARY);
    format!("{REPOSITORY}:{}", &hex::encode(d)[..12])
}

/// Whether a reference names a sandbox image.
pub fn is_pause(reference: &str) -> bool {
    reference.starts_with(REPOSITORY) || reference.starts_with(&format!("docker.io/{REPOSITORY}"))
}

/// The tar of the image's one layer.
fn layer() -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(wharf_init::BINARY.len() as u64);
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "pause", wharf_init::BINARY)?;
    b.into_inner()
}

/// The sandbox image's reference, importing it first if the store lacks it.
pub async fn ensure(engine: &Arc<Engine>) -> Result<String, Status> {
    let r = reference();
    if engine.images.resolve(&r).is_ok() {
        return Ok(r);
    }
    let images = engine.images.clone();
    let r2 = r.clone();
    tokio::task::spawn_blocking(move || {
        let tar = layer().map_err(|e| e.to_string())?;
        let opts = wharf_image::ImportOptions {
            reference: Some(r2),
            changes: vec![r#"ENTRYPOINT ["/pause", "--pause"]"#.into()],
            message: Some("wharf's pod sandbox: wharf-init --pause".into()),
            platform: None,
        };
        images
            .import(&mut tar.as_slice(), &opts)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| Status::internal(e.to_string()))?
    .map_err(|e| Status::internal(format!("making the sandbox image {r}: {e}")))?;
    tracing::info!("cri: made the sandbox image {r}");
    Ok(r)
}
