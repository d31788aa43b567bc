//! Resources (`[[resources]]`): an unmodified Python app keeps its data in SQLite, object
//! storage and KV through sqlite3, boto3 and redis-py, configured only by the variables the
//! platform sets; `tovuk service show` lists them; caps stop them; the data outlives a
//! redeploy, a `kill -9` of the platform and a SQLite restore.

use crate::support::*;
use serde_json::Value;
use std::time::{Duration, Instant};

const NOTES_MANIFEST: &str = include_str!("../../../../examples/notes/tovuk.toml");
const NOTES_APP: &str = include_str!("../../../../examples/notes/app.py");

/// Python with boto3 and redis-py where the sandbox sees it (`scripts/test` installs them).
fn require_python_clients() {
    let found = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import boto3, redis"])
        .status()
        .is_ok_and(|status| status.success());
    assert!(found, "/usr/bin/python3 with boto3 and redis-py is needed: run scripts/test, which installs them");
}

fn notes_files(app: &str, version: &str) -> Vec<(&'static str, String)> {
    vec![
        ("tovuk.toml", NOTES_MANIFEST.replace("name = \"notes\"", &format!("name = \"{app}\""))),
        ("app.py", NOTES_APP.replace("{\"ok\": True}", &format!("{{\"ok\": True, \"version\": \"{version}\"}}"))),
    ]
}

fn push(platform: &Platform, app: &str, token: &str, files: &[(&str, String)]) -> String {
    let files: Vec<(&str, &str)> = files.iter().map(|(name, text)| (*name, text.as_str())).collect();
    platform.push_files(app, token, &files)
}

/// A GET through the router that must answer 200, as JSON.
fn get_json(platform: &Platform, app: &str, path: &str) -> Value {
    let (status, body) = platform.get_app(app, path);
    assert_eq!(status, 200, "{path}: {body}\n{}", platform.log());
    serde_json::from_str(&body).unwrap_or_else(|error| panic!("{path}: {error}: {body}"))
}

