//! Reconciling instances against the control plane's desired state: every app whose
//! current deploy is running has one instance of that deploy here, and nothing else runs.
//! The first pass, at start, restores what a platform restart stopped; later passes heal
//! an instance the runner lost and stop one that is no longer wanted.

use crate::{Runner, bare_report};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tovuk_api_types::{InstanceReport, InstanceStatus};
use tovuk_daemon::Shutdown;

/// How often the running instances are compared with the desired ones.
const RECONCILE_EVERY: Duration = Duration::from_secs(10);

impl Runner {
    /// Reconciles until `shutdown` fires, once at once and then every few seconds.
    pub(crate) async fn reconcile(self: Arc<Self>, shutdown: Shutdown) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(RECONCILE_EVERY);
        loop {
            tokio::select! {
                () = shutdown.wait() => return Ok(()),
                _ = tick.tick() => {}
            }
            let desired = match self.client.current_releases().await {
                Ok(current) => current.releases,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the desired releases; trying again");
                    continue;
                }
            };
            let wanted: HashSet<&str> = desired.iter().map(|release| release.app.as_str()).collect();
            // A deploy that could not start is not tried again until the app's deploy changes.
            let desired_ids: HashSet<String> = desired.iter().map(|release| release.deploy_id.clone()).collect();
            if let Ok(mut failed) = self.failed_starts.lock() {
                failed.retain(|deploy_id| desired_ids.contains(deploy_id));
            }
            for (app, instance) in self.serving_snapshot() {
                if !wanted.contains(app.as_str()) && self.claim_app(&app) {
                    tracing::info!(%app, deploy_id = %instance.launch.deploy_id, "instance no longer wanted: stopping it");
                    if let Ok(mut serving) = self.serving.lock() {
                        serving.remove(&app);
                    }
                    self.retire(instance, None).await;
                    self.release_app(&app);
                }
            }
            for release in desired {
                let failed_before = self.failed_starts.lock().is_ok_and(|failed| failed.contains(&release.deploy_id));
                if failed_before || self.serves(&release.app, &release.deploy_id) || !self.claim_app(&release.app) {
                    continue;
                }
                let runner = self.clone();
                self.shutdown.spawn("reconcile-app", async move {
                    match runner.start_serving(&release, true).await {
                        Ok(()) => tracing::info!(app = %release.app, deploy_id = %release.deploy_id, "instance started to match the desired state"),
                        Err(failure) => {
                            let reason = failure.first_actionable_line.unwrap_or_else(|| failure.reason.to_string());
                            tracing::error!(app = %release.app, deploy_id = %release.deploy_id, %reason, "cannot start the app's current deploy");
                            if let Ok(mut failed) = runner.failed_starts.lock() {
                                failed.insert(release.deploy_id.clone());
                            }
                            let report = InstanceReport { reason: Some(reason), ..bare_report(&release.deploy_id, InstanceStatus::Failed) };
                            if let Err(error) = runner.client.report_instance(&report).await {
                                tracing::warn!(%error, "cannot report the app that could not start");
                            }
                        }
                    }
                    runner.release_app(&release.app);
                    Ok(())
                });
            }
        }
    }
}

impl Runner {
    /// Marks `app` as being started or stopped by one task; false when another has it.
    pub(crate) fn claim_app(&self, app: &str) -> bool {
        self.busy.lock().is_ok_and(|mut busy| busy.insert(app.to_owned()))
    }

    pub(crate) fn release_app(&self, app: &str) {
        if let Ok(mut busy) = self.busy.lock() {
            busy.remove(app);
        }
    }

    /// Whether an instance of `deploy_id` serves `app` here.
    fn serves(&self, app: &str, deploy_id: &str) -> bool {
        let process = self
            .serving
            .lock()
            .is_ok_and(|serving| serving.get(app).is_some_and(|instance| instance.launch.deploy_id == deploy_id));
        process || self.serving_static.lock().is_ok_and(|statics| statics.get(app).is_some_and(|id| id == deploy_id))
    }

    fn serving_snapshot(&self) -> Vec<(String, crate::Instance)> {
        self.serving
            .lock()
            .map(|serving| serving.iter().map(|(app, instance)| (app.clone(), instance.clone())).collect())
            .unwrap_or_default()
    }
}
