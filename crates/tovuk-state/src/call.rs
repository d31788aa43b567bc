//! Delivering a call to an object: wait for the object's turn, hand the call to an instance of
//! the owning app through [`Instances`], and hold the turn until the outcome is known.

use crate::lines::LineFull;
use crate::{CALL_TIMEOUT, Opened, States};
use axum::http::{HeaderMap, Method};
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The header naming the object a call is for.
pub const OBJECT_HEADER: &str = "tovuk-state-object";
/// The header carrying a call's id; storage requests send it back.
pub const CALL_HEADER: &str = "tovuk-state-call";
/// The header naming the app that made the call.
pub const CALLER_HEADER: &str = "tovuk-caller-app";

/// Beyond the call timeout, how long an [`Instances`] that does not enforce it is given before
/// the call is abandoned as interrupted (so a line never stays held for good).
const OUTCOME_GRACE: Duration = Duration::from_secs(5);

/// One call, as it goes to an instance of the owning app.
#[derive(Debug, Clone)]
pub struct CallRequest {
    pub method: Method,
    /// `/<rest>?<query>` as the caller sent them after the object's name (`/` for none).
    pub path_and_query: String,
    /// The caller's headers (less hop-by-hop ones, `Host`, `Authorization`, `Content-Length`
    /// and any `Tovuk-*`), then `Tovuk-State-Object`, `Tovuk-State-Call` and `Tovuk-Caller-App`.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// The longest the call may take, from when it is sent.
    pub timeout: Duration,
}

/// What became of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// The instance answered.
    Answered { status: u16, headers: Vec<(String, String)>, body: Vec<u8> },
    /// Nothing was delivered (no running instance, or no connection to one): safe to report
    /// the object unavailable.
    NotSent(String),
    /// Delivered, at least in part, then the connection broke or the call timed out: it may
    /// have run. Never sent again.
    Interrupted(String),
}

/// How the platform reaches the owning app's instances.
#[async_trait::async_trait]
pub trait Instances: Send + Sync + 'static {
    /// Sends one call to a running instance of `app`. Must never send it twice.
    async fn call(&self, app: &str, request: CallRequest) -> CallOutcome;
}

/// Why a call was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallRefused {
    /// [`crate::MAX_WAITING`] calls already wait in the object's line.
    LineFull,
    /// The call waited [`CALL_TIMEOUT`] for its turn.
    WaitedTooLong,
    /// The platform stopped while the call waited.
    Stopping,
}

/// A call as the HTTP layer received it.
pub(crate) struct Incoming<'a> {
    pub opened: &'a Opened,
    pub object: &'a str,
    pub method: Method,
    pub path_and_query: String,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
}

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether `name` (lower case) is hop-by-hop, or named by the message's `Connection` header.
fn hop_by_hop(name: &str, headers: &HeaderMap) -> bool {
    HOP_BY_HOP.contains(&name)
        || headers
            .get_all(axum::http::header::CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case(name))
}

/// The caller's headers an instance may see. `Tovuk-*` ones are dropped so a caller cannot
/// forge what the platform sets; values that are not UTF-8 are dropped too.
fn forwarded(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            !hop_by_hop(name, headers)
                && !matches!(name, "host" | "authorization" | "content-length")
                && !name.starts_with("tovuk-")
        })
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), std::str::from_utf8(value.as_bytes()).ok()?.to_owned()))
        })
        .collect()
}

/// An answer's headers a caller may see: not hop-by-hop, and no `Content-Length` (the body
/// is sent whole, so the server sets it).
pub(crate) fn answered_headers(headers: Vec<(String, String)>) -> Vec<(String, String)> {
    let connection: Vec<String> = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, value)| value.split(',').map(|token| token.trim().to_ascii_lowercase()))
        .collect();
    headers
        .into_iter()
        .filter(|(name, _)| {
            let name = name.to_ascii_lowercase();
            !HOP_BY_HOP.contains(&name.as_str()) && name != "content-length" && !connection.contains(&name)
        })
        .collect()
}

