//! The managed git hooks' server side.
//!
//! `git receive-pack` runs `tovuk hook pre-receive|post-receive`, which relay git's
//! input here with the one-push secret this module issued for the request. The
//! pre-receive side runs the contract check on the pushed commit (still in quarantine),
//! then records the accepted source and its deploy, *held* by the push: a failure to
//! record refuses the push, and git leaves every ref unchanged. Post-receive runs once the
//! refs have moved and releases the hold (builders take held deploys only once released).
//! A push that ends without post-receive (git could not move the ref) has what it
//! recorded withdrawn. So a ref never moves without its deploy row, and a deploy is never
//! built from a commit that was not kept.

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
    /// Names the push on the deploys it holds (not the secret: that never reaches the store).
    hold: String,
    /// What pre-receive recorded, printed by post-receive once the ref moved.
    accepted: std::sync::Arc<std::sync::Mutex<Vec<tovuk_api_types::AcceptedSource>>>,
    /// Set by post-receive: the refs moved.
    landed: std::sync::Arc<std::sync::atomic::AtomicBool>,
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
        let session = {
            let mut sessions = self.state.inner.push_sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            sessions.remove(&self.secret)
        };
        let Some(session) = session else { return };
        if session.accepted.lock().map(|accepted| accepted.is_empty()).unwrap_or(true) {
            return;
        }
        // The push is over: release what it held if its refs moved, withdraw it if not.
        let state = self.state.clone();
        self.state.inner.shutdown.spawn("push-settle", async move {
            settle_push(&state, &session).await;
            Ok(())
        });
    }
}

/// Releases (the push landed) or withdraws (it did not) the deploys a push recorded.
async fn settle_push(state: &ControlState, session: &PushSession) {
    if session.landed.load(std::sync::atomic::Ordering::SeqCst) {
        // Post-receive released them already; a second release changes nothing.
        for attempt in 1..=5u64 {
            match state.store().release_push(&session.hold).await {
                Ok(_) => {
                    state.deploy_queued();
                    return;
                }
                Err(error) => {
                    tracing::error!(%error, attempt, "cannot release a landed push's deploy; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(500 * attempt)).await;
                }
            }
        }
        return;
    }
    match state.store().withdraw_push(&session.hold).await {
        Ok(withdrawn) if !withdrawn.is_empty() => {
            tracing::warn!(app = %session.app.name, ?withdrawn, "the push did not land; its deploy is withdrawn");
            state.deploys_changed();
        }
        Ok(_) => {}
        Err(error) => {
            tracing::error!(%error, app = %session.app.name, "cannot withdraw the deploy of a push that did not land")
        }
    }
}

/// The token behind a live push's secret, if `secret` is one.
pub(crate) fn push_token(state: &ControlState, secret: &str) -> Option<String> {
    let sessions = state.inner.push_sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    sessions.get(secret).map(|session| session.token_id.clone())
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
        let session = PushSession {
            app: app.clone(),
            token_id: token.id.to_string(),
            repo: state.repos().path(&app.name),
            hold: format!("push_{}", hex::encode(&bytes[..8])),
            accepted: std::sync::Arc::default(),
            landed: std::sync::Arc::default(),
        };
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
        "pre-receive" => pre_receive(&state, &session, &request).await?,
        "post-receive" => post_receive(&state, &session, &request).await,
        _ => return Err(ApiFailure::new(ErrorCode::NotFound, format!("there is no `{hook}` hook"))),
    };
    Ok(Json(response))
}

async fn pre_receive(
    state: &ControlState,
    session: &PushSession,
    request: &HookRequest,
) -> Result<HookResponse, ApiFailure> {
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
            let check =
                tovuk_git::check_commit(&session.repo, &objects, new, &session.app.name).await.map_err(|error| {
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
    if accept {
        // Recorded before git moves anything: if it cannot be, nothing moves.
        for RefUpdate { old, new, ref_name } in &request.updates {
            if *ref_name != deploy_ref || new == ZERO_SHA {
                continue;
            }
            match record(state, session, &objects, old, new, ref_name).await {
                Ok(accepted) => {
                    if let Ok(mut recorded) = session.accepted.lock() {
                        recorded.push(accepted);
                    }
                }
                Err(failure) => {
                    tracing::error!(app = %session.app.name, error = %failure.0.message, "cannot record the push; refusing it");
                    return Ok(HookResponse {
                        deploys: Vec::new(),
                        accept: false,
                        lines: vec![
                            format!(
                                "push refused: the platform could not record its deploy ({}); nothing was changed",
                                failure.0.message
                            ),
                            "hint: push again in a moment; `tovuk status` shows whether the store takes writes"
                                .to_owned(),
                        ],
                    });
                }
            }
        }
    }
    Ok(HookResponse { accept, lines, deploys: Vec::new() })
}

/// Records the accepted source and its deploy, held by this push until it lands.
async fn record(
    state: &ControlState,
    session: &PushSession,
    objects: &ObjectEnv,
    old: &str,
    new: &str,
    ref_name: &str,
) -> Result<tovuk_api_types::AcceptedSource, ApiFailure> {
    let forced = old != ZERO_SHA && !tovuk_git::is_ancestor(&session.repo, objects, old, new).await.unwrap_or(false);
    let (warnings, manifest) = match tovuk_git::check_commit(&session.repo, objects, new, &session.app.name).await {
        Ok(check) => (source_warnings(&check.report, &session.app.name, check.manifest.as_ref()), check.manifest),
        Err(_) => (Vec::new(), None),
    };
    crate::accept::accept_source(
        state,
        crate::accept::Source {
            app: &session.app,
            token_id: session.token_id.clone(),
            kind: SourceKind::Git,
            ref_name: ref_name.to_owned(),
            old_sha: (old != ZERO_SHA).then(|| old.to_owned()),
            sha: new.to_owned(),
            forced,
            retry: false,
            manifest: manifest.as_ref(),
            warnings,
            held_by_push: Some(session.hold.clone()),
        },
    )
    .await
}

/// The refs moved: the push's deploys are released to the builders, and what was
/// recorded is printed.
async fn post_receive(state: &ControlState, session: &PushSession, request: &HookRequest) -> HookResponse {
    session.landed.store(true, std::sync::atomic::Ordering::SeqCst);
    match state.store().release_push(&session.hold).await {
        Ok(_) => state.deploy_queued(),
        // Released again when the push session ends.
        Err(error) => tracing::error!(%error, app = %session.app.name, "cannot release the push's deploy yet"),
    }
    let deploy_ref = deploy_ref(&session.app);
    let recorded = session.accepted.lock().map(|recorded| recorded.clone()).unwrap_or_default();
    let mut lines = Vec::new();
    let mut deploys = Vec::new();
    for RefUpdate { new, ref_name, .. } in &request.updates {
        if new == ZERO_SHA {
            continue;
        }
        if *ref_name != deploy_ref {
            lines.push(format!(
                "stored {ref_name} at {}; only pushes to `{}` deploy",
                short(new),
                session.app.deploy_branch
            ));
            if let Some(branch) = ref_name.strip_prefix("refs/heads/") {
                let app = &session.app;
                lines.push(format!(
                    "hint: to deploy it: git push tovuk {branch}:{}, or deploy from `{branch}` from now on: \
                     tovuk app update {} --deploy-branch {branch}",
                    app.deploy_branch, app.name
                ));
            }
            continue;
        }
        for accepted in &recorded {
            lines.extend(accepted.render());
            deploys.push(accepted.deploy.id.clone());
        }
    }
    HookResponse { accept: true, lines, deploys }
}
