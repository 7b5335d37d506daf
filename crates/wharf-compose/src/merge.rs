//! Merging compose files (`-f a -f b`, `*.override.*`, `extends`) by the spec's rules:
//! mappings merge key by key; scalars are replaced; `command`, `entrypoint` and
//! `healthcheck.test` are replaced whole; `environment`, `labels`, `extra_hosts`, `sysctls`,
//! `annotations`, `depends_on` and `networks` merge as mappings whatever syntax each file uses;
//! `ports`, `volumes`, `expose`, `dns`, `secrets`, `configs` keep one entry per target (the
//! override wins); other sequences append. `!reset` removes a value, `!override` replaces it
//! without merging.

use crate::yaml::{get, key_str, scalar_str, str_key};
use serde_yaml_ng::value::TaggedValue;
use serde_yaml_ng::{Mapping, Value};

/// Service keys whose list syntax (`K=V` or names) is merged as a mapping.
const AS_MAPPING: &[&str] = &[
    "environment",
    "labels",
    "extra_hosts",
    "sysctls",
    "annotations",
    "depends_on",
    "networks",
];
/// Service keys replaced whole.
const REPLACED: &[&str] = &["command", "entrypoint"];
/// Service keys whose entries are unique by target.
const UNIQUE: &[&str] = &[
    "ports", "volumes", "expose", "dns", "secrets", "configs", "devices",
];

/// Merges one whole compose file over another.
pub fn merge_files(base: &mut Value, over: Value) {
    let (Value::Mapping(b), Value::Mapping(o)) = (&mut *base, &over) else {
        *base = over;
        return;
    };
    for (k, v) in o.clone() {
        let ks = key_str(&k);
        if ks == "services" {
            let bs = b.entry(k).or_insert_with(|| Value::Mapping(Mapping::new()));
            if let (Value::Mapping(bs), Value::Mapping(os)) = (bs, v) {
                for (name, svc) in os {
                    match bs.get_mut(&name) {
                        Some(existing) => merge_service(existing, svc),
                        None => {
                            bs.insert(name, strip_tags(svc));
                        }
                    }
                }
            }
        } else {
            merge_value(b, k, v);
        }
    }
}

/// Merges a service definition over another (also used by `extends`).
pub fn merge_service(base: &mut Value, over: Value) {
    let over = normalize_service(over);
    let Value::Mapping(o) = over else { return };
    if !matches!(base, Value::Mapping(_)) {
        *base = Value::Mapping(Mapping::new());
    }
    let taken = std::mem::take(base);
    *base = normalize_service(taken);
    let Value::Mapping(b) = base else { return };
    for (k, v) in o {
        let ks = key_str(&k);
        if REPLACED.contains(&ks.as_str()) {
            match v {
                Value::Tagged(t) if t.tag == "!reset" => {
                    b.remove(&k);
                }
                other => {
                    b.insert(k, strip_tags(other));
                }
            }
        } else if UNIQUE.contains(&ks.as_str()) {
            match (b.get_mut(&k), v) {
                (_, Value::Tagged(t)) if t.tag == "!reset" => {
                    b.remove(&k);
                }
                (_, Value::Tagged(t)) if t.tag == "!override" => {
                    b.insert(k, t.value);
                }
                (Some(Value::Sequence(bs)), Value::Sequence(os)) => {
                    for item in os {
                        let key = unique_key(&ks, &item);
                        match bs.iter().position(|e| unique_key(&ks, e) == key) {
                            Some(i) => bs[i] = item,
                            None => bs.push(item),
                        }
                    }
                }
                (_, v) => {
                    b.insert(k, v);
                }
            }
        } else if ks == "healthcheck" {
            // `test` is replaced; the rest merges.
            match (b.get_mut(&k), v) {
                (Some(Value::Mapping(bh)), Value::Mapping(oh)) => {
                    for (hk, hv) in oh {
                        if key_str(&hk) == "test" {
                            bh.insert(hk, strip_tags(hv));
                        } else {
                            merge_value(bh, hk, hv);
                        }
                    }
                }
                (_, v) => merge_value(b, k, v),
            }
        } else {
            merge_value(b, k, v);
        }
    }
}

/// Merges `v` into `m[k]`: mappings recursively, sequences appended, scalars replaced.
fn merge_value(m: &mut Mapping, k: Value, v: Value) {
    match v {
        Value::Tagged(t) if t.tag == "!reset" => {
            m.remove(&k);
        }
        Value::Tagged(t) if t.tag == "!override" => {
            m.insert(k, t.value);
        }
        Value::Mapping(o) => match m.get_mut(&k) {
            Some(Value::Mapping(b)) => {
                for (ok, ov) in o {
                    merge_value(b, ok, ov);
                }
            }
            _ => {
                m.insert(k, strip_tags(Value::Mapping(o)));
            }
        },
        Value::Sequence(o) => match m.get_mut(&k) {
            Some(Value::Sequence(b)) => b.extend(o),
            _ => {
                m.insert(k, Value::Sequence(o));
            }
        },
        other => {
            m.insert(k, other);
        }
    }
}

fn strip_tags(v: Value) -> Value {
    match v {
        Value::Tagged(t) if t.tag == "!override" => strip_tags(t.value),
        Value::Mapping(m) => Value::Mapping(
            m.into_iter()
                .filter(|(_, v)| !matches!(v, Value::Tagged(t) if t.tag == "!reset"))
                .map(|(k, v)| (k, strip_tags(v)))
                .collect(),
        ),
        other => other,
    }
}

