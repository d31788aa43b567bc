//! Storage caps are enforced before a declared body is read, and while an undeclared one streams.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::{
    APP_ONE, TestGate, TestServer, files_under, presigned_path, read_body, read_head, signed_headers, write_head,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_upload_over_the_storage_cap_is_refused_before_the_body() {
    let server = TestServer::start(TestGate { bytes_cap: Some(1 << 30), ..TestGate::default() }).await;
    let addr = server.addr;
    let (status, body) = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let host = addr.to_string();
        let path = format!("/{}/five-gigabytes.bin", APP_ONE.bucket);
        let mut headers = signed_headers(&APP_ONE, "PUT", &host, &path);
        headers.push(("content-length".into(), (5u64 << 30).to_string()));
        // Only the head goes out: the answer must come without a single body byte.
        write_head(&mut stream, "PUT", &path, &headers);
        let (status, headers) = read_head(&mut stream);
        (status, read_body(&mut stream, &headers))
    })
    .await
    .expect("client");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("<Code>QuotaExceeded</Code>"), "{body}");
    assert!(body.contains("over its storage cap of 1073741824 bytes"), "{body}");
    assert_eq!(server.objects.bucket_bytes(APP_ONE.bucket), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_upload_crossing_the_storage_cap_is_aborted_and_leaves_nothing() {
    let cap = 4u64 << 20;
    let server = TestServer::start(TestGate { bytes_cap: Some(cap), ..TestGate::default() }).await;
    let addr = server.addr;
    let (status, body) = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let host = addr.to_string();
        // A presigned PUT with a chunked body has no declared length: it is counted as it streams.
        let path = presigned_path(&APP_ONE, "PUT", &host, &format!("/{}/chunked.bin", APP_ONE.bucket));
        let headers = vec![("host".to_owned(), host), ("transfer-encoding".to_owned(), "chunked".to_owned())];
        write_head(&mut stream, "PUT", &path, &headers);
        let chunk = vec![7u8; 64 * 1024];
        for _ in 0..(16 << 20) / chunk.len() {
            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
            framed.extend_from_slice(&chunk);
            framed.extend_from_slice(b"\r\n");
            if stream.write_all(&framed).is_err() {
                break; // The server answered and closed: read its answer below.
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n");
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let response = String::from_utf8_lossy(&response).into_owned();
        let status: u16 = response.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
        (status, response)
    })
    .await
    .expect("client");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("<Code>QuotaExceeded</Code>"), "{body}");
    assert_eq!(server.objects.bucket_bytes(APP_ONE.bucket), 0);
    let leftovers: Vec<String> =
        files_under(&server.root.join(APP_ONE.bucket)).into_iter().filter(|file| file != "index.redb").collect();
    assert!(leftovers.is_empty(), "aborted upload left files: {leftovers:?}");
}
