//! An app's resources (`[[resources]]`): created when the first deploy declaring one is
//! released, with a credential sealed like a config value; `detached` (data kept) while
//! the app's current deploy does not declare it.

use crate::config::SealedValue;
use crate::deploys::DeclaredResource;
use crate::time::{now_rfc3339, now_unix_ms};
use crate::{Store, StoreError, random_bytes};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};
use std::collections::HashMap;
use tovuk_types::ResourceId;
use tovuk_types::values::ResourceStatus;

/// The backend every resource has on one machine.
pub const EMBEDDED_BACKEND: &str = "embedded";

/// One resource as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRecord {
    pub id: String,
    pub app_id: String,
    pub kind: String,
    pub binding: String,
    pub backend: String,
    pub status: ResourceStatus,
    pub created_at: String,
    /// The deploy whose release created it.
    pub created_by: String,
    pub detached_at: Option<String>,
    /// The credential, sealed with the resource's id as its name.
    pub credential: SealedValue,
}

/// Seals a new credential for the resource named by its id.
pub type CredentialSealer<'a> = dyn Fn(&str) -> Result<SealedValue, String> + Send + Sync + 'a;

fn record_from_row(row: &SqliteRow) -> Result<ResourceRecord, sqlx::Error> {
    let id: String = row.try_get("id")?;
    let status: String = row.try_get("status")?;
    Ok(ResourceRecord {
        credential: SealedValue {
            name: id.clone(),
            version: 1,
            key_id: row.try_get("key_id")?,
            nonce: row.try_get("nonce")?,
            ciphertext: row.try_get("ciphertext")?,
        },
        id,
        app_id: row.try_get("app_id")?,
        kind: row.try_get("kind")?,
        binding: row.try_get("binding")?,
        backend: row.try_get("backend")?,
        status: ResourceStatus::parse(&status).unwrap_or(ResourceStatus::Detached),
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        detached_at: row.try_get("detached_at")?,
    })
}

impl Store {
    /// Creates the resources `deploy_id` declares that its app does not have yet (each with a
    /// credential from `seal`), in one transaction, and returns the ones it declares. A
    /// resource the app has already (detached or not) is the same one: its data and
    /// credential are kept.
    pub async fn ensure_resources(
        &self,
        app_id: &str,
        deploy_id: &str,
        declared: &[DeclaredResource],
        seal: &CredentialSealer<'_>,
    ) -> Result<Vec<ResourceRecord>, StoreError> {
        if declared.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_rfc3339();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut records = Vec::with_capacity(declared.len());
        for resource in declared {
            let existing = sqlx::query("SELECT * FROM resources WHERE app_id = ? AND kind = ? AND binding = ?")
                .bind(app_id)
                .bind(&resource.kind)
                .bind(&resource.binding)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = existing {
                records.push(record_from_row(&row)?);
                continue;
            }
            let id = ResourceId::new(now_unix_ms(), random_bytes()?).to_string();
            let credential = seal(&id).map_err(StoreError::Seal)?;
            // Not current yet: it becomes active when a deploy declaring it goes live.
            sqlx::query(
                "INSERT INTO resources (id, app_id, kind, binding, backend, status, created_at, created_by, detached_at,
                    key_id, nonce, ciphertext)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)",
            )
            .bind(&id)
            .bind(app_id)
            .bind(&resource.kind)
            .bind(&resource.binding)
            .bind(EMBEDDED_BACKEND)
            .bind(ResourceStatus::Detached.as_str())
            .bind(&now)
            .bind(deploy_id)
            .bind(&credential.key_id)
            .bind(&credential.nonce)
            .bind(&credential.ciphertext)
            .execute(&mut *tx)
            .await?;
            let row = sqlx::query("SELECT * FROM resources WHERE id = ?").bind(&id).fetch_one(&mut *tx).await?;
            records.push(record_from_row(&row)?);
        }
        tx.commit().await?;
        Ok(records)
    }

    /// Every resource of the app, detached ones too, in the order they were created.
    pub async fn app_resources(&self, app_id: &str) -> Result<Vec<ResourceRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM resources WHERE app_id = ? ORDER BY id")
            .bind(app_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(record_from_row).collect::<Result<_, _>>()?)
    }

    /// Every resource on the platform, by app id: one query, whatever the number of apps.
    pub async fn all_resources(&self) -> Result<HashMap<String, Vec<ResourceRecord>>, StoreError> {
        let rows = sqlx::query("SELECT * FROM resources ORDER BY app_id, id").fetch_all(&self.pool).await?;
        let mut by_app: HashMap<String, Vec<ResourceRecord>> = HashMap::new();
        for row in &rows {
            let record = record_from_row(row)?;
            by_app.entry(record.app_id.clone()).or_default().push(record);
        }
        Ok(by_app)
    }
}

/// Marks the app's resources `active` when `deploy_id` (becoming current) declares them and
/// `detached` when it does not; called wherever the current deploy changes.
pub(crate) async fn follow_current(
    tx: &mut Transaction<'_, Sqlite>,
    app_id: &str,
    deploy_id: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE resources SET
            status = CASE WHEN declared THEN 'active' ELSE 'detached' END,
            detached_at = CASE WHEN declared THEN NULL ELSE coalesce(detached_at, ?3) END
         FROM (SELECT r.id AS rid,
                      instr(',' || d.resources || ',', ',' || r.kind || ':' || r.binding || ',') > 0 AS declared
               FROM resources r JOIN deploys d ON d.id = ?2 WHERE r.app_id = ?1) AS current
         WHERE resources.id = current.rid",
    )
    .bind(app_id)
    .bind(deploy_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
