//! A new release's first moments. It serves at once, but what it replaced stays up until
//! it has stayed healthy for `[health] min_healthy`: a crash or a failed health probe
//! sooner sends the traffic back (the deploy ends `failed`, `crashed_after_healthy`) and
//! the deploy before it stays current. Once proved, what it replaced is superseded and
//! drained.

use crate::instance::{self, Instance, Life};
use crate::{Runner, release};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tovuk_api_types::{ClaimedRelease, DeployFailure, FailureReason};

/// What served the app before the release.
pub(crate) enum Previous {
    /// Its instances, kept running (without new requests) through the window.
    Processes(Vec<Instance>),
    /// A static deploy (the router serves its files): nothing to keep running.
    Static(String),
}

impl Previous {
    /// What served before: the instances it had, or else its static deploy.
    pub(crate) fn of(instances: Option<Vec<Instance>>, static_deploy: Option<String>) -> Option<Previous> {
        match (instances, static_deploy) {
            (Some(instances), _) => Some(Previous::Processes(instances)),
            (None, Some(deploy_id)) => Some(Previous::Static(deploy_id)),
            (None, None) => None,
        }
    }
}

/// A release proving itself.
pub(crate) struct Proof {
    pub release: ClaimedRelease,
    /// Every instance of the release that started.
    pub instances: Vec<Instance>,
    pub previous: Previous,
    pub health: Option<tovuk_manifest::Health>,
    pub min_healthy: Duration,
    /// The route table version that sent the traffic to the release.
    pub route_version: u64,
}

/// Probes at least this often inside the window, whatever `[health] interval` says.
const WINDOW_PROBE_EVERY: Duration = Duration::from_secs(1);

impl Runner {
    /// Watches the release through its window, then settles it or rolls it back.
    pub(crate) fn prove(self: &Arc<Self>, proof: Proof) {
        let ended_early = CancellationToken::new();
        let entry = (proof.release.deploy_id.clone(), ended_early.clone());
        if let Ok(mut windows) = self.windows.lock()
            && let Some((_, older)) = windows.insert(proof.release.app.clone(), entry)
        {
            older.cancel();
        }
        let runner = self.clone();
        self.shutdown.spawn("release-window", async move {
            let failure = tokio::select! {
                failure = watch_window(&proof) => failure,
                // A newer release is going live: this one proved enough.
                () = ended_early.cancelled() => None,
                // The next start settles it (the control plane supersedes what it replaced).
                () = runner.shutdown.wait() => return Ok(()),
            };
            if let Ok(mut windows) = runner.windows.lock()
                && windows.get(&proof.release.app).is_some_and(|(deploy_id, _)| *deploy_id == proof.release.deploy_id)
            {
                windows.remove(&proof.release.app);
            }
            match failure {
                None => runner.settle(&proof.release, Some(proof.previous), Some(proof.route_version)).await,
                Some(failure) => runner.roll_back(proof, failure).await,
            }
            Ok(())
        });
    }

    /// The release keeps the traffic: what it replaced is superseded, then drained and
    /// stopped once the routers serve by `route_version`.
    pub(crate) async fn settle(
        &self,
        release: &ClaimedRelease,
        previous: Option<Previous>,
        route_version: Option<u64>,
    ) {
        match self.client.release_settled(&release.deploy_id).await {
            Ok(settled) if !settled.superseded.is_empty() => {
                tracing::info!(app = %release.app, deploy_id = %release.deploy_id, superseded = ?settled.superseded, "release settled");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, app = %release.app, "cannot settle the release; the next start does"),
        }
        if let Some(Previous::Processes(previous)) = previous {
            self.retire(previous, route_version).await;
        }
        self.prune_releases(&release.app, &release.deploy_id).await;
    }

