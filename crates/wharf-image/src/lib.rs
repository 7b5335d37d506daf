//! wharf-image: the content store, image metadata, references, the layer store with overlay
//! snapshots, safe tar application, and import.
//!
//! Everything here is blocking; the daemon calls it from `spawn_blocking`.

pub mod apply;
pub mod archive_io;
pub mod content;
pub mod digest;
pub mod error;
pub mod idmap;
pub mod layers;
pub mod load;
pub mod oci_save;
pub mod platform;
pub mod reference;
pub mod store;

pub use error::Error;
pub use idmap::{IdMap, IdRange};
pub use layers::{Change, LayerInfo, LayerStore};
pub use load::LoadOptions;
pub use platform::Platform;
pub use store::{DeleteResponseItem, Image, ImageStore, ImportOptions};
