//! Store errors a caller can act on.

use std::path::PathBuf;

/// What kind of trouble a failed store call was, for what to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Another writer held the store too long: try again in a moment.
    Busy,
    /// The disk is full: writes fail until space is freed, then work again.
    Full,
    /// An I/O error (an fsync or a write failed): what is on disk can no longer be
    /// trusted to match what was acknowledged. Nothing more may be acknowledged.
    Io,
    /// Anything else (a bug, a constraint): the request fails, the store is fine.
    Other,
}

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
    #[error("cannot seal a new resource's credential: {0}")]
    Seal(String),
    #[error("state store query failed: {0}")]
    Query(#[from] sqlx::Error),
}

impl StoreError {
    /// The kind of trouble this is (SQLite's primary result code decides).
    pub fn fault(&self) -> Fault {
        match self {
            StoreError::Query(sqlx::Error::Database(error)) => {
                let code = error.code().and_then(|code| code.parse::<i64>().ok()).unwrap_or(0);
                match code & 0xff {
                    // SQLITE_BUSY, SQLITE_LOCKED
                    5 | 6 => Fault::Busy,
                    // SQLITE_FULL
                    13 => Fault::Full,
                    // SQLITE_IOERR (fsync, write, read ...)
                    10 => Fault::Io,
                    _ => Fault::Other,
                }
            }
            StoreError::Query(sqlx::Error::PoolTimedOut) => Fault::Busy,
            StoreError::Query(sqlx::Error::Io(_)) => Fault::Io,
            _ => Fault::Other,
        }
    }
}
