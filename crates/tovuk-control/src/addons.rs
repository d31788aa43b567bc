//! `tovuk addon create|detach`: resources attached to the app itself rather than declared by
//! its tovuk.toml, so an app deployed without one (detected from a Procfile) has a database.
//! Attaching one to a running app starts a config release that gives it to the instances.

use crate::auth::{Caller, app_for};
use crate::http::ApiJson;
use crate::resources::{SERVED_KINDS, env_names, seal_new_credential};
use crate::views::deploy_view;
use crate::{ApiFailure, ControlState};
use axum::Json;
use axum::extract::{Path, State};
use tovuk_api_types::{AddonCreateRequest, AddonResult, ErrorCode};
use tovuk_manifest::{Manifest, ResourceKind, check_binding_name};
use tovuk_store::{AppRecord, DeployRecord, ResourceRecord};
use tovuk_types::values::ResourceStatus;

/// The binding an add-on gets when none is given: the names the docs' examples use.
fn default_binding(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::ObjectStorage => "FILES",
        ResourceKind::Kv => "CACHE",
        ResourceKind::Queue => "QUEUE",
        ResourceKind::State => "STATE",
        _ => "DB",
    }
}

/// The kinds an add-on can be: a cron job needs its schedule and command from a tovuk.toml.
fn addon_kinds() -> impl Iterator<Item = ResourceKind> {
    SERVED_KINDS.into_iter().filter(|kind| *kind != ResourceKind::Cron)
}

fn served_names() -> String {
    addon_kinds().map(|kind| kind.as_str()).collect::<Vec<_>>().join(", ")
}

/// `POST /v1/apps/{app}/addons`: creates (or adopts) a resource attached to the app.
pub(crate) async fn create(
    State(state): State<ControlState>,
    caller: Caller,
    Path(name_or_id): Path<String>,
    ApiJson(request): ApiJson<AddonCreateRequest>,
) -> Result<Json<AddonResult>, ApiFailure> {
    let app = app_for(&state, &caller, &name_or_id).await?;
    let kind =
        ResourceKind::from_name(&request.kind).filter(|kind| addon_kinds().any(|k| k == *kind)).ok_or_else(|| {
            ApiFailure::new(
                ErrorCode::InvalidRequest,
                format!(
                    "`{}` is not a kind of add-on this platform provides ({})",
                    request.kind.escape_debug(),
                    served_names()
                ),
            )
            .next(format!("tovuk addon create {} sqlite", app.name))
        })?;
    let binding = request.binding.clone().unwrap_or_else(|| default_binding(kind).to_owned());
    check_binding_name(&binding).map_err(|problem| {
        ApiFailure::new(ErrorCode::InvalidRequest, format!("binding {problem}")).next(format!(
            "tovuk addon create {} {kind} --binding {}",
            app.name,
            default_binding(kind)
        ))
    })?;
    let records = state.store().app_resources(app.id.as_str()).await?;
    if let Some(clash) = colliding(&records, kind, &binding) {
        return Err(ApiFailure::new(
            ErrorCode::InvalidRequest,
            format!(
                "binding `{binding}` would set {}, which the app's {} `{}` sets already",
                clash.1, clash.0.kind, clash.0.binding
            ),
        )
        .next(format!("tovuk addon create {} {kind} --binding {binding}_2", app.name)));
    }
    let app_id = app.id.to_string();
    let seal = |resource_id: &str| seal_new_credential(&state, &app_id, resource_id);
    let attached = state.store().attach_addon(&app.id, kind.as_str(), &binding, &seal).await?;
    tracing::info!(
        app = %app.name, resource = %attached.record.id, kind = %kind, binding = %binding,
        created = attached.created, "add-on attached"
    );
    notify(&state, attached.release.as_ref());
    let message = if attached.unchanged {
        format!("`{}` has the {kind} add-on `{binding}` already: nothing changed", app.name)
    } else if attached.created {
        format!("created the {kind} add-on `{binding}` ({}) for `{}`", attached.record.id, app.name)
    } else {
        format!(
            "attached the app's existing {kind} `{binding}` ({}) to `{}` as an add-on, with its data",
            attached.record.id, app.name
        )
    };
    let next = match &attached.release {
        Some(release) => vec![format!("tovuk deploy follow {}", release.id)],
        None if attached.unchanged => vec![format!("tovuk service show {}", app.name)],
        None => vec![format!("git push (or tovuk deploy --app {}): every release of it gets the add-on", app.name)],
    };
    let told =
        Told { changed: !attached.unchanged, created: attached.created, release: attached.release, message, next };
    Ok(Json(result(&state, &app, attached.record, told, true).await?))
}

