//! The runner role: takes deploys whose artifact is sealed, verifies and unpacks them,
//! starts the app in the sandbox, waits for its health path, and only then moves the
//! app's traffic to it; the instance it replaces drains, then stops.
//!
//! It reaches state through the control-plane API and owns no routes: it reports each
//! instance (healthy at an address, crashing, failed) and the control plane routes by
//! that. Through [`Traffic`] it sees when the routers stopped sending a replaced
//! instance new requests, and drains it before stopping it.

mod instance;
mod reconcile;
mod release;
mod signal;
mod usage;

use instance::{Instance, Launch, Life};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tovuk_api_types::{ClaimedRelease, DeployFailure, FailureReason, InstanceReport, InstanceStatus};
use tovuk_client::Client;
use tovuk_daemon::Shutdown;
use tovuk_manifest::AppKind;

/// What the runner sees of the routers' traffic, to drain a replaced instance.
pub trait Traffic: Send + Sync + 'static {
    /// The version of the control plane's route table the routers serve by.
    fn routed_version(&self) -> u64;
    /// Requests (and tunnels) in flight to `upstream`.
    fn in_flight(&self, upstream: SocketAddr) -> usize;
}

/// How long a replaced instance waits for the routers to serve by the table that
/// no longer sends it requests, before draining regardless.
const ROUTE_SWITCH_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The data directory; the runner reads repositories, artifacts and the build public
    /// key, and writes releases and volumes (see `DataLayout`).
    pub layout: tovuk_types::DataLayout,
    pub api_url: String,
    pub node_secret: String,
    /// How long a replaced instance may take to finish its in-flight requests.
    pub drain_timeout: Duration,
    /// Opens the app's config values, just before an instance starts.
    pub secrets_key: Arc<tovuk_secrets::MasterKey>,
}

struct Runner {
    client: Client,
    /// Instances' output on its way to the app logs.
    logs: tokio::sync::mpsc::Sender<tovuk_api_types::AppLogLine>,
    config: RunnerConfig,
    traffic: Arc<dyn Traffic>,
    /// The instance serving each app.
    serving: Mutex<HashMap<String, Instance>>,
    /// Every task the runner starts runs under it.
    shutdown: Shutdown,
    /// The deploy each static app serves (the router serves its files; no process runs).
    serving_static: Mutex<HashMap<String, String>>,
    /// Apps a task is starting or stopping right now: reconciling leaves them alone.
    busy: Mutex<std::collections::HashSet<String>>,
    /// Current deploys that could not be started here; not tried again while current.
    failed_starts: Mutex<std::collections::HashSet<String>>,
}

/// Runs the runner until `shutdown` fires; the apps it started are stopped then.
pub async fn run(config: RunnerConfig, traffic: Arc<dyn Traffic>, shutdown: Shutdown) -> anyhow::Result<()> {
    let client = Client::for_node(&config.api_url, &config.node_secret)?;
    let (logs, log_rx) = tokio::sync::mpsc::channel(10_000);
    shutdown.spawn("app-logs", ship_logs(client.clone(), log_rx, shutdown.clone()));
    let runner = Arc::new(Runner {
        client,
        logs,
        config,
        traffic,
        serving: Mutex::default(),
        shutdown: shutdown.clone(),
        serving_static: Mutex::default(),
        busy: Mutex::default(),
        failed_starts: Mutex::default(),
    });
    shutdown.spawn("instance-usage", runner.clone().measure_usage(shutdown.clone()));
    // Its first pass restores what a restart stopped.
    shutdown.spawn("reconcile", runner.clone().reconcile(shutdown.clone()));
    let mut errors: u32 = 0;
    loop {
        let claimed = tokio::select! {
            () = shutdown.wait() => break,
            claimed = runner.client.claim_release() => claimed,
        };
        match claimed {
            Ok(Some(release)) => {
                errors = 0;
                let runner = runner.clone();
                shutdown.spawn("release", async move {
                    runner.take_live(release).await;
                    Ok(())
                });
            }
            Ok(None) => {}
            Err(error) => {
                errors += 1;
                tracing::warn!(%error, errors, "cannot claim releases; retrying");
                tokio::select! {
                    () = shutdown.wait() => break,
                    () = tokio::time::sleep(Duration::from_millis(200 * u64::from(errors.min(25)))) => {}
                }
            }
        }
    }
    let instances: Vec<Instance> =
        runner.serving.lock().map(|serving| serving.values().cloned().collect()).unwrap_or_default();
    for instance in instances {
        instance.stop().await;
    }
    Ok(())
}

