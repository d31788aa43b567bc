//! [`EdgeAuth`]: one app's auth, and the decision for one request to a route with `auth`.

use crate::answer::{Answer, ErrorCode};
use crate::config::{AuthConfig, AuthMode, ConfigError};
use crate::cookies::{Sealer, cookie_values};
use crate::provider::{Provider, ProviderError};
use crate::store::{SessionStore, unix_now};
use crate::token::{Expect, TokenError, Verified, verify};
use crate::{CAPABILITIES_HEADER, METHOD_HEADER, SESSION_COOKIE, SUBJECT_HEADER, csrf};
use http::header::{ACCEPT, AUTHORIZATION};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a route asks of its callers (a route with `auth = "none"` never reaches the edge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// Anyone; an identity is passed on when the request has one.
    Optional,
    /// A session or a bearer token.
    Session,
    /// A session or bearer token whose capability claim holds this capability.
    Capability(String),
}

/// How the client reached the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// The request as the router received it from the client.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a Method,
    /// The request target's path and query, e.g. `/orders?page=2`.
    pub path_and_query: &'a str,
    /// The host (and port, if not the default) the router routed on: from `Host`, or the
    /// `:authority` of HTTP/2. Login redirects come back to it.
    pub host: &'a str,
    pub scheme: Scheme,
    /// The client's headers (the router strips identity headers before or after: they are
    /// not read here).
    pub headers: &'a HeaderMap,
}

impl RequestView<'_> {
    pub(crate) fn path(&self) -> &str {
        self.path_and_query.split_once('?').map_or(self.path_and_query, |(path, _)| path)
    }

    /// A browser navigating: it can follow a login redirect and come back.
    fn is_navigation(&self) -> bool {
        let html = self
            .headers
            .get_all(ACCEPT)
            .iter()
            .any(|value| value.to_str().is_ok_and(|accept| accept.contains("text/html")));
        html && matches!(*self.method, Method::GET | Method::HEAD)
    }

    /// The bearer token, if the request carries one (`Authorization: Bearer <token>`, the
    /// scheme in any case).
    fn bearer(&self) -> Option<&str> {
        let value = self.headers.get(AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| !token.is_empty())
    }
}

/// How a request authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Session,
    Bearer,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Session => "session",
            AuthMethod::Bearer => "bearer",
        }
    }
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The `sub` claim; printable ASCII.
    pub subject: String,
    /// Printable ASCII without commas each.
    pub capabilities: Vec<String>,
    pub method: AuthMethod,
}

impl Identity {
    /// The headers the router sets on the request it forwards to the app.
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let mut set = |name: &'static str, value: &str| {
            // Values were checked printable ASCII when the token was verified.
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        };
        set(SUBJECT_HEADER, &self.subject);
        set(CAPABILITIES_HEADER, &self.capabilities.join(","));
        set(METHOD_HEADER, self.method.as_str());
        headers
    }
}

/// What the router does with a request.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Forward it; with the identity's headers set, or none for an anonymous request on an
    /// optional route.
    Pass { identity: Option<Identity> },
    /// Send this instead.
    Answer(Answer),
}

/// The content of the session cookie.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SessionCookie {
    pub sid: String,
    pub sub: String,
    pub caps: Vec<String>,
    /// Unix seconds.
    pub exp: u64,
}

/// One app's edge auth. Cheap to share: the router keeps one per app behind an `Arc`.
pub struct EdgeAuth {
    pub(crate) config: AuthConfig,
    pub(crate) audience: String,
    pub(crate) provider: Provider,
    pub(crate) sealer: Sealer,
    pub(crate) store: Arc<dyn SessionStore>,
    /// Bearer tokens verified a moment ago.
    pub(crate) verified: crate::verified::VerifiedTokens,
}

impl std::fmt::Debug for EdgeAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeAuth").field("config", &self.config).finish_non_exhaustive()
    }
}

