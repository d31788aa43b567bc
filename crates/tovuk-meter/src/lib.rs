//! Live usage counters per app, shared in-process by the router (which counts requests and
//! egress and refuses what a cap stops) and the control plane (which drains the counts into
//! the store and sets each app's caps).
//!
//! Counting is a few relaxed atomic adds per request, so metering costs the router next to
//! nothing. A request cap is exact: each request takes one unit of the period's count with
//! one atomic add, and only those within the limit pass. Other caps stop an app's traffic
//! through a flag the control plane sets once it sees the stored usage reach the limit.
//!
//! A capped meter also admits only within its *grant*: budget the control plane has
//! written to the store before the router may spend it. Counts reach the store a second
//! late, so a crash loses them; the grant does not, and after a restart everything granted
//! counts against the cap. A cap therefore holds across `kill -9`. A request that finds its
//! grant spent waits for the next one (the control plane is woken at once).

use arc_swap::{ArcSwap, ArcSwapOption};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// No limit.
const UNCAPPED: u64 = u64::MAX;

/// Every app's meter. Readers look an app up without locking.
#[derive(Debug)]
pub struct Meters {
    enabled: bool,
    apps: ArcSwap<HashMap<String, Arc<AppMeter>>>,
    /// Serialises adding apps (the map is copied on write; apps are added rarely).
    adding: Mutex<()>,
    /// Woken when a request waits for a grant.
    grant_wanted: Notify,
}

/// Why a request is not admitted.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// A cap is reached.
    Cap(Stop),
    /// The grant is spent and no new one came in time (the store takes no writes).
    Ungranted,
}

/// What a capped meter has counted and may count, for the control plane to grant more.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GrantState {
    /// This period's count as the router knows it (stored, unaccounted and undrained).
    pub counted: u64,
    pub granted: u64,
    pub limit: u64,
}

/// The grant states of an app's capped meters.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Grants {
    pub requests: Option<GrantState>,
    pub egress_bytes: Option<GrantState>,
}

/// Why an app's traffic is stopped: the meter whose cap it reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Stop {
    pub meter: String,
    pub limit: f64,
    /// The usage this period when the stop was set.
    pub used: f64,
}

/// What a drain took from an app's counters.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Drained {
    pub requests: u64,
    pub egress_bytes: u64,
    /// Requests refused because of a cap.
    pub refused: u64,
    /// The caps that started refusing requests since the last drain, in order.
    pub newly_stopped: Vec<Stop>,
    /// Operations the app's resources served, by resource id and meter.
    pub resources: Vec<(String, ResourceMeter, u64)>,
}

/// A meter the platform's resources count as they serve (the KV, object storage, queues, cron).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceMeter {
    KvReads,
    KvWrites,
    ObjectClassAOps,
    ObjectClassBOps,
    /// Calls through a service binding, counted on the calling app by the router.
    ServiceBindingCalls,
    /// Messages sent to a queue (one per message of a batch).
    QueueMessages,
    /// Runs of a cron resource (each one started).
    CronInvocations,
    /// Reads of a State object's storage (a get, a checked key, a listed entry).
    StateReads,
    /// Writes of a State object's storage (a put or a delete).
    StateWrites,
}

/// How many resource meters there are: the length of every per-meter array.
pub const RESOURCE_METERS: usize = 9;

impl ResourceMeter {
    pub const ALL: [ResourceMeter; RESOURCE_METERS] = [
        ResourceMeter::KvReads,
        ResourceMeter::KvWrites,
        ResourceMeter::ObjectClassAOps,
        ResourceMeter::ObjectClassBOps,
        ResourceMeter::ServiceBindingCalls,
        ResourceMeter::QueueMessages,
        ResourceMeter::CronInvocations,
        ResourceMeter::StateReads,
        ResourceMeter::StateWrites,
    ];

