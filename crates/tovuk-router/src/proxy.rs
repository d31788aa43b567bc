//! The reverse proxy: one exchange with an app instance, bodies streamed both ways.

use crate::body::{DownstreamBody, RouterBody, UpstreamBody, empty};
use crate::error::ProxyError;
use crate::headers;
use crate::in_flight::InFlight;
use crate::pool::Dial;
use crate::router::{RequestContext, Timeouts};
use crate::server::Worker;
use crate::tunnel;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::http::uri;
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use std::net::SocketAddr;
use std::sync::Arc;
use tovuk_daemon::Shutdown;

/// The in-flight counts per app instance, shared by every serving thread; each thread has its
/// own pool of keep-alive connections to the instances (`Worker::pool`).
pub(crate) struct Proxy {
    in_flight: Arc<InFlight>,
    timeouts: Timeouts,
}

impl Proxy {
    pub(crate) fn new(timeouts: Timeouts) -> Self {
        Self { in_flight: Arc::default(), timeouts }
    }

    pub(crate) fn in_flight(&self, upstream: SocketAddr) -> usize {
        self.in_flight.count(upstream)
    }

    /// Sends `request` to `upstream` and returns its answer with the body still streaming.
    /// An upgrade the app accepts (101) becomes a tunnel spawned under `shutdown`, on this thread.
    pub(crate) async fn forward(
        &self,
        ctx: &RequestContext,
        dial: Dial<'_>,
        mut request: Request<Incoming>,
        timeout: std::time::Duration,
        worker: &Worker,
        shutdown: &Shutdown,
    ) -> Result<Response<RouterBody>, ProxyError> {
        let wants_upgrade = headers::is_upgrade(request.headers());
        // Taken before the request is consumed: it resolves to the client's connection once
        // hyper has sent our 101.
        let downstream_upgrade = wants_upgrade.then(|| hyper::upgrade::on(&mut request));
        let (parts, body) = request.into_parts();
        let activity = crate::body::Activity::new();
        let upstream_request = upstream_request(parts, body, activity.clone(), ctx, wants_upgrade)?;

        let upstream = dial.addr;
        let in_flight = self.in_flight.enter(upstream);
        let exchange = worker.pool.send(dial, upstream_request);
        tokio::pin!(exchange);
        // The timeout (the route's `[limits] request_timeout`, or the router's default) is for
        // an app that stops answering: it runs while nothing moves, so an upload that keeps
        // flowing is never cut off however long it takes.
        let (mut response, connection) = loop {
            let wait = timeout.saturating_sub(activity.idle());
            tokio::select! {
                result = &mut exchange => match result {
                    Err(error) => return Err(ProxyError::from_exchange(upstream, self.timeouts.upstream_connect, error)),
                    Ok(answered) => break answered,
                },
                () = tokio::time::sleep(wait) => {
                    if activity.idle() >= timeout {
                        return Err(ProxyError::UpstreamTimeout { upstream, timeout });
                    }
                }
            }
        };

        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some(downstream_upgrade) = downstream_upgrade else {
                return Err(ProxyError::UnexpectedUpgrade { upstream });
            };
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            let (mut parts, _empty_body) = response.into_parts();
            headers::strip_hop_by_hop(&mut parts.headers, true);
            let tunnel = tunnel::Tunnel {
                downstream: downstream_upgrade,
                upstream: upstream_upgrade,
                in_flight,
                request_id: ctx.request_id.clone(),
                app: ctx.app.clone(),
                meter: ctx.meter.clone(),
            };
            // An upgraded connection carries no more requests, so it never goes back to the pool;
            // its socket reaches the tunnel through `upstream_upgrade`.
            drop(connection);
            shutdown.spawn("router tunnel", worker.tasks.track_future(tunnel.run(shutdown.clone())));
            return Ok(Response::from_parts(parts, empty()));
        }

        let (mut parts, body) = response.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers, false);
        let body =
            UpstreamBody::new(body, connection, in_flight, ctx.request_id.clone(), ctx.app.clone(), ctx.meter.clone());
        Ok(Response::from_parts(parts, body.boxed_unsync()))
    }
}

/// The client's request rewritten for the app: origin-form URI, HTTP/1.1,
/// hop-by-hop headers dropped, the original `Host` kept, forwarding headers set.
fn upstream_request(
    parts: Parts,
    body: Incoming,
    activity: Arc<crate::body::Activity>,
    ctx: &RequestContext,
    wants_upgrade: bool,
) -> Result<Request<DownstreamBody>, ProxyError> {
    // CONNECT names its target in authority-form, which is what the app must see too.
    let uri = if parts.method == Method::CONNECT { parts.uri.clone() } else { origin_form(&parts.uri)? };
    let original_host = match parts.uri.authority() {
        Some(authority) => HeaderValue::from_str(authority.as_str()).ok(),
        None => parts.headers.get(header::HOST).cloned(),
    };
    let mut headers = parts.headers;
    headers::strip_hop_by_hop(&mut headers, wants_upgrade);
    // hyper already answered the client's `Expect: 100-continue` when we started reading the
    // body; the app must not wait for a continue that the pool will never relay.
    headers.remove(header::EXPECT);
    headers::set_forwarded(&mut headers, ctx.client_addr.ip(), original_host.clone(), &ctx.request_id);
    // Only the router says who calls: a client's own `Tovuk-Caller-App` never reaches the app,
    // and a binding's token is replaced by the name of the app it belongs to.
    headers.remove(headers::TOVUK_CALLER_APP);
    if let Some(caller) = ctx.caller.as_deref().and_then(|caller| HeaderValue::from_str(caller).ok()) {
        headers.remove(header::AUTHORIZATION);
        headers.insert(headers::TOVUK_CALLER_APP, caller);
    }
    // Apps see the host the user typed, so the links they build point back through the router.
    if let Some(original_host) = original_host {
        headers.insert(header::HOST, original_host);
    }
    let mut request = Request::new(DownstreamBody(body, activity));
    *request.method_mut() = parts.method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Ok(request)
}

/// The request target as the app reads it: `/path?query`. A client's absolute-form target
/// (`http://host/path`) is cut to its path; the usual origin-form one is kept as it is.
fn origin_form(client_uri: &Uri) -> Result<Uri, ProxyError> {
    if client_uri.scheme().is_none() && client_uri.authority().is_none() && client_uri.path_and_query().is_some() {
        return Ok(client_uri.clone());
    }
    let mut parts = uri::Parts::default();
    parts.path_and_query =
        Some(client_uri.path_and_query().cloned().unwrap_or_else(|| uri::PathAndQuery::from_static("/")));
    Uri::from_parts(parts).map_err(|source| ProxyError::UpstreamRequest { source: source.into() })
}
