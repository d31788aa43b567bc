//! Host matching: which requests reach which app, and the router's answers when none does.

use crate::support::{TestRouter, proxy, raw_exchange, spawn_text_backend};
use hyper::StatusCode;
use tovuk_router::Target;

#[tokio::test]
async fn hosts_route_with_or_without_port_and_in_any_case() {
    let stack = TestRouter::start().await;
    let blog = spawn_text_backend("blog here").await;
    let shop = spawn_text_backend("shop here").await;
    stack.publish(&[("blog", proxy(blog)), ("shop", proxy(shop))]);

    let port = stack.addr.port();
    for host in [
        format!("blog.localhost:{port}"),
        "blog.localhost".to_owned(),
        format!("BLOG.LocalHost:{port}"),
        "blog.localhost.".to_owned(),
    ] {
        let (status, _, body) = stack.get(&host, "/").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "blog here"), "host {host}");
    }
    let (status, _, body) = stack.get(&stack.host("shop"), "/cart").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "shop here"));
}

#[tokio::test]
async fn unknown_host_gets_404_naming_the_host() {
    let stack = TestRouter::start().await;
    let blog = spawn_text_backend("blog here").await;
    stack.publish(&[("blog", proxy(blog))]);

    for (host, named) in [
        (stack.host("nope"), "nope.localhost"),
        (format!("localhost:{}", stack.addr.port()), "localhost"),
        (stack.host("blog.other"), "blog.other.localhost"),
        ("blog.example.com".to_owned(), "blog.example.com"),
    ] {
        let (status, headers, body) = stack.get(&host, "/").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "host {host}");
        assert_eq!(body, format!("tovuk: no app is served at `{named}`; see `tovuk app list`\n"));
        assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
        assert!(headers["x-request-id"].to_str().expect("id is text").starts_with("req_"));
    }
}

#[tokio::test]
async fn request_without_host_is_400() {
    let stack = TestRouter::start().await;
    let answer = raw_exchange(stack.addr, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{answer}");
    assert!(answer.contains("tovuk: the request has no `Host` header"), "{answer}");

    let answer = raw_exchange(stack.addr, "GET / HTTP/1.1\r\nHost: bad host!\r\nConnection: close\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{answer}");
}

#[tokio::test]
async fn down_app_answers_503_naming_the_app_and_the_logs_command() {
    let stack = TestRouter::start().await;
    stack.publish(&[("worker", Target::Down { reason: "crash-looping".to_owned() })]);
    let (status, headers, body) = stack.get(&stack.host("worker"), "/").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "tovuk: app `worker` has nothing healthy to serve (crash-looping); see `tovuk logs worker`\n");
    assert_eq!(headers["cache-control"], "no-store");
}

#[tokio::test]
async fn the_compatible_entry_point_serves_an_empty_table() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let shutdown = tovuk_daemon::Shutdown::new();
    let serving_shutdown = shutdown.clone();
    shutdown.spawn("router", async move { tovuk_router::serve(listener, serving_shutdown).await });

    let answer = raw_exchange(addr, "GET / HTTP/1.1\r\nHost: blog.localhost\r\nConnection: close\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{answer}");
    assert!(answer.ends_with("tovuk: no app is served at `blog.localhost`; see `tovuk app list`\n"), "{answer}");
    shutdown.trigger();
    assert!(shutdown.join(crate::support::DEADLINE).await, "router stops after shutdown");
}
