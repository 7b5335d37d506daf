//! Parsers for docker's option values, exactly as docker parses them: sizes (`512m`, `1g`),
//! Go durations (`10s`, `1m30s`) and detach keys through `wharf_api::units`, port specs
//! (`8080:80/tcp`, `127.0.0.1::80`, ranges), env files, labels, ulimits, signals,
//! restart policies, and `--since`/`--until` timestamps.

use anyhow::{bail, Context as _, Result};
use std::time::Duration;

/// go-units `RAMInBytes` (base 1024): `-m 512m`, `--memory-swap 1g`, `--shm-size 64m`.
pub fn ram_in_bytes(s: &str) -> Result<i64> {
    Ok(wharf_api::units::ram_in_bytes(s)?)
}

/// `--memory-swap`: `-1` is unlimited, otherwise a RAM size.
pub fn memory_swap(s: &str) -> Result<i64> {
    if s == "-1" {
        return Ok(-1);
    }
    ram_in_bytes(s)
}

/// `--cpus 1.5` → NanoCPUs, as docker's `NanoCPUs.Set` (big.Rat, exact to 1e-9).
pub fn nano_cpus(s: &str) -> Result<i64> {
    let v: f64 = s
        .parse()
        .map_err(|_| anyhow::anyhow!("failed to parse {s} as a rational number"))?;
    let n = (v * 1e9).round();
    if (n - v * 1e9).abs() > 1e-3 || !v.is_finite() || v < 0.0 {
        bail!("value is too precise");
    }
    Ok(n as i64)
}

/// Go's `time.ParseDuration`, for options that take no negative duration.
pub fn go_duration(s: &str) -> Result<Duration> {
    let ns = wharf_api::units::go_duration(s)?;
    if ns < 0 {
        bail!("negative durations are not allowed here: \"{s}\"");
    }
    Ok(Duration::from_nanos(ns as u64))
}

/// docker's `timetypes.GetTimestamp`: a duration ago ("10m"), a unix time ("1700000000.5")
/// or an RFC 3339 date/time; the result is "seconds.nanoseconds" as the API takes it.
pub fn timestamp(value: &str, now: chrono::DateTime<chrono::Utc>) -> Result<String> {
    if let Ok(d) = go_duration(value) {
        if !value.chars().all(|c| c.is_ascii_digit() || c == '.') {
            let t = now - chrono::Duration::from_std(d)?;
            return Ok(format!(
                "{}.{:09}",
                t.timestamp(),
                t.timestamp_subsec_nanos()
            ));
        }
    }
    if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit() || c == '.') {
        let (s, frac) = value.split_once('.').unwrap_or((value, ""));
        if frac.is_empty() {
            return Ok(s.to_string());
        }
        return Ok(format!("{s}.{frac:0<9}"));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(format!(
            "{}.{:09}",
            t.timestamp(),
            t.timestamp_subsec_nanos()
        ));
    }
    use chrono::TimeZone;
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d",
    ] {
        let parsed = if f == "%Y-%m-%d" {
            chrono::NaiveDate::parse_from_str(value, f)
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        } else {
            chrono::NaiveDateTime::parse_from_str(value, f).ok()
        };
        if let Some(n) = parsed {
            if let chrono::LocalResult::Single(t) = chrono::Local.from_local_datetime(&n) {
                return Ok(format!(
                    "{}.{:09}",
                    t.timestamp(),
                    t.timestamp_subsec_nanos()
                ));
            }
        }
    }
    bail!("invalid value for \"since\"/\"until\": {value:?} is not a duration, unix time or RFC 3339 time")
}

/// One port mapping of `-p`: ("80/tcp", host IP, host port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    pub port: String,
    pub host_ip: String,
    pub host_port: String,
}

fn split_proto_port(raw: &str) -> (String, String) {
    let parts: Vec<&str> = raw.split('/').collect();
    if raw.is_empty() || parts[0].is_empty() {
        return (String::new(), String::new());
    }
    if parts.len() == 1 {
        return ("tcp".into(), raw.into());
    }
    if parts[1].is_empty() {
        return ("tcp".into(), parts[0].into());
    }
    (parts[1].into(), parts[0].into())
}

