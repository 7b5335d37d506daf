//! One command run to its end in a running container, its output collected: the CRI's
//! ExecSync. The exec goes through the container's shim as `docker exec` does; stdout and
//! stderr are kept apart.

use super::{internal, Engine};
use crate::container::Container;
use crate::shim;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use wharf_api::codec;
use wharf_api::types::ExecConfig;
use wharf_api::ApiError;
use wharf_shim::proto::{self, Request as ShimRequest};

/// What [`Engine::exec_sync`] gives back.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The command's exit code (128+signal when killed); `None` when it overran the timeout
    /// (it was then killed).
    pub exit_code: Option<i32>,
}

impl Engine {
    /// Runs `argv` in the running container `c` (as its configured user) and waits for it,
    /// killing it after `timeout` when one is given. At most `limit` bytes of each stream are
    /// kept.
    pub async fn exec_sync(
        self: &Arc<Self>,
        c: &Container,
        argv: Vec<String>,
        timeout: Option<Duration>,
        limit: usize,
    ) -> Result<ExecOutput, ApiError> {
        if argv.is_empty() {
            return Err(ApiError::bad_request("no command given"));
        }
        let exec_id = self.exec_create(
            c,
            ExecConfig {
                attach_stdout: true,
                attach_stderr: true,
                cmd: Some(argv),
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
            let (reply, mut stream) = shim::request(&self.shim_dir(&c.id), &req)
                .await
                .map_err(internal)?;
            let _ = std::fs::remove_file(&process);
            let pid: i32 = match reply {
                Ok(p) => p.parse().unwrap_or(0),
                Err(msg) => return Err(ApiError::internal(format!("exec failed: {msg}"))),
            };
            let mut out = ExecOutput::default();
            let read = async {
                let mut dec = codec::FrameDecoder::default();
                let mut buf = vec![0u8; 8192];
                let mut code = None;
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    for (s, p) in dec.feed(&buf[..n]) {
                        let into = match s {
                            proto::STREAM_EXIT if p.len() == 4 => {
                                code = Some(i32::from_be_bytes([p[0], p[1], p[2], p[3]]));
                                continue;
                            }
                            2 => &mut out.stderr,
                            _ => &mut out.stdout,
                        };
                        let room = limit.saturating_sub(into.len());
                        into.extend_from_slice(&p[..p.len().min(room)]);
                    }
                }
                code
            };
            let code = match timeout {
                Some(t) => match tokio::time::timeout(t, read).await {
                    Ok(c) => c,
                    Err(_) => {
                        if pid > 0 {
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::Signal::SIGKILL,
                            );
                        }
                        None
                    }
                },
                None => read.await,
            };
            out.exit_code = code;
            Ok(out)
        }
        .await;
        self.execs.lock().expect("execs lock").remove(&exec_id);
        result
    }
}
