//! The one error body of the API: `{"error": {"code", "message", "next"}}`.

use serde::{Deserialize, Serialize};

/// Stable, low-cardinality error codes. Each maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Unauthorized,
    Forbidden,
    NotFound,
    AppNotFound,
    TokenNotFound,
    AppExists,
    DeployNotFound,
    OperationNotFound,
    RefNotFound,
    /// The app has no resource with that binding (or no snapshot with that id).
    ResourceNotFound,
    /// A snapshot that fails SQLite's integrity check: nothing was restored.
    SnapshotCorrupt,
    /// The SQL an operator sent failed; the message is SQLite's.
    QueryFailed,
    /// The deploy is not in a state the action applies to.
    InvalidState,
    /// The contract check failed; the body carries the report.
    CheckFailed,
    /// The upload is not a safe archive within the limits.
    BadArchive,
    TooLarge,
    /// Too many failed authentications from this client address: wait and try again.
    TooManyAttempts,
    InvalidName,
    InvalidRequest,
    /// A config name or value is not one the platform accepts.
    InvalidConfig,
    /// An unset named a config name that is not set.
    ConfigNotSet,
    /// The secrets master key is missing or is not the one the values were sealed with.
    SecretsUnavailable,
    StoreUnavailable,
    Internal,
    /// Client side only: the platform could not be reached.
    Unreachable,
    /// Client side only: the answer was not what the API speaks.
    BadResponse,
}

impl ErrorCode {
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound
            | ErrorCode::AppNotFound
            | ErrorCode::TokenNotFound
            | ErrorCode::DeployNotFound
            | ErrorCode::OperationNotFound
            | ErrorCode::RefNotFound
            | ErrorCode::ResourceNotFound => 404,
            ErrorCode::SnapshotCorrupt => 422,
            ErrorCode::QueryFailed => 400,
            ErrorCode::AppExists | ErrorCode::InvalidState => 409,
            ErrorCode::CheckFailed | ErrorCode::BadArchive => 422,
            ErrorCode::TooLarge => 413,
            ErrorCode::TooManyAttempts => 429,
            ErrorCode::InvalidName | ErrorCode::InvalidRequest | ErrorCode::InvalidConfig => 400,
            ErrorCode::ConfigNotSet => 404,
            ErrorCode::SecretsUnavailable => 503,
            ErrorCode::StoreUnavailable => 503,
            ErrorCode::Internal => 500,
            ErrorCode::Unreachable | ErrorCode::BadResponse => 502,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::AppNotFound => "app_not_found",
            ErrorCode::TokenNotFound => "token_not_found",
            ErrorCode::AppExists => "app_exists",
            ErrorCode::DeployNotFound => "deploy_not_found",
            ErrorCode::OperationNotFound => "operation_not_found",
            ErrorCode::RefNotFound => "ref_not_found",
            ErrorCode::ResourceNotFound => "resource_not_found",
            ErrorCode::SnapshotCorrupt => "snapshot_corrupt",
            ErrorCode::QueryFailed => "query_failed",
            ErrorCode::InvalidState => "invalid_state",
            ErrorCode::CheckFailed => "check_failed",
            ErrorCode::BadArchive => "bad_archive",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::TooManyAttempts => "too_many_attempts",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidConfig => "invalid_config",
            ErrorCode::ConfigNotSet => "config_not_set",
            ErrorCode::SecretsUnavailable => "secrets_unavailable",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::Unreachable => "unreachable",
            ErrorCode::BadResponse => "bad_response",
        }
    }
}

/// What went wrong and, when there is one, the exact command that fixes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub next: Option<String>,
    /// Structured detail for some codes (the check report for `check_failed`).
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
    /// The id of the request that failed, as in its `x-request-id` header and the server log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), next: None, detail: None, request_id: None }
    }

    pub fn with_next(mut self, next: impl Into<String>) -> Self {
        self.next = Some(next.into());
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

/// The envelope every error response carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ApiError,
}
