//! What app instances print: stored per app, the newest lines kept.

use crate::{Store, StoreError};
use sqlx::Row;

/// One line an instance printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppLogLine {
    /// Its place in the app's log, from 1 (0 before it is stored).
    pub seq: i64,
    pub at: String,
    pub deploy_id: String,
    pub instance: String,
    pub stream: tovuk_types::values::LogStream,
    pub line: String,
}

impl Store {
    /// Appends lines and drops the oldest beyond `keep_lines`. Returns them numbered.
    pub async fn append_app_logs(
        &self,
        app_id: &str,
        lines: &[AppLogLine],
        keep_lines: i64,
    ) -> Result<Vec<AppLogLine>, StoreError> {
        if lines.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let last: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM app_logs WHERE app_id = ?")
            .bind(app_id)
            .fetch_one(&mut *tx)
            .await?;
        let mut stored = Vec::with_capacity(lines.len());
        for (offset, line) in lines.iter().enumerate() {
            let seq = last + 1 + i64::try_from(offset).unwrap_or(0);
            sqlx::query(
                "INSERT INTO app_logs (app_id, seq, at, deploy_id, instance, stream, line) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(app_id)
            .bind(seq)
            .bind(&line.at)
            .bind(&line.deploy_id)
            .bind(&line.instance)
            .bind(line.stream.as_str())
            .bind(&line.line)
            .execute(&mut *tx)
            .await?;
            stored.push(AppLogLine { seq, ..line.clone() });
        }
        let newest = last + i64::try_from(lines.len()).unwrap_or(0);
        sqlx::query("DELETE FROM app_logs WHERE app_id = ? AND seq <= ?")
            .bind(app_id)
            .bind(newest - keep_lines)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Lines after `after_seq`, oldest first; with `tail`, only the newest `tail` of them.
    pub async fn app_logs(&self, app_id: &str, after_seq: i64, tail: u32) -> Result<Vec<AppLogLine>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM (SELECT * FROM app_logs WHERE app_id = ? AND seq > ? ORDER BY seq DESC LIMIT ?) ORDER BY seq",
        )
        .bind(app_id)
        .bind(after_seq)
        .bind(tail)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AppLogLine {
                    seq: row.try_get("seq")?,
                    at: row.try_get("at")?,
                    deploy_id: row.try_get("deploy_id")?,
                    instance: row.try_get("instance")?,
                    stream: crate::deploys::text(row, "stream")?,
                    line: row.try_get("line")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
