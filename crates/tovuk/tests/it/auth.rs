//! Every route but the status ones needs a token; deploy tokens act on their own app only.

use crate::support::{GitRepo, Platform, bearer, http};

const PROTECTED: &[(&str, &str)] = &[
    ("GET", "/v1/apps"),
    ("POST", "/v1/apps"),
    ("GET", "/v1/apps/anything"),
    ("GET", "/v1/tokens"),
    ("POST", "/v1/tokens"),
    ("DELETE", "/v1/tokens/tok_x"),
    ("GET", "/v1/no-such-route"),
    ("GET", "/v1/apps/anything/deploys"),
    ("POST", "/v1/apps/anything/deploys"),
    ("GET", "/v1/deploys/dep_x"),
    ("POST", "/v1/deploys/dep_x/cancel"),
    ("GET", "/v1/operations/op_x"),
    ("GET", "/v1/apps/anything/source"),
    ("POST", "/internal/v1/git/hooks/pre-receive"),
    ("POST", "/git-hooks/v1/pre-receive"),
    ("POST", "/internal/v1/releases/claim"),
    ("GET", "/internal/v1/routes"),
];

#[test]
fn every_other_route_refuses_a_missing_malformed_or_unknown_token() {
    let platform = Platform::start();
    let addr = platform.api_addr();
    for (method, path) in PROTECTED {
        for headers in [
            vec![],
            vec![("Authorization", "Bearer tovuk_0000000000000000000000000000000000000000000000000000000000000000")],
            vec![("Authorization", "Basic dXNlcjpwYXNz")],
            vec![("Authorization", "Bearer ")],
        ] {
            let (status, body) = http(&addr, method, path, &headers, if *method == "POST" { "{}" } else { "" });
            assert_eq!(status, 401, "{method} {path} {headers:?}: {body}");
            let body: serde_json::Value = serde_json::from_str(&body).expect("json error body");
            assert_eq!(body["error"]["code"], "unauthorized");
            assert!(body["error"]["next"].is_string());
        }
    }
}

#[test]
fn git_urls_refuse_strangers_with_a_basic_auth_challenge() {
    let platform = Platform::start();
    platform.tovuk().args(["app", "create", "hello"]).run().success();
    let (status, body) = http(&platform.api_addr(), "GET", "/git/hello.git/info/refs?service=git-upload-pack", &[], "");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("token"), "{body}");
    for path in [
        "/git/../state.db",
        "/git/%2e%2e/hello.git/info/refs",
        "/git/hello.git/../../admin.token",
        "/git/hello.git/HEAD",
    ] {
        let (status, body) = http(&platform.api_addr(), "GET", path, &[], "");
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains("tovuk_"), "{path} leaked a token");
    }
}

#[test]
fn a_revoked_token_is_refused() {
    let platform = Platform::start();
    let created = platform.tovuk().args(["token", "create", "--name", "short-lived", "--json"]).run().success().json();
    let secret = created["secret"].as_str().expect("secret");
    platform.tovuk_with_token(secret).args(["app", "list"]).run().success();
    platform.tovuk().args(["token", "revoke", created["id"].as_str().expect("id")]).run().success();
    let run = platform.tovuk_with_token(secret).args(["app", "list", "--json"]).run().code(1);
    assert_eq!(run.json()["error"]["code"], "unauthorized");
}

