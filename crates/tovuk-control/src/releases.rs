//! The runner's internal API: claim sealed artifacts, go live, fail, report instances,
//! and list what served before a restart. Authenticated with the node secret.

use crate::builds::Node;
use crate::views::failure_record;
use crate::{ApiFailure, ControlState};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::time::Duration;
use tovuk_api_types::{
    ClaimedRelease, CurrentReleases, ErrorCode, InstanceReport, ReleaseFailed, ReleaseLive, ReleaseOutcome,
};
use tovuk_store::{DeployRecord, InstanceRecord};

const CLAIM_WAIT: Duration = Duration::from_secs(20);

/// What the runner needs to start a deploy: its artifact and its config, still sealed.
async fn claimed(state: &ControlState, deploy: DeployRecord) -> Result<Option<ClaimedRelease>, ApiFailure> {
    let Some((digest, _)) = deploy.artifact else { return Ok(None) };
    let env = state.store().config_values(&deploy.app_id, deploy.config_rev).await?;
    Ok(Some(ClaimedRelease {
        deploy_id: deploy.id.to_string(),
        app: deploy.app_name,
        app_id: deploy.app_id.to_string(),
        sha: deploy.sha,
        digest,
        env: env.into_iter().map(crate::env::sealed_view).collect(),
    }))
}

async fn deploy_of(state: &ControlState, id: &str) -> Result<DeployRecord, ApiFailure> {
    state.store().find_deploy(id).await?.ok_or_else(|| {
        ApiFailure::new(ErrorCode::DeployNotFound, format!("there is no deploy `{}`", id.escape_debug()))
    })
}

pub(crate) fn instance_record(report: &InstanceReport) -> InstanceRecord {
    InstanceRecord {
        deploy_id: report.deploy_id.clone(),
        status: report.status.clone(),
        pid: report.pid,
        port: report.port,
        started_at: report.started_at.clone(),
        restarts: report.restarts,
        last_exit_code: report.last_exit_code,
        last_exit_at: report.last_exit_at.clone(),
        updated_at: String::new(),
    }
}

pub(crate) fn instance_view(record: InstanceRecord) -> InstanceReport {
    InstanceReport {
        deploy_id: record.deploy_id,
        status: record.status,
        pid: record.pid,
        port: record.port,
        started_at: record.started_at,
        restarts: record.restarts,
        last_exit_code: record.last_exit_code,
        last_exit_at: record.last_exit_at,
    }
}

pub(crate) async fn claim(State(state): State<ControlState>, _node: Node) -> Result<Response, ApiFailure> {
    let deadline = tokio::time::Instant::now() + CLAIM_WAIT;
    loop {
        let wakeup = state.inner.release_wakeup.notified();
        if let Some(deploy) = state.store().claim_release().await? {
            tracing::info!(deploy_id = %deploy.id, app = %deploy.app_name, "release claimed");
            state.deploys_changed();
            let id = deploy.id.to_string();
            return match claimed(&state, deploy).await? {
                Some(release) => Ok(Json(release).into_response()),
                None => {
                    let failure = tovuk_store::Failure {
                        reason: "artifact_missing".into(),
                        phase: Some("deploying".into()),
                        exit_code: None,
                        first_actionable_line: Some("the deploy has no artifact".into()),
                        missing: Vec::new(),
                    };
                    state.store().fail_release(&id, failure).await?;
                    Ok(StatusCode::NO_CONTENT.into_response())
                }
            };
        }
        if tokio::time::timeout_at(deadline, wakeup).await.is_err() {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
    }
}

pub(crate) async fn current(
    State(state): State<ControlState>,
    _node: Node,
) -> Result<Json<CurrentReleases>, ApiFailure> {
    let mut releases = Vec::new();
    for deploy in state.store().current_releases().await? {
        releases.extend(claimed(&state, deploy).await?);
    }
    Ok(Json(CurrentReleases { releases }))
}

pub(crate) async fn live(
    State(state): State<ControlState>,
    _node: Node,
    Path(id): Path<String>,
    body: Result<Json<ReleaseLive>, JsonRejection>,
) -> Result<Json<ReleaseOutcome>, ApiFailure> {
    let Json(request) = body.map_err(crate::apps::invalid_json)?;
    let deploy = deploy_of(&state, &id).await?;
    state.store().record_instance(&deploy, &instance_record(&request.instance)).await?;
    let superseded = state.store().go_live(&id).await?;
    tracing::info!(deploy_id = %id, app = %deploy.app_name, superseded = ?superseded.as_ref().map(|d| d.id.to_string()), "deploy running");
    state.inner.release_wakeup.notify_waiters();
    state.deploys_changed();
    Ok(Json(ReleaseOutcome { superseded: superseded.map(|deploy| deploy.id.to_string()) }))
}

pub(crate) async fn failed(
    State(state): State<ControlState>,
    _node: Node,
    Path(id): Path<String>,
    body: Result<Json<ReleaseFailed>, JsonRejection>,
) -> Result<StatusCode, ApiFailure> {
    let Json(request) = body.map_err(crate::apps::invalid_json)?;
    state.store().fail_release(&id, failure_record(request.failure)).await?;
    tracing::info!(deploy_id = %id, "deploy failed to go live; the current deploy keeps serving");
    state.inner.release_wakeup.notify_waiters();
    state.deploys_changed();
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn instance(
    State(state): State<ControlState>,
    _node: Node,
    body: Result<Json<InstanceReport>, JsonRejection>,
) -> Result<StatusCode, ApiFailure> {
    let Json(report) = body.map_err(crate::apps::invalid_json)?;
    let deploy = deploy_of(&state, &report.deploy_id).await?;
    state.store().record_instance(&deploy, &instance_record(&report)).await?;
    Ok(StatusCode::NO_CONTENT)
}
