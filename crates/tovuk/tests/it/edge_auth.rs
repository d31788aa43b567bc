//! Edge auth, end to end against a real OIDC provider process (npm's oauth2-mock-server):
//! a contract with `/admin` on `auth = "session"` is blocked until `tovuk preflight` says
//! its config is complete; then the router answers `/admin` with 401 to an API client, sends
//! a browser through the provider's login to it, refuses a JWT without the route's
//! capability with 403, strips identity headers a client forges, and `tovuk app inspect`
//! shows what it enforces.

use crate::support::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

/// The app: echoes who the router says is calling.
const APP: &str = "import os\nfrom http.server import BaseHTTPRequestHandler, HTTPServer\nclass H(BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = ('subject=%s caps=%s method=%s path=%s' % (self.headers.get('Tovuk-Auth-Subject'), self.headers.get('Tovuk-Auth-Capabilities'), self.headers.get('Tovuk-Auth-Method'), self.path)).encode()\n        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)\nHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

const MANIFEST: &str = "[app]\nname = \"portal\"\nkind = \"web\"\ncapabilities = [\"http\"]\n\n[run]\ncommand = \"python3 app.py\"\n\n[health]\npath = \"/\"\n\n[[routes]]\npath = \"/\"\nauth = \"none\"\n\n[[routes]]\npath = \"/admin\"\nauth = \"session\"\n\n[[routes]]\npath = \"/api/orders\"\nauth = \"capability\"\ncapability = \"orders:write\"\n";

/// The provider process, driven one JSON line at a time (see the edge-auth crate's provider.js).
struct Provider {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    issuer: String,
}

impl Provider {
    fn start() -> Provider {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let prefix =
            std::env::var_os("TOVUK_TEST_NPM").map(PathBuf::from).unwrap_or_else(|| root.join("target/test-npm"));
        assert!(
            prefix.join("node_modules/oauth2-mock-server").is_dir(),
            "these tests need npm's oauth2-mock-server in {}: run scripts/test, which installs it",
            prefix.display()
        );
        let mut child = Command::new("node")
            .arg(root.join("crates/tovuk-edge-auth/tests/it/provider.js"))
            .arg(&prefix)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node runs the provider");
        let input = child.stdin.take().expect("stdin");
        let mut output = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        output.read_line(&mut line).expect("the provider says where it listens");
        let started: Value = serde_json::from_str(&line).expect("json");
        let issuer = started["issuer"].as_str().expect("an issuer").to_owned();
        Provider { child, input, output, issuer }
    }

    fn ask(&mut self, command: Value) -> Value {
        writeln!(self.input, "{command}").expect("send");
        let mut line = String::new();
        self.output.read_line(&mut line).expect("answer");
        serde_json::from_str(&line).expect("json")
    }

