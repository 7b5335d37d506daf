//! Healthchecks as dockerd runs them: the `Healthcheck` of a container's config (merged over
//! its image's), probed by the daemon through an exec in the container, with Docker's
//! defaults, start period and start interval, retries, a five-entry log and
//! `health_status: <status>` events when the status changes.
//!
//! The probe loop lives in the daemon, so it stops with the container's run (a new start or an
//! exit ends it) and starts again for every running container when wharfd restarts; the
//! status and log are part of the container's record, so they survive the restart too.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// Docker's defaults (moby `container.DefaultHealthcheck*`).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: u32 = 3;
/// Probe output kept per result, as dockerd (`maxOutputLen`).
pub const MAX_OUTPUT: usize = 4096;
/// Results kept in the log, as dockerd (`maxLogEntries`).
const MAX_LOG: usize = 5;

pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";

/// How to probe one container.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    /// The command run in the container.
    pub argv: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: u32,
}

/// A `Healthcheck` object that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HealthError {
    #[error("invalid healthcheck: {0}")]
    Invalid(String),
}

fn nanos(v: &Value, key: &str) -> Result<Option<Duration>, HealthError> {
    match &v[key] {
        Value::Null => Ok(None),
        n => {
            let n = n.as_i64().ok_or_else(|| {
                HealthError::Invalid(format!("{key} must be a number of nanoseconds, got {n}"))
            })?;
            match n {
                0 => Ok(None),
                n if n < 0 => Err(HealthError::Invalid(format!(
                    "{key} can't be negative ({n})"
                ))),
                // dockerd refuses intervals under 1ms (`MinimumDuration`).
                n if n < 1_000_000 => Err(HealthError::Invalid(format!(
                    "{key} in Healthcheck cannot be less than 1ms"
                ))),
                n => Ok(Some(Duration::from_nanos(n as u64))),
            }
        }
    }
}

impl HealthConfig {
    /// The probe of a merged `Healthcheck`: None when there is none or its test is `NONE`.
    pub fn from_healthcheck(hc: Option<&Value>) -> Result<Option<HealthConfig>, HealthError> {
        let Some(hc) = hc.filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let test: Vec<String> = match &hc["Test"] {
            Value::Null => vec![],
            Value::Array(a) => a
                .iter()
                .map(|v| {
                    v.as_str().map(String::from).ok_or_else(|| {
                        HealthError::Invalid("Test must be a list of strings".into())
                    })
                })
                .collect::<Result<_, _>>()?,
            other => {
                return Err(HealthError::Invalid(format!(
                    "Test must be a list of strings, got {other}"
                )))
            }
        };
        let argv = match test.first().map(String::as_str) {
            None | Some("NONE") => return Ok(None),
            Some("CMD") => test[1..].to_vec(),
            Some("CMD-SHELL") => {
                vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")]
            }
            Some(other) => {
                // dockerd takes it at create and never probes (a warning in its log).
                tracing::warn!(
                    "unknown healthcheck type {other:?} (expected CMD, CMD-SHELL or NONE): not probed"
                );
                return Ok(None);
            }
        };
        if argv.is_empty() || argv.iter().all(|a| a.is_empty()) {
            return Err(HealthError::Invalid("the Test has no command".into()));
        }
        let retries = match &hc["Retries"] {
            Value::Null => DEFAULT_RETRIES,
            v => match v.as_i64() {
                Some(n) if n < 0 => {
                    return Err(HealthError::Invalid(format!(
                        "Retries can't be negative ({n})"
                    )))
                }
                Some(0) => DEFAULT_RETRIES,
                Some(n) => n as u32,
                None => {
                    return Err(HealthError::Invalid(format!(
                        "Retries must be a number, got {v}"
                    )))
                }
            },
        };
        Ok(Some(HealthConfig {
            argv,
            interval: nanos(hc, "Interval")?.unwrap_or(DEFAULT_INTERVAL),
            timeout: nanos(hc, "Timeout")?.unwrap_or(DEFAULT_TIMEOUT),
            start_period: nanos(hc, "StartPeriod")?.unwrap_or_default(),
            start_interval: nanos(hc, "StartInterval")?.unwrap_or(DEFAULT_START_INTERVAL),
            retries,
        }))
    }
}

/// The container's `Healthcheck` over its image's, as dockerd merges them: the container's
/// wins; one without a test takes the image's test, and its zero fields the image's values.
pub fn merge(container: Option<&Value>, image: Option<&Value>) -> Option<Value> {
    merge_fields(container, image).map(omit_empty)
}

/// dockerd's `HealthConfig` omits its empty fields (`omitempty`): a client that sent
/// `"StartPeriod": null` reads back no `StartPeriod`, as compose checks.
fn omit_empty(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, x| {
            !(x.is_null() || x.as_array().is_some_and(|a| a.is_empty()) || x.as_i64() == Some(0))
        });
    }
    v
}

fn merge_fields(container: Option<&Value>, image: Option<&Value>) -> Option<Value> {
    let image = image.filter(|v| v.is_object());
    let Some(c) = container.filter(|v| v.is_object()) else {
        return image.cloned();
    };
    let Some(img) = image else {
        return Some(c.clone());
    };
    let mut out = c.clone();
    let empty = |v: &Value| {
        v.is_null() || v.as_array().is_some_and(|a| a.is_empty()) || v.as_i64() == Some(0)
    };
    for k in [
        "Test",
        "Interval",
        "Timeout",
        "StartPeriod",
        "StartInterval",
        "Retries",
    ] {
        if empty(&out[k]) && !img[k].is_null() {
            out[k] = img[k].clone();
        }
    }
    Some(out)
}

