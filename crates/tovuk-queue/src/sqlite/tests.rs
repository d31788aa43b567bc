//! The embedded backend on a real file: leases, acks, retries, expiry, dead letters, reopening.

use super::*;
use crate::backend::Backend;

struct Store {
    backend: std::sync::Arc<SqliteBackend>,
    stop: CancellationToken,
    writer: tokio::task::JoinHandle<()>,
}

fn open(file: &Path) -> Store {
    let stop = CancellationToken::new();
    let (backend, writer) = SqliteBackend::open(file, stop.clone());
    Store { backend, stop, writer: tokio::spawn(writer) }
}

impl Store {
    async fn close(self) {
        self.stop.cancel();
        let _ = self.writer.await;
    }
}

fn message(body: &str, visible_at: i64) -> NewMessage {
    NewMessage { body: body.to_owned(), visible_at }
}

fn policy(max_attempts: u32, dead_letter: Option<&str>) -> Policy {
    Policy { max_attempts, dead_letter: dead_letter.map(str::to_owned) }
}

#[tokio::test]
async fn messages_are_leased_in_order_once_and_an_ack_deletes_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("queues.db"));
    let q = store.backend.as_ref();
    let seqs = q.enqueue("q1", vec![message("1", 0), message("2", 0), message("3", 0)], 0).await.expect("enqueue");
    assert_eq!(seqs.len(), 3);
    assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]));
    q.enqueue("q2", vec![message("other", 0)], 0).await.expect("enqueue");
    let (leased, _) = q.lease("q1", 2, 1000, 10, &policy(4, None)).await.expect("lease");
    assert_eq!(leased.iter().map(|l| l.body.as_str()).collect::<Vec<_>>(), ["1", "2"]);
    assert!(leased.iter().all(|l| l.lease.attempt == 1));
    let (rest, _) = q.lease("q1", 10, 1000, 10, &policy(4, None)).await.expect("lease");
    assert_eq!(rest.len(), 1, "leased messages are not handed out twice");
    let counts = q.counts("q1", 10).await.expect("counts");
    assert_eq!((counts.ready, counts.in_flight), (0, 3));
    let settlements = leased.iter().map(|l| Settlement { lease: l.lease, action: Settle::Ack }).collect();
    let outcomes = q.settle("q1", settlements, 20, &policy(4, None)).await.expect("settle");
    assert_eq!(outcomes, [Settled::Acked, Settled::Acked]);
    // Acked again: nothing holds that lease any more.
    let again = vec![Settlement { lease: leased[0].lease, action: Settle::Ack }];
    assert_eq!(q.settle("q1", again, 20, &policy(4, None)).await.expect("settle"), [Settled::Unknown]);
    assert_eq!(q.counts("q1", 20).await.expect("counts").in_flight, 1);
    assert_eq!(q.counts("q2", 20).await.expect("counts").ready, 1, "queues are apart");
    store.close().await;
}

#[tokio::test]
async fn an_expired_lease_is_delivered_again_with_its_attempt_counted_and_its_ack_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("queues.db"));
    let q = store.backend.as_ref();
    q.enqueue("q", vec![message("x", 0)], 0).await.expect("enqueue");
    let (first, _) = q.lease("q", 1, 100, 0, &policy(4, None)).await.expect("lease");
    // Past its visibility timeout, not yet taken again: expired.
    let ack = vec![Settlement { lease: first[0].lease, action: Settle::Ack }];
    assert_eq!(q.settle("q", ack.clone(), 150, &policy(4, None)).await.expect("settle"), [Settled::Expired]);
    let (second, _) = q.lease("q", 1, 400, 200, &policy(4, None)).await.expect("lease");
    assert_eq!(second[0].lease.attempt, 2);
    assert_eq!(q.settle("q", ack, 250, &policy(4, None)).await.expect("settle"), [Settled::Expired]);
    let forged = LeaseId { nonce: second[0].lease.nonce.wrapping_add(1), ..second[0].lease };
    let ack = vec![Settlement { lease: forged, action: Settle::Ack }];
    assert_eq!(q.settle("q", ack, 250, &policy(4, None)).await.expect("settle"), [Settled::Unknown]);
    let peeked = q.peek("q", false, 10, 250).await.expect("peek");
    assert_eq!(peeked[0].last_error.as_deref(), Some(LEASE_EXPIRED));
    store.close().await;
}

