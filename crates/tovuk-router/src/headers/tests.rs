//! Unit tests for header rewriting.

use super::{is_upgrade, set_forwarded, strip_hop_by_hop};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};

fn headers_of(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("test header name is valid"),
            HeaderValue::from_str(value).expect("test header is valid"),
        );
    }
    headers
}

fn render(headers: &HeaderMap) -> String {
    let mut lines: Vec<String> = headers
        .iter()
        .map(|(name, value)| format!("{name}: {}", value.to_str().expect("test header is valid")))
        .collect();
    lines.sort();
    lines.join("\n")
}

#[test]
fn hop_by_hop_headers_are_dropped() {
    let mut headers = headers_of(&[
        ("connection", "keep-alive, X-Private-Hop"),
        ("keep-alive", "timeout=5"),
        ("x-private-hop", "1"),
        ("proxy-authorization", "Basic eA=="),
        ("proxy-connection", "keep-alive"),
        ("te", "trailers"),
        ("trailer", "expires"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("accept", "text/html"),
        ("host", "blog.localhost"),
    ]);
    strip_hop_by_hop(&mut headers, false);
    assert_eq!(render(&headers), "accept: text/html\nhost: blog.localhost");
}

#[test]
fn upgrades_keep_their_handshake_headers() {
    let mut headers = headers_of(&[
        ("connection", "keep-alive, Upgrade, host"),
        ("upgrade", "websocket"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("keep-alive", "timeout=5"),
        ("host", "chat.localhost"),
    ]);
    assert!(is_upgrade(&headers));
    strip_hop_by_hop(&mut headers, true);
    assert_eq!(
        render(&headers),
        "connection: upgrade\nhost: chat.localhost\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\nupgrade: websocket"
    );
}

#[test]
fn upgrade_needs_both_headers() {
    assert!(!is_upgrade(&headers_of(&[("upgrade", "websocket")])));
    assert!(!is_upgrade(&headers_of(&[("connection", "upgrade")])));
    assert!(is_upgrade(&headers_of(&[("connection", "keep-alive"), ("connection", "UPGRADE"), ("upgrade", "h2c")])));
}

#[test]
fn forwarded_headers_append_the_client_and_overwrite_the_rest() {
    let mut headers = headers_of(&[
        ("x-forwarded-for", "10.0.0.1"),
        ("x-forwarded-for", "10.0.0.2"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "spoofed.example"),
        ("x-request-id", "client-id"),
    ]);
    let client_ip = "127.0.0.1".parse().expect("loopback parses");
    set_forwarded(&mut headers, client_ip, Some(HeaderValue::from_static("blog.localhost:8080")), "req_x");
    assert_eq!(
        render(&headers),
        "x-forwarded-for: 10.0.0.1, 10.0.0.2, 127.0.0.1\nx-forwarded-host: blog.localhost:8080\nx-forwarded-proto: http\nx-request-id: req_x"
    );
}
