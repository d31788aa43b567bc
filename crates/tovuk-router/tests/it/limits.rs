//! Limits that protect the router from slow or greedy clients.

use crate::support::{DEADLINE, TestRouter};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tovuk_router::Timeouts;

#[tokio::test]
async fn client_dribbling_headers_is_cut_off() {
    let timeouts = Timeouts { header_read: Duration::from_millis(200), ..Timeouts::default() };
    let stack = TestRouter::start_with(timeouts).await;

    let mut stream = TcpStream::connect(stack.addr).await.expect("connect");
    stream.write_all(b"GET / HTTP/1.1\r\nHost: app.localhost\r\nX-Slow: ").await.expect("write partial head");
    let mut answer = Vec::new();
    // The router closes the connection (possibly after a 408); it never waits for the rest.
    let closed = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer)).await;
    assert!(closed.is_ok(), "router kept a dribbling connection open");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
}
