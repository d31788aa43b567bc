//! CLI targets: stored per user, chosen by `--target` or `target use`, overridden by env.

use crate::support::{Platform, UserEnv};
use std::os::unix::fs::PermissionsExt;

fn dead_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    format!("http://127.0.0.1:{port}")
}

#[test]
fn a_target_added_from_a_token_file_is_used_by_every_command() {
    let platform = Platform::start();
    let user = UserEnv::new();
    let token_path = user.home.path().join("admin.token");
    std::fs::write(&token_path, format!("{}\n", platform.admin_token())).expect("token file");

    let run = user
        .tovuk()
        .args(["target", "add", "local", "--url", &platform.api_url, "--token-file"])
        .arg(&token_path)
        .run()
        .success();
    assert!(run.stdout.contains("local"), "{}", run.stdout);
    let stored = user.config_dir().join("tokens").join("local.token");
    let mode = std::fs::metadata(&stored).expect("stored token").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    user.tovuk().args(["app", "create", "via-target"]).run().success();
    let list = user.tovuk().args(["target", "list", "--json"]).run().success().json();
    assert_eq!(list["current"], "local");
    assert_eq!(list["targets"][0]["url"], platform.api_url);
    assert_eq!(list["targets"][0]["has_token"], true);
    assert!(!user.tovuk().args(["target", "list", "--json"]).run().stdout.contains(&platform.admin_token()));
}

#[test]
fn xdg_config_home_is_honoured_and_tokens_can_come_from_stdin() {
    let platform = Platform::start();
    let user = UserEnv::new();
    let xdg = user.home.path().join("xdg");
    user.tovuk()
        .env("XDG_CONFIG_HOME", &xdg)
        .args(["target", "add", "piped", "--url", &platform.api_url, "--token-stdin"])
        .stdin(&format!("{}\n", platform.admin_token()))
        .run()
        .success();
    assert!(xdg.join("tovuk").join("config.toml").is_file());
    assert!(xdg.join("tovuk").join("tokens").join("piped.token").is_file());
    user.tovuk().env("XDG_CONFIG_HOME", &xdg).args(["app", "list"]).run().success();
}

#[test]
fn target_use_and_dash_dash_target_pick_the_platform() {
    let platform = Platform::start();
    let user = UserEnv::new();
    let token = platform.admin_token();
    user.tovuk().args(["target", "add", "dead", "--url", &dead_url(), "--token-stdin"]).stdin(&token).run().success();
    user.tovuk()
        .args(["target", "add", "live", "--url", &platform.api_url, "--token-stdin"])
        .stdin(&token)
        .run()
        .success();

    // The first target added is current, and it cannot be reached: exit 2 naming its URL.
    let run = user.tovuk().args(["app", "list"]).run().code(2);
    assert!(run.stderr.contains("cannot reach tovuk at http://127.0.0.1:"), "{}", run.stderr);

    user.tovuk().args(["--target", "live", "app", "list"]).run().success();
    user.tovuk().args(["app", "list", "--target", "live"]).run().success();
    user.tovuk().args(["target", "use", "live"]).run().success();
    user.tovuk().args(["app", "list"]).run().success();

    let run = user.tovuk().args(["--target", "nope", "app", "list"]).run().code(2);
    assert!(run.stderr.contains("no target `nope`") && run.stderr.contains("dead, live"), "{}", run.stderr);
    let run = user.tovuk().args(["target", "use", "nope"]).run().code(2);
    assert!(run.stderr.contains("tovuk target add nope"), "{}", run.stderr);
}

#[test]
fn tovuk_url_and_token_override_the_targets() {
    let platform = Platform::start();
    let user = UserEnv::new();
    user.tovuk()
        .args(["target", "add", "dead", "--url", &dead_url(), "--token-stdin"])
        .stdin("tovuk_wrong")
        .run()
        .success();
    user.tovuk()
        .env("TOVUK_URL", &platform.api_url)
        .env("TOVUK_TOKEN", platform.admin_token())
        .args(["--target", "dead", "app", "create", "from-env"])
        .run()
        .success();
    // Only the token overridden: the URL still comes from the target.
    let run = user.tovuk().env("TOVUK_TOKEN", platform.admin_token()).args(["app", "list"]).run().code(2);
    assert!(run.stderr.contains("cannot reach"), "{}", run.stderr);
    let list =
        user.tovuk().env("TOVUK_URL", &platform.api_url).args(["target", "list", "--json"]).run().success().json();
    assert_eq!(list["env_override"][0], "TOVUK_URL");
}

#[test]
fn bad_target_input_is_refused_and_writes_nothing() {
    let user = UserEnv::new();
    let empty = user.home.path().join("empty.token");
    std::fs::write(&empty, "\n").expect("write");
    let cases: Vec<Vec<String>> = vec![
        vec!["Prod".into(), "--url".into(), "http://x".into(), "--token-stdin".into()],
        vec!["prod".into(), "--url".into(), "ftp://x".into(), "--token-stdin".into()],
        vec!["prod".into(), "--url".into(), "http://".into(), "--token-stdin".into()],
        vec!["prod".into(), "--url".into(), "http://x".into(), "--token-file".into(), empty.display().to_string()],
        vec!["prod".into(), "--url".into(), "http://x".into(), "--token-file".into(), "/nonexistent/token".into()],
    ];
    for args in cases {
        let run = user.tovuk().args(["target", "add"]).args(&args).stdin("tovuk_abc").run().code(2);
        assert!(run.stderr.contains("error:"), "{args:?}: {}", run.stderr);
    }
    // Neither or both token sources: a usage error from the argument parser.
    user.tovuk().args(["target", "add", "prod", "--url", "http://x"]).run().code(2);
    assert!(!user.config_dir().exists(), "nothing was written for refused input");

    user.tovuk().args(["target", "add", "prod", "--url", "http://x", "--token-stdin"]).stdin("tovuk_a").run().success();
    let run = user
        .tovuk()
        .args(["target", "add", "prod", "--url", "http://y", "--token-stdin"])
        .stdin("tovuk_b")
        .run()
        .code(1);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    let stored = std::fs::read_to_string(user.config_dir().join("tokens/prod.token")).expect("token");
    assert_eq!(stored.trim(), "tovuk_a", "a refused add keeps the old token");
}
