//! Each instruction's arguments and flags (BuildKit's `instructions.Parse*`), and the stages.

use super::duration::parse_go_duration;
use super::error::{ParseError, ParseErrorKind as E};
use super::flags::{FlagType, Flags};
use super::lines::{parse_heredoc_word, strip_leading_tabs, Node};
use super::mount::parse_mount;
use super::words::{parse_json, parse_words, split_once_whitespace, split_whitespace};
use crate::ast::*;

use FlagType::{Bool, String as Str, Strings};

enum Parsed {
    From(Stage),
    Instruction(Instruction),
}

/// Groups the instructions into stages; ARGs before the first FROM are the meta args.
pub(crate) fn build(directives: Directives, nodes: Vec<Node>) -> Result<Dockerfile, ParseError> {
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &nodes {
        let parsed = convert(node).map_err(|k| ParseError::new(node.line, k))?;
        match parsed {
            Parsed::From(stage) => stages.push(stage),
            Parsed::Instruction(inst) => match stages.last_mut() {
                Some(stage) => stage.instructions.push(inst),
                None => match inst.kind {
                    InstructionKind::Arg(args) => meta_args.extend(args),
                    _ => return Err(ParseError::new(node.line, E::NoBuildStage)),
                },
            },
        }
    }
    Ok(Dockerfile {
        directives,
        meta_args,
        stages,
    })
}

fn source(node: &Node) -> Source {
    Source {
        line: node.line,
        end_line: node.end_line,
        original: node.original.trim().to_string(),
    }
}

fn no_flags(node: &Node) -> Result<(), E> {
    Flags::parse(&node.flags, &[]).map(|_| ())
}

/// The JSON form's strings, or the whitespace-separated words.
fn json_or_words(rest: &str) -> Result<Vec<String>, E> {
    Ok(match parse_json(rest)? {
        Some(v) => v,
        None => split_whitespace(rest),
    })
}

/// The exec or shell form of RUN, CMD, ENTRYPOINT and HEALTHCHECK CMD.
fn command(rest: &str) -> Result<Command, E> {
    Ok(match parse_json(rest)? {
        Some(v) => Command::Exec(v),
        None => Command::Shell(rest.to_string()),
    })
}

fn convert(node: &Node) -> Result<Parsed, E> {
    let kind = match node.cmd.to_ascii_lowercase().as_str() {
        "from" => return from(node).map(Parsed::From),
        "run" => InstructionKind::Run(run(node)?),
        "cmd" => {
            no_flags(node)?;
            InstructionKind::Cmd(command(&node.rest)?)
        }
        "entrypoint" => {
            no_flags(node)?;
            InstructionKind::Entrypoint(if node.rest.is_empty() {
                Command::Exec(Vec::new())
            } else {
                command(&node.rest)?
            })
        }
        "copy" => InstructionKind::Copy(copy(node)?),
        "add" => InstructionKind::Add(add(node)?),
        "env" => {
            let kv = name_values(&node.rest, "ENV")?;
            no_flags(node)?;
            InstructionKind::Env(kv)
        }
        "label" => {
            let kv = name_values(&node.rest, "LABEL")?;
            no_flags(node)?;
            InstructionKind::Label(kv)
        }
        // ARG takes no flags, and BuildKit does not check for any.
        "arg" => InstructionKind::Arg(arg(&node.rest)?),
        "expose" => {
            let ports = split_whitespace(&node.rest);
            if ports.is_empty() {
                return Err(E::AtLeastOneArgument("EXPOSE"));
            }
            no_flags(node)?;
            InstructionKind::Expose(ports)
        }
        "volume" => {
            let vols = json_or_words(&node.rest)?;
            if vols.is_empty() {
                return Err(E::AtLeastOneArgument("VOLUME"));
            }
            no_flags(node)?;
            let vols = vols
                .into_iter()
                .map(|v| {
                    let v = v.trim();
                    if v.is_empty() {
                        Err(E::EmptyVolume)
                    } else {
                        Ok(v.to_string())
                    }
                })
                .collect::<Result<_, _>>()?;
            InstructionKind::Volume(vols)
        }
        "user" => InstructionKind::User(one_argument(node, "USER")?),
        "workdir" => InstructionKind::Workdir(one_argument(node, "WORKDIR")?),
        "maintainer" => InstructionKind::Maintainer(one_argument(node, "MAINTAINER")?),
        "stopsignal" => {
            // BuildKit does not parse STOPSIGNAL's flags (they are ignored).
            if node.rest.is_empty() {
                return Err(E::ExactlyOneArgument("STOPSIGNAL"));
            }
            InstructionKind::StopSignal(node.rest.clone())
        }
        "shell" => {
            no_flags(node)?;
            match parse_json(&node.rest)? {
                Some(v) if v.is_empty() => return Err(E::AtLeastOneArgument("SHELL")),
                Some(v) => InstructionKind::Shell(v),
                None if node.rest.is_empty() => return Err(E::AtLeastOneArgument("SHELL")),
                None => return Err(E::NotJson("SHELL")),
            }
        }
        "healthcheck" => InstructionKind::Healthcheck(healthcheck(node)?),
        "onbuild" => InstructionKind::Onbuild(Box::new(onbuild(node)?)),
        _ => return Err(E::UnknownInstruction(node.cmd.clone())),
    };
    Ok(Parsed::Instruction(Instruction {
        source: source(node),
        kind,
    }))
}

