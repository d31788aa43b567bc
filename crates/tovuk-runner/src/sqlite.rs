//! An operator's hands on an app's SQLite databases, where the files live: consistent
//! snapshots while the app writes (`VACUUM INTO`), restores that check a snapshot before
//! anything changes, and single statements, read-only unless asked.

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteRow};
use sqlx::{Column, ConnectOptions, Connection, Row, SqliteConnection, TypeInfo, ValueRef};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tovuk_api_types::{ApiError, ErrorCode, SqliteQueryResult, SqliteSnapshot};

/// The most rows a query answers with.
const MAX_ROWS: usize = 1000;
/// How long a statement may run before the operator gets an error instead.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for the app's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

fn internal(what: &str, error: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::Internal, format!("{what}: {error}"))
}

async fn connect(file: &Path, read_only: bool) -> Result<SqliteConnection, sqlx::Error> {
    SqliteConnectOptions::new()
        .filename(file)
        .read_only(read_only)
        .create_if_missing(false)
        .busy_timeout(BUSY_TIMEOUT)
        .disable_statement_logging()
        .connect()
        .await
}

/// A new, empty database in WAL mode, so the app's instances share it safely.
pub(crate) async fn create_wal_database(file: &Path) -> Result<(), String> {
    let mut connection = SqliteConnectOptions::new()
        .filename(file)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .connect()
        .await
        .map_err(|error| error.to_string())?;
    // WAL is a property of the file: set once, every later connection uses it.
    let mode: Result<String, sqlx::Error> = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut connection).await;
    let _ = connection.close().await;
    match mode {
        Ok(mode) if mode.eq_ignore_ascii_case("wal") => Ok(()),
        Ok(mode) => Err(format!("it is in journal mode {mode}, not WAL")),
        Err(error) => Err(error.to_string()),
    }
}

/// A snapshot id names a file in the snapshots directory: nothing else may pass.
fn snapshot_file(dir: &Path, id: &str) -> Result<PathBuf, ApiError> {
    let valid = id.strip_prefix("snap_").is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    let file = dir.join(format!("{id}.db"));
    if !valid || !file.is_file() {
        return Err(ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("there is no snapshot `{}`", id.escape_debug()),
        ));
    }
    Ok(file)
}

fn new_snapshot_id() -> String {
    let now = chrono::Utc::now();
    format!("snap_{}-{:03}", now.format("%Y%m%dT%H%M%SZ"), now.timestamp_subsec_millis())
}

/// Writes a consistent copy of `database` (while the app may write to it) as a new snapshot
/// in `dir`, durable before it is named.
pub(crate) async fn snapshot(database: &Path, dir: &Path) -> Result<SqliteSnapshot, ApiError> {
    if !database.is_file() {
        return Err(ApiError::new(ErrorCode::ResourceNotFound, "the database has not been created yet")
            .with_next("deploy the app that declares it first"));
    }
    std::fs::create_dir_all(dir).map_err(|error| internal("cannot make the snapshots directory", error))?;
    let mut id = new_snapshot_id();
    while dir.join(format!("{id}.db")).exists() {
        tokio::time::sleep(Duration::from_millis(2)).await;
        id = new_snapshot_id();
    }
    let partial = dir.join(format!(".{id}.partial"));
    let _ = std::fs::remove_file(&partial);
    let target = partial.to_str().ok_or_else(|| internal("the snapshot path", "not UTF-8"))?.to_owned();
    let mut connection = connect(database, false).await.map_err(|error| internal("cannot open the database", error))?;
    let copied = sqlx::query("VACUUM INTO ?").bind(&target).execute(&mut connection).await;
    let _ = connection.close().await;
    if let Err(error) = copied {
        let _ = std::fs::remove_file(&partial);
        return Err(internal("cannot snapshot the database", error));
    }
    let file = dir.join(format!("{id}.db"));
    durable_rename(&partial, &file).map_err(|error| internal("cannot keep the snapshot", error))?;
    describe(&file, &id)
}

fn describe(file: &Path, id: &str) -> Result<SqliteSnapshot, ApiError> {
    let meta = std::fs::metadata(file).map_err(|error| internal("cannot read the snapshot", error))?;
    let created_at = meta
        .modified()
        .ok()
        .map(|time| chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    Ok(SqliteSnapshot { id: id.to_owned(), created_at, size_bytes: meta.len() })
}

/// Every snapshot in `dir`, newest first.
pub(crate) fn snapshots(dir: &Path) -> Result<Vec<SqliteSnapshot>, ApiError> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(Vec::new()) };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix(".db").filter(|id| id.starts_with("snap_")) {
            found.push(describe(&entry.path(), id)?);
        }
    }
    found.sort_by(|a, b| b.id.cmp(&a.id));
    Ok(found)
}

/// Checks that snapshot `id` in `dir` is a sound SQLite database; Err names the first problem.
pub(crate) async fn check_snapshot(dir: &Path, id: &str) -> Result<PathBuf, ApiError> {
    let file = snapshot_file(dir, id)?;
    let corrupt = |why: String| {
        ApiError::new(ErrorCode::SnapshotCorrupt, format!("snapshot `{id}` fails SQLite's integrity check: {why}"))
            .with_next("nothing was restored; pick another: tovuk sqlite snapshots APP BINDING")
    };
    let mut connection = connect(&file, true).await.map_err(|error| corrupt(error.to_string()))?;
    let problems: Result<Vec<String>, sqlx::Error> =
        sqlx::query_scalar("PRAGMA integrity_check").fetch_all(&mut connection).await;
    let _ = connection.close().await;
    match problems {
        Ok(problems) if problems == ["ok"] => Ok(file),
        Ok(problems) => Err(corrupt(problems.into_iter().take(3).collect::<Vec<_>>().join("; "))),
        Err(error) => Err(corrupt(error.to_string())),
    }
}

