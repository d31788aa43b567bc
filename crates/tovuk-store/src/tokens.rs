//! API tokens. Only a SHA-256 of each secret is stored; the secret is shown once.
//!
//! Secrets are 256 random bits, so a plain hash is enough: there is nothing to
//! brute-force, and lookups by hash need no per-token salt.

use crate::time::{now_rfc3339, now_unix_ms};
use crate::{Store, StoreError, random_bytes};
use sha2::{Digest, Sha256};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};
use tovuk_types::{AppId, TokenId};

/// Every secret starts with this, so a leaked one is recognisable (and scannable).
pub const SECRET_PREFIX: &str = "tovuk_";

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenScope {
    /// Every right on the platform.
    Admin,
    /// Rights on one app only: push, deploy, read.
    Deploy { app_id: AppId, app_name: String },
}

impl TokenScope {
    pub fn as_str(&self) -> &'static str {
        match self {
            TokenScope::Admin => "admin",
            TokenScope::Deploy { .. } => "deploy",
        }
    }

    fn app_id(&self) -> Option<&str> {
        match self {
            TokenScope::Admin => None,
            TokenScope::Deploy { app_id, .. } => Some(app_id.as_str()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: TokenId,
    pub name: String,
    pub scope: TokenScope,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

const SELECT_TOKEN: &str = "SELECT t.*, a.name AS app_name FROM tokens t LEFT JOIN apps a ON a.id = t.app_id";

fn token_from_row(row: &SqliteRow) -> Result<TokenRecord, sqlx::Error> {
    let decode = |what: &str, value: &str| sqlx::Error::Decode(format!("bad {what} `{value}`").into());
    let id: String = row.try_get("id")?;
    let scope: String = row.try_get("scope")?;
    let scope = match scope.as_str() {
        "admin" => TokenScope::Admin,
        "deploy" => {
            let app_id: String = row.try_get("app_id")?;
            TokenScope::Deploy {
                app_id: AppId::parse(&app_id).ok_or_else(|| decode("app id", &app_id))?,
                app_name: row.try_get("app_name")?,
            }
        }
        other => return Err(decode("token scope", other)),
    };
    Ok(TokenRecord {
        id: TokenId::parse(&id).ok_or_else(|| decode("token id", &id))?,
        name: row.try_get("name")?,
        scope,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// Inserts a token inside `tx` and returns it with its secret.
pub(crate) async fn insert_token(
    tx: &mut Transaction<'_, Sqlite>,
    name: &str,
    scope: TokenScope,
) -> Result<(TokenRecord, String), StoreError> {
    let secret = format!("{SECRET_PREFIX}{}", hex::encode(random_bytes::<32>()?));
    let token = TokenRecord {
        id: TokenId::new(now_unix_ms(), random_bytes()?),
        name: name.to_owned(),
        scope,
        created_at: now_rfc3339(),
        last_used_at: None,
        revoked_at: None,
    };
    sqlx::query("INSERT INTO tokens (id, name, secret_sha256, scope, app_id, created_at) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(token.id.as_str())
        .bind(&token.name)
        .bind(hash_secret(&secret))
        .bind(token.scope.as_str())
        .bind(token.scope.app_id())
        .bind(&token.created_at)
        .execute(&mut **tx)
        .await?;
    Ok((token, secret))
}

impl Store {
    /// Creates a token; the secret is returned once and only its hash is kept.
    pub async fn create_token(&self, name: &str, scope: TokenScope) -> Result<(TokenRecord, String), StoreError> {
        let mut tx = self.pool.begin().await?;
        let created = insert_token(&mut tx, name, scope).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// The live (not revoked) token whose secret this is. A read only: authenticating
    /// must work while another writer holds the store; last use is recorded apart, in
    /// batches ([`Store::record_token_uses`]).
    pub async fn authenticate(&self, secret: &str) -> Result<Option<TokenRecord>, StoreError> {
        let sql = format!("{SELECT_TOKEN} WHERE t.secret_sha256 = ? AND t.revoked_at IS NULL");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(hash_secret(secret)).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(token_from_row).transpose()?)
    }

    /// Records when tokens were last used: `(token id, time)` pairs, in one transaction.
    pub async fn record_token_uses(&self, uses: &[(String, String)]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (id, at) in uses {
            sqlx::query("UPDATE tokens SET last_used_at = max(coalesce(last_used_at, ''), ?) WHERE id = ?")
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn find_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let sql = format!("{SELECT_TOKEN} WHERE t.id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(token_from_row).transpose()?)
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let sql = format!("{SELECT_TOKEN} ORDER BY t.created_at, t.id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(token_from_row).collect::<Result<_, _>>()?)
    }

    /// Revokes a token; revoking twice keeps the first time. `None` when there is no such token.
    pub async fn revoke_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        sqlx::query("UPDATE tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?")
            .bind(now_rfc3339())
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.find_token(id).await
    }
}
