//! Converting store records into the API's wire shapes, at the edge.

use crate::ControlState;
use axum::http::{HeaderMap, header};
use tovuk_api_types::{
    App, ArtifactSummary, BuildJob, BuildPhase, ConfigBlocker, Deploy, DeployFailure, DeployOperations, DeploySource,
    FinalBuild, Operation, OperationSource, StateChange,
};
use tovuk_store::{AppRecord, ConfigNeed, DeployRecord, Failure, OperationRecord};

/// A deploy's failure as users see it; `app` names the app in blockers' commands.
pub(crate) fn failure_view(failure: Failure, app: &str) -> DeployFailure {
    DeployFailure {
        blockers: blockers(&failure.missing, app)
            .into_iter()
            .chain(serde_json::from_str::<Vec<ConfigBlocker>>(&failure.blockers).unwrap_or_default())
            .collect(),
        reason: failure.reason,
        phase: failure.phase,
        exit_code: failure.exit_code,
        first_actionable_line: failure.first_actionable_line,
    }
}

/// Where in `tovuk.toml` a name is asked for.
pub(crate) fn needed_by(need: &ConfigNeed) -> &'static str {
    if need.build { "[build] secrets" } else { "[config] required" }
}

/// One blocker per missing name (a name asked for twice is one blocker).
pub(crate) fn blockers(missing: &[ConfigNeed], app: &str) -> Vec<ConfigBlocker> {
    let mut blockers: Vec<ConfigBlocker> = Vec::new();
    for need in missing {
        if blockers.iter().any(|blocker| blocker.name == need.name) {
            continue;
        }
        blockers.push(ConfigBlocker {
            kind: "config".into(),
            capability: "config".into(),
            name: need.name.clone(),
            needed_by: needed_by(need).into(),
            route: None,
            expected: "set".into(),
            observed: "not set".into(),
            check: "config_set".into(),
            next: format!("tovuk env set {app} {}", need.name),
        });
    }
    blockers
}

pub(crate) fn failure_record(failure: DeployFailure) -> Failure {
    Failure {
        reason: failure.reason,
        phase: failure.phase,
        exit_code: failure.exit_code,
        first_actionable_line: failure.first_actionable_line,
        missing: Vec::new(),
        blockers: String::new(),
    }
}

/// The base URL users reach this API at: the configured public URL, else the request's `Host`.
pub(crate) fn base_url(state: &ControlState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config().public_url {
        return url.clone();
    }
    let host = headers.get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or("127.0.0.1:7700");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .filter(|proto| *proto == "https")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

pub(crate) fn git_remote(base_url: &str, app: &str) -> String {
    format!("{base_url}/git/{app}.git")
}

pub(crate) fn app_view(app: AppRecord, base_url: &str) -> App {
    App {
        git_remote: git_remote(base_url, &app.name),
        id: app.id.to_string(),
        name: app.name,
        deploy_branch: app.deploy_branch,
        created_at: app.created_at,
    }
}

pub(crate) fn deploy_view(deploy: DeployRecord) -> Deploy {
    let failure = deploy.failure.map(|failure| failure_view(failure, &deploy.app_name));
    Deploy {
        id: deploy.id.to_string(),
        app: deploy.app_name,
        state: deploy.state,
        source: DeploySource {
            kind: deploy.source_kind,
            ref_name: deploy.ref_name,
            sha: deploy.sha,
            forced: deploy.forced,
            operation_id: deploy.source_op_id.to_string(),
        },
        build_job: BuildJob { id: deploy.build_job_id.to_string() },
        final_build: FinalBuild { status: deploy.final_build_status },
        operations: DeployOperations {
            source: deploy.source_op_id.to_string(),
            build: deploy.build_op_id.to_string(),
            deploy: deploy.deploy_op_id.to_string(),
        },
        state_changes: deploy.events.into_iter().map(|(state, at)| StateChange { state, at }).collect(),
        phases: deploy
            .phases
            .into_iter()
            .map(|phase| BuildPhase {
                phase: phase.phase,
                status: phase.status,
                command: phase.command,
                exit_code: phase.exit_code,
                started_at: phase.started_at,
                ended_at: phase.ended_at,
            })
            .collect(),
        failure,
        artifact: deploy.artifact.map(|(digest, size_bytes)| ArtifactSummary { digest, size_bytes }),
        kind: deploy.kind,
        base_deploy_id: deploy.base_deploy_id,
        config_rev: deploy.config_rev,
        plan: deploy.plan.as_deref().and_then(|plan| serde_json::from_str(plan).ok()),
        apply: None,
        instance: None,
        created_at: deploy.created_at,
        updated_at: deploy.updated_at,
    }
}

pub(crate) fn operation_view(op: OperationRecord, child_ids: Vec<String>) -> Operation {
    let source = match (op.source_kind, op.ref_name, op.sha) {
        (Some(kind), Some(ref_name), Some(sha)) => {
            Some(OperationSource { kind, ref_name, sha, old_sha: op.old_sha, forced: op.forced, token_id: op.token_id })
        }
        _ => None,
    };
    Operation {
        id: op.id.to_string(),
        app: op.app_name,
        kind: op.kind,
        status: op.status,
        parent_id: op.parent_id.map(|id| id.to_string()),
        child_ids,
        deploy_id: op.deploy_id.to_string(),
        source,
        created_at: op.created_at,
        updated_at: op.updated_at,
    }
}