/// `ParsePortRange`: "80" or "8000-8010".
pub fn port_range(s: &str) -> Result<(u16, u16)> {
    if s.is_empty() {
        bail!("empty string specified for ports");
    }
    let Some((a, b)) = s.split_once('-') else {
        let p: u16 = s.parse()?;
        return Ok((p, p));
    };
    let a: u16 = a.parse()?;
    let b: u16 = b.parse()?;
    if b < a {
        bail!("invalid range specified for port: {s}");
    }
    Ok((a, b))
}

/// go-connections `nat.ParsePortSpec`.
pub fn port_spec(raw: &str) -> Result<Vec<PortMapping>> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let (mut ip, host_port, container) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        3 => (parts[0].to_string(), parts[1], parts[2]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (proto, container) = split_proto_port(container);
    if ip.starts_with('[') {
        match ip.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
            Some(inner) => ip = inner.to_string(),
            None => bail!("invalid IP address {ip}"),
        }
    }
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        bail!("invalid IP address: {ip}");
    }
    if container.is_empty() {
        bail!("no port specified: {raw}<empty>");
    }
    let (start, end) = port_range(&container)
        .map_err(|_| anyhow::anyhow!("invalid containerPort: {container}"))?;
    let (mut hstart, mut hend) = (0u16, 0u16);
    if !host_port.is_empty() {
        (hstart, hend) =
            port_range(host_port).map_err(|_| anyhow::anyhow!("invalid hostPort: {host_port}"))?;
    }
    if !host_port.is_empty() && (end - start) != (hend - hstart) && end != start {
        bail!("invalid ranges specified for container and host Ports: {container} and {host_port}");
    }
    let proto = proto.to_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        bail!("invalid proto: {proto}");
    }
    let mut out = Vec::new();
    for i in 0..=(end - start) {
        let cport = start + i;
        let mut hp = if host_port.is_empty() {
            String::new()
        } else {
            (hstart + i).to_string()
        };
        if start == end && hstart != hend {
            hp = format!("{hp}-{hend}");
        }
        out.push(PortMapping {
            port: format!("{cport}/{proto}"),
            host_ip: ip.clone(),
            host_port: hp,
        });
    }
    Ok(out)
}

/// `--expose 80-82/tcp` → ports.
pub fn expose(raw: &str) -> Result<Vec<String>> {
    let (proto, port) = split_proto_port(raw);
    let (a, b) = port_range(&port)
        .map_err(|_| anyhow::anyhow!("invalid range format for --expose: {raw}"))?;
    Ok((a..=b).map(|p| format!("{p}/{proto}")).collect())
}

/// Reads a docker env file: `KEY=value` lines, `#` comments, bare `KEY` taken from our
/// environment (dropped when unset).
pub fn env_file(path: &str) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("open {path}"))?;
    parse_env_lines(&text, path, true)
}

/// `--label-file`: the same format, bare keys get an empty value.
pub fn label_file(path: &str) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("open {path}"))?;
    parse_env_lines(&text, path, false)
}

fn parse_env_lines(text: &str, path: &str, from_env: bool) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (k, v) = match l.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (l.trim_end(), None),
        };
        if k.is_empty() {
            bail!("{path}:{}: no variable name on line '{line}'", i + 1);
        }
        if k.contains(char::is_whitespace) {
            bail!("variable '{k}' contains whitespaces");
        }
        match v {
            Some(v) => out.push(format!("{k}={v}")),
            None if from_env => {
                if let Ok(val) = std::env::var(k) {
                    out.push(format!("{k}={val}"));
                }
            }
            None => out.push(k.to_string()),
        }
    }
    Ok(out)
}

