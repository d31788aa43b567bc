//! Whether the state store takes writes, and what to do when it does not.
//!
//! A full disk fails writes until space is freed, then they work again by themselves; the
//! store is reported failing in `/v1/status` meanwhile. An I/O error (an fsync or a
//! checkpoint that failed) is different: what is on disk may no longer match what was
//! acknowledged, so the server acknowledges nothing more and exits for its supervisor to
//! restart it, never retrying and going on.

use crate::ControlState;
use std::sync::Mutex;
use std::time::Duration;
use tovuk_store::{Fault, StoreError};

/// How often a small write proves the store takes writes.
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// How often the WAL is checkpointed into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);
/// The exit code after an I/O error in the store (sysexits' EX_IOERR).
const EXIT_STORE_IO: i32 = 74;

tokio::task_local! {
    /// The worst store fault a request met, set where the error becomes an answer.
    static REQUEST_FAULT: std::cell::RefCell<Option<(Fault, String)>>;
}

/// Runs `future` (a request) noting the store fault it meets, if any.
pub(crate) async fn noting_faults<F: std::future::Future>(future: F) -> (F::Output, Option<(Fault, String)>) {
    REQUEST_FAULT
        .scope(std::cell::RefCell::new(None), async {
            let output = future.await;
            (output, REQUEST_FAULT.with(|noted| noted.borrow_mut().take()))
        })
        .await
}

/// Called where a store error becomes an answer: notes it for the request's span.
pub(crate) fn note(error: &StoreError) {
    let noted = (error.fault(), error.to_string());
    let _ = REQUEST_FAULT.try_with(|fault| *fault.borrow_mut() = Some(noted));
}

/// What the control plane knows of the store's writes.
#[derive(Default)]
pub(crate) struct StoreHealth {
    /// Why writes fail right now; `None` while they work.
    failing: Mutex<Option<String>>,
}

impl StoreHealth {
    /// Why writes fail right now, if they do.
    pub(crate) fn failing(&self) -> Option<String> {
        self.failing.lock().ok().and_then(|failing| failing.clone())
    }

    fn set(&self, why: Option<String>) {
        if let Ok(mut failing) = self.failing.lock() {
            match (&*failing, &why) {
                (None, Some(why)) => tracing::error!(%why, "the state store does not take writes"),
                (Some(_), None) => tracing::info!("the state store takes writes again"),
                _ => {}
            }
            *failing = why;
        }
    }
}

impl ControlState {
    /// What a store fault met by a request (or a probe) means for the platform.
    pub(crate) fn store_fault(&self, fault: Fault, detail: &str) {
        match fault {
            Fault::Full => self.inner.store_health.set(Some(format!("the disk is full: {detail}"))),
            Fault::Io => stop_on_io_error(detail),
            Fault::Busy | Fault::Other => {}
        }
    }

    /// A write went through: the store takes writes.
    pub(crate) fn store_wrote(&self) {
        self.inner.store_health.set(None);
    }
}

/// Nothing more may be acknowledged: log, and exit at once for the supervisor to restart
/// the platform on a store it can trust (the apps keep running and are adopted).
fn stop_on_io_error(detail: &str) -> ! {
    tracing::error!(
        %detail,
        "the state store met an I/O error: what is on disk may not be what was acknowledged; \
         stopping now (exit {EXIT_STORE_IO}) so the supervisor restarts tovuk, which checks the store"
    );
    std::process::exit(EXIT_STORE_IO)
}

/// Probes the store with a write every few seconds and checkpoints its WAL, until `shutdown`.
pub async fn run_store_watch(state: ControlState, shutdown: tovuk_daemon::Shutdown) -> anyhow::Result<()> {
    let mut probe = tokio::time::interval(PROBE_EVERY);
    let mut checkpoint = tokio::time::interval(CHECKPOINT_EVERY);
    loop {
        let (result, probing) = tokio::select! {
            () = shutdown.wait() => return Ok(()),
            _ = probe.tick() => (state.store().probe_write().await, true),
            _ = checkpoint.tick() => (state.store().checkpoint().await, false),
        };
        match result {
            // Only a write proves writes work again (a checkpoint may need no new space).
            Ok(()) if probing => state.store_wrote(),
            Ok(()) => {}
            Err(error) => state.store_fault(error.fault(), &error.to_string()),
        }
    }
}

/// How often the tokens' last uses are written, in one transaction.
const TOKEN_USES_EVERY: Duration = Duration::from_secs(2);

impl ControlState {
    /// Notes that a token authenticated a request; written later, with others.
    pub(crate) fn token_used(&self, token_id: &tovuk_types::TokenId) {
        if let Ok(mut uses) = self.inner.token_uses.lock() {
            uses.insert(token_id.to_string(), chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        }
    }

    async fn write_token_uses(&self) {
        let uses: Vec<(String, String)> =
            self.inner.token_uses.lock().map(|mut uses| uses.drain().collect()).unwrap_or_default();
        if uses.is_empty() {
            return;
        }
        if let Err(error) = self.store().record_token_uses(&uses).await {
            // Kept for the next round (a newer use of the same token wins then).
            tracing::warn!(%error, "cannot record the tokens' last use yet");
            if let Ok(mut pending) = self.inner.token_uses.lock() {
                for (id, at) in uses {
                    pending.entry(id).or_insert(at);
                }
            }
        }
    }
}

/// Writes the tokens' last uses every few seconds, and once more when the server stops.
pub async fn run_token_uses(state: ControlState, shutdown: tovuk_daemon::Shutdown) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(TOKEN_USES_EVERY);
    loop {
        tokio::select! {
            () = shutdown.wait() => {
                state.write_token_uses().await;
                return Ok(());
            }
            _ = tick.tick() => state.write_token_uses().await,
        }
    }
}
