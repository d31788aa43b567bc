//! Metering and cost guardrails: the price table, usage per period, caps, and the loop that
//! moves the router's live counts into hourly buckets and enforces caps.
//!
//! Caps are enforced where the usage happens: the router refuses requests past a request or
//! egress cap by itself (exactly, from its own counters); a cap on CPU or memory stops the
//! app's traffic once stored usage reaches it; a build-minutes or storage cap refuses new
//! builds. Each stop is recorded as an event.
//!
//! The router spends request and egress caps only within grants written to the store
//! first (see `tovuk_meter`), so a crash cannot let a capped app past its cap: what was
//! granted and never counted becomes unaccounted usage of the cap (never of the bill).

use crate::auth::{Caller, app_for};
use crate::http::ApiJson;
use crate::{ApiFailure, ControlState};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{Datelike, TimeZone, Utc};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tovuk_api_types::{
    AccountUsage, AppUsage, Cap, CapEvent, CapList, ErrorCode, MeterPrice, MeterUsage, Pricing, SetCapRequest,
    UsageBatch, UsagePeriod, UsageReport,
};
use tovuk_daemon::Shutdown;
use tovuk_meter::{Drained, GrantState, ResourceCaps, ResourceMeter, Stop, TrafficCaps};
use tovuk_pricing::Meter;
use tovuk_store::{AppRecord, CapRecord, Failure, MeterGrant, UsageEntry, UsageEvent, UsageTotal};
use tovuk_types::AppId;

/// How often the router's counts are stored and caps on stored usage are checked.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// The smallest step a grant is raised by: requests, egress bytes. Grants run about two
/// flush intervals of traffic ahead of the counts.
const MIN_REQUEST_GRANT: u64 = 64;
const MIN_EGRESS_GRANT: u64 = 1 << 20;
/// How often each app's storage is measured.
const STORAGE_EVERY: Duration = Duration::from_secs(60);
/// Seconds in the month storage is billed per (the price table's `HOURS_PER_MONTH`).
const MONTH_SECS: f64 = tovuk_pricing::HOURS_PER_MONTH * 3600.0;

/// The billing period now: a calendar month, UTC.
pub(crate) struct Period {
    pub name: String,
    /// The first hour bucket of the period (`YYYY-MM-01T00`).
    pub first_hour: String,
    pub start: String,
    pub end: String,
}

