//! Cron resources on the wire: `tovuk cron list|history|run`, and a run as the control
//! plane hands it to the runner and the runner reports its end.

use serde::{Deserialize, Serialize};
use tovuk_types::values::{CronRunStatus, CronTrigger, ResourceStatus};

/// One run of a cron resource (or a tick not run: `skipped`, `missed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CronRun {
    /// `run_…`: the run's `TOVUK_CRON_RUN_ID`.
    pub id: String,
    pub app: String,
    pub binding: String,
    /// The cron resource (`res_…`).
    pub resource_id: String,
    /// The release it ran from; `null` when it did not run.
    pub deploy_id: Option<String>,
    #[serde(with = "crate::text")]
    pub trigger: CronTrigger,
    /// The tick it stands for (its `TOVUK_CRON_SCHEDULED_AT`); for a manual run, when it was
    /// asked for; for a missed range, its last tick.
    pub scheduled_at: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    /// From start to end, once it ended.
    pub duration_ms: Option<u64>,
    pub exit_code: Option<i64>,
    #[serde(with = "crate::text")]
    pub status: CronRunStatus,
    /// Why it was skipped, missed, failed without an exit code or timed out.
    pub reason: Option<String>,
}

/// One cron resource of an app, for `tovuk cron list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CronJob {
    pub binding: String,
    /// `res_…`.
    pub resource_id: String,
    /// `active` while the current deploy declares it; a detached one does not run.
    #[serde(with = "crate::text")]
    pub status: ResourceStatus,
    /// As the current deploy declares it; `null` when it does not.
    pub schedule: Option<String>,
    pub command: Option<String>,
    /// How long one run may take (`timeout`).
    pub timeout_ms: Option<u64>,
    /// The next tick (UTC); `null` when it does not run.
    pub next_run_at: Option<String>,
    /// Its newest run, of any status.
    pub last_run: Option<CronRun>,
}

/// `GET /v1/apps/{app}/cron`: `tovuk cron list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CronList {
    pub app: String,
    pub jobs: Vec<CronJob>,
}

/// `GET /v1/apps/{app}/cron/runs?binding=&limit=`: `tovuk cron history`, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CronHistory {
    pub app: String,
    /// Only this binding's runs; `null`: every binding's.
    pub binding: Option<String>,
    pub runs: Vec<CronRun>,
}

/// A run the control plane hands the runner: run `command` from `deploy_id`'s release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CronStart {
    pub run_id: String,
    pub app: String,
    pub deploy_id: String,
    pub binding: String,
    pub command: String,
    pub scheduled_at: String,
    pub timeout_ms: u64,
}

/// `POST /internal/v1/cron/runs/{id}/end`: how a run ended, as the runner saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CronRunEnd {
    /// `succeeded`, `failed` or `timed_out`.
    #[serde(with = "crate::text")]
    pub status: CronRunStatus,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
}
