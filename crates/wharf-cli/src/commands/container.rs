//! Container commands: run/create/start and the attached session, stop/kill/rm, ps, logs,
//! exec, top, stats, cp, diff, export, commit, pause, rename, update, wait, port, prune.

use super::{each, status, Ctx, StatusError};
use crate::cli::*;
use crate::client::{daemon_error, enc, enc_path, DaemonError};
use crate::format::human::{ago, bytes_size, go_time_string, human_size_prec};
use crate::format::names::{display_ports, ellipsis, familiar, go_quote, short_id};
use crate::format::{table, Format};
use crate::opts::{parse, run as runopts};
use crate::{stream, tty};
use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::Arc;

/// docker's `withHelp`: "wharf: <err>\n\nRun 'wharf <cmd> --help' for more information".
fn with_help(e: &anyhow::Error, cmd: &str) -> String {
    format!("wharf: {e:#}\n\nRun 'wharf {cmd} --help' for more information")
}

/// Wraps failures of run/create as docker does: exit 125 with the help hint, unless the
/// error already carries its status.
fn as_run_error(e: anyhow::Error, cmd: &str) -> anyhow::Error {
    if e.downcast_ref::<StatusError>().is_some() {
        return e;
    }
    status(125, with_help(&e, cmd))
}

/// Exit code docker derives from a failed start: 127 not found, 126 cannot invoke, else 125.
pub fn start_failure_code(msg: &str) -> i32 {
    if msg.contains("executable file not found")
        || msg.contains("no such file or directory")
        || msg.contains("system cannot find the file specified")
    {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        125
    }
}

pub async fn inspect_container(ctx: &Ctx, id: &str) -> Result<Value> {
    ctx.client
        .get_json(&format!("/containers/{}/json", enc_path(id)))
        .await
}

/// Pulls `image` with its progress on stderr (what `run` does for a missing image).
async fn pull_for_run(ctx: &Ctx, image: &str, platform: Option<&str>, quiet: bool) -> Result<()> {
    let (repo, tag) = crate::format::names::split_tag(image);
    let digest = image.split_once('@').map(|(_, d)| d.to_string());
    let mut q = format!("/images/create?fromImage={}", enc(&repo));
    match (&digest, tag) {
        (Some(d), _) => q = format!("/images/create?fromImage={}", enc(&format!("{repo}@{d}"))),
        (None, Some(t)) => q.push_str(&format!("&tag={}", enc(&t))),
        (None, None) => q.push_str("&tag=latest"),
    }
    if let Some(p) = platform {
        q.push_str(&format!("&platform={}", enc(p)));
    }
    let auth = crate::credentials::header_for_image(&ctx.config_dir, image)?;
    let resp = ctx
        .client
        .request_with_headers("POST", &q, None, &[("X-Registry-Auth", &auth)])
        .await?;
    let mut err = std::io::stderr();
    let mut sink = std::io::sink();
    let out: &mut dyn Write = if quiet { &mut sink } else { &mut err };
    stream::show_progress(
        resp.into_body(),
        out,
        tty::is_tty(std::os::fd::AsFd::as_fd(&std::io::stderr())),
    )
    .await?;
    Ok(())
}

fn with_latest(image: &str) -> String {
    let (_, tag) = crate::format::names::split_tag(image);
    if tag.is_none() && !image.contains('@') {
        format!("{image}:latest")
    } else {
        image.to_string()
    }
}

/// Creates the container, pulling the image first when missing (per `--pull`).
async fn create_container(ctx: &Ctx, a: &RunArgs) -> Result<String> {
    let plan = runopts::create_body(a)?;
    if a.pull == "always" {
        pull_for_run(ctx, &plan.image, a.platform.as_deref(), a.quiet).await?;
    } else if !matches!(a.pull.as_str(), "missing" | "never") {
        bail!(
            "invalid pull option: '{}': must be one of \"always\", \"missing\" or \"never\"",
            a.pull
        );
    }
    let mut path = "/containers/create".to_string();
    let mut sep = '?';
    if let Some(n) = &a.name {
        path.push_str(&format!("{sep}name={}", enc(n)));
        sep = '&';
    }
    if let Some(p) = &a.platform {
        path.push_str(&format!("{sep}platform={}", enc(p)));
    }
    let resp = match ctx.client.post_json(&path, Some(&plan.body)).await {
        Ok(r) => r,
        Err(e)
            if daemon_error(&e).is_some_and(|d| {
                d.is_not_found() && d.message.to_lowercase().contains("image")
            }) && a.pull == "missing" =>
        {
            eprintln!(
                "Unable to find image '{}' locally",
                with_latest(&plan.image)
            );
            pull_for_run(ctx, &plan.image, a.platform.as_deref(), a.quiet).await?;
            ctx.client.post_json(&path, Some(&plan.body)).await?
        }
        Err(e) => return Err(e),
    };
    for w in resp["Warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str() {
            eprintln!("WARNING: {w}");
        }
    }
    let id = resp["Id"]
        .as_str()
        .context("the daemon's create answer has no Id")?
        .to_string();
    if let Some(f) = &a.cidfile {
        std::fs::write(f, &id).with_context(|| format!("writing the container ID file {f}"))?;
    }
    Ok(id)
}

/// docker 28: flag values it cannot parse are usage errors (125 with the help hint); the
/// daemon's errors are plain ones (exit 1), unlike `run`.
pub async fn create(ctx: &Ctx, a: RunArgs) -> Result<i32> {
    runopts::create_body(&a).map_err(|e| as_run_error(e, "create"))?;
    if !matches!(a.pull.as_str(), "always" | "missing" | "never") {
        return Err(as_run_error(
            anyhow::anyhow!(
                "invalid pull option: '{}': must be one of \"always\", \"missing\" or \"never\"",
                a.pull
            ),
            "create",
        ));
    }
    let id = create_container(ctx, &a).await?;
    println!("{id}");
    Ok(0)
}