    fn token(&mut self, claims: Value) -> String {
        self.ask(json!({"op": "mint", "claims": claims}))["token"].as_str().expect("a token").to_owned()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 exchange: status, headers (lowercased names), body.
fn exchange(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|line| line.split_whitespace().nth(1)).and_then(|code| code.parse().ok());
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    (status.unwrap_or(0), headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(found, _)| found == name).map(|(_, value)| value.as_str())
}

/// `name=value` of each cookie set.
fn cookies(headers: &[(String, String)]) -> Vec<String> {
    headers
        .iter()
        .filter(|(name, _)| name == "set-cookie")
        .filter_map(|(_, value)| value.split(';').next().map(str::to_owned))
        .filter(|pair| !pair.ends_with('='))
        .collect()
}

#[test]
fn a_session_route_is_blocked_until_configured_then_the_router_enforces_it() {
    let mut provider = Provider::start();
    let platform = Platform::start();
    let token = platform.create_app("portal");
    let deploy_id = platform.push_files("portal", &token, &[("tovuk.toml", MANIFEST), ("app.py", APP)]);
    let failed = platform.wait_for_state(&deploy_id, "failed");
    assert_eq!(failed["failure"]["reason"], "auth_not_ready", "{failed}");
    let line = failed["failure"]["first_actionable_line"].as_str().unwrap_or_default();
    assert!(line.contains("TOVUK_AUTH_MODE") && line.contains("/admin") && line.contains("tovuk env set"), "{line}");

    // Set what preflight prints, one by one, until it says ready.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("tovuk.toml"), MANIFEST).expect("write");
    let value = |name: &str| match name {
        "TOVUK_AUTH_MODE" => "oidc".to_owned(),
        "TOVUK_AUTH_ISSUER" => provider.issuer.clone(),
        "TOVUK_AUTH_CLIENT_ID" => "portal-web".to_owned(),
        "TOVUK_AUTH_CAPABILITY_CLAIM" => "capabilities".to_owned(),
        other => panic!("preflight asked for {other}"),
    };
    let mut rounds = 0;
    loop {
        let run = platform.tovuk().args(["preflight", "portal", "--json", "--dir"]).arg(dir.path()).run();
        let shown = run.json();
        if run.code == 0 {
            assert_eq!(shown["readiness"], "ready", "{shown}");
            break;
        }
        let first = &shown["blockers"][0];
        let name = first["name"].as_str().expect("a variable").to_owned();
        assert!(first["next"].as_str().is_some_and(|next| next.starts_with("tovuk env set portal ")), "{first}");
        platform.tovuk().args(["env", "set", "portal", &format!("{name}={}", value(&name))]).run().success();
        rounds += 1;
        assert!(rounds <= 4, "preflight keeps asking: {shown}");
    }
    let retried = platform.tovuk().args(["deploy", "retry", &deploy_id, "--json"]).run().success().json();
    let live = retried["deploy"]["id"].as_str().or_else(|| retried["id"].as_str()).expect("a deploy").to_owned();
    platform.wait_for_state(&live, "running");

    let router = platform.router_addr();
    let host = format!("portal.localhost:{}", router.rsplit(':').next().unwrap_or_default());

    // The router routes the release once it has built the app's edge auth (a moment after
    // `running`, on a loaded machine).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while exchange(&router, "GET", "/", &[("Host", &host)]).0 == 404 {
        assert!(std::time::Instant::now() < deadline, "never routed:\n{}", platform.log());
        std::thread::sleep(Duration::from_millis(50));
    }

    // An open route, with identity headers a client forges: the app never sees them.
    let (status, _, body) =
        exchange(&router, "GET", "/", &[("Host", &host), ("Tovuk-Auth-Subject", "root"), ("tovuk-auth-method", "x")]);
    assert_eq!((status, body.as_str()), (200, "subject=None caps=None method=None path=/"));

    // An API client without credentials: 401, naming the scheme.
    let (status, headers, _) = exchange(&router, "GET", "/admin", &[("Host", &host)]);
    assert_eq!(status, 401);
    assert!(header(&headers, "www-authenticate").is_some_and(|value| value.starts_with("Bearer")), "{headers:?}");

    // Other spellings of the same path are the same route.
    for spelling in ["/%61dmin", "//admin", "/ADMIN/", "/x/../admin"] {
        let (status, _, body) = exchange(&router, "GET", spelling, &[("Host", &host)]);
        assert_eq!(status, 401, "{spelling}: {body}");
    }

    // A browser: sent to the provider, back through the callback, into /admin.
    let browser = [("Host", host.as_str()), ("Accept", "text/html")];
    let (status, headers, _) = exchange(&router, "GET", "/admin/users", &browser);
    assert_eq!(status, 302, "{headers:?}");
    let authorize = header(&headers, "location").expect("to the provider").to_owned();
    assert!(authorize.starts_with(&provider.issuer), "{authorize}");
    let login_cookies = cookies(&headers).join("; ");
    let provider_addr = provider.issuer.trim_start_matches("http://").to_owned();
    let authorize_path = authorize.trim_start_matches(&provider.issuer).to_owned();
    let (status, headers, _) = exchange(&provider_addr, "GET", &authorize_path, &[("Host", &provider_addr)]);
    assert_eq!(status, 302, "the provider approves at once: {headers:?}");
    let callback = header(&headers, "location").expect("back to the app").to_owned();
    let callback_path = callback.split_once(&host).map(|(_, path)| path.to_owned()).expect("the app's host");
    assert!(callback_path.starts_with("/.tovuk/auth/callback"), "{callback_path}");
    let (status, headers, _) = exchange(&router, "GET", &callback_path, &[("Host", &host), ("Cookie", &login_cookies)]);
    assert_eq!(status, 302, "{headers:?}");
    assert_eq!(header(&headers, "location"), Some("/admin/users"));
    let session =
        cookies(&headers).into_iter().filter(|cookie| cookie.starts_with("tovuk_session=")).collect::<Vec<_>>();
    assert_eq!(session.len(), 1, "{headers:?}");
    let (status, _, body) = exchange(&router, "GET", "/admin/users", &[("Host", &host), ("Cookie", &session[0])]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("method=session") && !body.contains("subject=None"), "{body}");