pub(crate) fn current_period() -> Period {
    let now = Utc::now();
    let start = Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0).single().unwrap_or(now);
    let (next_year, next_month) = if now.month() == 12 { (now.year() + 1, 1) } else { (now.year(), now.month() + 1) };
    let end = Utc.with_ymd_and_hms(next_year, next_month, 1, 0, 0, 0).single().unwrap_or(now);
    Period {
        name: start.format("%Y-%m").to_string(),
        first_hour: start.format("%Y-%m-%dT%H").to_string(),
        start: start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        end: end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

fn hour_now() -> String {
    Utc::now().format("%Y-%m-%dT%H").to_string()
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn unit_of(meter: &str) -> String {
    Meter::from_name(meter).map(Meter::unit).unwrap_or("unit").to_owned()
}

fn round6(value: f64) -> f64 {
    // `+ 0.0` turns the -0.0 an empty float sum gives into 0.
    (value * 1e6).round() / 1e6 + 0.0
}

pub(crate) fn meter_usage(state: &ControlState, meter: &str, quantity: f64) -> MeterUsage {
    let price = Meter::from_name(meter).map(|meter| state.pricing().price(meter)).unwrap_or(0.0);
    MeterUsage { meter: meter.to_owned(), unit: unit_of(meter), quantity, amount: round6(price * quantity) }
}

/// What an app's usage of each meter is this period, from the store.
pub(crate) async fn app_totals(state: &ControlState, app_id: &AppId) -> Result<BTreeMap<String, f64>, ApiFailure> {
    let period = current_period();
    let totals = state.store().usage_totals(Some(app_id), &period.first_hour).await?;
    Ok(totals.into_iter().map(|total| (total.meter, total.quantity)).collect())
}

/// What counts against an app's caps this period: its usage, and for the router's meters
/// what was granted before a crash and never counted. Also the stored grants.
async fn cap_usage(
    state: &ControlState,
    app_id: &AppId,
) -> Result<(BTreeMap<String, f64>, Vec<MeterGrant>), ApiFailure> {
    let mut totals = app_totals(state, app_id).await?;
    let grants = state.store().meter_grants(Some(app_id), &current_period().first_hour).await?;
    for grant in &grants {
        *totals.entry(grant.meter.clone()).or_default() += grant.unaccounted as f64;
    }
    Ok((totals, grants))
}

/// One app's usage this period, every meter it used, priced.
pub(crate) fn app_usage(state: &ControlState, app: &str, totals: &BTreeMap<String, f64>) -> AppUsage {
    let meters: Vec<MeterUsage> = totals.iter().map(|(meter, quantity)| meter_usage(state, meter, *quantity)).collect();
    let total = round6(meters.iter().map(|meter| meter.amount).sum());
    AppUsage { app: app.to_owned(), meters, total }
}

/// `accountUsage`: this period's totals for the account and per app (only `only` when given).
pub(crate) async fn account_usage(state: &ControlState, only: Option<&AppRecord>) -> Result<AccountUsage, ApiFailure> {
    let period = current_period();
    let totals = state.store().usage_totals(only.map(|app| &app.id), &period.first_hour).await?;
    let mut by_app: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    let mut account: BTreeMap<String, f64> = BTreeMap::new();
    for UsageTotal { app_name, meter, quantity, .. } in totals {
        *account.entry(meter.clone()).or_default() += quantity;
        by_app.entry(app_name).or_default().insert(meter, quantity);
    }
    if let Some(app) = only {
        by_app.entry(app.name.clone()).or_default();
    }
    let apps: Vec<AppUsage> = by_app.iter().map(|(app, totals)| app_usage(state, app, totals)).collect();
    let meters: Vec<MeterUsage> =
        account.iter().map(|(meter, quantity)| meter_usage(state, meter, *quantity)).collect();
    Ok(AccountUsage {
        period: UsagePeriod { name: period.name, start: period.start, end: period.end },
        currency: state.pricing().currency().to_owned(),
        total: round6(meters.iter().map(|meter| meter.amount).sum()),
        meters,
        apps,
    })
}

/// `GET /v1/pricing`.
pub(crate) async fn pricing(State(state): State<ControlState>, _caller: Caller) -> Json<Pricing> {
    let table = state.pricing();
    Json(Pricing {
        currency: table.currency().to_owned(),
        period: table.period().to_owned(),
        meters: Meter::ALL
            .iter()
            .map(|meter| MeterPrice {
                meter: meter.as_str().to_owned(),
                unit: meter.unit().to_owned(),
                unit_price: table.price(*meter),
                incurred_by: meter.incurred_by_text(),
                description: meter.description().to_owned(),
            })
            .collect(),
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct UsageQuery {
    app: Option<String>,
}

/// `GET /v1/usage[?app=APP]`: this period's usage; a deploy token sees its own app only.
pub(crate) async fn usage(
    State(state): State<ControlState>,
    caller: Caller,
    Query(query): Query<UsageQuery>,
) -> Result<Json<UsageReport>, ApiFailure> {
    let app = match (&query.app, caller.own_app()) {
        (Some(name), _) => Some(app_for(&state, &caller, name).await?),
        (None, Some(own)) => Some(app_for(&state, &caller, own).await?),
        (None, None) => None,
    };
    let account_usage = account_usage(&state, app.as_ref()).await?;
    let events = match &app {
        Some(app) => state.store().usage_events(&app.id, 50).await?.into_iter().map(event_view).collect(),
        None => Vec::new(),
    };
    Ok(Json(UsageReport { account_usage, events }))
}

fn event_view(event: UsageEvent) -> CapEvent {
    CapEvent { at: event.at, meter: event.meter, limit: event.cap, used: event.used, stopped: event.stopped }
}

fn meter_named(name: &str, app: &str) -> Result<Meter, ApiFailure> {
    Meter::from_name(name).ok_or_else(|| {
        ApiFailure::new(
            ErrorCode::InvalidRequest,
            format!("there is no meter `{}`; the meters are: {}", name.escape_debug(), Meter::names().join(", ")),
        )
        .next(format!("tovuk caps set {app} requests 100000   (tovuk pricing lists every meter)"))
    })
}

/// `GET /v1/apps/{app}/caps`: each cap with this period's usage against it.
pub(crate) async fn list_caps(
    State(state): State<ControlState>,
    caller: Caller,
    Path(name_or_id): Path<String>,
) -> Result<Json<CapList>, ApiFailure> {
    let app = app_for(&state, &caller, &name_or_id).await?;
    Ok(Json(cap_list(&state, &app).await?))
}

async fn cap_list(state: &ControlState, app: &AppRecord) -> Result<CapList, ApiFailure> {
    let (totals, _) = cap_usage(state, &app.id).await?;
    let caps = state
        .store()
        .caps(Some(&app.id))
        .await?
        .into_iter()
        .map(|cap| {
            let used = totals.get(&cap.meter).copied().unwrap_or(0.0);
            Cap {
                app: app.name.clone(),
                unit: unit_of(&cap.meter),
                state: if used >= cap.cap { tovuk_api_types::CapState::Reached } else { tovuk_api_types::CapState::Ok },
                meter: cap.meter,
                limit: cap.cap,
                used,
                created_at: cap.created_at,
                updated_at: cap.updated_at,
            }
        })
        .collect();
    let events = state.store().usage_events(&app.id, 50).await?.into_iter().map(event_view).collect();
    Ok(CapList { app: app.name.clone(), caps, events })
}

/// `PUT /v1/apps/{app}/caps/{meter}`: sets a cap; it takes effect at once, even below usage.
pub(crate) async fn set_cap(
    State(state): State<ControlState>,
    caller: Caller,
    Path((name_or_id, meter)): Path<(String, String)>,
    ApiJson(request): ApiJson<SetCapRequest>,
) -> Result<Json<CapList>, ApiFailure> {
    let app = app_for(&state, &caller, &name_or_id).await?;
    let meter = meter_named(&meter, &app.name)?;
    if !request.limit.is_finite() || request.limit < 0.0 {
        return Err(ApiFailure::new(
            ErrorCode::InvalidRequest,
            format!("a cap is a number ≥ 0 of {}s per period, not {}", meter.unit(), request.limit),
        )
        .next(format!("tovuk caps set {} {meter} 100000", app.name)));
    }
    state.store().set_cap(&app.id, meter.as_str(), request.limit, caller.token.id.as_str()).await?;
    tracing::info!(app = %app.name, %meter, limit = request.limit, "cap set");
    enforce_caps(&state, &app).await?;
    Ok(Json(cap_list(&state, &app).await?))
}

/// `DELETE /v1/apps/{app}/caps/{meter}`.
pub(crate) async fn unset_cap(
    State(state): State<ControlState>,
    caller: Caller,
    Path((name_or_id, meter)): Path<(String, String)>,
) -> Result<Json<CapList>, ApiFailure> {
    let app = app_for(&state, &caller, &name_or_id).await?;
    let meter = meter_named(&meter, &app.name)?;
    if !state.store().remove_cap(&app.id, meter.as_str()).await? {
        return Err(ApiFailure::new(ErrorCode::NotFound, format!("`{}` has no cap on `{meter}`", app.name))
            .next(format!("tovuk caps list {}", app.name)));
    }
    tracing::info!(app = %app.name, %meter, "cap removed");
    enforce_caps(&state, &app).await?;
    Ok(Json(cap_list(&state, &app).await?))
}

/// `POST /internal/v1/usage`: usage a role measured (the runner's CPU and memory samples).
pub(crate) async fn record(
    State(state): State<ControlState>,
    ApiJson(batch): ApiJson<UsageBatch>,
) -> Result<StatusCode, ApiFailure> {
    let hour = hour_now();
    let mut entries = Vec::new();
    // A few queries per batch, however many apps it holds: it comes every few seconds.
    let apps: HashMap<String, AppRecord> =
        state.store().list_apps().await?.into_iter().map(|app| (app.name.to_string(), app)).collect();
    let mut sampled: HashMap<&str, &AppRecord> = HashMap::new();
    for sample in &batch.entries {
        if Meter::from_name(&sample.meter).is_none() || !sample.quantity.is_finite() || sample.quantity <= 0.0 {
            continue;
        }
        if let Some(app) = apps.get(&sample.app) {
            sampled.insert(app.id.as_str(), app);
            entries.push(UsageEntry {
                app_id: app.id.to_string(),
                hour: hour.clone(),
                meter: sample.meter.clone(),
                quantity: sample.quantity,
                resource_id: None,
            });
        }
    }
    state.store().add_usage(&entries).await?;
    // Only an app with a cap on what was measured can be stopped by it.
    let capped: std::collections::HashSet<String> = state
        .store()
        .caps(None)
        .await?
        .into_iter()
        .filter(|cap| TRAFFIC_STOPPING.iter().any(|meter| meter.as_str() == cap.meter))
        .map(|cap| cap.app_id)
        .collect();
    for (app_id, app) in sampled {
        if capped.contains(app_id) {
            enforce_caps(&state, app).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The meters whose cap stops the app's traffic once stored usage reaches it.
const TRAFFIC_STOPPING: [Meter; 2] = [Meter::CpuMs, Meter::MemoryGbS];
/// The meters whose cap refuses new builds.
const BUILD_STOPPING: [Meter; 2] = [Meter::BuildMinutes, Meter::StorageGbMonth];

/// Hands the router an app's caps and stored usage, and stops or resumes its traffic for
/// caps on other meters. Records an event when a stop starts.
pub(crate) async fn enforce_caps(state: &ControlState, app: &AppRecord) -> Result<(), ApiFailure> {
    let meters = state.meters();
    if !meters.enabled() {
        return Ok(());
    }
    let _moving = state.inner.metering.lock().await;
    let caps = state.store().caps(Some(&app.id)).await?;
    let (totals, grants) = cap_usage(state, &app.id).await?;
    let meter = meters.app(&app.name);
    let cap_of = |name: Meter| caps.iter().find(|cap| cap.meter == name.as_str()).map(|cap| cap.cap);
    let used = |name: Meter| totals.get(name.as_str()).copied().unwrap_or(0.0);
    let granted =
        |name: Meter| grants.iter().find(|grant| grant.meter == name.as_str()).map_or(0, |grant| grant.granted);
    meter.set_traffic_caps(TrafficCaps {
        requests: cap_of(Meter::Requests).map(|cap| cap.floor() as u64),
        egress_bytes: cap_of(Meter::EgressBytes).map(|cap| cap.floor() as u64),
        stored_requests: used(Meter::Requests) as u64,
        stored_egress_bytes: used(Meter::EgressBytes) as u64,
        granted_requests: granted(Meter::Requests),
        granted_egress_bytes: granted(Meter::EgressBytes),
    });
    let resource_cap = |meter: ResourceMeter| {
        let name = Meter::from_name(meter.as_str())?;
        cap_of(name).map(|cap| cap.floor() as u64)
    };
    let resource_used = |meter: ResourceMeter| Meter::from_name(meter.as_str()).map_or(0, |name| used(name) as u64);
    // Holding more bytes than what is left of the cap, for the rest of the month, could pass it.
    let object_bytes = cap_of(Meter::ObjectStorageGbMonth)
        .map(|cap| ((cap - used(Meter::ObjectStorageGbMonth)).max(0.0) * 1e9).floor() as u64);
    meter.set_resource_caps(ResourceCaps {
        limits: ResourceMeter::ALL.map(resource_cap),
        stored: ResourceMeter::ALL.map(resource_used),
        object_bytes,
    });
    let stop = TRAFFIC_STOPPING.iter().find_map(|name| {
        let cap = cap_of(*name)?;
        (used(*name) >= cap).then(|| Stop { meter: name.as_str().to_owned(), limit: cap, used: used(*name) })
    });
    let was = meter.stopped();
    if let (Some(stop), None) = (&stop, &was) {
        record_stop(state, &app.id, stop, "traffic").await?;
    }
    meter.set_stop(stop);
    Ok(())
}

async fn record_stop(state: &ControlState, app_id: &AppId, stop: &Stop, stopped: &str) -> Result<(), ApiFailure> {
    tracing::info!(app_id = %app_id, meter = %stop.meter, limit = stop.limit, stopped, "cap reached: usage stopped");
    let event = UsageEvent {
        at: now(),
        meter: stop.meter.clone(),
        cap: stop.limit,
        used: stop.used,
        stopped: stopped.to_owned(),
    };
    state.store().record_usage_event(app_id.as_str(), &event).await?;
    Ok(())
}

/// The build-minutes or storage cap `app` has reached this period, if any: new builds stop.
pub(crate) fn build_cap_reached(caps: &[CapRecord], totals: &BTreeMap<String, f64>) -> Option<Stop> {
    BUILD_STOPPING.iter().find_map(|name| {
        let cap = caps.iter().find(|cap| cap.meter == name.as_str())?;
        let used = totals.get(name.as_str()).copied().unwrap_or(0.0);
        (used >= cap.cap).then(|| Stop { meter: name.as_str().to_owned(), limit: cap.cap, used })
    })
}

/// Why a new build of `app` is refused, if a build-minutes or storage cap is reached; the
/// refusal is recorded as a cap event.
pub(crate) async fn build_refusal(
    state: &ControlState,
    app: &AppRecord,
    caps: &[CapRecord],
) -> Result<Option<Failure>, ApiFailure> {
    if caps.is_empty() {
        return Ok(None);
    }
    let totals = app_totals(state, &app.id).await?;
    let Some(stop) = build_cap_reached(caps, &totals) else { return Ok(None) };
    record_stop(state, &app.id, &stop, "build").await?;
    let unit = Meter::from_name(&stop.meter).map(Meter::unit).unwrap_or("unit");
    Ok(Some(Failure {
        reason: tovuk_api_types::FailureReason::CapReached,
        phase: Some(tovuk_types::DeployState::Queued),
        exit_code: None,
        first_actionable_line: Some(format!(
            "the `{meter}` cap of `{app}` is reached ({used} of {limit} {unit}s this period): raise it with tovuk caps set {app} {meter} <new limit>",
            meter = stop.meter,
            app = app.name,
            used = round6(stop.used),
            limit = stop.limit,
        )),
        missing: Vec::new(),
        blockers: String::new(),
    }))
}

/// Records the minutes a build took.
pub(crate) async fn record_build_minutes(state: &ControlState, app_id: &AppId, minutes: f64) {
    if minutes <= 0.0 || !state.meters().enabled() {
        return;
    }
    let entry = UsageEntry {
        app_id: app_id.to_string(),
        hour: hour_now(),
        meter: Meter::BuildMinutes.as_str().into(),
        quantity: minutes,
        resource_id: None,
    };
    if let Err(error) = state.store().add_usage(&[entry]).await {
        tracing::warn!(%error, "cannot record build minutes");
    }
}

/// Stores the router's counts every second, grants capped meters their budget ahead, and
/// measures storage every minute, until shutdown.
pub async fn run_metering(state: ControlState, shutdown: Shutdown) -> anyhow::Result<()> {
    if !state.meters().enabled() {
        return Ok(());
    }
    // Before any cap is handed to the router: what the last process was granted and did
    // not store counts against the caps.
    state.store().account_for_lost_grants(&current_period().first_hour).await?;
    for app in state.store().list_apps().await? {
        if let Err(error) = enforce_caps(&state, &app).await {
            tracing::warn!(app = %app.name, error = %error.0.message, "cannot load the app's caps");
        }
    }
    let mut period = current_period().name;
    let mut steps = GrantSteps::default();
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    let mut storage = tokio::time::interval(STORAGE_EVERY);
    loop {
        tokio::select! {
            () = shutdown.wait() => {
                flush_counts(&state).await;
                return_unspent_grants(&state).await;
                return Ok(());
            }
            _ = flush.tick() => {
                let drained = flush_counts(&state).await;
                steps.follow(&drained);
                raise_grants(&state, &steps).await;
                // A new period starts every cap from zero.
                let now = current_period().name;
                if now != period {
                    period = now;
                    for app in state.store().list_apps().await.unwrap_or_default() {
                        let _ = enforce_caps(&state, &app).await;
                    }
                }
            }
            () = state.meters().grant_wanted() => {
                steps.hurry(&state.meters().grants());
                raise_grants(&state, &steps).await;
            }
            _ = storage.tick() => measure_storage(&state).await,
        }
    }
}

/// How far ahead each capped meter is granted: two flush intervals of its last traffic, at
/// least the minimum, doubled whenever requests had to wait.
#[derive(Default)]
struct GrantSteps {
    steps: HashMap<(String, Meter), u64>,
}

impl GrantSteps {
    fn step(&self, app: &str, meter: Meter) -> u64 {
        let least = if meter == Meter::Requests { MIN_REQUEST_GRANT } else { MIN_EGRESS_GRANT };
        self.steps.get(&(app.to_owned(), meter)).copied().unwrap_or(least).max(least)
    }

    fn follow(&mut self, drained: &[(String, Drained)]) {
        self.steps.clear();
        for (app, counts) in drained {
            self.steps.insert((app.clone(), Meter::Requests), counts.requests.saturating_mul(2));
            self.steps.insert((app.clone(), Meter::EgressBytes), counts.egress_bytes.saturating_mul(2));
        }
    }

    fn hurry(&mut self, grants: &[(String, tovuk_meter::Grants)]) {
        for (app, grants) in grants {
            for (meter, grant) in [(Meter::Requests, grants.requests), (Meter::EgressBytes, grants.egress_bytes)] {
                if grant.is_some_and(|grant| grant.counted >= grant.granted) {
                    let doubled = self.step(app, meter).saturating_mul(2);
                    self.steps.insert((app.clone(), meter), doubled);
                }
            }
        }
    }
}

/// The grant a meter should have now, if it needs a higher one: a step ahead of its count.
/// Raised every flush while traffic flows, so it never runs out at a steady rate.
fn next_grant(grant: GrantState, step: u64) -> Option<u64> {
    let target = grant.limit.min(grant.counted.saturating_add(step));
    (target > grant.granted).then_some(target)
}

/// Raises the grants that run low: stored first, then handed to the router.
async fn raise_grants(state: &ControlState, steps: &GrantSteps) {
    let _moving = state.inner.metering.lock().await;
    let mut raised = Vec::new();
    for (name, grants) in state.meters().grants() {
        let requests = grants.requests.and_then(|grant| next_grant(grant, steps.step(&name, Meter::Requests)));
        let egress = grants.egress_bytes.and_then(|grant| next_grant(grant, steps.step(&name, Meter::EgressBytes)));
        if requests.is_none() && egress.is_none() {
            continue;
        }
        let Ok(Some(app)) = state.store().find_app(&name).await else { continue };
        raised.push((app, requests, egress));
    }
    let rows: Vec<(String, String, u64)> = raised
        .iter()
        .flat_map(|(app, requests, egress)| {
            [(Meter::Requests, requests), (Meter::EgressBytes, egress)].into_iter().filter_map(|(meter, granted)| {
                granted.map(|granted| (app.id.to_string(), meter.as_str().to_owned(), granted))
            })
        })
        .collect();
    if let Err(error) = state.store().set_meter_grants(&current_period().first_hour, &rows).await {
        // Nothing is handed out that is not stored: capped apps wait, then get 503.
        tracing::error!(%error, "cannot store cap grants; capped apps are refused until the store takes writes");
        return;
    }
    for (app, requests, egress) in raised {
        state.meters().app(&app.name).raise_grants(requests, egress);
    }
}

/// At a clean stop: grants shrink to what was counted, so a restart costs no cap budget.
async fn return_unspent_grants(state: &ControlState) {
    if let Err(error) = state.store().return_unspent_grants(&current_period().first_hour).await {
        tracing::warn!(%error, "cannot return unspent cap grants; they count against the caps after the restart");
        return;
    }
    // The router spends nothing more that is not stored.
    for app in state.store().list_apps().await.unwrap_or_default() {
        if state.meters().get(&app.name).is_some() {
            let _ = enforce_caps(state, &app).await;
        }
    }
}

/// Stores what the router counted since the last flush; returns it.
async fn flush_counts(state: &ControlState) -> Vec<(String, Drained)> {
    let moving = state.inner.metering.lock().await;
    let drained = state.meters().drain();
    if drained.is_empty() {
        return drained;
    }
    let hour = hour_now();
    let mut entries = Vec::new();
    for (name, counts) in &drained {
        let Ok(Some(app)) = state.store().find_app(name).await else { continue };
        for (meter, quantity) in [(Meter::Requests, counts.requests), (Meter::EgressBytes, counts.egress_bytes)] {
            if quantity > 0 {
                entries.push(UsageEntry {
                    app_id: app.id.to_string(),
                    hour: hour.clone(),
                    meter: meter.as_str().into(),
                    quantity: quantity as f64,
                    resource_id: None,
                });
            }
        }
        for (resource, meter, quantity) in &counts.resources {
            entries.push(UsageEntry {
                app_id: app.id.to_string(),
                hour: hour.clone(),
                meter: meter.as_str().into(),
                quantity: *quantity as f64,
                resource_id: Some(resource.clone()),
            });
        }
        for stop in &counts.newly_stopped {
            let stopped = match stop.meter.as_str() {
                "requests" => "requests",
                "kv_reads" => "kv reads",
                "kv_writes" => "kv writes",
                "object_class_a_ops" => "object writes and lists",
                "object_class_b_ops" => "object reads",
                "object_storage_gb_month" => "object uploads",
                "queue_messages" => "queue sends",
                "cron_invocations" => "cron runs",
                "state_reads" => "State reads",
                "state_writes" => "State writes",
                _ => "traffic",
            };
            if let Err(error) = record_stop(state, &app.id, stop, stopped).await {
                tracing::warn!(app = %app.name, error = %error.0.message, "cannot record a cap stop");
            }
        }
    }
    if let Err(error) = state.store().add_usage(&entries).await {
        // The counts are lost for billing, never double-counted; caps still hold by their grants.
        tracing::warn!(%error, "cannot store metered usage");
    }
    drop(moving);
    drained
}

/// Adds each app's storage (its volume and its kept artifacts) for the minute just past.
async fn measure_storage(state: &ControlState) {
    let Ok(apps) = state.store().list_apps().await else { return };
    let hour = hour_now();
    let mut entries = Vec::new();
    for app in apps {
        let volume = state.config().layout.volume_dir(&app.name);
        let mut bytes = tokio::task::spawn_blocking(move || dir_size(&volume)).await.unwrap_or(0);
        if let Ok(artifacts) = state.store().artifact_digests(app.id.as_str()).await {
            // Config releases share their base's artifact: count each file once.
            let digests: std::collections::BTreeSet<String> = artifacts.into_iter().map(|(_, digest)| digest).collect();
            for digest in digests {
                let file = state.artifacts_dir().join(format!("{}.tar.zst", digest.trim_start_matches("sha256:")));
                bytes += std::fs::metadata(file).map(|meta| meta.len()).unwrap_or(0);
            }
        }
        // What the app's resources hold where they are served (the KV, its buckets, its State
        // objects); a SQLite file is in the volume, counted above.
        let sizes = state.meters().get(&app.name).map(|meter| meter.resource_sizes()).unwrap_or_default();
        if !sizes.is_empty() {
            let kinds: HashMap<String, String> = state
                .store()
                .app_resources(app.id.as_str())
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|record| (record.id, record.kind))
                .collect();
            for (resource, held) in sizes {
                let meter = match kinds.get(&resource).map(String::as_str) {
                    Some("kv" | "state") => Meter::StorageGbMonth,
                    Some("object-storage") => Meter::ObjectStorageGbMonth,
                    _ => continue,
                };
                if held > 0 {
                    entries.push(UsageEntry {
                        app_id: app.id.to_string(),
                        hour: hour.clone(),
                        meter: meter.as_str().into(),
                        quantity: held as f64 / 1e9 * STORAGE_EVERY.as_secs_f64() / MONTH_SECS,
                        resource_id: Some(resource),
                    });
                }
            }
        }
        if bytes > 0 {
            let gb = bytes as f64 / 1e9;
            entries.push(UsageEntry {
                app_id: app.id.to_string(),
                hour: hour.clone(),
                meter: Meter::StorageGbMonth.as_str().into(),
                quantity: gb * STORAGE_EVERY.as_secs_f64() / MONTH_SECS,
                resource_id: None,
            });
        }
    }
    if let Err(error) = state.store().add_usage(&entries).await {
        tracing::warn!(%error, "cannot store storage usage");
    }
}

fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => dir_size(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map(|meta| meta.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}
