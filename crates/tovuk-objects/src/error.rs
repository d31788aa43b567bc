//! Errors of opening and administering the store (S3 errors are `s3s::S3Error`).

use std::path::PathBuf;

/// A failure of [`crate::Objects::open`] or [`crate::Objects::ensure_bucket`].
#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    /// The bucket name is not a valid S3 bucket name (3-63 of `a-z0-9.-`).
    #[error("invalid bucket name `{name}`")]
    InvalidBucketName { name: String },
    /// A file or directory of the store could not be read or written.
    #[error("failed to access `{path}`: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A bucket index could not be opened or written.
    #[error("bucket index `{path}` failed: {source}")]
    Index { path: PathBuf, source: redb::Error },
}
