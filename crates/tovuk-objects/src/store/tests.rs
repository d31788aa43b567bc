//! The bucket index is let go when idle and opened again on the next use, with nothing lost.

use super::{INDEX_IDLE, OBJECTS, Objects};
use redb::ReadableDatabase;
use std::time::Instant;

#[test]
fn an_idle_buckets_index_is_closed_and_opens_again_on_use() {
    let root = tempfile::tempdir().expect("tempdir");
    let objects = Objects::open(root.path()).expect("open");
    objects.ensure_bucket("quiet").expect("bucket");
    let bucket = objects.bucket("quiet").expect("known");
    {
        let db = bucket.db().expect("index");
        let txn = db.begin_write().expect("write");
        txn.open_table(OBJECTS).expect("table").insert(b"k".as_slice(), b"v".as_slice()).expect("insert");
        txn.commit().expect("commit");
    }
    bucket.close_if_idle(Instant::now() + INDEX_IDLE);
    {
        let index = bucket.index.lock().expect("lock");
        assert!(index.held.is_none() && index.open.upgrade().is_none(), "closed: nothing holds it");
    }
    // A reader that took the index before it was let go keeps it open: no second handle.
    let db = bucket.db().expect("reopened");
    let reader = bucket.db().expect("same handle");
    assert!(std::sync::Arc::ptr_eq(&db, &reader));
    bucket.close_if_idle(Instant::now() + INDEX_IDLE);
    let again = bucket.db().expect("still open under the reader");
    assert!(std::sync::Arc::ptr_eq(&again, &reader));
    let txn = again.begin_read().expect("read");
    let value = txn.open_table(OBJECTS).expect("table").get(b"k".as_slice()).expect("get").map(|v| v.value().to_vec());
    assert_eq!(value.as_deref(), Some(b"v".as_slice()));
}
