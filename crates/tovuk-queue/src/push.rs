//! Push delivery: the platform POSTs batches of a queue's messages to its consumer app.
//!
//! One dispatcher per queue leases up to `batch_size` messages (waiting up to `max_wait`
//! for a batch to fill), POSTs them to the consumer through [`Deliver`], and settles them by
//! the answer: a 2xx acks the batch (except messages the answer names under `retry`);
//! anything else, no answer within the timeout, or a failed connection retries each message
//! after its backoff, dead-lettering those out of attempts. A consumer with no instance to
//! deliver to gets nothing: the leases go back uncounted and the dispatcher waits.

use crate::engine::{PushConfig, Queues};
use crate::{LeaseId, Leased};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Beyond a delivery's timeout, what its leases outlast it by (so a slow answer is still
/// settled by this dispatcher rather than redelivered under it).
const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// How often an idle dispatcher looks again without being woken (a consumer coming up).
const IDLE_LOOK: Duration = Duration::from_millis(500);
/// How much of a failed answer is kept as the messages' last error.
const ERROR_EXCERPT: usize = 200;
/// The most of an answer read for its `retry` list.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

/// What became of one POST to a consumer.
#[derive(Debug)]
pub enum Delivery {
    /// The consumer app has no instance to deliver to now: nothing was sent.
    Unavailable,
    /// It answered (the body is read up to [`MAX_ANSWER_BYTES`]).
    Answered { status: u16, body: Vec<u8> },
    /// The connection failed, or no answer came within the timeout.
    Failed(String),
}

/// How the platform reaches consumer apps.
#[async_trait::async_trait]
pub trait Deliver: Send + Sync + 'static {
    /// Whether `app` has an instance to deliver to now.
    fn available(&self, app: &str) -> bool;
    /// POSTs `body` (JSON) to `path` on one of `app`'s instances, waiting up to `timeout`.
    async fn post(
        &self,
        app: &str,
        path: &str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Delivery;
}

impl Queues {
    /// Delivers queue `id` to its consumer until `stop`, or until the queue has no push
    /// consumer any more.
    pub async fn run_push(self: Arc<Self>, id: String, deliver: Arc<dyn Deliver>, stop: CancellationToken) {
        let waker = self.waker(&id);
        loop {
            let Some(push) = self.config(&id).and_then(|config| config.push.clone()) else { return };
            let woken = waker.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if !deliver.available(&push.consumer) {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = &mut woken => {}
                    () = tokio::time::sleep(IDLE_LOOK) => {}
                }
                continue;
            }
            let batch = tokio::select! {
                () = stop.cancelled() => return,
                batch = self.gather(&id, &push) => batch,
            };
            let batch = match batch {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(%error, queue = %id, "cannot lease messages to deliver");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    continue;
                }
            };
            if batch.is_empty() {
                let until = self.next_wake(&id, tokio::time::Instant::now() + IDLE_LOOK).await;
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = &mut woken => {}
                    () = tokio::time::sleep_until(until) => {}
                }
                continue;
            }
            // Cut short by a stop, the leases expire and the messages go out again.
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.deliver(&id, &push, batch, deliver.as_ref()) => {}
            }
        }
    }

    /// Leases a batch: what is ready now, then (up to `max_wait` longer) what comes in,
    /// until `batch_size`.
    async fn gather(&self, id: &str, push: &PushConfig) -> Result<Vec<Leased>, crate::QueueError> {
        let visibility = push.max_wait + push.timeout + LEASE_MARGIN;
        let mut batch = self.lease(id, push.batch_size, visibility).await?;
        if batch.is_empty() {
            return Ok(batch);
        }
        let deadline = tokio::time::Instant::now() + push.max_wait;
        let waker = self.waker(id);
        while batch.len() < push.batch_size && tokio::time::Instant::now() < deadline {
            let woken = waker.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let more = self.lease(id, push.batch_size - batch.len(), visibility).await?;
            if more.is_empty() {
                tokio::select! {
                    () = &mut woken => {}
                    () = tokio::time::sleep_until(deadline) => {}
                }
            }
            batch.extend(more);
        }
        Ok(batch)
    }

    async fn deliver(&self, id: &str, push: &PushConfig, batch: Vec<Leased>, deliver: &dyn Deliver) {
        let Some(config) = self.config(id) else { return };
        let leases: Vec<LeaseId> = batch.iter().map(|leased| leased.lease).collect();
        let messages: Vec<Value> = batch
            .iter()
            .map(|leased| {
                json!({
                    "id": crate::message_id(leased.lease.seq),
                    "attempt": leased.lease.attempt,
                    "body": serde_json::from_str::<Value>(&leased.body).unwrap_or(Value::Null),
                    "enqueued_at": crate::rfc3339(leased.enqueued_at),
                })
            })
            .collect();
        let payload = json!({"queue": config.binding, "app": config.app, "messages": messages});
        let body = serde_json::to_vec(&payload).unwrap_or_default();
        let delivery_id = format!("dlv_{}_{:016x}", leases[0].seq, leases[0].nonce as u64);
        let headers = vec![("tovuk-queue", config.binding.clone()), ("tovuk-delivery-id", delivery_id.clone())];
        let outcome = deliver.post(&push.consumer, &push.path, headers, body, push.timeout).await;
        let (acks, retries) = match outcome {
            Delivery::Unavailable => {
                if let Err(error) = self.release(id, leases).await {
                    tracing::warn!(%error, queue = %id, "cannot hand undelivered leases back; they expire instead");
                }
                return;
            }
            Delivery::Answered { status, body } if (200..300).contains(&status) => split_by_answer(&leases, &body),
            Delivery::Answered { status, body } => {
                let excerpt: String = String::from_utf8_lossy(&body).chars().take(ERROR_EXCERPT).collect();
                let why = format!("the consumer answered {status}: {}", excerpt.trim());
                (Vec::new(), leases.iter().map(|lease| (*lease, why.clone(), None)).collect())
            }
            Delivery::Failed(why) => (Vec::new(), leases.iter().map(|lease| (*lease, why.clone(), None)).collect()),
        };
        if !retries.is_empty() {
            tracing::info!(
                queue = %id,
                consumer = %push.consumer,
                delivery = %delivery_id,
                retried = retries.len(),
                why = %retries[0].1,
                "a delivery failed; its messages are retried"
            );
        }
        let retries = retries
            .into_iter()
            .map(|(lease, why, delay): (LeaseId, String, Option<Duration>)| {
                (lease, delay.unwrap_or_else(|| crate::backoff(lease.attempt)), why)
            })
            .collect();
        if let Err(error) = self.settle(id, acks, retries).await {
            tracing::warn!(%error, queue = %id, "cannot settle a delivery; its leases expire and it goes out again");
        }
    }
}

