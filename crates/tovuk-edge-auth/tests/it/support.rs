//! Test peers: a real OIDC provider process (npm's oauth2-mock-server behind `provider.js`),
//! an `EdgeAuth` on a temporary SQLite session store, requests as the router would describe
//! them, and a browser's side of the login (following the provider's redirect, keeping
//! cookies).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{ACCEPT, AUTHORIZATION, COOKIE, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tovuk_edge_auth::{
    Answer, AuthConfig, AuthMode, CsrfMode, Decision, EdgeAuth, Identity, RequestView, Requirement, Scheme,
    SqliteSessions,
};

/// The oauth2-mock-server release the tests run: 7.x is the last major that supports Node 18
/// (Debian 12's) as well as Node 20; 8.x needs Node 20.19+.
pub const MOCK_VERSION: &str = "7.2.1";
pub const APP: &str = "shop";
pub const CLIENT_ID: &str = "shop-client";
pub const AUDIENCE: &str = "shop-api";
pub const HOST: &str = "shop.test:8080";
pub const ORIGIN: &str = "http://shop.test:8080";

/// The npm prefix holding oauth2-mock-server: `$TOVUK_TEST_NPM` (scripts/test sets it), else
/// `target/test-npm` in the repository.
fn npm_prefix() -> PathBuf {
    let prefix = std::env::var_os("TOVUK_TEST_NPM")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-npm"));
    let package = prefix.join("node_modules/oauth2-mock-server/package.json");
    let installed = std::fs::read_to_string(&package).unwrap_or_default();
    assert!(
        installed.contains(&format!("\"version\": \"{MOCK_VERSION}\"")),
        "the edge-auth tests need a real OIDC provider, npm's oauth2-mock-server {MOCK_VERSION}, in {}; \
         install it from the repository root with `npm install --prefix target/test-npm oauth2-mock-server@{MOCK_VERSION}` \
         (scripts/test does), or point TOVUK_TEST_NPM at an npm prefix that has it",
        prefix.display()
    );
    prefix
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs()
}

/// One provider process, on its own port, killed when dropped.
pub struct Provider {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    pub issuer: String,
    /// The first signing key.
    pub kid: String,
    pub http: reqwest::Client,
}

impl Provider {
    pub async fn start() -> Provider {
        let prefix = npm_prefix();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/provider.js");
        let mut child = Command::new("node")
            .arg(&script)
            .arg(&prefix)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs (install Node.js 18 or newer: apt-get install nodejs npm)");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), stdout.next_line())
            .await
            .expect("the provider starts within 20 s")
            .expect("the provider's stdout")
            .expect("the provider prints its issuer");
        let hello: Value = serde_json::from_str(&line).expect("the provider's first line is JSON");
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Provider {
            child,
            stdin,
            stdout,
            issuer: hello["issuer"].as_str().expect("issuer").to_owned(),
            kid: hello["kid"].as_str().expect("kid").to_owned(),
            http,
        }
    }

    /// One command to the provider script; its answer.
    pub async fn call(&mut self, command: Value) -> Value {
        self.stdin.write_all(format!("{command}\n").as_bytes()).await.expect("write to the provider");
        let line = self.stdout.next_line().await.expect("read from the provider").expect("the provider answers");
        let answer: Value = serde_json::from_str(&line).expect("the provider answers JSON");
        assert!(answer.get("error").is_none(), "the provider failed {command}: {}", answer["error"]);
        answer
    }

    /// A bearer token from the provider's issuer, for this app's audience, signed by the first
    /// key, with `claims` added or replaced.
    pub async fn mint(&mut self, claims: Value) -> String {
        let mut all = json!({"sub": "alice", "aud": AUDIENCE});
        merge(&mut all, claims);
        let kid = self.kid.clone();
        self.mint_with(json!({"claims": all, "kid": kid})).await
    }

    /// A token from the provider's issuer, changed as `command` says (see provider.js).
    pub async fn mint_with(&mut self, mut command: Value) -> String {
        merge(&mut command, json!({"op": "mint"}));
        self.call(command).await["token"].as_str().expect("token").to_owned()
    }

    /// An access token from the provider's own token endpoint (client credentials), with
    /// `claims` added to it.
    pub async fn token_endpoint(&mut self, claims: Value, scope: &str) -> String {
        self.call(json!({"op": "next_token", "claims": claims})).await;
        let answer: Value = self
            .http
            .post(format!("{}/token", self.issuer))
            .basic_auth("machine-client", Some("machine-secret"))
            .form(&[("grant_type", "client_credentials"), ("aud", AUDIENCE), ("scope", scope)])
            .send()
            .await
            .expect("POST /token")
            .json()
            .await
            .expect("the token answer is JSON");
        answer["access_token"].as_str().expect("access_token").to_owned()
    }

    pub async fn jwks_requests(&mut self) -> u64 {
        self.call(json!({"op": "jwks_requests"})).await["count"].as_u64().expect("count")
    }

    /// Stops the provider, as an outage would.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("kill the provider");
    }
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

/// The middle part of a JWT, decoded.
pub fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

/// An `EdgeAuth` for app `shop` against `provider`, its sessions in a temporary SQLite file.
pub struct Edge {
    pub auth: EdgeAuth,
    pub store: Arc<SqliteSessions>,
    _dir: tempfile::TempDir,
}

pub fn config(provider: &Provider) -> AuthConfig {
    AuthConfig {
        app: APP.to_owned(),
        mode: AuthMode::Oidc,
        issuer: provider.issuer.clone(),
        client_id: Some(CLIENT_ID.to_owned()),
        client_secret: Some("client secret".to_owned()),
        audience: Some(AUDIENCE.to_owned()),
        capability_claim: Some("capabilities".to_owned()),
        csrf_mode: CsrfMode::Origin,
        cookie_key: [7; 32],
        secure_cookies: false,
        session_ttl: Duration::from_secs(3600),
        // Every refresh a request asks for happens; the rate limit has a test of its own.
        refetch_interval: Duration::ZERO,
    }
}

