//! Dockerfile builds.
//!
//! - [`ast`]: what a parsed Dockerfile is (stages, instructions with their flags and source
//!   lines). Words are kept as written (quotes and `$` references intact); they are expanded
//!   at build time, when the stage's ARG and ENV values are known.
//! - [`parse`]: text to [`ast::Dockerfile`], errors naming the file's line.
//! - [`expand`]: BuildKit's shell-word expansion (`${v:-w}` and the rest).
//! - [`dockerignore`]: which context files a build sees (Docker's pattern rules, `!` exceptions).
//! - [`platform`]: `--platform` values and the automatic `BUILD*`/`TARGET*` ARGs.
//! - the build graph, cache index and executor over a backend trait the engine implements.

pub mod ast;
pub mod dockerignore;
pub mod expand;
pub mod parse;
pub mod platform;

pub use parse::{parse, ParseError, ParseErrorKind};
