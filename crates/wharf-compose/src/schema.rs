//! Validation of each compose file against the compose specification's JSON schema
//! (`schema/compose-spec.json`, vendored: see `schema/README.md`), after interpolation and
//! before merge, as docker compose v2 does.
//!
//! compose v2 (compose-go) validates with santhosh-tekuri/jsonschema and reports the most
//! specific cause of a failure, as `validating <file>: <key path> <what is wrong>`. We use
//! `boon`, the same author's Rust port: its error tree has the same kinds and causes, so the
//! same cause is picked and worded the same way (`services.web.image must be a string`,
//! `services.web additional properties 'imag' not allowed`).

use crate::error::ComposeError;
use crate::yaml::key_str;
use boon::{Compiler, ErrorKind, InstanceToken, SchemaIndex, Schemas, Type, ValidationError};
use serde_json::Value as Json;
use serde_yaml_ng::Value;
use std::sync::OnceLock;

const SCHEMA: &str = include_str!("../schema/compose-spec.json");
// An http URL (no loader is registered for it: nothing is fetched) under which the schema's
// relative `$id` resolves.
const SCHEMA_URL: &str = "http://compose-spec.invalid/compose-spec.json";

/// The schema, compiled once.
fn compiled() -> &'static (Schemas, SchemaIndex) {
    static C: OnceLock<(Schemas, SchemaIndex)> = OnceLock::new();
    C.get_or_init(|| {
        let doc: Json = serde_json::from_str(SCHEMA).expect("the vendored schema is JSON");
        let mut schemas = Schemas::new();
        let mut compiler = Compiler::new();
        compiler
            .add_resource(SCHEMA_URL, doc)
            .expect("the vendored schema's URL is absolute");
        let idx = compiler
            .compile(SCHEMA_URL, &mut schemas)
            .expect("the vendored schema compiles (checked by a test)");
        (schemas, idx)
    })
}

/// Checks one interpolated file (`file` names it in the error).
pub fn validate(file: &str, tree: &Value) -> Result<(), ComposeError> {
    let json = to_json(tree).unwrap_or(Json::Null);
    let (schemas, idx) = compiled();
    match schemas.validate(&json, *idx) {
        Ok(()) => Ok(()),
        Err(e) => {
            let e = most_specific(&e);
            Err(ComposeError::Schema {
                file: file.to_string(),
                path: path_of(e),
                message: message_of(&e.kind),
            })
        }
    }
}

/// A YAML tree as the JSON compose-go validates: keys as strings, `!override` unwrapped,
/// `!reset` values dropped (compose-go's reset processor removes them before validation).
fn to_json(v: &Value) -> Option<Json> {
    Some(match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Json::from(i)
            } else if let Some(u) = n.as_u64() {
                Json::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map_or_else(|| Json::String(n.to_string()), Json::Number)
            }
        }
        Value::String(s) => Json::String(s.clone()),
        Value::Sequence(s) => Json::Array(s.iter().filter_map(to_json).collect()),
        Value::Mapping(m) => Json::Object(
            m.iter()
                .filter_map(|(k, x)| Some((key_str(k), to_json(x)?)))
                .collect(),
        ),
        Value::Tagged(t) if t.tag == "!reset" => return None,
        Value::Tagged(t) => return to_json(&t.value),
    })
}

/// compose-go's choice among the causes: the deepest instance location, an unknown property
/// counting one deeper than its object; the first of equals.
fn most_specific<'a, 's, 'v>(e: &'a ValidationError<'s, 'v>) -> &'a ValidationError<'s, 'v> {
    if e.causes.is_empty() {
        return e;
    }
    let mut best: Option<&ValidationError> = None;
    for c in &e.causes {
        let c = most_specific(c);
        if best.is_none_or(|b| specificity(c) > specificity(b)) {
            best = Some(c);
        }
    }
    best.unwrap_or(e)
}

fn specificity(e: &ValidationError) -> usize {
    let n = e.instance_location.tokens.len();
    match e.kind {
        ErrorKind::AdditionalProperties { .. } => n + 1,
        _ => n,
    }
}

