//! The builder's internal API and the build's user-facing log stream.
//!
//! Builders claim queued deploys, report phase changes, stream log lines and finish
//! here, authenticated with the node secret. Every report answers whether the deploy was
//! cancelled meanwhile, which is how a cancel reaches a running build. Log lines are
//! stored and fanned out to followers as they arrive (server push).

use crate::http::ApiJson;
use crate::views::failure_record;
use crate::{ApiFailure, ControlState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::time::Duration;
use tokio::sync::broadcast;
use tovuk_api_types::{
    BuildControl, BuildFinish, BuildLogEvent, BuildLogLine, BuildLogResult, BuildStateRequest, ClaimRequest,
    ClaimedBuild, ErrorCode, LogBatch, PhaseReport,
};
use tovuk_api_types::{BuildOutcome, FinalBuildStatus};
use tovuk_store::{DeployRecord, LogLine, TransitionError, TransitionExtras};
use tovuk_types::DeployState;

/// How long a claim waits for work before answering "nothing yet".
const CLAIM_WAIT: Duration = Duration::from_secs(20);

fn is_build_state(state: DeployState) -> bool {
    matches!(state, DeployState::Building | DeployState::Typechecking | DeployState::Testing)
}

async fn running_build(state: &ControlState, id: &str) -> Result<DeployRecord, ApiFailure> {
    state.store().find_deploy(id).await?.ok_or_else(|| {
        ApiFailure::new(ErrorCode::DeployNotFound, format!("there is no deploy `{}`", id.escape_debug()))
    })
}

fn control(deploy: &DeployRecord) -> Json<BuildControl> {
    Json(BuildControl { cancelled: !is_build_state(deploy.state) })
}

pub(crate) async fn claim(
    State(state): State<ControlState>,
    ApiJson(request): ApiJson<ClaimRequest>,
) -> Result<Response, ApiFailure> {
    let deadline = tokio::time::Instant::now() + CLAIM_WAIT;
    loop {
        // Ask to be woken before looking, so a deploy queued in between is not missed.
        let wakeup = state.inner.build_wakeup.notified();
        if let Some(deploy) = state.store().claim_build(&request.node).await? {
            tracing::info!(deploy_id = %deploy.id, app = %deploy.app_name, node = %request.node, "build claimed");
            state.deploys_changed();
            state.log_channel(deploy.id.as_str());
            // The build sees only the names its `[build] secrets` lists, sealed.
            let build_names: Vec<&str> =
                deploy.config_needs.iter().filter(|need| need.build).map(|need| need.name.as_str()).collect();
            let env = if build_names.is_empty() {
                Vec::new()
            } else {
                let values = state.store().config_values(&deploy.app_id, None).await?;
                values
                    .into_iter()
                    .filter(|value| build_names.contains(&value.name.as_str()))
                    .map(crate::env::sealed_view)
                    .collect()
            };
            return Ok(Json(ClaimedBuild {
                env,
                deploy_id: deploy.id.to_string(),
                build_id: deploy.build_job_id.to_string(),
                app: deploy.app_name,
                app_id: deploy.app_id.to_string(),
                sha: deploy.sha,
                ref_name: deploy.ref_name,
                source_kind: deploy.source_kind,
            })
            .into_response());
        }
        let woken = tokio::select! {
            woken = tokio::time::timeout_at(deadline, wakeup) => woken.is_ok(),
            () = state.stopping() => false,
        };
        if !woken {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
    }
}

pub(crate) async fn advance(
    State(state): State<ControlState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<BuildStateRequest>,
) -> Result<Json<BuildControl>, ApiFailure> {
    let to = request.state;
    if !is_build_state(to) {
        return Err(ApiFailure::new(ErrorCode::InvalidRequest, format!("`{to}` is not a build state")));
    }
    let deploy = running_build(&state, &id).await?;
    if !is_build_state(deploy.state) {
        return Ok(control(&deploy));
    }
    match state.store().transition_deploy(&id, deploy.state, to).await {
        Ok(deploy) => {
            state.deploys_changed();
            Ok(control(&deploy))
        }
        Err(TransitionError::Store(error)) => Err(error.into()),
        Err(_) => Ok(control(&running_build(&state, &id).await?)),
    }
}

pub(crate) async fn phase(
    State(state): State<ControlState>,
    Path(id): Path<String>,
    ApiJson(report): ApiJson<PhaseReport>,
) -> Result<Json<BuildControl>, ApiFailure> {
    state
        .store()
        .record_phase(&id, report.phase, report.status, report.command.as_deref(), report.exit_code, report.ended)
        .await?;
    Ok(control(&running_build(&state, &id).await?))
}

pub(crate) async fn logs(
    State(state): State<ControlState>,
    Path(id): Path<String>,
    ApiJson(batch): ApiJson<LogBatch>,
) -> Result<Json<BuildControl>, ApiFailure> {
    let lines: Vec<LogLine> = batch
        .lines
        .into_iter()
        .map(|line| LogLine { at: line.at, phase: line.phase, stream: line.stream, line: line.line })
        .collect();
    let stored = state.store().append_build_logs(&id, &lines).await?;
    let sender = state.log_channel(&id);
    for line in stored {
        // Nobody following is fine: the lines are stored.
        let _ = sender.send(BuildLogEvent::Log(log_view(line)));
    }
    Ok(control(&running_build(&state, &id).await?))
}

pub(crate) fn log_view(stored: tovuk_store::StoredLogLine) -> BuildLogLine {
    BuildLogLine {
        seq: stored.seq,
        at: stored.line.at,
        phase: stored.line.phase,
        stream: stored.line.stream,
        line: stored.line.line,
    }
}

pub(crate) async fn finish(
    State(state): State<ControlState>,
    Path(id): Path<String>,
    ApiJson(finish): ApiJson<BuildFinish>,
) -> Result<Json<BuildControl>, ApiFailure> {
    let deploy = running_build(&state, &id).await?;
    let (to, extras) = match finish.outcome {
        BuildOutcome::ArtifactReady => (
            DeployState::ArtifactReady,
            TransitionExtras {
                final_build_status: Some(FinalBuildStatus::Succeeded),
                artifact: finish.artifact.map(|artifact| (artifact.digest, artifact.size_bytes)),
                failure: None,
            },
        ),
        BuildOutcome::Failed => (
            DeployState::Failed,
            TransitionExtras {
                final_build_status: Some(FinalBuildStatus::Failed),
                failure: finish.failure.map(failure_record),
                artifact: None,
            },
        ),
        BuildOutcome::Cancelled => (
            DeployState::Cancelled,
            TransitionExtras { final_build_status: Some(FinalBuildStatus::Cancelled), ..TransitionExtras::default() },
        ),
    };
    let was_building = is_build_state(deploy.state);
    if was_building {
        crate::usage::record_build_minutes(&state, &deploy.app_id, build_minutes(&deploy)).await;
    }
    let result = if was_building {
        state.store().transition_deploy_with(&id, deploy.state, to, &extras).await
    } else {
        Ok(deploy)
    };
    let deploy = match result {
        Ok(deploy) => deploy,
        Err(TransitionError::Store(error)) => return Err(error.into()),
        Err(_) => running_build(&state, &id).await?,
    };
    tracing::info!(deploy_id = %deploy.id, app = %deploy.app_name, state = %deploy.state, "build finished");
    state.store().release_build_claim(deploy.id.as_str()).await?;
    state.build_over(&deploy);
    if deploy.state == DeployState::ArtifactReady {
        state.inner.release_wakeup.notify_waiters();
        // What a failed release left can go now, not only at the next one that goes live.
        crate::retention::collect_soon(&state, deploy.app_id.as_str());
    }
    Ok(control(&deploy))
}

impl ControlState {
    /// The live log channel of a deploy, made on first use.
    pub(crate) fn log_channel(&self, deploy_id: &str) -> broadcast::Sender<BuildLogEvent> {
        let mut channels = self.inner.log_channels.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        channels.entry(deploy_id.to_owned()).or_insert_with(|| broadcast::channel(1024).0).clone()
    }

    /// A build ended: tell followers, drop its channel, and wake builders (the app may
    /// have more queued work now).
    pub(crate) fn build_over(&self, deploy: &DeployRecord) {
        let sender = {
            let mut channels = self.inner.log_channels.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            channels.remove(deploy.id.as_str())
        };
        if let Some(sender) = sender {
            let _ = sender.send(BuildLogEvent::Result(BuildLogResult {
                deploy_id: deploy.id.to_string(),
                state: deploy.state,
                failure: deploy.failure.clone().map(|failure| crate::views::failure_view(failure, &deploy.app_name)),
            }));
        }
        self.inner.build_wakeup.notify_waiters();
        self.deploys_changed();
    }

    /// New work was queued: wake a waiting builder.
    pub(crate) fn deploy_queued(&self) {
        self.inner.build_wakeup.notify_waiters();
        self.deploys_changed();
    }
}

/// How long a build has run, in minutes: from entering `building` until now.
fn build_minutes(deploy: &DeployRecord) -> f64 {
    let started = deploy.events.iter().find(|(state, _)| *state == DeployState::Building).map(|(_, at)| at);
    let Some(started) = started.and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok()) else { return 0.0 };
    let elapsed = chrono::Utc::now().signed_duration_since(started);
    elapsed.num_milliseconds().max(0) as f64 / 60_000.0
}
