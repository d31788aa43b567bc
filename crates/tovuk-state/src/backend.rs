//! What a state store does, whatever holds it: the embedded SQLite file, or (on several
//! machines) a shared database such as Postgres implementing the same trait. Every call names
//! its resource and object; a backend keeps no per-object state of its own, because the
//! one-writer rule is enforced above it (see `lines.rs`).

use crate::StateError;

/// One key and its value, as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
}

/// One operation of a transaction. Values are JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxOp {
    Get {
        key: String,
    },
    Put {
        key: String,
        value: String,
    },
    Delete {
        key: String,
    },
    /// Holds when the key's value equals `value` as JSON; with no `value`, when the key has none.
    Check {
        key: String,
        value: Option<String>,
    },
}

/// What one operation of a transaction gave, in the order of the operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxResult {
    Get { key: String, value: Option<String> },
    Put { key: String },
    Delete { deleted: bool },
    Check,
}

/// How a transaction ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transacted {
    /// Committed (durably), one result per operation.
    Done(Vec<TxResult>),
    /// A check did not hold: rolled back, nothing written.
    CheckFailed { key: String, expected: Option<String>, found: Option<String> },
}

/// What one resource's objects hold, for the operator (`tovuk service show`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateStats {
    /// Objects holding at least one key.
    pub objects: u64,
    pub keys: u64,
    /// Keys plus values (JSON text), in bytes.
    pub bytes: u64,
}

/// A durable state store. Every write is durable before its call returns.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The value (JSON text) of `key` of `object`, if any.
    async fn get(&self, resource: &str, object: &str, key: &str) -> Result<Option<String>, StateError>;
    /// Up to `limit` entries of `object` in key order: keys starting with `prefix`, after
    /// `after` when given.
    async fn list(
        &self,
        resource: &str,
        object: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Entry>, StateError>;
    /// Runs `ops` in order in one transaction: all of them, or (a check failing) none.
    async fn transact(&self, resource: &str, object: &str, ops: Vec<TxOp>) -> Result<Transacted, StateError>;
    async fn stats(&self, resource: &str) -> Result<StateStats, StateError>;
    /// Deletes every object of `resource`.
    async fn delete_resource(&self, resource: &str) -> Result<(), StateError>;
    /// Lets go of the store (after the last operation); later operations fail.
    async fn close(&self);
}
