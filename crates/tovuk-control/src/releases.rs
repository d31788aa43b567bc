//! The runner's internal API: claim sealed artifacts, go live, fail, report instances,
//! and list what served before a restart. Authenticated with the node secret.

use crate::http::ApiJson;
use crate::views::failure_record;
use crate::{ApiFailure, ControlState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::time::Duration;
use tovuk_api_types::FailureReason;
use tovuk_api_types::{
    ClaimedRelease, CurrentReleases, ErrorCode, InstanceReport, ReleaseFailed, ReleaseLive, ReleaseOutcome,
    ReleaseSettled, RolledBack,
};
use tovuk_store::{DeployRecord, InstanceRecord};

const CLAIM_WAIT: Duration = Duration::from_secs(20);

/// What the runner needs to start a deploy: its artifact and its config, still sealed.
/// Its resources are created here, before the first release that declares them starts.
async fn claimed(state: &ControlState, deploy: DeployRecord) -> Result<Option<ClaimedRelease>, ApiFailure> {
    let env = state.store().config_values(&deploy.app_id, deploy.config_rev).await?;
    let resources = match crate::resources::for_release(state, &deploy).await {
        Ok(resources) => resources,
        // The deploy is claimed: it fails here, and the one serving keeps serving.
        Err(error) => {
            let failure = tovuk_store::Failure {
                reason: FailureReason::ReleaseFailed,
                phase: Some(tovuk_types::DeployState::Deploying),
                exit_code: None,
                first_actionable_line: Some(format!("its resources could not be created: {}", error.0.message)),
                missing: Vec::new(),
                blockers: String::new(),
            };
            state.store().fail_release(deploy.id.as_str(), failure).await?;
            return Ok(None);
        }
    };
    Ok(release_of(deploy, env, resources).map(|release| with_host(state, release)))
}

/// A deploy with its config values as the runner takes it; `None` without an artifact.
fn release_of(
    deploy: DeployRecord,
    env: Vec<tovuk_store::SealedValue>,
    resources: Vec<tovuk_api_types::ReleaseResource>,
) -> Option<ClaimedRelease> {
    let (digest, _) = deploy.artifact.clone()?;
    Some(ClaimedRelease {
        host: String::new(),
        resources,
        built_by: built_by(&deploy),
        deploy_id: deploy.id.to_string(),
        app: deploy.app_name,
        app_id: deploy.app_id.to_string(),
        sha: deploy.sha,
        digest,
        env: env.into_iter().map(crate::env::sealed_view).collect(),
    })
}

fn with_host(state: &ControlState, release: ClaimedRelease) -> ClaimedRelease {
    let host = format!("{}.{}", release.app, state.config().base_domain);
    ClaimedRelease { host, ..release }
}

/// The deploy whose build sealed `deploy`'s artifact.
pub(crate) fn built_by(deploy: &DeployRecord) -> String {
    deploy.base_deploy_id.clone().unwrap_or_else(|| deploy.id.to_string())
}

async fn deploy_of(state: &ControlState, id: &str) -> Result<DeployRecord, ApiFailure> {
    state.store().find_deploy(id).await?.ok_or_else(|| {
        ApiFailure::new(ErrorCode::DeployNotFound, format!("there is no deploy `{}`", id.escape_debug()))
    })
}

pub(crate) fn instance_record(report: &InstanceReport) -> InstanceRecord {
    InstanceRecord {
        deploy_id: report.deploy_id.clone(),
        slot: i64::from(report.slot),
        status: report.status,
        pid: report.pid,
        port: report.port,
        started_at: report.started_at.clone(),
        restarts: report.restarts,
        last_exit_code: report.last_exit_code,
        last_exit_at: report.last_exit_at.clone(),
        upstream: report.upstream.map(|upstream| upstream.to_string()),
        netns: report.netns.as_ref().map(|netns| netns.display().to_string()),
        static_root: report.static_root.as_ref().map(|root| root.display().to_string()),
        reason: report.reason.clone(),
        process: report.process.clone(),
        updated_at: String::new(),
    }
}

pub(crate) fn instance_view(record: InstanceRecord) -> InstanceReport {
    InstanceReport {
        deploy_id: record.deploy_id,
        slot: u32::try_from(record.slot).unwrap_or(0),
        status: record.status,
        pid: record.pid,
        port: record.port,
        started_at: record.started_at,
        restarts: record.restarts,
        last_exit_code: record.last_exit_code,
        last_exit_at: record.last_exit_at,
        upstream: record.upstream.and_then(|upstream| upstream.parse().ok()),
        netns: record.netns.map(Into::into),
        static_root: record.static_root.map(Into::into),
        reason: record.reason,
        process: record.process,
    }
}

pub(crate) async fn claim(State(state): State<ControlState>) -> Result<Response, ApiFailure> {
    let deadline = tokio::time::Instant::now() + CLAIM_WAIT;
    loop {
        let wakeup = state.inner.release_wakeup.notified();
        if let Some(deploy) = state.store().claim_release().await? {
            tracing::info!(deploy_id = %deploy.id, app = %deploy.app_name, "release claimed");
            state.deploys_changed();
            let id = deploy.id.to_string();
            let has_artifact = deploy.artifact.is_some();
            return match claimed(&state, deploy).await? {
                Some(release) => Ok(Json(release).into_response()),
                None if has_artifact => Ok(StatusCode::NO_CONTENT.into_response()),
                None => {
                    let failure = tovuk_store::Failure {
                        reason: FailureReason::ArtifactMissing,
                        phase: Some(tovuk_types::DeployState::Deploying),
                        exit_code: None,
                        first_actionable_line: Some("the deploy has no artifact".into()),
                        missing: Vec::new(),
                        blockers: String::new(),
                    };
                    state.store().fail_release(&id, failure).await?;
                    Ok(StatusCode::NO_CONTENT.into_response())
                }
            };
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

pub(crate) async fn current(State(state): State<ControlState>) -> Result<Json<CurrentReleases>, ApiFailure> {
    // Asked every few seconds: a fixed number of queries, however many apps.
    let mut resources = state.store().all_resources().await?;
    let releases = state
        .store()
        .current_releases_with_config()
        .await?
        .into_iter()
        .filter_map(|(deploy, env)| {
            let records = resources.remove(deploy.app_id.as_str()).unwrap_or_default();
            let declared = crate::resources::declared_by(&deploy, &records);
            release_of(deploy, env, declared).map(|release| with_host(&state, release))
        })
        .collect();
    Ok(Json(CurrentReleases { releases }))
}

pub(crate) async fn live(
    State(state): State<ControlState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ReleaseLive>,
) -> Result<Json<ReleaseOutcome>, ApiFailure> {
    let deploy = deploy_of(&state, &id).await?;
    let went = state.store().go_live(&deploy, &instance_record(&request.instance)).await?;
    let superseded = went.superseded;
    if went.live {
        tracing::info!(deploy_id = %id, app = %deploy.app_name, superseded = ?superseded, "deploy running");
        // The rollback targets moved by one: the artifact that fell out of them can go.
        crate::retention::collect_soon(&state, deploy.app_id.as_str());
    } else {
        tracing::warn!(deploy_id = %id, app = %deploy.app_name, "deploy ended before it could go live");
    }
    let route_version = state.republish_routes().await?;
    state.inner.release_wakeup.notify_waiters();
    state.deploys_changed();
    Ok(Json(ReleaseOutcome { live: went.live, superseded, previous: went.previous, route_version }))
}

/// `POST /internal/v1/releases/{id}/settled`: the release stayed healthy for
/// `[health] min_healthy`; what served before it is superseded.
pub(crate) async fn settled(
    State(state): State<ControlState>,
    Path(id): Path<String>,
) -> Result<Json<ReleaseSettled>, ApiFailure> {
    let superseded = state.store().settle(&id).await?;
    if !superseded.is_empty() {
        tracing::info!(deploy_id = %id, ?superseded, "deploy settled; the deploys before it are superseded");
        state.deploys_changed();
    }
    Ok(Json(ReleaseSettled { superseded }))
}

/// `POST /internal/v1/releases/{id}/rolled-back`: the release crashed or failed its health
/// before it settled. It ends `failed` and the deploy before it is current again, in one
/// transaction with the route.
pub(crate) async fn rolled_back(
    State(state): State<ControlState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ReleaseFailed>,
) -> Result<Json<RolledBack>, ApiFailure> {
    let current = state.store().roll_back(&id, failure_record(request.failure)).await?;
    match &current {
        Some(current) => tracing::warn!(deploy_id = %id, %current, "deploy crashed after going live; rolled back"),
        None => tracing::warn!(deploy_id = %id, "deploy crashed after going live; nothing to roll back to"),
    }
    let route_version = state.republish_routes().await?;
    state.deploys_changed();
    Ok(Json(RolledBack { current, route_version }))
}

pub(crate) async fn failed(
    State(state): State<ControlState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ReleaseFailed>,
) -> Result<StatusCode, ApiFailure> {
    state.store().fail_release(&id, failure_record(request.failure)).await?;
    tracing::info!(deploy_id = %id, "deploy failed to go live; the current deploy keeps serving");
    state.inner.release_wakeup.notify_waiters();
    state.deploys_changed();
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn instance(
    State(state): State<ControlState>,
    ApiJson(report): ApiJson<InstanceReport>,
) -> Result<StatusCode, ApiFailure> {
    let deploy = deploy_of(&state, &report.deploy_id).await?;
    state.store().record_instance(&deploy, &instance_record(&report)).await?;
    state.republish_routes().await?;
    Ok(StatusCode::NO_CONTENT)
}
