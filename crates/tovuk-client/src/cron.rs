//! The cron API: `tovuk cron list|history|run`, and the runner reporting a run's end.

use crate::{Client, ClientError, segment};
use reqwest::Method;
use tovuk_api_types::{CronHistory, CronList, CronRun, CronRunEnd};

impl Client {
    pub async fn cron_jobs(&self, app: &str) -> Result<CronList, ClientError> {
        self.get(&format!("/v1/apps/{}/cron", segment(app))).await
    }

    /// The app's runs, newest first: of `binding`, or of every binding.
    pub async fn cron_history(&self, app: &str, binding: Option<&str>, limit: u32) -> Result<CronHistory, ClientError> {
        let only = binding.map(|binding| format!("&binding={}", segment(binding))).unwrap_or_default();
        self.get(&format!("/v1/apps/{}/cron/runs?limit={limit}{only}", segment(app))).await
    }

    pub async fn cron_run(&self, app: &str, id: &str) -> Result<CronRun, ClientError> {
        self.get(&format!("/v1/apps/{}/cron/runs/{}", segment(app), segment(id))).await
    }

    /// Starts a run of `binding` now (or records why it was skipped).
    pub async fn cron_run_now(&self, app: &str, binding: &str) -> Result<CronRun, ClientError> {
        self.send(self.request(Method::POST, &format!("/v1/apps/{}/cron/{}/runs", segment(app), segment(binding))))
            .await
    }

    /// The runner: how run `id` ended.
    pub async fn cron_run_ended(&self, id: &str, end: &CronRunEnd) -> Result<CronRun, ClientError> {
        self.post(&format!("/internal/v1/cron/runs/{}/end", segment(id)), end).await
    }
}
