//! The runs of cron resources: each tick run (from `running` to how it ended), skipped with
//! why, or missed while the platform was down. A binding runs one tick at a time, and a
//! scheduled tick is taken once.

use crate::time::{now_rfc3339, now_unix_ms};
use crate::{Store, StoreError, random_bytes};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use std::collections::HashMap;
use tovuk_types::CronRunId;
use tovuk_types::values::{CronRunStatus, CronTrigger};

/// One run of a cron resource, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronRunRecord {
    pub id: String,
    pub app_id: String,
    pub resource_id: String,
    pub binding: String,
    /// The release it ran from; `None` when it did not run.
    pub deploy_id: Option<String>,
    pub trigger: CronTrigger,
    /// The tick it stands for (RFC 3339 UTC); for a manual run, when it was asked for.
    pub scheduled_at: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub exit_code: Option<i64>,
    pub status: CronRunStatus,
    pub reason: Option<String>,
}

/// A tick about to be run (or recorded as not run).
#[derive(Debug, Clone)]
pub struct NewCronRun<'a> {
    pub app_id: &'a str,
    pub resource_id: &'a str,
    pub binding: &'a str,
    pub deploy_id: Option<&'a str>,
    pub trigger: CronTrigger,
    pub scheduled_at: &'a str,
    /// Said of a run that starts (a tick caught up at start); a skip says its own reason.
    pub reason: Option<&'a str>,
}

/// What [`Store::begin_cron_run`] did.
#[derive(Debug)]
pub enum CronBegun {
    /// Recorded `running`: start it.
    Started(CronRunRecord),
    /// Recorded `skipped`, with why.
    Skipped(CronRunRecord),
    /// This scheduled tick was recorded before: nothing was done.
    Taken(CronRunRecord),
}

fn record_from_row(row: &SqliteRow) -> Result<CronRunRecord, sqlx::Error> {
    let trigger: String = row.try_get("trigger")?;
    let status: String = row.try_get("status")?;
    Ok(CronRunRecord {
        id: row.try_get("id")?,
        app_id: row.try_get("app_id")?,
        resource_id: row.try_get("resource_id")?,
        binding: row.try_get("binding")?,
        deploy_id: row.try_get("deploy_id")?,
        trigger: CronTrigger::parse(&trigger).unwrap_or(CronTrigger::Schedule),
        scheduled_at: row.try_get("scheduled_at")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
        exit_code: row.try_get("exit_code")?,
        status: CronRunStatus::parse(&status).unwrap_or(CronRunStatus::Failed),
        reason: row.try_get("reason")?,
    })
}

/// How many runs of one cron resource its history keeps (the newest).
pub const CRON_HISTORY_KEPT: i64 = 1000;

