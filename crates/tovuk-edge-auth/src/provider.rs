//! The provider as the edge sees it: the discovery document and the signing keys, cached,
//! and refreshed by requests that need them, at most once per refetch interval.
//!
//! A refresh fetches both documents (discovery, then the JWKS it names). It happens when a
//! token names a key not in the cache, when a new login starts (so a login does not send the
//! browser to a provider that is down), and when the cache is older than [`MAX_AGE`]. A
//! failed refresh keeps what was cached: tokens signed by known keys, and sessions, keep
//! working through an outage.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Cached documents older than this are refreshed when next used (and kept if that fails),
/// so a key the provider withdrew stops verifying within the hour.
const MAX_AGE: Duration = Duration::from_secs(3600);
/// Discovery documents and key sets are small; a larger answer is not one.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// The parts of the discovery document the edge uses.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Discovery {
    pub issuer: String,
    pub jwks_uri: String,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub end_session_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
}

/// The provider could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ProviderError {
    /// No answer, or a 5xx: the provider is down or unreachable from here.
    #[error("{0}")]
    Unavailable(String),
    /// It answered, but not with what OIDC requires.
    #[error("{0}")]
    Invalid(String),
}

/// Why no key verifies a token.
#[derive(Debug)]
pub(crate) enum KeyError {
    /// The key may exist, but the provider can't be asked.
    Unavailable(ProviderError),
    /// The provider's keys were checked: none fits.
    Refused(String),
}

/// The shapes of public key a JWK can carry, each good for some algorithms only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyShape {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyShape {
    fn fits(self, alg: Algorithm) -> bool {
        match self {
            KeyShape::Rsa => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            KeyShape::P256 => alg == Algorithm::ES256,
            KeyShape::P384 => alg == Algorithm::ES384,
            KeyShape::Ed25519 => alg == Algorithm::EdDSA,
        }
    }
}

struct KeyEntry {
    kid: Option<String>,
    /// The JWK's own `alg`, when it names one: then only that algorithm may use the key.
    alg: Option<Algorithm>,
    shape: KeyShape,
    key: DecodingKey,
}

impl KeyEntry {
    fn fits(&self, alg: Algorithm) -> bool {
        self.shape.fits(alg) && self.alg.is_none_or(|own| own == alg)
    }

    /// The entry for one JWK, or None for keys that must not verify signatures here:
    /// symmetric (`oct`) keys, encryption keys, unknown shapes.
    fn from_jwk(jwk: &Jwk) -> Option<KeyEntry> {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))) {
            return None;
        }
        let shape = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => KeyShape::Rsa,
            AlgorithmParameters::EllipticCurve(params) => match params.curve {
                EllipticCurve::P256 => KeyShape::P256,
                EllipticCurve::P384 => KeyShape::P384,
                _ => return None,
            },
            AlgorithmParameters::OctetKeyPair(params) if params.curve == EllipticCurve::Ed25519 => KeyShape::Ed25519,
            _ => return None,
        };
        let alg = match jwk.common.key_algorithm {
            // A key naming an algorithm that can't be used for signatures here (RSA-OAEP, or
            // one this crate does not know) is not a signing key.
            Some(key_alg) => Some(Algorithm::try_from(key_alg).ok().filter(|alg| shape.fits(*alg))?),
            None => None,
        };
        let key = DecodingKey::from_jwk(jwk).ok()?;
        Some(KeyEntry { kid: jwk.common.key_id.clone(), alg, shape, key })
    }
}

/// The provider's usable signing keys.
pub(crate) struct KeySet {
    entries: Vec<KeyEntry>,
}

enum Lookup {
    Found(DecodingKey),
    Missing(String),
    Mismatch(String),
}

