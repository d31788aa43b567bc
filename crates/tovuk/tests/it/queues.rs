//! Queues (`[[resources]] kind = "queue"`): Python apps send, pull and ack through
//! `$B_URL` with nothing but `urllib`; the platform pushes batches to a consumer app,
//! retries what fails, dead-letters what keeps failing, and `tovuk queue redrive` brings
//! it back; bad input gets a clear error; a cap stops sends; a `kill -9` of the platform
//! with messages in flight loses nothing a producer was told was sent.

use crate::support::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// An app that produces to its queues and consumes pushed batches.
///
/// `POST /call {"queue", "path", "body" | "raw", "token"?}` makes one request to the queue
/// API (`$<queue>_URL` + path, bearer `$<queue>_TOKEN` unless `token` is given) and answers
/// `{"status", "body"}`. `POST /consume` and `/always-500` take deliveries: each message's
/// body `mode` says what to do (`ok`; `poison`: retried by name in a 2xx answer; `hang`: the
/// first attempt never answers in time). `GET /deliveries` lists every message delivered.
/// `POST /produce {"queue", "count", "prefix"}` sends `count` messages one by one in the
/// background, each until it is acknowledged, for a consumer that takes a moment over each
/// (`slow`); `GET /produced` is its ledger.
const APP: &str = r#"
import json, os, threading, time, urllib.error, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
deliveries = []
ledger = {"attempted": [], "acked": [], "done": False}

