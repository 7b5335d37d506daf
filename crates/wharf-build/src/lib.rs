//! Dockerfile builds.
//!
//! - [`ast`]: what a parsed Dockerfile is (stages, instructions with their flags and source
//!   lines). Words are kept as written (quotes and `$` references intact); they are expanded
//!   at build time, when the stage's ARG and ENV values are known.
//! - [`parse`]: text to [`ast::Dockerfile`], errors naming the file's line.
//! - [`expand`]: BuildKit's shell-word expansion (`${v:-w}` and the rest).
//! - [`dockerignore`]: which context files a build sees (Docker's pattern rules, `!` exceptions).
//! - [`platform`]: `--platform` values and the automatic `BUILD*`/`TARGET*` ARGs.
//! - [`backend`]: what the executor needs from the engine (images, RUN, new layers).
//! - [`executor`]: stages (only those the target needs, independent ones at once), steps,
//!   the classic builder's progress stream ([`output`]).
//! - [`cache`]: the cache index (step key to image); [`copy`]: COPY/ADD sources and layers;
//!   [`tree`]: the trees they read (the context kept as its tar, indexed; host directories);
//!   [`synced`]: contexts kept between builds, so that `wharf build` sends only what changed.

pub mod ast;
pub mod backend;
pub mod cache;
pub mod copy;
pub mod dockerignore;
pub mod executor;
pub mod expand;
pub mod output;
pub mod parse;
pub mod platform;
pub mod synced;
pub mod tree;

pub use executor::{build, BuildError, BuildOptions};
pub use parse::{parse, ParseError, ParseErrorKind};
