//! State objects (`kind = "state"`): calls to one object are delivered one at a time to the
//! app's instances, its storage is used from inside them, survives a deploy and a `kill -9`
//! of the platform, is metered and capped, and a call whose instance dies is not run again.

use crate::support::Platform;
use serde_json::Value;
use std::time::{Duration, Instant};

/// An app that is both the caller and the object: `/fanout` fires many calls at once (one
/// thread, asyncio), `/increment` is a call (read, then write: exact only if serialised).
const APP: &str = r#"import asyncio, json, os, sys, threading, time, urllib.error, urllib.parse, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

URL, TOKEN = os.environ['COUNTERS_URL'], os.environ['COUNTERS_TOKEN']
active, overlaps, lock = {}, [0], threading.Lock()

def storage(method, obj, key, call, value=None):
    body = None if value is None else json.dumps(value).encode()
    headers = {'Authorization': 'Bearer ' + TOKEN, 'Content-Type': 'application/json'}
    if call:
        headers['Tovuk-State-Call'] = call
    request = urllib.request.Request(f'{URL}/_storage/{obj}/{key}', data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b'{}')

def call(obj, path, method='POST'):
    request = urllib.request.Request(f'{URL}/{obj}{path}', data=b'' if method == 'POST' else None, method=method,
                                     headers={'Authorization': 'Bearer ' + TOKEN})
    try:
        with urllib.request.urlopen(request, timeout=90) as answer:
            return answer.status, json.loads(answer.read() or b'null')
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b'null')

async def one(host, port, path):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f'POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'.encode())
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    await reader.read()
    writer.close()
    return status

async def fanout(obj, n):
    url = urllib.parse.urlsplit(URL)
    return await asyncio.gather(*(one(url.hostname, url.port, f'{url.path}/{obj}/increment') for _ in range(n)))

class H(BaseHTTPRequestHandler):
    def answer(self, status, value):
        body = json.dumps(value).encode()
        self.send_response(status); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)

    def do_GET(self):
        obj, call_id = self.headers.get('Tovuk-State-Object'), self.headers.get('Tovuk-State-Call')
        if self.path == '/value' and obj:
            status, found = storage('GET', obj, 'count', call_id)
            _, attempts = storage('GET', obj, 'attempts', call_id)
            return self.answer(200, {'count': found.get('value', 0) if status == 200 else 0,
                                     'attempts': attempts.get('value', 0), 'caller': self.headers.get('Tovuk-Caller-App')})
        if self.path.startswith('/value/'):
            return self.answer(*call(self.path.split('/')[2], '/value', 'GET'))
        if self.path.startswith('/outside/'):
            # Storage used outside of any call: refused, naming the fix.
            return self.answer(*storage('GET', self.path.split('/')[2], 'count', None))
        self.answer(200, {'ok': True})

    def do_POST(self):
        obj, call_id = self.headers.get('Tovuk-State-Object'), self.headers.get('Tovuk-State-Call')
        if self.path == '/increment' and obj:
            with lock:
                active[obj] = active.get(obj, 0) + 1
                if active[obj] > 1: overlaps[0] += 1
            try:
                status, found = storage('GET', obj, 'count', call_id)
                count = found['value'] if status == 200 else 0
                time.sleep(0.001)
                status, written = storage('PUT', obj, 'count', call_id, count + 1)
            finally:
                # Before the answer: once it is sent, the object's next call may start.
                with lock: active[obj] -= 1
            return self.answer(status, written if status != 200 else {'count': count + 1})
        if self.path == '/die' and obj:
            _, attempts = storage('GET', obj, 'attempts', call_id)
            storage('PUT', obj, 'attempts', call_id, attempts.get('value', 0) + 1)
            sys.stdout.flush()
            os._exit(9)
        if self.path.startswith('/fanout/'):
            _, _, obj, n = self.path.split('/')
            statuses = asyncio.run(fanout(obj, int(n)))
            return self.answer(200, {'statuses': sorted(set(statuses)), 'ok': statuses.count(200), 'overlaps': overlaps[0]})
        if self.path.startswith('/call/'):
            _, _, obj, path = self.path.split('/', 3)
            return self.answer(*call(obj, '/' + path))
        self.answer(404, {})

ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()
"#;

const MANIFEST: &str = "[app]\nname = \"tally\"\nkind = \"web\"\ncapabilities = [\"http\", \"state\", \"cron\"]\n\n[run]\ncommand = \"python3 app.py\"\n\n[health]\npath = \"/\"\n\n[[resources]]\nkind = \"state\"\nbinding = \"COUNTERS\"\n\n[[resources]]\nkind = \"cron\"\nbinding = \"DOOM\"\nschedule = \"0 0 1 1 *\"\ncommand = \"python3 doom.py\"\n";

