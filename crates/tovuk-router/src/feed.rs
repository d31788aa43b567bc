//! Following the control plane's route table: one interface, fed in-process (a watch
//! channel the control plane publishes to) or over the API by a router on another machine.

use crate::route_table::{Binding, Route, RouteTable, Target, Upstream};
use crate::router::Router;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tovuk_api_types::{RouteTable as DesiredRoutes, RouteTarget};
use tovuk_daemon::Shutdown;

/// Where a router learns the desired routes.
pub trait RouteFeed: Send + 'static {
    /// The table once its version differs from `version` (the one the router has; 0 for
    /// none). `Ok(None)`: nothing new yet, ask again. An error is retried after a pause.
    fn changed(&mut self, version: u64) -> impl Future<Output = anyhow::Result<Option<Arc<DesiredRoutes>>>> + Send;
}

/// The in-process feed: the control plane's own channel.
impl RouteFeed for watch::Receiver<Arc<DesiredRoutes>> {
    async fn changed(&mut self, version: u64) -> anyhow::Result<Option<Arc<DesiredRoutes>>> {
        match self.wait_for(|table| table.version != version).await {
            Ok(table) => Ok(Some(table.clone())),
            Err(_) => anyhow::bail!("the control plane stopped publishing routes"),
        }
    }
}

/// Applies every table `feed` yields until `shutdown` fires. A router that starts empty
/// serves every running app as soon as the first table arrives.
pub async fn follow_routes(router: Router, mut feed: impl RouteFeed, shutdown: Shutdown) -> anyhow::Result<()> {
    let mut failures: u32 = 0;
    loop {
        let next = tokio::select! {
            () = shutdown.wait() => return Ok(()),
            next = feed.changed(router.routed_version()) => next,
        };
        match next {
            Ok(Some(table)) => {
                failures = 0;
                router.apply(&table);
                tracing::debug!(version = table.version, routes = table.routes.len(), "route table applied");
            }
            Ok(None) => failures = 0,
            Err(error) => {
                failures += 1;
                tracing::warn!(%error, failures, "cannot follow the route table; retrying");
                let pause = Duration::from_millis(100 * u64::from(failures.min(20)));
                tokio::select! {
                    () = shutdown.wait() => return Ok(()),
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

impl Router {
    /// Replaces the table with `desired` and records its version.
    pub fn apply(&self, desired: &DesiredRoutes) {
        let auth_cache = self.auth_cache();
        let mut table: RouteTable = desired
            .routes
            .iter()
            .map(|entry| {
                let mut target = match &entry.target {
                    RouteTarget::Proxy { upstreams } => Target::Proxy {
                        upstreams: upstreams
                            .iter()
                            .map(|backend| Upstream { addr: backend.addr, netns: backend.netns.clone() })
                            .collect(),
                    },
                    RouteTarget::Static { root } => Target::Static { root: root.clone() },
                    RouteTarget::Down { reason } => Target::Down { reason: reason.clone() },
                };
                // A release whose auth cannot be set up is down: never served without it.
                let auth = match &entry.auth {
                    None => None,
                    Some(desired) => match auth_cache.get(&entry.app, desired) {
                        Ok(auth) => Some(auth),
                        Err(why) => {
                            tracing::error!(app = %entry.app, %why, "the app's edge auth cannot be set up");
                            target = Target::Down { reason: format!("its edge auth cannot be set up: {why}") };
                            None
                        }
                    },
                };
                let timeout = entry.request_timeout_secs.map(std::time::Duration::from_secs);
                let mut route = Route::new(entry.app.clone(), entry.deploy_id.clone(), target, timeout);
                route.auth = auth;
                route
            })
            .collect();
        let with_auth: Vec<&str> =
            desired.routes.iter().filter(|entry| entry.auth.is_some()).map(|entry| entry.app.as_str()).collect();
        auth_cache.keep(&with_auth);
        for binding in &desired.bindings {
            table.insert_binding(
                binding.token_sha256.clone(),
                Binding {
                    app: binding.app.clone(),
                    binding: binding.binding.clone(),
                    service: binding.service.clone(),
                    resource_id: binding.resource_id.clone(),
                },
            );
        }
        self.publish_version(table, desired.version);
    }
}
