//! The runner's side of a deploy: claiming sealed artifacts, going live (and
//! superseding what served before), instances, and recovery after a restart.

use crate::config::prune_unused_values;
use crate::deploys::{DeployRecord, Failure, SELECT_DEPLOY, TransitionExtras, record_entry, transition_in};
use crate::time::now_rfc3339;
use crate::{Store, StoreError};
use sqlx::{Row, Sqlite, Transaction};
use std::collections::HashMap;
use tovuk_types::DeployState;
use tovuk_types::values::{FailureReason, InstanceStatus};

/// An app instance as last reported by the runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRecord {
    pub deploy_id: String,
    /// Which of the deploy's instances (0 up to `[limits] instances` - 1).
    pub slot: i64,
    pub status: InstanceStatus,
    pub pid: Option<i64>,
    pub port: Option<i64>,
    pub started_at: Option<String>,
    pub restarts: i64,
    pub last_exit_code: Option<i64>,
    pub last_exit_at: Option<String>,
    /// `ip:port` the router reaches a web instance at.
    pub upstream: Option<String>,
    /// The network namespace the upstream is in; `None`: the host's.
    pub netns: Option<String>,
    /// The directory a static release is served from.
    pub static_root: Option<String>,
    /// Why it is not serving, when it could not start.
    pub reason: Option<String>,
    /// The `[[processes]]` entry it runs; `None`: `[run] command`.
    pub process: Option<String>,
    pub updated_at: String,
}

/// What going live did.
#[derive(Debug, Clone, Default)]
pub struct WentLive {
    /// False when the deploy was no longer `deploying` (a restart ended it meanwhile).
    pub live: bool,
    /// A deploy older than the one that served before, now `superseded`.
    pub superseded: Option<String>,
    /// The deploy that served before: still `running` until [`Store::settle`].
    pub previous: Option<String>,
}