    /// Sends the traffic back to what served before, and stops the release's instances.
    pub(crate) async fn roll_back(self: &Arc<Self>, proof: Proof, failure: DeployFailure) {
        let app = proof.release.app.clone();
        let mut rolled = None;
        for attempt in 1..=3u64 {
            match self.client.release_rolled_back(&proof.release.deploy_id, &failure).await {
                Ok(answer) => {
                    rolled = Some(answer);
                    break;
                }
                Err(error) => {
                    tracing::error!(%error, %app, attempt, "cannot roll the release back");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
            }
        }
        let Some(rolled) = rolled.filter(|rolled| rolled.current.is_some()) else {
            // Nothing to return to: the release keeps serving (and restarting).
            self.settle(&proof.release, Some(proof.previous), None).await;
            return;
        };
        tracing::warn!(%app, deploy_id = %proof.release.deploy_id, reason = ?failure.first_actionable_line, "release crashed before it settled; traffic is back on the deploy before it");
        match proof.previous {
            Previous::Processes(previous) => {
                if let Ok(mut serving) = self.serving.lock() {
                    serving.insert(app.clone(), previous.clone());
                }
                for instance in previous {
                    self.watch(instance);
                }
            }
            Previous::Static(deploy_id) => {
                if let Ok(mut serving) = self.serving.lock() {
                    serving.remove(&app);
                }
                if let Ok(mut statics) = self.serving_static.lock() {
                    statics.insert(app.clone(), deploy_id);
                }
            }
        }
        self.retire(proof.instances, Some(rolled.route_version)).await;
    }
}

/// Watches a release's instances through `min_healthy`: `Some` with the first failure when
/// one crashed or failed a health probe, `None` when all stayed healthy (or were stopped by
/// someone else).
async fn watch_window(proof: &Proof) -> Option<DeployFailure> {
    let deadline = tokio::time::Instant::now() + proof.min_healthy;
    // Ended with the window: dropping the set stops the watches still running.
    let mut watches = tokio::task::JoinSet::new();
    for instance in &proof.instances {
        // A background process has no health path: it proves itself by staying up.
        let health = proof.health.clone().filter(|_| instance.launch.process.is_none());
        watches.spawn(watch_instance(instance.clone(), health, proof.min_healthy, deadline));
    }
    while let Some(watched) = watches.join_next().await {
        if let Ok(Some(failure)) = watched {
            return Some(failure);
        }
    }
    None
}

async fn watch_instance(
    instance: Instance,
    health: Option<tovuk_manifest::Health>,
    min_healthy: Duration,
    deadline: tokio::time::Instant,
) -> Option<DeployFailure> {
    let mut life = instance.watch();
    let every = health.as_ref().map_or(WINDOW_PROBE_EVERY, |health| health.interval.min(WINDOW_PROBE_EVERY));
    let window = tovuk_manifest::format_duration(min_healthy);
    loop {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return None;
        }
        tokio::select! {
            changed = life.changed() => {
                if changed.is_err() {
                    return None;
                }
                let last_exit = match &*life.borrow() {
                    Life::Running { .. } | Life::Starting => continue,
                    Life::Stopped => return None,
                    Life::Restarting { last_exit, .. } | Life::CrashLooping { last_exit, .. } => *last_exit,
                    Life::ExitedEarly { code } => *code,
                };
                let exit = last_exit.map_or_else(|| "with an unknown code".to_owned(), |code| format!("with code {code}"));
                let why = format!("the app exited {exit} within its first {window} of serving ([health] min_healthy)");
                return Some(crashed(why, &instance, last_exit));
            }
            () = tokio::time::sleep(every.min(deadline - now)) => {
                let Some(health) = &health else { continue };
                if tokio::time::Instant::now() >= deadline {
                    return None;
                }
                if let Err(why) = instance::probe(&instance, &health.path).await {
                    let why = format!(
                        "the health check failed within the first {window} of serving ([health] min_healthy): {why}"
                    );
                    return Some(crashed(why, &instance, None));
                }
            }
        }
    }
}

fn crashed(why: String, instance: &Instance, exit_code: Option<i32>) -> DeployFailure {
    let mut failure =
        release::failure(FailureReason::CrashedAfterHealthy, crate::with_last_output(why, &instance.tail()));
    failure.exit_code = exit_code.map(i64::from);
    failure
}