/// `-e KEY` takes KEY's value from our environment (dropped when unset), like docker.
pub fn env_opt(e: &str) -> Option<String> {
    if e.contains('=') {
        return Some(e.to_string());
    }
    std::env::var(e).ok().map(|v| format!("{e}={v}"))
}

/// `--ulimit nofile=1024:2048` → (name, soft, hard).
pub fn ulimit(s: &str) -> Result<(String, i64, i64)> {
    let Some((name, vals)) = s.split_once('=') else {
        bail!("invalid ulimit argument: {s}");
    };
    const KNOWN: &[&str] = &[
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    if !KNOWN.contains(&name) {
        bail!("invalid ulimit type: {name}");
    }
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (a, b),
        None => (vals, vals),
    };
    let soft: i64 = soft
        .parse()
        .with_context(|| format!("invalid ulimit soft value {soft}"))?;
    let hard: i64 = hard
        .parse()
        .with_context(|| format!("invalid ulimit hard value {hard}"))?;
    if soft > hard {
        bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok((name.to_string(), soft, hard))
}

/// `--restart no|always|unless-stopped|on-failure[:N]` → (name, max retries).
pub fn restart_policy(s: &str) -> Result<(String, i64)> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (s, None),
    };
    match (name, count) {
        ("" | "no", None) => Ok(("no".into(), 0)),
        ("always" | "unless-stopped", None) => Ok((name.into(), 0)),
        ("always" | "unless-stopped" | "no", Some(_)) => {
            bail!("invalid restart policy: maximum retry count can only be used with 'on-failure'")
        }
        ("on-failure", None) => Ok((name.into(), 0)),
        ("on-failure", Some(c)) => {
            let n: i64 = c
                .parse()
                .with_context(|| format!("invalid restart policy format: maximum retry count must be an integer: {c}"))?;
            Ok((name.into(), n))
        }
        _ => bail!("invalid restart policy format: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"),
    }
}

/// `key=value` pairs (labels, options); a bare key gets an empty value.
pub fn key_value(s: &str) -> (String, String) {
    match s.split_once('=') {
        Some((k, v)) => (k.to_string(), v.to_string()),
        None => (s.to_string(), String::new()),
    }
}

/// `--filter key=value` list → the API's `{"key": {"value": true}}` JSON.
pub fn filters(list: &[String]) -> Result<Option<String>> {
    if list.is_empty() {
        return Ok(None);
    }
    let mut m: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
    for f in list {
        let Some((k, v)) = f.split_once('=') else {
            bail!("bad format of filter (expected name=value)");
        };
        let e = m
            .entry(k.trim().to_lowercase())
            .or_insert_with(|| serde_json::json!({}));
        e[v.trim()] = true.into();
    }
    Ok(Some(serde_json::Value::Object(m).to_string()))
}

/// Signal names (`KILL`, `SIGKILL`, `9`) → the number, for client-side signal proxying.
pub fn signal_number(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return Some(n);
    }
    let up = s.to_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    nix::sys::signal::Signal::iterator()
        .find(|sig| sig.as_str().trim_start_matches("SIG") == name)
        .map(|s| s as i32)
}

/// A signal number → docker's name ("SIGTERM") for `POST /kill?signal=`.
pub fn signal_name(n: i32) -> String {
    nix::sys::signal::Signal::try_from(n)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| n.to_string())
}