fn one_argument(node: &Node, name: &'static str) -> Result<String, E> {
    if node.rest.is_empty() {
        return Err(E::ExactlyOneArgument(name));
    }
    no_flags(node)?;
    Ok(node.rest.clone())
}

fn is_valid_stage_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_' | '.'))
}

fn from(node: &Node) -> Result<Stage, E> {
    let args = split_whitespace(&node.rest);
    let name = match args.len() {
        3 if args[1].eq_ignore_ascii_case("as") => {
            let name = args[2].to_lowercase();
            if !is_valid_stage_name(&name) {
                return Err(E::InvalidStageName(args[2].clone()));
            }
            Some(name)
        }
        1 => None,
        _ => return Err(E::FromArguments),
    };
    let flags = Flags::parse(&node.flags, &[("platform", Str)])?;
    Ok(Stage {
        name,
        base: args[0].clone(),
        platform: flags.string("platform").filter(|p| !p.is_empty()),
        from: source(node),
        instructions: Vec::new(),
    })
}

fn run(node: &Node) -> Result<Run, E> {
    let flags = Flags::parse(
        &node.flags,
        &[("mount", Strings), ("network", Str), ("security", Str)],
    )?;
    let network = flags.string("network");
    if let Some(n) = &network {
        if !matches!(n.as_str(), "default" | "none" | "host") {
            return Err(E::InvalidNetwork(n.clone()));
        }
    }
    let security = flags.string("security");
    if let Some(s) = &security {
        if !matches!(s.as_str(), "insecure" | "sandbox") {
            return Err(E::InvalidSecurity(s.clone()));
        }
    }
    let mounts = flags
        .strings("mount")
        .iter()
        .map(|m| parse_mount(m, None))
        .collect::<Result<_, _>>()?;
    Ok(Run {
        command: command(&node.rest)?,
        heredocs: node.heredocs.clone(),
        mounts,
        network,
        security,
    })
}