pub async fn run(ctx: &Ctx, a: RunArgs) -> Result<i32> {
    run_inner(ctx, &a).await.map_err(|e| as_run_error(e, "run"))
}

async fn run_inner(ctx: &Ctx, a: &RunArgs) -> Result<i32> {
    let (att_in, att_out, att_err) = runopts::attach_streams(a)?;
    if a.tty && att_in && !tty::stdin_is_tty() {
        return Err(status(1, "the input device is not a TTY"));
    }
    let id = create_container(ctx, a).await?;
    if a.detach {
        start_or_code(ctx, &id, &with_help_cmd("run")).await?;
        println!("{id}");
        return Ok(0);
    }
    let session = Session {
        id: id.clone(),
        tty: a.tty,
        stdin: att_in,
        stdout: att_out,
        stderr: att_err,
        detach_keys: a.detach_keys.clone(),
        sig_proxy: a.sig_proxy && !a.tty,
        auto_remove: a.rm,
    };
    session.run(ctx, true).await
}

fn with_help_cmd(cmd: &str) -> String {
    cmd.to_string()
}

/// POST start; a failure becomes docker's 125/126/127 with the help hint.
async fn start_or_code(ctx: &Ctx, id: &str, cmd: &str) -> Result<()> {
    if let Err(e) = ctx
        .client
        .post_json(&format!("/containers/{}/start", enc_path(id)), None)
        .await
    {
        let code = match daemon_error(&e) {
            Some(d) => start_failure_code(&d.message),
            None => 125,
        };
        if e.downcast_ref::<crate::client::ConnectError>().is_some() {
            return Err(e);
        }
        return Err(status(code, with_help(&e, cmd)));
    }
    Ok(())
}

/// An attached run of a container: attach before start, wait for its exit, proxy signals.
struct Session {
    id: String,
    tty: bool,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    detach_keys: Option<String>,
    sig_proxy: bool,
    auto_remove: bool,
}

impl Session {
    async fn run(&self, ctx: &Ctx, start: bool) -> Result<i32> {
        let mut q = format!(
            "/containers/{}/attach?stream=1&stdin={}&stdout={}&stderr={}",
            enc_path(&self.id),
            self.stdin as u8,
            self.stdout as u8,
            self.stderr as u8
        );
        if let Some(k) = &self.detach_keys {
            q.push_str(&format!("&detachKeys={}", enc(k)));
        }
        let io = ctx.client.hijack(&q, None).await?;
        let cond = if self.auto_remove {
            "removed"
        } else {
            "next-exit"
        };
        let wait = ctx
            .client
            .request(
                "POST",
                &format!("/containers/{}/wait?condition={cond}", enc_path(&self.id)),
                None,
            )
            .await?;
        let wait_task = tokio::spawn(async move { crate::client::read_json(wait).await });
        // Before the start, as docker does: a signal that arrives once the container runs
        // must be forwarded, not kill us.
        if self.sig_proxy {
            proxy_signals(ctx.client.clone(), self.id.clone());
        }
        if start {
            start_or_code(ctx, &self.id, "run").await?;
        }
        let _raw = if self.tty && self.stdin && tty::stdin_is_tty() {
            Some(tty::RawMode::enable()?)
        } else {
            None
        };
        if self.tty && tty::stdout_is_tty() {
            tty::forward_resizes(
                ctx.client.clone(),
                format!("/containers/{}/resize", enc_path(&self.id)),
            );
        }
        // On a tty the detach keys are caught here, as docker's escape proxy does (the
        // daemon is told them too, for clients that do not).
        let keys = if self.tty && self.stdin {
            Some(parse::detach_keys(self.detach_keys.as_deref())?)
        } else {
            None
        };
        if stream::pump(io, self.tty, self.stdin, keys).await? {
            return Ok(0);
        }
        // The stream ended: the container exited, or (only possible with a non-tty stdin,
        // whose detach keys the daemon watches) the daemon detached us and it still runs.
        // Otherwise the wait's answer is awaited however long the daemon takes: a 2 s guess
        // followed by inspect took a container not yet marked exited for a detached one.
        let mut wait_task = wait_task;
        if self.stdin && !self.tty {
            // Up to 10 s for the wait or for inspect to show the exit; still running then
            // means a detach.
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let tick = tokio::time::sleep(std::time::Duration::from_millis(500));
                tokio::select! {
                    r = &mut wait_task => return wait_status(r),
                    _ = tick => {}
                }
                // (Gone already with --rm: the wait answers.)
                let Ok(c) = inspect_container(ctx, &self.id).await else {
                    continue;
                };
                if c["State"]["Running"].as_bool() != Some(true) {
                    if let Ok(r) =
                        tokio::time::timeout(std::time::Duration::from_secs(1), &mut wait_task)
                            .await
                    {
                        return wait_status(r);
                    }
                    return Ok(c["State"]["ExitCode"].as_i64().unwrap_or(0) as i32);
                }
                if tokio::time::Instant::now() > deadline {
                    // Detached with the detach keys: the container goes on.
                    return Ok(0);
                }
            }
        }
        wait_status(wait_task.await)
    }
}

/// The exit status from a `/wait` answer (printing its error message, as docker does).
fn wait_status(r: Result<Result<Value>, tokio::task::JoinError>) -> Result<i32> {
    let v = r??;
    if let Some(m) = v["Error"]["Message"].as_str() {
        if !m.is_empty() {
            eprintln!("{m}");
        }
    }
    Ok(v["StatusCode"].as_i64().unwrap_or(0) as i32)
}

