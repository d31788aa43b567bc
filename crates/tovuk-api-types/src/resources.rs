//! Services and their resources on the wire: what `tovuk service show` and `tovuk sqlite`
//! send and receive, and the resources a runner takes with a release.

use crate::{MeterUsage, SealedEnvVar};
use serde::{Deserialize, Serialize};
use tovuk_types::values::{CapState, ResourceStatus};

/// A resource as the runner takes it with a release: its credential still sealed (named by
/// the resource's id), so only the runner opens it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseResource {
    pub id: String,
    /// `sqlite`, `object-storage`, `kv`.
    pub kind: String,
    pub binding: String,
    pub credential: SealedEnvVar,
    /// For a service binding: the app it calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// `GET /v1/services/{app}`: `tovuk service show`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Service {
    pub app: String,
    pub app_id: String,
    pub service_url: String,
    /// The deploy serving now, if any.
    pub current_deploy_id: Option<String>,
    /// The capabilities the current deploy lists.
    pub capabilities: Vec<String>,
    pub resources: Vec<ServiceResource>,
}

/// One resource of a service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceResource {
    /// `res_…`.
    pub id: String,
    pub kind: String,
    pub binding: String,
    #[serde(with = "crate::text")]
    pub status: ResourceStatus,
    /// `embedded`: served by this platform, on the machine that runs the app.
    pub backend: String,
    /// The names of the environment variables it sets in the app (never their values).
    pub env: Vec<String>,
    /// Where it lives: the path inside the app's sandbox, the bucket, or the KV endpoint.
    pub location: String,
    /// For a service binding (kind `service-binding`): the app it calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// For a service binding: `ready`, or `blocked: ...` naming why and the command that fixes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<String>,
    /// What it holds, as last measured (`null` until measured).
    pub size_bytes: Option<u64>,
    pub created_at: String,
    pub detached_at: Option<String>,
    /// Attached to the app by `tovuk addon create` (every release gets it), rather than
    /// only by a tovuk.toml's `[[resources]]`.
    #[serde(default)]
    pub addon: bool,
    /// This period's metered usage of the resource, per meter.
    pub usage: Vec<MeterUsage>,
    /// The app's caps on the meters this resource counts.
    pub caps: Vec<ResourceCap>,
    /// For a queue: messages waiting to be delivered (`tovuk queue show` has the detail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<u64>,
    /// For a queue: messages leased to a consumer now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<u64>,
    /// For a queue: its dead letters still held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<u64>,
    /// For a cron resource that runs: its next tick (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<String>,
    /// For a cron resource: its newest run, of any status (`tovuk cron history` has them all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<crate::CronRun>,
}

/// A cap on a meter a resource counts (caps are per app and meter).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceCap {
    pub meter: String,
    pub limit: f64,
    /// The app's usage of the meter this period.
    pub used: f64,
    #[serde(with = "crate::text")]
    pub state: CapState,
}

/// `GET /v1/services`: `tovuk service list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceList {
    pub services: Vec<ServiceSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceSummary {
    pub app: String,
    pub service_url: String,
    pub current_deploy_id: Option<String>,
    /// `kind:BINDING` of each active resource.
    pub resources: Vec<String>,
    /// How many of its resources are detached (kept, not given to the app).
    pub detached: usize,
}

/// A snapshot of a SQLite resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqliteSnapshot {
    /// `snap_<time>`: what `tovuk sqlite restore` takes.
    pub id: String,
    pub created_at: String,
    pub size_bytes: u64,
}

/// `GET /v1/apps/{app}/sqlite/{binding}/snapshots`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SqliteSnapshotList {
    pub app: String,
    pub binding: String,
    pub snapshots: Vec<SqliteSnapshot>,
}

/// `POST /v1/apps/{app}/sqlite/{binding}/restore`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SqliteRestoreRequest {
    pub snapshot: String,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SqliteRestored {
    pub app: String,
    pub binding: String,
    pub snapshot: String,
    /// A snapshot of the database as it was just before the restore, to go back to.
    pub previous: SqliteSnapshot,
    /// The app's instances were stopped for the swap and started again.
    pub restarted_instances: usize,
}

/// `POST /v1/apps/{app}/sqlite/{binding}/query`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SqliteQueryRequest {
    pub sql: String,
    /// Opens the database for writing; read-only otherwise.
    #[serde(default)]
    pub write: bool,
}

/// The rows a query returned (values as JSON: integers, reals, text, `null`; blobs as hex).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SqliteQueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
    /// Rows changed by a write.
    pub changes: u64,
    /// True when more rows were produced than the answer holds.
    pub truncated: bool,
}

/// `POST /v1/apps/{app}/addons`: `tovuk addon create`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddonCreateRequest {
    /// `sqlite`, `object-storage`, `kv`.
    pub kind: String,
    /// Default: `DB` (sqlite), `FILES` (object-storage), `CACHE` (kv).
    #[serde(default)]
    pub binding: Option<String>,
}

/// What `tovuk addon create` or `tovuk addon detach` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddonResult {
    pub app: String,
    /// `res_…`.
    pub id: String,
    pub kind: String,
    pub binding: String,
    #[serde(with = "crate::text")]
    pub status: ResourceStatus,
    /// The variables it sets in the app (never their values).
    pub env: Vec<String>,
    /// Create: it is new (false: the app had it, with its data and credential).
    pub created: bool,
    /// False when nothing changed (it was an add-on already, or the running deploy's
    /// tovuk.toml still declares the one being detached).
    pub changed: bool,
    /// The config release that gives it to (or takes it from) the running instances.
    pub release: Option<crate::Deploy>,
    /// One line on what happened.
    pub message: String,
    /// What to run next, in order.
    pub next: Vec<String>,
}
