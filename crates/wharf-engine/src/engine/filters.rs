//! List filters as dockerd applies them, shared by the list endpoints (docker-compose selects
//! its containers with several `label` filters at once: all of them must hold).

use serde_json::Value;
use std::collections::BTreeMap;

/// Whether `labels` (a JSON object of strings, or null) satisfies one `label` filter value:
/// `key` (present) or `key=value` (present with that value).
pub(crate) fn label_matches(labels: &Value, filter: &str) -> bool {
    label_matches_by(|k| labels[k].as_str(), filter)
}

/// `label_matches` over a map of labels (networks, volumes).
pub(crate) fn label_matches_map(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    label_matches_by(|k| labels.get(k).map(String::as_str), filter)
}

fn label_matches_by<'a>(get: impl Fn(&str) -> Option<&'a str>, filter: &str) -> bool {
    let (key, want) = match filter.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (filter, None),
    };
    get(key).is_some_and(|have| want.is_none_or(|w| w == have))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_and_key_value() {
        let l = json!({"com.docker.compose.project": "p", "empty": ""});
        assert!(label_matches(&l, "com.docker.compose.project"));
        assert!(label_matches(&l, "com.docker.compose.project=p"));
        assert!(!label_matches(&l, "com.docker.compose.project=q"));
        assert!(!label_matches(&l, "missing"));
        // `key=` asks for an empty value, not for the key alone.
        assert!(label_matches(&l, "empty="));
        assert!(!label_matches(&json!({"a": "x"}), "a="));
        assert!(!label_matches(&Value::Null, "a"));
        let m = BTreeMap::from([("a".to_string(), "x".to_string())]);
        assert!(label_matches_map(&m, "a") && label_matches_map(&m, "a=x"));
        assert!(!label_matches_map(&m, "a=y") && !label_matches_map(&m, "b"));
    }
}
