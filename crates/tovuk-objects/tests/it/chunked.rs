//! aws-chunked uploads as SDKs send them over TLS: signed chunks, and unsigned chunks with a CRC32 trailer.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use s3s::crypto::{Checksum as _, Crc32};

use crate::support::{APP_ONE, TestGate, TestServer, chunk_signature, read_body, read_head, sign, write_head};

const CHUNK_BYTES: usize = 64 * 1024;

fn payload() -> Vec<u8> {
    (0..200_000u32).map(|i| (i % 251) as u8).collect()
}

fn crc32_base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(Crc32::checksum(data))
}

/// Sends a PUT whose body is already framed; returns status and body of the answer.
fn put_framed(addr: SocketAddr, key: &str, headers: Vec<(String, String)>, framed: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut headers = headers;
    headers.push(("content-length".into(), framed.len().to_string()));
    write_head(&mut stream, "PUT", &format!("/{}/{key}", APP_ONE.bucket), &headers);
    stream.write_all(framed).expect("body");
    let (status, headers) = read_head(&mut stream);
    (status, read_body(&mut stream, &headers))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_chunks_with_crc32_trailer_are_verified() {
    let server = TestServer::start(TestGate::default()).await;
    let addr = server.addr;
    let (good, bad) = tokio::task::spawn_blocking(move || {
        let data = payload();
        let send = |key: &str, trailer_crc: &str| {
            let extra = [
                ("content-encoding", "aws-chunked".to_owned()),
                ("x-amz-decoded-content-length", data.len().to_string()),
                ("x-amz-trailer", "x-amz-checksum-crc32".to_owned()),
                ("x-amz-sdk-checksum-algorithm", "CRC32".to_owned()),
            ];
            let path = format!("/{}/{key}", APP_ONE.bucket);
            let signed = sign(&APP_ONE, "PUT", &addr.to_string(), &path, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", &extra);
            let mut framed = Vec::new();
            for chunk in data.chunks(CHUNK_BYTES) {
                framed.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                framed.extend_from_slice(chunk);
                framed.extend_from_slice(b"\r\n");
            }
            framed.extend_from_slice(format!("0\r\nx-amz-checksum-crc32:{trailer_crc}\r\n\r\n").as_bytes());
            put_framed(addr, key, signed.headers, &framed)
        };
        (send("trailer-good", &crc32_base64(&data)), send("trailer-bad", &crc32_base64(b"other")))
    })
    .await
    .expect("client");
    assert_eq!(good.0, 200, "{}", good.1);
    assert_eq!(bad.0, 400, "{}", bad.1);
    assert!(bad.1.contains("<Code>BadDigest</Code>"), "{}", bad.1);
    let bucket = server.objects.bucket_bytes(APP_ONE.bucket);
    assert_eq!(bucket, payload().len() as u64, "only the verified upload is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_chunks_are_verified() {
    let server = TestServer::start(TestGate::default()).await;
    let addr = server.addr;
    let (good, tampered) = tokio::task::spawn_blocking(move || {
        let data = payload();
        let send = |key: &str, tamper: bool| {
            let extra = [
                ("content-encoding", "aws-chunked".to_owned()),
                ("x-amz-decoded-content-length", data.len().to_string()),
            ];
            let path = format!("/{}/{key}", APP_ONE.bucket);
            let signed = sign(&APP_ONE, "PUT", &addr.to_string(), &path, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", &extra);
            let mut previous = signed.seed_signature.clone();
            let mut framed = Vec::new();
            let mut chunks: Vec<&[u8]> = data.chunks(CHUNK_BYTES).collect();
            chunks.push(&[]);
            for chunk in chunks {
                let signature = chunk_signature(&APP_ONE, &signed, &previous, chunk);
                framed.extend_from_slice(format!("{:x};chunk-signature={signature}\r\n", chunk.len()).as_bytes());
                framed.extend_from_slice(chunk);
                framed.extend_from_slice(b"\r\n");
                previous = signature;
            }
            if tamper {
                let middle = framed.len() / 2;
                framed[middle] ^= 0xff;
            }
            put_framed(addr, key, signed.headers, &framed)
        };
        (send("signed-good", false), send("signed-tampered", true))
    })
    .await
    .expect("client");
    assert_eq!(good.0, 200, "{}", good.1);
    assert_eq!(tampered.0, 403, "{}", tampered.1);
    assert!(tampered.1.contains("SignatureDoesNotMatch"), "{}", tampered.1);
}