type Retries = Vec<(LeaseId, String, Option<Duration>)>;

/// A 2xx answer acks every message, except those it lists under `retry`:
/// `{"retry": [{"id": "msg_…", "error": "why", "delay_seconds": 10}]}` (or plain ids).
fn split_by_answer(leases: &[LeaseId], body: &[u8]) -> (Vec<LeaseId>, Retries) {
    let listed: Vec<(String, String, Option<Duration>)> = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|answer| answer.get("retry").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|entry| match entry {
            Value::String(id) => Some((id.clone(), "the consumer asked to retry it".to_owned(), None)),
            Value::Object(fields) => {
                let id = fields.get("id")?.as_str()?.to_owned();
                let why = fields
                    .get("error")
                    .and_then(Value::as_str)
                    .map_or_else(|| "the consumer asked to retry it".to_owned(), str::to_owned);
                let delay = fields
                    .get("delay_seconds")
                    .and_then(Value::as_u64)
                    .map(|seconds| Duration::from_secs(seconds.min(crate::MAX_DELAY_SECONDS)));
                Some((id, why, delay))
            }
            _ => None,
        })
        .collect();
    let mut acks = Vec::new();
    let mut retries = Vec::new();
    for lease in leases {
        match listed.iter().find(|(id, _, _)| *id == crate::message_id(lease.seq)) {
            Some((_, why, delay)) => retries.push((*lease, why.chars().take(4096).collect(), *delay)),
            None => acks.push(*lease),
        }
    }
    (acks, retries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(seq: i64) -> LeaseId {
        LeaseId { seq, attempt: 1, nonce: 7 }
    }

    #[test]
    fn a_2xx_acks_all_but_what_it_lists_to_retry() {
        let leases = [lease(1), lease(2), lease(3)];
        let (acks, retries) = split_by_answer(&leases, b"ok");
        assert_eq!(acks.len(), 3);
        assert!(retries.is_empty());
        let answer = br#"{"retry": ["msg_2", {"id": "msg_3", "error": "poison", "delay_seconds": 9}, {"id": 4}]}"#;
        let (acks, retries) = split_by_answer(&leases, answer);
        assert_eq!(acks, vec![lease(1)]);
        assert_eq!(retries.len(), 2);
        assert_eq!(retries[1], (lease(3), "poison".to_owned(), Some(Duration::from_secs(9))));
    }
}
