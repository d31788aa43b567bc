//! The route table: the control plane owns it, routers follow it.
//!
//! Desired routing (which deploy serves each app) is the store's `routes` table, changed
//! in the transaction that takes a deploy live; where that deploy is reached is what the
//! runner last reported of its instance. Every change that touches either republishes
//! the whole table with a new version. Routers follow it in-process through
//! [`ControlState::route_feed`] or over `GET /internal/v1/routes?after=VERSION`.

use crate::{ApiFailure, ControlState};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tovuk_api_types::{Backend, DeployShape, RouteBinding, RouteEntry, RouteTable, RouteTarget};
use tovuk_store::{InstanceRecord, RouteRow, SERVICE_BINDING};
use tovuk_types::values::InstanceStatus;

/// How long a follower's request waits for a change before answering "no change".
const FOLLOW_WAIT: Duration = Duration::from_secs(20);

/// How often the table is rebuilt from the store even without a change, so a publish
/// that failed (a busy store) heals by itself.
const REBUILD_EVERY: Duration = Duration::from_secs(5);

/// The published table and the lock that keeps rebuilds in order.
pub(crate) struct RouteBook {
    published: watch::Sender<Arc<RouteTable>>,
    /// Each routed release's edge auth, worked out once.
    auth: crate::route_auth::AuthBook,
    /// Held from reading the store to publishing, so an older read never replaces a newer one.
    rebuilding: tokio::sync::Mutex<()>,
}

impl RouteBook {
    pub(crate) fn new() -> Self {
        RouteBook {
            published: watch::channel(Arc::new(RouteTable::default())).0,
            auth: Default::default(),
            rebuilding: Default::default(),
        }
    }
}

impl ControlState {
    /// Follows the route table in-process: the receiver always holds the newest one.
    pub fn route_feed(&self) -> watch::Receiver<Arc<RouteTable>> {
        self.inner.routes.published.subscribe()
    }

    /// Rebuilds the table from the store and publishes it when it changed. Returns the
    /// version that holds every change committed before this call.
    pub(crate) async fn republish_routes(&self) -> Result<u64, ApiFailure> {
        let book = &self.inner.routes;
        let _rebuilding = book.rebuilding.lock().await;
        let rows = self.store().route_rows().await?;
        let bindings = self.route_bindings(&rows).await?;
        book.auth.keep(&rows);
        let mut routes: Vec<RouteEntry> = Vec::with_capacity(rows.len());
        for row in rows {
            let plan = row.plan.as_deref().and_then(|plan| serde_json::from_str::<DeployShape>(plan).ok());
            let auth = crate::route_auth::release_auth(self, &book.auth, &row, plan.as_ref()).await?;
            routes.extend(route_entry(row, plan.as_ref(), auth));
        }
        let current = book.published.borrow().clone();
        if current.routes == routes && current.bindings == bindings && current.version > 0 {
            return Ok(current.version);
        }
        let version = current.version + 1;
        tracing::debug!(version, routes = routes.len(), "route table published");
        book.published.send_replace(Arc::new(RouteTable { version, routes, bindings }));
        Ok(version)
    }
}

impl ControlState {
    /// The service bindings the routed deploys declare, each with its token's digest: what
    /// the router's internal listener checks a call against. A binding whose token cannot
    /// be opened (the secrets key changed) is left out, so its calls are refused.
    async fn route_bindings(&self, rows: &[RouteRow]) -> Result<Vec<RouteBinding>, ApiFailure> {
        if !rows.iter().any(|row| row.declared.iter().any(|declared| declared.kind == SERVICE_BINDING)) {
            return Ok(Vec::new());
        }
        let records = self.store().resources_of_kind(SERVICE_BINDING).await?;
        let mut bindings = Vec::new();
        for row in rows {
            for declared in row.declared.iter().filter(|declared| declared.kind == SERVICE_BINDING) {
                let Some(service) = &declared.service else { continue };
                let Some(record) =
                    records.iter().find(|record| record.app_id == row.app_id && record.binding == declared.binding)
                else {
                    continue;
                };
                let sealed = tovuk_secrets::Sealed {
                    key_id: record.credential.key_id.clone(),
                    nonce: record.credential.nonce.clone(),
                    ciphertext: record.credential.ciphertext.clone(),
                };
                let context = tovuk_secrets::SealContext { app_id: &row.app_id, name: &record.id, version: 1 };
                let Ok(token) = self.secrets_key().open(&context, &sealed) else {
                    tracing::warn!(app = %row.app_name, binding = %declared.binding, "a binding's token cannot be opened");
                    continue;
                };
                bindings.push(RouteBinding {
                    app: row.app_name.clone(),
                    binding: declared.binding.clone(),
                    service: service.clone(),
                    resource_id: record.id.clone(),
                    token_sha256: hex::encode(Sha256::digest(token.as_bytes())),
                });
            }
        }
        Ok(bindings)
    }
}

