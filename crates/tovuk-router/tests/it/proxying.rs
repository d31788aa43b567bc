//! Proxying to app instances: streamed bodies, forwarding headers, request ids, upstream errors.

use crate::support::{
    TestBody, TestRouter, closed_port, empty_body, proxy, read_bytes, read_text, send, spawn_backend, text_body,
};
use futures_util::stream;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::header::HOST;
use hyper::{Request, Response, StatusCode};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tovuk_router::Timeouts;

/// A backend that answers with the request's headers, one sorted `name: value` line each.
async fn spawn_header_echo() -> std::net::SocketAddr {
    spawn_backend(|request: Request<Incoming>| async move {
        let mut lines: Vec<String> = request
            .headers()
            .iter()
            .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap_or("<binary>")))
            .collect();
        lines.sort();
        let mut response = Response::new(text_body(lines.join("\n")));
        // Hop-by-hop headers from the app must not reach the client either.
        response.headers_mut().insert("keep-alive", "timeout=99".parse().expect("header value"));
        response.headers_mut().insert("x-app", "1".parse().expect("header value"));
        response
    })
    .await
}

#[tokio::test]
async fn request_body_of_20_mb_streams_through_both_ways() {
    let stack = TestRouter::start().await;
    let echo = spawn_backend(|request: Request<Incoming>| async move {
        let body: TestBody = request.into_body().boxed_unsync();
        Response::new(body)
    })
    .await;
    stack.publish(&[("echo", proxy(echo))]);

    // 320 chunks of 64 KiB with no Content-Length: the router must re-chunk, not buffer.
    let chunks: Vec<Bytes> =
        (0..320u32).map(|chunk_idx| Bytes::from(vec![(chunk_idx % 251) as u8; 64 * 1024])).collect();
    let expected: Vec<u8> = chunks.iter().flat_map(|chunk| chunk.iter().copied()).collect();
    let frames = stream::iter(chunks.into_iter().map(|chunk| Ok::<_, Infallible>(Frame::data(chunk))));
    let request = Request::post("/upload")
        .header(HOST, stack.host("echo"))
        .body(StreamBody::new(frames))
        .expect("request builds");

    let response = send(stack.addr, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let echoed = read_bytes(response.into_body()).await;
    assert_eq!(echoed.len(), 20 * 1024 * 1024);
    assert!(echoed == expected, "echoed bytes differ from the upload");
}

#[tokio::test]
async fn forwarding_headers_are_set_and_hop_by_hop_headers_dropped() {
    let stack = TestRouter::start().await;
    let echo = spawn_header_echo().await;
    stack.publish(&[("echo", proxy(echo))]);

    let request = Request::get("/headers?x=1")
        .header(HOST, stack.host("Echo"))
        .header("x-forwarded-for", "10.0.0.1")
        .header("x-forwarded-proto", "https")
        .header("connection", "keep-alive, x-private-hop")
        .header("x-private-hop", "secret")
        .header("keep-alive", "timeout=5")
        .header("proxy-authorization", "Basic eDp5")
        .header("te", "trailers")
        .header("x-request-id", "trace-42")
        .body(empty_body())
        .expect("request builds");
    let response = send(stack.addr, request).await;
    let (parts, body) = response.into_parts();
    let seen = read_text(body).await;

    let port = stack.addr.port();
    for line in [
        format!("host: Echo.localhost:{port}"),
        "x-forwarded-for: 10.0.0.1, 127.0.0.1".to_owned(),
        "x-forwarded-proto: http".to_owned(),
        format!("x-forwarded-host: Echo.localhost:{port}"),
        "x-request-id: trace-42".to_owned(),
    ] {
        assert!(seen.lines().any(|seen_line| seen_line == line), "app did not see `{line}` in:\n{seen}");
    }
    for dropped in ["x-private-hop", "keep-alive", "proxy-authorization", "te:"] {
        assert!(!seen.contains(dropped), "app saw `{dropped}` in:\n{seen}");
    }
    assert_eq!(parts.headers["x-request-id"], "trace-42");
    assert_eq!(parts.headers["x-app"], "1");
    assert!(!parts.headers.contains_key("keep-alive"), "{:?}", parts.headers);
}

#[tokio::test]
async fn request_ids_are_generated_when_missing_or_unsane() {
    let stack = TestRouter::start().await;
    let echo = spawn_header_echo().await;
    stack.publish(&[("echo", proxy(echo))]);

    for client_id in [None, Some("two words"), Some(&*"x".repeat(129))] {
        let mut request = Request::get("/").header(HOST, stack.host("echo"));
        if let Some(client_id) = client_id {
            request = request.header("x-request-id", client_id);
        }
        let response = send(stack.addr, request.body(empty_body()).expect("request builds")).await;
        let returned_id = response.headers()["x-request-id"].to_str().expect("id is text").to_owned();
        let seen = read_text(response.into_body()).await;
        assert_eq!(returned_id.len(), 30, "{returned_id}");
        assert!(returned_id.starts_with("req_"), "{returned_id}");
        assert!(seen.contains(&format!("x-request-id: {returned_id}")), "{seen}");
    }
}

#[tokio::test]
async fn upstream_down_is_502_naming_the_app() {
    let stack = TestRouter::start().await;
    let nothing_listens = closed_port().await;
    stack.publish(&[("api", proxy(nothing_listens))]);

    let (status, headers, body) = stack.get(&stack.host("api"), "/").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let request_id = headers["x-request-id"].to_str().expect("id is text");
    assert_eq!(
        body,
        format!("tovuk: app `api` is not accepting connections; see `tovuk logs api` (request id `{request_id}`)\n")
    );
    assert_eq!(stack.router.in_flight(nothing_listens), 0);
}

#[tokio::test]
async fn upstream_silent_past_the_response_timeout_is_504() {
    let timeouts = Timeouts { upstream_response: Duration::from_millis(300), ..Timeouts::default() };
    let stack = TestRouter::start_with(timeouts).await;
    // Accepts connections and reads nothing, answers nothing: a wedged app.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind silent backend");
    let silent_addr = silent.local_addr().expect("silent address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    stack.publish(&[("slow", proxy(silent_addr))]);

    let (status, _, body) = stack.get(&stack.host("slow"), "/").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(body.starts_with("tovuk: app `slow` did not answer in time; see `tovuk logs slow`"), "{body}");
    assert_eq!(stack.router.in_flight(silent_addr), 0);
}

#[tokio::test]
async fn kept_alive_client_connection_serves_several_requests() {
    let stack = TestRouter::start().await;
    let backend = spawn_backend(|request: Request<Incoming>| async move {
        Response::new(text_body(format!("path {}", request.uri().path())))
    })
    .await;
    stack.publish(&[("app", proxy(backend))]);

    let stream = tokio::net::TcpStream::connect(stack.addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(connection);
    for request_idx in 0..5 {
        let path = format!("/n/{request_idx}");
        let request = Request::get(&path).header(HOST, stack.host("app")).body(empty_body()).expect("request");
        let response = sender.send_request(request).await.expect("answer on the same connection");
        assert_eq!(read_text(response.into_body()).await, format!("path {path}"));
    }
}

#[tokio::test]
async fn an_upload_slower_than_the_response_timeout_is_not_cut_off_while_it_flows() {
    let timeouts = Timeouts { upstream_response: Duration::from_millis(300), ..Timeouts::default() };
    let stack = TestRouter::start_with(timeouts).await;
    // Reads the whole body before answering, as an upload handler does.
    let counter = spawn_backend(|request: Request<Incoming>| async move {
        let body = read_bytes(request.into_body()).await;
        Response::new(text_body(format!("received {}", body.len())))
    })
    .await;
    stack.publish(&[("upload", proxy(counter))]);

    // Ten chunks 100 ms apart: a second in all, three times the timeout, never idle for long.
    let frames = stream::unfold(0u32, |sent| async move {
        if sent == 10 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'x'; 1024]))), sent + 1))
    });
    let request = Request::post("/upload")
        .header(HOST, stack.host("upload"))
        .body(StreamBody::new(frames))
        .expect("request builds");
    let response = send(stack.addr, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(read_text(response.into_body()).await, "received 10240");
}

