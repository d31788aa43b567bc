//! Accepting a source: the one operation behind a `git push`, a `tovuk deploy` upload and
//! a retry. It records the source with its queued (or blocked) deploy in one transaction,
//! wakes the builders, and answers what happened, the same way for every entrance.

use crate::views::deploy_view;
use crate::{ApiFailure, ControlState};
use tovuk_api_types::AcceptedSource;
use tovuk_manifest::Manifest;
use tovuk_store::{AppRecord, NewSource, SourceKind};

/// A source the contract check passed, ready to be recorded.
pub(crate) struct Source<'a> {
    pub app: &'a AppRecord,
    pub token_id: String,
    pub kind: SourceKind,
    pub ref_name: String,
    pub old_sha: Option<String>,
    pub sha: String,
    /// The push rewrote history.
    pub forced: bool,
    /// A `tovuk deploy retry`: always a new deploy, never linked back to the first.
    pub retry: bool,
    /// The commit's contract, for what it needs set, plans and bills.
    pub manifest: Option<&'a Manifest>,
    /// Contract warnings, shown with the answer.
    pub warnings: Vec<String>,
    /// A push whose ref update is still pending: its deploy is held until the push lands.
    pub held_by_push: Option<String>,
}

/// Records `source` and answers with its deploy. A source seen before (same app, token,
/// ref and commit) links back to its first deploy instead of making a new one.
pub(crate) async fn accept_source(state: &ControlState, source: Source<'_>) -> Result<AcceptedSource, ApiFailure> {
    let app = source.app;
    let checks = crate::plan::source_checks(state, app, source.manifest).await?;
    let held = source.held_by_push.is_some();
    let recorded = state
        .store()
        .record_source(&NewSource {
            app_id: app.id.clone(),
            token_id: source.token_id,
            kind: source.kind,
            ref_name: source.ref_name,
            old_sha: source.old_sha,
            sha: source.sha,
            forced: source.forced,
            retry: source.retry,
            config_needs: checks.config_needs,
            refused: checks.refused,
            plan: checks.plan,
            held_by_push: source.held_by_push,
            resources: crate::resources::declared(source.manifest),
        })
        .await?;
    tracing::info!(
        app = %app.name,
        deploy_id = %recorded.deploy.id,
        sha = %recorded.deploy.sha,
        source = source.kind.as_str(),
        retry = source.retry,
        duplicate = recorded.duplicate,
        "source accepted"
    );
    if !recorded.duplicate && !held {
        state.deploy_queued();
    }
    let answer = crate::plan::deploy_answer(state, app, source.manifest, &recorded.deploy).await?;
    let mut deploy = deploy_view(recorded.deploy.clone());
    crate::apply::add_report(state, &recorded.deploy, &mut deploy).await?;
    Ok(AcceptedSource {
        source_operation_id: recorded.deploy.source_op_id.to_string(),
        duplicate: recorded.duplicate,
        deploy,
        warnings: source.warnings,
        service_url: answer.service_url,
        account_usage: Some(answer.account_usage),
        billing_estimate: answer.billing_estimate,
        next: answer.next,
    })
}
