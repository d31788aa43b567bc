//! One app's auth settings, parsed from its `TOVUK_AUTH_*` variables; every refusal names the
//! variable to fix.

use std::fmt;
use std::time::Duration;

/// How users authenticate (`TOVUK_AUTH_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Browser logins through the provider (sessions), and bearer JWTs.
    Oidc,
    /// Bearer JWTs only: there is no login.
    Jwt,
}

/// How unsafe requests authenticated by the session cookie prove they come from the app's
/// own pages (`TOVUK_AUTH_CSRF_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CsrfMode {
    /// `Origin` (else `Referer`) must name the request's own scheme, host and port.
    #[default]
    Origin,
    /// Double submit: the `X-CSRF-Token` header must equal the `tovuk_csrf` cookie.
    Token,
    /// No check (the app does its own).
    Off,
}

impl CsrfMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CsrfMode::Origin => "origin",
            CsrfMode::Token => "token",
            CsrfMode::Off => "off",
        }
    }
}

/// A variable that is missing or wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    /// The variable to fix.
    pub var: &'static str,
    pub message: String,
}

impl ConfigError {
    fn new(var: &'static str, message: impl Into<String>) -> ConfigError {
        ConfigError { var, message: message.into() }
    }
}

/// One app's auth settings.
#[derive(Clone)]
pub struct AuthConfig {
    /// The app name: cookies are bound to it, and it is the `realm` of a 401.
    pub app: String,
    pub mode: AuthMode,
    /// The provider's issuer URL; discovery is at `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// Required in `oidc` mode.
    pub client_id: Option<String>,
    /// When set, the code exchange authenticates with it (`client_secret_basic`, or
    /// `client_secret_post` when that is all the provider lists); else the client is public
    /// and PKCE alone binds the code.
    pub client_secret: Option<String>,
    /// The `aud` bearer tokens must carry: required in `jwt` mode; in `oidc` mode the
    /// client id when unset.
    pub audience: Option<String>,
    /// Dot-separated path of the claim listing capabilities (`capabilities`,
    /// `realm_access.roles`, `scope`): a JSON array of strings or a space-separated string.
    /// Unset: no token grants any capability.
    pub capability_claim: Option<String>,
    pub csrf_mode: CsrfMode,
    /// Seals the session and login cookies; the platform derives one per app.
    pub cookie_key: [u8; 32],
    /// Marks cookies `Secure`: set whenever the app is served over HTTPS.
    pub secure_cookies: bool,
    /// How long a session lasts from login.
    pub session_ttl: Duration,
    /// The least time between two contacts with the provider that requests cause (a key
    /// refresh for an unknown key id, a discovery check before a new login).
    pub refetch_interval: Duration,
}

/// Eight hours: a working day.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Ten seconds between provider contacts caused by requests.
pub const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

impl fmt::Debug for AuthConfig {
    // By hand: the cookie key and the client secret must never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("app", &self.app)
            .field("mode", &self.mode)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<set>"))
            .field("audience", &self.audience)
            .field("capability_claim", &self.capability_claim)
            .field("csrf_mode", &self.csrf_mode)
            .field("secure_cookies", &self.secure_cookies)
            .field("session_ttl", &self.session_ttl)
            .finish_non_exhaustive()
    }
}

