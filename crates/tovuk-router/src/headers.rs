//! Header rewriting between client and app: hop-by-hop removal and the `X-Forwarded-*` set.

use hyper::body::Bytes;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::fmt::Write as _;
use std::net::IpAddr;

/// Hop-by-hop headers (RFC 9110 §7.6.1) that describe one connection and must not be forwarded.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// The app calling through a service binding, set by the router alone.
pub(crate) const TOVUK_CALLER_APP: HeaderName = HeaderName::from_static("tovuk-caller-app");
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static(tovuk_daemon::request_id::HEADER);

/// True when `Connection` lists `token` (case-insensitive, comma-separated, possibly repeated).
fn connection_lists(headers: &HeaderMap, token: &str) -> bool {
    connection_tokens(headers).any(|listed| listed.eq_ignore_ascii_case(token))
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// A request (or a 101 response) that switches protocols: `Connection: upgrade` plus `Upgrade`.
pub(crate) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && connection_lists(headers, "upgrade")
}

/// Removes hop-by-hop headers, including those the sender listed in `Connection`.
/// With `keep_upgrade`, `Upgrade` and `Connection: upgrade` survive, because an upgrade
/// handshake must reach the other side to happen at all.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Most messages carry none: one pass over the names then saves a lookup per header below.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let upgrade = keep_upgrade.then(|| headers.get_all(header::UPGRADE).iter().cloned().collect::<Vec<_>>());
    let listed: Vec<HeaderName> =
        connection_tokens(headers).filter_map(|token| HeaderName::from_bytes(token.as_bytes()).ok()).collect();
    for name in listed {
        // `Host` is never a connection option; dropping it would misroute the request.
        if name != header::HOST {
            headers.remove(name);
        }
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
    let proxy_headers: Vec<HeaderName> =
        headers.keys().filter(|name| name.as_str().starts_with("proxy-")).cloned().collect();
    for name in proxy_headers {
        headers.remove(name);
    }
    if let Some(upgrade) = upgrade.filter(|values| !values.is_empty()) {
        for value in upgrade {
            headers.append(header::UPGRADE, value);
        }
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// A header that `strip_hop_by_hop` may remove, before looking at what `Connection` lists
/// (which needs a `Connection` header, itself hop-by-hop).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(name) || name == header::UPGRADE || name.as_str().starts_with("proxy-")
}

/// Tells the app who asked and how: `X-Forwarded-For` gains the client's address,
/// `X-Forwarded-Proto` and `X-Forwarded-Host` are set (never trusted from the client),
/// and `X-Request-Id` carries the id the router logs.
pub(crate) fn set_forwarded(
    headers: &mut HeaderMap,
    client_ip: IpAddr,
    original_host: Option<HeaderValue>,
    request_id: &str,
) {
    // Earlier hops, trimmed and comma-separated, then the client: built in one buffer that
    // becomes the header value without a copy.
    let mut forwarded_for = String::new();
    for earlier_hop in headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
    {
        forwarded_for.push_str(earlier_hop);
        forwarded_for.push_str(", ");
    }
    // Writing to a String cannot fail.
    let _ = write!(forwarded_for, "{client_ip}");
    match HeaderValue::from_maybe_shared(Bytes::from(forwarded_for)) {
        Ok(value) => {
            headers.insert(X_FORWARDED_FOR, value);
        }
        Err(_) => {
            headers.insert(X_FORWARDED_FOR, header_value_of_ip(client_ip));
        }
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    match original_host {
        Some(host) => {
            headers.insert(X_FORWARDED_HOST, host);
        }
        None => {
            headers.remove(X_FORWARDED_HOST);
        }
    }
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(X_REQUEST_ID, value);
    }
}

fn header_value_of_ip(ip: IpAddr) -> HeaderValue {
    // An IP address prints as ASCII digits, dots, colons and hex, always a valid header value.
    HeaderValue::from_str(&ip.to_string()).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod tests;