#[test]
fn a_deploy_token_acts_on_its_own_app_only() {
    let platform = Platform::start();
    let one = platform.tovuk().args(["app", "create", "one", "--json"]).run().success().json();
    platform.tovuk().args(["app", "create", "two"]).run().success();
    let deploy = one["deploy_token"]["secret"].as_str().expect("secret").to_owned();

    let shown = platform.tovuk_with_token(&deploy).args(["app", "show", "one", "--json"]).run().success().json();
    assert_eq!(shown["name"], "one");
    let listed = platform.tovuk_with_token(&deploy).args(["app", "list", "--json"]).run().success().json();
    assert_eq!(listed["apps"].as_array().expect("apps").len(), 1, "{listed}");

    // Another app, whether or not it exists, is 403 and names the token's own app.
    for other in ["two", "does-not-exist"] {
        let run = platform.tovuk_with_token(&deploy).args(["app", "show", other, "--json"]).run().code(1);
        let error = &run.json()["error"];
        assert_eq!(error["code"], "forbidden", "{other}");
        assert!(error["message"].as_str().expect("message").contains("`one`"));
        let (status, _) =
            http(&platform.api_addr(), "GET", &format!("/v1/apps/{other}"), &[("Authorization", &bearer(&deploy))], "");
        assert_eq!(status, 403);
    }
    // Platform-wide actions need an admin token.
    for args in [vec!["app", "create", "three"], vec!["token", "list"], vec!["token", "create"]] {
        let run = platform.tovuk_with_token(&deploy).args(&args).arg("--json").run().code(1);
        assert_eq!(run.json()["error"]["code"], "forbidden", "{args:?}");
    }
    let apps = platform.tovuk().args(["app", "list", "--json"]).run().success().json();
    assert_eq!(apps["apps"].as_array().expect("apps").len(), 2, "nothing was created by refused calls");
}

#[test]
fn tokens_are_listed_as_metadata_and_stored_hashed() {
    let platform = Platform::start();
    let created = platform.tovuk().args(["token", "create", "--name", "ci", "--json"]).run().success().json();
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert_eq!(created["scope"], "admin");
    let human = platform.tovuk().args(["token", "create", "--app", "nope"]).run().code(1);
    assert!(human.stderr.contains("nope"), "{}", human.stderr);

    let list = platform.tovuk().args(["token", "list", "--json"]).run().success();
    assert!(!list.stdout.contains(&secret), "a secret leaked into token list");
    let list = list.json();
    let names: Vec<&str> =
        list["tokens"].as_array().expect("tokens").iter().map(|t| t["name"].as_str().expect("name")).collect();
    assert!(names.contains(&"ci"), "{names:?}");

    let store = std::fs::read(platform.data_dir().join("state.db")).expect("state.db");
    let wal = std::fs::read(platform.data_dir().join("state.db-wal")).unwrap_or_default();
    for bytes in [store, wal] {
        assert!(!bytes.windows(secret.len()).any(|window| window == secret.as_bytes()), "secret stored in clear");
    }
}

#[test]
fn a_burst_of_bad_tokens_from_one_address_is_throttled_and_logged_with_it() {
    let platform = Platform::start();
    let addr = platform.api_addr();
    let mut refused = None;
    for attempt in 0..40 {
        let (code, body) =
            http(&addr, "GET", "/v1/apps", &[("Authorization", &bearer(&format!("tovuk_guess{attempt}")))], "");
        if code == 429 {
            refused = Some((attempt, body));
            break;
        }
        assert_eq!(code, 401, "{body}");
    }
    let (attempt, body) = refused.expect("40 bad tokens in a row were never throttled");
    assert_eq!(attempt, 30, "throttled after {attempt} failures");
    assert!(body.contains("too_many_attempts") && body.contains("127.0.0.1"), "{body}");
    // The refusal comes before the token is looked at: a right guess is not told apart.
    let (code, _) = http(&addr, "GET", "/v1/apps", &[("Authorization", &bearer(&platform.admin_token()))], "");
    assert_eq!(code, 429);
    // Git pushes and fetches go through the same throttle.
    let repo = GitRepo::with_files(&[("a", "b")]);
    let push = repo.push(&platform.remote("any", "tovuk_wrong"), &["main"]);
    assert!(!push.ok, "{}", push.output);
    let log = platform.log();
    assert!(log.contains("authentication failed") && log.contains("client=127.0.0.1"), "{log}");
    assert!(log.contains("too many failed attempts"), "{log}");
}
