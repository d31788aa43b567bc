//! The request's host, normalised, and the app name it names under the base domain.

use hyper::Uri;
use hyper::header::{HOST, HeaderMap};

/// Why a request has no usable host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostError {
    Missing,
    Invalid,
}

/// The host a request is for: the absolute-form URI's authority when there is one (RFC 9112
/// §3.2.2 says it wins over `Host`), else the single `Host` header.
pub(crate) fn request_host(uri: &Uri, headers: &HeaderMap) -> Result<String, HostError> {
    if let Some(authority) = uri.authority() {
        return normalize(authority.as_str());
    }
    let mut values = headers.get_all(HOST).iter();
    let value = values.next().ok_or(HostError::Missing)?;
    if values.next().is_some() {
        return Err(HostError::Invalid);
    }
    normalize(value.to_str().map_err(|_| HostError::Invalid)?)
}

/// Lowercases, drops the port and a trailing dot; refuses anything that is not a host name
/// or an IP literal, so the value is safe to echo in a text body and a log line.
pub(crate) fn normalize(raw_host: &str) -> Result<String, HostError> {
    let raw_host = raw_host.trim();
    if raw_host.is_empty() {
        return Err(HostError::Missing);
    }
    let (name, port) = if raw_host.starts_with('[') {
        let (literal, rest) = raw_host.split_once(']').ok_or(HostError::Invalid)?;
        let literal = &literal[1..];
        if literal.is_empty() || !literal.bytes().all(|byte| byte.is_ascii_hexdigit() || matches!(byte, b':' | b'.')) {
            return Err(HostError::Invalid);
        }
        let port = match rest {
            "" => None,
            _ => Some(rest.strip_prefix(':').ok_or(HostError::Invalid)?),
        };
        (&raw_host[..literal.len() + 2], port)
    } else {
        match raw_host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (raw_host, None),
        }
    };
    if port.is_some_and(|port| !port.bytes().all(|byte| byte.is_ascii_digit())) {
        return Err(HostError::Invalid);
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let valid_name = name.starts_with('[')
        || (!name.is_empty()
            && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_')));
    if !valid_name {
        return Err(HostError::Invalid);
    }
    Ok(name.to_ascii_lowercase())
}

/// The base domain as hosts are compared against it.
pub(crate) fn normalize_base_domain(base_domain: &str) -> String {
    let base_domain = base_domain.trim().trim_start_matches('.');
    base_domain.strip_suffix('.').unwrap_or(base_domain).to_ascii_lowercase()
}

/// The app a normalised host names: its one label in front of the base domain.
/// `a.b.<base>` names no app, because app names are single DNS labels.
pub(crate) fn app_name<'host>(host: &'host str, base_domain: &str) -> Option<&'host str> {
    let app = host.strip_suffix(base_domain)?.strip_suffix('.')?;
    (!app.is_empty() && !app.contains('.')).then_some(app)
}

#[cfg(test)]
mod tests;
