//! `wharf compose watch`: `up` of the services, then their `develop.watch` paths watched with
//! inotify (no polling); each batch of changes (gathered for 300 ms after the first) is
//! planned by wharf-compose's `watch::plan` and done here: files synced into the running
//! containers (a tar through `PUT /containers/{id}/archive`, a deleted one removed by an
//! exec of `rm -rf`), containers restarted, `sync+exec`'s commands run in them (an attached
//! exec, as `docker exec`), or the image rebuilt and the service recreated. Before watching,
//! the rules with `initial_sync` copy their files in.

use super::{Api, Stderr};
use crate::client::enc_path;
use crate::commands::status;
use anyhow::{Context, Result};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wharf_compose::engine::Engine;
use wharf_compose::Project;

fn mask() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_ATTRIB
}

/// Watches `dir` and the directories under it.
fn add_tree(ino: &Inotify, dir: &Path, wds: &mut HashMap<WatchDescriptor, PathBuf>) {
    if let Ok(wd) = ino.add_watch(dir, mask()) {
        wds.insert(wd, dir.to_path_buf());
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                add_tree(ino, &e.path(), wds);
            }
        }
    }
}

/// The watching thread: every changed path, as it comes. `ready` is told once every root is
/// watched: a change made before that would be missed.
fn watcher(
    roots: Vec<PathBuf>,
    tx: tokio::sync::mpsc::UnboundedSender<PathBuf>,
    ready: tokio::sync::oneshot::Sender<()>,
) -> Result<()> {
    let ino = Inotify::init(InitFlags::IN_CLOEXEC).context("inotify_init")?;
    let mut wds = HashMap::new();
    for r in &roots {
        if r.is_dir() {
            add_tree(&ino, r, &mut wds);
        } else if let Some(parent) = r.parent() {
            // A file is watched through its directory: editors replace files.
            if let Ok(wd) = ino.add_watch(parent, mask()) {
                wds.insert(wd, parent.to_path_buf());
            }
        }
    }
    let _ = ready.send(());
    loop {
        let events = ino.read_events().context("reading inotify events")?;
        for e in events {
            let Some(dir) = wds.get(&e.wd).cloned() else {
                continue;
            };
            let path = match &e.name {
                Some(n) => dir.join(n),
                None => dir,
            };
            if e.mask.contains(AddWatchFlags::IN_ISDIR)
                && e.mask
                    .intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)
            {
                add_tree(&ino, &path, &mut wds);
            }
            if tx.send(path).is_err() {
                return Ok(());
            }
        }
    }
}

/// Whether `.dockerignore`-style patterns (a rule's `ignore` or `include`) match `rel`.
fn matches(patterns: &[String], rel: &str) -> bool {
    if patterns.is_empty() {
        return false;
    }
    wharf_build::dockerignore::Matcher::parse(&patterns.join("\n"), "watch patterns")
        .map(|m| m.excludes(rel))
        .unwrap_or(false)
}

/// Runs a `sync+exec` hook in a container, attached (its output is ours); its exit code.
async fn run_hook(api: &Api<'_>, container: &str, h: &wharf_compose::watch::Hook) -> Result<i32> {
    let mut container_and_cmd = vec![container.to_string()];
    container_and_cmd.extend(h.command.iter().cloned());
    let args = crate::cli::ExecArgs {
        detach: false,
        interactive: false,
        tty: false,
        env: h.environment.clone(),
        env_file: Vec::new(),
        workdir: h.working_dir.clone(),
        user: h.user.clone(),
        privileged: h.privileged,
        detach_keys: None,
        container_and_cmd,
    };
    crate::commands::container::exec(api.ctx, args).await
}

/// Appends the files under `host` (a file, or a directory's files) as `name`.
fn append_files(b: &mut tar::Builder<Vec<u8>>, host: &Path, name: &str) -> Result<()> {
    if host.is_dir() {
        for e in std::fs::read_dir(host)?.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            append_files(b, &e.path(), &format!("{name}/{n}"))?;
        }
    } else if host.is_file() {
        b.append_path_with_name(host, name)?;
    }
    Ok(())
}

/// The tar of a host file, or of the files of a directory, named `dest` (relative to `/`):
/// files only, their directories made by the extraction as for any file.
fn tar_of(host: &Path, dest: &str) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    append_files(&mut b, host, dest.trim_start_matches('/'))?;
    Ok(b.into_inner()?)
}

