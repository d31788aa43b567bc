//! Sealed cookies and cookie headers.
//!
//! A sealed value is `base64url(nonce ‖ XChaCha20-Poly1305(json))` under the app's cookie
//! key, with associated data naming the cookie and the app: a value made for another app, or
//! for another cookie of this app (a login state shown as a session), does not open.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use http::HeaderMap;
use http::header::COOKIE;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The nonce length of XChaCha20-Poly1305.
const NONCE_BYTES: usize = 24;
/// Browsers keep cookies up to 4096 bytes (name, value and attributes): a longer one is
/// dropped silently, which would loop the user through logins.
pub(crate) const MAX_COOKIE_BYTES: usize = 4000;

/// Seals and opens one app's cookies.
pub(crate) struct Sealer {
    cipher: XChaCha20Poly1305,
    app: String,
}

impl Sealer {
    pub(crate) fn new(key: &[u8; 32], app: &str) -> Sealer {
        let key: &Key = key.into();
        Sealer { cipher: XChaCha20Poly1305::new(key), app: app.to_owned() }
    }

    fn associated_data(&self, cookie: &str) -> Vec<u8> {
        format!("tovuk edge-auth cookie\0{cookie}\0{}", self.app).into_bytes()
    }

    /// The sealed value for cookie `cookie`; None only when randomness or encryption fails.
    pub(crate) fn seal<T: Serialize>(&self, cookie: &str, content: &T) -> Option<String> {
        let plaintext = serde_json::to_vec(content).ok()?;
        let nonce = XNonce::try_generate().ok()?;
        let aad = self.associated_data(cookie);
        let ciphertext = self.cipher.encrypt(&nonce, Payload { msg: &plaintext, aad: &aad }).ok()?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Some(URL_SAFE_NO_PAD.encode(sealed))
    }

    /// The content of a value sealed by [`Sealer::seal`] for this cookie and app; None for
    /// anything else (forged, altered, another app's or another cookie's).
    pub(crate) fn open<T: DeserializeOwned>(&self, cookie: &str, value: &str) -> Option<T> {
        let sealed = URL_SAFE_NO_PAD.decode(value).ok()?;
        if sealed.len() <= NONCE_BYTES {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let nonce = <&XNonce>::try_from(nonce).ok()?;
        let aad = self.associated_data(cookie);
        let plaintext = self.cipher.decrypt(nonce, Payload { msg: ciphertext, aad: &aad }).ok()?;
        serde_json::from_slice(&plaintext).ok()
    }
}

/// Every value of cookie `name` across the request's `Cookie` headers, in order. Several can
/// come (a sibling subdomain may set one for the parent domain); callers take the first that
/// opens.
pub(crate) fn cookie_values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers.get_all(COOKIE).iter().filter_map(|value| value.to_str().ok()).flat_map(|line| line.split(';')).filter_map(
        move |pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key.trim() == name).then(|| value.trim().trim_matches('"'))
        },
    )
}

/// The attributes a `Set-Cookie` line carries.
pub(crate) struct CookieAttributes<'a> {
    pub path: &'a str,
    /// Seconds; 0 deletes the cookie.
    pub max_age: u64,
    /// Hidden from the page's scripts.
    pub http_only: bool,
    pub secure: bool,
}

/// A `Set-Cookie` value. `SameSite=Lax` throughout: the cookie still comes along on the
/// top-level redirect back from the provider, and not on cross-site subrequests or POSTs.
pub(crate) fn set_cookie(name: &str, value: &str, attributes: &CookieAttributes<'_>) -> String {
    let mut line = format!("{name}={value}; Path={}; Max-Age={}; SameSite=Lax", attributes.path, attributes.max_age);
    if attributes.http_only {
        line.push_str("; HttpOnly");
    }
    if attributes.secure {
        line.push_str("; Secure");
    }
    line
}

/// `bytes` random bytes, base64url: session ids, state, nonces, PKCE verifiers.
pub(crate) fn random_token(bytes: usize) -> Option<String> {
    let mut buffer = vec![0_u8; bytes];
    getrandom::fill(&mut buffer).ok()?;
    Some(URL_SAFE_NO_PAD.encode(buffer))
}

/// Compares secrets without leaking through timing where the first difference lies.
pub(crate) fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn a_value_opens_only_for_its_app_and_cookie() {
        let key = [7_u8; 32];
        let sealer = Sealer::new(&key, "shop");
        let sealed = sealer.seal("tovuk_session", &vec!["a".to_owned()]).expect("sealed");
        assert_eq!(sealer.open::<Vec<String>>("tovuk_session", &sealed), Some(vec!["a".to_owned()]));
        assert_eq!(sealer.open::<Vec<String>>("tovuk_login", &sealed), None);
        assert_eq!(Sealer::new(&key, "blog").open::<Vec<String>>("tovuk_session", &sealed), None);
        assert_eq!(Sealer::new(&[8_u8; 32], "shop").open::<Vec<String>>("tovuk_session", &sealed), None);
    }

    #[test]
    fn cookies_are_found_across_headers() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; tovuk_session=x"));
        headers.append(COOKIE, HeaderValue::from_static("tovuk_session=y"));
        assert_eq!(cookie_values(&headers, "tovuk_session").collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(cookie_values(&headers, "b").count(), 0);
    }
}
