//! A Go `text/template` engine over JSON values, with docker's extra functions (`json`,
//! `join`, `split`, `lower`, `upper`, `title`, `truncate`, `pad`) — what `--format` takes.
//!
//! Written here rather than taken from a crate: the template crates on crates.io either follow
//! Jinja/Handlebars syntax or (gtmpl) have their own value model and lack docker's functions and
//! Go's printing of maps/slices/nil; docker's output depends on those details.
//!
//! Supported: text, `{{- -}}` trimming, comments, pipelines with `|`, fields (`.A.B`), `$`
//! and `$var` (`:=`, `=`), string/raw-string/number/bool/nil literals, parentheses, `if`/`else
//! if`/`else`, `range` (with `$i, $v :=` and `else`), `with`, and the functions `and or not
//! len index eq ne lt le gt ge print printf println slice` besides docker's.

use serde_json::{Map, Value};
use std::fmt::Write as _;

/// A parse or execution error, worded like Go's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

type Result<T> = std::result::Result<T, TemplateError>;

fn err<T>(m: impl Into<String>) -> Result<T> {
    Err(TemplateError(format!("template: :{}", m.into())))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(Vec<String>),
    Dot,
    Var(String, Vec<String>),
    Ident(String),
    Str(String),
    Num(f64, bool),
    Bool(bool),
    Nil,
    LParen,
    RParen,
    /// `)` directly followed by `.Field.Chain`.
    RParenFields(Vec<String>),
    Pipe,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone)]
enum Arg {
    Field(Vec<String>),
    Dot,
    Var(String, Vec<String>),
    Func(String),
    Lit(Value),
    Sub(Box<Pipeline>, Vec<String>),
}

#[derive(Debug, Clone, Default)]
struct Pipeline {
    decl: Vec<String>,
    assign: bool,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
    /// The data is one of docker's formatter contexts (a `ps`/`images`/... row): `{{json .}}`
    /// goes through its MarshalJSON, i.e. `json.Marshal`, which escapes `<`, `>`, `&`.
    /// Other values print through an encoder without HTML escaping.
    pub row_context: bool,
}

enum Seg {
    Text(String),
    Action(String, usize),
}

fn segments(src: &str) -> Result<Vec<Seg>> {
    let mut out = Vec::new();
    let mut rest = src;
    let mut line = 1;
    let mut trim_next = false;
    while !rest.is_empty() {
        let Some(start) = rest.find("{{") else {
            let mut t = rest;
            if trim_next {
                t = t.trim_start();
            }
            out.push(Seg::Text(t.to_string()));
            break;
        };
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[start + 2..];
        let trim_before = after.starts_with("- ")
            || after.starts_with("-\t")
            || after.starts_with("-\n")
            || after.starts_with("-\r");
        if trim_before {
            text = text.trim_end();
        }
        line += rest[..start].matches('\n').count();
        out.push(Seg::Text(text.to_string()));
        let inner_start = if trim_before { 2 } else { 0 };
        let Some(end) = find_close(&after[inner_start..]) else {
            return err(format!("{line}: unclosed action"));
        };
        let mut inner = &after[inner_start..inner_start + end];
        trim_next = false;
        if inner.ends_with(" -")
            || inner.ends_with("\t-")
            || inner.ends_with("\n-")
            || inner.ends_with("\r-")
        {
            inner = &inner[..inner.len() - 1];
            trim_next = true;
        }
        out.push(Seg::Action(inner.to_string(), line));
        line += inner.matches('\n').count();
        rest = &after[inner_start + end + 2..];
    }
    Ok(out)
}

/// The end of an action, skipping `}}` inside string literals.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn field_chain(chars: &[char], i: &mut usize) -> Vec<String> {
    let mut fields = Vec::new();
    while *i < chars.len() && chars[*i] == '.' {
        let s = *i + 1;
        let mut e = s;
        while e < chars.len() && is_ident_char(chars[e]) {
            e += 1;
        }
        if e == s {
            break;
        }
        fields.push(chars[s..e].iter().collect());
        *i = e;
    }
    fields
}

