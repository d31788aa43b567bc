//! The app's HTTP API at `$B_URL` (`/state/<resource_id>` on the State listener), bearer
//! `$B_TOKEN`. Handlers only translate HTTP: calls are delivered by `call.rs`, storage is
//! done by `states.rs`.
//!
//! - `ANY $B_URL/<object>[/<rest>][?query]`: a call, delivered to an instance of the owning
//!   app as `/<rest>?query` with `Tovuk-State-Object`, `Tovuk-State-Call` and
//!   `Tovuk-Caller-App` set; its answer is passed back as it came.
//! - `GET|PUT|DELETE $B_URL/_storage/<object>/<key>`, `GET $B_URL/_storage/<object>?prefix=&after=&limit=`,
//!   `POST $B_URL/_storage/<object>/transaction`: the object's storage, for the owning app
//!   only, from inside the object's running call (the `Tovuk-State-Call` header it arrived
//!   with). Keys are the percent-decoded rest of the path (`/` allowed), 1 to 2048 bytes;
//!   values are any JSON, at most 128 KiB as compact JSON text. A `PUT` of key `transaction`
//!   works; only `POST` to it runs a transaction.
//!
//! Every refusal is `{"error": {"code", "message", "next"}}`, the shape of every resource API:
//!
//! | Status | Code | When |
//! |---|---|---|
//! | 400 | `invalid_object` | the object name is not 1–256 bytes of `[A-Za-z0-9._~-]`, or starts with `_` or `.` |
//! | 400 | `invalid_key` | a key is empty, over 2048 bytes, badly percent-encoded or not UTF-8 |
//! | 400 | `invalid_request` | the body or query is not what the endpoint takes |
//! | 400 | `too_many_ops` | a transaction has more than 128 operations |
//! | 401 | `unauthorized` | no bearer token, or it does not open the resource id in the path |
//! | 403 | `forbidden` | storage used by an app other than the owner |
//! | 404 | `not_found` | no such route, or the key has no value |
//! | 405 | `method_not_allowed` | a storage route does not take the method |
//! | 409 | `not_in_call` | storage without the `Tovuk-State-Call` of the call running on the object now |
//! | 409 | `check_failed` | a transaction's check did not hold: nothing was written |
//! | 413 | `too_large` | a call body over 8 MiB, a value over 128 KiB, or a storage body over its limit |
//! | 429 | `object_busy` | 10,000 calls already wait for the object: not sent |
//! | 429 | `cap_reached` | the platform's meter refused the storage operation: nothing was done |
//! | 502 | `call_interrupted` | the call was delivered, then the connection broke or it ran past 60 s: it may have taken effect, and was not run again |
//! | 502 | `invalid_answer` | the instance answered with a status that is not HTTP |
//! | 503 | `object_unavailable` | no instance of the owning app took the call, or the platform is stopping: not sent |
//! | 503 | `object_wait_timeout` | the call waited 60 s for the object's earlier calls: not sent |
//! | 503 | `state_unavailable` | the store failed: the operation did not take effect |

use crate::backend::{Entry, Transacted, TxOp, TxResult};
use crate::call::{CALL_HEADER, CallOutcome, CallRefused, Incoming, Instances, answered_headers};
use crate::states::{StorageDone, StorageOp, StorageRefused};
use crate::{
    CALL_TIMEOUT, DEFAULT_LIST, Gate, MAX_CALL_BODY_BYTES, MAX_KEY_BYTES, MAX_LIST, MAX_OPS, MAX_VALUE_BYTES,
    MAX_WAITING, Opened, States, valid_object_name,
};
use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The largest body a `PUT` may send: the value is measured once made compact.
const MAX_PUT_BODY_BYTES: usize = 1024 * 1024;
/// The largest transaction body: every operation a full value and key, with room for JSON.
const MAX_TRANSACTION_BODY_BYTES: usize = MAX_OPS * (MAX_VALUE_BYTES + 2 * MAX_KEY_BYTES + 256);
/// How much of a value a refusal quotes.
const EXCERPT_BYTES: usize = 200;