/// What the request's credentials came to.
enum Found {
    Identity(Identity),
    /// No credentials (or a session cookie that does not open or has ended).
    Nothing,
    /// A bearer token that does not verify.
    InvalidToken(String),
    /// An answer that stands whatever the route (provider or store down, CSRF).
    Refused(Answer),
}

impl EdgeAuth {
    /// Checks `config` and sets up its caches; makes no network call (the provider is asked
    /// when a request first needs it).
    pub fn new(config: AuthConfig, store: Arc<dyn SessionStore>) -> Result<EdgeAuth, ConfigError> {
        config.validate()?;
        let provider = Provider::new(&config.issuer, config.refetch_interval).map_err(|error| ConfigError {
            var: "TOVUK_AUTH_ISSUER",
            message: format!("no HTTP client for the provider: {error}"),
        })?;
        Ok(EdgeAuth {
            audience: config.bearer_audience(),
            sealer: Sealer::new(&config.cookie_key, &config.app),
            provider,
            store,
            config,
            verified: Default::default(),
        })
    }

    /// Decides one request to a route that declares `auth`. See the crate docs for the table.
    pub async fn check(&self, requirement: &Requirement, request: &RequestView<'_>) -> Decision {
        let optional = *requirement == Requirement::Optional;
        let identity = match self.find_identity(request, optional).await {
            Found::Identity(identity) => identity,
            Found::Refused(answer) => return Decision::Answer(answer),
            // An optional route is public: a bad token or an ended session just makes the
            // request anonymous, never an error the public would see.
            Found::Nothing | Found::InvalidToken(_) if optional => return Decision::Pass { identity: None },
            Found::InvalidToken(reason) => {
                return Decision::Answer(Answer::unauthorized(&self.config.app, "", Some(&reason)));
            }
            Found::Nothing => return Decision::Answer(self.unauthenticated(request).await),
        };
        if let Requirement::Capability(capability) = requirement
            && !identity.capabilities.contains(capability)
        {
            return Decision::Answer(self.capability_missing(request, capability, &identity));
        }
        Decision::Pass { identity: Some(identity) }
    }

    /// A bearer token if there is one (it wins over a cookie), else the session cookie.
    async fn find_identity(&self, request: &RequestView<'_>, optional: bool) -> Found {
        if let Some(token) = request.bearer() {
            if let Some(identity) = self.verified.get(token) {
                return Found::Identity(identity);
            }
            let expect = Expect {
                audience: &self.audience,
                capability_claim: self.config.capability_claim.as_deref(),
                nonce: None,
            };
            return match verify(&self.provider, token, &expect).await {
                Ok(verified) => {
                    let exp = verified.claims.get("exp").and_then(serde_json::Value::as_u64);
                    let identity = identity(verified, AuthMethod::Bearer);
                    self.verified.keep(token, &identity, exp);
                    Found::Identity(identity)
                }
                Err(TokenError::Invalid(reason)) => Found::InvalidToken(reason),
                Err(TokenError::Unavailable(_)) if optional => Found::Nothing,
                Err(TokenError::Unavailable(error)) => Found::Refused(provider_answer(&error)),
            };
        }
        if self.config.mode == AuthMode::Jwt {
            return Found::Nothing;
        }
        let Some(session) = self.open_session(request.headers) else { return Found::Nothing };
        match self.store.is_live(&session.sid).await {
            Ok(true) => {}
            Ok(false) => return Found::Nothing,
            Err(error) if optional => {
                tracing::warn!(app = %self.config.app, %error, "session store failed; request passed anonymous");
                return Found::Nothing;
            }
            Err(error) => return Found::Refused(Answer::error(ErrorCode::SessionStoreUnavailable, error.to_string())),
        }
        if csrf::is_unsafe(request.method)
            && let Err(reason) = csrf::check(self.config.csrf_mode, request)
        {
            // On an optional route the request goes on without the session's identity: it
            // can't act as the user, and a public form posted from elsewhere still works.
            if optional {
                return Found::Nothing;
            }
            return Found::Refused(Answer::error(
                ErrorCode::CsrfFailed,
                format!(
                    "{} {} rides on a session cookie but failed the CSRF check ({} mode): {reason}",
                    request.method,
                    request.path(),
                    self.config.csrf_mode.as_str()
                ),
            ));
        }
        Found::Identity(Identity { subject: session.sub, capabilities: session.caps, method: AuthMethod::Session })
    }

