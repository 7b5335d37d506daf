//! wharf-compose: compose files → Engine API calls, behind `wharf compose`.
//!
//! - [`load`] finds and reads the files (discovery, `-f` merged by [`merge`]'s rules, `.env`
//!   in [`env`], [`interpolate`], `extends`, profiles, `env_file`) into the typed [`model`]
//!   (through [`parse`], whose errors name the file, the key path and what is wrong).
//! - [`engine::Engine`] is the seam to the daemon: the few Engine API calls compose makes, as a
//!   trait that wharf-cli implements over its HTTP client (so it drives wharfd and dockerd) and
//!   that tests fake.
//! - [`up`], [`down`] and [`ops`] plan and make those calls, labelling what they create as
//!   compose v2 does ([`labels`]), so a project started by one tool is seen by the other.
//!
//! YAML goes through `serde_yaml_ng`: a maintained fork of `serde_yaml` (which is
//! unmaintained; its other fork `serde_yml` is unsound, RUSTSEC-2025-0068). We need a
//! `Value` tree that keeps key order and YAML tags (`!reset`, `!override`) to interpolate and
//! merge before typing, and a serializer for `config`; serde_yaml_ng has both with serde_yaml's
//! well-known API. serde-saphyr is deserialize-first with no `Value` tree; serde_norway is
//! another serde_yaml fork with a smaller user base.

pub mod build;
pub mod config;
pub mod convert;
pub mod down;
pub mod engine;
pub mod env;
pub mod error;
pub mod events;
pub mod include;
pub mod interpolate;
pub mod labels;
pub mod load;
pub mod merge;
pub mod model;
pub mod ops;
pub mod parse;
pub mod plan;
pub mod run;
pub mod schema;
pub mod secrets;
pub mod up;
pub mod watch;
mod yaml;

#[cfg(test)]
mod fake;

pub use error::{ComposeError, Result};
pub use load::{load, Options};
pub use model::Project;

/// Where progress and log lines go (the CLI's stderr/stdout; a `Vec` in tests).
pub trait Out {
    fn line(&mut self, s: &str);
}

impl Out for Vec<String> {
    fn line(&mut self, s: &str) {
        self.push(s.to_string());
    }
}
