//! Service bindings: one app calls another at `$<B>_URL` with `$<B>_TOKEN`; the router's
//! internal listener lets only declared bindings through and says who calls, which no
//! client (nor calling app, nor its claims of a user) can forge; a binding to an app that is
//! not running blocks the deploy.

use crate::support::{Platform, http};

/// The called app: says who called it and whether a token reached it.
const CALLEE: &str = r#"import os
from http.server import BaseHTTPRequestHandler, HTTPServer
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        caller = self.headers.get("Tovuk-Caller-App", "none")
        token = "token" if self.headers.get("Authorization") else "no-token"
        # An identity header only the router may set (never seen when the router works).
        subject = self.headers.get("Tovuk-Auth-Subject")
        forged = f" subject={subject}" if subject else ""
        body = f"caller={caller} {token} path={self.path}{forged}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"#;

/// A calling app: `/call/<host>` calls `http://<host>/whoami` (the binding's URL when
/// `<host>` is `url`) with its binding's token, `/bare` without it, `/token` gives its token
/// away (a leak a test can replay) and `/replay/<token>` calls the callee with someone's token.
const CALLER: &str = r#"import os, http.client
from http.server import BaseHTTPRequestHandler, HTTPServer
def call(host, token):
    # The binding's URL names the port: none (80) in a network of its own, the internal
    # listener's on the host's network.
    port = os.environ.get(os.environ.get("BINDING", "API") + "_URL", "").removeprefix("http://").partition(":")[2]
    connection = http.client.HTTPConnection("127.0.0.1", int(port or 80), timeout=10)
    # Whatever a calling app claims of its user, the router drops: only it says who calls.
    headers = {"Host": host, "Tovuk-Auth-Subject": "admin"}
    if token:
        headers["Authorization"] = "Bearer " + token
    connection.request("GET", "/whoami", headers=headers)
    answer = connection.getresponse()
    return answer.status, answer.read().decode()
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        binding = os.environ.get("BINDING", "API")
        url, token = os.environ.get(binding + "_URL", ""), os.environ.get(binding + "_TOKEN", "")
        own_host = url.removeprefix("http://").partition(":")[0]
        parts = self.path.split("/")
        if self.path == "/token":
            status, body = 200, token
        elif self.path == "/url":
            status, body = 200, url
        elif parts[1] == "call":
            status, body = call(own_host if parts[2] == "url" else parts[2], token)
        elif parts[1] == "bare":
            status, body = call(own_host, None)
        elif parts[1] == "replay":
            status, body = call("callee.internal", parts[2])
        else:
            status, body = 200, "ok"
        data = f"{status} {body}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"#;

fn manifest(app: &str, bindings: &[(&str, &str)]) -> String {
    let capabilities = if bindings.is_empty() { "\"http\"" } else { "\"http\", \"service-bindings\"" };
    let mut text = format!(
        "[app]\nname = \"{app}\"\nkind = \"web\"\ncapabilities = [{capabilities}]\n\n[run]\ncommand = \"python3 server.py\"\n\n[health]\npath = \"/health\"\n"
    );
    for (binding, service) in bindings {
        text.push_str(&format!("\n[[bindings]]\nbinding = \"{binding}\"\nservice = \"{service}\"\n"));
    }
    text
}

fn deploy(platform: &Platform, app: &str, token: &str, server: &str, bindings: &[(&str, &str)]) -> serde_json::Value {
    let id = platform.push_files(app, token, &[("tovuk.toml", &manifest(app, bindings)), ("server.py", server)]);
    platform
        .wait_for_deploy(&id, "running or failed", |deploy| deploy["state"] == "running" || deploy["state"] == "failed")
}

