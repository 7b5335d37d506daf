//! `wharf build` and `wharf builder prune`: the docker CLI's classic builder client.
//!
//! - the context: a directory walked with its `.dockerignore` (wharf-build's matcher),
//!   always with the Dockerfile and `.dockerignore` (the daemon drops them when excluded),
//!   tarred on a thread into the request body as it is read (never whole in memory); a
//!   Dockerfile outside the context (or `-f -`) goes in under `.dockerfile.<hex>`, which
//!   the context's `.dockerignore` gains, as the docker CLI does; `-` reads a tar (or a
//!   Dockerfile) from stdin;
//! - against wharfd, a context directory is synced instead of sent whole: its stat listing
//!   (`POST /build/context`), then a tar of only the entries wharfd asks for
//!   (`wharf_build::synced`); `WHARF_BUILD_CONTEXT=tar` sends the classic tar;
//! - the request: `POST /build` with the classic query and `X-Registry-Config` (every
//!   credential of the client config, for FROM images of private registries);
//! - the output: plain (docker's classic text, `Sending build context ...` first) when not
//!   a terminal or with `--progress plain`, else a live view of the steps; `-q` prints only
//!   the id. A failed build exits with the daemon's error code and message.

use super::{status, Ctx};
use crate::cli::{BuildArgs, BuilderPruneArgs};
use crate::client::{enc, ChannelBody, ReqBody};
use crate::format::human::human_size;
use crate::opts::parse;
use anyhow::{bail, Context as _, Result};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use wharf_build::dockerignore::Matcher;

/// The Dockerfile's name when none is given.
const DEFAULT_DOCKERFILE: &str = "Dockerfile";

/// What is sent as the build context.
enum Source {
    /// A local directory, filtered by its ignore file; `extra` is a Dockerfile from outside
    /// it (or stdin), added under a random name.
    Dir {
        dir: PathBuf,
        matcher: Matcher,
        rel_dockerfile: String,
        extra: Option<Vec<u8>>,
    },
    /// A tar (maybe compressed) on stdin, `head` its first bytes, already read.
    StdinTar { head: Vec<u8> },
    /// A Dockerfile on stdin, sent alone.
    StdinDockerfile { text: Vec<u8> },
    /// A URL or git repository the daemon would fetch.
    Remote(String),
    /// Of a context synced with wharfd: the paths of `dir` and the generated entries the
    /// daemon asked for.
    Delta {
        dir: PathBuf,
        paths: Vec<String>,
        extra: Vec<(String, Vec<u8>)>,
    },
}

fn prepare_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("unable to prepare context: {e}")
}

fn is_remote(s: &str) -> bool {
    ["http://", "https://", "git://", "github.com/", "git@"]
        .iter()
        .any(|p| s.starts_with(p))
}

/// docker's `IsArchive`: a compression magic number, or a valid tar header.
fn is_archive(head: &[u8]) -> bool {
    const MAGIC: [&[u8]; 4] = [
        &[0x1f, 0x8b],
        b"BZh",
        &[0xfd, b'7', b'z', b'X', b'Z', 0x00],
        &[0x28, 0xb5, 0x2f, 0xfd],
    ];
    if MAGIC.iter().any(|m| head.starts_with(m)) {
        return true;
    }
    if head.len() < 512 {
        return false;
    }
    let field = &head[148..156];
    let text: String = field
        .iter()
        .take_while(|&&b| b != 0 && b != b' ')
        .map(|&b| b as char)
        .collect();
    let Ok(want) = u32::from_str_radix(text.trim(), 8) else {
        return false;
    };
    let sum: u32 = head[..512]
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as u32
            }
        })
        .sum();
    sum == want
}

/// Reads up to `n` bytes of stdin (fewer at its end).
fn read_stdin_head(n: usize) -> Result<Vec<u8>> {
    let mut head = vec![0u8; n];
    let mut got = 0;
    let mut inp = std::io::stdin();
    while got < n {
        match inp.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => bail!("failed to peek context header from STDIN: {e}"),
        }
    }
    head.truncate(got);
    Ok(head)
}

fn read_all_stdin() -> Result<Vec<u8>> {
    let mut b = Vec::new();
    std::io::stdin()
        .read_to_end(&mut b)
        .context("reading the Dockerfile from stdin")?;
    Ok(b)
}

/// The absolute form of `p` (relative to the working directory), symlinks resolved: Go's
/// `filepath.EvalSymlinks(filepath.Abs(p))` and its error text.
fn eval_symlinks(p: &Path) -> std::result::Result<PathBuf, String> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| e.to_string())?.join(p)
    };
    std::fs::canonicalize(&abs).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        format!("lstat {}: {why}", abs.display())
    })
}

/// The build's context and the Dockerfile's name in it, as docker's `runBuild` finds them.
fn prepare(a: &BuildArgs) -> Result<Source> {
    let file = a.file.as_deref().filter(|f| !f.is_empty());
    if a.context == "-" {
        if file == Some("-") {
            bail!("invalid argument: can't use stdin for both build context and dockerfile");
        }
        let head = read_stdin_head(512)?;
        if is_archive(&head) {
            return Ok(Source::StdinTar { head });
        }
        let mut text = head;
        text.extend(read_all_stdin()?);
        return Ok(Source::StdinDockerfile { text });
    }
    let given = Path::new(&a.context);
    if std::fs::metadata(given).is_err() {
        if is_remote(&a.context) {
            return Ok(Source::Remote(a.context.clone()));
        }
        bail!("unable to prepare context: path {:?} not found", a.context);
    }
    let dir = eval_symlinks(given)
        .map_err(|e| prepare_error(format!("unable to evaluate symlinks in context path: {e}")))?;
    if !dir.is_dir() {
        return Err(prepare_error(format!(
            "context must be a directory: {}",
            dir.display()
        )));
    }
    let mut extra = None;
    let rel_dockerfile = if file == Some("-") {
        extra = Some(read_all_stdin()?);
        String::new()
    } else {
        let df = match file {
            Some(f) => PathBuf::from(f),
            None => {
                let d = dir.join(DEFAULT_DOCKERFILE);
                let lower = dir.join(DEFAULT_DOCKERFILE.to_lowercase());
                if std::fs::symlink_metadata(&d).is_err() && lower.exists() {
                    lower
                } else {
                    d
                }
            }
        };
        let abs = eval_symlinks(&df).map_err(|e| {
            prepare_error(format!(
                "unable to evaluate symlinks in Dockerfile path: {e}"
            ))
        })?;
        match abs.strip_prefix(&dir) {
            Ok(rel) => rel.to_string_lossy().into_owned(),
            Err(_) => {
                let text = std::fs::read(&abs)
                    .map_err(|e| anyhow::anyhow!("unable to open Dockerfile: {e}"))?;
                extra = Some(text);
                String::new()
            }
        }
    };
    let ignore_for = if rel_dockerfile.is_empty() {
        DEFAULT_DOCKERFILE
    } else {
        &rel_dockerfile
    };
    let matcher = Matcher::for_context(&dir, ignore_for).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Source::Dir {
        dir,
        matcher,
        rel_dockerfile,
        extra,
    })
}