/// Forwards the signals we receive to the container (`--sig-proxy`), as docker does.
fn proxy_signals(client: Arc<crate::client::Client>, id: String) {
    use tokio::signal::unix::{signal, SignalKind};
    for sig in [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ] {
        let client = client.clone();
        let id = id.clone();
        // Registered here, not in the task, so that the handlers are in place on return.
        let Ok(mut s) = signal(SignalKind::from_raw(sig)) else {
            continue;
        };
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                let _ = client
                    .post_json(
                        &format!(
                            "/containers/{}/kill?signal={}",
                            enc_path(&id),
                            parse::signal_name(sig)
                        ),
                        None,
                    )
                    .await;
            }
        });
    }
}

pub async fn start(ctx: &Ctx, a: StartArgs) -> Result<i32> {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            return Err(status(
                1,
                "you cannot start and attach multiple containers at once",
            ));
        }
        let c = inspect_container(ctx, &a.containers[0]).await?;
        let id = c["Id"].as_str().unwrap_or_default().to_string();
        let tty = c["Config"]["Tty"].as_bool().unwrap_or(false);
        let open_stdin = c["Config"]["OpenStdin"].as_bool().unwrap_or(false);
        let session = Session {
            id,
            tty,
            stdin: a.interactive && open_stdin,
            stdout: true,
            stderr: true,
            detach_keys: a.detach_keys,
            sig_proxy: !tty,
            auto_remove: c["HostConfig"]["AutoRemove"].as_bool().unwrap_or(false),
        };
        return session.run(ctx, true).await.map_err(|e| {
            if e.downcast_ref::<StatusError>().is_some() {
                e
            } else {
                status(1, format!("{e:#}"))
            }
        });
    }
    let client = ctx.client.clone();
    let r = each(&a.containers, true, |n| {
        let client = client.clone();
        async move {
            client
                .post_json(&format!("/containers/{}/start", enc_path(&n)), None)
                .await
                .map(|_| ())
        }
    })
    .await;
    r.map_err(|e| match e.downcast::<StatusError>() {
        Ok(s) => status(
            s.code,
            format!(
                "{}\nError: failed to start containers: {}",
                s.message,
                a.containers.join(", ")
            ),
        ),
        Err(e) => e,
    })
}

pub async fn stop(ctx: &Ctx, a: StopArgs, restart: bool) -> Result<i32> {
    let mut q = String::new();
    if let Some(t) = a.timeout {
        q.push_str(&format!("&t={t}"));
    }
    if let Some(s) = &a.signal {
        q.push_str(&format!("&signal={}", enc(s)));
    }
    let q = q.replacen('&', "?", 1);
    let verb = if restart { "restart" } else { "stop" };
    let client = ctx.client.clone();
    each(&a.containers, true, |n| {
        let client = client.clone();
        let q = q.clone();
        async move {
            client
                .post_json(&format!("/containers/{}/{verb}{q}", enc_path(&n)), None)
                .await
                .map(|_| ())
        }
    })
    .await
}

pub async fn kill(ctx: &Ctx, a: KillArgs) -> Result<i32> {
    let q = a
        .signal
        .as_deref()
        .map(|s| format!("?signal={}", enc(s)))
        .unwrap_or_default();
    let client = ctx.client.clone();
    each(&a.containers, true, |n| {
        let client = client.clone();
        let q = q.clone();
        async move {
            client
                .post_json(&format!("/containers/{}/kill{q}", enc_path(&n)), None)
                .await
                .map(|_| ())
        }
    })
    .await
}

pub async fn rm(ctx: &Ctx, a: RmArgs) -> Result<i32> {
    let q = format!(
        "?force={}&v={}&link={}",
        a.force as u8, a.volumes as u8, a.link as u8
    );
    let mut errs = Vec::new();
    for n in &a.containers {
        match ctx
            .client
            .delete(&format!("/containers/{}{q}", enc_path(n)))
            .await
        {
            Ok(_) => println!("{n}"),
            Err(e) if e.downcast_ref::<crate::client::ConnectError>().is_some() => return Err(e),
            // docker 28: `rm -f` of a missing container prints the error but succeeds.
            Err(e) if a.force && daemon_error(&e).is_some_and(DaemonError::is_not_found) => {
                eprintln!("{e:#}")
            }
            Err(e) => errs.push(format!("{e:#}")),
        }
    }
    if errs.is_empty() {
        Ok(0)
    } else {
        Err(status(1, errs.join("\n")))
    }
}

pub async fn pause(ctx: &Ctx, a: Containers, pause: bool) -> Result<i32> {
    let verb = if pause { "pause" } else { "unpause" };
    let client = ctx.client.clone();
    each(&a.containers, true, |n| {
        let client = client.clone();
        async move {
            client
                .post_json(&format!("/containers/{}/{verb}", enc_path(&n)), None)
                .await
                .map(|_| ())
        }
    })
    .await
}

pub async fn rename(ctx: &Ctx, a: RenameArgs) -> Result<i32> {
    let new = a.new_name.trim();
    if new.is_empty() || a.container.trim().is_empty() {
        return Err(status(1, "Error: Neither old nor new names may be empty"));
    }
    ctx.client
        .post_json(
            &format!(
                "/containers/{}/rename?name={}",
                enc_path(&a.container),
                enc(new)
            ),
            None,
        )
        .await
        .map_err(|e| {
            status(
                1,
                format!(
                    "{e:#}\nError: failed to rename container named {}",
                    a.container
                ),
            )
        })?;
    Ok(0)
}

pub async fn wait(ctx: &Ctx, a: Containers) -> Result<i32> {
    let mut errs = Vec::new();
    for n in &a.containers {
        let r = ctx
            .client
            .post_json(&format!("/containers/{}/wait", enc_path(n)), None)
            .await;
        match r {
            Ok(v) => println!("{}", v["StatusCode"].as_i64().unwrap_or(0)),
            Err(e) => errs.push(format!("{e:#}")),
        }
    }
    if errs.is_empty() {
        Ok(0)
    } else {
        Err(status(1, errs.join("\n")))
    }
}

