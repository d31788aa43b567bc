//! Reconciling instances against the control plane's desired state: every app whose
//! current deploy is running has one instance of that deploy here, and nothing else runs.
//! The first pass, at start, restores what a platform restart stopped; later passes heal
//! an instance the runner lost and stop one that is no longer wanted.

use crate::{Runner, bare_report, process};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tovuk_api_types::{InstanceReport, InstanceStatus};
use tovuk_daemon::Shutdown;

/// How often the running instances are compared with the desired ones.
const RECONCILE_EVERY: Duration = Duration::from_secs(10);

impl Runner {
    /// Reconciles until `shutdown` fires, once at once and then every few seconds. The
    /// first pass adopts the instances that outlived the last run (waiting for those
    /// before `restored` fires), starts the apps whose instance is gone, and stops
    /// instances nobody wants any more.
    pub(crate) async fn reconcile(
        self: Arc<Self>,
        shutdown: Shutdown,
        restored: tokio::sync::oneshot::Sender<()>,
    ) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(RECONCILE_EVERY);
        let mut restored = Some(restored);
        loop {
            tokio::select! {
                () = shutdown.wait() => return Ok(()),
                _ = tick.tick() => {}
            }
            let desired = match self.client.current_releases().await {
                Ok(current) => current.releases,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the desired releases; trying again");
                    if restored.is_some() {
                        tick.reset_after(Duration::from_millis(200));
                    }
                    continue;
                }
            };
            let first_pass = restored.is_some();
            if first_pass {
                self.stop_unwanted_instances(&desired).await;
            }
            let wanted: HashSet<&str> = desired.iter().map(|release| release.app.as_str()).collect();
            // A deploy that could not start is not tried again until the app's deploy changes.
            let desired_ids: HashSet<String> = desired.iter().map(|release| release.deploy_id.clone()).collect();
            if let Ok(mut failed) = self.failed_starts.lock() {
                failed.retain(|deploy_id| desired_ids.contains(deploy_id));
            }
            for (app, instances) in self.serving_snapshot() {
                if !wanted.contains(app.as_str()) && self.claim_app(&app) {
                    tracing::info!(%app, instances = instances.len(), "instances no longer wanted: stopping them");
                    if let Ok(mut serving) = self.serving.lock() {
                        serving.remove(&app);
                    }
                    self.retire(instances, None).await;
                    self.release_app(&app);
                }
            }
            let mut adoptions = tokio::task::JoinSet::new();
            for release in desired {
                let failed_before = self.failed_starts.lock().is_ok_and(|failed| failed.contains(&release.deploy_id));
                if failed_before || self.serves(&release.app, &release.deploy_id) || !self.claim_app(&release.app) {
                    continue;
                }
                // Only adoptions are waited for: a start from scratch may take long.
                let adoptable = process::Record::read(&self.config.layout.instance_dir(&release.deploy_id, 0))
                    .is_some_and(|record| record.is_alive());
                let runner = self.clone();
                let restore = async move {
                    runner.restore(release).await;
                    Ok(())
                };
                if first_pass && adoptable {
                    adoptions.spawn(restore);
                } else {
                    self.shutdown.spawn("reconcile-app", restore);
                }
            }
            // The routers wait for what can be adopted at once; a start from scratch
            // answers 503 "starting" meanwhile.
            while adoptions.join_next().await.is_some() {}
            if let Some(restored) = restored.take() {
                let _ = restored.send(());
            }
        }
    }

    /// Brings back an app's current deploy: adopts its instance or starts one.
    pub(crate) async fn restore(self: &Arc<Self>, release: tovuk_api_types::ClaimedRelease) {
        match self.start_serving(&release, true).await {
            Ok(()) => {
                tracing::info!(app = %release.app, deploy_id = %release.deploy_id, "instance serving to match the desired state")
            }
            Err(failure) => {
                let reason = failure.first_actionable_line.unwrap_or_else(|| failure.reason.to_string());
                tracing::error!(app = %release.app, deploy_id = %release.deploy_id, %reason, "cannot start the app's current deploy");
                if let Ok(mut failed) = self.failed_starts.lock() {
                    failed.insert(release.deploy_id.clone());
                }
                let report =
                    InstanceReport { reason: Some(reason), ..bare_report(&release.deploy_id, InstanceStatus::Failed) };
                if let Err(error) = self.client.report_instance(&report).await {
                    tracing::warn!(%error, "cannot report the app that could not start");
                }
            }
        }
        self.release_app(&release.app);
    }

    /// Stops the instances that outlived the last run but are no longer wanted (a deploy
    /// replaced or rolled back meanwhile, or one caught going live).
    async fn stop_unwanted_instances(&self, desired: &[tovuk_api_types::ClaimedRelease]) {
        let wanted: HashSet<&str> = desired.iter().map(|release| release.deploy_id.as_str()).collect();
        let Ok(entries) = std::fs::read_dir(self.config.layout.instances_dir()) else { return };
        let mut stopping = tokio::task::JoinSet::new();
        for entry in entries.flatten() {
            // `<deploy>` holds a deploy's first instance, `<deploy>.<slot>` the others.
            let name = entry.file_name().to_string_lossy().into_owned();
            let deploy_id = name.split('.').next().unwrap_or_default().to_owned();
            if !wanted.contains(deploy_id.as_str()) {
                tracing::info!(%deploy_id, "an instance from the last run is no longer wanted: stopping it");
                stopping.spawn(async move { process::kill_recorded(&entry.path()).await });
            }
        }
        while stopping.join_next().await.is_some() {}
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
    pub(crate) fn serves(&self, app: &str, deploy_id: &str) -> bool {
        let process = self.serving.lock().is_ok_and(|serving| {
            serving
                .get(app)
                .is_some_and(|instances| instances.iter().any(|instance| instance.launch.deploy_id == deploy_id))
        });
        process || self.serving_static.lock().is_ok_and(|statics| statics.get(app).is_some_and(|id| id == deploy_id))
    }

    fn serving_snapshot(&self) -> Vec<(String, Vec<crate::Instance>)> {
        self.serving
            .lock()
            .map(|serving| serving.iter().map(|(app, instances)| (app.clone(), instances.clone())).collect())
            .unwrap_or_default()
    }
}
