//! The validated, typed manifest that the rest of the platform reads.
//!
//! A `Manifest` only exists for a file that passed the check, so its
//! accessors return plain values: required fields are there, defaults are
//! filled in, and every name and path already follows its rules.

use std::time::Duration;

use crate::{AppKind, Capability, ResourceKind, RouteAuth};

/// Default per-phase build timeout.
pub const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Default time a new release may take to become healthy.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(60);
/// Default interval between health probes.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(2);
/// `[health] min_healthy`: how long a new release must stay healthy before the one it
/// replaced is let go; a crash sooner sends traffic back.
pub const DEFAULT_MIN_HEALTHY: Duration = Duration::from_secs(5);
/// `[run] drain_timeout`: how long a replaced instance may take to finish its requests.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// `[run] stop_grace`: between SIGTERM and SIGKILL when an instance stops.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);
/// Default directory a static app serves.
pub const DEFAULT_STATIC_ROOT: &str = ".";

/// The release phase default limit.
pub const DEFAULT_RELEASE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// How long one cron run may take when its `timeout` does not say.
pub const DEFAULT_CRON_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// `[release]`: run once per release (a deploy, a config change, a rollback) after the
/// artifact is sealed and before any instance of it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub command: String,
    pub timeout: Duration,
}

/// One `[[processes]]` entry: a background process of the app (a Procfile's `worker:`),
/// run next to the web instances from the same release, with the same config and
/// resources, and no traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// Procfile-style: `[a-z][a-z0-9_-]*`, at most 32 characters, not `web` or `release`.
    pub name: String,
    pub command: String,
    /// How many run (default 1).
    pub instances: u32,
}

/// A checked `tovuk.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub(crate) name: String,
    pub(crate) kind: AppKind,
    /// Deduplicated, in `Capability::ALL` order.
    pub(crate) capabilities: Vec<Capability>,
    pub(crate) build: Build,
    pub(crate) run_command: Option<String>,
    pub(crate) release: Option<Release>,
    pub(crate) processes: Vec<Process>,
    pub(crate) drain_timeout: Duration,
    pub(crate) stop_grace: Duration,
    pub(crate) health: Option<Health>,
    pub(crate) static_root: Option<String>,
    pub(crate) static_serve_hidden: Vec<String>,
    pub(crate) resources: Vec<Resource>,
    pub(crate) bindings: Vec<ServiceBinding>,
    pub(crate) routes: Vec<Route>,
    pub(crate) required_config: Vec<String>,
    pub(crate) limits: Limits,
    pub(crate) domains: Vec<Domain>,
    pub(crate) expected: Expected,
}

impl Manifest {
    /// `[app] name`: the app's DNS-label name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `[app] kind`.
    pub fn kind(&self) -> AppKind {
        self.kind
    }

    /// `[app] capabilities`, deduplicated, in canonical order.
    pub fn capabilities(&self) -> &[Capability] {
        &self.capabilities
    }

    pub fn has_capability(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }

    /// `[build]`, with defaults when the table is absent.
    pub fn build(&self) -> &Build {
        &self.build
    }

    /// `[release]`: a command run once per release, before any instance of it starts.
    pub fn release(&self) -> Option<&Release> {
        self.release.as_ref()
    }

    /// `[[processes]]`, in file order: background processes run next to the web instances.
    pub fn processes(&self) -> &[Process] {
        &self.processes
    }

    /// `[run] command`: present for `web` and `worker`, absent for `static`.
    pub fn run_command(&self) -> Option<&str> {
        self.run_command.as_deref()
    }

    /// `[run] drain_timeout`, or its default.
    pub fn drain_timeout(&self) -> Duration {
        self.drain_timeout
    }

    /// `[run] stop_grace`, or its default.
    pub fn stop_grace(&self) -> Duration {
        self.stop_grace
    }

    /// `[health]`: always present for `web`, optional for `worker`, absent for `static`.
    pub fn health(&self) -> Option<&Health> {
        self.health.as_ref()
    }

    /// `[static] root` for `static` apps (default `"."`); `None` for other kinds.
    pub fn static_root(&self) -> Option<&str> {
        self.static_root.as_deref()
    }

    /// `[static] serve_hidden`: paths under the static root of hidden files or directories
    /// (names starting with `.`, and `tovuk.toml`) that are served anyway; nothing else hidden is.
    pub fn static_serve_hidden(&self) -> &[String] {
        &self.static_serve_hidden
    }