impl Store {
    /// Records a tick: `running` (started now) unless this scheduled tick was taken before,
    /// the binding's last run is still going (`skipped`), or `admit` refuses it (`skipped`
    /// with its reason: a cap). `admit` is asked only for a run that would start, in the
    /// same transaction, so a refused or overlapping tick costs nothing.
    pub async fn begin_cron_run(
        &self,
        run: &NewCronRun<'_>,
        admit: &(dyn Fn() -> Result<(), String> + Send + Sync),
    ) -> Result<CronBegun, StoreError> {
        let now = now_rfc3339();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if run.trigger != CronTrigger::Manual {
            let taken = sqlx::query(
                "SELECT * FROM cron_runs WHERE resource_id = ? AND scheduled_at = ? AND trigger <> 'manual'",
            )
            .bind(run.resource_id)
            .bind(run.scheduled_at)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = taken {
                return Ok(CronBegun::Taken(record_from_row(&row)?));
            }
        }
        let going =
            sqlx::query("SELECT * FROM cron_runs WHERE resource_id = ? AND status = 'running' ORDER BY id LIMIT 1")
                .bind(run.resource_id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| record_from_row(&row))
                .transpose()?;
        let skipped = match going {
            Some(going) => Some(format!(
                "the run {} (scheduled at {}) was still going; a binding runs one at a time",
                going.id, going.scheduled_at
            )),
            None => admit().err(),
        };
        let id = CronRunId::new(now_unix_ms(), random_bytes()?).to_string();
        let (status, started_at, deploy_id) = match &skipped {
            Some(_) => (CronRunStatus::Skipped, None, None),
            None => (CronRunStatus::Running, Some(now.as_str()), run.deploy_id),
        };
        sqlx::query(
            "INSERT INTO cron_runs (id, app_id, resource_id, binding, deploy_id, trigger, scheduled_at, started_at,
                ended_at, exit_code, status, reason)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
        )
        .bind(&id)
        .bind(run.app_id)
        .bind(run.resource_id)
        .bind(run.binding)
        .bind(deploy_id)
        .bind(run.trigger.as_str())
        .bind(run.scheduled_at)
        .bind(started_at)
        .bind(skipped.as_ref().map(|_| now.as_str()))
        .bind(status.as_str())
        .bind(skipped.as_deref().or(run.reason))
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query("SELECT * FROM cron_runs WHERE id = ?").bind(&id).fetch_one(&mut *tx).await?;
        let record = record_from_row(&row)?;
        // A job's history keeps its newest runs: a minutely job would otherwise add half a
        // million rows a year. Newest by insertion (rowid): ids made in one millisecond are
        // ordered by their random part.
        sqlx::query(
            "DELETE FROM cron_runs WHERE resource_id = ? AND status <> 'running' AND rowid < (
                SELECT rowid FROM cron_runs WHERE resource_id = ? ORDER BY rowid DESC LIMIT 1 OFFSET ?)",
        )
        .bind(run.resource_id)
        .bind(run.resource_id)
        .bind(CRON_HISTORY_KEPT - 1)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(if skipped.is_some() { CronBegun::Skipped(record) } else { CronBegun::Started(record) })
    }

    /// Records how a `running` run ended (a `reason` replaces the one it started with);
    /// `None` when there is no such run still going.
    pub async fn end_cron_run(
        &self,
        id: &str,
        status: CronRunStatus,
        exit_code: Option<i64>,
        reason: Option<&str>,
    ) -> Result<Option<CronRunRecord>, StoreError> {
        let row = sqlx::query(
            "UPDATE cron_runs SET status = ?, exit_code = ?, reason = coalesce(?, reason), ended_at = ?
             WHERE id = ? AND status = 'running' RETURNING *",
        )
        .bind(status.as_str())
        .bind(exit_code)
        .bind(reason)
        .bind(now_rfc3339())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(record_from_row).transpose()?)
    }

    /// Records ticks that were not run (one row for the range, standing at its last tick);
    /// `None` when that tick was recorded before.
    pub async fn record_missed_cron(
        &self,
        run: &NewCronRun<'_>,
        reason: &str,
    ) -> Result<Option<CronRunRecord>, StoreError> {
        let id = CronRunId::new(now_unix_ms(), random_bytes()?).to_string();
        let row = sqlx::query(
            "INSERT INTO cron_runs (id, app_id, resource_id, binding, deploy_id, trigger, scheduled_at, started_at,
                ended_at, exit_code, status, reason)
             VALUES (?, ?, ?, ?, NULL, ?, ?, NULL, ?, NULL, 'missed', ?)
             ON CONFLICT DO NOTHING RETURNING *",
        )
        .bind(&id)
        .bind(run.app_id)
        .bind(run.resource_id)
        .bind(run.binding)
        .bind(run.trigger.as_str())
        .bind(run.scheduled_at)
        .bind(now_rfc3339())
        .bind(reason)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(record_from_row).transpose()?)
    }

    pub async fn find_cron_run(&self, id: &str) -> Result<Option<CronRunRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM cron_runs WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(record_from_row).transpose()?)
    }

    /// The app's runs, newest first: of one binding, or of all; at most `limit`.
    pub async fn cron_runs(
        &self,
        app_id: &str,
        binding: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CronRunRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM cron_runs WHERE app_id = ?1 AND (?2 IS NULL OR binding = ?2) ORDER BY id DESC LIMIT ?3",
        )
        .bind(app_id)
        .bind(binding)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(record_from_row).collect::<Result<_, _>>()?)
    }

    /// The newest run of each of the app's cron resources, by resource id.
    pub async fn last_cron_runs(&self, app_id: &str) -> Result<HashMap<String, CronRunRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM cron_runs WHERE id IN (SELECT max(id) FROM cron_runs WHERE app_id = ? GROUP BY resource_id)",
        )
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?;
        let mut last = HashMap::new();
        for row in &rows {
            let record = record_from_row(row)?;
            last.insert(record.resource_id.clone(), record);
        }
        Ok(last)
    }

    /// The last tick the schedule of `resource_id` dealt with (run, skipped or missed); a
    /// manual run is not a tick.
    pub async fn last_cron_tick(&self, resource_id: &str) -> Result<Option<String>, StoreError> {
        let tick: Option<String> =
            sqlx::query_scalar("SELECT max(scheduled_at) FROM cron_runs WHERE resource_id = ? AND trigger <> 'manual'")
                .bind(resource_id)
                .fetch_one(&self.pool)
                .await?;
        Ok(tick)
    }

    /// Ends the runs a previous run of the platform left `running` (they died with it):
    /// `failed`, saying so. Called at start.
    pub async fn fail_interrupted_cron_runs(&self) -> Result<Vec<CronRunRecord>, StoreError> {
        let rows = sqlx::query(
            "UPDATE cron_runs SET status = 'failed', ended_at = ?,
                reason = 'the platform stopped while it ran (the run was stopped with it)'
             WHERE status = 'running' RETURNING *",
        )
        .bind(now_rfc3339())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(record_from_row).collect::<Result<_, _>>()?)
    }
}