    /// The meter's name in the price table.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceMeter::KvReads => "kv_reads",
            ResourceMeter::KvWrites => "kv_writes",
            ResourceMeter::ObjectClassAOps => "object_class_a_ops",
            ResourceMeter::ObjectClassBOps => "object_class_b_ops",
            ResourceMeter::ServiceBindingCalls => "service_binding_calls",
            ResourceMeter::QueueMessages => "queue_messages",
            ResourceMeter::CronInvocations => "cron_invocations",
            ResourceMeter::StateReads => "state_reads",
            ResourceMeter::StateWrites => "state_writes",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The caps on an app's resource meters and the period's stored usage they count from.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ResourceCaps {
    /// By [`ResourceMeter`] order.
    pub limits: [Option<u64>; RESOURCE_METERS],
    pub stored: [u64; RESOURCE_METERS],
    /// The most bytes the app's buckets may hold: a cap on `object_storage_gb_month`, which
    /// holding more for the rest of the month could pass.
    pub object_bytes: Option<u64>,
}

/// One resource meter's period count and cap.
#[derive(Debug)]
struct ResourceCounter {
    period: AtomicU64,
    limit: AtomicU64,
}

impl Default for ResourceCounter {
    fn default() -> Self {
        ResourceCounter { period: AtomicU64::new(0), limit: AtomicU64::new(UNCAPPED) }
    }
}

/// One app's counters and caps.
#[derive(Debug)]
pub struct AppMeter {
    /// Since the last drain.
    requests: AtomicU64,
    egress_bytes: AtomicU64,
    refused: AtomicU64,
    /// This period's totals, as far as the router knows: stored usage plus what it counted since.
    period_requests: AtomicU64,
    period_egress: AtomicU64,
    request_limit: AtomicU64,
    egress_limit: AtomicU64,
    /// Admission stops at these period totals until the control plane grants more.
    request_grant: AtomicU64,
    egress_grant: AtomicU64,
    /// Woken when a grant is raised.
    granted: Notify,
    /// Set by the control plane when a cap on another meter stops the app.
    stop: ArcSwapOption<Stop>,
    /// Set by the first refusal after a drain, so each stop is reported once.
    reported: AtomicBool,
    newly_stopped: Mutex<Vec<Stop>>,
    /// Resource meters, by [`ResourceMeter`] order.
    resource_counters: [ResourceCounter; RESOURCE_METERS],
    /// Counted since the last drain, by resource and meter.
    resource_pending: Mutex<HashMap<(String, ResourceMeter), u64>>,
    /// Each resource meter's stop, reported once per crossing.
    resource_reported: [AtomicBool; RESOURCE_METERS],
    object_bytes_limit: AtomicU64,
    /// The bytes each resource holds, as last measured where it is served.
    sizes: Mutex<HashMap<String, u64>>,
}

impl Default for AppMeter {
    fn default() -> Self {
        AppMeter {
            requests: AtomicU64::new(0),
            egress_bytes: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            period_requests: AtomicU64::new(0),
            period_egress: AtomicU64::new(0),
            request_limit: AtomicU64::new(UNCAPPED),
            egress_limit: AtomicU64::new(UNCAPPED),
            request_grant: AtomicU64::new(UNCAPPED),
            egress_grant: AtomicU64::new(UNCAPPED),
            granted: Notify::new(),
            stop: ArcSwapOption::empty(),
            reported: AtomicBool::new(false),
            newly_stopped: Mutex::new(Vec::new()),
            resource_counters: Default::default(),
            resource_pending: Mutex::new(HashMap::new()),
            resource_reported: Default::default(),
            object_bytes_limit: AtomicU64::new(UNCAPPED),
            sizes: Mutex::new(HashMap::new()),
        }
    }
}

/// The caps the router enforces itself, and the period's stored usage they count from.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TrafficCaps {
    pub requests: Option<u64>,
    pub egress_bytes: Option<u64>,
    /// Stored usage this period, with what was granted but never counted (the undrained
    /// counts are added on top).
    pub stored_requests: u64,
    pub stored_egress_bytes: u64,
    /// The stored grants: what the router may admit up to (only with a cap).
    pub granted_requests: u64,
    pub granted_egress_bytes: u64,
}