pub async fn edge(config: AuthConfig) -> Edge {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteSessions::open(&dir.path().join("sessions.db")).await.expect("session store"));
    edge_on(config, store, dir)
}

/// An `EdgeAuth` on an existing store (two apps sharing one, as on a node).
pub fn edge_on(config: AuthConfig, store: Arc<SqliteSessions>, dir: tempfile::TempDir) -> Edge {
    let auth = EdgeAuth::new(config, store.clone()).expect("a valid config");
    Edge { auth, store, _dir: dir }
}

/// A request as the router describes it.
#[derive(Clone)]
pub struct Req {
    pub method: Method,
    pub path: String,
    pub host: String,
    pub headers: HeaderMap,
}

impl Req {
    pub fn new(method: Method, path: &str) -> Req {
        Req { method, path: path.to_owned(), host: HOST.to_owned(), headers: HeaderMap::new() }
    }

    pub fn get(path: &str) -> Req {
        Req::new(Method::GET, path)
    }

    pub fn post(path: &str) -> Req {
        Req::new(Method::POST, path)
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
        self
    }

    /// A browser navigating.
    pub fn browser(self) -> Req {
        self.header(ACCEPT.as_str(), "text/html,application/xhtml+xml,*/*;q=0.8")
    }

    pub fn bearer(self, token: &str) -> Req {
        self.header(AUTHORIZATION.as_str(), &format!("Bearer {token}"))
    }

    pub fn cookies(self, jar: &Jar) -> Req {
        let line = jar.header();
        if line.is_empty() { self } else { self.header(COOKIE.as_str(), &line) }
    }

    pub fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            path_and_query: &self.path,
            host: &self.host,
            scheme: Scheme::Http,
            headers: &self.headers,
        }
    }
}

/// A browser's cookies for the app's host.
#[derive(Debug, Clone, Default)]
pub struct Jar {
    pub cookies: BTreeMap<String, String>,
}

impl Jar {
    /// Takes the answer's `Set-Cookie` lines: a `Max-Age=0` one deletes.
    pub fn take(&mut self, answer: &Answer) {
        for line in answer.headers.get_all(SET_COOKIE) {
            let line = line.to_str().expect("ASCII cookie");
            let (pair, attributes) = line.split_once(';').unwrap_or((line, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub fn header(&self) -> String {
        self.cookies.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("; ")
    }

    pub fn get(&self, name: &str) -> &str {
        self.cookies.get(name).map(String::as_str).unwrap_or_else(|| panic!("no cookie {name} in {self:?}"))
    }
}

/// The `Set-Cookie` line for cookie `name`.
pub fn set_cookie_line(answer: &Answer, name: &str) -> String {
    answer
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|line| line.to_str().expect("ASCII").to_owned())
        .find(|line| line.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no Set-Cookie for {name}: {:?}", answer.headers))
}

pub fn location(answer: &Answer) -> String {
    answer.headers.get(LOCATION).expect("a Location").to_str().expect("ASCII").to_owned()
}

/// The JSON error code and message of an answer.
pub fn error_of(answer: &Answer) -> (String, String) {
    let body: Value = serde_json::from_slice(&answer.body).expect("a JSON body");
    (
        body["error"]["code"].as_str().expect("code").to_owned(),
        body["error"]["message"].as_str().expect("message").to_owned(),
    )
}

/// The identity of a passed request (None: anonymous); panics on an answer.
pub fn passed(decision: Decision) -> Option<Identity> {
    match decision {
        Decision::Pass { identity } => identity,
        Decision::Answer(answer) => {
            panic!("expected a pass, got {} {}", answer.status, String::from_utf8_lossy(&answer.body))
        }
    }
}

/// The answer of a refused request; panics on a pass.
pub fn answered(decision: Decision) -> Answer {
    match decision {
        Decision::Answer(answer) => answer,
        Decision::Pass { identity } => panic!("expected an answer, got a pass as {identity:?}"),
    }
}

/// A whole browser login: the route sends the browser to the provider, the provider (which
/// approves at once) sends it back to the callback, and the callback sets the session. Returns
/// the cookies and where the callback sent the browser.
pub async fn log_in(edge: &Edge, provider: &Provider, start: Req) -> (Jar, String) {
    let mut jar = Jar::default();
    let first = if start.path.starts_with("/.tovuk/auth/") {
        edge.auth.platform_path(&start.view()).await.expect("a platform path")
    } else {
        answered(edge.auth.check(&Requirement::Session, &start.view()).await)
    };
    assert_eq!(first.status, 302, "{}", String::from_utf8_lossy(&first.body));
    let authorize = location(&first);
    assert!(authorize.starts_with(&format!("{}/authorize?", provider.issuer)), "{authorize}");
    jar.take(&first);
    let back = provider.http.get(&authorize).send().await.expect("GET the provider's authorize");
    assert_eq!(back.status(), 302, "the provider redirects back");
    let callback = back.headers()[LOCATION].to_str().expect("ASCII").to_owned();
    let path = callback.strip_prefix(ORIGIN).unwrap_or_else(|| panic!("back to the app: {callback}"));
    let done = edge
        .auth
        .platform_path(&Req::get(path).browser().cookies(&jar).view())
        .await
        .expect("the callback is a platform path");
    assert_eq!(done.status, 302, "{}", String::from_utf8_lossy(&done.body));
    jar.take(&done);
    (jar, location(&done))
}
