//! Opening real SQLite files: fresh, reopened, foreign, corrupted and too new.

use std::path::Path;
use tovuk_store::{SCHEMA_VERSION, Store, StoreError, TokenScope};
use tovuk_types::AppName;

/// Writes to a SQLite file the way another program would, without tovuk's store code.
async fn run_sql(path: &Path, sql: &str) {
    use sqlx::{ConnectOptions, Connection};
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path).create_if_missing(true);
    let mut conn = options.connect().await.expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut conn).await.expect("sql");
    conn.close().await.expect("close");
}

fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read store file")
}

#[tokio::test]
async fn fresh_store_is_created_migrated_and_reopens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let store = Store::open(&path).await.expect("open fresh");
    let name = AppName::parse("hello").expect("valid name");
    let (app, token, secret) = store.create_app(&name, "main").await.expect("create app");
    assert!(matches!(token.scope, TokenScope::Deploy { .. }));
    assert!(matches!(store.create_app(&name, "main").await, Err(StoreError::AppExists(_))));
    store.close().await;

    let store = Store::open(&path).await.expect("reopen");
    let found = store.find_app("hello").await.expect("query").expect("app");
    assert_eq!(found, app);
    let found = store.find_app(app.id.as_str()).await.expect("query").expect("app by id");
    assert_eq!(found.name, "hello");
    let authed = store.authenticate(&secret).await.expect("query").expect("token");
    assert_eq!(authed.id, token.id);
    // Authenticating is a read; last use is recorded apart, in batches.
    assert!(authed.last_used_at.is_none());
    store.record_token_uses(&[(token.id.to_string(), "2026-01-01T00:00:00.000Z".into())]).await.expect("record");
    let used = store.find_token(token.id.as_str()).await.expect("query").expect("token");
    assert_eq!(used.last_used_at.as_deref(), Some("2026-01-01T00:00:00.000Z"));
    assert!(store.authenticate("tovuk_wrong").await.expect("query").is_none());
    store.revoke_token(token.id.as_str()).await.expect("revoke");
    assert!(store.authenticate(&secret).await.expect("query").is_none());
}

#[tokio::test]
async fn secrets_are_stored_hashed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let store = Store::open(&path).await.expect("open");
    let (_, secret) = store.create_token("ci", TokenScope::Admin).await.expect("token");
    store.close().await;
    let raw = bytes(&path);
    let needle = secret.as_bytes();
    assert!(!raw.windows(needle.len()).any(|window| window == needle), "secret found in state.db");
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    std::fs::write(&path, b"this is my diary, not a database\n").expect("write");
    let error = Store::open(&path).await.err().expect("refused");
    assert!(matches!(error, StoreError::Foreign { .. }), "{error}");
    assert!(error.to_string().contains("left as it was"));
    assert_eq!(bytes(&path), b"this is my diary, not a database\n");
}

#[tokio::test]
async fn another_programs_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    run_sql(&path, "CREATE TABLE notes (x)").await;
    let before = bytes(&path);
    let error = Store::open(&path).await.err().expect("refused");
    assert!(matches!(error, StoreError::Foreign { .. }), "{error}");
    assert_eq!(bytes(&path), before);
    assert!(!dir.path().join("state.db-wal").exists());
}

#[tokio::test]
async fn a_corrupted_store_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let store = Store::open(&path).await.expect("open");
    store.create_app(&AppName::parse("hello").expect("name"), "main").await.expect("app");
    store.close().await;
    let mut raw = bytes(&path);
    // Keep the header, wreck every page after the first.
    for byte in raw.iter_mut().skip(4096) {
        *byte = 0xA5;
    }
    std::fs::write(&path, &raw).expect("corrupt");
    let error = Store::open(&path).await.err().expect("refused");
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");
    assert_eq!(bytes(&path), raw);
}

#[tokio::test]
async fn a_store_from_a_newer_binary_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    Store::open(&path).await.expect("open").close().await;
    let newer = SCHEMA_VERSION + 1;
    run_sql(&path, &format!("PRAGMA user_version = {newer}")).await;
    let before = bytes(&path);
    let error = Store::open(&path).await.err().expect("refused");
    assert!(matches!(error, StoreError::TooNew { found, .. } if found == newer), "{error}");
    assert!(error.to_string().contains("upgrade tovuk"));
    assert_eq!(bytes(&path), before);
}