/// The data `ps --format` templates see, as docker's ContainerContext.
pub fn ps_row(c: &Value, trunc: bool) -> Value {
    let id = c["Id"].as_str().unwrap_or("");
    let names: Vec<String> = c["Names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
        .map(|n| n.trim_start_matches('/').to_string())
        .collect();
    let names_s = if trunc {
        names
            .iter()
            .find(|n| !n.contains('/'))
            .cloned()
            .unwrap_or_default()
    } else {
        names.join(",")
    };
    let image = c["Image"].as_str().unwrap_or("");
    let image_id = c["ImageID"].as_str().unwrap_or("");
    let image_s = if image.is_empty() {
        "<no image>".to_string()
    } else if !trunc {
        image.to_string()
    } else if short_id(image_id) == short_id(image) {
        short_id(image)
    } else {
        let img = match image.split_once('@') {
            Some((n, _)) if n.rsplit('/').next().is_some_and(|l| l.contains(':')) => n,
            _ => image,
        };
        familiar(img)
    };
    let command = c["Command"].as_str().unwrap_or("");
    let command = if trunc {
        ellipsis(command, 20)
    } else {
        command.to_string()
    };
    let created = c["Created"].as_i64().unwrap_or(0);
    let mut labels: Vec<String> = c["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    labels.sort();
    let size = {
        let rw = c["SizeRw"].as_i64().unwrap_or(0) as f64;
        let rootfs = c["SizeRootFs"].as_i64().unwrap_or(0);
        let srw = human_size_prec(rw, 3);
        if rootfs > 0 {
            format!("{srw} (virtual {})", human_size_prec(rootfs as f64, 3))
        } else {
            srw
        }
    };
    let mounts: Vec<String> = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let n = m["Name"].as_str().filter(|s| !s.is_empty());
            let n = n.or(m["Source"].as_str()).unwrap_or("").to_string();
            if trunc {
                ellipsis(&n, 15)
            } else {
                n
            }
        })
        .collect();
    let local_volumes = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["Driver"] == "local")
        .count();
    let networks: Vec<String> = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    json!({
        "ID": if trunc { short_id(id) } else { id.to_string() },
        "Names": names_s,
        "Image": image_s,
        "Command": go_quote(&command),
        "CreatedAt": go_time_string(created),
        "RunningFor": ago(created),
        "Ports": display_ports(&c["Ports"]),
        "State": c["State"].as_str().unwrap_or(""),
        "Status": c["Status"].as_str().unwrap_or(""),
        "Size": size,
        "Labels": labels.join(","),
        "Mounts": mounts.join(","),
        "LocalVolumes": local_volumes.to_string(),
        "Networks": networks.join(","),
        "Platform": Value::Null,
        "~Label": c["Labels"].clone(),
    })
}

pub fn ps_header() -> Value {
    json!({
        "ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND",
        "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE",
        "Status": "STATUS", "Size": "SIZE", "Labels": "LABELS", "Mounts": "MOUNTS",
        "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS", "Platform": "PLATFORM",
        "HealthStatus": "HEALTH STATUS", "~Label": {},
    })
}

pub async fn ps(ctx: &Ctx, a: PsArgs) -> Result<i32> {
    let mut q = format!(
        "/containers/json?all={}",
        (a.all || a.latest || a.last > 0) as u8
    );
    let limit = if a.latest { 1 } else { a.last };
    if limit > 0 {
        q.push_str(&format!("&limit={limit}"));
    }
    let fmt_src = a.format.clone().unwrap_or_else(|| "table".into());
    // docker asks for sizes when the template reads .Size, which `{{json .}}` does too.
    let wants_size = a.size
        || (a
            .format
            .as_deref()
            .is_some_and(|f| f.contains(".Size") || f.replace(' ', "").contains("json.}}"))
            && !a.quiet);
    if wants_size {
        q.push_str("&size=1");
    }
    if let Some(f) = parse::filters(&a.filter)? {
        q.push_str(&format!("&filters={}", enc(&f)));
    }
    let list = ctx.client.get_json(&q).await?;
    let fmt = if a.quiet {
        "{{.ID}}".to_string()
    } else if fmt_src == "table" {
        let mut f = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}".to_string();
        if a.size {
            f.push_str("\t{{.Size}}");
        }
        f
    } else {
        fmt_src
    };
    let rows: Vec<Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| ps_row(c, !a.no_trunc))
        .collect();
    // docker's ps checks the template first, with its own wording.
    let f = Format::parse(&fmt).map_err(|e| {
        let e = format!("{e:#}");
        let e = e.strip_prefix("template parsing error: ").unwrap_or(&e);
        status(1, format!("failed to parse template: {e}"))
    })?;
    print!("{}", f.render(&ps_header(), &rows)?);
    Ok(0)
}

pub async fn logs(ctx: &Ctx, a: LogsArgs) -> Result<i32> {
    let c = inspect_container(ctx, &a.container).await?;
    let tty = c["Config"]["Tty"].as_bool().unwrap_or(false);
    let now = chrono::Utc::now();
    let mut q = format!(
        "/containers/{}/logs?stdout=1&stderr=1&follow={}&timestamps={}&details={}&tail={}",
        enc_path(&a.container),
        a.follow as u8,
        a.timestamps as u8,
        a.details as u8,
        enc(&a.tail)
    );
    if let Some(s) = &a.since {
        q.push_str(&format!("&since={}", parse::timestamp(s, now)?));
    }
    if let Some(u) = &a.until {
        q.push_str(&format!("&until={}", parse::timestamp(u, now)?));
    }
    let resp = ctx.client.get(&q).await?;
    stream::copy_body(resp.into_body(), tty).await?;
    Ok(0)
}

