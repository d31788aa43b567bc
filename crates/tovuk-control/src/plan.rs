//! The deploy plan: what a deploy of a contract enables, is billed on and is limited by,
//! what blocks it, and what it would cost. `tovuk deploy --dry-run` asks for it without
//! changing anything; every real deploy records the same shape, so the two can be compared.

use crate::auth::Caller;
use crate::env::missing_config;
use crate::http::ApiJson;
use crate::usage::{app_totals, app_usage, build_cap_reached, build_refusal};
use crate::{ApiFailure, ControlState};
use axum::Json;
use axum::extract::State;
use std::collections::BTreeMap;
use tovuk_api_types::FailureReason;
use tovuk_api_types::{
    AppLimits, AppUsage, BillingEstimate, ConfigBlocker, DeployPlan, DeployShape, ErrorCode, LineItem,
    PlanCapabilities, PlanFix, PlanLimits, PlanRequest, PlannedMeter, PlatformLimits,
};
use tovuk_manifest::{Capability, Manifest, ResourceKind};
use tovuk_pricing::Meter;
use tovuk_store::{AppRecord, CapRecord, ConfigNeed, Failure};
use zeroize::Zeroizing;

/// What a deploy of `manifest` enables, is billed on and is limited by, with the app's caps now.
pub(crate) fn shape(state: &ControlState, caps: &[CapRecord], manifest: &Manifest) -> DeployShape {
    let enabled: Vec<String> =
        manifest.capabilities().iter().map(|capability| capability.as_str().to_owned()).collect();
    let disabled = Capability::ALL
        .iter()
        .filter(|capability| !manifest.has_capability(**capability))
        .map(|capability| capability.as_str().to_owned())
        .collect();
    let pricing = state.pricing();
    let meter_plan = tovuk_pricing::meter_plan(manifest)
        .into_iter()
        .map(|meter| PlannedMeter {
            meter: meter.as_str().to_owned(),
            unit: meter.unit().to_owned(),
            unit_price: pricing.price(meter),
            incurred_by: meter.incurred_by_text(),
        })
        .collect();
    let config = state.config();
    let limits = manifest.limits();
    DeployShape {
        capabilities: PlanCapabilities { enabled, disabled },
        meter_plan,
        limits: PlanLimits {
            platform: PlatformLimits {
                max_push_bytes: config.max_push_bytes,
                max_upload_bytes: config.max_upload_bytes,
                max_unpacked_bytes: config.archive_limits.max_unpacked_bytes,
                max_upload_files: config.archive_limits.max_files,
                build_timeout_secs: manifest.build().timeout.as_secs(),
            },
            app: AppLimits {
                memory_mb: limits.memory_mb_or_default(),
                cpu_cores: limits.cpu_cores_or_default(),
                instances: limits.instances_or_default(),
                request_timeout_secs: limits.request_timeout_or_default().as_secs(),
                data_mb: limits.data_mb_or_default(),
            },
            caps: caps.iter().map(|cap| (cap.meter.clone(), cap.cap)).collect(),
        },
        routes: manifest
            .routes()
            .iter()
            .map(|route| tovuk_api_types::PlannedRoute {
                path: route.path.clone(),
                auth: route.auth.as_str().to_owned(),
                capability: route.capability.clone(),
            })
            .collect(),
    }
}

/// What a month of the expected load costs: `[expected]`, overridden per meter.
pub(crate) fn estimate(state: &ControlState, manifest: &Manifest, overrides: &BTreeMap<Meter, f64>) -> BillingEstimate {
    let pricing = state.pricing();
    let plan = tovuk_pricing::meter_plan(manifest);
    let quantities = tovuk_pricing::expected_quantities(manifest, overrides);
    let estimate = tovuk_pricing::estimate(pricing, &plan, &quantities);
    BillingEstimate {
        line_items: estimate
            .line_items
            .into_iter()
            .map(|item| LineItem {
                meter: item.meter.as_str().to_owned(),
                unit: item.unit.to_owned(),
                unit_price: item.unit_price,
                expected_quantity: item.expected_quantity,
                amount: item.amount,
            })
            .collect(),
        total: estimate.total,
        currency: estimate.currency,
        period: estimate.period,
    }
}