/// A writer that feeds a request body through a channel, in chunks, counting the bytes.
struct ChanWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
    total: u64,
}

const CHUNK: usize = 64 * 1024;

impl ChanWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let b = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.total += b.len() as u64;
        self.tx.blocking_send(Ok(b)).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the daemon stopped reading the build context",
            )
        })
    }
}

impl Write for ChanWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// 20 random hex digits (the docker CLI's `.dockerfile.<hex>`).
fn random_hex() -> String {
    let mut b = [0u8; 10];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn file_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o600);
    h.set_size(size);
    h.set_mtime(now_secs());
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// The context's paths as the tar has them: what the matcher lets through, plus the
/// Dockerfile and `.dockerignore` (without the latter when `extra` brings its own).
fn context_paths(
    dir: &Path,
    matcher: &Matcher,
    rel_dockerfile: &str,
    extra: bool,
) -> Result<Vec<String>> {
    let mut paths = matcher.walk(dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    for keep in [rel_dockerfile, ".dockerignore"] {
        if !keep.is_empty()
            && !paths.iter().any(|p| p == keep)
            && std::fs::symlink_metadata(dir.join(keep)).is_ok()
        {
            paths.push(keep.to_string());
        }
    }
    if extra {
        paths.retain(|p| p != ".dockerignore");
    }
    Ok(paths)
}

/// The entries a Dockerfile from outside the context adds: itself under `name`, and the
/// context's `.dockerignore` naming it.
fn extra_entries(dir: &Path, name: &str, text: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut ignore = match std::fs::read(dir.join(".dockerignore")) {
        Ok(b) => b,
        Err(_) => b".dockerignore".to_vec(),
    };
    ignore.extend_from_slice(format!("\n{name}\n").as_bytes());
    vec![
        (name.to_string(), text.to_vec()),
        (".dockerignore".into(), ignore),
    ]
}

/// Writes the tar of `paths` of `dir` and the generated `extra` entries.
fn write_paths_tar<W: Write>(
    out: W,
    dir: &Path,
    paths: &[String],
    extra: &[(String, Vec<u8>)],
) -> Result<W> {
    let mut tb = tar::Builder::new(out);
    tb.follow_symlinks(false);
    let mut links: HashMap<(u64, u64), String> = HashMap::new();
    for rel in paths {
        append_path(&mut tb, dir, rel, &mut links)
            .map_err(|e| anyhow::anyhow!("error checking context: {e:#}"))?;
    }
    for (name, data) in extra {
        let mut h = file_header(data.len() as u64);
        tb.append_data(&mut h, name, data.as_slice())?;
    }
    tb.finish()?;
    Ok(tb.into_inner()?)
}

/// Writes the context directory's tar: what the matcher lets through, plus the Dockerfile
/// and `.dockerignore`; with `extra`, the Dockerfile under `extra_name` and `.dockerignore`
/// naming it.
fn write_dir_tar<W: Write>(
    out: W,
    dir: &Path,
    matcher: &Matcher,
    rel_dockerfile: &str,
    extra: Option<(&str, &[u8])>,
) -> Result<W> {
    let paths = context_paths(dir, matcher, rel_dockerfile, extra.is_some())?;
    let extra = extra
        .map(|(name, text)| extra_entries(dir, name, text))
        .unwrap_or_default();
    write_paths_tar(out, dir, &paths, &extra)
}

fn append_path<W: Write>(
    tb: &mut tar::Builder<W>,
    dir: &Path,
    rel: &str,
    links: &mut HashMap<(u64, u64), String>,
) -> Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let path = dir.join(rel);
    let meta = std::fs::symlink_metadata(&path)
        .map_err(|e| anyhow::anyhow!("can't stat '{}': {e}", path.display()))?;
    let ft = meta.file_type();
    if ft.is_socket() {
        return Ok(());
    }
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
    // Permission bits only, as Go's archive/tar writes them (the type is the entry's).
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(0);
    h.set_gid(0);
    if ft.is_dir() {
        h.set_size(0);
        tb.append_data(&mut h, format!("{rel}/"), std::io::empty())?;
    } else if ft.is_symlink() {
        let target = std::fs::read_link(&path)?;
        h.set_size(0);
        tb.append_link(&mut h, rel, target)?;
    } else if ft.is_file() {
        if meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = links.get(&key) {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                tb.append_link(&mut h, rel, first)?;
                return Ok(());
            }
            links.insert(key, rel.to_string());
        }
        let f = std::fs::File::open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                anyhow::anyhow!("no permission to read from '{}'", path.display())
            } else {
                anyhow::anyhow!("can't open '{}': {e}", path.display())
            }
        })?;
        tb.append_data(&mut h, rel, f)?;
    } else {
        // Devices and fifos: a header only.
        h.set_size(0);
        tb.append_data(&mut h, rel, std::io::empty())?;
    }
    Ok(())
}

/// How the body's producer ended: the bytes sent, or why it failed.
type Produced = std::result::Result<u64, String>;

