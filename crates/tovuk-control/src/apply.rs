//! The manifest apply report: what a deploy's contract asks of the platform (its resources,
//! bindings and routes) and where each part stands, shown with the deploy (`tovuk deploy
//! show`, the answer to a push or an upload). Read from what the platform holds: the
//! resources' records, the apps bindings call, the routes the deploy recorded.

use crate::{ApiFailure, ControlState};
use tovuk_api_types::{ApplyItem, ApplyReport, ApplyRoute, Deploy, FailureReason};
use tovuk_store::{DeployRecord, SERVICE_BINDING};
use tovuk_types::DeployState;

/// The failures that mean the deploy was held back before building, for what it needs.
const BLOCKED: [FailureReason; 5] = [
    FailureReason::MissingConfig,
    FailureReason::AuthNotReady,
    FailureReason::BindingUnavailable,
    FailureReason::UnsupportedByPlatform,
    FailureReason::CapReached,
];

/// `deploy`'s apply report, set on its `view`.
pub(crate) async fn add_report(
    state: &ControlState,
    deploy: &DeployRecord,
    view: &mut Deploy,
) -> Result<(), ApiFailure> {
    let blocked = view.failure.as_ref().is_some_and(|failure| BLOCKED.contains(&failure.reason));
    let records = state.store().app_resources(deploy.app_id.as_str()).await?;
    let mut addons = Vec::new();
    let mut bindings = Vec::new();
    for declared in &deploy.resources {
        let record = records.iter().find(|record| record.kind == declared.kind && record.binding == declared.binding);
        if declared.kind == SERVICE_BINDING {
            let service = declared.service.clone().unwrap_or_default();
            let status = binding_status(state, &deploy.app_name, &service).await?;
            bindings.push(ApplyItem {
                kind: declared.kind.clone(),
                binding: declared.binding.clone(),
                service: Some(service),
                status,
            });
            continue;
        }
        let status = match record {
            Some(record) if record.created_by == deploy.id.as_str() => "created",
            Some(_) => "existing",
            // Made when the deploy is first released.
            None if blocked || deploy.state == DeployState::Failed => "not created",
            None => "pending",
        };
        addons.push(ApplyItem {
            kind: declared.kind.clone(),
            binding: declared.binding.clone(),
            service: declared.service.clone(),
            status: status.to_owned(),
        });
    }
    // What the app holds that this contract does not declare: kept with its data, not given
    // to this release (an add-on is given to every release).
    for record in records.iter().filter(|record| record.kind != SERVICE_BINDING) {
        let declared = deploy.resources.iter().any(|d| d.kind == record.kind && d.binding == record.binding);
        if !declared {
            let status = if record.addon { "existing (add-on)" } else { "detached" };
            addons.push(ApplyItem {
                kind: record.kind.clone(),
                binding: record.binding.clone(),
                service: None,
                status: status.to_owned(),
            });
        }
    }
    let route_status = match deploy.state {
        _ if blocked => "blocked",
        DeployState::Running => "serving",
        DeployState::Failed | DeployState::Cancelled | DeployState::Superseded => "not serving",
        _ => "pending",
    };
    let routes = view
        .plan
        .as_ref()
        .map(|plan| plan.routes.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|route| ApplyRoute { path: route.path, auth: route.auth, status: route_status.to_owned() })
        .collect();
    let readiness = if blocked { "blocked" } else { "ready" };
    view.apply = Some(ApplyReport { addons, bindings, routes, readiness: readiness.to_owned() });
    Ok(())
}

/// Whether the app a binding calls can take its calls now.
async fn binding_status(state: &ControlState, app: &str, service: &str) -> Result<String, ApiFailure> {
    if service == app {
        return Ok("ready".to_owned());
    }
    Ok(match state.store().find_app(service).await? {
        None => format!("blocked: there is no app `{service}` (tovuk app create {service})"),
        Some(callee) if state.store().current_deploy_id(callee.id.as_str()).await?.is_none() => {
            format!("blocked: `{service}` has nothing running (tovuk deploy --app {service})")
        }
        Some(_) => "ready".to_owned(),
    })
}