/// What a commit's `tovuk.toml` needs set before it may build: `[config] required`, then
/// `[build] secrets`; a name in both is listed once, as a build secret (the build reads it,
/// and the app gets every value anyway).
pub(crate) fn config_needs(manifest: Option<&Manifest>) -> Vec<ConfigNeed> {
    let Some(manifest) = manifest else { return Vec::new() };
    let build = &manifest.build().secrets;
    let runtime = manifest
        .required_config()
        .iter()
        .filter(|name| !build.contains(name))
        .map(|name| ConfigNeed { name: name.clone(), build: false });
    runtime.chain(build.iter().map(|name| ConfigNeed { name: name.clone(), build: true })).collect()
}

/// What is recorded with a new deploy besides its source: what it needs set, its plan, and
/// a refusal when a cap stops new builds.
pub(crate) struct SourceChecks {
    pub config_needs: Vec<ConfigNeed>,
    pub plan: Option<String>,
    pub refused: Option<Failure>,
}

pub(crate) async fn source_checks(
    state: &ControlState,
    app: &AppRecord,
    manifest: Option<&Manifest>,
) -> Result<SourceChecks, ApiFailure> {
    let caps = state.store().caps(Some(&app.id)).await?;
    let plan = manifest.and_then(|manifest| serde_json::to_string(&shape(state, &caps, manifest)).ok());
    let refused = match auth_refusal(state, app, manifest).await? {
        Some(refusal) => Some(refusal),
        None => match addon_refusal(state, app, manifest).await? {
            Some(refusal) => Some(refusal),
            None => match binding_refusal(state, app, manifest).await? {
                Some(refusal) => Some(refusal),
                None => build_refusal(state, app, &caps).await?,
            },
        },
    };
    Ok(SourceChecks { config_needs: config_needs(manifest), plan, refused })
}

/// The auth config names of `app`'s config, opened: its current values.
pub(crate) async fn auth_values(
    state: &ControlState,
    app: &AppRecord,
) -> Result<BTreeMap<String, Zeroizing<String>>, ApiFailure> {
    auth_values_at(state, &app.id, None).await
}

/// The auth config names of revision `rev` of an app's config (None: the current), opened.
pub(crate) async fn auth_values_at(
    state: &ControlState,
    app_id: &tovuk_types::AppId,
    rev: Option<i64>,
) -> Result<BTreeMap<String, Zeroizing<String>>, ApiFailure> {
    let key = state.secrets_key();
    let mut opened = BTreeMap::new();
    for value in state.store().config_values(app_id, rev).await? {
        if !crate::auth_readiness::NAMES.contains(&value.name.as_str()) {
            continue;
        }
        let context = tovuk_secrets::SealContext { app_id: app_id.as_str(), name: &value.name, version: value.version };
        let sealed = tovuk_secrets::Sealed { key_id: value.key_id, nonce: value.nonce, ciphertext: value.ciphertext };
        let plain = key.open(&context, &sealed).map_err(|error| {
            ApiFailure::new(ErrorCode::Internal, format!("the config value {} cannot be opened: {error}", value.name))
        })?;
        opened.insert(value.name, plain);
    }
    Ok(opened)
}

/// What a dry-run lists for the routes' auth: each readiness blocker.
async fn auth_fixes(
    state: &ControlState,
    app: Option<&AppRecord>,
    name: &str,
    manifest: &Manifest,
) -> Result<Vec<PlanFix>, ApiFailure> {
    if crate::auth_readiness::auth_routes(manifest.routes()).next().is_none() {
        return Ok(Vec::new());
    }
    let values = match app {
        Some(app) => auth_values(state, app).await?,
        None => BTreeMap::new(),
    };
    let blockers = crate::auth_readiness::evaluate(name, manifest.routes(), &values).err().unwrap_or_default();
    Ok(blockers
        .into_iter()
        .map(|blocker| PlanFix {
            kind: "auth".into(),
            message: format!(
                "{} needs {} to be {} ({})",
                blocker.needed_by, blocker.name, blocker.expected, blocker.observed
            ),
            line: None,
            next: blocker.next,
        })
        .collect())
}

