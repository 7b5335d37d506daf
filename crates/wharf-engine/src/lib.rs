#![recursion_limit = "256"]
//! wharf-engine: the daemon's core. Containers and their state machine, the shims that run
//! them, events, logs and the image service; `http` binds it all to the Engine API.

pub mod archive;
pub mod blobsources;
pub mod build;
pub mod config;
pub mod container;
pub mod engine;
pub mod events;
pub mod health;
pub mod http;
pub mod local_driver;
pub mod logs;
pub mod mounts;
pub mod names;
pub mod pull;
pub mod push;
pub mod roots;
pub mod seccomp;
pub mod shim;
pub mod spec;
pub mod upload;
pub mod userns;
pub mod volumes;

pub use config::{EngineConfig, LiveConfig};
pub use engine::Engine;
