//! The platform's own paths under `/.tovuk/auth/`: login (the authorization-code flow with
//! PKCE), the provider's callback, and logout.

use crate::answer::{Answer, ErrorCode};
use crate::config::AuthMode;
use crate::cookies::{CookieAttributes, MAX_COOKIE_BYTES, cookie_values, random_token, same_secret, set_cookie};
use crate::edge::{EdgeAuth, RequestView, SessionCookie, provider_answer};
use crate::provider::{Discovery, error_chain, parse_json, read_capped};
use crate::store::{SessionRecord, unix_now};
use crate::token::{Expect, TokenError, Verified, verify};
use crate::{CALLBACK_PATH, CSRF_COOKIE, LOGIN_COOKIE, LOGIN_PATH, PLATFORM_PATH_PREFIX, SESSION_COOKIE, csrf};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{ACCEPT, ALLOW};
use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long a login may take at the provider.
const LOGIN_TTL_SECONDS: u64 = 600;

/// The content of the login cookie: what the callback must match, and where to go after.
#[derive(Debug, Serialize, Deserialize)]
struct LoginState {
    state: String,
    nonce: String,
    verifier: String,
    return_to: String,
    redirect_uri: String,
    /// Unix seconds.
    exp: u64,
}

/// The parts of a token endpoint's answer the edge uses (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Deserialize)]
struct TokenAnswer {
    id_token: Option<String>,
    access_token: Option<String>,
}

impl EdgeAuth {
    /// The answer for the platform's own paths under `/.tovuk/auth/`; None for every other
    /// path (the router goes on to route the request).
    pub async fn platform_path(&self, request: &RequestView<'_>) -> Option<Answer> {
        let path = request.path();
        let rest = match path.strip_prefix(PLATFORM_PATH_PREFIX) {
            Some(rest) => rest,
            None if path == PLATFORM_PATH_PREFIX.trim_end_matches('/') => "",
            None => return None,
        };
        if self.config.mode == AuthMode::Jwt {
            return Some(Answer::error(
                ErrorCode::NotFound,
                format!("`{}` takes bearer tokens only (TOVUK_AUTH_MODE=jwt): there is no login", self.config.app),
            ));
        }
        let method = request.method;
        let answer = match rest {
            "login" if matches!(*method, Method::GET | Method::HEAD) => {
                let wanted = query_param(request.path_and_query, "return");
                let return_to = wanted.as_deref().filter(|path| is_local_path(path)).unwrap_or("/");
                self.start_login(request, return_to).await
            }
            "callback" if matches!(*method, Method::GET) => self.callback(request).await,
            "logout" if matches!(*method, Method::GET | Method::POST) => self.logout(request).await,
            "login" => not_allowed(method, "GET, HEAD"),
            "callback" => not_allowed(method, "GET"),
            "logout" => not_allowed(method, "GET, POST"),
            _ => Answer::error(
                ErrorCode::NotFound,
                format!(
                    "no platform path {path}; there are {LOGIN_PATH}, {CALLBACK_PATH} and {PLATFORM_PATH_PREFIX}logout"
                ),
            ),
        };
        Some(answer)
    }

