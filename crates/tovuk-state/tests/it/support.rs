//! Test peers: `States` served on a loopback port, a gate with two apps (the owner and an app
//! bound to its resource), an `Instances` that forwards over real HTTP, and the owner's app: an
//! axum server whose counter reads and writes the object's storage from inside its calls.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tovuk_state::{CallOutcome, CallRequest, Gate, Instances, Opened, States};

pub const OWNER: &str = "counter";
pub const CLIENT: &str = "client";
/// The owner's resource: the storage namespace.
pub const RESOURCE: &str = "res_counter";
/// The bound app's own resource id for the same State objects.
pub const BOUND: &str = "res_client";
pub const TOKEN_A: &str = "token-owner";
pub const TOKEN_B: &str = "token-client";

/// Token A opens the owner's resource as the owner; token B opens the bound app's resource id,
/// which maps to the owner's. Writes are refused while `refuse_writes` is set.
#[derive(Default)]
pub struct TestGate {
    pub refuse_writes: AtomicBool,
    pub reads: AtomicU64,
    pub writes: AtomicU64,
}

impl Gate for TestGate {
    fn open(&self, _scope: Option<&str>, id: &str, token: &str) -> Option<Opened> {
        let caller = match (token, id) {
            (TOKEN_A, RESOURCE) => OWNER,
            (TOKEN_B, BOUND) => CLIENT,
            _ => return None,
        };
        Some(Opened { owner: OWNER.into(), resource_id: RESOURCE.into(), caller: caller.into() })
    }

    fn admit(&self, app: &str, id: &str, reads: u64, writes: u64) -> Result<(), String> {
        assert_eq!((app, id), (OWNER, RESOURCE), "metered against the owner's resource");
        if writes > 0 && self.refuse_writes.load(Ordering::SeqCst) {
            return Err(format!(
                "`{app}` reached its state_writes cap; raise it: tovuk caps set {app} state_writes <LIMIT>"
            ));
        }
        self.reads.fetch_add(reads, Ordering::SeqCst);
        self.writes.fetch_add(writes, Ordering::SeqCst);
        Ok(())
    }
}

/// Forwards each call over HTTP to the app's address, once; counts what it sent.
pub struct HttpInstances {
    pub apps: Mutex<HashMap<String, SocketAddr>>,
    pub sent: AtomicU64,
    client: reqwest::Client,
}

#[async_trait::async_trait]
impl Instances for HttpInstances {
    async fn call(&self, app: &str, request: CallRequest) -> CallOutcome {
        let addr = self.apps.lock().expect("apps").get(app).copied();
        let Some(addr) = addr else { return CallOutcome::NotSent(format!("`{app}` has no running instance")) };
        self.sent.fetch_add(1, Ordering::SeqCst);
        let mut builder = self
            .client
            .request(request.method, format!("http://{addr}{}", request.path_and_query))
            .timeout(request.timeout)
            .body(request.body);
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        let response = match builder.send().await {
            Ok(response) => response,
            Err(error) if error.is_connect() => return CallOutcome::NotSent(error.to_string()),
            Err(error) => return CallOutcome::Interrupted(error.to_string()),
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
            .collect();
        match response.bytes().await {
            Ok(body) => CallOutcome::Answered { status, headers, body: body.to_vec() },
            Err(error) => CallOutcome::Interrupted(error.to_string()),
        }
    }
}

/// The owner's app, with what the tests look at.
pub struct App {
    state_url: String,
    client: reqwest::Client,
    /// Objects with a call running in this app now.
    running: Mutex<HashSet<String>>,
    /// Calls that found another call of their object running.
    pub overlaps: AtomicU64,
    /// Every call id delivered, in order.
    pub delivered: Mutex<Vec<String>>,
    /// Deliveries of `/die`.
    pub died: AtomicU64,
    /// `/block` signals `entered` and waits for `release`.
    pub entered: Notify,
    pub release: Notify,
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or("")
}

fn failed(what: impl std::fmt::Display) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, what.to_string()).into_response()
}

impl App {
    async fn storage(
        &self,
        method: reqwest::Method,
        path: &str,
        call: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.state_url)).bearer_auth(TOKEN_A);
        if let Some(call) = call {
            request = request.header("Tovuk-State-Call", call);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("storage request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    fn enter(&self, headers: &HeaderMap) -> (String, String) {
        let (object, call) =
            (header(headers, "tovuk-state-object").to_owned(), header(headers, "tovuk-state-call").to_owned());
        if !self.running.lock().expect("running").insert(object.clone()) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        self.delivered.lock().expect("delivered").push(call.clone());
        (object, call)
    }

    fn leave(&self, object: &str) {
        self.running.lock().expect("running").remove(object);
    }
}

async fn increment(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let (object, call) = app.enter(&headers);
    let path = format!("/_storage/{object}/count");
    let (status, body) = app.storage(reqwest::Method::GET, &path, Some(&call), None).await;
    let count = match status {
        200 => body["value"].as_u64().unwrap_or(0),
        404 => 0,
        _ => return failed(format!("GET count: {status} {body}")),
    };
    // 0 to 2 ms, drawn from the (random) call id.
    let pause = u64::from_str_radix(&call[call.len() - 2..], 16).unwrap_or(0) % 3;
    tokio::time::sleep(Duration::from_millis(pause)).await;
    let (status, body) = app.storage(reqwest::Method::PUT, &path, Some(&call), Some(&json!(count + 1))).await;
    app.leave(&object);
    if status != 200 {
        return failed(format!("PUT count: {status} {body}"));
    }
    axum::Json(json!(count + 1)).into_response()
}

