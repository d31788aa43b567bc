//! Cron resources (`[[resources]] kind = "cron"`): each active one's `command` runs from the
//! app's current release on its schedule (UTC), and every tick is recorded: run, skipped
//! (the binding's last run still going, or a cap) or missed (the platform was down).
//!
//! The control plane schedules ([`scheduler`]) and records; the runner that holds the app
//! runs the command ([`CronHost`]) and reports how it ended. A tick and `tovuk cron run`
//! go through the one operation that starts a run, [`start_run`].

mod api;
mod scheduler;
mod ticks;

pub(crate) use api::{history, list, run_ended, run_now, show_run};
pub use scheduler::run_cron;

use crate::resources::HostFuture;
use crate::{ApiFailure, ControlState};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tovuk_api_types::{CronRun, CronStart, ErrorCode};
use tovuk_manifest::ResourceKind;
use tovuk_manifest::cron::Schedule;
use tovuk_meter::ResourceMeter;
use tovuk_store::{AppRecord, CronBegun, CronRunRecord, NewCronRun, ResourceRecord};
use tovuk_types::values::{CronRunStatus, CronTrigger, ResourceStatus};

/// Where cron runs are started: the runner that holds the app's release.
pub trait CronHost: Send + Sync + 'static {
    /// Starts `run`'s command; Ok once its process runs (its end is reported through the
    /// API), Err saying why it could not start.
    fn start<'a>(&'a self, run: &'a CronStart) -> HostFuture<'a, ()>;
}

/// What the control plane keeps for cron.
#[derive(Default)]
pub(crate) struct Crons {
    /// The runner of this server, once attached; without one nothing is scheduled.
    host: OnceLock<Arc<dyn CronHost>>,
    /// The cron resources each deploy's `tovuk.toml` declares, read once per deploy.
    specs: Mutex<HashMap<String, Arc<Vec<CronSpec>>>>,
}

impl Crons {
    pub(crate) fn attach(&self, host: Arc<dyn CronHost>) {
        let _ = self.host.set(host);
    }
}

/// A cron resource as a deploy declares it.
#[derive(Debug, Clone)]
pub(crate) struct CronSpec {
    pub binding: String,
    pub schedule: Schedule,
    pub schedule_text: String,
    pub command: String,
    pub timeout: Duration,
}

/// An active cron resource of an app, as its current deploy declares it.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub app: AppRecord,
    pub resource: ResourceRecord,
    pub deploy_id: String,
    pub spec: CronSpec,
}

/// A time as the store keeps it (RFC 3339 UTC, milliseconds), so ticks compare as text.
pub(crate) fn stamp(time: &chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse_stamp(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|time| time.with_timezone(&chrono::Utc))
}

fn is_cron(record: &ResourceRecord) -> bool {
    record.kind == ResourceKind::Cron.as_str()
}

/// The cron resources `deploy_id` of `app` declares, from its commit's `tovuk.toml`.
async fn specs_of(state: &ControlState, app: &AppRecord, deploy_id: &str) -> Result<Arc<Vec<CronSpec>>, ApiFailure> {
    if let Some(specs) = state.inner.cron.specs.lock().ok().and_then(|specs| specs.get(deploy_id).cloned()) {
        return Ok(specs);
    }
    let Some(deploy) = state.store().find_deploy(deploy_id).await? else { return Ok(Arc::default()) };
    let repo = state.repos().path(&app.name);
    let checked = tovuk_git::check_commit(&repo, &tovuk_git::ObjectEnv::default(), &deploy.sha, &app.name)
        .await
        .map_err(|error| {
            tracing::warn!(app = %app.name, %deploy_id, %error, "cannot read the deploy's tovuk.toml for its cron jobs");
            ApiFailure::new(ErrorCode::Internal, "the current deploy's tovuk.toml cannot be read")
        })?;
    let specs: Vec<CronSpec> = checked
        .manifest
        .iter()
        .flat_map(|manifest| manifest.resources())
        .filter(|resource| resource.kind == ResourceKind::Cron)
        .filter_map(|resource| {
            let text = resource.schedule.clone()?;
            Some(CronSpec {
                binding: resource.binding.clone(),
                schedule: Schedule::parse(&text).ok()?,
                schedule_text: text,
                command: resource.command.clone()?,
                timeout: resource.timeout.unwrap_or(tovuk_manifest::DEFAULT_CRON_TIMEOUT),
            })
        })
        .collect();
    let specs = Arc::new(specs);
    if let Ok(mut cached) = state.inner.cron.specs.lock() {
        cached.insert(deploy_id.to_owned(), specs.clone());
    }
    Ok(specs)
}

