//! Source inspection and deploy management on a real repository.

use crate::support::{GitRepo, Platform, build_manifest, deploy_ids, git, web_manifest};

#[test]
fn every_source_inspection_command_answers_on_a_real_repository() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let empty = platform.tovuk().args(["source", "show", "hello", "--json"]).run().success().json();
    assert_eq!(empty["head"], serde_json::Value::Null);

    let repo = GitRepo::with_files(&[("tovuk.toml", &web_manifest("hello"))]);
    let first = repo.head();
    let second = repo.commit(&[("a.txt", "a\n")], "add a");
    git(repo.path(), &["tag", "v1"]);
    git(repo.path(), &["remote", "add", "tovuk", &platform.remote("hello", &token)]);
    let push = repo.push("tovuk", &["main", "--tags"]);
    assert!(push.ok, "{}", push.output);
    assert!(repo.push("tovuk", &["main:feature"]).ok);

    let show = platform.tovuk().args(["source", "show", "hello", "--json"]).run().success().json();
    assert_eq!(show["head"]["sha"], second);
    assert_eq!(show["head"]["subject"], "add a");
    assert_eq!((show["branch_count"].as_u64(), show["tag_count"].as_u64()), (Some(2), Some(1)));
    assert_eq!(show["last_deploy"]["id"].as_str(), deploy_ids(&push.output).first().map(String::as_str));
    let human = platform.tovuk().args(["source", "show", "hello"]).run().success();
    assert!(human.stdout.contains("add a"), "{}", human.stdout);

    for (input, expected_ref, sha) in [
        ("main", Some("refs/heads/main"), &second),
        ("refs/heads/main", Some("refs/heads/main"), &second),
        ("v1", Some("refs/tags/v1"), &second),
        (&first[..10], None, &first),
    ] {
        let resolved =
            platform.tovuk().args(["source", "resolve-ref", "hello", input, "--json"]).run().success().json();
        assert_eq!(resolved["sha"], sha.as_str(), "{input}");
        assert_eq!(resolved["ref"].as_str(), expected_ref, "{input}");
    }
    for bad in ["nope", "--upload-pack=evil", "main..feature", "HEAD@{0}"] {
        let run = platform.tovuk().args(["source", "resolve-ref", "hello", "--json", "--", bad]).run().code(1);
        assert_eq!(run.json()["error"]["code"], "ref_not_found", "{bad}");
    }

    let commits = platform.tovuk().args(["source", "commits", "hello", "--json"]).run().success().json();
    let shas: Vec<&str> =
        commits["commits"].as_array().expect("commits").iter().map(|c| c["sha"].as_str().expect("sha")).collect();
    assert_eq!(shas, [second.as_str(), first.as_str()]);
    let limited = platform
        .tovuk()
        .args(["source", "commits", "hello", "--limit", "1", "--ref", "v1", "--json"])
        .run()
        .success()
        .json();
    assert_eq!(limited["commits"].as_array().expect("commits").len(), 1);

    let remote = platform.tovuk().args(["source", "remote", "hello", "--json"]).run().success().json();
    assert_eq!(remote["url"], format!("{}/git/hello.git", platform.api_url));
    assert!(remote["push_command"].as_str().expect("command").contains("git push tovuk main"));

    let refs = platform.tovuk().args(["source", "refs", "hello", "--json"]).run().success().json();
    let names: Vec<&str> =
        refs["refs"].as_array().expect("refs").iter().map(|r| r["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["refs/heads/feature", "refs/heads/main", "refs/tags/v1"]);
    let human = platform.tovuk().args(["source", "refs", "hello"]).run().success();
    assert!(human.stdout.contains("refs/tags/v1"), "{}", human.stdout);
}

#[test]
fn a_queued_deploy_is_cancelled_at_once_and_only_once() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    // A slow build holds the app (one build per app at a time), so the next deploy waits queued.
    let busy =
        platform.push_files("hello", &token, &[("tovuk.toml", &build_manifest("hello", "build = \"sleep 600\""))]);
    platform.wait_for_state(&busy, "building");
    let repo = GitRepo::with_files(&[("tovuk.toml", &web_manifest("hello")), ("v", "2")]);
    let push = repo.push(&platform.remote("hello", &token), &["--force", "main"]);
    let id = deploy_ids(&push.output).pop().expect("deploy id");
    assert_eq!(platform.deploy(&id)["state"], "queued");

    let cancelled = platform.tovuk().args(["deploy", "cancel", &id, "--json"]).run().success().json();
    assert_eq!(cancelled["state"], "cancelled");
    let states: Vec<&str> = cancelled["state_changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["queued", "cancelled"]);
    let again = platform.tovuk().args(["deploy", "cancel", &id, "--json"]).run().code(1).json();
    assert_eq!(again["error"]["code"], "invalid_state");
    assert!(again["error"]["message"].as_str().expect("message").contains("already cancelled"));
    let ops = platform.tovuk().args(["ops", "list", "hello", "--json"]).run().success().json();
    let statuses: Vec<&str> = ops["operations"]
        .as_array()
        .expect("ops")
        .iter()
        .take(3)
        .map(|o| o["status"].as_str().expect("status"))
        .collect();
    assert_eq!(statuses, ["accepted", "cancelled", "cancelled"], "the newest source's operations");
    platform.tovuk().args(["deploy", "cancel", &busy]).run().success();

    let missing = platform.tovuk().args(["deploy", "show", "dep_nope", "--json"]).run().code(1).json();
    assert_eq!(missing["error"]["code"], "deploy_not_found");
    let other = platform.create_app("other");
    let run = platform.tovuk_with_token(&other).args(["deploy", "cancel", &id, "--json"]).run().code(1).json();
    assert_eq!(run["error"]["code"], "forbidden");
}
