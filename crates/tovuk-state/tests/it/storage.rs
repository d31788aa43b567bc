//! Storage: open only to the owning app from inside the object's running call, transactional,
//! metered before the work, and durable across reopening the store.

use crate::support::{BOUND, Harness, RESOURCE, TOKEN_A, TOKEN_B, code};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

fn step(method: &str, path: &str) -> Value {
    json!({"method": method, "path": path})
}

fn put(path: &str, body: Value) -> Value {
    json!({"method": "PUT", "path": path, "body": body})
}

fn transaction(object: &str, ops: Value) -> Value {
    json!({"method": "POST", "path": format!("/_storage/{object}/transaction"), "body": {"ops": ops}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_is_open_only_to_the_running_call_of_its_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let harness = Harness::start(&dir.path().join("state.db")).await;
    let (first, results) = harness.script("o", json!([put("/_storage/o/k", json!(1))])).await;
    assert_eq!(results[0], (200, json!({"key": "k"})));
    let no_header = json!({"method": "GET", "path": "/_storage/o/k", "call": ""});
    let stale = json!({"method": "GET", "path": "/_storage/o/k", "call": first});
    let (_, results) = harness.script("o", json!([no_header, stale, step("GET", "/_storage/other/k")])).await;
    for (status, body) in &results {
        assert_eq!((*status, code(body)), (409, "not_in_call"), "{body}");
    }
    assert!(results[0].1["error"]["next"].as_str().expect("next").contains("Tovuk-State-Call"));
    // From outside any call, with the owner's token.
    let outside = harness
        .client
        .get(format!("{}/state/{RESOURCE}/_storage/o/k", harness.base))
        .bearer_auth(TOKEN_A)
        .header("Tovuk-State-Call", first.as_str())
        .send()
        .await
        .expect("get");
    assert_eq!(outside.status().as_u16(), 409);
    // The bound app may call the object, not touch its storage.
    let bound = harness
        .client
        .get(format!("{}/state/{BOUND}/_storage/o/k", harness.base))
        .bearer_auth(TOKEN_B)
        .send()
        .await
        .expect("get");
    assert_eq!(bound.status().as_u16(), 403);
    let wrong =
        harness.client.get(format!("{}/state/{RESOURCE}/_storage/o/k", harness.base)).bearer_auth("x").send().await;
    assert_eq!(wrong.expect("get").status().as_u16(), 401);
    let (_, results) = harness.script("o", json!([step("GET", "/_storage/o/k"), step("GET", "/_storage/_o/k")])).await;
    assert_eq!(results[0], (200, json!({"key": "k", "value": 1})), "a fresh call reads what the first wrote");
    assert_eq!((results[1].0, code(&results[1].1)), (400, "invalid_object"));
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_reads_writes_lists_and_refuses_what_is_too_big() {
    let dir = tempfile::tempdir().expect("tempdir");
    let harness = Harness::start(&dir.path().join("state.db")).await;
    let huge = json!("x".repeat(128 * 1024));
    let many: Vec<Value> = (0..129).map(|i| json!({"op": "get", "key": format!("k{i}")})).collect();
    let (_, results) = harness
        .script(
            "o",
            json!([
                put("/_storage/o/user%2F1", json!({"name": "a"})),
                put("/_storage/o/user/2", json!([1, 2])),
                put("/_storage/o/zeta", json!(null)),
                step("GET", "/_storage/o/user/1"),
                step("GET", "/_storage/o?prefix=user/&limit=1"),
                step("GET", "/_storage/o?prefix=user/&after=user/1"),
                step("DELETE", "/_storage/o/zeta"),
                step("DELETE", "/_storage/o/zeta"),
                step("GET", "/_storage/o/zeta"),
                put("/_storage/o/big", huge),
                transaction("o", json!(many)),
                step("GET", "/_storage/o?limit=0"),
                step("PATCH", "/_storage/o/k"),
                put("/_storage/o/transaction", json!("a key like any other")),
                step("GET", "/_storage/o/transaction"),
            ]),
        )
        .await;
    let statuses: Vec<u16> = results.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 200, 200, 404, 413, 400, 400, 405, 200, 200], "{results:?}");
    assert_eq!(results[3].1, json!({"key": "user/1", "value": {"name": "a"}}), "keys are percent-decoded");
    assert_eq!(results[4].1, json!({"entries": [{"key": "user/1", "value": {"name": "a"}}], "next": "user/1"}));
    assert_eq!(results[5].1, json!({"entries": [{"key": "user/2", "value": [1, 2]}], "next": null}));
    assert_eq!((results[6].1.clone(), results[7].1.clone()), (json!({"deleted": true}), json!({"deleted": false})));
    assert_eq!(code(&results[8].1), "not_found");
    assert_eq!(code(&results[9].1), "too_large");
    assert_eq!(code(&results[10].1), "too_many_ops");
    assert_eq!(results[14].1["value"], "a key like any other");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_is_all_or_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let harness = Harness::start(&dir.path().join("state.db")).await;
    let (_, results) = harness
        .script(
            "acct",
            json!([
                transaction(
                    "acct",
                    json!([
                        {"op": "check", "key": "alice"},
                        {"op": "put", "key": "alice", "value": 100},
                        {"op": "put", "key": "bob", "value": 0},
                        {"op": "get", "key": "alice"},
                        {"op": "delete", "key": "nobody"},
                    ])
                ),
                // Moves 30, but checks bob still holds 5: he holds 0, so nothing moves.
                transaction(
                    "acct",
                    json!([
                        {"op": "put", "key": "alice", "value": 70},
                        {"op": "check", "key": "bob", "value": 5},
                        {"op": "put", "key": "bob", "value": 35},
                    ])
                ),
                transaction(
                    "acct",
                    json!([
                        {"op": "put", "key": "carol", "value": 1},
                        {"op": "check", "key": "alice"},
                    ])
                ),
                transaction(
                    "acct",
                    json!([{"op": "get", "key": "alice"}, {"op": "get", "key": "bob"}, {"op": "get", "key": "carol"}])
                ),
                transaction(
                    "acct",
                    json!([
                        {"op": "check", "key": "alice", "value": 100},
                        {"op": "put", "key": "alice", "value": 70},
                        {"op": "put", "key": "bob", "value": 30},
                    ])
                ),
            ]),
        )
        .await;
    assert_eq!(
        results[0],
        (
            200,
            json!({"results": [{"ok": true}, {"key": "alice"}, {"key": "bob"}, {"key": "alice", "value": 100}, {"deleted": false}]})
        )
    );
    for failed in [&results[1], &results[2]] {
        assert_eq!((failed.0, code(&failed.1)), (409, "check_failed"), "{failed:?}");
    }
    let message = results[1].1["error"]["message"].as_str().expect("message");
    assert!(message.contains("`bob`") && message.contains("expected 5 and found 0"), "{message}");
    assert_eq!(
        results[3].1,
        json!({"results": [{"key": "alice", "value": 100}, {"key": "bob", "value": 0}, {"key": "carol", "value": null}]}),
        "a failed check wrote nothing, not even the writes before it"
    );
    assert_eq!(results[4].0, 200);
    let stats = harness.states.stats(RESOURCE).await.expect("stats");
    assert_eq!((stats.objects, stats.keys), (1, 2));
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_meter_leaves_nothing_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let harness = Harness::start(&dir.path().join("state.db")).await;
    harness.gate.refuse_writes.store(true, Ordering::SeqCst);
    let (_, results) = harness
        .script(
            "o",
            json!([
                put("/_storage/o/k", json!(1)),
                transaction("o", json!([{"op": "put", "key": "t", "value": 1}])),
                step("GET", "/_storage/o/k"),
                step("GET", "/_storage/o/t"),
            ]),
        )
        .await;
    for refused in &results[..2] {
        assert_eq!((refused.0, code(&refused.1)), (429, "cap_reached"), "{refused:?}");
        assert!(refused.1["error"]["message"].as_str().expect("message").contains("state_writes"));
    }
    assert_eq!((results[2].0, results[3].0), (404, 404), "nothing was written");
    assert_eq!(harness.gate.writes.load(Ordering::SeqCst), 0);
    assert_eq!(harness.gate.reads.load(Ordering::SeqCst), 2, "each get is one read");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_was_answered_survives_reopening_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("state.db");
    let harness = Harness::start(&file).await;
    for expected in 1..=5 {
        assert_eq!(harness.call("room", "/increment", json!({})).await, (200, json!(expected)));
    }
    harness.stop().await;
    let harness = Harness::start(&file).await;
    let stats = harness.states.stats(RESOURCE).await.expect("stats");
    assert_eq!((stats.objects, stats.keys), (1, 1));
    assert_eq!(harness.call("room", "/increment", json!({})).await, (200, json!(6)));
    harness.states.delete_resource(RESOURCE).await.expect("delete");
    assert_eq!(harness.states.stats(RESOURCE).await.expect("stats").keys, 0);
    harness.stop().await;
}
