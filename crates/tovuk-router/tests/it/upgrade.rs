//! Upgraded connections: the 101 handshake is forwarded and bytes are tunnelled both ways.

use crate::support::{TestRouter, empty_body, proxy, spawn_backend};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Answers an `Upgrade` request with 101 and echoes every byte on the upgraded connection.
async fn spawn_upgrade_echo() -> std::net::SocketAddr {
    spawn_backend(|mut request: Request<Incoming>| async move {
        if !request.headers().contains_key("upgrade") {
            let mut response = Response::new(empty_body());
            *response.status_mut() = StatusCode::BAD_REQUEST;
            return response;
        }
        let on_upgrade = hyper::upgrade::on(&mut request);
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else { return };
            let (mut reader, mut writer) = tokio::io::split(TokioIo::new(upgraded));
            let _ = tokio::io::copy(&mut reader, &mut writer).await;
        });
        let mut response = Response::new(empty_body());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert("upgrade", "websocket".parse().expect("header value"));
        headers.insert("connection", "Upgrade".parse().expect("header value"));
        headers.insert("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".parse().expect("header value"));
        response
    })
    .await
}

/// Reads up to the end of the response head.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n_read = tokio::time::timeout(crate::support::DEADLINE, stream.read(&mut byte))
            .await
            .expect("head arrives before the deadline")
            .expect("read head");
        assert_eq!(n_read, 1, "connection closed inside the head: {}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("head is text")
}

#[tokio::test]
async fn websocket_upgrade_tunnels_bytes_both_ways() {
    let stack = TestRouter::start().await;
    let backend = spawn_upgrade_echo().await;
    stack.publish(&[("chat", proxy(backend))]);

    let mut stream = TcpStream::connect(stack.addr).await.expect("connect");
    let handshake = format!(
        "GET /socket HTTP/1.1\r\nHost: {}\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        stack.host("chat")
    );
    stream.write_all(handshake.as_bytes()).await.expect("send handshake");
    let head = read_head(&mut stream).await.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101 switching protocols\r\n"), "{head}");
    assert!(head.contains("\r\nupgrade: websocket\r\n"), "{head}");
    assert!(head.contains("\r\nconnection: upgrade\r\n"), "{head}");
    assert!(head.contains("\r\nsec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"), "{head}");
    assert!(head.contains("\r\nx-request-id: req_"), "{head}");

    for message in [&b"hello through the tunnel"[..], &[0u8, 159, 146, 150, 255][..]] {
        stream.write_all(message).await.expect("write into the tunnel");
        let mut echoed = vec![0u8; message.len()];
        tokio::time::timeout(crate::support::DEADLINE, stream.read_exact(&mut echoed))
            .await
            .expect("echo arrives before the deadline")
            .expect("read echo");
        assert_eq!(echoed, message);
    }
    assert_eq!(stack.router.in_flight(backend), 1, "an open tunnel counts as in flight");

    drop(stream);
    crate::support::wait_for("the tunnel to close", || stack.router.in_flight(backend) == 0).await;
}