/// COPY/ADD sources and destination; `<<NAME` sources take their heredoc's body.
fn copy_common(
    node: &Node,
    args: Vec<String>,
    cmd: &'static str,
    flags: &Flags,
) -> Result<CopyCommon, E> {
    let (dest, srcs) = args.split_last().ok_or(E::NoDestination(cmd))?;
    if let Ok(Some(_)) = parse_heredoc_word(dest) {
        return Err(E::HeredocDestination(cmd));
    }
    let mut common = CopyCommon {
        dest: dest.clone(),
        chown: flags.string("chown").filter(|s| !s.is_empty()),
        chmod: flags.string("chmod").filter(|s| !s.is_empty()),
        link: flags.bool("link").unwrap_or(false),
        exclude: flags.strings("exclude"),
        ..CopyCommon::default()
    };
    for src in srcs {
        match parse_heredoc_word(src) {
            Ok(Some(mut h)) => {
                let body = node
                    .heredocs
                    .iter()
                    .rev()
                    .find(|d| d.name == h.name)
                    .map(|d| d.content.clone())
                    .unwrap_or_default();
                h.content = if h.strip_tabs {
                    strip_leading_tabs(&body)
                } else {
                    body
                };
                common.heredocs.push(h);
            }
            _ => common.sources.push(src.clone()),
        }
    }
    Ok(common)
}

fn copy(node: &Node) -> Result<Copy, E> {
    let args = json_or_words(&node.rest)?;
    if args.len() < 2 {
        return Err(E::NoDestination("COPY"));
    }
    let flags = Flags::parse(
        &node.flags,
        &[
            ("chown", Str),
            ("from", Str),
            ("chmod", Str),
            ("link", Bool),
            ("exclude", Strings),
            ("parents", Bool),
        ],
    )?;
    Ok(Copy {
        common: copy_common(node, args, "COPY", &flags)?,
        from: flags.string("from").filter(|s| !s.is_empty()),
        parents: flags.bool("parents").unwrap_or(false),
    })
}

fn add(node: &Node) -> Result<Add, E> {
    let args = json_or_words(&node.rest)?;
    if args.len() < 2 {
        return Err(E::NoDestination("ADD"));
    }
    let flags = Flags::parse(
        &node.flags,
        &[
            ("chown", Str),
            ("chmod", Str),
            ("link", Bool),
            ("keep-git-dir", Bool),
            ("checksum", Str),
            ("unpack", Bool),
            ("exclude", Strings),
        ],
    )?;
    Ok(Add {
        common: copy_common(node, args, "ADD", &flags)?,
        checksum: flags.string("checksum").filter(|s| !s.is_empty()),
        keep_git_dir: flags.bool("keep-git-dir").unwrap_or(false),
        unpack: flags.bool("unpack"),
    })
}

/// ENV and LABEL: `k=v ...`, or the legacy `k v` (the value is the rest of the line).
fn name_values(rest: &str, cmd: &'static str) -> Result<Vec<KeyValue>, E> {
    let words = parse_words(rest, '\\');
    let Some(first) = words.first() else {
        return Err(E::AtLeastOneArgument(cmd));
    };
    if !first.contains('=') {
        let (key, value) = split_once_whitespace(rest);
        let Some(value) = value else {
            return Err(E::TwoArguments(cmd));
        };
        return Ok(vec![KeyValue {
            key: key.to_string(),
            value: value.to_string(),
        }]);
    }
    words
        .iter()
        .map(|w| {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| E::MissingEquals(w.clone()))?;
            if k.is_empty() {
                return Err(E::BlankName(cmd));
            }
            Ok(KeyValue {
                key: k.to_string(),
                value: v.to_string(),
            })
        })
        .collect()
}

fn arg(rest: &str) -> Result<Vec<ArgDecl>, E> {
    let words = parse_words(rest, '\\');
    if words.is_empty() {
        return Err(E::AtLeastOneArgument("ARG"));
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(E::BlankName("ARG")),
            Some((k, v)) => Ok(ArgDecl {
                name: k.to_string(),
                default: Some(v.to_string()),
            }),
            None => Ok(ArgDecl {
                name: w,
                default: None,
            }),
        })
        .collect()
}

fn check_interval(value: Option<String>, name: &'static str) -> Result<Option<String>, E> {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let d = parse_go_duration(&v).map_err(E::Duration)?;
    if d != 0 && d < 1_000_000 {
        return Err(E::IntervalTooShort(name));
    }
    Ok(Some(v))
}

