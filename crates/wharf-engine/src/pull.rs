//! `docker pull` (POST /images/create?fromImage=): manifests and blobs from a registry, only
//! the layers not already here, each verified twice (the blob's digest while it downloads, the
//! layer's diff id while it is extracted), with Docker's JSON progress lines.

use crate::engine::{image_error, Engine};
use bytes::Bytes;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::mpsc;
use wharf_api::ApiError;
use wharf_image::digest::is_sha256 as valid_digest;
use wharf_image::platform::Platform;
use wharf_registry::{Registry, RegistryError};

/// Attempts per layer on transient errors (connection lost, 5xx), with back-off.
const ATTEMPTS: u32 = 3;

/// One layer to fetch: streamed from the registry through a digest check into the layer
/// store's extraction, so no layer is ever held whole in memory or on disk as a blob.
struct LayerJob {
    engine: Arc<Engine>,
    reg: Arc<Registry>,
    repo: String,
    digest: String,
    size: u64,
    diff_id: String,
    parent: Option<String>,
    chain: String,
    short: String,
    tx: mpsc::Sender<Bytes>,
    /// The pull's hold on its layers until the image is written.
    lease: Arc<wharf_image::layers::LayerLease>,
}

/// Layers being fetched now, by chain id: a second pull of the same layer waits for the
/// first instead of downloading it again.
fn in_flight(chain: &str) -> Arc<tokio::sync::Mutex<()>> {
    static MAP: std::sync::OnceLock<
        std::sync::Mutex<
            std::collections::HashMap<String, std::sync::Weak<tokio::sync::Mutex<()>>>,
        >,
    > = std::sync::OnceLock::new();
    let mut m = MAP
        .get_or_init(Default::default)
        .lock()
        .expect("in-flight map");
    m.retain(|_, w| w.strong_count() > 0);
    if let Some(l) = m.get(chain).and_then(|w| w.upgrade()) {
        return l;
    }
    let l = Arc::new(tokio::sync::Mutex::new(()));
    m.insert(chain.to_string(), Arc::downgrade(&l));
    l
}

impl LayerJob {
    async fn run(self) -> Result<(), ApiError> {
        let lock = in_flight(&self.chain);
        let _guard = lock.lock().await;
        if !self.engine.images.layers().exists(&self.chain) {
            tracing::debug!("{}: layer download starts", self.digest);
            let _end = scopeguard(&self.digest);
            let mut attempt = 0;
            loop {
                attempt += 1;
                match self.fetch().await {
                    Ok(()) => break,
                    Err(Fetch::Transient(e)) if attempt < ATTEMPTS => {
                        let wait = std::time::Duration::from_millis(500 << attempt);
                        say(
                            &self.tx,
                            json!({"status": format!("Retrying in {} seconds", wait.as_secs().max(1)), "progressDetail": {}, "id": self.short}),
                        )
                        .await;
                        tracing::warn!("pull of {}: {e}; retrying", self.digest);
                        tokio::time::sleep(wait).await;
                    }
                    Err(Fetch::Transient(e)) => return Err(reg_error(e)),
                    Err(Fetch::Fatal(e)) => return Err(e),
                }
            }
        }
        say(
            &self.tx,
            json!({"status": "Pull complete", "progressDetail": {}, "id": self.short}),
        )
        .await;
        Ok(())
    }

