//! Wiring the runner to the router in this process: the runner sets one app's route at a
//! time, the router wants whole tables, so the current set is kept here and republished.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use tovuk_router::{Route, RouteTable, Router, Target};
use tovuk_runner::{RouteSink, RouteTarget};

pub(crate) struct RouterSink {
    router: Router,
    routes: Mutex<HashMap<String, Route>>,
}

impl RouterSink {
    pub(crate) fn new(router: Router) -> Self {
        RouterSink { router, routes: Mutex::default() }
    }
}

impl RouteSink for RouterSink {
    fn set_route(&self, app: &str, deploy_id: &str, target: RouteTarget) {
        let target = match target {
            RouteTarget::Proxy(upstream) => Target::Proxy { upstream },
            RouteTarget::Static(root) => Target::Static { root },
            RouteTarget::Down(reason) => Target::Down { reason },
        };
        let mut routes = self.routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        routes.insert(app.to_owned(), Route { app: app.to_owned(), deploy_id: deploy_id.to_owned(), target });
        // Published while the lock is held, so two changes cannot publish out of order.
        self.router.publish(routes.values().cloned().collect::<RouteTable>());
    }

    fn in_flight(&self, upstream: SocketAddr) -> usize {
        self.router.in_flight(upstream)
    }
}
