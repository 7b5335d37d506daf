//! `.env` and `env_file` files as compose reads them: `KEY=VALUE` lines, an optional `export `,
//! `#` comments (a whole line, or after a space in an unquoted value), `'single'` quotes taken
//! literally, `"double"` quotes with `\n`, `\t`, `\"`, `\\` escapes, and `${...}`
//! interpolation in unquoted and double-quoted values (over the earlier lines, then the
//! environment). A bare `KEY` takes the value from the environment, or is left out.

use crate::error::{ComposeError, Result};
use crate::interpolate::{interpolate, InterpError};
use std::collections::BTreeMap;
use std::path::Path;

/// Variables in file order (the last of a repeated key wins).
pub type EnvMap = BTreeMap<String, String>;

/// Reads an env file; `outer` looks up the variables it interpolates that it does not set.
pub fn read_env_file(path: &Path, outer: &dyn Fn(&str) -> Option<String>) -> Result<EnvMap> {
    let text = std::fs::read_to_string(path).map_err(|source| ComposeError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_env(&text, outer).map_err(|(line, message)| ComposeError::EnvFile {
        path: path.to_path_buf(),
        line,
        message,
    })
}

/// Parses env-file text; errors carry the 1-based line.
pub fn parse_env(
    text: &str,
    outer: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<EnvMap, (usize, String)> {
    let mut vars = EnvMap::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut n = 0;
    while n < lines.len() {
        let lineno = n + 1;
        let line = lines[n].trim_start();
        n += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, raw)) = line.split_once('=') else {
            let key = line.trim();
            check_key(key).map_err(|m| (lineno, m))?;
            if let Some(v) = outer(key) {
                vars.insert(key.to_string(), v);
            }
            continue;
        };
        let key = key.trim();
        check_key(key).map_err(|m| (lineno, m))?;
        let raw = raw.trim_start();
        let value = if let Some(body) = raw.strip_prefix('\'') {
            let (v, _) = quoted(body, '\'', &lines, &mut n).map_err(|m| (lineno, m))?;
            v
        } else if let Some(body) = raw.strip_prefix('"') {
            let (v, _) = quoted(body, '"', &lines, &mut n).map_err(|m| (lineno, m))?;
            expand(&unescape(&v), &vars, outer).map_err(|m| (lineno, m))?
        } else {
            let v = match raw.find(" #") {
                Some(i) => &raw[..i],
                None => raw,
            };
            expand(v.trim_end(), &vars, outer).map_err(|m| (lineno, m))?
        };
        vars.insert(key.to_string(), value);
    }
    Ok(vars)
}

fn check_key(key: &str) -> std::result::Result<(), String> {
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(format!("unexpected character in variable name {key:?}"));
    }
    Ok(())
}

/// The text of a quoted value up to its closing quote, which may be on a later line.
fn quoted(
    first: &str,
    q: char,
    lines: &[&str],
    n: &mut usize,
) -> std::result::Result<(String, ()), String> {
    let mut acc = String::new();
    let mut cur = first.to_string();
    loop {
        let mut escaped = false;
        for (i, c) in cur.char_indices() {
            if escaped {
                escaped = false;
                continue;
            }
            if c == '\\' && q == '"' {
                escaped = true;
            } else if c == q {
                acc.push_str(&cur[..i]);
                return Ok((acc, ()));
            }
        }
        acc.push_str(&cur);
        if *n >= lines.len() {
            return Err(format!("unterminated quoted value (missing {q})"));
        }
        acc.push('\n');
        cur = lines[*n].to_string();
        *n += 1;
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

fn expand(
    v: &str,
    vars: &EnvMap,
    outer: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<String, String> {
    let lookup = |k: &str| vars.get(k).cloned().or_else(|| outer(k));
    interpolate(v, &lookup).map_err(|e| match e {
        InterpError::Required { var, message } => {
            format!("required variable {var} is missing a value: {message}")
        }
        InterpError::Format(m) => m,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outer(k: &str) -> Option<String> {
        (k == "HOME_X").then(|| "/h".to_string())
    }

    #[test]
    fn forms() {
        let text = "# comment\n\nA=1\nexport B = two \nC='lit $A # x'\nD=\"q\\n$A\"\nE=v # note\nF=a#b\nHOME_X\nMISSING\nG=${A}-${HOME_X}\nH=\n";
        let m = parse_env(text, &outer).unwrap();
        assert_eq!(m["A"], "1");
        assert_eq!(m["B"], "two");
        assert_eq!(m["C"], "lit $A # x");
        assert_eq!(m["D"], "q\n1");
        assert_eq!(m["E"], "v");
        assert_eq!(m["F"], "a#b");
        assert_eq!(m["HOME_X"], "/h");
        assert!(!m.contains_key("MISSING"));
        assert_eq!(m["G"], "1-/h");
        assert_eq!(m["H"], "");
    }

    #[test]
    fn multiline_double_quoted() {
        let m = parse_env("K=\"a\nb\"\nL=2\n", &outer).unwrap();
        assert_eq!(m["K"], "a\nb");
        assert_eq!(m["L"], "2");
    }

    #[test]
    fn errors_carry_the_line() {
        assert_eq!(parse_env("A=1\nB='open\n", &outer).unwrap_err().0, 2);
        assert_eq!(parse_env("A=1\n\nBAD KEY=1\n", &outer).unwrap_err().0, 3);
        assert_eq!(parse_env("A=${X:?need}\n", &outer).unwrap_err().0, 1);
    }
}
