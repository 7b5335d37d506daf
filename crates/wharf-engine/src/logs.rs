//! Reading the json-file log for `GET /containers/{id}/logs`.

use serde::Deserialize;

/// One entry of the log.
#[derive(Debug, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Log options from the query.
#[derive(Debug, Default, Clone)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub since: Option<f64>,
    pub until: Option<f64>,
    pub timestamps: bool,
    pub tail: Option<usize>,
}

fn ts_of(e: &Entry) -> f64 {
    chrono::DateTime::parse_from_rfc3339(&e.time)
        .map(|t| t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 / 1e9)
        .unwrap_or(0.0)
}

impl LogOptions {
    /// Whether an entry passes the stream and time filters.
    pub fn accepts(&self, e: &Entry) -> bool {
        let stream_ok =
            (e.stream == "stdout" && self.stdout) || (e.stream == "stderr" && self.stderr);
        let t = ts_of(e);
        stream_ok && self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u)
    }

    /// The payload for one entry (with a timestamp prefix when asked).
    pub fn render(&self, e: &Entry) -> Vec<u8> {
        if self.timestamps {
            format!("{} {}", e.time, e.log).into_bytes()
        } else {
            e.log.clone().into_bytes()
        }
    }
}

/// Parses the complete lines of a log chunk.
pub fn parse_lines(data: &str) -> Vec<Entry> {
    data.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Parses a `since`/`until` query value (unix seconds with optional fraction).
pub fn parse_time(s: &str) -> Option<f64> {
    if s.is_empty() || s == "0" {
        return None;
    }
    s.parse::<f64>().ok().or_else(|| {
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp() as f64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_renders() {
        let data = "{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:01.5Z\"}\n{\"log\":\"b\\n\",\"stream\":\"stderr\",\"time\":\"2026-01-01T00:00:03Z\"}\n";
        let entries = parse_lines(data);
        assert_eq!(entries.len(), 2);
        let o = LogOptions {
            stdout: true,
            stderr: false,
            ..Default::default()
        };
        assert!(o.accepts(&entries[0]));
        assert!(!o.accepts(&entries[1]));
        let o = LogOptions {
            stdout: true,
            stderr: true,
            since: parse_time("1767225602"),
            timestamps: true,
            ..Default::default()
        };
        assert!(!o.accepts(&entries[0]));
        assert!(o.accepts(&entries[1]));
        assert_eq!(o.render(&entries[1]), b"2026-01-01T00:00:03Z b\n");
    }
}
