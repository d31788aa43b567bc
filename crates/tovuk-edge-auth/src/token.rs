//! Verifying a JWT from the provider: a bearer token, or the id token of a login.
//!
//! The algorithm is pinned before any key is touched: only asymmetric algorithms, and only
//! the one the key itself allows. That refuses `alg: none`, and HS256 "signed" with the
//! provider's public key as the HMAC secret (the classic key-confusion forgery).

use crate::provider::{KeyError, Provider, ProviderError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 60;

/// Why a token was not accepted.
#[derive(Debug)]
pub(crate) enum TokenError {
    /// The token is wrong; the message says how, for the client's developer.
    Invalid(String),
    /// Verifying it needs the provider, which can't be reached.
    Unavailable(ProviderError),
}

/// What a verified token says about its holder.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub subject: String,
    /// None when the token has no capability claim at all (unlike an empty one).
    pub capabilities: Option<Vec<String>>,
    pub claims: Map<String, Value>,
}

/// What a token must say besides a valid signature.
pub(crate) struct Expect<'a> {
    pub audience: &'a str,
    pub capability_claim: Option<&'a str>,
    /// For an id token: the nonce its login sent.
    pub nonce: Option<&'a str>,
}

pub(crate) async fn verify(provider: &Provider, token: &str, expect: &Expect<'_>) -> Result<Verified, TokenError> {
    let alg = pinned_algorithm(token).map_err(TokenError::Invalid)?;
    let header = jsonwebtoken::decode_header(token)
        .map_err(|error| TokenError::Invalid(format!("the token's header is not valid: {error}")))?;
    let key = match provider.key(header.kid.as_deref(), alg).await {
        Ok(key) => key,
        Err(KeyError::Refused(reason)) => return Err(TokenError::Invalid(reason)),
        Err(KeyError::Unavailable(error)) => return Err(TokenError::Unavailable(error)),
    };
    let mut validation = Validation::new(alg);
    validation.leeway = LEEWAY_SECONDS;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    // Accept the issuer with or without a trailing slash: providers differ, and the
    // discovery check already tied the two spellings to one provider.
    let issuer = provider.issuer().trim_end_matches('/');
    validation.set_issuer(&[issuer.to_owned(), format!("{issuer}/")]);
    validation.set_audience(&[expect.audience]);
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .map_err(|error| TokenError::Invalid(explain(error.kind(), provider.issuer(), expect.audience)))?;
    let claims = data.claims;
    if let Some(nonce) = expect.nonce
        && claims.get("nonce").and_then(Value::as_str) != Some(nonce)
    {
        return Err(TokenError::Invalid("the id token's nonce is not the one this login sent".to_owned()));
    }
    let subject = match claims.get("sub").and_then(Value::as_str) {
        Some(sub) if !sub.is_empty() && header_safe(sub) => sub.to_owned(),
        Some(_) => return Err(TokenError::Invalid("the `sub` claim is not printable ASCII".to_owned())),
        None => return Err(TokenError::Invalid("the token has no `sub` claim".to_owned())),
    };
    let capabilities = expect.capability_claim.and_then(|path| capabilities(&claims, path));
    Ok(Verified { subject, capabilities, claims })
}

/// The token's `alg`, if it is one the edge accepts; read by hand so `none` and HS* get a
/// clear refusal instead of a parse error.
fn pinned_algorithm(token: &str) -> Result<Algorithm, String> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err("the token is not a JWS compact JWT (three dot-separated parts)".to_owned());
    };
    let header: Value = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or("the token's header is not base64url JSON")?;
    let alg = header.get("alg").and_then(Value::as_str).ok_or("the token's header has no `alg`")?;
    match alg {
        "RS256" => Ok(Algorithm::RS256),
        "RS384" => Ok(Algorithm::RS384),
        "RS512" => Ok(Algorithm::RS512),
        "PS256" => Ok(Algorithm::PS256),
        "PS384" => Ok(Algorithm::PS384),
        "PS512" => Ok(Algorithm::PS512),
        "ES256" => Ok(Algorithm::ES256),
        "ES384" => Ok(Algorithm::ES384),
        "EdDSA" => Ok(Algorithm::EdDSA),
        _ if alg.eq_ignore_ascii_case("none") => Err("unsigned tokens (alg `none`) are refused".to_owned()),
        _ if alg.starts_with("HS") => {
            Err(format!("alg `{alg}` is refused: tokens must be signed with the provider's private key"))
        }
        _ => Err(format!("alg `{alg}` is not supported")),
    }
}

/// A reason a client's developer can act on.
fn explain(kind: &ErrorKind, issuer: &str, audience: &str) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (`nbf`)".to_owned(),
        ErrorKind::InvalidIssuer => format!("the token's issuer is not {issuer}"),
        ErrorKind::InvalidAudience => format!("the token's audience does not include `{audience}`"),
        ErrorKind::InvalidSignature => "the signature does not verify".to_owned(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}` claim"),
        ErrorKind::InvalidAlgorithm => "the token's alg does not match its key".to_owned(),
        other => format!("the token is malformed ({other:?})"),
    }
}

/// The capabilities at the dot-separated `path`: a JSON array of strings, or a
/// space-separated string (like `scope`). Entries that can't travel in the comma-separated
/// header (commas, non-printable characters) are left out. None when the claim is absent.
pub(crate) fn capabilities(claims: &Map<String, Value>, path: &str) -> Option<Vec<String>> {
    let mut segments = path.split('.');
    let first = segments.next()?;
    let mut value = claims.get(first)?;
    for segment in segments {
        value = value.get(segment)?;
    }
    let listed: Vec<&str> = match value {
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        Value::String(text) => text.split_whitespace().collect(),
        _ => Vec::new(),
    };
    Some(
        listed
            .into_iter()
            .filter(|item| !item.is_empty() && header_safe(item) && !item.contains(','))
            .map(str::to_owned)
            .collect(),
    )
}

/// Printable ASCII: safe in a header value as it is.
pub(crate) fn header_safe(text: &str) -> bool {
    text.bytes().all(|byte| (0x20..0x7f).contains(&byte))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn capabilities_come_from_arrays_strings_and_nested_paths() {
        let claims = claims(json!({
            "scope": "read write",
            "realm_access": {"roles": ["admin", "a,b", "ops"]},
            "n": 3
        }));
        assert_eq!(capabilities(&claims, "scope"), Some(vec!["read".to_owned(), "write".to_owned()]));
        assert_eq!(capabilities(&claims, "realm_access.roles"), Some(vec!["admin".to_owned(), "ops".to_owned()]));
        assert_eq!(capabilities(&claims, "n"), Some(vec![]));
        assert_eq!(capabilities(&claims, "missing.path"), None);
    }

    #[test]
    fn only_asymmetric_algorithms_are_pinned() {
        let token = |alg: &str| format!("{}.e30.sig", URL_SAFE_NO_PAD.encode(format!("{{\"alg\":\"{alg}\"}}")));
        assert_eq!(pinned_algorithm(&token("RS256")), Ok(Algorithm::RS256));
        assert_eq!(pinned_algorithm(&token("EdDSA")), Ok(Algorithm::EdDSA));
        assert!(pinned_algorithm(&token("none")).is_err_and(|e| e.contains("none")));
        assert!(pinned_algorithm(&token("HS256")).is_err_and(|e| e.contains("HS256")));
        assert!(pinned_algorithm("a.b").is_err());
    }
}
