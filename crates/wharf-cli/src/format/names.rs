//! Docker's display helpers: short IDs, `strconv.Quote`, `Ellipsis`, familiar image
//! references, and the PORTS column.

use serde_json::Value;

/// `stringid.TruncateID`: drops "sha256:" and keeps 12 characters.
pub fn short_id(id: &str) -> String {
    let id = id.split_once(':').map(|(_, r)| r).unwrap_or(id);
    id.chars().take(12).collect()
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            '\x07' => o.push_str("\\a"),
            '\x08' => o.push_str("\\b"),
            '\x0c' => o.push_str("\\f"),
            '\x0b' => o.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                o.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// docker's `Ellipsis` for ASCII-width text: at most `max` characters, "…" marking a cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max == 1 {
        return s.chars().take(1).collect();
    }
    let mut o: String = s.chars().take(max - 1).collect();
    o.push('…');
    o
}

/// `reference.FamiliarString`: "docker.io/library/busybox:latest" → "busybox:latest".
pub fn familiar(r: &str) -> String {
    let r = r.strip_prefix("docker.io/").unwrap_or(r);
    r.strip_prefix("library/").unwrap_or(r).to_string()
}

/// The repository part of a reference ("localhost:5000/a/b:tag" → "localhost:5000/a/b").
pub fn split_tag(r: &str) -> (String, Option<String>) {
    let (name, _digest) = r.split_once('@').unwrap_or((r, ""));
    let slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    match name[slash..].rfind(':') {
        Some(i) => (
            name[..slash + i].to_string(),
            Some(name[slash + i + 1..].to_string()),
        ),
        None => (name.to_string(), None),
    }
}

/// `formatter.DisplayablePorts`.
pub fn display_ports(ports: &Value) -> String {
    let Some(list) = ports.as_array() else {
        return String::new();
    };
    let mut ports: Vec<(u16, String, u16, String)> = list
        .iter()
        .map(|p| {
            (
                p["PrivatePort"].as_u64().unwrap_or(0) as u16,
                p["IP"].as_str().unwrap_or("").to_string(),
                p["PublicPort"].as_u64().unwrap_or(0) as u16,
                p["Type"].as_str().unwrap_or("tcp").to_string(),
            )
        })
        .collect();
    ports.sort_by(|a, b| (a.0, &a.1, a.2, &a.3).cmp(&(b.0, &b.1, b.2, &b.3)));
    let join_host = |ip: &str, port: &str| {
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    for (private, ip, public, kind) in ports {
        let mut key = kind.clone();
        if !ip.is_empty() {
            if public != private {
                host_mappings.push(format!(
                    "{}->{private}/{kind}",
                    join_host(&ip, &public.to_string())
                ));
                continue;
            }
            key = format!("{ip}/{kind}");
        }
        match groups.iter_mut().find(|g| g.0 == key) {
            None => groups.push((key, private, private)),
            Some(g) if private == g.2 + 1 => g.2 = private,
            Some(g) => {
                result.push(form_group(&g.0, g.1, g.2));
                g.1 = private;
                g.2 = private;
            }
        }
    }
    for g in &groups {
        result.push(form_group(&g.0, g.1, g.2));
    }
    result.extend(host_mappings);
    result.join(", ")
}

fn form_group(key: &str, start: u16, last: u16) -> String {
    let (ip, kind) = match key.rsplit_once('/') {
        Some((ip, k)) => (ip, k),
        None => ("", key),
    };
    let mut group = start.to_string();
    if start != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        let host = if ip.contains(':') {
            format!("[{ip}]:{group}")
        } else {
            format!("{ip}:{group}")
        };
        group = format!("{host}->{group}");
    }
    format!("{group}/{kind}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn helpers() {
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(go_quote("sh -c \"x\"\n"), r#""sh -c \"x\"\n""#);
        assert_eq!(
            ellipsis("sleep 1000000000000000000", 20),
            "sleep 1000000000000…"
        );
        assert_eq!(ellipsis("echo hi", 20), "echo hi");
        assert_eq!(
            familiar("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert_eq!(
            split_tag("localhost:5000/a/b:t"),
            ("localhost:5000/a/b".into(), Some("t".into()))
        );
        assert_eq!(
            split_tag("localhost:5000/a"),
            ("localhost:5000/a".into(), None)
        );
    }

    #[test]
    fn ports_column() {
        let p = json!([
            {"PrivatePort": 80, "Type": "tcp"},
            {"PrivatePort": 81, "Type": "tcp"},
            {"IP": "0.0.0.0", "PrivatePort": 443, "PublicPort": 8443, "Type": "tcp"},
            {"IP": "0.0.0.0", "PrivatePort": 53, "PublicPort": 53, "Type": "udp"},
        ]);
        assert_eq!(
            display_ports(&p),
            "0.0.0.0:53->53/udp, 80-81/tcp, 0.0.0.0:8443->443/tcp"
        );
    }
}