/// The app's active cron resources, as its current deploy declares them.
pub(crate) async fn jobs_of(
    state: &ControlState,
    app: &AppRecord,
    records: &[ResourceRecord],
) -> Result<Vec<Job>, ApiFailure> {
    let active: Vec<&ResourceRecord> =
        records.iter().filter(|record| is_cron(record) && record.status == ResourceStatus::Active).collect();
    if active.is_empty() {
        return Ok(Vec::new());
    }
    let Some(deploy_id) = state.store().current_deploy_id(app.id.as_str()).await? else { return Ok(Vec::new()) };
    let specs = specs_of(state, app, &deploy_id).await?;
    Ok(active
        .into_iter()
        .filter_map(|record| {
            let spec = specs.iter().find(|spec| spec.binding == record.binding)?;
            Some(Job { app: app.clone(), resource: record.clone(), deploy_id: deploy_id.clone(), spec: spec.clone() })
        })
        .collect())
}

/// Every active cron resource on the platform; forgets the declarations of deploys no
/// longer current.
async fn all_jobs(state: &ControlState) -> Result<Vec<Job>, ApiFailure> {
    let mut by_app: HashMap<String, Vec<ResourceRecord>> = HashMap::new();
    for record in state.store().resources_of_kind(ResourceKind::Cron.as_str()).await? {
        by_app.entry(record.app_id.clone()).or_default().push(record);
    }
    let mut jobs = Vec::new();
    for app in state.store().list_apps().await? {
        if let Some(records) = by_app.get(app.id.as_str()) {
            match jobs_of(state, &app, records).await {
                Ok(found) => jobs.extend(found),
                // One app's unreadable contract does not stop the others' schedules.
                Err(failure) => tracing::warn!(app = %app.name, error = %failure.0.message, "cron jobs skipped"),
            }
        }
    }
    if let Ok(mut specs) = state.inner.cron.specs.lock() {
        specs.retain(|deploy_id, _| jobs.iter().any(|job| job.deploy_id == *deploy_id));
    }
    Ok(jobs)
}

/// Records a tick of `job` and, unless it is skipped (the binding's last run still going,
/// or a cap on `cron_invocations` reached) or was taken before, has the runner start it.
/// `reason` is said of a run that starts (a tick caught up at start).
pub(crate) async fn start_run(
    state: &ControlState,
    job: &Job,
    scheduled_at: &str,
    trigger: CronTrigger,
    reason: Option<&str>,
) -> Result<CronRunRecord, ApiFailure> {
    let host = state.inner.cron.host.get().cloned().ok_or_else(|| {
        ApiFailure::new(ErrorCode::Internal, "no runner on this server runs cron jobs")
            .next("run it against the server that runs the app (tovuk server with the runner role)")
    })?;
    let admit = admission(state, &job.app, &job.resource.id).await?;
    let run = NewCronRun {
        app_id: job.app.id.as_str(),
        resource_id: &job.resource.id,
        binding: &job.resource.binding,
        deploy_id: Some(&job.deploy_id),
        trigger,
        scheduled_at,
        reason,
    };
    let record = match state.store().begin_cron_run(&run, &admit).await? {
        CronBegun::Started(record) => record,
        CronBegun::Skipped(record) => {
            tracing::info!(app = %job.app.name, binding = %job.resource.binding, %scheduled_at, reason = record.reason.as_deref().unwrap_or_default(), "cron tick skipped");
            return Ok(record);
        }
        CronBegun::Taken(record) => return Ok(record),
    };
    let start = CronStart {
        run_id: record.id.clone(),
        app: job.app.name.clone(),
        deploy_id: job.deploy_id.clone(),
        binding: job.resource.binding.clone(),
        command: job.spec.command.clone(),
        scheduled_at: record.scheduled_at.clone(),
        timeout_ms: u64::try_from(job.spec.timeout.as_millis()).unwrap_or(u64::MAX),
    };
    match host.start(&start).await {
        Ok(()) => Ok(record),
        Err(error) => {
            let why = format!("it could not start: {}", error.message);
            tracing::warn!(app = %job.app.name, binding = %job.resource.binding, %why, "cron run failed");
            let ended = state.store().end_cron_run(&record.id, CronRunStatus::Failed, None, Some(&why)).await?;
            Ok(ended.unwrap_or(record))
        }
    }
}

