//! A parsed Dockerfile.
//!
//! The parser splits lines, instructions, flags and heredocs; it does not expand variables.
//! Every word below is as written in the file (quotes, escapes and `$` references intact)
//! unless a field's doc says otherwise: the executor expands them with the stage's ARG and ENV
//! values at the step where they are used, as the classic builder and BuildKit do.

/// A whole Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub directives: Directives,
    /// ARG instructions before the first FROM: usable in FROM lines, and in a stage only when
    /// it re-declares them (`ARG NAME` without a value).
    pub meta_args: Vec<ArgDecl>,
    pub stages: Vec<Stage>,
}

/// Parser directives (`# escape=`, `# syntax=`, `# check=`) from the file's first lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// The escape character: `\` unless `# escape=` set it to `` ` ``.
    pub escape: char,
    /// `# syntax=`: accepted and not followed (wharf has one frontend); the builder says so.
    pub syntax: Option<String>,
    /// `# check=`: accepted and ignored.
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            escape: '\\',
            syntax: None,
            check: None,
        }
    }
}

/// One `FROM` and the instructions up to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// `AS name`, lower-cased as Docker does (stage names are case-insensitive).
    pub name: Option<String>,
    /// The image reference or an earlier stage's name, unexpanded (meta ARGs apply), or
    /// `scratch`.
    pub base: String,
    /// `--platform=...`, unexpanded.
    pub platform: Option<String>,
    /// The FROM instruction itself (its line and text for `Step n/m : FROM ...`).
    pub from: Source,
    pub instructions: Vec<Instruction>,
}

/// Where an instruction came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// 1-based line of the instruction's first line in the Dockerfile.
    pub line: usize,
    /// The last line it spans (continuations and heredoc bodies included).
    pub end_line: usize,
    /// The instruction as the classic builder prints it in `Step n/m : <text>`: the keyword
    /// as written, then the rest with continuations joined (a line's escape and newline
    /// removed) and comment lines inside continuations dropped.
    pub original: String,
}

/// One instruction of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub source: Source,
    pub kind: InstructionKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstructionKind {
    Run(Run),
    Cmd(Command),
    Entrypoint(Command),
    Copy(Copy),
    Add(Add),
    /// `ENV k=v ...` or the legacy `ENV k v` (one pair, the value is the rest of the line).
    Env(Vec<KeyValue>),
    Arg(Vec<ArgDecl>),
    Label(Vec<KeyValue>),
    /// Port specs as written (`80`, `80/udp`, `$PORT`).
    Expose(Vec<String>),
    /// Paths, from the JSON form or whitespace-separated words.
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    /// Always the JSON form (Docker refuses any other).
    Shell(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    /// The trigger instruction, parsed (ONBUILD may not hold FROM, ONBUILD or MAINTAINER);
    /// stored in the image as its source text.
    Onbuild(Box<Instruction>),
    Maintainer(String),
}

/// CMD, ENTRYPOINT, RUN and HEALTHCHECK CMD: the JSON (exec) form or the shell form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `["a", "b"]`: strings already JSON-decoded; never expanded.
    Exec(Vec<String>),
    /// The rest of the line as written, run as `SHELL + [text]`. Not expanded by the builder
    /// (the shell expands it), except heredoc names.
    Shell(String),
}

/// A `<<EOF` document attached to RUN, COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The word after `<<` / `<<-`, unquoted.
    pub name: String,
    /// The body, each line ending in `\n` (tabs already stripped for `<<-`).
    pub content: String,
    /// False when the name was quoted (`<<"EOF"`, `<<'EOF'`): the body is not expanded.
    pub expand: bool,
    /// `<<-`: leading tabs were stripped.
    pub strip_tabs: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub command: Command,
    /// Heredocs in the command line, in order. For `RUN <<EOF` with nothing else on the line,
    /// the first heredoc is the script (run by the shell); otherwise they are the shell form's
    /// stdin/file redirections as written.
    pub heredocs: Vec<Heredoc>,
    pub mounts: Vec<RunMount>,
    /// `--network=default|none|host`.
    pub network: Option<String>,
    /// `--security=insecure|sandbox`.
    pub security: Option<String>,
}

/// `RUN --mount=type=...,k=v,...`. Values unexpanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    pub kind: MountKind,
    pub target: Option<String>,
    /// `source`/`src`: a path in the context or in `from`.
    pub source: Option<String>,
    /// `from`: a stage name or an image, for bind and cache mounts.
    pub from: Option<String>,
    /// Cache and secret id (a secret's default id is its target's file name).
    pub id: Option<String>,
    /// `sharing=shared|private|locked` for cache mounts.
    pub sharing: Option<String>,
    /// `ro`/`readonly` (or `rw`/`readwrite`=false). Bind mounts default to read-only.
    pub readonly: Option<bool>,
    pub required: Option<bool>,
    pub mode: Option<String>,
    pub uid: Option<String>,
    pub gid: Option<String>,
    /// `size=` for tmpfs.
    pub size: Option<String>,
    /// `env=` for secrets.
    pub env: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

/// Flags COPY and ADD share.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyCommon {
    /// Sources as written (context paths, globs, URLs for ADD); unexpanded.
    pub sources: Vec<String>,
    /// Heredocs used as sources (`COPY <<EOF /file`), in order.
    pub heredocs: Vec<Heredoc>,
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    /// `--exclude=pattern`, repeatable.
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copy {
    pub common: CopyCommon,
    /// `--from=<stage|image|index>`.
    pub from: Option<String>,
    /// `--parents`: keep the sources' parent directories under dest.
    pub parents: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Add {
    pub common: CopyCommon,
    /// `--checksum=sha256:...` for URL sources.
    pub checksum: Option<String>,
    /// `--keep-git-dir`.
    pub keep_git_dir: bool,
    /// `--unpack[=bool]`: whether a local or remote archive source is extracted; `None` is
    /// Docker's default (local archives are, URLs are not).
    pub unpack: Option<bool>,
}

/// `KEY=value` of ENV and LABEL; both sides unexpanded, quotes intact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// `ARG NAME` or `ARG NAME=default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    /// Unexpanded default.
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable the base image's check.
    None,
    Check {
        /// `CMD ...`: shell form is run as `CMD-SHELL`, exec as `CMD`.
        test: Command,
        /// Durations as written (`30s`, `1m30s`); the executor parses them.
        interval: Option<String>,
        timeout: Option<String>,
        start_period: Option<String>,
        start_interval: Option<String>,
        retries: Option<String>,
    },
}
