//! Resources (`[[resources]]`): created when the first deploy declaring one is handed to a
//! runner, shown by `tovuk service show`, and the operator's SQLite commands, which run where
//! the database lives (the node's [`SqliteHost`]).

use crate::auth::{Caller, app_for};
use crate::http::ApiJson;
use crate::usage::{app_totals, current_period};
use crate::{ApiFailure, ControlState};
use axum::Json;
use axum::extract::{Path, State};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use tovuk_api_types::{
    ApiError, CapState, DeployShape, ErrorCode, MeterUsage, ReleaseResource, ResourceCap, ResourceStatus, Service,
    ServiceList, ServiceResource, ServiceSummary, SqliteQueryRequest, SqliteQueryResult, SqliteRestoreRequest,
    SqliteRestored, SqliteSnapshot, SqliteSnapshotList,
};
use tovuk_manifest::{Manifest, ResourceKind};
use tovuk_secrets::SealContext;
use tovuk_store::{AppRecord, DeclaredResource, DeployRecord, ResourceRecord, SERVICE_BINDING, SealedValue};
use tovuk_types::resources::{bucket_name, sqlite_path};

/// The kinds of resource this platform serves: every kind the manifest knows.
pub(crate) const SERVED_KINDS: [ResourceKind; 6] = [
    ResourceKind::Sqlite,
    ResourceKind::ObjectStorage,
    ResourceKind::Kv,
    ResourceKind::Queue,
    ResourceKind::Cron,
    ResourceKind::State,
];

/// The `[[resources]]` and `[[bindings]]` a commit declares, as its deploy records them.
pub(crate) fn declared(manifest: Option<&Manifest>) -> Vec<DeclaredResource> {
    let Some(manifest) = manifest else { return Vec::new() };
    let resources = manifest.resources().iter().map(|resource| DeclaredResource {
        kind: resource.kind.as_str().to_owned(),
        binding: resource.binding.clone(),
        service: resource.service.clone(),
    });
    let bindings = manifest.bindings().iter().map(|binding| DeclaredResource {
        kind: SERVICE_BINDING.to_owned(),
        binding: binding.binding.clone(),
        service: Some(binding.service.clone()),
    });
    resources.chain(bindings).collect()
}

/// The resources `deploy` declares, created (with new sealed credentials) where the app does
/// not have them yet: what the runner takes with the release.
pub(crate) async fn for_release(
    state: &ControlState,
    deploy: &DeployRecord,
) -> Result<Vec<ReleaseResource>, ApiFailure> {
    let app_id = deploy.app_id.to_string();
    let seal = |resource_id: &str| seal_new_credential(state, &app_id, resource_id);
    let records = state.store().ensure_resources(&app_id, deploy.id.as_str(), &deploy.resources, &seal).await?;
    Ok(records.into_iter().map(|record| release_view(deploy, record)).collect())
}

/// A new credential for resource `resource_id` of `app_id`, sealed like a config value.
pub(crate) fn seal_new_credential(
    state: &ControlState,
    app_id: &str,
    resource_id: &str,
) -> Result<SealedValue, String> {
    let credential = new_credential().map_err(|error| error.to_string())?;
    let sealed = state
        .secrets_key()
        .seal(&SealContext { app_id, name: resource_id, version: 1 }, &credential)
        .map_err(|error| error.to_string())?;
    Ok(SealedValue {
        name: resource_id.to_owned(),
        version: 1,
        key_id: sealed.key_id,
        nonce: sealed.nonce,
        ciphertext: sealed.ciphertext,
    })
}

/// The resources of a deploy from records already loaded (the current releases, read every
/// few seconds): those its commit declares, and the app's add-ons.
pub(crate) fn declared_by(deploy: &DeployRecord, records: &[ResourceRecord]) -> Vec<ReleaseResource> {
    records
        .iter()
        .filter(|record| {
            record.addon
                || deploy
                    .resources
                    .iter()
                    .any(|declared| declared.kind == record.kind && declared.binding == record.binding)
        })
        .cloned()
        .map(|record| release_view(deploy, record))
        .collect()
}

fn release_view(deploy: &DeployRecord, record: ResourceRecord) -> ReleaseResource {
    let service = deploy
        .resources
        .iter()
        .find(|declared| declared.kind == record.kind && declared.binding == record.binding)
        .and_then(|declared| declared.service.clone());
    ReleaseResource {
        id: record.id,
        kind: record.kind,
        binding: record.binding,
        credential: crate::env::sealed_view(record.credential),
        service,
    }
}

