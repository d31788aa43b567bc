//! The control-plane wire schema: every request and response body the API speaks.
//!
//! This is the only crate that derives `Serialize` for API shapes, apart from the
//! `tovuk check` report, which is produced locally without a server and so lives in
//! `tovuk-manifest`. Field names are `snake_case`; absent values are `null`, never
//! omitted; lists are always arrays. Fields are only ever added within `/v1`.

mod accepted;
mod actionable;
mod config;
mod cron;
mod error;
mod queues;
mod resources;
mod routes;
mod text;
mod usage;

pub use actionable::ActionableLine;
pub use config::{
    ConfigBlocker, EnvChange, EnvChangeRequest, EnvChangeResult, EnvHistory, EnvList, EnvVar, MissingConfig,
    RollbackRequest, RollbackResult, SealedEnvVar, TokenMention,
};
pub use cron::{CronHistory, CronJob, CronList, CronRun, CronRunEnd, CronStart};
pub use error::{ApiError, ErrorBody, ErrorCode};
pub use queues::{
    QueueConsumer, QueueDelivery, QueueInfo, QueueList, QueueMessage, QueuePeek, QueuePurgeRequest, QueuePurged,
    QueueRedriven,
};
pub use resources::{
    AddonCreateRequest, AddonResult, ReleaseResource, ResourceCap, Service, ServiceList, ServiceResource,
    ServiceSummary, SqliteQueryRequest, SqliteQueryResult, SqliteRestoreRequest, SqliteRestored, SqliteSnapshot,
    SqliteSnapshotList,
};
pub use routes::{Backend, RouteAuth, RouteAuthRule, RouteBinding, RouteEntry, RouteTable, RouteTarget};
pub use tovuk_types::DeployState;
pub use tovuk_types::values::{
    BuildOutcome, CapState, CronRunStatus, CronTrigger, DeployKind, FailureReason, FinalBuildStatus, InstanceStatus,
    LogStream, OperationKind, OperationStatus, PhaseStatus, ResourceStatus, RoleState, SourceKind, TextEnum,
    TokenScopeName,
};
pub use usage::{
    AccountUsage, AppLimits, AppUsage, BillingEstimate, Cap, CapEvent, CapList, DeployPlan, DeployShape, LineItem,
    MeterPrice, MeterUsage, PlanCapabilities, PlanFix, PlanLimits, PlanRequest, PlannedMeter, PlannedRoute,
    PlatformLimits, Pricing, SetCapRequest, UsageBatch, UsagePeriod, UsageReport, UsageSample,
};

use serde::{Deserialize, Serialize};

/// `GET /v1/status`: platform API availability only, never anything about a user's project.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlatformStatus {
    /// `ok` when every role runs and the store answers, else `degraded`.
    pub status: String,
    pub version: String,
    pub started_at: String,
    pub uptime_seconds: u64,
    pub roles: Vec<RoleStatus>,
    pub store: StoreStatus,
    /// Which limits this machine enforces on apps and builds.
    #[serde(default)]
    pub limits: EnforcedLimits,
}

/// Which limits the platform applies to app instances and builds on this machine. A
/// limit not listed as enforced is not applied, whatever a contract asks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnforcedLimits {
    /// The control group version the limits use: `v2`, `v1` or `none`.
    pub cgroup: String,
    /// `[limits] memory_mb`: past it the kernel kills inside the sandbox.
    pub memory: bool,
    /// `[limits] cpu_cores`: a hard CPU quota.
    pub cpu: bool,
    /// A cap on processes per sandbox.
    pub pids: bool,
    /// The private `/tmp` has a fixed size.
    pub tmp_size: bool,
    /// `/data` has a size (`[limits] data_mb`): a write past it fails inside the app.
    pub data_quota: bool,
    /// Each instance runs in a network namespace of its own: only the router reaches it,
    /// and it reaches neither other apps nor the platform.
    pub network_isolation: bool,
    /// Builds and apps with capability `outbound-network` reach the outside from a
    /// namespace of their own (never the host's loopback); without it they share the
    /// host's network.
    #[serde(default)]
    pub outbound_isolation: bool,
    /// Why what is not enforced is not.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleStatus {
    /// `api`, `router`, ...
    pub name: String,
    /// `running` or `stopped`.
    #[serde(with = "text")]
    pub state: RoleState,
    /// The address the role listens on, when it listens.
    pub address: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreStatus {
    /// `sqlite` for the embedded store.
    pub kind: String,
    /// Whether the store answered a query just now.
    pub ok: bool,
    pub latency_ms: Option<f64>,
    /// Why it did not answer, when it did not.
    pub error: Option<String>,
}

