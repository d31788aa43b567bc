//! The `Router` handle and the fixed phases of one request: match the route, answer, log.

use crate::body::RouterBody;
use crate::error::{ErrorSource, ProxyError, display_chain};
use crate::headers::X_REQUEST_ID;
use crate::host::{self, HostError};
use crate::proxy::Proxy;
use crate::route_table::{RouteTable, Target};
use crate::server::Worker;
use crate::{reply, server, static_files};
use arc_swap::ArcSwap;
use futures_util::FutureExt;
use hyper::body::{Body, Incoming};
use hyper::header::HeaderValue;
use hyper::{Request, Response};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tovuk_daemon::Shutdown;
use tovuk_daemon::request_id;
use tovuk_meter::Refusal;
use tovuk_meter::{AppMeter, Meters, ResourceMeter};

/// How long a request to a capped app waits for the control plane to store a new grant.
const GRANT_PATIENCE: Duration = Duration::from_secs(3);

/// Time limits that keep slow peers from holding the router's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A client must finish sending a request's headers within this long (default 10 s), so a
    /// client dribbling bytes cannot hold a connection open.
    pub header_read: Duration,
    /// Connecting to an app instance on loopback (default 5 s); longer means it is wedged. Gives a 504.
    pub upstream_connect: Duration,
    /// An app must start its answer (status and headers) within this long (default 60 s), or the
    /// client gets a 504. Bodies may stream for longer.
    pub upstream_response: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(10),
            upstream_connect: Duration::from_secs(5),
            upstream_response: Duration::from_secs(60),
        }
    }
}

/// The router: a route table swapped whole while traffic flows, and the proxy behind it.
/// Cheap to clone; clones share the table and the in-flight counts.
#[derive(Clone)]
pub struct Router {
    shared: Arc<Shared>,
}

struct Shared {
    /// Lowercase, no leading or trailing dot.
    base_domain: String,
    /// Readers take the current table without locking; `publish` replaces it in one store.
    routes: ArcSwap<RouteTable>,
    /// The version of the control plane's table `routes` was built from (0: none yet).
    routed_version: std::sync::atomic::AtomicU64,
    /// False until a first table is published: before it, no host is known to be unknown.
    has_table: std::sync::atomic::AtomicBool,
    proxy: Proxy,
    timeouts: Timeouts,
    /// Counts each app's requests and egress and enforces its caps (off: counts nothing).
    meters: Arc<Meters>,
    /// Where the access log line of each request to an app goes (none: not written).
    access_log: std::sync::OnceLock<tokio::sync::mpsc::Sender<tovuk_api_types::AppLogLine>>,
    /// Each app's edge auth, kept across tables.
    auth: crate::edge::AuthCache,
}

/// What the log lines of one proxied request carry.
pub(crate) struct RequestContext {
    pub(crate) request_id: String,
    pub(crate) client_addr: SocketAddr,
    pub(crate) app: String,
    pub(crate) deploy_id: String,
    /// Where the response's bytes are counted.
    pub(crate) meter: Option<Arc<AppMeter>>,
    /// The app calling through a service binding: sent as `Tovuk-Caller-App`, in place of
    /// the token. `None` on the public listener, where the header is always removed.
    pub(crate) caller: Option<String>,
}

/// Which listener a request came in on.
#[derive(Debug, Clone)]
pub(crate) enum Entrance {
    /// The public one: `<app>.<base domain>`.
    Public,
    /// The internal one: `<service>.internal`, allowed by a service binding's token. `caller`
    /// is the app whose network the connection came from, when the platform's forwarder in
    /// that network said so: a token presented from another app's network is refused.
    Internal { caller: Option<Arc<str>> },
}

/// The host suffix of a service on the internal listener.
const INTERNAL_SUFFIX: &str = ".internal";

