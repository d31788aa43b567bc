//! The control-plane API: platform status, authentication, tokens and apps.
//!
//! It is the only role that opens the state store; every other role, and the CLI,
//! reaches state through this API. Handlers return [`ApiFailure`] so every error
//! leaves in the one `{"error": {...}}` shape.

mod apps;
mod auth;
mod failure;
mod status;
mod tokens;

pub use failure::ApiFailure;

use axum::Router;
use axum::routing::{delete, get, post};
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tovuk_daemon::{RoleBoard, Shutdown};
use tovuk_store::Store;

/// What the API needs to answer: the store and facts about this platform.
#[derive(Clone)]
pub struct ControlState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    roles: RoleBoard,
    /// The URL users reach the API at, when configured; otherwise taken from each request's `Host`.
    public_url: Option<String>,
    started: Instant,
    started_at: String,
}

impl ControlState {
    pub fn new(store: Store, roles: RoleBoard, public_url: Option<String>, started_at: String) -> Self {
        let public_url = public_url.map(|url| url.trim_end_matches('/').to_owned());
        ControlState { inner: Arc::new(Inner { store, roles, public_url, started: Instant::now(), started_at }) }
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }
}

/// The API's routes. `/health`, `/healthz` and `/v1/status` need no token; everything else does.
pub fn router(state: ControlState) -> Router {
    Router::new()
        .route("/health", get(status::ok))
        .route("/healthz", get(status::ok))
        .route("/v1/status", get(status::platform_status))
        .route("/v1/apps", post(apps::create).get(apps::list))
        .route("/v1/apps/{app}", get(apps::show))
        .route("/v1/tokens", post(tokens::create).get(tokens::list))
        .route("/v1/tokens/{id}", delete(tokens::revoke))
        .fallback(auth::unknown_route)
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` fires, then lets in-flight requests finish.
pub async fn serve(listener: TcpListener, state: ControlState, shutdown: Shutdown) -> anyhow::Result<()> {
    let app = router(state);
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.wait().await }).await?;
    Ok(())
}
