//! The router's own answers: short `text/plain` bodies that say what happened and what to run.

use crate::body::{RouterBody, full};
use crate::error::ProxyError;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

pub(crate) fn text(status: StatusCode, message: String) -> Response<RouterBody> {
    let mut response = Response::new(full(message));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    // These answers describe the platform's state at this instant; a cache must not keep them.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(crate) fn unknown_host(host: &str) -> Response<RouterBody> {
    text(StatusCode::NOT_FOUND, format!("tovuk: no app is served at `{host}`; see `tovuk app list`\n"))
}

pub(crate) fn missing_host(base_domain: &str) -> Response<RouterBody> {
    text(
        StatusCode::BAD_REQUEST,
        format!("tovuk: the request has no `Host` header; apps are reached at `http://<app>.{base_domain}`\n"),
    )
}

pub(crate) fn invalid_host() -> Response<RouterBody> {
    text(StatusCode::BAD_REQUEST, "tovuk: the request's `Host` header is not a valid host name\n".to_owned())
}

/// How soon a client may try again after a 503 for an app that is starting or restarting.
const RETRY_AFTER_SECS: &str = "1";

pub(crate) fn app_down(app: &str, reason: &str) -> Response<RouterBody> {
    retry_soon(text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("tovuk: app `{app}` has nothing healthy to serve ({reason}); see `tovuk logs {app}`\n"),
    ))
}

/// The router has no route table yet (it started a moment ago): no host can be known or unknown.
pub(crate) fn starting() -> Response<RouterBody> {
    retry_soon(text(
        StatusCode::SERVICE_UNAVAILABLE,
        "tovuk: the router is starting; try again in a moment\n".to_owned(),
    ))
}

fn retry_soon(mut response: Response<RouterBody>) -> Response<RouterBody> {
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
    response
}

pub(crate) fn proxy_error(app: &str, error: &ProxyError, request_id: &str) -> Response<RouterBody> {
    text(
        error.status(),
        format!("tovuk: app `{app}` {}; see `tovuk logs {app}` (request id `{request_id}`)\n", error.public_summary()),
    )
}

pub(crate) fn internal_error(request_id: &str) -> Response<RouterBody> {
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("tovuk: the router failed to handle this request (request id `{request_id}`)\n"),
    )
}

/// The app is capped and its usage cannot be recorded (the platform's store takes no writes):
/// nothing is served that a crash could leave uncounted against the cap.
pub(crate) fn usage_unrecorded(app: &str) -> Response<RouterBody> {
    retry_soon(text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "tovuk: app `{app}` has a usage cap and the platform cannot record usage right now; \
             try again in a moment (the operator sees why in `tovuk status`)\n"
        ),
    ))
}

/// A cap stopped the app's usage for this period: 429, naming the cap and the command that raises it.
pub(crate) fn cap_reached(app: &str, stop: &tovuk_meter::Stop) -> Response<RouterBody> {
    let meter = &stop.meter;
    let limit = stop.limit;
    text(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "tovuk: app `{app}` reached its cap on `{meter}` for this billing period (limit {limit}); \
             nothing more is served until the period ends or the cap is raised: tovuk caps set {app} {meter} <new limit>\n"
        ),
    )
}

/// A call on the internal listener that no binding allows: what is missing and what to do.
pub(crate) fn binding_refused(status: StatusCode, message: &str) -> Response<RouterBody> {
    text(status, format!("tovuk: {message}\n"))
}
