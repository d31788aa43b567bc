//! Cron runs: a cron resource's `command`, run once from the app's current release in its
//! sandbox (its config, resources and `/data`, as its instances have them), like the
//! release phase; then how it ended is reported to the control plane, which scheduled it.
//!
//! A run's output is the app's log under `<deploy>.cron.<binding>`. It gets
//! `TOVUK_CRON_SCHEDULED_AT` and `TOVUK_CRON_RUN_ID`, and is stopped at its `timeout`.
//! It dies with the platform: a restart records it failed, it is not adopted.

use crate::instance::{self, Life};
use crate::{Environment, ResourceHost, Runner, Starter, release, with_last_output};
use std::sync::Arc;
use std::time::Duration;
use tovuk_api_types::{ApiError, CronRunEnd, CronStart, ErrorCode};
use tovuk_manifest::ResourceKind;
use tovuk_types::values::CronRunStatus;
use zeroize::Zeroizing;

/// How long a run waits for its app to be running here (after a platform start, until the
/// runner has brought the app back).
const APP_WAIT: Duration = Duration::from_secs(60);

/// How many times the end of a run is reported before giving up (a restart records it
/// failed then).
const END_REPORTS: u32 = 5;

impl ResourceHost {
    /// Starts `run` on this machine's runner: Ok once its process runs.
    /// A tick caught up at start may come before the runner has started: it waits for it.
    pub async fn start_cron(&self, run: &CronStart) -> Result<(), ApiError> {
        let deadline = tokio::time::Instant::now() + APP_WAIT;
        let runner = loop {
            if let Some(runner) = self.runner() {
                break runner;
            }
            if tokio::time::Instant::now() >= deadline || self.stopping() {
                return Err(ApiError::new(ErrorCode::Internal, "the runner is not running on this server"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        runner.start_cron(run.clone()).await
    }
}

fn refused(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidState, message)
}

impl Runner {
    /// Starts a cron run from its deploy's release, once that deploy runs here; its end is
    /// waited for (and reported) by a task of its own.
    async fn start_cron(self: &Arc<Self>, run: CronStart) -> Result<(), ApiError> {
        self.wait_serving(&run).await?;
        let current = self.client.current_releases().await.map_err(|error| {
            ApiError::new(ErrorCode::Internal, format!("cannot read the app's current release: {error}"))
        })?;
        let claimed = current
            .releases
            .into_iter()
            .find(|release| release.app == run.app && release.deploy_id == run.deploy_id)
            .ok_or_else(|| refused(format!("`{}` is no longer the current deploy of `{}`", run.deploy_id, run.app)))?;
        let (layout, read) = (self.config.layout.clone(), claimed.clone());
        let manifest = tokio::task::spawn_blocking(move || release::read_manifest(&layout, &read))
            .await
            .map_err(|error| refused(format!("reading the release's contract stopped: {error}")))?
            .map_err(|failure| refused(failure.first_actionable_line.unwrap_or_default()))?;
        let index = manifest
            .resources()
            .iter()
            .filter(|resource| resource.kind == ResourceKind::Cron)
            .position(|resource| resource.binding == run.binding)
            .ok_or_else(|| refused(format!("the release does not declare the cron job `{}`", run.binding)))?;
        let dir = self.config.layout.release_dir(&run.app, &run.deploy_id);
        if !dir.is_dir() {
            return Err(refused(format!("the release of `{}` is not unpacked on this machine", run.deploy_id)));
        }
        let prepared = release::Release { dir, manifest, reused: true };
        let why = |failure: tovuk_api_types::DeployFailure| refused(failure.first_actionable_line.unwrap_or_default());
        let Environment { env, masker, endpoints, hosts } = self.environment(&claimed).await.map_err(why)?;
        let mut env = (*env).clone();
        env.retain(|(name, _)| !name.starts_with("TOVUK_CRON_"));
        env.extend([
            ("TOVUK_CRON_SCHEDULED_AT".to_owned(), Zeroizing::new(run.scheduled_at.clone())),
            ("TOVUK_CRON_RUN_ID".to_owned(), Zeroizing::new(run.run_id.clone())),
        ]);
        let starter = Starter {
            release: &claimed,
            prepared: &prepared,
            env: Arc::new(env),
            masker,
            endpoints,
            hosts,
            restoring: false,
        };
        self.prepare_volume(&run.app, &prepared.manifest).await.map_err(why)?;
        let port = instance::free_port().map_err(|error| refused(format!("no free port: {error}")))?;
        let mut launch = self.launch(&starter, instance::cron_slot(index), &run.command, port);
        launch.health = None;
        launch.cron = Some(run.binding.clone());
        tracing::info!(app = %run.app, binding = %run.binding, run_id = %run.run_id, command = %run.command, "cron run");
        let process = instance::start(launch, &self.shutdown, None)
            .map_err(|error| refused(format!("cannot start the command: {error}")))?;
        let runner = self.clone();
        self.shutdown.spawn("cron-run", async move {
            let end = tokio::select! {
                end = ended(&process, &run) => end,
                // The platform stops: so does the run (the next start records it failed).
                () = runner.shutdown.wait() => return Ok(()),
            };
            runner.report_end(&run, &end).await;
            Ok(())
        });
        Ok(())
    }

    /// Waits (a while at most) until the run's deploy serves its app here.
    async fn wait_serving(&self, run: &CronStart) -> Result<(), ApiError> {
        let deadline = tokio::time::Instant::now() + APP_WAIT;
        loop {
            if self.failed_starts.lock().is_ok_and(|failed| failed.contains(&run.deploy_id)) {
                return Err(refused(format!(
                    "`{}` could not start on this machine (tovuk app status {})",
                    run.deploy_id, run.app
                )));
            }
            if self.serves(&run.app, &run.deploy_id) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(refused(format!(
                    "`{}` of `{}` does not run on this machine (tovuk app status {})",
                    run.deploy_id, run.app, run.app
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Tells the control plane how `run` ended, trying again a few times.
    async fn report_end(&self, run: &CronStart, end: &CronRunEnd) {
        for attempt in 1..=END_REPORTS {
            match self.client.cron_run_ended(&run.run_id, end).await {
                Ok(_) => return,
                Err(error) => {
                    tracing::warn!(%error, run_id = %run.run_id, attempt, "cannot report the end of a cron run");
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                }
            }
        }
    }
}

/// Waits for the run's process to end, stopping it at its timeout, and says how it ended.
/// Returns once its last output is read (its directory is then free for the next run).
async fn ended(process: &instance::Instance, run: &CronStart) -> CronRunEnd {
    let timeout = Duration::from_millis(run.timeout_ms);
    let mut life = process.watch();
    let exited = tokio::time::timeout(timeout, life.wait_for(|life| matches!(life, Life::ExitedEarly { .. })))
        .await
        .ok()
        .and_then(Result::ok)
        .map(|life| life.clone());
    let tail = process.tail();
    process.stop().await;
    match exited {
        Some(Life::ExitedEarly { code: Some(0) }) => {
            CronRunEnd { status: CronRunStatus::Succeeded, exit_code: Some(0), reason: None }
        }
        Some(Life::ExitedEarly { code: Some(code) }) => CronRunEnd {
            status: CronRunStatus::Failed,
            exit_code: Some(i64::from(code)),
            reason: Some(with_last_output(format!("the command exited with code {code}"), &tail)),
        },
        Some(_) => CronRunEnd {
            status: CronRunStatus::Failed,
            exit_code: None,
            reason: Some(with_last_output("the command ended without an exit code (a signal)".to_owned(), &tail)),
        },
        None => CronRunEnd {
            status: CronRunStatus::TimedOut,
            exit_code: None,
            reason: Some(format!(
                "still going at its timeout of {}: stopped (raise `timeout` of the cron resource in tovuk.toml)",
                tovuk_manifest::format_duration(timeout)
            )),
        },
    }
}
