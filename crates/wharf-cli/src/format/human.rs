//! Human-readable sizes and durations exactly as docker prints them (go-units'
//! `HumanSizeWithPrecision`, `BytesSize`, `HumanDuration`), and Go's `%g` they rely on.

use std::time::Duration;

const DECIMAL: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

fn custom_size(size: f64, base: f64, units: &[&str], precision: usize) -> String {
    let mut size = size;
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    format!("{}{}", go_g(size, precision), units[i])
}

/// go-units `HumanSizeWithPrecision`: base 1000, `precision` significant digits ("1.23MB").
pub fn human_size_prec(size: f64, precision: usize) -> String {
    custom_size(size, 1000.0, &DECIMAL, precision)
}

/// go-units `HumanSize` (4 significant digits).
pub fn human_size(size: f64) -> String {
    human_size_prec(size, 4)
}

/// go-units `BytesSize`: base 1024 ("1.5GiB"), as `docker stats` prints memory.
pub fn bytes_size(size: f64) -> String {
    custom_size(size, 1024.0, &BINARY, 4)
}

/// Go's `fmt.Sprintf("%.*g", precision, v)`: shortest of %e/%f, trailing zeros dropped.
pub fn go_g(v: f64, precision: usize) -> String {
    let p = precision.max(1);
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    // Round to p significant digits first; the exponent is the rounded one's.
    let e_repr = format!("{:.*e}", p - 1, v);
    let (mant, exp) = e_repr.split_once('e').expect("exponent");
    let exp: i32 = exp.parse().expect("exponent digits");
    if exp < -4 || exp >= p as i32 {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// go-units `HumanDuration` ("Less than a second", "About a minute", "3 hours", ...).
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    let seconds = secs as i64;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // time.Duration.Round(time.Hour): halves away from zero.
    let hours = (secs / 3600.0).round() as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (secs / 3600.0) as i64 / 24 / 365)
}

/// "<HumanDuration> ago" from a unix timestamp, as docker's CREATED columns.
pub fn ago(unix_secs: i64) -> String {
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    let d = (now - unix_secs as f64).max(0.0);
    format!("{} ago", human_duration(Duration::from_secs_f64(d)))
}

/// Go's `time.Unix(s, 0).String()` in local time: "2024-05-01 10:00:00 +0200 CEST".
pub fn go_time_string(unix_secs: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_opt(unix_secs, 0) {
        chrono::LocalResult::Single(t) => {
            let tz = local_tz_abbrev(&t);
            format!("{} {}", t.format("%Y-%m-%d %H:%M:%S %z"), tz)
        }
        _ => unix_secs.to_string(),
    }
}

fn local_tz_abbrev(t: &chrono::DateTime<chrono::Local>) -> String {
    // chrono has no zone abbreviations; Go prints "UTC" for UTC and the numeric offset
    // otherwise when the zone has no name, which is what containers without tzdata see.
    let off = t.offset().local_minus_utc();
    if off == 0 {
        "UTC".into()
    } else {
        t.format("%z").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size_prec(0.0, 3), "0B");
        assert_eq!(human_size_prec(999.0, 3), "999B");
        assert_eq!(human_size_prec(1000.0, 3), "1kB");
        assert_eq!(human_size_prec(1_234_567.0, 3), "1.23MB");
        assert_eq!(human_size_prec(4_260_000.0, 3), "4.26MB");
        assert_eq!(human_size_prec(999_900.0, 3), "1e+03kB");
        assert_eq!(human_size_prec(12_345.0, 3), "12.3kB");
        assert_eq!(human_size(1_234_567.0), "1.235MB");
        assert_eq!(bytes_size(1536.0), "1.5KiB");
        assert_eq!(bytes_size(1024.0 * 1024.0 * 1024.0), "1GiB");
    }

    #[test]
    fn go_g_formats() {
        assert_eq!(go_g(100.0, 3), "100");
        assert_eq!(go_g(0.0001234, 3), "0.000123");
        assert_eq!(go_g(0.00001234, 3), "1.23e-05");
        assert_eq!(go_g(1.5, 3), "1.5");
    }

    #[test]
    fn durations_like_go_units() {
        let s = Duration::from_secs;
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(2)), "2 seconds");
        assert_eq!(human_duration(s(60)), "About a minute");
        assert_eq!(human_duration(s(119)), "About a minute");
        assert_eq!(human_duration(s(180)), "3 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(2 * 3600)), "2 hours");
        assert_eq!(human_duration(s(47 * 3600)), "47 hours");
        assert_eq!(human_duration(s(3 * 86400)), "3 days");
        assert_eq!(human_duration(s(15 * 86400)), "2 weeks");
        assert_eq!(human_duration(s(70 * 86400)), "2 months");
        assert_eq!(human_duration(s(800 * 86400)), "2 years");
    }
}
