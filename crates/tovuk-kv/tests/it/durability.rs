//! Acknowledged writes survive SIGKILL. The server runs in a child process: this test binary
//! re-executed with a filter that selects `durability_child`, which serves only when its env
//! variable names a database file.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::support::{KvServer, Raw, TestGate, encode};

const CHILD_ENV: &str = "TOVUK_KV_TEST_CHILD_DB";
const PW: &str = "pw-durable";

/// In the child: serve the database until killed. In a normal run: nothing.
#[test]
fn durability_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let kv = tovuk_kv::Kv::open(std::path::Path::new(&path)).expect("open");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        println!("PORT {}", listener.local_addr().expect("addr").port());
        let gate = Arc::new(TestGate::default().with(PW, "res_durable", None));
        kv.serve(listener, None, gate, CancellationToken::new()).await;
    });
}

struct Child {
    process: std::process::Child,
    port: u16,
}

fn spawn_child(db: &std::path::Path) -> Child {
    let mut process = Command::new(std::env::current_exe().expect("current exe"))
        .args(["--exact", "durability::durability_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = process.stdout.take().expect("stdout");
    let mut port = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("child stdout");
        // libtest prints `test durability::durability_child ... ` before the test's own output.
        if let Some(p) = line.split("PORT ").nth(1) {
            port = Some(p.trim().parse().expect("port"));
            break;
        }
    }
    Child { process, port: port.expect("child printed its port") }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("kv.redb");
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    for round in 0..3 {
        let mut child = spawn_child(&db);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], child.port));
        // Several writers so commits are grouped; each records a key only once its reply arrived.
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let acked = acked.clone();
                std::thread::spawn(move || {
                    let mut conn = Raw::connect(addr);
                    if conn.writer.write_all(&encode(&[b"AUTH", PW.as_bytes()])).is_err() {
                        return;
                    }
                    if super::support::read_reply(&mut conn.reader).ok().as_deref() != Some(b"+OK\r\n") {
                        return;
                    }
                    for i in 0.. {
                        let key = format!("r{round}:w{w}:{i}");
                        let value = format!("value-{i}");
                        // Pipeline a SET with an INCR so both batch paths are exercised.
                        let mut pair = encode(&[b"SET", key.as_bytes(), value.as_bytes()]);
                        pair.extend(encode(&[b"INCR", format!("count:w{w}").as_bytes()]));
                        // The child may be gone already: a failed write ends this writer.
                        if conn.writer.write_all(&pair).is_err() {
                            return;
                        }
                        let ok = super::support::read_reply(&mut conn.reader);
                        if ok.ok().as_deref() != Some(b"+OK\r\n") {
                            return;
                        }
                        acked.lock().expect("lock").push((key, value));
                        if super::support::read_reply(&mut conn.reader).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        // Let writes flow, then kill mid-stream.
        std::thread::sleep(Duration::from_millis(300 + 100 * round));
        child.process.kill().expect("SIGKILL");
        child.process.wait().expect("reap");
        for w in writers {
            w.join().expect("writer thread");
        }
    }

    let acked = acked.lock().expect("lock").clone();
    eprintln!("{} writes acknowledged across 3 SIGKILLs", acked.len());
    assert!(acked.len() > 100, "only {} writes were acknowledged", acked.len());
    let gate = Arc::new(TestGate::default().with(PW, "res_durable", None));
    let server = KvServer::start(&db, gate, None);
    let mut conn = Raw::connect(server.addr);
    assert_eq!(conn.cmd(&["AUTH", PW]), b"+OK\r\n");
    let mut missing = Vec::new();
    for (key, value) in &acked {
        let reply = conn.cmd(&["GET", key]);
        if reply != format!("${}\r\n{value}\r\n", value.len()).into_bytes() {
            missing.push(key.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged keys lost: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(10)]
    );
}
