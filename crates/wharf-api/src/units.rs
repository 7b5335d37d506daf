//! Docker's value syntaxes, parsed once for the CLI and the daemon: sizes (go-units
//! `RAMInBytes` and `FromHumanSize`), Go durations (`time.ParseDuration` and
//! `Duration.String`) and detach keys (`ctrl-p,ctrl-q`).

use std::fmt;

/// A value that is not in the syntax Docker takes; the text is Docker's (Go's) message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitError(pub String);

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UnitError {}

fn split_size(s: &str) -> Option<(f64, char)> {
    // ^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == 0 {
        return None;
    }
    while i < b.len() && b[i] == b'.' {
        let s0 = i + 1;
        let mut j = s0;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j == s0 {
            return None;
        }
        i = j;
    }
    let num: f64 = s[..i].parse().ok()?;
    let mut rest = &s[i..];
    if let Some(r) = rest.strip_prefix(' ') {
        rest = r;
    }
    let mut unit = ' ';
    let mut chars = rest.chars().peekable();
    if let Some(&c) = chars.peek() {
        if "kKmMgGtTpP".contains(c) {
            unit = c.to_ascii_lowercase();
            chars.next();
        }
    }
    if chars.peek().is_some_and(|c| *c == 'i' || *c == 'I') {
        chars.next();
    }
    if chars.peek().is_some_and(|c| *c == 'b' || *c == 'B') {
        chars.next();
    }
    if chars.next().is_some() {
        return None;
    }
    Some((num, unit))
}

fn size_with(s: &str, base: f64) -> Result<i64, UnitError> {
    let Some((n, unit)) = split_size(s) else {
        return Err(UnitError(format!("invalid size: '{s}'")));
    };
    let mul = match unit {
        'k' => base,
        'm' => base.powi(2),
        'g' => base.powi(3),
        't' => base.powi(4),
        'p' => base.powi(5),
        _ => 1.0,
    };
    let v = n * mul;
    // Go's float-to-int conversion of a size past int64 is garbage: say so instead.
    if v.is_nan() || v >= i64::MAX as f64 {
        return Err(UnitError(format!("invalid size: '{s}' (too large)")));
    }
    Ok(v as i64)
}

/// go-units `RAMInBytes` (base 1024): `-m 512m`, `--shm-size 64m`, tmpfs `size=`, the
/// json-file log's `max-size`.
pub fn ram_in_bytes(s: &str) -> Result<i64, UnitError> {
    size_with(s, 1024.0)
}

/// go-units `FromHumanSize` (base 1000): `--storage-opt size=`, disk quotas.
pub fn from_human_size(s: &str) -> Result<i64, UnitError> {
    size_with(s, 1000.0)
}

/// Go's `time.ParseDuration`, exactly (integer arithmetic, Go's error texts): nanoseconds.
pub fn go_duration(s: &str) -> Result<i64, UnitError> {
    go_duration_ns(s).map_err(UnitError)
}

fn go_duration_ns(s: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {s:?}");
    let mut rest = s;
    let mut neg = false;
    if let Some(r) = rest.strip_prefix('-') {
        neg = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        let mut had_dot = false;
        if let Some(r) = rest.strip_prefix('.') {
            had_dot = true;
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &r[..n];
            rest = &r[n..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            let _ = had_dot;
            return Err(invalid());
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {s:?}"));
        }
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(format!("time: unknown unit {unit:?} in duration {s:?}")),
        };
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        let mut v = int.checked_mul(scale).ok_or_else(invalid)?;
        if !frac_part.is_empty() {
            // Up to 30 digits are significant for u128 arithmetic; more cannot change ns.
            let digits = &frac_part[..frac_part.len().min(30)];
            let f: u128 = digits.parse().map_err(|_| invalid())?;
            v += f * scale / 10u128.pow(digits.len() as u32);
        }
        total = total.checked_add(v).ok_or_else(invalid)?;
        if total > i64::MAX as u128 + u128::from(neg) {
            return Err(invalid());
        }
    }
    let total = i128::try_from(total).map_err(|_| invalid())?;
    let signed = if neg { -total } else { total };
    i64::try_from(signed).map_err(|_| invalid())
}

/// Go's `Duration.String()`: `1m30s`, `500ms`, `1.5µs`, `0s`.
pub fn format_go_duration(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    // `v / 10^digits`, with the fraction's trailing zeros (and a bare dot) dropped.
    let frac = |v: u64, digits: u32| {
        let unit = 10u64.pow(digits);
        let (whole, rest) = (v / unit, v % unit);
        if rest == 0 {
            whole.to_string()
        } else {
            let f = format!("{rest:0width$}", width = digits as usize);
            format!("{whole}.{}", f.trim_end_matches('0'))
        }
    };
    match u {
        0 => "0s".into(),
        1..=999 => format!("{sign}{u}ns"),
        1_000..=999_999 => format!("{sign}{}µs", frac(u, 3)),
        1_000_000..=999_999_999 => format!("{sign}{}ms", frac(u, 6)),
        _ => {
            let (h, m) = (u / 3_600_000_000_000, (u / 60_000_000_000) % 60);
            let s = frac(u % 60_000_000_000, 9);
            match (h, m) {
                (0, 0) => format!("{sign}{s}s"),
                (0, m) => format!("{sign}{m}m{s}s"),
                (h, m) => format!("{sign}{h}h{m}m{s}s"),
            }
        }
    }
}