fn path_of(e: &ValidationError) -> String {
    e.instance_location
        .tokens
        .iter()
        .map(|t| match t {
            InstanceToken::Prop(p) => p.to_string(),
            InstanceToken::Item(i) => i.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// compose-go's wording: its own for types and bounds, the validator's English for the rest.
fn message_of(k: &ErrorKind) -> String {
    match k {
        ErrorKind::Type { want, .. } => {
            let mut names: Vec<&str> = want.iter().map(type_name).collect();
            if names.len() > 1 {
                names.sort_unstable();
            }
            let list = match names.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                _ => names.concat(),
            };
            format!("must be a {list}")
        }
        ErrorKind::Minimum { want, .. } => format!("must be greater than or equal to {want}"),
        ErrorKind::Maximum { want, .. } => format!("must be less than or equal to {want}"),
        ErrorKind::AdditionalProperties { got } => {
            format!("additional properties {} not allowed", quoted(got))
        }
        ErrorKind::Required { want } if want.len() == 1 => {
            format!("missing property {}", quote(want[0]))
        }
        ErrorKind::Required { want } => format!("missing properties {}", quoted(want)),
        ErrorKind::Enum { want } => {
            let all: Vec<String> = want.iter().map(display).collect();
            match all.as_slice() {
                [one] => format!("value must be {one}"),
                _ => format!("value must be one of {}", all.join(", ")),
            }
        }
        ErrorKind::Const { want } => format!("value must be {}", display(want)),
        ErrorKind::Pattern { got, want } => {
            format!("{} does not match pattern {}", quote(got), quote(want))
        }
        ErrorKind::MinItems { got, want } => format!("minItems: got {got}, want {want}"),
        ErrorKind::MaxItems { got, want } => format!("maxItems: got {got}, want {want}"),
        ErrorKind::MinLength { got, want } => format!("minLength: got {got}, want {want}"),
        ErrorKind::MaxLength { got, want } => format!("maxLength: got {got}, want {want}"),
        ErrorKind::MinProperties { got, want } => format!("minProperties: got {got}, want {want}"),
        ErrorKind::MaxProperties { got, want } => format!("maxProperties: got {got}, want {want}"),
        ErrorKind::UniqueItems { got: [i, j] } => format!("items at {i} and {j} are equal"),
        ErrorKind::Dependency { prop, missing }
        | ErrorKind::DependentRequired { prop, missing } => {
            format!(
                "properties {} required, if {} exists",
                quoted(missing),
                quote(prop)
            )
        }
        ErrorKind::PropertyName { prop } => format!("invalid propertyName {}", quote(prop)),
        other => other.to_string(),
    }
}

/// The schema's `object` is YAML's mapping.
fn type_name(t: Type) -> &'static str {
    match t {
        Type::Null => "null",
        Type::Boolean => "boolean",
        Type::Number => "number",
        Type::Integer => "integer",
        Type::String => "string",
        Type::Array => "array",
        Type::Object => "mapping",
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "\\'"))
}

fn quoted<S: AsRef<str>>(v: &[S]) -> String {
    v.iter()
        .map(|s| quote(s.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn display(v: &Json) -> String {
    match v {
        Json::String(s) => quote(s),
        Json::Array(_) | Json::Object(_) => "value".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Result<(), String> {
        let v: Value = serde_yaml_ng::from_str(yaml).unwrap();
        validate("compose.yaml", &v).map_err(|e| e.to_string())
    }

    #[test]
    fn the_vendored_schema_compiles() {
        let _ = compiled();
    }

    #[test]
    fn a_valid_file_passes() {
        check(
            "name: p\nservices:\n  web:\n    image: nginx\n    ports: [\"8080:80\", 9000]\n    \
             environment: {A: 1, B: ~}\n    x-note: free\n    deploy: {replicas: 2}\n\
             volumes:\n  data: {}\nx-anchors: {a: 1}\n",
        )
        .unwrap();
    }

    #[test]
    fn unknown_top_level_key() {
        assert_eq!(
            check("services: {}\nhelicopters: {}\n").unwrap_err(),
            "validating compose.yaml: additional properties 'helicopters' not allowed"
        );
    }

    #[test]
    fn unknown_service_key() {
        assert_eq!(
            check("services:\n  web:\n    imag: nginx\n").unwrap_err(),
            "validating compose.yaml: services.web additional properties 'imag' not allowed"
        );
    }

    #[test]
    fn wrong_types_name_the_key_path() {
        assert_eq!(
            check("services:\n  web:\n    image: [nginx]\n").unwrap_err(),
            "validating compose.yaml: services.web.image must be a string"
        );
        assert_eq!(
            check("name: 123\n").unwrap_err(),
            "validating compose.yaml: name must be a string"
        );
        assert_eq!(
            check("services:\n  web:\n    ports:\n      - [80]\n").unwrap_err(),
            "validating compose.yaml: services.web.ports.0 must be a number"
        );
        assert_eq!(
            check("services:\n  web:\n    environment:\n      FOO: [1]\n").unwrap_err(),
            "validating compose.yaml: services.web.environment.FOO must be a boolean, null, number or string"
        );
        assert_eq!(
            check("services: []\n").unwrap_err(),
            "validating compose.yaml: services must be a mapping"
        );
    }

    #[test]
    fn enums_and_nested_objects() {
        assert_eq!(
            check("services:\n  web:\n    ports:\n      - {target: 80, bogus: 1}\n").unwrap_err(),
            "validating compose.yaml: services.web.ports.0 additional properties 'bogus' not allowed"
        );
        let e = check("services:\n  a:\n    depends_on:\n      b: {condition: service_sleepy}\n")
            .unwrap_err();
        assert!(
            e.starts_with(
                "validating compose.yaml: services.a.depends_on.b.condition value must be one of"
            ),
            "{e}"
        );
    }

    #[test]
    fn reset_and_override_tags() {
        check("services:\n  web:\n    image: nginx\n    ports: !reset []\n    environment: !override {A: b}\n").unwrap();
        assert_eq!(
            check("services:\n  web:\n    image: !override [x]\n").unwrap_err(),
            "validating compose.yaml: services.web.image must be a string"
        );
    }
}
