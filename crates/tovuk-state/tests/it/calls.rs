//! Calls: one at a time per object in arrival order, objects in parallel, what reaches the
//! instance, and the outcomes the caller sees when the instance is not there or breaks off.

use crate::support::{BOUND, CLIENT, Harness, OWNER, RESOURCE, TOKEN_A, TOKEN_B, code};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_calls_to_one_object_run_one_at_a_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let harness = Arc::new(Harness::start(&dir.path().join("state.db")).await);
    let mut tasks = Vec::new();
    for index in 0..1000 {
        let harness = Arc::clone(&harness);
        tasks.push(tokio::spawn(async move {
            // Half come from the owner, half from the bound app: one object, one line.
            let (resource, token) = if index % 2 == 0 { (RESOURCE, TOKEN_A) } else { (BOUND, TOKEN_B) };
            harness.call_as(resource, token, "room-1", "/increment", json!({})).await
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        let (status, answer) = task.await.expect("task");
        assert_eq!(status, 200, "{answer}");
        answers.push(answer.as_u64().expect("count"));
    }
    // Each call read the count the one before it wrote: every value once.
    answers.sort_unstable();
    assert_eq!(answers, (1..=1000).collect::<Vec<u64>>());
    assert_eq!(harness.app.overlaps.load(Ordering::SeqCst), 0, "no two calls of the object overlapped");
    let delivered = harness.app.delivered.lock().expect("delivered").clone();
    assert_eq!(delivered.len(), 1000);
    assert_eq!(delivered.iter().collect::<HashSet<_>>().len(), 1000, "every call has its own id");
    let stats = harness.states.stats(RESOURCE).await.expect("stats");
    assert_eq!((stats.objects, stats.keys), (1, 1));
    assert_eq!(harness.gate.writes.load(Ordering::SeqCst), 1000);
    Arc::into_inner(harness).expect("one owner").stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn different_objects_run_in_parallel() {
    let dir = tempfile::tempdir().expect("tempdir");
    let harness = Arc::new(Harness::start(&dir.path().join("state.db")).await);
    let blocked = {
        let harness = Arc::clone(&harness);
        tokio::spawn(async move { harness.call("a", "/block", json!({})).await })
    };
    harness.app.entered.notified().await;
    // `a`'s call cannot end until released below; `b`'s completes meanwhile.
    let (status, answer) = harness.call("b", "/increment", json!({})).await;
    assert_eq!((status, answer), (200, json!(1)));
    assert!(!blocked.is_finished(), "a is still running");
    harness.app.release.notify_one();
    assert_eq!(blocked.await.expect("task"), (200, json!("released")));
    Arc::into_inner(harness).expect("one owner").stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_instance_gets_the_path_query_body_and_headers_the_platform_sets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let harness = Harness::start(&dir.path().join("state.db")).await;
    let response = harness
        .client
        .put(format!("{}/state/{BOUND}/user.7/echo/a%20b/c?x=1&y=%2F", harness.base))
        .bearer_auth(TOKEN_B)
        .header("Tovuk-Caller-App", "forged")
        .header("Tovuk-State-Call", "call_forged")
        .header("X-Trace", "t1")
        .body("hello")
        .send()
        .await
        .expect("call");
    assert_eq!(response.status().as_u16(), 201, "the answer's status passes through");
    assert_eq!(response.headers().get("x-answer").and_then(|v| v.to_str().ok()), Some("yes"));
    let answer: Value = response.json().await.expect("json");
    let echo = &answer["echo"];
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["uri"], "/echo/a%20b/c?x=1&y=%2F", "the rest and query as sent");
    assert_eq!(answer["body"], "hello");
    let headers = &echo["headers"];
    assert_eq!(headers["tovuk-state-object"], json!(["user.7"]));
    assert_eq!(headers["tovuk-caller-app"], json!([CLIENT]), "not forgeable");
    let call = headers["tovuk-state-call"][0].as_str().expect("call id");
    assert!(call.starts_with("call_") && call != "call_forged");
    assert_eq!(headers["x-trace"], json!(["t1"]));
    assert!(headers.get("authorization").is_none(), "the caller's token stays here");
    let (status, root) = harness.call("user.7", "", json!({})).await;
    assert_eq!((status, code(&root)), (404, ""), "no rest: the instance's `/` (which it does not serve)");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_broken_off_mid_answer_is_reported_once_and_never_sent_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let harness = Harness::start(&dir.path().join("state.db")).await;
    let (status, answer) = harness.call("room", "/die", json!({})).await;
    assert_eq!((status, code(&answer)), (502, "call_interrupted"), "{answer}");
    assert!(answer["error"]["message"].as_str().expect("message").contains("may have taken effect"));
    assert_eq!(harness.app.died.load(Ordering::SeqCst), 1, "delivered exactly once");
    assert_eq!(harness.instances.sent.load(Ordering::SeqCst), 1);
    // The object's line was let go: the next call runs.
    assert_eq!(harness.call("room", "/increment", json!({})).await, (200, json!(1)));
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_no_instance_took_is_unavailable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let harness = Harness::start(&dir.path().join("state.db")).await;
    let original = harness.instances.apps.lock().expect("apps").remove(OWNER).expect("app");
    let (status, answer) = harness.call("room", "/increment", json!({})).await;
    assert_eq!((status, code(&answer)), (503, "object_unavailable"), "{answer}");
    assert_eq!(answer["error"]["next"], format!("see: tovuk app status {OWNER}"));
    // An instance that refuses the connection: not sent either.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    harness.instances.apps.lock().expect("apps").insert(OWNER.to_owned(), closed);
    let (status, answer) = harness.call("room", "/increment", json!({})).await;
    assert_eq!((status, code(&answer)), (503, "object_unavailable"), "{answer}");
    assert!(harness.app.delivered.lock().expect("delivered").is_empty());
    harness.instances.apps.lock().expect("apps").insert(OWNER.to_owned(), original);
    assert_eq!(harness.call("room", "/increment", json!({})).await, (200, json!(1)));
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_are_authorized_and_object_names_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let harness = Harness::start(&dir.path().join("state.db")).await;
    for (resource, token) in [(RESOURCE, "wrong"), (BOUND, TOKEN_A), (RESOURCE, TOKEN_B)] {
        let (status, answer) = harness.call_as(resource, token, "room", "/increment", json!({})).await;
        assert_eq!((status, code(&answer)), (401, "unauthorized"), "{resource} {token}");
    }
    let response = harness.client.post(format!("{}/state/{RESOURCE}/room/x", harness.base)).send().await.expect("call");
    assert_eq!(response.status().as_u16(), 401, "no token");
    for bad in [".hidden", "_x", "a%20b", "%C3%A9"] {
        let (status, answer) = harness.call(bad, "/increment", json!({})).await;
        assert_eq!((status, code(&answer)), (400, "invalid_object"), "{bad}");
    }
    let long = "x".repeat(257);
    assert_eq!(harness.call(&long, "", json!({})).await.0, 400);
    let big = vec![b'x'; 8 * 1024 * 1024 + 1];
    let response = harness
        .client
        .post(format!("{}/state/{RESOURCE}/room/increment", harness.base))
        .bearer_auth(TOKEN_A)
        .body(big)
        .send()
        .await
        .expect("call");
    assert_eq!(response.status().as_u16(), 413);
    assert!(harness.app.delivered.lock().expect("delivered").is_empty(), "nothing refused was delivered");
    harness.stop().await;
}
