//! The route table: which deploy of which app answers, and how.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// What answers an app's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// App instances, balanced: each listening on loopback, its own or the host's.
    Proxy { upstreams: Vec<Upstream> },
    /// A static app: files served by the router itself from a release directory.
    Static { root: PathBuf },
    /// The app exists but has nothing healthy to serve (crash-looping, or never deployed).
    Down { reason: String },
}

/// One instance a route sends requests to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub addr: SocketAddr,
    /// The network namespace it listens in; `None`: the host's.
    pub netns: Option<PathBuf>,
}

impl Upstream {
    /// An instance on the host's loopback.
    pub fn host(addr: SocketAddr) -> Upstream {
        Upstream { addr, netns: None }
    }
}

/// One app's current route.
#[derive(Debug, Clone)]
pub struct Route {
    /// The app name, the first DNS label of its host (`<app>.<base domain>`).
    pub app: String,
    /// The deploy whose release or instance answers; carried into logs.
    pub deploy_id: String,
    pub target: Target,
    /// The longest the app may leave a request unanswered (`[limits] request_timeout`);
    /// `None` for the router's default.
    pub request_timeout: Option<std::time::Duration>,
    /// Edge auth, when the release's routes declare it.
    pub(crate) auth: Option<std::sync::Arc<crate::edge::AppAuth>>,
}

impl Route {
    /// A route with no edge auth (the platform's table sets it from the release's routes).
    pub fn new(app: String, deploy_id: String, target: Target, request_timeout: Option<std::time::Duration>) -> Route {
        Route { app, deploy_id, target, request_timeout, auth: None }
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Route) -> bool {
        let auth = |route: &Route| route.auth.as_ref().map(|auth| Arc::as_ptr(auth) as usize);
        self.app == other.app
            && self.deploy_id == other.deploy_id
            && self.target == other.target
            && self.request_timeout == other.request_timeout
            && auth(self) == auth(other)
    }
}

impl Eq for Route {}

/// A call one app may make to another through the internal listener (`[[bindings]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The calling app.
    pub app: String,
    pub binding: String,
    /// The app it calls.
    pub service: String,
    /// The binding's resource, which its calls are counted against.
    pub resource_id: String,
}

/// App name to route. Built whole by the platform and published with `Router::publish`.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    /// Keyed by the lowercased app name, because hosts are matched case-insensitively.
    /// Routes are shared so a request can keep its route after the table is swapped out.
    routes: HashMap<String, Arc<Route>>,
    /// Service bindings by the SHA-256 of their token (hex): a call names its binding by
    /// presenting the token, and the router never holds a token itself.
    bindings: HashMap<String, Arc<Binding>>,
}

impl RouteTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `route`, replacing any earlier route of the same app.
    pub fn insert(&mut self, route: Route) {
        self.routes.insert(route.app.to_ascii_lowercase(), Arc::new(route));
    }

    /// The route of `app`, matched case-insensitively.
    pub fn get(&self, app: &str) -> Option<&Route> {
        self.routes.get(&app.to_ascii_lowercase()).map(Arc::as_ref)
    }

    /// The route of `app`, for a request that outlives this table.
    pub(crate) fn get_shared(&self, app: &str) -> Option<Arc<Route>> {
        self.routes.get(&app.to_ascii_lowercase()).cloned()
    }

    /// Adds a service binding whose token hashes to `token_sha256`.
    pub fn insert_binding(&mut self, token_sha256: String, binding: Binding) {
        self.bindings.insert(token_sha256, Arc::new(binding));
    }

    /// The binding whose token is `token`.
    pub(crate) fn binding_of(&self, token: &str) -> Option<Arc<Binding>> {
        use sha2::Digest;
        if self.bindings.is_empty() {
            return None;
        }
        self.bindings.get(&hex::encode(sha2::Sha256::digest(token.as_bytes()))).cloned()
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.values().map(Arc::as_ref)
    }
}

impl FromIterator<Route> for RouteTable {
    fn from_iter<I: IntoIterator<Item = Route>>(routes: I) -> Self {
        let mut route_table = RouteTable::new();
        for route in routes {
            route_table.insert(route);
        }
        route_table
    }
}
