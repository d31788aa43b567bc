//! Source inspection: the hosted repository's refs, commits and remote.

use crate::auth::{Caller, app_for};
use crate::views::{base_url, deploy_view, git_remote};
use crate::{ApiFailure, ControlState};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use tovuk_api_types::{Commit, CommitList, ErrorCode, ResolvedRef, SourceRef, SourceRefs, SourceRemote, SourceSummary};
use tovuk_git::{CommitInfo, GitError};
use tovuk_store::AppRecord;

fn git_failure(app: &AppRecord, error: &GitError) -> ApiFailure {
    tracing::error!(app = %app.name, %error, "cannot read the repository");
    ApiFailure::new(ErrorCode::Internal, format!("the repository of `{}` could not be read", app.name))
        .next("tovuk status")
}

fn commit_view(commit: CommitInfo) -> Commit {
    Commit {
        sha: commit.sha,
        subject: commit.subject,
        author_name: commit.author_name,
        author_email: commit.author_email,
        authored_at: commit.authored_at,
        committed_at: commit.committed_at,
    }
}

fn ref_not_found(app: &AppRecord, reference: &str) -> ApiFailure {
    ApiFailure::new(ErrorCode::RefNotFound, format!("`{}` names no commit in `{}`", reference.escape_debug(), app.name))
        .next(format!("tovuk source refs {}", app.name))
}

pub(crate) async fn show(
    State(state): State<ControlState>,
    caller: Caller,
    headers: HeaderMap,
    Path(app): Path<String>,
) -> Result<Json<SourceSummary>, ApiFailure> {
    let app = app_for(&state, &caller, &app).await?;
    let repo = state.repos().path(&app.name);
    let refs = tovuk_git::list_refs(&repo).await.map_err(|error| git_failure(&app, &error))?;
    let branch_ref = format!("refs/heads/{}", app.deploy_branch);
    let head = if refs.iter().any(|r| r.name == branch_ref) {
        let commits = tovuk_git::commits(&repo, &branch_ref, 1).await.map_err(|error| git_failure(&app, &error))?;
        commits.and_then(|commits| commits.into_iter().next()).map(commit_view)
    } else {
        None
    };
    let last_deploy = state.store().list_deploys(&app.id, 1).await?.into_iter().next().map(deploy_view);
    Ok(Json(SourceSummary {
        git_remote: git_remote(&base_url(&state, &headers), &app.name),
        branch_count: refs.iter().filter(|r| r.name.starts_with("refs/heads/")).count() as u64,
        tag_count: refs.iter().filter(|r| r.name.starts_with("refs/tags/")).count() as u64,
        app: app.name,
        deploy_branch: app.deploy_branch,
        head,
        last_deploy,
    }))
}

pub(crate) async fn refs(
    State(state): State<ControlState>,
    caller: Caller,
    Path(app): Path<String>,
) -> Result<Json<SourceRefs>, ApiFailure> {
    let app = app_for(&state, &caller, &app).await?;
    let refs = tovuk_git::list_refs(&state.repos().path(&app.name)).await.map_err(|error| git_failure(&app, &error))?;
    Ok(Json(SourceRefs {
        app: app.name,
        refs: refs.into_iter().map(|r| SourceRef { name: r.name, sha: r.sha, object_type: r.object_type }).collect(),
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ResolveQuery {
    #[serde(rename = "ref")]
    reference: String,
}

pub(crate) async fn resolve(
    State(state): State<ControlState>,
    caller: Caller,
    Path(app): Path<String>,
    Query(query): Query<ResolveQuery>,
) -> Result<Json<ResolvedRef>, ApiFailure> {
    let app = app_for(&state, &caller, &app).await?;
    let repo = state.repos().path(&app.name);
    let resolved = tovuk_git::resolve_ref(&repo, &query.reference).await.map_err(|error| git_failure(&app, &error))?;
    let Some((ref_name, sha)) = resolved else { return Err(ref_not_found(&app, &query.reference)) };
    Ok(Json(ResolvedRef { app: app.name, input: query.reference, ref_name, sha }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct CommitsQuery {
    #[serde(rename = "ref")]
    reference: Option<String>,
    limit: Option<u32>,
}

pub(crate) async fn commits(
    State(state): State<ControlState>,
    caller: Caller,
    Path(app): Path<String>,
    Query(query): Query<CommitsQuery>,
) -> Result<Json<CommitList>, ApiFailure> {
    let app = app_for(&state, &caller, &app).await?;
    let reference = query.reference.unwrap_or_else(|| format!("refs/heads/{}", app.deploy_branch));
    let limit = query.limit.unwrap_or(20).clamp(1, 1000);
    let repo = state.repos().path(&app.name);
    let commits = tovuk_git::commits(&repo, &reference, limit).await.map_err(|error| git_failure(&app, &error))?;
    let Some(commits) = commits else { return Err(ref_not_found(&app, &reference)) };
    Ok(Json(CommitList { app: app.name, ref_name: reference, commits: commits.into_iter().map(commit_view).collect() }))
}

pub(crate) async fn remote(
    State(state): State<ControlState>,
    caller: Caller,
    headers: HeaderMap,
    Path(app): Path<String>,
) -> Result<Json<SourceRemote>, ApiFailure> {
    let app = app_for(&state, &caller, &app).await?;
    let url = git_remote(&base_url(&state, &headers), &app.name);
    Ok(Json(SourceRemote {
        push_command: format!("git remote add tovuk {url} && git push tovuk {}", app.deploy_branch),
        app: app.name,
        url,
        deploy_branch: app.deploy_branch,
    }))
}