/// Waits until the app answers its health path (after a restart or a restore).
fn wait_serving(platform: &Platform, app: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while platform.get_app(app, "/health").0 != 200 {
        assert!(Instant::now() < deadline, "{app} never served again\n{}", platform.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn texts(notes: &Value) -> Vec<String> {
    notes["sqlite"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|note| note["text"].as_str().map(str::to_owned))
        .collect()
}

/// Every note is in all three stores.
fn assert_in_all_three(notes: &Value, expected: &[&str]) {
    assert_eq!(texts(notes), expected, "{notes}");
    let objects = notes["objects"].as_object().expect("objects");
    assert_eq!(objects.len(), expected.len(), "{notes}");
    for note in notes["sqlite"].as_array().into_iter().flatten() {
        let key = format!("notes/{}.txt", note["id"]);
        assert_eq!(objects.get(&key), Some(&note["text"]), "{notes}");
        assert_eq!(notes["kv_notes"][note["id"].to_string()], note["text"], "{notes}");
    }
}

fn service(platform: &Platform, app: &str) -> Value {
    platform.tovuk().args(["service", "show", app, "--json"]).run().success().json()
}

fn resource<'a>(service: &'a Value, kind: &str) -> &'a Value {
    service["resources"].as_array().into_iter().flatten().find(|r| r["kind"] == kind).expect(kind)
}

#[test]
fn a_python_app_keeps_its_data_in_sqlite_s3_and_kv_through_redeploys_kill_9_and_a_restore() {
    require_python_clients();
    let platform = Platform::start();
    let token = platform.create_app("notes");
    let v1 = push(&platform, "notes", &token, &notes_files("notes", "v1"));
    platform.wait_for_state(&v1, "running");
    for text in ["first", "second"] {
        get_json(&platform, "notes", &format!("/add?text={text}"));
    }
    assert_in_all_three(&get_json(&platform, "notes", "/notes"), &["first", "second"]);

    // What the service has: three resources, the variables they set (never their values).
    let shown = service(&platform, "notes");
    assert_eq!(shown["current_deploy_id"], v1.as_str(), "{shown}");
    assert_eq!(shown["resources"].as_array().map(Vec::len), Some(3), "{shown}");
    let env = |kind: &str| -> Vec<String> {
        resource(&shown, kind)["env"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v.as_str().unwrap_or("").into())
            .collect()
    };
    assert_eq!(env("sqlite"), ["DB", "DATABASE_URL"], "{shown}");
    assert_eq!(env("kv"), ["CACHE", "REDIS_URL"], "{shown}");
    assert_eq!(
        env("object-storage"),
        [
            "FILES",
            "FILES_ENDPOINT",
            "FILES_ACCESS_KEY_ID",
            "FILES_SECRET_ACCESS_KEY",
            "FILES_REGION",
            "AWS_ENDPOINT_URL_S3",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
            "BUCKET_NAME",
            "AWS_DEFAULT_REGION"
        ],
        "{shown}"
    );
    for kind in ["sqlite", "kv", "object-storage"] {
        let found = resource(&shown, kind);
        assert_eq!(found["status"], "active", "{shown}");
        assert!(found["id"].as_str().is_some_and(|id| id.starts_with("res_")), "{shown}");
    }
    assert_eq!(resource(&shown, "sqlite")["location"], "/data/sqlite/DB.db", "{shown}");
    let text = shown.to_string();
    assert!(!text.contains("redis://") && !text.contains("sqlite:////"), "values are never shown: {shown}");
    let listed = platform.tovuk().args(["service", "list", "--json"]).run().success().json();
    let resources = &listed["services"][0]["resources"];
    assert_eq!(resources.as_array().map(Vec::len), Some(3), "{listed}");

    // Usage is metered as it is served: the KV writes and the object writes show up.
    let deadline = Instant::now() + Duration::from_secs(30);
    let used = |service: &Value, kind: &str, meter: &str| -> f64 {
        resource(service, kind)["usage"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|usage| usage["meter"] == meter)
            .and_then(|usage| usage["quantity"].as_f64())
            .unwrap_or(0.0)
    };
    let writes = loop {
        let shown = service(&platform, "notes");
        let (writes, puts) = (used(&shown, "kv", "kv_writes"), used(&shown, "object-storage", "object_class_a_ops"));
        if writes >= 4.0 && puts >= 2.0 {
            break writes;
        }
        assert!(Instant::now() < deadline, "usage never metered: {shown}");
        std::thread::sleep(Duration::from_millis(200));
    };

    // A cap on KV writes stops writes with the protocol's error, naming the fix; reads go on.
    let cap = (writes + 2.0).to_string();
    platform.tovuk().args(["caps", "set", "notes", "kv_writes", &cap]).run().success();
    let mut refused = None;
    for n in 0..10 {
        let (status, body) = platform.get_app("notes", &format!("/kv?key=k{n}&value=v"));
        if status != 200 {
            refused = Some(body);
            break;
        }
    }
    let refused = refused.expect("a write past the cap is refused");
    assert!(refused.contains("kv_writes") && refused.contains("tovuk caps set notes kv_writes"), "{refused}");
    assert_in_all_three(&get_json(&platform, "notes", "/notes"), &["first", "second"]);
    let shown = service(&platform, "notes");
    let kv_cap = &resource(&shown, "kv")["caps"][0];
    assert_eq!(kv_cap["meter"], "kv_writes", "{shown}");
    platform.tovuk().args(["caps", "unset", "notes", "kv_writes"]).run().success();

    // A redeploy keeps every store's data.
    let v2 = push(&platform, "notes", &token, &notes_files("notes", "v2"));
    platform.wait_for_state(&v2, "running");
    assert_eq!(get_json(&platform, "notes", "/health")["version"], "v2");
    get_json(&platform, "notes", "/add?text=third");
    assert_in_all_three(&get_json(&platform, "notes", "/notes"), &["first", "second", "third"]);

    // The second entrance: a config release (the same artifact, new config) keeps them too.
    let changed = platform.tovuk().args(["env", "set", "notes", "GREETING=hi", "--json"]).run().success().json();
    let release = changed["release"]["id"].as_str().expect("a config release").to_owned();
    platform.wait_for_state(&release, "running");
    assert_in_all_three(&get_json(&platform, "notes", "/notes"), &["first", "second", "third"]);

    // A snapshot, taken while the app serves, restores.
    let snapshot = platform.tovuk().args(["sqlite", "snapshot", "notes", "DB", "--json"]).run().success().json();
    let snapshot_id = snapshot["id"].as_str().expect("snapshot id").to_owned();
    get_json(&platform, "notes", "/add?text=fourth");
    let counted = platform
        .tovuk()
        .args(["sqlite", "query", "notes", "DB", "SELECT count(*) AS n FROM notes", "--json"])
        .run()
        .success()
        .json();
    assert_eq!(counted["rows"][0][0], 4, "{counted}");
    let written = platform.tovuk().args(["sqlite", "query", "notes", "DB", "DELETE FROM notes WHERE id = 1"]).run();
    assert_ne!(written.code, 0, "a query is read-only unless --write");
    assert!(written.stderr.contains("--write"), "{}", written.stderr);

    // kill -9 of the platform: the app and its data outlive it.
    let data_root = platform.kill();
    let platform = Platform::start_in(data_root);
    wait_serving(&platform, "notes");
    let notes = get_json(&platform, "notes", "/notes");
    assert_eq!(texts(&notes), ["first", "second", "third", "fourth"], "{notes}");
    get_json(&platform, "notes", "/add?text=fifth");

    let restored =
        platform.tovuk().args(["sqlite", "restore", "notes", "DB", &snapshot_id, "--json"]).run().success().json();
    assert!(restored["restarted_instances"].as_u64().is_some_and(|n| n >= 1), "{restored}");
    wait_serving(&platform, "notes");
    let notes = get_json(&platform, "notes", "/notes");
    assert_eq!(texts(&notes), ["first", "second", "third"], "the snapshot's rows: {notes}");
    let snapshots = platform.tovuk().args(["sqlite", "snapshots", "notes", "DB", "--json"]).run().success().json();
    let previous = restored["previous"]["id"].as_str().expect("previous");
    assert!(snapshots["snapshots"].as_array().into_iter().flatten().any(|s| s["id"] == previous), "{snapshots}");
    // The database as it was before the restore is a snapshot too: five notes.
    platform.tovuk().args(["sqlite", "restore", "notes", "DB", previous]).run().success();
    wait_serving(&platform, "notes");
    assert_eq!(texts(&get_json(&platform, "notes", "/notes")).len(), 5);

    // Removing a declaration detaches the resource and keeps its data.
    let without_kv: Vec<(&str, String)> = vec![
        (
            "tovuk.toml",
            NOTES_MANIFEST
                .replace(", \"kv\"]", "]")
                .replace("[[resources]]\nkind = \"kv\"\nbinding = \"CACHE\"\n", ""),
        ),
        ("app.py", "import os, http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = (os.environ.get('REDIS_URL') or 'none').encode()\n        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n".into()),
    ];
    let v3 = push(&platform, "notes", &token, &without_kv);
    platform.wait_for_state(&v3, "running");
    assert_eq!(platform.get_app("notes", "/").1, "none", "a detached KV is not given to the app");
    let shown = service(&platform, "notes");
    assert_eq!(resource(&shown, "kv")["status"], "detached", "{shown}");
    assert!(!resource(&shown, "kv")["detached_at"].is_null(), "{shown}");
    assert_eq!(resource(&shown, "sqlite")["status"], "active", "{shown}");
}

#[test]
fn sqlite_commands_name_the_fix_for_a_missing_binding_snapshot_or_corrupt_file() {
    let platform = Platform::start();
    let token = platform.create_app("plain");
    let manifest = perl_manifest("plain", "20s")
        .replace("capabilities = [\"http\"]", "capabilities = [\"http\", \"sqlite\"]")
        + "\n[[resources]]\nkind = \"sqlite\"\nbinding = \"DB\"\n";
    let id =
        platform.push_files("plain", &token, &[("tovuk.toml", &manifest), ("server.pl", &perl_app("v1", "200 OK"))]);
    platform.wait_for_state(&id, "running");

    let missing = platform.tovuk().args(["sqlite", "snapshot", "plain", "NOPE"]).run();
    assert_ne!(missing.code, 0);
    assert!(missing.stderr.contains("NOPE") && missing.stderr.contains("DB"), "{}", missing.stderr);

    let unknown = platform.tovuk().args(["sqlite", "restore", "plain", "DB", "snap_../../etc"]).run();
    assert_ne!(unknown.code, 0);
    assert!(unknown.stderr.contains("no snapshot"), "{}", unknown.stderr);

    // A corrupt snapshot is refused, and the database is left as it was.
    platform
        .tovuk()
        .args([
            "sqlite",
            "query",
            "plain",
            "DB",
            "CREATE TABLE kept (v TEXT); INSERT INTO kept VALUES ('yes')",
            "--write",
        ])
        .run()
        .success();
    let snapshot = platform.tovuk().args(["sqlite", "snapshot", "plain", "DB", "--json"]).run().success().json();
    let snapshot_id = snapshot["id"].as_str().expect("id");
    let resource_id = service(&platform, "plain")["resources"][0]["id"].as_str().expect("id").to_owned();
    let file = platform.data_dir().join("resources/snapshots").join(&resource_id).join(format!("{snapshot_id}.db"));
    let mut bytes = std::fs::read(&file).expect("snapshot file");
    let len = bytes.len();
    for byte in &mut bytes[len / 2..] {
        *byte = 0xA5;
    }
    std::fs::write(&file, &bytes).expect("corrupt it");
    let refused = platform.tovuk().args(["sqlite", "restore", "plain", "DB", snapshot_id]).run();
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("integrity"), "{}", refused.stderr);
    let kept =
        platform.tovuk().args(["sqlite", "query", "plain", "DB", "SELECT v FROM kept", "--json"]).run().success();
    assert_eq!(kept.json()["rows"][0][0], "yes");
    assert_eq!(platform.get_app("plain", "/").0, 200, "the app kept serving");
}

