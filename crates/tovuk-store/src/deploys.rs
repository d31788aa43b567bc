//! Deploys, their state changes, and the operations an accepted source creates.
//!
//! Recording a source is one immediate transaction: the idempotency key, three linked
//! operations (source -> build -> deploy), the deploy row and its first event land
//! together or not at all.

use crate::time::{now_rfc3339, now_unix_ms};
use crate::{Store, StoreError, random_bytes};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};
use tovuk_types::values::{
    DeployKind, FailureReason, FinalBuildStatus, OperationKind, OperationStatus, PhaseStatus, SourceKind, TextEnum,
};
use tovuk_types::{AppId, BuildId, DeployId, DeployState, IllegalTransition, OperationId};

/// A name a deploy's `tovuk.toml` needs set before it may build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigNeed {
    pub name: String,
    /// True for `[build] secrets` (the build reads it), false for `[config] required`.
    pub build: bool,
}

/// Encodes needs as `NAME:config,NAME:build` (names never hold `:` or `,`).
pub(crate) fn encode_needs(needs: &[ConfigNeed]) -> String {
    let parts: Vec<String> =
        needs.iter().map(|need| format!("{}:{}", need.name, if need.build { "build" } else { "config" })).collect();
    parts.join(",")
}

fn decode_needs(text: &str) -> Vec<ConfigNeed> {
    text.split(',')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, by) = part.rsplit_once(':').unwrap_or((part, "config"));
            ConfigNeed { name: name.to_owned(), build: by == "build" }
        })
        .collect()
}

/// A source the intake accepted: what to record.
#[derive(Debug, Clone)]
pub struct NewSource {
    pub app_id: AppId,
    /// The token that pushed or uploaded (the idempotency key includes it).
    pub token_id: String,
    pub kind: SourceKind,
    pub ref_name: String,
    pub old_sha: Option<String>,
    pub sha: String,
    pub forced: bool,
    /// A retry: always a new deploy, whatever was accepted before.
    pub retry: bool,
    /// What the commit's `tovuk.toml` needs set. Any of it unset blocks the deploy: it is
    /// recorded `failed` (reason `missing_config`) in the same transaction, never built.
    pub config_needs: Vec<ConfigNeed>,
    /// Set when something else stops the deploy before it builds (a cap reached): it is
    /// recorded `failed` with this failure in the same transaction.
    pub refused: Option<Failure>,
    /// What the deploy was planned to enable, bill and limit (JSON).
    pub plan: Option<String>,
    /// The push whose ref update is still pending: the deploy is held (never built) until
    /// [`Store::release_push`], or withdrawn by [`Store::withdraw_push`].
    pub held_by_push: Option<String>,
    /// The `[[resources]]` the commit declares: created when the deploy is first released.
    pub resources: Vec<DeclaredResource>,
}

/// One `[[resources]]` (or `[[bindings]]`) entry as a deploy records it: its kind and
/// binding, and for a service binding (kind [`SERVICE_BINDING`]) the app it calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredResource {
    pub kind: String,
    pub binding: String,
    pub service: Option<String>,
}

/// The kind a `[[bindings]]` entry is recorded as among an app's resources.
pub const SERVICE_BINDING: &str = tovuk_types::resources::SERVICE_BINDING_KIND;

/// `kind:BINDING` or `kind:BINDING=service`, comma-separated (none of the names can hold
/// `,`, `:` or `=`).
pub(crate) fn encode_resources(resources: &[DeclaredResource]) -> String {
    let parts: Vec<String> = resources
        .iter()
        .map(|resource| match &resource.service {
            Some(service) => format!("{}:{}={service}", resource.kind, resource.binding),
            None => format!("{}:{}", resource.kind, resource.binding),
        })
        .collect();
    parts.join(",")
}