impl Router {
    /// A router for apps at `<app>.<base_domain>`, with an empty table (every host gets a 404).
    pub fn new(base_domain: &str) -> Router {
        Router::with_timeouts(base_domain, Timeouts::default())
    }

    pub fn with_timeouts(base_domain: &str, timeouts: Timeouts) -> Router {
        Router::with_meters(base_domain, timeouts, Meters::new(false))
    }

    /// A router that counts every app's usage into `meters` and refuses what its caps stop.
    pub fn with_meters(base_domain: &str, timeouts: Timeouts, meters: Arc<Meters>) -> Router {
        let shared = Shared {
            base_domain: host::normalize_base_domain(base_domain),
            routes: ArcSwap::from_pointee(RouteTable::new()),
            routed_version: std::sync::atomic::AtomicU64::new(0),
            has_table: std::sync::atomic::AtomicBool::new(false),
            proxy: Proxy::new(timeouts),
            timeouts,
            meters,
            access_log: std::sync::OnceLock::new(),
            auth: crate::edge::AuthCache::default(),
        };
        Router { shared: Arc::new(shared) }
    }

    pub fn base_domain(&self) -> &str {
        &self.shared.base_domain
    }

    pub fn timeouts(&self) -> Timeouts {
        self.shared.timeouts
    }

