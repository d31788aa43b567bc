//! Secrets and config: sealed values by revision, their metadata, the change history,
//! and config releases (the current artifact restarted with new config).
//!
//! The store never sees a plaintext value. A change seals each new value through a
//! callback, inside the transaction that numbers its version, so the version bound into
//! the ciphertext is the one stored next to it.

use crate::deploys::{DeployRecord, OperationRecord, insert_operation, record_entry};
use crate::time::{now_rfc3339, now_unix_ms};
use crate::{Store, StoreError, random_bytes};
use sqlx::{Row, Sqlite, Transaction};
use tovuk_types::values::{DeployKind, OperationKind, OperationStatus};
use tovuk_types::{AppId, BuildId, DeployId, DeployState, OperationId};

/// A value as stored: sealed, with the version and key it was sealed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedValue {
    pub name: String,
    pub version: i64,
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// What `tovuk env list` shows of a name: never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigVar {
    pub name: String,
    pub version: i64,
    /// When the name was first set (it keeps this across unset and set again).
    pub created_at: String,
    pub updated_at: String,
    pub updated_by: Option<TokenRef>,
}

/// Who made a change: the token, and its name when it still exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRef {
    pub id: String,
    pub name: Option<String>,
}

/// One config change: which names were set and unset, by whom, and the release it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChange {
    pub rev: i64,
    pub at: String,
    pub by: Option<TokenRef>,
    pub set: Vec<String>,
    pub unset: Vec<String>,
    pub release_deploy_id: Option<String>,
}

/// A change to apply as one revision.
#[derive(Debug, Clone)]
pub struct ChangeRequest {
    pub app_id: AppId,
    pub token_id: String,
    /// Names to set; their values are sealed through the callback.
    pub set: Vec<String>,
    pub unset: Vec<String>,
    /// Start a config release of the current deploy (`--no-restart` says false).
    pub release: bool,
}

/// What a change did.
#[derive(Debug, Clone)]
pub struct ChangeOutcome {
    pub change: ConfigChange,
    /// The config release it started, if the app had a running deploy and a release was asked for.
    pub release: Option<DeployRecord>,
}

/// Why a change was refused; nothing of it was stored.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("not set: {}", .0.join(", "))]
    NotSet(Vec<String>),
    #[error("{0}")]
    Seal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ChangeError {
    fn from(error: sqlx::Error) -> Self {
        ChangeError::Store(StoreError::from(error))
    }
}

/// Seals the value of a name at a version (the callback a change is given).
pub type Sealer<'a> = dyn FnMut(&str, i64) -> Result<SealedValue, String> + Send + 'a;

fn names_json(names: &[String]) -> String {
    names.join(",")
}

fn names_from(text: &str) -> Vec<String> {
    text.split(',').filter(|name| !name.is_empty()).map(str::to_owned).collect()
}

fn token_ref(id: Option<String>, name: Option<String>) -> Option<TokenRef> {
    id.map(|id| TokenRef { id, name })
}