pub(crate) fn decode_resources(text: &str) -> Vec<DeclaredResource> {
    text.split(',')
        .filter_map(|part| part.split_once(':'))
        .map(|(kind, rest)| {
            let (binding, service) = match rest.split_once('=') {
                Some((binding, service)) => (binding, Some(service.to_owned())),
                None => (rest, None),
            };
            DeclaredResource { kind: kind.to_owned(), binding: binding.to_owned(), service }
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeployRecord {
    pub id: DeployId,
    pub app_id: AppId,
    pub app_name: String,
    pub state: DeployState,
    pub source_kind: SourceKind,
    pub ref_name: String,
    pub sha: String,
    pub forced: bool,
    pub token_id: Option<String>,
    pub source_op_id: OperationId,
    pub build_op_id: OperationId,
    pub deploy_op_id: OperationId,
    pub build_job_id: BuildId,
    pub final_build_status: Option<FinalBuildStatus>,
    pub created_at: String,
    pub updated_at: String,
    /// Every state the deploy has been in, with when it entered it.
    pub events: Vec<(DeployState, String)>,
    /// Why it failed, when it did.
    pub failure: Option<Failure>,
    /// The sealed artifact's digest and size, once there is one.
    pub artifact: Option<(String, u64)>,
    /// The build phases that ran, in order.
    pub phases: Vec<PhaseRecord>,
    pub kind: DeployKind,
    /// For a config release: the deploy whose artifact it restarts.
    pub base_deploy_id: Option<String>,
    /// The config revision the release started with, once the runner claimed it.
    pub config_rev: Option<i64>,
    /// What its `tovuk.toml` needs set.
    pub config_needs: Vec<ConfigNeed>,
    /// The plan recorded with it (JSON), when there is one.
    pub plan: Option<String>,
    /// The `[[resources]]` its commit declares (a config release: its base's).
    pub resources: Vec<DeclaredResource>,
}

/// Why a deploy failed: the phase, the exit code, and the first line that says what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: FailureReason,
    /// The state the deploy failed in.
    pub phase: Option<DeployState>,
    pub exit_code: Option<i64>,
    pub first_actionable_line: Option<String>,
    /// For `missing_config`: the names that were not set.
    pub missing: Vec<ConfigNeed>,
    /// Other readiness blockers (`auth_not_ready`), as the API shows them: a JSON array, or
    /// empty. The control plane writes and reads it; the store keeps it.
    pub blockers: String,
}

/// One build phase: what ran, how it ended, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseRecord {
    pub phase: DeployState,
    pub status: PhaseStatus,
    pub command: Option<String>,
    pub exit_code: Option<i64>,
    pub started_at: String,
    pub ended_at: Option<String>,
}

/// The outcome of recording a source.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub deploy: DeployRecord,
    /// True when this (app, token, ref, sha) was accepted before: nothing new was created
    /// and `deploy` is the first one.
    pub duplicate: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OperationRecord {
    pub id: OperationId,
    pub app_id: AppId,
    pub app_name: String,
    pub kind: OperationKind,
    pub parent_id: Option<OperationId>,
    pub deploy_id: DeployId,
    pub status: OperationStatus,
    pub source_kind: Option<SourceKind>,
    pub ref_name: Option<String>,
    pub sha: Option<String>,
    pub old_sha: Option<String>,
    pub forced: bool,
    pub token_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// What a state change carries besides the state.
#[derive(Debug, Clone, Default)]
pub struct TransitionExtras {
    pub failure: Option<Failure>,
    /// `succeeded`, `failed` or `cancelled`: set when the build is over.
    pub final_build_status: Option<FinalBuildStatus>,
    pub artifact: Option<(String, u64)>,
}

/// Why a deploy could not change state.
#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    #[error("there is no deploy `{0}`")]
    NotFound(String),
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A column holding one of a fixed value set; an unknown name is a decode error, not a panic.
pub(crate) fn text<T: TextEnum>(row: &SqliteRow, column: &str) -> Result<T, sqlx::Error> {
    let value: String = row.try_get(column)?;
    parse_or(T::parse(&value), T::WHAT, &value)
}

/// [`text`] for a nullable column.
pub(crate) fn optional_text<T: TextEnum>(row: &SqliteRow, column: &str) -> Result<Option<T>, sqlx::Error> {
    let value: Option<String> = row.try_get(column)?;
    value.map(|value| parse_or(T::parse(&value), T::WHAT, &value)).transpose()
}

fn decode_error(what: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("bad {what} `{value}` in the store").into())
}

fn parse_or<T>(parsed: Option<T>, what: &str, value: &str) -> Result<T, sqlx::Error> {
    parsed.ok_or_else(|| decode_error(what, value))
}

fn op_id(row: &SqliteRow, column: &str) -> Result<OperationId, sqlx::Error> {
    let text: String = row.try_get(column)?;
    parse_or(OperationId::parse(&text), "operation id", &text)
}

// A config release shows its base's build job: it ran no build of its own.
pub(crate) const SELECT_DEPLOY: &str =
    "SELECT d.*, a.name AS app_name, coalesce(b.build_job_id, d.build_job_id) AS shown_build_job_id
    FROM deploys d JOIN apps a ON a.id = d.app_id LEFT JOIN deploys b ON b.id = d.base_deploy_id";
const SELECT_OPERATION: &str = "SELECT o.*, a.name AS app_name FROM operations o JOIN apps a ON a.id = o.app_id";

pub(crate) fn deploy_from_row(row: &SqliteRow) -> Result<DeployRecord, sqlx::Error> {
    let id: String = row.try_get("id")?;
    let app_id: String = row.try_get("app_id")?;
    let state: String = row.try_get("state")?;
    let build_job_id: String = row.try_get("shown_build_job_id")?;
    Ok(DeployRecord {
        id: parse_or(DeployId::parse(&id), "deploy id", &id)?,
        app_id: parse_or(AppId::parse(&app_id), "app id", &app_id)?,
        app_name: row.try_get("app_name")?,
        state: parse_or(DeployState::parse(&state), "deploy state", &state)?,
        source_kind: text(row, "source_kind")?,
        ref_name: row.try_get("ref")?,
        sha: row.try_get("sha")?,
        forced: row.try_get::<i64, _>("forced")? != 0,
        token_id: row.try_get("token_id")?,
        source_op_id: op_id(row, "source_op_id")?,
        build_op_id: op_id(row, "build_op_id")?,
        deploy_op_id: op_id(row, "deploy_op_id")?,
        build_job_id: parse_or(BuildId::parse(&build_job_id), "build id", &build_job_id)?,
        final_build_status: optional_text(row, "final_build_status")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        events: Vec::new(),
        failure: optional_text::<FailureReason>(row, "failure_reason")?.map(|reason| Failure {
            reason,
            phase: optional_text(row, "failure_phase").ok().flatten(),
            exit_code: row.try_get("failure_exit_code").ok().flatten(),
            first_actionable_line: row.try_get("failure_line").ok().flatten(),
            missing: decode_needs(&row.try_get::<String, _>("failure_missing").unwrap_or_default()),
            blockers: row.try_get::<String, _>("failure_blockers").unwrap_or_default(),
        }),
        artifact: match row.try_get::<Option<String>, _>("artifact_digest")? {
            Some(digest) => Some((digest, u64::try_from(row.try_get::<i64, _>("artifact_size")?).unwrap_or(0))),
            None => None,
        },
        phases: Vec::new(),
        kind: text(row, "kind")?,
        base_deploy_id: row.try_get("base_deploy_id")?,
        config_rev: row.try_get("config_rev")?,
        config_needs: decode_needs(&row.try_get::<String, _>("config_needs")?),
        plan: row.try_get("plan")?,
        resources: decode_resources(&row.try_get::<String, _>("resources")?),
    })
}

fn operation_from_row(row: &SqliteRow) -> Result<OperationRecord, sqlx::Error> {
    let app_id: String = row.try_get("app_id")?;
    let deploy_id: String = row.try_get("deploy_id")?;
    let parent: Option<String> = row.try_get("parent_id")?;
    Ok(OperationRecord {
        id: op_id(row, "id")?,
        app_id: parse_or(AppId::parse(&app_id), "app id", &app_id)?,
        app_name: row.try_get("app_name")?,
        kind: text(row, "kind")?,
        parent_id: parent.map(|text| parse_or(OperationId::parse(&text), "operation id", &text)).transpose()?,
        deploy_id: parse_or(DeployId::parse(&deploy_id), "deploy id", &deploy_id)?,
        status: text(row, "status")?,
        source_kind: optional_text(row, "source_kind")?,
        ref_name: row.try_get("ref")?,
        sha: row.try_get("sha")?,
        old_sha: row.try_get("old_sha")?,
        forced: row.try_get::<i64, _>("forced")? != 0,
        token_id: row.try_get("token_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Moves a deploy from `from` to `to` inside `tx` if it is still in `from`, with what the
/// move carries, and records the event. The caller has checked the move is legal.
/// Returns whether it moved.
pub(crate) async fn transition_in(
    tx: &mut Transaction<'_, Sqlite>,
    id: &str,
    from: DeployState,
    to: DeployState,
    extras: &TransitionExtras,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let changed = sqlx::query("UPDATE deploys SET state = ?, updated_at = ? WHERE id = ? AND state = ?")
        .bind(to.as_str())
        .bind(now)
        .bind(id)
        .bind(from.as_str())
        .execute(&mut **tx)
        .await?;
    if changed.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE deploys SET
            failure_reason = coalesce(?, failure_reason),
            failure_phase = coalesce(?, failure_phase),
            failure_exit_code = coalesce(?, failure_exit_code),
            failure_line = coalesce(?, failure_line),
            final_build_status = coalesce(?, final_build_status),
            artifact_digest = coalesce(?, artifact_digest),
            artifact_size = coalesce(?, artifact_size)
         WHERE id = ?",
    )
    .bind(extras.failure.as_ref().map(|failure| failure.reason.as_str()))
    .bind(extras.failure.as_ref().and_then(|failure| failure.phase.map(DeployState::as_str)))
    .bind(extras.failure.as_ref().and_then(|failure| failure.exit_code))
    .bind(extras.failure.as_ref().and_then(|failure| failure.first_actionable_line.as_deref()))
    .bind(extras.final_build_status.map(FinalBuildStatus::as_str))
    .bind(extras.artifact.as_ref().map(|(digest, _)| digest.as_str()))
    .bind(extras.artifact.as_ref().map(|(_, size)| i64::try_from(*size).unwrap_or(i64::MAX)))
    .bind(id)
    .execute(&mut **tx)
    .await?;
    record_entry(tx, id, to, now).await?;
    Ok(true)
}

/// Records inside `tx` that deploy `id` entered `to` at `now`: the event, and the status
/// of its operations, which follow the deploy: the build operation through the build
/// states, the deploy operation through going live, both when it ends.
pub(crate) async fn record_entry(
    tx: &mut Transaction<'_, Sqlite>,
    id: &str,
    to: DeployState,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO deploy_events (deploy_id, seq, state, at)
         SELECT ?1, coalesce(max(seq), 0) + 1, ?2, ?3 FROM deploy_events WHERE deploy_id = ?1",
    )
    .bind(id)
    .bind(to.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let (status, kinds) = match to {
        DeployState::Building | DeployState::Typechecking | DeployState::Testing => (to.as_str(), "build"),
        DeployState::ArtifactReady => ("succeeded", "build"),
        _ if to.is_terminal() => (to.as_str(), "build,deploy"),
        _ => (to.as_str(), "deploy"),
    };
    sqlx::query(
        "UPDATE operations SET status = ?, updated_at = ?
         WHERE deploy_id = ? AND instr(',' || ? || ',', ',' || kind || ',') > 0 AND status != 'succeeded'",
    )
    .bind(status)
    .bind(now)
    .bind(id)
    .bind(kinds)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Ends a just-recorded deploy `failed` with `failure` before any builder can claim it.
async fn fail_before_build(
    tx: &mut Transaction<'_, Sqlite>,
    deploy_id: &DeployId,
    failure: &Failure,
    now: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE deploys SET state = 'failed', failure_reason = ?, failure_phase = ?, failure_line = ?,
            failure_blockers = ?, final_build_status = 'failed' WHERE id = ?",
    )
    .bind(failure.reason.as_str())
    .bind(failure.phase.unwrap_or(DeployState::Queued).as_str())
    .bind(&failure.first_actionable_line)
    .bind(&failure.blockers)
    .bind(deploy_id.as_str())
    .execute(&mut **tx)
    .await?;
    record_entry(tx, deploy_id.as_str(), DeployState::Failed, now).await?;
    Ok(())
}

/// Ends a just-recorded deploy `failed` (reason `missing_config`) when any name its
/// `tovuk.toml` needs is unset, so no builder ever claims it. True when it did.
async fn block_on_missing_config(
    tx: &mut Transaction<'_, Sqlite>,
    deploy_id: &DeployId,
    app_id: &AppId,
    needs: &[ConfigNeed],
    now: &str,
) -> Result<bool, StoreError> {
    if needs.is_empty() {
        return Ok(false);
    }
    let set: Vec<String> = sqlx::query_scalar("SELECT name FROM secret_values WHERE app_id = ? AND unset_rev IS NULL")
        .bind(app_id.as_str())
        .fetch_all(&mut **tx)
        .await?;
    let missing: Vec<ConfigNeed> = needs.iter().filter(|need| !set.contains(&need.name)).cloned().collect();
    if missing.is_empty() {
        return Ok(false);
    }
    let names: Vec<&str> = missing.iter().map(|need| need.name.as_str()).collect();
    sqlx::query(
        "UPDATE deploys SET state = 'failed', failure_reason = 'missing_config', failure_phase = 'queued',
            failure_line = ?, failure_missing = ?, final_build_status = 'failed' WHERE id = ?",
    )
    .bind(format!("missing required config: {}", names.join(", ")))
    .bind(encode_needs(&missing))
    .bind(deploy_id.as_str())
    .execute(&mut **tx)
    .await?;
    record_entry(tx, deploy_id.as_str(), DeployState::Failed, now).await?;
    Ok(true)
}

/// Inserts one operation row.
pub(crate) async fn insert_operation(tx: &mut Transaction<'_, Sqlite>, op: &OperationRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO operations (id, app_id, kind, parent_id, deploy_id, status, source_kind, ref, sha, old_sha, forced, token_id, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(op.id.as_str())
    .bind(op.app_id.as_str())
    .bind(op.kind.as_str())
    .bind(op.parent_id.as_ref().map(OperationId::as_str))
    .bind(op.deploy_id.as_str())
    .bind(op.status.as_str())
    .bind(op.source_kind.map(SourceKind::as_str))
    .bind(&op.ref_name)
    .bind(&op.sha)
    .bind(&op.old_sha)
    .bind(i64::from(op.forced))
    .bind(&op.token_id)
    .bind(&op.created_at)
    .bind(&op.updated_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Records an accepted source: a queued deploy and its linked operations, or, when
    /// the same (app, token, ref, sha) was accepted before, the first deploy unchanged.
    pub async fn record_source(&self, source: &NewSource) -> Result<Recorded, StoreError> {
        // IMMEDIATE takes the write lock first, so concurrent pushes queue up in order
        // instead of failing to upgrade a read transaction.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let existing: Option<String> = if source.retry {
            None
        } else {
            sqlx::query_scalar(
                "SELECT deploy_id FROM accepted_sources WHERE app_id = ? AND token_id = ? AND ref = ? AND sha = ?",
            )
            .bind(source.app_id.as_str())
            .bind(&source.token_id)
            .bind(&source.ref_name)
            .bind(&source.sha)
            .fetch_optional(&mut *tx)
            .await?
        };
        if let Some(deploy_id) = existing {
            tx.commit().await?;
            let deploy = self
                .find_deploy(&deploy_id)
                .await?
                .ok_or_else(|| StoreError::Query(decode_error("accepted source without its deploy", &deploy_id)))?;
            return Ok(Recorded { deploy, duplicate: true });
        }

        let now = now_rfc3339();
        let ms = now_unix_ms();
        let deploy_id = DeployId::new(ms, random_bytes()?);
        let app_name: String = sqlx::query_scalar("SELECT name FROM apps WHERE id = ?")
            .bind(source.app_id.as_str())
            .fetch_one(&mut *tx)
            .await?;
        let operation = |kind: OperationKind,
                         parent: Option<&OperationId>,
                         status: OperationStatus|
         -> Result<OperationRecord, StoreError> {
            Ok(OperationRecord {
                id: OperationId::new(ms, random_bytes()?),
                app_id: source.app_id.clone(),
                app_name: app_name.clone(),
                kind,
                parent_id: parent.cloned(),
                deploy_id: deploy_id.clone(),
                status,
                source_kind: None,
                ref_name: None,
                sha: None,
                old_sha: None,
                forced: false,
                token_id: None,
                created_at: now.clone(),
                updated_at: now.clone(),
            })
        };
        let source_op = OperationRecord {
            source_kind: Some(source.kind),
            ref_name: Some(source.ref_name.clone()),
            sha: Some(source.sha.clone()),
            old_sha: source.old_sha.clone(),
            forced: source.forced,
            token_id: Some(source.token_id.clone()),
            ..operation(OperationKind::Source, None, OperationStatus::Accepted)?
        };
        let build_op = operation(OperationKind::Build, Some(&source_op.id), OperationStatus::Queued)?;
        let deploy_op = operation(OperationKind::Deploy, Some(&build_op.id), OperationStatus::Queued)?;
        for op in [&source_op, &build_op, &deploy_op] {
            insert_operation(&mut tx, op).await?;
        }
        let build_job_id = BuildId::new(ms, random_bytes()?);
        sqlx::query(
            "INSERT INTO deploys (id, app_id, state, source_kind, ref, sha, forced, token_id, source_op_id, build_op_id, deploy_op_id, build_job_id, created_at, updated_at, config_needs, plan, held_by_push, resources)
             VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(deploy_id.as_str())
        .bind(source.app_id.as_str())
        .bind(source.kind.as_str())
        .bind(&source.ref_name)
        .bind(&source.sha)
        .bind(i64::from(source.forced))
        .bind(&source.token_id)
        .bind(source_op.id.as_str())
        .bind(build_op.id.as_str())
        .bind(deploy_op.id.as_str())
        .bind(build_job_id.as_str())
        .bind(&now)
        .bind(&now)
        .bind(encode_needs(&source.config_needs))
        .bind(&source.plan)
        .bind(&source.held_by_push)
        .bind(encode_resources(&source.resources))
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO deploy_events (deploy_id, seq, state, at) VALUES (?, 1, 'queued', ?)")
            .bind(deploy_id.as_str())
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        let blocked = block_on_missing_config(&mut tx, &deploy_id, &source.app_id, &source.config_needs, &now).await?;
        if let (false, Some(failure)) = (blocked, &source.refused) {
            fail_before_build(&mut tx, &deploy_id, failure, &now).await?;
        }
        sqlx::query(
            // A retry keeps the first acceptance as the one a repeated push links back to.
            "INSERT INTO accepted_sources (app_id, token_id, ref, sha, source_op_id, deploy_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(source.app_id.as_str())
        .bind(&source.token_id)
        .bind(&source.ref_name)
        .bind(&source.sha)
        .bind(source_op.id.as_str())
        .bind(deploy_id.as_str())
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let deploy = self
            .find_deploy(deploy_id.as_str())
            .await?
            .ok_or_else(|| StoreError::Query(decode_error("deploy just recorded", deploy_id.as_str())))?;
        Ok(Recorded { deploy, duplicate: false })
    }

    /// A deploy with its state changes.
    pub async fn find_deploy(&self, id: &str) -> Result<Option<DeployRecord>, StoreError> {
        let sql = format!("{SELECT_DEPLOY} WHERE d.id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
        let Some(mut deploy) = row.as_ref().map(deploy_from_row).transpose()? else { return Ok(None) };
        self.load_history(&mut deploy).await?;
        Ok(Some(deploy))
    }

    /// Fills in a deploy's state changes and build phases.
    async fn load_history(&self, deploy: &mut DeployRecord) -> Result<(), StoreError> {
        let id = deploy.id.as_str();
        let events = sqlx::query("SELECT state, at FROM deploy_events WHERE deploy_id = ? ORDER BY seq")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        for event in events {
            let state: String = event.try_get("state")?;
            let state = parse_or(DeployState::parse(&state), "deploy state", &state)?;
            deploy.events.push((state, event.try_get("at")?));
        }
        let phases = sqlx::query("SELECT * FROM build_phases WHERE deploy_id = ? ORDER BY started_at, rowid")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        for phase in phases {
            deploy.phases.push(PhaseRecord {
                phase: text(&phase, "phase")?,
                status: text(&phase, "status")?,
                command: phase.try_get("command")?,
                exit_code: phase.try_get("exit_code")?,
                started_at: phase.try_get("started_at")?,
                ended_at: phase.try_get("ended_at")?,
            });
        }
        Ok(())
    }

    /// An app's deploys, newest first, each with its state changes and phases.
    pub async fn list_deploys(&self, app_id: &AppId, limit: u32) -> Result<Vec<DeployRecord>, StoreError> {
        let sql = format!("{SELECT_DEPLOY} WHERE d.app_id = ? ORDER BY d.id DESC LIMIT ?");
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(app_id.as_str()).bind(limit).fetch_all(&self.pool).await?;
        let mut deploys: Vec<DeployRecord> = rows.iter().map(deploy_from_row).collect::<Result<_, _>>()?;
        for deploy in &mut deploys {
            self.load_history(deploy).await?;
        }
        Ok(deploys)
    }

    /// Moves a deploy from `from` to `to` if it is still in `from` and the lifecycle
    /// allows it; records the event. Returns the deploy as it is afterwards.
    pub async fn transition_deploy(
        &self,
        id: &str,
        from: DeployState,
        to: DeployState,
    ) -> Result<DeployRecord, TransitionError> {
        self.transition_deploy_with(id, from, to, &TransitionExtras::default()).await
    }

    /// [`Store::transition_deploy`], also recording what the move carries (a failure, a
    /// final build status, an artifact) in the same transaction.
    pub async fn transition_deploy_with(
        &self,
        id: &str,
        from: DeployState,
        to: DeployState,
        extras: &TransitionExtras,
    ) -> Result<DeployRecord, TransitionError> {
        from.transition(to)?;
        let now = now_rfc3339();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(StoreError::from)?;
        let moved = transition_in(&mut tx, id, from, to, extras, &now).await.map_err(StoreError::from)?;
        tx.commit().await.map_err(StoreError::from)?;
        let deploy = self.find_deploy(id).await?.ok_or_else(|| TransitionError::NotFound(id.to_owned()))?;
        if moved {
            Ok(deploy)
        } else {
            // It was not in `from` (any more): report the move from where it really is.
            Err(TransitionError::Illegal(IllegalTransition { from: deploy.state, to }))
        }
    }

    pub async fn find_operation(&self, id: &str) -> Result<Option<OperationRecord>, StoreError> {
        let sql = format!("{SELECT_OPERATION} WHERE o.id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(operation_from_row).transpose()?)
    }

    /// An app's operations, newest first.
    pub async fn list_operations(&self, app_id: &AppId, limit: u32) -> Result<Vec<OperationRecord>, StoreError> {
        // Newest source first, each followed by its build and deploy operations.
        let sql = format!(
            "{SELECT_OPERATION} WHERE o.app_id = ? ORDER BY o.deploy_id DESC, \
             CASE o.kind WHEN 'source' THEN 0 WHEN 'build' THEN 1 ELSE 2 END LIMIT ?"
        );
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(app_id.as_str()).bind(limit).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(operation_from_row).collect::<Result<_, _>>()?)
    }

    /// The operations that name `parent` as theirs.
    pub async fn child_operations(&self, parent: &OperationId) -> Result<Vec<OperationRecord>, StoreError> {
        let sql = format!("{SELECT_OPERATION} WHERE o.parent_id = ? ORDER BY o.id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(parent.as_str()).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(operation_from_row).collect::<Result<_, _>>()?)
    }
}
