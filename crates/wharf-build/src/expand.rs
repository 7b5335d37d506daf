//! Word expansion as BuildKit's shell lexer does it (`frontend/dockerfile/shell`): `$v`,
//! `${v}`, `${v:-w}` `${v-w}` `${v:+w}` `${v+w}` `${v:?m}` `${v?m}`, `${v#p}` `${v##p}`
//! `${v%p}` `${v%%p}`, `${v/p/r}` `${v//p/r}` (patterns with `*` and `?`), single and double
//! quotes, and the escape character.
//!
//! [`process_word`] gives one word with quotes removed (WORKDIR, USER, ENV values ...);
//! [`process_words`] splits into words as Docker does for EXPOSE, VOLUME, COPY sources: on
//! unquoted whitespace, including whitespace that came out of an unquoted `$v`.
//! [`expands`] says which instructions the builder expands at all.

use crate::ast::InstructionKind;

/// An expansion that failed, with the word it was in (Docker: `failed to process "w": ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {kind}")]
pub struct ExpandError {
    pub word: String,
    pub kind: ExpandErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandErrorKind {
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${v:?msg}` / `${v?msg}` on an unset (or empty) variable.
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    #[error("unexpected end of statement while looking for matching {0}")]
    UnexpectedEnd(char),
    #[error("invalid pattern ({pattern}) in substitution: invalid escape '\\{ch}'")]
    InvalidEscape { pattern: String, ch: char },
}

/// Expands one word (quotes removed, no splitting), looking variables up with `env`.
pub fn process_word(
    word: &str,
    env: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<String, ExpandError> {
    Lexer::new(escape).word(word, env)
}

/// Expands and splits into words (quotes removed; whitespace inside quotes kept).
pub fn process_words(
    word: &str,
    env: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<Vec<String>, ExpandError> {
    Lexer::new(escape).words(word, env)
}

/// Whether the builder expands ARG/ENV references in an instruction's arguments (Docker's
/// table: ADD, ARG, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR; and
/// the `--mount`, `--network`, `--chown`, `--chmod`, `--from`... flag values of those and of
/// RUN). RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER and ONBUILD are passed as
/// written (the shell in the container expands them).
pub fn expands(kind: &InstructionKind) -> bool {
    use InstructionKind::*;
    match kind {
        Add(_) | Arg(_) | Copy(_) | Env(_) | Expose(_) | Label(_) | StopSignal(_) | User(_)
        | Volume(_) | Workdir(_) => true,
        Run(_) | Cmd(_) | Entrypoint(_) | Shell(_) | Healthcheck(_) | Onbuild(_)
        | Maintainer(_) => false,
    }
}

/// The lexer with BuildKit's switches (the parser uses the raw modes to find heredoc names).
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    pub escape: char,
    /// Keep quote characters in the result.
    pub raw_quotes: bool,
    /// Keep escape characters in the result.
    pub raw_escapes: bool,
    /// Leave references to unset variables as written.
    pub skip_unset_env: bool,
    /// Treat quotes as ordinary characters.
    pub skip_process_quotes: bool,
}

impl Lexer {
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset_env: false,
            skip_process_quotes: false,
        }
    }

    pub fn word(
        &self,
        word: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<String, ExpandError> {
        self.process(word, env).map(|(w, _)| w)
    }

    pub fn words(
        &self,
        word: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<String>, ExpandError> {
        self.process(word, env).map(|(_, ws)| ws)
    }

    fn process(
        &self,
        word: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(String, Vec<String>), ExpandError> {
        let chars: Vec<char> = word.chars().collect();
        let mut sw = ShellWord {
            lex: *self,
            chars: &chars,
            pos: 0,
            env,
            raw_escapes: self.raw_escapes,
        };
        sw.process_stop_on(None, self.raw_escapes)
            .map_err(|kind| ExpandError {
                word: word.to_string(),
                kind,
            })
    }
}

type Kind = ExpandErrorKind;

struct ShellWord<'a> {
    lex: Lexer,
    chars: &'a [char],
    pos: usize,
    env: &'a dyn Fn(&str) -> Option<String>,
    raw_escapes: bool,
}

/// Word splitting as the expansion goes (BuildKit's `wordsStruct`).
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        for ch in s.chars() {
            self.add_char(ch);
        }
    }
    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
        }
        self.words
    }
}

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), Kind> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.process_stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn process_stop_on_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), Kind> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            let quotes = !self.lex.skip_process_quotes;
            match ch {
                '$' => {
                    let tmp = self.process_dollar()?;
                    result.push_str(&tmp);
                    words.add_string(&tmp);
                }
                '<' => {
                    let tmp = self.process_possible_heredoc();
                    result.push_str(&tmp);
                    words.add_raw_string(&tmp);
                }
                '\'' if quotes => {
                    let tmp = self.process_single_quote()?;
                    result.push_str(&tmp);
                    words.add_raw_string(&tmp);
                }
                '"' if quotes => {
                    let tmp = self.process_double_quote()?;
                    result.push_str(&tmp);
                    words.add_raw_string(&tmp);
                }
                _ => {
                    self.next();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        let Some(c) = self.next() else { break };
                        words.add_raw_char(c);
                        result.push(c);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            return Err(Kind::UnexpectedEnd(stop));
        }
        Ok((result, words.finish()))
    }

    fn process_single_quote(&mut self) -> Result<String, Kind> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => return Err(Kind::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String, Kind> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => return Err(Kind::UnterminatedDoubleQuote),
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.process_dollar()?;
                    result.push_str(&v);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                self.pos += 1;
                                ch = c;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        (self.env)(name)
    }

    fn process_dollar(&mut self) -> Result<String, Kind> {
        self.next(); // '$'
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next(); // '{'
        match self.peek() {
            None => return Err(Kind::MissingBrace),
            Some('{' | '}' | ':') => return Err(Kind::BadSubstitution),
            _ => {}
        }
        let name = self.process_name();
        let mut ch = self.next();
        let mut chs = char_str(ch);
        let mut null_is_unset = false;
        match ch {
            Some('}') => Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                if ch == Some(':') {
                    null_is_unset = true;
                    ch = self.next();
                    chs.push_str(&char_str(ch));
                }
                let raw = matches!(ch, Some('#' | '%'));
                if null_is_unset && raw {
                    return Err(Kind::UnsupportedModifier(chs));
                }
                let word = self.stop_on_brace('}', raw)?;
                let value = self.lookup(&name);
                if self.lex.skip_unset_env && value.is_none() {
                    return Ok(format!("${{{name}{chs}{word}}}"));
                }
                let unset = match &value {
                    None => true,
                    Some(v) => null_is_unset && v.is_empty(),
                };
                match ch {
                    Some('-') => Ok(if unset {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    Some('+') => Ok(if unset { String::new() } else { word }),
                    Some('?') => match value {
                        None => Err(Kind::Required {
                            name,
                            message: or_default(word, "is not allowed to be unset"),
                        }),
                        Some(v) if null_is_unset && v.is_empty() => Err(Kind::Required {
                            name,
                            message: or_default(word, "is not allowed to be empty"),
                        }),
                        Some(v) => Ok(v),
                    },
                    Some(c @ ('%' | '#')) => {
                        let (greedy, pat) = match word.strip_prefix(c) {
                            Some(rest) => (true, rest.to_string()),
                            None => (false, word),
                        };
                        let value = value.unwrap_or_default();
                        let pattern = Pattern::compile(&pat)?;
                        Ok(if c == '#' {
                            pattern.trim_prefix(&value, greedy)
                        } else {
                            pattern.trim_suffix(&value, greedy)
                        })
                    }
                    _ => Err(Kind::UnsupportedModifier(chs)),
                }
            }
            Some('/') => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let pattern = match self.process_stop_on(Some('/'), true) {
                    Ok((w, _)) => w,
                    Err(_) if self.peek().is_none() => return Err(Kind::MissingSlash),
                    Err(e) => return Err(e),
                };
                let replacement = self.stop_on_brace('}', true)?;
                let Some(value) = self.lookup(&name) else {
                    if self.lex.skip_unset_env {
                        return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                    }
                    return Ok(String::new());
                };
                let pat = Pattern::compile(&pattern)?;
                Ok(pat.replace(&value, &replacement, all))
            }
            _ => Err(Kind::UnsupportedModifier(chs)),
        }
    }

    fn stop_on_brace(&mut self, stop: char, raw: bool) -> Result<String, Kind> {
        match self.process_stop_on(Some(stop), raw) {
            Ok((w, _)) => Ok(w),
            Err(_) if self.peek().is_none() => Err(Kind::MissingBrace),
            Err(e) => Err(e),
        }
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(c) = self.peek().filter(|c| is_digit(*c)) {
                    self.pos += 1;
                    name.push(c);
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                return ch.to_string();
            }
            if !(ch.is_alphabetic() || is_digit(ch) || ch == '_') {
                break;
            }
            self.pos += 1;
            name.push(ch);
        }
        name
    }

    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.next();
        let mut out = String::from("<<");
        while let Some(c) = self.peek().filter(|c| matches!(c, '\t' | '\r' | ' ')) {
            self.pos += 1;
            out.push(c);
        }
        out
    }
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric())
}

/// Go's `string(rune)`: EOF (-1) prints as U+FFFD.
fn char_str(c: Option<char>) -> String {
    c.unwrap_or('\u{FFFD}').to_string()
}

fn or_default(word: String, default: &str) -> String {
    if word.is_empty() {
        default.to_string()
    } else {
        word
    }
}

/// A shell pattern of `${v#p}` and friends: literal characters, `*` (any run) and `?` (any
/// one character); `\*`, `\?`, `\\` are literal, `\}` and `\/` drop the backslash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern(Vec<Tok>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Lit(char),
    Any,
    Star,
}

impl Pattern {
    pub(crate) fn compile(pattern: &str) -> Result<Pattern, Kind> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Any),
                '\\' => match chars.get(i) {
                    Some('}' | '/') => {}
                    Some(&n @ ('*' | '?' | '\\')) => {
                        i += 1;
                        toks.push(Tok::Lit(n));
                    }
                    Some(&n) => {
                        return Err(Kind::InvalidEscape {
                            pattern: pattern.to_string(),
                            ch: n,
                        })
                    }
                    // Go's text/scanner returns EOF (-1), printed by %c as U+FFFD.
                    None => {
                        return Err(Kind::InvalidEscape {
                            pattern: pattern.to_string(),
                            ch: '\u{FFFD}',
                        })
                    }
                },
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Pattern(toks))
    }

    /// Whether the pattern matches `s` entirely.
    fn matches_all(&self, s: &[char]) -> bool {
        fn m(p: &[Tok], s: &[char]) -> bool {
            // Iterative star matching with one backtrack point: linear enough for our sizes.
            let (mut pi, mut si) = (0, 0);
            let mut star: Option<(usize, usize)> = None;
            while si < s.len() {
                match p.get(pi) {
                    Some(Tok::Star) => {
                        star = Some((pi, si));
                        pi += 1;
                    }
                    Some(Tok::Any) => {
                        pi += 1;
                        si += 1;
                    }
                    Some(Tok::Lit(c)) if *c == s[si] => {
                        pi += 1;
                        si += 1;
                    }
                    _ => match star {
                        Some((sp, ss)) => {
                            pi = sp + 1;
                            si = ss + 1;
                            star = Some((sp, ss + 1));
                        }
                        None => return false,
                    },
                }
            }
            p[pi..].iter().all(|t| *t == Tok::Star)
        }
        m(&self.0, s)
    }

    /// The end of the shortest (or longest) match starting at `start`.
    fn match_at(&self, s: &[char], start: usize, longest: bool) -> Option<usize> {
        let ends: Box<dyn Iterator<Item = usize>> = if longest {
            Box::new((start..=s.len()).rev())
        } else {
            Box::new(start..=s.len())
        };
        for end in ends {
            if self.matches_all(&s[start..end]) {
                return Some(end);
            }
        }
        None
    }

    fn trim_prefix(&self, value: &str, greedy: bool) -> String {
        let s: Vec<char> = value.chars().collect();
        match self.match_at(&s, 0, greedy) {
            Some(end) => s[end..].iter().collect(),
            None => value.to_string(),
        }
    }

    fn trim_suffix(&self, value: &str, greedy: bool) -> String {
        let s: Vec<char> = value.chars().collect();
        let ends_at = |start: usize| self.matches_all(&s[start..]);
        let found = if greedy {
            (0..=s.len()).find(|&i| ends_at(i))
        } else {
            (0..=s.len()).rev().find(|&i| ends_at(i))
        };
        match found {
            Some(start) => s[..start].iter().collect(),
            None => value.to_string(),
        }
    }

    /// `${v/p/r}` (first match) and `${v//p/r}` (every match). Matches are leftmost and, as
    /// `*` is greedy there, longest. With `all`, the replacement is a Go regexp template:
    /// `$$` is a `$`, `$0` the match, other references empty.
    fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let s: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut pos = 0;
        let mut last_match_end: Option<usize> = None;
        let mut i = 0;
        while i <= s.len() {
            match self.match_at(&s, i, true) {
                Some(end) if !(end == i && last_match_end == Some(i)) => {
                    out.extend(&s[pos..i]);
                    let matched: String = s[i..end].iter().collect();
                    if all {
                        out.push_str(&expand_template(replacement, &matched));
                    } else {
                        out.push_str(replacement);
                        out.extend(&s[end..]);
                        return out;
                    }
                    pos = end;
                    last_match_end = Some(end);
                    i = if end > i { end } else { i + 1 };
                }
                _ => i += 1,
            }
        }
        out.extend(&s[pos.min(s.len())..]);
        out
    }
}

