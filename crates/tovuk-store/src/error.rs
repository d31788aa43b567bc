//! Store errors a caller can act on.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("`{path}` is not a tovuk state store: {reason}; it was left as it was")]
    Foreign { path: PathBuf, reason: String },
    #[error(
        "`{path}` is corrupted or unreadable ({detail}); it was left as it was, restore it from a backup or move it aside"
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "the state store `{path}` has schema version {found}, newer than this tovuk supports ({supported}); upgrade tovuk, it was left as it was"
    )]
    TooNew { path: PathBuf, found: i64, supported: i64 },
    #[error("cannot open the state store `{path}`: {detail}")]
    Open { path: PathBuf, detail: String },
    #[error("app `{0}` already exists")]
    AppExists(String),
    #[error("the system random source failed: {0}")]
    Random(String),
    #[error("state store query failed: {0}")]
    Query(#[from] sqlx::Error),
}
