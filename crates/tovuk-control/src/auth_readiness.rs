//! Auth readiness: a contract whose routes declare auth (`optional`, `session`,
//! `capability`) deploys only once the app's config says how the router verifies callers.
//! `TOVUK_AUTH_MODE` must be `oidc` or `jwt` (`VARY_AUTH_MODE` is read as its alias), and
//! each mode names what it needs. The deploy gate and `tovuk preflight` decide with
//! [`evaluate`], so a workstation sees exactly the blockers a deploy would hit.

use std::collections::BTreeMap;
use tovuk_api_types::ConfigBlocker;
use tovuk_manifest::{Route, RouteAuth};
use zeroize::Zeroizing;

pub(crate) const MODE: &str = "TOVUK_AUTH_MODE";
pub(crate) const MODE_ALIAS: &str = "VARY_AUTH_MODE";
pub(crate) const ISSUER: &str = "TOVUK_AUTH_ISSUER";
pub(crate) const CLIENT_ID: &str = "TOVUK_AUTH_CLIENT_ID";
pub(crate) const CLIENT_SECRET: &str = "TOVUK_AUTH_CLIENT_SECRET";
pub(crate) const AUDIENCE: &str = "TOVUK_AUTH_AUDIENCE";
pub(crate) const CAPABILITY_CLAIM: &str = "TOVUK_AUTH_CAPABILITY_CLAIM";
pub(crate) const CSRF_MODE: &str = "TOVUK_AUTH_CSRF_MODE";

/// Every config name the auth settings read.
pub(crate) const NAMES: [&str; 8] =
    [MODE, MODE_ALIAS, ISSUER, CLIENT_ID, CLIENT_SECRET, AUDIENCE, CAPABILITY_CLAIM, CSRF_MODE];

/// How the router verifies callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthMode {
    /// Browser logins at the provider (authorization code + PKCE) and bearer JWTs.
    Oidc,
    /// Bearer JWTs only.
    Jwt,
}

impl AuthMode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AuthMode::Oidc => "oidc",
            AuthMode::Jwt => "jwt",
        }
    }
}

/// How cookie sessions are kept from cross-site requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CsrfMode {
    Origin,
    Token,
    Off,
}

impl CsrfMode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CsrfMode::Origin => "origin",
            CsrfMode::Token => "token",
            CsrfMode::Off => "off",
        }
    }

    fn from_name(name: &str) -> Option<CsrfMode> {
        [CsrfMode::Origin, CsrfMode::Token, CsrfMode::Off].into_iter().find(|mode| mode.as_str() == name)
    }
}

