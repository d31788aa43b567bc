//! Edge auth for deployed apps: the router asks [`EdgeAuth`] about each request to a route
//! that declares `auth`, and passes it on with identity headers or answers it itself.
//!
//! Per app the platform builds an [`AuthConfig`] from the app's `TOVUK_AUTH_*` variables
//! ([`AuthConfig::from_vars`]) and one [`EdgeAuth`]; the router then makes one call per
//! request: [`EdgeAuth::platform_path`] for the platform's own paths under
//! `/.tovuk/auth/`, else [`EdgeAuth::check`] with the route's [`Requirement`].
//!
//! # Two ways in
//!
//! - **Session** (mode `oidc` only): the authorization-code flow with PKCE against the
//!   provider named by the issuer's discovery document. The session lives in an encrypted
//!   cookie (`tovuk_session`, XChaCha20-Poly1305 under the app's cookie key, bound to the app
//!   name) naming a session id that the [`SessionStore`] must still hold: logout revokes it
//!   at once, on every node sharing the store.
//! - **Bearer**: `Authorization: Bearer <JWT>`, verified against the provider's JWKS
//!   (issuer, audience, `exp`/`nbf` with 60 s of leeway, an asymmetric algorithm matching the
//!   key). Accepted on every route kind, in both modes; never subject to CSRF checks.
//!
//! # What a request gets
//!
//! | Route | Valid session or bearer | Nothing, or invalid |
//! |---|---|---|
//! | `Optional` | pass with identity | pass anonymous (an invalid bearer too: the route is public) |
//! | `Session` | pass with identity | browser `GET`/`HEAD`: 302 to the provider; else 401 |
//! | `Capability(c)` | pass if the capability claim holds `c`, else 403 | as `Session` |
//!
//! An unsafe request (anything but `GET`, `HEAD`, `OPTIONS`, `TRACE`) that rides on the session
//! cookie must pass the app's [`CsrfMode`] check: 403 `csrf_failed` if not (on an optional
//! route it goes on anonymous instead). Capabilities are fixed at login: a session carries
//! those of its id token (or, when the id token has no capability claim, of a JWT access
//! token for the app's audience) until it ends.
//!
//! Identity reaches the app as [`SUBJECT_HEADER`], [`CAPABILITIES_HEADER`] (comma-separated)
//! and [`METHOD_HEADER`] (`session` or `bearer`). The router must strip every incoming header
//! starting with [`IDENTITY_HEADER_PREFIX`] first, on every route, auth or not: otherwise a
//! client sets its own identity.
//!
//! Every refusal but a redirect is `{"error": {"code", "message"}}` (codes: [`ErrorCode`]);
//! a 401 also carries `WWW-Authenticate: Bearer realm="<app>"` (RFC 6750).
//!
//! # Provider outages
//!
//! Discovery and keys are cached. While the provider is unreachable, sessions already issued
//! and tokens signed by cached keys keep working; what needs the provider (a new login, a
//! token signed by a key not yet seen) answers 503 `auth_provider_unavailable`. A request
//! makes the crate contact the provider at most once per [`AuthConfig::refetch_interval`]
//! (10 s), so a flood of tokens with made-up key ids can't be turned against the provider.

mod answer;
mod config;
mod cookies;
mod csrf;
mod edge;
mod login;
mod provider;
mod store;
mod token;
mod verified;

pub use answer::{Answer, ErrorCode};
pub use config::{AuthConfig, AuthMode, ConfigError, CsrfMode};
pub use edge::{AuthMethod, Decision, EdgeAuth, Identity, RequestView, Requirement, Scheme};
pub use store::{SessionRecord, SessionStore, SqliteSessions, StoreError};

/// Every identity header starts with this (lowercase, as `http` names headers). The router
/// strips incoming headers with this prefix from every request before it reaches an app.
pub const IDENTITY_HEADER_PREFIX: &str = "tovuk-auth-";
/// The authenticated subject: the token's `sub` claim.
pub const SUBJECT_HEADER: &str = "tovuk-auth-subject";
/// The capabilities the token or session grants, comma-separated (may be empty).
pub const CAPABILITIES_HEADER: &str = "tovuk-auth-capabilities";
/// How the request authenticated: `session` or `bearer`.
pub const METHOD_HEADER: &str = "tovuk-auth-method";

/// The platform's own paths (login, callback, logout) live under this prefix on every app's
/// hosts that use auth.
pub const PLATFORM_PATH_PREFIX: &str = "/.tovuk/auth/";
/// Starts a login; `?return=/local/path` says where to land afterwards.
pub const LOGIN_PATH: &str = "/.tovuk/auth/login";
/// The redirect URI registered at the provider: `<scheme>://<host>/.tovuk/auth/callback`.
pub const CALLBACK_PATH: &str = "/.tovuk/auth/callback";
/// Ends the session (POST; GET too, for plain links).
pub const LOGOUT_PATH: &str = "/.tovuk/auth/logout";

/// The encrypted session cookie.
pub const SESSION_COOKIE: &str = "tovuk_session";
/// The CSRF token cookie, readable by the page's scripts (double submit in `token` mode).
pub const CSRF_COOKIE: &str = "tovuk_csrf";
/// The header that must echo [`CSRF_COOKIE`] in `token` mode.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The encrypted, short-lived login state (state, nonce, PKCE verifier, return path).
pub const LOGIN_COOKIE: &str = "tovuk_login";