/// Keeps the published table true to the store: rebuilt at start, then every few seconds.
pub async fn run_route_table(state: ControlState, shutdown: tovuk_daemon::Shutdown) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(REBUILD_EVERY);
    loop {
        tokio::select! {
            () = shutdown.wait() => return Ok(()),
            _ = tick.tick() => {}
        }
        // A failure is logged where it happened; the next tick tries again.
        let _ = state.republish_routes().await;
    }
}

/// Where an app's traffic goes, from its deploy's instances, and the edge auth it goes
/// through. Apps with nothing to route (a worker) have no entry; a release whose auth
/// cannot be set up is down, never served without it.
fn route_entry(row: RouteRow, plan: Option<&DeployShape>, auth: crate::route_auth::ReleaseAuth) -> Option<RouteEntry> {
    // Every deploy records its limits in its plan, the plan default filled in.
    let request_timeout_secs = plan.map(|plan| plan.limits.app.request_timeout_secs);
    let wanted = plan.map_or(1, |plan| usize::try_from(plan.limits.app.instances).unwrap_or(1));
    let mut target = route_target(&row, wanted)?;
    let auth = match auth {
        None => None,
        Some(Ok(auth)) => Some(auth),
        Some(Err(why)) => {
            target = down(&why);
            None
        }
    };
    Some(RouteEntry { app: row.app_name, deploy_id: row.deploy_id, target, request_timeout_secs, auth })
}

/// The healthy instances of the routed deploy; while it rolls in (fewer healthy than
/// `wanted`), healthy instances of the deploy it replaces make up the difference. With
/// none, the first instance's state says why the app is down.
fn route_target(row: &RouteRow, wanted: usize) -> Option<RouteTarget> {
    let Some(first) = row.instances.first() else { return Some(down("the app is starting")) };
    if let Some(root) = &first.static_root {
        return Some(RouteTarget::Static { root: root.into() });
    }
    let backend = |instance: &InstanceRecord| {
        Some(Backend {
            addr: instance.upstream.as_deref()?.parse().ok()?,
            netns: instance.netns.as_ref().map(Into::into),
        })
    };
    let healthy: Vec<Backend> = row
        .instances
        .iter()
        .filter(|instance| instance.status == InstanceStatus::Healthy)
        .filter_map(backend)
        .collect();
    let missing = wanted.saturating_sub(healthy.len());
    let upstreams: Vec<Backend> =
        healthy.into_iter().chain(row.replaced.iter().filter_map(backend).take(missing)).collect();
    if !upstreams.is_empty() {
        return Some(RouteTarget::Proxy { upstreams });
    }
    let last_exit = || first.last_exit_code.map_or_else(|| "unknown".to_owned(), |code| code.to_string());
    Some(match first.status {
        InstanceStatus::Crashing => down(&format!("crash-looping (last exit code {})", last_exit())),
        // Public: the reason (which can name files of the platform) is in `tovuk app status`.
        InstanceStatus::Failed => down("its current deploy could not start; `tovuk app status` says why"),
        InstanceStatus::Stopped | InstanceStatus::Starting => down("the app is starting"),
        // Traffic comes back once the restarted process answers its health path.
        InstanceStatus::Restarting => down(&format!("restarting after it exited (code {})", last_exit())),
        // Healthy with no address: a worker, which has no route.
        InstanceStatus::Healthy => return None,
    })
}

fn down(reason: &str) -> RouteTarget {
    RouteTarget::Down { reason: reason.to_owned() }
}

#[derive(Debug, Deserialize)]
pub(crate) struct FollowQuery {
    /// The version the follower has; 0 (or absent) for none.
    #[serde(default)]
    after: u64,
}

/// `GET /internal/v1/routes?after=VERSION`: the table as soon as its version differs from
/// the follower's (at once after a control-plane restart), or 204 after a while.
pub(crate) async fn follow(State(state): State<ControlState>, Query(query): Query<FollowQuery>) -> Response {
    let mut feed = state.route_feed();
    let changed = tokio::select! {
        changed = tokio::time::timeout(FOLLOW_WAIT, feed.wait_for(|table| table.version != query.after)) => changed,
        () = state.stopping() => return StatusCode::NO_CONTENT.into_response(),
    };
    match changed {
        Ok(Ok(table)) => Json(RouteTable::clone(&table)).into_response(),
        Ok(Err(_)) | Err(_) => StatusCode::NO_CONTENT.into_response(),
    }
}
