//! Runs a parsed Dockerfile over a [`Backend`].
//!
//! The stages the target needs (and only those) are built; stages that do not depend on
//! each other run at once. Every step has a cache key (see [`crate::cache`]); a hit adopts
//! the image the step made before, a miss runs the step and records what it made. Each step
//! ends as an image, as in the classic builder, so `docker history` and the cache see every
//! step; config-only steps (ENV, LABEL, CMD...) make no container and no layer.
//!
//! Progress is the classic builder's stream (`Step 1/3 : FROM busybox`, ` ---> Using cache`,
//! ` ---> 1a2b3c4d5e6f`, `Successfully built`, `Successfully tagged`), in Dockerfile order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};

use crate::ast::{self, Command, Dockerfile, Instruction, InstructionKind, Stage};
use crate::backend::{
    Backend, BackendError, FileKind, ImageInfo, LayerJob, NewLayer, PullPolicy, RunEvent, RunMount,
    RunSpec,
};
use crate::cache::{CacheIndex, KeyBuilder};
use crate::copy;
use crate::dockerignore::Matcher;
use crate::expand;
use crate::output::{Ordered, Sink};
use crate::platform::Platform;
use crate::tree::{self, HostTree, TarTree, Tree};

/// What a build is asked to do (the `POST /build` query, `wharf build`'s flags).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The Dockerfile's text and its name as the user gave it (for errors).
    pub dockerfile: String,
    pub dockerfile_name: String,
    pub tags: Vec<String>,
    pub target: Option<String>,
    /// `--build-arg`: `None` values are unset (the stage's default applies).
    pub build_args: BTreeMap<String, Option<String>>,
    pub labels: BTreeMap<String, String>,
    pub no_cache: bool,
    pub pull: bool,
    pub quiet: bool,
    pub network: Option<String>,
    pub platform: Option<String>,
    /// `--cache-from`: images whose steps stand in for the local cache (which is then not
    /// used, as in the classic builder).
    pub cache_from: Vec<String>,
    /// Secrets for `RUN --mount=type=secret` (`wharf build --secret`).
    pub secrets: Secrets,
    /// Which RUN steps' containers are removed (`rm`, `forcerm`).
    pub removal: crate::backend::Removal,
}

/// Build secrets by id. Their values never reach a cache key, an image, or a log (Debug
/// prints only the ids).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets(pub BTreeMap<String, Vec<u8>>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Secrets")
            .field(&self.0.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Secret files written for one RUN step, removed when it ends (whatever its outcome).
struct SecretFiles(Vec<PathBuf>);

impl Drop for SecretFiles {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// Writes `data` to a new file in `dir` (a tmpfs, so it never reaches a disk) with `mode`
/// and owner, created with no permissions for anyone else from the start.
fn write_secret(
    dir: &std::path::Path,
    data: &[u8],
    mode: u32,
    uid: u32,
    gid: u32,
) -> std::io::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let mut rnd = [0u8; 12];
    getrandom::fill(&mut rnd).map_err(|e| std::io::Error::other(e.to_string()))?;
    let path = dir.join(hex::encode(rnd));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    f.write_all(data)?;
    std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    Ok(path)
}

/// Where an image built here records its steps' cache keys (with the number of layers and
/// history entries after each), so that `--cache-from` can reuse its steps elsewhere.
pub const CACHE_KEYS_FIELD: &str = "wharf.build.cache";

impl BuildOptions {
    /// The Dockerfile's name for messages (`Dockerfile` when none was given).
    pub fn dockerfile_name(&self) -> &str {
        if self.dockerfile_name.is_empty() {
            "Dockerfile"
        } else {
            &self.dockerfile_name
        }
    }
}

/// A failed build, as the client shows it (`errorDetail`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BuildError {
    pub message: String,
    /// A RUN step's exit code.
    pub code: Option<i32>,
}

impl BuildError {
    fn new(message: impl Into<String>) -> Self {
        BuildError {
            message: message.into(),
            code: None,
        }
    }
}

impl From<BackendError> for BuildError {
    fn from(e: BackendError) -> Self {
        BuildError::new(e.message)
    }
}

/// ARGs every build knows without a declaration (Docker's predefined proxy args); they are
/// not written to the image's history.
const PREDEFINED_ARGS: [&str; 12] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
    "BUILDKIT_INLINE_CACHE",
    "BUILDKIT_SYNTAX",
];

/// The result of a built stage.
#[derive(Debug, Clone)]
struct Built {
    image: String,
    doc: Value,
    /// The cache key of its last step.
    key: String,
}

struct Shared<B: Backend> {
    backend: Arc<B>,
    cache: CacheIndex,
    /// The build context, as the tar it came in.
    context: Arc<TarTree>,
    /// The build's own directory (downloads, copies for writable binds, the context
    /// unpacked for RUN binds), removed by the caller after the build.
    work: PathBuf,
    opts: BuildOptions,
    file: Dockerfile,
    /// Meta ARG values (before the first FROM), build args applied.
    meta: BTreeMap<String, Option<String>>,
    /// Build args some ARG declared.
    consumed: Mutex<HashSet<String>>,
    out: Ordered,
    /// The stream itself, for what a quiet build prints.
    sink: Sink,
    /// Step numbers: the first step of each built stage; the total.
    first_step: HashMap<usize, usize>,
    total_steps: usize,
    lanes: HashMap<usize, usize>,
    results: Mutex<HashMap<usize, Built>>,
    cancelled: Arc<AtomicBool>,
    platform: Platform,
    /// The `--cache-from` images found.
    cache_from: Vec<ImageInfo>,
}

fn short(id: &str) -> &str {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    &h[..h.len().min(12)]
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Which stage a name (or index) given to FROM / `--from` refers to, among stages before
/// `before`.
fn stage_ref(file: &Dockerfile, name: &str, before: usize) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    if let Some(i) = file.stages[..before]
        .iter()
        .position(|s| s.name.as_deref() == Some(lower.as_str()))
    {
        return Some(i);
    }
    name.parse::<usize>().ok().filter(|i| *i < before)
}

fn meta_lookup(meta: &BTreeMap<String, Option<String>>) -> impl Fn(&str) -> Option<String> + '_ {
    move |k| meta.get(k).cloned().flatten()
}

/// Builds `opts.dockerfile` with the context `context` (files the build makes go under
/// `work`); the id of the image built.
/// Progress and errors go to `sink` as the classic builder's JSON messages (the error is
/// also returned, for the caller to send as `errorDetail`).
pub async fn build<B: Backend>(
    backend: Arc<B>,
    cache: CacheIndex,
    context: Arc<TarTree>,
    work: PathBuf,
    opts: BuildOptions,
    sink: Sink,
    cancelled: Arc<AtomicBool>,
) -> Result<String, BuildError> {
    // The classic builder's wording, naming the file as the user gave it.
    let mut file = crate::parse(&opts.dockerfile).map_err(|e| {
        BuildError::new(format!(
            "{} parse error line {}: {}",
            opts.dockerfile_name(),
            e.line,
            e.kind
        ))
    })?;
    if file.directives.syntax.is_some() {
        tracing::info!("# syntax= is accepted and not followed: wharf has one Dockerfile frontend");
    }
    // The stages up to the target.
    let target = match &opts.target {
        Some(t) if !t.is_empty() => {
            let lower = t.to_ascii_lowercase();
            file.stages
                .iter()
                .position(|s| s.name.as_deref() == Some(lower.as_str()))
                .ok_or_else(|| {
                    BuildError::new(format!("failed to reach build target {t} in Dockerfile"))
                })?
        }
        _ => file.stages.len() - 1,
    };
    file.stages.truncate(target + 1);
    // `--label`s become a LABEL step at the end, as the classic builder adds them.
    if !opts.labels.is_empty() {
        let text = opts
            .labels
            .iter()
            .map(|(k, v)| format!("{}={}", quote_word(k), quote_word(v)))
            .collect::<Vec<_>>()
            .join(" ");
        let last = file.stages.last_mut().expect("a stage");
        let line = last
            .instructions
            .last()
            .map(|i| i.source.end_line)
            .unwrap_or(0)
            + 1;
        last.instructions.push(Instruction {
            source: ast::Source {
                line,
                end_line: line,
                original: format!("LABEL {text}"),
            },
            kind: InstructionKind::Label(
                opts.labels
                    .iter()
                    .map(|(k, v)| ast::KeyValue {
                        key: quote_word(k),
                        value: quote_word(v),
                    })
                    .collect(),
            ),
        });
    }
    // Meta ARGs with the build args.
    let mut meta: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut consumed = HashSet::new();
    let escape = file.directives.escape;
    for a in &file.meta_args {
        let v = match opts.build_args.get(&a.name) {
            Some(Some(v)) => Some(v.clone()),
            _ => match &a.default {
                Some(d) => Some(
                    expand::process_word(d, &meta_lookup(&meta), escape)
                        .map_err(|e| BuildError::new(e.to_string()))?,
                ),
                None => None,
            },
        };
        if opts.build_args.contains_key(&a.name) {
            consumed.insert(a.name.clone());
        }
        meta.insert(a.name.clone(), v);
    }
    // Dependencies: FROM <stage>, COPY --from, RUN --mount from=.
    let n = file.stages.len();
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, s) in file.stages.iter().enumerate() {
        let base = expand::process_word(&s.base, &meta_lookup(&meta), escape)
            .map_err(|e| BuildError::new(e.to_string()))?;
        if let Some(d) = stage_ref(&file, &base, i) {
            deps[i].push(d);
        }
        for ins in &s.instructions {
            for from in from_refs(ins) {
                let from = expand::process_word(&from, &meta_lookup(&meta), escape).unwrap_or(from);
                if let Some(d) = stage_ref(&file, &from, i) {
                    deps[i].push(d);
                }
            }
        }
    }
    let mut needed = vec![false; n];
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if !needed[i] {
            needed[i] = true;
            todo.extend(deps[i].iter().copied());
        }
    }
    let built: Vec<usize> = (0..n).filter(|i| needed[*i]).collect();
    let mut first_step = HashMap::new();
    let mut lanes = HashMap::new();
    let mut step = file.meta_args.len() + 1;
    for (lane, i) in built.iter().enumerate() {
        first_step.insert(*i, step);
        lanes.insert(*i, lane + 1);
        step += 1 + file.stages[*i].instructions.len();
    }
    let total_steps = step - 1;
    let out = Ordered::new(sink.clone(), built.len() + 1, opts.quiet);
    // The meta ARG steps (lane 0).
    for (k, a) in file.meta_args.iter().enumerate() {
        let text = match &a.default {
            Some(d) => format!("ARG {}={d}", a.name),
            None => format!("ARG {}", a.name),
        };
        out.stream(0, format!("Step {}/{total_steps} : {text}", k + 1));
        out.stream(0, "\n");
    }
    out.finish(0);
    let platform = match &opts.platform {
        Some(p) if !p.is_empty() => {
            Platform::parse(p).map_err(|e| BuildError::new(e.to_string()))?
        }
        _ => Platform::host(),
    };
    let cache_from: Vec<ImageInfo> = opts
        .cache_from
        .iter()
        .filter_map(|r| backend.local_image(r))
        .collect();
    let shared = Arc::new(Shared {
        cache_from,
        backend,
        cache,
        context,
        work,
        opts,
        file,
        meta,
        consumed: Mutex::new(consumed),
        out,
        sink,
        first_step,
        total_steps,
        lanes,
        results: Mutex::new(HashMap::new()),
        cancelled,
        platform,
    });
    // Waves of stages whose dependencies are built, each wave at once.
    let mut done: HashSet<usize> = HashSet::new();
    let mut first_error: Option<(usize, BuildError)> = None;
    while done.len() < built.len() && first_error.is_none() {
        let wave: Vec<usize> = built
            .iter()
            .copied()
            .filter(|i| !done.contains(i) && deps[*i].iter().all(|d| done.contains(d)))
            .collect();
        let mut set = tokio::task::JoinSet::new();
        for i in wave {
            let s = shared.clone();
            set.spawn(async move {
                let r = run_stage(&s, i).await;
                (i, r)
            });
        }
        while let Some(j) = set.join_next().await {
            let (i, r) = j.map_err(|e| BuildError::new(format!("build stage panicked: {e}")))?;
            done.insert(i);
            match r {
                Ok(b) => {
                    shared.out.finish(shared.lanes[&i]);
                    shared
                        .results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(i, b);
                }
                Err(e) => {
                    if first_error.as_ref().is_none_or(|(j, _)| i < *j) {
                        first_error = Some((i, e));
                    }
                }
            }
        }
    }
    if let Some((_, e)) = first_error {
        return Err(e);
    }
    let result = shared
        .results
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&target)
        .cloned()
        .ok_or_else(|| BuildError::new("the target stage was not built"))?;
    let unused: Vec<String> = {
        let c = shared.consumed.lock().unwrap_or_else(|e| e.into_inner());
        shared
            .opts
            .build_args
            .keys()
            .filter(|k| !c.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
            .cloned()
            .collect()
    };
    if !unused.is_empty() {
        shared.out.global(json!({"stream": format!(
            "[Warning] One or more build-args [{}] were not consumed\n",
            unused.join(" ")
        )}));
    }
    for t in &shared.opts.tags {
        shared.backend.tag(&result.image, t)?;
    }
    if shared.opts.quiet {
        (shared.sink)(json!({"stream": format!("{}\n", result.image)}));
    } else {
        shared
            .out
            .global(json!({"stream": format!("Successfully built {}\n", short(&result.image))}));
        for t in &shared.opts.tags {
            shared
                .out
                .global(json!({"stream": format!("Successfully tagged {}\n", familiar_tag(t))}));
        }
    }
    Ok(result.image)
}

