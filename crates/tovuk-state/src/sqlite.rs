//! The embedded backend: every State resource's objects in one SQLite file (WAL,
//! `synchronous = FULL`).
//!
//! Writes go through a pool of one connection, so write transactions never contend for
//! SQLite's write lock (and never meet `SQLITE_BUSY` upgrading a read); each commit fsyncs the
//! WAL before the caller is answered. Single reads use a small pool of their own: in WAL mode
//! they see every committed write without waiting for the writer.

use crate::backend::{Backend, Entry, StateStats, Transacted, TxOp, TxResult};
use crate::{CALL_TIMEOUT, StateError};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Row, SqliteConnection};
use std::path::Path;
use std::time::Duration;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS state_entries (
    resource_id TEXT NOT NULL,
    object TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,   -- JSON text
    PRIMARY KEY (resource_id, object, key)
) WITHOUT ROWID;
";

/// Every State resource in one SQLite file.
pub struct SqliteBackend {
    writes: SqlitePool,
    reads: SqlitePool,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend").finish_non_exhaustive()
    }
}

fn options(file: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(file)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // Every commit fsyncs the WAL: a write is durable when it is answered.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .disable_statement_logging()
}

impl SqliteBackend {
    /// The store in `file`, made (with its schema) when missing.
    pub async fn open(file: &Path) -> Result<SqliteBackend, StateError> {
        // Writes wait their turn for the one connection: as long as a call may run.
        let writes = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(CALL_TIMEOUT)
            .connect_with(options(file))
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&writes).await?;
        let reads = SqlitePoolOptions::new().max_connections(4).connect_lazy_with(options(file));
        Ok(SqliteBackend { writes, reads })
    }
}