/// 32 random bytes, hex: a resource's secret.
fn new_credential() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// The variables a resource sets in its app: its own, and the conventional ones when it is
/// the app's only active resource of its kind.
pub(crate) fn env_names(record: &ResourceRecord, all: &[ResourceRecord]) -> Vec<String> {
    if record.kind == SERVICE_BINDING {
        return tovuk_manifest::service_binding_variables(&record.binding);
    }
    let Some(kind) = ResourceKind::from_name(&record.kind) else { return Vec::new() };
    let mut names = kind.variables(&record.binding);
    let only_one = record.status == ResourceStatus::Active
        && all.iter().filter(|other| other.kind == record.kind && other.status == ResourceStatus::Active).count() == 1;
    if only_one {
        names.extend(kind.conventional_variables().iter().map(|name| (*name).to_owned()));
    }
    names
}

fn location(record: &ResourceRecord) -> String {
    match ResourceKind::from_name(&record.kind) {
        Some(ResourceKind::Sqlite) => sqlite_path(&record.binding),
        Some(ResourceKind::ObjectStorage) => format!("bucket {}", bucket_name(&record.id)),
        Some(ResourceKind::Kv) => format!("keyspace {}", record.id),
        Some(ResourceKind::Queue) => format!("queue {}", record.id),
        Some(ResourceKind::Cron) => "the app's sandbox, from its current release".to_owned(),
        Some(ResourceKind::State) => format!("State objects {}", record.id),
        _ => String::new(),
    }
}

/// The meters a resource of `kind` counts.
fn meters_of(kind: &str) -> &'static [&'static str] {
    match ResourceKind::from_name(kind) {
        Some(ResourceKind::Kv) => &["kv_reads", "kv_writes", "storage_gb_month"],
        Some(ResourceKind::ObjectStorage) => &["object_class_a_ops", "object_class_b_ops", "object_storage_gb_month"],
        Some(ResourceKind::Sqlite) => &["storage_gb_month"],
        Some(ResourceKind::Queue) => &["queue_messages"],
        Some(ResourceKind::Cron) => &["cron_invocations"],
        Some(ResourceKind::State) => &["state_reads", "state_writes", "storage_gb_month"],
        None if kind == SERVICE_BINDING => &["service_binding_calls"],
        _ => &[],
    }
}