/// An app as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct App {
    pub id: String,
    pub name: String,
    /// The branch whose pushes deploy.
    pub deploy_branch: String,
    /// The smart-HTTP git remote to push to.
    pub git_remote: String,
    pub created_at: String,
}

/// `POST /v1/apps`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateAppRequest {
    pub name: String,
    /// The branch whose pushes deploy; `main` when absent.
    #[serde(default)]
    pub deploy_branch: Option<String>,
}

/// The answer to `POST /v1/apps`: the app and its deploy token, whose secret is shown only here.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedApp {
    pub app: App,
    pub deploy_token: CreatedToken,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppList {
    pub apps: Vec<App>,
}

/// Token metadata. The secret is never part of it: the store keeps only its hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Token {
    pub id: String,
    pub name: String,
    /// `admin` (every right) or `deploy` (rights on one app only).
    #[serde(with = "text")]
    pub scope: TokenScopeName,
    /// The app a `deploy` token acts on; `null` for `admin`.
    pub app: Option<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// `POST /v1/tokens`. Without `app` the token is an admin token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateTokenRequest {
    pub name: String,
    pub app: Option<String>,
}

/// A new token: its metadata and, this once, its secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: Token,
    /// The bearer secret. It is not stored and cannot be shown again.
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenList {
    pub tokens: Vec<Token>,
}

/// `PATCH /v1/apps/{app}`: change an app's settings; absent fields stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateAppRequest {
    pub deploy_branch: Option<String>,
}

/// A deploy: where its source came from, where it is in the lifecycle, and when it
/// entered each state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deploy {
    pub id: String,
    pub app: String,
    /// `queued`, `building`, `typechecking`, `testing`, `artifact_ready`, `deploying`,
    /// `running`, `failed`, `cancelled` or `superseded`.
    #[serde(with = "text")]
    pub state: DeployState,
    pub source: DeploySource,
    pub build_job: BuildJob,
    pub final_build: FinalBuild,
    pub operations: DeployOperations,
    /// Every state the deploy entered, oldest first.
    pub state_changes: Vec<StateChange>,
    /// The build phases that ran, in order, with their start and end times.
    pub phases: Vec<BuildPhase>,
    /// Why the deploy failed; `null` unless it did.
    pub failure: Option<DeployFailure>,
    /// The signed artifact, once the build produced one.
    pub artifact: Option<ArtifactSummary>,
    /// `source` (built from a push or upload) or `config` (the current artifact restarted
    /// with changed config: no build ran, `build_job` is the one that made the artifact).
    #[serde(default = "source_kind", with = "text")]
    pub kind: DeployKind,
    /// For a config release: the deploy whose artifact it restarts.
    #[serde(default)]
    pub base_deploy_id: Option<String>,
    /// The config revision the release started with (`null` until it started).
    #[serde(default)]
    pub config_rev: Option<i64>,
    /// What the deploy enables, is billed on and is limited by, as planned when it was recorded.
    #[serde(default)]
    pub plan: Option<DeployShape>,
    /// What applying its contract did (`deploy show`, and the answer to a push or upload):
    /// its resources, bindings and routes, and whether it is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply: Option<ApplyReport>,
    /// Its instance as the runner last reported it (`deploy show` only): a current deploy
    /// that is `crashing` shows it here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceReport>,
    pub created_at: String,
    pub updated_at: String,
}

/// The manifest apply: what the deploy's contract asks of the platform, and where each part stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyReport {
    /// Its resources (and the app's add-ons), each `created` (by this deploy), `existing`, or
    /// `detached` (the app has it, this contract does not declare it: kept, not given).
    pub addons: Vec<ApplyItem>,
    /// Its `[[bindings]]`, each `ready` or `blocked: <why>`.
    pub bindings: Vec<ApplyItem>,
    /// Its `[[routes]]`, each `serving`, `pending`, `blocked` or `not serving`.
    pub routes: Vec<ApplyRoute>,
    /// `ready`, or `blocked` (the failure's blockers say by what).
    pub readiness: String,
}

/// A resource or binding in the apply report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyItem {
    pub kind: String,
    pub binding: String,
    /// For a binding (or a State resource of another app): the app it calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub status: String,
}