/// An app that reports what another app's credentials open from inside it: `/other` tries
/// the KV URL and the S3 keys given in `OTHER_REDIS_URL`, `OTHER_KEY_ID`, `OTHER_SECRET`,
/// `OTHER_BUCKET` (set with `tovuk env set`), then its own KV with a wrong password.
const PROBE_APP: &str = r#"import json, os, urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer
import boto3, botocore, redis

def attempt(call):
    try:
        call()
        return "opened"
    except redis.exceptions.AuthenticationError as error:
        return "WRONGPASS " + str(error)
    except redis.exceptions.ResponseError as error:
        return "ERR " + str(error)
    except botocore.exceptions.ClientError as error:
        return error.response["Error"]["Code"]
    except Exception as error:
        return type(error).__name__ + " " + str(error)

def probe():
    other = os.environ.get("OTHER_REDIS_URL")
    mine = urllib.parse.urlparse(os.environ["REDIS_URL"])
    wrong = mine._replace(netloc=f"{mine.username}:wrong@{mine.hostname}:{mine.port}").geturl()
    s3 = boto3.client("s3", aws_access_key_id=os.environ.get("OTHER_KEY_ID", "x"),
                      aws_secret_access_key=os.environ.get("OTHER_SECRET", "x"))
    own = boto3.client("s3")
    return {
        "other_kv": attempt(lambda: redis.Redis.from_url(other).get("k")) if other else "unset",
        "wrong_password": attempt(lambda: redis.Redis.from_url(wrong).get("k")),
        "other_s3": attempt(lambda: s3.list_objects_v2(Bucket=os.environ.get("OTHER_BUCKET", "x"))),
        "other_bucket_with_own_key": attempt(lambda: own.list_objects_v2(Bucket=os.environ.get("OTHER_BUCKET", "x"))),
        "tampered": attempt(lambda: boto3.client("s3", aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"], aws_secret_access_key="0" * 64).list_objects_v2(Bucket=os.environ["BUCKET_NAME"])),
        "own_kv": attempt(lambda: redis.Redis.from_url(os.environ["REDIS_URL"]).set("k", "v")),
    }

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(probe() if self.path == "/other" else {"ok": True}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

fn probe_files(app: &str) -> Vec<(&'static str, String)> {
    let manifest = NOTES_MANIFEST
        .replace("name = \"notes\"", &format!("name = \"{app}\""))
        .replace("test = \"python3 -m py_compile app.py\"", "test = \"python3 -m py_compile probe.py\"")
        .replace("python3 app.py", "python3 probe.py");
    vec![("tovuk.toml", manifest), ("probe.py", PROBE_APP.to_owned())]
}

#[test]
fn another_apps_credentials_a_wrong_password_and_a_tampered_signature_open_nothing() {
    require_python_clients();
    let platform = Platform::start();
    let (token_a, token_b) = (platform.create_app("alpha"), platform.create_app("beta"));
    let a = push(&platform, "alpha", &token_a, &probe_files("alpha"));
    let b = push(&platform, "beta", &token_b, &probe_files("beta"));
    platform.wait_for_state(&a, "running");
    platform.wait_for_state(&b, "running");

    // Alpha's credentials, as an operator might leak them into beta's config.
    let alpha = service(&platform, "alpha");
    let kv_id = resource(&alpha, "kv")["id"].as_str().expect("id").to_owned();
    let bucket = resource(&alpha, "object-storage")["location"].as_str().expect("bucket").replace("bucket ", "");
    let s3_id = resource(&alpha, "object-storage")["id"].as_str().expect("id").to_owned();
    let (kv_secret, s3_secret) = secrets_of(&platform, "alpha", &kv_id, &s3_id);
    let other_url = format!("redis://{kv_id}:{kv_secret}@127.0.0.1:6379/0");
    platform
        .tovuk()
        .args(["env", "set", "beta"])
        .arg(format!("OTHER_REDIS_URL={other_url}"))
        .arg(format!("OTHER_KEY_ID={s3_id}"))
        .arg(format!("OTHER_SECRET={s3_secret}"))
        .arg(format!("OTHER_BUCKET={bucket}"))
        .run()
        .success();
    wait_serving(&platform, "beta");
    let deadline = Instant::now() + Duration::from_secs(30);
    let probed = loop {
        let probed = get_json(&platform, "beta", "/other");
        if probed["other_kv"] != "unset" {
            break probed;
        }
        assert!(Instant::now() < deadline, "beta never got the new config: {probed}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(probed["other_kv"].as_str().is_some_and(|s| s.starts_with("WRONGPASS")), "{probed}");
    assert!(probed["wrong_password"].as_str().is_some_and(|s| s.starts_with("WRONGPASS")), "{probed}");
    assert_eq!(probed["other_s3"], "InvalidAccessKeyId", "{probed}");
    assert_eq!(probed["other_bucket_with_own_key"], "AccessDenied", "{probed}");
    assert_eq!(probed["tampered"], "SignatureDoesNotMatch", "{probed}");
    assert_eq!(probed["own_kv"], "opened", "{probed}");
    // From alpha itself, the same credentials open its own stores.
    let from_alpha = get_json(&platform, "alpha", "/other");
    assert_eq!(from_alpha["own_kv"], "opened", "{from_alpha}");
}

/// The secrets of two of `app`'s resources, read the way only root on the machine can: from
/// the environment of the app's running instance.
fn secrets_of(platform: &Platform, app: &str, kv_id: &str, s3_id: &str) -> (String, String) {
    let _ = app;
    for pid in instance_pids(&platform.data_dir()) {
        let mut pids = vec![pid];
        pids.extend(descendants(pid));
        for pid in pids {
            let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else { continue };
            let vars: Vec<String> =
                environ.split(|b| *b == 0).map(|var| String::from_utf8_lossy(var).into_owned()).collect();
            let get = |name: &str| vars.iter().find_map(|var| var.strip_prefix(&format!("{name}=")).map(str::to_owned));
            if let (Some(url), Some(secret)) = (get("CACHE"), get("FILES_SECRET_ACCESS_KEY"))
                && url.contains(kv_id)
                && get("FILES_ACCESS_KEY_ID").as_deref() == Some(s3_id)
            {
                let kv_secret = url.split(':').nth(2).and_then(|rest| rest.split('@').next()).expect("password");
                return (kv_secret.to_owned(), secret);
            }
        }
    }
    panic!("no instance of {app} with its resources' variables");
}

/// Every process below `pid`, from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(parent) = queue.pop() {
        let Ok(entries) = std::fs::read_dir("/proc") else { break };
        for entry in entries.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
            let ppid =
                stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().nth(1)).and_then(|p| p.parse().ok());
            if ppid == Some(parent) {
                found.push(child);
                queue.push(child);
            }
        }
    }
    found
}

/// Writes to one store per path, each answered only once the store acknowledged it.
const WRITER_APP: &str = r#"import hashlib, json, os, sqlite3, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import boto3, redis

db = sqlite3.connect(os.environ["DB"], check_same_thread=False, timeout=30)
db.execute("CREATE TABLE IF NOT EXISTS writes (text TEXT PRIMARY KEY)")
db.commit()
s3 = boto3.client("s3")
bucket = os.environ["BUCKET_NAME"]
kv = redis.Redis.from_url(os.environ["REDIS_URL"])

def body_of(key):
    # 256 KiB, so a PUT is still streaming when the platform dies.
    return hashlib.sha256(key.encode()).hexdigest().encode() * 4096

def dump():
    texts = [row[0] for row in db.execute("SELECT text FROM writes")]
    objects, pages = {}, s3.get_paginator("list_objects_v2")
    for page in pages.paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            got = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
            objects[entry["Key"]] = got == body_of(entry["Key"])
    keys = {key.decode(): kv.get(key).decode() for key in kv.scan_iter(match="w*")}
    return {"sqlite": texts, "objects": objects, "kv": keys}

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        try:
            if url.path == "/sqlite":
                with db:
                    db.execute("INSERT INTO writes VALUES (?)", (query["text"],))
                body = {"ok": True}
            elif url.path == "/s3":
                s3.put_object(Bucket=bucket, Key=query["key"], Body=body_of(query["key"]))
                body = {"ok": True}
            elif url.path == "/kv":
                kv.set(query["key"], query["key"])
                body = {"ok": True}
            elif url.path == "/dump":
                body = dump()
            else:
                body = {"ok": True, "pid": os.getpid()}
            status = 200
        except Exception as error:
            status, body = 500, {"error": f"{type(error).__name__}: {error}"}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

/// A GET through the router that may fail: the status, or None when nothing answered.
fn try_get(router: &str, app: &str, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(router).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {app}.localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    String::from_utf8_lossy(&response).split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn writes_acknowledged_by_each_store_outlive_a_kill_9_of_the_platform_mid_write() {
    require_python_clients();
    let platform = Platform::start();
    platform.create_app("writer");
    // The upload entrance, with two instances writing to the same stores at once.
    let manifest = NOTES_MANIFEST
        .replace("name = \"notes\"", "name = \"writer\"")
        .replace("python3 -m py_compile app.py", "python3 -m py_compile writer.py")
        .replace("python3 app.py", "python3 writer.py")
        .replace("[health]", "[limits]\ninstances = 2\n\n[health]");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("tovuk.toml"), manifest).expect("manifest");
    std::fs::write(dir.path().join("writer.py"), WRITER_APP).expect("app");
    let accepted =
        platform.tovuk().args(["deploy", "--app", "writer", "--json"]).arg(dir.path()).run().success().json();
    let id = accepted["deploy"]["id"].as_str().expect("a deploy").to_owned();
    platform.wait_for_state(&id, "running");
    // Running once the first is live; the second starts after it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while instance_pids(&platform.data_dir()).len() < 2 {
        assert!(Instant::now() < deadline, "the second instance never started\n{}", platform.log());
        std::thread::sleep(Duration::from_millis(100));
    }

    // One writer per store, each recording what was acknowledged, until the platform dies.
    let router = platform.router_addr();
    let writers: Vec<_> = ["sqlite", "s3", "kv"]
        .into_iter()
        .map(|store| {
            let router = router.clone();
            std::thread::spawn(move || {
                let mut acknowledged = Vec::new();
                for n in 0.. {
                    let name = format!("w{store}{n}");
                    let path = match store {
                        "sqlite" => format!("/sqlite?text={name}"),
                        _ => format!("/{store}?key={name}"),
                    };
                    if try_get(&router, "writer", &path) != Some(200) {
                        break;
                    }
                    acknowledged.push(name);
                }
                acknowledged
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let data_root = platform.kill();
    let acknowledged: Vec<Vec<String>> =
        writers.into_iter().map(|writer| writer.join().expect("writer thread")).collect();
    for (store, written) in ["sqlite", "s3", "kv"].iter().zip(&acknowledged) {
        assert!(written.len() >= 3, "{store} took writes before the kill: {written:?}");
    }

    let platform = Platform::start_in(data_root);
    wait_serving(&platform, "writer");
    // The stores serve again: the adopted instances write through them.
    for path in ["/sqlite?text=after", "/s3?key=after", "/kv?key=wafter"] {
        get_json(&platform, "writer", path);
    }
    let dumped = get_json(&platform, "writer", "/dump");
    let sqlite: Vec<&str> = dumped["sqlite"].as_array().expect("rows").iter().filter_map(Value::as_str).collect();
    for text in &acknowledged[0] {
        assert!(sqlite.contains(&text.as_str()), "acknowledged row {text} lost: {dumped}");
    }
    let objects = dumped["objects"].as_object().expect("objects");
    for key in &acknowledged[1] {
        assert_eq!(objects.get(key), Some(&Value::Bool(true)), "acknowledged object {key} lost or torn: {dumped}");
    }
    assert!(objects.values().all(|whole| whole == true), "an object is torn: {dumped}");
    for key in &acknowledged[2] {
        assert_eq!(dumped["kv"][key], key.as_str(), "acknowledged KV key {key} lost: {dumped}");
    }
    let checked = platform
        .tovuk()
        .args(["sqlite", "query", "writer", "DB", "PRAGMA integrity_check", "--json"])
        .run()
        .success()
        .json();
    assert_eq!(checked["rows"], serde_json::json!([["ok"]]), "{checked}");

    // A restore (the app's instances stopped, the file swapped) leaves the file in WAL mode.
    let snapshot = platform.tovuk().args(["sqlite", "snapshot", "writer", "DB", "--json"]).run().success().json();
    let snapshot_id = snapshot["id"].as_str().expect("id").to_owned();
    platform.tovuk().args(["sqlite", "restore", "writer", "DB", &snapshot_id]).run().success();
    wait_serving(&platform, "writer");
    let mode = platform
        .tovuk()
        .args(["sqlite", "query", "writer", "DB", "PRAGMA journal_mode", "--json"])
        .run()
        .success()
        .json();
    assert_eq!(mode["rows"], serde_json::json!([["wal"]]), "{mode}");
    let dumped = get_json(&platform, "writer", "/dump");
    assert!(dumped["sqlite"].as_array().is_some_and(|rows| rows.len() > acknowledged[0].len()), "{dumped}");
}
