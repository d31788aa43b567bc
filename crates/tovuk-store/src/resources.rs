//! An app's resources (`[[resources]]`): created when the first deploy declaring one is
//! released, with a credential sealed like a config value; `detached` (data kept) while
//! the app's current deploy does not declare it. An add-on (`tovuk addon create`) is a
//! resource attached to the app itself: every release gets it, whatever its manifest says.

use crate::config::SealedValue;
use crate::deploys::{DeclaredResource, DeployRecord};
use crate::time::{now_rfc3339, now_unix_ms};
use crate::{Store, StoreError, random_bytes};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};
use std::collections::HashMap;
use tovuk_types::values::ResourceStatus;
use tovuk_types::{AppId, ResourceId};

/// `created_by` of an add-on: no deploy declared it.
pub const ADDON_CREATOR: &str = "tovuk addon create";

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
    /// Attached to the app by `tovuk addon create`: every release gets it until `tovuk addon
    /// detach`, whether or not its `tovuk.toml` declares it.
    pub addon: bool,
    /// The credential, sealed with the resource's id as its name.
    pub credential: SealedValue,
}

/// What [`Store::attach_addon`] did.
#[derive(Debug)]
pub struct AddonAttached {
    pub record: ResourceRecord,
    /// False when the app had it already (declared by a tovuk.toml, or detached): its data
    /// and credential are kept.
    pub created: bool,
    /// True when it was an add-on already: nothing changed.
    pub unchanged: bool,
    /// The config release that gives it to the running instances, when the app runs.
    pub release: Option<DeployRecord>,
}

/// What [`Store::detach_addon`] did.
#[derive(Debug)]
pub struct AddonDetached {
    pub record: ResourceRecord,
    /// The app's current deploy declares it in its tovuk.toml, so it stays active.
    pub still_declared: bool,
    /// The config release without it, when the app runs and no longer gets it.
    pub release: Option<DeployRecord>,
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
        addon: row.try_get::<i64, _>("addon")? != 0,
    })
}

impl Store {
    /// Creates the resources `deploy_id` declares that its app does not have yet (each with a
    /// credential from `seal`), in one transaction, and returns the ones it declares and the
    /// app's add-ons: what its release gets. A resource the app has already (detached or not)
    /// is the same one: its data and credential are kept.
    pub async fn ensure_resources(
        &self,
        app_id: &str,
        deploy_id: &str,
        declared: &[DeclaredResource],
        seal: &CredentialSealer<'_>,
    ) -> Result<Vec<ResourceRecord>, StoreError> {
        let addons: Vec<ResourceRecord> =
            sqlx::query("SELECT * FROM resources WHERE app_id = ? AND addon = 1 ORDER BY id")
                .bind(app_id)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(record_from_row)
                .collect::<Result<_, _>>()?;
        let declared_only = |addon: &ResourceRecord| {
            !declared.iter().any(|resource| resource.kind == addon.kind && resource.binding == addon.binding)
        };
        if declared.is_empty() {
            return Ok(addons);
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
        records.extend(addons.into_iter().filter(declared_only));
        Ok(records)
    }

    /// Attaches a `kind` resource bound as `binding` to the app itself (`tovuk addon create`),
    /// creating it (with a credential from `seal`) unless the app has it already, and starts
    /// a config release of the running deploy so its instances get it: one transaction.
    pub async fn attach_addon(
        &self,
        app_id: &AppId,
        kind: &str,
        binding: &str,
        seal: &CredentialSealer<'_>,
    ) -> Result<AddonAttached, StoreError> {
        let now = now_rfc3339();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let existing = sqlx::query("SELECT * FROM resources WHERE app_id = ? AND kind = ? AND binding = ?")
            .bind(app_id.as_str())
            .bind(kind)
            .bind(binding)
            .fetch_optional(&mut *tx)
            .await?;
        let existing = existing.as_ref().map(record_from_row).transpose()?;
        if let Some(record) = existing.as_ref().filter(|record| record.addon) {
            return Ok(AddonAttached { record: record.clone(), created: false, unchanged: true, release: None });
        }
        let running: Option<String> = sqlx::query_scalar(
            "SELECT d.id FROM apps a JOIN deploys d ON d.id = a.current_deploy_id WHERE a.id = ? AND d.state = 'running'",
        )
        .bind(app_id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let id = match &existing {
            Some(record) => {
                // With nothing running it is the first deploy's at once, like a new one.
                sqlx::query(
                    "UPDATE resources SET addon = 1,
                        status = CASE WHEN ?2 THEN status ELSE 'active' END,
                        detached_at = CASE WHEN ?2 THEN detached_at ELSE NULL END
                     WHERE id = ?1",
                )
                .bind(&record.id)
                .bind(running.is_some())
                .execute(&mut *tx)
                .await?;
                record.id.clone()
            }
            None => {
                let id = ResourceId::new(now_unix_ms(), random_bytes()?).to_string();
                let credential = seal(&id).map_err(StoreError::Seal)?;
                // With nothing running it is the first deploy's; else its release makes it active.
                let status = if running.is_some() { ResourceStatus::Detached } else { ResourceStatus::Active };
                sqlx::query(
                    "INSERT INTO resources (id, app_id, kind, binding, backend, status, created_at, created_by, detached_at,
                        key_id, nonce, ciphertext, addon)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, 1)",
                )
                .bind(&id)
                .bind(app_id.as_str())
                .bind(kind)
                .bind(binding)
                .bind(EMBEDDED_BACKEND)
                .bind(status.as_str())
                .bind(&now)
                .bind(ADDON_CREATOR)
                .bind(&credential.key_id)
                .bind(&credential.nonce)
                .bind(&credential.ciphertext)
                .execute(&mut *tx)
                .await?;
                id
            }
        };
        let release = match running {
            Some(_) => crate::config::start_config_release(&mut tx, app_id, &now).await?,
            None => None,
        };
        let row = sqlx::query("SELECT * FROM resources WHERE id = ?").bind(&id).fetch_one(&mut *tx).await?;
        let record = record_from_row(&row)?;
        tx.commit().await?;
        let release = match release {
            Some(id) => self.find_deploy(id.as_str()).await?,
            None => None,
        };
        Ok(AddonAttached { record, created: existing.is_none(), unchanged: false, release })
    }