/// Why a deploy of `manifest` may not build because of its routes' auth: the app's config
/// does not say how the router verifies callers (structured blockers).
async fn auth_refusal(
    state: &ControlState,
    app: &AppRecord,
    manifest: Option<&Manifest>,
) -> Result<Option<Failure>, ApiFailure> {
    let Some(manifest) = manifest else { return Ok(None) };
    if crate::auth_readiness::auth_routes(manifest.routes()).next().is_none() {
        return Ok(None);
    }
    let values = auth_values(state, app).await?;
    let Err(blockers) = crate::auth_readiness::evaluate(&app.name, manifest.routes(), &values) else { return Ok(None) };
    Ok(Some(Failure {
        reason: FailureReason::AuthNotReady,
        phase: Some(tovuk_types::DeployState::Queued),
        exit_code: None,
        first_actionable_line: Some(crate::auth_readiness::first_line(&blockers)),
        missing: Vec::new(),
        blockers: serde_json::to_string(&blockers).unwrap_or_default(),
    }))
}

/// Why a deploy of `manifest` cannot run yet: a `[[bindings]]` entry (or a State resource's
/// `service`) calls an app that does not exist or has nothing running (an app may always
/// call itself).
async fn binding_refusal(
    state: &ControlState,
    app: &AppRecord,
    manifest: Option<&Manifest>,
) -> Result<Option<Failure>, ApiFailure> {
    let Some(manifest) = manifest else { return Ok(None) };
    let found = binding_blockers(state, &app.name, manifest).await?;
    Ok(found.into_iter().next().map(|(_, line)| unavailable(line)))
}

/// Every binding of `manifest` to an app that cannot take its calls: a readiness blocker and
/// the line a refused deploy shows. The deploy gate and `tovuk preflight` both decide here.
pub(crate) async fn binding_blockers(
    state: &ControlState,
    app: &str,
    manifest: &Manifest,
) -> Result<Vec<(ConfigBlocker, String)>, ApiFailure> {
    let mut found = Vec::new();
    let states = manifest.resources().iter().filter(|resource| resource.kind == ResourceKind::State);
    let calls = states
        .filter_map(|resource| Some((resource.binding.as_str(), resource.service.as_deref()?, true)))
        .chain(manifest.bindings().iter().map(|binding| (binding.binding.as_str(), binding.service.as_str(), false)));
    for (binding, service, objects) in calls.filter(|(_, service, _)| *service != app) {
        let (entry, capability) = match objects {
            true => (format!("[[resources]] `{binding}` (kind state) uses the State objects of `{service}`"), "state"),
            false => (format!("[[bindings]] `{binding}` calls `{service}`"), "service-bindings"),
        };
        let blocker = |observed: &str, check: &str, next: String| ConfigBlocker {
            kind: "binding".into(),
            capability: capability.into(),
            name: binding.to_owned(),
            needed_by: entry.clone(),
            route: None,
            expected: if objects {
                format!("`{service}` runs a deploy that declares State objects `{binding}`")
            } else {
                format!("`{service}` exists and runs")
            },
            observed: observed.to_owned(),
            check: check.into(),
            next,
        };
        let Some(callee) = state.store().find_app(service).await? else {
            let line = format!(
                "{entry}, which is not an app on this platform: create and deploy it (tovuk app create {service}), \
                 or fix the name in tovuk.toml, then deploy again"
            );
            found.push((blocker("no such app", "service_exists", format!("tovuk app create {service}")), line));
            continue;
        };
        let current = match state.store().current_deploy_id(callee.id.as_str()).await? {
            Some(deploy_id) => state.store().find_deploy(&deploy_id).await?,
            None => None,
        };
        let Some(current) = current else {
            let line = format!(
                "{entry}, which has nothing running: deploy it (tovuk deploy --app {service}), then deploy this app again"
            );
            found.push((blocker("nothing running", "service_runs", format!("tovuk deploy --app {service}")), line));
            continue;
        };
        let declares = current.resources.iter().any(|declared| {
            declared.kind == ResourceKind::State.as_str() && declared.binding == binding && declared.service.is_none()
        });
        if objects && !declares {
            let line = format!(
                "{entry}, whose running deploy declares no State objects `{binding}`: add [[resources]] kind = \
                 \"state\" binding = \"{binding}\" to {service}'s tovuk.toml and deploy it, or fix `binding` here"
            );
            let next = format!("tovuk deploy --app {service}   (after adding the state resource `{binding}`)");
            found.push((blocker("its running deploy declares no such State objects", "service_declares", next), line));
        }
    }
    Ok(found)
}