impl KeySet {
    fn parse(body: &[u8]) -> Result<KeySet, String> {
        #[derive(Deserialize)]
        struct Raw {
            keys: Vec<serde_json::Value>,
        }
        let raw: Raw = serde_json::from_slice(body).map_err(|error| format!("the JWKS is not a key set: {error}"))?;
        // Keys one by one: a key of a kind this crate can't read must not hide the others.
        let entries = raw
            .keys
            .into_iter()
            .filter_map(|key| serde_json::from_value::<Jwk>(key).ok())
            .filter_map(|jwk| KeyEntry::from_jwk(&jwk))
            .collect();
        Ok(KeySet { entries })
    }

    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Lookup {
        let alg_name = format!("{alg:?}");
        match kid {
            Some(kid) => match self.entries.iter().find(|entry| entry.kid.as_deref() == Some(kid)) {
                Some(entry) if entry.fits(alg) => Lookup::Found(entry.key.clone()),
                Some(entry) => Lookup::Mismatch(format!(
                    "the token's alg {alg_name} does not match key `{kid}` ({})",
                    entry.alg.map_or_else(|| format!("{:?} key", entry.shape), |own| format!("{own:?}"))
                )),
                None => Lookup::Missing(format!("the provider has no key `{kid}`")),
            },
            // A token without `kid` is fine when exactly one key could have signed it.
            None => {
                let mut fitting = self.entries.iter().filter(|entry| entry.fits(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(entry), None) => Lookup::Found(entry.key.clone()),
                    (None, _) => Lookup::Missing(format!("the provider has no {alg_name} key")),
                    (Some(_), Some(_)) => {
                        Lookup::Mismatch("the token names no key (`kid`) and the provider has several".to_owned())
                    }
                }
            }
        }
    }
}

#[derive(Default)]
struct Cache {
    discovery: Option<Arc<Discovery>>,
    keys: Option<Arc<KeySet>>,
    /// When the cached documents were fetched.
    fetched_at: Option<Instant>,
    /// The last refresh: when it started and how it went.
    last_refresh: Option<(Instant, Result<(), ProviderError>)>,
}

pub(crate) struct Provider {
    issuer: String,
    http: reqwest::Client,
    interval: Duration,
    cache: Mutex<Cache>,
    /// Held through a refresh: requests that need one meanwhile wait for its outcome instead
    /// of starting their own.
    refreshing: tokio::sync::Mutex<()>,
}

