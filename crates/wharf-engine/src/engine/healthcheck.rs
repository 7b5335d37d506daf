//! The daemon's probe loop for a running container with a healthcheck (see `crate::health`
//! for the rules): each probe is an exec through the container's shim, bounded by the
//! healthcheck's timeout, and the loop ends with the run it was started for.

use super::{internal, now, Engine};
use crate::container::{Container, Status};
use crate::health::{self, Health, HealthConfig, HealthLog};
use crate::shim;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::AsyncReadExt;
use wharf_api::codec;
use wharf_api::types::ExecConfig;
use wharf_api::ApiError;
use wharf_shim::proto::{self, Request as ShimRequest};

impl Engine {
    /// The container's probe, if its config has a usable healthcheck.
    pub(super) fn health_config(c: &Container) -> Option<HealthConfig> {
        let hc = c.with_record(|r| r.config.raw().get("Healthcheck").cloned());
        match HealthConfig::from_healthcheck(hc.as_ref()) {
            Ok(h) => h,
            Err(e) => {
                // Validated at create; a record edited since is logged, not probed.
                tracing::warn!("{}: {e}", c.id);
                None
            }
        }
    }

    /// Starts the probe loop of container `c` for its current run (the caller set or kept
    /// its `State.Health`; a missing one counts as `starting`).
    pub(super) fn spawn_health(self: &Arc<Self>, c: Arc<Container>, cfg: HealthConfig) {
        let generation = c.with_record(|r| r.generation);
        let engine = self.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut changes = c.watch();
            loop {
                let healthy_once = c.with_record(|r| {
                    r.state
                        .health
                        .as_ref()
                        .is_some_and(|h| h.status != health::STARTING)
                });
                let in_start_period = started.elapsed() < cfg.start_period && !healthy_once;
                let wait = if in_start_period {
                    cfg.start_interval
                } else {
                    cfg.interval
                };
                // Sleep until the next probe, or stop as soon as this run ends.
                let deadline = tokio::time::Instant::now() + wait;
                loop {
                    let (status, gen) = *changes.borrow_and_update();
                    if gen != generation || !status.is_live() {
                        return;
                    }
                    match tokio::time::timeout_at(deadline, changes.changed()).await {
                        Err(_) => break,
                        Ok(Err(_)) => return, // removed
                        Ok(Ok(())) => continue,
                    }
                }
                if c.status() == Status::Paused {
                    continue;
                }
                let in_start_period = started.elapsed() < cfg.start_period && !healthy_once;
                let result = engine.probe(&c, &cfg).await;
                let (status, gen) = *changes.borrow();
                if gen != generation || !status.is_live() {
                    return;
                }
                let changed = c.update(|r| {
                    r.state.health.get_or_insert_with(Health::starting).record(
                        result,
                        cfg.retries,
                        in_start_period,
                    )
                });
                match changed {
                    Ok(Some(s)) => engine.event(&c, &format!("health_status: {s}"), &[]),
                    Ok(None) => {}
                    Err(e) => tracing::warn!("{}: recording its health: {e}", c.id),
                }
            }
        });
    }

    /// Runs the healthcheck command once in the container, as an exec through its shim.
    async fn probe(self: &Arc<Self>, c: &Container, cfg: &HealthConfig) -> HealthLog {
        let start = now();
        let (exit_code, output) = match self.probe_exec(c, cfg).await {
            Ok(r) => r,
            Err(e) => (-1, e.message),
        };
        HealthLog {
            start,
            end: now(),
            exit_code,
            output,
        }
    }

    async fn probe_exec(
        self: &Arc<Self>,
        c: &Container,
        cfg: &HealthConfig,
    ) -> Result<(i32, String), ApiError> {
        let exec_id = self.exec_create(
            c,
            ExecConfig {
                attach_stdout: true,
                attach_stderr: true,
                cmd: Some(cfg.argv.clone()),
                ..Default::default()
            },
        )?;
        let result = async {
            let e = self.exec(&exec_id)?;
            let process = self.exec_process_file(&e).await?;
            let req = ShimRequest::Exec {
                id: exec_id.clone(),
                tty: false,
                stdin: false,
                process: process.display().to_string(),
            };
            let sdir = self.shim_dir(&c.id);
            let (reply, mut stream) = shim::request(&sdir, &req).await.map_err(internal)?;
            let _ = std::fs::remove_file(&process);
            let pid: i32 = match reply {
                Ok(p) => p.parse().unwrap_or(0),
                // What dockerd records for a probe that cannot start.
                Err(msg) => return Ok((-1, format!("OCI runtime exec failed: {msg}"))),
            };
            let read = async {
                let mut dec = codec::FrameDecoder::default();
                let mut out = Vec::new();
                let mut buf = vec![0u8; 8192];
                let mut code = -1;
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    for (s, p) in dec.feed(&buf[..n]) {
                        if s == proto::STREAM_EXIT && p.len() == 4 {
                            code = i32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                        } else if out.len() < health::MAX_OUTPUT {
                            out.extend_from_slice(&p);
                        }
                    }
                }
                (code, health::output_text(&out))
            };
            match tokio::time::timeout(cfg.timeout, read).await {
                Ok(r) => Ok(r),
                Err(_) => {
                    if pid > 0 {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                    Ok((
                        -1,
                        format!(
                            "Health check exceeded timeout ({})",
                            wharf_api::units::format_go_duration(cfg.timeout.as_nanos() as i64)
                        ),
                    ))
                }
            }
        }
        .await;
        self.execs.lock().expect("execs lock").remove(&exec_id);
        result
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn timeouts_print_as_go_does() {
        use std::time::Duration;
        let go_duration = |d: Duration| wharf_api::units::format_go_duration(d.as_nanos() as i64);
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
    }
}