#[test]
fn an_app_calls_another_through_its_binding_and_nothing_else_gets_through() {
    let platform = Platform::start();
    let front_token = platform.create_app("front");
    let callee_token = platform.create_app("callee");

    // A binding to an app with nothing running blocks the deploy before it builds, naming it.
    let blocked = deploy(&platform, "front", &front_token, CALLER, &[("API", "callee")]);
    assert_eq!(blocked["failure"]["reason"], "binding_unavailable", "{blocked}");
    let line = blocked["failure"]["first_actionable_line"].as_str().unwrap_or_default();
    assert!(line.contains("`callee`") && line.contains("tovuk deploy --app callee"), "{line}");

    assert_eq!(deploy(&platform, "callee", &callee_token, CALLEE, &[])["state"], "running");
    // Once it runs, the blocked deploy goes through as it is.
    let blocked_id = blocked["id"].as_str().expect("id");
    let retried = platform.tovuk().args(["deploy", "retry", blocked_id, "--json"]).run().success().json();
    let retried_id = retried["id"].as_str().expect("a new deploy").to_owned();
    assert_eq!(platform.wait_for_state(&retried_id, "running")["state"], "running");
    let (_, url) = platform.get_app("front", "/url");
    assert_eq!(url, "200 http://callee.internal", "the binding's URL names the service");

    // The declared call: the callee sees who calls and never the token.
    let (_, answer) = platform.get_app("front", "/call/url");
    assert_eq!(answer, "200 caller=front no-token path=/whoami");
    // Without the token, or to a service the binding does not name: refused, saying why.
    let (_, bare) = platform.get_app("front", "/bare");
    assert!(bare.starts_with("401 ") && bare.contains("Authorization: Bearer"), "{bare}");
    let (_, other) = platform.get_app("front", "/call/front.internal");
    assert!(other.starts_with("403 ") && other.contains("calls `callee`, not `front`"), "{other}");

    // Another app replaying front's token from its own network is refused.
    let thief_token = platform.create_app("thief");
    assert_eq!(deploy(&platform, "thief", &thief_token, CALLER, &[("FRONT", "front")])["state"], "running");
    let (_, leaked) = platform.get_app("front", "/token");
    let leaked = leaked.trim_start_matches("200 ").to_owned();
    let (_, replayed) = platform.get_app("thief", &format!("/replay/{leaked}"));
    assert!(replayed.starts_with("403 ") && replayed.contains("came from `thief`"), "{replayed}");

    // The route table the routers follow carries the token's digest, never the token.
    let node_secret =
        std::fs::read_to_string(platform.data_dir().join("keys").join("node.secret")).expect("node secret");
    let (status, table) =
        http(&platform.api_addr(), "GET", "/internal/v1/routes", &[("X-Tovuk-Node", node_secret.trim())], "");
    assert_eq!(status, 200, "{table}");
    assert!(table.contains("\"token_sha256\"") && !table.contains(&leaked), "{table}");

    // A client cannot forge who calls: the router drops the header on the public listener.
    // (An absolute-form target names the host: it wins over the helper's own `Host`.)
    let (status, forged) =
        http(&platform.router_addr(), "GET", "http://callee.localhost/whoami", &[("Tovuk-Caller-App", "front")], "");
    assert_eq!((status, forged.as_str()), (200, "caller=none no-token path=/whoami"));
    // And `<service>.internal` is no host of the public listener, token or not.
    let bearer = format!("Bearer {leaked}");
    let (status, _) =
        http(&platform.router_addr(), "GET", "http://callee.internal/whoami", &[("Authorization", &bearer)], "");
    assert_eq!(status, 404);

    // The calls are counted on the caller's binding and shown with it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let shown = platform.tovuk().args(["service", "show", "front", "--json"]).run().success().json();
        let binding = shown["resources"]
            .as_array()
            .and_then(|resources| resources.iter().find(|resource| resource["kind"] == "service-binding"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            (binding["service"].as_str(), binding["readiness"].as_str()),
            (Some("callee"), Some("ready")),
            "{shown}"
        );
        let env: Vec<&str> = binding["env"]
            .as_array()
            .map(|env| env.iter().filter_map(|name| name.as_str()).collect())
            .unwrap_or_default();
        assert_eq!(env, ["API_URL", "API_TOKEN"], "{shown}");
        let calls = binding["usage"]
            .as_array()
            .and_then(|usage| usage.iter().find(|meter| meter["meter"] == "service_binding_calls"))
            .and_then(|meter| meter["quantity"].as_f64())
            .unwrap_or(0.0);
        if calls >= 1.0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no call counted: {shown}");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

#[test]
fn on_the_host_network_a_binding_reaches_the_internal_listener_and_status_says_what_that_lacks() {
    let platform = Platform::start_with(&["--share-host-network"]);
    let callee_token = platform.create_app("callee");
    let front_token = platform.create_app("front");
    assert_eq!(deploy(&platform, "callee", &callee_token, CALLEE, &[])["state"], "running");
    assert_eq!(deploy(&platform, "front", &front_token, CALLER, &[("API", "callee")])["state"], "running");
    let (_, url) = platform.get_app("front", "/url");
    assert!(url.starts_with("200 http://callee.internal:"), "the URL names the internal listener's port: {url}");
    let (_, answer) = platform.get_app("front", "/call/url");
    assert_eq!(answer, "200 caller=front no-token path=/whoami");
    let (_, bare) = platform.get_app("front", "/bare");
    assert!(bare.starts_with("401 "), "{bare}");
    let status = platform.tovuk().args(["status", "--json"]).run().success().json();
    let notes = status["limits"]["notes"].to_string();
    assert!(notes.contains("service-binding calls") && notes.contains("token alone"), "{status}");
}