/// A tag as the classic builder prints it: `name:tag` with `latest` added.
fn familiar_tag(t: &str) -> String {
    let last = t.rsplit('/').next().unwrap_or(t);
    if last.contains(':') || t.contains('@') {
        t.to_string()
    } else {
        format!("{t}:latest")
    }
}

fn quote_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:".contains(c))
    {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// The `--from` values of an instruction (COPY --from, RUN --mount from=).
fn from_refs(ins: &Instruction) -> Vec<String> {
    match &ins.kind {
        InstructionKind::Copy(c) => c.from.iter().cloned().collect(),
        InstructionKind::Run(r) => r.mounts.iter().filter_map(|m| m.from.clone()).collect(),
        InstructionKind::Onbuild(i) => from_refs(i),
        _ => Vec::new(),
    }
}

/// What a stage has built so far.
struct StageState {
    /// The image of the last step (`None`: scratch, nothing stored yet).
    image: Option<String>,
    doc: Value,
    key: String,
    /// ARGs the stage declared, with their values.
    args: Vec<(String, Option<String>)>,
    shell: Vec<String>,
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    cmd_set: bool,
    escape: char,
    /// The command of the RUN step being committed (its image's `container_config.Cmd`).
    run_cmd: Option<Vec<String>>,
}

fn default_shell() -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into()]
}

/// The PATH a Linux stage gets when its base sets none (`FROM scratch`, an imported
/// rootfs), as dockerd's classic builder and BuildKit give it: it is in the image's Env,
/// and `$PATH` expands to it.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Adds [`DEFAULT_PATH`] to a Linux image config without a PATH; whether it did.
fn add_default_path(doc: &mut Value) -> bool {
    if doc["os"].as_str().is_some_and(|os| os != "linux") {
        return false;
    }
    if !doc["config"].is_object() {
        doc["config"] = json!({});
    }
    let env = &mut doc["config"]["Env"];
    if !env.is_array() {
        *env = json!([]);
    }
    let list = env.as_array_mut().expect("an array");
    if list
        .iter()
        .any(|e| e.as_str().is_some_and(|e| e.starts_with("PATH=")))
    {
        return false;
    }
    list.push(json!(DEFAULT_PATH));
    true
}

