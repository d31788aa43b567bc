//! `tovuk app create|list|show`.

use crate::support::Platform;

#[test]
fn creating_an_app_answers_its_id_remote_and_a_deploy_token_shown_once() {
    let platform = Platform::start();
    let created = platform.tovuk().args(["app", "create", "my-api", "--json"]).run().success().json();
    let app = &created["app"];
    assert!(app["id"].as_str().expect("id").starts_with("app_"));
    assert_eq!(app["git_remote"], format!("{}/git/my-api.git", platform.api_url));
    assert_eq!(app["deploy_branch"], "main");
    assert_eq!(created["deploy_token"]["scope"], "deploy");
    assert_eq!(created["deploy_token"]["app"], "my-api");
    let secret = created["deploy_token"]["secret"].as_str().expect("secret");

    let shown = platform.tovuk().args(["app", "show", "my-api", "--json"]).run().success();
    assert!(!shown.stdout.contains(secret), "the deploy token is shown once only");
    assert_eq!(shown.json()["id"], app["id"]);
    let by_id =
        platform.tovuk().args(["app", "show", app["id"].as_str().expect("id"), "--json"]).run().success().json();
    assert_eq!(by_id["name"], "my-api");

    let human = platform.tovuk().args(["app", "create", "second"]).run().success();
    assert!(human.stdout.contains("git remote:") && human.stdout.contains("deploy token:"), "{}", human.stdout);
    assert!(human.stderr.contains("git remote add tovuk"), "{}", human.stderr);

    let list = platform.tovuk().args(["app", "list", "--json"]).run().success().json();
    let names: Vec<&str> =
        list["apps"].as_array().expect("apps").iter().map(|a| a["name"].as_str().expect("name")).collect();
    // Seen failing once in a full run and never again: say everything if it does.
    assert_eq!(names, ["my-api", "second"], "{list}\n{}", platform.log());
}

#[test]
fn bad_app_names_are_refused_saying_what_is_allowed() {
    let platform = Platform::start();
    let long = "a".repeat(64);
    for name in ["My-App", "-api", "api-", "my_api", "my.api", "", long.as_str(), "héllo", "a b", "../x"] {
        // `--` so a name starting with `-` reaches the server rather than the flag parser.
        let run = platform.tovuk().args(["--json", "app", "create", "--", name]).run().code(1);
        let error = &run.json()["error"];
        assert_eq!(error["code"], "invalid_name", "{name:?}");
        assert!(error["message"].as_str().expect("message").contains("lowercase letters a-z"), "{name:?}: {error}");
        let human = platform.tovuk().args(["app", "create", "--", name]).run().code(1);
        assert!(human.stderr.contains("error:") && human.stderr.contains("hint:"), "{}", human.stderr);
    }
    let list = platform.tovuk().args(["app", "list", "--json"]).run().success().json();
    assert_eq!(list["apps"].as_array().expect("apps").len(), 0, "nothing was created");
}

#[test]
fn a_duplicate_name_is_a_conflict_and_unknown_apps_are_not_found() {
    let platform = Platform::start();
    platform.tovuk().args(["app", "create", "twice"]).run().success();
    let run = platform.tovuk().args(["app", "create", "twice", "--json"]).run().code(1);
    assert_eq!(run.json()["error"]["code"], "app_exists");
    let run = platform.tovuk().args(["app", "show", "ghost", "--json"]).run().code(1);
    assert_eq!(run.json()["error"]["code"], "app_not_found");
    assert_eq!(run.json()["error"]["next"], "tovuk app list");
}
