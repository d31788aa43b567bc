//! State objects for deployed apps (`[[resources]] kind = "state"`): named objects with one
//! writer each, the process analogue of Cloudflare Durable Objects.
//!
//! Callers address an object by name at `$B_URL/<object>/...`; the platform delivers each call
//! to an instance of the owning app with `Tovuk-State-Object` set, one call at a time per
//! object, in arrival order. From inside one of its calls (naming it with the
//! `Tovuk-State-Call` header the call arrived with) the owning app reads and writes the
//! object's durable storage at `$B_URL/_storage/<object>/...`: that is what makes the call in
//! flight the object's one writer. The HTTP contract and its error codes are documented at the
//! top of `http.rs`.
//!
//! The platform decides who may use a resource and what it costs through the [`Gate`] it
//! passes to [`States::serve`], and reaches the owning app's instances through the
//! [`Instances`] it passes alongside; this crate owns the per-object lines and the storage.
//!
//! # Storage
//!
//! Behind the [`Backend`] trait, so a backend on a shared database (Postgres) can replace
//! the embedded one without changing the HTTP contract. The embedded backend
//! ([`SqliteBackend`]) is one SQLite file in WAL mode with `synchronous = FULL`: a write is
//! answered only after the transaction holding it committed (the WAL fsynced).

mod backend;
mod call;
mod http;
mod lines;
mod sqlite;
mod states;

pub use backend::{Backend, Entry, StateStats, Transacted, TxOp, TxResult};
pub use call::{CALL_HEADER, CALLER_HEADER, CallOutcome, CallRequest, Instances, OBJECT_HEADER};
pub use sqlite::SqliteBackend;
pub use states::States;

use std::time::Duration;

/// The longest a call may run, from when it leaves the line; also the longest a call waits in
/// line before it is refused unsent.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The most calls that may wait in one object's line (besides the one running).
pub const MAX_WAITING: usize = 10_000;
/// The largest request body a call may carry.
pub const MAX_CALL_BODY_BYTES: usize = 8 * 1024 * 1024;
/// The longest object name, in bytes.
pub const MAX_OBJECT_BYTES: usize = 256;
/// The longest storage key, in bytes (after percent-decoding).
pub const MAX_KEY_BYTES: usize = 2048;
/// The largest stored value, as compact JSON text.
pub const MAX_VALUE_BYTES: usize = 128 * 1024;
/// The most operations one transaction takes.
pub const MAX_OPS: usize = 128;
/// How many entries a list returns when it does not say, and the most it may ask for.
pub const DEFAULT_LIST: usize = 100;
pub const MAX_LIST: usize = 1000;

/// A failure of the state storage.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("the state store failed: {0}")]
    Storage(String),
}

impl From<sqlx::Error> for StateError {
    fn from(error: sqlx::Error) -> Self {
        StateError::Storage(error.to_string())
    }
}

/// Who a token speaks for, as the platform decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The app whose instances run the objects and own their storage.
    pub owner: String,
    /// The storage namespace: the owner's resource id (a bound caller's own resource id maps
    /// to the owner's).
    pub resource_id: String,
    /// The calling app: the owner itself, or another app bound to the resource.
    pub caller: String,
}

/// Decided by the platform, implemented outside this crate.
pub trait Gate: Send + Sync + 'static {
    /// Who is calling: the token opens resource `id` from `scope` (the app whose network the
    /// connection came from; None: the host's loopback, where the token alone decides).
    fn open(&self, scope: Option<&str>, id: &str, token: &str) -> Option<Opened>;
    /// Admits and counts reads and writes of the storage of resource `id` owned by `app`, or
    /// refuses with a message naming the cap and the command that raises it.
    fn admit(&self, app: &str, id: &str, reads: u64, writes: u64) -> Result<(), String>;
}

/// Whether `name` may name an object: 1 to 256 bytes of `[A-Za-z0-9._~-]`, not starting
/// with `_` or `.` (kept for the platform's own routes, and for file-like names).
pub fn valid_object_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_OBJECT_BYTES
        && !name.starts_with(['_', '.'])
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_follow_the_rule() {
        for good in ["a", "room-1", "user.42", "A_b~c", &"x".repeat(MAX_OBJECT_BYTES)] {
            assert!(valid_object_name(good), "{good}");
        }
        for bad in ["", "_storage", ".hidden", "a/b", "a b", "é", "a%20", &"x".repeat(MAX_OBJECT_BYTES + 1)] {
            assert!(!valid_object_name(bad), "{bad}");
        }
    }
}