/// `GET /v1/services/{app}`: `tovuk service show`.
pub(crate) async fn show(
    State(state): State<ControlState>,
    caller: Caller,
    Path(name_or_id): Path<String>,
) -> Result<Json<Service>, ApiFailure> {
    let app = app_for(&state, &caller, &name_or_id).await?;
    let current_deploy_id = state.store().current_deploy_id(app.id.as_str()).await?;
    let current = match &current_deploy_id {
        Some(id) => state.store().find_deploy(id).await?,
        None => None,
    };
    let capabilities = current
        .as_ref()
        .and_then(|deploy| deploy.plan.as_deref())
        .and_then(|plan| serde_json::from_str::<DeployShape>(plan).ok())
        .map(|shape| shape.capabilities.enabled)
        .unwrap_or_default();
    let records = state.store().app_resources(app.id.as_str()).await?;
    // The app a service binding calls, as the current deploy declares it.
    let service_of = |record: &ResourceRecord| {
        current.as_ref().and_then(|deploy| {
            deploy
                .resources
                .iter()
                .find(|declared| declared.kind == record.kind && declared.binding == record.binding)
                .and_then(|declared| declared.service.clone())
        })
    };
    let period = current_period();
    let mut usage: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for (resource, meter, quantity) in state.store().resource_usage_totals(&app.id, &period.first_hour).await? {
        usage.entry(resource).or_default().insert(meter, quantity);
    }
    let totals = app_totals(&state, &app.id).await?;
    let caps = state.store().caps(Some(&app.id)).await?;
    let sizes = state.meters().get(&app.name).map(|meter| meter.resource_sizes()).unwrap_or_default();
    let queue_counts = crate::queues::counts(&state, &app, &records).await;
    let mut cron_runs = crate::cron::next_and_last(&state, &app, &records).await?;
    // Whether the app each service binding calls runs: a binding to one that does not is a
    // readiness blocker, named here as in the deploy's refusal.
    let mut service_ready: BTreeMap<String, String> = BTreeMap::new();
    for service in records.iter().filter_map(service_of) {
        let readiness = match state.store().find_app(&service).await? {
            None => format!("blocked: there is no app `{service}` (tovuk app create {service})"),
            Some(callee) if state.store().current_deploy_id(callee.id.as_str()).await?.is_none() => {
                format!("blocked: `{service}` has nothing running (tovuk deploy --app {service})")
            }
            Some(_) => "ready".to_owned(),
        };
        service_ready.insert(service, readiness);
    }
    let resources = records
        .iter()
        .map(|record| {
            let counted = usage.remove(&record.id).unwrap_or_default();
            let meters = meters_of(&record.kind);
            ServiceResource {
                id: record.id.clone(),
                kind: record.kind.clone(),
                binding: record.binding.clone(),
                status: record.status,
                backend: record.backend.clone(),
                env: env_names(record, &records),
                location: match service_of(record) {
                    Some(service) if record.kind == SERVICE_BINDING => format!("http://{service}.internal"),
                    Some(service) => format!("the State objects `{}` of `{service}`", record.binding),
                    None => location(record),
                },
                service: service_of(record),
                readiness: service_of(record).and_then(|service| service_ready.get(&service).cloned()),
                size_bytes: sizes.get(&record.id).copied(),
                created_at: record.created_at.clone(),
                detached_at: record.detached_at.clone(),
                addon: record.addon,
                usage: meters
                    .iter()
                    .map(|meter| crate::usage::meter_usage(&state, meter, counted.get(*meter).copied().unwrap_or(0.0)))
                    .collect::<Vec<MeterUsage>>(),
                caps: caps
                    .iter()
                    .filter(|cap| meters.contains(&cap.meter.as_str()))
                    .map(|cap| {
                        let used = totals.get(&cap.meter).copied().unwrap_or(0.0);
                        ResourceCap {
                            meter: cap.meter.clone(),
                            limit: cap.cap,
                            used,
                            state: if used >= cap.cap { CapState::Reached } else { CapState::Ok },
                        }
                    })
                    .collect(),
                depth: queue_counts.get(&record.id).map(|counts| counts.0),
                in_flight: queue_counts.get(&record.id).map(|counts| counts.1),
                dead_letter: queue_counts.get(&record.id).map(|counts| counts.2),
                next_run_at: cron_runs.get_mut(&record.id).and_then(|(next, _)| next.take()),
                last_run: cron_runs.get_mut(&record.id).and_then(|(_, last)| last.take()),
            }
        })
        .collect();
    Ok(Json(Service {
        service_url: crate::apps::service_url(&state, &app.name),
        app: app.name.to_string(),
        app_id: app.id.to_string(),
        current_deploy_id,
        capabilities,
        resources,
    }))
}

/// `GET /v1/services`: `tovuk service list`.
pub(crate) async fn list(State(state): State<ControlState>, caller: Caller) -> Result<Json<ServiceList>, ApiFailure> {
    let mut by_app = state.store().all_resources().await?;
    let mut services = Vec::new();
    for app in state.store().list_apps().await?.into_iter().filter(|app| caller.may_act_on(app.id.as_str())) {
        let records = by_app.remove(app.id.as_str()).unwrap_or_default();
        services.push(ServiceSummary {
            service_url: crate::apps::service_url(&state, &app.name),
            resources: records
                .iter()
                .filter(|record| record.status == ResourceStatus::Active)
                .map(|record| format!("{}:{}", record.kind, record.binding))
                .collect(),
            detached: records.iter().filter(|record| record.status == ResourceStatus::Detached).count(),
            current_deploy_id: state.store().current_deploy_id(app.id.as_str()).await?,
            app: app.name.to_string(),
        });
    }
    Ok(Json(ServiceList { services }))
}

/// A boxed future, so [`SqliteHost`] can be a trait object.
pub type HostFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send + 'a>>;

/// The SQLite resource an operator command acts on.
#[derive(Debug, Clone)]
pub struct SqliteTarget {
    pub app: String,
    pub app_id: String,
    pub resource_id: String,
    pub binding: String,
}

/// The operator's SQLite commands, run on the node that holds the app's volume.
pub trait SqliteHost: Send + Sync + 'static {
    fn snapshot<'a>(&'a self, target: &'a SqliteTarget) -> HostFuture<'a, SqliteSnapshot>;
    fn snapshots<'a>(&'a self, target: &'a SqliteTarget) -> HostFuture<'a, Vec<SqliteSnapshot>>;
    fn restore<'a>(&'a self, target: &'a SqliteTarget, snapshot: &'a str) -> HostFuture<'a, SqliteRestored>;
    fn query<'a>(&'a self, target: &'a SqliteTarget, sql: &'a str, write: bool) -> HostFuture<'a, SqliteQueryResult>;
}

