//! What a queue store does, whatever holds it: the embedded SQLite file, or (on several
//! machines) a shared database. Every call names its queue and the time it acts at, so a
//! backend keeps no clock and no queue state of its own.

use crate::{LeaseId, QueueError};

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The body as JSON text.
    pub body: String,
    /// When it may first be delivered (ms since the epoch).
    pub visible_at: i64,
}

/// A message handed out under a lease.
#[derive(Debug, Clone)]
pub struct Leased {
    pub lease: LeaseId,
    pub body: String,
    pub enqueued_at: i64,
}

/// What becomes of a leased message.
#[derive(Debug, Clone)]
pub enum Settle {
    /// Done with: deleted.
    Ack,
    /// Failed: deliverable again at `visible_at`, or dead-lettered when out of attempts.
    Retry { visible_at: i64, error: String },
}

#[derive(Debug, Clone)]
pub struct Settlement {
    pub lease: LeaseId,
    pub action: Settle,
}

/// What a settlement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Acked,
    Retried,
    /// Out of attempts: moved to the dead-letter queue, or kept as dead.
    DeadLettered,
    /// The lease's visibility timeout passed (or the message was delivered again since).
    Expired,
    /// No message holds this lease: acknowledged already, purged, or never given.
    Unknown,
}

/// What happens to a message out of attempts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Deliveries a message gets before it is dead-lettered (`1 + max_retries`).
    pub max_attempts: u32,
    /// The queue dead letters move to; None keeps them in their own queue as dead.
    pub dead_letter: Option<String>,
}

/// A queue's messages by where they stand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Deliverable now.
    pub ready: u64,
    /// Deliverable later (a delay, or a retry's backoff).
    pub delayed: u64,
    /// Leased, the lease not expired.
    pub in_flight: u64,
    /// Dead-lettered from this queue and still held (here or in its dead-letter queue).
    pub dead_letter: u64,
    /// When the oldest message not dead was sent.
    pub oldest_enqueued_at: Option<i64>,
    /// The bodies the queue holds, in bytes.
    pub bytes: u64,
}

/// A message as it is stored, for the operator.
#[derive(Debug, Clone)]
pub struct Stored {
    pub seq: i64,
    pub queue: String,
    pub attempts: u32,
    pub body: String,
    pub enqueued_at: i64,
    pub visible_at: i64,
    pub in_flight: bool,
    pub last_error: Option<String>,
}

/// A durable queue store. Every write is durable before its call returns.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Stores `messages` in `queue`, in order; their sequence numbers, in the same order.
    async fn enqueue(&self, queue: &str, messages: Vec<NewMessage>, now: i64) -> Result<Vec<i64>, QueueError>;
    /// Leases up to `max` deliverable messages until `until`, each counting an attempt.
    /// Messages whose last lease expired with no attempts left are dead-lettered first.
    /// Also says how many were dead-lettered that way.
    async fn lease(
        &self,
        queue: &str,
        max: usize,
        until: i64,
        now: i64,
        policy: &Policy,
    ) -> Result<(Vec<Leased>, u64), QueueError>;
    /// Acks or retries leased messages, one outcome per settlement in order.
    async fn settle(
        &self,
        queue: &str,
        settlements: Vec<Settlement>,
        now: i64,
        policy: &Policy,
    ) -> Result<Vec<Settled>, QueueError>;
    /// Hands leases back without counting their attempt (the consumer was not reached).
    async fn release(&self, queue: &str, leases: Vec<LeaseId>, now: i64) -> Result<(), QueueError>;
    /// The earliest time a message of `queue` becomes deliverable (a delay, a backoff or a lease ending).
    async fn next_visible(&self, queue: &str) -> Result<Option<i64>, QueueError>;
    async fn counts(&self, queue: &str, now: i64) -> Result<Counts, QueueError>;
    /// The first `limit` messages of `queue` in delivery order, or its dead letters.
    async fn peek(&self, queue: &str, dead_letter: bool, limit: usize, now: i64) -> Result<Vec<Stored>, QueueError>;
    /// Deletes every message of `queue` (in flight too), or its dead letters; how many.
    async fn purge(&self, queue: &str, dead_letter: bool) -> Result<u64, QueueError>;
    /// Moves `queue`'s dead letters back into it, deliverable now with no attempts; how many.
    /// One its dead-letter queue's consumer holds right now stays there.
    async fn redrive(&self, queue: &str, now: i64) -> Result<u64, QueueError>;
}
