//! The managed git hooks' server side.
//!
//! `git receive-pack` runs `tovuk hook pre-receive|post-receive`, which relay git's
//! input here with the one-push secret this module issued for the request. The
//! pre-receive side runs the contract check on the pushed commit (still in quarantine)
//! and refuses the push when it fails: git then leaves every ref unchanged. The
//! post-receive side runs once the refs have moved and records the accepted source and
//! its queued deploy, so a deploy never names a commit that was not kept.

use crate::http::ApiJson;
use crate::intake::{check_lines, short, source_warnings};
use crate::{ApiFailure, ControlState};
use axum::Json;
use axum::extract::FromRequestParts;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use std::path::{Path as FsPath, PathBuf};
use tovuk_api_types::{ErrorCode, HookRequest, HookResponse, RefUpdate, hook_env};
use tovuk_git::{ObjectEnv, ZERO_SHA};
use tovuk_store::{AppRecord, SourceKind, TokenRecord};

/// What the hooks of one push may act on.
#[derive(Debug, Clone)]
pub(crate) struct PushSession {
    app: AppRecord,
    token_id: String,
    repo: PathBuf,
}

/// Registers a push for exactly as long as it lives: dropping it ends the session.
pub(crate) struct PushSessionGuard {
    state: ControlState,
    secret: String,
}

impl PushSessionGuard {
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }
}

impl Drop for PushSessionGuard {
    fn drop(&mut self) {
        let mut sessions = self.state.inner.push_sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        sessions.remove(&self.secret);
    }
}

impl PushSession {
    /// Opens a session for a push by `token` to `app`.
    pub(crate) fn open(
        state: &ControlState,
        app: &AppRecord,
        token: &TokenRecord,
    ) -> Result<PushSessionGuard, ApiFailure> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|_| ApiFailure::new(ErrorCode::Internal, "the system random source failed"))?;
        let secret = hex::encode(bytes);
        let session =
            PushSession { app: app.clone(), token_id: token.id.to_string(), repo: state.repos().path(&app.name) };
        let mut sessions = state.inner.push_sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        sessions.insert(secret.clone(), session);
        Ok(PushSessionGuard { state: state.clone(), secret })
    }
}

fn deploy_ref(app: &AppRecord) -> String {
    format!("refs/heads/{}", app.deploy_branch)
}

/// Resolves an object directory the hook reported, refusing any outside the repository.
fn inside_repo(repo: &FsPath, dirs: Option<&str>) -> Result<Option<String>, ApiFailure> {
    let Some(dirs) = dirs.filter(|dirs| !dirs.is_empty()) else { return Ok(None) };
    let repo = repo.canonicalize().map_err(|_| ApiFailure::new(ErrorCode::Internal, "the repository is missing"))?;
    let mut resolved = Vec::new();
    for dir in dirs.split(':') {
        let path = repo.join(dir);
        match path.canonicalize() {
            Ok(path) if path.starts_with(&repo) => resolved.push(path.display().to_string()),
            _ => {
                return Err(ApiFailure::new(
                    ErrorCode::Forbidden,
                    "the hook named objects outside the app's repository",
                ));
            }
        }
    }
    Ok(Some(resolved.join(":")))
}

/// The push a hook call belongs to, found by its one-push secret. Extracted before the
/// body is read, so a stranger learns nothing from how a body is refused.
pub(crate) struct Pushing(PushSession);

impl FromRequestParts<ControlState> for Pushing {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &ControlState) -> Result<Self, Self::Rejection> {
        let secret =
            parts.headers.get(hook_env::PUSH_SECRET_HEADER).and_then(|value| value.to_str().ok()).unwrap_or("");
        let sessions = state.inner.push_sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match sessions.get(secret) {
            Some(session) => Ok(Pushing(session.clone())),
            None => Err(ApiFailure::new(ErrorCode::Unauthorized, "this hook call belongs to no push in progress")
                .next("this route is for the platform's own git hooks; push with `git push` instead")),
        }
    }
}

