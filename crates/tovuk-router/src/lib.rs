//! The router role: maps a request's `Host` to the app instance that serves it.
//!
//! Until the runner places instances, the route table is empty and every host gets a
//! short 404 that names the host, so a misrouted request is easy to tell apart from an
//! app's own 404.

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use tokio::net::TcpListener;
use tovuk_daemon::Shutdown;

async fn no_app_at_host(headers: HeaderMap) -> (StatusCode, String) {
    let host = headers.get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or("(no Host header)");
    (StatusCode::NOT_FOUND, format!("tovuk: no app is served at `{host}`; see `tovuk app list`\n"))
}

/// Serves the router on `listener` until `shutdown` fires, then drains in-flight requests.
pub async fn serve(listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    use axum::serve::ListenerExt;
    let app = Router::new().fallback(no_app_at_host);
    // Without TCP_NODELAY a kept-alive connection waits on delayed ACKs (~40 ms a round trip).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.wait().await }).await?;
    Ok(())
}
