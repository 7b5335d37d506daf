//! The errors of loading a compose project: each names the file, the key path and what is wrong.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error(
        "no configuration file provided: not found (looked for {looked} in {dir} and its parents)"
    )]
    NotFound { dir: PathBuf, looked: String },
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: yaml: {source}")]
    Yaml {
        path: PathBuf,
        source: serde_yaml_ng::Error,
    },
    /// A key that is wrong where it is (a bad type, an unknown property, a bad value).
    #[error("{file}: {key}: {message}")]
    Invalid {
        file: String,
        key: String,
        message: String,
    },
    /// A file that breaks the compose specification's JSON schema (compose v2's wording:
    /// the key path, dot-separated, then what is wrong; no path for the top level).
    #[error("validating {file}: {}{message}", if path.is_empty() { String::new() } else { format!("{path} ") })]
    Schema {
        file: String,
        path: String,
        message: String,
    },
    /// `${VAR:?err}` / `${VAR?err}` with VAR unset (or empty for `:?`).
    #[error("{file}: {key}: required variable {var} is missing a value: {message}")]
    Required {
        file: String,
        key: String,
        var: String,
        message: String,
    },
    #[error("{file}: {key}: invalid interpolation format for {value:?}: {message}")]
    Interpolation {
        file: String,
        key: String,
        value: String,
        message: String,
    },
    #[error("{path}:{line}: {message}")]
    EnvFile {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("project name {name:?} must contain only lowercase letters, digits, dashes and underscores, and start with a letter or digit")]
    ProjectName { name: String },
    #[error("service {service:?}: circular extends through {chain}")]
    ExtendsCycle { service: String, chain: String },
    #[error("services: dependency cycle between {0}")]
    DependsCycle(String),
}

pub type Result<T, E = ComposeError> = std::result::Result<T, E>;

/// Shorthand for an `Invalid` error.
pub fn invalid(file: &str, key: &str, message: impl Into<String>) -> ComposeError {
    ComposeError::Invalid {
        file: file.to_string(),
        key: key.to_string(),
        message: message.into(),
    }
}
