//! Metering at rest: hourly usage buckets, caps, and the events of caps stopping usage.

use crate::time::now_rfc3339;
use crate::{Store, StoreError};
use sqlx::Row;
use tovuk_types::AppId;

/// Usage to add to one app's bucket of one hour.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageEntry {
    pub app_id: String,
    /// `YYYY-MM-DDTHH`, UTC.
    pub hour: String,
    pub meter: String,
    pub quantity: f64,
    /// The resource that incurred it, when one did: also counted for `tovuk service show`.
    pub resource_id: Option<String>,
}

/// One app's total of one meter over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageTotal {
    pub app_id: String,
    pub app_name: String,
    pub meter: String,
    pub quantity: f64,
}

/// A cap as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CapRecord {
    pub app_id: String,
    pub app_name: String,
    pub meter: String,
    pub cap: f64,
    pub token_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// The cap budget of one meter of an app in one period.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterGrant {
    pub app_id: String,
    pub meter: String,
    /// The period total the router may admit up to.
    pub granted: u64,
    /// Granted before a crash and never counted: it counts against the cap only.
    pub unaccounted: u64,
}

/// A cap stopping usage.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageEvent {
    pub at: String,
    pub meter: String,
    pub cap: f64,
    pub used: f64,
    /// What was stopped: `requests`, `traffic`, `build`, ...
    pub stopped: String,
}