/// Go's `strconv.ParseInt(s, 10, 32)`.
fn check_retries(v: &str) -> Result<i64, E> {
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(E::Retries {
            value: v.into(),
            reason: "invalid syntax",
        });
    }
    v.parse::<i32>().map(i64::from).map_err(|_| E::Retries {
        value: v.into(),
        reason: "value out of range",
    })
}

fn healthcheck(node: &Node) -> Result<Healthcheck, E> {
    let rest = node.rest.as_str();
    let sep = rest
        .bytes()
        .position(|b| b.is_ascii_whitespace() || b == 0x0b)
        .unwrap_or(rest.len());
    if sep == 0 {
        return Err(E::AtLeastOneArgument("HEALTHCHECK"));
    }
    let typ = rest[..sep].to_uppercase();
    let cmd = rest[sep..].trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b');
    if typ == "NONE" {
        // As in BuildKit, flags on `HEALTHCHECK NONE` are not looked at.
        if !cmd.is_empty() {
            return Err(E::HealthcheckNoneArguments);
        }
        return Ok(Healthcheck::None);
    }
    let flags = Flags::parse(
        &node.flags,
        &[
            ("interval", Str),
            ("timeout", Str),
            ("start-period", Str),
            ("start-interval", Str),
            ("retries", Str),
        ],
    )?;
    if typ != "CMD" {
        return Err(E::HealthcheckType(typ));
    }
    let test = command(cmd)?;
    match &test {
        Command::Exec(v) if v.is_empty() => return Err(E::HealthcheckMissingCommand),
        Command::Shell(s) if s.is_empty() => return Err(E::HealthcheckMissingCommand),
        _ => {}
    }
    let interval = check_interval(flags.string("interval"), "interval")?;
    let timeout = check_interval(flags.string("timeout"), "timeout")?;
    let start_period = check_interval(flags.string("start-period"), "start-period")?;
    let start_interval = check_interval(flags.string("start-interval"), "start-interval")?;
    let retries = flags.string("retries").filter(|r| !r.is_empty());
    if let Some(r) = &retries {
        let n = check_retries(r)?;
        if n < 0 {
            return Err(E::NegativeRetries(n));
        }
    }
    Ok(Healthcheck::Check {
        test,
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
    })
}

/// `ONBUILD <instruction>`: the trigger is parsed now (Docker only checks its keyword), its
/// source text is what the image stores: the line without `ONBUILD`, heredoc bodies appended.
fn onbuild(node: &Node) -> Result<Instruction, E> {
    let Some(child) = &node.child else {
        return Err(E::AtLeastOneArgument("ONBUILD"));
    };
    no_flags(node)?;
    let trigger = child.cmd.to_uppercase();
    match trigger.as_str() {
        "ONBUILD" => return Err(E::OnbuildChain),
        "MAINTAINER" | "FROM" => return Err(E::OnbuildTrigger(trigger)),
        _ => {}
    }
    let mut child = (**child).clone();
    child.heredocs = node.heredocs.clone();
    let mut original = strip_onbuild(&node.original).to_string();
    for h in &node.heredocs {
        original.push('\n');
        original.push_str(&h.content);
        original.push_str(&h.name);
    }
    match convert(&child)? {
        Parsed::Instruction(mut inst) => {
            inst.source = Source {
                line: node.line,
                end_line: node.end_line,
                original,
            };
            Ok(inst)
        }
        Parsed::From(_) => Err(E::OnbuildTrigger("FROM".into())),
    }
}

/// `(?i)^\s*ONBUILD\s*` removed.
fn strip_onbuild(s: &str) -> &str {
    let space = |c: char| matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ');
    let t = s.trim_start_matches(space);
    match t.get(..7) {
        Some(k) if k.eq_ignore_ascii_case("onbuild") => t[7..].trim_start_matches(space),
        _ => s,
    }
}
