//! `up`: networks, volumes, then each service's containers converged to its config (created,
//! recreated when the config hash changed, scaled up or down), then started in dependency
//! order, waiting for each `depends_on` condition. Progress lines as compose v2 prints them
//! without a terminal (` Container p-web-1  Started`).

use crate::convert::{config_hash, container_name, create_body, extra_networks};
use crate::engine::{ContainerSummary, Engine, EngineError};
use crate::labels;
use crate::model::{Condition, Project};
use crate::plan::start_order;
use crate::Out;
use serde_json::json;

/// Why `up` (or another command) stopped.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Compose(#[from] crate::error::ComposeError),
    /// Something the file asks for that wharf compose does not do yet.
    #[error("service {service:?}: {key} is not supported by wharf compose yet")]
    Unsupported { service: String, key: String },
    #[error("{what} {name:?}: {key} is not supported by wharf compose yet")]
    UnsupportedResource {
        what: &'static str,
        name: String,
        key: String,
    },
    #[error("network {0} declared as external, but could not be found")]
    ExternalNetwork(String),
    #[error("external volume {0:?} not found")]
    ExternalVolume(String),
    #[error("dependency failed to start: container {0} is unhealthy")]
    Unhealthy(String),
    #[error("service {service:?} didn't complete successfully: exit {code}")]
    NotCompleted { service: String, code: i64 },
    #[error("dependency failed to start: container {0} exited before it was healthy")]
    ExitedBeforeHealthy(String),
    #[error("no such service: {0}")]
    NoSuchService(String),
    #[error("service {0:?} has no build section")]
    NoBuild(String),
    #[error("service {service:?} refers to undefined secret {secret}")]
    UndefinedSecret { service: String, secret: String },
    #[error("service {service:?} refers to undefined config {config}")]
    UndefinedConfig { service: String, config: String },
    #[error("environment variable {var} required by {what} is not set")]
    MissingVariable { var: String, what: String },
    #[error("No such image: {0}")]
    NoImage(String),
}

pub type UpResult<T> = std::result::Result<T, UpError>;

#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Services named on the command line (all when empty).
    pub services: Vec<String>,
    pub remove_orphans: bool,
    pub force_recreate: bool,
    pub no_start: bool,
    /// Build the images of the services with `build` first (`up --build`).
    pub build: bool,
}

/// Refuses, by name, what is parsed but not implemented, for the services to run.
pub fn check_supported(p: &Project, services: &[String]) -> UpResult<()> {
    for name in services {
        let s = &p.services[name];
        if let Some(k) = s.unsupported.keys().next() {
            return Err(UpError::Unsupported {
                service: name.clone(),
                key: k.clone(),
            });
        }
        if let Some(k) = s.deploy.as_ref().and_then(|d| d.unsupported.keys().next()) {
            return Err(UpError::Unsupported {
                service: name.clone(),
                key: format!("deploy.{k}"),
            });
        }
        for p2 in &s.ports {
            if p2.mode != "ingress" && p2.mode != "host" {
                return Err(UpError::Unsupported {
                    service: name.clone(),
                    key: format!("ports mode {}", p2.mode),
                });
            }
        }
    }
    for (n, net) in &p.networks {
        if let Some(k) = net.unsupported.keys().next() {
            return Err(UpError::UnsupportedResource {
                what: "network",
                name: n.clone(),
                key: k.clone(),
            });
        }
    }
    for (n, v) in &p.volumes {
        if let Some(k) = v.unsupported.keys().next() {
            return Err(UpError::UnsupportedResource {
                what: "volume",
                name: n.clone(),
                key: k.clone(),
            });
        }
    }
    Ok(())
}