    // A capability route: a valid token without the capability is 403 naming it; with it, in.
    let reader = provider.token(json!({"sub": "alice", "aud": "portal-web", "capabilities": ["orders:read"]}));
    let bearer = format!("Bearer {reader}");
    let (status, _, body) = exchange(&router, "GET", "/api/orders", &[("Host", &host), ("Authorization", &bearer)]);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("capability_missing") && body.contains("orders:write"), "{body}");
    let writer = provider.token(json!({"sub": "bob", "aud": "portal-web", "capabilities": ["orders:write"]}));
    let bearer = format!("Bearer {writer}");
    let (status, _, body) = exchange(&router, "GET", "/api/orders/7", &[("Host", &host), ("Authorization", &bearer)]);
    assert_eq!((status, body.as_str()), (200, "subject=bob caps=orders:write method=bearer path=/api/orders/7"));
    // A token for another audience is no token at all.
    let stranger = provider.token(json!({"sub": "eve", "aud": "another-app", "capabilities": ["orders:write"]}));
    let bearer = format!("Bearer {stranger}");
    let (status, _, _) = exchange(&router, "GET", "/api/orders", &[("Host", &host), ("Authorization", &bearer)]);
    assert_eq!(status, 401);

    // What the router enforces, as the runtime evidence shows it.
    let inspected = platform.tovuk().args(["app", "inspect", "portal", "--json"]).run().success().json();
    let evidence = &inspected["runtime_evidence"];
    assert_eq!((evidence["auth_mode"].as_str(), evidence["csrf_mode"].as_str()), (Some("oidc"), Some("origin")));
    assert_eq!(evidence["capability_source"], "capabilities", "{evidence}");
    let summary = evidence["provider_summary"].as_str().unwrap_or_default();
    assert!(summary.contains(&provider.issuer) && summary.contains("portal-web"), "{evidence}");
    assert_eq!(evidence["route_count"], 3, "{evidence}");
    let platform_status = platform.tovuk().args(["status", "--json"]).run().success().json();
    let notes = platform_status["limits"]["notes"].to_string();
    assert!(notes.contains("without `Secure`"), "/v1/status says what the cookies lack: {notes}");
    let status = platform.tovuk().args(["app", "status", "portal", "--json"]).run().success().json();
    assert_eq!(status["runtime_evidence"], *evidence, "status shows the same evidence");

    // The auth config removed while it runs: the running release keeps its own, and the next
    // deploy is blocked until it is complete again.
    let unset = platform.tovuk().args(["env", "unset", "portal", "TOVUK_AUTH_MODE", "--json"]).run().success().json();
    assert!(unset["release"].is_null(), "no release without its auth config: {unset}");
    assert!(unset["next"][0].as_str().is_some_and(|next| next.contains("keeps its auth config")), "{unset}");
    let (status, _, _) = exchange(&router, "GET", "/admin", &[("Host", &host)]);
    assert_eq!(status, 401, "still enforced");
    let restart = platform.tovuk().args(["app", "restart", "portal"]).run();
    assert_ne!(restart.code, 0);
    assert!(restart.stderr.contains("TOVUK_AUTH_MODE"), "{}", restart.stderr);
    let files = [("tovuk.toml", MANIFEST), ("app.py", APP), ("VERSION", "2")];
    let next = platform.push_files("portal", &token, &files);
    assert_eq!(platform.wait_for_state(&next, "failed")["failure"]["reason"], "auth_not_ready");
    let (status, _, body) = exchange(&router, "GET", "/", &[("Host", &host)]);
    assert_eq!(status, 200, "the running release serves on: {body}");
}
