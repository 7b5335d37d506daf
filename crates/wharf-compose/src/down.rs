//! `down`: the project's containers stopped and removed (dependents first), then its
//! networks, and with `-v` its named volumes.

use crate::engine::Engine;
use crate::labels;
use crate::model::Project;
use crate::plan::start_order;
use crate::up::{number, project_containers, UpResult};
use crate::Out;

#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    pub volumes: bool,
    pub remove_orphans: bool,
    pub timeout: Option<u64>,
}

pub async fn down<E: Engine>(
    e: &E,
    p: &Project,
    opts: &DownOptions,
    out: &mut dyn Out,
) -> UpResult<()> {
    let mut order = start_order(p, &[], false)?;
    order.reverse();
    let containers = project_containers(e, &p.name, true).await?;
    let known = |s: &str| p.services.contains_key(s) || p.disabled.contains_key(s);
    // One-off containers (`run`) go first, as compose v2's down takes them too.
    let oneoffs = e
        .list_containers(
            &[
                labels::project_filter(&p.name),
                format!("{}=True", labels::ONEOFF),
            ],
            true,
        )
        .await?;
    let mut doomed: Vec<&crate::engine::ContainerSummary> = oneoffs.iter().collect();
    for svc in &order {
        let mut mine: Vec<_> = containers
            .iter()
            .filter(|c| c.label(labels::SERVICE) == Some(svc.as_str()))
            .collect();
        mine.sort_by_key(|c| std::cmp::Reverse(number(c)));
        doomed.extend(mine);
    }
    doomed.extend(containers.iter().filter(|c| {
        c.label(labels::SERVICE)
            .is_some_and(|s| p.disabled.contains_key(s))
    }));
    let orphans: Vec<_> = containers
        .iter()
        .filter(|c| !c.label(labels::SERVICE).is_some_and(known))
        .collect();
    // Without a file every container of the project is one to remove.
    if opts.remove_orphans || p.is_by_name() {
        doomed.extend(orphans.iter().copied());
    } else if !orphans.is_empty() {
        let names: Vec<&str> = orphans.iter().map(|c| c.name.as_str()).collect();
        out.line(&format!("WARN[0000] Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up. ", names.join(" ")));
    }
    for c in &doomed {
        if c.state == "running" || c.state == "paused" || c.state == "restarting" {
            out.line(&format!(" Container {}  Stopping", c.name));
            e.stop_container(&c.id, opts.timeout).await?;
            out.line(&format!(" Container {}  Stopped", c.name));
        }
        out.line(&format!(" Container {}  Removing", c.name));
        e.remove_container(&c.id, true, false).await?;
        out.line(&format!(" Container {}  Removed", c.name));
    }
    // Networks: those of the file that exist, and any other with the project's label.
    let mut nets: Vec<String> = Vec::new();
    for net in p.networks.values() {
        if !net.external && e.inspect_network(&net.name).await?.is_some() {
            nets.push(net.name.clone());
        }
    }
    for n in e.list_networks(&[labels::project_filter(&p.name)]).await? {
        if !nets.contains(&n.name) && !p.networks.values().any(|x| x.external && x.name == n.name) {
            nets.push(n.name);
        }
    }
    for n in nets {
        out.line(&format!(" Network {n}  Removing"));
        e.remove_network(&n).await?;
        out.line(&format!(" Network {n}  Removed"));
    }
    if opts.volumes && p.is_by_name() {
        for v in e.list_volumes(&[labels::project_filter(&p.name)]).await? {
            out.line(&format!(" Volume {}  Removing", v.name));
            e.remove_volume(&v.name).await?;
            out.line(&format!(" Volume {}  Removed", v.name));
        }
    }
    if opts.volumes {
        for v in p.volumes.values() {
            if v.external {
                continue;
            }
            if e.inspect_volume(&v.name).await?.is_some() {
                out.line(&format!(" Volume {}  Removing", v.name));
                e.remove_volume(&v.name).await?;
                out.line(&format!(" Volume {}  Removed", v.name));
            }
        }
    }
    Ok(())
}
