//! Queues as the operator sees them: `tovuk queue list|show|peek|purge|redrive`.

use serde::{Deserialize, Serialize};
use tovuk_types::values::ResourceStatus;

/// `GET /v1/apps/{app}/queues/{binding}`: `tovuk queue show`; and each queue of `tovuk queue list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueInfo {
    pub app: String,
    pub binding: String,
    /// `res_…`.
    pub id: String,
    #[serde(with = "crate::text")]
    pub status: ResourceStatus,
    /// Messages waiting to be delivered: `ready` plus `delayed`.
    pub depth: u64,
    /// Deliverable now.
    pub ready: u64,
    /// Deliverable later: a send's delay, or a retry's backoff.
    pub delayed: u64,
    /// Leased to a consumer, the lease not expired.
    pub in_flight: u64,
    /// Dead-lettered from this queue and still held: in its dead-letter queue, or here as dead.
    pub dead_letter: u64,
    /// Seconds since the oldest message not dead-lettered was sent; `null` when there is none.
    pub oldest_message_age_seconds: Option<u64>,
    /// The bodies the queue holds.
    pub size_bytes: u64,
    /// How it is consumed; `null` when no release of the app declaring it runs here now.
    pub delivery: Option<QueueDelivery>,
    /// The push consumer, for a push queue.
    pub consumer: Option<QueueConsumer>,
    /// Deliveries after the first before a message is dead-lettered.
    pub max_retries: Option<u32>,
    /// The binding of the queue its dead letters move to; `null`: they stay here as dead.
    pub dead_letter_queue: Option<String>,
}

/// How a queue's messages reach their consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueDelivery {
    /// The platform POSTs batches to `consumer`.
    Push,
    /// The app pulls them (`POST $B_URL/pull`).
    Pull,
}

impl QueueDelivery {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueDelivery::Push => "push",
            QueueDelivery::Pull => "pull",
        }
    }
}

/// Where a push queue's batches go.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueConsumer {
    pub app: String,
    pub path: String,
    pub batch_size: u32,
    pub max_wait_ms: u64,
    pub delivery_timeout_ms: u64,
    /// `ready`, or `waiting: ...` naming why deliveries wait and the command that fixes it.
    pub readiness: String,
}

/// `GET /v1/apps/{app}/queues`: `tovuk queue list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueList {
    pub app: String,
    pub queues: Vec<QueueInfo>,
}

/// A stored message, as `tovuk queue peek` shows it (peeking leases nothing).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueMessage {
    /// `msg_…`.
    pub id: String,
    /// The binding of the queue that holds it now (a dead letter may be in the dead-letter queue).
    pub queue: String,
    /// Deliveries so far.
    pub attempts: u32,
    pub body: serde_json::Value,
    pub enqueued_at: String,
    /// When it is (or was) deliverable; for a message in flight, when its lease ends.
    pub visible_at: String,
    pub in_flight: bool,
    pub last_error: Option<String>,
}

/// `GET /v1/apps/{app}/queues/{binding}/messages?dead_letter=&limit=`: `tovuk queue peek`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueuePeek {
    pub app: String,
    pub binding: String,
    pub dead_letter: bool,
    pub messages: Vec<QueueMessage>,
}

/// `POST /v1/apps/{app}/queues/{binding}/purge`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueuePurgeRequest {
    /// Purge the queue's dead letters instead of its messages.
    #[serde(default)]
    pub dead_letter: bool,
    /// The binding again, to confirm.
    pub confirm: String,
}

/// What `tovuk queue purge` deleted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueuePurged {
    pub app: String,
    pub binding: String,
    pub dead_letter: bool,
    pub purged: u64,
}

/// What `tovuk queue redrive` moved back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueRedriven {
    pub app: String,
    pub binding: String,
    /// Dead letters moved back into the queue, their attempts reset.
    pub redriven: u64,
}
