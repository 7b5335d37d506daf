//! The error type of the image and layer stores.

use std::path::PathBuf;

/// Errors from the image and layer stores.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("No such image: {reference}")]
    NotFound { reference: String },
    #[error("{reference}: image id prefix is ambiguous, use more characters")]
    Ambiguous { reference: String },
    #[error("conflict: unable to remove repository reference \"{reference}\" (must force) - container {container} is using its referenced image {image}")]
    InUse {
        reference: String,
        container: String,
        image: String,
    },
    #[error("conflict: unable to delete {image} (must be forced) - image is referenced in multiple repositories")]
    MultipleRefs { image: String },
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),
    #[error("invalid archive: {reason}")]
    InvalidArchive { reason: String },
    #[error("unsafe path in archive: {path:?} ({reason})")]
    UnsafePath { path: String, reason: &'static str },
    #[error("invalid change {change:?}: {reason}")]
    InvalidChange { change: String, reason: String },
    #[error("{what} does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("no image for platform {wanted} in the image index (it has: {available}); load one of those platforms or pick another image")]
    NoMatchingPlatform { wanted: String, available: String },
    #[error("archive entry {path:?} claims {size} bytes, more than the {limit} bytes allowed (free space on the target); refusing to extract it")]
    TooLarge { path: String, size: u64, limit: u64 },
    /// `docker cp` with `noOverwriteDirNonDir` (moby's message: the path, then the directory
    /// extracted into).
    #[error("cannot overwrite directory {path:?} with non-directory {dest:?}")]
    OverwriteDirWithNonDir { path: String, dest: String },
    #[error("cannot overwrite non-directory {path:?} with directory {dest:?}")]
    OverwriteNonDirWithDir { path: String, dest: String },
    #[error("no such layer: {0}")]
    NoSuchLayer(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mount of {target} failed: {source}")]
    Mount {
        target: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("corrupt metadata in {path}: {source}")]
    Metadata {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    /// The request named something that does not exist (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. } | Error::NoSuchLayer(_))
    }

    /// The request conflicts with the store's state (HTTP 409).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::InUse { .. } | Error::MultipleRefs { .. })
    }

    /// The request itself is malformed (HTTP 400).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Error::Reference(_)
                | Error::InvalidArchive { .. }
                | Error::DigestMismatch { .. }
                | Error::NoMatchingPlatform { .. }
                | Error::TooLarge { .. }
                | Error::UnsafePath { .. }
                | Error::InvalidChange { .. }
                | Error::Ambiguous { .. }
        )
    }
}
