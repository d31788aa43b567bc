//! The app's HTTP+JSON API at `$B_URL` (`/queues/<id>` on the queue listener): send one or a
//! batch, pull under a lease, ack or retry by lease. Bearer `$B_TOKEN`. Every refusal is
//! `{"error": {"code", "message", "next"}}` with a status that says what kind it is.

use crate::engine::Queues;
use crate::{
    DEFAULT_PULL, DEFAULT_VISIBILITY_SECONDS, Gate, LeaseId, MAX_BATCH, MAX_DELAY_SECONDS, MAX_MESSAGE_BYTES,
    MAX_REQUEST_BYTES, MAX_VISIBILITY_SECONDS, MAX_WAIT_SECONDS, Settled,
};
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What every request on one listener shares.
#[derive(Clone)]
struct Api {
    queues: Arc<Queues>,
    gate: Arc<dyn Gate>,
    /// The app whose network the listener is in (None: the host's loopback).
    scope: Option<String>,
    stop: CancellationToken,
}

/// A refusal, in the one error shape.
#[derive(Debug)]
pub(crate) struct Refused {
    status: StatusCode,
    code: &'static str,
    message: String,
    next: String,
}

impl Refused {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>, next: impl Into<String>) -> Refused {
        Refused { status, code, message: message.into(), next: next.into() }
    }

    fn invalid(message: impl Into<String>, next: impl Into<String>) -> Refused {
        Refused::new(StatusCode::BAD_REQUEST, "invalid_request", message, next)
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message, "next": self.next}});
        (self.status, axum::Json(body)).into_response()
    }
}

fn storage_failed(error: crate::QueueError) -> Refused {
    tracing::error!(%error, "a queue operation failed");
    Refused::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "queue_unavailable",
        "the queue store could not complete the operation; nothing was changed by it",
        "retry in a moment",
    )
}

impl Queues {
    /// Serves the app API on `listener` until `stop` is cancelled.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        scope: Option<String>,
        gate: Arc<dyn Gate>,
        stop: CancellationToken,
    ) {
        let api = Api { queues: self, gate, scope, stop: stop.clone() };
        let router = Router::new()
            .route("/queues/{id}/messages", post(send_one))
            .route("/queues/{id}/messages/batch", post(send_batch))
            .route("/queues/{id}/pull", post(pull))
            .route("/queues/{id}/ack", post(ack))
            .fallback(unknown)
            .method_not_allowed_fallback(unknown)
            .with_state(api);
        tracing::debug!(addr = ?listener.local_addr().ok(), "serving queues");
        let served = axum::serve(listener, router).with_graceful_shutdown(async move { stop.cancelled().await }).await;
        if let Err(error) = served {
            tracing::warn!(%error, "the queue listener stopped");
        }
    }
}

async fn unknown(request: Request) -> Refused {
    Refused::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("there is no `{} {}` in the queue API", request.method(), request.uri().path()),
        "POST $B_URL/messages, $B_URL/messages/batch, $B_URL/pull or $B_URL/ack",
    )
}

/// Opens queue `id` with the request's bearer token: the app it belongs to.
fn authorize(api: &Api, headers: &HeaderMap, id: &str) -> Result<String, Refused> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        return Err(Refused::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the request has no `Authorization: Bearer` token",
            "send the header `Authorization: Bearer $B_TOKEN` (B: the queue's binding)",
        ));
    };
    api.gate.open(api.scope.as_deref(), id, token).ok_or_else(|| {
        Refused::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the token does not open this queue",
            "use the $B_URL and $B_TOKEN the platform set for the same binding B",
        )
    })
}

/// The request body as `T`, read up to the limit.
async fn read_json<T: serde::de::DeserializeOwned>(request: Request, example: &str) -> Result<T, Refused> {
    let bytes = axum::body::to_bytes(request.into_body(), MAX_REQUEST_BYTES).await.map_err(|_| {
        Refused::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!("the request body is over {MAX_REQUEST_BYTES} bytes"),
            format!("send at most {MAX_BATCH} messages of at most {MAX_MESSAGE_BYTES} bytes each"),
        )
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|error| Refused::invalid(format!("the body is not the JSON this endpoint takes: {error}"), example))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendOne {
    body: Value,
    #[serde(default)]
    delay_seconds: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBatch {
    messages: Vec<SendOne>,
}

const SEND_EXAMPLE: &str = r#"{"body": {"order": 42}, "delay_seconds": 0}"#;
const BATCH_EXAMPLE: &str = r#"{"messages": [{"body": {"order": 42}}, {"body": "text", "delay_seconds": 60}]}"#;

/// Checks each message and makes it what the store takes: JSON text and a delay.
fn prepare(messages: Vec<SendOne>, batch: bool) -> Result<Vec<(String, Duration)>, Refused> {
    let mut prepared = Vec::with_capacity(messages.len());
    for (index, message) in messages.into_iter().enumerate() {
        let which = if batch { format!("message {} of the batch", index + 1) } else { "the message".to_owned() };
        if message.delay_seconds > MAX_DELAY_SECONDS {
            return Err(Refused::invalid(
                format!(
                    "{which} has delay_seconds {}; it may be at most {MAX_DELAY_SECONDS} (12 hours)",
                    message.delay_seconds
                ),
                format!("\"delay_seconds\": {MAX_DELAY_SECONDS}"),
            ));
        }
        let body = serde_json::to_string(&message.body)
            .map_err(|error| Refused::invalid(format!("{which} cannot be stored: {error}"), SEND_EXAMPLE))?;
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(Refused::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "message_too_large",
                format!(
                    "{which} is {} bytes as JSON; a message may be at most {MAX_MESSAGE_BYTES} bytes (128 KiB)",
                    body.len()
                ),
                "send a smaller body: keep the payload in object storage and send its key",
            ));
        }
        prepared.push((body, Duration::from_secs(message.delay_seconds)));
    }
    Ok(prepared)
}

