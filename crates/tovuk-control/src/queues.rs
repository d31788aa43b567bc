//! The operator's queue commands (`tovuk queue list|show|peek|purge|redrive`), run where
//! the queue's messages live (the node's [`QueueHost`]), and queue counts for `service show`.

use crate::auth::{Caller, app_for};
use crate::http::ApiJson;
use crate::resources::HostFuture;
use crate::{ApiFailure, ControlState};
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use std::collections::BTreeMap;
use tovuk_api_types::{
    ErrorCode, QueueInfo, QueueList, QueueMessage, QueuePeek, QueuePurgeRequest, QueuePurged, QueueRedriven,
    ResourceStatus,
};
use tovuk_manifest::ResourceKind;
use tovuk_store::{AppRecord, ResourceRecord};

/// The most messages one peek shows.
const MAX_PEEK: usize = 100;
const DEFAULT_PEEK: usize = 10;

/// The queue resource an operator command acts on.
#[derive(Debug, Clone)]
pub struct QueueTarget {
    pub app: String,
    pub resource_id: String,
    pub binding: String,
    pub status: ResourceStatus,
}

/// The operator's queue commands, run on the node that serves the app's queues.
pub trait QueueHost: Send + Sync + 'static {
    fn info<'a>(&'a self, target: &'a QueueTarget) -> HostFuture<'a, QueueInfo>;
    fn peek<'a>(
        &'a self,
        target: &'a QueueTarget,
        dead_letter: bool,
        limit: usize,
    ) -> HostFuture<'a, Vec<QueueMessage>>;
    fn purge<'a>(&'a self, target: &'a QueueTarget, dead_letter: bool) -> HostFuture<'a, u64>;
    fn redrive<'a>(&'a self, target: &'a QueueTarget) -> HostFuture<'a, u64>;
}

fn target_of(app: &AppRecord, record: &ResourceRecord) -> QueueTarget {
    QueueTarget {
        app: app.name.to_string(),
        resource_id: record.id.clone(),
        binding: record.binding.clone(),
        status: record.status,
    }
}

fn is_queue(record: &ResourceRecord) -> bool {
    record.kind == ResourceKind::Queue.as_str()
}

async fn queue_target(
    state: &ControlState,
    caller: &Caller,
    name_or_id: &str,
    binding: &str,
) -> Result<QueueTarget, ApiFailure> {
    let app = app_for(state, caller, name_or_id).await?;
    let records = state.store().app_resources(app.id.as_str()).await?;
    if let Some(record) = records.iter().find(|record| is_queue(record) && record.binding == binding) {
        return Ok(target_of(&app, record));
    }
    let known: Vec<&str> = records.iter().filter(|record| is_queue(record)).map(|r| r.binding.as_str()).collect();
    let message = format!("`{}` has no queue bound as `{}`", app.name, binding.escape_debug());
    let next = if known.is_empty() {
        "declare one in tovuk.toml ([[resources]] kind = \"queue\") and deploy".to_owned()
    } else {
        format!("its queues: {} (tovuk queue list {})", known.join(", "), app.name)
    };
    Err(ApiFailure::new(ErrorCode::ResourceNotFound, message).next(next))
}

fn host(state: &ControlState) -> Result<std::sync::Arc<dyn QueueHost>, ApiFailure> {
    state.inner.queue_host.get().cloned().ok_or_else(|| {
        ApiFailure::new(ErrorCode::Internal, "no runner on this server holds queues")
            .next("run the queue commands against the server that runs the app (tovuk server with the runner role)")
    })
}

fn failed(error: tovuk_api_types::ApiError) -> ApiFailure {
    ApiFailure(Box::new(error), None)
}

/// `GET /v1/apps/{app}/queues`.
pub(crate) async fn list(
    State(state): State<ControlState>,
    caller: Caller,
    Path(name_or_id): Path<String>,
) -> Result<Json<QueueList>, ApiFailure> {
    let app = app_for(&state, &caller, &name_or_id).await?;
    let records = state.store().app_resources(app.id.as_str()).await?;
    let mut queues = Vec::new();
    for record in records.iter().filter(|record| is_queue(record)) {
        queues.push(host(&state)?.info(&target_of(&app, record)).await.map_err(failed)?);
    }
    Ok(Json(QueueList { app: app.name.to_string(), queues }))
}