impl Meters {
    /// `enabled: false` turns counting and caps off (benchmarks compare the two).
    pub fn new(enabled: bool) -> Arc<Meters> {
        Arc::new(Meters { enabled, apps: ArcSwap::default(), adding: Mutex::new(()), grant_wanted: Notify::new() })
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The meter of `app`, if it has counted anything or has caps.
    pub fn get(&self, app: &str) -> Option<Arc<AppMeter>> {
        if !self.enabled {
            return None;
        }
        self.apps.load().get(app).cloned()
    }

    /// The meter of `app`, made on first use.
    pub fn app(&self, app: &str) -> Arc<AppMeter> {
        if let Some(meter) = self.apps.load().get(app) {
            return meter.clone();
        }
        let _adding = self.adding.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = self.apps.load_full();
        if let Some(meter) = current.get(app) {
            return meter.clone();
        }
        let meter = Arc::new(AppMeter::default());
        let mut apps = (*current).clone();
        apps.insert(app.to_owned(), meter.clone());
        self.apps.store(Arc::new(apps));
        meter
    }

    /// Takes every app's counts since the last drain (apps with nothing to report are left out).
    pub fn drain(&self) -> Vec<(String, Drained)> {
        let apps = self.apps.load_full();
        let mut drained = Vec::new();
        for (app, meter) in apps.iter() {
            let counts = meter.drain();
            if counts != Drained::default() {
                drained.push((app.clone(), counts));
            }
        }
        drained.sort_by(|a, b| a.0.cmp(&b.0));
        drained
    }

    /// Resolves when a request waits for a grant.
    pub async fn grant_wanted(&self) {
        self.grant_wanted.notified().await;
    }

    /// The grant state of every app with a capped meter.
    pub fn grants(&self) -> Vec<(String, Grants)> {
        let apps = self.apps.load_full();
        let mut grants: Vec<(String, Grants)> = apps
            .iter()
            .map(|(app, meter)| (app.clone(), meter.grants()))
            .filter(|(_, grants)| grants.requests.is_some() || grants.egress_bytes.is_some())
            .collect();
        grants.sort_by(|a, b| a.0.cmp(&b.0));
        grants
    }

    /// Forgets an app (it was deleted).
    pub fn remove(&self, app: &str) {
        let _adding = self.adding.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut apps = (*self.apps.load_full()).clone();
        apps.remove(app);
        self.apps.store(Arc::new(apps));
    }
}

impl AppMeter {
    /// Admits one request, or says which cap stops it or that its grant is spent. An
    /// admitted request is counted.
    pub fn admit(&self) -> Result<(), Refusal> {
        if let Some(stop) = self.stop.load().as_ref() {
            return Err(Refusal::Cap(self.refuse(Stop::clone(stop))));
        }
        let egress_limit = self.egress_limit.load(Ordering::Relaxed);
        if egress_limit != UNCAPPED {
            let egress = self.period_egress.load(Ordering::Relaxed);
            if egress >= egress_limit {
                return Err(Refusal::Cap(self.refuse(Stop {
                    meter: "egress_bytes".into(),
                    limit: egress_limit as f64,
                    used: egress as f64,
                })));
            }
            if egress >= self.egress_grant.load(Ordering::Acquire) {
                return Err(Refusal::Ungranted);
            }
        }
        let limit = self.request_limit.load(Ordering::Relaxed);
        if limit == UNCAPPED {
            self.period_requests.fetch_add(1, Ordering::Relaxed);
        } else {
            // One atomic add hands each request its place in the period: exactly `limit` pass.
            let place = self.period_requests.fetch_add(1, Ordering::Relaxed) + 1;
            if place > limit {
                self.period_requests.fetch_sub(1, Ordering::Relaxed);
                let stop = Stop { meter: "requests".into(), limit: limit as f64, used: limit as f64 };
                return Err(Refusal::Cap(self.refuse(stop)));
            }
            if place > self.request_grant.load(Ordering::Acquire) {
                self.period_requests.fetch_sub(1, Ordering::Relaxed);
                return Err(Refusal::Ungranted);
            }
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// [`AppMeter::admit`], waiting up to `patience` for a grant when the current one is spent.
    pub async fn admit_waiting(&self, meters: &Meters, patience: Duration) -> Result<(), Refusal> {
        // The common case touches no lock: registering as a waiter does.
        match self.admit() {
            Err(Refusal::Ungranted) => {}
            outcome => return outcome,
        }
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            // Registered before the check, so a grant raised in between is not missed.
            let raised = self.granted.notified();
            tokio::pin!(raised);
            raised.as_mut().enable();
            match self.admit() {
                Err(Refusal::Ungranted) => {
                    meters.grant_wanted.notify_one();
                    if tokio::time::timeout_at(deadline, raised).await.is_err() {
                        return Err(Refusal::Ungranted);
                    }
                }
                outcome => return outcome,
            }
        }
    }

    /// The grant state of the capped meters.
    pub fn grants(&self) -> Grants {
        let state = |limit: &AtomicU64, counted: &AtomicU64, granted: &AtomicU64| {
            let limit = limit.load(Ordering::Relaxed);
            (limit != UNCAPPED).then(|| GrantState {
                counted: counted.load(Ordering::Relaxed),
                granted: granted.load(Ordering::Acquire),
                limit,
            })
        };
        Grants {
            requests: state(&self.request_limit, &self.period_requests, &self.request_grant),
            egress_bytes: state(&self.egress_limit, &self.period_egress, &self.egress_grant),
        }
    }

    /// Raises the grants to these stored values (`None` leaves one as it is).
    pub fn raise_grants(&self, requests: Option<u64>, egress_bytes: Option<u64>) {
        if let Some(granted) = requests {
            self.request_grant.fetch_max(granted, Ordering::AcqRel);
        }
        if let Some(granted) = egress_bytes {
            self.egress_grant.fetch_max(granted, Ordering::AcqRel);
        }
        self.granted.notify_waiters();
    }

    fn refuse(&self, stop: Stop) -> Stop {
        self.refused.fetch_add(1, Ordering::Relaxed);
        if !self.reported.swap(true, Ordering::Relaxed) {
            let mut newly = self.newly_stopped.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            newly.push(stop.clone());
        }
        stop
    }

    /// Counts response bytes sent for the app.
    pub fn add_egress(&self, bytes: u64) {
        self.egress_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.period_egress.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Sets the caps the router enforces and the stored usage they count from. Takes effect
    /// for the next request, so a cap below current usage stops traffic at once.
    pub fn set_traffic_caps(&self, caps: TrafficCaps) {
        let pending_requests = self.requests.load(Ordering::Relaxed);
        let pending_egress = self.egress_bytes.load(Ordering::Relaxed);
        let period_requests = caps.stored_requests.saturating_add(pending_requests);
        let period_egress = caps.stored_egress_bytes.saturating_add(pending_egress);
        let request_limit = caps.requests.unwrap_or(UNCAPPED);
        let egress_limit = caps.egress_bytes.unwrap_or(UNCAPPED);
        self.period_requests.store(period_requests, Ordering::Relaxed);
        self.period_egress.store(period_egress, Ordering::Relaxed);
        self.request_limit.store(request_limit, Ordering::Relaxed);
        self.egress_limit.store(egress_limit, Ordering::Relaxed);
        let grant = |limit: u64, granted: u64| if limit == UNCAPPED { UNCAPPED } else { granted };
        self.request_grant.store(grant(request_limit, caps.granted_requests), Ordering::Release);
        self.egress_grant.store(grant(egress_limit, caps.granted_egress_bytes), Ordering::Release);
        self.granted.notify_waiters();
        // Called every few seconds with the same caps: the stop goes on and is not reported
        // again. Only once traffic passes again (a cap raised or removed, a new period) is
        // the next refusal a new crossing, reported once more.
        let requests_pass = request_limit == UNCAPPED || period_requests < request_limit;
        let egress_passes = egress_limit == UNCAPPED || period_egress < egress_limit;
        if requests_pass && egress_passes && self.stop.load().is_none() {
            self.reported.store(false, Ordering::Relaxed);
        }
    }

    /// Stops (or, with `None`, resumes) the app's traffic because of a cap on another meter.
    pub fn set_stop(&self, stop: Option<Stop>) {
        if stop.is_none() {
            self.reported.store(false, Ordering::Relaxed);
        }
        self.stop.store(stop.map(Arc::new));
    }

    /// The stop set with [`AppMeter::set_stop`], if any.
    pub fn stopped(&self) -> Option<Stop> {
        self.stop.load().as_deref().cloned()
    }

    /// Admits and counts `n` operations of `meter` on `resource`, or says which cap stops
    /// them. Exact however many connections race: each takes its place with one atomic add.
    pub fn admit_resource(&self, resource: &str, meter: ResourceMeter, n: u64) -> Result<(), Stop> {
        if n == 0 {
            return Ok(());
        }
        let counter = &self.resource_counters[meter.index()];
        let limit = counter.limit.load(Ordering::Relaxed);
        let place = counter.period.fetch_add(n, Ordering::Relaxed).saturating_add(n);
        if limit != UNCAPPED && place > limit {
            counter.period.fetch_sub(n, Ordering::Relaxed);
            let stop = Stop { meter: meter.as_str().into(), limit: limit as f64, used: limit as f64 };
            if !self.resource_reported[meter.index()].swap(true, Ordering::Relaxed) {
                lock(&self.newly_stopped).push(stop.clone());
            }
            return Err(stop);
        }
        *lock(&self.resource_pending).entry((resource.to_owned(), meter)).or_default() += n;
        Ok(())
    }

    /// Whether the app's buckets, holding `held` bytes, may take `incoming` more.
    pub fn admit_object_bytes(&self, held: u64, incoming: u64) -> Result<(), Stop> {
        let limit = self.object_bytes_limit.load(Ordering::Relaxed);
        if limit == UNCAPPED || held.saturating_add(incoming) <= limit {
            return Ok(());
        }
        Err(Stop { meter: "object_storage_gb_month".into(), limit: limit as f64 / 1e9, used: held as f64 / 1e9 })
    }

    /// Sets the caps on the resource meters and the stored usage they count from.
    pub fn set_resource_caps(&self, caps: ResourceCaps) {
        let pending = lock(&self.resource_pending);
        for meter in ResourceMeter::ALL {
            let undrained: u64 =
                pending.iter().filter(|((_, counted), _)| *counted == meter).map(|(_, count)| *count).sum();
            let counter = &self.resource_counters[meter.index()];
            let limit = caps.limits[meter.index()].unwrap_or(UNCAPPED);
            let period = caps.stored[meter.index()].saturating_add(undrained);
            counter.period.store(period, Ordering::Relaxed);
            counter.limit.store(limit, Ordering::Relaxed);
            if limit == UNCAPPED || period < limit {
                self.resource_reported[meter.index()].store(false, Ordering::Relaxed);
            }
        }
        self.object_bytes_limit.store(caps.object_bytes.unwrap_or(UNCAPPED), Ordering::Relaxed);
    }

    /// Records what a resource holds now (measured where it is served).
    pub fn set_resource_size(&self, resource: &str, bytes: u64) {
        lock(&self.sizes).insert(resource.to_owned(), bytes);
    }

    /// The last measured size of each of the app's resources.
    pub fn resource_sizes(&self) -> HashMap<String, u64> {
        lock(&self.sizes).clone()
    }

    fn drain(&self) -> Drained {
        let mut resources: Vec<(String, ResourceMeter, u64)> = std::mem::take(&mut *lock(&self.resource_pending))
            .into_iter()
            .map(|((resource, meter), count)| (resource, meter, count))
            .collect();
        resources.sort();
        Drained {
            requests: self.requests.swap(0, Ordering::Relaxed),
            egress_bytes: self.egress_bytes.swap(0, Ordering::Relaxed),
            refused: self.refused.swap(0, Ordering::Relaxed),
            newly_stopped: std::mem::take(&mut *lock(&self.newly_stopped)),
            resources,
        }
    }
}

/// A lock whose holder panicked is still good: every value behind one is a plain count.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Caps with everything granted: the tests of caps alone.
    fn granted(caps: TrafficCaps) -> TrafficCaps {
        TrafficCaps { granted_requests: UNCAPPED, granted_egress_bytes: UNCAPPED, ..caps }
    }

    fn stopped_by(outcome: Result<(), Refusal>) -> Option<String> {
        match outcome {
            Err(Refusal::Cap(stop)) => Some(stop.meter),
            _ => None,
        }
    }

    #[test]
    fn a_request_cap_lets_exactly_the_limit_through_even_when_raced() {
        let meters = Meters::new(true);
        let meter = meters.app("app");
        meter.set_traffic_caps(granted(TrafficCaps {
            requests: Some(1000),
            stored_requests: 200,
            ..TrafficCaps::default()
        }));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let meter = meter.clone();
                std::thread::spawn(move || (0..500).filter(|_| meter.admit().is_ok()).count())
            })
            .collect();
        let admitted: usize = threads.into_iter().map(|thread| thread.join().unwrap_or(0)).sum();
        assert_eq!(admitted, 800);
        let drained = meters.drain();
        let stop = Stop { meter: "requests".into(), limit: 1000.0, used: 1000.0 };
        assert_eq!(
            drained,
            vec![(
                "app".to_owned(),
                Drained { requests: 800, egress_bytes: 0, refused: 1200, newly_stopped: vec![stop], resources: vec![] }
            )]
        );
        assert_eq!(meters.drain(), vec![], "a drain takes the counts");
        assert_eq!(stopped_by(meter.admit()).as_deref(), Some("requests"), "still capped");
    }