pub async fn attach(ctx: &Ctx, a: AttachArgs) -> Result<i32> {
    let c = inspect_container(ctx, &a.container).await?;
    if c["State"]["Running"].as_bool() != Some(true) {
        return Err(status(
            1,
            "You cannot attach to a stopped container, start it first",
        ));
    }
    if c["State"]["Paused"].as_bool() == Some(true) {
        return Err(status(
            1,
            "You cannot attach to a paused container, unpause it first",
        ));
    }
    let tty = c["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !a.no_stdin && c["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let id = c["Id"].as_str().unwrap_or_default().to_string();
    let session = Session {
        id,
        tty,
        stdin,
        stdout: true,
        stderr: true,
        detach_keys: a.detach_keys,
        sig_proxy: a.sig_proxy && !tty,
        auto_remove: false,
    };
    session.run(ctx, false).await
}

pub async fn exec(ctx: &Ctx, a: ExecArgs) -> Result<i32> {
    let container = &a.container_and_cmd[0];
    let cmd = &a.container_and_cmd[1..];
    if a.tty && a.interactive && !tty::stdin_is_tty() {
        return Err(status(1, "the input device is not a TTY"));
    }
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(parse::env_file(f)?);
    }
    env.extend(a.env.iter().filter_map(|e| parse::env_opt(e)));
    let console = if a.tty { tty::size() } else { None };
    let body = json!({
        "User": a.user.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "Tty": a.tty,
        "ConsoleSize": console.map(|(h, w)| json!([h, w])),
        "AttachStdin": a.interactive && !a.detach,
        "AttachStderr": !a.detach,
        "AttachStdout": !a.detach,
        "DetachKeys": a.detach_keys.clone().unwrap_or_default(),
        "Env": if env.is_empty() { Value::Null } else { json!(env) },
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Cmd": cmd,
    });
    let created = ctx
        .client
        .post_json(
            &format!("/containers/{}/exec", enc_path(container)),
            Some(&body),
        )
        .await?;
    let exec_id = created["Id"]
        .as_str()
        .context("the daemon's exec answer has no Id")?
        .to_string();
    let start = json!({"Detach": a.detach, "Tty": a.tty, "ConsoleSize": console.map(|(h, w)| json!([h, w]))});
    if a.detach {
        ctx.client
            .post_json(&format!("/exec/{exec_id}/start"), Some(&start))
            .await?;
        return Ok(0);
    }
    let io = ctx
        .client
        .hijack(&format!("/exec/{exec_id}/start"), Some(&start))
        .await?;
    let _raw = if a.tty && a.interactive && tty::stdin_is_tty() {
        Some(tty::RawMode::enable()?)
    } else {
        None
    };
    if a.tty && tty::stdout_is_tty() {
        tty::forward_resizes(ctx.client.clone(), format!("/exec/{exec_id}/resize"));
    }
    let keys = if a.tty && a.interactive {
        Some(parse::detach_keys(a.detach_keys.as_deref())?)
    } else {
        None
    };
    if stream::pump(io, a.tty, a.interactive, keys).await? {
        return Ok(0);
    }
    drop(_raw);
    let v = ctx
        .client
        .get_json(&format!("/exec/{exec_id}/json"))
        .await?;
    Ok(v["ExitCode"].as_i64().unwrap_or(0) as i32)
}

pub async fn top(ctx: &Ctx, a: TopArgs) -> Result<i32> {
    let mut q = format!("/containers/{}/top", enc_path(&a.container));
    if !a.ps_args.is_empty() {
        q.push_str(&format!("?ps_args={}", enc(&a.ps_args.join(" "))));
    }
    let v = ctx.client.get_json(&q).await?;
    let mut s = String::new();
    let titles: Vec<&str> = v["Titles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str())
        .collect();
    s.push_str(&titles.join("\t"));
    s.push('\n');
    for p in v["Processes"].as_array().into_iter().flatten() {
        let cells: Vec<&str> = p
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str())
            .collect();
        s.push_str(&cells.join("\t"));
        s.push('\n');
    }
    print!("{}", table::align_with(&s, 20, 3));
    Ok(0)
}

pub async fn diff(ctx: &Ctx, a: OneContainer) -> Result<i32> {
    let v = ctx
        .client
        .get_json(&format!("/containers/{}/changes", enc_path(&a.container)))
        .await?;
    for c in v.as_array().into_iter().flatten() {
        let k = match c["Kind"].as_i64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        println!("{k} {}", c["Path"].as_str().unwrap_or(""));
    }
    Ok(0)
}

/// Writes a download to `-o FILE` or stdout (refusing a terminal, as docker does).
pub async fn download_to(ctx: &Ctx, path: &str, output: Option<&str>) -> Result<()> {
    match output {
        Some(f) => {
            let resp = ctx.client.get(path).await?;
            let mut file =
                std::fs::File::create(f).with_context(|| format!("failed to save: {f}"))?;
            stream::copy_raw(resp.into_body(), &mut file).await
        }
        None => {
            if tty::stdout_is_tty() {
                return Err(status(
                    1,
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect",
                ));
            }
            let resp = ctx.client.get(path).await?;
            let mut out = std::io::stdout().lock();
            stream::copy_raw(resp.into_body(), &mut out).await
        }
    }
}

pub async fn export(ctx: &Ctx, a: ExportArgs) -> Result<i32> {
    download_to(
        ctx,
        &format!("/containers/{}/export", enc_path(&a.container)),
        a.output.as_deref(),
    )
    .await?;
    Ok(0)
}