/// A route in the apply report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyRoute {
    pub path: String,
    pub auth: String,
    pub status: String,
}

fn source_kind() -> DeployKind {
    DeployKind::Source
}

/// One build phase (`building`, `typechecking`, `testing`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildPhase {
    #[serde(with = "text")]
    pub phase: DeployState,
    /// `running`, `passed`, `skipped` (no command), `failed`, `timed_out`, `cancelled`, `interrupted`.
    #[serde(with = "text")]
    pub status: PhaseStatus,
    pub command: Option<String>,
    pub exit_code: Option<i64>,
    pub started_at: String,
    pub ended_at: Option<String>,
}

/// What went wrong, in one line a person can act on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployFailure {
    /// One of [`FailureReason`]'s values (docs/builds.md lists them).
    #[serde(with = "text")]
    pub reason: FailureReason,
    /// The state the deploy was in when it failed.
    #[serde(with = "text::option")]
    pub phase: Option<DeployState>,
    pub exit_code: Option<i64>,
    pub first_actionable_line: Option<String>,
    /// For `missing_config`: each name that was not set, with the command that sets it.
    #[serde(default)]
    pub blockers: Vec<ConfigBlocker>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArtifactSummary {
    /// `sha256:<hex>` of the `.tar.zst`.
    pub digest: String,
    pub size_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeploySource {
    /// `git` (a push) or `archive` (a `tovuk deploy` upload).
    #[serde(with = "text")]
    pub kind: SourceKind,
    #[serde(rename = "ref")]
    pub ref_name: String,
    pub sha: String,
    /// The push rewrote history (the old tip is not an ancestor of the new one).
    pub forced: bool,
    /// The source operation that accepted it.
    pub operation_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildJob {
    pub id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinalBuild {
    /// `succeeded`, `failed` or `cancelled`; `null` until the build has finished.
    #[serde(with = "text::option")]
    pub status: Option<FinalBuildStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployOperations {
    pub source: String,
    pub build: String,
    pub deploy: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateChange {
    #[serde(with = "text")]
    pub state: DeployState,
    pub at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployList {
    pub deploys: Vec<Deploy>,
}

/// The answer to an accepted push or upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcceptedSource {
    pub deploy: Deploy,
    pub source_operation_id: String,
    /// True when this (token, ref, sha) was accepted before: no new deploy was made and
    /// `deploy` is the first one.
    pub duplicate: bool,
    /// Contract warnings (the check passed).
    pub warnings: Vec<String>,
    /// Where the app answers once the deploy runs.
    #[serde(default)]
    pub service_url: String,
    /// Usage so far this period, the account's and this app's.
    #[serde(rename = "accountUsage", default)]
    pub account_usage: Option<AccountUsage>,
    /// What a month of the contract's `[expected]` load would cost.
    #[serde(rename = "billingEstimate", default)]
    pub billing_estimate: Option<BillingEstimate>,
    /// What to run next, in order.
    #[serde(default)]
    pub next: Vec<String>,
}

/// An operation record: one step (source, build or deploy) of an accepted source.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Operation {
    pub id: String,
    pub app: String,
    /// `source`, `build` or `deploy`.
    #[serde(with = "text")]
    pub kind: OperationKind,
    #[serde(with = "text")]
    pub status: OperationStatus,
    /// The operation this one follows from (`null` for a source operation).
    pub parent_id: Option<String>,
    /// The operations that follow from this one.
    pub child_ids: Vec<String>,
    pub deploy_id: String,
    /// What was accepted; set on source operations only.
    pub source: Option<OperationSource>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OperationSource {
    #[serde(with = "text")]
    pub kind: SourceKind,
    #[serde(rename = "ref")]
    pub ref_name: String,
    pub sha: String,
    pub old_sha: Option<String>,
    pub forced: bool,
    pub token_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OperationList {
    pub operations: Vec<Operation>,
}

/// A commit as source inspection shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Commit {
    pub sha: String,
    pub subject: String,
    pub author_name: String,
    pub author_email: String,
    pub authored_at: String,
    pub committed_at: String,
}

/// `tovuk source show`: the hosted repository at a glance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceSummary {
    pub app: String,
    pub git_remote: String,
    pub deploy_branch: String,
    /// The deploy branch's tip, `null` before the first push.
    pub head: Option<Commit>,
    pub branch_count: u64,
    pub tag_count: u64,
    /// The newest deploy, if any.
    pub last_deploy: Option<Deploy>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceRef {
    pub name: String,
    pub sha: String,
    #[serde(rename = "type")]
    pub object_type: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceRefs {
    pub app: String,
    pub refs: Vec<SourceRef>,
}

/// `tovuk source resolve-ref`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResolvedRef {
    pub app: String,
    /// What was asked for.
    pub input: String,
    /// The full ref name when the input named a ref (`null` for a commit id).
    #[serde(rename = "ref")]
    pub ref_name: Option<String>,
    pub sha: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommitList {
    pub app: String,
    #[serde(rename = "ref")]
    pub ref_name: String,
    pub commits: Vec<Commit>,
}

/// `tovuk source remote`: how to push to the app.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceRemote {
    pub app: String,
    pub url: String,
    pub deploy_branch: String,
    /// The command that adds the remote and deploys.
    pub push_command: String,
}

/// Environment the platform gives the git hooks it runs.
pub mod hook_env {
    /// The API URL the hook reports to.
    pub const URL: &str = "TOVUK_HOOK_URL";
    /// The one-push secret that authenticates the hook.
    pub const PUSH_SECRET: &str = "TOVUK_PUSH_SECRET";
    /// The header the hook sends the secret in.
    pub const PUSH_SECRET_HEADER: &str = "x-tovuk-push-secret";
}

/// One ref update as git gives it to a hook.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefUpdate {
    pub old: String,
    pub new: String,
    #[serde(rename = "ref")]
    pub ref_name: String,
}

/// `POST /internal/v1/git/hooks/{hook}`: a hook relays git's input and environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HookRequest {
    pub updates: Vec<RefUpdate>,
    /// `GIT_OBJECT_DIRECTORY` while the push is in quarantine.
    pub object_directory: Option<String>,
    /// `GIT_ALTERNATE_OBJECT_DIRECTORIES` while the push is in quarantine.
    pub alternate_object_directories: Option<String>,
}

/// What the hook prints (git shows each line as `remote: ...`) and whether git may go on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HookResponse {
    pub accept: bool,
    pub lines: Vec<String>,
    /// Post-receive: the deploys the push started, which the hook follows.
    #[serde(default)]
    pub deploys: Vec<String>,
}

/// The builder's view of a claimed deploy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimedBuild {
    pub deploy_id: String,
    pub build_id: String,
    pub app: String,
    pub app_id: String,
    pub sha: String,
    #[serde(rename = "ref")]
    pub ref_name: String,
    #[serde(with = "text")]
    pub source_kind: SourceKind,
    /// The values of the names `[build] secrets` lists, sealed: the builder opens them.
    #[serde(default)]
    pub env: Vec<SealedEnvVar>,
}

/// `POST /internal/v1/builds/claim`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimRequest {
    pub node: String,
}