impl Store {
    /// Adds usage to the hourly buckets, all in one transaction.
    pub async fn add_usage(&self, entries: &[UsageEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for entry in entries {
            sqlx::query(
                "INSERT INTO usage (app_id, hour, meter, quantity) VALUES (?, ?, ?, ?)
                 ON CONFLICT (app_id, hour, meter) DO UPDATE SET quantity = quantity + excluded.quantity",
            )
            .bind(&entry.app_id)
            .bind(&entry.hour)
            .bind(&entry.meter)
            .bind(entry.quantity)
            .execute(&mut *tx)
            .await?;
            if let Some(resource_id) = &entry.resource_id {
                sqlx::query(
                    "INSERT INTO resource_usage (resource_id, hour, meter, quantity) VALUES (?, ?, ?, ?)
                     ON CONFLICT (resource_id, hour, meter) DO UPDATE SET quantity = quantity + excluded.quantity",
                )
                .bind(resource_id)
                .bind(&entry.hour)
                .bind(&entry.meter)
                .bind(entry.quantity)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Each of the app's resources' totals per meter from `since_hour` on.
    pub async fn resource_usage_totals(
        &self,
        app_id: &AppId,
        since_hour: &str,
    ) -> Result<Vec<(String, String, f64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.resource_id, u.meter, sum(u.quantity) AS quantity
             FROM resource_usage u JOIN resources r ON r.id = u.resource_id
             WHERE r.app_id = ?1 AND u.hour >= ?2
             GROUP BY u.resource_id, u.meter ORDER BY u.resource_id, u.meter",
        )
        .bind(app_id.as_str())
        .bind(since_hour)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| Ok((row.try_get("resource_id")?, row.try_get("meter")?, row.try_get("quantity")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?)
    }

    /// Each app's total per meter from `since_hour` on (all apps when `app_id` is `None`).
    pub async fn usage_totals(&self, app_id: Option<&AppId>, since_hour: &str) -> Result<Vec<UsageTotal>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.app_id, a.name AS app_name, u.meter, sum(u.quantity) AS quantity
             FROM usage u JOIN apps a ON a.id = u.app_id
             WHERE u.hour >= ?1 AND (?2 IS NULL OR u.app_id = ?2)
             GROUP BY u.app_id, u.meter ORDER BY a.name, u.meter",
        )
        .bind(since_hour)
        .bind(app_id.map(AppId::as_str))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok(UsageTotal {
                    app_id: row.try_get("app_id")?,
                    app_name: row.try_get("app_name")?,
                    meter: row.try_get("meter")?,
                    quantity: row.try_get("quantity")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?)
    }

    /// The grants of `period` (the first hour of a billing period), of one app or all.
    pub async fn meter_grants(&self, app_id: Option<&AppId>, period: &str) -> Result<Vec<MeterGrant>, StoreError> {
        let rows = sqlx::query(
            "SELECT app_id, meter, granted, unaccounted FROM meter_grants
             WHERE period = ?1 AND (?2 IS NULL OR app_id = ?2) ORDER BY app_id, meter",
        )
        .bind(period)
        .bind(app_id.map(AppId::as_str))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok(MeterGrant {
                    app_id: row.try_get("app_id")?,
                    meter: row.try_get("meter")?,
                    granted: u64::try_from(row.try_get::<i64, _>("granted")?).unwrap_or(0),
                    unaccounted: u64::try_from(row.try_get::<i64, _>("unaccounted")?).unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?)
    }

    /// Stores new grants of `period` in one transaction; the router may spend them once
    /// this returns.
    pub async fn set_meter_grants(&self, period: &str, grants: &[(String, String, u64)]) -> Result<(), StoreError> {
        if grants.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for (app_id, meter, granted) in grants {
            sqlx::query(
                "INSERT INTO meter_grants (app_id, period, meter, granted) VALUES (?, ?, ?, ?)
                 ON CONFLICT (app_id, period, meter) DO UPDATE SET granted = excluded.granted",
            )
            .bind(app_id)
            .bind(period)
            .bind(meter)
            .bind(i64::try_from(*granted).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// At start: what the last process was granted in `period` but never stored as usage
    /// (it died before storing its last counts) is kept as unaccounted.
    pub async fn account_for_lost_grants(&self, period: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE meter_grants SET unaccounted = max(unaccounted, granted - CAST(coalesce((
                 SELECT sum(u.quantity) FROM usage u
                 WHERE u.app_id = meter_grants.app_id AND u.meter = meter_grants.meter AND u.hour >= ?1
             ), 0) AS INTEGER))
             WHERE period = ?1",
        )
        .bind(period)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// At a clean stop, once every count is stored: grants shrink to what was used, so the
    /// next start finds nothing unaccounted.
    pub async fn return_unspent_grants(&self, period: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE meter_grants SET granted = unaccounted + CAST(coalesce((
                 SELECT sum(u.quantity) FROM usage u
                 WHERE u.app_id = meter_grants.app_id AND u.meter = meter_grants.meter AND u.hour >= ?1
             ), 0) AS INTEGER)
             WHERE period = ?1",
        )
        .bind(period)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sets (or replaces) the cap of one meter of an app.
    pub async fn set_cap(&self, app_id: &AppId, meter: &str, cap: f64, token_id: &str) -> Result<(), StoreError> {
        let now = now_rfc3339();
        sqlx::query(
            "INSERT INTO caps (app_id, meter, cap, token_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (app_id, meter) DO UPDATE SET cap = excluded.cap, token_id = excluded.token_id, updated_at = excluded.updated_at",
        )
        .bind(app_id.as_str())
        .bind(meter)
        .bind(cap)
        .bind(token_id)
        .bind(&now)
        .bind(&now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes a cap; false when there was none.
    pub async fn remove_cap(&self, app_id: &AppId, meter: &str) -> Result<bool, StoreError> {
        let removed = sqlx::query("DELETE FROM caps WHERE app_id = ? AND meter = ?")
            .bind(app_id.as_str())
            .bind(meter)
            .execute(&self.pool)
            .await?;
        Ok(removed.rows_affected() > 0)
    }

    /// The caps of one app, or of every app, by app and meter.
    pub async fn caps(&self, app_id: Option<&AppId>) -> Result<Vec<CapRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.*, a.name AS app_name FROM caps c JOIN apps a ON a.id = c.app_id
             WHERE ?1 IS NULL OR c.app_id = ?1 ORDER BY a.name, c.meter",
        )
        .bind(app_id.map(AppId::as_str))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok(CapRecord {
                    app_id: row.try_get("app_id")?,
                    app_name: row.try_get("app_name")?,
                    meter: row.try_get("meter")?,
                    cap: row.try_get("cap")?,
                    token_id: row.try_get("token_id")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?)
    }

    /// Records that a cap stopped usage.
    pub async fn record_usage_event(&self, app_id: &str, event: &UsageEvent) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO usage_events (app_id, at, meter, cap, used, stopped) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(app_id)
            .bind(&event.at)
            .bind(&event.meter)
            .bind(event.cap)
            .bind(event.used)
            .bind(&event.stopped)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// An app's newest cap events, newest first.
    pub async fn usage_events(&self, app_id: &AppId, limit: u32) -> Result<Vec<UsageEvent>, StoreError> {
        let rows = sqlx::query("SELECT * FROM usage_events WHERE app_id = ? ORDER BY id DESC LIMIT ?")
            .bind(app_id.as_str())
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok(UsageEvent {
                    at: row.try_get("at")?,
                    meter: row.try_get("meter")?,
                    cap: row.try_get("cap")?,
                    used: row.try_get("used")?,
                    stopped: row.try_get("stopped")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?)
    }
}
