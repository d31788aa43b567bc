//! Test server, test gate, SigV4 signing for raw requests, and the boto3 venv.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tovuk_objects::{Bucket, Gate, Objects, OpClass};

pub const REGION: &str = "us-east-1";

/// One app's credential in the test gate.
pub struct TestCredential {
    pub access_key: &'static str,
    pub secret: &'static str,
    pub bucket: &'static str,
    pub app: &'static str,
}

pub const APP_ONE: TestCredential =
    TestCredential { access_key: "AKIATOVUKAPPONE", secret: "secret-one", bucket: "app-one-files", app: "app-one" };
pub const APP_TWO: TestCredential =
    TestCredential { access_key: "AKIATOVUKAPPTWO", secret: "secret-two", bucket: "app-two-files", app: "app-two" };

/// A gate with two apps, an optional cap on class A operations and an optional storage cap.
#[derive(Default)]
pub struct TestGate {
    pub class_a_cap: Option<u64>,
    pub bytes_cap: Option<u64>,
    pub class_a: AtomicU64,
    pub class_b: AtomicU64,
}

impl Gate for TestGate {
    fn credential(&self, scope: Option<&str>, access_key: &str) -> Option<(String, Bucket)> {
        let credential = [APP_ONE, APP_TWO].into_iter().find(|credential| credential.access_key == access_key)?;
        if scope.is_some_and(|scope| scope != credential.app) {
            return None;
        }
        let bucket = Bucket {
            resource_id: format!("res_{}", credential.app),
            name: credential.bucket.to_owned(),
            app: credential.app.to_owned(),
        };
        Some((credential.secret.to_owned(), bucket))
    }

    fn admit(&self, bucket: &Bucket, class: OpClass) -> Result<(), String> {
        let counter = match class {
            OpClass::A => &self.class_a,
            OpClass::B => &self.class_b,
        };
        let done = counter.fetch_add(1, Ordering::SeqCst);
        match (class, self.class_a_cap) {
            (OpClass::A, Some(cap)) if done >= cap => Err(format!(
                "bucket `{}` reached its cap of {cap} class A operations this month; raise `objects.class_a_ops` in tovuk.toml",
                bucket.name
            )),
            _ => Ok(()),
        }
    }

    fn admit_bytes(&self, bucket: &Bucket, held: u64, incoming: u64) -> Result<(), String> {
        match self.bytes_cap {
            Some(cap) if held + incoming > cap => Err(format!(
                "bucket `{}` would hold {} bytes, over its storage cap of {cap} bytes; delete objects or raise `objects.storage_bytes`",
                bucket.name,
                held + incoming
            )),
            _ => Ok(()),
        }
    }
}

/// An in-process server on 127.0.0.1:0 over a temp dir, stopped on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    pub root: PathBuf,
    pub objects: Arc<Objects>,
    pub gate: Arc<TestGate>,
    stop: CancellationToken,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    pub async fn start(gate: TestGate) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = TestServer::start_at(dir.path(), gate).await;
        server._dir = Some(dir);
        server
    }

    pub async fn start_at(root: &Path, gate: TestGate) -> TestServer {
        let objects = Objects::open(root).expect("open store");
        objects.ensure_bucket(APP_ONE.bucket).expect("bucket one");
        objects.ensure_bucket(APP_TWO.bucket).expect("bucket two");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let gate = Arc::new(gate);
        let stop = CancellationToken::new();
        tokio::spawn(Arc::clone(&objects).serve(listener, None, Arc::clone(&gate) as Arc<dyn Gate>, stop.clone()));
        TestServer { addr, root: root.to_owned(), objects, gate, stop, _dir: None }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn signature(secret: &str, date: &str, string_to_sign: &str) -> String {
    let key = hmac(format!("AWS4{secret}").as_bytes(), date);
    let key = hmac(&key, REGION);
    let key = hmac(&key, "s3");
    let key = hmac(&key, "aws4_request");
    hex::encode(hmac(&key, string_to_sign))
}

fn string_to_sign(amz_date: &str, date: &str, canonical_request: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{REGION}/s3/aws4_request\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

/// Request headers for a SigV4 header-signed request with an unsigned payload. `path` is already URI-encoded.
pub fn signed_headers(credential: &TestCredential, method: &str, host: &str, path: &str) -> Vec<(String, String)> {
    sign(credential, method, host, path, "UNSIGNED-PAYLOAD", &[]).headers
}

/// A header-signed request: its headers, and what aws-chunked chunk signatures chain from.
pub struct Signed {
    pub headers: Vec<(String, String)>,
    pub seed_signature: String,
    pub amz_date: String,
    pub date: String,
}

/// Signs `method path` with `payload_hash` as `x-amz-content-sha256` and `extra` as further signed headers
/// (lower-case names, sorted after `x-amz-date` is not required: they are sorted here).
pub fn sign(
    credential: &TestCredential,
    method: &str,
    host: &str,
    path: &str,
    payload_hash: &str,
    extra: &[(&str, String)],
) -> Signed {
    let now = chrono::Utc::now();
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let date = now.format("%Y%m%d").to_string();
    let mut signed: Vec<(String, String)> = vec![
        ("host".into(), host.into()),
        ("x-amz-content-sha256".into(), payload_hash.into()),
        ("x-amz-date".into(), amz_date.clone()),
    ];
    signed.extend(extra.iter().map(|(name, value)| ((*name).to_owned(), value.clone())));
    signed.sort();
    let canonical_headers: String = signed.iter().map(|(name, value)| format!("{name}:{value}\n")).collect();
    let signed_names = signed.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>().join(";");
    let canonical_request = format!("{method}\n{path}\n\n{canonical_headers}\n{signed_names}\n{payload_hash}");
    let seed_signature = signature(credential.secret, &date, &string_to_sign(&amz_date, &date, &canonical_request));
    let mut headers = signed;
    headers.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{date}/{REGION}/s3/aws4_request, SignedHeaders={signed_names}, \
             Signature={seed_signature}",
            credential.access_key
        ),
    ));
    Signed { headers, seed_signature, amz_date, date }
}