/// Puts a copy of `snapshot` in place of `database` (whose app is stopped): written, put in
/// WAL mode (`VACUUM INTO` writes a rollback-journal file) and synced beside it, then renamed
/// over it, so a crash leaves one or the other whole.
pub(crate) async fn swap_in(snapshot: &Path, database: &Path) -> Result<(), ApiError> {
    let staged = database.with_extension("db.restoring");
    std::fs::copy(snapshot, &staged).map_err(|error| internal("cannot copy the snapshot", error))?;
    let _ = std::fs::remove_file(staged.with_extension("restoring-wal"));
    let _ = std::fs::remove_file(staged.with_extension("restoring-shm"));
    set_wal(&staged).await.map_err(|error| internal("cannot put the snapshot in WAL mode", error))?;
    // The old file's log holds committed writes until it is checkpointed into the file; only
    // an empty log may go, and it must go before the rename or it would replay into the new file.
    checkpoint(database).await?;
    for suffix in ["db-wal", "db-shm"] {
        let _ = std::fs::remove_file(database.with_extension(suffix));
    }
    durable_rename(&staged, database).map_err(|error| internal("cannot put the snapshot in place", error))
}

async fn set_wal(file: &Path) -> Result<(), sqlx::Error> {
    let mut connection = SqliteConnectOptions::new()
        .filename(file)
        .create_if_missing(false)
        .journal_mode(SqliteJournalMode::Wal)
        .connect()
        .await?;
    let mode: Result<String, sqlx::Error> = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut connection).await;
    connection.close().await?;
    match mode? {
        mode if mode.eq_ignore_ascii_case("wal") => Ok(()),
        mode => Err(sqlx::Error::Protocol(format!("it stayed in journal mode {mode}"))),
    }
}

/// Moves every committed write in `database`'s WAL into the file and empties the WAL.
async fn checkpoint(database: &Path) -> Result<(), ApiError> {
    let failed =
        |error: String| internal("cannot checkpoint the database before the swap (nothing was changed)", error);
    let mut connection = connect(database, false).await.map_err(|error| failed(error.to_string()))?;
    let done: Result<(i64, i64, i64), sqlx::Error> =
        sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&mut connection).await;
    let _ = connection.close().await;
    match done {
        Ok((0, _, _)) => Ok(()),
        Ok(_) => Err(failed("another process still holds the database open".into())),
        Err(error) => Err(failed(error.to_string())),
    }
}

fn durable_rename(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::File::open(from)?.sync_all()?;
    std::fs::rename(from, to)?;
    if let Some(dir) = to.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Runs one statement; read-only unless `write`.
pub(crate) async fn query(database: &Path, sql: &str, write: bool) -> Result<SqliteQueryResult, ApiError> {
    if !database.is_file() {
        return Err(ApiError::new(ErrorCode::ResourceNotFound, "the database has not been created yet"));
    }
    let failed = |error: sqlx::Error| {
        let message = match &error {
            sqlx::Error::Database(database) => database.message().to_owned(),
            other => other.to_string(),
        };
        let next = if !write && message.contains("readonly") {
            "the query ran read-only: add --write to change the database"
        } else {
            "fix the SQL and run it again"
        };
        ApiError::new(ErrorCode::QueryFailed, format!("SQLite: {message}")).with_next(next)
    };
    let mut connection =
        connect(database, !write).await.map_err(|error| internal("cannot open the database", error))?;
    let run = async {
        if !write {
            sqlx::query("PRAGMA query_only = 1").execute(&mut connection).await?;
        }
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).fetch_all(&mut connection).await?;
        let changes: i64 =
            if write { sqlx::query_scalar("SELECT changes()").fetch_one(&mut connection).await? } else { 0 };
        Ok::<_, sqlx::Error>((rows, changes))
    };
    let outcome = tokio::time::timeout(QUERY_TIMEOUT, run).await;
    let _ = connection.close().await;
    let (rows, changes) = match outcome {
        Ok(result) => result.map_err(failed)?,
        Err(_) => {
            return Err(ApiError::new(
                ErrorCode::QueryFailed,
                format!("the statement ran past {} s and was stopped", QUERY_TIMEOUT.as_secs()),
            ));
        }
    };
    let columns = rows
        .first()
        .map(|row| row.columns().iter().map(|column| column.name().to_owned()).collect())
        .unwrap_or_default();
    let truncated = rows.len() > MAX_ROWS;
    let rows = rows.iter().take(MAX_ROWS).map(row_values).collect();
    Ok(SqliteQueryResult { columns, rows, changes: u64::try_from(changes).unwrap_or(0), truncated })
}

fn row_values(row: &SqliteRow) -> Vec<serde_json::Value> {
    (0..row.columns().len())
        .map(|index| {
            let Ok(raw) = row.try_get_raw(index) else { return serde_json::Value::Null };
            if raw.is_null() {
                return serde_json::Value::Null;
            }
            match raw.type_info().name() {
                "INTEGER" => row.try_get::<i64, _>(index).map(serde_json::Value::from).unwrap_or_default(),
                "REAL" => row.try_get::<f64, _>(index).map(serde_json::Value::from).unwrap_or_default(),
                "BLOB" => row.try_get::<Vec<u8>, _>(index).map(|bytes| hex_string(&bytes).into()).unwrap_or_default(),
                _ => row.try_get::<String, _>(index).map(serde_json::Value::from).unwrap_or_default(),
            }
        })
        .collect()
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