pub(crate) async fn run_hook(
    State(state): State<ControlState>,
    Pushing(session): Pushing,
    Path(hook): Path<String>,
    ApiJson(request): ApiJson<HookRequest>,
) -> Result<Json<HookResponse>, ApiFailure> {
    let response = match hook.as_str() {
        "pre-receive" => pre_receive(&session, &request).await?,
        "post-receive" => post_receive(&state, &session, &request).await?,
        _ => return Err(ApiFailure::new(ErrorCode::NotFound, format!("there is no `{hook}` hook"))),
    };
    Ok(Json(response))
}

async fn pre_receive(session: &PushSession, request: &HookRequest) -> Result<HookResponse, ApiFailure> {
    let objects = ObjectEnv {
        object_directory: inside_repo(&session.repo, request.object_directory.as_deref())?,
        alternate_object_directories: inside_repo(&session.repo, request.alternate_object_directories.as_deref())?,
    };
    let deploy_ref = deploy_ref(&session.app);
    let mut lines = Vec::new();
    let mut accept = true;
    for RefUpdate { old: _, new, ref_name } in &request.updates {
        if ref_name.starts_with("refs/tovuk/") {
            accept = false;
            lines.push(format!("refusing {ref_name}: refs under refs/tovuk/ belong to the platform"));
        } else if *ref_name == deploy_ref && new == ZERO_SHA {
            accept = false;
            lines.push(format!("refusing to delete {ref_name}: it is the deploy branch of `{}`", session.app.name));
            lines.push(format!(
                "hint: push new commits instead, or pick another deploy branch with `tovuk app update {} --deploy-branch BRANCH`",
                session.app.name
            ));
        } else if *ref_name == deploy_ref {
            let check = tovuk_git::check_commit(&session.repo, &objects, new).await.map_err(|error| {
                tracing::error!(app = %session.app.name, %error, "cannot read the pushed commit");
                ApiFailure::new(ErrorCode::Internal, "the pushed commit could not be read")
            })?;
            let (passed, check_output) = check_lines(&check.report, &session.app.name, check.manifest.as_ref());
            if !passed {
                accept = false;
                lines.push(format!(
                    "push refused: the contract check failed for {} at {}; nothing was changed",
                    session.app.deploy_branch,
                    short(new)
                ));
            }
            lines.extend(check_output);
            if !passed {
                lines.push("hint: fix tovuk.toml, run `tovuk check`, commit and push again".to_owned());
            }
        }
    }
    Ok(HookResponse { accept, lines })
}

async fn post_receive(
    state: &ControlState,
    session: &PushSession,
    request: &HookRequest,
) -> Result<HookResponse, ApiFailure> {
    let deploy_ref = deploy_ref(&session.app);
    let mut lines = Vec::new();
    for RefUpdate { old, new, ref_name } in &request.updates {
        if new == ZERO_SHA {
            continue;
        }
        if *ref_name != deploy_ref {
            lines.push(format!(
                "stored {ref_name} at {}; only pushes to `{}` deploy",
                short(new),
                session.app.deploy_branch
            ));
            continue;
        }
        let forced = old != ZERO_SHA
            && !tovuk_git::is_ancestor(&session.repo, &ObjectEnv::default(), old, new).await.unwrap_or(false);
        // The pre-receive hook checked this commit; read its contract again for what it needs set.
        let (warnings, manifest) = match tovuk_git::check_commit(&session.repo, &ObjectEnv::default(), new).await {
            Ok(check) => (source_warnings(&check.report, &session.app.name, check.manifest.as_ref()), check.manifest),
            Err(_) => (Vec::new(), None),
        };
        let accepted = crate::accept::accept_source(
            state,
            crate::accept::Source {
                app: &session.app,
                token_id: session.token_id.clone(),
                kind: SourceKind::Git,
                ref_name: ref_name.clone(),
                old_sha: (old != ZERO_SHA).then(|| old.clone()),
                sha: new.clone(),
                forced,
                retry: false,
                manifest: manifest.as_ref(),
                warnings,
            },
        )
        .await?;
        lines.extend(accepted.render());
    }
    Ok(HookResponse { accept: true, lines })
}