/// What every request on one listener shares.
#[derive(Clone)]
struct Api {
    states: Arc<States>,
    gate: Arc<dyn Gate>,
    instances: Arc<dyn Instances>,
    /// The app whose network the listener is in (None: the host's loopback).
    scope: Option<String>,
    stop: CancellationToken,
}

/// Every error code the API answers with (documented in the table above).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Code {
    InvalidObject,
    InvalidKey,
    InvalidRequest,
    TooManyOps,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    NotInCall,
    CheckFailed,
    TooLarge,
    ObjectBusy,
    CapReached,
    CallInterrupted,
    InvalidAnswer,
    ObjectUnavailable,
    ObjectWaitTimeout,
    StateUnavailable,
}

/// A refusal, in the one error shape.
#[derive(Debug)]
struct Refused {
    status: StatusCode,
    code: Code,
    message: String,
    next: String,
}

impl Refused {
    fn new(status: StatusCode, code: Code, message: impl Into<String>, next: impl Into<String>) -> Refused {
        Refused { status, code, message: message.into(), next: next.into() }
    }

    fn invalid(message: impl Into<String>, next: impl Into<String>) -> Refused {
        Refused::new(StatusCode::BAD_REQUEST, Code::InvalidRequest, message, next)
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message, "next": self.next}});
        (self.status, axum::Json(body)).into_response()
    }
}

fn storage_failed(error: crate::StateError) -> Refused {
    tracing::error!(%error, "a state storage operation failed");
    Refused::new(
        StatusCode::SERVICE_UNAVAILABLE,
        Code::StateUnavailable,
        "the state store could not complete the operation; it did not take effect",
        "retry in a moment",
    )
}

impl States {
    /// Serves the app API on `listener` until `stop` is cancelled, delivering calls through
    /// `instances`. Calls waiting in line end unsent when `stop` is cancelled; running ones
    /// finish (within the call timeout).
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        scope: Option<String>,
        gate: Arc<dyn Gate>,
        instances: Arc<dyn Instances>,
        stop: CancellationToken,
    ) {
        let api = Api { states: self, gate, instances, scope, stop: stop.clone() };
        // One handler reads the raw path: a call's rest is forwarded as sent, and a key is
        // percent-decoded once, here.
        let router = Router::new().fallback(dispatch).with_state(api);
        tracing::debug!(addr = ?listener.local_addr().ok(), "serving state objects");
        let served = axum::serve(listener, router).with_graceful_shutdown(async move { stop.cancelled().await }).await;
        if let Err(error) = served {
            tracing::warn!(%error, "the state listener stopped");
        }
    }
}

fn not_found(method: &Method, path: &str) -> Refused {
    Refused::new(
        StatusCode::NOT_FOUND,
        Code::NotFound,
        format!("there is no `{method} {path}` in the state API"),
        "call an object at $B_URL/<object>/<path>; its app uses storage at $B_URL/_storage/<object>/<key>",
    )
}

async fn dispatch(State(api): State<Api>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    match route(&api, &parts, body).await {
        Ok(response) => response,
        Err(refused) => refused.into_response(),
    }
}

async fn route(api: &Api, parts: &Parts, body: Body) -> Result<Response, Refused> {
    let path = parts.uri.path();
    let Some(rest) = path.strip_prefix("/state/") else { return Err(not_found(&parts.method, path)) };
    let (id, rest) = rest.split_once('/').unwrap_or((rest, ""));
    let opened = authorize(api, &parts.headers, id)?;
    if rest.is_empty() {
        return Err(not_found(&parts.method, path));
    }
    let (first, tail) = match rest.split_once('/') {
        Some((first, tail)) => (first, Some(tail)),
        None => (rest, None),
    };
    if first == "_storage" {
        storage(api, &opened, parts, tail, body).await
    } else {
        call(api, &opened, parts, first, tail, body).await
    }
}

/// Opens resource `id` with the request's bearer token.
fn authorize(api: &Api, headers: &HeaderMap, id: &str) -> Result<Opened, Refused> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        return Err(Refused::new(
            StatusCode::UNAUTHORIZED,
            Code::Unauthorized,
            "the request has no `Authorization: Bearer` token",
            "send the header `Authorization: Bearer $B_TOKEN` (B: the State binding)",
        ));
    };
    api.gate.open(api.scope.as_deref(), id, token).ok_or_else(|| {
        Refused::new(
            StatusCode::UNAUTHORIZED,
            Code::Unauthorized,
            "the token does not open this State resource",
            "use the $B_URL and $B_TOKEN the platform set for the same binding B",
        )
    })
}

