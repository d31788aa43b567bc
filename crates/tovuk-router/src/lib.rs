//! The router role: maps a request's `Host` to the app that serves it, and serves it.
//!
//! The router holds the route table (swapped whole and atomically by [`Router::publish`],
//! following the control plane's table through a [`RouteFeed`]),
//! the reverse proxy to app instances on loopback, the tunnel for upgraded connections,
//! static files of static apps, and the platform's own answers (unknown host, app down,
//! upstream errors). It must not decide where apps run or whether they are healthy: the
//! platform tells it through the table it publishes.

mod body;
mod content_type;
mod edge;
mod error;
mod feed;
mod headers;
mod host;
mod in_flight;
mod pool;
mod proxy;
mod reply;
mod route_table;
mod router;
mod server;
mod static_files;
mod tunnel;

pub use error::ErrorSource;
pub use feed::{RouteFeed, follow_routes};
pub use route_table::{Route, RouteTable, Target, Upstream};
pub use router::{Router, Timeouts};

use tokio::net::TcpListener;
use tovuk_daemon::Shutdown;

/// The base domain apps hang under when nothing else is configured: `http://<app>.localhost`.
pub const DEFAULT_BASE_DOMAIN: &str = "localhost";

/// Serves an empty route table (every host gets a 404) until `shutdown` fires.
///
/// Kept for callers that do not publish routes yet; [`Router::serve`] is the real entry point.
pub async fn serve(listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let router = Router::new(DEFAULT_BASE_DOMAIN);
    router.publish(RouteTable::default());
    router.serve(listener, shutdown).await
}