    /// One attempt: the body goes through a channel to a blocking extraction; the channel
    /// only ends cleanly after the blob's digest matched, so a bad blob publishes nothing.
    async fn fetch(&self) -> Result<(), Fetch> {
        use http_body_util::BodyExt;
        use sha2::{Digest, Sha256};
        let mut body = self
            .reg
            .blob(&self.repo, &self.digest)
            .await
            .map_err(Fetch::from)?;
        // Bytes in flight between the socket and the extraction are bounded by IN_FLIGHT, not
        // by a count of chunks (hyper's chunks grow to hundreds of KiB on a fast link).
        let (btx, brx) = mpsc::unbounded_channel::<Chunk>();
        let budget = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        let images = self.engine.images.clone();
        let (parent, diff_id) = (self.parent.clone(), self.diff_id.clone());
        let lease = self.lease.clone();
        let extract = tokio::task::spawn_blocking(move || {
            let reader = ChannelReader {
                rx: brx,
                permit: None,
                buf: Bytes::new(),
            };
            images
                .layers()
                .register_checked(&lease, parent.as_deref(), reader, Some(&diff_id))
        });
        let mut hasher = Sha256::new();
        let mut n = 0u64;
        let mut last = 0u64;
        let streamed: Result<(), Fetch> = async {
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| {
                    Fetch::Transient(RegistryError::Unreachable {
                        registry: self.reg.host.clone(),
                        message: e.to_string(),
                    })
                })?;
                if let Ok(d) = frame.into_data() {
                    hasher.update(&d);
                    n += d.len() as u64;
                    if n - last >= 512 * 1024 || n == self.size {
                        last = n;
                        let _ = self.tx.try_send(Bytes::from(format!(
                            "{}\n",
                            json!({"status": "Downloading", "progressDetail": {"current": n, "total": self.size}, "id": self.short})
                        )));
                    }
                    let permit = budget
                        .clone()
                        .acquire_many_owned(d.len().clamp(1, IN_FLIGHT) as u32)
                        .await
                        .expect("the budget is never closed");
                    if btx.send((Ok(d), Some(permit))).is_err() {
                        break; // extraction failed: its error is reported below
                    }
                }
            }
            let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
            if actual != self.digest {
                return Err(Fetch::Fatal(ApiError::internal(format!(
                    "layer {}: digest mismatch (the registry sent {actual}): nothing was stored",
                    self.digest
                ))));
            }
            Ok(())
        }
        .await;
        match &streamed {
            Ok(()) => drop(btx),
            Err(e) => {
                let _ = btx.send((Err(e.to_string()), None));
                drop(btx);
            }
        }
        let extracted = extract
            .await
            .map_err(|e| Fetch::Fatal(ApiError::internal(e.to_string())))?;
        streamed?;
        say(
            &self.tx,
            json!({"status": "Download complete", "progressDetail": {}, "id": self.short}),
        )
        .await;
        extracted.map_err(|e| Fetch::Fatal(image_error(e)))?;
        Ok(())
    }
}

/// Logs the end of a layer's download when dropped (also on errors).
fn scopeguard(digest: &str) -> impl Drop + '_ {
    struct End<'a>(&'a str);
    impl Drop for End<'_> {
        fn drop(&mut self) {
            tracing::debug!("{}: layer download ends", self.0);
        }
    }
    End(digest)
}

/// How an attempt failed.
enum Fetch {
    Transient(RegistryError),
    Fatal(ApiError),
}

impl From<RegistryError> for Fetch {
    fn from(e: RegistryError) -> Fetch {
        if e.is_transient() {
            Fetch::Transient(e)
        } else {
            Fetch::Fatal(reg_error(e))
        }
    }
}

impl std::fmt::Display for Fetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fetch::Transient(e) => write!(f, "{e}"),
            Fetch::Fatal(e) => write!(f, "{}", e.message),
        }
    }
}

/// Bytes of one layer buffered between its download and its extraction, at most.
const IN_FLIGHT: usize = 4 << 20;

/// A chunk of a layer and its share of the in-flight budget (released once read).
type Chunk = (
    Result<Bytes, String>,
    Option<tokio::sync::OwnedSemaphorePermit>,
);