    /// The first session cookie that opens for this app and has not expired.
    pub(crate) fn open_session(&self, headers: &HeaderMap) -> Option<SessionCookie> {
        let now = unix_now();
        cookie_values(headers, SESSION_COOKIE)
            .filter_map(|value| self.sealer.open::<SessionCookie>(SESSION_COOKIE, value))
            .find(|session| session.exp > now)
    }

    /// No credentials on a route that needs them: a browser goes to log in, others get 401.
    async fn unauthenticated(&self, request: &RequestView<'_>) -> Answer {
        if self.config.mode == AuthMode::Oidc && request.is_navigation() {
            return self.start_login(request, request.path_and_query).await;
        }
        let needs = match self.config.mode {
            AuthMode::Oidc => "a session (log in at /.tovuk/auth/login) or a bearer token",
            AuthMode::Jwt => "a bearer token",
        };
        Answer::unauthorized(&self.config.app, needs, None)
    }

    fn capability_missing(&self, request: &RequestView<'_>, capability: &str, identity: &Identity) -> Answer {
        let holder = match identity.method {
            AuthMethod::Session => "the session",
            AuthMethod::Bearer => "the token",
        };
        let granted = if identity.capabilities.is_empty() {
            format!("{holder} grants none")
        } else {
            format!("{holder} grants: {}", identity.capabilities.join(", "))
        };
        let claim = match &self.config.capability_claim {
            Some(claim) => format!(" (claim `{claim}`)"),
            None => " (TOVUK_AUTH_CAPABILITY_CLAIM is not set, so no token grants any)".to_owned(),
        };
        Answer::error(
            ErrorCode::CapabilityMissing,
            format!("{} needs capability `{capability}`; {granted}{claim}", request.path()),
        )
    }

    /// For `tovuk app inspect`: which provider and client the app uses.
    pub fn provider_summary(&self) -> String {
        match self.config.mode {
            AuthMode::Oidc => format!(
                "issuer {}, client {}",
                self.config.issuer,
                self.config.client_id.as_deref().unwrap_or_default()
            ),
            AuthMode::Jwt => format!("issuer {}, audience {} (bearer tokens only)", self.config.issuer, self.audience),
        }
    }

    /// For `tovuk app inspect`: the session cookie's flags and the CSRF mode in effect.
    pub fn cookie_security(&self) -> String {
        if self.config.mode == AuthMode::Jwt {
            return "no cookies (bearer tokens only)".to_owned();
        }
        let secure = if self.config.secure_cookies { "Secure" } else { "not Secure (served over plain HTTP)" };
        format!("HttpOnly, SameSite=Lax, {secure}; CSRF check: {}", self.config.csrf_mode.as_str())
    }
}

pub(crate) fn identity(verified: Verified, method: AuthMethod) -> Identity {
    Identity { subject: verified.subject, capabilities: verified.capabilities.unwrap_or_default(), method }
}

/// The answer when the provider is needed and fails: 503 when it is unreachable, 502 when it
/// answered wrongly; the message names the issuer either way.
pub(crate) fn provider_answer(error: &ProviderError) -> Answer {
    match error {
        ProviderError::Unavailable(message) => Answer::error(ErrorCode::AuthProviderUnavailable, message.as_str()),
        ProviderError::Invalid(message) => Answer::error(ErrorCode::AuthProviderInvalid, message.as_str()),
    }
}
