//! Edge auth at the router: before a request reaches an app, the identity headers a client
//! sent are removed (only the router sets them), the platform's login paths
//! (`/.tovuk/auth/...`) are answered, and a route that declares auth is checked by
//! `tovuk-edge-auth`: passed on with who is calling, or answered (a login redirect, 401,
//! 403, 503) without the app seeing it. Calls through a service binding come from another
//! app the platform vouches for (`Tovuk-Caller-App`) and are not checked here.

use crate::body::{RouterBody, full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tovuk_api_types::RouteAuth as DesiredAuth;
use tovuk_edge_auth::{
    AuthConfig, Decision, EdgeAuth, IDENTITY_HEADER_PREFIX, RequestView, Requirement, Scheme, SessionStore,
};

/// An app's edge auth: the verifier and which path prefix needs what.
pub(crate) struct AppAuth {
    edge: EdgeAuth,
    /// Longest prefix first; `None`: the route is open (`auth = "none"`).
    rules: Vec<(String, Option<Requirement>)>,
    /// What it was built from: a new table with the same keeps it (and its key cache).
    desired: DesiredAuth,
}

impl std::fmt::Debug for AppAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppAuth").field("desired", &self.desired).finish_non_exhaustive()
    }
}

impl AppAuth {
    fn build(app: &str, desired: &DesiredAuth, store: Arc<dyn SessionStore>) -> Result<AppAuth, String> {
        let mut cookie_key = [0u8; 32];
        hex::decode_to_slice(&desired.cookie_key, &mut cookie_key)
            .map_err(|error| format!("the session cookie key is malformed: {error}"))?;
        let var = |name: &str| -> Option<String> {
            match name {
                "TOVUK_AUTH_MODE" => Some(desired.mode.clone()),
                "TOVUK_AUTH_ISSUER" => Some(desired.issuer.clone()),
                "TOVUK_AUTH_CLIENT_ID" => desired.client_id.clone(),
                "TOVUK_AUTH_CLIENT_SECRET" => desired.client_secret.clone(),
                "TOVUK_AUTH_AUDIENCE" => desired.audience.clone(),
                "TOVUK_AUTH_CAPABILITY_CLAIM" => desired.capability_claim.clone(),
                "TOVUK_AUTH_CSRF_MODE" => Some(desired.csrf_mode.clone()),
                _ => None,
            }
        };
        // The router answers plain HTTP: a `Secure` cookie would never come back to it.
        let config = AuthConfig::from_vars(app, var, cookie_key, false).map_err(|error| error.to_string())?;
        let edge = EdgeAuth::new(config, store).map_err(|error| error.to_string())?;
        let mut rules: Vec<(String, Option<Requirement>)> = desired
            .rules
            .iter()
            .map(|rule| {
                let requirement = match rule.auth.as_str() {
                    "none" => None,
                    "optional" => Some(Requirement::Optional),
                    "capability" => Some(Requirement::Capability(rule.capability.clone().unwrap_or_default())),
                    // `session`, and anything unknown: the strictest that signs in.
                    _ => Some(Requirement::Session),
                };
                (canonical(&rule.path), requirement)
            })
            .collect();
        rules.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        Ok(AppAuth { edge, rules, desired: desired.clone() })
    }

    /// What `path` needs: the longest route whose prefix it is under, compared as an app
    /// could read it (see [`canonical`]), so `/%61dmin` or `//admin` is not a way around `/admin`.
    fn requirement(&self, path: &str) -> Option<&Requirement> {
        let path = canonical(path);
        let under = |prefix: &str| {
            path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/')) || prefix.is_empty()
        };
        self.rules.iter().find(|(prefix, _)| under(prefix)).and_then(|(_, requirement)| requirement.as_ref())
    }
}

/// A path as the most lenient app would read it: percent-decoded, empty and `.` segments
/// dropped, `..` applied, ASCII lowercase, no trailing `/` (`/` itself is empty). A route
/// covers every spelling that could reach it; one it does not cover is never spared.
fn canonical(path: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy().to_ascii_lowercase();
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split(['/', '\\']) {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    segments.iter().map(|segment| format!("/{segment}")).collect()
}

/// Every app's edge auth, kept across route tables while its settings do not change.
#[derive(Default)]
pub(crate) struct AuthCache {
    by_app: Mutex<HashMap<String, Arc<AppAuth>>>,
    store: std::sync::OnceLock<Arc<dyn SessionStore>>,
}

impl AuthCache {
    pub(crate) fn set_store(&self, store: Arc<dyn SessionStore>) {
        let _ = self.store.set(store);
    }

    /// The edge auth of `app` as `desired` says, reusing the one built before when the same.
    pub(crate) fn get(&self, app: &str, desired: &DesiredAuth) -> Result<Arc<AppAuth>, String> {
        let mut by_app = self.by_app.lock().map_err(|_| "the edge auth cache is poisoned".to_owned())?;
        if let Some(known) = by_app.get(app).filter(|known| known.desired == *desired) {
            return Ok(known.clone());
        }
        let store = self.store.get().cloned().ok_or_else(|| "this router has no session store".to_owned())?;
        let built = Arc::new(AppAuth::build(app, desired, store)?);
        by_app.insert(app.to_owned(), built.clone());
        Ok(built)
    }

    /// Forgets apps no longer routed with auth.
    pub(crate) fn keep(&self, apps: &[&str]) {
        if let Ok(mut by_app) = self.by_app.lock() {
            by_app.retain(|app, _| apps.contains(&app.as_str()));
        }
    }
}

/// Removes what only the router may say of a caller.
pub(crate) fn strip_identity(request: &mut Request<Incoming>) {
    let forged: Vec<hyper::header::HeaderName> =
        request.headers().keys().filter(|name| name.as_str().starts_with(IDENTITY_HEADER_PREFIX)).cloned().collect();
    for name in forged {
        request.headers_mut().remove(name);
    }
}

/// Checks `request` against the app's edge auth: None lets it through (with the caller's
/// identity set on it), Some is the answer instead.
pub(crate) async fn gate(auth: &AppAuth, request: &mut Request<Incoming>, host: &str) -> Option<Response<RouterBody>> {
    let path_and_query = request.uri().path_and_query().map_or("/", |path| path.as_str()).to_owned();
    let view = RequestView {
        method: request.method(),
        path_and_query: &path_and_query,
        host,
        scheme: Scheme::Http,
        headers: request.headers(),
    };
    if let Some(answer) = auth.edge.platform_path(&view).await {
        return Some(answer_response(answer));
    }
    let requirement = auth.requirement(request.uri().path())?;
    match auth.edge.check(requirement, &view).await {
        Decision::Pass { identity } => {
            if let Some(identity) = identity {
                request.headers_mut().extend(identity.headers());
            }
            None
        }
        Decision::Answer(answer) => Some(answer_response(answer)),
    }
}

fn answer_response(answer: tovuk_edge_auth::Answer) -> Response<RouterBody> {
    let mut response = Response::new(full(answer.body));
    *response.status_mut() = answer.status;
    *response.headers_mut() = answer.headers;
    response
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn every_spelling_of_a_path_reads_the_same() {
        for spelling in
            ["/admin", "/admin/", "//admin", "/%61dmin", "/ADMIN", "/x/../admin", "/./admin", "/admin%2f", "\\admin"]
        {
            assert_eq!(canonical(spelling), "/admin", "{spelling}");
        }
        assert_eq!(canonical("/"), "");
        assert_eq!(canonical("/admin/users"), "/admin/users");
        assert_eq!(canonical("/administrator"), "/administrator");
    }
}
