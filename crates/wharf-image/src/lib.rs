//! wharf-image: the content store, image metadata, references, the layer store with overlay
//! snapshots, safe tar application, and import.
//!
//! Everything here is blocking; the daemon calls it from `spawn_blocking`.

pub mod apply;
pub mod archive_io;
pub mod digest;
pub mod error;
pub mod layers;
pub mod reference;
pub mod store;

pub use error::Error;
pub use layers::{Change, LayerStore};
pub use store::{DeleteResponseItem, Image, ImageStore, ImportOptions};
