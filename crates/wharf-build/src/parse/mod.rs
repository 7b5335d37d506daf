//! Dockerfile text to [`ast::Dockerfile`](crate::ast::Dockerfile), as BuildKit's dockerfile
//! frontend parses it (`frontend/dockerfile/parser` and `instructions`): the same lines,
//! words, flags and heredocs, the same errors.
//!
//! - [`lines`]: directives, comments, continuations, heredoc bodies;
//! - [`words`]: keyword, flags, quoted words, JSON form;
//! - [`flags`]: which flags each instruction takes;
//! - [`mount`]: `RUN --mount` specs;
//! - [`instructions`]: each instruction's arguments, and the stages.

mod duration;
mod error;
mod flags;
mod instructions;
mod lines;
pub mod mount;
mod words;

pub use duration::parse_go_duration;
pub use error::{ParseError, ParseErrorKind};
pub use mount::{parse_mount, MountError};

use crate::ast;

/// Parses a whole Dockerfile. Words stay unexpanded (see [`crate::expand`]).
pub fn parse(text: &str) -> Result<ast::Dockerfile, ParseError> {
    let (directives, nodes) = lines::read(text)?;
    instructions::build(directives, nodes)
}

/// Whether a COPY/ADD source or a RUN word is a heredoc reference (`<<EOF`, `<<-"EOF"`),
/// and which: the executor uses it to tell `RUN <<EOF` scripts from other commands.
pub fn heredoc_word(word: &str) -> Option<ast::Heredoc> {
    lines::parse_heredoc_word(word).ok().flatten()
}
