//! The router's two ends in this process: it follows the control plane's route table (in
//! the same process, or over the API for a router started apart), and the runner sees its
//! traffic to drain replaced instances.

use std::net::SocketAddr;
use std::sync::Arc;
use tovuk_api_types::RouteTable;
use tovuk_client::Client;
use tovuk_router::{RouteFeed, Router};
use tovuk_runner::Traffic;

/// The runner's view of the router in this process.
pub(crate) struct RouterTraffic(pub(crate) Router);

impl Traffic for RouterTraffic {
    fn routed_version(&self) -> u64 {
        self.0.routed_version()
    }

    fn in_flight(&self, upstream: SocketAddr) -> usize {
        self.0.in_flight(upstream)
    }
}

/// The route table over the API (`GET /internal/v1/routes`), for a router on another machine.
pub(crate) struct RemoteFeed(pub(crate) Client);

impl RouteFeed for RemoteFeed {
    async fn changed(&mut self, version: u64) -> anyhow::Result<Option<Arc<RouteTable>>> {
        Ok(self.0.route_table(version).await?.map(Arc::new))
    }
}
