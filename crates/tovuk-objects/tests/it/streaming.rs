//! Bodies stream both ways: memory stays flat while a large object goes in and out.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use s3s::crypto::{Checksum as _, Md5};

use crate::support::{APP_ONE, TestGate, TestServer, read_body, read_head, rss_bytes, signed_headers, write_head};

const MIB: u64 = 1 << 20;
/// The serving process (this test binary) must stay under this while moving the object.
const RSS_LIMIT_BYTES: u64 = 200 * MIB;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn object_of_256_mib_streams_with_flat_memory() {
    round_trip_with_flat_memory(256 * MIB).await;
}

/// The full-size check: 41 s in a debug build here (PUT 25 s, GET 16 s, peak RSS 22 MiB), so opt-in:
/// `cargo test -p tovuk-objects -- --ignored two_gib`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "moves 2 GiB through a debug build; run with --ignored"]
async fn object_of_two_gib_streams_with_flat_memory() {
    round_trip_with_flat_memory(2048 * MIB).await;
}

async fn round_trip_with_flat_memory(size: u64) {
    let server = TestServer::start(TestGate::default()).await;
    let addr = server.addr;
    let peak = Arc::new(AtomicU64::new(rss_bytes()));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = std::thread::spawn({
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        move || {
            while !done.load(Ordering::SeqCst) {
                peak.fetch_max(rss_bytes(), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    });
    let (sent_md5, received_md5, received) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let sent_md5 = put(addr, size);
        println!("PUT {} MiB in {:?}", size / MIB, started.elapsed());
        let started = Instant::now();
        let (received_md5, received) = get(addr);
        println!("GET {} MiB in {:?}", size / MIB, started.elapsed());
        (sent_md5, received_md5, received)
    })
    .await
    .expect("client");
    done.store(true, Ordering::SeqCst);
    sampler.join().expect("sampler");
    assert_eq!(received, size);
    assert_eq!(sent_md5, received_md5);
    let peak = peak.load(Ordering::SeqCst);
    println!("peak RSS {} MiB", peak / MIB);
    assert!(peak < RSS_LIMIT_BYTES, "peak RSS {} MiB over {} MiB", peak / MIB, RSS_LIMIT_BYTES / MIB);
    assert_eq!(server.objects.bucket_bytes(APP_ONE.bucket), size);
}

/// One MiB of pseudo-random bytes, varied per MiB so no two MiB of the object are equal.
fn block(index: u64, buffer: &mut [u8]) {
    let mut state = index.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in buffer.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
}

fn object_path() -> String {
    format!("/{}/big.bin", APP_ONE.bucket)
}

fn put(addr: SocketAddr, size: u64) -> [u8; 16] {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let host = addr.to_string();
    let mut headers = signed_headers(&APP_ONE, "PUT", &host, &object_path());
    headers.push(("content-length".into(), size.to_string()));
    write_head(&mut stream, "PUT", &object_path(), &headers);
    let mut md5 = Md5::new();
    let mut buffer = vec![0u8; MIB as usize];
    for index in 0..size / MIB {
        block(index, &mut buffer);
        md5.update(&buffer);
        stream.write_all(&buffer).expect("write body");
    }
    let (status, headers) = read_head(&mut stream);
    let body = read_body(&mut stream, &headers);
    assert_eq!(status, 200, "{body}");
    let digest = md5.finalize();
    assert_eq!(headers.get("etag").map(String::as_str), Some(format!("\"{}\"", hex::encode(digest)).as_str()));
    digest
}

fn get(addr: SocketAddr) -> ([u8; 16], u64) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let host = addr.to_string();
    let headers = signed_headers(&APP_ONE, "GET", &host, &object_path());
    write_head(&mut stream, "GET", &object_path(), &headers);
    let (status, headers) = read_head(&mut stream);
    assert_eq!(status, 200);
    let length: u64 = headers.get("content-length").and_then(|length| length.parse().ok()).expect("content-length");
    let mut md5 = Md5::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut received = 0u64;
    while received < length {
        let n = stream.read(&mut buffer).expect("read body");
        assert!(n > 0, "body ended early at {received} of {length}");
        md5.update(&buffer[..n]);
        received += n as u64;
    }
    (md5.finalize(), received)
}
