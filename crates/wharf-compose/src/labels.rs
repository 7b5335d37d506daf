//! The labels compose v2 puts on what it creates, so that a project started by one tool is
//! found by the other.

pub const PROJECT: &str = "com.docker.compose.project";
pub const SERVICE: &str = "com.docker.compose.service";
pub const NUMBER: &str = "com.docker.compose.container-number";
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
pub const ONEOFF: &str = "com.docker.compose.oneoff";
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
pub const NETWORK: &str = "com.docker.compose.network";
pub const VOLUME: &str = "com.docker.compose.volume";
pub const VERSION: &str = "com.docker.compose.version";
pub const IMAGE: &str = "com.docker.compose.image";
/// The random part of a one-off container's name (`run`).
pub const SLUG: &str = "com.docker.compose.slug";
pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";

/// The compose version we say we are in `com.docker.compose.version`.
pub const COMPOSE_VERSION: &str = "2.29.0";

/// The label filter of a project's objects.
pub fn project_filter(project: &str) -> String {
    format!("{PROJECT}={project}")
}