    #[test]
    fn a_stop_is_reported_once_per_crossing_however_often_the_caps_are_handed_over() {
        let meters = Meters::new(true);
        let meter = meters.app("app");
        let caps =
            |stored| granted(TrafficCaps { requests: Some(2), stored_requests: stored, ..TrafficCaps::default() });
        meter.set_traffic_caps(caps(0));
        let newly = |meters: &Meters| -> usize { meters.drain().into_iter().map(|(_, d)| d.newly_stopped.len()).sum() };
        assert!(meter.admit().is_ok() && meter.admit().is_ok() && meter.admit().is_err());
        assert_eq!(newly(&meters), 1, "the crossing");
        // The control plane hands the same caps over every few seconds while traffic is refused.
        for _ in 0..5 {
            meter.set_traffic_caps(caps(2));
            assert!(meter.admit().is_err());
            assert_eq!(newly(&meters), 0, "the same stop reported again");
        }
        // Raised: traffic passes, and the next crossing is a new stop.
        meter.set_traffic_caps(granted(TrafficCaps {
            requests: Some(3),
            stored_requests: 2,
            ..TrafficCaps::default()
        }));
        assert!(meter.admit().is_ok() && meter.admit().is_err());
        assert_eq!(newly(&meters), 1, "a new crossing");
    }