/// Starts the thread that produces the context; returns the body, the Dockerfile name for
/// the query, and where its outcome arrives.
fn start_context(src: Source, compress: bool) -> (ReqBody, String, oneshot::Receiver<Produced>) {
    let (tx, rx) = mpsc::channel(8);
    let (done_tx, done_rx) = oneshot::channel();
    let w = ChanWriter {
        tx,
        buf: Vec::with_capacity(CHUNK),
        total: 0,
    };
    let mut dockerfile = String::new();
    type Job = Box<dyn FnOnce(&mut ChanWriter) -> Result<()> + Send>;
    let job: Job = match src {
        Source::Dir {
            dir,
            matcher,
            rel_dockerfile,
            extra,
        } => {
            let extra_name = extra
                .as_ref()
                .map(|_| format!(".dockerfile.{}", random_hex()));
            dockerfile = extra_name.clone().unwrap_or_else(|| rel_dockerfile.clone());
            Box::new(move |w| {
                let extra = extra_name.as_deref().zip(extra.as_deref());
                if compress {
                    let gz = flate2::write::GzEncoder::new(w, flate2::Compression::default());
                    write_dir_tar(gz, &dir, &matcher, &rel_dockerfile, extra)?.finish()?;
                } else {
                    write_dir_tar(w, &dir, &matcher, &rel_dockerfile, extra)?;
                }
                Ok(())
            })
        }
        Source::StdinTar { head } => Box::new(move |w| {
            w.write_all(&head)?;
            std::io::copy(&mut std::io::stdin(), w).context("reading the context from stdin")?;
            Ok(())
        }),
        Source::StdinDockerfile { text } => {
            // docker names it so whatever -f said.
            dockerfile = DEFAULT_DOCKERFILE.to_string();
            Box::new(move |w| {
                let mut tb = tar::Builder::new(w);
                let mut h = file_header(text.len() as u64);
                h.set_mode(0o644);
                tb.append_data(&mut h, DEFAULT_DOCKERFILE, text.as_slice())?;
                tb.finish()?;
                Ok(())
            })
        }
        Source::Delta { dir, paths, extra } => Box::new(move |w| {
            if compress {
                let gz = flate2::write::GzEncoder::new(w, flate2::Compression::default());
                write_paths_tar(gz, &dir, &paths, &extra)?.finish()?;
            } else {
                write_paths_tar(w, &dir, &paths, &extra)?;
            }
            Ok(())
        }),
        Source::Remote(_) => Box::new(|_| Ok(())),
    };
    std::thread::spawn(move || {
        let mut w = w;
        let r = job(&mut w).and_then(|()| Ok(w.flush()?));
        match r {
            // The outcome is known before the body ends, so before the daemon answers.
            Ok(()) => {
                let _ = done_tx.send(Ok(w.total));
            }
            Err(e) => {
                let why = format!("{e:#}");
                // Fails the upload: a cut tar must not look like a whole context.
                let _ = w.tx.blocking_send(Err(std::io::Error::other(why.clone())));
                let _ = done_tx.send(Err(why));
            }
        }
        drop(w);
    });
    (BodyExt::boxed(ChannelBody::new(rx)), dockerfile, done_rx)
}

/// docker's `ValidateEnv` for `--build-arg`: `k=v` as is, `k` alone from the environment
/// (left out when the environment does not have it).
fn build_args(list: &[String]) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for a in list {
        match a.split_once('=') {
            Some((k, v)) => {
                m.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(a) {
                    m.insert(a.clone(), v);
                }
            }
        }
    }
    m
}

/// The `POST /build` query.
fn query(a: &BuildArgs, dockerfile: &str, remote: Option<&str>) -> Result<String> {
    let mut q = vec!["version=1".to_string()];
    let mut add = |k: &str, v: &str| q.push(format!("{k}={}", enc(v)));
    for t in &a.tag {
        add("t", t);
    }
    if let Some(r) = remote {
        add("remote", r);
    }
    if !dockerfile.is_empty() {
        add("dockerfile", dockerfile);
    }
    if let Some(t) = a.target.as_deref().filter(|t| !t.is_empty()) {
        add("target", t);
    }
    if a.no_cache {
        add("nocache", "1");
    }
    if a.pull {
        add("pull", "1");
    }
    if a.quiet {
        add("q", "1");
    }
    if a.force_rm {
        add("forcerm", "1");
    }
    if !a.rm {
        add("rm", "0");
    }
    if !a.network.is_empty() && a.network != "default" {
        add("networkmode", &a.network);
    }
    for h in &a.add_host {
        add("extrahosts", h);
    }
    if let Some(s) = &a.shm_size {
        add("shmsize", &parse::ram_in_bytes(s)?.to_string());
    }
    if let Some(m) = &a.memory {
        add("memory", &parse::ram_in_bytes(m)?.to_string());
    }
    if let Some(m) = &a.memory_swap {
        add("memswap", &parse::memory_swap(m)?.to_string());
    }
    for (k, v) in [
        ("cpushares", a.cpu_shares),
        ("cpuperiod", a.cpu_period),
        ("cpuquota", a.cpu_quota),
    ] {
        if let Some(v) = v {
            add(k, &v.to_string());
        }
    }
    for (k, v) in [
        ("cpusetcpus", &a.cpuset_cpus),
        ("cpusetmems", &a.cpuset_mems),
    ] {
        if let Some(v) = v {
            add(k, v);
        }
    }
    if let Some(p) = a.platform.as_deref().filter(|p| !p.is_empty()) {
        add("platform", p);
    }
    add(
        "buildargs",
        &serde_json::to_string(&build_args(&a.build_arg))?,
    );
    let labels: BTreeMap<String, String> = a
        .label
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect();
    add("labels", &serde_json::to_string(&labels)?);
    add("cachefrom", &serde_json::to_string(&a.cache_from)?);
    Ok(format!("/build?{}", q.join("&")))
}

