//! Platform status: whether the tovuk API and its store answer. Never about a user's project.

use crate::ControlState;
use axum::Json;
use axum::extract::State;
use tovuk_api_types::RoleState;
use tovuk_api_types::{PlatformStatus, RoleStatus, StoreStatus};

pub(crate) async fn ok() -> &'static str {
    "ok"
}

pub(crate) async fn platform_status(State(state): State<ControlState>) -> Json<PlatformStatus> {
    let store = match state.store().ping().await {
        // It answers reads, but writes fail (a full disk): not ok.
        Ok(latency) => {
            let failing = state.inner.store_health.failing();
            StoreStatus {
                kind: "sqlite".into(),
                ok: failing.is_none(),
                latency_ms: Some(latency.as_secs_f64() * 1000.0),
                error: failing,
            }
        }
        Err(error) => {
            StoreStatus { kind: "sqlite".into(), ok: false, latency_ms: None, error: Some(error.to_string()) }
        }
    };
    let roles: Vec<RoleStatus> = state
        .inner
        .roles
        .snapshot()
        .into_iter()
        .map(|role| RoleStatus {
            name: role.name.to_owned(),
            state: if role.running { RoleState::Running } else { RoleState::Stopped },
            address: role.address,
        })
        .collect();
    let healthy = store.ok && roles.iter().all(|role| role.state == RoleState::Running);
    Json(PlatformStatus {
        status: if healthy { "ok" } else { "degraded" }.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at: state.config().started_at.clone(),
        uptime_seconds: state.inner.started.elapsed().as_secs(),
        roles,
        store,
        limits: state.config().enforced_limits.clone(),
    })
}

/// `GET /v1/store/backup` (admin): a consistent copy of the state store, taken while it
/// serves. Sent as a file; `tovuk store backup PATH` writes it.
pub(crate) async fn backup(
    State(state): State<ControlState>,
    caller: crate::auth::Caller,
) -> Result<axum::response::Response, crate::ApiFailure> {
    use axum::response::IntoResponse;
    caller.require_admin("take a backup of the state store")?;
    let work = state.config().layout.work_dir();
    std::fs::create_dir_all(&work).map_err(backup_failed)?;
    let path = work.join(format!("backup-{}.db", tovuk_daemon::request_id::generate()));
    state.store().backup_into(&path).await?;
    let file = tokio::fs::File::open(&path).await.map_err(backup_failed);
    // Open, it is read to the end even once its name is gone: nothing is left behind.
    let _ = std::fs::remove_file(&path);
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file?));
    Ok(([(axum::http::header::CONTENT_TYPE, "application/vnd.sqlite3")], body).into_response())
}

fn backup_failed(error: std::io::Error) -> crate::ApiFailure {
    tracing::error!(%error, "cannot take a backup of the state store");
    crate::ApiFailure::new(tovuk_api_types::ErrorCode::StoreUnavailable, "the backup could not be written; try again")
        .next("tovuk status")
}