    #[test]
    fn a_cap_below_usage_stops_at_once_and_raising_it_resumes() {
        let meters = Meters::new(true);
        let meter = meters.app("app");
        for _ in 0..3 {
            assert!(meter.admit().is_ok());
        }
        meter.set_traffic_caps(granted(TrafficCaps { requests: Some(2), ..TrafficCaps::default() }));
        assert!(meter.admit().is_err(), "3 undrained requests are already past 2");
        meter.set_traffic_caps(granted(TrafficCaps { requests: Some(4), ..TrafficCaps::default() }));
        assert!(meter.admit().is_ok());
        assert!(meter.admit().is_err());
    }

    #[test]
    fn egress_and_other_caps_stop_traffic_with_their_meter() {
        let meters = Meters::new(true);
        let meter = meters.app("app");
        meter.set_traffic_caps(granted(TrafficCaps { egress_bytes: Some(100), ..TrafficCaps::default() }));
        assert!(meter.admit().is_ok());
        meter.add_egress(150);
        assert_eq!(stopped_by(meter.admit()).as_deref(), Some("egress_bytes"));
        meter.set_traffic_caps(TrafficCaps::default());
        meter.set_stop(Some(Stop { meter: "cpu_ms".into(), limit: 10.0, used: 12.0 }));
        assert_eq!(stopped_by(meter.admit()).as_deref(), Some("cpu_ms"));
        meter.set_stop(None);
        assert!(meter.admit().is_ok());
    }

