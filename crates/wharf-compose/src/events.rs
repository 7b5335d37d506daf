//! `events`: the engine's container events of the project, printed as compose v2 prints them
//! (`--json`: `json.Marshal` of a map, so keys sorted: action, attributes, id, service, time,
//! type; the `com.docker.compose.*` labels left out of the attributes).

use crate::labels;
use serde_json::{json, Map, Value};

/// The `/events` filters of a project's container events.
pub fn filters(project: &str) -> Value {
    json!({"label": [labels::project_filter(project)], "type": ["container"]})
}

/// Go's `time.Time` in RFC 3339 with nanoseconds (trailing zeros trimmed), in UTC.
pub fn rfc3339_nano(time_nano: i64) -> String {
    let secs = time_nano.div_euclid(1_000_000_000);
    let nanos = time_nano.rem_euclid(1_000_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil(days);
    let mut frac = String::new();
    if nanos != 0 {
        frac = format!(".{nanos:09}");
        while frac.ends_with('0') {
            frac.pop();
        }
    }
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's civil_from_days).
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// One engine event (`/events` JSON) as compose's line, `None` when it is of a service not
/// asked for (`services` empty: all).
pub fn line(ev: &Value, services: &[String], as_json: bool) -> Option<String> {
    let attrs = ev["Actor"]["Attributes"].as_object();
    let service = attrs
        .and_then(|a| a.get(labels::SERVICE))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !services.is_empty() && !services.contains(&service) {
        return None;
    }
    let mut kept = Map::new();
    for (k, v) in attrs.into_iter().flatten() {
        if !k.starts_with("com.docker.compose.") {
            kept.insert(k.clone(), v.clone());
        }
    }
    let nano = ev["timeNano"]
        .as_i64()
        .unwrap_or_else(|| ev["time"].as_i64().unwrap_or(0) * 1_000_000_000);
    let action = ev["Action"].as_str().unwrap_or("");
    let id = ev["Actor"]["ID"].as_str().unwrap_or("");
    if as_json {
        // serde_json's Map is sorted (no preserve_order), as Go's map marshalling.
        let v = json!({
            "action": action,
            "attributes": kept,
            "id": id,
            "service": service,
            "time": rfc3339_nano(nano),
            "type": "container",
        });
        return Some(v.to_string());
    }
    let t = rfc3339_nano(nano);
    // `2006-01-02 15:04:05.000000`
    let mut stamp = t.replace('T', " ").trim_end_matches('Z').to_string();
    match stamp.split_once('.') {
        Some((a, b)) => stamp = format!("{a}.{:0<6}", &b[..b.len().min(6)]),
        None => stamp.push_str(".000000"),
    }
    let mut s = format!("{stamp} container {action} {id}");
    let pairs: Vec<String> = kept
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    if !pairs.is_empty() {
        s.push_str(&format!(" ({})", pairs.join(", ")));
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_go_prints_them() {
        assert_eq!(rfc3339_nano(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_nano(1_796_318_163_120_000_000),
            "2026-12-03T17:16:03.12Z"
        );
        assert_eq!(
            rfc3339_nano(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
    }

    #[test]
    fn json_and_text_lines() {
        let ev = json!({
            "Type": "container", "Action": "start",
            "Actor": {"ID": "abc", "Attributes": {
                "com.docker.compose.service": "web", "com.docker.compose.project": "p",
                "image": "busybox", "name": "p-web-1"}},
            "time": 1_796_318_163, "timeNano": 1_796_318_163_120_000_000i64,
        });
        assert_eq!(
            line(&ev, &[], true).unwrap(),
            r#"{"action":"start","attributes":{"image":"busybox","name":"p-web-1"},"id":"abc","service":"web","time":"2026-12-03T17:16:03.12Z","type":"container"}"#
        );
        assert_eq!(
            line(&ev, &[], false).unwrap(),
            "2026-12-03 17:16:03.120000 container start abc (image=busybox, name=p-web-1)"
        );
        assert_eq!(line(&ev, &["db".into()], true), None);
    }
}
