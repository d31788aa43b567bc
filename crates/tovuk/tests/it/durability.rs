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

#[test]
fn a_capped_app_is_refused_while_its_usage_cannot_be_stored_and_served_again_after() {
    let platform = Platform::start();
    let token = platform.create_app("capped");
    let files = [("tovuk.toml", perl_manifest("capped", "20s")), ("server.pl", perl_app("v1", "200 OK"))];
    let files: Vec<(&str, &str)> = files.iter().map(|(path, text)| (*path, text.as_str())).collect();
    let id = platform.push_files("capped", &token, &files);
    platform.wait_for_state(&id, "running");
    platform.tovuk().args(["caps", "set", "capped", "requests", "100000"]).run().success();
    assert_eq!(platform.get_app("capped", "/").0, 200);

    // With the store taking no writes, no new grant can be stored: once the budget granted
    // ahead is spent, requests are refused with 503 and Retry-After, never served uncounted.
    let lock = WriteLock::take(&platform.data_dir().join("state.db"));
    let mut refusal = None;
    for _ in 0..2000 {
        let (status, body) = platform.get_app("capped", "/");
        if status != 200 {
            refusal = Some((status, body));
            break;
        }
    }
    let (status, body) = refusal.expect("a capped app was served past every stored grant");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("cannot record usage"), "{body}");
    let answer = raw_get(&platform.router_addr(), "capped", "/");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    drop(lock);
    let deadline = Instant::now() + Duration::from_secs(30);
    while platform.get_app("capped", "/").0 != 200 {
        assert!(Instant::now() < deadline, "never served again:\n{}", platform.log());
        std::thread::sleep(Duration::from_millis(100));
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

/// `sqlite3 FILE SQL`: its stdout.
fn sqlite(file: &Path, sql: &str) -> String {
    let output = Command::new("sqlite3").arg(file).arg(sql).output().expect("sqlite3 (apt-get install sqlite3)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Starts `tovuk server` on `data_dir` expecting a refusal: its exit code and stderr. One
/// still running after 20 s started (it is killed then, and -1 returned).
fn start_refused(data_dir: &Path) -> (i32, String) {
    let log = data_dir.with_extension("log");
    let mut child = Command::new(BIN)
        .args(["server", "--listen", "127.0.0.1:0", "--router-listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("run tovuk");
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status.code().unwrap_or(-1);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (code, std::fs::read_to_string(&log).unwrap_or_default())
}

/// `tovuk server --check-store` on `data_dir`: exit code and stdout+stderr.
fn check_store(data_dir: &Path) -> (i32, String) {
    let output =
        Command::new(BIN).args(["server", "--check-store", "--data-dir"]).arg(data_dir).output().expect("run tovuk");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), text)
}

/// A stopped platform's data root with apps and tokens in its store (and no WAL left).
fn stopped_store() -> DataRoot {
    let platform = Platform::start();
    for app in ["alpha", "beta", "gamma", "delta"] {
        platform.tovuk().args(["app", "create", app]).run().success();
        platform.tovuk().args(["token", "create", "--name", app, "--app", app]).run().success();
    }
    platform.stop()
}

#[test]
fn a_corrupted_store_is_refused_untouched_and_check_store_says_so() {
    let root = stopped_store();
    let data = root.path().join("data");
    let state = data.join("state.db");
    assert!(!data.join("state.db-wal").exists(), "a clean stop leaves one file");
    let pristine = std::fs::read(&state).expect("read");
    let (code, text) = check_store(&data);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("is sound"), "{text}");

    // A byte flipped inside the unique index of app names, then of token hashes: the table
    // and its index disagree, which only the full integrity check sees.
    let page_size: usize = sqlite(&state, "PRAGMA page_size").trim().parse().expect("page size");
    for index in ["sqlite_autoindex_apps_1", "sqlite_autoindex_tokens_1"] {
        let root_page: usize = sqlite(&state, &format!("SELECT rootpage FROM sqlite_master WHERE name = '{index}'"))
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no index {index}"));
        let mut bytes = pristine.clone();
        // The cells sit at the end of the page; flip one byte of the last key.
        let at = root_page * page_size - 3;
        bytes[at] ^= 0x01;
        std::fs::write(&state, &bytes).expect("write");
        let (code, text) = start_refused(&data);
        assert_eq!(code, 1, "a store with a broken {index} started:\n{text}");
        assert!(text.contains("corrupted") && text.contains("backup"), "{text}");
        assert_eq!(std::fs::read(&state).expect("read"), bytes, "the refused store was changed");
        let (code, text) = check_store(&data);
        assert_eq!(code, 1, "{text}");
        assert!(text.contains("corrupted"), "{text}");
    }

    // Flips anywhere: each store either is refused, unchanged, or passes the full check.
    let mut refused = 0;
    for flip in 0..24 {
        let mut bytes = pristine.clone();
        let at = 100 + flip * (bytes.len() - 100) / 24 + (flip * 37) % 97;
        bytes[at] ^= 0x5a;
        std::fs::write(&state, &bytes).expect("write");
        let (code, text) = check_store(&data);
        if code == 0 {
            assert_eq!(sqlite(&state, "PRAGMA integrity_check").trim(), "ok", "flip at {at} passed: {text}");
        } else {
            refused += 1;
            assert_eq!(std::fs::read(&state).expect("read"), bytes, "the store was changed by the check");
        }
    }
    assert!(refused > 0, "no flip was caught");
    std::fs::write(&state, &pristine).expect("restore");
    let platform = Platform::start_in(root);
    platform.tovuk().args(["app", "show", "alpha"]).run().success();
}

#[test]
fn a_backup_taken_while_the_platform_writes_is_a_sound_store() {
    let platform = Platform::start();
    platform.tovuk().args(["app", "create", "first"]).run().success();
    let scratch = tempfile::tempdir().expect("tempdir");
    let copy = scratch.path().join("state-backup.db");
    let writer = {
        let (url, token, user) = (platform.api_url.clone(), platform.admin_token(), UserEnv::new());
        std::thread::spawn(move || {
            for n in 0..20 {
                user.tovuk()
                    .env("TOVUK_URL", &url)
                    .env("TOVUK_TOKEN", &token)
                    .args(["app", "create", &format!("busy{n}")])
                    .run()
                    .success();
            }
        })
    };
    let run = platform.tovuk().args(["store", "backup"]).arg(&copy).run().success();
    assert!(run.stdout.contains("backed up"), "{}", run.stdout);
    writer.join().expect("writer");
    // Refused, not overwritten, the second time.
    let again = platform.tovuk().args(["store", "backup"]).arg(&copy).run();
    assert_eq!(again.code, 2, "{}", again.stderr);

    // The copy is a sound store that a server starts on (with the same keys).
    let restored = DataRoot::new();
    let data = restored.path().join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    std::fs::copy(&copy, data.join("state.db")).expect("copy");
    let (code, text) = check_store(&data);
    assert_eq!(code, 0, "{text}");
    copy_dir(&platform.data_dir().join("keys"), &data.join("keys"));
    let restarted = Platform::start_in(restored);
    restarted.tovuk().args(["app", "show", "first"]).run().success();

    // Only an admin may take one.
    let token = platform.tovuk().args(["token", "create", "--name", "ci", "--app", "first", "--json"]).run().success();
    let secret = token.json()["secret"].as_str().expect("secret").to_owned();
    let refused = platform.tovuk_with_token(&secret).args(["store", "backup"]).arg(scratch.path().join("no.db")).run();
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(!scratch.path().join("no.db").exists());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

#[test]
fn a_body_over_the_api_limit_gets_413_naming_the_limit() {
    let platform = Platform::start();
    let name = "a".repeat(3 << 20);
    let (code, body) = http(
        &platform.api_addr(),
        "POST",
        "/v1/apps",
        &[("Authorization", &bearer(&platform.admin_token()))],
        &format!(r#"{{"name":"{name}"}}"#),
    );
    assert_eq!(code, 413, "{}", &body[..body.len().min(300)]);
    assert!(body.contains("too_large") && body.contains("2 MiB"), "{body}");
}

#[test]
fn a_push_whose_deploy_cannot_be_recorded_moves_no_ref() {
    let platform = Platform::start();
    let token = platform.create_app("atomic");
    let repo = GitRepo::with_files(&[("tovuk.toml", &web_manifest("atomic")), ("index.html", "v1")]);
    let remote = platform.remote("atomic", &token);
    let lock = WriteLock::take(&platform.data_dir().join("state.db"));
    let push = repo.push(&remote, &["main"]);
    drop(lock);
    assert!(!push.ok, "a push whose deploy could not be recorded was accepted:\n{}", push.output);
    assert!(
        push.output.contains("could not record its deploy") && push.output.contains("nothing was changed"),
        "{}",
        push.output
    );
    let refs = git_output(repo.path(), &["ls-remote", &remote]);
    let refs = String::from_utf8_lossy(&refs.stdout).into_owned();
    assert!(!refs.contains("refs/heads/main"), "the branch moved without its deploy: {refs}");
    let list = platform.tovuk().args(["deploy", "list", "atomic", "--json"]).run().success().json();
    assert_eq!(list["deploys"].as_array().map(Vec::len), Some(0), "{list}");

    // The same push once the store takes writes: it lands, with exactly one deploy, which builds.
    let push = repo.push(&remote, &["main"]);
    assert!(push.ok, "{}", push.output);
    let ids = deploy_ids(&push.output);
    assert_eq!(ids.len(), 1, "{}", push.output);
    let built = platform.wait_for_build(&ids[0]);
    assert_eq!(built["final_build"]["status"], "succeeded", "{built}");
    let list = platform.tovuk().args(["deploy", "list", "atomic", "--json"]).run().success().json();
    assert_eq!(list["deploys"].as_array().map(Vec::len), Some(1), "{list}");
}