    #[test]
    fn a_capped_meter_admits_only_within_its_grant() {
        let meters = Meters::new(true);
        let meter = meters.app("app");
        let caps =
            TrafficCaps { requests: Some(100), stored_requests: 10, granted_requests: 12, ..TrafficCaps::default() };
        meter.set_traffic_caps(caps);
        assert!(meter.admit().is_ok() && meter.admit().is_ok());
        assert_eq!(meter.admit(), Err(Refusal::Ungranted), "the grant is spent");
        assert_eq!(meters.drain()[0].1.requests, 2, "a request without a grant is not counted");
        let grants = meters.grants();
        assert_eq!(grants[0].1.requests, Some(GrantState { counted: 12, granted: 12, limit: 100 }));
        assert_eq!(grants[0].1.egress_bytes, None, "no egress cap, no egress grant");
        meter.raise_grants(Some(13), None);
        assert!(meter.admit().is_ok());
        assert_eq!(meter.admit(), Err(Refusal::Ungranted));
        // Uncapped meters need no grant.
        let free = meters.app("free");
        assert!((0..1000).all(|_| free.admit().is_ok()));
        assert!(meters.grants().iter().all(|(app, _)| app == "app"));
    }

    #[tokio::test]
    async fn a_request_waits_for_its_grant_and_gives_up_after_its_patience() {
        let meters = Meters::new(true);
        let meter = meters.app("app");
        meter.set_traffic_caps(TrafficCaps { requests: Some(100), ..TrafficCaps::default() });
        let waiting = {
            let (meters, meter) = (meters.clone(), meter.clone());
            tokio::spawn(async move { meter.admit_waiting(&meters, Duration::from_secs(10)).await })
        };
        // The control plane is woken, writes a grant, raises it.
        tokio::time::timeout(Duration::from_secs(5), meters.grant_wanted()).await.expect("woken");
        meter.raise_grants(Some(1), None);
        assert_eq!(waiting.await.expect("task"), Ok(()));
        let outcome = meter.admit_waiting(&meters, Duration::from_millis(50)).await;
        assert_eq!(outcome, Err(Refusal::Ungranted), "no grant came");
    }

