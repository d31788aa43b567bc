//! The store under faults: a full disk heals by itself, an fsync error is never
//! acknowledged, reads do not write, and a busy store says when to try again.

use crate::support::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `tovuk server` whose data dir is a small tmpfs in a private mount namespace: only
/// commands entered into its namespace (`inside`) see the files.
struct Confined {
    child: Child,
    mount: PathBuf,
    api_url: String,
    token: String,
    user: UserEnv,
    _scratch: tempfile::TempDir,
}

impl Confined {
    fn start(size: &str) -> Confined {
        let scratch = tempfile::tempdir().expect("tempdir");
        let mount = scratch.path().join("disk");
        std::fs::create_dir_all(&mount).expect("mkdir");
        let user = UserEnv::new();
        let log = std::fs::File::create(user.home.path().join("server.log")).expect("log");
        let script = format!(
            "mount -t tmpfs -o size={size} tmpfs '{0}' && exec '{BIN}' server --data-dir '{0}/data' --listen 127.0.0.1:0 --router-listen 127.0.0.1:0",
            mount.display()
        );
        let child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("unshare");
        let mut confined =
            Confined { child, mount, api_url: String::new(), token: String::new(), user, _scratch: scratch };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(server) = serde_json::from_str::<Value>(&confined.inside("cat data/server.json"))
                && let Some(url) = server["api_url"].as_str()
            {
                confined.api_url = url.to_owned();
                confined.token = confined.inside("cat data/admin.token").trim().to_owned();
                return confined;
            }
            assert!(Instant::now() < deadline, "the server did not come up:\n{}", confined.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `script` in the server's mount namespace, in the tmpfs; its stdout.
    fn inside(&self, script: &str) -> String {
        let output = Command::new("nsenter")
            .args(["-t", &self.child.id().to_string(), "-m", "--", "sh", "-c"])
            .arg(format!("cd '{}' && {script}", self.mount.display()))
            .output()
            .expect("nsenter");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.user.home.path().join("server.log")).unwrap_or_default()
    }

    fn tovuk(&self) -> Cli {
        self.user.tovuk().env("TOVUK_URL", &self.api_url).env("TOVUK_TOKEN", &self.token)
    }

    fn status(&self) -> Value {
        let addr = self.api_url.trim_start_matches("http://");
        let (code, body) = http(addr, "GET", "/v1/status", &[], "");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("status JSON")
    }

    /// Polls until `/v1/status` says the store is (not) ok.
    fn wait_store_ok(&self, ok: bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.status();
            if status["store"]["ok"] == ok {
                return status;
            }
            assert!(Instant::now() < deadline, "the store never said ok={ok}: {status}\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Confined {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_full_disk_fails_writes_and_they_work_again_once_space_is_back() {
    let server = Confined::start("48m");
    server.tovuk().args(["app", "create", "full"]).run().success();
    assert_eq!(server.status()["store"]["ok"], true);

    // Fill the disk to the last byte.
    server.inside("dd if=/dev/zero of=filler bs=64k 2>/dev/null; sync; true");
    let mut refused = 0;
    for attempt in 0..20 {
        let run = server.tovuk().args(["token", "create", "--name", &format!("t{attempt}"), "--app", "full"]).run();
        if run.code != 0 {
            refused += 1;
            assert!(run.stderr.contains("try again"), "{}", run.stderr);
        }
    }
    assert!(refused > 0, "no write failed on a full disk");
    let status = server.wait_store_ok(false);
    assert!(status["store"]["error"].as_str().unwrap_or_default().contains("full"), "{status}");

    // Space is back: writes work again without a restart, and the status says so.
    server.inside("rm -f filler");
    server.wait_store_ok(true);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut written = 0;
    while written < 20 {
        let run = server.tovuk().args(["token", "create", "--name", &format!("after{written}"), "--app", "full"]).run();
        if run.code == 0 {
            written += 1;
        } else {
            assert!(Instant::now() < deadline, "writes never worked again: {}\n{}", run.stderr, server.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert!(!server.log().contains("non-zero transaction depth"), "{}", server.log());
    server.tovuk().args(["app", "create", "healed"]).run().success();
}

#[test]
fn a_failed_fsync_is_never_acknowledged_and_stops_the_server() {
    let mut platform = Platform::start();
    platform.tovuk().args(["app", "create", "sync"]).run().success();
    let pid = platform.child.as_ref().expect("server").id();
    // Every fsync/fdatasync of the server fails from now on, like a dying disk.
    let mut strace = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-p", &pid.to_string()])
        .args(["-e", "trace=fsync,fdatasync", "-e", "inject=fsync,fdatasync:error=EIO"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("strace (apt-get install strace)");
    std::thread::sleep(Duration::from_millis(500));
    let run = platform.tovuk().args(["app", "create", "never"]).run();
    assert_ne!(run.code, 0, "a write whose fsync failed was acknowledged: {}", run.stdout);
    let code = platform.stop_or_exited();
    let _ = strace.kill();
    let _ = strace.wait();
    assert_eq!(code, 74, "the server must exit for its supervisor:\n{}", platform.log());
    assert!(platform.log().contains("I/O error"), "{}", platform.log());
    // Restarted, it has everything it acknowledged (what it did not may or may not be there:
    // the client was told it failed).
    let root = std::mem::replace(&mut platform.data_root, DataRoot::new());
    let platform = Platform::start_in(root);
    let apps = platform.tovuk().args(["app", "list", "--json"]).run().success().stdout;
    assert!(apps.contains("\"sync\""), "{apps}");
}

/// Holds the write lock of a store file (`BEGIN IMMEDIATE` from the sqlite3 shell) until dropped.
struct WriteLock(Child);

impl WriteLock {
    fn take(store: &Path) -> WriteLock {
        let mut child = Command::new("sqlite3")
            .arg(store)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sqlite3 (apt-get install sqlite3)");
        use std::io::{BufRead, Write};
        let stdin = child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "BEGIN IMMEDIATE; SELECT 'locked';").expect("write");
        stdin.flush().expect("flush");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().expect("stdout")).read_line(&mut line).expect("read");
        assert_eq!(line.trim(), "locked");
        WriteLock(child)
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn reads_do_not_write_and_a_busy_store_says_when_to_try_again() {
    let platform = Platform::start();
    platform.tovuk().args(["app", "create", "busy"]).run().success();
    let token = platform.tovuk().args(["token", "create", "--name", "ci", "--app", "busy", "--json"]).run().success();
    let secret = token.json()["secret"].as_str().expect("secret").to_owned();
    let lock = WriteLock::take(&platform.data_dir().join("state.db"));

    // Authenticated reads answer while another writer holds the store.
    let auth = bearer(&secret);
    for _ in 0..3 {
        let (code, body) = http(&platform.api_addr(), "GET", "/v1/apps/busy", &[("Authorization", &auth)], "");
        assert_eq!(code, 200, "a read failed on a busy store: {body}");
    }
    // A write waits out the busy timeout, then says when to try again.
    let answer =
        raw_api(&platform.api_addr(), "POST /v1/apps HTTP/1.1", &platform.admin_token(), r#"{"name":"later"}"#);
    assert!(answer.starts_with("http/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1") && answer.contains("store_unavailable"), "{answer}");
    drop(lock);

    // Last use is still recorded, in the background.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tokens = platform.tovuk().args(["token", "list", "--json"]).run().success().json();
        let used = tokens
            .as_array()
            .or_else(|| tokens["tokens"].as_array())
            .and_then(|tokens| tokens.iter().find(|token| token["name"] == "ci"))
            .is_some_and(|token| !token["last_used_at"].is_null());
        if used {
            break;
        }
        assert!(Instant::now() < deadline, "the token's last use was never recorded: {tokens}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A raw API request with a JSON body: the whole answer, lowercased.
fn raw_api(addr: &str, request_line: &str, token: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let request = format!(
        "{request_line}\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).to_lowercase()
}
