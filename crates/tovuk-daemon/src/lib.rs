//! The shared daemon kit: one shutdown signal for every role, OS signals, tracing.
//!
//! Every long-lived task is spawned through [`Shutdown::spawn`], so stopping the
//! platform can wait for all of them with a deadline instead of abandoning work.

pub mod request_id;

use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long graceful shutdown may take before the process stops waiting.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// A cancellation token plus a tracker of every task spawned under it.
#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns a task that shutdown will wait for.
    pub fn spawn<F>(&self, name: &'static str, future: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.tracker.spawn(async move {
            if let Err(error) = future.await {
                tracing::error!(task = name, error = format!("{error:#}"), "task failed");
            }
        });
    }

    /// Asks every task to stop.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once shutdown has been asked for.
    pub async fn wait(&self) {
        self.token.cancelled().await;
    }

    /// Waits for every spawned task to finish, up to `deadline`. False when some did not.
    pub async fn join(&self, deadline: Duration) -> bool {
        self.tracker.close();
        tokio::time::timeout(deadline, self.tracker.wait()).await.is_ok()
    }
}

/// Resolves on the first SIGINT or SIGTERM and names it.
pub async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        // Without signal handlers the process still stops on the default action.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    }
}

/// Daemon logging to stderr: `info` by default, `RUST_LOG` overrides. The S3 library logs
/// every client error (a missing key) as an error: an app's 404 is not the platform's fault.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .add_directive("s3s=off".parse().unwrap_or_default());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// The live state of each role in this process, for `/v1/status`.
#[derive(Clone, Default)]
pub struct RoleBoard {
    roles: std::sync::Arc<std::sync::Mutex<Vec<RoleEntry>>>,
}

/// One role: its name, whether it runs, and where it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleEntry {
    pub name: &'static str,
    pub running: bool,
    pub address: Option<String>,
}

impl RoleBoard {
    /// Records a role's state, replacing what was known of it.
    pub fn set(&self, name: &'static str, running: bool, address: Option<String>) {
        let mut roles = self.roles.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = RoleEntry { name, running, address };
        match roles.iter_mut().find(|role| role.name == name) {
            Some(existing) => *existing = entry,
            None => roles.push(entry),
        }
    }

    pub fn snapshot(&self) -> Vec<RoleEntry> {
        self.roles.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}
