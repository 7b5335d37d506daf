//! wharf-api: the Engine API's shapes, independent of any HTTP server: request bodies as
//! typed structs (tolerant of the zero values clients send), the route table that turns
//! (method, path) into a typed `Route`, Docker's error statuses, and the stream codecs.

pub mod codec;
pub mod error;
pub mod fields;
pub mod mount;
pub mod route;
pub mod types;
pub mod units;

/// The newest API version wharf speaks (what docker 28 asks for).
pub const API_VERSION: &str = "1.50";
/// The oldest API version wharf accepts.
pub const MIN_API_VERSION: &str = "1.24";

pub use error::ApiError;
pub use route::{route, Route};