impl Store {
    /// Applies a change as one revision: every new value sealed and stored, every unset
    /// name ended, the history row, and (when asked and possible) a config release, all
    /// in one transaction. Unsetting a name that is not set refuses the whole change.
    pub async fn apply_config_change(
        &self,
        request: &ChangeRequest,
        seal: &mut Sealer<'_>,
    ) -> Result<ChangeOutcome, ChangeError> {
        let now = now_rfc3339();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let app_id = request.app_id.as_str();
        let live: Vec<String> =
            sqlx::query_scalar("SELECT name FROM secret_values WHERE app_id = ? AND unset_rev IS NULL")
                .bind(app_id)
                .fetch_all(&mut *tx)
                .await?;
        let not_set: Vec<String> = request.unset.iter().filter(|name| !live.contains(name)).cloned().collect();
        if !not_set.is_empty() {
            return Err(ChangeError::NotSet(not_set));
        }
        let rev: i64 =
            sqlx::query_scalar("UPDATE apps SET config_rev = config_rev + 1 WHERE id = ? RETURNING config_rev")
                .bind(app_id)
                .fetch_one(&mut *tx)
                .await?;
        for name in &request.unset {
            end_value(&mut tx, app_id, name, rev).await?;
        }
        for name in &request.set {
            let previous = sqlx::query("SELECT max(version) AS version, min(created_at) AS created_at FROM secret_values WHERE app_id = ? AND name = ?")
                .bind(app_id)
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
            let version = previous.try_get::<Option<i64>, _>("version")?.unwrap_or(0) + 1;
            let created_at = previous.try_get::<Option<String>, _>("created_at")?.unwrap_or_else(|| now.clone());
            let sealed = seal(name, version).map_err(ChangeError::Seal)?;
            end_value(&mut tx, app_id, name, rev).await?;
            sqlx::query(
                "INSERT INTO secret_values (app_id, name, version, set_rev, key_id, nonce, ciphertext, created_at, updated_at, token_id)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(app_id)
            .bind(name)
            .bind(version)
            .bind(rev)
            .bind(&sealed.key_id)
            .bind(&sealed.nonce)
            .bind(&sealed.ciphertext)
            .bind(&created_at)
            .bind(&now)
            .bind(&request.token_id)
            .execute(&mut *tx)
            .await?;
        }
        let release = if request.release { start_config_release(&mut tx, &request.app_id, &now).await? } else { None };
        sqlx::query(
            "INSERT INTO config_changes (app_id, rev, at, token_id, set_names, unset_names, release_deploy_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(app_id)
        .bind(rev)
        .bind(&now)
        .bind(&request.token_id)
        .bind(names_json(&request.set))
        .bind(names_json(&request.unset))
        .bind(release.as_ref().map(DeployId::as_str))
        .execute(&mut *tx)
        .await?;
        prune_unused_values(&mut tx, app_id, self.releases_kept).await?;
        tx.commit().await?;
        let change = self
            .config_history(&request.app_id, 1)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Query(sqlx::Error::RowNotFound))?;
        let release = match release {
            Some(id) => self.find_deploy(id.as_str()).await?,
            None => None,
        };
        Ok(ChangeOutcome { change, release })
    }

    /// A config release of the app's current deploy with the config as it is: `tovuk app restart`.
    /// `None` when nothing is running.
    pub async fn restart_release(&self, app_id: &AppId) -> Result<Option<DeployRecord>, StoreError> {
        let now = now_rfc3339();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let release = start_config_release(&mut tx, app_id, &now).await?;
        tx.commit().await?;
        match release {
            Some(id) => self.find_deploy(id.as_str()).await,
            None => Ok(None),
        }
    }

    /// A rollback of the app to `target` (default: the deploy that served before the current
    /// one), one of its [`Store::rollback_targets`]: that deploy's artifact, resources and
    /// config revision (the current config with `current_config`), `artifact_ready` at once,
    /// without building.
    pub async fn start_rollback(
        &self,
        app_id: &AppId,
        target: Option<&str>,
        current_config: bool,
    ) -> Result<RollbackOutcome, StoreError> {
        let now = now_rfc3339();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let current: Option<String> = sqlx::query_scalar(
            "SELECT d.id FROM apps a JOIN deploys d ON d.id = a.current_deploy_id WHERE a.id = ? AND d.state = 'running'",
        )
        .bind(app_id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(current) = current else { return Ok(RollbackOutcome::NothingRunning) };
        // A deploy that served (superseded since, or still running while the current one
        // proves itself) among the newest kept ones, whose artifact is kept: the one named,
        // or the newest before the current one.
        let chosen: Option<String> = sqlx::query_scalar(
            "SELECT id FROM (SELECT id FROM deploys WHERE app_id = ?1 AND state IN ('superseded', 'running')
                AND id != ?3 AND artifact_digest IS NOT NULL ORDER BY id DESC LIMIT ?4)
             WHERE (?2 IS NULL AND id < ?3) OR id = ?2 ORDER BY id DESC LIMIT 1",
        )
        .bind(app_id.as_str())
        .bind(target)
        .bind(&current)
        .bind(self.releases_kept)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(chosen) = chosen else { return Ok(RollbackOutcome::NoTarget) };
        // A config revision set now is kept at the claim; none takes the current one there.
        let kept_rev = if current_config { ReleaseConfig::Current } else { ReleaseConfig::Base };
        let deploy_id = release_of(&mut tx, app_id, &chosen, DeployKind::Rollback, kept_rev, &now).await?;
        tx.commit().await?;
        let deploy = self.find_deploy(deploy_id.as_str()).await?.ok_or(StoreError::Query(sqlx::Error::RowNotFound))?;
        Ok(RollbackOutcome::Started { deploy: Box::new(deploy), target: chosen })
    }

    /// The sealed values live at config revision `rev` (the latest when `None`), by name.
    pub async fn config_values(&self, app_id: &AppId, rev: Option<i64>) -> Result<Vec<SealedValue>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, version, key_id, nonce, ciphertext FROM secret_values
             WHERE app_id = ?1 AND set_rev <= ?2 AND (unset_rev IS NULL OR unset_rev > ?2) ORDER BY name",
        )
        .bind(app_id.as_str())
        .bind(match rev {
            Some(rev) => rev,
            None => self.config_rev(app_id).await?,
        })
        .fetch_all(&self.pool)
        .await?;
        let values = rows
            .iter()
            .map(|row| {
                Ok(SealedValue {
                    name: row.try_get("name")?,
                    version: row.try_get("version")?,
                    key_id: row.try_get("key_id")?,
                    nonce: row.try_get("nonce")?,
                    ciphertext: row.try_get("ciphertext")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(values)
    }

    /// The app's current config revision (0 before the first change).
    pub async fn config_rev(&self, app_id: &AppId) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT config_rev FROM apps WHERE id = ?")
            .bind(app_id.as_str())
            .fetch_one(&self.pool)
            .await?)
    }

    /// Metadata of every name set now, by name.
    pub async fn list_config(&self, app_id: &AppId) -> Result<Vec<ConfigVar>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.name, s.version, s.created_at, s.updated_at, s.token_id, t.name AS token_name
             FROM secret_values s LEFT JOIN tokens t ON t.id = s.token_id
             WHERE s.app_id = ? AND s.unset_rev IS NULL ORDER BY s.name",
        )
        .bind(app_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok(ConfigVar {
                    name: row.try_get("name")?,
                    version: row.try_get("version")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                    updated_by: token_ref(row.try_get("token_id")?, row.try_get("token_name")?),
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?)
    }

    /// The app's config changes, newest first.
    pub async fn config_history(&self, app_id: &AppId, limit: u32) -> Result<Vec<ConfigChange>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.*, t.name AS token_name FROM config_changes c LEFT JOIN tokens t ON t.id = c.token_id
             WHERE c.app_id = ? ORDER BY c.rev DESC LIMIT ?",
        )
        .bind(app_id.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok(ConfigChange {
                    rev: row.try_get("rev")?,
                    at: row.try_get("at")?,
                    by: token_ref(row.try_get("token_id")?, row.try_get("token_name")?),
                    set: names_from(&row.try_get::<String, _>("set_names")?),
                    unset: names_from(&row.try_get::<String, _>("unset_names")?),
                    release_deploy_id: row.try_get("release_deploy_id")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?)
    }

    /// Each master key id the stored values were sealed with, and how many values each sealed.
    pub async fn secret_key_ids(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows =
            sqlx::query("SELECT key_id, count(*) AS values_sealed FROM secret_values GROUP BY key_id ORDER BY key_id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .iter()
            .map(|row| Ok((row.try_get("key_id")?, row.try_get("values_sealed")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?)
    }
}

/// Ends the live value of `name` (if any) at revision `rev`.
async fn end_value(tx: &mut Transaction<'_, Sqlite>, app_id: &str, name: &str, rev: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE secret_values SET unset_rev = ? WHERE app_id = ? AND name = ? AND unset_rev IS NULL")
        .bind(rev)
        .bind(app_id)
        .bind(name)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Deletes values no release can need again: ended at or before the oldest revision a
/// running or starting release is pinned to, or one of the app's latest `kept` superseded
/// deploys (so `tovuk rollback` can bring one back as it ran). Deploys not yet claimed take
/// the newest.
pub(crate) async fn prune_unused_values(
    tx: &mut Transaction<'_, Sqlite>,
    app_id: &str,
    kept: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM secret_values WHERE app_id = ?1 AND unset_rev IS NOT NULL AND unset_rev <= coalesce(
            (SELECT min(config_rev) FROM (
                SELECT config_rev FROM deploys WHERE app_id = ?1 AND state IN ('deploying', 'running') AND config_rev IS NOT NULL
                UNION ALL
                SELECT config_rev FROM (SELECT config_rev FROM deploys WHERE app_id = ?1 AND state = 'superseded'
                    AND config_rev IS NOT NULL ORDER BY id DESC LIMIT ?2)
                UNION ALL
                SELECT config_rev FROM deploys WHERE app_id = ?1 AND state = 'artifact_ready' AND config_rev IS NOT NULL)),
            (SELECT config_rev FROM apps WHERE id = ?1))",
    )
    .bind(app_id)
    .bind(kept)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What [`Store::start_rollback`] did.
#[derive(Debug)]
pub enum RollbackOutcome {
    /// The rollback deploy, `artifact_ready`, and the deploy whose artifact it releases.
    Started { deploy: Box<DeployRecord>, target: String },
    /// The app has no running deploy to roll back from.
    NothingRunning,
    /// No earlier deploy that served (among the kept ones, with its artifact) matches.
    NoTarget,
}

/// Records a config release of the app's current running deploy: `artifact_ready` at once,
/// reusing its source, build and artifact. `None` when the app has nothing running.
pub(crate) async fn start_config_release(
    tx: &mut Transaction<'_, Sqlite>,
    app_id: &AppId,
    now: &str,
) -> Result<Option<DeployId>, StoreError> {
    let base = sqlx::query(
        "SELECT d.* FROM apps a JOIN deploys d ON d.id = a.current_deploy_id WHERE a.id = ? AND d.state = 'running'",
    )
    .bind(app_id.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(base) = base else { return Ok(None) };
    let base: String = base.try_get("id")?;
    Ok(Some(release_of(tx, app_id, &base, DeployKind::Config, ReleaseConfig::Current, now).await?))
}

/// Which config revision a release of an existing artifact runs with.
enum ReleaseConfig {
    /// The app's as it is when the release is claimed.
    Current,
    /// The one the base deploy ran with (a rollback).
    Base,
}

/// Records a release of `base`'s artifact (its source, build, resources), `artifact_ready` at
/// once with its own deploy operation: a config release or a rollback.
async fn release_of(
    tx: &mut Transaction<'_, Sqlite>,
    app_id: &AppId,
    base: &str,
    kind: DeployKind,
    config: ReleaseConfig,
    now: &str,
) -> Result<DeployId, StoreError> {
    let ms = now_unix_ms();
    let deploy_id = DeployId::new(ms, random_bytes()?);
    let (build_op, app_name): (String, String) =
        sqlx::query_as("SELECT d.build_op_id, a.name FROM deploys d JOIN apps a ON a.id = d.app_id WHERE d.id = ?")
            .bind(base)
            .fetch_one(&mut **tx)
            .await?;
    let deploy_op = OperationRecord {
        id: OperationId::new(ms, random_bytes()?),
        app_id: app_id.clone(),
        app_name,
        kind: OperationKind::Deploy,
        parent_id: OperationId::parse(&build_op),
        deploy_id: deploy_id.clone(),
        status: OperationStatus::Queued,
        source_kind: None,
        ref_name: None,
        sha: None,
        old_sha: None,
        forced: false,
        token_id: None,
        created_at: now.to_owned(),
        updated_at: now.to_owned(),
    };
    insert_operation(tx, &deploy_op).await?;
    // The column is unique; the API shows the base's build job for such a release. The base
    // is the deploy whose build made the artifact (a config release's base, not itself).
    let build_job_id = BuildId::new(ms, random_bytes()?);
    sqlx::query(
        "INSERT INTO deploys (id, app_id, state, source_kind, ref, sha, forced, token_id, source_op_id, build_op_id, deploy_op_id,
            build_job_id, final_build_status, created_at, updated_at, artifact_digest, artifact_size, kind, base_deploy_id, config_needs,
            resources, config_rev)
         SELECT ?, app_id, 'artifact_ready', source_kind, ref, sha, 0, token_id, source_op_id, build_op_id, ?,
            ?, final_build_status, ?, ?, artifact_digest, artifact_size, ?, coalesce(base_deploy_id, id), config_needs,
            resources, CASE WHEN ? THEN config_rev ELSE NULL END
         FROM deploys WHERE id = ?",
    )
    .bind(deploy_id.as_str())
    .bind(deploy_op.id.as_str())
    .bind(build_job_id.as_str())
    .bind(now)
    .bind(now)
    .bind(kind.as_str())
    .bind(matches!(config, ReleaseConfig::Base))
    .bind(base)
    .execute(&mut **tx)
    .await?;
    record_entry(tx, deploy_id.as_str(), DeployState::ArtifactReady, now).await?;
    Ok(deploy_id)
}