/// Go's `regexp.Expand` for a pattern without groups.
fn expand_template(template: &str, matched: &str) -> String {
    let chars: Vec<char> = template.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '$' || i + 1 >= chars.len() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        if chars[i + 1] == '$' {
            out.push('$');
            i += 2;
            continue;
        }
        let (name, next) = if chars[i + 1] == '{' {
            match chars[i + 2..].iter().position(|c| *c == '}') {
                Some(p) => (
                    chars[i + 2..i + 2 + p].iter().collect::<String>(),
                    i + 3 + p,
                ),
                None => {
                    out.push('$');
                    i += 1;
                    continue;
                }
            }
        } else {
            let n = chars[i + 1..]
                .iter()
                .take_while(|c| c.is_alphanumeric() || **c == '_')
                .count();
            (chars[i + 1..i + 1 + n].iter().collect(), i + 1 + n)
        };
        let valid = !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_');
        if !valid {
            out.push('$');
            i += 1;
            continue;
        }
        if name.chars().all(|c| c.is_ascii_digit()) && name.parse::<u64>() == Ok(0) {
            out.push_str(matched);
        }
        i = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PWD" => Some("/home".into()),
            "SHELL" => Some("bash".into()),
            "NULL" => Some(String::new()),
            "SPACE" => Some("abc  def".into()),
            "LEAD" => Some("  ab c".into()),
            "PATHV" => Some("/usr/local/bin/tool.tar.gz".into()),
            "K" => Some("한국어".into()),
            _ => None,
        }
    }

    fn word(w: &str) -> Result<String, ExpandError> {
        process_word(w, &env, '\\')
    }

    #[test]
    fn words_expand_as_buildkit_does() {
        let ok: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("a'b'c", "abc"),
            (r"a\'b", "a'b"),
            (r"a\tb", "atb"),
            (r#""a\tb""#, r"a\tb"),
            (r#""a\\b""#, r"a\b"),
            (r"'a\tb'", r"a\tb"),
            (r"end\", "end"),
            (r"end\\", r"end\"),
            (r"'q\'", r"q\"),
            ("$.", "$."),
            ("x$1y", "xy"),
            ("$PWD", "/home"),
            (r"\$PWD", "$PWD"),
            (r"\\$PWD", r"\/home"),
            (r#""\$PWD""#, "$PWD"),
            (r"\${}", "${}"),
            ("${PWD}x", "/homex"),
            ("${nope}x", "x"),
            ("${X:-d}", "d"),
            ("${NULL:-d}", "d"),
            ("${NULL-d}", ""),
            ("${X-d}", "d"),
            ("${PWD:-d}", "/home"),
            ("${X:-${PWD:-y}}", "/home"),
            ("${X:-${Y:-y}}", "y"),
            ("${PWD:+set}", "set"),
            ("${NULL:+set}", ""),
            ("${NULL+set}", "set"),
            ("${X+set}", ""),
            ("${PWD?}", "/home"),
            ("${NULL?}", ""),
            ("'${PWD}'", "${PWD}"),
            ("\"${PWD}\"", "/home"),
            ("\"a'$PWD'\"", "a'/home'"),
            (r"${X:-\$PWD:}", "$PWD:"),
            (r"${X:-\${PWD}z}", "${PWDz}"),
            ("${aaa}}", "}"),
            ("${aaa:-bbb {foo}", "bbb {foo"),
            ("$K!", "한국어!"),
            ("$@@@", "@@"),
            ("${1:-one}", "one"),
            ("$999aaa", "aaa"),
            ("${PATHV#*/}", "usr/local/bin/tool.tar.gz"),
            ("${PATHV##*/}", "tool.tar.gz"),
            ("${PATHV%.*}", "/usr/local/bin/tool.tar"),
            ("${PATHV%%.*}", "/usr/local/bin/tool"),
            ("${PATHV%.?z}", "/usr/local/bin/tool.tar"),
            ("${PATHV#/usr}", "/local/bin/tool.tar.gz"),
            ("${PATHV#nomatch}", "/usr/local/bin/tool.tar.gz"),
            ("${PATHV/local/opt}", "/usr/opt/bin/tool.tar.gz"),
            ("${PATHV//\\//:}", ":usr:local:bin:tool.tar.gz"),
            ("${PATHV/\\//}", "usr/local/bin/tool.tar.gz"),
            ("${PATHV/*./X}", "Xgz"),
            ("${SHELL//?/x}", "xxxx"),
            ("${SHELL//a/$$}", "bsh"),
            (r"${SHELL//a/[\$0]}", r"b[\a]sh"),
            (r"${SHELL/a/[\$0]}", r"b[\$0]sh"),
            ("${X/a/b}", ""),
            (r"${SHELL#\*}", "bash"),
        ];
        for (input, want) in ok {
            assert_eq!(word(input).as_deref(), Ok(*want), "{input}");
        }
    }

    #[test]
    fn bad_words_give_docker_s_errors() {
        let bad: &[(&str, &str)] = &[
            (
                "a'b",
                "unexpected end of statement while looking for matching single-quote",
            ),
            (
                "\"ab",
                "unexpected end of statement while looking for matching double-quote",
            ),
            ("${}", "syntax error: bad substitution"),
            ("${:-x}", "syntax error: bad substitution"),
            ("${X:YYY}", "unsupported modifier (:Y) in substitution"),
            ("${PWD:=0}", "unsupported modifier (:=) in substitution"),
            ("${PWD", "unsupported modifier (\u{FFFD}) in substitution"),
            ("${PWD:-x", "syntax error: missing '}'"),
            ("${", "syntax error: missing '}'"),
            ("${X?}", "X: is not allowed to be unset"),
            ("${X:?need it}", "X: need it"),
            ("${NULL:?}", "NULL: is not allowed to be empty"),
            ("${PWD:#x}", "unsupported modifier (:#) in substitution"),
            ("${PWD/x", "syntax error: missing '/' in ${}"),
            ("${PWD/x/y", "syntax error: missing '}'"),
            (
                "${PWD#\\x}",
                "invalid pattern (\\x) in substitution: invalid escape '\\x'",
            ),
        ];
        for (input, want) in bad {
            let err = word(input).expect_err(input);
            assert_eq!(err.kind.to_string(), *want, "{input}");
            assert_eq!(
                err.to_string(),
                format!("failed to process {input:?}: {want}")
            );
        }
    }

    #[test]
    fn words_split_on_unquoted_whitespace() {
        let cases: &[(&str, &[&str])] = &[
            ("hello", &["hello"]),
            ("a${SPACE}b", &["aabc", "defb"]),
            ("a\"${SPACE}\"b", &["aabc  defb"]),
            ("a \"${SPACE}\"b", &["a", "abc  defb"]),
            ("a${LEAD}d", &["a", "ab", "cd"]),
            ("a\"${LEAD}\" d", &["a  ab c", "d"]),
            ("hello there  ", &["hello", "there"]),
            (r"hello\ there", &["hello there"]),
            (r#"hello\" there"#, &["hello\"", "there"]),
            ("a'$PWD'", &["a$PWD"]),
            ("'' x", &["x"]),
            ("", &[]),
        ];
        for (input, want) in cases {
            let got = process_words(input, &env, '\\').unwrap();
            assert_eq!(got, *want, "{input}");
        }
        assert!(process_words("hello\" there", &env, '\\').is_err());
    }

    #[test]
    fn the_backtick_escape_replaces_the_backslash() {
        assert_eq!(process_word(r"C:\dir", &env, '`').unwrap(), r"C:\dir");
        assert_eq!(process_word("a`$PWD", &env, '`').unwrap(), "a$PWD");
        assert_eq!(process_word("\"a`\"b\"", &env, '`').unwrap(), "a\"b");
    }

    #[test]
    fn raw_modes_keep_quotes_escapes_and_unset_references() {
        let lex = Lexer {
            raw_quotes: true,
            raw_escapes: true,
            skip_unset_env: true,
            ..Lexer::new('\\')
        };
        let none = |_: &str| None;
        assert_eq!(
            lex.word("'a'\\b$X${Y:-z}", &none).unwrap(),
            "'a'\\b$X${Y:-z}"
        );
        assert_eq!(
            lex.words("cat <<EOF >f", &none).unwrap(),
            ["cat", "<<EOF", ">f"]
        );
        assert_eq!(lex.words("<< \"EOF\"", &none).unwrap(), ["<< \"EOF\""]);
    }

    #[test]
    fn only_the_instructions_in_docker_s_table_expand() {
        use crate::ast::{Command, InstructionKind as K};
        assert!(expands(&K::Workdir("/x".into())));
        assert!(expands(&K::Expose(vec![])));
        assert!(!expands(&K::Cmd(Command::Shell("x".into()))));
        assert!(!expands(&K::Maintainer("x".into())));
    }
}