fn report(instance: &Instance, status: InstanceStatus, life: &Life) -> InstanceReport {
    let serves = matches!(life, Life::Running { .. } | Life::Restarting { .. });
    let (pid, started_at, restarts, last_exit) = match life {
        Life::Running { pid, started_at } => (Some(i64::from(*pid)), Some(started_at.clone()), 0, None),
        Life::Restarting { restarts, last_exit } | Life::CrashLooping { restarts, last_exit } => {
            (None, None, i64::from(*restarts), Some(i64::from(*last_exit)))
        }
        _ => (None, None, 0, None),
    };
    InstanceReport {
        deploy_id: instance.launch.deploy_id.clone(),
        status,
        pid,
        port: Some(i64::from(instance.launch.port)),
        started_at,
        restarts,
        last_exit_code: last_exit,
        last_exit_at: last_exit.map(|_| chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        upstream: (serves && instance.launch.kind == AppKind::Web).then(|| instance.addr()),
        static_root: None,
        reason: None,
    }
}

/// A report of an instance that serves nothing: a static release, or one that could not start.
fn bare_report(deploy_id: &str, status: InstanceStatus) -> InstanceReport {
    InstanceReport {
        deploy_id: deploy_id.to_owned(),
        status,
        pid: None,
        port: None,
        started_at: None,
        restarts: 0,
        last_exit_code: None,
        last_exit_at: None,
        upstream: None,
        static_root: None,
        reason: None,
    }
}

impl Runner {
    /// Takes a claimed deploy live, or fails it and leaves the current one serving.
    async fn take_live(self: &Arc<Self>, release: ClaimedRelease) {
        // Reconciling waits while the app changes hands; the claim is one per app at a time.
        while !self.claim_app(&release.app) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let outcome = self.start_serving(&release, false).await;
        self.release_app(&release.app);
        match outcome {
            Ok(()) => tracing::info!(app = %release.app, deploy_id = %release.deploy_id, "running"),
            Err(failure) => {
                tracing::warn!(app = %release.app, deploy_id = %release.deploy_id, reason = %failure.reason, "deploy failed to go live");
                if let Err(error) = self.client.release_failed(&release.deploy_id, &failure).await {
                    tracing::warn!(%error, "cannot report the failed release");
                }
            }
        }
    }

    /// Prepares, starts and health-gates a release, then routes the app to it and retires
    /// what served before. `restoring` reuses the unpacked release and re-routes an app
    /// that was already live.
    async fn start_serving(self: &Arc<Self>, release: &ClaimedRelease, restoring: bool) -> Result<(), DeployFailure> {
        let prepared = release::prepare(&self.config.layout, release, restoring).await?;
        let manifest = &prepared.manifest;
        if manifest.kind() == AppKind::Static {
            let root = instance::static_root(&prepared.dir, manifest.static_root().unwrap_or("."));
            let instance_report =
                InstanceReport { static_root: Some(root), ..bare_report(&release.deploy_id, InstanceStatus::Healthy) };
            let route_version = if restoring {
                self.report_restored(&instance_report).await;
                None
            } else {
                match self.go_live(release, &instance_report).await {
                    Some(route_version) => Some(route_version),
                    None => return Ok(()),
                }
            };
            if let Ok(mut statics) = self.serving_static.lock() {
                statics.insert(release.app.clone(), release.deploy_id.clone());
            }
            let previous = self.serving.lock().ok().and_then(|mut serving| serving.remove(&release.app));
            if let Some(previous) = previous {
                self.retire(previous, route_version).await;
            }
            return Ok(());
        }
        let env =
            tovuk_secrets::open_env(&self.config.secrets_key, &release.app_id, &release.env).map_err(|error| {
                release::failure(
                    FailureReason::ConfigUnreadable,
                    format!("{error}; then: tovuk app restart {}", release.app),
                )
            })?;
        let command = manifest.run_command().unwrap_or_default().to_owned();
        let port = instance::free_port()
            .map_err(|error| release::failure(FailureReason::ReleaseFailed, format!("no free port: {error}")))?;
        let launch = Launch {
            app: release.app.clone(),
            kind: manifest.kind(),
            deploy_id: release.deploy_id.clone(),
            release_dir: prepared.dir.clone(),
            volume_dir: self.config.layout.volume_dir(&release.app),
            command,
            port,
            logs: self.logs.clone(),
            masker: Arc::new(tovuk_secrets::Masker::new(env.iter().map(|(_, value)| value.as_str()))),
            env: Arc::new(env),
        };
        let instance = instance::start(launch, &self.shutdown).map_err(|error| {
            release::failure(FailureReason::ReleaseFailed, format!("cannot start the app: {error}"))
        })?;
        let gate = match manifest.health() {
            Some(health) => instance::wait_healthy(&instance, &health.path, health.timeout, health.interval).await,
            None => worker_settles(&instance).await,
        };
        if let Err(why) = gate {
            let tail = instance.tail();
            instance.stop().await;
            let last = tail.iter().rev().find(|line| !line.trim().is_empty() && !line.starts_with("[tovuk]")).cloned();
            let line = match last {
                Some(last) => format!("{why}; last output: {last}"),
                None => why,
            };
            let mut failure = release::failure(FailureReason::HealthCheckFailed, line);
            failure.exit_code = match instance.life() {
                Life::ExitedEarly { code } => Some(i64::from(code)),
                _ => None,
            };
            return Err(failure);
        }
        instance.pass_gate();
        let healthy = report(&instance, InstanceStatus::Healthy, &instance.life());
        // Going live switches the app's route to this instance, in the control plane.
        let route_version = if restoring {
            self.report_restored(&healthy).await;
            None
        } else {
            match self.go_live(release, &healthy).await {
                Some(route_version) => Some(route_version),
                None => {
                    instance.stop().await;
                    return Ok(());
                }
            }
        };
        if let Ok(mut statics) = self.serving_static.lock() {
            statics.remove(&release.app);
        }
        let previous =
            self.serving.lock().ok().and_then(|mut serving| serving.insert(release.app.clone(), instance.clone()));
        self.watch(instance);
        if let Some(previous) = previous {
            self.retire(previous, route_version).await;
        }
        Ok(())
    }

    /// Reports the release live, which routes the app to it. Returns the route table
    /// version that does; `None` when it did not go live (the previous one keeps serving).
    async fn go_live(&self, release: &ClaimedRelease, instance: &InstanceReport) -> Option<u64> {
        match self.client.release_live(&release.deploy_id, instance).await {
            Ok(outcome) if outcome.live => {
                if let Some(superseded) = outcome.superseded {
                    tracing::info!(app = %release.app, superseded, "previous deploy superseded");
                }
                Some(outcome.route_version)
            }
            Ok(_) => {
                tracing::warn!(app = %release.app, deploy_id = %release.deploy_id, "the deploy ended before going live; stopping its instance");
                None
            }
            Err(error) => {
                tracing::error!(%error, app = %release.app, deploy_id = %release.deploy_id, "cannot report the release live; the previous instance keeps serving");
                None
            }
        }
    }

    /// An instance started again after a platform restart: the control plane routes to it.
    async fn report_restored(&self, instance: &InstanceReport) {
        if let Err(error) = self.client.report_instance(instance).await {
            tracing::warn!(%error, "cannot report the restored instance");
        }
    }

    /// Lets a replaced instance finish its in-flight requests, then stops it: first the
    /// routers must serve by the table that no longer sends it requests (`route_version`).
    async fn retire(&self, previous: Instance, route_version: Option<u64>) {
        let switch_deadline = tokio::time::Instant::now() + ROUTE_SWITCH_WAIT;
        while route_version.is_some_and(|version| self.traffic.routed_version() < version)
            && tokio::time::Instant::now() < switch_deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let deadline = tokio::time::Instant::now() + self.config.drain_timeout;
        while self.traffic.in_flight(previous.addr()) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        previous.stop().await;
        let _ = self.client.report_instance(&report(&previous, InstanceStatus::Stopped, &Life::Stopped)).await;
    }

    /// Measures the serving instances' CPU and memory every few seconds and reports it as usage.
    async fn measure_usage(self: Arc<Self>, shutdown: Shutdown) -> anyhow::Result<()> {
        let mut sampler = usage::Sampler::default();
        let mut tick = tokio::time::interval(usage::SAMPLE_EVERY);
        loop {
            tokio::select! {
                () = shutdown.wait() => return Ok(()),
                _ = tick.tick() => {}
            }
            let instances: Vec<(String, u32)> = self
                .serving
                .lock()
                .map(|serving| {
                    serving
                        .iter()
                        .filter_map(|(app, instance)| match instance.life() {
                            Life::Running { pid, .. } => Some((app.clone(), pid)),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            // It reads /proc: off the async threads, handing the sampler back.
            let sampled = tokio::task::spawn_blocking(move || {
                let batch = sampler.sample(&instances, usage::SAMPLE_EVERY);
                (sampler, batch)
            })
            .await;
            let Ok((returned, batch)) = sampled else { return Ok(()) };
            sampler = returned;
            if !batch.entries.is_empty()
                && let Err(error) = self.client.send_usage(&batch).await
            {
                tracing::warn!(%error, "cannot report instance usage");
            }
        }
    }

    /// Follows an instance's life after it went live: crash loops take its route down
    /// (503), a recovery brings it back, and the control plane hears of each change.
    fn watch(self: &Arc<Self>, instance: Instance) {
        let runner = self.clone();
        self.shutdown.spawn("instance-watch", async move {
            let mut life = instance.watch();
            while life.changed().await.is_ok() {
                let now = life.borrow().clone();
                let still_serving = runner
                    .serving
                    .lock()
                    .map(|serving| {
                        serving
                            .get(&instance.launch.app)
                            .is_some_and(|i| i.launch.deploy_id == instance.launch.deploy_id)
                    })
                    .unwrap_or(false);
                if !still_serving || matches!(now, Life::Stopped | Life::ExitedEarly { .. }) {
                    return Ok(());
                }
                let status = match &now {
                    Life::Running { .. } => InstanceStatus::Healthy,
                    Life::Restarting { .. } => InstanceStatus::Restarting,
                    Life::CrashLooping { .. } => InstanceStatus::Crashing,
                    _ => continue,
                };
                // A crash loop takes the route down (503) and a recovery brings it back:
                // the control plane routes by what is reported here.
                if let Err(error) = runner.client.report_instance(&report(&instance, status, &now)).await {
                    tracing::warn!(%error, app = %instance.launch.app, %status, "cannot report the instance");
                }
            }
            Ok(())
        });
    }
}

/// A worker without a health path is live once it has stayed up for a moment.
async fn worker_settles(instance: &Instance) -> Result<(), String> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    match instance.life() {
        Life::ExitedEarly { code } => Err(format!("the process exited with code {code} right after starting")),
        _ => Ok(()),
    }
}

/// Sends instances' output to the control plane in batches, a few times a second.
async fn ship_logs(
    client: Client,
    mut lines: tokio::sync::mpsc::Receiver<tovuk_api_types::AppLogLine>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let mut batch = Vec::new();
    loop {
        let line = tokio::select! {
            line = lines.recv() => line,
            () = shutdown.wait() => None,
        };
        let Some(line) = line else { break };
        batch.push(line);
        // Gather what arrives in the next moment into the same request.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        while batch.len() < 500 {
            match tokio::time::timeout_at(deadline, lines.recv()).await {
                Ok(Some(line)) => batch.push(line),
                Ok(None) | Err(_) => break,
            }
        }
        let sent = tovuk_api_types::AppLogBatch { lines: std::mem::take(&mut batch) };
        if let Err(error) = client.send_app_logs(&sent).await {
            tracing::warn!(%error, lines = sent.lines.len(), "cannot ship app logs");
        }
    }
    Ok(())
}