/// What admits a run against the app's cap on `cron_invocations` (and counts it).
async fn admission(
    state: &ControlState,
    app: &AppRecord,
    resource_id: &str,
) -> Result<impl Fn() -> Result<(), String> + Send + Sync + use<>, ApiFailure> {
    let meters = state.meters();
    let meter = if meters.enabled() {
        // A meter made now has no caps until they are handed to it.
        if meters.get(&app.name).is_none() {
            crate::usage::enforce_caps(state, app).await?;
        }
        Some(meters.app(&app.name))
    } else {
        None
    };
    let (app_name, resource_id) = (app.name.clone(), resource_id.to_owned());
    Ok(move || {
        match &meter {
        Some(meter) => meter.admit_resource(&resource_id, ResourceMeter::CronInvocations, 1).map_err(|stop| {
            format!(
                "the app's {} cap of {} is reached for this period; raise it with: tovuk caps set {app_name} {} <LIMIT>",
                stop.meter, stop.limit, stop.meter
            )
        }),
        None => Ok(()),
    }
    })
}

/// A run as the API shows it.
pub(crate) fn run_view(app: &str, record: CronRunRecord) -> CronRun {
    let duration_ms = match (record.started_at.as_deref().and_then(parse_stamp), record.ended_at.as_deref()) {
        (Some(started), Some(ended)) => {
            parse_stamp(ended).and_then(|ended| u64::try_from((ended - started).num_milliseconds()).ok())
        }
        _ => None,
    };
    CronRun {
        id: record.id,
        app: app.to_owned(),
        binding: record.binding,
        resource_id: record.resource_id,
        deploy_id: record.deploy_id,
        trigger: record.trigger,
        scheduled_at: record.scheduled_at,
        started_at: record.started_at,
        ended_at: record.ended_at,
        duration_ms,
        exit_code: record.exit_code,
        status: record.status,
        reason: record.reason,
    }
}

/// Each cron resource's next tick (when it runs) and newest run, by resource id, for
/// `tovuk service show`.
pub(crate) async fn next_and_last(
    state: &ControlState,
    app: &AppRecord,
    records: &[ResourceRecord],
) -> Result<HashMap<String, (Option<String>, Option<CronRun>)>, ApiFailure> {
    let mut shown = HashMap::new();
    if !records.iter().any(is_cron) {
        return Ok(shown);
    }
    let jobs = jobs_of(state, app, records).await.unwrap_or_default();
    let mut last = state.store().last_cron_runs(app.id.as_str()).await?;
    let now = chrono::Utc::now();
    for record in records.iter().filter(|record| is_cron(record)) {
        let next = jobs
            .iter()
            .find(|job| job.resource.id == record.id)
            .and_then(|job| job.spec.schedule.next_after(&now))
            .map(|tick| stamp(&tick));
        let last_run = last.remove(&record.id).map(|run| run_view(&app.name, run));
        shown.insert(record.id.clone(), (next, last_run));
    }
    Ok(shown)
}