    #[test]
    fn a_resource_cap_admits_exactly_its_limit_and_reports_the_crossing_once() {
        let meters = Meters::new(true);
        let meter = meters.app("app");
        let mut caps = ResourceCaps::default();
        caps.limits[1] = Some(1000);
        caps.stored[1] = 100;
        meter.set_resource_caps(caps);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let meter = meter.clone();
                std::thread::spawn(move || {
                    (0..500).filter(|_| meter.admit_resource("res_a", ResourceMeter::KvWrites, 1).is_ok()).count()
                })
            })
            .collect();
        let admitted: usize = threads.into_iter().map(|thread| thread.join().unwrap_or(0)).sum();
        assert_eq!(admitted, 900);
        assert!(meter.admit_resource("res_a", ResourceMeter::KvReads, 5).is_ok(), "reads are not capped");
        let drained = meters.drain();
        assert_eq!(
            drained[0].1.resources,
            vec![("res_a".to_owned(), ResourceMeter::KvReads, 5), ("res_a".to_owned(), ResourceMeter::KvWrites, 900)]
        );
        assert_eq!(drained[0].1.newly_stopped.len(), 1);
        // Handed over again with the stored count: still stopped, not reported again.
        caps.stored[1] = 1000;
        meter.set_resource_caps(caps);
        assert!(meter.admit_resource("res_a", ResourceMeter::KvWrites, 1).is_err());
        assert!(meters.drain().iter().all(|(_, drained)| drained.newly_stopped.is_empty()));
        caps.limits[1] = None;
        meter.set_resource_caps(caps);
        assert!(meter.admit_resource("res_a", ResourceMeter::KvWrites, 1).is_ok());
    }

    #[test]
    fn disabled_meters_count_nothing() {
        let meters = Meters::new(false);
        meters.app("app");
        assert!(meters.get("app").is_none());
    }
}