fn check_object(object: &str) -> Result<(), Refused> {
    if valid_object_name(object) {
        return Ok(());
    }
    Err(Refused::new(
        StatusCode::BAD_REQUEST,
        Code::InvalidObject,
        format!(
            "`{}` cannot name an object: a name is 1 to 256 bytes of letters, digits, `.`, `_`, `~` and `-`, \
             and does not start with `_` or `.`",
            excerpt(object)
        ),
        "name the object with those characters, e.g. `room-42` or `user.7`",
    ))
}

fn too_large(what: String, next: &str) -> Refused {
    Refused::new(StatusCode::PAYLOAD_TOO_LARGE, Code::TooLarge, what, next)
}

async fn read_body(body: Body, limit: usize, next: &str) -> Result<bytes::Bytes, Refused> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large(format!("the request body is over {limit} bytes"), next))
}

// ---- calls ----

async fn call(
    api: &Api,
    opened: &Opened,
    parts: &Parts,
    object: &str,
    rest: Option<&str>,
    body: Body,
) -> Result<Response, Refused> {
    check_object(object)?;
    // Read whole before joining the line, so the object's turn is not spent on an upload.
    let body =
        read_body(body, MAX_CALL_BODY_BYTES, "send at most 8 MiB; keep larger payloads in object storage").await?;
    let mut path_and_query = format!("/{}", rest.unwrap_or(""));
    if let Some(query) = parts.uri.query() {
        path_and_query.push('?');
        path_and_query.push_str(query);
    }
    let incoming =
        Incoming { opened, object, method: parts.method.clone(), path_and_query, headers: &parts.headers, body };
    let owner = &opened.owner;
    let outcome = api.states.call(&api.instances, incoming, &api.stop).await.map_err(|refused| match refused {
        CallRefused::LineFull => Refused::new(
            StatusCode::TOO_MANY_REQUESTS,
            Code::ObjectBusy,
            format!("{MAX_WAITING} calls already wait for object `{object}`; this one was not sent"),
            "retry later, or spread the load over more objects",
        ),
        CallRefused::WaitedTooLong => Refused::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::ObjectWaitTimeout,
            format!(
                "the call waited {} s for object `{object}`'s earlier calls to finish; it was not sent",
                CALL_TIMEOUT.as_secs()
            ),
            "retry later; make the object's calls shorter, or spread the load over more objects",
        ),
        CallRefused::Stopping => Refused::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::ObjectUnavailable,
            "the platform is stopping; the call was not sent",
            "retry once it is back",
        ),
    })?;
    match outcome {
        CallOutcome::Answered { status, headers, body } => answer(status, headers, body, owner),
        CallOutcome::NotSent(reason) => Err(Refused::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::ObjectUnavailable,
            format!("no instance of `{owner}` is running to take the call; it was not sent ({reason})"),
            format!("see: tovuk app status {owner}"),
        )),
        CallOutcome::Interrupted(reason) => Err(Refused::new(
            StatusCode::BAD_GATEWAY,
            Code::CallInterrupted,
            format!(
                "the call was delivered to `{owner}`, then it broke off before an answer ({reason}); \
                 it may have taken effect, and it was not run again"
            ),
            format!("check the object's state before calling again; see: tovuk logs {owner}"),
        )),
    }
}

fn answer(status: u16, headers: Vec<(String, String)>, body: Vec<u8>, owner: &str) -> Result<Response, Refused> {
    let status = StatusCode::from_u16(status).map_err(|_| {
        Refused::new(
            StatusCode::BAD_GATEWAY,
            Code::InvalidAnswer,
            format!("`{owner}` answered the call with status {status}, which is not an HTTP status"),
            format!("see: tovuk logs {owner}"),
        )
    })?;
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    for (name, value) in answered_headers(headers) {
        // A header that is not valid HTTP cannot be passed on; the rest of the answer can.
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
            response.headers_mut().append(name, value);
        }
    }
    Ok(response)
}