/// What makes an entry of a unique list the same entry.
fn unique_key(key: &str, item: &Value) -> String {
    match (key, item) {
        ("volumes", Value::String(s)) => {
            let parts: Vec<&str> = s.split(':').collect();
            match parts.len() {
                1 => parts[0].to_string(),
                _ => parts[1].to_string(),
            }
        }
        ("volumes" | "secrets" | "configs", Value::Mapping(m)) => get(m, "target")
            .or_else(|| get(m, "source"))
            .and_then(scalar_str)
            .unwrap_or_default(),
        ("ports", Value::Mapping(m)) => format!(
            "{}:{}/{}",
            get(m, "published").and_then(scalar_str).unwrap_or_default(),
            get(m, "target").and_then(scalar_str).unwrap_or_default(),
            get(m, "protocol")
                .and_then(scalar_str)
                .unwrap_or_else(|| "tcp".into())
        ),
        (_, v) => scalar_str(v).unwrap_or_else(|| serde_yaml_ng::to_string(v).unwrap_or_default()),
    }
}

/// Puts the keys merged as mappings into mapping form (`[A=1]` → `{A: "1"}`, `[db]` →
/// `{db: null}`), keeping the rest.
pub fn normalize_service(v: Value) -> Value {
    let Value::Mapping(mut m) = v else { return v };
    for key in AS_MAPPING {
        let k = str_key(key);
        if let Some(Value::Sequence(seq)) = m.get(&k) {
            let mut out = Mapping::new();
            for item in seq {
                let Some(s) = scalar_str(item) else { continue };
                let (name, val) = match *key {
                    "depends_on" | "networks" => (s, Value::Null),
                    "extra_hosts" => match s.split_once(['=', ':']) {
                        Some((h, ip)) => (h.to_string(), Value::String(ip.to_string())),
                        None => (s, Value::Null),
                    },
                    _ => match s.split_once('=') {
                        Some((n, v)) => (n.to_string(), Value::String(v.to_string())),
                        None => (s, Value::Null),
                    },
                };
                out.insert(Value::String(name), val);
            }
            m.insert(k, Value::Mapping(out));
        }
    }
    Value::Mapping(m)
}

/// Keeps `!reset`/`!override` visible to the merge (the parser gives them as tagged values).
pub fn is_tagged(v: &Value) -> Option<&TaggedValue> {
    match v {
        Value::Tagged(t) => Some(t),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(s: &str) -> Value {
        serde_yaml_ng::from_str(s).unwrap()
    }

    fn merged(a: &str, b: &str) -> String {
        let mut base = y(a);
        merge_files(&mut base, y(b));
        serde_yaml_ng::to_string(&base).unwrap()
    }

    #[test]
    fn scalars_replaced_mappings_merged() {
        let out = merged(
            "services:\n  web:\n    image: a\n    labels: {x: '1'}\n",
            "services:\n  web:\n    image: b\n    labels: [y=2]\n  db:\n    image: c\n",
        );
        assert_eq!(
            out,
            "services:\n  web:\n    image: b\n    labels:\n      x: '1'\n      y: '2'\n  db:\n    image: c\n"
        );
    }

    #[test]
    fn environment_list_and_map_merge() {
        let out = merged(
            "services:\n  s:\n    environment: [A=1, B=2]\n",
            "services:\n  s:\n    environment: {B: '3', C: '4'}\n",
        );
        assert_eq!(
            out,
            "services:\n  s:\n    environment:\n      A: '1'\n      B: '3'\n      C: '4'\n"
        );
    }

    #[test]
    fn command_replaced_not_appended() {
        let out = merged(
            "services:\n  s:\n    command: [a, b]\n    entrypoint: x\n",
            "services:\n  s:\n    command: [c]\n",
        );
        assert_eq!(
            out,
            "services:\n  s:\n    command:\n    - c\n    entrypoint: x\n"
        );
    }

    #[test]
    fn volumes_and_ports_unique_by_target() {
        let out = merged(
            "services:\n  s:\n    volumes: ['a:/data', 'b:/other']\n    ports: ['80']\n",
            "services:\n  s:\n    volumes: ['c:/data']\n    ports: ['80', '81']\n",
        );
        assert_eq!(
            out,
            "services:\n  s:\n    volumes:\n    - c:/data\n    - b:/other\n    ports:\n    - '80'\n    - '81'\n"
        );
    }

    #[test]
    fn other_sequences_append_and_depends_on_merges() {
        let out = merged(
            "services:\n  s:\n    dns_search: [a]\n    depends_on: [db]\n",
            "services:\n  s:\n    dns_search: [b]\n    depends_on: {cache: {condition: service_healthy}}\n",
        );
        assert_eq!(
            out,
            "services:\n  s:\n    dns_search:\n    - a\n    - b\n    depends_on:\n      db: null\n      cache:\n        condition: service_healthy\n"
        );
    }

    #[test]
    fn healthcheck_test_replaced_rest_merged() {
        let out = merged(
            "services:\n  s:\n    healthcheck: {test: [CMD, a, b], interval: 1s}\n",
            "services:\n  s:\n    healthcheck: {test: [CMD, c]}\n",
        );
        assert_eq!(out, "services:\n  s:\n    healthcheck:\n      test:\n      - CMD\n      - c\n      interval: 1s\n");
    }

    #[test]
    fn reset_and_override() {
        let out = merged(
            "services:\n  s:\n    image: a\n    ports: ['80']\n    labels: {a: '1'}\n",
            "services:\n  s:\n    ports: !reset []\n    labels: !override {b: '2'}\n",
        );
        assert_eq!(
            out,
            "services:\n  s:\n    image: a\n    labels:\n      b: '2'\n"
        );
    }

    #[test]
    fn top_level_sections_merge() {
        let out = merged(
            "volumes:\n  a: {}\nname: x\n",
            "volumes:\n  b: {}\nname: y\n",
        );
        assert_eq!(out, "volumes:\n  a: {}\n  b: {}\nname: y\n");
    }
}
