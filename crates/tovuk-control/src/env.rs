//! Secrets and config: set and unset as one change, metadata-only listing, history, and
//! `tovuk app restart`. Values are sealed here with the master key and never leave in a
//! response; the builder and runner get them sealed and open them themselves.

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
use tovuk_secrets::{SealContext, validate_name, validate_value};
use tovuk_store::{AppRecord, ChangeError, ChangeRequest, ConfigChange, DeployRecord, SealedValue, TokenRef};
use tovuk_types::DeployState;

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

fn change_view(change: ConfigChange) -> EnvChange {
    EnvChange {
        rev: change.rev,
        at: change.at,
        by: change.by.map(token_view),
        set: change.set,
        unset: change.unset,
        release_deploy_id: change.release_deploy_id,
    }
}

fn invalid(message: impl Into<String>, app: &str) -> ApiFailure {
    ApiFailure::new(ErrorCode::InvalidConfig, message).next(format!("tovuk env list {app}"))
}

/// Every name and value checked before anything is stored: a change applies whole or not at all.
fn check_request(request: &EnvChangeRequest, app: &str) -> Result<(), ApiFailure> {
    if request.set.is_empty() && request.unset.is_empty() {
        return Err(ApiFailure::new(ErrorCode::InvalidRequest, "the change sets and unsets nothing")
            .next(format!("tovuk env set {app} NAME=VALUE")));
    }
    for (name, value) in &request.set {
        validate_name(name).map_err(|error| invalid(error.to_string(), app))?;
        validate_value(name, value).map_err(|error| invalid(error.to_string(), app))?;
        if request.unset.contains(name) {
            return Err(invalid(format!("`{name}` is both set and unset in one change; do one or the other"), app));
        }
    }
    for name in &request.unset {
        validate_name(name).map_err(|error| invalid(error.to_string(), app))?;
    }
    Ok(())
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
    check_request(&request, &app.name)?;
    let key = state.secrets_key();
    let app_id = app.id.to_string();
    let mut seal = |name: &str, version: i64| -> Result<SealedValue, String> {
        let value = request.set.get(name).ok_or_else(|| format!("no value for `{name}`"))?;
        let sealed =
            key.seal(&SealContext { app_id: &app_id, name, version }, value).map_err(|error| error.to_string())?;
        Ok(SealedValue {
            name: name.to_owned(),
            version,
            key_id: sealed.key_id,
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
        })
    };
    // A name unset twice in one change is unset once.
    let mut unset = request.unset.clone();
    unset.sort();
    unset.dedup();
    let change = ChangeRequest {
        app_id: app.id.clone(),
        token_id: caller.token.id.to_string(),
        set: request.set.keys().cloned().collect(),
        unset,
        release: request.restart,
    };
    let outcome = state.store().apply_config_change(&change, &mut seal).await.map_err(|error| match error {
        ChangeError::NotSet(names) => ApiFailure::new(
            ErrorCode::ConfigNotSet,
            format!("{} not set on `{}`; nothing was changed", quoted(&names), app.name),
        )
        .next(format!("tovuk env list {}", app.name)),
        ChangeError::Seal(message) => {
            tracing::error!(app = %app.name, %message, "cannot seal a config value");
            ApiFailure::new(ErrorCode::SecretsUnavailable, "the value could not be sealed; nothing was changed")
                .next("tovuk status")
        }
        ChangeError::Store(error) => ApiFailure::from(error),
    })?;
    tracing::info!(
        app = %app.name,
        rev = outcome.change.rev,
        set = ?outcome.change.set,
        unset = ?outcome.change.unset,
        release = ?outcome.release.as_ref().map(|deploy| deploy.id.to_string()),
        "config changed"
    );
    if outcome.release.is_some() {
        state.release_ready();
        state.deploys_changed();
    }
    let next = next_after_change(&state, &app, outcome.release.as_ref(), request.restart).await?;
    Ok((
        StatusCode::OK,
        Json(EnvChangeResult {
            app: app.name,
            change: change_view(outcome.change),
            release: outcome.release.map(deploy_view),
            next,
        }),
    ))
}

fn quoted(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    if quoted.len() == 1 { format!("{} is", quoted[0]) } else { format!("{} are", quoted.join(", ")) }
}

/// What the user runs after a change: follow the release, retry a deploy the change
/// unblocked, or roll the change out later.
async fn next_after_change(
    state: &ControlState,
    app: &AppRecord,
    release: Option<&DeployRecord>,
    restart: bool,
) -> Result<Vec<String>, ApiFailure> {
    let mut next = Vec::new();
    if let Some(release) = release {
        next.push(format!("tovuk deploy follow {}", release.id));
    }
    let latest = state.store().list_deploys(&app.id, 1).await?.into_iter().next();
    if let Some(blocked) = latest.filter(|deploy| deploy.failure.as_ref().is_some_and(|f| !f.missing.is_empty())) {
        let missing = missing_config(state, Some(app), &app.name, &blocked.config_needs).await?;
        if missing.is_empty() {
            next.push(format!("tovuk deploy retry {} --follow", blocked.id));
        } else {
            next.extend(missing.into_iter().map(|missing| missing.next));
        }
    }
    if !restart && release.is_none() {
        next.push(format!("tovuk app restart {}", app.name));
    }
    Ok(next)
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
pub(crate) async fn restart(
    State(state): State<ControlState>,
    caller: Caller,
    Path(name_or_id): Path<String>,
) -> Result<(StatusCode, Json<tovuk_api_types::Deploy>), ApiFailure> {
    let app = app_for(&state, &caller, &name_or_id).await?;
    let Some(release) = state.store().restart_release(&app.id).await? else {
        let latest = state.store().list_deploys(&app.id, 1).await?.into_iter().next();
        let next = match latest {
            Some(deploy) if deploy.state == DeployState::Failed => format!("tovuk deploy show {}", deploy.id),
            _ => format!("tovuk deploy --app {}", app.name),
        };
        return Err(ApiFailure::new(
            ErrorCode::InvalidState,
            format!("`{}` has no running deploy to restart; deploy it first", app.name),
        )
        .next(next));
    };
    tracing::info!(app = %app.name, deploy_id = %release.id, "restart requested");
    state.release_ready();
    state.deploys_changed();
    Ok((StatusCode::CREATED, Json(deploy_view(release))))
}
