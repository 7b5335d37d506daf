//! Walks every field of `Config`, `HostConfig` (with `Resources`) and `EndpointSettings` in the
//! Engine API spec v1.50 and fails when one is neither honoured nor refused (nor one that
//! dockerd itself ignores in requests): a new field of the spec must be decided on, never
//! silently dropped. And every refused field, set in a request, is named by the refusal.

use serde_json::{json, Map, Value};
use std::path::Path;
use wharf_api::fields::{self, FieldUse};

/// The property names of definition `name` in the spec: the keys at the indentation of the
/// first `properties:` of its block (nested objects' properties are deeper).
fn properties(spec: &str, name: &str) -> Vec<String> {
    let lines: Vec<&str> = spec.lines().collect();
    let start = lines
        .iter()
        .position(|l| *l == format!("  {name}:"))
        .unwrap_or_else(|| panic!("no definition {name} in the spec"));
    let block: Vec<&str> = lines[start + 1..]
        .iter()
        .take_while(|l| l.is_empty() || l.starts_with("   "))
        .copied()
        .collect();
    let at = block
        .iter()
        .position(|l| l.trim() == "properties:")
        .unwrap_or_else(|| panic!("{name} has no properties"));
    let indent = block[at + 1..]
        .iter()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| l.len() - l.trim_start().len())
        .unwrap();
    block[at + 1..]
        .iter()
        .filter(|l| l.len() - l.trim_start().len() == indent)
        .filter_map(|l| l.trim().strip_suffix(':').map(String::from))
        .filter(|k| k.chars().all(|c| c.is_ascii_alphanumeric()))
        .collect()
}

/// The create request's fields of the v1.50 spec, as (definition, field): read from the spec
/// where the workspace has it beside (`../shared/reference`, and then checked against the copy
/// kept here), else from that copy (`tests/fixtures/v1.50-create-fields.txt`).
fn spec_fields() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let kept = std::fs::read_to_string(dir.join("tests/fixtures/v1.50-create-fields.txt")).unwrap();
    let kept: Vec<(String, String)> = kept
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (d, f) = l.split_once('.').unwrap();
            (d.to_string(), f.to_string())
        })
        .collect();
    let spec = dir.join("../../../shared/reference/engine-api/v1.50.yaml");
    if let Ok(spec) = std::fs::read_to_string(&spec) {
        let mut from_spec = Vec::new();
        for d in DEFINITIONS {
            for p in properties(&spec, d) {
                from_spec.push((d.to_string(), p));
            }
        }
        assert_eq!(
            from_spec, kept,
            "the kept field list differs from the spec: regenerate it"
        );
    }
    kept
}

const DEFINITIONS: &[&str] = &[
    "ContainerConfig",
    "HostConfig",
    "Resources",
    "EndpointSettings",
];

fn decided(table: &[(&str, FieldUse)], field: &str) -> bool {
    table.iter().any(|(k, _)| *k == field)
}

#[test]
fn every_field_of_the_spec_is_honoured_or_refused() {
    let all = spec_fields();
    let mut missing = Vec::new();
    for d in DEFINITIONS {
        let table = match *d {
            "ContainerConfig" => fields::CONFIG_FIELDS,
            "HostConfig" | "Resources" => fields::HOST_CONFIG_FIELDS,
            _ => fields::ENDPOINT_FIELDS,
        };
        let props: Vec<&String> = all.iter().filter(|(x, _)| x == d).map(|(_, f)| f).collect();
        assert!(props.len() > 10, "{d}: only {props:?} found");
        for p in props {
            if !decided(table, p) {
                missing.push(format!("{d}.{p}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "fields of the v1.50 spec neither honoured nor refused (add them to wharf_api::fields): {missing:?}"
    );
}

/// A value that counts as set for a field whose JSON type the spec gives.
fn set_value(key: &str) -> Value {
    match key {
        "NetworkDisabled" | "OomKillDisable" => json!(true),
        "MacAddress" | "CgroupParent" | "VolumeDriver" | "Cgroup" | "UsernsMode" => json!("x"),
        "StorageOpt" | "Annotations" | "DriverOpts" => json!({"k": "v"}),
        "CpuCount" | "CpuPercent" | "CpuRealtimePeriod" | "CpuRealtimeRuntime" | "KernelMemory"
        | "KernelMemoryTCP" | "MemorySwappiness" | "IOMaximumIOps" | "IOMaximumBandwidth"
        | "GwPriority" => json!(10),
        _ => json!(["x"]),
    }
}

#[test]
fn every_refused_field_is_named_when_set() {
    for (k, u) in fields::CONFIG_FIELDS {
        if *u == FieldUse::Refused {
            let mut m = Map::new();
            m.insert(k.to_string(), set_value(k));
            assert_eq!(fields::refused_config_fields(&m), [k.to_string()]);
        }
    }
    for (k, u) in fields::HOST_CONFIG_FIELDS {
        if *u == FieldUse::Refused {
            let mut m = Map::new();
            m.insert(k.to_string(), set_value(k));
            assert_eq!(fields::refused_host_fields(&m), [k.to_string()], "{k}");
        }
    }
    for (k, u) in fields::ENDPOINT_FIELDS {
        if *u == FieldUse::Refused {
            let net = json!({"EndpointsConfig": {"n": {*k: set_value(k)}}});
            assert_eq!(fields::refused_endpoint_fields(&net), [format!("n: {k}")]);
        }
    }
}