    /// `[[resources]]`, in file order.
    pub fn resources(&self) -> &[Resource] {
        &self.resources
    }

    /// `[[bindings]]` (service bindings), in file order.
    pub fn bindings(&self) -> &[ServiceBinding] {
        &self.bindings
    }

    /// `[[routes]]`, in file order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// `[config] required`: env-var names the app needs at runtime.
    pub fn required_config(&self) -> &[String] {
        &self.required_config
    }

    /// `[limits]`; each limit is `None` when not set (the platform's plan applies).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// `[[domains]]`, in file order.
    pub fn domains(&self) -> &[Domain] {
        &self.domains
    }

    /// `[expected]` monthly load for billing estimates.
    pub fn expected(&self) -> &Expected {
        &self.expected
    }
}

/// `[build]`: how the builder turns the checkout into an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// `build`: the build command, run in the checkout.
    pub build: Option<String>,
    /// `typecheck`: the type-check phase command.
    pub typecheck: Option<String>,
    /// `test`: the test phase command.
    pub test: Option<String>,
    /// `output`: paths kept in the artifact; empty means the checkout minus `exclude`.
    pub output: Vec<String>,
    /// `cache`: directories persisted between builds.
    pub cache: Vec<String>,
    /// `secrets`: secret names the build may read as env vars.
    pub secrets: Vec<String>,
    /// `exclude`: paths or globs left out of archives and artifacts.
    pub exclude: Vec<String>,
    /// `include`: paths or globs shipped on purpose (silences hygiene findings).
    pub include: Vec<String>,
    /// `timeout`: per-phase timeout.
    pub timeout: Duration,
}

impl Default for Build {
    fn default() -> Self {
        Build {
            build: None,
            typecheck: None,
            test: None,
            output: Vec::new(),
            cache: Vec::new(),
            secrets: Vec::new(),
            exclude: Vec::new(),
            include: Vec::new(),
            timeout: DEFAULT_BUILD_TIMEOUT,
        }
    }
}

/// `[health]`: how the runner decides a new release may take traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// URL path probed with GET; a 2xx answer means healthy.
    pub path: String,
    /// How long a new release may take to become healthy.
    pub timeout: Duration,
    /// Time between probes, at the start and for the app's whole life.
    pub interval: Duration,
    /// How long a new release must stay healthy before the one it replaced is let go.
    pub min_healthy: Duration,
}

/// One `[[resources]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub kind: ResourceKind,
    /// Env-var style name, unique across resources and service bindings.
    pub binding: String,
    /// Cron schedule (5 fields); set exactly when `kind` is `cron`.
    pub schedule: Option<String>,
    /// Command the cron job runs; set exactly when `kind` is `cron`.
    pub command: Option<String>,
    /// How long one run may take before it is stopped (`timeout`, default
    /// [`DEFAULT_CRON_TIMEOUT`]); set exactly when `kind` is `cron`.
    pub timeout: Option<Duration>,
    /// How a queue is delivered; set exactly when `kind` is `queue`.
    pub queue: Option<QueueSettings>,
    /// For a `state` resource: the app whose State objects of the same binding it calls
    /// (None: the app's own).
    pub service: Option<String>,
}

/// `batch_size` of a queue's push consumer when it does not say.
pub const DEFAULT_BATCH_SIZE: u32 = 10;
/// `max_wait`: how long the first ready message waits for a batch to fill.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(1);
/// `delivery_timeout`: how long a push delivery may take before it counts as failed.
pub const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// `max_retries`: deliveries after the first before a message is dead-lettered.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// A queue resource's delivery: pushed to a consumer app, or pulled by its own app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSettings {
    /// `consumer` and the keys that go with it; None: the app pulls (`POST $B_URL/pull`).
    pub consumer: Option<PushConsumer>,
    /// `max_retries`: 0..=100.
    pub max_retries: u32,
    /// `dead_letter`: the binding of another queue resource of the same app.
    pub dead_letter: Option<String>,
}

/// `consumer`: the app the platform POSTs batches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushConsumer {
    /// An app name; may be the app itself.
    pub app: String,
    /// `consumer_path`: the URL path batches are POSTed to.
    pub path: String,
    /// `batch_size`: 1..=100.
    pub batch_size: u32,
    /// `max_wait`: 0..=60 s.
    pub max_wait: Duration,
    /// `delivery_timeout`: 1 s..=15 min.
    pub delivery_timeout: Duration,
}

