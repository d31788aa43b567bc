//! The State resources served on this machine: the per-object lines and the store behind
//! them, and storage as an object's running call uses it (open only to that call, metered
//! through the [`Gate`] before the work is done).

use crate::backend::{Backend, Entry, StateStats, Transacted, TxOp};
use crate::lines::Lines;
use crate::{Gate, MAX_WAITING, Opened, SqliteBackend, StateError};
use std::path::Path;
use std::sync::Arc;

/// Every State resource served on this machine.
pub struct States {
    backend: Arc<dyn Backend>,
    pub(crate) lines: Arc<Lines>,
}

impl std::fmt::Debug for States {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("States").finish_non_exhaustive()
    }
}

/// A storage operation of an object's running call. Values are JSON text.
#[derive(Debug, Clone)]
pub(crate) enum StorageOp {
    Get {
        key: String,
    },
    List {
        prefix: String,
        after: Option<String>,
        limit: usize,
    },
    /// Single puts and deletes are transactions of one operation.
    Transact(Vec<TxOp>),
}

/// What a storage operation gave.
#[derive(Debug)]
pub(crate) enum StorageDone {
    Value(Option<String>),
    /// Entries in key order, and the key to list after for more (None: there is no more).
    Listed {
        entries: Vec<Entry>,
        next: Option<String>,
    },
    Transacted(Transacted),
}

/// Why a storage operation was not done.
#[derive(Debug)]
pub(crate) enum StorageRefused {
    /// The call named is not the one running on the object now.
    NotInCall,
    /// The gate refused, with its message.
    Capped(String),
    Failed(StateError),
}

impl From<StateError> for StorageRefused {
    fn from(error: StateError) -> Self {
        StorageRefused::Failed(error)
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl States {
    /// The store in SQLite file `file` (WAL, `synchronous = FULL`), made when missing.
    pub async fn open(file: &Path) -> Result<Arc<States>, StateError> {
        Ok(States::with_backend(Arc::new(SqliteBackend::open(file).await?)))
    }

    /// The store in `backend`.
    pub fn with_backend(backend: Arc<dyn Backend>) -> Arc<States> {
        Arc::new(States { backend, lines: Lines::new(MAX_WAITING) })
    }

    /// What resource `resource_id`'s objects hold (`tovuk service show`).
    pub async fn stats(&self, resource_id: &str) -> Result<StateStats, StateError> {
        self.backend.stats(resource_id).await
    }

    /// Deletes every object of resource `resource_id`.
    pub async fn delete_resource(&self, resource_id: &str) -> Result<(), StateError> {
        self.backend.delete_resource(resource_id).await
    }

    /// Lets go of the store, once serving has stopped; later operations fail.
    pub async fn close(&self) {
        self.backend.close().await;
    }

    /// Runs `op` on `object` for call `call`, which must be the call running on it now: the
    /// call cannot end (and the next one start) until the operation has finished.
    ///
    /// Metering, before the work: a get is 1 read; a transaction is 1 read per get and check
    /// and 1 write per put and delete. A list is admitted 1 read up front and 1 more per
    /// further entry it returns (entries a refusal withholds are not returned).
    pub(crate) async fn storage(
        &self,
        gate: &dyn Gate,
        opened: &Opened,
        object: &str,
        call: &str,
        op: StorageOp,
    ) -> Result<StorageDone, StorageRefused> {
        let resource = opened.resource_id.as_str();
        let hold = self.lines.in_call(resource, object, call).await.ok_or(StorageRefused::NotInCall)?;
        let admit = |reads: usize, writes: usize| {
            gate.admit(&opened.owner, resource, count(reads), count(writes)).map_err(StorageRefused::Capped)
        };
        let done = match op {
            StorageOp::Get { key } => {
                admit(1, 0)?;
                StorageDone::Value(self.backend.get(resource, object, &key).await?)
            }
            StorageOp::List { prefix, after, limit } => {
                admit(1, 0)?;
                // One more than asked says whether there is more.
                let mut entries = self.backend.list(resource, object, &prefix, after.as_deref(), limit + 1).await?;
                let more = entries.len() > limit;
                entries.truncate(limit);
                if entries.len() > 1 {
                    admit(entries.len() - 1, 0)?;
                }
                let next = if more { entries.last().map(|entry| entry.key.clone()) } else { None };
                StorageDone::Listed { entries, next }
            }
            StorageOp::Transact(ops) => {
                let reads = ops.iter().filter(|op| matches!(op, TxOp::Get { .. } | TxOp::Check { .. })).count();
                admit(reads, ops.len() - reads)?;
                StorageDone::Transacted(self.backend.transact(resource, object, ops).await?)
            }
        };
        drop(hold);
        Ok(done)
    }
}
