//! Deploys: list, show, cancel.

use crate::auth::{Caller, app_for};
use crate::views::deploy_view;
use crate::{ApiFailure, ControlState};
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use tovuk_api_types::{Deploy, DeployList, ErrorCode};
use tovuk_store::{DeployRecord, TransitionError, TransitionExtras};
use tovuk_types::DeployState;

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    limit: Option<u32>,
}

/// A deploy the caller may see; another app's deploy is 403 for an app-scoped token.
pub(crate) async fn deploy_for(state: &ControlState, caller: &Caller, id: &str) -> Result<DeployRecord, ApiFailure> {
    match state.store().find_deploy(id).await? {
        Some(deploy) if caller.may_act_on(deploy.app_id.as_str()) => Ok(deploy),
        Some(deploy) => Err(caller.forbidden_for(&deploy.app_name)),
        None => Err(ApiFailure::new(ErrorCode::DeployNotFound, format!("there is no deploy `{}`", id.escape_debug()))
            .next("tovuk deploy list APP")),
    }
}

pub(crate) async fn list(
    State(state): State<ControlState>,
    caller: Caller,
    Path(app): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<DeployList>, ApiFailure> {
    let app = app_for(&state, &caller, &app).await?;
    let limit = query.limit.unwrap_or(50).clamp(1, 1000);
    let deploys = state.store().list_deploys(&app.id, limit).await?.into_iter().map(deploy_view).collect();
    Ok(Json(DeployList { deploys }))
}

pub(crate) async fn show(
    State(state): State<ControlState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Deploy>, ApiFailure> {
    let deploy = deploy_for(&state, &caller, &id).await?;
    let instance = state.store().find_instance(deploy.id.as_str()).await?;
    let running = deploy.state == tovuk_types::DeployState::Running;
    let mut view = deploy_view(deploy.clone());
    crate::apply::add_report(&state, &deploy, &mut view).await?;
    // A stopped instance of a deploy that ended says nothing worth showing.
    view.instance = instance.filter(|_| running).map(crate::releases::instance_view);
    Ok(Json(view))
}

/// Cancels a deploy that is queued or building. A queued one is cancelled at once; a
/// build is cancelled in the store at once and its builder, told on its next report
/// (within half a second), kills the build's processes and removes its workspace.
pub(crate) async fn cancel(
    State(state): State<ControlState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Deploy>, ApiFailure> {
    let deploy = deploy_for(&state, &caller, &id).await?;
    if !cancellable(deploy.state) {
        return Err(cannot_cancel(&deploy));
    }
    let extras = TransitionExtras {
        final_build_status: (deploy.state != DeployState::Queued)
            .then_some(tovuk_api_types::FinalBuildStatus::Cancelled),
        ..TransitionExtras::default()
    };
    match state.store().transition_deploy_with(deploy.id.as_str(), deploy.state, DeployState::Cancelled, &extras).await
    {
        Ok(cancelled) => {
            tracing::info!(deploy_id = %cancelled.id, app = %cancelled.app_name, was = %deploy.state, "deploy cancelled");
            if deploy.state != DeployState::Queued {
                state.build_over(&cancelled);
            }
            state.deploys_changed();
            Ok(Json(deploy_view(cancelled)))
        }
        Err(TransitionError::Store(error)) => Err(error.into()),
        Err(TransitionError::NotFound(id)) => {
            Err(ApiFailure::new(ErrorCode::DeployNotFound, format!("there is no deploy `{id}`")))
        }
        Err(TransitionError::Illegal(_)) => {
            // It moved on between the read and the write: report where it is now.
            let now = deploy_for(&state, &caller, &id).await?;
            Err(cannot_cancel(&now))
        }
    }
}

fn cancellable(state: DeployState) -> bool {
    matches!(state, DeployState::Queued | DeployState::Building | DeployState::Typechecking | DeployState::Testing)
}

fn cannot_cancel(deploy: &DeployRecord) -> ApiFailure {
    let message = if deploy.state.is_terminal() {
        format!("deploy {} is already {}; there is nothing to cancel", deploy.id, deploy.state)
    } else {
        format!("deploy {} is {}; only a queued or building deploy can be cancelled", deploy.id, deploy.state)
    };
    ApiFailure::new(ErrorCode::InvalidState, message).next(format!("tovuk deploy show {}", deploy.id))
}

/// `POST /v1/deploys/{id}/retry`: a new deploy of the same source. The old deploy stays
/// as history, whatever state it ended in.
pub(crate) async fn retry(
    State(state): State<ControlState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(axum::http::StatusCode, Json<Deploy>), ApiFailure> {
    let deploy = deploy_for(&state, &caller, &id).await?;
    let repo = state.repos().path(&deploy.app_name);
    let manifest = tovuk_git::check_commit(&repo, &tovuk_git::ObjectEnv::default(), &deploy.sha, &deploy.app_name)
        .await
        .ok()
        .and_then(|check| check.manifest);
    let app = crate::auth::app_for(&state, &caller, deploy.app_id.as_str()).await?;
    let accepted = crate::accept::accept_source(
        &state,
        crate::accept::Source {
            app: &app,
            token_id: caller.token.id.to_string(),
            kind: deploy.source_kind,
            ref_name: deploy.ref_name.clone(),
            old_sha: None,
            sha: deploy.sha.clone(),
            forced: false,
            retry: true,
            manifest: manifest.as_ref(),
            warnings: Vec::new(),
            held_by_push: None,
        },
    )
    .await?;
    tracing::info!(deploy_id = %accepted.deploy.id, retry_of = %deploy.id, "deploy retried");
    Ok((axum::http::StatusCode::CREATED, Json(accepted.deploy)))
}
