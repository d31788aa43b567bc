//! Unit tests for host normalisation and app matching.

use super::{HostError, app_name, normalize, normalize_base_domain, request_host};
use hyper::Uri;
use hyper::header::{HOST, HeaderMap, HeaderValue};

#[test]
fn hosts_are_normalised() {
    for (raw_host, expected) in [
        ("blog.localhost", Ok("blog.localhost")),
        ("Blog.LocalHost:8080", Ok("blog.localhost")),
        ("blog.localhost.:80", Ok("blog.localhost")),
        ("blog.localhost:", Ok("blog.localhost")),
        ("127.0.0.1:8080", Ok("127.0.0.1")),
        ("[::1]:8080", Ok("[::1]")),
        ("[::1]", Ok("[::1]")),
        ("", Err(HostError::Missing)),
        ("blog.localhost:80a", Err(HostError::Invalid)),
        ("blog localhost", Err(HostError::Invalid)),
        ("blog/../x", Err(HostError::Invalid)),
        ("`evil`", Err(HostError::Invalid)),
        ("[::1", Err(HostError::Invalid)),
        ("[::1]x", Err(HostError::Invalid)),
        (":8080", Err(HostError::Invalid)),
    ] {
        assert_eq!(normalize(raw_host).as_deref().map_err(|error| *error), expected, "{raw_host:?}");
    }
}

#[test]
fn apps_are_one_label_under_the_base_domain() {
    let base_domain = normalize_base_domain("LocalHost.");
    for (host, expected) in [
        ("blog.localhost", Some("blog")),
        ("my-api.localhost", Some("my-api")),
        ("localhost", None),
        (".localhost", None),
        ("a.b.localhost", None),
        ("bloglocalhost", None),
        ("blog.localhost.example", None),
        ("blog.example.com", None),
    ] {
        assert_eq!(app_name(host, &base_domain), expected, "{host:?}");
    }
    assert_eq!(app_name("shop.apps.example.com", &normalize_base_domain("apps.example.com")), Some("shop"));
}

#[test]
fn host_header_is_required_once() {
    let uri = Uri::from_static("/path");
    let mut headers = HeaderMap::new();
    assert_eq!(request_host(&uri, &headers), Err(HostError::Missing));
    headers.append(HOST, HeaderValue::from_static("Blog.localhost:8080"));
    assert_eq!(request_host(&uri, &headers).as_deref(), Ok("blog.localhost"));
    headers.append(HOST, HeaderValue::from_static("other.localhost"));
    assert_eq!(request_host(&uri, &headers), Err(HostError::Invalid));
}

#[test]
fn absolute_form_authority_wins_over_host() {
    let uri = Uri::from_static("http://shop.localhost:8080/cart");
    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::from_static("blog.localhost"));
    assert_eq!(request_host(&uri, &headers).as_deref(), Ok("shop.localhost"));
}