fn lex(src: &str, line: usize) -> Result<Vec<Tok>> {
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                i += 1;
                let f = field_chain(&chars, &mut i);
                out.push(if f.is_empty() {
                    Tok::RParen
                } else {
                    Tok::RParenFields(f)
                });
            }
            '|' => {
                out.push(Tok::Pipe);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::Declare);
                i += 2
            }
            '=' => {
                out.push(Tok::Assign);
                i += 1
            }
            '.' => {
                let f = field_chain(&chars, &mut i);
                if f.is_empty() {
                    if chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()) {
                        let (n, int) = lex_number(&chars, &mut i, line)?;
                        out.push(Tok::Num(n, int));
                    } else {
                        out.push(Tok::Dot);
                        i += 1;
                    }
                } else {
                    out.push(Tok::Field(f));
                }
            }
            '$' => {
                let s = i + 1;
                let mut e = s;
                while e < chars.len() && is_ident_char(chars[e]) {
                    e += 1;
                }
                let name: String = chars[i..e].iter().collect();
                i = e;
                let f = field_chain(&chars, &mut i);
                out.push(Tok::Var(name, f));
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return err(format!("{line}: unterminated quoted string"));
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let e = chars.get(i).copied().unwrap_or('\\');
                            i += 1;
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '0' => '\0',
                                other => other,
                            });
                        }
                        c => s.push(c),
                    }
                }
                out.push(Tok::Str(s));
            }
            '`' => {
                let s = i + 1;
                let Some(len) = chars[s..].iter().position(|&c| c == '`') else {
                    return err(format!("{line}: unterminated raw quoted string"));
                };
                out.push(Tok::Str(chars[s..s + len].iter().collect()));
                i = s + len + 1;
            }
            c if c.is_ascii_digit() || ((c == '-' || c == '+') && i + 1 < chars.len()) => {
                let (n, int) = lex_number(&chars, &mut i, line)?;
                out.push(Tok::Num(n, int));
            }
            c if is_ident_char(c) => {
                let s = i;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                let w: String = chars[s..i].iter().collect();
                out.push(match w.as_str() {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => Tok::Nil,
                    _ => Tok::Ident(w),
                });
            }
            other => return err(format!("{line}: unexpected {other:?} in command")),
        }
    }
    Ok(out)
}

fn lex_number(chars: &[char], i: &mut usize, line: usize) -> Result<(f64, bool)> {
    let s = *i;
    let mut e = s;
    if matches!(chars[e], '-' | '+') {
        e += 1;
    }
    while e < chars.len() && (chars[e].is_ascii_alphanumeric() || chars[e] == '.') {
        e += 1;
    }
    let text: String = chars[s..e].iter().collect();
    *i = e;
    if let Ok(n) = text.parse::<i64>() {
        return Ok((n as f64, true));
    }
    match text.parse::<f64>() {
        Ok(n) => Ok((n, false)),
        Err(_) => err(format!("{line}: bad number syntax: {text:?}")),
    }
}

struct Parser {
    segs: Vec<Seg>,
    pos: usize,
}

enum ListEnd {
    Eof,
    Close,
    Else(Vec<Tok>, usize),
}

impl Parser {
    fn list(&mut self) -> Result<(Vec<Node>, ListEnd)> {
        let mut nodes = Vec::new();
        while self.pos < self.segs.len() {
            let i = self.pos;
            self.pos += 1;
            let (src, line) = match &self.segs[i] {
                Seg::Text(t) => {
                    if !t.is_empty() {
                        nodes.push(Node::Text(t.clone()));
                    }
                    continue;
                }
                Seg::Action(a, l) => (a.clone(), *l),
            };
            let trimmed = src.trim();
            if trimmed.starts_with("/*") {
                if !trimmed.ends_with("*/") {
                    return err(format!("{line}: unclosed comment"));
                }
                continue;
            }
            let toks = lex(&src, line)?;
            match toks.first() {
                None => return err(format!("{line}: missing value for command")),
                Some(Tok::Ident(k)) if k == "end" => return Ok((nodes, ListEnd::Close)),
                Some(Tok::Ident(k)) if k == "else" => {
                    return Ok((nodes, ListEnd::Else(toks[1..].to_vec(), line)))
                }
                Some(Tok::Ident(k)) if k == "if" || k == "range" || k == "with" => {
                    let kw = k.clone();
                    let pipe = parse_pipeline(&toks[1..], line)?;
                    nodes.push(self.control(&kw, pipe, line)?);
                }
                Some(Tok::Ident(k))
                    if matches!(k.as_str(), "define" | "template" | "block" | "break") =>
                {
                    return err(format!(
                        "{line}: {k:?} is not supported by wharf's templates"
                    ));
                }
                _ => nodes.push(Node::Action(parse_pipeline(&toks, line)?)),
            }
        }
        Ok((nodes, ListEnd::Eof))
    }

    fn control(&mut self, kw: &str, pipe: Pipeline, line: usize) -> Result<Node> {
        let (body, end) = self.list()?;
        let els = match end {
            ListEnd::Eof => return err(format!("{line}: unexpected EOF")),
            ListEnd::Close => Vec::new(),
            ListEnd::Else(rest, l) if rest.is_empty() => {
                let (els, end) = self.list()?;
                if !matches!(end, ListEnd::Close) {
                    return err(format!("{l}: expected end; found else or EOF"));
                }
                els
            }
            ListEnd::Else(rest, l) => {
                // `else if ...` / `else with ...`: a nested control sharing our `end`.
                let Some(Tok::Ident(k)) = rest.first() else {
                    return err(format!("{l}: unexpected tokens after else"));
                };
                if k != "if" && k != "with" {
                    return err(format!("{l}: unexpected {k:?} after else"));
                }
                let k = k.clone();
                let p = parse_pipeline(&rest[1..], l)?;
                vec![self.control(&k, p, l)?]
            }
        };
        Ok(match kw {
            "if" => Node::If(pipe, body, els),
            "range" => Node::Range(pipe, body, els),
            _ => Node::With(pipe, body, els),
        })
    }
}

