//! The SQLite session store on a real file: live until revoked or expired, and durable
//! across reopening (another node, or a restart).

use crate::support::now;
use tovuk_edge_auth::{SessionRecord, SessionStore, SqliteSessions};

#[tokio::test]
async fn sessions_live_until_revoked_or_expired_and_survive_reopening() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("sessions.db");
    let store = SqliteSessions::open(&file).await.expect("open");
    let record = |sid: &str, expires_at| SessionRecord {
        sid: sid.to_owned(),
        app: "shop".to_owned(),
        subject: "alice".to_owned(),
        expires_at,
    };
    store.insert(&record("live", now() + 600)).await.expect("insert");
    store.insert(&record("ended", now() - 1)).await.expect("insert");
    store.insert(&record("revoked", now() + 600)).await.expect("insert");
    store.revoke("revoked").await.expect("revoke");
    store.revoke("never-existed").await.expect("revoking an unknown session is fine");

    let reopened = SqliteSessions::open(&file).await.expect("reopen");
    assert!(reopened.is_live("live").await.expect("query"));
    assert!(!reopened.is_live("ended").await.expect("query"));
    assert!(!reopened.is_live("revoked").await.expect("query"));
    assert!(!reopened.is_live("other").await.expect("query"));
}

/// The router shares one `EdgeAuth` per app across its worker threads and awaits its calls
/// inside spawned tasks: everything must be `Send + Sync`, the futures `Send`.
#[allow(dead_code)]
fn edge_auth_is_shareable(edge: &tovuk_edge_auth::EdgeAuth, request: &tovuk_edge_auth::RequestView<'_>) {
    fn send<T: Send>(_: T) {}
    fn shared<T: Send + Sync>() {}
    shared::<tovuk_edge_auth::EdgeAuth>();
    send(edge.check(&tovuk_edge_auth::Requirement::Session, request));
    send(edge.platform_path(request));
}
