//! Small helpers over `serde_yaml_ng::Value` trees.

use serde_yaml_ng::{Mapping, Value};

/// A mapping key as text (compose keys are strings; numbers and booleans print as YAML does).
pub fn key_str(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        other => serde_yaml_ng::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// A scalar as the string compose reads it (`8080` and `"8080"` are the same port).
pub fn scalar_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub fn get<'a>(m: &'a Mapping, key: &str) -> Option<&'a Value> {
    m.get(Value::String(key.to_string()))
}

pub fn str_key(key: &str) -> Value {
    Value::String(key.to_string())
}