async fn sqlite_target(
    state: &ControlState,
    caller: &Caller,
    name_or_id: &str,
    binding: &str,
) -> Result<(AppRecord, SqliteTarget), ApiFailure> {
    let app = app_for(state, caller, name_or_id).await?;
    let records = state.store().app_resources(app.id.as_str()).await?;
    let Some(record) =
        records.iter().find(|record| record.kind == ResourceKind::Sqlite.as_str() && record.binding == binding)
    else {
        let known: Vec<&str> = records
            .iter()
            .filter(|record| record.kind == ResourceKind::Sqlite.as_str())
            .map(|record| record.binding.as_str())
            .collect();
        let message = format!("`{}` has no SQLite resource bound as `{}`", app.name, binding.escape_debug());
        let next = if known.is_empty() {
            format!(
                "tovuk addon create {} sqlite --binding {binding} (or declare it in tovuk.toml and deploy)",
                app.name
            )
        } else {
            format!("its SQLite bindings: {}", known.join(", "))
        };
        return Err(ApiFailure::new(ErrorCode::ResourceNotFound, message).next(next));
    };
    let target = SqliteTarget {
        app: app.name.to_string(),
        app_id: app.id.to_string(),
        resource_id: record.id.clone(),
        binding: record.binding.clone(),
    };
    Ok((app, target))
}

fn host(state: &ControlState) -> Result<std::sync::Arc<dyn SqliteHost>, ApiFailure> {
    state.inner.sqlite_host.get().cloned().ok_or_else(|| {
        ApiFailure::new(ErrorCode::Internal, "no runner on this server holds app volumes")
            .next("run the SQLite commands against the server that runs the app (tovuk server with the runner role)")
    })
}

/// `POST /v1/apps/{app}/sqlite/{binding}/snapshots`.
pub(crate) async fn snapshot(
    State(state): State<ControlState>,
    caller: Caller,
    Path((app, binding)): Path<(String, String)>,
) -> Result<Json<SqliteSnapshot>, ApiFailure> {
    let (_, target) = sqlite_target(&state, &caller, &app, &binding).await?;
    Ok(Json(host(&state)?.snapshot(&target).await.map_err(|error| ApiFailure(Box::new(error), None))?))
}

/// `GET /v1/apps/{app}/sqlite/{binding}/snapshots`.
pub(crate) async fn snapshots(
    State(state): State<ControlState>,
    caller: Caller,
    Path((app, binding)): Path<(String, String)>,
) -> Result<Json<SqliteSnapshotList>, ApiFailure> {
    let (_, target) = sqlite_target(&state, &caller, &app, &binding).await?;
    let snapshots = host(&state)?.snapshots(&target).await.map_err(|error| ApiFailure(Box::new(error), None))?;
    Ok(Json(SqliteSnapshotList { app: target.app, binding: target.binding, snapshots }))
}

/// `POST /v1/apps/{app}/sqlite/{binding}/restore`.
pub(crate) async fn restore(
    State(state): State<ControlState>,
    caller: Caller,
    Path((app, binding)): Path<(String, String)>,
    ApiJson(request): ApiJson<SqliteRestoreRequest>,
) -> Result<Json<SqliteRestored>, ApiFailure> {
    let (_, target) = sqlite_target(&state, &caller, &app, &binding).await?;
    Ok(Json(
        host(&state)?.restore(&target, &request.snapshot).await.map_err(|error| ApiFailure(Box::new(error), None))?,
    ))
}

/// `POST /v1/apps/{app}/sqlite/{binding}/query`.
pub(crate) async fn query(
    State(state): State<ControlState>,
    caller: Caller,
    Path((app, binding)): Path<(String, String)>,
    ApiJson(request): ApiJson<SqliteQueryRequest>,
) -> Result<Json<SqliteQueryResult>, ApiFailure> {
    let (_, target) = sqlite_target(&state, &caller, &app, &binding).await?;
    Ok(Json(
        host(&state)?
            .query(&target, &request.sql, request.write)
            .await
            .map_err(|error| ApiFailure(Box::new(error), None))?,
    ))
}
