//! Crash safety: a child process serving the store is killed with SIGKILL and the store reopened.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tovuk_objects::{Gate, Objects};

use crate::support::{APP_ONE, TestGate, files_under, read_body, read_head, signed_headers, write_head};

/// Set in the child: the store root to serve.
const CHILD_ROOT_ENV: &str = "TOVUK_OBJECTS_TEST_CHILD_ROOT";

/// Not a test of its own: the entry point of the child process the tests below spawn and kill.
/// Without the environment variable it returns at once.
#[test]
fn child_server() {
    let Some(root) = std::env::var_os(CHILD_ROOT_ENV) else { return };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let objects = Objects::open(Path::new(&root)).expect("open store");
        objects.ensure_bucket(APP_ONE.bucket).expect("bucket");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        println!("LISTENING {}", listener.local_addr().expect("addr"));
        std::io::stdout().flush().expect("flush");
        let gate: Arc<dyn Gate> = Arc::new(TestGate::default());
        objects.serve(listener, None, gate, CancellationToken::new()).await;
    });
}

struct ChildServer {
    child: Child,
    addr: SocketAddr,
}

impl ChildServer {
    fn spawn(root: &Path) -> ChildServer {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["durability::child_server", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ROOT_ENV, root)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn child server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines.next().expect("child exited before listening").expect("read child stdout");
            // libtest prints `test name ... ` on the same line first.
            if let Some((_, addr)) = line.split_once("LISTENING ") {
                break addr.trim().parse().expect("addr");
            }
        };
        ChildServer { child, addr }
    }

    fn kill_9(mut self) {
        // Child::kill sends SIGKILL on Unix.
        self.child.kill().expect("kill child");
        self.child.wait().expect("reap child");
    }
}

fn request(addr: SocketAddr, method: &str, key: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let path = format!("/{}/{key}", APP_ONE.bucket);
    let mut headers = signed_headers(&APP_ONE, method, &addr.to_string(), &path);
    headers.push(("content-length".into(), body.len().to_string()));
    headers.push(("content-type".into(), "application/x-durable".into()));
    write_head(&mut stream, method, &path, &headers);
    stream.write_all(body).expect("write body");
    let (status, headers) = read_head(&mut stream);
    let body = read_body(&mut stream, &headers);
    let content_type = headers.get("content-type").cloned().unwrap_or_default();
    (status, if method == "GET" && status == 200 { format!("{content_type}|{body}") } else { body })
}

#[test]
fn acknowledged_put_survives_kill_9() {
    let root = tempfile::tempdir().expect("root");
    let server = ChildServer::spawn(root.path());
    let (status, body) = request(server.addr, "PUT", "durable.txt", b"written before the crash");
    assert_eq!(status, 200, "{body}");
    server.kill_9();

    let server = ChildServer::spawn(root.path());
    let (status, body) = request(server.addr, "GET", "durable.txt", b"");
    assert_eq!((status, body.as_str()), (200, "application/x-durable|written before the crash"));
    server.kill_9();
}

#[test]
fn put_killed_mid_body_leaves_no_object() {
    let root = tempfile::tempdir().expect("root");
    let server = ChildServer::spawn(root.path());
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    let path = format!("/{}/partial.bin", APP_ONE.bucket);
    let mut headers = signed_headers(&APP_ONE, "PUT", &server.addr.to_string(), &path);
    headers.push(("content-length".into(), (64u64 << 20).to_string()));
    write_head(&mut stream, "PUT", &path, &headers);
    stream.write_all(&vec![1u8; 8 << 20]).expect("first half of the body");
    // Wait until the server is visibly writing the staged file, then kill it mid-body.
    let tmp = root.path().join(APP_ONE.bucket).join("tmp");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while files_under(&tmp).is_empty() {
        assert!(std::time::Instant::now() < deadline, "upload never reached the staging directory");
        std::thread::sleep(Duration::from_millis(10));
    }
    server.kill_9();
    drop(stream);

    let server = ChildServer::spawn(root.path());
    let (status, body) = request(server.addr, "GET", "partial.bin", b"");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("NoSuchKey"), "{body}");
    let leftovers: Vec<String> =
        files_under(&root.path().join(APP_ONE.bucket)).into_iter().filter(|file| file != "index.redb").collect();
    assert!(leftovers.is_empty(), "a killed upload left files: {leftovers:?}");
    server.kill_9();
}