fn parse_pipeline(toks: &[Tok], line: usize) -> Result<Pipeline> {
    let mut p = Pipeline::default();
    let mut toks = toks;
    // Declarations: `$x :=`, `$i, $v :=`, `$x =`.
    if let Some(pos) = toks
        .iter()
        .position(|t| matches!(t, Tok::Declare | Tok::Assign))
    {
        let vars = &toks[..pos];
        let ok = vars.iter().enumerate().all(|(i, t)| match t {
            Tok::Var(_, f) => i % 2 == 0 && f.is_empty(),
            Tok::Comma => i % 2 == 1,
            _ => false,
        });
        if ok && !vars.is_empty() {
            p.decl = vars
                .iter()
                .filter_map(|t| match t {
                    Tok::Var(n, _) => Some(n.clone()),
                    _ => None,
                })
                .collect();
            p.assign = matches!(toks[pos], Tok::Assign);
            toks = &toks[pos + 1..];
        }
    }
    let mut i = 0;
    let mut cmd = Vec::new();
    while i < toks.len() {
        match &toks[i] {
            Tok::Pipe => {
                if cmd.is_empty() {
                    return err(format!("{line}: missing command before |"));
                }
                p.cmds.push(std::mem::take(&mut cmd));
                i += 1;
            }
            Tok::LParen => {
                let mut depth = 0;
                let mut j = i;
                let mut close = None;
                while j < toks.len() {
                    match &toks[j] {
                        Tok::LParen => depth += 1,
                        Tok::RParen | Tok::RParenFields(_) => {
                            depth -= 1;
                            if depth == 0 {
                                close = Some(j);
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                let Some(j) = close else {
                    return err(format!("{line}: unclosed left paren"));
                };
                let inner = parse_pipeline(&toks[i + 1..j], line)?;
                let fields = match &toks[j] {
                    Tok::RParenFields(f) => f.clone(),
                    _ => Vec::new(),
                };
                cmd.push(Arg::Sub(Box::new(inner), fields));
                i = j + 1;
            }
            Tok::RParen | Tok::RParenFields(_) => {
                return err(format!("{line}: unexpected right paren"))
            }
            Tok::Declare | Tok::Assign | Tok::Comma => {
                return err(format!("{line}: unexpected {:?} in operand", toks[i]))
            }
            t => {
                cmd.push(match t {
                    Tok::Field(f) => Arg::Field(f.clone()),
                    Tok::Dot => Arg::Dot,
                    Tok::Var(n, f) => Arg::Var(n.clone(), f.clone()),
                    Tok::Ident(n) => {
                        if !is_function(n) {
                            return err(format!("{line}: function {n:?} not defined"));
                        }
                        Arg::Func(n.clone())
                    }
                    Tok::Str(s) => Arg::Lit(Value::String(s.clone())),
                    Tok::Num(n, true) => Arg::Lit(Value::from(*n as i64)),
                    Tok::Num(n, false) => Arg::Lit(Value::from(*n)),
                    Tok::Bool(b) => Arg::Lit(Value::Bool(*b)),
                    _ => Arg::Lit(Value::Null),
                });
                i += 1;
            }
        }
    }
    if !cmd.is_empty() {
        p.cmds.push(cmd);
    }
    if p.cmds.is_empty() {
        return err(format!("{line}: missing value for command"));
    }
    Ok(p)
}

const FUNCTIONS: &[&str] = &[
    "json", "join", "split", "lower", "upper", "title", "truncate", "pad", "print", "printf",
    "println", "len", "index", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "slice",
    "html", "urlquery", "js", "call",
];

fn is_function(n: &str) -> bool {
    FUNCTIONS.contains(&n)
}

impl Template {
    /// Parses a template; `\t`/`\n` escapes are the caller's business (docker replaces them).
    pub fn parse(src: &str) -> Result<Template> {
        let mut p = Parser {
            segs: segments(src)?,
            pos: 0,
        };
        let (nodes, end) = p.list()?;
        match end {
            ListEnd::Eof => Ok(Template {
                nodes,
                row_context: false,
            }),
            ListEnd::Close => err("1: unexpected {{end}}"),
            ListEnd::Else(..) => err("1: unexpected {{else}}"),
        }
    }

    /// Executes against `data`.
    pub fn execute(&self, data: &Value) -> Result<String> {
        self.run(data, false)
    }

    /// Executes as docker renders a table header: the data maps field names to column
    /// titles and the string functions return their argument unchanged.
    pub fn execute_header(&self, header: &Value) -> Result<String> {
        self.run(header, true)
    }

    fn run(&self, data: &Value, header: bool) -> Result<String> {
        let mut ex = Exec {
            vars: vec![("$".into(), Some(data.clone()))],
            header,
            out: String::new(),
            row: self.row_context.then(|| data.clone()),
        };
        ex.nodes(&self.nodes, &Some(data.clone()))?;
        Ok(ex.out)
    }
}

/// `None` is Go's "no value" (a missing map key).
type V = Option<Value>;

struct Exec {
    vars: Vec<(String, V)>,
    header: bool,
    out: String,
    /// The row of a formatter context, when the data is one.
    row: Option<Value>,
}

fn truthy(v: &V) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

/// Go's `%v` of a decoded JSON value.
pub fn go_print(v: &Value) -> String {
    let mut s = String::new();
    write_go(&mut s, v);
    s
}

fn write_go(s: &mut String, v: &Value) {
    match v {
        Value::Null => s.push_str("<nil>"),
        Value::Bool(b) => {
            let _ = write!(s, "{b}");
        }
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                let _ = write!(s, "{i}");
            } else if let Some(u) = n.as_u64() {
                let _ = write!(s, "{u}");
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                let exp = if f == 0.0 {
                    0
                } else {
                    f.abs().log10().floor() as i32
                };
                if (-4..21).contains(&exp) {
                    let _ = write!(s, "{f}");
                } else {
                    s.push_str(&go_exp(f));
                }
            }
        }
        Value::String(t) => s.push_str(t),
        Value::Array(a) => {
            s.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                write_go(s, e);
            }
            s.push(']');
        }
        Value::Object(o) => {
            s.push_str("map[");
            for (i, (k, e)) in o.iter().filter(|(k, _)| !k.starts_with('~')).enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                s.push_str(k);
                s.push(':');
                write_go(s, e);
            }
            s.push(']');
        }
    }
}