/// A deploy refused before it builds because what it calls is not there: `line` says what.
fn unavailable(line: String) -> Failure {
    Failure {
        reason: FailureReason::BindingUnavailable,
        phase: Some(tovuk_types::DeployState::Queued),
        exit_code: None,
        first_actionable_line: Some(line),
        missing: Vec::new(),
        blockers: String::new(),
    }
}

/// Why a deploy of `manifest` is refused next to the app's add-ons: one of its resources
/// would set a variable an add-on sets.
async fn addon_refusal(
    state: &ControlState,
    app: &AppRecord,
    manifest: Option<&Manifest>,
) -> Result<Option<Failure>, ApiFailure> {
    let Some(manifest) = manifest.filter(|manifest| !manifest.resources().is_empty()) else { return Ok(None) };
    let records = state.store().app_resources(app.id.as_str()).await?;
    Ok(crate::addons::collision_with_addons(manifest, &records, &app.name).map(|line| Failure {
        reason: FailureReason::ContractInvalid,
        phase: Some(tovuk_types::DeployState::Queued),
        exit_code: None,
        first_actionable_line: Some(line),
        missing: Vec::new(),
        blockers: String::new(),
    }))
}

/// `POST /v1/plan`: the dry-run. Changes nothing; an app that does not exist yet is planned
/// as created (admin tokens only: a deploy token plans its own app).
pub(crate) async fn plan(
    State(state): State<ControlState>,
    caller: Caller,
    ApiJson(request): ApiJson<PlanRequest>,
) -> Result<Json<DeployPlan>, ApiFailure> {
    let app = match state.store().find_app(&request.app).await? {
        None if caller.own_app().is_none() => None,
        _ => Some(crate::auth::app_for(&state, &caller, &request.app).await?),
    };
    let name = app.as_ref().map(|app| app.name.clone()).unwrap_or_else(|| request.app.clone());
    let (manifest, report) = tovuk_manifest::check_bytes(tovuk_manifest::MANIFEST_FILE, request.manifest.as_bytes());
    let Some(manifest) = manifest.filter(|_| report.ok()) else {
        let mut failure = ApiFailure::new(ErrorCode::CheckFailed, "the contract check failed: nothing to plan")
            .next("fix tovuk.toml, run `tovuk check`, then plan again");
        failure.0.detail = serde_json::to_value(&report).ok();
        return Err(failure);
    };
    let mut overrides = BTreeMap::new();
    for (meter, quantity) in &request.expected {
        let Some(known) = Meter::from_name(meter) else {
            return Err(ApiFailure::new(
                ErrorCode::InvalidRequest,
                format!("there is no meter `{}`; the meters are: {}", meter.escape_debug(), Meter::names().join(", ")),
            )
            .next("tovuk deploy --dry-run --expect requests=1000000"));
        };
        if !quantity.is_finite() || *quantity < 0.0 {
            return Err(ApiFailure::new(ErrorCode::InvalidRequest, format!("expected `{meter}` must be a number ≥ 0"))
                .next("tovuk deploy --dry-run --expect requests=1000000"));
        }
        overrides.insert(known, *quantity);
    }

    let mut required_fixes: Vec<PlanFix> = report
        .required_fixes()
        .iter()
        .map(|fix| PlanFix {
            kind: "contract".into(),
            message: fix.message.clone(),
            line: fix.line.map(u64::from),
            next: fix.next.clone(),
        })
        .collect();
    required_fixes.extend(auth_fixes(&state, app.as_ref(), &name, &manifest).await?);
    if app.is_none() {
        required_fixes.push(PlanFix {
            kind: "app".into(),
            message: format!("app `{name}` does not exist yet; the deploy creates nothing by itself"),
            line: None,
            next: format!("tovuk app create {name}"),
        });
    }
    let planned = tovuk_pricing::meter_plan(&manifest);
    if let Some(meter) = overrides.keys().find(|meter| !planned.contains(meter)) {
        return Err(ApiFailure::new(
            ErrorCode::InvalidRequest,
            format!(
                "`{meter}` is not billed for this service (it is incurred by {}); its meters are: {}",
                meter.incurred_by_text(),
                planned.iter().map(|meter| meter.as_str()).collect::<Vec<_>>().join(", ")
            ),
        )
        .next("tovuk deploy --dry-run --expect requests=1000000"));
    }
    let needs = config_needs(Some(&manifest));
    let missing = missing_config(&state, app.as_ref(), &name, &needs).await?;
    required_fixes.extend(missing.iter().map(|missing| PlanFix {
        kind: "config".into(),
        message: format!("`{}` ({}) is not set", missing.name, missing.needed_by),
        line: None,
        next: missing.next.clone(),
    }));
    let caps = match &app {
        Some(app) => state.store().caps(Some(&app.id)).await?,
        None => Vec::new(),
    };
    let usage = match &app {
        Some(app) => {
            let totals = app_totals(&state, &app.id).await?;
            // A dry-run records nothing, including the cap event a real deploy would.
            if let Some(stop) = build_cap_reached(&caps, &totals) {
                required_fixes.push(PlanFix {
                    kind: "cap".into(),
                    message: format!(
                        "the `{}` cap ({}) is reached: {} used this period",
                        stop.meter, stop.limit, stop.used
                    ),
                    line: None,
                    next: format!("tovuk caps set {} {} <new limit>", app.name, stop.meter),
                });
            }
            app_usage(&state, &app.name, &totals)
        }
        None => AppUsage { app: name.clone(), meters: Vec::new(), total: 0.0 },
    };
    let shape = shape(&state, &caps, &manifest);
    let billing_estimate = estimate(&state, &manifest, &overrides);
    let ok = required_fixes.is_empty();
    let mut next: Vec<String> = required_fixes.iter().map(|fix| fix.next.clone()).collect();
    if ok {
        next.push(format!("tovuk deploy --app {name}   (or git push to the app's remote)"));
    }
    Ok(Json(DeployPlan {
        service_url: crate::apps::service_url(&state, &name),
        app: name,
        app_exists: app.is_some(),
        ok,
        missing_config: missing,
        required_fixes,
        capabilities: shape.capabilities,
        meter_plan: shape.meter_plan,
        limits: shape.limits,
        usage,
        billing_estimate,
        next,
    }))
}

