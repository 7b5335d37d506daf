//! Variable interpolation as the compose spec defines it: `$V`, `${V}`, `${V:-default}`,
//! `${V-default}`, `${V:?err}`, `${V?err}`, `${V:+replacement}`, `${V+replacement}`, defaults
//! and replacements that hold further `${...}` (nesting), and `$$` for a literal `$`. A `$` that
//! starts no name stays as it is; `${` that opens no valid expression is an error.

use serde_yaml_ng::Value;

/// Why one string could not be interpolated.
#[derive(Debug, PartialEq, Eq)]
pub enum InterpError {
    /// `${V:?msg}` / `${V?msg}` with V missing.
    Required { var: String, message: String },
    /// A malformed `${...}`.
    Format(String),
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

/// Interpolates one string, looking variables up with `lookup`.
pub fn interpolate(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some(&n) if is_name_start(n) => {
                let mut j = i + 1;
                while j < chars.len() && is_name_char(chars[j]) {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                out.push_str(&lookup(&name).unwrap_or_default());
                i = j;
            }
            Some('{') => {
                let close = matching_brace(&chars, i + 2)
                    .ok_or_else(|| InterpError::Format(format!("unclosed \"${{\" in {s:?}")))?;
                let inner: String = chars[i + 2..close].iter().collect();
                out.push_str(&braced(&inner, lookup)?);
                i = close + 1;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

/// The index of the `}` closing a `${` whose body starts at `from`, counting nested `${`.
fn matching_brace(chars: &[char], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '$' if chars.get(i + 1) == Some(&'$') => i += 1,
            '$' if chars.get(i + 1) == Some(&'{') => {
                depth += 1;
                i += 1;
            }
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The body of one `${...}`.
fn braced(inner: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, InterpError> {
    let name_len = inner
        .char_indices()
        .find(|&(_, c)| !is_name_char(c))
        .map_or(inner.len(), |(i, _)| i);
    let name = &inner[..name_len];
    if name.is_empty() || !name.starts_with(is_name_start) {
        return Err(InterpError::Format(format!(
            "invalid variable name in \"${{{inner}}}\""
        )));
    }
    let rest = &inner[name_len..];
    let value = lookup(name);
    if rest.is_empty() {
        return Ok(value.unwrap_or_default());
    }
    let (colon, op, arg) = match rest.strip_prefix(':') {
        Some(r) => (true, r.chars().next(), r.get(1..).unwrap_or("")),
        None => (false, rest.chars().next(), rest.get(1..).unwrap_or("")),
    };
    // With ':' an empty value counts as unset; without, only an unset one does.
    let set = match &value {
        Some(v) => !colon || !v.is_empty(),
        None => false,
    };
    match op {
        Some('-') => {
            if set {
                Ok(value.unwrap_or_default())
            } else {
                interpolate(arg, lookup)
            }
        }
        Some('?') => {
            if set {
                Ok(value.unwrap_or_default())
            } else {
                Err(InterpError::Required {
                    var: name.to_string(),
                    message: interpolate(arg, lookup)?,
                })
            }
        }
        Some('+') => {
            if set {
                interpolate(arg, lookup)
            } else {
                Ok(String::new())
            }
        }
        _ => Err(InterpError::Format(format!(
            "invalid operator in \"${{{inner}}}\""
        ))),
    }
}

/// Interpolates every string value (not the keys) of a YAML tree in place; `on_error` gets the
/// key path of a failing value.
pub fn interpolate_tree(
    v: &mut Value,
    path: &mut Vec<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), (String, String, InterpError)> {
    match v {
        Value::String(s) => {
            let new = interpolate(s, lookup).map_err(|e| (path.join("."), s.clone(), e))?;
            *s = new;
        }
        Value::Sequence(seq) => {
            for (i, item) in seq.iter_mut().enumerate() {
                path.push(format!("[{i}]"));
                let r = interpolate_tree(item, path, lookup);
                path.pop();
                r?;
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                path.push(crate::yaml::key_str(k));
                let r = interpolate_tree(item, path, lookup);
                path.pop();
                r?;
            }
        }
        Value::Tagged(t) => interpolate_tree(&mut t.value, path, lookup)?,
        _ => {}
    }
    Ok(())
}

/// The keys whose interpolated text compose v2 casts to a boolean, integer or number before
/// validation (compose-go's type-cast mapping), so `init: ${INIT:-false}` is a boolean.
/// `*` is any one key, `[]` any list item.
const CASTS: &[(&str, Cast)] = &[
    ("services.*.cpu_count", Cast::Int),
    ("services.*.cpu_percent", Cast::Float),
    ("services.*.cpu_period", Cast::Int),
    ("services.*.cpu_quota", Cast::Int),
    ("services.*.cpu_rt_period", Cast::Int),
    ("services.*.cpu_rt_runtime", Cast::Int),
    ("services.*.cpus", Cast::Float),
    ("services.*.cpu_shares", Cast::Int),
    ("services.*.init", Cast::Bool),
    ("services.*.depends_on.*.required", Cast::Bool),
    ("services.*.depends_on.*.restart", Cast::Bool),
    ("services.*.deploy.replicas", Cast::Int),
    ("services.*.deploy.update_config.parallelism", Cast::Int),
    (
        "services.*.deploy.update_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.rollback_config.parallelism", Cast::Int),
    (
        "services.*.deploy.rollback_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.restart_policy.max_attempts", Cast::Int),
    (
        "services.*.deploy.placement.max_replicas_per_node",
        Cast::Int,
    ),
    ("services.*.healthcheck.retries", Cast::Int),
    ("services.*.healthcheck.disable", Cast::Bool),
    ("services.*.oom_kill_disable", Cast::Bool),
    ("services.*.oom_score_adj", Cast::Int),
    ("services.*.pids_limit", Cast::Int),
    ("services.*.ports.[].target", Cast::Int),
    ("services.*.privileged", Cast::Bool),
    ("services.*.read_only", Cast::Bool),
    ("services.*.scale", Cast::Int),
    ("services.*.stdin_open", Cast::Bool),
    ("services.*.tty", Cast::Bool),
    ("services.*.ulimits.*", Cast::Int),
    ("services.*.ulimits.*.hard", Cast::Int),
    ("services.*.ulimits.*.soft", Cast::Int),
    ("services.*.volumes.[].read_only", Cast::Bool),
    ("services.*.volumes.[].volume.nocopy", Cast::Bool),
    ("networks.*.external", Cast::Bool),
    ("networks.*.internal", Cast::Bool),
    ("networks.*.attachable", Cast::Bool),
    ("networks.*.enable_ipv4", Cast::Bool),
    ("networks.*.enable_ipv6", Cast::Bool),
    ("volumes.*.external", Cast::Bool),
    ("secrets.*.external", Cast::Bool),
    ("configs.*.external", Cast::Bool),
];

#[derive(Clone, Copy)]
enum Cast {
    Bool,
    Int,
    Float,
}

impl Cast {
    fn apply(self, s: &str) -> Result<Value, String> {
        match self {
            // YAML 1.1's y/yes/on and n/no/off too, as compose-go accepts them.
            Cast::Bool => match s.to_ascii_lowercase().as_str() {
                "true" | "y" | "yes" | "on" => Ok(Value::Bool(true)),
                "false" | "n" | "no" | "off" => Ok(Value::Bool(false)),
                _ => Err(format!("invalid boolean: {s}")),
            },
            Cast::Int => s
                .parse::<i64>()
                .map(|i| Value::Number(i.into()))
                .map_err(|_| format!("invalid integer: {s}")),
            Cast::Float => s
                .parse::<f64>()
                .map(|f| Value::Number(f.into()))
                .map_err(|_| format!("invalid number: {s}")),
        }
    }
}

fn matches(pattern: &str, path: &[String]) -> bool {
    let parts: Vec<&str> = pattern.split('.').collect();
    parts.len() == path.len()
        && parts.iter().zip(path).all(|(p, k)| match *p {
            "*" => true,
            "[]" => k.starts_with('['),
            _ => p == k,
        })
}

/// Casts the strings at [`CASTS`]' keys (after [`interpolate_tree`]); the error is the key and
/// what is wrong.
pub fn cast_tree(v: &mut Value, path: &mut Vec<String>) -> Result<(), (String, String)> {
    match v {
        Value::String(s) => {
            if let Some((_, cast)) = CASTS.iter().find(|(p, _)| matches(p, path)) {
                *v = cast.apply(s).map_err(|e| {
                    let key = path.join(".").replace(".[", "[");
                    (key, format!("failed to cast to expected type: {e}"))
                })?;
            }
        }
        Value::Sequence(seq) => {
            for (i, item) in seq.iter_mut().enumerate() {
                path.push(format!("[{i}]"));
                let r = cast_tree(item, path);
                path.pop();
                r?;
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                path.push(crate::yaml::key_str(k));
                let r = cast_tree(item, path);
                path.pop();
                r?;
            }
        }
        Value::Tagged(t) => cast_tree(&mut t.value, path)?,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("v".into()),
            "EMPTY" => Some(String::new()),
            "OTHER" => Some("o".into()),
            _ => None,
        }
    }

    fn i(s: &str) -> Result<String, InterpError> {
        interpolate(s, &env)
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(i("a $SET b ${SET} c").unwrap(), "a v b v c");
        assert_eq!(i("$UNSET|${UNSET}").unwrap(), "|");
        assert_eq!(i("${SET}x$SET.y").unwrap(), "vxv.y");
    }

    #[test]
    fn dollar_dollar_and_lone_dollar() {
        assert_eq!(i("$$SET $${SET}").unwrap(), "$SET ${SET}");
        assert_eq!(i("cost: 5$ $1 $").unwrap(), "cost: 5$ $1 $");
    }

    #[test]
    fn defaults_with_and_without_colon() {
        assert_eq!(i("${UNSET:-d}").unwrap(), "d");
        assert_eq!(i("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(i("${SET:-d}").unwrap(), "v");
        assert_eq!(i("${UNSET-d}").unwrap(), "d");
        assert_eq!(i("${EMPTY-d}").unwrap(), "");
        assert_eq!(i("${UNSET:-}").unwrap(), "");
        assert_eq!(i("${UNSET:-a b:c}").unwrap(), "a b:c");
    }

    #[test]
    fn required() {
        assert_eq!(
            i("${UNSET:?need it}"),
            Err(InterpError::Required {
                var: "UNSET".into(),
                message: "need it".into()
            })
        );
        assert!(matches!(
            i("${EMPTY:?x}"),
            Err(InterpError::Required { .. })
        ));
        assert_eq!(i("${EMPTY?x}").unwrap(), "");
        assert!(matches!(i("${UNSET?x}"), Err(InterpError::Required { .. })));
        assert_eq!(i("${SET:?x}").unwrap(), "v");
    }

    #[test]
    fn replacement() {
        assert_eq!(i("${SET:+r}").unwrap(), "r");
        assert_eq!(i("${EMPTY:+r}").unwrap(), "");
        assert_eq!(i("${EMPTY+r}").unwrap(), "r");
        assert_eq!(i("${UNSET+r}").unwrap(), "");
    }

    #[test]
    fn nesting() {
        assert_eq!(i("${UNSET:-${OTHER}}").unwrap(), "o");
        assert_eq!(i("${UNSET:-${UNSET2:-${SET}-x}}").unwrap(), "v-x");
        assert_eq!(i("${SET:+[${OTHER}]}").unwrap(), "[o]");
        assert_eq!(
            i("${UNSET:?${OTHER} missing}"),
            Err(InterpError::Required {
                var: "UNSET".into(),
                message: "o missing".into()
            })
        );
        // The unused branch is not evaluated (no error from it).
        assert_eq!(i("${SET:-${UNSET:?boom}}").unwrap(), "v");
    }

    #[test]
    fn malformed() {
        assert!(matches!(i("${SET"), Err(InterpError::Format(_))));
        assert!(matches!(i("${}"), Err(InterpError::Format(_))));
        assert!(matches!(i("${1X}"), Err(InterpError::Format(_))));
        assert!(matches!(i("${SET*x}"), Err(InterpError::Format(_))));
    }

    #[test]
    fn tree_values_not_keys_with_path() {
        let mut v: Value = serde_yaml_ng::from_str("a:\n  $SET: [x, '${SET}']\n").unwrap();
        interpolate_tree(&mut v, &mut Vec::new(), &env).unwrap();
        assert_eq!(
            serde_yaml_ng::to_string(&v).unwrap(),
            "a:\n  $SET:\n  - x\n  - v\n"
        );
        let mut v: Value = serde_yaml_ng::from_str("a:\n  b: [ok, '${X:?no}']\n").unwrap();
        let (path, _, _) = interpolate_tree(&mut v, &mut Vec::new(), &env).unwrap_err();
        assert_eq!(path, "a.b.[1]");
    }

    #[test]
    fn casts_at_compose_v2s_keys() {
        let mut v: Value = serde_yaml_ng::from_str(
            "services:\n  a:\n    init: 'yes'\n    scale: '3'\n    cpus: '0.5'\n    \
             ports: [{target: '80'}, '8080:80']\n    depends_on: {b: {required: 'false'}}\n    \
             command: 'true'\nvolumes:\n  d: {external: 'true'}\n",
        )
        .unwrap();
        cast_tree(&mut v, &mut Vec::new()).unwrap();
        let want: Value = serde_yaml_ng::from_str(
            "services:\n  a:\n    init: true\n    scale: 3\n    cpus: 0.5\n    \
             ports: [{target: 80}, '8080:80']\n    depends_on: {b: {required: false}}\n    \
             command: 'true'\nvolumes:\n  d: {external: true}\n",
        )
        .unwrap();
        assert_eq!(v, want);
        let mut bad: Value = serde_yaml_ng::from_str("services:\n  a:\n    tty: maybe\n").unwrap();
        assert_eq!(
            cast_tree(&mut bad, &mut Vec::new()).unwrap_err(),
            (
                "services.a.tty".to_string(),
                "failed to cast to expected type: invalid boolean: maybe".to_string()
            )
        );
    }
}