def call(queue, path, body=None, raw=None, token=None):
    url, own = os.environ[queue + "_URL"], os.environ[queue + "_TOKEN"]
    data = raw.encode() if raw is not None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token != "":
        headers["Authorization"] = "Bearer " + (token or own)
    request = urllib.request.Request(url + path, data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        text = error.read()
        return error.code, json.loads(text) if text else None

def produce(queue, count, prefix):
    for n in range(count):
        key = f"{prefix}-{n}"
        while True:
            with lock:
                ledger["attempted"].append(key)
            try:
                status, _ = call(queue, "/messages", {"body": {"key": key, "mode": "slow"}})
                if status == 200:
                    with lock:
                        ledger["acked"].append(key)
                    break
            except Exception:
                pass
            time.sleep(0.05)
    ledger["done"] = True

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/health":
            return self.answer(200, {"ok": True})
        with lock:
            if self.path == "/deliveries":
                return self.answer(200, list(deliveries))
            if self.path == "/produced":
                return self.answer(200, dict(ledger))
        self.answer(404, {})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
        if self.path == "/call":
            status, answer = call(body["queue"], body["path"], body.get("body"), body.get("raw"), body.get("token"))
            return self.answer(200, {"status": status, "body": answer})
        if self.path == "/produce":
            args = (body["queue"], body["count"], body["prefix"])
            threading.Thread(target=produce, args=args, daemon=True).start()
            return self.answer(200, {})
        retry, status = [], 200
        for message in body["messages"]:
            with lock:
                deliveries.append({
                    "path": self.path,
                    "queue": self.headers.get("Tovuk-Queue"),
                    "queue_field": body["queue"],
                    "delivery": self.headers.get("Tovuk-Delivery-Id"),
                    "id": message["id"],
                    "attempt": message["attempt"],
                    "body": message["body"],
                })
            mode = message["body"].get("mode", "ok") if isinstance(message["body"], dict) else "ok"
            if self.path == "/always-500":
                status = 500
            elif mode == "poison":
                retry.append({"id": message["id"], "error": "poison: cannot be handled"})
            elif mode == "hang" and message["attempt"] == 1:
                time.sleep(20)
            elif mode == "slow":
                time.sleep(0.005)
        if self.path == "/huge":
            return self.answer(200, {"retry": [], "pad": "x" * (2 << 20)})
        self.answer(status, {"retry": retry} if status == 200 else {"error": "this consumer always fails"})

ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

fn manifest(app: &str, resources: &str) -> String {
    format!(
        "[app]\nname = \"{app}\"\nkind = \"web\"\ncapabilities = [\"http\", \"queues\"]\n\n[run]\ncommand = \"python3 app.py\"\n\n[health]\npath = \"/health\"\ntimeout = \"30s\"\n\n{resources}"
    )
}

fn deploy(platform: &Platform, app: &str, resources: &str) {
    let token = platform.create_app(app);
    let manifest = manifest(app, resources);
    let deploy = platform.push_files(app, &token, &[("tovuk.toml", manifest.as_str()), ("app.py", APP)]);
    platform.wait_for_state(&deploy, "running");
}

/// A request to `app` through the router, with a JSON body; the status and the JSON answer.
fn request(platform: &Platform, app: &str, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let body = if body.is_null() { String::new() } else { body.to_string() };
    let mut stream = TcpStream::connect(platform.router_addr()).expect("connect router");
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {app}.localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("send");
    stream.write_all(body.as_bytes()).expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// One call of the queue API made by the app: the API's status and answer.
fn call(platform: &Platform, app: &str, call: Value) -> (u16, Value) {
    let (status, answer) = request(platform, app, "POST", "/call", &call);
    assert_eq!(status, 200, "{call}: {answer}\n{}", platform.log());
    (answer["status"].as_u64().and_then(|code| u16::try_from(code).ok()).unwrap_or(0), answer["body"].clone())
}

fn get(platform: &Platform, app: &str, path: &str) -> Value {
    let (status, answer) = request(platform, app, "GET", path, &Value::Null);
    assert_eq!(status, 200, "{path}: {answer}");
    answer
}

/// Polls `what` until `done` holds (a deadline, never a fixed sleep); the last value.
fn wait_until(what: &str, mut look: impl FnMut() -> Value, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let value = look();
        if done(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} never happened: {value}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn queue_json(platform: &Platform, app: &str, binding: &str) -> Value {
    platform.tovuk().args(["queue", "show", app, binding, "--json"]).run().success().json()
}

fn error_code(answer: &Value) -> &str {
    answer["error"]["code"].as_str().unwrap_or("")
}

#[test]
fn an_app_sends_pulls_and_acks_and_every_bad_input_gets_a_clear_error() {
    let platform = Platform::start();
    deploy(&platform, "shop", "[[resources]]\nkind = \"queue\"\nbinding = \"JOBS\"\n");
    let env = platform.tovuk().args(["service", "show", "shop", "--json"]).run().success().json();
    assert_eq!(env["resources"][0]["env"], json!(["JOBS_URL", "JOBS_TOKEN"]), "{env}");

    // One, then a batch; each answer names the ids, in order.
    let (status, one) =
        call(&platform, "shop", json!({"queue": "JOBS", "path": "/messages", "body": {"body": {"n": 0}}}));
    assert_eq!(status, 200, "{one}");
    assert!(one["id"].as_str().is_some_and(|id| id.starts_with("msg_")), "{one}");
    let batch: Vec<Value> = (1..=4).map(|n| json!({"body": {"n": n}})).chain([json!({"body": "text"})]).collect();
    let (status, sent) =
        call(&platform, "shop", json!({"queue": "JOBS", "path": "/messages/batch", "body": {"messages": batch}}));
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["ids"].as_array().map(Vec::len), Some(5), "{sent}");
    let shown = queue_json(&platform, "shop", "JOBS");
    assert_eq!((shown["depth"].as_u64(), shown["delivery"].as_str()), (Some(6), Some("pull")), "{shown}");

    // A pull leases them in order; an ack deletes them.
    let pull = |max: u64, visibility: u64| {
        call(
            &platform,
            "shop",
            json!({"queue": "JOBS", "path": "/pull", "body": {"max": max, "visibility_timeout_seconds": visibility}}),
        )
    };
    let (status, pulled) = pull(3, 60);
    assert_eq!(status, 200, "{pulled}");
    let messages = pulled["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(messages.iter().map(|m| m["body"]["n"].clone()).collect::<Vec<_>>(), [json!(0), json!(1), json!(2)]);
    assert!(messages.iter().all(|m| m["attempt"] == 1 && m["lease_id"].is_string() && m["enqueued_at"].is_string()));
    let shown = queue_json(&platform, "shop", "JOBS");
    assert_eq!((shown["depth"].as_u64(), shown["in_flight"].as_u64()), (Some(3), Some(3)), "{shown}");
    let leases: Vec<Value> = messages.iter().map(|m| m["lease_id"].clone()).collect();
    let (status, acked) = call(&platform, "shop", json!({"queue": "JOBS", "path": "/ack", "body": {"acks": leases}}));
    assert_eq!((status, acked["acked"].as_u64()), (200, Some(3)), "{acked}");

    // Acked twice, never given, not a lease id at all, or retried unknown: reported per
    // lease, not a silent success.
    let twice = json!({
        "acks": [leases[0], "l_999_1_00000000000000ff", "nonsense"],
        "retries": [{"lease_id": "l_998_1_00000000000000ff", "error": "x"}],
    });
    let (status, refused) = call(&platform, "shop", json!({"queue": "JOBS", "path": "/ack", "body": twice}));
    assert_eq!((status, error_code(&refused)), (409, "lease_failed"), "{refused}");
    let failed = refused["failed"].as_array().cloned().unwrap_or_default();
    assert_eq!(failed.len(), 4, "{refused}");
    assert!(failed.iter().all(|f| f["code"] == "lease_not_found"), "{refused}");
    assert_eq!((refused["acked"].as_u64(), refused["retried"].as_u64()), (Some(0), Some(0)), "{refused}");

    // A lease that runs out: the message comes back with its attempt counted, and the old
    // lease's ack is refused as expired.
    let (_, first) = pull(1, 1);
    let first = first["messages"][0].clone();
    assert_eq!(first["body"]["n"], 3, "{first}");
    // The others are leased meanwhile; the expired one comes back after its second.
    let mut pulled_since = Vec::new();
    wait_until(
        "the expired lease's message coming back",
        || {
            pulled_since.extend(pull(10, 60).1["messages"].as_array().cloned().unwrap_or_default());
            json!(pulled_since.iter().any(|m| m["id"] == first["id"]))
        },
        |back| *back == json!(true),
    );
    let again = pulled_since.iter().find(|m| m["id"] == first["id"]).cloned().unwrap_or_default();
    assert_eq!(again["attempt"], 2, "{again}");
    let stale = json!({"acks": [first["lease_id"]]});
    let (status, refused) = call(&platform, "shop", json!({"queue": "JOBS", "path": "/ack", "body": stale}));
    assert_eq!((status, refused["failed"][0]["code"].as_str()), (409, Some("lease_expired")), "{refused}");
    // A retry by lease puts it back (no delay: at once).
    let retry = json!({"retries": [{"lease_id": again["lease_id"], "delay_seconds": 0, "error": "try later"}]});
    let (status, retried) = call(&platform, "shop", json!({"queue": "JOBS", "path": "/ack", "body": retry}));
    assert_eq!((status, retried["retried"].as_u64()), (200, Some(1)), "{retried}");
    let peeked = platform.tovuk().args(["queue", "peek", "shop", "JOBS", "--json"]).run().success().json();
    let kept = &peeked["messages"][0];
    assert_eq!((kept["attempts"].as_u64(), kept["last_error"].as_str()), (Some(2), Some("try later")), "{peeked}");

    // Bad input, each with its code, status and a next step.
    let big = "x".repeat(128 * 1024);
    let cases = [
        (json!({"queue": "JOBS", "path": "/messages", "body": {"body": big}}), 413, "message_too_large"),
        (
            json!({"queue": "JOBS", "path": "/messages/batch", "body": {"messages": vec![json!({"body": 1}); 101]}}),
            400,
            "too_many_messages",
        ),
        (json!({"queue": "JOBS", "path": "/messages", "body": {"body": 1}, "token": "wrong"}), 401, "unauthorized"),
        (json!({"queue": "JOBS", "path": "/messages", "body": {"body": 1}, "token": ""}), 401, "unauthorized"),
        (json!({"queue": "JOBS", "path": "/messages", "body": {"bdy": 1}}), 400, "invalid_request"),
        (json!({"queue": "JOBS", "path": "/messages", "raw": "{not json"}), 400, "invalid_request"),
        (json!({"queue": "JOBS", "path": "/pull", "body": {"max": 101}}), 400, "invalid_request"),
        (json!({"queue": "JOBS", "path": "/nothing", "body": {}}), 404, "not_found"),
    ];
    for (request, expected_status, code) in cases {
        let (status, answer) = call(&platform, "shop", request.clone());
        assert_eq!((status, error_code(&answer)), (expected_status, code), "{request}: {answer}");
        let next = answer["error"]["next"].as_str().unwrap_or("");
        assert!(!next.is_empty() && !answer["error"]["message"].as_str().unwrap_or("").is_empty(), "{answer}");
    }
    let (status, answer) =
        call(&platform, "shop", json!({"queue": "JOBS", "path": "/messages", "body": {"body": big}}));
    assert!(answer["error"]["message"].as_str().is_some_and(|m| m.contains("131072")), "{status} {answer}");
    // One message over the size in a batch refuses the batch whole, naming it; nothing is stored.
    let held = |platform: &Platform| {
        let shown = queue_json(platform, "shop", "JOBS");
        shown["depth"].as_u64().unwrap_or(0) + shown["in_flight"].as_u64().unwrap_or(0)
    };
    let before = held(&platform);
    let mixed = json!({"messages": [{"body": "small"}, {"body": big}, {"body": "small"}]});
    let (status, answer) = call(&platform, "shop", json!({"queue": "JOBS", "path": "/messages/batch", "body": mixed}));
    assert_eq!((status, error_code(&answer)), (413, "message_too_large"), "{answer}");
    assert!(answer["error"]["message"].as_str().is_some_and(|m| m.starts_with("message 2 of the batch")), "{answer}");
    assert_eq!(held(&platform), before, "nothing of a refused batch is stored");
    // An ack naming more than 100 leases.
    let many = json!({"acks": vec!["l_1_1_00000000000000ff"; 101]});
    let (status, answer) = call(&platform, "shop", json!({"queue": "JOBS", "path": "/ack", "body": many}));
    assert_eq!((status, error_code(&answer)), (400, "too_many_messages"), "{answer}");

    // A cap on queue_messages stops sends with 429, naming the cap and the command.
    let sent_so_far = wait_until(
        "the sends reaching the usage",
        || platform.tovuk().args(["service", "show", "shop", "--json"]).run().success().json(),
        |shown| shown["resources"][0]["usage"][0]["quantity"].as_f64() == Some(6.0),
    );
    assert_eq!(sent_so_far["resources"][0]["usage"][0]["meter"], "queue_messages", "{sent_so_far}");
    platform.tovuk().args(["caps", "set", "shop", "queue_messages", "8"]).run().success();
    // A batch that would pass the cap is refused whole (6 + 3 > 8): nothing of it is stored.
    let before = held(&platform);
    let three = json!({"messages": [{"body": 1}, {"body": 2}, {"body": 3}]});
    let (status, answer) = call(&platform, "shop", json!({"queue": "JOBS", "path": "/messages/batch", "body": three}));
    assert_eq!((status, error_code(&answer)), (429, "cap_reached"), "{answer}");
    assert_eq!(held(&platform), before, "nothing of a refused batch is stored");
    let mut refused = None;
    for n in 0..5 {
        let (status, answer) =
            call(&platform, "shop", json!({"queue": "JOBS", "path": "/messages", "body": {"body": {"n": 100 + n}}}));
        if status != 200 {
            refused = Some((status, answer));
            break;
        }
    }
    let (status, answer) = refused.expect("a send past the cap is refused");
    assert_eq!((status, error_code(&answer)), (429, "cap_reached"), "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("queue_messages cap of 8"), "{answer}");
    assert!(message.contains("tovuk caps set shop queue_messages"), "{answer}");
    // Pulling is not a send: it goes on.
    assert_eq!(pull(10, 60).0, 200);

    // The endpoints in the app's network end with the platform (the app goes on): a stop
    // never waits out its deadline on them.
    let mut platform = platform;
    assert_eq!(platform.stop_with("TERM"), 0);
    let log = platform.log();
    assert!(!log.contains("did not finish before the shutdown deadline"), "{log}");
}

const PRODUCER: &str = "\
[[resources]]
kind = \"queue\"
binding = \"JOBS\"
consumer = \"mailer\"
consumer_path = \"/consume\"
batch_size = 10
max_wait = \"0s\"
delivery_timeout = \"2s\"
max_retries = 2
dead_letter = \"FAILED\"

[[resources]]
kind = \"queue\"
binding = \"FAILED\"

[[resources]]
kind = \"queue\"
binding = \"BROKEN\"
consumer = \"mailer\"
consumer_path = \"/always-500\"
max_retries = 1

[[resources]]
kind = \"queue\"
binding = \"STUCK\"
consumer = \"mailer\"
consumer_path = \"/consume\"
max_wait = \"0s\"
delivery_timeout = \"1s\"
max_retries = 0

[[resources]]
kind = \"queue\"
binding = \"HUGE\"
consumer = \"mailer\"
consumer_path = \"/huge\"
max_wait = \"0s\"
max_retries = 0
";

fn deliveries(platform: &Platform) -> Vec<Value> {
    get(platform, "mailer", "/deliveries").as_array().cloned().unwrap_or_default()
}

#[test]
fn push_delivery_retries_what_fails_dead_letters_a_poison_message_and_redrive_brings_it_back() {
    let platform = Platform::start();
    // The consumer does not exist yet: what is sent waits, and no attempt is counted.
    deploy(&platform, "shop", PRODUCER);
    let send = |queue: &str, bodies: Vec<Value>| {
        let messages: Vec<Value> = bodies.into_iter().map(|body| json!({"body": body})).collect();
        let (status, sent) =
            call(&platform, "shop", json!({"queue": queue, "path": "/messages/batch", "body": {"messages": messages}}));
        assert_eq!(status, 200, "{sent}");
        sent["ids"].as_array().cloned().unwrap_or_default()
    };
    let mut bodies: Vec<Value> = (0..20).map(|n| json!({"n": n})).collect();
    bodies.insert(7, json!({"n": "poison", "mode": "poison"}));
    let ids = send("JOBS", bodies);
    let poison_id = ids[7].as_str().unwrap_or_default().to_owned();
    let shown = queue_json(&platform, "shop", "JOBS");
    assert_eq!(shown["depth"], 21, "{shown}");
    assert!(shown["consumer"]["readiness"].as_str().is_some_and(|r| r.starts_with("waiting")), "{shown}");
    assert_eq!(shown["consumer"]["app"], "mailer", "{shown}");
    // A queue with a push consumer is not pulled.
    let (status, refused) = call(&platform, "shop", json!({"queue": "JOBS", "path": "/pull", "body": {}}));
    assert_eq!((status, error_code(&refused)), (409, "pull_refused"), "{refused}");
    assert!(refused["error"]["message"].as_str().is_some_and(|m| m.contains("mailer")), "{refused}");

    deploy(&platform, "mailer", "");
    // Every good message arrives, each at its first attempt; the poison one three times.
    let delivered = wait_until(
        "the batch and the poison message's last attempt",
        || json!(deliveries(&platform)),
        |all| {
            let all = all.as_array().cloned().unwrap_or_default();
            let good = all.iter().filter(|d| d["body"]["n"].is_u64()).count();
            good >= 20 && all.iter().any(|d| d["id"] == poison_id.as_str() && d["attempt"] == 3)
        },
    );
    let delivered = delivered.as_array().cloned().unwrap_or_default();
    assert!(delivered.iter().filter(|d| d["body"]["n"].is_u64()).all(|d| d["attempt"] == 1), "{delivered:?}");
    let first = &delivered[0];
    assert_eq!((first["queue"].as_str(), first["queue_field"].as_str()), (Some("JOBS"), Some("JOBS")), "{first}");
    assert!(first["delivery"].as_str().is_some_and(|id| id.starts_with("dlv_")), "{first}");
    // Out of retries, it is in the dead-letter queue with its last error.
    let dead = wait_until(
        "the poison message dead-lettered",
        || platform.tovuk().args(["queue", "peek", "shop", "JOBS", "--dead-letter", "--json"]).run().success().json(),
        |peek| peek["messages"].as_array().is_some_and(|m| m.len() == 1),
    );
    let letter = &dead["messages"][0];
    assert_eq!((letter["id"].as_str(), letter["queue"].as_str()), (Some(poison_id.as_str()), Some("FAILED")), "{dead}");
    assert_eq!(letter["last_error"], "poison: cannot be handled", "{dead}");
    let shown = queue_json(&platform, "shop", "JOBS");
    assert_eq!((shown["depth"].as_u64(), shown["dead_letter"].as_u64()), (Some(0), Some(1)), "{shown}");
    assert_eq!(shown["consumer"]["readiness"], "ready", "{shown}");
    assert_eq!(queue_json(&platform, "shop", "FAILED")["depth"], 1);
    let service = platform.tovuk().args(["service", "show", "shop", "--json"]).run().success().json();
    let jobs = service["resources"].as_array().into_iter().flatten().find(|r| r["binding"] == "JOBS").cloned();
    let jobs = jobs.unwrap_or_default();
    assert_eq!(
        (jobs["depth"].as_u64(), jobs["in_flight"].as_u64(), jobs["dead_letter"].as_u64()),
        (Some(0), Some(0), Some(1)),
        "{service}"
    );

    // Redrive: back in its queue, its attempts reset, delivered again (and failing again).
    let redriven = platform.tovuk().args(["queue", "redrive", "shop", "JOBS", "--json"]).run().success().json();
    assert_eq!(redriven["redriven"], 1, "{redriven}");
    wait_until(
        "the redriven message delivered at attempt 1 again",
        || json!(deliveries(&platform)),
        |all| {
            all.as_array().is_some_and(|all| {
                all.iter().filter(|d| d["id"] == poison_id.as_str() && d["attempt"] == 1).count() == 2
            })
        },
    );

    // A consumer that never answers in time: the delivery times out and is retried.
    let hung = send("JOBS", vec![json!({"n": "hang", "mode": "hang"})]);
    let hung_id = hung[0].as_str().unwrap_or_default().to_owned();
    wait_until(
        "the hung delivery's retry",
        || json!(deliveries(&platform)),
        |all| all.as_array().is_some_and(|all| all.iter().any(|d| d["id"] == hung_id.as_str() && d["attempt"] == 2)),
    );

    // Never answered and out of attempts (max_retries = 0): dead, saying the consumer did
    // not answer in time.
    let stuck = send("STUCK", vec![json!({"n": "stuck", "mode": "hang"})]);
    let dead = wait_until(
        "the unanswered delivery dead-lettered",
        || platform.tovuk().args(["queue", "peek", "shop", "STUCK", "--dead-letter", "--json"]).run().success().json(),
        |peek| peek["messages"].as_array().is_some_and(|m| m.len() == 1),
    );
    let letter = &dead["messages"][0];
    assert_eq!((letter["id"].clone(), letter["attempts"].as_u64()), (stuck[0].clone(), Some(1)), "{dead}");
    assert_eq!(letter["last_error"], "the consumer did not answer within 1s (delivery_timeout)", "{dead}");

    // A 2xx whose body is too big to read its retry list from acks nothing: it failed.
    let huge = send("HUGE", vec![json!({"n": "huge"})]);
    let dead = wait_until(
        "the unreadable answer's message dead-lettered",
        || platform.tovuk().args(["queue", "peek", "shop", "HUGE", "--dead-letter", "--json"]).run().success().json(),
        |peek| peek["messages"].as_array().is_some_and(|m| m.len() == 1),
    );
    let letter = &dead["messages"][0];
    assert_eq!(letter["id"], huge[0], "{dead}");
    assert!(letter["last_error"].as_str().is_some_and(|e| e.contains("could not be read whole")), "{dead}");

    // A consumer that always fails: retried once (max_retries = 1), then kept as dead in
    // its own queue (no dead-letter queue), with the answer as its error.
    let broken = send("BROKEN", vec![json!({"n": "broken"})]);
    let dead = wait_until(
        "the always-failing delivery dead-lettered",
        || platform.tovuk().args(["queue", "peek", "shop", "BROKEN", "--dead-letter", "--json"]).run().success().json(),
        |peek| peek["messages"].as_array().is_some_and(|m| m.len() == 1),
    );
    let letter = &dead["messages"][0];
    assert_eq!((letter["id"].clone(), letter["queue"].as_str()), (broken[0].clone(), Some("BROKEN")), "{dead}");
    assert!(letter["last_error"].as_str().is_some_and(|e| e.starts_with("the consumer answered 500")), "{dead}");
    let attempts: Vec<Value> =
        deliveries(&platform).into_iter().filter(|d| d["id"] == broken[0]).map(|d| d["attempt"].clone()).collect();
    assert_eq!(attempts, [json!(1), json!(2)]);

    // Purge needs the binding again; then the dead letters are gone.
    let refused =
        platform.tovuk().args(["queue", "purge", "shop", "BROKEN", "--dead-letter", "--confirm", "JOBS"]).run();
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("--confirm BROKEN"), "{}", refused.stderr);
    let purged = platform
        .tovuk()
        .args(["queue", "purge", "shop", "BROKEN", "--dead-letter", "--confirm", "BROKEN", "--json"])
        .run()
        .success()
        .json();
    assert_eq!(purged["purged"], 1, "{purged}");
    let listed = platform.tovuk().args(["queue", "list", "shop", "--json"]).run().success().json();
    let by_binding: BTreeMap<String, (u64, u64)> = listed["queues"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|q| {
            (
                q["binding"].as_str().unwrap_or("").to_owned(),
                (q["depth"].as_u64().unwrap_or(99), q["dead_letter"].as_u64().unwrap_or(99)),
            )
        })
        .collect();
    assert_eq!(by_binding.get("BROKEN"), Some(&(0, 0)), "{listed}");
    assert_eq!(by_binding.len(), 5, "{listed}");
    let unknown = platform.tovuk().args(["queue", "show", "shop", "NOPE"]).run();
    assert_ne!(unknown.code, 0);
    assert!(
        unknown.stderr.contains("has no queue bound as `NOPE`") && unknown.stderr.contains("JOBS"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn a_kill_9_with_messages_in_flight_loses_nothing_acknowledged() {
    let platform = Platform::start();
    let resources = "[[resources]]\nkind = \"queue\"\nbinding = \"LEDGER\"\nconsumer = \"ledger\"\nconsumer_path = \"/consume\"\nbatch_size = 5\nmax_wait = \"0s\"\ndelivery_timeout = \"3s\"\n";
    deploy(&platform, "ledger", resources);
    let total = 3000;
    let (status, _) =
        request(&platform, "ledger", "POST", "/produce", &json!({"queue": "LEDGER", "count": total, "prefix": "k"}));
    assert_eq!(status, 200);
    // Killed while sends and deliveries are under way.
    wait_until("some deliveries", || json!(deliveries_of(&platform, "ledger").len()), |n| n.as_u64() >= Some(200));
    let before = get(&platform, "ledger", "/produced");
    let data_root = platform.kill();
    assert_eq!(before["done"], false, "the producer was still sending when the platform was killed");
    let platform = Platform::start_in(data_root);
    let produced = wait_until(
        "the producer's last send acknowledged",
        || get(&platform, "ledger", "/produced"),
        |ledger| ledger["done"] == true,
    );
    let acked: BTreeSet<String> = strings(&produced["acked"]);
    let attempted: BTreeSet<String> = strings(&produced["attempted"]);
    assert_eq!(acked.len(), total, "every send is acknowledged in the end");
    let delivered = wait_until(
        "every acknowledged message delivered",
        || json!(deliveries_of(&platform, "ledger")),
        |all| {
            let seen: BTreeSet<String> = all
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d["body"]["key"].as_str().map(str::to_owned))
                .collect();
            acked.is_subset(&seen)
        },
    );
    let keys: Vec<String> = delivered
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["body"]["key"].as_str().map(str::to_owned))
        .collect();
    let seen: BTreeSet<String> = keys.iter().cloned().collect();
    let lost = acked.difference(&seen).count();
    let unexpected = seen.difference(&attempted).count();
    let duplicates = keys.len() - seen.len();
    eprintln!(
        "ledger: {} acknowledged, {} delivered ({} distinct), lost {lost}, unexpected {unexpected}, duplicates {duplicates}",
        acked.len(),
        keys.len(),
        seen.len()
    );
    assert_eq!((lost, unexpected), (0, 0));
}

fn deliveries_of(platform: &Platform, app: &str) -> Vec<Value> {
    get(platform, app, "/deliveries").as_array().cloned().unwrap_or_default()
}

fn strings(value: &Value) -> BTreeSet<String> {
    value.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect()
}

#[test]
fn on_the_host_network_a_queue_answers_on_the_port_its_url_names_and_still_pushes() {
    let platform = Platform::start_with(&["--share-host-network"]);
    let resources = "[[resources]]\nkind = \"queue\"\nbinding = \"JOBS\"\nconsumer = \"hosted\"\nconsumer_path = \"/consume\"\nmax_wait = \"0s\"\n\n[[resources]]\nkind = \"queue\"\nbinding = \"TODO\"\n";
    deploy(&platform, "hosted", resources);
    // Sent by the app to the URL it was given: a port of the host's loopback, not 9650.
    let (status, sent) =
        call(&platform, "hosted", json!({"queue": "TODO", "path": "/messages", "body": {"body": "pull me"}}));
    assert_eq!(status, 200, "{sent}");
    let (_, pulled) = call(&platform, "hosted", json!({"queue": "TODO", "path": "/pull", "body": {}}));
    assert_eq!(pulled["messages"][0]["body"], "pull me", "{pulled}");
    let (status, _) =
        call(&platform, "hosted", json!({"queue": "JOBS", "path": "/messages", "body": {"body": {"n": 1}}}));
    assert_eq!(status, 200);
    let delivered = wait_until(
        "the push on the host's network",
        || json!(deliveries_of(&platform, "hosted")),
        |all| all.as_array().is_some_and(|all| !all.is_empty()),
    );
    assert_eq!(delivered[0]["body"]["n"], 1, "{delivered}");
    // Where there are no namespaces the token alone decides: another app's token is refused.
    let (status, refused) =
        call(&platform, "hosted", json!({"queue": "TODO", "path": "/messages", "body": {"body": 1}, "token": "nope"}));
    assert_eq!((status, error_code(&refused)), (401, "unauthorized"), "{refused}");
}