#[tokio::test]
async fn out_of_attempts_a_message_moves_to_the_dead_letter_queue_or_stays_dead_and_redrives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("queues.db"));
    let q = store.backend.as_ref();
    q.enqueue("q", vec![message("poison", 0), message("fine", 0)], 0).await.expect("enqueue");
    let with_dlq = policy(2, Some("dlq"));
    for (attempt, now) in [(1, 0), (2, 10)] {
        let (leased, _) = q.lease("q", 1, now + 100, now, &with_dlq).await.expect("lease");
        assert_eq!((leased[0].body.as_str(), leased[0].lease.attempt), ("poison", attempt));
        let retry = vec![Settlement {
            lease: leased[0].lease,
            action: Settle::Retry { visible_at: now, error: format!("boom {attempt}") },
        }];
        let expected = if attempt == 2 { Settled::DeadLettered } else { Settled::Retried };
        assert_eq!(q.settle("q", retry, now + 1, &with_dlq).await.expect("settle"), [expected]);
    }
    let counts = q.counts("q", 20).await.expect("counts");
    assert_eq!((counts.ready, counts.dead_letter), (1, 1));
    let dead = q.peek("q", true, 10, 20).await.expect("peek");
    assert_eq!((dead[0].queue.as_str(), dead[0].attempts), ("dlq", 0));
    assert_eq!(dead[0].last_error.as_deref(), Some("boom 2"));
    assert_eq!(q.counts("dlq", 20).await.expect("counts").ready, 1, "a dead letter is the DLQ's message");

    assert_eq!(q.redrive("q", 30).await.expect("redrive"), 1);
    let (leased, _) = q.lease("q", 10, 200, 30, &with_dlq).await.expect("lease");
    assert_eq!(leased.len(), 2);
    assert!(leased.iter().all(|l| l.lease.attempt == 1), "a redriven message starts its attempts again");

    // Without a dead-letter queue: an expired last lease leaves the message dead in place.
    let no_dlq = policy(2, None);
    q.enqueue("solo", vec![message("x", 0)], 0).await.expect("enqueue");
    q.lease("solo", 1, 100, 0, &no_dlq).await.expect("lease");
    q.lease("solo", 1, 300, 200, &no_dlq).await.expect("lease");
    let (leased, dead) = q.lease("solo", 1, 600, 400, &no_dlq).await.expect("lease");
    assert_eq!((leased.len(), dead), (0, 1));
    let counts = q.counts("solo", 400).await.expect("counts");
    assert_eq!((counts.ready, counts.in_flight, counts.dead_letter), (0, 0, 1));
    assert_eq!(q.purge("solo", true).await.expect("purge"), 1);
    assert_eq!(q.counts("solo", 400).await.expect("counts").dead_letter, 0);
    store.close().await;
}

#[tokio::test]
async fn a_released_lease_costs_no_attempt_and_a_delay_holds_a_message_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("queues.db"));
    let q = store.backend.as_ref();
    q.enqueue("q", vec![message("now", 0), message("later", 500)], 0).await.expect("enqueue");
    let (leased, _) = q.lease("q", 10, 100, 0, &policy(4, None)).await.expect("lease");
    assert_eq!(leased.len(), 1, "the delayed one waits");
    assert_eq!(q.next_visible("q").await.expect("next"), Some(100));
    q.release("q", vec![leased[0].lease], 5).await.expect("release");
    let (leased, _) = q.lease("q", 10, 100, 5, &policy(4, None)).await.expect("lease");
    assert_eq!(leased[0].lease.attempt, 1, "released without counting");
    assert_eq!(q.counts("q", 5).await.expect("counts").delayed, 1);
    store.close().await;
}

#[tokio::test]
async fn what_was_acknowledged_is_there_after_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("queues.db");
    let store = open(&file);
    let sent = store.backend.enqueue("q", (0..250).map(|n| message(&n.to_string(), 0)).collect(), 0).await;
    assert_eq!(sent.expect("enqueue").len(), 250);
    store.close().await;
    let store = open(&file);
    let (leased, _) = store.backend.lease("q", 100, 10, 0, &policy(4, None)).await.expect("lease");
    assert_eq!(leased.len(), 100);
    assert_eq!(leased[0].body, "0");
    assert_eq!(store.backend.counts("q", 0).await.expect("counts").ready, 150);
    store.close().await;
}
