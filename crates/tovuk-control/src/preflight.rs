//! `tovuk preflight`: a workstation's contract checked against the app's config by the
//! functions the deploy gate uses (unset config, the routes' auth, bindings), listing every
//! blocker a deploy would hit, and what serves the app now. Changes nothing.

use crate::auth::{Caller, app_for};
use crate::http::ApiJson;
use crate::{ApiFailure, ControlState};
use axum::Json;
use axum::extract::{Path, State};
use tovuk_api_types::{ConfigBlocker, ErrorCode, Preflight, PreflightRequest};

/// `POST /v1/apps/{app}/preflight`.
pub(crate) async fn preflight(
    State(state): State<ControlState>,
    caller: Caller,
    Path(name_or_id): Path<String>,
    ApiJson(request): ApiJson<PreflightRequest>,
) -> Result<Json<Preflight>, ApiFailure> {
    let app = app_for(&state, &caller, &name_or_id).await?;
    let (manifest, report) = tovuk_manifest::check_bytes(tovuk_manifest::MANIFEST_FILE, request.manifest.as_bytes());
    let Some(manifest) = manifest.filter(|_| report.ok()) else {
        let mut failure = ApiFailure::new(ErrorCode::CheckFailed, "the contract check failed: nothing to preflight")
            .next("fix tovuk.toml, run `tovuk check`, then preflight again");
        failure.0.detail = serde_json::to_value(&report).ok();
        return Err(failure);
    };
    let mut blockers: Vec<ConfigBlocker> = Vec::new();

    let set: Vec<String> = state.store().list_config(&app.id).await?.into_iter().map(|var| var.name).collect();
    let needs = crate::plan::config_needs(Some(&manifest));
    let missing: Vec<_> = needs.into_iter().filter(|need| !set.contains(&need.name)).collect();
    blockers.extend(crate::views::blockers(&missing, &app.name));

    let values = crate::plan::auth_values(&state, &app).await?;
    if let Err(auth) = crate::auth_readiness::evaluate(&app.name, manifest.routes(), &values) {
        blockers.extend(auth);
    }
    let bindings = crate::plan::binding_blockers(&state, &app.name, &manifest).await?;
    blockers.extend(bindings.into_iter().map(|(blocker, _)| blocker));

    let readiness = if blockers.is_empty() { "ready" } else { "blocked" };
    let runtime_evidence = crate::apps::current_evidence(&state, app.clone()).await?;
    Ok(Json(Preflight { app: app.name, readiness: readiness.to_owned(), blockers, runtime_evidence }))
}