/// `--detach-keys` as docker reads it (`ctrl-p,ctrl-q`, `ctrl-@`, `ctrl-[`, single
/// characters), or its default.
pub fn detach_keys(spec: Option<&str>) -> Result<Vec<u8>> {
    Ok(wharf_api::units::detach_keys(spec)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_sizes_are_binary() {
        assert_eq!(ram_in_bytes("512m").unwrap(), 512 * 1024 * 1024);
        assert_eq!(ram_in_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("1GB").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("1.5k").unwrap(), 1536);
        assert_eq!(ram_in_bytes("10").unwrap(), 10);
        assert_eq!(ram_in_bytes("64 MiB").unwrap(), 64 << 20);
        assert_eq!(
            ram_in_bytes("12x").unwrap_err().to_string(),
            "invalid size: '12x'"
        );
        assert!(ram_in_bytes("-1").is_err());
        assert_eq!(memory_swap("-1").unwrap(), -1);
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(go_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(go_duration("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(go_duration("0").unwrap(), Duration::ZERO);
        assert!(go_duration("10").is_err());
        assert!(go_duration("abc").is_err());
        assert!(go_duration("5d").is_err());
    }

    #[test]
    fn timestamps() {
        let now = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:10:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(timestamp("10m", now).unwrap(), "1704067200.000000000");
        assert_eq!(timestamp("1704067200", now).unwrap(), "1704067200");
        assert_eq!(
            timestamp("2024-01-01T00:00:00Z", now).unwrap(),
            "1704067200.000000000"
        );
        assert!(timestamp("yesterday", now).is_err());
    }

    fn pm(port: &str, ip: &str, hp: &str) -> PortMapping {
        PortMapping {
            port: port.into(),
            host_ip: ip.into(),
            host_port: hp.into(),
        }
    }

    #[test]
    fn port_specs_like_go_connections() {
        assert_eq!(port_spec("80").unwrap(), vec![pm("80/tcp", "", "")]);
        assert_eq!(
            port_spec("8080:80/tcp").unwrap(),
            vec![pm("80/tcp", "", "8080")]
        );
        assert_eq!(
            port_spec("127.0.0.1::80").unwrap(),
            vec![pm("80/tcp", "127.0.0.1", "")]
        );
        assert_eq!(
            port_spec("127.0.0.1:53:53/udp").unwrap(),
            vec![pm("53/udp", "127.0.0.1", "53")]
        );
        assert_eq!(
            port_spec("8000-8001:80-81").unwrap(),
            vec![pm("80/tcp", "", "8000"), pm("81/tcp", "", "8001")]
        );
        assert_eq!(
            port_spec("8000-8010:80").unwrap(),
            vec![pm("80/tcp", "", "8000-8010")]
        );
        assert_eq!(
            port_spec("[::1]:8080:80").unwrap(),
            vec![pm("80/tcp", "::1", "8080")]
        );
        assert_eq!(
            port_spec("8000-8002:80-81").unwrap_err().to_string(),
            "invalid ranges specified for container and host Ports: 80-81 and 8000-8002"
        );
        assert_eq!(
            port_spec("1.2.3:80:80").unwrap_err().to_string(),
            "invalid IP address: 1.2.3"
        );
        assert_eq!(
            port_spec("80/xyz").unwrap_err().to_string(),
            "invalid proto: xyz"
        );
        assert_eq!(
            port_spec("abc").unwrap_err().to_string(),
            "invalid containerPort: abc"
        );
        assert_eq!(expose("80-81/udp").unwrap(), vec!["80/udp", "81/udp"]);
    }

    #[test]
    fn other_values() {
        assert_eq!(nano_cpus("1.5").unwrap(), 1_500_000_000);
        assert_eq!(
            ulimit("nofile=1024:2048").unwrap(),
            ("nofile".into(), 1024, 2048)
        );
        assert!(ulimit("bogus=1").is_err());
        assert_eq!(
            restart_policy("on-failure:3").unwrap(),
            ("on-failure".into(), 3)
        );
        assert!(restart_policy("sometimes").is_err());
        assert_eq!(signal_number("KILL"), Some(9));
        assert_eq!(signal_number("SIGTERM"), Some(15));
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(
            filters(&["status=exited".into(), "name=a".into()])
                .unwrap()
                .unwrap(),
            r#"{"name":{"a":true},"status":{"exited":true}}"#
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("env");
        std::fs::write(&p, "# c\nA=1\n\nB=x y\nWHARF_UNSET_VAR_XYZ\n").unwrap();
        assert_eq!(env_file(p.to_str().unwrap()).unwrap(), vec!["A=1", "B=x y"]);
    }
}