    /// Swaps the whole table atomically; requests already routed finish against their old target.
    pub fn publish(&self, route_table: RouteTable) {
        self.shared.routes.store(Arc::new(route_table));
        self.shared.has_table.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Swaps the table, built from version `version` of the control plane's, atomically.
    pub(crate) fn publish_version(&self, route_table: RouteTable, version: u64) {
        self.shared.routes.store(Arc::new(route_table));
        self.shared.routed_version.store(version, std::sync::atomic::Ordering::Release);
        self.shared.has_table.store(true, std::sync::atomic::Ordering::Release);
    }

    /// The version of the control plane's table that requests are routed by (0: none yet),
    /// so a runner knows when a replaced instance gets no new requests.
    pub fn routed_version(&self) -> u64 {
        self.shared.routed_version.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Sends each request's access log line (method, path, status, bytes, time to the
    /// answer's head, client address, request id) to `lines`, for the app's log.
    pub fn set_access_log(&self, lines: tokio::sync::mpsc::Sender<tovuk_api_types::AppLogLine>) {
        let _ = self.shared.access_log.set(lines);
    }

    /// Where the sessions of apps' edge auth are kept (login, logout); without one, an app
    /// whose routes declare auth is routed down.
    pub fn set_session_store(&self, store: Arc<dyn tovuk_edge_auth::SessionStore>) {
        self.shared.auth.set_store(store);
    }

    pub(crate) fn auth_cache(&self) -> &crate::edge::AuthCache {
        &self.shared.auth
    }

    /// The table requests are routed by right now.
    pub fn routes(&self) -> Arc<RouteTable> {
        self.shared.routes.load_full()
    }

    /// Requests (and upgraded tunnels) currently in flight to `upstream`, so the runner can
    /// drain an old instance before stopping it.
    pub fn in_flight(&self, upstream: SocketAddr) -> usize {
        self.shared.proxy.in_flight(upstream)
    }

    /// Serves service-binding calls on `listener` (the internal listener, on the host's
    /// loopback) until `shutdown`. `forwarder_secret` is what the platform's forwarders in
    /// apps' networks prove themselves with.
    pub async fn serve_internal(
        &self,
        listener: TcpListener,
        forwarder_secret: Arc<str>,
        shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        server::serve_internal(self.clone(), listener, forwarder_secret, shutdown).await
    }

    /// Serves until `shutdown` fires, then stops accepting and lets in-flight requests finish
    /// (up to `tovuk_daemon::SHUTDOWN_DEADLINE`). Upgraded tunnels are closed at shutdown.
    pub async fn serve(&self, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
        server::serve(self.clone(), listener, shutdown).await
    }

    /// One request, start to finish. A panic anywhere inside becomes a 500 carrying the request id.
    pub(crate) async fn handle(
        &self,
        request: Request<Incoming>,
        client_addr: SocketAddr,
        entrance: &Entrance,
        worker: &Worker,
        shutdown: &Shutdown,
    ) -> Response<RouterBody> {
        let started = Instant::now();
        let request_id =
            request_id::from_client_or_new(request.headers().get(X_REQUEST_ID).and_then(|value| value.to_str().ok()));
        let method = request.method().clone();
        // Copied only for the log lines below, so only when one is written.
        let access_log = self.shared.access_log.get();
        let path =
            (access_log.is_some() || tracing::enabled!(tracing::Level::DEBUG)).then(|| request.uri().path().to_owned());
        let dispatched = AssertUnwindSafe(self.dispatch(request, &request_id, client_addr, entrance, worker, shutdown))
            .catch_unwind()
            .await;
        let (mut response, app) = match dispatched {
            Ok(answered) => answered,
            Err(panic) => {
                let panic_message = panic
                    .downcast_ref::<&str>()
                    .map(|message| (*message).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(
                    request_id,
                    panic_message,
                    source = ErrorSource::Internal.as_str(),
                    "request handler panicked"
                );
                (reply::internal_error(&request_id), None)
            }
        };
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(X_REQUEST_ID, value);
        }
        if let (Some(access_log), Some((app, deploy_id))) = (access_log, &app) {
            let bytes = response.body().size_hint().exact().map_or_else(|| "-".to_owned(), |bytes| bytes.to_string());
            let line = format!(
                "{method} {} {} {bytes} {:.1}ms {} {request_id}",
                path.as_deref().unwrap_or(""),
                response.status().as_u16(),
                started.elapsed().as_secs_f64() * 1000.0,
                client_addr.ip(),
            );
            // A full channel drops the line rather than hold up the answer.
            let _ = access_log.try_send(tovuk_api_types::AppLogLine {
                seq: 0,
                at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                app: app.clone(),
                deploy_id: deploy_id.clone(),
                instance: "router".to_owned(),
                stream: tovuk_api_types::LogStream::Access,
                line,
            });
        }
        // Phase 4: log.
        tracing::debug!(
            request_id,
            app = app.as_ref().map_or("", |(app, _)| app.as_str()),
            %method,
            path = path.as_deref().unwrap_or(""),
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request handled"
        );
        response
    }

    /// Phases 1 to 3: match the host to a route, pick the target, answer from it.
    async fn dispatch(
        &self,
        mut request: Request<Incoming>,
        request_id: &str,
        client_addr: SocketAddr,
        entrance: &Entrance,
        worker: &Worker,
        shutdown: &Shutdown,
    ) -> (Response<RouterBody>, Option<(String, String)>) {
        let host = match host::request_host(request.uri(), request.headers()) {
            Ok(host) => host,
            Err(HostError::Missing) => {
                tracing::info!(request_id, source = ErrorSource::Downstream.as_str(), "request has no Host header");
                return (reply::missing_host(&self.shared.base_domain), None);
            }
            Err(HostError::Invalid) => {
                tracing::info!(
                    request_id,
                    source = ErrorSource::Downstream.as_str(),
                    "request has an invalid Host header"
                );
                return (reply::invalid_host(), None);
            }
        };
        // The route is copied out, so a table published from here on does not affect this request.
        let (route, binding) = match entrance {
            Entrance::Public => (
                host::app_name(&host, &self.shared.base_domain)
                    .and_then(|app| self.shared.routes.load().get_shared(app)),
                None,
            ),
            Entrance::Internal { caller } => match self.internal_route(&host, request.headers(), caller.as_deref()) {
                Ok((route, binding)) => (Some(route), Some(binding)),
                Err(refused) => {
                    tracing::info!(
                        request_id,
                        host,
                        source = ErrorSource::Downstream.as_str(),
                        "internal call refused"
                    );
                    return (*refused, None);
                }
            },
        };
        if let Some(binding) = &binding
            && self.shared.meters.enabled()
        {
            let calls = self.shared.meters.app(&binding.app);
            if let Err(stop) = calls.admit_resource(&binding.resource_id, ResourceMeter::ServiceBindingCalls, 1) {
                return (reply::cap_reached(&binding.app, &stop), None);
            }
        }
        let Some(route) = route else {
            if !self.shared.has_table.load(std::sync::atomic::Ordering::Acquire) {
                return (reply::starting(), None);
            }
            tracing::debug!(request_id, host, "no app is served at this host");
            return (reply::unknown_host(&host), None);
        };
        // Only the router says who is calling: not a client, and not an app calling another
        // through its binding either.
        crate::edge::strip_identity(&mut request);
        if matches!(entrance, Entrance::Public)
            && let Some(auth) = &route.auth
        {
            let host = request
                .headers()
                .get(hyper::header::HOST)
                .and_then(|host| host.to_str().ok())
                .unwrap_or(&host)
                .to_owned();
            if let Some(answer) = crate::edge::gate(auth, &mut request, &host).await {
                return (answer, Some((route.app.clone(), route.deploy_id.clone())));
            }
        }
        let meter = match &route.target {
            Target::Down { .. } => None,
            _ if self.shared.meters.enabled() => Some(self.shared.meters.app(&route.app)),
            _ => None,
        };
        if let Some(meter) = &meter {
            match meter.admit_waiting(&self.shared.meters, GRANT_PATIENCE).await {
                Ok(()) => {}
                Err(Refusal::Cap(stop)) => {
                    tracing::debug!(request_id, app = %route.app, meter = %stop.meter, "refused: cap reached");
                    return (reply::cap_reached(&route.app, &stop), Some((route.app.clone(), route.deploy_id.clone())));
                }
                Err(Refusal::Ungranted) => {
                    tracing::warn!(request_id, app = %route.app, "refused: no cap grant could be stored");
                    return (reply::usage_unrecorded(&route.app), Some((route.app.clone(), route.deploy_id.clone())));
                }
            }
        }
        let response = match &route.target {
            Target::Proxy { upstreams } => {
                let Some(upstream) = pick(upstreams) else {
                    return (
                        reply::app_down(&route.app, "the app is starting"),
                        Some((route.app.clone(), route.deploy_id.clone())),
                    );
                };
                let dial = crate::pool::Dial { addr: upstream.addr, netns: upstream.netns.as_deref() };
                let ctx = RequestContext {
                    request_id: request_id.to_owned(),
                    client_addr,
                    app: route.app.clone(),
                    deploy_id: route.deploy_id.clone(),
                    meter,
                    caller: binding.as_ref().map(|binding| binding.app.clone()),
                };
                let timeout = route.request_timeout.unwrap_or(self.shared.timeouts.upstream_response);
                match self.shared.proxy.forward(&ctx, dial, request, timeout, worker, shutdown).await {
                    Ok(response) => response,
                    Err(error) => {
                        log_proxy_error(&ctx, &error);
                        reply::proxy_error(&route.app, &error, request_id)
                    }
                }
            }
            Target::Static { root } => {
                let response = static_files::serve(
                    root,
                    &route.app,
                    request_id,
                    request.method(),
                    request.uri(),
                    request.headers(),
                )
                .await;
                if let Some(meter) = &meter {
                    meter.add_egress(response.body().size_hint().exact().unwrap_or(0));
                }
                response
            }
            Target::Down { reason } => reply::app_down(&route.app, reason),
        };
        (response, Some((route.app.clone(), route.deploy_id.clone())))
    }
}

/// A call the internal listener lets through: the service's route and the binding that allows it.
type InternalCall = (Arc<crate::route_table::Route>, Arc<crate::route_table::Binding>);

impl Router {
    /// The route of the service a call on the internal listener is for, and the binding
    /// that allows it: its token names the binding, the binding names the service, and the
    /// call must come from the binding's own app where the platform can tell.
    fn internal_route(
        &self,
        host: &str,
        headers: &hyper::HeaderMap,
        caller: Option<&str>,
    ) -> Result<InternalCall, Box<Response<RouterBody>>> {
        use hyper::StatusCode;
        let Some(service) = host.strip_suffix(INTERNAL_SUFFIX).filter(|service| !service.is_empty()) else {
            let message = format!("`{host}` is not a service: call `http://<service>.internal` with a binding's URL");
            return Err(Box::new(reply::binding_refused(StatusCode::NOT_FOUND, &message)));
        };
        let token = headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let Some(token) = token else {
            let message = format!(
                "a call to `{service}.internal` needs its binding's token: send `Authorization: Bearer $<BINDING>_TOKEN` \
                 (declare the binding in tovuk.toml: [[bindings]] binding = \"API\", service = \"{service}\")"
            );
            return Err(Box::new(reply::binding_refused(StatusCode::UNAUTHORIZED, &message)));
        };
        let routes = self.shared.routes.load();
        let Some(binding) = routes.binding_of(token) else {
            let message = "the token is not the token of any service binding of a running app: send the calling \
                           app's $<BINDING>_TOKEN, as it is in its environment";
            return Err(Box::new(reply::binding_refused(StatusCode::UNAUTHORIZED, message)));
        };
        if let Some(caller) = caller.filter(|caller| *caller != binding.app) {
            let message = format!(
                "the token belongs to a binding of `{}`, and this call came from `{caller}`: an app calls with its own \
                 bindings (declare one in its tovuk.toml)",
                binding.app
            );
            return Err(Box::new(reply::binding_refused(StatusCode::FORBIDDEN, &message)));
        }
        if !binding.service.eq_ignore_ascii_case(service) {
            let message = format!(
                "binding `{}` of `{}` calls `{}`, not `{service}`: declare a binding to `{service}` in its tovuk.toml",
                binding.binding, binding.app, binding.service
            );
            return Err(Box::new(reply::binding_refused(StatusCode::FORBIDDEN, &message)));
        }
        let Some(route) = routes.get_shared(service) else {
            let message = format!("`{service}` has nothing running to call; deploy it: tovuk deploy --app {service}");
            return Err(Box::new(reply::binding_refused(StatusCode::SERVICE_UNAVAILABLE, &message)));
        };
        Ok((route, binding))
    }
}

thread_local! {
    /// Where each serving thread's round of a route's instances goes next.
    static NEXT_UPSTREAM: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The instance for the next request: round robin, per serving thread.
fn pick(upstreams: &[crate::route_table::Upstream]) -> Option<&crate::route_table::Upstream> {
    match upstreams {
        [] => None,
        [only] => Some(only),
        several => {
            let turn = NEXT_UPSTREAM.with(|next| {
                let turn = next.get();
                next.set(turn.wrapping_add(1));
                turn
            });
            several.get(turn % several.len())
        }
    }
}

/// Upstream faults are recovered (the client got a 5xx), so `warn`; client faults are `info`.
fn log_proxy_error(ctx: &RequestContext, error: &ProxyError) {
    let error_source = error.error_source();
    let error_chain = display_chain(error);
    let RequestContext { request_id, app, deploy_id, .. } = ctx;
    let source = error_source.as_str();
    match error_source {
        ErrorSource::Upstream => {
            tracing::warn!(error = error_chain, request_id, app, deploy_id, source, "proxy failed")
        }
        ErrorSource::Downstream => {
            tracing::info!(error = error_chain, request_id, app, deploy_id, source, "proxy failed")
        }
        ErrorSource::Internal => {
            tracing::error!(error = error_chain, request_id, app, deploy_id, source, "proxy failed")
        }
    }
}
