//! Readiness and the manifest apply: a route that declares auth blocks the deploy until the
//! app's config says how the router verifies callers, with blockers naming the variable, the
//! route and the command; `tovuk preflight` lists the same blockers from a workstation, one
//! round at a time; every deploy reports what applying its contract did (resources,
//! bindings, routes, readiness) through both entrances.

use crate::support::*;
use serde_json::Value;

const PORTAL: &str = "[app]\nname = \"portal\"\nkind = \"web\"\ncapabilities = [\"http\"]\n\n[run]\ncommand = \"perl server.pl\"\n\n[health]\npath = \"/\"\n\n[[routes]]\npath = \"/\"\nauth = \"none\"\n\n[[routes]]\npath = \"/admin\"\nauth = \"session\"\n";

fn preflight(platform: &Platform, dir: &std::path::Path) -> (i32, Value) {
    let run = platform.tovuk().args(["preflight", "portal", "--json", "--dir"]).arg(dir).run();
    let code = run.code;
    (code, run.json())
}

#[test]
fn a_route_with_auth_blocks_the_deploy_until_preflight_says_its_config_is_complete() {
    let platform = Platform::start();
    let token = platform.create_app("portal");
    let files = [("tovuk.toml", PORTAL), ("server.pl", &perl_app("v1", "200 OK"))];
    let deploy_id = platform.push_files("portal", &token, &files);
    let failed = platform.wait_for_state(&deploy_id, "failed");
    assert_eq!(failed["failure"]["reason"], "auth_not_ready", "{failed}");
    let line = failed["failure"]["first_actionable_line"].as_str().unwrap_or_default();
    assert!(
        line.contains("TOVUK_AUTH_MODE")
            && line.contains("/admin")
            && line.contains("tovuk env set portal TOVUK_AUTH_MODE=oidc"),
        "{line}"
    );
    let blocker = &failed["failure"]["blockers"][0];
    for (field, value) in [
        ("kind", "auth"),
        ("capability", "edge-auth"),
        ("name", "TOVUK_AUTH_MODE"),
        ("route", "/admin"),
        ("expected", "oidc or jwt"),
        ("observed", "not set"),
        ("check", "auth_mode"),
        ("next", "tovuk env set portal TOVUK_AUTH_MODE=oidc"),
    ] {
        assert_eq!(blocker[field], value, "{field}: {blocker}");
    }

    // From a workstation: the same blockers, then the next round once each is set.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("tovuk.toml"), PORTAL).expect("write");
    let values = [
        ("TOVUK_AUTH_MODE", "oidc"),
        ("TOVUK_AUTH_ISSUER", "http://localhost:9"),
        ("TOVUK_AUTH_CLIENT_ID", "portal-web"),
    ];
    let mut set = Vec::new();
    loop {
        let (code, shown) = preflight(&platform, dir.path());
        let blockers = shown["blockers"].as_array().cloned().unwrap_or_default();
        let auth: Vec<&Value> = blockers.iter().filter(|blocker| blocker["kind"] == "auth").collect();
        let Some(first) = auth.first() else {
            assert_eq!((code, shown["readiness"].as_str()), (0, Some("ready")), "{shown}");
            break;
        };
        assert_eq!((code, shown["readiness"].as_str()), (1, Some("blocked")), "{shown}");
        let name = first["name"].as_str().expect("a name").to_owned();
        let next = first["next"].as_str().expect("a command");
        assert!(next.starts_with(&format!("tovuk env set portal {name}=")), "{next}");
        let value = values.iter().find(|(known, _)| *known == name).map(|(_, value)| *value).expect("a known name");
        platform.tovuk().args(["env", "set", "portal", &format!("{name}={value}")]).run().success();
        set.push(name);
        assert!(set.len() <= values.len(), "preflight keeps asking: {set:?}");
    }
    assert_eq!(set, ["TOVUK_AUTH_MODE", "TOVUK_AUTH_ISSUER", "TOVUK_AUTH_CLIENT_ID"]);

    // The blocked deploy's apply report says so, route by route.
    let shown = platform.tovuk().args(["deploy", "show", &deploy_id, "--json"]).run().success().json();
    assert_eq!(shown["apply"]["readiness"], "blocked", "{shown}");
    let routes = serde_json::json!([
        {"path": "/", "auth": "none", "status": "blocked"},
        {"path": "/admin", "auth": "session", "status": "blocked"},
    ]);
    assert_eq!(shown["apply"]["routes"], routes, "{shown}");
}

#[test]
fn a_deploy_applies_its_manifest_and_reports_resources_bindings_routes_and_readiness() {
    let platform = Platform::start();
    let token = platform.create_app("ledger");
    let manifest = web_manifest("ledger")
        .replace("capabilities = [\"http\"]", "capabilities = [\"http\", \"sqlite\", \"service-bindings\"]")
        + "\n[[routes]]\npath = \"/\"\n\n[[resources]]\nkind = \"sqlite\"\nbinding = \"DB\"\n\n[[bindings]]\nbinding = \"SELF\"\nservice = \"ledger\"\n";
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("tovuk.toml"), &manifest).expect("write");
    std::fs::write(dir.path().join("server"), "#!/bin/sh\n").expect("write");
    // The upload entrance, with the lifecycle document's flag.
    let answer = platform
        .tovuk()
        .args(["deploy", "--app", "ledger", "--apply-manifest", "--json"])
        .arg(dir.path())
        .run()
        .success()
        .json();
    let apply = &answer["deploy"]["apply"];
    assert_eq!(apply["readiness"], "ready", "{answer}");
    assert_eq!(
        apply["addons"],
        serde_json::json!([{"kind": "sqlite", "binding": "DB", "status": "pending"}]),
        "{answer}"
    );
    assert_eq!(apply["bindings"][0]["status"], "ready", "an app may call itself: {answer}");
    assert_eq!(apply["routes"], serde_json::json!([{"path": "/", "auth": "none", "status": "pending"}]), "{answer}");
    let first = answer["deploy"]["id"].as_str().expect("an id").to_owned();
    platform.wait_for_deploy(&first, "ended", |deploy| deploy["state"] == "running" || deploy["state"] == "failed");
    let shown = platform.tovuk().args(["deploy", "show", &first, "--json"]).run().success().json();
    assert_eq!(shown["apply"]["addons"][0]["status"], "created", "{shown}");

    // The git entrance: the same report, in the push's output; the database exists already.
    let repo = GitRepo::with_files(&[("tovuk.toml", &manifest), ("server", "#!/bin/sh\n")]);
    let push = repo.push(&platform.remote("ledger", &token), &["main"]);
    assert!(push.output.contains("resources: sqlite DB (existing)"), "{}", push.output);
    assert!(push.output.contains("routes: / auth=none (pending)"), "{}", push.output);
    assert!(push.output.contains("readiness: ready"), "{}", push.output);
}
