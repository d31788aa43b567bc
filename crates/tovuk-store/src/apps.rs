//! Apps: a name, an id and the branch whose pushes deploy.

use crate::time::{now_rfc3339, now_unix_ms};
use crate::tokens::{TokenRecord, TokenScope, insert_token};
use crate::{Store, StoreError, random_bytes};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use tovuk_types::{AppId, AppName};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRecord {
    pub id: AppId,
    pub name: String,
    pub deploy_branch: String,
    pub created_at: String,
}

fn app_from_row(row: &SqliteRow) -> Result<AppRecord, sqlx::Error> {
    let id: String = row.try_get("id")?;
    Ok(AppRecord {
        id: AppId::parse(&id).ok_or_else(|| sqlx::Error::Decode(format!("bad app id `{id}`").into()))?,
        name: row.try_get("name")?,
        deploy_branch: row.try_get("deploy_branch")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Creates an app together with its first deploy token, in one transaction: an app
    /// never exists without a way to push to it. Returns the token secret once.
    pub async fn create_app(
        &self,
        name: &AppName,
        deploy_branch: &str,
    ) -> Result<(AppRecord, TokenRecord, String), StoreError> {
        let app = AppRecord {
            id: AppId::new(now_unix_ms(), random_bytes()?),
            name: name.as_str().to_owned(),
            deploy_branch: deploy_branch.to_owned(),
            created_at: now_rfc3339(),
        };
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO apps (id, name, deploy_branch, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(app.id.as_str())
        .bind(&app.name)
        .bind(&app.deploy_branch)
        .bind(&app.created_at)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::AppExists(app.name));
        }
        let scope = TokenScope::Deploy { app_id: app.id.clone(), app_name: app.name.clone() };
        let (token, secret) = insert_token(&mut tx, &format!("deploy ({})", app.name), scope).await?;
        tx.commit().await?;
        Ok((app, token, secret))
    }

    pub async fn list_apps(&self) -> Result<Vec<AppRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM apps ORDER BY name").fetch_all(&self.pool).await?;
        Ok(rows.iter().map(app_from_row).collect::<Result<_, _>>()?)
    }

    /// Finds an app by name or by id: users may use either wherever an app is expected.
    pub async fn find_app(&self, name_or_id: &str) -> Result<Option<AppRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM apps WHERE name = ?1 OR id = ?1")
            .bind(name_or_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(app_from_row).transpose()?)
    }
}

impl Store {
    /// Changes the branch whose pushes deploy. `None` when there is no such app.
    pub async fn set_deploy_branch(&self, app_id: &AppId, branch: &str) -> Result<Option<AppRecord>, StoreError> {
        sqlx::query("UPDATE apps SET deploy_branch = ? WHERE id = ?")
            .bind(branch)
            .bind(app_id.as_str())
            .execute(&self.pool)
            .await?;
        self.find_app(app_id.as_str()).await
    }

    /// Removes an app and everything that belongs to it. Used to undo a creation whose
    /// repository could not be made; deleting apps for users is a decommission workflow.
    pub async fn remove_app(&self, app_id: &AppId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM apps WHERE id = ?").bind(app_id.as_str()).execute(&self.pool).await?;
        Ok(())
    }
}
