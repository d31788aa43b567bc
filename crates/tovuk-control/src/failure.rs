//! Turning failures into the API's one error shape, with the right status.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tovuk_api_types::{ApiError, ErrorBody, ErrorCode};
use tovuk_store::StoreError;

/// A failed request: the error body users see.
#[derive(Debug)]
pub struct ApiFailure(pub Box<ApiError>, pub Option<u64>);

impl ApiFailure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiFailure(Box::new(ApiError::new(code, message)), None)
    }

    /// Answers with `Retry-After: SECONDS`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.1 = Some(seconds);
        self
    }

    pub fn next(mut self, next: impl Into<String>) -> Self {
        self.0.next = Some(next.into());
        self
    }
}

impl From<StoreError> for ApiFailure {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::AppExists(name) => {
                ApiFailure::new(ErrorCode::AppExists, format!("app `{name}` already exists"))
                    .next(format!("tovuk app show {name}"))
            }
            other => {
                // The detail goes to the operator's log; the user gets a safe message.
                tracing::error!(error = %other, "state store failure");
                crate::store_health::note(&other);
                ApiFailure::new(ErrorCode::StoreUnavailable, "the state store did not answer; try again")
                    .next("tovuk status")
            }
        }
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(mut self) -> Response {
        let code = self.0.code;
        self.0.request_id = crate::http::current_request_id();
        let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_client_error() {
            tracing::info!(code = code.as_str(), message = %self.0.message, "request refused");
        }
        let mut response = (status, Json(ErrorBody { error: *self.0 })).into_response();
        if code == ErrorCode::Unauthorized {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        // Busy or out of space for now: worth trying again shortly.
        let retry_after = self.1.or((code == ErrorCode::StoreUnavailable).then_some(1));
        if let Some(seconds) = retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}
