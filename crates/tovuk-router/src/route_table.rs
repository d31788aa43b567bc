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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The app name, the first DNS label of its host (`<app>.<base domain>`).
    pub app: String,
    /// The deploy whose release or instance answers; carried into logs.
    pub deploy_id: String,
    pub target: Target,
    /// The longest the app may leave a request unanswered (`[limits] request_timeout`);
    /// `None` for the router's default.
    pub request_timeout: Option<std::time::Duration>,
}

/// App name to route. Built whole by the platform and published with `Router::publish`.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    /// Keyed by the lowercased app name, because hosts are matched case-insensitively.
    /// Routes are shared so a request can keep its route after the table is swapped out.
    routes: HashMap<String, Arc<Route>>,
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