/// `X-Registry-Config`: every credential the client config knows, by registry (docker's
/// `GetAllCredentials`; the ones that cannot be read are left out, as docker does).
pub fn registry_config(config_dir: &Path) -> String {
    use base64::Engine as _;
    let mut all = BTreeMap::new();
    if let Ok(cfg) = crate::credentials::ConfigFile::load(config_dir) {
        let mut keys: Vec<String> = cfg.auths().map(|(k, _)| k.clone()).collect();
        keys.extend(cfg.cred_helper_keys());
        for k in keys {
            if let Ok(Some(a)) = crate::credentials::store::get(&cfg, &k) {
                all.insert(k, a);
            }
        }
    }
    let json = serde_json::to_vec(&all).unwrap_or_else(|_| b"{}".to_vec());
    base64::engine::general_purpose::URL_SAFE.encode(json)
}

/// The error a build's stream ended with: docker's `StatusError` (its code, 1 when none).
fn stream_error(jm: &Value) -> Option<anyhow::Error> {
    let detail = jm.get("errorDetail");
    let msg = detail
        .and_then(|d| d["message"].as_str())
        .or_else(|| jm["error"].as_str())?;
    let code = detail
        .and_then(|d| d["code"].as_i64())
        .filter(|c| *c != 0)
        .unwrap_or(1);
    Some(status(code as i32, msg))
}

/// docker's `Sending build context to Docker daemon` line: the last state of its upload
/// progress (which ends in `\r`), then the CLI's own `\r\n`, byte for byte.
/// `--secret` values (buildx's forms: `id=ID[,src=PATH|source=PATH][,env=VAR][,type=file|env]`;
/// a bare `id=ID` reads the variable ID if set, else the file ID) as the secrets header:
/// base64 of a JSON object of id → base64 value.
fn secrets_header(specs: &[String]) -> Result<String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = serde_json::Map::new();
    for spec in specs {
        let (mut id, mut src, mut env, mut kind) = (None, None, None, None);
        for part in spec.split(',') {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            match k.trim() {
                "id" => id = Some(v.to_string()),
                "src" | "source" => src = Some(v.to_string()),
                "env" => env = Some(v.to_string()),
                "type" => kind = Some(v.to_string()),
                other => bail!(
                    "invalid --secret {spec:?}: unknown key {other:?} (use id=ID,src=PATH or id=ID,env=VAR)"
                ),
            }
        }
        let id = id
            .or_else(|| {
                src.as_deref().or(env.as_deref()).map(|p| {
                    Path::new(p)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                })
            })
            .filter(|i| !i.is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!("invalid --secret {spec:?}: no id (use id=ID,src=PATH)")
            })?;
        let value = match (kind.as_deref(), src, env) {
            (Some("env"), Some(var), None) | (_, None, Some(var)) => std::env::var_os(&var)
                .map(|v| v.into_encoded_bytes())
                .ok_or_else(|| anyhow::anyhow!("--secret {id}: the variable {var} is not set"))?,
            (Some("file") | None, Some(path), None) => {
                std::fs::read(&path).with_context(|| format!("--secret {id}: reading {path}"))?
            }
            (None, None, None) => match std::env::var_os(&id) {
                Some(v) => v.into_encoded_bytes(),
                None => std::fs::read(&id)
                    .with_context(|| format!("--secret {id}: no variable {id} and no file {id}"))?,
            },
            _ => bail!("invalid --secret {spec:?}: give one of src= and env="),
        };
        out.insert(id, Value::String(b64.encode(value)));
    }
    Ok(b64.encode(Value::Object(out).to_string()))
}

fn sending_line(total: u64) -> String {
    if total == 0 {
        return "Sending build context to Docker daemon \n\r\n".into();
    }
    format!(
        "Sending build context to Docker daemon {:>8}\r\r\n",
        human_size(total as f64)
    )
}

/// The key of an entry's stat: what must stay the same for wharfd to reuse what it kept
/// (`wharf_build::synced`; the ctime catches a content change whose mtime was set back).
fn stat_key(m: &std::fs::Metadata, link: Option<&Path>) -> String {
    use std::os::unix::fs::MetadataExt;
    let ns = |s: i64, n: i64| s as i128 * 1_000_000_000 + n as i128;
    format!(
        "{:o}:{}:{}:{}:{}:{}:{}:{}:{}:{}",
        m.mode(),
        m.size(),
        ns(m.mtime(), m.mtime_nsec()),
        ns(m.ctime(), m.ctime_nsec()),
        m.dev(),
        m.ino(),
        m.uid(),
        m.gid(),
        m.rdev(),
        link.map(|l| l.to_string_lossy()).unwrap_or_default()
    )
}

