//! What is kept of an app's past releases: its newest deploys that served stay rollback
//! targets (their artifacts, and the config values they ran with); an artifact nothing keeps
//! can be removed.

use crate::{Store, StoreError};

/// How many of each app's deploys that served stay rollback targets, unless the operator's
/// server config says otherwise (`[retention] releases`).
pub const DEFAULT_RELEASES_KEPT: usize = 10;

impl Store {
    /// This store, keeping `releases` (at least one) of each app's deploys that served as
    /// rollback targets.
    pub fn with_releases_kept(mut self, releases: usize) -> Store {
        self.releases_kept = i64::try_from(releases.max(1)).unwrap_or(i64::MAX);
        self
    }

    /// How many of each app's deploys that served stay rollback targets.
    pub fn releases_kept(&self) -> usize {
        usize::try_from(self.releases_kept).unwrap_or(usize::MAX)
    }

    /// The deploys `tovuk rollback` can bring back, newest first: the app's newest
    /// [`Store::releases_kept`] deploys that served (superseded, or still running while the
    /// current one settles), the current one aside. [`Store::start_rollback`] picks among these.
    pub async fn rollback_targets(&self, app_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM deploys WHERE app_id = ?1 AND state IN ('superseded', 'running')
                AND id IS NOT (SELECT current_deploy_id FROM apps WHERE id = ?1) AND artifact_digest IS NOT NULL
             ORDER BY id DESC LIMIT ?2",
        )
        .bind(app_id)
        .bind(self.releases_kept)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The digests of the app's artifacts that nothing keeps. An artifact is kept while any
    /// deploy of any app (builds with identical output share one) that names it is current,
    /// running, still on its way (queued to deploying: config releases and rollbacks name their
    /// base's), or one of its app's rollback targets.
    pub async fn artifacts_to_collect(&self, app_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "WITH targets AS (
                SELECT d.artifact_digest,
                       row_number() OVER (PARTITION BY d.app_id ORDER BY d.id DESC) AS place
                FROM deploys d JOIN apps a ON a.id = d.app_id
                WHERE d.state IN ('superseded', 'running') AND d.id IS NOT a.current_deploy_id
                    AND d.artifact_digest IS NOT NULL
             ),
             kept AS (
                SELECT artifact_digest FROM deploys WHERE artifact_digest IS NOT NULL
                    AND (state NOT IN ('failed', 'cancelled', 'superseded')
                         OR id IN (SELECT current_deploy_id FROM apps WHERE current_deploy_id IS NOT NULL))
                UNION
                SELECT artifact_digest FROM targets WHERE place <= ?2
             )
             SELECT DISTINCT artifact_digest FROM deploys
             WHERE app_id = ?1 AND artifact_digest IS NOT NULL
                AND artifact_digest NOT IN (SELECT artifact_digest FROM kept)
             ORDER BY artifact_digest",
        )
        .bind(app_id)
        .bind(self.releases_kept)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Whether one of `deploy_ids` is still being built: its build may have sealed an archive
    /// it has not reported yet.
    pub async fn any_building(&self, deploy_ids: &[String]) -> Result<bool, StoreError> {
        for id in deploy_ids {
            let building: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM deploys WHERE id = ?
                    AND state IN ('queued', 'building', 'typechecking', 'testing'))",
            )
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
            if building {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
