//! `RUN --mount=type=...,k=v,...`: the CSV fields, their keys and the checks BuildKit makes.
//! Values stay unexpanded; a check that needs a value is skipped when the value holds a `$`
//! (the executor checks again after expansion with [`parse_mount`]).

use crate::ast::{MountKind, RunMount};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    #[error("failed to parse csv mounts: {0}")]
    Csv(String),
    #[error("unsupported mount type {0:?}")]
    Type(String),
    #[error("mount type {0:?} cannot come from a variable")]
    TypeVariable(String),
    #[error("unsupported sharing value {0:?}")]
    Sharing(String),
    #[error("invalid field '{0}' must be a key=value pair")]
    NotKeyValue(String),
    #[error("unexpected key '{key}' for mount type '{kind}'")]
    KeyForType { key: String, kind: &'static str },
    #[error("unexpected key '{key}' in '{field}'")]
    UnknownKey { key: String, field: String },
    #[error("invalid value for {key}: {value}")]
    Value { key: String, value: String },
    #[error("invalid value {value} for {key}")]
    Number { key: &'static str, value: String },
    #[error("'from' doesn't support variable expansion, define alias stage instead")]
    FromVariable,
    #[error("{key} not allowed for {kind:?} type mounts")]
    FileInfo {
        key: &'static str,
        kind: &'static str,
    },
    #[error("secret mount should not have a from")]
    SecretFrom,
    #[error("secret mount should not define sharing")]
    SecretSharing,
    #[error("invalid secret mount. one of source, target required")]
    SecretTarget,
    #[error("both source and id can't be set")]
    SecretSourceAndId,
    #[error("invalid cache sharing set for {0} mount")]
    SharingType(&'static str),
}

/// Expands one mount value (the executor's second pass), or says why not.
pub type ValueExpander<'a> = &'a dyn Fn(&str) -> Result<String, String>;

pub fn kind_name(k: MountKind) -> &'static str {
    match k {
        MountKind::Bind => "bind",
        MountKind::Cache => "cache",
        MountKind::Tmpfs => "tmpfs",
        MountKind::Secret => "secret",
        MountKind::Ssh => "ssh",
    }
}

/// Go's `encoding/csv` on one line: `,`-separated, a field may be `"quoted"` with `""` for a
/// quote.
fn csv_fields(s: &str) -> Result<Vec<String>, MountError> {
    let mut fields = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    loop {
        let mut field = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(MountError::Csv(format!(
                            "parse error on line 1, column {}: extraneous or missing \" in quoted-field",
                            i + 1
                        )))
                    }
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        field.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        field.push(c);
                        i += 1;
                    }
                }
            }
            match chars.get(i) {
                None | Some(',') => {}
                Some(_) => {
                    return Err(MountError::Csv(format!(
                    "parse error on line 1, column {}: extraneous or missing \" in quoted-field",
                    i + 1
                )))
                }
            }
        } else {
            while let Some(&c) = chars.get(i) {
                if c == ',' {
                    break;
                }
                if c == '"' {
                    return Err(MountError::Csv(format!(
                        "parse error on line 1, column {}: bare \" in non-quoted-field",
                        i + 1
                    )));
                }
                field.push(c);
                i += 1;
            }
        }
        fields.push(field);
        if chars.get(i) == Some(&',') {
            i += 1;
        } else {
            return Ok(fields);
        }
    }
}

fn parse_bool(key: &str, value: &str) -> Result<Option<bool>, MountError> {
    if value.contains('$') {
        return Ok(None);
    }
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Some(true)),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Some(false)),
        _ => Err(MountError::Value {
            key: key.into(),
            value: value.into(),
        }),
    }
}

fn check_number(key: &'static str, value: &str, radix: u32) -> Result<(), MountError> {
    if value.contains('$') || u32::from_str_radix(value, radix).is_ok() && !value.starts_with('+') {
        return Ok(());
    }
    Err(MountError::Number {
        key,
        value: value.into(),
    })
}