// ---- storage ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    prefix: String,
    after: Option<String>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransactionBody {
    ops: Vec<OpBody>,
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum OpBody {
    Get {
        key: String,
    },
    Put {
        key: String,
        value: Value,
    },
    Delete {
        key: String,
    },
    Check {
        key: String,
        /// Present (even `null`): the value must equal it. Absent: the key must have none.
        #[serde(default, deserialize_with = "present")]
        value: Option<Value>,
    },
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

const TRANSACTION_EXAMPLE: &str = r#"{"ops": [{"op": "check", "key": "version", "value": 3}, {"op": "put", "key": "version", "value": 4}, {"op": "get", "key": "name"}, {"op": "delete", "key": "draft"}]}"#;
const LIST_EXAMPLE: &str = "GET $B_URL/_storage/<object>?prefix=user/&after=user/41&limit=100";

async fn storage(
    api: &Api,
    opened: &Opened,
    parts: &Parts,
    tail: Option<&str>,
    body: Body,
) -> Result<Response, Refused> {
    if opened.caller != opened.owner {
        return Err(Refused::new(
            StatusCode::FORBIDDEN,
            Code::Forbidden,
            format!(
                "storage of a State object is used by its own app (`{}`), from inside one of its calls",
                opened.owner
            ),
            "call the object instead ($B_URL/<object>/<path>) and let its app read and write its storage",
        ));
    }
    let Some(tail) = tail else { return Err(not_found(&parts.method, parts.uri.path())) };
    let (object, key) = match tail.split_once('/') {
        Some((object, key)) => (object, Some(key)),
        None => (tail, None),
    };
    check_object(object)?;
    let method = &parts.method;
    let (op, shape): (StorageOp, Shape) = match key {
        None if method == Method::GET => (list_op(parts)?, Shape::List),
        Some("transaction") if method == Method::POST => transaction_op(body).await?,
        Some(key) if method == Method::GET => {
            let key = decode_key(key)?;
            (StorageOp::Get { key: key.clone() }, Shape::Get(key))
        }
        Some(key) if method == Method::PUT => {
            let key = decode_key(key)?;
            let bytes = read_body(body, MAX_PUT_BODY_BYTES, "store a smaller value").await?;
            let value: Value = serde_json::from_slice(&bytes).map_err(|error| {
                Refused::invalid(format!("the body is not a JSON value: {error}"), r#"{"any": "JSON value"}"#)
            })?;
            let value = compact(&value, None)?;
            (StorageOp::Transact(vec![TxOp::Put { key, value }]), Shape::Put)
        }
        Some(key) if method == Method::DELETE => {
            (StorageOp::Transact(vec![TxOp::Delete { key: decode_key(key)? }]), Shape::Delete)
        }
        _ => {
            return Err(Refused::new(
                StatusCode::METHOD_NOT_ALLOWED,
                Code::MethodNotAllowed,
                format!("storage does not take `{method} {}`", parts.uri.path()),
                "GET, PUT or DELETE $B_URL/_storage/<object>/<key>; GET $B_URL/_storage/<object> to list; \
                 POST $B_URL/_storage/<object>/transaction",
            ));
        }
    };
    let call = parts.headers.get(CALL_HEADER).and_then(|value| value.to_str().ok());
    let Some(call) = call else {
        return Err(not_in_call("the request has no `Tovuk-State-Call` header".to_owned()));
    };
    let done =
        api.states.storage(api.gate.as_ref(), opened, object, call, op).await.map_err(|refused| match refused {
            StorageRefused::NotInCall => not_in_call(format!(
                "`{}` is not the call running on object `{object}` now (it ended, or is another object's)",
                excerpt(call)
            )),
            StorageRefused::Capped(message) => Refused::new(
                StatusCode::TOO_MANY_REQUESTS,
                Code::CapReached,
                message,
                format!("see: tovuk caps list {}", opened.owner),
            ),
            StorageRefused::Failed(error) => storage_failed(error),
        })?;
    shape.render(done)
}

fn not_in_call(message: String) -> Refused {
    Refused::new(
        StatusCode::CONFLICT,
        Code::NotInCall,
        message,
        "use storage from inside one of the object's calls: send the Tovuk-State-Call header the call arrived with",
    )
}

/// How a storage operation's result is written back.
#[derive(Debug, Clone)]
enum Shape {
    Get(String),
    Put,
    Delete,
    List,
    Transaction,
}

/// `text`, which the store holds as JSON, as a JSON value.
fn stored(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

impl Shape {
    fn render(self, done: StorageDone) -> Result<Response, Refused> {
        let body = match (self, done) {
            (Shape::Get(key), StorageDone::Value(Some(value))) => json!({"key": key, "value": stored(&value)}),
            (Shape::Get(key), StorageDone::Value(None)) => {
                return Err(Refused::new(
                    StatusCode::NOT_FOUND,
                    Code::NotFound,
                    format!("key `{}` has no value", excerpt(&key)),
                    "PUT a value first, or treat the key as empty",
                ));
            }
            (Shape::List, StorageDone::Listed { entries, next }) => {
                let entries: Vec<Value> =
                    entries.iter().map(|Entry { key, value }| json!({"key": key, "value": stored(value)})).collect();
                json!({"entries": entries, "next": next})
            }
            (_, StorageDone::Transacted(Transacted::CheckFailed { key, expected, found })) => {
                let expected = expected.map_or_else(|| "no value".to_owned(), |value| excerpt(&value));
                let found = found.map_or_else(|| "no value".to_owned(), |value| excerpt(&value));
                return Err(Refused::new(
                    StatusCode::CONFLICT,
                    Code::CheckFailed,
                    format!(
                        "the check of key `{}` expected {expected} and found {found}; nothing was written",
                        excerpt(&key)
                    ),
                    "read the key again and retry the transaction with what it holds now",
                ));
            }
            (shape, StorageDone::Transacted(Transacted::Done(results))) => {
                let mut results: Vec<Value> = results.into_iter().map(result_json).collect();
                match shape {
                    Shape::Transaction => json!({"results": results}),
                    _ => results.pop().unwrap_or(Value::Null),
                }
            }
            (_, done) => {
                tracing::error!(?done, "a storage result does not fit its request");
                return Err(storage_failed(crate::StateError::Storage("unexpected result".to_owned())));
            }
        };
        Ok(axum::Json(body).into_response())
    }
}

fn result_json(result: TxResult) -> Value {
    match result {
        TxResult::Get { key, value } => json!({"key": key, "value": value.as_deref().map(stored)}),
        TxResult::Put { key } => json!({"key": key}),
        TxResult::Delete { deleted } => json!({"deleted": deleted}),
        TxResult::Check => json!({"ok": true}),
    }
}

fn list_op(parts: &Parts) -> Result<StorageOp, Refused> {
    let Query(query) = Query::<ListQuery>::try_from_uri(&parts.uri)
        .map_err(|error| Refused::invalid(format!("the query is not what a list takes: {error}"), LIST_EXAMPLE))?;
    let limit = query.limit.unwrap_or(DEFAULT_LIST);
    if limit == 0 || limit > MAX_LIST {
        return Err(Refused::invalid(format!("limit is {limit}; a list takes 1 to {MAX_LIST}"), LIST_EXAMPLE));
    }
    Ok(StorageOp::List { prefix: query.prefix, after: query.after, limit })
}

async fn transaction_op(body: Body) -> Result<(StorageOp, Shape), Refused> {
    let bytes = read_body(body, MAX_TRANSACTION_BODY_BYTES, "send fewer or smaller operations").await?;
    let asked: TransactionBody = serde_json::from_slice(&bytes).map_err(|error| {
        Refused::invalid(format!("the body is not the JSON a transaction takes: {error}"), TRANSACTION_EXAMPLE)
    })?;
    if asked.ops.len() > MAX_OPS {
        return Err(Refused::new(
            StatusCode::BAD_REQUEST,
            Code::TooManyOps,
            format!("the transaction has {} operations; one may have at most {MAX_OPS}", asked.ops.len()),
            format!("split it into transactions of at most {MAX_OPS}, each with the checks its writes depend on"),
        ));
    }
    let mut ops = Vec::with_capacity(asked.ops.len());
    for (index, op) in asked.ops.into_iter().enumerate() {
        let which = Some(index + 1);
        ops.push(match op {
            OpBody::Get { key } => TxOp::Get { key: check_key(key)? },
            OpBody::Put { key, value } => TxOp::Put { key: check_key(key)?, value: compact(&value, which)? },
            OpBody::Delete { key } => TxOp::Delete { key: check_key(key)? },
            OpBody::Check { key, value } => {
                TxOp::Check { key: check_key(key)?, value: value.map(|value| compact(&value, which)).transpose()? }
            }
        });
    }
    Ok((StorageOp::Transact(ops), Shape::Transaction))
}

/// `value` as the compact JSON text the store holds, within the size limit.
fn compact(value: &Value, op: Option<usize>) -> Result<String, Refused> {
    let text = serde_json::to_string(value).map_err(|error| Refused::invalid(format!("{error}"), "any JSON value"))?;
    if text.len() > MAX_VALUE_BYTES {
        let which = op.map_or_else(|| "the value".to_owned(), |index| format!("the value of operation {index}"));
        return Err(too_large(
            format!(
                "{which} is {} bytes as JSON; a value may be at most {MAX_VALUE_BYTES} bytes (128 KiB)",
                text.len()
            ),
            "split it over several keys, or keep it in object storage and store its key",
        ));
    }
    Ok(text)
}

fn check_key(key: String) -> Result<String, Refused> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(Refused::new(
            StatusCode::BAD_REQUEST,
            Code::InvalidKey,
            format!("the key is {} bytes; a key is 1 to {MAX_KEY_BYTES} bytes", key.len()),
            "use a shorter key; keep long names in the value",
        ));
    }
    Ok(key)
}

/// A key from the path: percent-decoded, UTF-8, within the size limit.
fn decode_key(raw: &str) -> Result<String, Refused> {
    let bad = |why: &str| {
        Refused::new(
            StatusCode::BAD_REQUEST,
            Code::InvalidKey,
            format!("the key in the path {why}"),
            "percent-encode the key's bytes that are not unreserved (RFC 3986), e.g. a space as %20",
        )
    };
    let mut bytes = Vec::with_capacity(raw.len());
    let mut rest = raw.as_bytes();
    while let Some((&byte, after)) = rest.split_first() {
        if byte == b'%' {
            let hex = after.get(..2).and_then(|hex| std::str::from_utf8(hex).ok());
            let decoded = hex.and_then(|hex| u8::from_str_radix(hex, 16).ok());
            let Some(decoded) = decoded else { return Err(bad("has a `%` not followed by two hex digits")) };
            bytes.push(decoded);
            rest = &after[2..];
        } else {
            bytes.push(byte);
            rest = after;
        }
    }
    let key = String::from_utf8(bytes).map_err(|_| bad("is not UTF-8 once decoded"))?;
    check_key(key)
}

/// `text` cut to a length fit for a message.
fn excerpt(text: &str) -> String {
    if text.len() <= EXCERPT_BYTES {
        return text.to_owned();
    }
    let mut end = EXCERPT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_percent_decoded_once_and_checked() {
        assert_eq!(decode_key("a/b%20c%2Fd").ok().as_deref(), Some("a/b c/d"));
        assert_eq!(decode_key("%C3%A9").ok().as_deref(), Some("é"));
        for bad in ["", "%", "%2", "%zz", "%FF", &"k".repeat(MAX_KEY_BYTES + 1)] {
            let refused = decode_key(bad).err().map(|refused| refused.code);
            assert_eq!(refused, Some(Code::InvalidKey), "{bad}");
        }
    }

    #[test]
    fn a_check_tells_an_absent_value_from_null() {
        let parsed: TransactionBody = serde_json::from_str(
            r#"{"ops": [{"op": "check", "key": "a"}, {"op": "check", "key": "b", "value": null}]}"#,
        )
        .expect("parse");
        let values: Vec<Option<Value>> = parsed
            .ops
            .into_iter()
            .map(|op| match op {
                OpBody::Check { value, .. } => value,
                _ => None,
            })
            .collect();
        assert_eq!(values, [None, Some(Value::Null)]);
        assert!(serde_json::from_str::<TransactionBody>(r#"{"ops": [{"op": "get", "key": "a", "x": 1}]}"#).is_err());
    }
}
