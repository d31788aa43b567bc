//! The queues as the app and the operator use them: sends, pulls (long-polled), acks and
//! retries under each queue's policy, over whichever [`Backend`] holds the messages.

use crate::backend::{Backend, Counts, NewMessage, Policy, Settle, Settled, Settlement, Stored};
use crate::{LeaseId, QueueError, now_ms};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Notify;

/// How a queue is delivered, as its app's current release declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// The resource id: the queue's name in the store and in its URL.
    pub id: String,
    /// The app that owns it (its producer).
    pub app: String,
    pub binding: String,
    /// Deliveries a message gets after its first before it is dead-lettered.
    pub max_retries: u32,
    /// The queue (resource id) dead letters move to; None keeps them here as dead.
    pub dead_letter: Option<String>,
    /// Its binding, as the operator names it.
    pub dead_letter_binding: Option<String>,
    /// Delivered by the platform to a consumer app; None: the app pulls.
    pub push: Option<PushConfig>,
}

impl QueueConfig {
    pub fn policy(&self) -> Policy {
        Policy { max_attempts: self.max_retries.saturating_add(1), dead_letter: self.dead_letter.clone() }
    }
}

/// Push delivery to a consumer app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushConfig {
    /// The app whose instances get each batch (`POST consumer_path`).
    pub consumer: String,
    pub path: String,
    /// Most messages per delivery.
    pub batch_size: usize,
    /// Longest the first ready message waits for a batch to fill.
    pub max_wait: Duration,
    /// Longest a delivery may take before it counts as failed.
    pub timeout: Duration,
}

/// What a send stored.
#[derive(Debug, Clone)]
pub struct SendOutcome {
    pub ids: Vec<String>,
}

/// A message handed to a pull.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub id: String,
    pub lease: LeaseId,
    pub attempt: u32,
    /// JSON text.
    pub body: String,
    pub enqueued_at: i64,
}

/// Where a queue's messages stand, for the operator.
#[derive(Debug, Clone)]
pub struct QueueStats {
    pub counts: Counts,
    pub config: Option<Arc<QueueConfig>>,
}

/// Every queue served on this machine.
pub struct Queues {
    backend: Arc<dyn Backend>,
    configs: RwLock<HashMap<String, Arc<QueueConfig>>>,
    /// Woken when a queue may have messages to deliver (a send, a retry, a redrive).
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
}

impl std::fmt::Debug for Queues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queues").finish_non_exhaustive()
    }
}

impl Queues {
    pub fn new(backend: Arc<dyn Backend>) -> Arc<Queues> {
        Arc::new(Queues { backend, configs: RwLock::default(), wakers: Mutex::default() })
    }

    /// Sets (or replaces) how queue `config.id` is delivered; a push dispatcher running for
    /// it picks the change up at its next batch.
    pub fn configure(&self, config: QueueConfig) {
        let id = config.id.clone();
        if let Ok(mut configs) = self.configs.write() {
            configs.insert(id.clone(), Arc::new(config));
        }
        self.wake(&id);
    }

    /// Forgets how queue `id` is delivered (its app no longer declares it); its messages stay.
    pub fn unconfigure(&self, id: &str) {
        if let Ok(mut configs) = self.configs.write() {
            configs.remove(id);
        }
        self.wake(id);
    }

    pub fn config(&self, id: &str) -> Option<Arc<QueueConfig>> {
        self.configs.read().ok()?.get(id).cloned()
    }

