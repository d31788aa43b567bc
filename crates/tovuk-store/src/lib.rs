//! The state store: the only code that opens the control-plane database.
//!
//! SQLite in WAL mode with foreign keys on. The schema is versioned with
//! `PRAGMA user_version` and stamped with an `application_id`, so a store written by a
//! newer binary, a foreign SQLite file or a corrupted file is refused before anything
//! is written to it. Types here are domain records, not wire shapes.

mod app_logs;
mod apps;
mod builds;
mod config;
mod cron;
mod deploys;
mod error;
mod migrations;
mod open;
mod releases;
mod resources;
mod retention;
mod time;
mod tokens;
mod usage;

pub use app_logs::AppLogLine;
pub use apps::AppRecord;
pub use builds::{LogLine, StoredLogLine};
pub use config::{
    ChangeError, ChangeOutcome, ChangeRequest, ConfigChange, ConfigVar, RollbackOutcome, SealedValue, Sealer, TokenRef,
};
pub use cron::{CRON_HISTORY_KEPT, CronBegun, CronRunRecord, NewCronRun};
pub use deploys::{
    ConfigNeed, DeclaredResource, DeployRecord, Failure, NewSource, OperationRecord, PhaseRecord, Recorded,
    SERVICE_BINDING, TransitionError, TransitionExtras,
};
pub use error::{Fault, StoreError};
pub use migrations::SCHEMA_VERSION;
pub use releases::{InstanceRecord, RouteRow, WentLive};
pub use resources::{ADDON_CREATOR, AddonAttached, AddonDetached, CredentialSealer, EMBEDDED_BACKEND, ResourceRecord};
pub use retention::DEFAULT_RELEASES_KEPT;
pub use tokens::{TokenRecord, TokenScope};
pub use tovuk_types::values::{DeployKind, SourceKind};
pub use usage::{CapRecord, MeterGrant, UsageEntry, UsageEvent, UsageTotal};

use sqlx::SqlitePool;
use std::time::{Duration, Instant};

/// A handle on the state store. Cheap to clone: it wraps a connection pool.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    /// How many of each app's deploys that served stay rollback targets (see `retention`).
    releases_kept: i64,
}

impl Store {
    /// Whether the store answers a query, and how fast.
    pub async fn ping(&self) -> Result<Duration, StoreError> {
        let started = Instant::now();
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(started.elapsed())
    }

    /// Writes a consistent copy of the whole store to `path` (which must not exist), while
    /// it keeps serving: SQLite's `VACUUM INTO` reads one snapshot.
    pub async fn backup_into(&self, path: &std::path::Path) -> Result<(), StoreError> {
        let target = path
            .to_str()
            .ok_or_else(|| StoreError::Open { path: path.to_owned(), detail: "the backup path is not UTF-8".into() })?;
        sqlx::query("VACUUM INTO ?").bind(target).execute(&self.pool).await?;
        Ok(())
    }

    /// Rewrites the probe row: proves the store takes writes right now.
    pub async fn probe_write(&self) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO store_probe (id, at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at")
            .bind(crate::time::now_rfc3339())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Copies the WAL into the database file and truncates it. SQLite's automatic
    /// checkpoints are off because their errors are not reported; this one's are.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&self.pool).await?;
        // (busy, log frames, checkpointed frames): busy means a reader held it back; next time.
        let busy: i64 = sqlx::Row::try_get(&row, 0)?;
        if busy != 0 {
            tracing::debug!("checkpoint held back by a reader; next time");
        }
        Ok(())
    }

    /// Closes the pool, checkpointing the WAL, so a clean shutdown leaves one file.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Fills `buf` from the OS random source. Ids and token secrets must not be guessable.
fn random_bytes<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|error| StoreError::Random(error.to_string()))?;
    Ok(buf)
}
