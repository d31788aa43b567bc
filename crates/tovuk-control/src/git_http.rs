//! The authenticated smart-HTTP git frontend at `/git/<app>.git`.
//!
//! The URL is matched against the raw request path before anything is decoded, and
//! git is handed a path built from the validated app name, never from the request: a
//! request cannot name a file outside the app's repository.

use crate::auth::caller_from_basic;
use crate::hooks::PushSession;
use crate::views::{base_url, git_remote};
use crate::{ApiFailure, ControlState};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use tovuk_api_types::{ErrorCode, hook_env};
use tovuk_git::BackendRequest;
use tovuk_types::validate_dns_label;

/// The smart-HTTP endpoints git uses; the dumb protocol is not served.
const SERVICES: [(&str, &str); 3] = [("GET", "info/refs"), ("POST", "git-upload-pack"), ("POST", "git-receive-pack")];

/// Splits `/git/<app>.git/<service>` into a validated app name and a known service.
fn parse_path(raw_path: &str, method: &Method) -> Option<(String, &'static str)> {
    let rest = raw_path.strip_prefix("/git/")?;
    let (repo, service) = rest.split_once('/')?;
    let app = repo.strip_suffix(".git")?;
    validate_dns_label(app).ok()?;
    let (_, service) = SERVICES.iter().find(|(verb, path)| *path == service && method.as_str() == *verb)?;
    Some((app.to_owned(), service))
}

/// Git shows a plain-text error body to the user, so refusals here are text, not JSON.
fn git_error(status: StatusCode, failure: &ApiFailure) -> Response {
    let mut text = format!("tovuk: {}\n", failure.0.message);
    if let Some(next) = &failure.0.next {
        text.push_str(&format!("hint: {next}\n"));
    }
    let mut response = (status, text).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"tovuk\""));
    }
    response
}

fn refuse(failure: ApiFailure) -> Response {
    let status = StatusCode::from_u16(failure.0.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    tracing::info!(code = failure.0.code.as_str(), message = %failure.0.message, "git request refused");
    git_error(status, &failure)
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned)
}

pub(crate) async fn serve(
    State(state): State<ControlState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let Some((app_name, service)) = parse_path(parts.uri.path(), &parts.method) else {
        let base = base_url(&state, &parts.headers);
        return refuse(
            ApiFailure::new(ErrorCode::NotFound, format!("`{}` is not a tovuk git URL", parts.uri.path()))
                .next(format!("the remote of app APP is {}", git_remote(&base, "APP"))),
        );
    };
    let caller = match caller_from_basic(&state, &parts.headers, peer.ip()).await {
        Ok(caller) => caller,
        Err(failure) => return refuse(failure),
    };
    let app = match crate::auth::app_for(&state, &caller, &app_name).await {
        Ok(app) => app,
        Err(failure) => return refuse(failure),
    };
    let pushing = service == "git-receive-pack";
    if service == "info/refs" && parts.uri.query().is_some_and(|query| query.contains("service=git-receive-pack")) {
        // A push that starts while another is landing sees the refs that push leaves.
        drop(state.app_lock(app.id.as_str()).lock_owned().await);
    }
    // A repository hook changed on disk is put back before git can run it.
    if let Err(error) = state.repos().install_hooks() {
        tracing::error!(%error, "cannot install the git hooks");
        return refuse(ApiFailure::new(ErrorCode::Internal, "the platform's git hooks could not be installed"));
    }

    let mut env = Vec::new();
    let keepalive: Box<dyn std::any::Any + Send> = if pushing {
        // Pushes to one app are taken one at a time, so they are recorded in order.
        let guard = state.app_lock(app.id.as_str()).lock_owned().await;
        let session = match PushSession::open(&state, &app, &caller.token) {
            Ok(session) => session,
            Err(failure) => return refuse(failure),
        };
        env.push((hook_env::URL.to_owned(), state.config().internal_url.clone()));
        env.push((hook_env::PUSH_SECRET.to_owned(), session.secret().to_owned()));
        Box::new((guard, session))
    } else {
        Box::new(())
    };
    // Under the app's push lock: a push that repeats what just landed succeeds like it.
    let body = if pushing && parts.headers.get(header::CONTENT_ENCODING).is_none() {
        let deploy_ref = format!("refs/heads/{}", app.deploy_branch);
        match tovuk_git::resolve_ref(&state.repos().path(&app.name), &deploy_ref).await {
            Ok(Some((_, current))) => {
                crate::push_commands::repeat_succeeds(Body::new(body), &deploy_ref, &current).await
            }
            _ => Body::new(body),
        }
    } else {
        Body::new(body)
    };
    let backend = BackendRequest {
        repos_root: state.repos().root().to_owned(),
        app: app.name.clone(),
        service_path: service,
        method: parts.method.to_string(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        content_type: header_text(&parts.headers, header::CONTENT_TYPE),
        content_length: header_text(&parts.headers, header::CONTENT_LENGTH),
        content_encoding: header_text(&parts.headers, header::CONTENT_ENCODING),
        git_protocol: parts.headers.get("git-protocol").and_then(|v| v.to_str().ok()).map(str::to_owned),
        remote_user: caller.token.id.to_string(),
        remote_addr: peer.ip().to_string(),
        config: state.repos().managed_config(state.config().max_push_bytes),
        env,
        max_body_bytes: state.config().max_push_bytes.saturating_add(1 << 20),
        size_refusal_note: pushing.then(|| size_refusal_note(state.config().max_push_bytes)),
        keepalive,
    };
    match tovuk_git::serve_backend(backend, body).await {
        Ok(response) => response,
        Err(error) => {
            tracing::error!(app = %app.name, %error, "git http-backend failed");
            refuse(ApiFailure::new(ErrorCode::Internal, "git could not serve this request").next("tovuk status"))
        }
    }
}

/// What a pusher reads when git refused the pack for its size: the limit and the ways on.
fn size_refusal_note(max_push_bytes: u64) -> String {
    format!(
        "this push is over the platform's limit of {max_push_bytes} bytes (the server's --max-push-bytes)\n\
         push fewer commits at a time, keep large generated files out of git, or send only\n\
         the working tree with `tovuk deploy` (it honours .tovukignore)"
    )
}

#[cfg(test)]
mod tests {
    use super::parse_path;
    use axum::http::Method;

    #[test]
    fn only_known_services_of_valid_app_names_are_served() {
        assert_eq!(parse_path("/git/my-api.git/info/refs", &Method::GET), Some(("my-api".into(), "info/refs")));
        assert!(parse_path("/git/my-api.git/git-receive-pack", &Method::POST).is_some());
        for (path, method) in [
            ("/git/../etc.git/info/refs", Method::GET),
            ("/git/%2e%2e.git/info/refs", Method::GET),
            ("/git/my-api.git/../other.git/info/refs", Method::GET),
            ("/git//etc/passwd.git/info/refs", Method::GET),
            ("/git/My-Api.git/info/refs", Method::GET),
            ("/git/my-api/info/refs", Method::GET),
            ("/git/my-api.git/HEAD", Method::GET),
            ("/git/my-api.git/objects/info/packs", Method::GET),
            ("/git/my-api.git/info/refs", Method::POST),
            ("/git/my-api.git/git-receive-pack", Method::GET),
            ("/git/my%20api.git/info/refs", Method::GET),
        ] {
            assert_eq!(parse_path(path, &method), None, "{method} {path}");
        }
    }
}
