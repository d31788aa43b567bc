//! The builder role: claims queued deploys, builds, type-checks and tests each one
//! from a clean checkout in a sandbox, and seals the result as a signed artifact.
//!
//! It reaches state only through the control-plane API (`/internal/v1/builds`), which
//! is what lets builders run on other machines later. On this machine it reads the
//! app's bare repository and the build key from the data dir.

mod cache;
mod job;
mod logs;
mod phase;

pub use logs::{ActionableLine, LineSplitter, LogBudget, sanitize};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tovuk_client::Client;
use tovuk_daemon::Shutdown;

/// What the builder is configured with.
#[derive(Debug, Clone)]
pub struct BuilderConfig {
    /// The data directory; the builder reads repositories and its signing key, and
    /// writes workspaces, caches and artifacts (see `DataLayout`).
    pub layout: tovuk_types::DataLayout,
    /// The control-plane API.
    pub api_url: String,
    /// The secret that authenticates this role on the internal API.
    pub node_secret: String,
    /// A name for this builder in claims and logs.
    pub node_name: String,
    /// Builds at once.
    pub concurrency: usize,
    /// A build's stored log is capped at this many bytes.
    pub log_limit_bytes: usize,
    /// Host paths bound read-only at the same place in every build (toolchains).
    pub toolchains: Vec<PathBuf>,
    /// The operator's variables for every build (the server config's `[build] env`); the
    /// platform's own and an app's `[build] secrets` win over them.
    pub env: Vec<(String, String)>,
    /// Opens the values of `[build] secrets` for the phases.
    pub secrets_key: std::sync::Arc<tovuk_secrets::MasterKey>,
    /// Where each build's control group (its limits) is made.
    pub cgroups: std::sync::Arc<tovuk_sandbox::cgroup::Cgroups>,
    /// What network a build can be given here.
    pub network: tovuk_sandbox::network::Support,
}

/// Runs the builder until `shutdown` fires. Builds still running then are stopped and
/// reported failed.
pub async fn run(config: BuilderConfig, shutdown: Shutdown) -> anyhow::Result<()> {
    let client = Client::for_node(&config.api_url, &config.node_secret)?;
    let key = Arc::new(tovuk_artifact::BuildKey::load_or_create(&config.layout.keys_dir())?);
    let config = Arc::new(config);
    let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let mut consecutive_errors: u32 = 0;
    loop {
        let permit = tokio::select! {
            () = shutdown.wait() => break,
            permit = slots.clone().acquire_owned() => permit?,
        };
        let claimed = tokio::select! {
            () = shutdown.wait() => break,
            claimed = client.claim_build(&config.node_name) => claimed,
        };
        match claimed {
            Ok(Some(build)) => {
                consecutive_errors = 0;
                let (client, config, key, shutdown_for_job) =
                    (client.clone(), config.clone(), key.clone(), shutdown.clone());
                shutdown.spawn("build", async move {
                    job::run(&client, &config, &key, build, &shutdown_for_job).await;
                    drop(permit);
                    Ok(())
                });
            }
            Ok(None) => {}
            Err(error) => {
                // The API is this process's own; errors are transient (start-up, shutdown).
                consecutive_errors += 1;
                let backoff = Duration::from_millis(200 * u64::from(consecutive_errors.min(25)));
                tracing::warn!(%error, consecutive_errors, "cannot claim builds; retrying");
                tokio::select! {
                    () = shutdown.wait() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
            }
        }
    }
    Ok(())
}
