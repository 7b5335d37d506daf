//! The commands over existing containers: `ps`, `logs`, `start`, `stop`, `restart`, `rm`.

use crate::engine::{ContainerSummary, Engine};
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
}

/// `logs`: each container's log, every line prefixed with the container's name padded to the
/// longest (`p-web-1  | hello`), containers in dependency order.
pub async fn logs<E: Engine>(
    e: &E,
    p: &Project,
    opts: &LogOptions,
    stdout: &mut dyn Out,
    stderr: &mut dyn Out,
) -> UpResult<()> {
    let (tail, timestamps, prefix) = (opts.tail.as_deref(), opts.timestamps, opts.prefix);
    let cs = containers(e, p, &opts.services, true).await?;
    let width = cs.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in &cs {
        let chunks = e.logs(&c.id, tail, timestamps).await?;
        let mut pending = [Vec::new(), Vec::new()];
        for ch in chunks {
            let idx = usize::from(ch.stream == 2);
            pending[idx].extend_from_slice(&ch.data);
            while let Some(pos) = pending[idx].iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending[idx].drain(..=pos).collect();
                let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                let out: &mut dyn Out = if idx == 1 { &mut *stderr } else { &mut *stdout };
                if prefix {
                    out.line(&format!("{:width$}  | {text}", c.name));
                } else {
                    out.line(&text);
                }
            }
        }
        for (idx, rest) in pending.iter().enumerate() {
            if !rest.is_empty() {
                let text = String::from_utf8_lossy(rest).into_owned();
                let out: &mut dyn Out = if idx == 1 { &mut *stderr } else { &mut *stdout };
                if prefix {
                    out.line(&format!("{:width$}  | {text}", c.name));
                } else {
                    out.line(&text);
                }
            }
        }
    }
    Ok(())
}
