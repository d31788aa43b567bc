//! Config changes and config releases: a change is sealed and stored as one revision,
//! and (unless deferred) starts a release of the current artifact with it; `tovuk app
//! restart` starts one with the config as it is. The runner is woken for either.

use crate::auth::Caller;
use crate::env::{change_view, missing_config};
use crate::views::deploy_view;
use crate::{ApiFailure, ControlState};
use tovuk_api_types::{EnvChangeRequest, EnvChangeResult, ErrorCode};
use tovuk_secrets::{SealContext, validate_name, validate_value};
use tovuk_store::{AppRecord, ChangeError, ChangeRequest, DeployRecord, RollbackOutcome, SealedValue};
use tovuk_types::DeployState;

/// Applies `request` to `app` whole, or changes nothing.
pub(crate) async fn change_config(
    state: &ControlState,
    app: &AppRecord,
    caller: &Caller,
    request: &EnvChangeRequest,
) -> Result<EnvChangeResult, ApiFailure> {
    check_request(request, &app.name)?;
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
    // The running release's routes need auth config the change would leave incomplete: the
    // change is kept, and the release keeps the config it runs with (the next deploy is
    // blocked until it is complete again).
    let kept_back = match request.restart {
        true => auth_blockers_after(state, app, &request.set, &unset).await?,
        false => Vec::new(),
    };
    let change = ChangeRequest {
        app_id: app.id.clone(),
        token_id: caller.token.id.to_string(),
        set: request.set.keys().cloned().collect(),
        unset,
        release: request.restart && kept_back.is_empty(),
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
    let mut next = next_after_change(state, app, outcome.release.as_ref(), request.restart).await?;
    if let Some(first) = kept_back.first() {
        next.insert(
            0,
            format!(
                "not released: the running release keeps its auth config, since {}; then: tovuk app restart {}",
                crate::auth_readiness::first_line(std::slice::from_ref(first)),
                app.name
            ),
        );
    }
    Ok(EnvChangeResult {
        app: app.name.clone(),
        change: change_view(outcome.change),
        release: outcome.release.map(deploy_view),
        next,
    })
}

/// The auth blockers the running release's routes would have with `set` and `unset` applied
/// to the app's config (none of either: as it is now).
async fn auth_blockers_after(
    state: &ControlState,
    app: &AppRecord,
    set: &std::collections::BTreeMap<String, String>,
    unset: &[String],
) -> Result<Vec<tovuk_api_types::ConfigBlocker>, ApiFailure> {
    let routes = crate::route_auth::running_routes(state, &app.id).await?;
    if crate::auth_readiness::auth_routes(&routes).next().is_none() {
        return Ok(Vec::new());
    }
    let mut values = crate::plan::auth_values(state, app).await?;
    values.retain(|name, _| !unset.contains(name));
    for (name, value) in set {
        if crate::auth_readiness::NAMES.contains(&name.as_str()) {
            values.insert(name.clone(), zeroize::Zeroizing::new(value.clone()));
        }
    }
    Ok(crate::auth_readiness::evaluate(&app.name, &routes, &values).err().unwrap_or_default())
}

/// Starts a release of the app's running artifact with the config as it is now.
pub(crate) async fn restart(state: &ControlState, app: &AppRecord) -> Result<DeployRecord, ApiFailure> {
    let blockers = auth_blockers_after(state, app, &Default::default(), &[]).await?;
    if let Some(first) = blockers.first() {
        return Err(ApiFailure::new(
            ErrorCode::InvalidState,
            format!(
                "not restarted: {}; the running release keeps the auth config it runs with",
                crate::auth_readiness::first_line(&blockers)
            ),
        )
        .next(first.next.clone()));
    }
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
    Ok(release)
}

/// Releases an earlier deploy's artifact again, without building: `tovuk rollback`.
pub(crate) async fn rollback(
    state: &ControlState,
    app: &AppRecord,
    request: &tovuk_api_types::RollbackRequest,
) -> Result<tovuk_api_types::RollbackResult, ApiFailure> {
    if let Some(target) = &request.deploy_id
        && tovuk_types::DeployId::parse(target).is_none()
    {
        return Err(ApiFailure::new(ErrorCode::InvalidRequest, format!("`{target}` is not a deploy id"))
            .next(format!("tovuk deploy list {}", app.name)));
    }
    let outcome = state.store().start_rollback(&app.id, request.deploy_id.as_deref(), request.current_config).await?;
    let (deploy, target) = match outcome {
        RollbackOutcome::Started { deploy, target } => (*deploy, target),
        RollbackOutcome::NothingRunning => {
            return Err(ApiFailure::new(
                ErrorCode::InvalidState,
                format!("`{}` has no running deploy to roll back from", app.name),
            )
            .next(format!("tovuk deploy list {}", app.name)));
        }
        RollbackOutcome::NoTarget => {
            let what = match &request.deploy_id {
                Some(target) => format!("`{target}` is not an earlier deploy of `{}` that served", app.name),
                None => format!("`{}` has no earlier deploy that served to roll back to", app.name),
            };
            return Err(ApiFailure::new(ErrorCode::InvalidState, what)
                .next(format!("pick one marked superseded in: tovuk deploy list {}", app.name)));
        }
    };
    tracing::info!(app = %app.name, deploy_id = %deploy.id, %target, "rollback requested");
    state.release_ready();
    state.deploys_changed();
    let mut not_reverted = vec![
        "resource data (SQLite, object storage, KV) stays as it is now".to_owned(),
        "database migrations are not undone; the release phase of the rolled-back code runs again".to_owned(),
    ];
    if request.current_config {
        not_reverted.push("config: the current config is used (--current-config)".to_owned());
    }
    let next = vec![format!("tovuk deploy follow {}", deploy.id)];
    Ok(tovuk_api_types::RollbackResult {
        app: app.name.clone(),
        deploy: deploy_view(deploy),
        target,
        target_config: !request.current_config,
        not_reverted,
        next,
    })
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