/// A backend on its own accept loop that counts connections; each answers `n <connection>`
/// and, with `one_request_each`, closes right after its first response.
async fn spawn_counting_backend(one_request_each: bool) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind counting backend");
    let addr = listener.local_addr().expect("counting backend address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let connection_idx = counter.fetch_add(1, Ordering::SeqCst) + 1;
            let service = hyper::service::service_fn(move |_request: Request<Incoming>| async move {
                Ok::<_, Infallible>(Response::new(text_body(format!("n {connection_idx}"))))
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .keep_alive(!one_request_each)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn sequential_requests_reuse_one_app_connection() {
    let stack = TestRouter::start().await;
    let (backend, accepted) = spawn_counting_backend(false).await;
    stack.publish(&[("app", proxy(backend))]);

    for _ in 0..5 {
        let (status, _, body) = stack.get(&stack.host("app"), "/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "n 1");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(stack.router.in_flight(backend), 0);
}

#[tokio::test]
async fn an_app_closing_its_connections_costs_no_failed_request() {
    let stack = TestRouter::start().await;
    let (backend, accepted) = spawn_counting_backend(true).await;
    stack.publish(&[("app", proxy(backend))]);

    for request_idx in 1..=5 {
        let (status, _, body) = stack.get(&stack.host("app"), "/").await;
        assert_eq!(status, StatusCode::OK, "request {request_idx}: {body}");
        assert_eq!(body, format!("n {request_idx}"));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 5);
}