    /// Ends the attachment of add-on `resource_id` to its app (`tovuk addon detach`): its
    /// data is kept. Unless the running deploy declares it, a config release without it
    /// starts (and detaches it when it goes live). `None` when it is not an add-on.
    pub async fn detach_addon(&self, app_id: &AppId, resource_id: &str) -> Result<Option<AddonDetached>, StoreError> {
        let now = now_rfc3339();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let updated = sqlx::query("UPDATE resources SET addon = 0 WHERE id = ? AND app_id = ? AND addon = 1")
            .bind(resource_id)
            .bind(app_id.as_str())
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() == 0 {
            return Ok(None);
        }
        let running: Option<String> = sqlx::query_scalar(
            "SELECT d.resources FROM apps a JOIN deploys d ON d.id = a.current_deploy_id WHERE a.id = ? AND d.state = 'running'",
        )
        .bind(app_id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let row = sqlx::query("SELECT * FROM resources WHERE id = ?").bind(resource_id).fetch_one(&mut *tx).await?;
        let mut record = record_from_row(&row)?;
        let still_declared = running.as_deref().is_some_and(|declared| {
            crate::deploys::decode_resources(declared)
                .iter()
                .any(|resource| resource.kind == record.kind && resource.binding == record.binding)
        });
        let release = match &running {
            Some(_) if !still_declared => crate::config::start_config_release(&mut tx, app_id, &now).await?,
            Some(_) => None,
            None => {
                // Nothing runs to take it away from: it is detached now.
                sqlx::query(
                    "UPDATE resources SET status = 'detached', detached_at = coalesce(detached_at, ?) WHERE id = ?",
                )
                .bind(&now)
                .bind(resource_id)
                .execute(&mut *tx)
                .await?;
                let row =
                    sqlx::query("SELECT * FROM resources WHERE id = ?").bind(resource_id).fetch_one(&mut *tx).await?;
                record = record_from_row(&row)?;
                None
            }
        };
        tx.commit().await?;
        let release = match release {
            Some(id) => self.find_deploy(id.as_str()).await?,
            None => None,
        };
        Ok(Some(AddonDetached { record, still_declared, release }))
    }

    /// Every resource of the app, detached ones too, in the order they were created.
    pub async fn app_resources(&self, app_id: &str) -> Result<Vec<ResourceRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM resources WHERE app_id = ? ORDER BY id")
            .bind(app_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(record_from_row).collect::<Result<_, _>>()?)
    }

    /// Every resource of one kind on the platform (the service bindings, for the route table).
    pub async fn resources_of_kind(&self, kind: &str) -> Result<Vec<ResourceRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM resources WHERE kind = ? ORDER BY app_id, id")
            .bind(kind)
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

/// Marks the app's resources `active` when `deploy_id` (becoming current) declares them or
/// they are add-ons, and `detached` otherwise; called wherever the current deploy changes.
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
                      r.addon = 1
                      OR instr(',' || d.resources || ',', ',' || r.kind || ':' || r.binding || ',') > 0
                      OR instr(',' || d.resources || ',', ',' || r.kind || ':' || r.binding || '=') > 0 AS declared
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
