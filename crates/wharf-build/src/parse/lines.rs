//! From text to instruction lines: parser directives, comments, blank lines, line
//! continuations and heredoc bodies, as BuildKit's `parser.Parse` reads them.

use super::error::{ParseError, ParseErrorKind};
use super::words::{parse_json, split_command};
use crate::ast::{Directives, Heredoc};
use crate::expand::{ExpandError, Lexer};

/// One instruction as read: its lines, text, keyword, flags and arguments.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub line: usize,
    pub end_line: usize,
    /// The joined line (continuations removed), as `Source::original` wants it once trimmed.
    pub original: String,
    /// The keyword as written.
    pub cmd: String,
    pub flags: Vec<String>,
    /// The arguments after the flags, trimmed.
    pub rest: String,
    pub heredocs: Vec<Heredoc>,
    /// ONBUILD's trigger.
    pub child: Option<Box<Node>>,
}

/// The longest line Go's `bufio.Scanner` reads (its 64 KiB buffer).
const MAX_LINE: usize = 64 * 1024;

fn new_node(line: &str, escape: char, start: usize) -> Node {
    let (cmd, flags, rest) = split_command(line, escape);
    let child = (cmd.eq_ignore_ascii_case("onbuild") && !rest.is_empty())
        .then(|| Box::new(new_node(&rest, escape, start)));
    Node {
        line: start,
        end_line: start,
        original: line.to_string(),
        cmd,
        flags,
        rest,
        heredocs: Vec::new(),
        child,
    }
}

impl Node {
    /// RUN, COPY and ADD in the shell form (also as an ONBUILD trigger) may hold heredocs.
    fn can_contain_heredoc(&self) -> bool {
        let node = match &self.child {
            Some(c) if self.cmd.eq_ignore_ascii_case("onbuild") => c,
            _ => self,
        };
        let cmd = node.cmd.to_ascii_lowercase();
        matches!(cmd.as_str(), "run" | "copy" | "add")
            && !matches!(parse_json(&node.rest), Ok(Some(_)) | Err(_))
    }
}

/// Parser directives: only in the first lines, before any other comment, blank line or
/// instruction.
#[derive(Default)]
struct DirectiveParser {
    done: bool,
    seen: Vec<String>,
}

fn is_go_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

/// `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`
fn match_directive(s: &str) -> Option<(&str, String)> {
    let first = s.chars().next()?;
    if !first.is_ascii_alphabetic() {
        return None;
    }
    let name_len = s.bytes().take_while(u8::is_ascii_alphanumeric).count();
    let (name, rest) = s.split_at(name_len);
    let rest = rest.trim_start_matches(is_go_space).strip_prefix('=')?;
    if rest.is_empty() {
        return None;
    }
    let value = rest.trim_matches(is_go_space);
    if value.is_empty() {
        // `.+?` takes the last whitespace character when nothing else is left.
        return Some((name, rest.chars().last()?.to_string()));
    }
    Some((name, value.to_string()))
}

impl DirectiveParser {
    fn parse_line(&mut self, line: &str, d: &mut Directives) -> Result<bool, ParseErrorKind> {
        if self.done {
            return Ok(false);
        }
        let Some(rest) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(false);
        };
        let Some((name, value)) = match_directive(rest.trim_start()) else {
            self.done = true;
            return Ok(false);
        };
        let key = name.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(false);
        }
        if self.seen.contains(&key) {
            return Err(ParseErrorKind::DuplicateDirective(key));
        }
        self.seen.push(key.clone());
        match key.as_str() {
            "escape" => match value.as_str() {
                "\\" | "`" => d.escape = value.chars().next().unwrap_or('\\'),
                _ => return Err(ParseErrorKind::InvalidEscapeToken(value)),
            },
            "syntax" => d.syntax = Some(value),
            _ => d.check = Some(value),
        }
        Ok(true)
    }
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// A line ending in the escape character (then only spaces and tabs) continues on the next;
/// an escaped escape (`\\`) at the end does not.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(escape) {
        if before.is_empty() {
            return ("", false);
        }
        if !before.ends_with(escape) {
            return (before, false);
        }
    }
    (line, true)
}

/// A `<<NAME` word: `(fd, strip_tabs, name, expand)`. Quoting any part of the name turns
/// expansion of the body off.
pub(crate) fn parse_heredoc_word(word: &str) -> Result<Option<Heredoc>, ExpandError> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let Some(rest) = rest.strip_prefix("<<") else {
        return Ok(None);
    };
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches(is_go_space);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let none = |_: &str| None;
    // Heredoc names are always lexed with `\` as the escape, whatever the file's escape
    // directive says: BuildKit's parser does the same (its heredoc lexers are `NewLex('\\')`).
    let mut lex = Lexer {
        skip_unset_env: true,
        ..Lexer::new('\\')
    };
    let words = lex.words(rest, &none)?;
    if words.len() != 1 {
        return Ok(None);
    }
    lex.raw_quotes = true;
    let raw = lex.words(rest, &none)?;
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    Ok(Some(Heredoc {
        expand: quotes(&words[0]) == quotes(&raw[0]),
        name: words[0].clone(),
        content: String::new(),
        strip_tabs,
    }))
}

fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, ExpandError> {
    let lex = Lexer {
        raw_quotes: true,
        raw_escapes: true,
        skip_unset_env: true,
        ..Lexer::new('\\')
    };
    let none = |_: &str| None;
    let Ok(words) = lex.words(line, &none) else {
        return Ok(Vec::new());
    };
    let mut docs = Vec::new();
    for w in words {
        if let Some(h) = parse_heredoc_word(&w)? {
            docs.push(h);
        }
    }
    Ok(docs)
}

/// Removes leading tabs from every line (`<<-`).
pub(crate) fn strip_leading_tabs(s: &str) -> String {
    s.split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

/// Reads the directives and the instruction lines of a Dockerfile.
pub(crate) fn read(text: &str) -> Result<(Directives, Vec<Node>), ParseError> {
    let mut directives = Directives::default();
    let mut dp = DirectiveParser::default();
    let mut lines = text.split_inclusive('\n');
    let mut current = 0usize;
    let mut nodes = Vec::new();
    let err = |line: usize, kind| ParseError::new(line.max(1), kind);

    let mut next_line = |current: usize| -> Result<Option<&str>, ParseError> {
        match lines.next() {
            Some(l) if l.len() > MAX_LINE => Err(err(current + 1, ParseErrorKind::LineTooLong)),
            other => Ok(other),
        }
    };

    while let Some(mut raw) = next_line(current)? {
        if current == 0 {
            raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        }
        let token = trim_newline(raw).trim_start();
        dp.parse_line(token, &mut directives)
            .map_err(|k| err(current + 1, k))?;
        let token = if is_comment(token) { "" } else { token };
        current += 1;
        let start = current;
        let escape = directives.escape;
        let (first, mut end) = trim_continuation(token, escape);
        if end && first.is_empty() {
            continue;
        }
        let mut buf = first.to_string();
        while !end {
            let Some(raw) = next_line(current)? else {
                break;
            };
            let token = trim_newline(raw);
            dp.parse_line(token, &mut directives)
                .map_err(|k| err(current + 1, k))?;
            current += 1;
            if is_comment(raw) || token.trim_start().is_empty() {
                continue;
            }
            let (part, e) = trim_continuation(token, escape);
            end = e;
            buf.push_str(part);
        }

        let mut node = new_node(&buf, escape, start);
        if node.can_contain_heredoc() && buf.contains("<<") {
            let docs =
                heredocs_from_line(&buf).map_err(|e| err(start, ParseErrorKind::HeredocName(e)))?;
            for mut doc in docs {
                let mut content = String::new();
                let mut terminated = false;
                while let Some(raw) = next_line(current)? {
                    current += 1;
                    let mut candidate = trim_newline(raw);
                    if doc.strip_tabs {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    content.push_str(raw);
                }
                if !terminated {
                    return Err(err(start, ParseErrorKind::UnterminatedHeredoc));
                }
                doc.content = if doc.strip_tabs {
                    strip_leading_tabs(&content)
                } else {
                    content
                };
                node.heredocs.push(doc);
            }
        }
        node.end_line = current;
        if let Some(child) = &mut node.child {
            child.end_line = current;
        }
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(err(current, ParseErrorKind::NoInstructions));
    }
    Ok((directives, nodes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::type_complexity)]
    use super::*;

    fn lines(text: &str) -> Vec<(usize, usize, String)> {
        read(text)
            .unwrap()
            .1
            .into_iter()
            .map(|n| (n.line, n.end_line, n.original))
            .collect()
    }

    #[test]
    fn continuations_comments_and_blank_lines_join_as_docker_joins_them() {
        let cases: &[(&str, &[(usize, usize, &str)])] = &[
            ("FROM a\nRUN b", &[(1, 1, "FROM a"), (2, 2, "RUN b")]),
            ("  FROM a  \n", &[(1, 1, "FROM a  ")]),
            ("RUN a \\\n  b\n", &[(1, 2, "RUN a   b")]),
            ("RUN a\\\n# c\n\n   \nb", &[(1, 5, "RUN ab")]),
            ("RUN a \\  \t\nb", &[(1, 2, "RUN a b")]),
            ("RUN a\\\\\nRUN b", &[(1, 1, "RUN a\\\\"), (2, 2, "RUN b")]),
            ("\\\nFROM a", &[(1, 2, "FROM a")]),
            ("# c\n\n#c2\nFROM a\r\n", &[(4, 4, "FROM a")]),
            ("RUN a \\", &[(1, 1, "RUN a ")]),
            ("\u{feff}FROM a", &[(1, 1, "FROM a")]),
        ];
        for (text, want) in cases {
            let want: Vec<_> = want
                .iter()
                .map(|(a, b, c)| (*a, *b, c.to_string()))
                .collect();
            assert_eq!(lines(text), want, "{text:?}");
        }
    }

    #[test]
    fn directives_only_at_the_top() {
        let (d, _) =
            read("# syntax=docker/dockerfile:1\n#escape = `\n# check=skip=all\nFROM a").unwrap();
        assert_eq!(
            (d.escape, d.syntax.as_deref(), d.check.as_deref()),
            ('`', Some("docker/dockerfile:1"), Some("skip=all"))
        );
        // After a comment, a blank line or an instruction, a directive is a comment.
        for text in [
            "# hello\n# escape=`\nFROM a",
            "\n# escape=`\nFROM a",
            "FROM a\n# escape=`\n",
            "# unknown=x\n# escape=`\nFROM a",
        ] {
            assert_eq!(read(text).unwrap().0.escape, '\\', "{text:?}");
        }
        let (d, n) = read("# escape=`\nRUN a `\n  b\\\nRUN c").unwrap();
        assert_eq!(d.escape, '`');
        assert_eq!(n[0].original, "RUN a   b\\");
        assert_eq!(n.len(), 2);
    }

    #[test]
    fn directive_errors() {
        let e = read("# escape=x\nFROM a").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Dockerfile:1: invalid escape token 'x' does not match ` or \\"
        );
        let e = read("# syntax=a\n# syntax=b\nFROM a").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Dockerfile:2: only one syntax parser directive can be used"
        );
        let e = read("# just a comment\n\n").unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::NoInstructions);
        let long = format!("FROM a\nRUN {}\n", "x".repeat(MAX_LINE));
        assert_eq!(
            read(&long).unwrap_err().to_string(),
            "Dockerfile:2: dockerfile line greater than max allowed size of 65535"
        );
    }

    #[test]
    fn heredoc_words() {
        let cases: &[(&str, Option<(&str, bool, bool)>)] = &[
            ("<<EOF", Some(("EOF", true, false))),
            ("<<-EOF", Some(("EOF", true, true))),
            ("<<'EOF'", Some(("EOF", false, false))),
            ("<<\"EOF\"", Some(("EOF", false, false))),
            ("<<E\"O\"F", Some(("EOF", false, false))),
            ("3<<EOF", Some(("EOF", true, false))),
            ("<< EOF", Some(("EOF", true, false))),
            ("<<", None),
            ("<<<EOF", None),
            ("x<<EOF", None),
            ("<<'a b'", Some(("a b", false, false))),
        ];
        for (w, want) in cases {
            let got = parse_heredoc_word(w).unwrap();
            let got = got
                .as_ref()
                .map(|h| (h.name.as_str(), h.expand, h.strip_tabs));
            assert_eq!(got, *want, "{w}");
        }
    }

    #[test]
    fn heredoc_bodies_follow_their_line() {
        let (_, n) = read("RUN <<A cat - <<-'B'\na1\n$x\nA\n\tb1\n\t\tb2\n\tB\nRUN c\n").unwrap();
        assert_eq!((n[0].line, n[0].end_line), (1, 7));
        let h = &n[0].heredocs;
        assert_eq!(
            (h[0].name.as_str(), h[0].content.as_str(), h[0].expand),
            ("A", "a1\n$x\n", true)
        );
        assert_eq!(
            (h[1].name.as_str(), h[1].content.as_str(), h[1].expand),
            ("B", "b1\nb2\n", false)
        );
        assert_eq!((n[1].line, n[1].original.as_str()), (8, "RUN c"));
        // Not in the JSON form, not for other instructions.
        let (_, n) = read("RUN [\"<<EOF\"]\nCMD <<EOF\nEOF").unwrap();
        assert!(n.iter().all(|n| n.heredocs.is_empty()));
        assert_eq!(n.len(), 3);
        let e = read("FROM a\nRUN <<EOF\nno end\n").unwrap_err();
        assert_eq!(e.to_string(), "Dockerfile:2: unterminated heredoc");
        let (_, n) = read("ONBUILD RUN <<EOF\nx\nEOF\n").unwrap();
        assert_eq!(n[0].heredocs[0].content, "x\n");
    }
}
