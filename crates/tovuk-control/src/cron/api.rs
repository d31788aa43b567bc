//! The cron API: `tovuk cron list|history|run` (public) and the runner reporting how a run
//! ended (internal).

use super::{Job, is_cron, jobs_of, run_view, stamp, start_run};
use crate::auth::{Caller, app_for};
use crate::http::ApiJson;
use crate::{ApiFailure, ControlState};
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use tovuk_api_types::{CronHistory, CronJob, CronList, CronRun, CronRunEnd, ErrorCode};
use tovuk_store::AppRecord;
use tovuk_types::values::{CronRunStatus, CronTrigger, ResourceStatus};

/// The most runs one history shows.
const MAX_HISTORY: u32 = 1000;
const DEFAULT_HISTORY: u32 = 20;

/// `GET /v1/apps/{app}/cron`.
pub(crate) async fn list(
    State(state): State<ControlState>,
    caller: Caller,
    Path(name_or_id): Path<String>,
) -> Result<Json<CronList>, ApiFailure> {
    let app = app_for(&state, &caller, &name_or_id).await?;
    let records: Vec<_> = state.store().app_resources(app.id.as_str()).await?.into_iter().filter(is_cron).collect();
    let jobs = jobs_of(&state, &app, &records).await?;
    let mut last = state.store().last_cron_runs(app.id.as_str()).await?;
    let now = chrono::Utc::now();
    let listed = records
        .into_iter()
        .map(|record| {
            let job = jobs.iter().find(|job| job.resource.id == record.id);
            CronJob {
                schedule: job.map(|job| job.spec.schedule_text.clone()),
                command: job.map(|job| job.spec.command.clone()),
                timeout_ms: job.map(|job| u64::try_from(job.spec.timeout.as_millis()).unwrap_or(u64::MAX)),
                next_run_at: job.and_then(|job| job.spec.schedule.next_after(&now)).map(|tick| stamp(&tick)),
                last_run: last.remove(&record.id).map(|run| run_view(&app.name, run)),
                binding: record.binding,
                resource_id: record.id,
                status: record.status,
            }
        })
        .collect();
    Ok(Json(CronList { app: app.name, jobs: listed }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct HistoryQuery {
    #[serde(default)]
    binding: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

/// `GET /v1/apps/{app}/cron/runs?binding=&limit=`.
pub(crate) async fn history(
    State(state): State<ControlState>,
    caller: Caller,
    Path(name_or_id): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<CronHistory>, ApiFailure> {
    let app = app_for(&state, &caller, &name_or_id).await?;
    let limit = query.limit.unwrap_or(DEFAULT_HISTORY);
    if limit == 0 || limit > MAX_HISTORY {
        return Err(ApiFailure::new(
            ErrorCode::InvalidRequest,
            format!("--limit is {limit}; a history shows 1 to {MAX_HISTORY} runs"),
        )
        .next(format!("tovuk cron history {} --limit {MAX_HISTORY}", app.name)));
    }
    if let Some(binding) = &query.binding {
        cron_binding(&state, &app, binding).await?;
    }
    let runs = state.store().cron_runs(app.id.as_str(), query.binding.as_deref(), limit).await?;
    let runs = runs.into_iter().map(|run| run_view(&app.name, run)).collect();
    Ok(Json(CronHistory { app: app.name, binding: query.binding, runs }))
}

/// `GET /v1/apps/{app}/cron/runs/{id}`.
pub(crate) async fn show_run(
    State(state): State<ControlState>,
    caller: Caller,
    Path((name_or_id, id)): Path<(String, String)>,
) -> Result<Json<CronRun>, ApiFailure> {
    let app = app_for(&state, &caller, &name_or_id).await?;
    match state.store().find_cron_run(&id).await? {
        Some(run) if run.app_id == app.id.as_str() => Ok(Json(run_view(&app.name, run))),
        _ => {
            Err(ApiFailure::new(ErrorCode::NotFound, format!("`{}` has no cron run `{}`", app.name, id.escape_debug()))
                .next(format!("tovuk cron history {}", app.name)))
        }
    }
}

/// `POST /v1/apps/{app}/cron/{binding}/runs`: `tovuk cron run`, now.
pub(crate) async fn run_now(
    State(state): State<ControlState>,
    caller: Caller,
    Path((name_or_id, binding)): Path<(String, String)>,
) -> Result<Json<CronRun>, ApiFailure> {
    let app = app_for(&state, &caller, &name_or_id).await?;
    let job = cron_binding(&state, &app, &binding).await?;
    let Some(job) = job else {
        return Err(ApiFailure::new(
            ErrorCode::InvalidState,
            format!("the cron job `{binding}` of `{}` is detached: the current deploy does not declare it", app.name),
        )
        .next("declare it in tovuk.toml ([[resources]] kind = \"cron\") and deploy"));
    };
    let scheduled_at = stamp(&chrono::Utc::now());
    let run = start_run(&state, &job, &scheduled_at, CronTrigger::Manual, None).await?;
    tracing::info!(app = %app.name, %binding, run_id = %run.id, status = %run.status, "cron run asked for");
    Ok(Json(run_view(&app.name, run)))
}

/// The app's cron resource bound as `binding`: `Some` job when it is active and its
/// current deploy declares it, `None` when it is detached; an error naming the app's cron
/// bindings when it has none by that name.
async fn cron_binding(state: &ControlState, app: &AppRecord, binding: &str) -> Result<Option<Job>, ApiFailure> {
    let records: Vec<_> = state.store().app_resources(app.id.as_str()).await?.into_iter().filter(is_cron).collect();
    let Some(record) = records.iter().find(|record| record.binding == binding) else {
        let mut known: Vec<&str> = records.iter().map(|record| record.binding.as_str()).collect();
        known.sort_unstable();
        let message = format!("`{}` has no cron job bound as `{}`", app.name, binding.escape_debug());
        let next = if known.is_empty() {
            "declare one in tovuk.toml ([[resources]] kind = \"cron\", with schedule and command) and deploy".to_owned()
        } else {
            format!("its cron jobs: {} (tovuk cron list {})", known.join(", "), app.name)
        };
        return Err(ApiFailure::new(ErrorCode::ResourceNotFound, message).next(next));
    };
    if record.status != ResourceStatus::Active {
        return Ok(None);
    }
    Ok(jobs_of(state, app, &records).await?.into_iter().find(|job| job.resource.id == record.id))
}

/// `POST /internal/v1/cron/runs/{id}/end`: the runner says how a run ended.
pub(crate) async fn run_ended(
    State(state): State<ControlState>,
    Path(id): Path<String>,
    ApiJson(end): ApiJson<CronRunEnd>,
) -> Result<Json<CronRun>, ApiFailure> {
    if matches!(end.status, CronRunStatus::Running | CronRunStatus::Skipped | CronRunStatus::Missed) {
        return Err(ApiFailure::new(
            ErrorCode::InvalidRequest,
            format!("a run ends `succeeded`, `failed` or `timed_out`, not `{}`", end.status),
        ));
    }
    let Some(run) = state.store().end_cron_run(&id, end.status, end.exit_code, end.reason.as_deref()).await? else {
        return Err(ApiFailure::new(
            ErrorCode::InvalidState,
            format!("there is no cron run `{}` going", id.escape_debug()),
        ));
    };
    tracing::info!(run_id = %run.id, binding = %run.binding, status = %run.status, exit_code = ?run.exit_code, "cron run ended");
    let app = state.store().find_app(&run.app_id).await?.map(|app| app.name).unwrap_or_default();
    Ok(Json(run_view(&app, run)))
}
