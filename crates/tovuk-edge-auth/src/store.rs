//! Which sessions are live. The cookie carries the session's content, sealed; the store only
//! answers "is this session id still live", so logout (or an operator) ends a session at once
//! even though its cookie stays valid until it expires.

use async_trait::async_trait;
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A session as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// 256 random bits, base64url.
    pub sid: String,
    pub app: String,
    pub subject: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// The store failed; sessions can be neither trusted nor made until it answers again.
#[derive(Debug, thiserror::Error)]
#[error("the session store failed: {0}")]
pub struct StoreError(pub String);

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> StoreError {
        StoreError(error.to_string())
    }
}

/// Where live sessions are kept: shared by every node that serves the app, so a logout on one
/// holds on all.
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert(&self, session: &SessionRecord) -> Result<(), StoreError>;
    /// True while the session was inserted, not revoked, and has not expired.
    async fn is_live(&self, sid: &str) -> Result<bool, StoreError>;
    /// Ends the session; revoking an unknown or ended one is not an error.
    async fn revoke(&self, sid: &str) -> Result<(), StoreError>;
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tovuk_sessions (
    sid TEXT PRIMARY KEY,
    app TEXT NOT NULL,
    subject TEXT NOT NULL,
    created_at INTEGER NOT NULL,   -- unix seconds
    expires_at INTEGER NOT NULL    -- unix seconds
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tovuk_sessions_expiry ON tovuk_sessions (expires_at);
";

/// The sessions of every app in one SQLite file (table `tovuk_sessions`).
#[derive(Clone)]
pub struct SqliteSessions {
    pool: SqlitePool,
}

impl std::fmt::Debug for SqliteSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteSessions").finish_non_exhaustive()
    }
}

impl SqliteSessions {
    /// The store in `file`, made (with its table) when missing.
    pub async fn open(file: &Path) -> Result<SqliteSessions, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(file)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // A revocation must survive a crash right after the logout was answered.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .disable_statement_logging();
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        Ok(SqliteSessions { pool })
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or(0)
}

/// SQLite integers are signed; a time past 2^63 s is "never" anyway.
fn as_sql(seconds: u64) -> i64 {
    i64::try_from(seconds).unwrap_or(i64::MAX)
}

#[async_trait]
impl SessionStore for SqliteSessions {
    async fn insert(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let now = as_sql(unix_now());
        // Logins are rare next to requests: sweeping expired rows here keeps the table at the
        // size of the live sessions without a timer of its own.
        sqlx::query("DELETE FROM tovuk_sessions WHERE expires_at <= ?").bind(now).execute(&self.pool).await?;
        sqlx::query("INSERT INTO tovuk_sessions (sid, app, subject, created_at, expires_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&session.sid)
            .bind(&session.app)
            .bind(&session.subject)
            .bind(now)
            .bind(as_sql(session.expires_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn is_live(&self, sid: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM tovuk_sessions WHERE sid = ? AND expires_at > ?")
            .bind(sid)
            .bind(as_sql(unix_now()))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    async fn revoke(&self, sid: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM tovuk_sessions WHERE sid = ?").bind(sid).execute(&self.pool).await?;
        Ok(())
    }
}
