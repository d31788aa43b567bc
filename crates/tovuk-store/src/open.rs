//! Opening the store: inspect read-only first, then migrate.
//!
//! Nothing is written to an existing file until it has been shown to be a tovuk store
//! of a version this binary knows; setting WAL mode alone would rewrite a foreign file.

use crate::migrations::{APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION};
use crate::{Store, StoreError};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Row};
use std::io::Read;
use std::path::Path;
use std::time::Duration;

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// What an existing file turned out to be.
struct Inspection {
    user_version: i64,
}

impl Store {
    /// Checks the store at `path` as a start does (a tovuk store of a version this binary
    /// knows, and SQLite's full integrity check), without writing to it.
    pub async fn check(path: &Path) -> Result<(), StoreError> {
        let meta = std::fs::metadata(path)
            .map_err(|error| StoreError::Open { path: path.to_owned(), detail: error.to_string() })?;
        inspect(path, meta.len()).await.map(|_| ())
    }

    /// Opens (creating when absent) the store at `path` and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let existing = match std::fs::metadata(path) {
            Ok(meta) => Some(inspect(path, meta.len()).await?),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => {
                return Err(StoreError::Open { path: path.to_owned(), detail: error.to_string() });
            }
        };
        let current_version = existing.map_or(0, |inspection| inspection.user_version);

        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // A commit is acknowledged only once it is on the disk, WAL fsynced: a token, a
            // revocation, a secret or a deploy transition survives power loss.
            .synchronous(SqliteSynchronous::Full)
            // Checkpoints run from `Store::checkpoint`, whose errors are seen; SQLite's
            // automatic ones would swallow theirs.
            .pragma("wal_autocheckpoint", "0")
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // A connection whose COMMIT failed (a full disk) can be left with sqlx believing
            // it is still in a transaction, refusing every later BEGIN. Such a connection is
            // closed instead of going back to the pool, so writes work again by themselves.
            .after_release(|connection, _| {
                Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(connection)) })
            })
            .connect_with(options)
            .await
            .map_err(|error| StoreError::Open { path: path.to_owned(), detail: error.to_string() })?;
        let store = Store { pool, releases_kept: crate::retention::DEFAULT_RELEASES_KEPT as i64 };
        store.migrate(current_version).await?;
        Ok(store)
    }

    async fn migrate(&self, from_version: i64) -> Result<(), StoreError> {
        for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > from_version) {
            let mut tx = self.pool.begin().await?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(*sql)).execute(&mut *tx).await?;
            // PRAGMA takes no bound parameters; both values are our own integers.
            let stamp = format!("PRAGMA user_version = {version}; PRAGMA application_id = {APPLICATION_ID};");
            sqlx::raw_sql(sqlx::AssertSqlSafe(stamp)).execute(&mut *tx).await?;
            tx.commit().await?;
            tracing::info!(version, "state store migrated");
        }
        Ok(())
    }
}

/// Reads an existing file without writing to it and decides whether it may be opened.
async fn inspect(path: &Path, len: u64) -> Result<Inspection, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt { path: path.to_owned(), detail };
    // An empty file is a new store (its pages may still sit in the WAL); anything else
    // must start with SQLite's magic before SQLite itself is let near it.
    if len > 0 {
        let mut header = [0u8; 16];
        let starts_with_magic = std::fs::File::open(path)
            .and_then(|mut file| file.read_exact(&mut header))
            .map(|()| &header == SQLITE_MAGIC);
        match starts_with_magic {
            Ok(true) => {}
            Ok(false) => return Err(not_sqlite(path)),
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Err(not_sqlite(path)),
            Err(error) => return Err(corrupt(error.to_string())),
        }
    }

    let options = SqliteConnectOptions::new().filename(path).read_only(true).foreign_keys(false);
    let mut conn = options.connect().await.map_err(|error| corrupt(error.to_string()))?;
    let result = async {
        let application_id: i64 = sqlx::query("PRAGMA application_id").fetch_one(&mut conn).await?.try_get(0)?;
        let user_version: i64 = sqlx::query("PRAGMA user_version").fetch_one(&mut conn).await?.try_get(0)?;
        let tables: i64 = sqlx::query("SELECT count(*) FROM sqlite_master").fetch_one(&mut conn).await?.try_get(0)?;
        // The full check: unlike quick_check it also proves every index (a UNIQUE one on
        // app names or token hashes) matches its table.
        let problems: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check(10)").fetch_all(&mut conn).await?;
        let integrity = problems.join("; ");
        Ok::<_, sqlx::Error>((application_id, user_version, tables, integrity))
    }
    .await;
    let _ = conn.close().await;
    let (application_id, user_version, tables, integrity) = result.map_err(|error| corrupt(error.to_string()))?;

    if integrity != "ok" {
        return Err(corrupt(integrity));
    }
    if application_id != APPLICATION_ID && (application_id != 0 || tables > 0) {
        return Err(StoreError::Foreign {
            path: path.to_owned(),
            reason: format!(
                "it is a SQLite database of another program (application_id {application_id}, {tables} schema objects)"
            ),
        });
    }
    if user_version > SCHEMA_VERSION {
        return Err(StoreError::TooNew { path: path.to_owned(), found: user_version, supported: SCHEMA_VERSION });
    }
    Ok(Inspection { user_version })
}

fn not_sqlite(path: &Path) -> StoreError {
    StoreError::Foreign { path: path.to_owned(), reason: "it is not a SQLite database".into() }
}