/// The id under which wharfd keeps a context directory: from this host's name and the
/// directory's absolute path (nothing is written in the user's directory).
fn context_id(dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut h = Sha256::new();
    h.update(b"wharf build context\0");
    h.update(host.trim().as_bytes());
    h.update(b"\0");
    h.update(dir.as_os_str().as_encoded_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The listing of a context directory: its root's key and each entry's path and stat key
/// (the generated `extra` entries with an empty key: always sent).
fn listing(dir: &Path, paths: &mut Vec<String>, extra: &[(String, Vec<u8>)]) -> Result<Value> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let root = std::fs::metadata(dir).with_context(|| format!("can't stat {}", dir.display()))?;
    let mut entries = Vec::with_capacity(paths.len() + extra.len());
    let mut kept = Vec::with_capacity(paths.len());
    for rel in paths.drain(..) {
        let path = dir.join(&rel);
        let m = std::fs::symlink_metadata(&path).map_err(|e| {
            anyhow::anyhow!(
                "error checking context: can't stat '{}': {e}",
                path.display()
            )
        })?;
        if m.file_type().is_socket() {
            continue;
        }
        let link = if m.file_type().is_symlink() {
            Some(std::fs::read_link(&path)?)
        } else {
            None
        };
        entries.push(Value::from(vec![
            Value::from(rel.as_str()),
            Value::from(stat_key(&m, link.as_deref())),
        ]));
        kept.push(rel);
    }
    *paths = kept;
    for (name, _) in extra {
        entries.push(Value::from(vec![
            Value::from(name.as_str()),
            Value::from(""),
        ]));
    }
    Ok(serde_json::json!({
        "root": format!("{}:{}", root.dev(), root.ino()),
        "entries": entries,
    }))
}

/// With wharfd, a context directory is synced instead of sent whole: its listing first,
/// then only the entries wharfd asks for. The source to send, and the token and Dockerfile
/// name of the build when synced (`WHARF_BUILD_CONTEXT=tar` sends the whole tar).
async fn sync_context(
    ctx: &Ctx,
    src: Source,
    wharfd: bool,
) -> Result<(Source, Option<(String, String)>)> {
    let forced_tar = std::env::var("WHARF_BUILD_CONTEXT").is_ok_and(|v| v == "tar");
    let Source::Dir {
        dir,
        matcher,
        rel_dockerfile,
        extra,
    } = src
    else {
        return Ok((src, None));
    };
    if !wharfd || forced_tar {
        let src = Source::Dir {
            dir,
            matcher,
            rel_dockerfile,
            extra,
        };
        return Ok((src, None));
    }
    let extra_name = extra
        .as_ref()
        .map(|_| format!(".dockerfile.{}", random_hex()));
    let dockerfile = extra_name.clone().unwrap_or_else(|| rel_dockerfile.clone());
    let (dir, paths, extra, list) = tokio::task::spawn_blocking(move || -> Result<_> {
        let mut paths = context_paths(&dir, &matcher, &rel_dockerfile, extra.is_some())?;
        let extra = match (&extra_name, &extra) {
            (Some(n), Some(t)) => extra_entries(&dir, n, t),
            _ => Vec::new(),
        };
        let list = listing(&dir, &mut paths, &extra)?;
        Ok((dir, paths, extra, list))
    })
    .await??;
    let id = context_id(&dir);
    let answer = ctx
        .client
        .post_json(&format!("/build/context?id={id}"), Some(&list))
        .await?;
    drop(list);
    let token = answer["Token"]
        .as_str()
        .context("the daemon's answer to the context listing has no token")?
        .to_string();
    let mut need_paths = Vec::new();
    let mut need_extra = Vec::new();
    let mut extra: Vec<Option<(String, Vec<u8>)>> = extra.into_iter().map(Some).collect();
    for i in answer["Need"].as_array().into_iter().flatten() {
        let i = i.as_u64().context("a bad index in the daemon's answer")? as usize;
        if let Some(p) = paths.get(i) {
            need_paths.push(p.clone());
        } else if let Some(e) = extra.get_mut(i - paths.len()).and_then(Option::take) {
            need_extra.push(e);
        } else {
            bail!(
                "the daemon asked for entry {i} of a listing of {}",
                paths.len()
            );
        }
    }
    let src = Source::Delta {
        dir,
        paths: need_paths,
        extra: need_extra,
    };
    Ok((src, Some((token, dockerfile))))
}

pub async fn build(ctx: &Ctx, a: BuildArgs) -> Result<i32> {
    build_image(ctx, &a, true).await.map(|_| 0)
}

/// A build as `wharf build` makes it (the context read and filtered by its ignore file,
/// synced with wharfd or sent whole to `POST /build`, the stream shown), also used by `wharf
/// compose build`; the image id. `print_id`: with `-q`, print the id as docker does.
pub async fn build_image(ctx: &Ctx, a: &BuildArgs, print_id: bool) -> Result<String> {
    // wharfd or not: a daemon whose /version cannot be read gets the classic protocol.
    let version = match ctx.client.get_json("/version").await {
        Ok(v) => v,
        Err(e) if !a.secret.is_empty() => return Err(e),
        Err(_) => Value::Null,
    };
    let wharfd = version["Platform"]["Name"].as_str() == Some("wharf");
    let secrets = if a.secret.is_empty() {
        None
    } else {
        let v = &version;
        if !wharfd {
            bail!(
                "--secret needs wharfd: this daemon (version {}) serves the classic build API, \
                 which has no secrets (use `docker buildx build --secret` there)",
                v["Version"].as_str().unwrap_or("unknown")
            );
        }
        Some(secrets_header(&a.secret)?)
    };
    if let Some(f) = &a.iidfile {
        match std::fs::remove_file(f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow::Error::new(e).context("Removing image ID file")),
        }
    }
    let src = prepare(a)?;
    let remote = match &src {
        Source::Remote(r) => Some(r.clone()),
        _ => None,
    };
    let has_body = remote.is_none();
    let (src, synced) = sync_context(ctx, src, wharfd).await?;
    let (body, dockerfile, mut produced) = start_context(src, a.compress);
    let dockerfile = if let Some((_, d)) = &synced {
        d.clone()
    } else if dockerfile.is_empty() {
        a.file.clone().filter(|f| f != "-").unwrap_or_default()
    } else {
        dockerfile
    };
    let q = query(a, &dockerfile, remote.as_deref())?;
    let auth = registry_config(&ctx.config_dir);
    let live = !a.quiet
        && match a.progress.as_str() {
            "tty" => true,
            "plain" => false,
            _ => crate::tty::stdout_is_tty(),
        };
    let body = has_body.then_some((body, "application/x-tar"));
    let mut headers = vec![("X-Registry-Config", auth.as_str())];
    if let Some(s) = &secrets {
        headers.push(("X-Wharf-Build-Secrets", s.as_str()));
    }
    if let Some((token, _)) = &synced {
        headers.push(("X-Wharf-Build-Context", token.as_str()));
    }
    let resp = match ctx
        .client
        .request_with_headers("POST", &q, body, &headers)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            // A context that could not be read is the cause, not the connection it broke.
            // (It fails the upload first, then reports: wait for the report a little.)
            if let Ok(Ok(Err(why))) =
                tokio::time::timeout(Duration::from_secs(2), &mut produced).await
            {
                bail!("{why}");
            }
            return Err(e);
        }
    };
    let mut sent: Option<u64> = None;
    let mut before_stream = |out: &mut dyn Write| -> Result<()> {
        if sent.is_some() || !has_body {
            return Ok(());
        }
        if let Ok(r) = produced.try_recv() {
            let total = r.map_err(|e| anyhow::anyhow!(e))?;
            sent = Some(total);
            if !live {
                out.write_all(sending_line(total).as_bytes())?;
            }
        }
        Ok(())
    };
    let mut image_id = String::new();
    if a.quiet {
        // Everything is kept, shown only when the build fails (as docker).
        let mut buf: Vec<u8> = Vec::new();
        let mut text = String::new();
        let r = crate::stream::json_lines(resp.into_body(), |jm| {
            before_stream(&mut buf)?;
            if let Some(e) = stream_error(&jm) {
                return Err(e);
            }
            if let Some(s) = jm["stream"].as_str() {
                text.push_str(s);
            }
            Ok(true)
        })
        .await;
        if let Err(e) = r {
            let mut err = std::io::stderr();
            let _ = err.write_all(&buf);
            let _ = err.write_all(text.as_bytes());
            return Err(e);
        }
        if print_id {
            print!("{text}");
        }
        // With its newline, as docker's -q writes it to --iidfile.
        image_id = text;
    } else if live {
        image_id = live_view(resp.into_body()).await?;
    } else {
        let mut out = std::io::stdout();
        let mut aux = Vec::new();
        {
            let mut p = crate::stream::Progress::new(&mut out, false);
            crate::stream::json_lines(resp.into_body(), |jm| {
                before_stream(p.out())?;
                if let Some(e) = stream_error(&jm) {
                    return Err(e);
                }
                p.message(&jm)?;
                Ok(true)
            })
            .await?;
            aux.append(&mut p.aux);
        }
        if let Some(id) = aux.iter().rev().find_map(|v| v["ID"].as_str()) {
            image_id = id.to_string();
        }
    }
    if let Some(f) = &a.iidfile {
        if image_id.is_empty() {
            bail!("Server did not provide an image ID. Cannot write {f}");
        }
        std::fs::write(f, &image_id).with_context(|| format!("writing {f}"))?;
    }
    Ok(image_id.trim().to_string())
}

