//! Secrets and config over HTTP: the change and restart routes (the operations live in
//! `config_release`), metadata-only listing and history. Values are sealed with the
//! master key and never leave in a response; the builder and runner get them sealed and
//! open them themselves.

use crate::auth::{Caller, app_for};
use crate::views::{blockers, deploy_view};
use crate::{ApiFailure, ControlState};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use tovuk_api_types::{
    EnvChange, EnvChangeRequest, EnvChangeResult, EnvHistory, EnvList, EnvVar, ErrorCode, MissingConfig, SealedEnvVar,
    TokenMention,
};
use tovuk_store::{AppRecord, ConfigChange, SealedValue, TokenRef};

/// How many changes `tovuk env history` shows.
const HISTORY_LIMIT: u32 = 200;

pub(crate) fn sealed_view(value: SealedValue) -> SealedEnvVar {
    SealedEnvVar {
        name: value.name,
        version: value.version,
        key_id: value.key_id,
        nonce: hex::encode(value.nonce),
        ciphertext: hex::encode(value.ciphertext),
    }
}

fn token_view(token: TokenRef) -> TokenMention {
    TokenMention { id: token.id, name: token.name }
}

pub(crate) fn change_view(change: ConfigChange) -> EnvChange {
    EnvChange {
        rev: change.rev,
        at: change.at,
        by: change.by.map(token_view),
        set: change.set,
        unset: change.unset,
        release_deploy_id: change.release_deploy_id,
    }
}

/// `PUT /v1/apps/{app}/env`: sets and unsets names as one revision, then (unless told not
/// to) starts a release of the current artifact with it.
pub(crate) async fn change(
    State(state): State<ControlState>,
    caller: Caller,
    Path(name_or_id): Path<String>,
    body: Result<Json<EnvChangeRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<EnvChangeResult>), ApiFailure> {
    let app = app_for(&state, &caller, &name_or_id).await?;
    // The parser's message can quote the body, and the body holds values: say only what is expected.
    let Json(request) = body.map_err(|_| {
        ApiFailure::new(
            ErrorCode::InvalidRequest,
            r#"the body is not an env change: send {"set": {"NAME": "value"}, "unset": ["NAME"], "restart": true}"#,
        )
        .next(format!("tovuk env set {} NAME=VALUE", app.name))
    })?;
    let result = crate::config_release::change_config(&state, &app, &caller, &request).await?;
    Ok((StatusCode::OK, Json(result)))
}

/// Which of `needs` are not set on `app` (all of them when the app does not exist yet),
/// each with the command that sets it: `missingConfig`.
pub(crate) async fn missing_config(
    state: &ControlState,
    app: Option<&AppRecord>,
    app_name: &str,
    needs: &[tovuk_store::ConfigNeed],
) -> Result<Vec<MissingConfig>, ApiFailure> {
    let set: Vec<String> = match app {
        Some(app) => state.store().list_config(&app.id).await?.into_iter().map(|var| var.name).collect(),
        None => Vec::new(),
    };
    let missing: Vec<_> = needs.iter().filter(|need| !set.contains(&need.name)).cloned().collect();
    Ok(blockers(&missing, app_name)
        .into_iter()
        .map(|blocker| MissingConfig { name: blocker.name, needed_by: blocker.needed_by, next: blocker.next })
        .collect())
}

/// `GET /v1/apps/{app}/env`: names and metadata, and what the latest deploy needs that is not set.
pub(crate) async fn list(
    State(state): State<ControlState>,
    caller: Caller,
    Path(name_or_id): Path<String>,
) -> Result<Json<EnvList>, ApiFailure> {
    let app = app_for(&state, &caller, &name_or_id).await?;
    let vars = state
        .store()
        .list_config(&app.id)
        .await?
        .into_iter()
        .map(|var| EnvVar {
            name: var.name,
            version: var.version,
            created_at: var.created_at,
            updated_at: var.updated_at,
            updated_by: var.updated_by.map(token_view),
        })
        .collect();
    // A config release carries its base's needs, so the newest deploy of any kind says them.
    let latest = state.store().list_deploys(&app.id, 1).await?.into_iter().next();
    let missing = match &latest {
        Some(deploy) => missing_config(&state, Some(&app), &app.name, &deploy.config_needs).await?,
        None => Vec::new(),
    };
    let config_rev = state.store().config_rev(&app.id).await?;
    Ok(Json(EnvList { app: app.name, config_rev, vars, missing }))
}

/// `GET /v1/apps/{app}/env/history`: who changed which names when, newest first.
pub(crate) async fn history(
    State(state): State<ControlState>,
    caller: Caller,
    Path(name_or_id): Path<String>,
) -> Result<Json<EnvHistory>, ApiFailure> {
    let app = app_for(&state, &caller, &name_or_id).await?;
    let changes = state.store().config_history(&app.id, HISTORY_LIMIT).await?.into_iter().map(change_view).collect();
    Ok(Json(EnvHistory { app: app.name, changes }))
}

/// `POST /v1/apps/{app}/restart`: the current artifact released again with the config as it is.
/// `POST /v1/apps/{app}/rollback`.
pub(crate) async fn rollback(
    State(state): State<ControlState>,
    caller: Caller,
    Path(name_or_id): Path<String>,
    crate::http::ApiJson(request): crate::http::ApiJson<tovuk_api_types::RollbackRequest>,
) -> Result<(StatusCode, Json<tovuk_api_types::RollbackResult>), ApiFailure> {
    let app = app_for(&state, &caller, &name_or_id).await?;
    // A deploy that served but fell out of the kept ones is refused saying so, not as unknown.
    crate::retention::refuse_removed_target(&state, &app, request.deploy_id.as_deref()).await?;
    let result = crate::config_release::rollback(&state, &app, &request).await?;
    Ok((StatusCode::CREATED, Json(result)))
}

pub(crate) async fn restart(
    State(state): State<ControlState>,
    caller: Caller,
    Path(name_or_id): Path<String>,
) -> Result<(StatusCode, Json<tovuk_api_types::Deploy>), ApiFailure> {
    let app = app_for(&state, &caller, &name_or_id).await?;
    let release = crate::config_release::restart(&state, &app).await?;
    Ok((StatusCode::CREATED, Json(deploy_view(release))))
}