/// Makes `deploy_id` the app's current deploy and routes the app to it.
async fn set_current(
    tx: &mut Transaction<'_, Sqlite>,
    app_id: &str,
    deploy_id: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE apps SET current_deploy_id = ? WHERE id = ?")
        .bind(deploy_id)
        .bind(app_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO routes (app_id, deploy_id, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (app_id) DO UPDATE SET deploy_id = excluded.deploy_id, updated_at = excluded.updated_at",
    )
    .bind(app_id)
    .bind(deploy_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    crate::resources::follow_current(tx, app_id, deploy_id, now).await?;
    Ok(())
}

/// Supersedes every `running` deploy of the app except `keep`; returns their ids.
async fn supersede_running(
    tx: &mut Transaction<'_, Sqlite>,
    app_id: &str,
    keep: &[&str],
    now: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let running: Vec<String> =
        sqlx::query_scalar("SELECT id FROM deploys WHERE app_id = ? AND state = 'running' ORDER BY id DESC")
            .bind(app_id)
            .fetch_all(&mut **tx)
            .await?;
    let mut superseded = Vec::new();
    for id in running.into_iter().filter(|id| !keep.contains(&id.as_str())) {
        if transition_in(tx, &id, DeployState::Running, DeployState::Superseded, &TransitionExtras::default(), now)
            .await?
        {
            superseded.push(id);
        }
    }
    Ok(superseded)
}

/// One app's desired route with what its instances last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRow {
    pub app_name: String,
    pub app_id: String,
    pub deploy_id: String,
    /// What the routed deploy declares (`[[resources]]`, `[[bindings]]`).
    pub declared: Vec<crate::DeclaredResource>,
    /// The instances of the routed deploy, by slot.
    pub instances: Vec<InstanceRecord>,
    /// Healthy instances of the app's other `running` deploy (the one the routed deploy is
    /// replacing, until it settles), by slot: they serve while the new one rolls in.
    pub replaced: Vec<InstanceRecord>,
    /// The deploy's plan (JSON), which holds its limits.
    pub plan: Option<String>,
}

impl Store {
    /// Claims the oldest `artifact_ready` deploy of an app with no deploy going live,
    /// moving it to `deploying`.
    pub async fn claim_release(&self) -> Result<Option<DeployRecord>, StoreError> {
        let now = now_rfc3339();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let claimed: Option<String> = sqlx::query_scalar(
            "UPDATE deploys SET state = 'deploying', updated_at = ?1
             WHERE id = (
                SELECT d.id FROM deploys d
                WHERE d.state = 'artifact_ready' AND NOT EXISTS (
                    SELECT 1 FROM deploys b WHERE b.app_id = d.app_id AND b.state = 'deploying')
                ORDER BY d.id LIMIT 1)
             RETURNING id",
        )
        .bind(&now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = claimed else {
            tx.commit().await?;
            return Ok(None);
        };
        record_entry(&mut tx, &id, DeployState::Deploying, &now).await?;
        // A release starts with the config as it is now, and keeps that revision for life; a
        // rollback keeps the revision its target ran with.
        sqlx::query(
            "UPDATE deploys SET config_rev = (SELECT config_rev FROM apps WHERE id = deploys.app_id) WHERE id = ? AND config_rev IS NULL",
        )
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        // A config release restarts whatever is current when it starts, so one recorded
        // before another deploy went live never brings back the older artifact.
        sqlx::query(
            "UPDATE deploys SET (base_deploy_id, source_kind, ref, sha, source_op_id, build_op_id, artifact_digest, artifact_size, config_needs) =
                (SELECT coalesce(c.base_deploy_id, c.id), c.source_kind, c.ref, c.sha, c.source_op_id, c.build_op_id, c.artifact_digest, c.artifact_size, c.config_needs
                 FROM apps a JOIN deploys c ON c.id = a.current_deploy_id WHERE a.id = deploys.app_id)
             WHERE id = ?1 AND kind = 'config' AND EXISTS (
                SELECT 1 FROM apps a JOIN deploys c ON c.id = a.current_deploy_id
                WHERE a.id = deploys.app_id AND c.state = 'running' AND c.id != deploys.base_deploy_id)",
        )
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.find_deploy(&id).await
    }

    /// The deploy is healthy and serving: in one transaction it becomes `running`, the
    /// app's current deploy and the target of the app's route, its instance is recorded,
    /// and the deploy that served before becomes `superseded`.
    pub async fn go_live(&self, deploy: &DeployRecord, instance: &InstanceRecord) -> Result<WentLive, StoreError> {
        let (id, app_id) = (deploy.id.as_str(), deploy.app_id.as_str());
        let now = now_rfc3339();
        let extras = TransitionExtras::default();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if !transition_in(&mut tx, id, DeployState::Deploying, DeployState::Running, &extras, &now).await? {
            tx.rollback().await?;
            return Ok(WentLive::default());
        }
        let previous: Option<String> = sqlx::query_scalar("SELECT current_deploy_id FROM apps WHERE id = ?")
            .bind(app_id)
            .fetch_one(&mut *tx)
            .await?;
        set_current(&mut tx, app_id, id, &now).await?;
        upsert_instance(&mut tx, deploy, instance, &now).await?;
        // The deploy that was current stays `running` (and keeps its config values) until
        // this one has stayed healthy: `settle` supersedes it, `roll_back` returns to it.
        // Anything older that still ran is superseded now.
        let previous = previous.filter(|previous| previous != id);
        let keep = previous.as_deref().unwrap_or(id);
        let superseded = supersede_running(&mut tx, app_id, &[id, keep], &now).await?;
        prune_unused_values(&mut tx, app_id, self.releases_kept).await?;
        tx.commit().await?;
        Ok(WentLive { live: true, superseded: superseded.into_iter().next(), previous })
    }

    /// The deploy `id` stayed healthy through its first moments: every other deploy of its
    /// app that still ran is `superseded`. Returns those; nothing when `id` is no longer current.
    pub async fn settle(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let now = now_rfc3339();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let app_id: Option<String> = sqlx::query_scalar("SELECT a.id FROM apps a WHERE a.current_deploy_id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(app_id) = app_id else {
            tx.rollback().await?;
            return Ok(Vec::new());
        };
        let superseded = supersede_running(&mut tx, &app_id, &[id], &now).await?;
        // Values only the superseded releases used are gone with them.
        prune_unused_values(&mut tx, &app_id, self.releases_kept).await?;
        tx.commit().await?;
        Ok(superseded)
    }

    /// The current deploy `id` crashed or failed its health before it had stayed healthy:
    /// it ends `failed` with `failure`, and the deploy that served before it (still
    /// `running`, its instance still up) is current again and routed. `None` (and no
    /// change) when there is nothing to return to or `id` is no longer current.
    pub async fn roll_back(&self, id: &str, failure: Failure) -> Result<Option<String>, StoreError> {
        let now = now_rfc3339();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let app_id: Option<String> = sqlx::query_scalar("SELECT id FROM apps WHERE current_deploy_id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let previous: Option<String> = match &app_id {
            None => None,
            Some(app_id) => {
                sqlx::query_scalar(
                    "SELECT d.id FROM deploys d JOIN instances i ON i.deploy_id = d.id
                     WHERE d.app_id = ?1 AND d.id != ?2 AND d.state = 'running' AND i.status = 'healthy'
                     ORDER BY d.id DESC LIMIT 1",
                )
                .bind(app_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
            }
        };
        let (Some(app_id), Some(previous)) = (app_id, previous) else {
            tx.rollback().await?;
            return Ok(None);
        };
        let extras = TransitionExtras { failure: Some(failure), ..TransitionExtras::default() };
        if !transition_in(&mut tx, id, DeployState::Running, DeployState::Failed, &extras, &now).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        set_current(&mut tx, &app_id, &previous, &now).await?;
        tx.commit().await?;
        Ok(Some(previous))
    }

    /// The push `push` landed (its ref moved): the deploys it recorded may be built now.
    pub async fn release_push(&self, push: &str) -> Result<u64, StoreError> {
        let released = sqlx::query("UPDATE deploys SET held_by_push = NULL WHERE held_by_push = ?")
            .bind(push)
            .execute(&self.pool)
            .await?;
        Ok(released.rows_affected())
    }

    /// The push `push` did not land (git did not move the ref): what it recorded is taken
    /// back whole (the deploy, its events, operations and acceptance), as if the push had
    /// never been made; the same push made again is recorded anew.
    pub async fn withdraw_push(&self, push: &str) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let held: Vec<String> =
            sqlx::query_scalar("SELECT id FROM deploys WHERE held_by_push = ?").bind(push).fetch_all(&mut *tx).await?;
        for id in &held {
            sqlx::query("DELETE FROM accepted_sources WHERE deploy_id = ?").bind(id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM deploys WHERE id = ?").bind(id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM operations WHERE deploy_id = ?").bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(held)
    }

    /// A deploy that could not go live ends `failed`; the app keeps its current deploy.
    pub async fn fail_release(&self, id: &str, failure: Failure) -> Result<Option<DeployRecord>, StoreError> {
        let extras = TransitionExtras { failure: Some(failure), ..TransitionExtras::default() };
        Ok(self.transition_deploy_with(id, DeployState::Deploying, DeployState::Failed, &extras).await.ok())
    }

    /// Ends the deploys caught going live by a restart, like builds.
    pub async fn fail_interrupted_releases(&self) -> Result<Vec<DeployRecord>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM deploys WHERE state = 'deploying' ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let mut ended = Vec::new();
        for id in ids {
            let failure = Failure {
                reason: FailureReason::PlatformRestarted,
                phase: Some(DeployState::Deploying),
                exit_code: None,
                first_actionable_line: Some("the platform stopped while this deploy was going live".into()),
                missing: Vec::new(),
                blockers: String::new(),
            };
            if let Some(deploy) = self.fail_release(&id, failure).await? {
                ended.push(deploy);
            }
        }
        Ok(ended)
    }

    /// Every app's current deploy, when it is running: what the runner starts again after a restart.
    pub async fn current_releases(&self) -> Result<Vec<DeployRecord>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT d.id FROM apps a JOIN deploys d ON d.id = a.current_deploy_id WHERE d.state = 'running' ORDER BY a.name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut deploys = Vec::new();
        for id in ids {
            if let Some(deploy) = self.find_deploy(&id).await? {
                deploys.push(deploy);
            }
        }
        Ok(deploys)
    }

    /// Every app's running current deploy (without its history) with the config values of
    /// its revision, in two queries whatever the number of apps: what the runner
    /// reconciles against every few seconds.
    pub async fn current_releases_with_config(
        &self,
    ) -> Result<Vec<(DeployRecord, Vec<crate::config::SealedValue>)>, StoreError> {
        let sql = format!(
            "{SELECT_DEPLOY} JOIN apps c ON c.current_deploy_id = d.id WHERE d.state = 'running' ORDER BY a.name"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        let deploys = rows.iter().map(crate::deploys::deploy_from_row).collect::<Result<Vec<_>, _>>()?;
        let values = sqlx::query(
            "SELECT s.app_id, s.name, s.version, s.key_id, s.nonce, s.ciphertext
             FROM apps a JOIN deploys d ON d.id = a.current_deploy_id JOIN secret_values s ON s.app_id = a.id
             WHERE d.state = 'running' AND s.set_rev <= coalesce(d.config_rev, a.config_rev)
               AND (s.unset_rev IS NULL OR s.unset_rev > coalesce(d.config_rev, a.config_rev))
             ORDER BY s.app_id, s.name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut by_app: HashMap<String, Vec<crate::config::SealedValue>> = HashMap::new();
        for row in &values {
            by_app.entry(row.try_get("app_id")?).or_default().push(crate::config::SealedValue {
                name: row.try_get("name")?,
                version: row.try_get("version")?,
                key_id: row.try_get("key_id")?,
                nonce: row.try_get("nonce")?,
                ciphertext: row.try_get("ciphertext")?,
            });
        }
        Ok(deploys
            .into_iter()
            .map(|deploy| {
                let values = by_app.remove(deploy.app_id.as_str()).unwrap_or_default();
                (deploy, values)
            })
            .collect())
    }

    /// Records what the runner knows of an instance.
    pub async fn record_instance(&self, deploy: &DeployRecord, instance: &InstanceRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        upsert_instance(&mut tx, deploy, instance, &now_rfc3339()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Instances a previous run of this platform started died with it: none of them
    /// serves until the runner reports it again.
    pub async fn forget_instances(&self) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE instances SET status = 'stopped', pid = NULL, upstream = NULL, netns = NULL, updated_at = ?
             WHERE status != 'stopped'",
        )
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every app's desired route, with its deploy's instances as last reported, by app name.
    pub async fn route_rows(&self) -> Result<Vec<RouteRow>, StoreError> {
        let routes = sqlx::query(
            "SELECT a.name AS app_name, r.app_id AS app_id, r.deploy_id AS route_deploy_id, d.plan AS deploy_plan,
                    d.resources AS deploy_resources
             FROM routes r JOIN apps a ON a.id = r.app_id JOIN deploys d ON d.id = r.deploy_id
             ORDER BY a.name",
        )
        .fetch_all(&self.pool)
        .await?;
        // The routed deploys' instances, and the healthy ones of their apps' other running deploys.
        let instances = sqlx::query(
            "SELECT i.*, (i.deploy_id = r.deploy_id) AS routed
             FROM routes r JOIN deploys d ON d.app_id = r.app_id JOIN instances i ON i.deploy_id = d.id
             WHERE i.deploy_id = r.deploy_id OR (d.state = 'running' AND i.status = 'healthy')
             ORDER BY i.deploy_id, i.slot",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut by_app: HashMap<String, (Vec<InstanceRecord>, Vec<InstanceRecord>)> = HashMap::new();
        for row in &instances {
            let (current, replaced) = by_app.entry(row.try_get("app_id")?).or_default();
            let routed: bool = row.try_get("routed")?;
            if routed { current } else { replaced }.push(instance_from_row(row)?);
        }
        let mut rows = Vec::with_capacity(routes.len());
        for route in routes {
            let app_id: String = route.try_get("app_id")?;
            let (instances, replaced) = by_app.remove(&app_id).unwrap_or_default();
            rows.push(RouteRow {
                app_name: route.try_get("app_name")?,
                declared: crate::deploys::decode_resources(&route.try_get::<String, _>("deploy_resources")?),
                app_id,
                deploy_id: route.try_get("route_deploy_id")?,
                instances,
                replaced,
                plan: route.try_get("deploy_plan")?,
            });
        }
        Ok(rows)
    }

    /// The deploy's first instance (slot 0).
    pub async fn find_instance(&self, deploy_id: &str) -> Result<Option<InstanceRecord>, StoreError> {
        Ok(self.find_instances(deploy_id).await?.into_iter().next())
    }

    /// Every instance of the deploy, by slot.
    pub async fn find_instances(&self, deploy_id: &str) -> Result<Vec<InstanceRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM instances WHERE deploy_id = ? ORDER BY slot")
            .bind(deploy_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(instance_from_row).collect::<Result<_, _>>()?)
    }

    /// The app's current deploy id, if it has one.
    pub async fn current_deploy_id(&self, app_id: &str) -> Result<Option<String>, StoreError> {
        let id: Option<String> = sqlx::query_scalar("SELECT current_deploy_id FROM apps WHERE id = ?")
            .bind(app_id)
            .fetch_optional(&self.pool)
            .await?
            .flatten();
        Ok(id)
    }
}

fn instance_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<InstanceRecord, sqlx::Error> {
    Ok(InstanceRecord {
        deploy_id: row.try_get("deploy_id")?,
        slot: row.try_get("slot")?,
        status: crate::deploys::text(row, "status")?,
        pid: row.try_get("pid")?,
        port: row.try_get("port")?,
        started_at: row.try_get("started_at")?,
        restarts: row.try_get("restarts")?,
        last_exit_code: row.try_get("last_exit_code")?,
        last_exit_at: row.try_get("last_exit_at")?,
        upstream: row.try_get("upstream")?,
        netns: row.try_get("netns")?,
        static_root: row.try_get("static_root")?,
        reason: row.try_get("reason")?,
        process: row.try_get("process")?,
        updated_at: row.try_get("updated_at")?,
    })
}

async fn upsert_instance(
    tx: &mut Transaction<'_, Sqlite>,
    deploy: &DeployRecord,
    instance: &InstanceRecord,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO instances (deploy_id, slot, app_id, status, pid, port, started_at, restarts, last_exit_code,
                                last_exit_at, upstream, netns, static_root, reason, updated_at, process)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (deploy_id, slot) DO UPDATE SET
            status = excluded.status, pid = excluded.pid, port = excluded.port, started_at = excluded.started_at,
            restarts = excluded.restarts, last_exit_code = excluded.last_exit_code,
            last_exit_at = excluded.last_exit_at, upstream = excluded.upstream, netns = excluded.netns,
            static_root = excluded.static_root, reason = excluded.reason, updated_at = excluded.updated_at",
    )
    .bind(deploy.id.as_str())
    .bind(instance.slot)
    .bind(deploy.app_id.as_str())
    .bind(instance.status.as_str())
    .bind(instance.pid)
    .bind(instance.port)
    .bind(&instance.started_at)
    .bind(instance.restarts)
    .bind(instance.last_exit_code)
    .bind(&instance.last_exit_at)
    .bind(&instance.upstream)
    .bind(&instance.netns)
    .bind(&instance.static_root)
    .bind(&instance.reason)
    .bind(now)
    .bind(&instance.process)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
