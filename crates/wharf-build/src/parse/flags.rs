//! Instruction flags (`--from=x`, `--link`, `--mount=...`) checked against what each
//! instruction accepts, as BuildKit's `BFlags` does.

use std::collections::BTreeMap;

use super::error::ParseErrorKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagType {
    Bool,
    String,
    /// Repeatable (`--mount`, `--exclude`).
    Strings,
}

#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: BTreeMap<&'static str, Vec<String>>,
}

impl Flags {
    /// Parses `args` (each `--name[=value]`) against `spec`.
    pub(crate) fn parse(
        args: &[String],
        spec: &[(&'static str, FlagType)],
    ) -> Result<Flags, ParseErrorKind> {
        let mut flags = Flags::default();
        for a in args {
            if a == "--" {
                break;
            }
            let (flag_name, value) = match a.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (a.as_str(), None),
            };
            let name = flag_name.strip_prefix("--").unwrap_or(flag_name);
            let Some(&(key, ty)) = spec.iter().find(|(n, _)| *n == name) else {
                return Err(ParseErrorKind::UnknownFlag(flag_name.to_string()));
            };
            let seen = flags.values.contains_key(key);
            if seen && ty != FlagType::Strings {
                return Err(ParseErrorKind::DuplicateFlag(flag_name.to_string()));
            }
            let value = match ty {
                FlagType::Bool => match value {
                    Some("") => return Err(ParseErrorKind::MissingFlagValue(flag_name.into())),
                    None => "true".to_string(),
                    Some(v) => match v.to_ascii_lowercase().as_str() {
                        "true" => "true".to_string(),
                        "false" => "false".to_string(),
                        _ => {
                            return Err(ParseErrorKind::NotBoolean {
                                flag: flag_name.into(),
                                value: v.into(),
                            })
                        }
                    },
                },
                FlagType::String | FlagType::Strings => match value {
                    None => return Err(ParseErrorKind::MissingFlagValue(flag_name.into())),
                    Some(v) => v.to_string(),
                },
            };
            flags.values.entry(key).or_default().push(value);
        }
        Ok(flags)
    }

    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.last().cloned())
    }

    pub(crate) fn strings(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }

    /// A bool flag: `None` when not given.
    pub(crate) fn bool(&self, name: &str) -> Option<bool> {
        self.string(name).map(|v| v == "true")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FlagType::*;

    const SPEC: &[(&str, FlagType)] = &[("from", String), ("link", Bool), ("exclude", Strings)];

    fn parse(args: &[&str]) -> Result<Flags, std::string::String> {
        let args: Vec<std::string::String> = args.iter().map(|s| s.to_string()).collect();
        Flags::parse(&args, SPEC).map_err(|e| e.to_string())
    }

    #[test]
    fn flags_parse_as_buildkit_s() {
        let f = parse(&["--from=a", "--link", "--exclude=x", "--exclude=y"]).unwrap();
        assert_eq!(f.string("from").as_deref(), Some("a"));
        assert_eq!(f.bool("link"), Some(true));
        assert_eq!(f.strings("exclude"), ["x", "y"]);
        assert_eq!(parse(&["--link=FALSE"]).unwrap().bool("link"), Some(false));
        assert_eq!(parse(&[]).unwrap().bool("link"), None);
        assert_eq!(
            parse(&["--from="]).unwrap().string("from").as_deref(),
            Some("")
        );
    }

    #[test]
    fn bad_flags_are_refused_by_name() {
        let cases: &[(&[&str], &str)] = &[
            (&["--chown=1"], "unknown flag: --chown"),
            (
                &["--from=a", "--from=b"],
                "duplicate flag specified: --from",
            ),
            (&["--from"], "missing a value on flag: --from"),
            (&["--link="], "missing a value on flag: --link"),
            (
                &["--link=yes"],
                "expecting boolean value for flag --link, not: yes",
            ),
            (&["--exclude"], "missing a value on flag: --exclude"),
        ];
        for (args, want) in cases {
            assert_eq!(parse(args).err().as_deref(), Some(*want), "{args:?}");
        }
    }
}