/// One `[[bindings]]` entry: a call path to another app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceBinding {
    /// Env-var style name, unique across resources and service bindings.
    pub binding: String,
    /// The app name being bound to.
    pub service: String,
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Path prefix, starting with `/`, unique (trailing `/` ignored).
    pub path: String,
    pub auth: RouteAuth,
    /// The capability a token's claim must grant; set exactly when `auth` is `capability`.
    pub capability: Option<String>,
}

/// One `[[domains]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Lowercase hostname, unique.
    pub name: String,
}

/// The plan's defaults for what `[limits]` leaves out.
pub const DEFAULT_MEMORY_MB: u32 = 256;
pub const DEFAULT_CPU_CORES: f64 = 1.0;
pub const DEFAULT_INSTANCES: u32 = 1;
/// The size of an app's `/data` volume in MiB.
pub const DEFAULT_DATA_MB: u32 = 1024;
/// The router's upstream response timeout, the default request timeout.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// `[limits]`: hard limits per instance; `None` means the plan's default.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Limits {
    /// Memory in MiB, 16..=65536.
    pub memory_mb: Option<u32>,
    /// CPU cores, more than 0 and at most 64.
    pub cpu_cores: Option<f64>,
    /// Instance count, 1..=100.
    pub instances: Option<u32>,
    /// Longest a single request may take.
    pub request_timeout: Option<Duration>,
    /// The size of the app's `/data` volume in MiB (all its instances share it), 16..=1048576.
    pub data_mb: Option<u32>,
}

impl Limits {
    /// Memory per instance in MiB, the plan's default when unset.
    pub fn memory_mb_or_default(&self) -> u32 {
        self.memory_mb.unwrap_or(DEFAULT_MEMORY_MB)
    }

    pub fn cpu_cores_or_default(&self) -> f64 {
        self.cpu_cores.unwrap_or(DEFAULT_CPU_CORES)
    }

    pub fn instances_or_default(&self) -> u32 {
        self.instances.unwrap_or(DEFAULT_INSTANCES)
    }

    pub fn data_mb_or_default(&self) -> u32 {
        self.data_mb.unwrap_or(DEFAULT_DATA_MB)
    }

    pub fn request_timeout_or_default(&self) -> Duration {
        self.request_timeout.unwrap_or(DEFAULT_REQUEST_TIMEOUT)
    }
}

/// `[expected]`: the expected monthly load, used for billing estimates and
/// suggested caps. Every value is a non-negative number; `None` when not given.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Expected {
    pub requests_per_month: Option<f64>,
    pub egress_gb_per_month: Option<f64>,
    pub storage_gb: Option<f64>,
    pub cpu_hours_per_month: Option<f64>,
    pub kv_operations_per_month: Option<f64>,
    pub queue_messages_per_month: Option<f64>,
    pub cron_runs_per_month: Option<f64>,
    pub object_storage_operations_per_month: Option<f64>,
}

impl Expected {
    /// The key names of `[expected]`, in documentation order.
    pub const KEYS: [&'static str; 8] = [
        "requests_per_month",
        "egress_gb_per_month",
        "storage_gb",
        "cpu_hours_per_month",
        "kv_operations_per_month",
        "queue_messages_per_month",
        "cron_runs_per_month",
        "object_storage_operations_per_month",
    ];

    /// The value slot for `key`, used when reading the table.
    pub(crate) fn slot_mut(&mut self, key: &str) -> Option<&mut Option<f64>> {
        Some(match key {
            "requests_per_month" => &mut self.requests_per_month,
            "egress_gb_per_month" => &mut self.egress_gb_per_month,
            "storage_gb" => &mut self.storage_gb,
            "cpu_hours_per_month" => &mut self.cpu_hours_per_month,
            "kv_operations_per_month" => &mut self.kv_operations_per_month,
            "queue_messages_per_month" => &mut self.queue_messages_per_month,
            "cron_runs_per_month" => &mut self.cron_runs_per_month,
            "object_storage_operations_per_month" => &mut self.object_storage_operations_per_month,
            _ => return None,
        })
    }

    /// Every declared value with its key, in `KEYS` order.
    pub fn entries(&self) -> Vec<(&'static str, f64)> {
        let mut copy = self.clone();
        Expected::KEYS
            .into_iter()
            .filter_map(|key| copy.slot_mut(key).and_then(|slot| *slot).map(|value| (key, value)))
            .collect()
    }
}