fn go_exp(f: f64) -> String {
    let r = format!("{f:e}");
    let (m, e) = r.split_once('e').unwrap_or((&r, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

fn print_v(v: &V) -> String {
    match v {
        None => "<no value>".into(),
        Some(v) => go_print(v),
    }
}

fn strip_hidden(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| !k.starts_with('~'))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Map<_, _>>(),
        ),
        v => v.clone(),
    }
}

fn as_str(v: &V) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        other => print_v(other),
    }
}

fn as_int(v: &V, f: &str) -> Result<i64> {
    match v {
        Some(Value::Number(n)) => Ok(n.as_i64().unwrap_or(n.as_f64().unwrap_or(0.0) as i64)),
        _ => err(format!(
            "1: error calling {f}: expected an integer, got {}",
            print_v(v)
        )),
    }
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        if !prev_letter && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = c.is_alphanumeric() || c == '_' || c == '\'';
    }
    out
}

fn field(v: &V, name: &str) -> Result<V> {
    match v {
        Some(Value::Object(o)) => Ok(o.get(name).or_else(|| o.get(&format!("~{name}"))).cloned()),
        None | Some(Value::Null) => Ok(None),
        Some(other) => err(format!(
            "1: can't evaluate field {name} in type {}",
            type_name(other)
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "interface {}",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn fields(mut v: V, names: &[String]) -> Result<V> {
    for n in names {
        v = field(&v, n)?;
    }
    Ok(v)
}

fn compare(a: &V, b: &V) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Some(Value::String(x)), Some(Value::String(y))) => Some(x.cmp(y)),
        _ => None,
    }
}

impl Exec {
    fn nodes(&mut self, nodes: &[Node], dot: &V) -> Result<()> {
        for n in nodes {
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.decl.is_empty() {
                        self.out.push_str(&print_v(&v));
                    }
                }
                Node::If(p, body, els) => {
                    let mark = self.vars.len();
                    let v = self.pipeline(p, dot)?;
                    if truthy(&v) {
                        self.nodes(body, dot)?;
                    } else {
                        self.nodes(els, dot)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::With(p, body, els) => {
                    let mark = self.vars.len();
                    let v = self.pipeline(p, dot)?;
                    if truthy(&v) {
                        self.nodes(body, &v)?;
                    } else {
                        self.nodes(els, dot)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::Range(p, body, els) => {
                    let mark = self.vars.len();
                    let decl = p.decl.clone();
                    let mut plain = p.clone();
                    plain.decl.clear();
                    let v = self.pipeline(&plain, dot)?;
                    let items: Vec<(Value, Value)> = match &v {
                        Some(Value::Array(a)) => a
                            .iter()
                            .enumerate()
                            .map(|(i, e)| (Value::from(i), e.clone()))
                            .collect(),
                        Some(Value::Object(o)) => o
                            .iter()
                            .map(|(k, e)| (Value::String(k.clone()), e.clone()))
                            .collect(),
                        Some(Value::Number(n)) if n.as_i64().is_some() => {
                            (0..n.as_i64().unwrap_or(0))
                                .map(|i| (Value::from(i), Value::from(i)))
                                .collect()
                        }
                        None | Some(Value::Null) => Vec::new(),
                        Some(o) => {
                            return err(format!("1: range can't iterate over {}", go_print(o)))
                        }
                    };
                    if items.is_empty() {
                        self.nodes(els, dot)?;
                    }
                    for (k, e) in items {
                        let inner = self.vars.len();
                        match decl.len() {
                            0 => {}
                            1 => self.vars.push((decl[0].clone(), Some(e.clone()))),
                            _ => {
                                self.vars.push((decl[0].clone(), Some(k)));
                                self.vars.push((decl[1].clone(), Some(e.clone())));
                            }
                        }
                        self.nodes(body, &Some(e))?;
                        self.vars.truncate(inner);
                    }
                    self.vars.truncate(mark);
                }
            }
        }
        Ok(())
    }

    fn var(&self, name: &str) -> Result<V> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => err(format!("1: undefined variable: {name}")),
        }
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &V) -> Result<V> {
        let mut last: Option<V> = None;
        for cmd in &p.cmds {
            last = Some(self.command(cmd, dot, last)?);
        }
        let v = last.unwrap_or(None);
        if p.assign {
            for d in &p.decl {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == d) {
                    slot.1 = v.clone();
                } else {
                    return err(format!("1: undefined variable: {d}"));
                }
            }
        } else {
            for d in &p.decl {
                self.vars.push((d.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn arg(&mut self, a: &Arg, dot: &V) -> Result<V> {
        match a {
            Arg::Dot => Ok(dot.clone()),
            Arg::Field(f) => fields(dot.clone(), f),
            Arg::Var(n, f) => fields(self.var(n)?, f),
            Arg::Lit(v) => Ok(Some(v.clone())),
            Arg::Sub(p, f) => {
                let v = self.pipeline(p, dot)?;
                fields(v, f)
            }
            Arg::Func(f) => self.call(f, Vec::new()),
        }
    }

    fn command(&mut self, cmd: &[Arg], dot: &V, piped: Option<V>) -> Result<V> {
        match &cmd[0] {
            Arg::Func(f) => {
                let mut args = Vec::new();
                for a in &cmd[1..] {
                    args.push(self.arg(a, dot)?);
                }
                if let Some(p) = piped {
                    args.push(p);
                }
                self.call(f, args)
            }
            // A field followed by arguments is a method call; docker's only one with an
            // argument is `.Label "name"`, served by a map under the field's name.
            Arg::Field(_) | Arg::Var(..) if cmd.len() > 1 || piped.is_some() => {
                let m = self.arg(&cmd[0], dot)?;
                let mut args = Vec::new();
                for a in &cmd[1..] {
                    args.push(self.arg(a, dot)?);
                }
                if let Some(p) = piped {
                    args.push(p);
                }
                match (&m, args.as_slice()) {
                    // docker's header for `.Label "a.b-c"` is the key's last part, `b c`.
                    (Some(Value::Object(_)), [Some(Value::String(k))]) if self.header => {
                        let last = k.rsplit('.').next().unwrap_or(k);
                        Ok(Some(Value::String(last.replace(['-', '_'], " "))))
                    }
                    (Some(Value::Object(o)), [Some(Value::String(k))]) => Ok(Some(
                        o.get(k).cloned().unwrap_or(Value::String(String::new())),
                    )),
                    _ => err("1: can't give argument to non-function"),
                }
            }
            a => {
                if cmd.len() > 1 || piped.is_some() {
                    return err("1: can't give argument to non-function");
                }
                self.arg(a, dot)
            }
        }
    }

    fn call(&mut self, f: &str, args: Vec<V>) -> Result<V> {
        let n = args.len();
        let want = |k: usize| -> Result<()> {
            if n != k {
                err(format!("1: wrong number of args for {f}: want {k} got {n}"))
            } else {
                Ok(())
            }
        };
        if self.header
            && matches!(
                f,
                "json" | "split" | "join" | "title" | "lower" | "upper" | "truncate"
            )
        {
            return Ok(args.into_iter().next().unwrap_or(None));
        }
        let s = |v: String| Ok(Some(Value::String(v)));
        match f {
            "json" => {
                want(1)?;
                match &args[0] {
                    None => s("null".into()),
                    Some(v) => {
                        let j = serde_json::to_string(&strip_hidden(v)).unwrap_or_default();
                        if self.row.as_ref() == Some(v) {
                            s(super::json::go_escape(&j))
                        } else {
                            s(j)
                        }
                    }
                }
            }
            "split" => {
                want(2)?;
                let src = as_str(&args[0]);
                let sep = as_str(&args[1]);
                let parts: Vec<Value> = if sep.is_empty() {
                    src.chars().map(|c| Value::String(c.to_string())).collect()
                } else {
                    src.split(sep.as_str())
                        .map(|p| Value::String(p.into()))
                        .collect()
                };
                Ok(Some(Value::Array(parts)))
            }
            "join" => {
                want(2)?;
                let sep = as_str(&args[1]);
                match &args[0] {
                    None | Some(Value::Null) => s(String::new()),
                    Some(Value::Array(a)) => {
                        s(a.iter().map(go_print).collect::<Vec<_>>().join(&sep))
                    }
                    Some(Value::Object(o)) => {
                        let mut v: Vec<String> = o.values().map(go_print).collect();
                        v.sort();
                        s(v.join(&sep))
                    }
                    Some(o) => err(format!(
                        "1: error calling join: expected slice, got {}",
                        type_name(o)
                    )),
                }
            }
            "lower" => {
                want(1)?;
                s(as_str(&args[0]).to_lowercase())
            }
            "upper" => {
                want(1)?;
                s(as_str(&args[0]).to_uppercase())
            }
            "title" => {
                want(1)?;
                s(title(&as_str(&args[0])))
            }
            "truncate" => {
                want(2)?;
                let src = as_str(&args[0]);
                let l = as_int(&args[1], f)?.max(0) as usize;
                if src.len() < l {
                    s(src)
                } else {
                    let mut end = l;
                    while !src.is_char_boundary(end) {
                        end -= 1;
                    }
                    s(src[..end].to_string())
                }
            }
            "pad" => {
                want(3)?;
                let src = as_str(&args[0]);
                if src.is_empty() {
                    return s(src);
                }
                let pre = as_int(&args[1], f)?.max(0) as usize;
                let suf = as_int(&args[2], f)?.max(0) as usize;
                s(format!("{}{src}{}", " ".repeat(pre), " ".repeat(suf)))
            }
            "print" | "println" => {
                let mut o = String::new();
                for (i, a) in args.iter().enumerate() {
                    let is_str = |v: &V| matches!(v, Some(Value::String(_)));
                    if i > 0 && (f == "println" || (!is_str(a) && !is_str(&args[i - 1]))) {
                        o.push(' ');
                    }
                    o.push_str(&print_v(a));
                }
                if f == "println" {
                    o.push('\n');
                }
                s(o)
            }
            "printf" => {
                if args.is_empty() {
                    return err("1: wrong number of args for printf: want at least 1 got 0");
                }
                s(printf(&as_str(&args[0]), &args[1..]))
            }
            "len" => {
                want(1)?;
                let l = match &args[0] {
                    Some(Value::String(t)) => t.len(),
                    Some(Value::Array(a)) => a.len(),
                    Some(Value::Object(o)) => o.len(),
                    None | Some(Value::Null) => 0,
                    Some(o) => {
                        return err(format!(
                            "1: error calling len: len of type {}",
                            type_name(o)
                        ))
                    }
                };
                Ok(Some(Value::from(l)))
            }
            "index" => {
                if args.is_empty() {
                    return err("1: wrong number of args for index: want at least 1 got 0");
                }
                let mut v = args[0].clone();
                for k in &args[1..] {
                    v = match (&v, k) {
                        (Some(Value::Object(o)), Some(Value::String(k))) => o.get(k).cloned(),
                        (Some(Value::Array(a)), Some(Value::Number(i))) => {
                            let i = i.as_i64().unwrap_or(-1);
                            match usize::try_from(i).ok().and_then(|i| a.get(i)) {
                                Some(e) => Some(e.clone()),
                                None => {
                                    return err(format!(
                                        "1: error calling index: index out of range: {i}"
                                    ))
                                }
                            }
                        }
                        (None | Some(Value::Null), _) => None,
                        _ => return err("1: error calling index: cannot index"),
                    };
                }
                Ok(v)
            }
            "slice" => {
                if args.is_empty() {
                    return err("1: wrong number of args for slice");
                }
                let from = args.get(1).map(|a| as_int(a, f)).transpose()?.unwrap_or(0) as usize;
                match &args[0] {
                    Some(Value::String(t)) => {
                        let to = args.get(2).map(|a| as_int(a, f)).transpose()?;
                        let to = to.map(|t| t as usize).unwrap_or(t.len()).min(t.len());
                        s(t.get(from.min(to)..to).unwrap_or("").to_string())
                    }
                    Some(Value::Array(a)) => {
                        let to = args.get(2).map(|a| as_int(a, f)).transpose()?;
                        let to = to.map(|t| t as usize).unwrap_or(a.len()).min(a.len());
                        Ok(Some(Value::Array(a[from.min(to)..to].to_vec())))
                    }
                    _ => err("1: error calling slice: can't slice item"),
                }
            }
            "eq" => {
                if args.len() < 2 {
                    return err("1: missing argument for comparison");
                }
                let a = &args[0];
                let r = args[1..].iter().any(|b| match (a, b) {
                    (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
                    _ => a == b,
                });
                Ok(Some(Value::Bool(r)))
            }
            "ne" => {
                want(2)?;
                Ok(Some(Value::Bool(args[0] != args[1])))
            }
            "lt" | "le" | "gt" | "ge" => {
                want(2)?;
                let Some(o) = compare(&args[0], &args[1]) else {
                    return err(format!(
                        "1: error calling {f}: incompatible types for comparison"
                    ));
                };
                use std::cmp::Ordering::*;
                let r = match f {
                    "lt" => o == Less,
                    "le" => o != Greater,
                    "gt" => o == Greater,
                    _ => o != Less,
                };
                Ok(Some(Value::Bool(r)))
            }
            "and" => Ok(args
                .iter()
                .find(|a| !truthy(a))
                .or(args.last())
                .cloned()
                .unwrap_or(None)),
            "or" => Ok(args
                .iter()
                .find(|a| truthy(a))
                .or(args.last())
                .cloned()
                .unwrap_or(None)),
            "not" => {
                want(1)?;
                Ok(Some(Value::Bool(!truthy(&args[0]))))
            }
            "html" | "urlquery" | "js" => s(args.iter().map(as_str).collect::<Vec<_>>().join("")),
            other => err(format!("1: function {other:?} not supported")),
        }
    }
}

/// A small `fmt.Sprintf`: `%s %v %d %q %t %%` (with widths like `%-10s`).
/// Go's `fmt.Sprintf` for the verbs templates use: flags `-+0 `, width, precision, and
/// `%v %s %q %d %x %X %f %e %g %t %%`.
fn printf(fmt: &str, args: &[V]) -> String {
    let mut out = String::new();
    let mut it = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut left, mut plus, mut zero, mut space) = (false, false, false, false);
        while let Some(&d) = chars.peek() {
            match d {
                '-' => left = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' => space = true,
                '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            prec = Some(p.parse().unwrap_or(0));
        }
        let w: usize = width.parse().unwrap_or(0);
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(a) = it.next() else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        let num = a.as_ref().and_then(Value::as_f64);
        let sign = |neg: bool| {
            if neg {
                "-"
            } else if plus {
                "+"
            } else if space {
                " "
            } else {
                ""
            }
        };
        // (sign, digits): numbers pad with zeros between the two.
        let (pre, body, numeric) = match (verb, num) {
            ('d', Some(n)) => (sign(n < 0.0), format!("{}", n.abs() as i64), true),
            ('x', Some(n)) => (sign(n < 0.0), format!("{:x}", n.abs() as i64), true),
            ('X', Some(n)) => (sign(n < 0.0), format!("{:X}", n.abs() as i64), true),
            ('f' | 'F', Some(n)) => (
                sign(n < 0.0),
                format!("{:.*}", prec.unwrap_or(6), n.abs()),
                true,
            ),
            ('e', Some(n)) => {
                let t = format!("{:.*e}", prec.unwrap_or(6), n.abs());
                // Go writes the exponent with a sign and two digits: 1.5e+00.
                let (m, e) = t.split_once('e').unwrap_or((&t, "0"));
                let ev: i32 = e.parse().unwrap_or(0);
                (
                    sign(n < 0.0),
                    format!("{m}e{}{:02}", if ev < 0 { '-' } else { '+' }, ev.abs()),
                    true,
                )
            }
            ('g' | 'v', Some(n)) if a.as_ref().is_some_and(Value::is_number) => {
                (sign(n < 0.0), as_str(&Some(Value::from(n.abs()))), true)
            }
            ('x', None) => (
                "",
                as_str(a).bytes().map(|b| format!("{b:02x}")).collect(),
                false,
            ),
            ('q', _) => (
                "",
                serde_json::to_string(&as_str(a)).unwrap_or_default(),
                false,
            ),
            ('s', _) => {
                let t = as_str(a);
                (
                    "",
                    prec.map_or(t.clone(), |p| t.chars().take(p).collect()),
                    false,
                )
            }
            ('v' | 't', _) => ("", as_str(a), false),
            _ => {
                let _ = write!(out, "%!{verb}({})", as_str(a));
                continue;
            }
        };
        let n = pre.chars().count() + body.chars().count();
        let pad = w.saturating_sub(n);
        if left {
            out.push_str(pre);
            out.push_str(&body);
            out.extend(std::iter::repeat_n(' ', pad));
        } else if zero && numeric {
            out.push_str(pre);
            out.extend(std::iter::repeat_n('0', pad));
            out.push_str(&body);
        } else {
            out.extend(std::iter::repeat_n(' ', pad));
            out.push_str(pre);
            out.push_str(&body);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(t: &str, v: Value) -> String {
        Template::parse(t).unwrap().execute(&v).unwrap()
    }

    #[test]
    fn printf_like_go() {
        let v = json!({"N": 7, "M": -3, "F": 1.5, "S": "abc"});
        assert_eq!(
            run(
                "{{printf \"%03d|%-4d|%+d|%5.2f|%x|%X|%.2s|%q|%v|%5s|%%\" .N .M .N .F .N .N .S .S .F .S}}",
                v
            ),
            "007|-3  |+7| 1.50|7|7|ab|\"abc\"|1.5|  abc|%"
        );
    }

    #[test]
    fn fields_and_nesting() {
        let v = json!({"Config": {"Image": "busybox", "Env": ["A=1", "B=2"]}, "Id": "abc"});
        assert_eq!(run("{{.Config.Image}}", v.clone()), "busybox");
        assert_eq!(
            run("id={{.Id}} {{.Config.Env}}", v.clone()),
            "id=abc [A=1 B=2]"
        );
        assert_eq!(run("{{.Nope}}", v.clone()), "<no value>");
        assert_eq!(run("{{json .Config.Env}}", v.clone()), r#"["A=1","B=2"]"#);
        assert_eq!(run("{{json .}}", json!({"a": "<b>"})), r#"{"a":"<b>"}"#);
        assert_eq!(run("{{.}}", json!({"b": 1, "a": null})), "map[a:<nil> b:1]");
    }

    #[test]
    fn control_flow() {
        let v = json!({"L": ["x", "y"], "M": {"k": "v", "a": "b"}, "T": true, "E": ""});
        assert_eq!(run("{{range .L}}<{{.}}>{{end}}", v.clone()), "<x><y>");
        assert_eq!(
            run("{{range $i, $e := .L}}{{$i}}={{$e}};{{end}}", v.clone()),
            "0=x;1=y;"
        );
        assert_eq!(
            run("{{range $k, $v := .M}}{{$k}}:{{$v}} {{end}}", v.clone()),
            "a:b k:v "
        );
        assert_eq!(run("{{if .T}}yes{{else}}no{{end}}", v.clone()), "yes");
        assert_eq!(
            run("{{if .E}}e{{else if .T}}t{{else}}n{{end}}", v.clone()),
            "t"
        );
        assert_eq!(run("{{with .M}}{{.k}}{{end}}", v.clone()), "v");
        assert_eq!(
            run("{{range .Nope}}x{{else}}empty{{end}}", v.clone()),
            "empty"
        );
        assert_eq!(run("a  {{- .E -}}  b", v.clone()), "ab");
        assert_eq!(run("{{/* c */}}x", v.clone()), "x");
        assert_eq!(run("{{$x := .M.k}}{{$x}}", v), "v");
    }

    #[test]
    fn docker_functions() {
        let v = json!({"S": "Hello World", "L": ["a", "b"], "M": {"x": "2", "y": "1"}});
        assert_eq!(
            run("{{lower .S}}|{{upper .S}}", v.clone()),
            "hello world|HELLO WORLD"
        );
        assert_eq!(run("{{title \"foo bar\"}}", v.clone()), "Foo Bar");
        assert_eq!(run("{{join .L \", \"}}", v.clone()), "a, b");
        assert_eq!(run("{{join .M \",\"}}", v.clone()), "1,2");
        assert_eq!(run("{{split \"a:b\" \":\"}}", v.clone()), "[a b]");
        assert_eq!(run("{{truncate .S 5}}", v.clone()), "Hello");
        assert_eq!(run("[{{pad .S 1 2}}]", v.clone()), "[ Hello World  ]");
        assert_eq!(run("{{println .S}}", v.clone()), "Hello World\n");
        assert_eq!(run("{{.S | lower}}", v.clone()), "hello world");
        assert_eq!(
            run("{{len .L}} {{index .L 1}} {{index .M \"x\"}}", v.clone()),
            "2 b 2"
        );
        assert_eq!(
            run("{{if eq .S \"Hello World\"}}eq{{end}}", v.clone()),
            "eq"
        );
        assert_eq!(
            run("{{printf \"%-6s|%d\" \"ab\" 3}}", v.clone()),
            "ab    |3"
        );
        assert_eq!(run("{{(index .L 0)}}", v), "a");
    }

    #[test]
    fn method_with_argument_reads_the_map() {
        let v = json!({"Labels": "a=1", "~Label": {"a": "1"}});
        assert_eq!(
            run("{{.Label \"a\"}}|{{.Label \"b\"}}|{{.Labels}}", v.clone()),
            "1||a=1"
        );
        assert_eq!(run("{{json .}}", v), r#"{"Labels":"a=1"}"#);
    }

    #[test]
    fn header_mode_leaves_functions_inert() {
        let t = Template::parse("{{upper .ID}}\t{{json .Names}}").unwrap();
        let h = json!({"ID": "CONTAINER ID", "Names": "NAMES"});
        assert_eq!(t.execute_header(&h).unwrap(), "CONTAINER ID\tNAMES");
    }

    #[test]
    fn parse_errors() {
        assert!(Template::parse("{{.A").is_err());
        assert!(Template::parse("{{if .A}}x").is_err());
        assert!(Template::parse("{{nosuchfunc .A}}").is_err());
        assert!(Template::parse("{{end}}").is_err());
    }
}