impl StageState {
    fn from_image(img: &ImageInfo, escape: char) -> StageState {
        // A base image's step keys are its own build's, not this stage's.
        let mut doc = img.doc.clone();
        if let Some(m) = doc.as_object_mut() {
            m.remove(CACHE_KEYS_FIELD);
        }
        let pathed = add_default_path(&mut doc);
        let shell = img.doc["config"]["Shell"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .filter(|v: &Vec<String>| !v.is_empty())
            .unwrap_or_else(default_shell);
        StageState {
            image: Some(img.id.clone()),
            doc,
            // The base's own config is no longer the stage's when a PATH was added.
            key: if pathed {
                format!("image:{}+path", img.id)
            } else {
                format!("image:{}", img.id)
            },
            args: Vec::new(),
            shell,
            cmd_set: false,
            escape,
            run_cmd: None,
        }
    }

    fn scratch(platform: &Platform, escape: char) -> StageState {
        let mut doc = json!({
            "architecture": platform.arch,
            "os": platform.os,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [],
        });
        if let Some(v) = &platform.variant {
            doc["variant"] = json!(v);
        }
        add_default_path(&mut doc);
        StageState {
            image: None,
            doc,
            key: "scratch+path".into(),
            args: Vec::new(),
            shell: default_shell(),
            cmd_set: false,
            escape,
            run_cmd: None,
        }
    }

    fn config(&mut self) -> &mut Map<String, Value> {
        if !self.doc["config"].is_object() {
            self.doc["config"] = json!({});
        }
        self.doc["config"].as_object_mut().expect("an object")
    }

    fn env(&self) -> Vec<String> {
        self.doc["config"]["Env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn lookup(&self, k: &str) -> Option<String> {
        for e in self.env().iter().rev() {
            if let Some((n, v)) = e.split_once('=') {
                if n == k {
                    return Some(v.to_string());
                }
            }
        }
        self.args
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .and_then(|(_, v)| v.clone())
    }

    fn word(&self, w: &str) -> Result<String, BuildError> {
        expand::process_word(w, &|k| self.lookup(k), self.escape)
            .map_err(|e| BuildError::new(e.to_string()))
    }

    fn words(&self, w: &str) -> Result<Vec<String>, BuildError> {
        expand::process_words(w, &|k| self.lookup(k), self.escape)
            .map_err(|e| BuildError::new(e.to_string()))
    }

    /// The environment of a RUN step: the image's Env, then the ARGs ENV does not override.
    fn run_env(&self) -> Vec<String> {
        let mut env = self.env();
        let names: HashSet<String> = env
            .iter()
            .filter_map(|e| e.split_once('=').map(|(n, _)| n.to_string()))
            .collect();
        for (n, v) in &self.args {
            if let Some(v) = v {
                if !names.contains(n) {
                    env.push(format!("{n}={v}"));
                }
            }
        }
        env
    }

    /// The ARG values a RUN step sees, as the classic builder prefixes its history.
    fn arg_pairs(&self) -> Vec<String> {
        self.args
            .iter()
            .filter(|(n, _)| !PREDEFINED_ARGS.contains(&n.as_str()))
            .filter_map(|(n, v)| v.as_ref().map(|v| format!("{n}={v}")))
            .collect()
    }

    fn workdir(&self) -> String {
        self.doc["config"]["WorkingDir"]
            .as_str()
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_string()
    }

    fn set_env(&mut self, name: &str, value: &str) {
        let mut env = self.env();
        let entry = format!("{name}={value}");
        match env
            .iter()
            .position(|e| e.split_once('=').map(|(n, _)| n) == Some(name) || e == name)
        {
            Some(i) => env[i] = entry,
            None => env.push(entry),
        }
        self.config().insert("Env".into(), json!(env));
    }
}

impl<B: Backend> Shared<B> {
    /// A step's error with the Dockerfile's name and the step's line in front, except a RUN
    /// step's exit status, which keeps the classic builder's exact words (tools match them).
    fn located(&self, e: BuildError, line: usize) -> BuildError {
        if e.code.is_some() {
            return e;
        }
        BuildError {
            message: format!("{}:{line}: {}", self.opts.dockerfile_name(), e.message),
            code: None,
        }
    }

    fn step_header(&self, lane: usize, step: usize, text: &str) {
        self.out
            .stream(lane, format!("Step {step}/{} : {text}", self.total_steps));
        self.out.stream(lane, "\n");
    }

    fn policy(&self, platform: Option<String>) -> PullPolicy {
        PullPolicy {
            always: self.opts.pull,
            platform: platform.or_else(|| self.opts.platform.clone()),
        }
    }

    /// A cached image for `key`, if the cache may be used and the image is still there.
    fn cached(&self, st: &StageState, key: &str) -> Option<ImageInfo> {
        if self.opts.no_cache {
            return None;
        }
        if !self.opts.cache_from.is_empty() {
            return self.step_of_cache_from_images(st, key);
        }
        let rec = self.cache.get(key)?;
        self.backend.image_by_id(&rec.image)
    }

    /// The step `key` of a `--cache-from` image, as an image of its own: the stage's config
    /// as computed here (the key says it is the one that image's build had) over that
    /// image's layers and history up to the step.
    fn step_of_cache_from_images(&self, st: &StageState, key: &str) -> Option<ImageInfo> {
        for img in &self.cache_from {
            let keys = img.doc[CACHE_KEYS_FIELD].as_array()?;
            let Some(pos) = keys.iter().position(|k| k["key"] == key) else {
                continue;
            };
            let e = &keys[pos];
            let layers = e["layers"].as_u64()? as usize;
            let hist = e["history"].as_u64()? as usize;
            let ids = img.doc["rootfs"]["diff_ids"].as_array()?;
            let history = img.doc["history"].as_array()?;
            if layers > ids.len() || hist > history.len() || hist == 0 {
                continue;
            }
            if pos + 1 == keys.len() && layers == ids.len() && hist == history.len() {
                // The image's last step: the image itself (as dockerd's classic builder
                // answers), so a rebuild from it gives the very image it was.
                return Some(img.clone());
            }
            let mut doc = st.doc.clone();
            doc["rootfs"] = json!({"type": "layers", "diff_ids": ids[..layers]});
            doc["history"] = json!(history[..hist]);
            doc["created"] = history[hist - 1]["created"].clone();
            doc[CACHE_KEYS_FIELD] = json!(keys[..=pos]);
            let id = self.backend.put_image(&doc).ok()?;
            return Some(ImageInfo { id, doc });
        }
        None
    }

    fn adopt(&self, lane: usize, st: &mut StageState, key: String, img: ImageInfo) {
        self.out.stream(lane, " ---> Using cache\n");
        self.out.stream(lane, format!(" ---> {}\n", short(&img.id)));
        // Refresh the entry's last use (for prune's LRU); a failure only costs that. A step
        // of a `--cache-from` image is no entry of the local cache (as in dockerd: a later
        // build without `--cache-from` does not use it).
        if self.opts.cache_from.is_empty() {
            let _ = self.cache.put(&key, &img.id, "");
        }
        st.image = Some(img.id);
        st.doc = img.doc;
        st.key = key;
    }

    /// Stores the step's image (with its layer, if any) and records it in the cache.
    fn commit(
        &self,
        lane: usize,
        st: &mut StageState,
        key: String,
        created_by: String,
        layer: Option<NewLayer>,
        description: &str,
    ) -> Result<(), BuildError> {
        let mut doc = st.doc.clone();
        let now = now_rfc3339();
        doc["created"] = json!(now);
        // The classic builder's image keeps the config of the container that made it, whose
        // Cmd is the step (`RUN`'s command with its build args, `#(nop)` for the others);
        // old clients read it (`ContainerConfig`).
        let container_cmd = match st.run_cmd.take() {
            Some(c) => c,
            None => match created_by.strip_prefix("/bin/sh -c #(nop)  ") {
                Some(text) => vec!["/bin/sh".into(), "-c".into(), "#(nop) ".into(), text.into()],
                None => vec![created_by.clone()],
            },
        };
        let mut container_config = doc["config"].clone();
        if !container_config.is_object() {
            container_config = json!({});
        }
        container_config["Cmd"] = json!(container_cmd);
        doc["container_config"] = container_config;
        let mut entry = json!({"created": now, "created_by": created_by});
        match &layer {
            Some(l) => {
                let mut ids = doc["rootfs"]["diff_ids"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                ids.push(json!(l.diff_id));
                doc["rootfs"] = json!({"type": "layers", "diff_ids": ids});
            }
            None => entry["empty_layer"] = json!(true),
        }
        let mut history = doc["history"].as_array().cloned().unwrap_or_default();
        history.push(entry);
        let mut keys = doc[CACHE_KEYS_FIELD]
            .as_array()
            .cloned()
            .unwrap_or_default();
        keys.push(json!({
            "key": key,
            "layers": doc["rootfs"]["diff_ids"].as_array().map_or(0, Vec::len),
            "history": history.len(),
        }));
        doc["history"] = json!(history);
        doc[CACHE_KEYS_FIELD] = json!(keys);
        let id = self.backend.put_image(&doc)?;
        drop(layer);
        if let Err(e) = self.cache.put(&key, &id, description) {
            tracing::warn!("recording a build cache entry: {e}");
        }
        self.out.stream(lane, format!(" ---> {}\n", short(&id)));
        st.image = Some(id);
        st.doc = doc;
        st.key = key;
        Ok(())
    }

    /// The image a step runs on or writes over, stored if the stage has none yet.
    /// The layer a `COPY --link` step with `link_key` made before (on scratch), if its
    /// record image is still there.
    fn linked_layer(&self, link_key: &str) -> Option<String> {
        if self.opts.no_cache {
            return None;
        }
        let rec = self.cache.get(link_key)?;
        let img = self.backend.image_by_id(&rec.image)?;
        img.doc["rootfs"]["diff_ids"]
            .as_array()?
            .last()?
            .as_str()
            .map(String::from)
    }

    /// Records a `COPY --link` step's scratch layer: a one-layer image (which keeps the
    /// layer from the collector) under `link_key`.
    fn record_linked_layer(
        &self,
        st: &StageState,
        link_key: &str,
        diff_id: &str,
        created_by: &str,
        description: &str,
    ) -> Result<(), BuildError> {
        let doc = json!({
            "architecture": st.doc["architecture"],
            "os": st.doc["os"],
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": now_rfc3339(), "created_by": created_by}],
        });
        let id = self.backend.put_image(&doc)?;
        self.cache
            .put(link_key, &id, description)
            .map_err(|e| BuildError::new(format!("recording the build cache: {e}")))
    }

    fn ensure_image(&self, st: &mut StageState) -> Result<String, BuildError> {
        if let Some(i) = &st.image {
            return Ok(i.clone());
        }
        let id = self.backend.put_image(&st.doc)?;
        st.image = Some(id.clone());
        Ok(id)
    }
}

async fn run_stage<B: Backend>(s: &Arc<Shared<B>>, i: usize) -> Result<Built, BuildError> {
    let stage: &Stage = &s.file.stages[i];
    let lane = s.lanes[&i];
    let mut step = s.first_step[&i];
    let escape = s.file.directives.escape;
    s.step_header(lane, step, &stage.from.original);
    let base = expand::process_word(&stage.base, &meta_lookup(&s.meta), escape)
        .map_err(|e| BuildError::new(e.to_string()))?;
    let platform = match &stage.platform {
        Some(p) => Some(
            expand::process_word(p, &meta_lookup(&s.meta), escape)
                .map_err(|e| BuildError::new(e.to_string()))?,
        ),
        None => None,
    };
    let mut st = if base.eq_ignore_ascii_case("scratch") {
        StageState::scratch(&s.platform, escape)
    } else if let Some(d) = stage_ref(&s.file, &base, i) {
        let b = s
            .results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&d)
            .cloned()
            .ok_or_else(|| BuildError::new(format!("stage {base} was not built")))?;
        s.out.stream(lane, format!(" ---> {}\n", short(&b.image)));
        let mut st = StageState::from_image(
            &ImageInfo {
                id: b.image.clone(),
                doc: b.doc.clone(),
            },
            escape,
        );
        st.key = b.key;
        st
    } else {
        let out = s.out.clone();
        let progress = move |v: Value| out.send(lane, v);
        let img = s
            .backend
            .image(&base, &s.policy(platform), &progress)
            .await
            .map_err(|e| s.located(e.into(), stage.from.line))?;
        s.out.stream(lane, format!(" ---> {}\n", short(&img.id)));
        StageState::from_image(&img, escape)
    };
    // ONBUILD triggers of the base run as part of FROM, and are not inherited.
    let triggers: Vec<String> = st.doc["config"]["OnBuild"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if !triggers.is_empty() {
        st.config().insert("OnBuild".into(), Value::Null);
        s.out.stream(
            lane,
            format!(
                "# Executing {} build trigger{}\n",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ),
        );
        for t in &triggers {
            let parsed = crate::parse(&format!("FROM scratch\n{t}\n")).map_err(|e| {
                BuildError::new(format!("parsing ONBUILD trigger {t:?}: {}", e.kind))
            })?;
            for ins in &parsed.stages[0].instructions {
                dispatch(s, lane, i, &mut st, ins).await?;
            }
        }
    }
    for ins in &stage.instructions {
        step += 1;
        if s.cancelled.load(Ordering::SeqCst) {
            return Err(BuildError::new("build cancelled"));
        }
        s.step_header(lane, step, &ins.source.original);
        dispatch(s, lane, i, &mut st, ins)
            .await
            .map_err(|e| s.located(e, ins.source.line))?;
    }
    let image = s.ensure_image(&mut st)?;
    s.out.send(lane, json!({"aux": {"ID": image}}));
    Ok(Built {
        image,
        doc: st.doc,
        key: st.key,
    })
}

fn nop(text: &str) -> String {
    format!("/bin/sh -c #(nop)  {text}")
}

fn command_argv(shell: &[String], c: &Command) -> Vec<String> {
    match c {
        Command::Exec(v) => v.clone(),
        Command::Shell(t) => {
            let mut v = shell.to_vec();
            v.push(t.clone());
            v
        }
    }
}

fn expose_ports(spec: &str) -> Result<Vec<String>, BuildError> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, pr)) => (p, pr.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(BuildError::new(format!("invalid proto: {proto}")));
    }
    let bad = || BuildError::new(format!("invalid containerPort: {ports}"));
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(bad());
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

fn duration_ns(v: &Option<String>, what: &str) -> Result<i64, BuildError> {
    match v {
        None => Ok(0),
        Some(s) => {
            let ns = crate::parse::parse_go_duration(s)
                .map_err(|e| BuildError::new(format!("HEALTHCHECK --{what}: {e}")))?;
            if ns != 0 && ns < 1_000_000 {
                return Err(BuildError::new(format!(
                    "Interval {what:?} cannot be less than 1ms"
                )));
            }
            Ok(ns)
        }
    }
}

/// Sizes as BuildKit reads `size=` of tmpfs mounts (bytes, or k/m/g suffixes).
fn parse_size(s: &str) -> Result<u64, BuildError> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mul) = match t.trim_end_matches('b').chars().last() {
        Some('k') => (&t[..t.trim_end_matches('b').len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.trim_end_matches('b').len() - 1], 1 << 20),
        Some('g') => (&t[..t.trim_end_matches('b').len() - 1], 1 << 30),
        _ => (t.trim_end_matches('b'), 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(|| BuildError::new(format!("invalid size {s:?}")))
}

async fn dispatch<B: Backend>(
    s: &Arc<Shared<B>>,
    lane: usize,
    stage: usize,
    st: &mut StageState,
    ins: &Instruction,
) -> Result<(), BuildError> {
    use InstructionKind as K;
    let original = ins.source.original.clone();
    match &ins.kind {
        K::Run(r) => run_step(s, lane, stage, st, r).await,
        K::Copy(c) => {
            copy_step(
                s,
                lane,
                stage,
                st,
                &c.common,
                c.from.as_deref(),
                c.parents,
                None,
                None,
                &original,
            )
            .await
        }
        K::Add(a) => {
            copy_step(
                s,
                lane,
                stage,
                st,
                &a.common,
                None,
                false,
                Some(a.unpack.unwrap_or(true)),
                a.checksum.as_ref(),
                &original,
            )
            .await
        }
        K::Workdir(w) => {
            let w = st.word(w)?;
            let path = copy::clean_abs(&if w.starts_with('/') {
                w.clone()
            } else {
                format!("{}/{w}", st.workdir())
            });
            st.config().insert("WorkingDir".into(), json!(path));
            let key = KeyBuilder::new(&st.key)
                .part("WORKDIR")
                .part(&serde_json::to_string(&st.doc["config"]).unwrap_or_default())
                .finish();
            if let Some(img) = s.cached(st, &key) {
                s.adopt(lane, st, key, img);
                return Ok(());
            }
            let image = s.ensure_image(st)?;
            let p = path.clone();
            let layer = s
                .backend
                .with_layer(
                    Some(&image),
                    &[],
                    Box::new(move |job: LayerJob<'_>| {
                        if job.root.stat(&p) == Some(FileKind::Dir) {
                            return Ok(());
                        }
                        let e = copy::Entry {
                            dest: p.clone(),
                            kind: copy::Kind::Dir { mode: 0o755 },
                            mtime: None,
                        };
                        let t =
                            copy::tar(None, &[e], copy::Owner::default(), job.root, unix_now())?;
                        job.root.extract(&mut &t[..])
                    }),
                )
                .await?;
            s.commit(
                lane,
                st,
                key,
                nop(&format!("WORKDIR {path}")),
                layer,
                &original,
            )
        }
        K::Arg(decls) => {
            let auto: BTreeMap<String, String> =
                Platform::automatic_args(&Platform::host(), &s.platform)
                    .into_iter()
                    .collect();
            let mut key = KeyBuilder::new(&st.key).part("ARG");
            for d in decls {
                let given = s.opts.build_args.get(&d.name);
                if given.is_some() {
                    s.consumed
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(d.name.clone());
                }
                let v = match given {
                    Some(Some(v)) => Some(v.clone()),
                    _ => match &d.default {
                        Some(def) => Some(st.word(def)?),
                        None => s
                            .meta
                            .get(&d.name)
                            .cloned()
                            .flatten()
                            .or_else(|| auto.get(&d.name).cloned()),
                    },
                };
                key = key.part(&d.name).part(v.as_deref().unwrap_or("\u{0}unset"));
                st.args.retain(|(n, _)| n != &d.name);
                st.args.push((d.name.clone(), v));
            }
            let key = key.finish();
            if let Some(img) = s.cached(st, &key) {
                s.adopt(lane, st, key, img);
                return Ok(());
            }
            s.commit(lane, st, key, nop(&original), None, &original)
        }
        kind => {
            config_change(s, st, kind)?;
            let key = KeyBuilder::new(&st.key)
                .part("CONFIG")
                .part(&serde_json::to_string(&st.doc["config"]).unwrap_or_default())
                .part(st.doc["author"].as_str().unwrap_or_default())
                .finish();
            if let Some(img) = s.cached(st, &key) {
                s.adopt(lane, st, key, img);
                return Ok(());
            }
            s.commit(lane, st, key, nop(&original), None, &original)
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// ENV, LABEL, CMD and the other steps that only change the image's config.
fn config_change<B: Backend>(
    s: &Arc<Shared<B>>,
    st: &mut StageState,
    kind: &InstructionKind,
) -> Result<(), BuildError> {
    use InstructionKind as K;
    let _ = s;
    match kind {
        K::Env(pairs) => {
            // Every value sees the environment from before the instruction.
            let mut vals = Vec::new();
            for kv in pairs {
                vals.push((st.word(&kv.key)?, st.word(&kv.value)?));
            }
            for (k, v) in vals {
                st.set_env(&k, &v);
            }
        }
        K::Label(pairs) => {
            let mut labels = st.doc["config"]["Labels"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for kv in pairs {
                labels.insert(st.word(&kv.key)?, json!(st.word(&kv.value)?));
            }
            st.config().insert("Labels".into(), Value::Object(labels));
        }
        K::Expose(specs) => {
            let mut ports = st.doc["config"]["ExposedPorts"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for sp in specs {
                for w in st.words(sp)? {
                    for p in expose_ports(&w)? {
                        ports.insert(p, json!({}));
                    }
                }
            }
            st.config()
                .insert("ExposedPorts".into(), Value::Object(ports));
        }
        K::Volume(paths) => {
            let mut vols = st.doc["config"]["Volumes"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for p in paths {
                let p = st.word(p)?;
                if p.trim().is_empty() {
                    return Err(BuildError::new(
                        "VOLUME specified can not be an empty string",
                    ));
                }
                vols.insert(p, json!({}));
            }
            st.config().insert("Volumes".into(), Value::Object(vols));
        }
        K::User(u) => {
            let u = st.word(u)?;
            st.config().insert("User".into(), json!(u));
        }
        K::Shell(v) => {
            st.shell = v.clone();
            st.config().insert("Shell".into(), json!(v));
        }
        K::StopSignal(sig) => {
            let sig = st.word(sig)?;
            st.config().insert("StopSignal".into(), json!(sig));
        }
        K::Cmd(c) => {
            let argv = command_argv(&st.shell, c);
            st.config().insert("Cmd".into(), json!(argv));
            st.cmd_set = true;
        }
        K::Entrypoint(c) => {
            let argv = command_argv(&st.shell, c);
            let v = if argv.is_empty() {
                Value::Null
            } else {
                json!(argv)
            };
            st.config().insert("Entrypoint".into(), v);
            if !st.cmd_set {
                st.config().insert("Cmd".into(), Value::Null);
            }
        }
        K::Healthcheck(h) => {
            let v = match h {
                ast::Healthcheck::None => json!({"Test": ["NONE"]}),
                ast::Healthcheck::Check {
                    test,
                    interval,
                    timeout,
                    start_period,
                    start_interval,
                    retries,
                } => {
                    let test = match test {
                        Command::Exec(v) => {
                            let mut t = vec!["CMD".to_string()];
                            t.extend(v.iter().cloned());
                            t
                        }
                        Command::Shell(c) => vec!["CMD-SHELL".to_string(), c.clone()],
                    };
                    let mut m = Map::new();
                    m.insert("Test".into(), json!(test));
                    for (k, v, what) in [
                        ("Interval", interval, "interval"),
                        ("Timeout", timeout, "timeout"),
                        ("StartPeriod", start_period, "start-period"),
                        ("StartInterval", start_interval, "start-interval"),
                    ] {
                        let ns = duration_ns(v, what)?;
                        if ns != 0 {
                            m.insert(k.into(), json!(ns));
                        }
                    }
                    if let Some(r) = retries {
                        let n: i64 = r.parse().map_err(|_| {
                            BuildError::new(format!("HEALTHCHECK --retries: invalid value {r:?}"))
                        })?;
                        if n < 0 {
                            return Err(BuildError::new("--retries cannot be negative"));
                        }
                        if n != 0 {
                            m.insert("Retries".into(), json!(n));
                        }
                    }
                    Value::Object(m)
                }
            };
            st.config().insert("Healthcheck".into(), v);
        }
        K::Onbuild(inner) => {
            let mut list = st.doc["config"]["OnBuild"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            list.push(json!(inner.source.original));
            st.config().insert("OnBuild".into(), json!(list));
        }
        K::Maintainer(m) => {
            st.doc["author"] = json!(m);
        }
        K::Run(_) | K::Copy(_) | K::Add(_) | K::Workdir(_) | K::Arg(_) => {
            unreachable!("handled by dispatch")
        }
    }
    Ok(())
}

async fn run_step<B: Backend>(
    s: &Arc<Shared<B>>,
    lane: usize,
    stage: usize,
    st: &mut StageState,
    r: &ast::Run,
) -> Result<(), BuildError> {
    let argv = match &r.command {
        Command::Exec(v) => v.clone(),
        Command::Shell(text) => {
            let script = crate::parse::heredoc_word(text.trim())
                .filter(|_| r.heredocs.len() == 1 && !text.trim().contains(' '))
                .and_then(|_| r.heredocs.first());
            let mut v = st.shell.clone();
            match script {
                Some(h) => v.push(h.content.clone()),
                None if r.heredocs.is_empty() => v.push(text.clone()),
                None => {
                    let mut t = text.clone();
                    t.push('\n');
                    for h in &r.heredocs {
                        t.push_str(&h.content);
                        t.push_str(&h.name);
                        t.push('\n');
                    }
                    v.push(t);
                }
            }
            v
        }
    };
    let network = match &r.network {
        Some(n) if n != "default" => Some(n.clone()),
        _ => s.opts.network.clone(),
    };
    let mut mounts = Vec::new();
    let mut mount_key = Vec::new();
    let mut secret_env = Vec::new();
    let mut secret_files = SecretFiles(Vec::new());
    for m in &r.mounts {
        let target = |t: &Option<String>| -> Result<String, BuildError> {
            let t = t
                .as_deref()
                .ok_or_else(|| BuildError::new("RUN --mount: target is required"))?;
            let t = st.word(t)?;
            Ok(copy::clean_abs(&if t.starts_with('/') {
                t
            } else {
                format!("{}/{t}", st.workdir())
            }))
        };
        match m.kind {
            ast::MountKind::Bind => {
                let src = st.word(m.source.as_deref().unwrap_or("."))?;
                let rel = copy::clean_source(&src).map_err(BuildError::new)?;
                let t = target(&m.target)?;
                let readonly = m.readonly.unwrap_or(true);
                if let Some(from) = &m.from {
                    let from = st.word(from)?;
                    let image = match stage_ref(&s.file, &from, stage) {
                        Some(d) => {
                            s.results
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .get(&d)
                                .cloned()
                                .ok_or_else(|| {
                                    BuildError::new(format!("stage {from} was not built"))
                                })?
                                .image
                        }
                        None => {
                            let out = s.out.clone();
                            let progress = move |v: Value| out.send(lane, v);
                            s.backend.image(&from, &s.policy(None), &progress).await?.id
                        }
                    };
                    mount_key.push(format!("bind-from:{image}:{rel}:{t}:{readonly}"));
                    mounts.push(RunMount::Image {
                        image,
                        source: rel,
                        target: t,
                        readonly,
                    });
                    continue;
                }
                let resolved = tree::resolve(&*s.context, &rel).ok_or_else(|| {
                    BuildError::new(format!(
                        "RUN --mount=type=bind: {rel} not found in the build context"
                    ))
                })?;
                let is_dir = s
                    .context
                    .lstat(&resolved)
                    .is_some_and(|m| m.kind == tree::NodeKind::Dir);
                mount_key.push(format!(
                    "bind:{rel}:{t}:{readonly}:{}",
                    copy::digest(
                        &*s.context,
                        &[copy::Matched {
                            rel: rel.clone(),
                            resolved: resolved.clone(),
                            is_dir,
                            pivot: String::new(),
                        }],
                        &Matcher::default()
                    )
                    .map_err(BuildError::new)?
                ));
                // A bind needs the context as a directory: unpacked once, on first use.
                let unpacked = s
                    .context
                    .unpacked(&s.work.join("context"))
                    .map_err(BuildError::new)?;
                let host = if resolved == "." {
                    unpacked
                } else {
                    unpacked.join(&resolved)
                };
                // A writable bind gets a copy: what the step writes there is discarded
                // (BuildKit's rule), and the context stays as it came.
                let source = if readonly {
                    host
                } else {
                    let dir = s.work.join(format!(
                        "rw-{}",
                        KeyBuilder::new("rw")
                            .part(&t)
                            .part(&format!("{:?}", std::time::SystemTime::now()))
                            .finish()
                    ));
                    let st2 = std::process::Command::new("cp")
                        .arg("-a")
                        .arg(&host)
                        .arg(&dir)
                        .status()
                        .map_err(|e| {
                            BuildError::new(format!("copying {rel} for a writable bind: {e}"))
                        })?;
                    if !st2.success() {
                        return Err(BuildError::new(format!(
                            "copying {rel} for a writable bind failed"
                        )));
                    }
                    dir
                };
                mounts.push(RunMount::Bind {
                    source,
                    target: t,
                    readonly,
                });
            }
            ast::MountKind::Cache => {
                let t = target(&m.target)?;
                let id = match &m.id {
                    Some(id) => st.word(id)?,
                    None => t.clone(),
                };
                let dir = s.backend.cache_dir().join(
                    crate::cache::KeyBuilder::new("cache-mount")
                        .part(&id)
                        .finish(),
                );
                if !dir.exists() {
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| BuildError::new(format!("cache mount {id}: {e}")))?;
                    let uid = m.uid.as_deref().map(str::parse::<u32>).transpose();
                    let gid = m.gid.as_deref().map(str::parse::<u32>).transpose();
                    if let (Ok(uid), Ok(gid)) = (uid, gid) {
                        if uid.is_some() || gid.is_some() {
                            let _ = std::os::unix::fs::chown(&dir, uid, gid);
                        }
                    }
                    if let Some(mode) = &m.mode {
                        if let Ok(mode) = u32::from_str_radix(mode, 8) {
                            use std::os::unix::fs::PermissionsExt;
                            let _ = std::fs::set_permissions(
                                &dir,
                                std::fs::Permissions::from_mode(mode),
                            );
                        }
                    }
                }
                mount_key.push(format!("cache:{id}:{t}"));
                mounts.push(RunMount::Bind {
                    source: dir,
                    target: t,
                    readonly: m.readonly.unwrap_or(false),
                });
            }
            ast::MountKind::Tmpfs => {
                let t = target(&m.target)?;
                let size = match &m.size {
                    Some(sz) => parse_size(sz)?,
                    None => 0,
                };
                mount_key.push(format!("tmpfs:{t}:{size}"));
                mounts.push(RunMount::Tmpfs { target: t, size });
            }
            ast::MountKind::Secret => {
                let id =
                    m.id.clone()
                        .or_else(|| {
                            m.target
                                .as_deref()
                                .and_then(|t| t.rsplit('/').next().map(String::from))
                        })
                        .unwrap_or_default();
                let Some(data) = s.opts.secrets.0.get(&id) else {
                    if m.required == Some(true) {
                        return Err(BuildError::new(format!(
                            "secret {id} not found: pass it with `wharf build --secret id={id},src=<file>` (the classic build API of other clients carries no secrets)"
                        )));
                    }
                    continue;
                };
                // `env=`: the value as a variable of this step only (no file unless a
                // target is given too).
                if let Some(var) = &m.env {
                    secret_env.push(format!("{var}={}", String::from_utf8_lossy(data)));
                    mount_key.push(format!("secret-env:{id}:{var}"));
                    if m.target.is_none() {
                        continue;
                    }
                }
                let t = match &m.target {
                    Some(t) => target(&Some(t.clone()))?,
                    None => format!("/run/secrets/{id}"),
                };
                let num = |v: &Option<String>, what: &str, default: u32, radix: u32| match v {
                    None => Ok(default),
                    Some(v) => u32::from_str_radix(v, radix).map_err(|_| {
                        BuildError::new(format!("RUN --mount=type=secret: invalid {what} {v:?}"))
                    }),
                };
                let mode = num(&m.mode, "mode", 0o400, 8)?;
                let uid = num(&m.uid, "uid", 0, 10)?;
                let gid = num(&m.gid, "gid", 0, 10)?;
                // Owned by the host ids of the container's (a `--userns-remap` daemon's
                // container root is not the host's).
                let (uid, gid) = s.backend.host_ids(uid, gid)?;
                let file = write_secret(&s.backend.secrets_dir(), data, mode, uid, gid)
                    .map_err(|e| BuildError::new(format!("writing secret {id}: {e}")))?;
                secret_files.0.push(file.clone());
                // The id and target only: a secret's value never changes a cache key.
                mount_key.push(format!("secret:{id}:{t}"));
                mounts.push(RunMount::Bind {
                    source: file,
                    target: t,
                    readonly: true,
                });
            }
            ast::MountKind::Ssh => {
                if m.required == Some(true) {
                    return Err(BuildError::new(
                        "no SSH agent forwarded: the classic build API carries no SSH sockets",
                    ));
                }
            }
        }
    }
    let args = st.arg_pairs();
    let key = KeyBuilder::new(&st.key)
        .part("RUN")
        .part(&serde_json::to_string(&argv).unwrap_or_default())
        .part(&args.join("\n"))
        .part(network.as_deref().unwrap_or_default())
        .part(&mount_key.join("\n"))
        .finish();
    let run_cmd: Vec<String> = if args.is_empty() {
        argv.clone()
    } else {
        std::iter::once(format!("|{}", args.len()))
            .chain(args.iter().cloned())
            .chain(argv.iter().cloned())
            .collect()
    };
    let created_by = run_cmd.join(" ");
    if let Some(img) = s.cached(st, &key) {
        s.adopt(lane, st, key, img);
        return Ok(());
    }
    let image = s.ensure_image(st)?;
    let spec = RunSpec {
        image,
        argv: argv.clone(),
        env: st.run_env(),
        user: st.doc["config"]["User"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        workdir: st.workdir(),
        network,
        mounts,
        removal: s.opts.removal,
    };
    let mut spec = spec;
    spec.env.extend(secret_env);
    let started: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let (out, started2) = (s.out.clone(), started.clone());
    let events = move |e: RunEvent| match e {
        RunEvent::Started(id) => {
            out.stream(lane, format!(" ---> Running in {}\n", short(&id)));
            *started2.lock().unwrap_or_else(|e| e.into_inner()) = Some(id);
        }
        RunEvent::Stdout(b) => out.stream(lane, String::from_utf8_lossy(&b).into_owned()),
        RunEvent::Stderr(b) => out.stream(
            lane,
            format!("\u{1b}[91m{}\u{1b}[0m", String::from_utf8_lossy(&b)),
        ),
    };
    let removal = spec.removal;
    let outcome = s.backend.run(spec, &events).await;
    drop(secret_files);
    let removed = |ok: bool| {
        if !removal.removes(ok) {
            return;
        }
        if let Some(id) = started.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            s.out.stream(
                lane,
                format!("Removing intermediate container {}\n", short(id)),
            );
        }
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            removed(false);
            return Err(e.into());
        }
    };
    removed(outcome.exit_code == 0);
    if outcome.exit_code != 0 {
        return Err(BuildError {
            message: format!(
                "The command '{}' returned a non-zero code: {}",
                argv.join(" "),
                outcome.exit_code
            ),
            code: Some(outcome.exit_code),
        });
    }
    let description = format!("RUN {}", argv.join(" "));
    st.run_cmd = Some(run_cmd);
    s.commit(lane, st, key, created_by, outcome.layer, &description)
}

/// Whether a file is an archive ADD extracts, as moby decides it: a tar, plain or compressed
/// with gzip, bzip2, xz or zstd, whose first header reads as one (a compressed file that is
/// not a tar is copied as it is).
fn archive_kind(mut f: Box<dyn std::io::Read + '_>) -> Option<&'static str> {
    use std::io::Read;
    let mut magic = [0u8; 6];
    let n = read_full(&mut f, &mut magic);
    let magic = &magic[..n];
    let kind = if magic.starts_with(&[0x1f, 0x8b]) {
        "gzip"
    } else if magic.starts_with(b"BZh") {
        "bzip2"
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        "xz"
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "zstd"
    } else {
        "tar"
    };
    let whole = std::io::Cursor::new(magic.to_vec()).chain(f);
    let mut r = decompress(Box::new(whole), kind).ok()?;
    let mut head = [0u8; 512];
    (read_full(&mut r, &mut head) == 512 && is_tar_header(&head)).then_some(kind)
}

/// Reads until `buf` is full or the stream ends (errors end it too); the bytes read.
fn read_full(r: &mut dyn std::io::Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

/// Whether 512 bytes are a tar header: its checksum (the sum of its bytes, the checksum
/// field counted as spaces, in octal) matches, as Go's archive/tar checks it.
fn is_tar_header(h: &[u8; 512]) -> bool {
    let field = &h[148..156];
    let text: String = field
        .iter()
        .map(|b| *b as char)
        .filter(|c| c.is_ascii_digit())
        .collect();
    let Ok(want) = u32::from_str_radix(&text, 8) else {
        return false;
    };
    let sum: u32 = h
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                *b as u32
            }
        })
        .sum();
    sum == want && h.iter().any(|b| *b != 0)
}

/// A reader of `f` decompressed as `kind` (the formats moby's DecompressStream reads).
fn decompress<'a>(
    f: Box<dyn std::io::Read + 'a>,
    kind: &str,
) -> std::io::Result<Box<dyn std::io::Read + 'a>> {
    Ok(match kind {
        "gzip" => Box::new(flate2::read::MultiGzDecoder::new(f)),
        "bzip2" => Box::new(bzip2::read::MultiBzDecoder::new(f)),
        "xz" => Box::new(liblzma::read::XzDecoder::new_multi_decoder(f)),
        "zstd" => Box::new(zstd::stream::read::Decoder::new(f)?),
        _ => f,
    })
}

/// The entries of a local archive, renamed under `dest`, as a tar to extract.
fn rebase_archive(
    f: Box<dyn std::io::Read + '_>,
    archive: &str,
    kind: &str,
    dest: &str,
    owner: Option<copy::Owner>,
) -> Result<Vec<u8>, String> {
    let reader = decompress(f, kind).map_err(|e| format!("{archive}: {e}"))?;
    let mut a = tar::Archive::new(reader);
    let mut b = tar::Builder::new(Vec::new());
    let base = dest.trim_start_matches('/');
    for e in a.entries().map_err(|e| e.to_string())? {
        let mut e = e.map_err(|e| e.to_string())?;
        let name = e.path().map_err(|e| e.to_string())?.into_owned();
        let rel = copy::clean_source(&name.to_string_lossy()).map_err(|_| {
            format!(
                "{archive}: an archive entry climbs out of its directory: {}",
                name.display()
            )
        })?;
        let full = if rel == "." {
            base.to_string()
        } else if base.is_empty() {
            rel
        } else {
            format!("{base}/{rel}")
        };
        let mut h = e.header().clone();
        if let Some(o) = owner {
            h.set_uid(o.uid.into());
            h.set_gid(o.gid.into());
        }
        if full.is_empty() {
            continue;
        }
        match h.entry_type() {
            tar::EntryType::Link => {
                let target = e
                    .link_name()
                    .map_err(|e| e.to_string())?
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let t = copy::clean_source(&target.to_string_lossy()).map_err(|x| x.to_string())?;
                let t = if base.is_empty() {
                    t
                } else {
                    format!("{base}/{t}")
                };
                b.append_link(&mut h, &full, t).map_err(|e| e.to_string())?;
            }
            tar::EntryType::Symlink => {
                let target = e
                    .link_name()
                    .map_err(|e| e.to_string())?
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                b.append_link(&mut h, &full, target)
                    .map_err(|e| e.to_string())?;
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
            _ => {
                b.append_data(&mut h, &full, &mut e)
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    b.into_inner().map_err(|e| e.to_string())
}

#[allow(clippy::too_many_arguments)]
async fn copy_step<B: Backend>(
    s: &Arc<Shared<B>>,
    lane: usize,
    stage: usize,
    st: &mut StageState,
    c: &ast::CopyCommon,
    from: Option<&str>,
    parents: bool,
    add_unpack: Option<bool>,
    checksum: Option<&String>,
    original: &str,
) -> Result<(), BuildError> {
    let what = if add_unpack.is_some() { "ADD" } else { "COPY" };
    let mut srcs = Vec::new();
    for w in &c.sources {
        srcs.extend(st.words(w)?);
    }
    // ADD <url>: downloaded now (each build, as the classic builder does); the content's
    // digest keys the step, `--checksum` must match it.
    let mut downloads: Vec<(String, crate::backend::Fetched)> = Vec::new();
    let is_url = |s: &str| s.starts_with("http://") || s.starts_with("https://");
    for src in &srcs {
        if src.starts_with("git@") || (is_url(src) && src.ends_with(".git")) {
            return Err(BuildError::new(format!(
                "{what} of a git repository ({src}) is not supported yet: clone it into the context"
            )));
        }
        if is_url(src) {
            if add_unpack.is_none() {
                return Err(BuildError::new(format!(
                    "COPY failed: source can't be a URL for COPY: {src}"
                )));
            }
            let dir = s.work.join("downloads");
            std::fs::create_dir_all(&dir)
                .map_err(|e| BuildError::new(format!("{}: {e}", dir.display())))?;
            let f = s.backend.fetch(src, &dir).await?;
            if let Some(want) = checksum {
                let want = st.word(want)?;
                if want != f.digest {
                    return Err(BuildError::new(format!(
                        "ADD --checksum: {src} has digest {}, expected {want}",
                        f.digest
                    )));
                }
            }
            downloads.push((src.clone(), f));
        }
    }
    if checksum.is_some() && downloads.is_empty() {
        return Err(BuildError::new(
            "ADD --checksum is only supported for URL sources",
        ));
    }
    let srcs: Vec<String> = srcs.into_iter().filter(|s| !is_url(s)).collect();
    let dest_word = st.word(&c.dest)?;
    let (dest, names_dir) = copy::destination(&dest_word, &st.workdir());
    let owner_spec = match &c.chown {
        Some(o) => Some(st.word(o)?),
        None => None,
    };
    let chmod = match &c.chmod {
        Some(m) => Some(copy::parse_chmod(&st.word(m)?).map_err(BuildError::new)?),
        None => None,
    };
    let exclude_text = c.exclude.join("\n");
    let exclude =
        Matcher::parse(&exclude_text, "--exclude").map_err(|e| BuildError::new(e.to_string()))?;
    // Where the sources are: the context, another stage's image, or an image.
    let from_image: Option<String> = match from {
        None => None,
        Some(f) => {
            let f = st.word(f)?;
            if let Some(d) = stage_ref(&s.file, &f, stage) {
                let b = s
                    .results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&d)
                    .cloned()
                    .ok_or_else(|| BuildError::new(format!("stage {f} was not built")))?;
                Some(b.image)
            } else {
                let out = s.out.clone();
                let progress = move |v: Value| out.send(lane, v);
                Some(s.backend.image(&f, &s.policy(None), &progress).await?.id)
            }
        }
    };
    // The heredoc sources, expanded as BuildKit does when the name is unquoted.
    let mut inline = Vec::new();
    for h in &c.heredocs {
        let body = if h.expand {
            expand::Lexer {
                skip_process_quotes: true,
                raw_escapes: false,
                ..expand::Lexer::new(st.escape)
            }
            .word(&h.content, &|k| st.lookup(k))
            .unwrap_or_else(|_| h.content.clone())
        } else {
            h.content.clone()
        };
        inline.push((h.name.clone(), body));
    }
    let count = srcs.len() + inline.len() + downloads.len();
    if count > 1 && !names_dir {
        return Err(BuildError::new(format!(
            "When using {what} with more than one source file, the destination must be a directory and end with a /"
        )));
    }
    // The cache key: the step and what it copies; with `--link`, the step alone (its layer
    // does not depend on what is below it), and the image's key from it and the parent's.
    let mut key = KeyBuilder::new(if c.link { "COPY --link" } else { &st.key })
        .part(what)
        .part(&serde_json::to_string(&srcs).unwrap_or_default())
        .part(&dest)
        .part(&names_dir.to_string())
        .part(owner_spec.as_deref().unwrap_or_default())
        .part(&format!("{chmod:?}{parents}{add_unpack:?}"))
        .part(&exclude_text);
    for (n, b) in &inline {
        key = key.part(n).part(b);
    }
    for (u, f) in &downloads {
        key = key.part(u).part(&f.digest).part(&format!("{:?}", f.mtime));
    }
    let src_hash = match &from_image {
        Some(img) => img.clone(),
        None => {
            let mut matched = Vec::new();
            for src in &srcs {
                let m = copy::match_source(&*s.context, src, what).map_err(BuildError::new)?;
                if m.is_empty() {
                    return Err(BuildError::new(format!(
                        "{what} failed: no source files were specified"
                    )));
                }
                matched.extend(m);
            }
            copy::digest(&*s.context, &matched, &exclude).map_err(BuildError::new)?
        }
    };
    let link_key = key.part(&src_hash).finish();
    let key = if c.link {
        KeyBuilder::new(&st.key)
            .part("link")
            .part(&link_key)
            .finish()
    } else {
        link_key.clone()
    };
    let hex = src_hash
        .strip_prefix("sha256:")
        .unwrap_or(&src_hash)
        .to_string();
    let kind = if srcs.len() == 1 && inline.is_empty() {
        "file"
    } else {
        "multi"
    };
    let created_by = nop(&format!("{what} {kind}:{hex} in {dest} "));
    if let Some(img) = s.cached(st, &key) {
        s.adopt(lane, st, key, img);
        return Ok(());
    }
    let image = s.ensure_image(st)?;
    // `--link`: the layer this step made on scratch before (whatever was below it then) is
    // stacked on this base as it is.
    if c.link {
        if let Some(diff_id) = s.linked_layer(&link_key) {
            s.out.stream(lane, " ---> Using cache\n");
            let layer = s.backend.stack_layer(&image, &diff_id).await?;
            return s.commit(lane, st, key, created_by, Some(layer), original);
        }
    }
    let context = s.context.clone();
    let sources: Vec<String> = from_image.into_iter().collect();
    let from_given = !sources.is_empty();
    let what_s = if from_given { "COPY --from" } else { what };
    let job = Box::new(move |job: LayerJob<'_>| -> Result<(), String> {
        let host_tree;
        let tree: &dyn Tree = if from_given {
            host_tree = HostTree {
                root: job
                    .sources
                    .first()
                    .cloned()
                    .ok_or("the --from image is not mounted")?,
            };
            &host_tree
        } else {
            &*context
        };
        let mut matched = Vec::new();
        for src in &srcs {
            let m = copy::match_source(tree, src, what_s)?;
            if m.is_empty() {
                return Err(format!("{what} failed: no source files were specified"));
            }
            matched.extend(m);
        }
        let dest_is_dir = names_dir
            || matched.len() + inline.len() + downloads.len() > 1
            || job.root.stat(&dest) == Some(FileKind::Dir);
        let mut owner = copy::Owner {
            mode: chmod,
            ..Default::default()
        };
        if let Some(spec) = &owner_spec {
            let (uid, mut gid) = job.root.lookup_user(spec).map_err(|e| {
                format!("unable to convert uid/gid chown string to host mapping: {e}")
            })?;
            // `--chown=<uid>` without a group: the uid is the gid too (the Dockerfile
            // reference; a name brings its passwd group).
            if !spec.contains(':') && spec.parse::<u32>().is_ok() {
                gid = uid;
            }
            owner.uid = uid;
            owner.gid = gid;
        }
        // ADD extracts local archives into the destination directory.
        let mut plain = Vec::new();
        for m in matched {
            let kind = (add_unpack == Some(true) && !m.is_dir)
                .then(|| tree.open(&m.resolved).ok().and_then(archive_kind))
                .flatten();
            match kind {
                Some(k) => {
                    let r = tree
                        .open(&m.resolved)
                        .map_err(|e| format!("{}: {e}", m.rel))?;
                    let t =
                        rebase_archive(r, &m.rel, k, &dest, owner_spec.as_ref().map(|_| owner))?;
                    // The destination directory first, as COPY would make it.
                    let d = copy::Entry {
                        dest: dest.clone(),
                        kind: copy::Kind::Dir { mode: 0o755 },
                        mtime: None,
                    };
                    let dt = copy::tar(None, &[d], owner, job.root, unix_now())?;
                    job.root.extract(&mut &dt[..])?;
                    job.root.extract(&mut &t[..])?;
                }
                None => plain.push(m),
            }
        }
        let mut entries = copy::plan(tree, &plain, &dest, dest_is_dir, parents, &exclude)?;
        for (url, f) in downloads {
            // The file name is the URL's last path component (Docker's rule).
            let name = url
                .split(['?', '#'])
                .next()
                .unwrap_or_default()
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty() && !n.contains(':'))
                .unwrap_or("index.html")
                .to_string();
            let d = if dest_is_dir {
                copy::clean_abs(&format!("{dest}/{name}"))
            } else {
                dest.clone()
            };
            entries.push(copy::Entry {
                dest: d,
                kind: copy::Kind::File {
                    mode: 0o600,
                    size: f.size,
                    src: copy::FileSrc::Host(f.path.clone()),
                },
                mtime: f.mtime,
            });
        }
        for (name, body) in inline {
            let d = if dest_is_dir {
                copy::clean_abs(&format!("{dest}/{name}"))
            } else {
                dest.clone()
            };
            entries.push(copy::Entry {
                dest: d,
                kind: copy::Kind::Data {
                    mode: 0o644,
                    data: body.into_bytes(),
                },
                mtime: None,
            });
        }
        if entries.is_empty() {
            return Ok(());
        }
        let t = copy::tar(Some(tree), &entries, owner, job.root, unix_now())?;
        job.root.extract(&mut &t[..])
    });
    if c.link {
        // Made on scratch, recorded as a one-layer image under the link key, then stacked.
        let layer = s
            .backend
            .with_layer(None, &sources, job)
            .await
            .map_err(|e| BuildError::new(e.message))?;
        let Some(layer) = layer else {
            return s.commit(lane, st, key, created_by, None, original);
        };
        s.record_linked_layer(st, &link_key, &layer.diff_id, &created_by, original)?;
        let stacked = s.backend.stack_layer(&image, &layer.diff_id).await?;
        drop(layer);
        return s.commit(lane, st, key, created_by, Some(stacked), original);
    }
    let layer = s
        .backend
        .with_layer(Some(&image), &sources, job)
        .await
        .map_err(|e| BuildError::new(e.message))?;
    s.commit(lane, st, key, created_by, layer, original)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Fetched, LayerFn, RunOutcome};
    use std::path::Path;
    use std::sync::atomic::AtomicUsize;

    type SeenBind = (String, Vec<u8>, u32, u32);

    /// Images in memory; RUN steps sleep a little and count how many run at once.
    #[derive(Default)]
    struct Fake {
        images: Mutex<HashMap<String, Value>>,
        running: AtomicUsize,
        most: AtomicUsize,
        runs: Mutex<Vec<Vec<String>>>,
        tags: Mutex<Vec<(String, String)>>,
        dir: PathBuf,
        /// Per RUN: its env and, for each bind mount, (target, content, mode) as the step
        /// saw them.
        seen: Mutex<Vec<(Vec<String>, Vec<SeenBind>)>>,
        /// Whether `with_layer` makes a layer (its job is not run: a fresh diff id per call).
        make_layers: bool,
        layers_made: AtomicUsize,
        /// `stack_layer` calls: (image, diff id).
        stacked: Mutex<Vec<(String, String)>>,
        /// What `host_ids` adds (a `--userns-remap` daemon's range).
        id_shift: u32,
    }

    impl Backend for Fake {
        async fn image(
            &self,
            reference: &str,
            _policy: &PullPolicy,
            _progress: &(dyn Fn(Value) + Send + Sync),
        ) -> Result<ImageInfo, BackendError> {
            if reference != "base" && reference != "base2" {
                return Err(BackendError::new(format!("no image {reference}")));
            }
            let doc = json!({"config": {"Env": ["PATH=/bin"], "Labels": {"which": reference}}, "rootfs": {"type": "layers", "diff_ids": []}, "history": []});
            let id = self.put_image(&doc)?;
            Ok(ImageInfo { id, doc })
        }
        fn local_image(&self, _reference: &str) -> Option<ImageInfo> {
            None
        }
        fn image_by_id(&self, id: &str) -> Option<ImageInfo> {
            let doc = self.images.lock().unwrap().get(id).cloned()?;
            Some(ImageInfo {
                id: id.to_string(),
                doc,
            })
        }
        async fn run(
            &self,
            spec: RunSpec,
            events: &(dyn Fn(RunEvent) + Send + Sync),
        ) -> Result<RunOutcome, BackendError> {
            let binds = spec
                .mounts
                .iter()
                .filter_map(|m| match m {
                    RunMount::Bind { source, target, .. } => {
                        use std::os::unix::fs::MetadataExt;
                        let meta = std::fs::metadata(source).ok()?;
                        let content = std::fs::read(source).ok()?;
                        Some((target.clone(), content, meta.mode() & 0o7777, meta.uid()))
                    }
                    _ => None,
                })
                .collect();
            self.seen.lock().unwrap().push((spec.env.clone(), binds));
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            events(RunEvent::Started(format!("c{}", spec.argv.len())));
            tokio::time::sleep(std::time::Duration::from_millis(150)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            self.runs.lock().unwrap().push(spec.argv.clone());
            let code = if spec.argv.last().is_some_and(|a| a.contains("fail")) {
                2
            } else {
                0
            };
            events(RunEvent::Stdout(b"out\n".to_vec()));
            Ok(RunOutcome {
                exit_code: code,
                layer: Some(NewLayer {
                    diff_id: format!(
                        "sha256:{}",
                        KeyBuilder::new("l").part(&spec.argv.join(" ")).finish()
                    ),
                    hold: Box::new(()),
                }),
            })
        }
        async fn with_layer(
            &self,
            _image: Option<&str>,
            _sources: &[String],
            _job: LayerFn,
        ) -> Result<Option<NewLayer>, BackendError> {
            if !self.make_layers {
                return Ok(None);
            }
            let n = self.layers_made.fetch_add(1, Ordering::SeqCst);
            Ok(Some(NewLayer {
                diff_id: format!(
                    "sha256:{}",
                    KeyBuilder::new("wl").part(&n.to_string()).finish()
                ),
                hold: Box::new(()),
            }))
        }
        async fn stack_layer(&self, image: &str, diff_id: &str) -> Result<NewLayer, BackendError> {
            self.stacked
                .lock()
                .unwrap()
                .push((image.to_string(), diff_id.to_string()));
            Ok(NewLayer {
                diff_id: diff_id.to_string(),
                hold: Box::new(()),
            })
        }
        async fn fetch(&self, url: &str, _dir: &Path) -> Result<Fetched, BackendError> {
            Err(BackendError::new(format!("no network for {url}")))
        }
        fn put_image(&self, doc: &Value) -> Result<String, BackendError> {
            let id = format!(
                "sha256:{}",
                KeyBuilder::new("img").part(&doc.to_string()).finish()
            );
            self.images.lock().unwrap().insert(id.clone(), doc.clone());
            Ok(id)
        }
        fn tag(&self, id: &str, reference: &str) -> Result<(), BackendError> {
            self.tags
                .lock()
                .unwrap()
                .push((id.into(), reference.into()));
            Ok(())
        }
        fn cache_dir(&self) -> &Path {
            &self.dir
        }
        fn secrets_dir(&self) -> PathBuf {
            self.dir.join("secrets")
        }
        fn host_ids(&self, uid: u32, gid: u32) -> Result<(u32, u32), BackendError> {
            Ok((uid + self.id_shift, gid + self.id_shift))
        }
    }

    async fn run_build(
        fake: &Arc<Fake>,
        cache: &Path,
        dockerfile: &str,
        target: Option<&str>,
    ) -> (Result<String, BuildError>, Vec<String>) {
        run_build_with(fake, cache, dockerfile, target, Secrets::default()).await
    }

    async fn run_build_with(
        fake: &Arc<Fake>,
        cache: &Path,
        dockerfile: &str,
        target: Option<&str>,
        secrets: Secrets,
    ) -> (Result<String, BuildError>, Vec<String>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        let sink: Sink = Arc::new(move |v: Value| {
            let text = v["stream"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| v.to_string());
            g.lock().unwrap().push(text);
        });
        let opts = BuildOptions {
            dockerfile: dockerfile.into(),
            dockerfile_name: "Dockerfile".into(),
            tags: vec!["out:1".into()],
            target: target.map(String::from),
            secrets,
            ..Default::default()
        };
        let empty = tar::Builder::new(Vec::new()).into_inner().unwrap();
        let ctx = TarTree::receive(&mut &empty[..], &cache.join("ctx.tar")).unwrap();
        let r = build(
            fake.clone(),
            CacheIndex::open(cache).unwrap(),
            Arc::new(ctx),
            cache.join("work"),
            opts,
            sink,
            Arc::new(AtomicBool::new(false)),
        )
        .await;
        let lines = got.lock().unwrap().clone();
        (r, lines)
    }

    /// ADD's archive test: a tar, or a compressed one, whose first header's checksum holds;
    /// a compressed file that is not a tar, or text, is no archive.
    #[test]
    fn archives_are_told_by_their_first_header() {
        use std::io::Write;
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "f", &b"hi"[..]).unwrap();
        let t = b.into_inner().unwrap();
        let gz = |data: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        };
        let kind = |d: &[u8]| archive_kind(Box::new(std::io::Cursor::new(d.to_vec())));
        assert_eq!(kind(&t), Some("tar"));
        assert_eq!(kind(&gz(&t)), Some("gzip"));
        assert_eq!(kind(&zstd::encode_all(&t[..], 1).unwrap()), Some("zstd"));
        assert_eq!(kind(&gz(b"just text, no tar")), None);
        assert_eq!(kind(&[b'x'; 2048]), None);
        let mut bad = t.clone();
        bad[0] ^= 1;
        assert_eq!(kind(&bad), None, "a broken checksum is no tar");
    }

    /// `COPY --link`: the layer is made once on scratch and stacked on whatever base is
    /// below it; a new base reuses it without running the copy again; without `--link` a
    /// new base means a new copy.
    #[tokio::test]
    async fn copy_link_layers_are_made_once_and_stacked_on_any_base() {
        let d = tempfile::tempdir().unwrap();
        let fake = Arc::new(Fake {
            dir: d.path().join("mounts"),
            make_layers: true,
            ..Default::default()
        });
        let df = |base: &str, link: &str| format!("FROM {base}\nCOPY {link}<<EOF /a\nhi\nEOF\n");
        let (r, _) = run_build(&fake, d.path(), &df("base", "--link "), None).await;
        let first = r.unwrap();
        assert_eq!(fake.layers_made.load(Ordering::SeqCst), 1);
        let (r, lines) = run_build(&fake, d.path(), &df("base2", "--link "), None).await;
        let second = r.unwrap();
        assert_ne!(first, second, "another base, another image");
        assert_eq!(fake.layers_made.load(Ordering::SeqCst), 1, "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("Using cache")), "{lines:?}");
        let stacked = fake.stacked.lock().unwrap().clone();
        assert_eq!(stacked.len(), 2);
        assert_eq!(stacked[0].1, stacked[1].1, "the same layer on both bases");
        assert_ne!(stacked[0].0, stacked[1].0);
        let doc = fake.image_by_id(&second).unwrap().doc;
        assert_eq!(doc["rootfs"]["diff_ids"], json!([stacked[0].1]));
        assert_eq!(doc["config"]["Labels"]["which"], "base2");
        // The same base again: the image itself from the cache.
        let (r, _) = run_build(&fake, d.path(), &df("base2", "--link "), None).await;
        assert_eq!(r.unwrap(), second);
        assert_eq!(fake.stacked.lock().unwrap().len(), 2);
        // Without --link, the copy runs on the new base.
        let (r, _) = run_build(&fake, d.path(), &df("base2", ""), None).await;
        r.unwrap();
        assert_eq!(fake.layers_made.load(Ordering::SeqCst), 2);
    }

    /// `RUN --mount=type=secret`: the value as a file (default `/run/secrets/<id>`, mode
    /// 0400, or the mode asked) or a variable (`env=`) for that step only, removed when the
    /// step ends; a required secret that was not given fails the build; a secret's value is
    /// not part of the cache key.
    #[tokio::test]
    async fn secrets_reach_their_step_only_and_never_the_cache_key() {
        let d = tempfile::tempdir().unwrap();
        let fake = Arc::new(Fake {
            dir: d.path().join("mounts"),
            ..Default::default()
        });
        let secrets = |v: &str| {
            Secrets(BTreeMap::from([
                ("tok".to_string(), v.as_bytes().to_vec()),
                ("key".to_string(), b"k3y".to_vec()),
            ]))
        };
        let df = "FROM base
                  RUN --mount=type=secret,id=tok cat /run/secrets/tok
                  RUN --mount=type=secret,id=key,target=/k,mode=0440 --mount=type=secret,id=tok,env=TOKEN use
                  RUN --mount=type=secret,id=missing true
";
        let (r, _) = run_build_with(&fake, d.path(), df, None, secrets("s3cret")).await;
        let first = r.unwrap();
        let seen = fake.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3);
        assert_eq!(
            seen[0].1,
            [("/run/secrets/tok".to_string(), b"s3cret".to_vec(), 0o400, 0)]
        );
        assert!(!seen[0].0.iter().any(|e| e.contains("s3cret")));
        assert_eq!(seen[1].1, [("/k".to_string(), b"k3y".to_vec(), 0o440, 0)]);
        assert!(
            seen[1].0.contains(&"TOKEN=s3cret".to_string()),
            "{:?}",
            seen[1].0
        );
        // An optional secret not given: no mount.
        assert!(seen[2].1.is_empty());
        // Nothing left where the files were written.
        let left = std::fs::read_dir(d.path().join("mounts/secrets"))
            .map(|r| r.count())
            .unwrap_or(0);
        assert_eq!(left, 0);
        // Another value of the secret: every step cached, the same image.
        let (r, lines) = run_build_with(&fake, d.path(), df, None, secrets("other")).await;
        assert_eq!(r.unwrap(), first);
        assert_eq!(fake.seen.lock().unwrap().len(), 3, "{lines:?}");
        // A required secret missing fails, naming it and how to pass it.
        let df = "FROM base
RUN --mount=type=secret,id=need,required=true true
";
        let (r, _) = run_build_with(&fake, d.path(), df, None, Secrets::default()).await;
        let e = r.unwrap_err();
        assert!(
            e.message.contains("secret need not found") && e.message.contains("--secret id=need"),
            "{}",
            e.message
        );
        // Debug never shows a value.
        assert_eq!(
            format!("{:?}", secrets("s3cret")),
            r#"Secrets(["key", "tok"])"#
        );
        // Under a user namespace the file belongs to the host ids of the container's
        // (chown needs root: the test's own directory tells who runs it).
        let as_root = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(d.path()).unwrap().uid() == 0
        };
        if as_root {
            let fake = Arc::new(Fake {
                dir: d.path().join("mounts2"),
                id_shift: 100_000,
                ..Default::default()
            });
            let df = "FROM base\nRUN --mount=type=secret,id=tok,uid=7 cat /run/secrets/tok\n";
            let c2 = d.path().join("c2");
            std::fs::create_dir_all(&c2).unwrap();
            let (r, _) = run_build_with(&fake, &c2, df, None, secrets("v")).await;
            r.unwrap();
            assert_eq!(fake.seen.lock().unwrap()[0].1[0].3, 100_007);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn independent_stages_run_at_once_and_print_in_order() {
        let d = tempfile::tempdir().unwrap();
        let fake = Arc::new(Fake {
            dir: d.path().join("mounts"),
            ..Default::default()
        });
        let df = "FROM base AS one\nRUN echo one\nFROM base AS two\nRUN echo two\nFROM base AS unused\nRUN fail\nFROM one\nCOPY --from=two /x /x\n";
        let (r, lines) = run_build(&fake, d.path(), df, None).await;
        r.unwrap();
        // The two stages' RUN steps overlapped; the unused stage never ran.
        assert_eq!(fake.most.load(Ordering::SeqCst), 2);
        assert!(!fake
            .runs
            .lock()
            .unwrap()
            .iter()
            .any(|a| a.join(" ").contains("fail")));
        let steps: Vec<&String> = lines.iter().filter(|l| l.starts_with("Step ")).collect();
        assert_eq!(
            steps,
            [
                "Step 1/6 : FROM base AS one",
                "Step 2/6 : RUN echo one",
                "Step 3/6 : FROM base AS two",
                "Step 4/6 : RUN echo two",
                "Step 5/6 : FROM one",
                "Step 6/6 : COPY --from=two /x /x"
            ]
        );
        let text = lines.concat();
        assert!(text.ends_with("Successfully tagged out:1\n"), "{text}");
        // Rebuilt: every step from the cache, the same image.
        let first = fake.tags.lock().unwrap()[0].0.clone();
        let (r, lines) = run_build(&fake, d.path(), df, None).await;
        assert_eq!(r.unwrap(), first);
        assert_eq!(
            lines.iter().filter(|l| l.contains("Using cache")).count(),
            3
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_step_names_the_command_and_code_and_args_reach_run() {
        let d = tempfile::tempdir().unwrap();
        let fake = Arc::new(Fake {
            dir: d.path().join("mounts"),
            ..Default::default()
        });
        let (r, _) = run_build(&fake, d.path(), "FROM base\nRUN please fail\n", None).await;
        let e = r.unwrap_err();
        assert_eq!(
            e.message,
            "The command '/bin/sh -c please fail' returned a non-zero code: 2"
        );
        assert_eq!(e.code, Some(2));
        let (r, _) = run_build(&fake, d.path(), "FROM base\nFROOM x\n", None).await;
        assert_eq!(
            r.unwrap_err().message,
            "Dockerfile parse error line 2: unknown instruction: FROOM"
        );
        let (r, _) = run_build(&fake, d.path(), "FROM base AS a\nRUN x\n", Some("b")).await;
        assert_eq!(
            r.unwrap_err().message,
            "failed to reach build target b in Dockerfile"
        );
    }
}
