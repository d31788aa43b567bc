//! The responses the edge gives itself: redirects, and JSON refusals shaped like every
//! platform API's (`{"error": {"code", "message"}}`).

use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// A full response the router sends instead of forwarding the request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    /// May repeat `Set-Cookie`.
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Why the edge refused; the `code` of the JSON body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 401: no credentials on a route that needs them.
    Unauthorized,
    /// 401: a bearer token that does not verify (the message says why).
    InvalidToken,
    /// 403: authenticated, but the capability claim lacks the route's capability.
    CapabilityMissing,
    /// 403: an unsafe request on a session failed the app's CSRF check.
    CsrfFailed,
    /// 503: the provider is needed (a new login, an unknown key) and can't be reached.
    AuthProviderUnavailable,
    /// 502: the provider answered, but not as OIDC says it must.
    AuthProviderInvalid,
    /// 503: the session store failed, so no session can be trusted or made.
    SessionStoreUnavailable,
    /// 400: the login could not complete (state mismatch, expired login, refused code).
    LoginFailed,
    /// 404: an unknown path under `/.tovuk/auth/`, or login in `jwt` mode.
    NotFound,
    /// 405: a platform path called with a method it does not take.
    MethodNotAllowed,
    /// 500: something on this side failed (randomness, a cookie too large).
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::CapabilityMissing => "capability_missing",
            ErrorCode::CsrfFailed => "csrf_failed",
            ErrorCode::AuthProviderUnavailable => "auth_provider_unavailable",
            ErrorCode::AuthProviderInvalid => "auth_provider_invalid",
            ErrorCode::SessionStoreUnavailable => "session_store_unavailable",
            ErrorCode::LoginFailed => "login_failed",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Internal => "internal",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            ErrorCode::Unauthorized | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorCode::CapabilityMissing | ErrorCode::CsrfFailed => StatusCode::FORBIDDEN,
            ErrorCode::AuthProviderUnavailable | ErrorCode::SessionStoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::AuthProviderInvalid => StatusCode::BAD_GATEWAY,
            ErrorCode::LoginFailed => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl Answer {
    /// A JSON refusal with the status that belongs to `code`.
    pub(crate) fn error(code: ErrorCode, message: impl Into<String>) -> Answer {
        let body = serde_json::json!({"error": {"code": code.as_str(), "message": message.into()}});
        let mut headers = no_store();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Answer { status: code.status(), headers, body: body.to_string().into_bytes() }
    }

    /// A 401 with `WWW-Authenticate` (RFC 6750 §3): without an error when the request
    /// carried no credentials (`needs` says what would do), with `invalid_token` and the
    /// reason when its token failed.
    pub(crate) fn unauthorized(app: &str, needs: &str, invalid_token: Option<&str>) -> Answer {
        let (mut answer, challenge) = match invalid_token {
            None => (
                Answer::error(ErrorCode::Unauthorized, format!("`{app}` needs {needs} here")),
                format!("Bearer realm=\"{}\"", quotable(app)),
            ),
            Some(reason) => (
                Answer::error(ErrorCode::InvalidToken, format!("the bearer token was refused: {reason}")),
                format!(
                    "Bearer realm=\"{}\", error=\"invalid_token\", error_description=\"{}\"",
                    quotable(app),
                    quotable(reason)
                ),
            ),
        };
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            answer.headers.insert(WWW_AUTHENTICATE, value);
        }
        answer
    }

    /// A redirect to `location` (already a valid URL or local path).
    pub(crate) fn redirect(status: StatusCode, location: &str) -> Answer {
        let mut headers = no_store();
        match HeaderValue::from_str(location) {
            Ok(value) => {
                headers.insert(LOCATION, value);
                Answer { status, headers, body: Vec::new() }
            }
            Err(_) => Answer::error(ErrorCode::Internal, "the redirect target is not a valid header value"),
        }
    }

    /// Adds a `Set-Cookie` line (built by `cookies.rs`, so always a valid value).
    pub(crate) fn with_cookie(mut self, cookie: String) -> Answer {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            self.headers.append(SET_COOKIE, value);
        }
        self
    }

    pub(crate) fn with_header(mut self, name: HeaderName, value: &'static str) -> Answer {
        self.headers.insert(name, HeaderValue::from_static(value));
        self
    }
}

/// Answers about auth must never be cached, least of all a redirect that sets a cookie.
fn no_store() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers
}

/// Text safe inside a quoted-string of a header: printable ASCII without `"` and `\`.
fn quotable(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '?' }).collect()
}