/// A blocking `Read` over the chunks an async task sends; an `Err` chunk fails the read.
struct ChannelReader {
    rx: mpsc::UnboundedReceiver<Chunk>,
    buf: Bytes,
    /// The budget held by `buf`, returned when it is consumed.
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            self.permit = None;
            match self.rx.blocking_recv() {
                Some((Ok(b), p)) => {
                    self.buf = b;
                    self.permit = p;
                }
                Some((Err(e), _)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}

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

/// For a docker.io image, the first configured mirror that has `target` (as dockerd, which
/// falls back to docker.io when no mirror answers).
async fn from_mirror(
    engine: &Arc<Engine>,
    r: &wharf_image::reference::Reference,
    target: &str,
) -> Option<Arc<Registry>> {
    if r.domain != "docker.io" {
        return None;
    }
    for m in engine.live().registry_mirrors.clone() {
        let (host, plain) = match m.strip_prefix("http://") {
            Some(h) if h.contains(':') => (h.to_string(), true),
            Some(h) => (format!("{h}:80"), true),
            None => (m.trim_start_matches("https://").to_string(), false),
        };
        let insecure = plain || engine.live().is_insecure_registry(&host);
        match Registry::connect(&host, insecure, None, &r.path, "pull").await {
            Ok(reg) => match reg.manifest(&r.path, target).await {
                Ok(_) => return Some(Arc::new(reg)),
                Err(e) => tracing::info!("mirror {m} has no {}:{target}: {e}", r.path),
            },
            Err(e) => tracing::warn!("mirror {m}: {e}; trying the next"),
        }
    }
    None
}

/// Pulls `reference` (every tag of its repository with `all_tags` when it names no tag or
/// digest, as dockerd does for `fromImage` without `tag`); `platform` overrides the host's
/// when picking from a manifest list, and must match a single image's. Progress goes to `tx`.
pub async fn pull(
    engine: &Arc<Engine>,
    reference: &str,
    all_tags: bool,
    platform: Option<wharf_image::platform::Platform>,
    creds: Option<wharf_registry::Credentials>,
    tx: &mpsc::Sender<Bytes>,
) -> Result<(), ApiError> {
    let r = wharf_image::reference::parse(reference)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    // `parse` gives a bare name the default tag: look at what was written.
    let after_slash = &reference[reference.rfind('/').map_or(0, |i| i + 1)..];
    let all_tags = all_tags && !reference.contains('@') && !after_slash.contains(':');
    let target = r
        .digest
        .clone()
        .or(r.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let reg = match from_mirror(engine, &r, &target).await {
        Some(m) => m,
        None => Arc::new(
            Registry::connect(
                &r.domain,
                engine.live().is_insecure_registry(&r.domain),
                creds,
                &r.path,
                "pull",
            )
            .await
            .map_err(reg_error)?,
        ),
    };
    let refs = if all_tags {
        let tags = reg.tags(&r.path).await.map_err(|e| {
            if e.is_not_found() {
                ApiError::not_found(format!(
                    "{}: repository does not exist or may require 'docker login': {e}",
                    r.familiar_name()
                ))
            } else {
                reg_error(e)
            }
        })?;
        if tags.is_empty() {
            return Err(ApiError::not_found(format!(
                "{}: the repository has no tags to pull",
                r.familiar_name()
            )));
        }
        tags.into_iter()
            .map(|t| wharf_image::reference::Reference {
                tag: Some(t),
                ..r.clone()
            })
            .collect()
    } else {
        vec![r.clone()]
    };
    let mut newer = false;
    for one in &refs {
        newer |= pull_one(engine, &reg, one, platform.as_ref(), tx).await?;
        engine
            .events
            .publish("image", "pull", &one.familiar_string(), Default::default());
    }
    let status = if newer {
        "Downloaded newer image for"
    } else {
        "Image is up to date for"
    };
    let shown = if all_tags {
        r.familiar_name()
    } else {
        r.familiar_string()
    };
    say(tx, json!({"status": format!("Status: {status} {shown}")})).await;
    Ok(())
}

/// `GET /distribution/{name}/json`: the registry's descriptor of `name` (its manifest or
/// manifest list) and the platforms it serves, as dockerd answers it.
pub async fn distribution_inspect(
    engine: &Arc<Engine>,
    name: &str,
    creds: Option<wharf_registry::Credentials>,
) -> Result<Value, ApiError> {
    use http_body_util::BodyExt;
    let r =
        wharf_image::reference::parse(name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let target = r
        .digest
        .clone()
        .or(r.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let reg = Registry::connect(
        &r.domain,
        engine.live().is_insecure_registry(&r.domain),
        creds,
        &r.path,
        "pull",
    )
    .await
    .map_err(reg_error)?;
    let (bytes, media, digest) = reg.manifest(&r.path, &target).await.map_err(reg_error)?;
    let m: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::internal(format!("invalid manifest for {name}: {e}")))?;
    let media = m["mediaType"].as_str().map(String::from).unwrap_or(media);
    let platform = |p: &Value| {
        let mut o = json!({"architecture": p["architecture"], "os": p["os"]});
        for k in ["variant", "os.version", "os.features"] {
            if !p[k].is_null() {
                o[k] = p[k].clone();
            }
        }
        o
    };
    let platforms: Vec<Value> = if let Some(list) = m["manifests"].as_array() {
        list.iter()
            .filter(|d| !d["platform"].is_null())
            .map(|d| platform(&d["platform"]))
            .collect()
    } else {
        let cfg = m["config"]["digest"]
            .as_str()
            .ok_or_else(|| ApiError::internal(format!("{name}: manifest without config")))?;
        let body = reg
            .blob(&r.path, cfg)
            .await
            .map_err(reg_error)?
            .collect()
            .await
            .map_err(|e| ApiError::internal(format!("{name}: reading its config: {e}")))?
            .to_bytes();
        let c: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::internal(format!("{name}: invalid image config: {e}")))?;
        vec![platform(&c)]
    };
    Ok(json!({
        "Descriptor": {"mediaType": media, "digest": digest, "size": bytes.len()},
        "Platforms": platforms,
    }))
}

/// Pulls one tag or digest of `r` from `reg`: Docker's lines from "Pulling from" to
/// "Digest:". Whether the reference now names another image than before.
async fn pull_one(
    engine: &Arc<Engine>,
    reg: &Arc<Registry>,
    r: &wharf_image::reference::Reference,
    platform: Option<&wharf_image::platform::Platform>,
    tx: &mpsc::Sender<Bytes>,
) -> Result<bool, ApiError> {
    let reference = r.familiar_string();
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
    let (mut bytes, _, mut digest) = reg.manifest(&r.path, &target).await.map_err(|e| {
        if e.is_not_found() {
            ApiError::not_found(format!(
                "manifest for {reference} not found: manifest unknown: check the tag, or \
                 whether the repository requires 'docker login' ({e})"
            ))
        } else {
            reg_error(e)
        }
    })?;
    let parse = |b: &[u8]| {
        serde_json::from_slice::<Value>(b)
            .map_err(|e| ApiError::internal(format!("invalid manifest for {reference}: {e}")))
    };
    let mut m = parse(&bytes)?;
    if m["manifests"].is_array() {
        // The image store's selection, as for `docker load` of an index.
        let want = platform
            .cloned()
            .unwrap_or_else(wharf_image::platform::Platform::host);
        let d = index_entry(&m, &want, &reference)?;
        (bytes, _, digest) = reg.manifest(&r.path, &d).await.map_err(reg_error)?;
        m = parse(&bytes)?;
    }
    let (cfg_digest, layers) = manifest_parts(&m, &reference)?;
    let tmp = engine
        .images
        .layers()
        .root_tmp()
        .join(format!("pull-{}", crate::names::new_id()));
    tokio::fs::create_dir_all(&tmp)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let result = pull_into(engine, reg, r, &cfg_digest, &layers, platform, &tmp, tx).await;
    let _ = tokio::fs::remove_dir_all(&tmp).await;
    let (id, was) = result?;
    let (images, iid, name, d) = (
        engine.images.clone(),
        id.clone(),
        r.to_string(),
        digest.to_string(),
    );
    // What the image is in the registry (RepoDigests; `run name@digest` finds it).
    let recorded = tokio::task::spawn_blocking(move || images.add_digest(&iid, &name, &d))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if let Err(e) = recorded {
        tracing::warn!("recording the digest of {}: {e}", r.familiar_string());
    }
    say(tx, json!({"status": format!("Digest: {digest}")})).await;
    Ok(was.as_deref() != Some(id.as_str()))
}

/// The digest of the entry of the image index (manifest list) `m` for `want`.
pub fn index_entry(m: &Value, want: &Platform, reference: &str) -> Result<String, ApiError> {
    let list = m["manifests"].as_array().cloned().unwrap_or_default();
    let e = wharf_image::platform::select(&list, want).map_err(|e| {
        ApiError::not_found(format!(
            "no matching manifest for {want} in the manifest list entries of {reference} \
             ({e}): choose one of them with --platform"
        ))
    })?;
    match e["digest"].as_str() {
        Some(d) if valid_digest(d) => Ok(d.to_string()),
        Some(d) => Err(ApiError::internal(format!(
            "{reference}: a list entry's digest {d:?} is not a sha256 digest"
        ))),
        None => Err(ApiError::internal(format!(
            "{reference}: a list entry has no digest"
        ))),
    }
}

/// A layer as a manifest lists it: digest, size, media type.
pub type ManifestLayer = (String, u64, String);

/// A manifest's config digest and its layers, every digest checked to be `sha256:<64 hex>`
/// (the registry's answer is untrusted).
pub fn manifest_parts(
    m: &Value,
    reference: &str,
) -> Result<(String, Vec<ManifestLayer>), ApiError> {
    if m["schemaVersion"] == 1 {
        return Err(ApiError::bad_request(format!(
            "{reference}: schema 1 manifests are not supported"
        )));
    }
    let checked = |what: &str, d: Option<&str>| match d {
        Some(d) if valid_digest(d) => Ok(d.to_string()),
        Some(d) => Err(ApiError::internal(format!(
            "invalid manifest for {reference}: {what} digest {d:?} is not a sha256 digest"
        ))),
        None => Err(ApiError::internal(format!(
            "invalid manifest for {reference}: {what} without a digest"
        ))),
    };
    let cfg_digest = match m["config"]["digest"].as_str() {
        None => return Err(ApiError::internal("manifest without config")),
        d => checked("config", d)?,
    };
    let mut layers = Vec::new();
    for l in m["layers"].as_array().into_iter().flatten() {
        layers.push((
            checked("layer", l["digest"].as_str())?,
            l["size"].as_u64().unwrap_or(0),
            l["mediaType"].as_str().unwrap_or_default().to_string(),
        ));
    }
    Ok((cfg_digest, layers))
}

#[allow(clippy::too_many_arguments)]
async fn pull_into(
    engine: &Arc<Engine>,
    reg: &Arc<Registry>,
    r: &wharf_image::reference::Reference,
    cfg_digest: &str,
    layers: &[(String, u64, String)],
    platform: Option<&wharf_image::platform::Platform>,
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
    if let Some(want) = platform {
        let (os, arch) = (
            cfg["os"].as_str().unwrap_or("linux"),
            cfg["architecture"].as_str().unwrap_or_default(),
        );
        let have =
            wharf_image::platform::Platform::parse(&format!("{os}/{arch}")).map_err(image_error)?;
        if have.os != want.os || have.architecture != want.architecture {
            return Err(ApiError::not_found(format!(
                "image with reference {} was found but its platform ({have}) does not match \
                 the specified platform ({want}): pull it without --platform, or push an \
                 image for {want}",
                r.familiar_string()
            )));
        }
    }
    let diff_ids: Vec<String> = cfg["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if let Some(bad) = diff_ids.iter().find(|d| !wharf_image::digest::is_sha256(d)) {
        return Err(ApiError::internal(format!(
            "{r}: the image config's diff id {bad:?} is not sha256:<64 hex digits>"
        )));
    }
    if diff_ids.len() != layers.len() {
        return Err(ApiError::internal(format!(
            "{r}: the config lists {} layers, the manifest {}",
            diff_ids.len(),
            layers.len()
        )));
    }
    // Every layer's chain id is known from the config: on overlay, where layers are
    // independent directories, they download and extract concurrently.
    let mut chains = Vec::new();
    let mut parent: Option<String> = None;
    for d in &diff_ids {
        let c = wharf_image::layers::chain_id(parent.as_deref(), d);
        chains.push((parent.clone(), c.clone()));
        parent = Some(c);
    }
    let parallel = engine.images.layers().is_overlay();
    // `max-concurrent-downloads` at once (dockerd's default 3).
    let sem = Arc::new(tokio::sync::Semaphore::new(if parallel {
        engine.live().max_concurrent_downloads.max(1)
    } else {
        1
    }));
    // Every layer of the image, present or fetched, is held from here until the image is
    // written: a concurrent rmi's collection must not take one away in between.
    let lease = Arc::new(engine.images.layers().lease());
    let mut jobs = Vec::new();
    for (((digest, size, _), diff_id), (parent, chain)) in layers.iter().zip(&diff_ids).zip(chains)
    {
        let short = wharf_image::digest::short(digest).to_string();
        lease.hold(&chain);
        if engine.images.layers().exists(&chain) {
            say(
                tx,
                json!({"status": "Already exists", "progressDetail": {}, "id": short}),
            )
            .await;
            continue;
        }
        say(
            tx,
            json!({"status": "Pulling fs layer", "progressDetail": {}, "id": short}),
        )
        .await;
        let job = LayerJob {
            engine: engine.clone(),
            reg: reg.clone(),
            repo: r.path.clone(),
            digest: digest.clone(),
            size: *size,
            diff_id: diff_id.clone(),
            parent,
            chain,
            short,
            tx: tx.clone(),
            lease: lease.clone(),
        };
        let sem = sem.clone();
        jobs.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            job.run().await
        }));
    }
    let mut first_err = None;
    for j in jobs {
        let r = j
            .await
            .map_err(|e| ApiError::internal(e.to_string()))
            .and_then(|r| r);
        if let (Err(e), None) = (r, &first_err) {
            first_err = Some(e);
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    // Every layer is known to be in this repository now: a push of it to another repository
    // of the registry can mount it from here.
    for ((digest, size, media), diff_id) in layers.iter().zip(&diff_ids) {
        engine.blob_sources.note(
            diff_id,
            crate::blobsources::BlobSource {
                digest: digest.clone(),
                media_type: media.clone(),
                size: *size,
                registry: reg.host.clone(),
                repository: r.path.clone(),
            },
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_digests_from_the_registry_are_checked() {
        // A manifest's layer digest went unchecked into `digest[..12]` (the progress id), so
        // a registry answering `"digest": "x"` panicked the pull (found writing
        // fuzz/fuzz_targets/registry.rs, which covers manifest_parts and index_entry).
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let good = json!({"schemaVersion": 2, "config": {"digest": d('a')},
            "layers": [{"digest": d('b'), "size": 3, "mediaType": "m"}]});
        let (cfg, layers) = manifest_parts(&good, "x").unwrap();
        assert_eq!(cfg, d('a'));
        assert_eq!(layers, vec![(d('b'), 3, "m".to_string())]);
        for bad in [
            json!({"config": {"digest": d('a')}, "layers": [{"digest": "x"}]}),
            json!({"config": {"digest": d('a')}, "layers": [{"size": 1}]}),
            json!({"config": {"digest": "sha256:../../etc"}, "layers": []}),
            json!({"config": {}, "layers": []}),
            json!({"schemaVersion": 1}),
        ] {
            assert!(manifest_parts(&bad, "x").is_err(), "{bad}");
        }
        let want = Platform::parse("linux/amd64").unwrap();
        let index = |digest: &str| {
            json!({"manifests": [{"digest": digest,
                "platform": {"os": "linux", "architecture": "amd64"}}]})
        };
        assert_eq!(index_entry(&index(&d('c')), &want, "x").unwrap(), d('c'));
        assert!(index_entry(&index("sha256:short"), &want, "x").is_err());
        assert_eq!(
            index_entry(
                &index(&d('c')),
                &Platform::parse("linux/s390x").unwrap(),
                "x"
            )
            .unwrap_err()
            .status,
            404
        );
    }
}
