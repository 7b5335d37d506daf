//! Splitting an instruction's text: the keyword, the `--flags`, words with quotes kept (ENV,
//! LABEL, ARG), whitespace-separated lists and the JSON (exec) form.

use super::error::ParseErrorKind;

/// The whitespace Docker splits instruction lines on (`[\t\v\f\r ]+`).
pub(crate) fn is_line_space(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// Splits on runs of [`is_line_space`]; empty input gives no words.
pub(crate) fn split_whitespace(s: &str) -> Vec<String> {
    s.split(is_line_space)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Splits `s` in two at the first run of line whitespace.
pub(crate) fn split_once_whitespace(s: &str) -> (&str, Option<&str>) {
    match s.find(is_line_space) {
        None => (s, None),
        Some(i) => {
            let rest = s[i..].trim_start_matches(is_line_space);
            (&s[..i], Some(rest))
        }
    }
}

/// The keyword, its `--flags` (quotes and escapes removed) and the rest, trimmed.
pub(crate) fn split_command(line: &str, escape: char) -> (String, Vec<String>, String) {
    let (cmd, rest) = split_once_whitespace(line.trim());
    match rest {
        None => (cmd.to_string(), Vec::new(), String::new()),
        Some(rest) => {
            let (args, flags) = extract_flags(rest, escape);
            (cmd.to_string(), flags, args.trim().to_string())
        }
    }
}

/// Takes the leading `--name[=value]` words off `line` (a word `--` ends them).
pub(crate) fn extract_flags(line: &str, escape: char) -> (&str, Vec<String>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut i = 0;
    loop {
        // Looking for the start of a word.
        while i < chars.len() && chars[i].1.is_whitespace() {
            i += 1;
        }
        if i == chars.len() {
            return ("", words);
        }
        if !(chars[i].1 == '-' && chars.get(i + 1).map(|c| c.1) == Some('-')) {
            return (&line[chars[i].0..], words);
        }
        // In a word.
        let mut quote: Option<char> = None;
        loop {
            let Some(&(off, ch)) = chars.get(i) else {
                if word != "--" && (blank_ok || !word.is_empty()) {
                    words.push(std::mem::take(&mut word));
                }
                return ("", words);
            };
            match quote {
                None if ch.is_whitespace() => {
                    if word == "--" {
                        return (&line[off..], words);
                    }
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                    break;
                }
                None if ch == '\'' || ch == '"' => {
                    quote = Some(ch);
                    blank_ok = true;
                }
                Some(q) if ch == q => quote = None,
                _ if ch == escape => {
                    if i + 1 == chars.len() {
                        quote = None;
                    } else {
                        i += 1;
                        word.push(chars[i].1);
                    }
                }
                _ => word.push(ch),
            }
            i += 1;
        }
    }
}

/// Words for ENV, LABEL and ARG: split on whitespace outside quotes, quotes and escapes kept
/// (they are removed when the word is expanded).
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut i = 0;
    while i <= chars.len() {
        let at_end = i == chars.len();
        if !in_word {
            if at_end {
                break;
            }
            if chars[i].is_whitespace() {
                i += 1;
                continue;
            }
            in_word = true;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            break;
        }
        let ch = chars[i];
        match quote {
            None => {
                if ch.is_whitespace() {
                    in_word = false;
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                    i += 1;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    quote = Some(ch);
                    blank_ok = true;
                }
                if ch == escape {
                    if i + 1 == chars.len() {
                        i += 1;
                        continue;
                    }
                    word.push(ch);
                    i += 1;
                }
                word.push(chars[i]);
            }
            Some(q) => {
                if ch == q {
                    quote = None;
                }
                if ch == escape && q != '\'' {
                    if i + 1 == chars.len() {
                        quote = None;
                        i += 1;
                        continue;
                    }
                    word.push(ch);
                    i += 1;
                }
                word.push(chars[i]);
            }
        }
        i += 1;
    }
    words
}

/// The JSON (exec) form: `Ok(None)` when `rest` is not a JSON array (the shell form), an
/// error when it is one holding something other than strings.
pub(crate) fn parse_json(rest: &str) -> Result<Option<Vec<String>>, ParseErrorKind> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(ParseErrorKind::NotStringArray),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_come_off_the_front_with_quotes_removed() {
        let cases: &[(&str, &[&str], &str)] = &[
            ("a b", &[], "a b"),
            ("--from=x a b", &["--from=x"], "a b"),
            (
                "--mount=type=bind,target=\"/a b\"  echo",
                &["--mount=type=bind,target=/a b"],
                "echo",
            ),
            (
                "--link --chown=1:1 src dst",
                &["--link", "--chown=1:1"],
                "src dst",
            ),
            ("--x=\\ y z", &["--x= y"], "z"),
            ("-- --not-a-flag x", &[], " --not-a-flag x"),
            ("--only", &["--only"], ""),
            ("--a='' b", &["--a="], "b"),
            ("-x y", &[], "-x y"),
        ];
        for (line, flags, rest) in cases {
            let (r, f) = extract_flags(line, '\\');
            assert_eq!(
                (r, f.as_slice()),
                (
                    *rest,
                    &flags.iter().map(|s| s.to_string()).collect::<Vec<_>>()[..]
                ),
                "{line}"
            );
        }
    }

    #[test]
    fn words_keep_quotes_and_escapes() {
        let cases: &[(&str, &[&str])] = &[
            ("a=b c=d", &["a=b", "c=d"]),
            ("a=\"b c\" d='e f'", &["a=\"b c\"", "d='e f'"]),
            (r"a=b\ c", &[r"a=b\ c"]),
            (r#"a="b\"c""#, &[r#"a="b\"c""#]),
            (r"a='b\' c", &[r"a='b\'", "c"]),
            ("\"\"", &["\"\""]),
            ("  x  ", &["x"]),
            (r"x\", &["x"]),
        ];
        for (rest, want) in cases {
            assert_eq!(parse_words(rest, '\\'), *want, "{rest}");
        }
    }

    #[test]
    fn json_form_or_not() {
        assert_eq!(
            parse_json(r#" ["a", "b c"]"#),
            Ok(Some(vec!["a".into(), "b c".into()]))
        );
        assert_eq!(parse_json("[]"), Ok(Some(vec![])));
        assert_eq!(parse_json("echo [x]"), Ok(None));
        assert_eq!(parse_json("[not json"), Ok(None));
        assert_eq!(parse_json(r#"["a"] x"#), Ok(None));
        assert_eq!(
            parse_json(r#"["a", 1]"#),
            Err(ParseErrorKind::NotStringArray)
        );
    }

    #[test]
    fn commands_split_into_keyword_flags_and_rest() {
        assert_eq!(
            split_command("  copy --from=a  x y  ", '\\'),
            ("copy".into(), vec!["--from=a".into()], "x y".into())
        );
        assert_eq!(
            split_command("CMD", '\\'),
            ("CMD".into(), vec![], String::new())
        );
        assert_eq!(split_whitespace(" a \t b\x0bc "), ["a", "b", "c"]);
    }
}