/// One probe's result, in Docker's shape.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HealthLog {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// `State.Health`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<HealthLog>,
}

impl Health {
    /// A container just started: `starting`, no failures counted.
    pub fn starting() -> Health {
        Health {
            status: STARTING.into(),
            failing_streak: 0,
            log: Vec::new(),
        }
    }

    /// Records a probe's result as dockerd does: exit 0 is healthy; a failure counts only
    /// outside the start period (or once the container was healthy), and `retries` of them
    /// in a row make it unhealthy. Returns the new status when it changed.
    pub fn record(
        &mut self,
        result: HealthLog,
        retries: u32,
        in_start_period: bool,
    ) -> Option<&'static str> {
        let before = self.status.clone();
        if result.exit_code == 0 {
            self.failing_streak = 0;
            self.status = HEALTHY.into();
        } else if !(in_start_period && self.status == STARTING) {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = UNHEALTHY.into();
            }
        }
        self.log.push(result);
        if self.log.len() > MAX_LOG {
            let extra = self.log.len() - MAX_LOG;
            self.log.drain(..extra);
        }
        (self.status != before).then_some(match self.status.as_str() {
            HEALTHY => HEALTHY,
            UNHEALTHY => UNHEALTHY,
            _ => STARTING,
        })
    }
}

/// The probe's output as Docker keeps it: stdout and stderr together, cut to 4 KiB.
pub fn output_text(out: &[u8]) -> String {
    let cut = &out[..out.len().min(MAX_OUTPUT)];
    String::from_utf8_lossy(cut).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(code: i32) -> HealthLog {
        HealthLog {
            start: "s".into(),
            end: "e".into(),
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn tests_and_defaults_follow_docker() {
        let c = HealthConfig::from_healthcheck(Some(&json!({"Test": ["CMD-SHELL", "exit 0"]})))
            .unwrap()
            .unwrap();
        assert_eq!(c.argv, ["/bin/sh", "-c", "exit 0"]);
        assert_eq!(c.interval, Duration::from_secs(30));
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.start_interval, Duration::from_secs(5));
        assert_eq!(c.retries, 3);
        let c = HealthConfig::from_healthcheck(Some(&json!({
            "Test": ["CMD", "true", "x"], "Interval": 2_000_000_000i64, "Retries": 1,
            "StartPeriod": 1_000_000_000i64, "StartInterval": 100_000_000i64,
        })))
        .unwrap()
        .unwrap();
        assert_eq!(c.argv, ["true", "x"]);
        assert_eq!(c.interval, Duration::from_secs(2));
        assert_eq!(c.start_period, Duration::from_secs(1));
        assert_eq!(c.start_interval, Duration::from_millis(100));
        assert_eq!(c.retries, 1);
        // An unknown kind (docker-compose's tests send ["true"]) is kept, never probed.
        for none in [
            json!({"Test": ["NONE"]}),
            json!({}),
            Value::Null,
            json!({"Test": ["true"]}),
            json!({"Test": ["SHELL", "x"]}),
        ] {
            assert_eq!(HealthConfig::from_healthcheck(Some(&none)).unwrap(), None);
        }
        for bad in [
            json!({"Test": ["CMD"]}),
            json!({"Test": "exit 0"}),
            json!({"Test": ["CMD", "true"], "Interval": 5}),
            json!({"Test": ["CMD", "true"], "Retries": -1}),
        ] {
            assert!(HealthConfig::from_healthcheck(Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_container_healthcheck_is_merged_over_the_images() {
        let img = json!({"Test": ["CMD", "img"], "Interval": 7, "Retries": 9});
        assert_eq!(merge(None, Some(&img)), Some(img.clone()));
        let c = json!({"Test": [], "Interval": 0, "Timeout": 5});
        assert_eq!(
            merge(Some(&c), Some(&img)),
            Some(json!({"Test": ["CMD", "img"], "Interval": 7, "Timeout": 5, "Retries": 9}))
        );
        // A test of its own wins (zero fields still come from the image, as in moby's merge).
        let none = json!({"Test": ["NONE"]});
        assert_eq!(
            merge(Some(&none), Some(&img)),
            Some(json!({"Test": ["NONE"], "Interval": 7, "Retries": 9}))
        );
        assert_eq!(merge(None, None), None);
    }

    #[test]
    fn status_moves_as_dockerd_moves_it() {
        let mut h = Health::starting();
        // Failures in the start period do not count while starting.
        assert_eq!(h.record(result(1), 2, true), None);
        assert_eq!(h.failing_streak, 0);
        assert_eq!(h.record(result(0), 2, true), Some(HEALTHY));
        // Once healthy, failures count even within the start period.
        assert_eq!(h.record(result(1), 2, true), None);
        assert_eq!(h.failing_streak, 1);
        assert_eq!(h.record(result(1), 2, false), Some(UNHEALTHY));
        assert_eq!(h.record(result(1), 2, false), None);
        assert_eq!(h.record(result(0), 2, false), Some(HEALTHY));
        assert_eq!(h.failing_streak, 0);
        // The log keeps the last five.
        assert_eq!(h.log.len(), 5);
        assert_eq!(h.log.last().unwrap().exit_code, 0);
        assert_eq!(serde_json::to_value(&h).unwrap()["FailingStreak"], json!(0));
    }

    #[test]
    fn output_is_cut_at_4k() {
        assert_eq!(output_text(&vec![b'a'; 5000]).len(), 4096);
        assert_eq!(output_text(b"ok\n"), "ok\n");
    }
}
