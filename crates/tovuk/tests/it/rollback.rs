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