pub async fn commit(ctx: &Ctx, a: CommitArgs) -> Result<i32> {
    let mut q = format!(
        "/commit?container={}&pause={}",
        enc(&a.container),
        a.pause as u8
    );
    if let Some(r) = &a.reference {
        let (repo, tag) = crate::format::names::split_tag(r);
        q.push_str(&format!("&repo={}", enc(&repo)));
        if let Some(t) = tag {
            q.push_str(&format!("&tag={}", enc(&t)));
        }
    }
    if let Some(m) = &a.message {
        q.push_str(&format!("&comment={}", enc(m)));
    }
    if let Some(au) = &a.author {
        q.push_str(&format!("&author={}", enc(au)));
    }
    for c in &a.change {
        q.push_str(&format!("&changes={}", enc(c)));
    }
    let v = ctx.client.post_json(&q, Some(&json!({}))).await?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(0)
}

pub async fn update(ctx: &Ctx, a: UpdateArgs) -> Result<i32> {
    let mut body = serde_json::Map::new();
    if let Some(c) = &a.cpus {
        body.insert("NanoCpus".into(), parse::nano_cpus(c)?.into());
    }
    let ints = [
        ("CpuShares", a.cpu_shares),
        ("CpuPeriod", a.cpu_period),
        ("CpuQuota", a.cpu_quota),
        ("PidsLimit", a.pids_limit),
    ];
    for (k, v) in ints {
        if let Some(v) = v {
            body.insert(k.into(), v.into());
        }
    }
    if let Some(v) = &a.cpuset_cpus {
        body.insert("CpusetCpus".into(), v.clone().into());
    }
    if let Some(v) = &a.cpuset_mems {
        body.insert("CpusetMems".into(), v.clone().into());
    }
    if let Some(v) = &a.memory {
        body.insert("Memory".into(), parse::ram_in_bytes(v)?.into());
    }
    if let Some(v) = &a.memory_reservation {
        body.insert("MemoryReservation".into(), parse::ram_in_bytes(v)?.into());
    }
    if let Some(v) = &a.memory_swap {
        body.insert("MemorySwap".into(), parse::memory_swap(v)?.into());
    }
    if let Some(v) = a.blkio_weight {
        body.insert("BlkioWeight".into(), v.into());
    }
    if let Some(r) = &a.restart {
        let (name, max) = parse::restart_policy(r)?;
        body.insert(
            "RestartPolicy".into(),
            json!({"Name": name, "MaximumRetryCount": max}),
        );
    }
    if body.is_empty() {
        return Err(status(
            1,
            "you must provide one or more flags when using this command",
        ));
    }
    let body = Value::Object(body);
    let client = ctx.client.clone();
    each(&a.containers, true, |n| {
        let client = client.clone();
        let body = body.clone();
        async move {
            let v = client
                .post_json(&format!("/containers/{}/update", enc_path(&n)), Some(&body))
                .await?;
            for w in v["Warnings"].as_array().into_iter().flatten() {
                if let Some(w) = w.as_str() {
                    eprintln!("WARNING: {w}");
                }
            }
            Ok(())
        }
    })
    .await
}

pub async fn port(ctx: &Ctx, a: PortArgs) -> Result<i32> {
    let c = inspect_container(ctx, &a.container).await?;
    let ports = c["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let host = |b: &Value| {
        let ip = b["HostIp"].as_str().unwrap_or("");
        let p = b["HostPort"].as_str().unwrap_or("");
        if ip.contains(':') {
            format!("[{ip}]:{p}")
        } else {
            format!("{ip}:{p}")
        }
    };
    if let Some(want) = &a.port {
        let (p, proto) = want.split_once('/').unwrap_or((want.as_str(), "tcp"));
        let key = format!("{p}/{proto}");
        match ports.get(&key).and_then(|v| v.as_array()) {
            Some(binds) if !binds.is_empty() => {
                for b in binds {
                    println!("{}", host(b));
                }
                return Ok(0);
            }
            _ => {
                return Err(status(
                    1,
                    format!(
                        "Error: No public port '{want}' published for {}",
                        a.container
                    ),
                ))
            }
        }
    }
    let mut keys: Vec<&String> = ports.keys().collect();
    keys.sort_by_key(|k| {
        let (n, p) = k.split_once('/').unwrap_or((k, ""));
        (n.parse::<u32>().unwrap_or(0), p.to_string())
    });
    for k in keys {
        for b in ports[k].as_array().into_iter().flatten() {
            println!("{k} -> {}", host(b));
        }
    }
    Ok(0)
}