/// `GET /v1/apps/{app}/queues/{binding}`.
pub(crate) async fn show(
    State(state): State<ControlState>,
    caller: Caller,
    Path((app, binding)): Path<(String, String)>,
) -> Result<Json<QueueInfo>, ApiFailure> {
    let target = queue_target(&state, &caller, &app, &binding).await?;
    Ok(Json(host(&state)?.info(&target).await.map_err(failed)?))
}

#[derive(Debug, Deserialize)]
pub(crate) struct PeekQuery {
    #[serde(default)]
    dead_letter: bool,
    #[serde(default)]
    limit: Option<usize>,
}

/// `GET /v1/apps/{app}/queues/{binding}/messages?dead_letter=&limit=`.
pub(crate) async fn peek(
    State(state): State<ControlState>,
    caller: Caller,
    Path((app, binding)): Path<(String, String)>,
    Query(query): Query<PeekQuery>,
) -> Result<Json<QueuePeek>, ApiFailure> {
    let target = queue_target(&state, &caller, &app, &binding).await?;
    let limit = query.limit.unwrap_or(DEFAULT_PEEK);
    if limit == 0 || limit > MAX_PEEK {
        return Err(ApiFailure::new(
            ErrorCode::InvalidRequest,
            format!("--limit is {limit}; a peek shows 1 to {MAX_PEEK} messages"),
        )
        .next(format!("tovuk queue peek {} {} --limit {MAX_PEEK}", target.app, target.binding)));
    }
    let messages = host(&state)?.peek(&target, query.dead_letter, limit).await.map_err(failed)?;
    Ok(Json(QueuePeek { app: target.app, binding: target.binding, dead_letter: query.dead_letter, messages }))
}

/// `POST /v1/apps/{app}/queues/{binding}/purge`.
pub(crate) async fn purge(
    State(state): State<ControlState>,
    caller: Caller,
    Path((app, binding)): Path<(String, String)>,
    ApiJson(request): ApiJson<QueuePurgeRequest>,
) -> Result<Json<QueuePurged>, ApiFailure> {
    let target = queue_target(&state, &caller, &app, &binding).await?;
    if request.confirm != target.binding {
        let flag = if request.dead_letter { " --dead-letter" } else { "" };
        return Err(ApiFailure::new(
            ErrorCode::InvalidRequest,
            format!(
                "purging deletes messages for good: confirm with the queue's binding `{}` (got `{}`)",
                target.binding,
                request.confirm.escape_debug()
            ),
        )
        .next(format!("tovuk queue purge {} {}{flag} --confirm {}", target.app, target.binding, target.binding)));
    }
    let purged = host(&state)?.purge(&target, request.dead_letter).await.map_err(failed)?;
    tracing::info!(app = %target.app, binding = %target.binding, dead_letter = request.dead_letter, purged, "queue purged");
    Ok(Json(QueuePurged { app: target.app, binding: target.binding, dead_letter: request.dead_letter, purged }))
}

/// `POST /v1/apps/{app}/queues/{binding}/redrive`.
pub(crate) async fn redrive(
    State(state): State<ControlState>,
    caller: Caller,
    Path((app, binding)): Path<(String, String)>,
) -> Result<Json<QueueRedriven>, ApiFailure> {
    let target = queue_target(&state, &caller, &app, &binding).await?;
    let redriven = host(&state)?.redrive(&target).await.map_err(failed)?;
    tracing::info!(app = %target.app, binding = %target.binding, redriven, "queue dead letters redriven");
    Ok(Json(QueueRedriven { app: target.app, binding: target.binding, redriven }))
}

/// Depth, in-flight and dead-letter counts of each of `app`'s queues, by resource id, for
/// `service show` (none when no runner here holds them).
pub(crate) async fn counts(
    state: &ControlState,
    app: &AppRecord,
    records: &[ResourceRecord],
) -> BTreeMap<String, (u64, u64, u64)> {
    let mut counts = BTreeMap::new();
    let Some(host) = state.inner.queue_host.get() else { return counts };
    for record in records.iter().filter(|record| is_queue(record)) {
        if let Ok(info) = host.info(&target_of(app, record)).await {
            counts.insert(record.id.clone(), (info.depth, info.in_flight, info.dead_letter));
        }
    }
    counts
}
