//! `tovuk server`: first start, status, restarts, signals and refusals to start.

use crate::support::{Platform, UserEnv, http, start_failure};
use std::os::unix::fs::PermissionsExt;

#[test]
fn first_start_creates_the_data_dir_store_and_a_private_admin_token() {
    let platform = Platform::start();
    let root = platform.data_dir();
    assert!(root.join("state.db").is_file());
    let mode = std::fs::metadata(root.join("admin.token")).expect("admin.token").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "admin.token mode is {mode:o}");
    assert!(platform.admin_token().starts_with("tovuk_"));
    let log = platform.log();
    assert!(log.contains("role=\"api\"") || log.contains("role=api"), "{log}");
    assert!(log.contains("role=\"router\"") || log.contains("role=router"), "{log}");
    let mode = std::fs::metadata(&root).expect("data dir").permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "data dir mode is {mode:o}");
    let mode = std::fs::metadata(root.join("state.db")).expect("state.db").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "state.db mode is {mode:o}");
}

#[test]
fn health_endpoints_answer_ok_without_a_token() {
    let platform = Platform::start();
    for path in ["/health", "/healthz"] {
        let (status, body) = http(&platform.api_addr(), "GET", path, &[], "");
        assert_eq!((status, body.as_str()), (200, "ok"), "{path}");
    }
    let (status, body) = http(&platform.api_addr(), "GET", "/v1/status", &[], "");
    assert_eq!(status, 200);
    let status: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(status["status"], "ok");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["store"]["ok"], true);
    let roles: Vec<&str> =
        status["roles"].as_array().expect("roles").iter().map(|r| r["state"].as_str().expect("state")).collect();
    assert!(roles.len() >= 2 && roles.iter().all(|state| *state == "running"), "{status}");
}

#[test]
fn status_command_prints_the_platform_state() {
    let platform = Platform::start();
    let run = platform.user.tovuk().env("TOVUK_URL", &platform.api_url).args(["status"]).run().success();
    assert!(run.stdout.contains(": ok"), "{}", run.stdout);
    assert!(run.stdout.contains("router"), "{}", run.stdout);
    let json = platform.tovuk().args(["status", "--json"]).run().success().json();
    assert_eq!(json["store"]["kind"], "sqlite");
    assert!(json["uptime_seconds"].is_u64());
}

#[test]
fn status_names_the_url_when_the_platform_cannot_be_reached() {
    let user = UserEnv::new();
    // A port nothing listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let url = format!("http://127.0.0.1:{port}");
    let run = user.tovuk().env("TOVUK_URL", &url).args(["status"]).run().code(2);
    assert!(run.stderr.contains(&url), "{}", run.stderr);
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
    let json = user.tovuk().env("TOVUK_URL", &url).args(["status", "--json"]).run().code(2).json();
    assert_eq!(json["error"]["code"], "unreachable");
}

#[test]
fn sigterm_and_sigint_stop_the_server_cleanly_and_data_survives_a_restart() {
    let platform = Platform::start();
    platform.tovuk().args(["app", "create", "keeper"]).run().success();
    let data_root = platform.stop();
    assert!(!data_root.path().join("data/server.json").exists(), "server.json removed on clean stop");

    let mut platform = Platform::start_in(data_root);
    let json = platform.tovuk().args(["app", "show", "keeper", "--json"]).run().success().json();
    assert_eq!(json["name"], "keeper");
    assert_eq!(platform.stop_with("INT"), 0, "{}", platform.log());
    assert!(platform.log().contains("shutdown complete"), "{}", platform.log());
}

#[test]
fn a_data_dir_that_cannot_be_written_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").expect("file");
    let (code, stderr) =
        start_failure(&["--listen", "127.0.0.1:0", "--router-listen", "127.0.0.1:0"], &file.join("data"));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("data dir") && stderr.contains("--data-dir"), "{stderr}");
}

#[test]
fn a_port_already_in_use_is_refused_naming_the_role_and_flag() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = holder.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, stderr) = start_failure(&["--listen", &taken, "--router-listen", "127.0.0.1:0"], dir.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(&taken) && stderr.contains("--listen") && stderr.contains("api"), "{stderr}");
    let (code, stderr) = start_failure(&["--listen", "127.0.0.1:0", "--router-listen", &taken], dir.path());
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("--router-listen") && stderr.contains("router"), "{stderr}");
}

#[test]
fn a_foreign_or_corrupted_state_db_is_refused_and_left_as_it_was() {
    for contents in [b"not a database at all, just text\n".to_vec(), {
        let mut fake = b"SQLite format 3\0".to_vec();
        fake.extend(std::iter::repeat_n(0xA5u8, 8192));
        fake
    }] {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state.db");
        std::fs::write(&state, &contents).expect("write");
        let (code, stderr) = start_failure(&["--listen", "127.0.0.1:0", "--router-listen", "127.0.0.1:0"], dir.path());
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.contains("state.db") && stderr.contains("left as it was"), "{stderr}");
        assert_eq!(std::fs::read(&state).expect("read"), contents);
    }
}

#[test]
fn the_removed_keep_artifacts_flag_names_what_replaced_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, stderr) = start_failure(&["--keep-artifacts", "5"], &dir.path().join("data"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("[retention]") && stderr.contains("--config"), "{stderr}");
    assert!(!dir.path().join("data").exists(), "nothing was started");
}

#[test]
fn the_server_runs_with_few_malloc_arenas() {
    let platform = Platform::start();
    let pid = platform.child.as_ref().map(std::process::Child::id).expect("the server's pid");
    // The server started itself again, in the same process, with the limit set.
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    let environ = String::from_utf8_lossy(&environ);
    assert!(environ.split('\0').any(|entry| entry == "MALLOC_ARENA_MAX=2"), "{environ}");
    assert!(platform.api_url.starts_with("http://127.0.0.1:"), "and it serves as usual");
}