/// Parses one `--mount` value. `expand`, when given, expands each value first (the executor's
/// second pass); without it values stay as written.
pub fn parse_mount(spec: &str, expand: Option<ValueExpander<'_>>) -> Result<RunMount, MountError> {
    let mut m = RunMount {
        kind: MountKind::Bind,
        target: None,
        source: None,
        from: None,
        id: None,
        sharing: None,
        readonly: None,
        required: None,
        mode: None,
        uid: None,
        gid: None,
        size: None,
        env: None,
    };
    let secretish = |k: MountKind| matches!(k, MountKind::Secret | MountKind::Ssh);
    for field in csv_fields(spec)? {
        let Some((key, value)) = field.split_once('=') else {
            match field.to_ascii_lowercase().as_str() {
                "readonly" | "ro" => m.readonly = Some(true),
                "readwrite" | "rw" => m.readonly = Some(false),
                "required" if secretish(m.kind) => m.required = Some(true),
                "required" => {
                    return Err(MountError::KeyForType {
                        key: "required".into(),
                        kind: kind_name(m.kind),
                    })
                }
                _ => return Err(MountError::NotKeyValue(field)),
            }
            continue;
        };
        let key = key.to_ascii_lowercase();
        let value = match expand {
            Some(f) => f(value).map_err(MountError::Csv)?,
            None => value.to_string(),
        };
        if key == "from" && expand.is_none() {
            if let Some(i) = value.find('$') {
                if i != value.len() - 1 {
                    return Err(MountError::FromVariable);
                }
            }
        }
        match key.as_str() {
            "type" => {
                m.kind = match value.to_ascii_lowercase().as_str() {
                    "bind" => MountKind::Bind,
                    "cache" => MountKind::Cache,
                    "tmpfs" => MountKind::Tmpfs,
                    "secret" => MountKind::Secret,
                    "ssh" => MountKind::Ssh,
                    _ if value.contains('$') => return Err(MountError::TypeVariable(value)),
                    _ => return Err(MountError::Type(value)),
                }
            }
            "from" => m.from = Some(value),
            "source" | "src" => m.source = Some(value),
            "target" | "dst" | "destination" => m.target = Some(value),
            "readonly" | "ro" => m.readonly = parse_bool(&key, &value)?.or(Some(true)),
            "readwrite" | "rw" => {
                m.readonly = parse_bool(&key, &value)?.map(|b| !b).or(Some(false))
            }
            "required" => {
                if !secretish(m.kind) {
                    return Err(MountError::KeyForType {
                        key,
                        kind: kind_name(m.kind),
                    });
                }
                m.required = parse_bool(&key, &value)?.or(Some(true));
            }
            "size" => {
                if m.kind != MountKind::Tmpfs {
                    return Err(MountError::KeyForType {
                        key,
                        kind: kind_name(m.kind),
                    });
                }
                m.size = Some(value);
            }
            "id" => m.id = Some(value),
            "sharing" => {
                let v = value.to_ascii_lowercase();
                if !matches!(v.as_str(), "shared" | "private" | "locked") && !v.contains('$') {
                    return Err(MountError::Sharing(value));
                }
                m.sharing = Some(v);
            }
            "mode" => {
                check_number("mode", &value, 8)?;
                m.mode = Some(value);
            }
            "uid" => {
                check_number("uid", &value, 10)?;
                m.uid = Some(value);
            }
            "gid" => {
                check_number("gid", &value, 10)?;
                m.gid = Some(value);
            }
            "env" => m.env = Some(value),
            _ => return Err(MountError::UnknownKey { key, field }),
        }
    }
    let file_info = matches!(
        m.kind,
        MountKind::Secret | MountKind::Ssh | MountKind::Cache
    );
    if !file_info {
        let kind = kind_name(m.kind);
        for (key, set) in [("mode", &m.mode), ("uid", &m.uid), ("gid", &m.gid)] {
            if set.is_some() {
                return Err(MountError::FileInfo { key, kind });
            }
        }
    }
    if m.kind == MountKind::Secret {
        if m.from.is_some() {
            return Err(MountError::SecretFrom);
        }
        if m.sharing.is_some() {
            return Err(MountError::SecretSharing);
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() {
            return Err(MountError::SecretTarget);
        }
        if m.source.is_some() && m.id.is_some() {
            return Err(MountError::SecretSourceAndId);
        }
    }
    if m.sharing.is_some() && m.kind != MountKind::Cache {
        return Err(MountError::SharingType(kind_name(m.kind)));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_parse_every_key() {
        let m = parse_mount(
            "type=cache,target=/root/.cache,id=pip,sharing=LOCKED,mode=0755,uid=1,gid=2,from=base,source=/c",
            None,
        )
        .unwrap();
        assert_eq!(m.kind, MountKind::Cache);
        assert_eq!(m.target.as_deref(), Some("/root/.cache"));
        assert_eq!(m.id.as_deref(), Some("pip"));
        assert_eq!(m.sharing.as_deref(), Some("locked"));
        assert_eq!(
            (m.mode.as_deref(), m.uid.as_deref(), m.gid.as_deref()),
            (Some("0755"), Some("1"), Some("2"))
        );
        assert_eq!(m.from.as_deref(), Some("base"));
        assert_eq!(m.source.as_deref(), Some("/c"));

        let m = parse_mount("target=/src,rw", None).unwrap();
        assert_eq!((m.kind, m.readonly), (MountKind::Bind, Some(false)));
        let m = parse_mount("type=bind,dst=/x,src=y,readonly=false", None).unwrap();
        assert_eq!(
            (m.target.as_deref(), m.source.as_deref(), m.readonly),
            (Some("/x"), Some("y"), Some(false))
        );
        let m = parse_mount("type=secret,id=tok,env=TOKEN,required", None).unwrap();
        assert_eq!(
            (m.id.as_deref(), m.env.as_deref(), m.required),
            (Some("tok"), Some("TOKEN"), Some(true))
        );
        let m = parse_mount("type=tmpfs,target=/t,size=64m", None).unwrap();
        assert_eq!(m.size.as_deref(), Some("64m"));
        let m = parse_mount("type=ssh", None).unwrap();
        assert_eq!(m.kind, MountKind::Ssh);
        let m = parse_mount("\"target=/a,b\",type=bind", None).unwrap();
        assert_eq!(m.target.as_deref(), Some("/a,b"));
        let m = parse_mount("target=$DIR,ro=$RO", None).unwrap();
        assert_eq!(
            (m.target.as_deref(), m.readonly),
            (Some("$DIR"), Some(true))
        );
        let expand = |v: &str| Ok::<_, String>(v.replace("$T", "cache"));
        assert_eq!(
            parse_mount("type=$T,target=/x", Some(&expand))
                .unwrap()
                .kind,
            MountKind::Cache
        );
    }

    #[test]
    fn bad_mounts_give_buildkit_s_errors() {
        let cases: &[(&str, &str)] = &[
            ("type=nfs", "unsupported mount type \"nfs\""),
            ("type=cache,sharing=all", "unsupported sharing value \"all\""),
            ("type=bind,sharing=shared", "invalid cache sharing set for bind mount"),
            ("target=/x,bogus", "invalid field 'bogus' must be a key=value pair"),
            ("required", "unexpected key 'required' for mount type 'bind'"),
            ("type=cache,size=1m", "unexpected key 'size' for mount type 'cache'"),
            ("target=/x,colour=red", "unexpected key 'colour' in 'colour=red'"),
            ("ro=maybe", "invalid value for ro: maybe"),
            ("type=cache,mode=999", "invalid value 999 for mode"),
            ("type=cache,uid=-1", "invalid value -1 for uid"),
            ("type=bind,mode=0700", "mode not allowed for \"bind\" type mounts"),
            ("type=tmpfs,uid=0", "uid not allowed for \"tmpfs\" type mounts"),
            ("from=$STAGE", "'from' doesn't support variable expansion, define alias stage instead"),
            ("type=secret", "invalid secret mount. one of source, target required"),
            ("type=secret,id=a,from=b", "secret mount should not have a from"),
            ("type=secret,id=a,source=b", "both source and id can't be set"),
            ("type=secret,id=a,sharing=shared", "secret mount should not define sharing"),
            ("type=$T", "mount type \"$T\" cannot come from a variable"),
            ("target=a\"b", "failed to parse csv mounts: parse error on line 1, column 9: bare \" in non-quoted-field"),
            ("\"target=a", "failed to parse csv mounts: parse error on line 1, column 10: extraneous or missing \" in quoted-field"),
        ];
        for (spec, want) in cases {
            assert_eq!(
                parse_mount(spec, None).unwrap_err().to_string(),
                *want,
                "{spec}"
            );
        }
        // A `$` at the very end is not a variable.
        assert_eq!(
            parse_mount("from=stage$", None).unwrap().from.as_deref(),
            Some("stage$")
        );
    }
}
