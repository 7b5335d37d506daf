//! The commands over existing containers: `ps`, `logs`, `start`, `stop`, `restart`, `rm`,
//! `kill`, `pause`, `unpause`, `ls`; and `pull`.

use crate::engine::{ContainerSummary, Engine, LogChunk, LogEvent};
use crate::labels;
use crate::model::Project;
use crate::plan::start_order;
use crate::up::{project_containers, UpError, UpResult};
use crate::Out;

fn service_of(c: &ContainerSummary) -> &str {
    c.label(labels::SERVICE).unwrap_or("")
}

fn check_services(p: &Project, services: &[String]) -> UpResult<()> {
    for s in services {
        if !p.services.contains_key(s) {
            return Err(UpError::NoSuchService(s.clone()));
        }
    }
    Ok(())
}

/// The project's containers of `services` (all when empty), in dependency order.
pub async fn containers<E: Engine>(
    e: &E,
    p: &Project,
    services: &[String],
    all: bool,
) -> UpResult<Vec<ContainerSummary>> {
    check_services(p, services)?;
    let order = start_order(p, services, false)?;
    let cs = project_containers(e, &p.name, all).await?;
    let mut out = Vec::new();
    for svc in &order {
        out.extend(cs.iter().filter(|c| service_of(c) == svc).cloned());
    }
    // Containers of services no longer in the file, at the end.
    if services.is_empty() {
        out.extend(
            cs.iter()
                .filter(|c| !order.iter().any(|s| s == service_of(c)))
                .cloned(),
        );
    }
    Ok(out)
}

pub async fn start<E: Engine>(
    e: &E,
    p: &Project,
    services: &[String],
    out: &mut dyn Out,
) -> UpResult<()> {
    for c in containers(e, p, services, true).await? {
        if c.state == "running" {
            continue;
        }
        out.line(&format!(" Container {}  Starting", c.name));
        e.start_container(&c.id).await?;
        out.line(&format!(" Container {}  Started", c.name));
    }
    Ok(())
}

pub async fn stop<E: Engine>(
    e: &E,
    p: &Project,
    services: &[String],
    timeout: Option<u64>,
    out: &mut dyn Out,
) -> UpResult<()> {
    let mut cs = containers(e, p, services, false).await?;
    cs.reverse();
    for c in cs {
        out.line(&format!(" Container {}  Stopping", c.name));
        e.stop_container(&c.id, timeout).await?;
        out.line(&format!(" Container {}  Stopped", c.name));
    }
    Ok(())
}

pub async fn restart<E: Engine>(
    e: &E,
    p: &Project,
    services: &[String],
    timeout: Option<u64>,
    out: &mut dyn Out,
) -> UpResult<()> {
    for c in containers(e, p, services, true).await? {
        out.line(&format!(" Container {}  Restarting", c.name));
        e.restart_container(&c.id, timeout).await?;
        out.line(&format!(" Container {}  Started", c.name));
    }
    Ok(())
}

/// `pull`: the images of the services (all when empty), one after the other.
pub async fn pull<E: Engine>(
    e: &E,
    p: &Project,
    services: &[String],
    out: &mut dyn Out,
) -> UpResult<()> {
    check_services(p, services)?;
    for (name, s) in &p.services {
        if !services.is_empty() && !services.contains(name) {
            continue;
        }
        let Some(image) = &s.image else { continue };
        out.line(&format!(" {name} Pulling "));
        e.pull_image(image).await?;
        out.line(&format!(" {name} Pulled "));
    }
    Ok(())
}

/// `kill`: running containers sent `signal` (SIGKILL by default).
pub async fn kill<E: Engine>(
    e: &E,
    p: &Project,
    services: &[String],
    signal: Option<&str>,
    out: &mut dyn Out,
) -> UpResult<()> {
    for c in containers(e, p, services, false).await? {
        out.line(&format!(" Container {}  Killing", c.name));
        e.kill_container(&c.id, signal).await?;
        out.line(&format!(" Container {}  Killed", c.name));
    }
    Ok(())
}

pub async fn pause<E: Engine>(
    e: &E,
    p: &Project,
    services: &[String],
    out: &mut dyn Out,
) -> UpResult<()> {
    for c in containers(e, p, services, false).await? {
        out.line(&format!(" Container {}  Pausing", c.name));
        e.pause_container(&c.id).await?;
        out.line(&format!(" Container {}  Paused", c.name));
    }
    Ok(())
}

pub async fn unpause<E: Engine>(
    e: &E,
    p: &Project,
    services: &[String],
    out: &mut dyn Out,
) -> UpResult<()> {
    for c in containers(e, p, services, true).await? {
        if c.state != "paused" {
            continue;
        }
        out.line(&format!(" Container {}  Unpausing", c.name));
        e.unpause_container(&c.id).await?;
        out.line(&format!(" Container {}  Unpaused", c.name));
    }
    Ok(())
}

/// `ls`: the projects on the engine (from their containers' labels) as (name, status, config
/// files); the status counts containers by state (`running(2), exited(1)`). Without `all`,
/// projects with no running container are left out.
pub async fn ls<E: Engine>(e: &E, all: bool) -> UpResult<Vec<(String, String, String)>> {
    let cs = e
        .list_containers(&[labels::PROJECT.to_string()], true)
        .await?;
    let mut projects: std::collections::BTreeMap<
        String,
        (std::collections::BTreeMap<String, usize>, String),
    > = Default::default();
    for c in &cs {
        let Some(name) = c.label(labels::PROJECT) else {
            continue;
        };
        let entry = projects.entry(name.to_string()).or_default();
        *entry.0.entry(c.state.clone()).or_default() += 1;
        if entry.1.is_empty() {
            entry.1 = c.label(labels::CONFIG_FILES).unwrap_or("").to_string();
        }
    }
    Ok(projects
        .into_iter()
        .filter(|(_, (states, _))| {
            all || states.contains_key("running") || states.contains_key("paused")
        })
        .map(|(name, (states, files))| {
            let status = states
                .iter()
                .map(|(s, n)| format!("{s}({n})"))
                .collect::<Vec<_>>()
                .join(", ");
            (name, status, files)
        })
        .collect())
}

