//! The accept loop and one HTTP/1.1 connection, with graceful shutdown.

use crate::router::Router;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;
use tovuk_daemon::{SHUTDOWN_DEADLINE, Shutdown};

/// Pause after a failed accept (typically out of file descriptors) so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

pub(crate) async fn serve(router: Router, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    // Tracks this listener's connections, so `serve` returns only after they have drained.
    let connections = TaskTracker::new();
    tracing::debug!(%address, base_domain = router.base_domain(), "router accepting connections");
    loop {
        let accepted = tokio::select! {
            () = shutdown.wait() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, client_addr) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, %address, "failed to accept a connection");
                tokio::select! {
                    () = shutdown.wait() => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => continue,
                }
            }
        };
        let connection = serve_connection(router.clone(), stream, client_addr, shutdown.clone());
        shutdown.spawn("router connection", connections.track_future(connection));
    }
    drop(listener);
    tracing::info!(%address, in_flight_connections = connections.len(), "router stopped accepting; draining");
    connections.close();
    if tokio::time::timeout(SHUTDOWN_DEADLINE, connections.wait()).await.is_err() {
        tracing::warn!(%address, open_connections = connections.len(), "router connections still open at the shutdown deadline");
    }
    Ok(())
}

async fn serve_connection(
    router: Router,
    stream: TcpStream,
    client_addr: SocketAddr,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    // Without TCP_NODELAY a kept-alive connection waits on delayed ACKs (~40 ms a round trip).
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, %client_addr, "failed to set TCP_NODELAY");
    }
    let header_read_timeout = router.timeouts().header_read;
    let service_shutdown = shutdown.clone();
    let service = service_fn(move |request| {
        let router = router.clone();
        let shutdown = service_shutdown.clone();
        async move { Ok::<_, Infallible>(router.handle(request, client_addr, &shutdown).await) }
    });
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_read_timeout).keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let mut draining = false;
    let result = loop {
        tokio::select! {
            result = connection.as_mut() => break result,
            // Finishes the request in progress, then closes instead of waiting for another.
            () = shutdown.wait(), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    };
    if let Err(error) = result {
        // Clients that vanish, send garbage or time out end here; the router is fine.
        tracing::debug!(%error, %client_addr, source = "downstream", "connection closed with an error");
    }
    Ok(())
}