/// The project's containers (one-off ones left out), by service then number.
pub async fn project_containers<E: Engine>(
    e: &E,
    project: &str,
    all: bool,
) -> UpResult<Vec<ContainerSummary>> {
    let mut cs = e
        .list_containers(&[labels::project_filter(project)], all)
        .await?;
    cs.retain(|c| c.label(labels::ONEOFF) != Some("True"));
    cs.sort_by_key(|c| {
        (
            c.label(labels::SERVICE).unwrap_or("").to_string(),
            number(c),
        )
    });
    Ok(cs)
}

pub fn number(c: &ContainerSummary) -> u32 {
    c.label(labels::NUMBER)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Creates the project's networks and volumes that do not exist yet.
pub async fn ensure_resources<E: Engine>(e: &E, p: &Project, out: &mut dyn Out) -> UpResult<()> {
    let used_nets: std::collections::BTreeSet<&String> = p
        .services
        .values()
        .flat_map(|s| s.networks.keys())
        .collect();
    for (key, net) in &p.networks {
        if !used_nets.contains(key) {
            continue;
        }
        if e.inspect_network(&net.name).await?.is_some() {
            continue;
        }
        if net.external {
            return Err(UpError::ExternalNetwork(net.name.clone()));
        }
        out.line(&format!(" Network {}  Creating", net.name));
        let mut lbl = serde_json::Map::new();
        for (k, v) in &net.labels {
            lbl.insert(k.clone(), json!(v));
        }
        lbl.insert(labels::PROJECT.into(), json!(p.name));
        lbl.insert(labels::NETWORK.into(), json!(key));
        lbl.insert(labels::VERSION.into(), json!(labels::COMPOSE_VERSION));
        let body = json!({
            "Name": net.name,
            "Driver": net.driver.clone().unwrap_or_else(|| "bridge".into()),
            "Options": net.driver_opts,
            "Internal": net.internal,
            "Labels": lbl,
            "CheckDuplicate": true,
        });
        e.create_network(&body).await?;
        out.line(&format!(" Network {}  Created", net.name));
    }
    for (key, vol) in &p.volumes {
        if e.inspect_volume(&vol.name).await?.is_some() {
            continue;
        }
        if vol.external {
            return Err(UpError::ExternalVolume(vol.name.clone()));
        }
        out.line(&format!(" Volume \"{}\"  Creating", vol.name));
        let mut lbl = serde_json::Map::new();
        for (k, v) in &vol.labels {
            lbl.insert(k.clone(), json!(v));
        }
        lbl.insert(labels::PROJECT.into(), json!(p.name));
        lbl.insert(labels::VOLUME.into(), json!(key));
        lbl.insert(labels::VERSION.into(), json!(labels::COMPOSE_VERSION));
        let body = json!({
            "Name": vol.name,
            "Driver": vol.driver.clone().unwrap_or_else(|| "local".into()),
            "DriverOpts": vol.driver_opts,
            "Labels": lbl,
        });
        e.create_volume(&body).await?;
        out.line(&format!(" Volume \"{}\"  Created", vol.name));
    }
    Ok(())
}

async fn create_one<E: Engine>(
    e: &E,
    p: &Project,
    svc: &str,
    n: u32,
    image_id: &str,
) -> UpResult<String> {
    let s = &p.services[svc];
    let name = container_name(&p.name, svc, s, n);
    let sp = crate::secrets::plan(p, svc)?;
    let mut body = create_body(p, svc, s, n, image_id);
    if !sp.mounts.is_empty() {
        let mounts = body["HostConfig"]
            .as_object_mut()
            .map(|h| h.entry("Mounts").or_insert_with(|| json!([])));
        if let Some(serde_json::Value::Array(m)) = mounts {
            m.extend(sp.mounts.iter().cloned());
        }
    }
    let id = e.create_container(&name, &body).await?;
    for i in &sp.injections {
        e.copy_to_container(&id, crate::secrets::tar_of(i), i.copy_uid_gid)
            .await?;
    }
    for (net, ep) in extra_networks(p, svc, s, n) {
        e.connect_network(&net, &id, &ep).await?;
    }
    Ok(id)
}

fn stop_timeout(p: &Project, svc: &str) -> Option<u64> {
    p.services
        .get(svc)?
        .stop_grace_period
        .as_deref()
        .and_then(crate::convert::parse_duration)
        .map(|ns| (ns / 1_000_000_000) as u64)
}

/// `up`.
pub async fn up<E: Engine>(
    e: &E,
    p: &Project,
    opts: &UpOptions,
    out: &mut dyn Out,
) -> UpResult<()> {
    for s in &opts.services {
        if !p.services.contains_key(s) {
            return Err(UpError::NoSuchService(s.clone()));
        }
    }
    let order = start_order(p, &opts.services, true)?;
    check_supported(p, &order)?;
    let existing = project_containers(e, &p.name, true).await?;
    let orphans: Vec<&ContainerSummary> = existing
        .iter()
        .filter(|c| {
            !c.label(labels::SERVICE)
                .is_some_and(|s| p.services.contains_key(s) || p.disabled.contains_key(s))
        })
        .collect();
    if !orphans.is_empty() {
        if opts.remove_orphans {
            for c in &orphans {
                out.line(&format!(" Container {}  Stopping", c.name));
                e.stop_container(&c.id, None).await?;
                out.line(&format!(" Container {}  Stopped", c.name));
                out.line(&format!(" Container {}  Removing", c.name));
                e.remove_container(&c.id, true, false).await?;
                out.line(&format!(" Container {}  Removed", c.name));
            }
        } else {
            let names: Vec<&str> = orphans.iter().map(|c| c.name.as_str()).collect();
            out.line(&format!("WARN[0000] Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up. ", names.join(" ")));
        }
    }
    ensure_resources(e, p, out).await?;
    for svc in &order {
        for w in crate::secrets::plan(p, svc)?.warnings {
            out.line(&w);
        }
    }
    // Converge: each service's containers to its current config and replica count.
    let mut to_start: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for svc in &order {
        let s = &p.services[svc];
        let image_id = crate::build::ensure_image(e, p, svc, opts.build, out).await?;
        let hash = config_hash(s);
        let want = s.replicas();
        let mut mine: Vec<&ContainerSummary> = existing
            .iter()
            .filter(|c| c.label(labels::SERVICE) == Some(svc.as_str()))
            .collect();
        mine.sort_by_key(|c| number(c));
        let mut containers = Vec::new();
        for c in &mine {
            let n = number(c);
            if n == 0 || n > want {
                out.line(&format!(" Container {}  Stopping", c.name));
                e.stop_container(&c.id, stop_timeout(p, svc)).await?;
                out.line(&format!(" Container {}  Stopped", c.name));
                out.line(&format!(" Container {}  Removing", c.name));
                e.remove_container(&c.id, true, false).await?;
                out.line(&format!(" Container {}  Removed", c.name));
            } else if opts.force_recreate
                || c.label(labels::CONFIG_HASH) != Some(hash.as_str())
                // As compose v2: a container of another image (rebuilt, pulled) is recreated.
                || c.label(labels::IMAGE) != Some(image_id.as_str())
            {
                out.line(&format!(" Container {}  Recreate", c.name));
                e.stop_container(&c.id, stop_timeout(p, svc)).await?;
                e.remove_container(&c.id, true, false).await?;
                let id = create_one(e, p, svc, n, &image_id).await?;
                out.line(&format!(" Container {}  Recreated", c.name));
                containers.push((id, c.name.clone()));
            } else {
                if c.state == "running" {
                    out.line(&format!(" Container {}  Running", c.name));
                }
                containers.push((c.id.clone(), c.name.clone()));
            }
        }
        for n in 1..=want {
            if mine.iter().any(|c| number(c) == n) {
                continue;
            }
            let name = container_name(&p.name, svc, s, n);
            out.line(&format!(" Container {name}  Creating"));
            let id = create_one(e, p, svc, n, &image_id).await?;
            out.line(&format!(" Container {name}  Created"));
            containers.push((id, name));
        }
        to_start.push((svc.clone(), containers));
    }
    if opts.no_start {
        return Ok(());
    }
    for (svc, containers) in &to_start {
        wait_dependencies(e, p, svc, &to_start, out).await?;
        for (id, name) in containers {
            let st = e.inspect_container(id).await?;
            if st.status == "running" {
                continue;
            }
            out.line(&format!(" Container {name}  Starting"));
            e.start_container(id).await?;
            out.line(&format!(" Container {name}  Started"));
        }
    }
    Ok(())
}

/// Waits for each `depends_on` condition of `svc` on its dependencies' containers.
async fn wait_dependencies<E: Engine>(
    e: &E,
    p: &Project,
    svc: &str,
    started: &[(String, Vec<(String, String)>)],
    out: &mut dyn Out,
) -> UpResult<()> {
    let s = &p.services[svc];
    for (dep, cond) in &s.depends_on {
        if cond.condition == Condition::ServiceStarted {
            continue;
        }
        let Some((_, containers)) = started.iter().find(|(n, _)| n == dep) else {
            continue;
        };
        for (id, name) in containers {
            out.line(&format!(" Container {name}  Waiting"));
            let mut st = e.inspect_container(id).await?;
            loop {
                let stopped =
                    st.status != "running" && st.status != "created" && st.status != "restarting";
                match cond.condition {
                    Condition::ServiceHealthy => match st.health.as_deref() {
                        Some("healthy") => {
                            out.line(&format!(" Container {name}  Healthy"));
                            break;
                        }
                        Some("unhealthy") => return Err(UpError::Unhealthy(name.clone())),
                        _ if stopped => return Err(UpError::ExitedBeforeHealthy(name.clone())),
                        None if st.status == "running" => {
                            return Err(UpError::Unhealthy(format!(
                                "{name} (it has no healthcheck)"
                            )))
                        }
                        _ => {}
                    },
                    Condition::ServiceCompletedSuccessfully => {
                        if st.status == "exited" || st.status == "dead" {
                            if st.exit_code != 0 {
                                return Err(UpError::NotCompleted {
                                    service: dep.clone(),
                                    code: st.exit_code,
                                });
                            }
                            out.line(&format!(" Container {name}  Exited"));
                            break;
                        }
                    }
                    Condition::ServiceStarted => break,
                }
                // No polling here: the engine says when the state changed (its events).
                st = e.wait_change(id, &st).await?;
            }
        }
    }
    Ok(())
}

/// `up` without `-d`, after [`up`]: "Attaching to ..." and the logs of the services' containers
/// followed (prefixed) until every one of them stops, each end reported as compose v2 does
/// (`p-web-1 exited with code 0`). The caller stops the containers on Ctrl-C.
pub async fn attach<E: Engine>(
    e: &E,
    p: &Project,
    services: &[String],
    stdout: &mut dyn Out,
    stderr: &mut dyn Out,
) -> UpResult<()> {
    let cs = crate::ops::containers(e, p, services, true).await?;
    let names: Vec<String> = cs.iter().map(|c| c.name.clone()).collect();
    stdout.line(&format!("Attaching to {}", names.join(", ")));
    let ids: Vec<String> = cs.iter().map(|c| c.id.clone()).collect();
    let mut lines = crate::ops::Lines::new(names.clone(), true);
    let mut each = |i: usize, ev: crate::engine::LogEvent| match ev {
        crate::engine::LogEvent::Chunk(ch) => lines.feed(i, &ch, &mut *stdout, &mut *stderr),
        crate::engine::LogEvent::End { exit_code } => {
            lines.finish(i, &mut *stdout, &mut *stderr);
            stdout.line(&format!("{} exited with code {exit_code}", names[i]));
        }
    };
    e.follow_logs(&ids, None, false, &mut each).await?;
    Ok(())
}