/// `POST /internal/v1/builds/{id}/state`: move to the next build phase.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildStateRequest {
    #[serde(with = "text")]
    pub state: DeployState,
}

/// `POST /internal/v1/builds/{id}/phases`: a phase started or ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseReport {
    #[serde(with = "text")]
    pub phase: DeployState,
    #[serde(with = "text")]
    pub status: PhaseStatus,
    pub command: Option<String>,
    pub exit_code: Option<i64>,
    pub ended: bool,
}

/// One line of build output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildLogLine {
    /// Its place in the build's log, from 1; 0 when not yet stored.
    pub seq: i64,
    pub at: String,
    #[serde(with = "text")]
    pub phase: DeployState,
    /// `stdout`, `stderr`, `platform` or `access` (the router's line per request).
    #[serde(with = "text")]
    pub stream: LogStream,
    pub line: String,
}

/// `POST /internal/v1/builds/{id}/logs`: lines to store (possibly none: a heartbeat).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogBatch {
    pub lines: Vec<BuildLogLine>,
}

/// What the control plane tells a running build.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildControl {
    /// The deploy was cancelled: stop now.
    pub cancelled: bool,
}

/// `POST /internal/v1/builds/{id}/finish`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildFinish {
    /// `artifact_ready`, `failed` or `cancelled`.
    #[serde(with = "text")]
    pub outcome: BuildOutcome,
    pub failure: Option<DeployFailure>,
    pub artifact: Option<ArtifactSummary>,
}

/// One event of a followed build log (NDJSON: one per line).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum BuildLogEvent {
    Log(BuildLogLine),
    /// The build is over (or was over when the log was asked for); always last.
    Result(BuildLogResult),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildLogResult {
    pub deploy_id: String,
    #[serde(with = "text")]
    pub state: DeployState,
    pub failure: Option<DeployFailure>,
}