/// `POST /v1/apps/{app}/addons/{binding}/detach`: the app stops getting the add-on; its
/// data is kept.
pub(crate) async fn detach(
    State(state): State<ControlState>,
    caller: Caller,
    Path((name_or_id, binding)): Path<(String, String)>,
) -> Result<Json<AddonResult>, ApiFailure> {
    let app = app_for(&state, &caller, &name_or_id).await?;
    let records = state.store().app_resources(app.id.as_str()).await?;
    let addons: Vec<&ResourceRecord> = records.iter().filter(|record| record.addon).collect();
    let Some(record) = addons.iter().find(|record| record.binding == binding) else {
        let message = format!("`{}` has no add-on bound as `{}`", app.name, binding.escape_debug());
        let next = if addons.is_empty() {
            format!("tovuk service show {} (resources a tovuk.toml declares go when it stops declaring them)", app.name)
        } else {
            let names: Vec<&str> = addons.iter().map(|record| record.binding.as_str()).collect();
            format!("its add-ons: {}", names.join(", "))
        };
        return Err(ApiFailure::new(ErrorCode::ResourceNotFound, message).next(next));
    };
    let Some(detached) = state.store().detach_addon(&app.id, &record.id).await? else {
        return Err(ApiFailure::new(ErrorCode::InvalidState, format!("`{binding}` was detached meanwhile"))
            .next(format!("tovuk service show {}", app.name)));
    };
    tracing::info!(app = %app.name, resource = %detached.record.id, "add-on detached");
    notify(&state, detached.release.as_ref());
    let kind = detached.record.kind.clone();
    let (message, next) = if detached.still_declared {
        (
            format!(
                "`{binding}` is no longer an add-on of `{}`, but the running deploy's tovuk.toml declares it, so it \
                 stays active; its data is kept",
                app.name
            ),
            vec![format!("remove the [[resources]] entry `{binding}` from tovuk.toml and deploy")],
        )
    } else {
        let mut next: Vec<String> =
            detached.release.iter().map(|release| format!("tovuk deploy follow {}", release.id)).collect();
        next.push(format!(
            "tovuk addon create {} {kind} --binding {binding} (attaches it again, with its data)",
            app.name
        ));
        (
            format!(
                "detached the {kind} add-on `{binding}` from `{}`: its data is kept (and billed for what it holds) \
                 until the app is deleted",
                app.name
            ),
            next,
        )
    };
    let still_declared = detached.still_declared;
    let told = Told { changed: !still_declared, created: false, release: detached.release, message, next };
    Ok(Json(result(&state, &app, detached.record, told, still_declared).await?))
}

/// Another resource of the app whose variables `kind` bound as `binding` would also set.
fn colliding<'a>(
    records: &'a [ResourceRecord],
    kind: ResourceKind,
    binding: &str,
) -> Option<(&'a ResourceRecord, String)> {
    let names = kind.variables(binding);
    records.iter().filter(|record| !(record.kind == kind.as_str() && record.binding == binding)).find_map(|record| {
        let theirs = ResourceKind::from_name(&record.kind)?.variables(&record.binding);
        names.iter().find(|name| theirs.contains(name)).map(|name| (record, format!("`{name}`")))
    })
}

/// Why a deploy of `manifest` cannot have its `[[resources]]` next to the app's add-ons: a
/// declared resource would set a variable an add-on sets.
pub(crate) fn collision_with_addons(manifest: &Manifest, records: &[ResourceRecord], app: &str) -> Option<String> {
    let addons: Vec<ResourceRecord> = records.iter().filter(|record| record.addon).cloned().collect();
    manifest.resources().iter().find_map(|resource| {
        let (addon, name) = colliding(&addons, resource.kind, &resource.binding)?;
        Some(format!(
            "[[resources]] `{}` would set {name}, which the app's {} add-on `{}` sets. Rename the binding in \
             tovuk.toml, or detach the add-on: tovuk addon detach {app} {}",
            resource.binding, addon.kind, addon.binding, addon.binding
        ))
    })
}

fn notify(state: &ControlState, release: Option<&DeployRecord>) {
    if release.is_some() {
        state.release_ready();
        state.deploys_changed();
    }
}

/// What an add-on command did, besides the resource.
struct Told {
    changed: bool,
    created: bool,
    release: Option<DeployRecord>,
    message: String,
    next: Vec<String>,
}

/// The answer; `given` when the app's releases get the resource from now on, so its
/// variables are named as they will be once the release goes live.
async fn result(
    state: &ControlState,
    app: &AppRecord,
    record: ResourceRecord,
    told: Told,
    given: bool,
) -> Result<AddonResult, ApiFailure> {
    let mut all = state.store().app_resources(app.id.as_str()).await?;
    if given {
        all.iter_mut().filter(|other| other.id == record.id).for_each(|other| other.status = ResourceStatus::Active);
    }
    let shown = all.iter().find(|other| other.id == record.id).cloned().unwrap_or(record);
    Ok(AddonResult {
        app: app.name.to_string(),
        env: env_names(&shown, &all),
        id: shown.id,
        kind: shown.kind,
        binding: shown.binding,
        status: shown.status,
        created: told.created,
        changed: told.changed,
        release: told.release.map(deploy_view),
        message: told.message,
        next: told.next,
    })
}