/// One storage request of a script; `call` overrides the header (`""`: none).
#[derive(Deserialize)]
struct Step {
    method: String,
    path: String,
    /// Sent when present, `null` too.
    #[serde(default, deserialize_with = "present")]
    body: Option<Value>,
    call: Option<String>,
}

fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// Runs storage requests from inside the call, answering each status and body.
async fn script(State(app): State<Arc<App>>, headers: HeaderMap, axum::Json(steps): axum::Json<Vec<Step>>) -> Response {
    let (object, own) = app.enter(&headers);
    let mut results = Vec::new();
    for step in steps {
        let call = match step.call.as_deref() {
            None => Some(own.as_str()),
            Some("") => None,
            Some(other) => Some(other),
        };
        let method = reqwest::Method::from_bytes(step.method.as_bytes()).expect("method");
        let (status, body) = app.storage(method, &step.path, call, step.body.as_ref()).await;
        results.push(json!({"status": status, "body": body}));
    }
    app.leave(&object);
    axum::Json(json!({"call": own, "results": results})).into_response()
}

async fn block(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let (object, _) = app.enter(&headers);
    app.entered.notify_one();
    app.release.notified().await;
    app.leave(&object);
    axum::Json(json!("released")).into_response()
}

/// Answers the headers, then breaks the connection mid-body: the call ran, its answer is lost.
async fn die(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let (object, _) = app.enter(&headers);
    app.died.fetch_add(1, Ordering::SeqCst);
    app.leave(&object);
    let parts: Vec<Result<bytes::Bytes, std::io::Error>> =
        vec![Ok(bytes::Bytes::from_static(b"partial")), Err(std::io::Error::other("the instance died"))];
    Response::new(Body::from_stream(futures_util::stream::iter(parts)))
}

async fn echo(State(app): State<Arc<App>>, request: Request) -> Response {
    let (object, _) = app.enter(request.headers());
    let headers: HashMap<String, Vec<String>> = request
        .headers()
        .keys()
        .map(|name| {
            (
                name.to_string(),
                request.headers().get_all(name).iter().map(|v| v.to_str().unwrap_or("").to_owned()).collect(),
            )
        })
        .collect();
    let answer = json!({
        "method": request.method().as_str(),
        "uri": request.uri().to_string(),
        "headers": headers,
    });
    let body = axum::body::to_bytes(request.into_body(), 1 << 20).await.unwrap_or_default();
    app.leave(&object);
    (
        StatusCode::CREATED,
        [("x-answer", "yes")],
        axum::Json(json!({"echo": answer, "body": String::from_utf8_lossy(&body)})),
    )
        .into_response()
}

/// `States` served with the owner's app running, all on loopback.
pub struct Harness {
    pub base: String,
    pub states: Arc<States>,
    pub gate: Arc<TestGate>,
    pub instances: Arc<HttpInstances>,
    pub app: Arc<App>,
    pub client: reqwest::Client,
    stop: CancellationToken,
    served: tokio::task::JoinHandle<()>,
}

impl Harness {
    pub async fn start(file: &Path) -> Harness {
        let states = States::open(file).await.expect("open");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let client = reqwest::Client::new();
        let app = Arc::new(App {
            state_url: format!("{base}/state/{RESOURCE}"),
            client: client.clone(),
            running: Mutex::default(),
            overlaps: AtomicU64::new(0),
            delivered: Mutex::default(),
            died: AtomicU64::new(0),
            entered: Notify::new(),
            release: Notify::new(),
        });
        let routes = Router::new()
            .route("/increment", post(increment))
            .route("/script", post(script))
            .route("/block", post(block))
            .route("/die", post(die))
            .route("/echo/{*rest}", any(echo))
            .with_state(Arc::clone(&app));
        let app_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let app_addr = app_listener.local_addr().expect("addr");
        let stop = CancellationToken::new();
        let app_stop = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(app_listener, routes)
                .with_graceful_shutdown(async move { app_stop.cancelled().await })
                .await;
        });
        let instances = Arc::new(HttpInstances {
            apps: Mutex::new(HashMap::from([(OWNER.to_owned(), app_addr)])),
            sent: AtomicU64::new(0),
            client: client.clone(),
        });
        let gate = Arc::new(TestGate::default());
        let served = tokio::spawn(Arc::clone(&states).serve(
            listener,
            None,
            Arc::clone(&gate) as Arc<dyn Gate>,
            Arc::clone(&instances) as Arc<dyn Instances>,
            stop.clone(),
        ));
        Harness { base, states, gate, instances, app, client, stop, served }
    }

    /// `POST`s `body` to `path` of `object` through `resource` (the owner's or the bound
    /// app's id) with `token`; the status and JSON answer.
    pub async fn call_as(&self, resource: &str, token: &str, object: &str, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/state/{resource}/{object}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("call");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn call(&self, object: &str, path: &str, body: Value) -> (u16, Value) {
        self.call_as(RESOURCE, TOKEN_A, object, path, body).await
    }

    /// Runs `steps` (storage requests) from inside a call to `object`: the call's id and each
    /// step's status and body.
    pub async fn script(&self, object: &str, steps: Value) -> (String, Vec<(u16, Value)>) {
        let (status, answer) = self.call(object, "/script", steps).await;
        assert_eq!(status, 200, "{answer}");
        let results = answer["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|result| (result["status"].as_u64().expect("status") as u16, result["body"].clone()))
            .collect();
        (answer["call"].as_str().expect("call").to_owned(), results)
    }

    /// Stops serving and lets go of the store.
    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.served).await.expect("serve ends").expect("serve task");
        self.states.close().await;
    }
}

/// The error code of a refusal.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}
