//! Bearer-token authentication and the rights each token scope carries.

use crate::{ApiFailure, ControlState};
use axum::extract::{FromRequestParts, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use tovuk_api_types::ErrorCode;
use tovuk_store::{AppRecord, TokenRecord, TokenScope};

const GET_A_TOKEN: &str = "tovuk target add NAME --url URL --token-file TOKEN_FILE (the first admin token is in <data-dir>/admin.token on the server)";

/// The authenticated caller of a request. Extracting it is what makes a route need a token.
pub(crate) struct Caller {
    pub token: TokenRecord,
}

impl FromRequestParts<ControlState> for Caller {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &ControlState) -> Result<Self, Self::Rejection> {
        let client = client_ip(parts);
        state.auth_throttle().check(client)?;
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            return Err(ApiFailure::new(
                ErrorCode::Unauthorized,
                "this request needs an API token (Authorization: Bearer <token>)",
            )
            .next(GET_A_TOKEN));
        };
        let secret = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|secret| !secret.is_empty())
            .ok_or_else(|| {
                ApiFailure::new(ErrorCode::Unauthorized, "the Authorization header must be `Bearer <token>`")
                    .next(GET_A_TOKEN)
            })?;
        // The hook of a push follows the deploys it started with the push's own secret: only
        // reading a deploy's progress and build log, only while the push lasts, with the
        // rights of the token that pushed.
        if parts.method == axum::http::Method::GET
            && parts.uri.path().starts_with("/v1/deploys/")
            && let Some(token_id) = crate::hooks::push_token(state, secret)
            && let Some(token) = state.store().find_token(&token_id).await?
        {
            return Ok(Caller { token });
        }
        authenticate(state, secret, client).await
    }
}

/// The address the request came from (the server is served with connect info).
fn client_ip(parts: &Parts) -> Option<std::net::IpAddr> {
    parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip())
}

async fn authenticate(
    state: &ControlState,
    secret: &str,
    client: Option<std::net::IpAddr>,
) -> Result<Caller, ApiFailure> {
    match state.store().authenticate(secret).await? {
        Some(token) => {
            state.token_used(&token.id);
            Ok(Caller { token })
        }
        None => {
            state.auth_throttle().failed(client);
            Err(ApiFailure::new(ErrorCode::Unauthorized, "the API token is not valid: it is unknown or revoked")
                .next(GET_A_TOKEN))
        }
    }
}

/// Git sends HTTP basic auth: the password is the token, the username is ignored. A
/// bearer header (`http.extraHeader`) is taken too.
pub(crate) async fn caller_from_basic(
    state: &ControlState,
    headers: &HeaderMap,
    client: std::net::IpAddr,
) -> Result<Caller, ApiFailure> {
    state.auth_throttle().check(Some(client))?;
    use base64::Engine;
    const GIT_HINT: &str =
        "use the app's deploy token as the password: git remote add tovuk http://deploy:TOKEN@HOST/git/APP.git";
    let Some(value) = headers.get(AUTHORIZATION).and_then(|value| value.to_str().ok()) else {
        return Err(ApiFailure::new(ErrorCode::Unauthorized, "pushing and fetching need a token").next(GIT_HINT));
    };
    let secret = if let Some(encoded) = value.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok();
        let text = decoded.and_then(|bytes| String::from_utf8(bytes).ok());
        text.and_then(|text| text.split_once(':').map(|(_, password)| password.trim().to_owned()))
    } else {
        value.strip_prefix("Bearer ").map(|token| token.trim().to_owned())
    };
    match secret.filter(|secret| !secret.is_empty()) {
        Some(secret) => authenticate(state, &secret, Some(client)).await.map_err(|failure| {
            if failure.0.code == ErrorCode::TooManyAttempts { failure } else { failure.next(GIT_HINT) }
        }),
        None => Err(ApiFailure::new(ErrorCode::Unauthorized, "the credentials are not a token").next(GIT_HINT)),
    }
}

impl Caller {
    /// Platform-wide actions need an admin token.
    pub fn require_admin(&self, action: &str) -> Result<(), ApiFailure> {
        match &self.token.scope {
            TokenScope::Admin => Ok(()),
            TokenScope::Deploy { app_name, .. } => Err(ApiFailure::new(
                ErrorCode::Forbidden,
                format!(
                    "token `{}` is a deploy token for app `{app_name}`; {action} needs an admin token",
                    self.token.id
                ),
            )
            .next("tovuk token create --name NAME   (run with an admin token)")),
        }
    }

    /// Whether this caller may act on `app`.
    /// The app a deploy token is scoped to (its id); `None` for an admin token.
    pub fn own_app(&self) -> Option<&str> {
        match &self.token.scope {
            TokenScope::Admin => None,
            TokenScope::Deploy { app_id, .. } => Some(app_id.as_str()),
        }
    }

    pub fn may_act_on(&self, app_id: &str) -> bool {
        match &self.token.scope {
            TokenScope::Admin => true,
            TokenScope::Deploy { app_id: own, .. } => own.as_str() == app_id,
        }
    }

    /// A deploy token scoped to another app is refused, whether or not `requested` exists,
    /// so a token cannot be used to discover other apps' names.
    pub fn forbidden_for(&self, requested: &str) -> ApiFailure {
        let own = match &self.token.scope {
            TokenScope::Deploy { app_name, .. } => app_name.as_str(),
            TokenScope::Admin => "",
        };
        ApiFailure::new(
            ErrorCode::Forbidden,
            format!("token `{}` is scoped to app `{own}` and has no rights on app `{requested}`", self.token.id),
        )
        .next(format!("use a deploy token of `{requested}` or an admin token (tovuk target add ... --token-file PATH)"))
    }
}

/// Looks an app up by name or id, refusing callers without rights on it.
pub(crate) async fn app_for(state: &ControlState, caller: &Caller, name_or_id: &str) -> Result<AppRecord, ApiFailure> {
    let app = state.store().find_app(name_or_id).await?;
    match app {
        Some(app) if caller.may_act_on(app.id.as_str()) => Ok(app),
        _ if !matches!(caller.token.scope, TokenScope::Admin) => Err(caller.forbidden_for(name_or_id)),
        _ => {
            Err(ApiFailure::new(ErrorCode::AppNotFound, format!("there is no app `{name_or_id}`"))
                .next("tovuk app list"))
        }
    }
}

/// Unknown routes answer 401 to strangers (so they reveal nothing) and 404 to callers.
pub(crate) async fn unknown_route(State(_): State<ControlState>, caller: Result<Caller, ApiFailure>) -> ApiFailure {
    match caller {
        Err(refused) => refused,
        Ok(_) => ApiFailure::new(ErrorCode::NotFound, "no such API route").next("tovuk --help"),
    }
}