/// The smallest string above every string starting with `prefix`, or None when no string is
/// (an empty prefix, or one of only `char::MAX`). SQLite compares text bytewise, and UTF-8
/// bytes order like code points, so `prefix <= key < end` is exactly "starts with prefix",
/// and the range walks the primary key.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // The next code point, skipping the surrogates (no char is one).
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Whether two JSON texts hold the same value (so `1.0` and `1` differ, key order does not).
fn same_json(a: &str, b: &str) -> bool {
    match (serde_json::from_str::<serde_json::Value>(a), serde_json::from_str::<serde_json::Value>(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

async fn get_in(
    connection: &mut SqliteConnection,
    resource: &str,
    object: &str,
    key: &str,
) -> Result<Option<String>, StateError> {
    let row = sqlx::query("SELECT value FROM state_entries WHERE resource_id = ? AND object = ? AND key = ?")
        .bind(resource)
        .bind(object)
        .bind(key)
        .fetch_optional(&mut *connection)
        .await?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

#[async_trait::async_trait]
impl Backend for SqliteBackend {
    async fn get(&self, resource: &str, object: &str, key: &str) -> Result<Option<String>, StateError> {
        let mut connection = self.reads.acquire().await?;
        get_in(&mut connection, resource, object, key).await
    }

    async fn list(
        &self,
        resource: &str,
        object: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Entry>, StateError> {
        let rows = sqlx::query(
            "SELECT key, value FROM state_entries
             WHERE resource_id = ?1 AND object = ?2 AND key >= ?3 AND (?4 IS NULL OR key < ?4)
               AND (?5 IS NULL OR key > ?5)
             ORDER BY key LIMIT ?6",
        )
        .bind(resource)
        .bind(object)
        .bind(prefix)
        .bind(prefix_end(prefix))
        .bind(after)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.reads)
        .await?;
        rows.iter()
            .map(|row| Ok(Entry { key: row.try_get(0)?, value: row.try_get(1)? }))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StateError::from)
    }

    async fn transact(&self, resource: &str, object: &str, ops: Vec<TxOp>) -> Result<Transacted, StateError> {
        let mut tx = self.writes.begin_with("BEGIN IMMEDIATE").await?;
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            let result = match op {
                TxOp::Get { key } => {
                    let value = get_in(&mut tx, resource, object, &key).await?;
                    TxResult::Get { key, value }
                }
                TxOp::Put { key, value } => {
                    sqlx::query(
                        "INSERT INTO state_entries (resource_id, object, key, value) VALUES (?, ?, ?, ?)
                         ON CONFLICT (resource_id, object, key) DO UPDATE SET value = excluded.value",
                    )
                    .bind(resource)
                    .bind(object)
                    .bind(&key)
                    .bind(value)
                    .execute(&mut *tx)
                    .await?;
                    TxResult::Put { key }
                }
                TxOp::Delete { key } => {
                    let done =
                        sqlx::query("DELETE FROM state_entries WHERE resource_id = ? AND object = ? AND key = ?")
                            .bind(resource)
                            .bind(object)
                            .bind(key)
                            .execute(&mut *tx)
                            .await?;
                    TxResult::Delete { deleted: done.rows_affected() > 0 }
                }
                TxOp::Check { key, value } => {
                    let found = get_in(&mut tx, resource, object, &key).await?;
                    let holds = match (&value, &found) {
                        (None, None) => true,
                        (Some(expected), Some(found)) => same_json(expected, found),
                        _ => false,
                    };
                    if !holds {
                        tx.rollback().await?;
                        return Ok(Transacted::CheckFailed { key, expected: value, found });
                    }
                    TxResult::Check
                }
            };
            results.push(result);
        }
        // Answered only once the commit (and the WAL's fsync) returned.
        tx.commit().await?;
        Ok(Transacted::Done(results))
    }

    async fn stats(&self, resource: &str) -> Result<StateStats, StateError> {
        let row = sqlx::query(
            "SELECT COUNT(DISTINCT object), COUNT(*),
                    COALESCE(SUM(length(CAST(key AS BLOB)) + length(CAST(value AS BLOB))), 0)
             FROM state_entries WHERE resource_id = ?",
        )
        .bind(resource)
        .fetch_one(&self.reads)
        .await?;
        let count =
            |index: usize| -> Result<u64, StateError> { Ok(u64::try_from(row.try_get::<i64, _>(index)?).unwrap_or(0)) };
        Ok(StateStats { objects: count(0)?, keys: count(1)?, bytes: count(2)? })
    }

    async fn delete_resource(&self, resource: &str) -> Result<(), StateError> {
        sqlx::query("DELETE FROM state_entries WHERE resource_id = ?").bind(resource).execute(&self.writes).await?;
        Ok(())
    }

    async fn close(&self) {
        self.writes.close().await;
        self.reads.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_ends_just_above_every_key_it_starts() {
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        let end = prefix_end("user/").unwrap_or_default();
        for inside in ["user/", "user/1", "user/\u{10FFFF}\u{10FFFF}"] {
            assert!(inside >= "user/" && inside < end.as_str(), "{inside}");
        }
        for outside in ["user", "user0", "usex", "v"] {
            assert!(!(outside >= "user/" && outside < end.as_str()), "{outside}");
        }
    }

    #[test]
    fn json_texts_compare_as_values() {
        assert!(same_json(r#"{"a":1,"b":[true]}"#, r#"{ "b": [true], "a": 1 }"#));
        assert!(!same_json("1", "1.0"));
        assert!(!same_json("null", r#""null""#));
    }

    #[tokio::test]
    async fn a_failed_check_writes_nothing_and_the_store_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("state.db");
        let store = SqliteBackend::open(&file).await.expect("open");
        let put = |key: &str, value: &str| TxOp::Put { key: key.into(), value: value.into() };
        let done = store.transact("r", "o", vec![put("a", "1"), put("b", "2")]).await.expect("transact");
        assert_eq!(done, Transacted::Done(vec![TxResult::Put { key: "a".into() }, TxResult::Put { key: "b".into() }]));
        let failed = store
            .transact("r", "o", vec![put("a", "10"), TxOp::Check { key: "b".into(), value: None }])
            .await
            .expect("transact");
        assert_eq!(failed, Transacted::CheckFailed { key: "b".into(), expected: None, found: Some("2".into()) });
        assert_eq!(store.get("r", "o", "a").await.expect("get").as_deref(), Some("1"));
        assert_eq!(store.get("r", "other", "a").await.expect("get"), None, "objects are apart");
        let listed = store.list("r", "o", "", Some("a"), 10).await.expect("list");
        assert_eq!(listed, vec![Entry { key: "b".into(), value: "2".into() }]);
        store.close().await;
        let store = SqliteBackend::open(&file).await.expect("reopen");
        assert_eq!(store.stats("r").await.expect("stats"), StateStats { objects: 1, keys: 2, bytes: 4 });
        store.delete_resource("r").await.expect("delete");
        assert_eq!(store.stats("r").await.expect("stats"), StateStats::default());
        store.close().await;
    }
}