/// `rm`: stopped containers (with `stop`, running ones are stopped first). Returns the
/// names it would remove when `confirm` says no.
pub async fn rm<E: Engine>(
    e: &E,
    p: &Project,
    services: &[String],
    stop_first: bool,
    volumes: bool,
    confirm: &mut dyn FnMut(&[String]) -> bool,
    out: &mut dyn Out,
) -> UpResult<()> {
    let mut cs = containers(e, p, services, true).await?;
    if stop_first {
        for c in cs.iter_mut().rev().filter(|c| c.state == "running") {
            out.line(&format!(" Container {}  Stopping", c.name));
            e.stop_container(&c.id, None).await?;
            out.line(&format!(" Container {}  Stopped", c.name));
            c.state = "exited".into();
        }
    }
    let stopped: Vec<&ContainerSummary> = cs
        .iter()
        .filter(|c| c.state != "running" && c.state != "paused" && c.state != "restarting")
        .collect();
    if stopped.is_empty() {
        out.line("No stopped containers");
        return Ok(());
    }
    let names: Vec<String> = stopped.iter().map(|c| c.name.clone()).collect();
    if !confirm(&names) {
        return Ok(());
    }
    for c in stopped {
        out.line(&format!(" Container {}  Removing", c.name));
        e.remove_container(&c.id, false, volumes).await?;
        out.line(&format!(" Container {}  Removed", c.name));
    }
    Ok(())
}

/// What `logs` shows.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub services: Vec<String>,
    /// `--tail`.
    pub tail: Option<String>,
    /// `-t`.
    pub timestamps: bool,
    /// Each line prefixed with its container's name (not `--no-log-prefix`).
    pub prefix: bool,
    /// `-f`: until every container's log ends.
    pub follow: bool,
}

/// Splits chunks into lines per container and stream, and prints them with the container's
/// name padded to the longest (`p-web-1  | hello`) unless `prefix` is off.
pub struct Lines {
    names: Vec<String>,
    width: usize,
    prefix: bool,
    pending: Vec<[Vec<u8>; 2]>,
}

impl Lines {
    pub fn new(names: Vec<String>, prefix: bool) -> Lines {
        let width = names.iter().map(String::len).max().unwrap_or(0);
        let pending = names.iter().map(|_| [Vec::new(), Vec::new()]).collect();
        Lines {
            names,
            width,
            prefix,
            pending,
        }
    }

    fn emit(&self, i: usize, idx: usize, bytes: &[u8], stdout: &mut dyn Out, stderr: &mut dyn Out) {
        let text = String::from_utf8_lossy(bytes);
        let out: &mut dyn Out = if idx == 1 { stderr } else { stdout };
        if self.prefix {
            out.line(&format!("{:w$}  | {text}", self.names[i], w = self.width));
        } else {
            out.line(&text);
        }
    }

    /// Prints the complete lines of a chunk of container `i`'s log.
    pub fn feed(&mut self, i: usize, ch: &LogChunk, stdout: &mut dyn Out, stderr: &mut dyn Out) {
        let idx = usize::from(ch.stream == 2);
        self.pending[i][idx].extend_from_slice(&ch.data);
        while let Some(pos) = self.pending[i][idx].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending[i][idx].drain(..=pos).collect();
            self.emit(i, idx, &line[..line.len() - 1], stdout, stderr);
        }
    }

    /// Prints what is left of container `i`'s log without a final newline.
    pub fn finish(&mut self, i: usize, stdout: &mut dyn Out, stderr: &mut dyn Out) {
        for idx in 0..2 {
            let rest = std::mem::take(&mut self.pending[i][idx]);
            if !rest.is_empty() {
                self.emit(i, idx, &rest, stdout, stderr);
            }
        }
    }
}

/// `logs` (and `logs -f` with `follow`): each container's log, line by line with its prefix,
/// containers in dependency order (followed ones as their lines come).
pub async fn logs<E: Engine>(
    e: &E,
    p: &Project,
    opts: &LogOptions,
    stdout: &mut dyn Out,
    stderr: &mut dyn Out,
) -> UpResult<()> {
    let (tail, timestamps) = (opts.tail.as_deref(), opts.timestamps);
    let cs = containers(e, p, &opts.services, true).await?;
    let mut lines = Lines::new(cs.iter().map(|c| c.name.clone()).collect(), opts.prefix);
    if opts.follow {
        let ids: Vec<String> = cs.iter().map(|c| c.id.clone()).collect();
        let mut each = |i: usize, ev: LogEvent| match ev {
            LogEvent::Chunk(ch) => lines.feed(i, &ch, &mut *stdout, &mut *stderr),
            LogEvent::End { .. } => lines.finish(i, &mut *stdout, &mut *stderr),
        };
        e.follow_logs(&ids, tail, timestamps, &mut each).await?;
        return Ok(());
    }
    for (i, c) in cs.iter().enumerate() {
        for ch in e.logs(&c.id, tail, timestamps).await? {
            lines.feed(i, &ch, stdout, stderr);
        }
        lines.finish(i, stdout, stderr);
    }
    Ok(())
}
