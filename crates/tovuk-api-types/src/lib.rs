//! The control-plane wire schema: every request and response body the API speaks.
//!
//! This is the only crate that derives `Serialize` for API shapes, apart from the
//! `tovuk check` report, which is produced locally without a server and so lives in
//! `tovuk-manifest`. Field names are `snake_case`; absent values are `null`, never
//! omitted; lists are always arrays. Fields are only ever added within `/v1`.

mod error;

pub use error::{ApiError, ErrorBody, ErrorCode};

use serde::{Deserialize, Serialize};

/// `GET /v1/status`: platform API availability only, never anything about a user's project.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlatformStatus {
    /// `ok` when every role runs and the store answers, else `degraded`.
    pub status: String,
    pub version: String,
    pub started_at: String,
    pub uptime_seconds: u64,
    pub roles: Vec<RoleStatus>,
    pub store: StoreStatus,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleStatus {
    /// `api`, `router`, ...
    pub name: String,
    /// `running` or `stopped`.
    pub state: String,
    /// The address the role listens on, when it listens.
    pub address: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreStatus {
    /// `sqlite` for the embedded store.
    pub kind: String,
    /// Whether the store answered a query just now.
    pub ok: bool,
    pub latency_ms: Option<f64>,
    /// Why it did not answer, when it did not.
    pub error: Option<String>,
}

/// An app as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct App {
    pub id: String,
    pub name: String,
    /// The branch whose pushes deploy.
    pub deploy_branch: String,
    /// The smart-HTTP git remote to push to.
    pub git_remote: String,
    pub created_at: String,
}

/// `POST /v1/apps`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateAppRequest {
    pub name: String,
}

/// The answer to `POST /v1/apps`: the app and its deploy token, whose secret is shown only here.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedApp {
    pub app: App,
    pub deploy_token: CreatedToken,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppList {
    pub apps: Vec<App>,
}

/// Token metadata. The secret is never part of it: the store keeps only its hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Token {
    pub id: String,
    pub name: String,
    /// `admin` (every right) or `deploy` (rights on one app only).
    pub scope: String,
    /// The app a `deploy` token acts on; `null` for `admin`.
    pub app: Option<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// `POST /v1/tokens`. Without `app` the token is an admin token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateTokenRequest {
    pub name: String,
    pub app: Option<String>,
}

/// A new token: its metadata and, this once, its secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: Token,
    /// The bearer secret. It is not stored and cannot be shown again.
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenList {
    pub tokens: Vec<Token>,
}