impl Provider {
    pub(crate) fn new(issuer: &str, interval: Duration) -> Result<Provider, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            // The token endpoint gets a code and a secret: never forward those elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| error.to_string())?;
        Ok(Provider {
            issuer: issuer.to_owned(),
            http,
            interval,
            cache: Mutex::new(Cache::default()),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // The cache holds plain values: one a panicking thread left behind is still whole.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cached_discovery(&self, fresh_for: Duration) -> Option<Arc<Discovery>> {
        let cache = self.cache();
        cache.fetched_at.filter(|at| at.elapsed() < fresh_for).and(cache.discovery.clone())
    }

    /// The discovery document: cached, or fetched when missing or old (an old one serves
    /// while the provider is down).
    pub(crate) async fn discovery(&self) -> Result<Arc<Discovery>, ProviderError> {
        if let Some(discovery) = self.cached_discovery(MAX_AGE) {
            return Ok(discovery);
        }
        let outcome = self.refresh().await;
        match (self.cached_discovery(Duration::MAX), outcome) {
            (Some(discovery), _) => Ok(discovery),
            (None, Err(error)) => Err(error),
            (None, Ok(())) => Err(self.unavailable("no discovery document was kept")),
        }
    }

    /// The discovery document for a new login: only if the provider answered within the
    /// refetch interval, so a browser is not sent to a provider that is down.
    pub(crate) async fn discovery_for_login(&self) -> Result<Arc<Discovery>, ProviderError> {
        self.refresh().await?;
        self.cached_discovery(Duration::MAX).ok_or_else(|| self.unavailable("no discovery document was kept"))
    }

    /// The key to verify a token with header `kid` and `alg`.
    pub(crate) async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, KeyError> {
        let cached = {
            let cache = self.cache();
            cache.keys.clone().map(|keys| (keys, cache.fetched_at.is_some_and(|at| at.elapsed() < MAX_AGE)))
        };
        if let Some((keys, fresh)) = &cached {
            match keys.find(kid, alg) {
                Lookup::Found(key) if *fresh => return Ok(key),
                Lookup::Mismatch(reason) => return Err(KeyError::Refused(reason)),
                _ => {}
            }
        }
        let outcome = self.refresh().await;
        let keys = self.cache().keys.clone();
        match (outcome, keys.map(|keys| keys.find(kid, alg))) {
            // Fresh after the refresh, or an old key while the provider can't be asked.
            (_, Some(Lookup::Found(key))) => Ok(key),
            (_, Some(Lookup::Mismatch(reason))) => Err(KeyError::Refused(reason)),
            (Err(error), _) => Err(KeyError::Unavailable(error)),
            (Ok(()), Some(Lookup::Missing(reason))) => Err(KeyError::Refused(reason)),
            (Ok(()), None) => Err(KeyError::Unavailable(self.unavailable("no key set was kept"))),
        }
    }

    /// Fetches discovery and keys, unless a refresh started within the refetch interval: then
    /// that one's outcome stands (waiting for it if it is still running).
    async fn refresh(&self) -> Result<(), ProviderError> {
        let _turn = self.refreshing.lock().await;
        if let Some((at, outcome)) = &self.cache().last_refresh
            && at.elapsed() < self.interval
        {
            return outcome.clone();
        }
        let started = Instant::now();
        let fetched = self.fetch().await;
        let mut cache = self.cache();
        let outcome = match fetched {
            Ok((discovery, keys)) => {
                cache.discovery = Some(Arc::new(discovery));
                cache.keys = Some(Arc::new(keys));
                cache.fetched_at = Some(started);
                Ok(())
            }
            Err(error) => {
                tracing::warn!(issuer = %self.issuer, %error, "auth provider refresh failed");
                Err(error)
            }
        };
        cache.last_refresh = Some((started, outcome.clone()));
        outcome
    }

    async fn fetch(&self) -> Result<(Discovery, KeySet), ProviderError> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'));
        let discovery: Discovery = serde_json::from_slice(&self.get(&url).await?)
            .map_err(|error| self.invalid(format!("its discovery document {url} is not valid: {error}")))?;
        // OIDC Discovery §4.3: the document must name the issuer it was fetched for; else an
        // attacker's document could vouch for tokens of another issuer.
        if discovery.issuer.trim_end_matches('/') != self.issuer.trim_end_matches('/') {
            return Err(self.invalid(format!(
                "its discovery document names issuer `{}`; fix TOVUK_AUTH_ISSUER to match",
                discovery.issuer
            )));
        }
        let keys = KeySet::parse(&self.get(&discovery.jwks_uri).await?)
            .map_err(|error| self.invalid(format!("{error} (from {})", discovery.jwks_uri)))?;
        Ok((discovery, keys))
    }

    /// The body of a GET, capped.
    async fn get(&self, url: &str) -> Result<Vec<u8>, ProviderError> {
        let response = self
            .http
            .get(url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|error| self.unavailable(format!("GET {url}: {}", error_chain(&error))))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(self.unavailable(format!("GET {url} answered {status}")));
        }
        if !status.is_success() {
            return Err(self.invalid(format!("GET {url} answered {status}")));
        }
        read_capped(response).await.map_err(|error| self.unavailable(format!("GET {url}: {error}")))
    }

    pub(crate) fn unavailable(&self, detail: impl std::fmt::Display) -> ProviderError {
        ProviderError::Unavailable(format!("the auth provider {} is unavailable: {detail}", self.issuer))
    }

    pub(crate) fn invalid(&self, detail: impl std::fmt::Display) -> ProviderError {
        ProviderError::Invalid(format!("the auth provider {} answered wrongly: {detail}", self.issuer))
    }
}

/// A response body, refused past [`MAX_DOCUMENT_BYTES`].
pub(crate) async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| error_chain(&error))? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(format!("the answer is over {MAX_DOCUMENT_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `reqwest` errors say "error sending request"; the cause (connection refused, timeout)
/// is in the source chain.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Parses a JSON body.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|error| error.to_string())
}