/// The signature of one aws-chunked chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), chained from `previous`.
pub fn chunk_signature(credential: &TestCredential, signed: &Signed, previous: &str, chunk: &[u8]) -> String {
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}/{REGION}/s3/aws4_request\n{previous}\n{}\n{}",
        signed.amz_date,
        signed.date,
        hex::encode(Sha256::digest(b"")),
        hex::encode(Sha256::digest(chunk))
    );
    signature(credential.secret, &signed.date, &string_to_sign)
}

/// A presigned URL path-and-query (UNSIGNED-PAYLOAD, host signed) valid for an hour.
pub fn presigned_path(credential: &TestCredential, method: &str, host: &str, path: &str) -> String {
    let now = chrono::Utc::now();
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let date = now.format("%Y%m%d").to_string();
    let credential_scope = format!("{}%2F{date}%2F{REGION}%2Fs3%2Faws4_request", credential.access_key);
    let query = format!(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={credential_scope}&X-Amz-Date={amz_date}\
         &X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
    );
    let canonical_request = format!("{method}\n{path}\n{query}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD");
    let signature = signature(credential.secret, &date, &string_to_sign(&amz_date, &date, &canonical_request));
    format!("{path}?{query}&X-Amz-Signature={signature}")
}

/// Writes a request head (and nothing else) to `stream`.
pub fn write_head(stream: &mut TcpStream, method: &str, path: &str, headers: &[(String, String)]) {
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
}

/// Reads a response head: status and lower-cased headers.
pub fn read_head(stream: &mut TcpStream) -> (u16, HashMap<String, String>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("read head");
        assert!(n == 1, "connection closed in response head: {}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).expect("ascii head");
    let mut lines = head.split("\r\n");
    let status =
        lines.next().and_then(|line| line.split(' ').nth(1)).and_then(|code| code.parse().ok()).expect("status");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    (status, headers)
}

/// Reads exactly `length` body bytes into a string (for small error bodies).
pub fn read_body(stream: &mut TcpStream, headers: &HashMap<String, String>) -> String {
    let length: usize = headers.get("content-length").and_then(|length| length.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).expect("read body");
    String::from_utf8_lossy(&body).into_owned()
}

/// The resident set size of this process, from /proc.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .expect("VmRSS")
}

/// Debian's Python with boto3 from PyPI, which `scripts/test` installs (the same one the
/// platform's end-to-end tests and deployed apps use). Always `Some`: a missing boto3 fails
/// the test with the fix rather than skipping it.
pub fn boto3_python() -> Option<PathBuf> {
    let python = PathBuf::from("/usr/bin/python3");
    let found = Command::new(&python).args(["-c", "import boto3"]).output().is_ok_and(|out| out.status.success());
    assert!(found, "/usr/bin/python3 with boto3 from PyPI is needed: run scripts/test, which installs it");
    Some(python)
}

/// Runs a driver script from `tests/` with the app's S3 environment, as the platform would set it.
pub fn run_python(python: &Path, script: &str, endpoint: &str, extra_env: &[(&str, String)]) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(script);
    let home = tempfile::tempdir().expect("home");
    let mut command = Command::new(python);
    command
        .arg(script)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("AWS_ENDPOINT_URL_S3", endpoint)
        .env("AWS_ACCESS_KEY_ID", APP_ONE.access_key)
        .env("AWS_SECRET_ACCESS_KEY", APP_ONE.secret)
        .env("AWS_REGION", REGION)
        .env("BUCKET_NAME", APP_ONE.bucket)
        .env("AWS_CONFIG_FILE", home.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.path().join("none"));
    for (name, value) in extra_env {
        command.env(name, value);
    }
    command.output().expect("run python")
}

/// Every file under `dir`, relative to it.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path.strip_prefix(dir).expect("under dir").display().to_string());
            }
        }
    }
    files.sort();
    files
}
