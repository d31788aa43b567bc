//! `tovuk rollback`: an earlier deploy's artifact released again without a build, health-gated,
//! with the config revision it ran with (or the current one), and refusals that name the fix.

use crate::support::Platform;

const SERVE: &str = "import os\nfrom http.server import BaseHTTPRequestHandler, HTTPServer\nclass H(BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = (open('version').read().strip() + ' ' + os.environ.get('GREETING', '-')).encode()\n        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)\nHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

fn push(platform: &Platform, token: &str, version: &str) -> String {
    let manifest = "[app]\nname = \"back\"\nkind = \"web\"\ncapabilities = [\"http\"]\n\n[run]\ncommand = \"python3 serve.py\"\n\n[health]\npath = \"/\"\n";
    let id = platform.push_files("back", token, &[("tovuk.toml", manifest), ("serve.py", SERVE), ("version", version)]);
    platform.wait_for_state(&id, "running");
    id
}

fn set_greeting(platform: &Platform, greeting: &str) {
    let changed =
        platform.tovuk().args(["env", "set", "back", &format!("GREETING={greeting}"), "--json"]).run().success().json();
    platform.wait_for_state(changed["release"]["id"].as_str().expect("a config release"), "running");
}

fn served(platform: &Platform) -> String {
    let (status, body) = platform.get_app("back", "/");
    assert_eq!(status, 200, "{body}");
    body
}

fn rollback(platform: &Platform, args: &[&str]) -> serde_json::Value {
    let result = platform.tovuk().arg("rollback").arg("back").args(args).arg("--json").run().success().json();
    let id = result["deploy"]["id"].as_str().expect("a rollback deploy").to_owned();
    assert_eq!(result["deploy"]["kind"], "rollback", "{result}");
    platform.wait_for_state(&id, "running");
    result
}

#[test]
fn a_rollback_brings_back_an_earlier_artifact_with_the_config_it_ran_with() {
    let platform = Platform::start();
    let token = platform.create_app("back");
    // Nothing to roll back from, or to, yet.
    let refused = platform.tovuk().args(["rollback", "back"]).run();
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("no running deploy"), "{}", refused.stderr);
    let v1 = push(&platform, &token, "v1");
    let refused = platform.tovuk().args(["rollback", "back"]).run();
    assert!(refused.stderr.contains("no earlier deploy"), "{}", refused.stderr);

    set_greeting(&platform, "one");
    let v2 = push(&platform, &token, "v2");
    set_greeting(&platform, "two");
    assert_eq!(served(&platform), "v2 two");
    let builds_before = platform.tovuk().args(["deploy", "list", "back", "--json"]).run().success().json();

    // The deploy before the current one: v2 as pushed, which ran with GREETING=one.
    let result = rollback(&platform, &[]);
    assert_eq!(result["target"], v2.as_str(), "{result}");
    assert_eq!(served(&platform), "v2 one");
    let not_reverted = result["not_reverted"].to_string();
    assert!(not_reverted.contains("resource data") && not_reverted.contains("migrations"), "{result}");

    // A named deploy, with the config it ran with (none), then with the current config.
    rollback(&platform, &[&v1]);
    assert_eq!(served(&platform), "v1 -");
    rollback(&platform, &[&v1, "--current-config"]);
    assert_eq!(served(&platform), "v1 two");

    // No build ran: every rollback reuses its target's artifact.
    let deploys = platform.tovuk().args(["deploy", "list", "back", "--json"]).run().success().json();
    let count = |list: &serde_json::Value, kind: &str| {
        list["deploys"].as_array().into_iter().flatten().filter(|deploy| deploy["kind"] == kind).count()
    };
    assert_eq!(count(&deploys, "source"), count(&builds_before, "source"));
    assert_eq!(count(&deploys, "rollback"), 3);

    // What cannot be rolled back to is refused, naming where to look.
    for bad in ["dep_nope", "dep_01aaaaaaaaaaaaaaaaaaaaaaaa"] {
        let refused = platform.tovuk().args(["rollback", "back", bad]).run();
        assert_ne!(refused.code, 0, "{bad}");
        assert!(refused.stderr.contains("tovuk deploy list back"), "{}", refused.stderr);
    }
    assert_eq!(served(&platform), "v1 two", "a refused rollback changes nothing");

    // Seven releases ran; the unpacked copies are pruned to the newest three (and what serves).
    let releases = platform.data_dir().join("releases/back");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let count = std::fs::read_dir(&releases).map(|entries| entries.count()).unwrap_or(0);
        if count <= 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{count} release dirs kept");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The archives in the platform's artifacts directory, once they are exactly those of `ids`
