//! SIGHUP: re-read daemon.json and apply what dockerd also reloads and wharfd has: debug,
//! log-level, labels, runtimes, default-runtime and log-opts. Everything is validated first;
//! an invalid file changes nothing.

use crate::config::{self, Flags};
use anyhow::{Context, Result};
use std::sync::Arc;
use tracing_subscriber::{reload, EnvFilter, Registry};
use wharf_engine::Engine;

/// Lets the running daemon change its log filter.
pub type FilterHandle = reload::Handle<EnvFilter, Registry>;

pub struct Reloader {
    pub flags: Flags,
    pub filter: FilterHandle,
    pub engine: Arc<Engine>,
}

impl Reloader {
    /// Re-reads the config file; on error the running configuration is untouched.
    pub fn reload(&self) -> Result<()> {
        let path = &self.flags.config_file;
        let file = config::load_file(path)?;
        let level = config::log_level(&self.flags, &file)
            .with_context(|| format!("in {}", path.display()))?;
        let live =
            config::live(&self.flags, &file).with_context(|| format!("in {}", path.display()))?;
        self.filter
            .reload(config::log_filter(level))
            .context("changing the log level")?;
        tracing::info!(
            "reloaded {}: debug={} log-level={level} labels={:?} default-runtime={} runtimes={:?} log-opts={:?}",
            path.display(),
            live.debug,
            live.labels,
            live.default_runtime,
            live.runtimes.keys().collect::<Vec<_>>(),
            live.log_opts,
        );
        self.engine.set_live(live);
        Ok(())
    }

    /// `reload`, reporting the outcome in the log: a SIGHUP never stops the daemon.
    pub fn on_sighup(&self) {
        if let Err(e) = self.reload() {
            tracing::error!(
                "SIGHUP: not reloaded, the previous configuration stays in force: {e:#}"
            );
        }
    }
}