/// `tovuk artifact show`: the signed manifest and where to verify it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArtifactInfo {
    pub deploy_id: String,
    /// The artifact manifest exactly as signed.
    pub manifest: serde_json::Value,
    /// Hex ed25519 signature over `"tovuk-artifact-v1\n"` and the manifest's bytes.
    pub signature: String,
    /// The build key that signed it (hex).
    pub public_key: String,
}

/// `tovuk artifact verify`: signature and digest, checked now from the stored files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArtifactVerification {
    pub deploy_id: String,
    pub ok: bool,
    pub digest_ok: bool,
    pub signature_ok: bool,
    /// The signed manifest names this deploy's app and commit, and the deploy whose build
    /// sealed it (the deploy itself, or the base deploy of a config release).
    #[serde(default)]
    pub bound_ok: bool,
    pub expected_digest: String,
    pub actual_digest: Option<String>,
    /// What is wrong, when something is.
    pub problem: Option<String>,
}

/// The header in-process roles authenticate with on `/internal/v1/builds`.
pub const NODE_SECRET_HEADER: &str = "x-tovuk-node";

/// The runner's view of a deploy to take live.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimedRelease {
    pub deploy_id: String,
    pub app: String,
    pub app_id: String,
    pub sha: String,
    /// `sha256:<hex>` of the signed artifact.
    pub digest: String,
    /// The deploy whose build sealed the artifact: this one, or the base deploy of a
    /// config release. Its signed manifest must name it.
    #[serde(default)]
    pub built_by: String,
    /// The app's config at the release's revision, still sealed: the runner opens it.
    #[serde(default)]
    pub env: Vec<SealedEnvVar>,
    /// The resources the release declares, created before it was handed out.
    #[serde(default)]
    pub resources: Vec<ReleaseResource>,
    /// The app's service hostname (`<app>.<base domain>`): health probes send it as `Host`,
    /// as the router's requests do, so frameworks that check allowed hosts answer them.
    #[serde(default)]
    pub host: String,
}

/// `GET /internal/v1/releases/current`: what served before a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurrentReleases {
    pub releases: Vec<ClaimedRelease>,
}

/// `POST /internal/v1/releases/{id}/live`: the new instance is healthy and routed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseLive {
    pub instance: InstanceReport,
}

/// The answer to going live: the deploy that served before, now `superseded`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseOutcome {
    /// False when the deploy could not go live any more (a restart ended it meanwhile):
    /// the runner stops the instance it started and leaves the current one serving.
    pub live: bool,
    pub superseded: Option<String>,
    /// The deploy that served before: still `running`, its instance kept, until the new
    /// one has stayed healthy (`settled`) or crashed first (`rolled-back`).
    #[serde(default)]
    pub previous: Option<String>,
    /// The route table version that sends the app's traffic to the new instance; the
    /// replaced instance drains once the router serves by it.
    pub route_version: u64,
}

/// The answer to `POST /internal/v1/releases/{id}/settled`: the deploys now `superseded`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseSettled {
    pub superseded: Vec<String>,
}

/// The answer to `POST /internal/v1/releases/{id}/rolled-back` (its body is a [`ReleaseFailed`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RolledBack {
    /// The deploy current again; `None` when there was nothing to return to (nothing changed).
    pub current: Option<String>,
    /// The route table version that sends the app's traffic back to it.
    pub route_version: u64,
}

/// `POST /internal/v1/releases/{id}/failed`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseFailed {
    pub failure: DeployFailure,
}

/// An app instance as the runner sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceReport {
    pub deploy_id: String,
    /// Which of the deploy's instances: 0 up to `[limits] instances` - 1.
    #[serde(default)]
    pub slot: u32,
    /// `starting`, `healthy`, `restarting`, `crashing`, `failed`, `stopped`.
    #[serde(with = "text")]
    pub status: InstanceStatus,
    pub pid: Option<i64>,
    pub port: Option<i64>,
    pub started_at: Option<String>,
    pub restarts: i64,
    pub last_exit_code: Option<i64>,
    pub last_exit_at: Option<String>,
    /// Where the router reaches a web instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<std::net::SocketAddr>,
    /// The network namespace `upstream` is in (`/proc/PID/ns/net`); absent: the host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<std::path::PathBuf>,
    /// The directory a static app's files are served from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_root: Option<std::path::PathBuf>,
    /// Why the instance is not serving, in one line (when it could not start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The `[[processes]]` entry it runs (a Procfile's `worker:`); absent: `[run] command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
}