/// (collection runs in the background after a deploy goes live).
fn wait_for_artifacts(platform: &Platform, ids: &[&str]) {
    let mut wanted: Vec<String> = ids
        .iter()
        .map(|id| {
            let digest = platform.deploy(id)["artifact"]["digest"].as_str().expect("a digest").to_owned();
            format!("{}.tar.zst", digest.trim_start_matches("sha256:"))
        })
        .collect();
    wanted.sort();
    wanted.dedup();
    let dir = platform.data_dir().join("artifacts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let mut archives: Vec<String> = std::fs::read_dir(&dir)
            .expect("the artifacts directory")
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| name.ends_with(".tar.zst"))
            .collect();
        archives.sort();
        if archives == wanted {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "kept {archives:?}, wanted {wanted:?} (of {ids:?})");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn artifacts_are_kept_for_the_current_deploy_and_the_configured_rollback_targets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("server.toml");
    // A number that keeps nothing stops the start, naming the fix.
    std::fs::write(&config, "[retention]\nreleases = 0\n").expect("config");
    let data = tempfile::tempdir().expect("data");
    let (code, stderr) = crate::support::start_failure(&["--config", &config.display().to_string()], data.path());
    assert_ne!(code, 0);
    assert!(stderr.contains("[retention] releases must be a whole number of 1 or more"), "{stderr}");
    std::fs::write(&config, "[retention]\nreleases = 2\n").expect("config");
    let platform = Platform::start_with(&["--config", &config.display().to_string()]);
    let token = platform.create_app("back");
    let v1 = push(&platform, &token, "v1");
    let v2 = push(&platform, &token, "v2");
    let v3 = push(&platform, &token, "v3");
    let v4 = push(&platform, &token, "v4");
    // The current deploy, and the two newest that served before it: v1's artifact is gone.
    wait_for_artifacts(&platform, &[&v4, &v3, &v2]);

    // A rollback to it is refused saying why and what to do instead, and changes nothing.
    let refused = platform.tovuk().args(["rollback", "back", &v1]).run();
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("its artifact was removed"), "{}", refused.stderr);
    assert!(refused.stderr.contains("[retention] releases"), "{}", refused.stderr);
    assert!(refused.stderr.contains(&format!("{v3}, {v2}")), "names the kept ones: {}", refused.stderr);
    assert!(refused.stderr.contains(&format!("tovuk deploy retry {v1}")), "{}", refused.stderr);
    assert_eq!(served(&platform), "v4 -");
    let deploys = platform.tovuk().args(["deploy", "list", "back", "--json"]).run().success().json();
    let rollbacks = deploys["deploys"].as_array().into_iter().flatten().filter(|deploy| deploy["kind"] == "rollback");
    assert_eq!(rollbacks.count(), 0, "no rollback deploy was made: {deploys}");

    // The newest kept one comes back; it shares v3's artifact, and v2 falls out of the two kept.
    let result = rollback(&platform, &[&v3]);
    assert_eq!(result["target"], v3.as_str(), "{result}");
    assert_eq!(served(&platform), "v3 -");
    wait_for_artifacts(&platform, &[&v4, &v3]);
    let refused = platform.tovuk().args(["rollback", "back", &v2]).run();
    assert!(refused.stderr.contains("its artifact was removed"), "{}", refused.stderr);
    // By default, the deploy that served before the current one: v4.
    let result = rollback(&platform, &[]);
    assert_eq!(result["target"], v4.as_str(), "{result}");
    assert_eq!(served(&platform), "v4 -");
}
