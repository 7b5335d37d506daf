//! What can be wrong with a Dockerfile, in Docker's words where Docker has them.

use crate::expand::ExpandError;

/// A Dockerfile that does not parse: the file, the line and what is wrong
/// (`Dockerfile:7: unknown instruction: RUNN`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {kind}")]
pub struct ParseError {
    /// The Dockerfile's name as the user gave it (`Dockerfile` unless [`ParseError::in_file`]).
    pub file: String,
    /// 1-based line of the instruction (or directive) at fault.
    pub line: usize,
    pub kind: ParseErrorKind,
}

impl ParseError {
    pub(crate) fn new(line: usize, kind: ParseErrorKind) -> Self {
        ParseError {
            file: "Dockerfile".into(),
            line,
            kind,
        }
    }

    /// Names the file in the message (`-f build/Dockerfile.dev`).
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = file.into();
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("unknown instruction: {0}")]
    UnknownInstruction(String),
    #[error("file with no instructions")]
    NoInstructions,
    #[error("no build stage in current context")]
    NoBuildStage,
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    #[error("invalid escape token '{0}' does not match ` or \\")]
    InvalidEscapeToken(String),
    #[error("dockerfile line greater than max allowed size of 65535")]
    LineTooLong,
    #[error("unterminated heredoc")]
    UnterminatedHeredoc,
    #[error("{0}")]
    HeredocName(ExpandError),
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray,
    #[error("{0} requires at least one argument")]
    AtLeastOneArgument(&'static str),
    #[error("{0} requires exactly one argument")]
    ExactlyOneArgument(&'static str),
    #[error("{0} requires at least two arguments, but only one was provided. Destination could not be determined")]
    NoDestination(&'static str),
    #[error("{0} cannot accept a heredoc as a destination")]
    HeredocDestination(&'static str),
    #[error("{0} names can not be blank")]
    BlankName(&'static str),
    #[error("{0} must have two arguments")]
    TwoArguments(&'static str),
    #[error("Syntax error - can't find = in {0:?}. Must be of the form: name=value")]
    MissingEquals(String),
    #[error("FROM requires either one or three arguments")]
    FromArguments,
    #[error(
        "invalid name for build stage: {0:?}, name can't start with a number or contain symbols"
    )]
    InvalidStageName(String),
    #[error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildChain,
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    OnbuildTrigger(String),
    #[error("{0} requires the arguments to be in JSON form")]
    NotJson(&'static str),
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArguments,
    #[error("Missing command after HEALTHCHECK CMD")]
    HealthcheckMissingCommand,
    #[error("Unknown type {0:?} in HEALTHCHECK (try CMD)")]
    HealthcheckType(String),
    /// Go's `time.ParseDuration` message (`time: invalid duration "x"`).
    #[error("{0}")]
    Duration(String),
    #[error("Interval {0:?} cannot be less than 1ms")]
    IntervalTooShort(&'static str),
    #[error("strconv.ParseInt: parsing {value:?}: {reason}")]
    Retries { value: String, reason: &'static str },
    #[error("--retries cannot be negative ({0})")]
    NegativeRetries(i64),
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    #[error("unknown flag: {0}")]
    UnknownFlag(String),
    #[error("duplicate flag specified: {0}")]
    DuplicateFlag(String),
    #[error("missing a value on flag: {0}")]
    MissingFlagValue(String),
    #[error("expecting boolean value for flag {flag}, not: {value}")]
    NotBoolean { flag: String, value: String },
    #[error("invalid network mode {0:?}")]
    InvalidNetwork(String),
    #[error("security {0:?} is not valid")]
    InvalidSecurity(String),
    #[error("{0}")]
    Mount(#[from] super::mount::MountError),
}
