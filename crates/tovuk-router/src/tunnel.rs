//! Upgraded connections (WebSocket and the like): bytes copied both ways until either side closes.

use crate::in_flight::InFlightGuard;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tovuk_daemon::Shutdown;

/// Both halves of an upgrade the app accepted, and the guard that keeps the app counted busy.
pub(crate) struct Tunnel {
    pub(crate) downstream: OnUpgrade,
    pub(crate) upstream: OnUpgrade,
    pub(crate) in_flight: InFlightGuard,
    pub(crate) request_id: String,
    pub(crate) app: String,
    /// Counts what the app sent through the tunnel as its egress, when the tunnel closes.
    pub(crate) meter: Option<std::sync::Arc<tovuk_meter::AppMeter>>,
}

impl Tunnel {
    /// Copies until both directions are closed, or until shutdown: a tunnel can live for hours,
    /// so it is cut rather than allowed to hold the process to its deadline.
    pub(crate) async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let Tunnel { downstream, upstream, in_flight, request_id, app, meter } = self;
        let _in_flight = in_flight;
        let downstream = match downstream.await {
            Ok(downstream) => downstream,
            Err(error) => {
                tracing::info!(%error, request_id, app, source = "downstream", "client upgrade failed");
                return Ok(());
            }
        };
        let upstream = match upstream.await {
            Ok(upstream) => upstream,
            Err(error) => {
                tracing::warn!(%error, request_id, app, source = "upstream", "app upgrade failed");
                return Ok(());
            }
        };
        let mut downstream = TokioIo::new(downstream);
        let mut upstream = TokioIo::new(upstream);
        tokio::select! {
            copied = tokio::io::copy_bidirectional(&mut downstream, &mut upstream) => match copied {
                Ok((to_upstream_bytes, to_downstream_bytes)) => {
                    if let Some(meter) = &meter {
                        meter.add_egress(to_downstream_bytes);
                    }
                    tracing::debug!(request_id, app, to_upstream_bytes, to_downstream_bytes, "tunnel closed");
                }
                // A peer vanishing mid-stream is how most tunnels end; it is not a router fault.
                Err(error) => tracing::debug!(%error, request_id, app, "tunnel closed with an error"),
            },
            () = shutdown.wait() => tracing::debug!(request_id, app, "tunnel closed for shutdown"),
        }
        Ok(())
    }
}