async fn send(api: &Api, id: &str, app: &str, messages: Vec<(String, Duration)>) -> Result<Vec<String>, Refused> {
    let count = u64::try_from(messages.len()).unwrap_or(u64::MAX);
    api.gate.admit_sends(app, id, count).map_err(|message| {
        Refused::new(
            StatusCode::TOO_MANY_REQUESTS,
            "cap_reached",
            message,
            format!("tovuk caps set {app} queue_messages <LIMIT>"),
        )
    })?;
    Ok(api.queues.send(id, messages).await.map_err(storage_failed)?.ids)
}

async fn send_one(
    State(api): State<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, Refused> {
    let app = authorize(&api, &headers, &id)?;
    let message: SendOne = read_json(request, SEND_EXAMPLE).await?;
    let prepared = prepare(vec![message], false)?;
    let ids = send(&api, &id, &app, prepared).await?;
    Ok(axum::Json(json!({"id": ids.first()})).into_response())
}

async fn send_batch(
    State(api): State<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, Refused> {
    let app = authorize(&api, &headers, &id)?;
    let batch: SendBatch = read_json(request, BATCH_EXAMPLE).await?;
    if batch.messages.is_empty() {
        return Err(Refused::invalid("the batch has no messages", BATCH_EXAMPLE));
    }
    if batch.messages.len() > MAX_BATCH {
        return Err(Refused::invalid_code(
            "too_many_messages",
            format!("the batch has {} messages; a batch may have at most {MAX_BATCH}", batch.messages.len()),
            format!("split it into batches of at most {MAX_BATCH}"),
        ));
    }
    let prepared = prepare(batch.messages, true)?;
    let ids = send(&api, &id, &app, prepared).await?;
    Ok(axum::Json(json!({"ids": ids})).into_response())
}

impl Refused {
    fn invalid_code(code: &'static str, message: impl Into<String>, next: impl Into<String>) -> Refused {
        Refused::new(StatusCode::BAD_REQUEST, code, message, next)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PullRequest {
    #[serde(default)]
    max: Option<usize>,
    #[serde(default)]
    visibility_timeout_seconds: Option<u64>,
    #[serde(default)]
    wait_seconds: Option<u64>,
}

const PULL_EXAMPLE: &str = r#"{"max": 10, "visibility_timeout_seconds": 30, "wait_seconds": 5}"#;

async fn pull(
    State(api): State<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, Refused> {
    authorize(&api, &headers, &id)?;
    let asked: PullRequest = read_json(request, PULL_EXAMPLE).await?;
    if let Some(push) = api.queues.config(&id).and_then(|config| config.push.clone()) {
        return Err(Refused::new(
            StatusCode::CONFLICT,
            "pull_refused",
            format!(
                "this queue has a push consumer: the platform delivers its messages to app `{}` at {}, so it cannot be pulled",
                push.consumer, push.path
            ),
            "to pull instead, remove `consumer` from the queue's [[resources]] entry in tovuk.toml and deploy",
        ));
    }
    let max = asked.max.unwrap_or(DEFAULT_PULL);
    if max == 0 || max > MAX_BATCH {
        return Err(Refused::invalid(format!("max is {max}; a pull takes 1 to {MAX_BATCH} messages"), PULL_EXAMPLE));
    }
    let visibility = asked.visibility_timeout_seconds.unwrap_or(DEFAULT_VISIBILITY_SECONDS);
    if visibility == 0 || visibility > MAX_VISIBILITY_SECONDS {
        return Err(Refused::invalid(
            format!("visibility_timeout_seconds is {visibility}; it must be 1 to {MAX_VISIBILITY_SECONDS}"),
            PULL_EXAMPLE,
        ));
    }
    let wait = asked.wait_seconds.unwrap_or(0);
    if wait > MAX_WAIT_SECONDS {
        return Err(Refused::invalid(
            format!("wait_seconds is {wait}; it may be at most {MAX_WAIT_SECONDS}"),
            PULL_EXAMPLE,
        ));
    }
    let pulling = api.queues.pull(&id, max, Duration::from_secs(visibility), Duration::from_secs(wait));
    // A long pull ends empty when the platform stops, rather than hold its shutdown.
    let pulled = tokio::select! {
        pulled = pulling => pulled.map_err(storage_failed)?,
        () = api.stop.cancelled() => Vec::new(),
    };
    let messages: Vec<Value> = pulled
        .into_iter()
        .map(|message| {
            json!({
                "id": message.id,
                "lease_id": message.lease.to_string(),
                "attempt": message.attempt,
                "body": serde_json::from_str::<Value>(&message.body).unwrap_or(Value::Null),
                "enqueued_at": crate::rfc3339(message.enqueued_at),
            })
        })
        .collect();
    Ok(axum::Json(json!({"messages": messages})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckRequest {
    #[serde(default)]
    acks: Vec<String>,
    #[serde(default)]
    retries: Vec<RetryRequest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryRequest {
    lease_id: String,
    #[serde(default)]
    delay_seconds: Option<u64>,
    #[serde(default)]
    error: Option<String>,
}

const ACK_EXAMPLE: &str =
    r#"{"acks": ["<lease_id>"], "retries": [{"lease_id": "<lease_id>", "delay_seconds": 10, "error": "why"}]}"#;

/// The longest error text a retry keeps.
const MAX_ERROR_BYTES: usize = 4096;

async fn ack(
    State(api): State<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, Refused> {
    authorize(&api, &headers, &id)?;
    let asked: AckRequest = read_json(request, ACK_EXAMPLE).await?;
    // Nothing to settle (a pull that got nothing) is answered like any ack: with zeros.
    let total = asked.acks.len() + asked.retries.len();
    if total > MAX_BATCH {
        return Err(Refused::invalid_code(
            "too_many_messages",
            format!("the request names {total} leases; one ack may name at most {MAX_BATCH}"),
            format!("send at most {MAX_BATCH} acks and retries per request"),
        ));
    }
    if let Some(retry) = asked.retries.iter().find(|retry| retry.delay_seconds.unwrap_or(0) > MAX_DELAY_SECONDS) {
        return Err(Refused::invalid(
            format!("the retry of {} has delay_seconds over {MAX_DELAY_SECONDS} (12 hours)", retry.lease_id),
            ACK_EXAMPLE,
        ));
    }
    // Lease ids that do not parse were never given: reported like any unknown lease.
    let mut names = Vec::with_capacity(total);
    let mut acks = Vec::new();
    let mut retries = Vec::new();
    let mut unparsed = Vec::new();
    for lease_id in asked.acks {
        match LeaseId::parse(&lease_id) {
            Some(lease) => {
                acks.push(lease);
                names.push(lease_id);
            }
            None => unparsed.push(lease_id),
        }
    }
    for retry in asked.retries {
        match LeaseId::parse(&retry.lease_id) {
            Some(lease) => {
                let delay = retry.delay_seconds.map_or_else(|| crate::backoff(lease.attempt), Duration::from_secs);
                let mut error = retry.error.unwrap_or_else(|| "retried by the consumer".to_owned());
                truncate(&mut error, MAX_ERROR_BYTES);
                retries.push((lease, delay, error));
                names.push(retry.lease_id);
            }
            None => unparsed.push(retry.lease_id),
        }
    }
    let outcomes = api.queues.settle(&id, acks, retries).await.map_err(storage_failed)?;
    let mut done = [0u64; 3];
    let mut failed = Vec::new();
    for (lease_id, outcome) in names.into_iter().zip(outcomes) {
        match outcome {
            Settled::Acked => done[0] += 1,
            Settled::Retried => done[1] += 1,
            Settled::DeadLettered => done[2] += 1,
            Settled::Expired => failed.push(json!({
                "lease_id": lease_id,
                "code": "lease_expired",
                "message": "the lease's visibility timeout passed before this ack: the message is (or will be) delivered again",
            })),
            Settled::Unknown => failed.push(unknown_lease(&lease_id)),
        }
    }
    failed.extend(unparsed.iter().map(|lease_id| unknown_lease(lease_id)));
    let mut body = json!({"acked": done[0], "retried": done[1], "dead_lettered": done[2], "failed": failed});
    if failed.is_empty() {
        return Ok(axum::Json(body).into_response());
    }
    body["error"] = json!({
        "code": "lease_failed",
        "message": format!("{} of the {total} leases did not hold; each is listed in `failed`", failed.len()),
        "next": "pull again with a longer visibility_timeout_seconds, and ack each message once, before its lease ends",
    });
    Ok((StatusCode::CONFLICT, axum::Json(body)).into_response())
}

fn unknown_lease(lease_id: &str) -> Value {
    json!({
        "lease_id": lease_id,
        "code": "lease_not_found",
        "message": "no message holds this lease: it was acknowledged already, purged, or never given by a pull",
    })
}

fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}
