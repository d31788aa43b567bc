//! The builder's side of a deploy: claiming queued work, phases, logs, and recovery
//! after a restart.

use crate::deploys::{DeployRecord, Failure, TransitionExtras, record_entry};
use crate::time::now_rfc3339;
use crate::{Store, StoreError};
use sqlx::Row;
use tovuk_types::DeployState;
use tovuk_types::values::{FailureReason, FinalBuildStatus, LogStream, PhaseStatus};

/// A log line to store.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub at: String,
    pub phase: DeployState,
    pub stream: LogStream,
    pub line: String,
}

/// A stored log line with its place in the build's log.
#[derive(Debug, Clone)]
pub struct StoredLogLine {
    pub seq: i64,
    pub line: LogLine,
}

impl Store {
    /// Claims the oldest queued deploy of an app that has no build running, moving it to
    /// `building` for `node`. One immediate transaction, so two builders never claim the
    /// same deploy and an app never has two builds at once.
    pub async fn claim_build(&self, node: &str) -> Result<Option<DeployRecord>, StoreError> {
        let now = now_rfc3339();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let claimed: Option<String> = sqlx::query_scalar(
            "UPDATE deploys SET state = 'building', claimed_by = ?1, updated_at = ?2
             WHERE id = (
                SELECT d.id FROM deploys d
                WHERE d.state = 'queued' AND d.held_by_push IS NULL AND NOT EXISTS (
                    SELECT 1 FROM deploys b
                    WHERE b.app_id = d.app_id
                      AND (b.state IN ('building', 'typechecking', 'testing') OR b.claimed_by IS NOT NULL))
                ORDER BY d.id LIMIT 1)
             RETURNING id",
        )
        .bind(node)
        .bind(&now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = claimed else {
            tx.commit().await?;
            return Ok(None);
        };
        record_entry(&mut tx, &id, DeployState::Building, &now).await?;
        tx.commit().await?;
        self.find_deploy(&id).await
    }

    /// The builder that claimed `id` has ended its work (a cancelled build's builder may end
    /// well after the deploy was cancelled): the app's next build may start.
    pub async fn release_build_claim(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE deploys SET claimed_by = NULL WHERE id = ?").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Ends every build that was running when the platform stopped: its builder died with
    /// it, so the deploy ends `failed` with reason `platform_restarted` rather than
    /// staying in a build state forever. Returns the deploys it ended.
    pub async fn fail_interrupted_builds(&self) -> Result<Vec<DeployRecord>, StoreError> {
        let ids: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, state FROM deploys WHERE state IN ('building', 'typechecking', 'testing') ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut ended = Vec::new();
        for (id, state) in ids {
            let Some(from) = DeployState::parse(&state) else { continue };
            let extras = TransitionExtras {
                failure: Some(Failure {
                    reason: FailureReason::PlatformRestarted,
                    phase: Some(from),
                    exit_code: None,
                    first_actionable_line: Some("the platform stopped while this build was running".into()),
                    missing: Vec::new(),
                    blockers: String::new(),
                }),
                final_build_status: Some(FinalBuildStatus::Failed),
                artifact: None,
            };
            sqlx::query(
                "UPDATE build_phases SET status = 'interrupted', ended_at = ? WHERE deploy_id = ? AND ended_at IS NULL",
            )
            .bind(now_rfc3339())
            .bind(&id)
            .execute(&self.pool)
            .await?;
            if let Ok(deploy) = self.transition_deploy_with(&id, from, DeployState::Failed, &extras).await {
                ended.push(deploy);
            }
        }
        // The builders died with the platform: nothing holds a build any more.
        sqlx::query("UPDATE deploys SET claimed_by = NULL WHERE claimed_by IS NOT NULL").execute(&self.pool).await?;
        Ok(ended)
    }

    /// Records a phase starting (no `ended_at`) or ending.
    pub async fn record_phase(
        &self,
        deploy_id: &str,
        phase: DeployState,
        status: PhaseStatus,
        command: Option<&str>,
        exit_code: Option<i64>,
        ended: bool,
    ) -> Result<(), StoreError> {
        let now = now_rfc3339();
        sqlx::query(
            "INSERT INTO build_phases (deploy_id, phase, status, command, exit_code, started_at, ended_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, CASE WHEN ?7 THEN ?6 END)
             ON CONFLICT (deploy_id, phase) DO UPDATE SET
                status = excluded.status,
                exit_code = excluded.exit_code,
                ended_at = CASE WHEN ?7 THEN ?6 ELSE build_phases.ended_at END",
        )
        .bind(deploy_id)
        .bind(phase.as_str())
        .bind(status.as_str())
        .bind(command)
        .bind(exit_code)
        .bind(&now)
        .bind(ended)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Appends log lines in one transaction and returns them with their sequence numbers.
    pub async fn append_build_logs(
        &self,
        deploy_id: &str,
        lines: &[LogLine],
    ) -> Result<Vec<StoredLogLine>, StoreError> {
        if lines.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let last: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM build_logs WHERE deploy_id = ?")
            .bind(deploy_id)
            .fetch_one(&mut *tx)
            .await?;
        let mut stored = Vec::with_capacity(lines.len());
        let mut bytes: i64 = 0;
        for (offset, line) in lines.iter().enumerate() {
            let seq = last + 1 + i64::try_from(offset).unwrap_or(i64::MAX - last - 1);
            sqlx::query("INSERT INTO build_logs (deploy_id, seq, at, phase, stream, line) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(deploy_id)
                .bind(seq)
                .bind(&line.at)
                .bind(line.phase.as_str())
                .bind(line.stream.as_str())
                .bind(&line.line)
                .execute(&mut *tx)
                .await?;
            bytes += i64::try_from(line.line.len()).unwrap_or(i64::MAX);
            stored.push(StoredLogLine { seq, line: line.clone() });
        }
        sqlx::query("UPDATE deploys SET log_bytes = log_bytes + ? WHERE id = ?")
            .bind(bytes)
            .bind(deploy_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Stored log lines after `after_seq`, oldest first, at most `limit`.
    pub async fn build_logs(
        &self,
        deploy_id: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredLogLine>, StoreError> {
        let rows = sqlx::query("SELECT * FROM build_logs WHERE deploy_id = ? AND seq > ? ORDER BY seq LIMIT ?")
            .bind(deploy_id)
            .bind(after_seq)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredLogLine {
                    seq: row.try_get("seq")?,
                    line: LogLine {
                        at: row.try_get("at")?,
                        phase: crate::deploys::text(row, "phase")?,
                        stream: crate::deploys::text(row, "stream")?,
                        line: row.try_get("line")?,
                    },
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Digests of an app's artifacts, newest deploy first.
    pub async fn artifact_digests(&self, app_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, artifact_digest FROM deploys WHERE app_id = ? AND artifact_digest IS NOT NULL ORDER BY id DESC",
        )
        .bind(app_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}