pub async fn prune(ctx: &Ctx, a: PruneArgs) -> Result<i32> {
    if !a.force && !super::confirm("WARNING! This will remove all stopped containers.") {
        return Ok(0);
    }
    let mut q = "/containers/prune".to_string();
    if let Some(f) = parse::filters(&a.filter)? {
        q.push_str(&format!("?filters={}", enc(&f)));
    }
    let v = ctx.client.post_json(&q, None).await?;
    let deleted: Vec<&str> = v["ContainersDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str())
        .collect();
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for d in deleted {
            println!("{d}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        crate::format::human::human_size(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    );
    Ok(0)
}

/// One `docker stats` row from a stats sample.
pub fn stats_row(s: &Value, id: &str, name: &str, trunc: bool) -> Value {
    let cpu = &s["cpu_stats"];
    let pre = &s["precpu_stats"];
    let cpu_delta = cpu["cpu_usage"]["total_usage"].as_f64().unwrap_or(0.0)
        - pre["cpu_usage"]["total_usage"].as_f64().unwrap_or(0.0);
    let sys_delta = cpu["system_cpu_usage"].as_f64().unwrap_or(0.0)
        - pre["system_cpu_usage"].as_f64().unwrap_or(0.0);
    let mut online = cpu["online_cpus"].as_f64().unwrap_or(0.0);
    if online == 0.0 {
        online = cpu["cpu_usage"]["percpu_usage"]
            .as_array()
            .map(|a| a.len() as f64)
            .unwrap_or(0.0);
    }
    let cpu_pct = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let m = &s["memory_stats"];
    let usage = m["usage"].as_f64().unwrap_or(0.0);
    let cache = m["stats"]["inactive_file"]
        .as_f64()
        .or_else(|| m["stats"]["total_inactive_file"].as_f64())
        .unwrap_or(0.0);
    let mem = if cache < usage { usage - cache } else { usage };
    let limit = m["limit"].as_f64().unwrap_or(0.0);
    let mem_pct = if limit > 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    for n in s["networks"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, v)| v)
    {
        rx += n["rx_bytes"].as_f64().unwrap_or(0.0);
        tx += n["tx_bytes"].as_f64().unwrap_or(0.0);
    }
    let (mut rd, mut wr) = (0.0, 0.0);
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().map(str::to_lowercase).as_deref() {
            Some("read") => rd += e["value"].as_f64().unwrap_or(0.0),
            Some("write") => wr += e["value"].as_f64().unwrap_or(0.0),
            _ => {}
        }
    }
    let pids = s["pids_stats"]["current"].as_u64().unwrap_or(0);
    json!({
        "Container": if trunc { short_id(id) } else { id.to_string() },
        "ID": if trunc { short_id(id) } else { id.to_string() },
        "Name": name.trim_start_matches('/'),
        "CPUPerc": format!("{cpu_pct:.2}%"),
        "MemUsage": format!("{} / {}", bytes_size(mem), bytes_size(limit)),
        "MemPerc": format!("{mem_pct:.2}%"),
        "NetIO": format!("{} / {}", human_size_prec(rx, 3), human_size_prec(tx, 3)),
        "BlockIO": format!("{} / {}", human_size_prec(rd, 3), human_size_prec(wr, 3)),
        "PIDs": pids.to_string(),
    })
}

const STATS_FORMAT: &str =
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

fn stats_header() -> Value {
    json!({
        "Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
        "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
        "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
    })
}

pub async fn stats(ctx: &Ctx, a: StatsArgs) -> Result<i32> {
    let fmt = Format::parse(a.format.as_deref().unwrap_or(STATS_FORMAT))?;
    loop {
        let targets: Vec<(String, String)> = if a.containers.is_empty() {
            let list = ctx
                .client
                .get_json(&format!("/containers/json?all={}", a.all as u8))
                .await?;
            list.as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    (
                        c["Id"].as_str().unwrap_or("").to_string(),
                        c["Names"][0].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        } else {
            let mut v = Vec::new();
            for n in &a.containers {
                let c = inspect_container(ctx, n).await?;
                v.push((
                    c["Id"].as_str().unwrap_or("").to_string(),
                    c["Name"].as_str().unwrap_or("").to_string(),
                ));
            }
            v
        };
        let mut rows = Vec::new();
        for (id, name) in &targets {
            let s = ctx
                .client
                .get_json(&format!("/containers/{id}/stats?stream=0"))
                .await
                .unwrap_or(Value::Null);
            rows.push(stats_row(&s, id, name, !a.no_trunc));
        }
        let out = fmt.render(&stats_header(), &rows)?;
        if a.no_stream {
            print!("{out}");
            return Ok(0);
        }
        print!("\x1b[2J\x1b[H{out}");
        let _ = std::io::stdout().flush();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// `cp`: one side is `CONTAINER:PATH`, the other local (or `-` for a tar stream).
pub async fn cp(ctx: &Ctx, a: CpArgs) -> Result<i32> {
    let split = |s: &str| -> Option<(String, String)> {
        if s.starts_with('/') || s.starts_with('.') || s == "-" {
            return None;
        }
        s.split_once(':')
            .map(|(c, p)| (c.to_string(), p.to_string()))
    };
    match (split(&a.src), split(&a.dest)) {
        (Some((c, p)), None) => copy_from(ctx, &c, &p, &a.dest, a.quiet).await,
        (None, Some((c, p))) => copy_to(ctx, &a.src, &c, &p, a.quiet, a.archive).await,
        (Some(_), Some(_)) => Err(status(1, "copying between containers is not supported")),
        (None, None) => Err(status(
            1,
            "must specify at least one container source (use CONTAINER:PATH)",
        )),
    }
}

async fn copy_from(ctx: &Ctx, c: &str, path: &str, dest: &str, quiet: bool) -> Result<i32> {
    let resp = ctx
        .client
        .get(&format!(
            "/containers/{}/archive?path={}",
            enc_path(c),
            enc(path)
        ))
        .await?;
    let body = crate::client::read_body(resp).await?;
    if dest == "-" {
        std::io::stdout().lock().write_all(&body)?;
        return Ok(0);
    }
    let dest_path = std::path::Path::new(dest);
    let base = std::path::Path::new(path.trim_end_matches('/'))
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Into an existing directory: keep the name; otherwise the copy takes dest's name.
    let (target_dir, rename) = if dest_path.is_dir() {
        (dest_path.to_path_buf(), None)
    } else {
        let parent = dest_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        if !parent.is_dir() {
            return Err(status(
                1,
                format!(
                    "Error response from daemon: destination directory {} does not exist",
                    parent.display()
                ),
            ));
        }
        (
            parent.to_path_buf(),
            dest_path
                .file_name()
                .map(|s| s.to_string_lossy().into_owned()),
        )
    };
    let mut ar = tar::Archive::new(&body[..]);
    ar.set_preserve_permissions(true);
    ar.set_overwrite(true);
    for entry in ar.entries()? {
        let mut e = entry?;
        let p = e.path()?.into_owned();
        let p = match (&rename, p.strip_prefix(&base)) {
            // (A file itself: `rest` is empty, and joining it would add a `/`.)
            (Some(r), Ok(rest)) if rest.as_os_str().is_empty() => std::path::PathBuf::from(r),
            (Some(r), Ok(rest)) => std::path::Path::new(r).join(rest),
            _ => p,
        };
        e.unpack(target_dir.join(&p))
            .with_context(|| format!("extracting {}", p.display()))?;
    }
    if !quiet && tty::is_tty(std::os::fd::AsFd::as_fd(&std::io::stderr())) {
        eprintln!(
            "Successfully copied {} to {dest}",
            crate::format::human::human_size(body.len() as f64)
        );
    }
    Ok(0)
}

async fn copy_to(
    ctx: &Ctx,
    src: &str,
    c: &str,
    path: &str,
    quiet: bool,
    archive: bool,
) -> Result<i32> {
    // As docker's: never replace a directory by a file or the reverse; with `-a`, the
    // daemon gives what it extracts to the container's user.
    let uid_gid = if archive { "&copyUIDGID=true" } else { "" };
    let put = |dir: String, body: crate::client::ReqBody| async move {
        ctx.client
            .request(
                "PUT",
                &format!(
                    "/containers/{}/archive?path={}&noOverwriteDirNonDir=1{uid_gid}",
                    enc_path(c),
                    enc(&dir)
                ),
                Some((body, "application/x-tar")),
            )
            .await
            .map(|_| ())
    };
    if src == "-" {
        put(
            path.to_string(),
            crate::client::reader_body(tokio::io::stdin()),
        )
        .await?;
        return Ok(0);
    }
    let src_path = std::path::Path::new(src);
    let meta = std::fs::symlink_metadata(src_path)
        .with_context(|| format!("could not find the file {src} in the local filesystem"))?;
    // Is the destination an existing directory in the container?
    let dest_is_dir = match ctx
        .client
        .request(
            "HEAD",
            &format!("/containers/{}/archive?path={}", enc_path(c), enc(path)),
            None,
        )
        .await
    {
        Ok(r) => r
            .headers()
            .get("X-Docker-Container-Path-Stat")
            .and_then(|h| h.to_str().ok())
            .and_then(decode_path_stat)
            .map(|s| s["mode"].as_u64().unwrap_or(0) & (1 << 31) != 0)
            .unwrap_or(false),
        Err(_) => false,
    };
    let (dir, name) = if dest_is_dir || path.ends_with('/') {
        (
            path.to_string(),
            src_path
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| ".".into()),
        )
    } else {
        let p = std::path::Path::new(path);
        (
            p.parent()
                .map(|d| d.to_string_lossy().into_owned())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "/".into()),
            p.file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        )
    };
    // The tar streams as it is built (bounded memory); a host file that cannot be read
    // midway aborts the upload rather than ending it as if complete.
    let (w, body) = crate::client::writer_body();
    let (src_owned, is_dir) = (src_path.to_path_buf(), meta.is_dir());
    let builder = tokio::task::spawn_blocking(move || {
        let mut b = tar::Builder::new(w);
        b.follow_symlinks(false);
        // Plain entries, as docker's: moby's untar refuses GNU sparse ones.
        b.sparse(false);
        let built = if is_dir {
            b.append_dir_all(&name, &src_owned)
        } else {
            b.append_path_with_name(&src_owned, &name)
        }
        .and_then(|()| b.finish())
        .and_then(|()| std::io::Write::flush(b.get_mut()));
        match built {
            Ok(()) => Ok(b.get_ref().total),
            Err(e) => {
                // Before the builder's drop, which would write the archive's end.
                b.get_mut().fail(&e);
                Err(e)
            }
        }
    });
    let sent = put(dir, body).await;
    let size = builder
        .await
        .context("building the archive")?
        .with_context(|| format!("reading {src}"))?;
    sent?;
    if !quiet && tty::is_tty(std::os::fd::AsFd::as_fd(&std::io::stderr())) {
        eprintln!(
            "Successfully copied {} to {c}:{path}",
            crate::format::human::human_size(size as f64)
        );
    }
    Ok(0)
}

fn decode_path_stat(b64: &str) -> Option<Value> {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in b64.bytes().filter(|c| *c != b'=') {
        let v = T.iter().position(|t| *t == c)? as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    serde_json::from_slice(&out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_failures_map_to_docker_codes() {
        assert_eq!(
            start_failure_code("exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(
            start_failure_code("open /x: no such file or directory"),
            127
        );
        assert_eq!(start_failure_code("exec /etc: permission denied"), 126);
        assert_eq!(start_failure_code("something else"), 125);
    }

    #[test]
    fn ps_rows_like_docker() {
        let c = json!({
            "Id": "0123456789abcdef0123", "Names": ["/web"], "Image": "busybox",
            "ImageID": "sha256:ffff", "Command": "sh -c 'while true; do sleep 1; done'",
            "Created": 0, "Ports": [], "State": "running", "Status": "Up 2 seconds",
            "Labels": {"b": "2", "a": "1"},
        });
        let r = ps_row(&c, true);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Names"], "web");
        assert_eq!(r["Command"], "\"sh -c 'while true; …\"");
        assert_eq!(r["Labels"], "a=1,b=2");
        let f = Format::parse("{{.Names}} {{.Label \"a\"}}").unwrap();
        assert_eq!(f.render(&ps_header(), &[r]).unwrap(), "web 1\n");
    }

    #[test]
    fn path_stat_header_decodes() {
        // {"name":"tmp","mode":2147484159}
        let v = decode_path_stat("eyJuYW1lIjoidG1wIiwibW9kZSI6MjE0NzQ4NDE1OX0=").unwrap();
        assert_eq!(v["name"], "tmp");
    }
}