/// What a deploy's answer carries besides the deploy: where it will answer, usage so far,
/// the estimate of its expected load, and what to run next.
pub(crate) struct DeployAnswer {
    pub service_url: String,
    pub account_usage: tovuk_api_types::AccountUsage,
    pub billing_estimate: Option<BillingEstimate>,
    pub next: Vec<String>,
}

pub(crate) async fn deploy_answer(
    state: &ControlState,
    app: &AppRecord,
    manifest: Option<&Manifest>,
    deploy: &tovuk_store::DeployRecord,
) -> Result<DeployAnswer, ApiFailure> {
    let mut next = Vec::new();
    match &deploy.failure {
        Some(failure) if !failure.missing.is_empty() => {
            next.extend(crate::views::blockers(&failure.missing, &app.name).into_iter().map(|blocker| blocker.next));
            next.push(format!("tovuk deploy retry {} --follow", deploy.id));
        }
        Some(failure) if failure.reason == FailureReason::CapReached => {
            next.push(format!("tovuk caps list {}", app.name));
        }
        _ => next.push(format!("tovuk deploy follow {}", deploy.id)),
    }
    next.push(format!("tovuk usage {}", app.name));
    Ok(DeployAnswer {
        service_url: crate::apps::service_url(state, &app.name),
        account_usage: crate::usage::account_usage(state, Some(app)).await?,
        billing_estimate: manifest.map(|manifest| estimate(state, manifest, &BTreeMap::new())),
        next,
    })
}