/// Detach keys as Docker reads them (`ctrl-p,ctrl-q`, `ctrl-@`, `ctrl-[`, single
/// characters); `None` or empty: the default `ctrl-p,ctrl-q`.
pub fn detach_keys(spec: Option<&str>) -> Result<Vec<u8>, UnitError> {
    let spec = spec.filter(|s| !s.is_empty()).unwrap_or("ctrl-p,ctrl-q");
    let bad = || UnitError(format!("Invalid detach keys ({spec}) provided"));
    let mut out = Vec::new();
    for k in spec.split(',') {
        if let Some(c) = k.strip_prefix("ctrl-") {
            let mut cs = c.chars();
            let ch = cs.next().ok_or_else(bad)?;
            if cs.next().is_some() {
                return Err(bad());
            }
            out.push(match ch.to_ascii_lowercase() {
                c @ 'a'..='z' => c as u8 - b'a' + 1,
                '@' => 0,
                '[' => 27,
                '\\' => 28,
                ']' => 29,
                '^' => 30,
                '_' => 31,
                _ => return Err(bad()),
            });
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(bad());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_go_s() {
        let ok: &[(&str, i64)] = &[
            ("0", 0),
            ("30s", 30_000_000_000),
            ("1m30s", 90_000_000_000),
            ("1.5h", 5_400_000_000_000),
            (".5s", 500_000_000),
            ("1ms", 1_000_000),
            ("2us", 2_000),
            ("2µs", 2_000),
            ("-1s", -1_000_000_000),
            ("+3ns", 3),
        ];
        for (s, want) in ok {
            assert_eq!(go_duration(s), Ok(*want), "{s}");
        }
        let bad: &[(&str, &str)] = &[
            ("", "time: invalid duration \"\""),
            ("x", "time: invalid duration \"x\""),
            ("1", "time: missing unit in duration \"1\""),
            ("1d", "time: unknown unit \"d\" in duration \"1d\""),
            ("99999999999h", "time: invalid duration \"99999999999h\""),
            (".s", "time: invalid duration \".s\""),
        ];
        for (s, want) in bad {
            assert_eq!(go_duration(s).unwrap_err().0, *want, "{s}");
        }
    }

    #[test]
    fn durations_print_as_go_s() {
        for (ns, want) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (300_000_000, "300ms"),
            (1_000_000_000, "1s"),
            (30_000_000_000, "30s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (5_400_500_000_000, "1h30m0.5s"),
            (-2_000_000_000, "-2s"),
        ] {
            assert_eq!(format_go_duration(ns), want);
            assert_eq!(go_duration(want), Ok(ns), "{want} reads back");
        }
    }

    #[test]
    fn sizes_binary_and_decimal() {
        assert_eq!(ram_in_bytes("512m"), Ok(512 << 20));
        assert_eq!(ram_in_bytes("1g"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1GB"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1.5k"), Ok(1536));
        assert_eq!(ram_in_bytes("10"), Ok(10));
        assert_eq!(ram_in_bytes("10mb"), Ok(10 << 20));
        assert_eq!(ram_in_bytes("64 MiB"), Ok(64 << 20));
        assert_eq!(from_human_size("1k"), Ok(1000));
        assert_eq!(from_human_size("2.5MB"), Ok(2_500_000));
        assert_eq!(
            ram_in_bytes("12x").unwrap_err().to_string(),
            "invalid size: '12x'"
        );
        assert!(ram_in_bytes("-1").is_err());
        assert!(ram_in_bytes("").is_err());
    }

    #[test]
    fn detach_keys_as_docker_reads_them() {
        assert_eq!(detach_keys(None), Ok(vec![16, 17]));
        assert_eq!(detach_keys(Some("")), Ok(vec![16, 17]));
        assert_eq!(detach_keys(Some("ctrl-@,ctrl-[,x")), Ok(vec![0, 27, b'x']));
        assert_eq!(detach_keys(Some("ctrl-\\,ctrl-_")), Ok(vec![28, 31]));
        assert_eq!(
            detach_keys(Some("ctrl-1")).unwrap_err().0,
            "Invalid detach keys (ctrl-1) provided"
        );
        assert!(detach_keys(Some("ab")).is_err());
        assert!(detach_keys(Some("ctrl-ab")).is_err());
    }
}
