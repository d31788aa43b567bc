//! Apps: create (with a deploy token shown once), list, show.

use crate::auth::{Caller, app_for};
use crate::tokens::token_view;
use crate::{ApiFailure, ControlState};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use tovuk_api_types::{App, AppList, CreateAppRequest, CreatedApp, CreatedToken, ErrorCode};
use tovuk_store::AppRecord;
use tovuk_types::AppName;

/// The base URL users reach this API at: the configured public URL, else the request's `Host`.
fn base_url(state: &ControlState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.inner.public_url {
        return url.clone();
    }
    let host = headers.get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or("127.0.0.1:7700");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .filter(|proto| *proto == "https")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

pub(crate) fn app_view(app: AppRecord, base_url: &str) -> App {
    App {
        git_remote: format!("{base_url}/git/{}.git", app.name),
        id: app.id.to_string(),
        name: app.name,
        deploy_branch: app.deploy_branch,
        created_at: app.created_at,
    }
}

pub(crate) fn invalid_json(rejection: JsonRejection) -> ApiFailure {
    ApiFailure::new(
        ErrorCode::InvalidRequest,
        format!("the request body is not what this route takes: {}", rejection.body_text()),
    )
}

pub(crate) async fn create(
    State(state): State<ControlState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Json<CreateAppRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedApp>), ApiFailure> {
    caller.require_admin("creating an app")?;
    let Json(request) = body.map_err(invalid_json)?;
    let name = AppName::parse(&request.name).map_err(|error| {
        ApiFailure::new(
            ErrorCode::InvalidName,
            format!("`{}` cannot be an app name: {error}", request.name.escape_debug()),
        )
        .next("tovuk app create my-api")
    })?;
    let (app, token, secret) = state.store().create_app(&name).await?;
    tracing::info!(app = %app.name, app_id = %app.id, "app created");
    let base = base_url(&state, &headers);
    Ok((
        StatusCode::CREATED,
        Json(CreatedApp { app: app_view(app, &base), deploy_token: CreatedToken { token: token_view(token), secret } }),
    ))
}

pub(crate) async fn list(
    State(state): State<ControlState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Json<AppList>, ApiFailure> {
    let base = base_url(&state, &headers);
    let apps = state
        .store()
        .list_apps()
        .await?
        .into_iter()
        .filter(|app| caller.may_act_on(app.id.as_str()))
        .map(|app| app_view(app, &base))
        .collect();
    Ok(Json(AppList { apps }))
}

pub(crate) async fn show(
    State(state): State<ControlState>,
    caller: Caller,
    headers: HeaderMap,
    Path(name_or_id): Path<String>,
) -> Result<Json<App>, ApiFailure> {
    let app = app_for(&state, &caller, &name_or_id).await?;
    Ok(Json(app_view(app, &base_url(&state, &headers))))
}
