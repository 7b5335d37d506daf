//! Option values: docker's parsers for sizes, durations, ports (`parse`), and the translation
//! of `run`/`create` flags into a create request (`run`).

pub mod parse;
pub mod run;
