//! Apps: create (with a repository and a deploy token shown once), list, show, update.

use crate::auth::{Caller, app_for};
use crate::http::ApiJson;
use crate::tokens::token_view;
use crate::views::{app_view, base_url};
use crate::{ApiFailure, ControlState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use tovuk_api_types::{App, AppList, CreateAppRequest, CreatedApp, CreatedToken, ErrorCode, UpdateAppRequest};
use tovuk_types::{AppName, validate_branch_name};

fn check_branch(branch: &str) -> Result<(), ApiFailure> {
    validate_branch_name(branch)
        .map_err(|message| ApiFailure::new(ErrorCode::InvalidRequest, message).next("--deploy-branch main"))
}

pub(crate) async fn create(
    State(state): State<ControlState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(request): ApiJson<CreateAppRequest>,
) -> Result<(StatusCode, Json<CreatedApp>), ApiFailure> {
    caller.require_admin("creating an app")?;
    let name = AppName::parse(&request.name).map_err(|error| {
        ApiFailure::new(
            ErrorCode::InvalidName,
            format!("`{}` cannot be an app name: {error}", request.name.escape_debug()),
        )
        .next("tovuk app create my-api")
    })?;
    let branch = request.deploy_branch.as_deref().unwrap_or("main");
    check_branch(branch)?;
    let (app, token, secret) = state.store().create_app(&name, branch).await?;
    // The repository comes with the app: if it cannot be made, the app is not made either.
    if let Err(error) = state.repos().create(&app.name, &app.deploy_branch).await {
        state.repos().remove(&app.name);
        state.store().remove_app(&app.id).await?;
        tracing::error!(app = %app.name, %error, "cannot create the app's repository");
        return Err(ApiFailure::new(
            ErrorCode::Internal,
            "the app's git repository could not be created; nothing was kept",
        )
        .next("tovuk status"));
    }
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

pub(crate) async fn update(
    State(state): State<ControlState>,
    caller: Caller,
    headers: HeaderMap,
    Path(name_or_id): Path<String>,
    ApiJson(request): ApiJson<UpdateAppRequest>,
) -> Result<Json<App>, ApiFailure> {
    caller.require_admin("changing an app's settings")?;
    let app = app_for(&state, &caller, &name_or_id).await?;
    let mut app = app;
    if let Some(branch) = &request.deploy_branch {
        check_branch(branch)?;
        app = state.store().set_deploy_branch(&app.id, branch).await?.unwrap_or(app);
        tracing::info!(app = %app.name, deploy_branch = %branch, "deploy branch changed");
    }
    Ok(Json(app_view(app, &base_url(&state, &headers))))
}

/// `GET /v1/apps/{app}/status`: the deploy and instance serving the app now.
pub(crate) async fn status(
    State(state): State<ControlState>,
    caller: Caller,
    Path(name_or_id): Path<String>,
) -> Result<Json<tovuk_api_types::AppStatus>, ApiFailure> {
    let app = app_for(&state, &caller, &name_or_id).await?;
    let name = app.name.clone();
    let mut status = app_status(&state, app).await?;
    let manifest = current_manifest(&state, &name, &status).await;
    status.runtime_evidence = manifest.as_ref().map(|manifest| with_edge_auth(&state, &name, evidence(manifest)));
    Ok(Json(status))
}

/// `GET /v1/apps/{app}/inspect`: the status and the runtime evidence block.
pub(crate) async fn inspect(
    State(state): State<ControlState>,
    caller: Caller,
    Path(name_or_id): Path<String>,
) -> Result<Json<tovuk_api_types::AppInspection>, ApiFailure> {
    let app = app_for(&state, &caller, &name_or_id).await?;
    let app_name = app.name.clone();
    let status = app_status(&state, app).await?;
    let manifest = current_manifest(&state, &app_name, &status).await;
    let runtime_evidence = manifest.as_ref().map(|manifest| with_edge_auth(&state, &app_name, evidence(manifest)));
    let limits = manifest.as_ref().map(|manifest| {
        let limits = manifest.limits();
        tovuk_api_types::InstanceLimits {
            memory_mb: limits.memory_mb_or_default(),
            cpu_cores: limits.cpu_cores_or_default(),
            pids: tovuk_types::instance_limits::INSTANCE_PIDS,
            tmp_mb: tovuk_types::instance_limits::tmp_mb(limits.memory_mb_or_default()),
            data_mb: limits.data_mb_or_default(),
            enforced: state.config().enforced_limits.clone(),
        }
    });
    Ok(Json(tovuk_api_types::AppInspection { status, runtime_evidence, limits }))
}

/// The contract the live deploy of `app` runs under.
async fn current_manifest(
    state: &ControlState,
    app: &str,
    status: &tovuk_api_types::AppStatus,
) -> Option<tovuk_manifest::Manifest> {
    let deploy = status.current_deploy.as_ref()?;
    let repo = state.repos().path(app);
    let check = tovuk_git::check_commit(&repo, &tovuk_git::ObjectEnv::default(), &deploy.source.sha, app).await.ok();
    check.and_then(|check| check.manifest)
}

/// What serves `app` now: the runtime evidence of its live deploy.
pub(crate) async fn current_evidence(
    state: &ControlState,
    app: tovuk_store::AppRecord,
) -> Result<Option<tovuk_api_types::RuntimeEvidence>, ApiFailure> {
    let name = app.name.clone();
    let status = app_status(state, app).await?;
    let manifest = current_manifest(state, &name, &status).await;
    Ok(manifest.as_ref().map(|manifest| with_edge_auth(state, &name, evidence(manifest))))
}

/// The auth fields of `evidence` as the router enforces them: from the edge auth the
/// published route table gives it for `app` (none when it gives none).
fn with_edge_auth(
    state: &ControlState,
    app: &str,
    mut evidence: tovuk_api_types::RuntimeEvidence,
) -> tovuk_api_types::RuntimeEvidence {
    let table = state.route_feed().borrow().clone();
    let Some(auth) = table.routes.iter().find(|entry| entry.app == app).and_then(|entry| entry.auth.as_ref()) else {
        return evidence;
    };
    evidence.auth_mode = auth.mode.clone();
    evidence.csrf_mode = auth.csrf_mode.clone();
    evidence.token_support = format!("enabled: bearer JWTs signed by {}'s keys (JWKS)", auth.issuer);
    evidence.capability_source = auth.capability_claim.clone().unwrap_or_else(|| "none".to_owned());
    evidence.provider_summary = match (&auth.client_id, auth.mode.as_str()) {
        (Some(client), "oidc") => format!("issuer {}, client {client}", auth.issuer),
        _ => {
            format!("issuer {}, audience {} (bearer tokens only)", auth.issuer, auth.audience.as_deref().unwrap_or("-"))
        }
    };
    // The router answers plain HTTP: its cookies go without `Secure` (see docs/auth.md).
    evidence.cookie_security = match auth.mode.as_str() {
        "oidc" => "HttpOnly, SameSite=Lax, Path=/ (no Secure: the router serves plain HTTP)".to_owned(),
        _ => "none (no sessions in jwt mode)".to_owned(),
    };
    evidence.auth_store = "the router's session store (<data>/resources/sessions.db)".to_owned();
    evidence
}

/// What actually serves traffic, from the contract the live deploy runs under; the auth
/// fields say `none`/`disabled` until [`with_edge_auth`] fills them from what the router enforces.
fn evidence(manifest: &tovuk_manifest::Manifest) -> tovuk_api_types::RuntimeEvidence {
    use tovuk_manifest::AppKind;
    let (backend, main_class, route_count) = match manifest.kind() {
        AppKind::Static => ("tovuk router: static files from the release".to_owned(), String::new(), 1),
        AppKind::Worker => (
            "tovuk runner: sandboxed process (bubblewrap), no HTTP route".to_owned(),
            manifest.run_command().unwrap_or_default().to_owned(),
            0,
        ),
        AppKind::Web => (
            "tovuk runner: sandboxed process (bubblewrap) behind the tovuk router (HTTP/1.1)".to_owned(),
            manifest.run_command().unwrap_or_default().to_owned(),
            manifest.routes().len().max(1) as u64,
        ),
    };
    let none = || "none".to_owned();
    tovuk_api_types::RuntimeEvidence {
        backend,
        main_class,
        route_count,
        auth_mode: none(),
        csrf_mode: "disabled".to_owned(),
        token_support: "disabled".to_owned(),
        capability_source: none(),
        provider_summary: none(),
        cookie_security: none(),
        auth_store: none(),
    }
}

async fn app_status(
    state: &ControlState,
    app: tovuk_store::AppRecord,
) -> Result<tovuk_api_types::AppStatus, ApiFailure> {
    let current = match state.store().current_deploy_id(app.id.as_str()).await? {
        Some(id) => state.store().find_deploy(&id).await?,
        None => None,
    };
    let instances: Vec<_> = match &current {
        Some(deploy) => state
            .store()
            .find_instances(deploy.id.as_str())
            .await?
            .into_iter()
            .map(crate::releases::instance_view)
            .collect(),
        None => Vec::new(),
    };
    Ok(tovuk_api_types::AppStatus {
        service_url: service_url(state, &app.name),
        app: app.name,
        current_deploy: current.map(crate::views::deploy_view),
        instance: instances.first().cloned(),
        instances,
        runtime_evidence: None,
    })
}

/// Where an app answers through the router.
pub(crate) fn service_url(state: &ControlState, app: &str) -> String {
    let port = state.config().router_addr.rsplit(':').next().unwrap_or("8080");
    format!("http://{app}.{}:{port}/", state.config().base_domain)
}
