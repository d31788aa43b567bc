//! What every route shares: the JSON extractor, the request id and its span, central
//! logging of server errors, and the node credential the internal routes sit behind.

use crate::{ApiFailure, ControlState};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;
use tovuk_api_types::{ErrorCode, NODE_SECRET_HEADER};
use tovuk_daemon::request_id;
use tracing::Instrument;

tokio::task_local! {
    /// The id of the request being served, for the error body built deep in a handler.
    static REQUEST_ID: String;
}

/// The id of the request this task serves, if it serves one.
pub(crate) fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A JSON body whose rejection is the API's error body, naming what was wrong.
pub(crate) struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiFailure;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(invalid_json(rejection)),
        }
    }
}

/// The largest JSON body the API reads (axum's default limit, named so the refusal can say it).
pub(crate) const JSON_BODY_LIMIT_MIB: usize = 2;

fn invalid_json(rejection: JsonRejection) -> ApiFailure {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return ApiFailure::new(
            ErrorCode::TooLarge,
            format!("the request body is larger than the {JSON_BODY_LIMIT_MIB} MiB the API takes"),
        )
        .next("send less at once (a config file: split it into several `tovuk config apply` runs)");
    }
    ApiFailure::new(
        ErrorCode::InvalidRequest,
        format!("the request body is not what this route takes: {}", rejection.body_text()),
    )
}

/// Gives each request an id (`x-request-id` on the answer, `request_id` in an error body),
/// runs it in one span, and logs every server error at error level in one place.
/// A store fault met on the way is acted on here, once: a full disk marks the store failing,
/// an I/O error stops the server before anything more is acknowledged.
pub(crate) async fn request_span(State(state): State<ControlState>, request: Request, next: Next) -> Response {
    let id = request_id::generate();
    let span =
        tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path());
    let writes = !request.method().is_safe();
    let (mut response, fault) = crate::store_health::noting_faults(REQUEST_ID.scope(id.clone(), next.run(request)))
        .instrument(span.clone())
        .await;
    let status = response.status();
    match fault {
        Some((fault, detail)) => state.store_fault(fault, &detail),
        None if writes && status.is_success() => state.store_wrote(),
        None => {}
    }
    if status.is_server_error() {
        span.in_scope(|| tracing::error!(status = status.as_u16(), "request failed"));
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(request_id::HEADER, value);
    }
    response
}

/// The internal routes answer only the platform's own roles, which present the node secret.
pub(crate) async fn require_node(
    State(state): State<ControlState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiFailure> {
    let given = request.headers().get(NODE_SECRET_HEADER).map(HeaderValue::as_bytes).unwrap_or_default();
    let expected = state.config().node_secret.as_bytes();
    // Constant time: the comparison does not reveal how much of the secret matched.
    let same = given.len() == expected.len() && given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if !same {
        return Err(ApiFailure::new(ErrorCode::Unauthorized, "this route is for the platform's own roles")
            .next("use the /v1 API with a token: tovuk --help"));
    }
    Ok(next.run(request).await)
}
