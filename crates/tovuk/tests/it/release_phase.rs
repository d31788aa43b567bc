//! `[release] command`: run once per release, before any instance of it starts, with the
//! app's config and resources; a failure or a timeout fails the deploy and the previous
//! release keeps serving.

use crate::support::Platform;
use std::time::{Duration, Instant};

const MIGRATE: &str = "import os, sqlite3\ndb = sqlite3.connect(os.environ['DB'])\ndb.execute('CREATE TABLE IF NOT EXISTS releases (deploy TEXT, greeting TEXT)')\ndb.execute('INSERT INTO releases VALUES (?, ?)', (os.environ['TOVUK_DEPLOY_ID'], os.environ.get('GREETING', '')))\ndb.commit()\nprint('migrated', os.environ['TOVUK_DEPLOY_ID'])\n";

const SERVE: &str = "import json, os, sqlite3\nfrom http.server import BaseHTTPRequestHandler, HTTPServer\nclass H(BaseHTTPRequestHandler):\n    def do_GET(self):\n        rows = sqlite3.connect(os.environ['DB']).execute('SELECT deploy FROM releases').fetchall()\n        body = json.dumps({'version': open('version').read().strip(), 'releases': [r[0] for r in rows]}).encode()\n        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)\nHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

fn manifest(release: &str) -> String {
    format!(
        "[app]\nname = \"migrating\"\nkind = \"web\"\ncapabilities = [\"http\", \"sqlite\"]\n\n[run]\ncommand = \"python3 serve.py\"\n\n[release]\n{release}\n\n[health]\npath = \"/\"\n\n[[resources]]\nkind = \"sqlite\"\nbinding = \"DB\"\n"
    )
}

fn push(platform: &Platform, token: &str, release: &str, version: &str) -> String {
    let manifest = manifest(release);
    platform.push_files(
        "migrating",
        token,
        &[("tovuk.toml", &manifest), ("migrate.py", MIGRATE), ("serve.py", SERVE), ("version", version)],
    )
}

fn served(platform: &Platform) -> serde_json::Value {
    let (status, body) = platform.get_app("migrating", "/");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("json")
}

fn wait_failed(platform: &Platform, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let deploy = platform.tovuk().args(["deploy", "show", id, "--json"]).run().success().json();
        if deploy["state"] == "failed" {
            return deploy;
        }
        assert!(deploy["state"] != "running", "{deploy}");
        assert!(Instant::now() < deadline, "{deploy}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_release_command_migrates_once_per_release_and_a_failure_or_timeout_keeps_the_old_one() {
    let platform = Platform::start();
    let token = platform.create_app("migrating");
    let release = "command = \"python3 migrate.py\"";
    let v1 = push(&platform, &token, release, "v1");
    platform.wait_for_state(&v1, "running");
    assert_eq!(served(&platform)["releases"], serde_json::json!([v1]), "it ran before the app started");

    let v2 = push(&platform, &token, release, "v2");
    platform.wait_for_state(&v2, "running");
    assert_eq!(served(&platform)["releases"], serde_json::json!([v1, v2]), "once per deploy; the data stays");

    // A config release is a release too: it runs with the new config.
    let changed = platform.tovuk().args(["env", "set", "migrating", "GREETING=hi", "--json"]).run().success().json();
    let config = changed["release"]["id"].as_str().expect("a config release").to_owned();
    platform.wait_for_state(&config, "running");
    let rows = platform
        .tovuk()
        .args(["sqlite", "query", "migrating", "DB", "SELECT deploy, greeting FROM releases", "--json"])
        .run()
        .success()
        .json();
    assert_eq!(rows["rows"][2], serde_json::json!([config, "hi"]), "{rows}");
    // The release phase's output is in the app's log.
    platform.wait_for_log("migrating", &format!("migrated {v2}"));

    // A failing release command: the deploy fails with its output, nothing of it starts.
    let failing = push(
        &platform,
        &token,
        "command = \"python3 -c 'import sys; print(\\\"no such column\\\"); sys.exit(3)'\"",
        "v3",
    );
    let deploy = wait_failed(&platform, &failing);
    assert_eq!(deploy["failure"]["reason"], "release_failed", "{deploy}");
    assert_eq!(deploy["failure"]["exit_code"], 3, "{deploy}");
    let line = deploy["failure"]["first_actionable_line"].as_str().unwrap_or_default();
    assert!(line.contains("exited with code 3") && line.contains("no such column"), "{line}");
    assert_eq!(served(&platform)["version"], "v2", "the previous release keeps serving");

    // One that outlives its timeout is stopped, and fails the same way.
    let slow = push(&platform, &token, "command = \"sleep 60\"\ntimeout = \"1s\"", "v4");
    let started = Instant::now();
    let deploy = wait_failed(&platform, &slow);
    assert!(started.elapsed() < Duration::from_secs(30), "stopped at its timeout");
    let line = deploy["failure"]["first_actionable_line"].as_str().unwrap_or_default();
    assert!(line.contains("did not finish within 1s"), "{line}");
    assert_eq!(served(&platform)["version"], "v2");
    assert_eq!(served(&platform)["releases"].as_array().map(Vec::len), Some(3), "a failed release recorded nothing");
}