    /// Sends the browser to the provider, with the login state in a sealed cookie.
    pub(crate) async fn start_login(&self, request: &RequestView<'_>, return_to: &str) -> Answer {
        let return_to = if is_local_path(return_to) { return_to } else { "/" };
        let discovery = match self.provider.discovery_for_login().await {
            Ok(discovery) => discovery,
            Err(error) => return provider_answer(&error),
        };
        let Some(authorize) = discovery.authorization_endpoint.as_deref() else {
            return Answer::error(
                ErrorCode::AuthProviderInvalid,
                format!("the auth provider {} names no authorization_endpoint", self.config.issuer),
            );
        };
        let Ok(mut url) = reqwest::Url::parse(authorize) else {
            return Answer::error(
                ErrorCode::AuthProviderInvalid,
                format!("the auth provider's authorization_endpoint `{authorize}` is not a URL"),
            );
        };
        let (Some(state), Some(nonce), Some(verifier)) = (random_token(16), random_token(16), random_token(32)) else {
            return Answer::error(ErrorCode::Internal, "no randomness for the login state");
        };
        let redirect_uri = format!("{}://{}{CALLBACK_PATH}", request.scheme.as_str(), request.host);
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", self.client_id())
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", "openid")
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())))
            .append_pair("code_challenge_method", "S256");
        let login = LoginState {
            state,
            nonce,
            verifier,
            return_to: return_to.to_owned(),
            redirect_uri,
            exp: unix_now() + LOGIN_TTL_SECONDS,
        };
        let Some(sealed) = self.sealer.seal(LOGIN_COOKIE, &login) else {
            return Answer::error(ErrorCode::Internal, "the login state could not be sealed");
        };
        Answer::redirect(StatusCode::FOUND, url.as_str()).with_cookie(self.login_cookie(&sealed, LOGIN_TTL_SECONDS))
    }

    /// The provider sent the browser back: check the state, redeem the code, verify the id
    /// token, and start the session.
    async fn callback(&self, request: &RequestView<'_>) -> Answer {
        let param = |name| query_param(request.path_and_query, name);
        let failed = |message: String| {
            Answer::error(ErrorCode::LoginFailed, format!("{message}; start again at {LOGIN_PATH}"))
                .with_cookie(self.login_cookie("", 0))
        };
        if let Some(error) = param("error") {
            let description = param("error_description").map(|text| format!(" ({text})")).unwrap_or_default();
            return failed(format!("the provider refused the login: {error}{description}"));
        }
        let (Some(code), Some(state)) = (param("code"), param("state")) else {
            return failed("the callback carries no code and state".to_owned());
        };
        let logins: Vec<LoginState> = cookie_values(request.headers, LOGIN_COOKIE)
            .filter_map(|value| self.sealer.open::<LoginState>(LOGIN_COOKIE, value))
            .collect();
        let Some(login) = logins.into_iter().find(|login| same_secret(login.state.as_bytes(), state.as_bytes())) else {
            return failed(format!(
                "this browser started no login with this state (the `{LOGIN_COOKIE}` cookie is missing or from another login)"
            ));
        };
        if login.exp <= unix_now() {
            return failed(format!("the login took longer than {} minutes", LOGIN_TTL_SECONDS / 60));
        }
        let discovery = match self.provider.discovery().await {
            Ok(discovery) => discovery,
            Err(error) => return provider_answer(&error),
        };
        let tokens = match self.redeem(&discovery, &code, &login).await {
            Ok(tokens) => tokens,
            Err(Redeem::Answer(answer)) => return answer,
            Err(Redeem::Refused(reason)) => return failed(reason),
        };
        let Some(id_token) = tokens.id_token.as_deref() else {
            return Answer::error(
                ErrorCode::AuthProviderInvalid,
                "the token endpoint sent no id_token (is the `openid` scope allowed for this client?)",
            );
        };
        let expect = Expect {
            audience: self.client_id(),
            capability_claim: self.config.capability_claim.as_deref(),
            nonce: Some(&login.nonce),
        };
        let verified = match verify(&self.provider, id_token, &expect).await {
            Ok(verified) => verified,
            Err(TokenError::Invalid(reason)) => {
                return failed(format!("the provider's id token was refused: {reason}"));
            }
            Err(TokenError::Unavailable(error)) => return provider_answer(&error),
        };
        // OIDC Core §3.1.3.7: an `azp` names the client the token was issued to.
        if verified.claims.get("azp").and_then(|azp| azp.as_str()).is_some_and(|azp| azp != self.client_id()) {
            return failed("the id token was issued to another client (`azp`)".to_owned());
        }
        let capabilities = self.session_capabilities(&verified, tokens.access_token.as_deref()).await;
        self.start_session(request, verified.subject, capabilities, &login.return_to).await
    }

    /// The code exchange at the token endpoint.
    async fn redeem(&self, discovery: &Discovery, code: &str, login: &LoginState) -> Result<TokenAnswer, Redeem> {
        let Some(endpoint) = discovery.token_endpoint.as_deref() else {
            return Err(Redeem::Answer(Answer::error(
                ErrorCode::AuthProviderInvalid,
                format!("the auth provider {} names no token_endpoint", self.config.issuer),
            )));
        };
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", login.redirect_uri.as_str()),
            ("code_verifier", login.verifier.as_str()),
        ];
        let mut post = self.provider.http().post(endpoint).header(ACCEPT, "application/json");
        match self.config.client_secret.as_deref() {
            // RFC 6749 §2.3.1: Basic is the method every server supports; the body only when
            // the provider lists that and not Basic.
            Some(secret) if self.prefers_post(discovery) => {
                form.push(("client_id", self.client_id()));
                form.push(("client_secret", secret));
            }
            Some(secret) => {
                post = post.basic_auth(form_encode(self.client_id()), Some(form_encode(secret)));
            }
            None => form.push(("client_id", self.client_id())),
        }
        let unavailable = |detail: String| Redeem::Answer(provider_answer(&self.provider.unavailable(detail)));
        let response = post
            .form(&form)
            .send()
            .await
            .map_err(|error| unavailable(format!("POST {endpoint}: {}", error_chain(&error))))?;
        let status = response.status();
        let body = read_capped(response).await.map_err(|error| unavailable(format!("POST {endpoint}: {error}")))?;
        if status.is_server_error() {
            return Err(unavailable(format!("POST {endpoint} answered {status}")));
        }
        if !status.is_success() {
            #[derive(Deserialize)]
            struct Refusal {
                error: String,
                error_description: Option<String>,
            }
            let reason = match parse_json::<Refusal>(&body) {
                Ok(refusal) => {
                    format!(
                        "{}{}",
                        refusal.error,
                        refusal.error_description.map(|d| format!(" ({d})")).unwrap_or_default()
                    )
                }
                Err(_) => status.to_string(),
            };
            return Err(Redeem::Refused(format!("the provider refused the code: {reason}")));
        }
        parse_json(&body).map_err(|error| {
            Redeem::Answer(provider_answer(&self.provider.invalid(format!("its token answer is not valid: {error}"))))
        })
    }

    fn prefers_post(&self, discovery: &Discovery) -> bool {
        let methods = &discovery.token_endpoint_auth_methods_supported;
        methods.iter().any(|m| m == "client_secret_post") && !methods.iter().any(|m| m == "client_secret_basic")
    }

    /// The id token's capabilities; when it has no capability claim at all, those of the
    /// access token, if that is a JWT for this app from the same subject (providers such as
    /// Auth0 put permissions only there).
    async fn session_capabilities(&self, id: &Verified, access_token: Option<&str>) -> Vec<String> {
        if let Some(capabilities) = &id.capabilities {
            return capabilities.clone();
        }
        let (Some(token), Some(claim)) = (access_token, self.config.capability_claim.as_deref()) else {
            return Vec::new();
        };
        let expect = Expect { audience: &self.audience, capability_claim: Some(claim), nonce: None };
        match verify(&self.provider, token, &expect).await {
            Ok(access) if access.subject == id.subject => access.capabilities.unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Records the session, sets its cookies, and sends the browser where it was going.
    async fn start_session(
        &self,
        request: &RequestView<'_>,
        subject: String,
        capabilities: Vec<String>,
        return_to: &str,
    ) -> Answer {
        let (Some(sid), Some(csrf_token)) = (random_token(32), random_token(32)) else {
            return Answer::error(ErrorCode::Internal, "no randomness for the session");
        };
        let ttl = self.config.session_ttl.as_secs();
        let expires_at = unix_now() + ttl;
        let session = SessionCookie { sid, sub: subject, caps: capabilities, exp: expires_at };
        let Some(sealed) = self.sealer.seal(SESSION_COOKIE, &session) else {
            return Answer::error(ErrorCode::Internal, "the session could not be sealed");
        };
        let cookie = set_cookie(SESSION_COOKIE, &sealed, &self.cookie_attributes("/", ttl, true));
        if cookie.len() > MAX_COOKIE_BYTES {
            return Answer::error(
                ErrorCode::Internal,
                format!(
                    "the session would not fit in a cookie ({} bytes; browsers keep 4096): the token grants {} capabilities",
                    cookie.len(),
                    session.caps.len()
                ),
            );
        }
        // A login over a session still open in this browser ends that one: only one stays live.
        for old in self.open_sessions(request) {
            if let Err(error) = self.store.revoke(&old).await {
                tracing::warn!(app = %self.config.app, %error, "the previous session could not be revoked");
            }
        }
        let record = SessionRecord {
            sid: session.sid.clone(),
            app: self.config.app.clone(),
            subject: session.sub.clone(),
            expires_at,
        };
        if let Err(error) = self.store.insert(&record).await {
            return Answer::error(ErrorCode::SessionStoreUnavailable, error.to_string());
        }
        let return_to = if is_local_path(return_to) { return_to } else { "/" };
        Answer::redirect(StatusCode::FOUND, return_to)
            .with_cookie(cookie)
            // Not HttpOnly: in `token` CSRF mode the page's scripts echo it in X-CSRF-Token.
            .with_cookie(set_cookie(CSRF_COOKIE, &csrf_token, &self.cookie_attributes("/", ttl, false)))
            .with_cookie(self.login_cookie("", 0))
    }

    /// Ends the session here (and at the provider when it has an end-session endpoint).
    async fn logout(&self, request: &RequestView<'_>) -> Answer {
        let sids = self.open_sessions(request);
        // A forged POST could only sign the user out, but the app asked for CSRF checks on
        // its unsafe requests, and this is one. A GET logout is for plain links.
        if *request.method == Method::POST
            && !sids.is_empty()
            && let Err(reason) = csrf::check(self.config.csrf_mode, request)
        {
            return Answer::error(ErrorCode::CsrfFailed, format!("the logout failed the CSRF check: {reason}"));
        }
        for sid in &sids {
            // Saying "logged out" while the session still opens would be a lie.
            if let Err(error) = self.store.revoke(sid).await {
                return Answer::error(ErrorCode::SessionStoreUnavailable, error.to_string());
            }
        }
        let home = format!("{}://{}/", request.scheme.as_str(), request.host);
        let end_session = match self.provider.discovery().await {
            Ok(discovery) => discovery.end_session_endpoint.clone(),
            // The session is over here; the provider's own session ends next time it is up.
            Err(_) => None,
        };
        let location = match end_session.and_then(|endpoint| reqwest::Url::parse(&endpoint).ok()) {
            Some(mut url) => {
                url.query_pairs_mut()
                    .append_pair("client_id", self.client_id())
                    .append_pair("post_logout_redirect_uri", &home);
                url.to_string()
            }
            None => "/".to_owned(),
        };
        Answer::redirect(StatusCode::SEE_OTHER, &location)
            .with_cookie(set_cookie(SESSION_COOKIE, "", &self.cookie_attributes("/", 0, true)))
            .with_cookie(set_cookie(CSRF_COOKIE, "", &self.cookie_attributes("/", 0, false)))
    }

    /// The ids of the request's session cookies that open for this app.
    fn open_sessions(&self, request: &RequestView<'_>) -> Vec<String> {
        cookie_values(request.headers, SESSION_COOKIE)
            .filter_map(|value| self.sealer.open::<SessionCookie>(SESSION_COOKIE, value))
            .map(|session| session.sid)
            .collect()
    }

    fn client_id(&self) -> &str {
        self.config.client_id.as_deref().unwrap_or_default()
    }

    fn cookie_attributes(&self, path: &'static str, max_age: u64, http_only: bool) -> CookieAttributes<'static> {
        CookieAttributes { path, max_age, http_only, secure: self.config.secure_cookies }
    }

    /// The login cookie, sent only to the platform paths; empty with age 0 to delete it.
    fn login_cookie(&self, value: &str, max_age: u64) -> String {
        set_cookie(LOGIN_COOKIE, value, &self.cookie_attributes(PLATFORM_PATH_PREFIX, max_age, true))
    }
}

/// Why a code exchange failed.
enum Redeem {
    /// The provider could not be used: this answer (503/502) stands.
    Answer(Answer),
    /// The provider refused the code: the login failed.
    Refused(String),
}

fn not_allowed(method: &Method, allowed: &'static str) -> Answer {
    Answer::error(ErrorCode::MethodNotAllowed, format!("{method} is not allowed here; use {allowed}"))
        .with_header(ALLOW, allowed)
}

/// A path on this host: starts with one `/` (`//evil.example` and `/\evil.example` are
/// other hosts to a browser) and is printable ASCII, so it can't leave the app.
pub(crate) fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && path.bytes().all(|byte| byte.is_ascii_graphic())
}

/// The first value of query parameter `name`, decoded.
fn query_param(path_and_query: &str, name: &str) -> Option<String> {
    let (_, query) = path_and_query.split_once('?')?;
    let mut url = reqwest::Url::parse("http://query.invalid/").ok()?;
    url.set_query(Some(query));
    url.query_pairs().find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}

/// `application/x-www-form-urlencoded`, as RFC 6749 §2.3.1 wants the Basic credentials.
fn form_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => encoded.push(char::from(byte)),
            b' ' => encoded.push('+'),
            other => encoded.push_str(&format!("%{other:02X}")),
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_return_targets() {
        for good in ["/", "/orders?page=2", "/a/b#c"] {
            assert!(is_local_path(good), "{good}");
        }
        for bad in ["https://evil.example/", "//evil.example", "/\\evil.example", "orders", "/a b", "/\u{e9}", ""] {
            assert!(!is_local_path(bad), "{bad}");
        }
    }

    #[test]
    fn query_params_decode() {
        assert_eq!(query_param("/x?code=a%2Bb&state=s", "code"), Some("a+b".to_owned()));
        assert_eq!(query_param("/x?return=%2Forders%3Fp%3D2", "return"), Some("/orders?p=2".to_owned()));
        assert_eq!(query_param("/x", "code"), None);
    }

    #[test]
    fn basic_credentials_are_form_encoded() {
        assert_eq!(form_encode("a b:c/d~"), "a+b%3Ac%2Fd%7E");
    }
}