/// A call from outside the app's instances (a cron run) to a handler that kills its instance.
const DOOM: &str = "import json, os, urllib.error, urllib.request\nrequest = urllib.request.Request(os.environ['COUNTERS_URL'] + '/doomed/die', data=b'', method='POST', headers={'Authorization': 'Bearer ' + os.environ['COUNTERS_TOKEN']})\ntry:\n    urllib.request.urlopen(request, timeout=90)\nexcept urllib.error.HTTPError as error:\n    print('doomed call', error.code, json.loads(error.read())['error']['code'])\n";

fn json(platform: &Platform, method: &str, path: &str) -> (u16, Value) {
    let (status, body) = platform.request_app("tally", method, path);
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn value(platform: &Platform, object: &str) -> Value {
    let (status, body) = json(platform, "GET", &format!("/value/{object}"));
    assert_eq!(status, 200, "{body}\n{}", platform.log());
    body
}

#[test]
fn a_thousand_concurrent_calls_to_one_object_count_exactly_and_its_storage_outlives_a_deploy_and_a_kill_9() {
    let platform = Platform::start();
    let token = platform.create_app("tally");
    let files = [("tovuk.toml", MANIFEST), ("app.py", APP), ("doom.py", DOOM)];
    let first = platform.push_files("tally", &token, &files);
    platform.wait_for_state(&first, "running");

    // 1,000 calls at once to one object: each read-then-write, exact only when serialised.
    let (status, fanned) = json(&platform, "POST", "/fanout/hits/1000");
    assert_eq!(status, 200, "{fanned}");
    assert_eq!((fanned["ok"].as_u64(), fanned["overlaps"].as_u64()), (Some(1000), Some(0)), "{fanned}");
    let counted = value(&platform, "hits");
    assert_eq!(counted["count"], 1000, "{counted}");
    assert_eq!(counted["caller"], "tally", "the call names its caller: {counted}");
    assert_eq!(value(&platform, "other")["count"], 0, "objects are apart");

    // Storage outside of one of the object's calls is refused, naming the fix.
    let (status, outside) = json(&platform, "GET", "/outside/hits");
    assert_eq!(status, 409, "{outside}");
    assert_eq!(outside["error"]["code"], "not_in_call", "{outside}");
    assert!(outside["error"]["message"].as_str().is_some_and(|m| m.contains("Tovuk-State-Call")), "{outside}");

    // `service show` shows it with what it did (usage as counted so far: it catches up).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let shown = platform.tovuk().args(["service", "show", "tally", "--json"]).run().success().json();
        let state = shown["resources"]
            .as_array()
            .and_then(|resources| resources.iter().find(|resource| resource["kind"] == "state"))
            .cloned()
            .expect("the state resource");
        assert_eq!((state["binding"].as_str(), state["status"].as_str()), (Some("COUNTERS"), Some("active")));
        assert_eq!(state["env"], serde_json::json!(["COUNTERS_URL", "COUNTERS_TOKEN"]), "{state}");
        let usage = |meter: &str| -> f64 {
            let used = state["usage"].as_array().and_then(|usage| usage.iter().find(|entry| entry["meter"] == meter));
            used.and_then(|entry| entry["quantity"].as_f64()).unwrap_or(0.0)
        };
        if usage("state_writes") >= 1000.0 && usage("state_reads") >= 1000.0 {
            break;
        }
        assert!(Instant::now() < deadline, "usage never caught up: {state}");
        std::thread::sleep(Duration::from_millis(500));
    }

    // A call whose instance dies is answered as interrupted and is not run again.
    platform.tovuk().args(["cron", "run", "tally", "DOOM"]).run().success();
    platform.wait_for_log("tally", "doomed call 502 call_interrupted");
    let deadline = Instant::now() + Duration::from_secs(60);
    let attempts = loop {
        let (status, body) = json(&platform, "GET", "/value/doomed");
        if status == 200 {
            break body["attempts"].clone();
        }
        assert!(Instant::now() < deadline, "the app never came back: {body}\n{}", platform.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    // Give a wrong retry the time to happen before counting.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(attempts, 1, "delivered once");
    assert_eq!(value(&platform, "doomed")["attempts"], 1, "never run twice");

    // A deploy and a kill -9 of the platform keep what the objects stored.
    let files = [("tovuk.toml", MANIFEST), ("app.py", APP), ("doom.py", DOOM), ("VERSION", "2")];
    let second = platform.push_files("tally", &token, &files);
    platform.wait_for_state(&second, "running");
    assert_eq!(value(&platform, "hits")["count"], 1000);
    let data_root = platform.kill();
    let platform = Platform::start_in(data_root);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = json(&platform, "GET", "/value/hits");
        if status == 200 {
            assert_eq!(body["count"], 1000, "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "not back after the restart: {body}\n{}", platform.log());
        std::thread::sleep(Duration::from_millis(200));
    }

    // A cap on state_writes stops writes with 429, naming the cap and the command.
    platform.tovuk().args(["caps", "set", "tally", "state_writes", "1"]).run().success();
    let (status, capped) = json(&platform, "POST", "/call/hits/increment");
    assert_eq!(status, 429, "{capped}");
    assert_eq!(capped["error"]["code"], "cap_reached", "{capped}");
    let message = capped["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("tovuk caps set tally state_writes <LIMIT>"), "{capped}");
    assert_eq!(value(&platform, "hits")["count"], 1000, "nothing written past the cap");
}

/// Another app using tally's objects: a call, and a try at their storage.
const VISITOR: &str = r#"import json, os, urllib.error, urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
URL, TOKEN = os.environ['COUNTERS_URL'], os.environ['COUNTERS_TOKEN']
def ask(method, path):
    request = urllib.request.Request(URL + path, data=b'' if method == 'POST' else None, method=method,
                                     headers={'Authorization': 'Bearer ' + TOKEN, 'Tovuk-State-Call': 'call_forged'})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        status, body = {'/visit': lambda: ask('POST', '/hits/increment'), '/value': lambda: ask('GET', '/hits/value'),
                        '/storage': lambda: ask('GET', '/_storage/hits/count')}.get(self.path, lambda: (200, b'{}'))()
        self.send_response(status); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)
HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()
"#;

fn visitor_manifest(service: &str) -> String {
    format!(
        "[app]\nname = \"visitor\"\nkind = \"web\"\ncapabilities = [\"http\", \"state\"]\n\n[run]\ncommand = \"python3 app.py\"\n\n[health]\npath = \"/\"\n\n[[resources]]\nkind = \"state\"\nbinding = \"COUNTERS\"\nservice = \"{service}\"\n"
    )
}

#[test]
fn another_app_calls_the_objects_its_state_resource_names_and_cannot_touch_their_storage() {
    let platform = Platform::start();
    let visitor_token = platform.create_app("visitor");

    // Objects of an app that does not exist: refused before anything is built, naming the fix.
    let manifest = visitor_manifest("tally");
    let refused = platform.push_files("visitor", &visitor_token, &[("tovuk.toml", &manifest), ("app.py", VISITOR)]);
    let failed = platform.wait_for_state(&refused, "failed");
    assert_eq!(failed["failure"]["reason"], "binding_unavailable", "{failed}");
    let line = failed["failure"]["first_actionable_line"].as_str().unwrap_or_default();
    assert!(line.contains("tovuk app create tally"), "{line}");

    let tally_token = platform.create_app("tally");
    let tally =
        platform.push_files("tally", &tally_token, &[("tovuk.toml", MANIFEST), ("app.py", APP), ("doom.py", DOOM)]);
    platform.wait_for_state(&tally, "running");
    let files = [("tovuk.toml", manifest.as_str()), ("app.py", VISITOR), ("VERSION", "2")];
    let visitor = platform.push_files("visitor", &visitor_token, &files);
    platform.wait_for_state(&visitor, "running");

    // Its calls go to tally's instances, in the same line as tally's own, naming the caller.
    for expected in 1..=3 {
        let (status, body) = platform.get_app("visitor", "/visit");
        assert_eq!(status, 200, "{body}\n{}", platform.log());
        assert_eq!(serde_json::from_str::<Value>(&body).expect("json")["count"], expected, "{body}");
    }
    let (status, body) = platform.get_app("visitor", "/value");
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).expect("json");
    assert_eq!((seen["count"].as_u64(), seen["caller"].as_str()), (Some(3), Some("visitor")), "{seen}");
    assert_eq!(value(&platform, "hits")["count"], 3, "tally sees the same object");

    // The objects' storage is tally's alone, even with a call id.
    let (status, body) = platform.get_app("visitor", "/storage");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("forbidden"), "{body}");

    let shown = platform.tovuk().args(["service", "show", "visitor", "--json"]).run().success().json();
    let counters = &shown["resources"][0];
    assert_eq!((counters["service"].as_str(), counters["readiness"].as_str()), (Some("tally"), Some("ready")));
    assert!(counters["location"].as_str().is_some_and(|at| at.contains("`tally`")), "{counters}");
}