    /// The queues configured for `app`.
    pub fn configs_of(&self, app: &str) -> Vec<Arc<QueueConfig>> {
        self.configs
            .read()
            .map(|configs| configs.values().filter(|config| config.app == app).cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn waker(&self, id: &str) -> Arc<Notify> {
        let mut wakers = self.wakers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        wakers.entry(id.to_owned()).or_default().clone()
    }

    pub(crate) fn wake(&self, id: &str) {
        self.waker(id).notify_waiters();
    }

    fn policy(&self, id: &str) -> Policy {
        self.config(id).map_or_else(
            || Policy { max_attempts: DEFAULT_MAX_RETRIES + 1, dead_letter: None },
            |config| config.policy(),
        )
    }

    /// Stores `messages` (JSON text and delay) in queue `id`; durable when it returns.
    pub async fn send(&self, id: &str, messages: Vec<(String, Duration)>) -> Result<SendOutcome, QueueError> {
        let now = now_ms();
        let messages = messages
            .into_iter()
            .map(|(body, delay)| NewMessage { body, visible_at: now.saturating_add(millis(delay)) })
            .collect();
        let seqs = self.backend.enqueue(id, messages, now).await?;
        self.wake(id);
        Ok(SendOutcome { ids: seqs.into_iter().map(crate::message_id).collect() })
    }

    /// Leases up to `max` messages for `visibility`, waiting up to `wait` for the first.
    pub async fn pull(
        &self,
        id: &str,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Pulled>, QueueError> {
        let deadline = tokio::time::Instant::now() + wait;
        let waker = self.waker(id);
        loop {
            // Registered before looking, so a send in between is not missed.
            let woken = waker.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let leased = self.lease(id, max, visibility).await?;
            if !leased.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(leased
                    .into_iter()
                    .map(|leased| Pulled {
                        id: crate::message_id(leased.lease.seq),
                        attempt: leased.lease.attempt,
                        lease: leased.lease,
                        body: leased.body,
                        enqueued_at: leased.enqueued_at,
                    })
                    .collect());
            }
            let until = self.next_wake(id, deadline).await;
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    /// When to look again: the deadline, or sooner when a message becomes visible before it.
    pub(crate) async fn next_wake(&self, id: &str, deadline: tokio::time::Instant) -> tokio::time::Instant {
        match self.backend.next_visible(id).await {
            Ok(Some(at)) => {
                let wait = Duration::from_millis(u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0));
                deadline.min(tokio::time::Instant::now() + wait)
            }
            _ => deadline,
        }
    }

    pub(crate) async fn lease(
        &self,
        id: &str,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<crate::Leased>, QueueError> {
        let now = now_ms();
        let policy = self.policy(id);
        let (leased, dead) = self.backend.lease(id, max, now.saturating_add(millis(visibility)), now, &policy).await?;
        if dead > 0
            && let Some(target) = &policy.dead_letter
        {
            self.wake(target);
        }
        Ok(leased)
    }

    /// Acks and retries leases of queue `id`: one outcome per lease, acks first, in order.
    pub async fn settle(
        &self,
        id: &str,
        acks: Vec<LeaseId>,
        retries: Vec<(LeaseId, Duration, String)>,
    ) -> Result<Vec<Settled>, QueueError> {
        if acks.is_empty() && retries.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let policy = self.policy(id);
        let settlements: Vec<Settlement> = acks
            .into_iter()
            .map(|lease| Settlement { lease, action: Settle::Ack })
            .chain(retries.into_iter().map(|(lease, delay, error)| Settlement {
                lease,
                action: Settle::Retry { visible_at: now.saturating_add(millis(delay)), error },
            }))
            .collect();
        let outcomes = self.backend.settle(id, settlements, now, &policy).await?;
        if outcomes.contains(&Settled::Retried) {
            self.wake(id);
        }
        if outcomes.contains(&Settled::DeadLettered)
            && let Some(target) = &policy.dead_letter
        {
            self.wake(target);
        }
        Ok(outcomes)
    }

    /// Hands leases back without counting their attempt.
    pub(crate) async fn release(&self, id: &str, leases: Vec<LeaseId>) -> Result<(), QueueError> {
        self.backend.release(id, leases, now_ms()).await?;
        self.wake(id);
        Ok(())
    }

    pub async fn stats(&self, id: &str) -> Result<QueueStats, QueueError> {
        Ok(QueueStats { counts: self.backend.counts(id, now_ms()).await?, config: self.config(id) })
    }

    pub async fn peek(&self, id: &str, dead_letter: bool, limit: usize) -> Result<Vec<Stored>, QueueError> {
        self.backend.peek(id, dead_letter, limit, now_ms()).await
    }

    pub async fn purge(&self, id: &str, dead_letter: bool) -> Result<u64, QueueError> {
        self.backend.purge(id, dead_letter).await
    }

    pub async fn redrive(&self, id: &str) -> Result<u64, QueueError> {
        let moved = self.backend.redrive(id, now_ms()).await?;
        self.wake(id);
        Ok(moved)
    }
}

/// `max_retries` when a queue's release does not say.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