async fn sync(
    api: &Api<'_>,
    id: &str,
    files: &std::collections::BTreeMap<PathBuf, String>,
) -> Result<()> {
    for (host, dest) in files {
        if host.exists() {
            let tar = tar_of(host, dest)?;
            api.copy_to_container(id, tar, false)
                .await
                .map_err(|e| status(1, e.to_string()))?;
        } else {
            let c = &api.ctx.client;
            let x = c
                .post_json(
                    &format!("/containers/{}/exec", enc_path(id)),
                    Some(&json!({"Cmd": ["rm", "-rf", dest]})),
                )
                .await?;
            let xid = x["Id"].as_str().unwrap_or("");
            c.post_json(
                &format!("/exec/{}/start", enc_path(xid)),
                Some(&json!({"Detach": true})),
            )
            .await?;
        }
    }
    Ok(())
}

pub(super) async fn watch(
    api: &Api<'_>,
    project: &Project,
    services: &[String],
    no_up: bool,
) -> Result<i32> {
    let fail = |e: wharf_compose::up::UpError| status(1, e.to_string());
    let roots = wharf_compose::watch::paths(project, services);
    if roots.is_empty() {
        return Err(status(
            1,
            "none of the selected services is configured for watch, consider setting a 'develop' section",
        ));
    }
    if !no_up {
        let o = wharf_compose::up::UpOptions {
            services: services.to_vec(),
            ..Default::default()
        };
        wharf_compose::up::up(api, project, &o, &mut Stderr)
            .await
            .map_err(fail)?;
    }
    for (svc, files) in wharf_compose::watch::initial_sync(project, services, &matches) {
        let cs = wharf_compose::ops::containers(api, project, std::slice::from_ref(&svc), false)
            .await
            .map_err(fail)?;
        for c in &cs {
            sync(api, &c.id, &files)
                .await
                .with_context(|| format!("initial sync of service {svc:?} to {}", c.name))?;
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        if let Err(e) = watcher(roots, tx, ready_tx) {
            eprintln!("watch: {e:#}");
        }
    });
    // "Watch enabled" only once the watches are in place (what a user, or a test, changes
    // after reading it is seen); the watcher failing to start drops the sender.
    if ready.await.is_err() {
        return Err(status(1, "the file watcher could not start"));
    }
    eprintln!("Watch enabled");
    loop {
        let first = tokio::select! {
            p = rx.recv() => match p { Some(p) => p, None => break },
            _ = tokio::signal::ctrl_c() => break,
        };
        let mut changed = vec![first];
        let until = tokio::time::Instant::now() + Duration::from_millis(300);
        while let Ok(Some(p)) = tokio::time::timeout_at(until, rx.recv()).await {
            changed.push(p);
        }
        changed.sort();
        changed.dedup();
        let batches = wharf_compose::watch::plan(project, services, &changed, &matches);
        for (svc, b) in batches {
            if b.rebuild {
                eprintln!("Rebuilding service {svc:?} after changes were detected...");
                let one = std::slice::from_ref(&svc);
                let bo = wharf_compose::build::BuildOptions::default();
                let r = wharf_compose::build::build(api, project, one, &bo, &mut Stderr).await;
                if let Err(e) = r {
                    // A failed build leaves the running containers as they are.
                    eprintln!("Build failed: {e}");
                    continue;
                }
                let o = wharf_compose::up::UpOptions {
                    services: one.to_vec(),
                    ..Default::default()
                };
                wharf_compose::up::up(api, project, &o, &mut Stderr)
                    .await
                    .map_err(fail)?;
                eprintln!("service {svc:?} successfully built");
                continue;
            }
            let cs =
                wharf_compose::ops::containers(api, project, std::slice::from_ref(&svc), false)
                    .await
                    .map_err(fail)?;
            if !b.sync.is_empty() {
                eprintln!(
                    "Syncing service {svc:?} after {} changed files",
                    b.sync.len()
                );
                for c in &cs {
                    // A failed sync is reported; the watch goes on (as v2's).
                    if let Err(e) = sync(api, &c.id, &b.sync).await {
                        eprintln!("Error syncing service {svc:?} to {}: {e:#}", c.name);
                    }
                }
            }
            if b.restart {
                for c in &cs {
                    api.restart_container(&c.id, None)
                        .await
                        .map_err(|e| status(1, e.to_string()))?;
                }
                eprintln!("service {svc:?} restarted");
            }
            for h in &b.exec {
                for c in &cs {
                    match run_hook(api, &c.name, h).await {
                        Ok(0) => {}
                        Ok(code) => eprintln!(
                            "Error running exec hook of service {svc:?} in {}: exit status {code}",
                            c.name
                        ),
                        Err(e) => eprintln!(
                            "Error running exec hook of service {svc:?} in {}: {e:#}",
                            c.name
                        ),
                    }
                }
            }
        }
    }
    Ok(0)
}
