//! The CSRF check for unsafe requests that ride on the session cookie. Bearer requests need
//! none: a browser never attaches an `Authorization` header on its own.

use crate::cookies::{cookie_values, same_secret};
use crate::edge::RequestView;
use crate::{CSRF_COOKIE, CSRF_HEADER, CsrfMode};
use http::Method;
use http::header::{ORIGIN, REFERER};

/// Methods that change things. Anything but the four safe ones counts, so a made-up method
/// can't slip past.
pub(crate) fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// Ok when the request passes `mode`'s check, else why not.
pub(crate) fn check(mode: CsrfMode, request: &RequestView<'_>) -> Result<(), String> {
    match mode {
        CsrfMode::Off => Ok(()),
        CsrfMode::Origin => same_origin(request),
        CsrfMode::Token => {
            let header = request.headers.get(CSRF_HEADER).and_then(|value| value.to_str().ok()).unwrap_or("");
            if header.is_empty() {
                return Err(format!("no {CSRF_HEADER} header (it must echo the `{CSRF_COOKIE}` cookie)"));
            }
            if cookie_values(request.headers, CSRF_COOKIE)
                .any(|cookie| same_secret(cookie.as_bytes(), header.as_bytes()))
            {
                Ok(())
            } else {
                Err(format!("the {CSRF_HEADER} header does not match the `{CSRF_COOKIE}` cookie"))
            }
        }
    }
}

/// `Origin` (else `Referer`) must name the request's own origin: scheme, host and port (a page
/// served over plain HTTP on the same host is another origin).
fn same_origin(request: &RequestView<'_>) -> Result<(), String> {
    let header = |name| request.headers.get(name).and_then(|value: &http::HeaderValue| value.to_str().ok());
    // Browsers send `Origin: null` from sandboxed frames and some redirects: no origin at all.
    let (name, source) = match header(ORIGIN).filter(|origin| *origin != "null") {
        Some(origin) => ("Origin", origin),
        None => match header(REFERER) {
            Some(referer) => ("Referer", referer),
            None => return Err("the request has no Origin or Referer header".to_owned()),
        },
    };
    let own = origin(&format!("{}://{}/", request.scheme.as_str(), request.host));
    match (origin(source), own) {
        (Some(theirs), Some(own)) if theirs == own => Ok(()),
        (_, None) => Err(format!("the request's Host `{}` is not a host name", request.host)),
        _ => Err(format!("{name} `{source}` is not this app's {}://{}", request.scheme.as_str(), request.host)),
    }
}

/// `scheme://host:port` of a URL, lowercase, with the scheme's default port filled in.
fn origin(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    Some(format!("{}://{host}:{}", url.scheme(), url.port_or_known_default()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_fill_default_ports() {
        assert_eq!(origin("https://App.example/"), origin("https://app.example:443/x?y"));
        assert_ne!(origin("http://app.example:8080/"), origin("https://app.example:8080/"));
        assert_eq!(origin("http://127.0.0.1:8080/"), Some("http://127.0.0.1:8080".to_owned()));
        assert_eq!(origin("not a url"), None);
    }
}