/// One step of the live view.
struct Step {
    title: String,
    start: Instant,
    cached: bool,
    /// The last lines of its output (and the line being written).
    tail: VecDeque<String>,
    partial: String,
}

const TAIL_LINES: usize = 6;

/// The terminal view of a build: a line per step with its time, the running step's last
/// lines of output under it, redrawn in place.
struct Live {
    out: Box<dyn Write + Send>,
    width: usize,
    step: Option<Step>,
    /// Lines of the redrawn region on the screen now.
    drawn: usize,
    /// Text of the stream not yet ending in a newline, outside any step.
    pending: String,
    /// Progress lines of pulls, by layer id.
    pulls: Vec<(String, String)>,
}

/// Drops terminal escape sequences (the daemon colours a step's stderr) and control
/// characters, and cuts the line to `width` columns.
fn screen_text(s: &str, width: usize) -> String {
    let mut o = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            }
            continue;
        }
        if c == '\t' {
            o.push_str("    ");
        } else if !c.is_control() {
            o.push(c);
        }
    }
    o.chars().take(width).collect()
}

fn elapsed(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl Live {
    fn new() -> Live {
        let width = crate::tty::size()
            .map(|(_, c)| c as usize)
            .filter(|c| *c > 20)
            .unwrap_or(80);
        Live::with(Box::new(std::io::stdout()), width)
    }

    fn with(out: Box<dyn Write + Send>, width: usize) -> Live {
        Live {
            out,
            width: width - 1,
            step: None,
            drawn: 0,
            pending: String::new(),
            pulls: Vec::new(),
        }
    }

    /// One message of the stream; the build's error ends the view (the failed step and
    /// its last lines stay) and is returned. `aux` ids go to `id`.
    fn message(&mut self, jm: &Value, id: &mut String) -> Result<()> {
        if let Some(e) = stream_error(jm) {
            self.finish_step(true)?;
            return Err(e);
        }
        if let Some(aux) = jm.get("aux") {
            if let Some(i) = aux["ID"].as_str() {
                *id = i.to_string();
            }
        } else if let Some(s) = jm["stream"].as_str() {
            self.stream(s)?;
        } else if jm.get("status").is_some() {
            self.status(jm)?;
        }
        self.draw()?;
        Ok(())
    }

    /// The stream is over: the last step's line stays.
    fn end(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.stream(&format!("{rest}\n"))?;
        }
        self.finish_step(false)
    }

    fn header(&self, s: &Step, mark: &str, status: &str) -> String {
        let right = status.to_string();
        let room = self.width.saturating_sub(right.len() + 1 + mark.len() + 1);
        let title = screen_text(&s.title, room);
        let pad = room.saturating_sub(title.chars().count());
        format!("{mark} {title}{} {right}", " ".repeat(pad))
    }

    fn erase(&mut self) -> std::io::Result<()> {
        if self.drawn > 0 {
            write!(self.out, "\x1b[{}F\x1b[J", self.drawn)?;
            self.drawn = 0;
        }
        Ok(())
    }

    fn draw(&mut self) -> std::io::Result<()> {
        self.erase()?;
        let Some(s) = &self.step else {
            return self.out.flush();
        };
        let mut lines = vec![format!(
            "\x1b[34m{}\x1b[0m",
            self.header(s, "=>", &elapsed(s.start.elapsed()))
        )];
        let mut tail: Vec<String> = s.tail.iter().cloned().collect();
        tail.extend(self.pulls.iter().map(|(_, l)| l.clone()));
        if !s.partial.is_empty() {
            tail.push(s.partial.clone());
        }
        let skip = tail.len().saturating_sub(TAIL_LINES);
        for l in &tail[skip..] {
            lines.push(format!(
                "\x1b[2m  {}\x1b[0m",
                screen_text(l, self.width.saturating_sub(2))
            ));
        }
        for l in &lines {
            writeln!(self.out, "{l}")?;
        }
        self.drawn = lines.len();
        self.out.flush()
    }

    /// Ends the running step: its line stays, with its time (or CACHED, or ERROR and its
    /// last lines).
    fn finish_step(&mut self, failed: bool) -> std::io::Result<()> {
        self.erase()?;
        self.pulls.clear();
        if let Some(s) = self.step.take() {
            let status = if s.cached {
                "CACHED".to_string()
            } else {
                elapsed(s.start.elapsed())
            };
            if failed {
                writeln!(
                    self.out,
                    "\x1b[31m{}\x1b[0m",
                    self.header(&s, "=>", "ERROR")
                )?;
                let mut tail: Vec<String> = s.tail.into_iter().collect();
                if !s.partial.is_empty() {
                    tail.push(s.partial);
                }
                for l in tail {
                    writeln!(self.out, "  {}", screen_text(&l, self.width - 2))?;
                }
            } else {
                writeln!(self.out, "{}", self.header(&s, "=>", &status))?;
            }
        }
        self.out.flush()
    }

    fn line(&mut self, l: String) -> std::io::Result<()> {
        let plain = screen_text(&l, usize::MAX);
        if plain.starts_with("Step ") && plain.contains(" : ") {
            self.finish_step(false)?;
            self.step = Some(Step {
                title: plain,
                start: Instant::now(),
                cached: false,
                tail: VecDeque::new(),
                partial: String::new(),
            });
            return Ok(());
        }
        if plain.starts_with("Successfully built ") || plain.starts_with("Successfully tagged ") {
            self.finish_step(false)?;
            return writeln!(self.out, "{plain}");
        }
        match &mut self.step {
            Some(s) => {
                if plain.trim() == "---> Using cache" {
                    s.cached = true;
                }
                s.partial.clear();
                s.tail.push_back(plain);
                if s.tail.len() > TAIL_LINES {
                    s.tail.pop_front();
                }
                Ok(())
            }
            None => {
                self.erase()?;
                writeln!(self.out, "{plain}")
            }
        }
    }

    fn stream(&mut self, text: &str) -> std::io::Result<()> {
        self.pending.push_str(text);
        while let Some(i) = self.pending.find('\n') {
            let l: String = self.pending.drain(..=i).collect();
            let l = l.trim_end_matches('\n');
            // A line rewritten with carriage returns shows its last form.
            let l = l.rsplit('\r').find(|p| !p.is_empty()).unwrap_or("");
            self.line(l.to_string())?;
        }
        if let Some(s) = &mut self.step {
            let p = self
                .pending
                .rsplit('\r')
                .find(|p| !p.is_empty())
                .unwrap_or("");
            // The next step's title arrives before its newline: not output of this one.
            s.partial = if p.starts_with("Step ") {
                String::new()
            } else {
                screen_text(p, usize::MAX)
            };
        }
        Ok(())
    }

    /// A pull's status message (FROM of a missing image).
    fn status(&mut self, jm: &Value) -> std::io::Result<()> {
        let id = jm["id"].as_str().unwrap_or("").to_string();
        let st = jm["status"].as_str().unwrap_or("");
        let prog = jm["progress"].as_str().unwrap_or("");
        let text = if id.is_empty() {
            st.to_string()
        } else {
            format!("{id}: {st} {prog}")
        };
        if self.step.is_none() {
            self.erase()?;
            return writeln!(self.out, "{}", screen_text(&text, self.width));
        }
        match self
            .pulls
            .iter_mut()
            .find(|(i, _)| !id.is_empty() && *i == id)
        {
            Some(p) => p.1 = text,
            None => self.pulls.push((id, text)),
        }
        Ok(())
    }
}