/// The auth settings of a release whose routes declare auth, once nothing blocks them.
#[derive(Clone)]
pub(crate) struct AuthSettings {
    pub mode: AuthMode,
    pub issuer: String,
    pub client_id: Option<String>,
    pub client_secret: Option<Zeroizing<String>>,
    pub audience: String,
    pub capability_claim: Option<String>,
    pub csrf: CsrfMode,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings").field("mode", &self.mode).field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

/// The routes that declare auth.
pub(crate) fn auth_routes(routes: &[Route]) -> impl Iterator<Item = &Route> {
    routes.iter().filter(|route| route.auth != RouteAuth::None)
}

/// What a contract's `routes` need of the app's config `values` (the auth names, opened):
/// Ok(None) when no route declares auth, Ok(settings) when nothing blocks, else every
/// blocker with the command that clears it.
pub(crate) fn evaluate(
    app: &str,
    routes: &[Route],
    values: &BTreeMap<String, Zeroizing<String>>,
) -> Result<Option<AuthSettings>, Vec<ConfigBlocker>> {
    let Some(first) = auth_routes(routes).next() else { return Ok(None) };
    let value = |name: &str| values.get(name).map(|value| value.trim().to_owned()).filter(|value| !value.is_empty());
    let blocker =
        |route: &Route, name: &str, expected: &str, observed: String, check: &str, example: &str| ConfigBlocker {
            kind: "auth".into(),
            capability: "edge-auth".into(),
            name: name.to_owned(),
            needed_by: format!("[[routes]] {} (auth = \"{}\")", route.path, route.auth),
            route: Some(route.path.clone()),
            expected: expected.to_owned(),
            observed,
            check: check.to_owned(),
            next: format!("tovuk env set {app} {name}={example}"),
        };
    let observed = |name: &str| match value(name) {
        Some(found) => format!("`{}`", found.escape_debug()),
        None => "not set".to_owned(),
    };
    let mode_text = value(MODE).or_else(|| value(MODE_ALIAS));
    let mode = match mode_text.as_deref() {
        Some("oidc") => AuthMode::Oidc,
        Some("jwt") => AuthMode::Jwt,
        other => {
            let observed = other.map_or_else(|| "not set".to_owned(), |found| format!("`{}`", found.escape_debug()));
            return Err(vec![blocker(first, MODE, "oidc or jwt", observed, "auth_mode", "oidc")]);
        }
    };
    let mut blockers = Vec::new();
    let issuer = value(ISSUER);
    match issuer.as_deref() {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => {}
        _ => blockers.push(blocker(
            first,
            ISSUER,
            "the provider's issuer URL (http:// or https://)",
            observed(ISSUER),
            "auth_issuer",
            "https://<your provider's issuer>",
        )),
    }
    let client_id = value(CLIENT_ID);
    if mode == AuthMode::Oidc && client_id.is_none() {
        blockers.push(blocker(
            first,
            CLIENT_ID,
            "the client id the provider gave this app (oidc mode)",
            observed(CLIENT_ID),
            "auth_client",
            "<client id>",
        ));
    }
    let audience = value(AUDIENCE).or_else(|| client_id.clone());
    if mode == AuthMode::Jwt && value(AUDIENCE).is_none() {
        blockers.push(blocker(
            first,
            AUDIENCE,
            "the audience (`aud`) tokens for this app carry (jwt mode)",
            observed(AUDIENCE),
            "auth_audience",
            "<audience>",
        ));
    }
    let capability_claim = value(CAPABILITY_CLAIM);
    let capability_route = auth_routes(routes).find(|route| route.auth == RouteAuth::Capability);
    if let (Some(route), None) = (capability_route, &capability_claim) {
        blockers.push(blocker(
            route,
            CAPABILITY_CLAIM,
            "the claim (a dot path) that lists a token's capabilities",
            observed(CAPABILITY_CLAIM),
            "auth_capability_claim",
            "capabilities",
        ));
    }
    let csrf = match value(CSRF_MODE) {
        None => CsrfMode::Origin,
        Some(text) => match CsrfMode::from_name(&text) {
            Some(mode) => mode,
            None => {
                blockers.push(blocker(
                    first,
                    CSRF_MODE,
                    "origin, token or off (unset: origin)",
                    observed(CSRF_MODE),
                    "auth_csrf_mode",
                    "origin",
                ));
                CsrfMode::Origin
            }
        },
    };
    if !blockers.is_empty() {
        return Err(blockers);
    }
    Ok(Some(AuthSettings {
        mode,
        issuer: issuer.unwrap_or_default(),
        client_id,
        client_secret: values.get(CLIENT_SECRET).filter(|secret| !secret.trim().is_empty()).cloned(),
        audience: audience.unwrap_or_default(),
        capability_claim,
        csrf,
    }))
}

/// The first line a blocked deploy shows: the first blocker, with its command.
pub(crate) fn first_line(blockers: &[ConfigBlocker]) -> String {
    match blockers.first() {
        Some(blocker) => format!(
            "{} needs {} to be {} ({}): {}{}",
            blocker.needed_by,
            blocker.name,
            blocker.expected,
            blocker.observed,
            blocker.next,
            match blockers.len() {
                1 => String::new(),
                more => format!(" ({} more blockers: tovuk preflight)", more - 1),
            }
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;