impl AuthConfig {
    /// Reads `TOVUK_AUTH_MODE` (`oidc`|`jwt`), `TOVUK_AUTH_ISSUER`, `TOVUK_AUTH_CLIENT_ID`,
    /// `TOVUK_AUTH_CLIENT_SECRET`, `TOVUK_AUTH_AUDIENCE`, `TOVUK_AUTH_CAPABILITY_CLAIM` and
    /// `TOVUK_AUTH_CSRF_MODE` (`origin`|`token`|`off`) through `var`, and checks them.
    pub fn from_vars(
        app: &str,
        var: impl Fn(&str) -> Option<String>,
        cookie_key: [u8; 32],
        secure_cookies: bool,
    ) -> Result<AuthConfig, ConfigError> {
        // An empty value is an unset one: `tovuk env set X=` is how people clear a variable.
        let get = |name: &str| var(name).map(|value| value.trim().to_owned()).filter(|value| !value.is_empty());
        let mode = match get("TOVUK_AUTH_MODE").map(|mode| mode.to_ascii_lowercase()).as_deref() {
            Some("oidc") => AuthMode::Oidc,
            Some("jwt") => AuthMode::Jwt,
            Some(other) => {
                return Err(ConfigError::new("TOVUK_AUTH_MODE", format!("`{other}` is not `oidc` or `jwt`")));
            }
            None => return Err(ConfigError::new("TOVUK_AUTH_MODE", "is not set; set it to `oidc` or `jwt`")),
        };
        let csrf_mode = match get("TOVUK_AUTH_CSRF_MODE").map(|mode| mode.to_ascii_lowercase()).as_deref() {
            None | Some("origin") => CsrfMode::Origin,
            Some("token") => CsrfMode::Token,
            Some("off") => CsrfMode::Off,
            Some(other) => {
                return Err(ConfigError::new(
                    "TOVUK_AUTH_CSRF_MODE",
                    format!("`{other}` is not `origin`, `token` or `off`"),
                ));
            }
        };
        let config = AuthConfig {
            app: app.to_owned(),
            mode,
            issuer: get("TOVUK_AUTH_ISSUER").unwrap_or_default(),
            client_id: get("TOVUK_AUTH_CLIENT_ID"),
            client_secret: get("TOVUK_AUTH_CLIENT_SECRET"),
            audience: get("TOVUK_AUTH_AUDIENCE"),
            capability_claim: get("TOVUK_AUTH_CAPABILITY_CLAIM"),
            csrf_mode,
            cookie_key,
            secure_cookies,
            session_ttl: DEFAULT_SESSION_TTL,
            refetch_interval: DEFAULT_REFETCH_INTERVAL,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the settings hang together; [`crate::EdgeAuth::new`] calls it too.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.app.is_empty() {
            return Err(ConfigError::new("app", "the app has no name: cookies are bound to it"));
        }
        if self.issuer.is_empty() {
            return Err(ConfigError::new("TOVUK_AUTH_ISSUER", "is not set; set it to the provider's issuer URL"));
        }
        match reqwest::Url::parse(&self.issuer) {
            Ok(url)
                if matches!(url.scheme(), "https" | "http")
                    && url.host().is_some()
                    && url.query().is_none()
                    && url.fragment().is_none() => {}
            _ => {
                return Err(ConfigError::new(
                    "TOVUK_AUTH_ISSUER",
                    format!("`{}` is not an http(s) URL without query or fragment", self.issuer),
                ));
            }
        }
        if self.mode == AuthMode::Oidc && self.client_id.is_none() {
            return Err(ConfigError::new(
                "TOVUK_AUTH_CLIENT_ID",
                "is required when TOVUK_AUTH_MODE=oidc: the client id registered at the provider",
            ));
        }
        if self.mode == AuthMode::Jwt && self.audience.is_none() {
            return Err(ConfigError::new(
                "TOVUK_AUTH_AUDIENCE",
                "is required when TOVUK_AUTH_MODE=jwt: the `aud` this app's tokens carry",
            ));
        }
        if let Some(path) = &self.capability_claim
            && path.split('.').any(str::is_empty)
        {
            return Err(ConfigError::new(
                "TOVUK_AUTH_CAPABILITY_CLAIM",
                format!("`{path}` is not a dot-separated claim path like `realm_access.roles`"),
            ));
        }
        Ok(())
    }

    /// The audience bearer tokens must carry.
    pub(crate) fn bearer_audience(&self) -> String {
        self.audience.clone().or_else(|| self.client_id.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<AuthConfig, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        AuthConfig::from_vars("shop", |name| vars.get(name).cloned(), [0; 32], true)
    }

    #[test]
    fn variables_parse_and_each_refusal_names_its_variable() {
        let config = parse(&[
            ("TOVUK_AUTH_MODE", "OIDC"),
            ("TOVUK_AUTH_ISSUER", "https://id.example/realms/main"),
            ("TOVUK_AUTH_CLIENT_ID", "shop"),
            ("TOVUK_AUTH_CAPABILITY_CLAIM", "realm_access.roles"),
            ("TOVUK_AUTH_CSRF_MODE", "token"),
            ("TOVUK_AUTH_CLIENT_SECRET", ""),
        ])
        .expect("valid");
        assert_eq!((config.mode, config.csrf_mode), (AuthMode::Oidc, CsrfMode::Token));
        assert_eq!(config.client_secret, None, "an empty value is unset");
        assert_eq!(config.bearer_audience(), "shop", "oidc mode defaults the audience to the client id");
        assert!(!format!("{config:?}").contains("cookie_key"));

        let refused = |vars: &[(&str, &str)]| parse(vars).expect_err("refused").var;
        let issuer = ("TOVUK_AUTH_ISSUER", "https://id.example");
        assert_eq!(refused(&[issuer]), "TOVUK_AUTH_MODE");
        assert_eq!(refused(&[("TOVUK_AUTH_MODE", "saml"), issuer]), "TOVUK_AUTH_MODE");
        assert_eq!(refused(&[("TOVUK_AUTH_MODE", "jwt")]), "TOVUK_AUTH_ISSUER");
        assert_eq!(refused(&[("TOVUK_AUTH_MODE", "jwt"), ("TOVUK_AUTH_ISSUER", "id.example")]), "TOVUK_AUTH_ISSUER");
        assert_eq!(refused(&[("TOVUK_AUTH_MODE", "jwt"), issuer]), "TOVUK_AUTH_AUDIENCE");
        assert_eq!(refused(&[("TOVUK_AUTH_MODE", "oidc"), issuer]), "TOVUK_AUTH_CLIENT_ID");
        let jwt = [("TOVUK_AUTH_MODE", "jwt"), issuer, ("TOVUK_AUTH_AUDIENCE", "api")];
        assert_eq!(refused(&[jwt[0], jwt[1], jwt[2], ("TOVUK_AUTH_CSRF_MODE", "strict")]), "TOVUK_AUTH_CSRF_MODE");
        assert_eq!(
            refused(&[jwt[0], jwt[1], jwt[2], ("TOVUK_AUTH_CAPABILITY_CLAIM", "a..b")]),
            "TOVUK_AUTH_CAPABILITY_CLAIM"
        );
    }
}