/// `tovuk app status`: what serves the app right now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppStatus {
    pub app: String,
    /// Where the app answers through the router.
    pub service_url: String,
    /// The deploy serving traffic; `null` before the first one went live.
    pub current_deploy: Option<Deploy>,
    /// The current deploy's first instance (`instances[0]`).
    pub instance: Option<InstanceReport>,
    /// Every instance of the current deploy (`[limits] instances` of them), by slot.
    #[serde(default)]
    pub instances: Vec<InstanceReport>,
    /// What serves the app now (`tovuk app status`; `inspect` has it beside the status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_evidence: Option<RuntimeEvidence>,
}

/// One event of a followed deploy (NDJSON: one per line).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum DeployEvent {
    /// The deploy entered a state.
    StateChanged(DeployProgress),
    /// Sent every 5 s while the deploy stays in a non-final state.
    Heartbeat(DeployProgress),
    /// The deploy settled (`running`, `failed`, `cancelled`, `superseded`); always last.
    Result(DeployProgress),
}

/// Where a deploy is, for a follower.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployProgress {
    pub deploy_id: String,
    pub build_id: String,
    pub app: String,
    #[serde(with = "text")]
    pub state: DeployState,
    /// When the deploy entered `state`.
    pub at: String,
    /// Time since the deploy was queued.
    pub elapsed_ms: u64,
    pub failure: Option<DeployFailure>,
}

/// One line an app instance printed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppLogLine {
    /// Its place in the app's log (0 before it is stored).
    pub seq: i64,
    pub at: String,
    pub app: String,
    pub deploy_id: String,
    /// Which instance printed it (`<deploy id>/<start number>`).
    pub instance: String,
    /// `stdout`, `stderr` or `platform`.
    #[serde(with = "text")]
    pub stream: LogStream,
    pub line: String,
}

/// `POST /internal/v1/app-logs`: lines the runner collected.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppLogBatch {
    pub lines: Vec<AppLogLine>,
}

/// One event of an app's log stream (NDJSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum AppLogEvent {
    Log(AppLogLine),
}

/// `POST /v1/apps/{app}/preflight`: the workstation's contract, checked against the app's
/// config as the deploy gate checks it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreflightRequest {
    /// The `tovuk.toml` text (or the detected contract, rendered).
    pub manifest: String,
}

/// What a deploy of the contract would hit, and what serves now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Preflight {
    pub app: String,
    /// `ready` or `blocked`.
    pub readiness: String,
    /// Every readiness blocker, each with the command that clears it.
    pub blockers: Vec<ConfigBlocker>,
    /// What serves now (`null` before a deploy went live).
    pub runtime_evidence: Option<RuntimeEvidence>,
}

/// `tovuk app inspect`: the status plus the runtime evidence block, which describes what
/// actually serves traffic.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppInspection {
    #[serde(flatten)]
    pub status: AppStatus,
    /// `null` before a deploy went live.
    pub runtime_evidence: Option<RuntimeEvidence>,
    /// The limits the live deploy runs under, and which of them this machine enforces.
    #[serde(default)]
    pub limits: Option<InstanceLimits>,
}

/// An instance's limits as the runner applies them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceLimits {
    pub memory_mb: u32,
    pub cpu_cores: f64,
    pub pids: u64,
    pub tmp_mb: u32,
    /// The app's `/data` volume (shared by its instances), `[limits] data_mb`.
    #[serde(default)]
    pub data_mb: u32,
    /// Which of these this machine enforces (as `/v1/status` says).
    pub enforced: EnforcedLimits,
}

/// The runtime evidence block, field for field as the deploy lifecycle document lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuntimeEvidence {
    /// What serves the app: the sandboxed process behind the router, or the router's own static files.
    pub backend: String,
    /// The document's `main_class`: here, the start command the runner runs.
    pub main_class: String,
    /// Routes the app serves (a contract without `[[routes]]` serves every path: one route).
    pub route_count: u64,
    /// Resolved auth mode: `none` until edge auth exists.
    pub auth_mode: String,
    pub csrf_mode: String,
    pub token_support: String,
    pub capability_source: String,
    pub provider_summary: String,
    pub cookie_security: String,
    pub auth_store: String,
}
