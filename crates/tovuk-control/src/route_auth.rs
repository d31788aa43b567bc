//! The edge auth each routed release runs with: the auth routes its deploy recorded, and its
//! `TOVUK_AUTH_*` config of the revision the release started with (a config changed since
//! waits for the next release, and a release keeps its own when the config is removed).
//! Decided by [`crate::auth_readiness::evaluate`], the function the deploy gate uses; a
//! release whose auth config does not pass (the gate saw another revision) is routed down,
//! never served without its auth.

use crate::auth_readiness::{AuthSettings, evaluate};
use crate::{ApiFailure, ControlState};
use std::collections::HashMap;
use std::sync::Mutex;
use tovuk_api_types::{DeployShape, RouteAuth, RouteAuthRule};
use tovuk_manifest::{Route, RouteAuth as Auth};
use tovuk_store::RouteRow;

/// What a release's routes need: nothing, its auth, or why it cannot be served.
pub(crate) type ReleaseAuth = Option<Result<RouteAuth, String>>;

/// Each routed deploy's edge auth, worked out once: a deploy's config revision never changes.
#[derive(Default)]
pub(crate) struct AuthBook {
    by_deploy: Mutex<HashMap<String, ReleaseAuth>>,
}

impl AuthBook {
    /// Forgets the deploys no longer routed.
    pub(crate) fn keep(&self, rows: &[RouteRow]) {
        if let Ok(mut known) = self.by_deploy.lock() {
            known.retain(|deploy_id, _| rows.iter().any(|row| row.deploy_id == *deploy_id));
        }
    }
}

/// The routes a deploy recorded in its plan, as the manifest has them.
fn recorded_routes(plan: Option<&DeployShape>) -> Vec<Route> {
    plan.map(|plan| plan.routes.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|route| Route {
            path: route.path.clone(),
            auth: Auth::from_name(&route.auth).unwrap_or(Auth::Session),
            capability: route.capability.clone(),
        })
        .collect()
}

/// The routes the app's running deploy recorded (none when nothing runs).
pub(crate) async fn running_routes(
    state: &ControlState,
    app_id: &tovuk_types::AppId,
) -> Result<Vec<Route>, ApiFailure> {
    let Some(deploy_id) = state.store().current_deploy_id(app_id.as_str()).await? else { return Ok(Vec::new()) };
    let Some(deploy) = state.store().find_deploy(&deploy_id).await? else { return Ok(Vec::new()) };
    let plan = deploy.plan.as_deref().and_then(|plan| serde_json::from_str::<DeployShape>(plan).ok());
    Ok(recorded_routes(plan.as_ref()))
}

/// The edge auth of the release `row` routes to.
pub(crate) async fn release_auth(
    state: &ControlState,
    book: &AuthBook,
    row: &RouteRow,
    plan: Option<&DeployShape>,
) -> Result<ReleaseAuth, ApiFailure> {
    let routes = recorded_routes(plan);
    if routes.iter().all(|route| route.auth == Auth::None) {
        return Ok(None);
    }
    if let Some(known) = book.by_deploy.lock().ok().and_then(|known| known.get(&row.deploy_id).cloned()) {
        return Ok(known);
    }
    let (Some(deploy), Some(app_id)) =
        (state.store().find_deploy(&row.deploy_id).await?, tovuk_types::AppId::parse(&row.app_id))
    else {
        return Ok(Some(Err("the release's deploy is not in the store".to_owned())));
    };
    // One app's config that cannot be opened takes that app down, not the whole table.
    let values = match crate::plan::auth_values_at(state, &app_id, deploy.config_rev).await {
        Ok(values) => values,
        Err(failure) => return Ok(Some(Err(failure.0.message))),
    };
    let auth = match evaluate(&row.app_name, &routes, &values) {
        Ok(Some(settings)) => Ok(route_auth(state, &row.app_id, &settings, &routes)),
        Ok(None) => return Ok(None),
        Err(blockers) => Err(format!(
            "the release's auth config is incomplete ({}): see tovuk preflight {}",
            blockers.iter().map(|blocker| blocker.name.as_str()).collect::<Vec<_>>().join(", "),
            row.app_name
        )),
    };
    if let Ok(mut known) = book.by_deploy.lock() {
        known.insert(row.deploy_id.clone(), Some(auth.clone()));
    }
    Ok(Some(auth))
}

fn route_auth(state: &ControlState, app_id: &str, settings: &AuthSettings, routes: &[Route]) -> RouteAuth {
    let cookie_key = state.secrets_key().derive("edge-auth session cookies", app_id);
    RouteAuth {
        mode: settings.mode.as_str().to_owned(),
        issuer: settings.issuer.clone(),
        client_id: settings.client_id.clone(),
        client_secret: settings.client_secret.as_ref().map(|secret| secret.to_string()),
        audience: Some(settings.audience.clone()).filter(|audience| !audience.is_empty()),
        capability_claim: settings.capability_claim.clone(),
        csrf_mode: settings.csrf.as_str().to_owned(),
        cookie_key: hex::encode(cookie_key.as_slice()),
        rules: routes
            .iter()
            .map(|route| RouteAuthRule {
                path: route.path.clone(),
                auth: route.auth.as_str().to_owned(),
                capability: route.capability.clone(),
            })
            .collect(),
    }
}
