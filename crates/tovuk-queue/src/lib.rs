//! Durable message queues for deployed apps: an HTTP+JSON API the app produces to and pulls
//! from, and push delivery of batches to a consumer app.
//!
//! The platform decides who may use a queue and what it costs through the [`Gate`] it passes
//! to [`Queues::serve`], and reaches consumer apps through the [`Deliver`] it passes to
//! [`Queues::run_push`]; this crate owns storage, leases, retries and dead letters.
//!
//! # Storage
//!
//! Behind the [`Backend`] trait. The embedded backend ([`SqliteBackend`]) is one SQLite file
//! in WAL mode with `synchronous = FULL`: a send is answered only after the transaction that
//! holds it committed (the WAL fsynced). One writer applies every operation waiting at that
//! moment in one transaction (group commit). A backend on a shared database (Postgres, with
//! `FOR UPDATE SKIP LOCKED` for leases) implements the same trait: the HTTP contract does not
//! change.
//!
//! # Delivery
//!
//! At least once. A message is leased to one consumer at a time for a visibility timeout;
//! an ack deletes it, a retry (or a lease that expires) makes it deliverable again and each
//! delivery counts one attempt. A message whose attempts reach `1 + max_retries` without an
//! ack is dead-lettered: moved to the dead-letter queue when one is configured, else kept
//! in its queue as dead (never delivered again) until redriven or purged.

mod backend;
mod engine;
mod http;
mod lease;
mod push;
mod sqlite;

pub use backend::{Backend, Counts, Leased, NewMessage, Policy, Settle, Settled, Settlement, Stored};
pub use engine::{Pulled, PushConfig, QueueConfig, QueueStats, Queues, SendOutcome};
pub use lease::LeaseId;
pub use push::{Deliver, Delivery, MAX_ANSWER_BYTES};
pub use sqlite::SqliteBackend;

use std::time::Duration;

/// The most a message's body may take, as JSON text (a string body counts its quotes).
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// The most messages one send, pull or ack names.
pub const MAX_BATCH: usize = 100;
/// The longest a send may delay a message, or a retry put it off.
pub const MAX_DELAY_SECONDS: u64 = 12 * 3600;
/// The longest (and, by default, how long) a pull leases its messages.
pub const MAX_VISIBILITY_SECONDS: u64 = 12 * 3600;
pub const DEFAULT_VISIBILITY_SECONDS: u64 = 30;
/// How many messages a pull asks for when it does not say.
pub const DEFAULT_PULL: usize = 10;
/// The longest a pull waits for a message when the queue is empty.
pub const MAX_WAIT_SECONDS: u64 = 20;
/// A request body larger than this is refused before it is read: a full batch of full messages fits.
pub const MAX_REQUEST_BYTES: usize = MAX_BATCH * (MAX_MESSAGE_BYTES + 1024);

/// The first retry of a failed push delivery waits this long; each further one twice as long.
pub const RETRY_BASE: Duration = Duration::from_secs(1);
/// The longest a failed push delivery waits before its next attempt.
pub const RETRY_MAX: Duration = Duration::from_secs(300);

/// A failure of the queue storage.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the queue store failed: {0}")]
    Storage(String),
    #[error("the queue store's writer has stopped")]
    Closed,
}

impl From<sqlx::Error> for QueueError {
    fn from(error: sqlx::Error) -> Self {
        QueueError::Storage(error.to_string())
    }
}

/// Decided by the platform, implemented outside this crate.
pub trait Gate: Send + Sync + 'static {
    /// The app owning queue `id`, when `token` opens it from `scope` (the app whose network
    /// the connection came from; None: the host's loopback, where the token alone decides).
    fn open(&self, scope: Option<&str>, id: &str, token: &str) -> Option<String>;
    /// Admits and counts `n` messages sent to queue `id` of `app`, or refuses with a message
    /// naming the cap and the command that raises it.
    fn admit_sends(&self, app: &str, id: &str, n: u64) -> Result<(), String>;
}

/// Milliseconds since the Unix epoch, the time every row is stamped with.
pub(crate) fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// `ms` as RFC 3339 UTC, as every time on the wire is written.
pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The wait before the attempt after `attempt` failed: 1 s, 2 s, 4 s, ... at most 5 minutes.
pub fn backoff(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    RETRY_BASE.saturating_mul(1u32 << doublings).min(RETRY_MAX)
}

/// A message's id on the wire.
pub(crate) fn message_id(seq: i64) -> String {
    format!("msg_{seq}")
}