/// A fresh call id: `call_` and 20 hex digits.
fn new_call_id() -> String {
    static FALLBACK: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 10];
    if getrandom::fill(&mut bytes).is_err() {
        // Still unique in this process, which is what ties storage to the running call.
        let n = FALLBACK.fetch_add(1, Ordering::Relaxed);
        bytes[..8].copy_from_slice(&n.to_be_bytes());
        bytes[8..].copy_from_slice(&std::process::id().to_be_bytes()[2..]);
    }
    let mut id = String::with_capacity(25);
    id.push_str("call_");
    for byte in bytes {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

impl States {
    /// Delivers `call` to its object's owning app when its turn comes.
    pub(crate) async fn call(
        &self,
        instances: &Arc<dyn Instances>,
        call: Incoming<'_>,
        stop: &CancellationToken,
    ) -> Result<CallOutcome, CallRefused> {
        let Incoming { opened, object, method, path_and_query, headers, body } = call;
        let place = self.lines.join(&opened.resource_id, object).map_err(|LineFull| CallRefused::LineFull)?;
        let turn = tokio::select! {
            turn = place.wait(CALL_TIMEOUT) => turn.map_err(|_| CallRefused::WaitedTooLong)?,
            () = stop.cancelled() => return Err(CallRefused::Stopping),
        };
        let call_id = new_call_id();
        let mut headers = forwarded(headers);
        headers.push((OBJECT_HEADER.to_owned(), object.to_owned()));
        headers.push((CALL_HEADER.to_owned(), call_id.clone()));
        headers.push((CALLER_HEADER.to_owned(), opened.caller.clone()));
        let request = CallRequest { method, path_and_query, headers, body, timeout: CALL_TIMEOUT };
        let (instances, owner) = (Arc::clone(instances), opened.owner.clone());
        // Its own task, so a caller that hangs up cannot end the turn while the call may still
        // run on the instance; it ends within the call timeout and its grace.
        let running = tokio::spawn(async move {
            turn.begin(&call_id).await;
            // The instance side in a task of its own as well: should it panic, the turn still ends.
            let sending = tokio::spawn(async move { instances.call(&owner, request).await });
            let abort = sending.abort_handle();
            let outcome = match tokio::time::timeout(CALL_TIMEOUT + OUTCOME_GRACE, sending).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_)) => CallOutcome::Interrupted("the call failed inside the platform".to_owned()),
                Err(_) => {
                    abort.abort();
                    CallOutcome::Interrupted(format!("no outcome within {} s", CALL_TIMEOUT.as_secs()))
                }
            };
            turn.end().await;
            outcome
        });
        Ok(running.await.unwrap_or_else(|_| CallOutcome::Interrupted("the call failed inside the platform".to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_end_to_end_headers_of_the_caller_are_forwarded() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", "x"),
            ("authorization", "Bearer t"),
            ("content-length", "3"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("transfer-encoding", "chunked"),
            ("tovuk-state-call", "call_forged"),
            ("tovuk-caller-app", "forged"),
            ("content-type", "application/json"),
            ("x-trace", "abc"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        let kept = forwarded(&headers);
        assert_eq!(
            kept,
            [("content-type".to_owned(), "application/json".to_owned()), ("x-trace".to_owned(), "abc".to_owned())]
        );
        let answer = answered_headers(vec![
            ("Content-Length".into(), "3".into()),
            ("Connection".into(), "X-Gone".into()),
            ("x-gone".into(), "1".into()),
            ("x-kept".into(), "1".into()),
        ]);
        assert_eq!(answer, [("x-kept".to_owned(), "1".to_owned())]);
    }

    #[test]
    fn call_ids_are_fresh() {
        let (a, b) = (new_call_id(), new_call_id());
        assert_ne!(a, b);
        assert!(a.starts_with("call_") && a.len() == 25);
    }
}