/// Shows the build's stream as the live view; returns the image id (`aux`).
async fn live_view(body: hyper::body::Incoming) -> Result<String> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    let reader =
        tokio::spawn(
            async move { crate::stream::json_lines(body, |v| Ok(tx.send(v).is_ok())).await },
        );
    let mut view = Live::new();
    let mut id = String::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            m = rx.recv() => {
                let Some(jm) = m else { break };
                view.message(&jm, &mut id)?;
            }
            _ = tick.tick() => view.draw()?,
        }
    }
    reader.await.context("reading the build's output")??;
    view.end()?;
    Ok(id)
}

/// `wharf builder prune`.
pub async fn prune(ctx: &Ctx, a: BuilderPruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all build cache. Are you sure you want to continue?"
    } else {
        "WARNING! This will remove all dangling build cache. Are you sure you want to continue?"
    };
    if !a.force && !super::confirm_line(warning) {
        return Ok(0);
    }
    let mut q = Vec::new();
    if a.all {
        q.push("all=1".to_string());
    }
    if let Some(f) = parse::filters(&a.filter)? {
        q.push(format!("filters={}", enc(&f)));
    }
    let v = ctx
        .client
        .post_json(&format!("/build/prune?{}", q.join("&")), None)
        .await?;
    let deleted: Vec<&str> = v["CachesDeleted"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !deleted.is_empty() {
        let mut s = String::from("Deleted build cache objects:\n");
        for d in deleted {
            s.push_str(d);
            s.push('\n');
        }
        println!("{s}");
    }
    println!(
        "Total reclaimed space: {}",
        human_size(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn archives_are_recognised() {
        assert!(is_archive(&[0x1f, 0x8b, 8, 0]));
        assert!(!is_archive(b"FROM busybox\nRUN true\n"));
        let mut tb = tar::Builder::new(Vec::new());
        let mut h = file_header(2);
        tb.append_data(&mut h, "Dockerfile", &b"x\n"[..]).unwrap();
        let t = tb.into_inner().unwrap();
        assert!(is_archive(&t[..512]));
        let mut bad = t[..512].to_vec();
        bad[0] ^= 1;
        assert!(!is_archive(&bad));
    }

    #[test]
    fn build_args_take_values_from_the_environment() {
        std::env::set_var("WHARF_TEST_BUILD_ARG", "from-env");
        let m = build_args(&[
            "A=1".into(),
            "B=".into(),
            "WHARF_TEST_BUILD_ARG".into(),
            "WHARF_TEST_NO_SUCH_VAR".into(),
        ]);
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"A":"1","B":"","WHARF_TEST_BUILD_ARG":"from-env"}"#
        );
    }

    #[test]
    fn the_sending_line_is_docker_s() {
        assert_eq!(
            sending_line(2048),
            "Sending build context to Docker daemon  2.048kB\r\r\n"
        );
        assert_eq!(
            sending_line(512),
            "Sending build context to Docker daemon     512B\r\r\n"
        );
    }

    #[test]
    fn a_dir_tar_keeps_the_dockerfile_and_names_an_outside_one() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("Dockerfile"), "FROM x\n").unwrap();
        std::fs::write(
            d.path().join(".dockerignore"),
            "Dockerfile\n.dockerignore\nskip*\n",
        )
        .unwrap();
        std::fs::write(d.path().join("skipme"), "no").unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/keep"), "yes").unwrap();
        std::os::unix::fs::symlink("keep", d.path().join("sub/link")).unwrap();
        let m = Matcher::for_context(d.path(), "Dockerfile").unwrap();
        let names = |t: Vec<u8>| -> Vec<(String, Vec<u8>)> {
            let mut a = tar::Archive::new(t.as_slice());
            a.entries()
                .unwrap()
                .map(|e| {
                    let mut e = e.unwrap();
                    let mut b = Vec::new();
                    e.read_to_end(&mut b).unwrap();
                    (e.path().unwrap().to_string_lossy().into_owned(), b)
                })
                .collect()
        };
        let t = write_dir_tar(Vec::new(), d.path(), &m, "Dockerfile", None).unwrap();
        let got: Vec<String> = names(t).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            got,
            [
                "sub/",
                "sub/keep",
                "sub/link",
                "Dockerfile",
                ".dockerignore"
            ]
        );
        let t = write_dir_tar(
            Vec::new(),
            d.path(),
            &m,
            "",
            Some((".dockerfile.abc", b"FROM y\n")),
        )
        .unwrap();
        let got = names(t);
        let n: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            n,
            [
                "sub/",
                "sub/keep",
                "sub/link",
                ".dockerfile.abc",
                ".dockerignore"
            ]
        );
        assert_eq!(got[3].1, b"FROM y\n");
        assert_eq!(
            String::from_utf8_lossy(&got[4].1),
            "Dockerfile\n.dockerignore\nskip*\n\n.dockerfile.abc\n"
        );
    }

    /// A writer tests read back.
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What stays on the screen: a tiny terminal for the sequences the view writes
    /// (`ESC[nF` up n lines, `ESC[J` erase below, colours ignored).
    fn screen(raw: &str) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        let mut cur = String::new();
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\x1b' => {
                    assert_eq!(chars.next(), Some('['));
                    let mut arg = String::new();
                    let cmd = loop {
                        let d = chars.next().unwrap();
                        if d.is_ascii_alphabetic() {
                            break d;
                        }
                        arg.push(d);
                    };
                    if cmd == 'F' {
                        assert!(cur.is_empty(), "moved up mid-line");
                        let n: usize = arg.parse().unwrap();
                        lines.truncate(lines.len() - n);
                    }
                }
                '\n' => lines.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        assert!(cur.is_empty(), "unterminated line {cur:?}");
        lines
    }

    #[test]
    fn the_live_view_keeps_a_line_per_step() {
        let w = Shared::default();
        let mut v = Live::with(Box::new(w.clone()), 60);
        let mut id = String::new();
        for m in [
            json!({"stream": "Step 1/3 : FROM busybox"}),
            json!({"stream": "\n"}),
            json!({"stream": " ---> 1a2b3c\n"}),
            json!({"stream": "Step 2/3 : RUN echo hi"}),
            json!({"stream": "\n"}),
            json!({"stream": " ---> Using cache\n"}),
            json!({"stream": " ---> 4d5e6f\n"}),
            json!({"stream": "Step 3/3 : RUN sh -c 'echo out; exit 3'\n"}),
            json!({"stream": " ---> Running in 77\n"}),
            json!({"stream": "\u{1b}[91mout\n\u{1b}[0m"}),
        ] {
            v.message(&m, &mut id).unwrap();
        }
        let e = v
            .message(
                &json!({"errorDetail": {"code": 3, "message": "boom"}, "error": "boom"}),
                &mut id,
            )
            .unwrap_err();
        let st = e.downcast_ref::<crate::commands::StatusError>().unwrap();
        assert_eq!((st.code, st.message.as_str()), (3, "boom"));
        let raw = String::from_utf8(w.0.lock().unwrap().clone()).unwrap();
        let shown = screen(&raw);
        assert_eq!(shown.len(), 5, "{shown:#?}");
        assert!(
            shown[0].starts_with("=> Step 1/3 : FROM busybox "),
            "{shown:#?}"
        );
        assert!(shown[0].ends_with('s'), "{shown:#?}");
        assert!(
            shown[1].starts_with("=> Step 2/3 : RUN echo hi "),
            "{shown:#?}"
        );
        assert!(shown[1].ends_with(" CACHED"), "{shown:#?}");
        assert!(shown[2].ends_with(" ERROR"), "{shown:#?}");
        assert_eq!(shown[3], "   ---> Running in 77");
        assert_eq!(shown[4], "  out");
        assert!(shown.iter().all(|l| l.chars().count() <= 59), "{shown:#?}");
    }

    #[test]
    fn registry_config_carries_every_login() {
        use base64::Engine as _;
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("config.json"),
            r#"{"auths":{"127.0.0.1:5000":{"auth":"YWxpY2U6czNjcmV0"},"https://index.docker.io/v1/":{"auth":"Ym9iOnB3"}}}"#,
        )
        .unwrap();
        let h = registry_config(d.path());
        let v: Value =
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE.decode(h).unwrap())
                .unwrap();
        assert_eq!(v["127.0.0.1:5000"]["username"], "alice");
        assert_eq!(v["127.0.0.1:5000"]["password"], "s3cret");
        assert_eq!(v["127.0.0.1:5000"]["serveraddress"], "127.0.0.1:5000");
        assert_eq!(v["https://index.docker.io/v1/"]["username"], "bob");
        let none = tempfile::tempdir().unwrap();
        assert_eq!(registry_config(none.path()), "e30=");
    }

    #[test]
    fn screen_text_drops_colours_and_cuts() {
        assert_eq!(screen_text("\u{1b}[91moops\u{1b}[0m", 80), "oops");
        assert_eq!(screen_text("abcdef", 3), "abc");
    }
}
