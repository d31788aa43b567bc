//! The runner and router: health-gated releases, superseding, failures that keep the
//! previous release serving, and restart recovery.

use crate::support::{Platform, any_process_named, perl_app, perl_manifest};

/// Pushes the Perl test app at `version` to `app`, answering `/health` with `health`,
/// with a health timeout of `timeout`; returns the deploy id.
fn push_perl(platform: &Platform, app: &str, token: &str, version: &str, health: &str, timeout: &str) -> String {
    platform.push_files(
        app,
        token,
        &[("tovuk.toml", &perl_manifest(app, timeout)), ("server.pl", &perl_app(version, health))],
    )
}

#[test]
fn a_push_goes_live_behind_its_health_check_and_the_next_one_supersedes_it() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let first = push_perl(&platform, "hello", &token, "v1", "200 OK", "30s");
    let deploy = platform.wait_for_state(&first, "running");
    let states: Vec<&str> = deploy["state_changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["queued", "building", "typechecking", "testing", "artifact_ready", "deploying", "running"]);
    assert_eq!(platform.get_app("hello", "/"), (200, "hello v1\n".to_owned()));
    let status = platform.tovuk().args(["app", "status", "hello", "--json"]).run().success().json();
    assert_eq!(status["current_deploy"]["id"], first.as_str());
    assert_eq!(status["instance"]["status"], "healthy");
    assert!(status["service_url"].as_str().expect("url").starts_with("http://hello.localhost:"));
    let old_pid = status["instance"]["pid"].as_i64().expect("pid");

    let second = push_perl(&platform, "hello", &token, "v2", "200 OK", "30s");
    platform.wait_for_state(&second, "running");
    assert_eq!(platform.get_app("hello", "/"), (200, "hello v2\n".to_owned()));
    assert_eq!(platform.wait_for_state(&first, "superseded")["state"], "superseded");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while std::path::Path::new(&format!("/proc/{old_pid}")).exists() {
        assert!(std::time::Instant::now() < deadline, "the superseded instance was not stopped");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (status, body) = platform.get_app("nope", "/");
    assert_eq!(status, 404, "{body}");
}

#[test]
fn an_unhealthy_release_fails_and_the_previous_one_keeps_serving() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let good = push_perl(&platform, "hello", &token, "v1", "200 OK", "30s");
    platform.wait_for_state(&good, "running");

    let sick = push_perl(&platform, "hello", &token, "v2", "500 Sick", "2s");
    let deploy = platform.wait_for_state(&sick, "failed");
    assert_eq!(deploy["failure"]["reason"], "health_check_failed");
    assert!(
        deploy["failure"]["first_actionable_line"].as_str().expect("line").contains("/health answered 500"),
        "{deploy}"
    );
    assert_eq!(platform.get_app("hello", "/"), (200, "hello v1\n".to_owned()));
    assert_eq!(platform.deploy(&good)["state"], "running");

    // One that exits at once fails fast, with its exit code and last output.
    let crash = platform.push_files(
        "hello",
        &token,
        &[
            ("tovuk.toml", &perl_manifest("hello", "30s")),
            ("server.pl", "print \"boom: missing config\\n\"; exit 3;\n"),
        ],
    );
    let deploy = platform.wait_for_state(&crash, "failed");
    assert_eq!(deploy["failure"]["exit_code"], 3, "{deploy}");
    assert!(
        deploy["failure"]["first_actionable_line"].as_str().expect("line").contains("boom: missing config"),
        "{deploy}"
    );
    assert_eq!(platform.get_app("hello", "/"), (200, "hello v1\n".to_owned()));
}

#[test]
fn a_tampered_artifact_is_never_started() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    // The first release holds the app's slot while it fails its 3 s health check, so the
    // second waits at artifact_ready, where its artifact is changed on disk.
    let slow = push_perl(&platform, "hello", &token, "v1", "503 Wait", "3s");
    platform.wait_for_state(&slow, "deploying");
    let marker = format!("tampered-{}", std::process::id());
    let second = push_perl(&platform, "hello", &token, &marker, "200 OK", "30s");
    let deploy = platform.wait_for_state(&second, "artifact_ready");
    let digest = deploy["artifact"]["digest"].as_str().expect("digest").trim_start_matches("sha256:").to_owned();
    let archive = platform.data_dir().join("artifacts").join(format!("{digest}.tar.zst"));
    let mut bytes = std::fs::read(&archive).expect("archive");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&archive, &bytes).expect("tamper");
    let deploy = platform.wait_for_state(&second, "failed");
    assert_eq!(deploy["failure"]["reason"], "artifact_signature_invalid", "{deploy}");
    assert!(!any_process_named(&marker));
}

#[test]
fn a_static_app_is_served_by_the_router_from_its_release() {
    let platform = Platform::start();
    let token = platform.create_app("site");
    let manifest =
        "[app]\nname = \"site\"\nkind = \"static\"\ncapabilities = [\"http\"]\n\n[static]\nroot = \"public\"\n";
    let id =
        platform.push_files("site", &token, &[("tovuk.toml", manifest), ("public/index.html", "<h1>static</h1>\n")]);
    platform.wait_for_state(&id, "running");
    assert_eq!(platform.get_app("site", "/"), (200, "<h1>static</h1>\n".to_owned()));
    assert_eq!(platform.get_app("site", "/missing.html").0, 404);
}

#[test]
fn a_static_app_never_serves_its_contract_or_dotfiles_unless_it_says_so() {
    let platform = Platform::start();
    let token = platform.create_app("dots");
    let manifest = "[app]\nname = \"dots\"\nkind = \"static\"\ncapabilities = [\"http\"]\n\n[static]\nserve_hidden = [\".well-known\"]\n";
    let files = [
        ("tovuk.toml", manifest),
        ("index.html", "home\n"),
        (".htaccess", "Deny from all\n"),
        (".drafts/plan.txt", "unreleased\n"),
        ("assets/.notes", "internal\n"),
        (".well-known/security.txt", "Contact: mailto:security@example.com\n"),
    ];
    let id = platform.push_files("dots", &token, &files);
    platform.wait_for_state(&id, "running");
    assert_eq!(platform.get_app("dots", "/").0, 200);
    for hidden in ["/tovuk.toml", "/.htaccess", "/.drafts/plan.txt", "/assets/.notes"] {
        let (status, body) = platform.get_app("dots", hidden);
        assert_eq!(status, 404, "{hidden} was served: {body}");
    }
    assert_eq!(platform.get_app("dots", "/.well-known/security.txt").0, 200, "listed in [static] serve_hidden");
}

#[test]
fn after_kill_9_the_platform_starts_the_app_again() {
    let mut platform = Platform::start();
    let token = platform.create_app("hello");
    let id = push_perl(&platform, "hello", &token, "v1", "200 OK", "30s");
    platform.wait_for_state(&id, "running");
    platform.stop_with("KILL");
    let data_root = std::mem::replace(&mut platform.data_root, crate::support::DataRoot::new());
    drop(platform);
    let platform = Platform::start_in(data_root);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, body) = platform.get_app("hello", "/");
        if status == 200 {
            assert_eq!(body, "hello v1\n");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the app did not answer after a restart: {status} {body}\n{}",
            platform.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(platform.deploy(&id)["state"], "running");
}

#[test]
fn deploy_follow_prints_each_state_with_heartbeats_and_exits_by_outcome() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let manifest = format!("{}\n[build]\nbuild = \"sleep 6\"\n", perl_manifest("hello", "30s"));
    let id =
        platform.push_files("hello", &token, &[("tovuk.toml", &manifest), ("server.pl", &perl_app("v1", "200 OK"))]);
    let run = platform.tovuk().args(["deploy", "follow", &id, "--json"]).run().success();
    let events: Vec<serde_json::Value> =
        run.stdout.lines().map(|line| serde_json::from_str(line).expect("NDJSON")).collect();
    let states: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "state_changed")
        .map(|e| e["data"]["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["queued", "building", "typechecking", "testing", "artifact_ready", "deploying", "running"]);
    assert!(
        events.iter().any(|e| e["type"] == "heartbeat" && e["data"]["state"] == "building"),
        "a heartbeat during the 6 s build: {events:?}"
    );
    for event in &events {
        let data = &event["data"];
        assert!(
            data["deploy_id"] == id.as_str()
                && data["build_id"].is_string()
                && data["state"].is_string()
                && data["elapsed_ms"].is_u64(),
            "{event}"
        );
    }
    assert_eq!(events.last().expect("last")["type"], "result");

    // A finished deploy is replayed; a failed one exits 1.
    let human = platform.tovuk().args(["deploy", "follow", &id]).run().success();
    assert!(human.stdout.contains("running") && human.stdout.contains(&id), "{}", human.stdout);
    let broken = platform.push_files(
        "hello",
        &token,
        &[
            (
                "tovuk.toml",
                &format!("{}\n[build]\ntest = \"echo 'error: nope' >&2; exit 1\"\n", perl_manifest("hello", "30s")),
            ),
            ("server.pl", &perl_app("v2", "200 OK")),
        ],
    );
    let failed = platform.tovuk().args(["deploy", "follow", &broken]).run().code(1);
    assert!(failed.stderr.contains("error: nope"), "{}", failed.stderr);
}

#[test]
fn retry_makes_a_new_deploy_of_the_same_source() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let first = push_perl(&platform, "hello", &token, "v1", "200 OK", "30s");
    platform.wait_for_state(&first, "running");
    let retried = platform.tovuk().args(["deploy", "retry", &first, "--json"]).run().success().json();
    let second = retried["id"].as_str().expect("id").to_owned();
    assert_ne!(second, first);
    assert_eq!(retried["source"]["sha"], platform.deploy(&first)["source"]["sha"]);
    let run = platform.tovuk().args(["deploy", "follow", &second]).run().success();
    assert!(run.stdout.contains("running"), "{}", run.stdout);
    // The first is superseded once the retry has stayed healthy ([health] min_healthy).
    platform.wait_for_state(&first, "superseded");
    assert_eq!(platform.get_app("hello", "/"), (200, "hello v1\n".to_owned()));
}

#[test]
fn deploy_follow_after_an_upload_waits_until_running() {
    let platform = Platform::start();
    platform.create_app("hello");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("tovuk.toml"), perl_manifest("hello", "30s")).expect("manifest");
    std::fs::write(dir.path().join("server.pl"), perl_app("uploaded", "200 OK")).expect("app");
    let run = platform.tovuk().args(["deploy", "--follow"]).arg(dir.path()).run().success();
    assert!(run.stdout.contains("running"), "{}", run.stdout);
    assert_eq!(platform.get_app("hello", "/"), (200, "hello uploaded\n".to_owned()));
}

#[test]
fn app_logs_show_what_instances_print_and_follow_new_lines() {
    use std::io::{BufRead, BufReader};
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let id = push_perl(&platform, "hello", &token, "v1", "200 OK", "30s");
    platform.wait_for_state(&id, "running");
    let mut follow = std::process::Command::new(crate::support::BIN)
        .args(["logs", "hello", "--follow", "--json"])
        .env("HOME", platform.user.home.path())
        .env("TOVUK_URL", &platform.api_url)
        .env("TOVUK_TOKEN", platform.admin_token())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("follow");
    // A follower never ends by itself: stop it after a deadline so a missing line fails the test.
    let stdout = follow.stdout.take().expect("stdout");
    let follow = std::sync::Arc::new(std::sync::Mutex::new(follow));
    let watchdog = follow.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(30));
        if let Ok(mut child) = watchdog.lock() {
            let _ = child.kill();
        }
    });
    let mut lines = BufReader::new(stdout).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().expect("a line").expect("read")).expect("json");
    assert_eq!(first["type"], "log");
    assert!(first["data"]["line"].as_str().expect("line").starts_with("listening on"), "{first}");
    assert_eq!(first["data"]["deploy_id"], id.as_str());
    assert_eq!(first["data"]["instance"], format!("{id}/1"));
    platform.get_app("hello", "/from-the-test");
    let served = lines
        .map_while(Result::ok)
        .find(|line| line.contains("served /from-the-test"))
        .expect("the request's line arrived while following");
    assert!(served.contains("stdout"), "{served}");
    if let Ok(mut child) = follow.lock() {
        let _ = child.kill();
        let _ = child.wait();
    }

    let human = platform.tovuk().args(["logs", "hello"]).run().success();
    assert!(human.stdout.contains("served /from-the-test"), "{}", human.stdout);
    let lifecycle = platform.tovuk().args(["logs", "--deploy", &id]).run().success();
    assert!(lifecycle.stdout.contains("deploying") && lifecycle.stdout.contains("running"), "{}", lifecycle.stdout);
    platform.tovuk().args(["logs"]).run().code(2);
}

#[test]
fn a_crash_looping_app_is_restarted_then_answers_503_naming_it() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    // Healthy at first (its gate has 3 s, even on a loaded machine), then it dies 3 s after every start.
    let app = perl_app("v1", "200 OK").replacen("$| = 1;", "$| = 1; alarm 3;", 1);
    let id =
        platform.push_files("hello", &token, &[("tovuk.toml", &perl_manifest("hello", "30s")), ("server.pl", &app)]);
    platform.wait_for_state(&id, "running");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let status = platform.tovuk().args(["app", "status", "hello", "--json"]).run().success().json();
        if status["instance"]["status"] == "crashing" {
            assert!(status["instance"]["restarts"].as_i64().expect("restarts") >= 4, "{status}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never marked crashing: {status}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The routers follow the table the crash report republished, a moment after it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let (status, body) = loop {
        let (status, body) = platform.get_app("hello", "/");
        if status == 503 || std::time::Instant::now() > deadline {
            break (status, body);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("hello") && body.contains("tovuk logs hello"), "{body}");
}

#[test]
fn inspect_shows_the_runtime_evidence_of_what_serves() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let before = platform.tovuk().args(["app", "inspect", "hello", "--json"]).run().success().json();
    assert_eq!(before["runtime_evidence"], serde_json::Value::Null);
    let id = push_perl(&platform, "hello", &token, "v1", "200 OK", "30s");
    platform.wait_for_state(&id, "running");
    let inspected = platform.tovuk().args(["app", "inspect", "hello", "--json"]).run().success().json();
    let evidence = &inspected["runtime_evidence"];
    assert_eq!(evidence["main_class"], "perl server.pl");
    assert_eq!(evidence["route_count"], 1);
    for (field, value) in [
        ("auth_mode", "none"),
        ("csrf_mode", "disabled"),
        ("token_support", "disabled"),
        ("capability_source", "none"),
        ("provider_summary", "none"),
        ("cookie_security", "none"),
        ("auth_store", "none"),
    ] {
        assert_eq!(evidence[field], value, "{field}");
    }
    assert!(evidence["backend"].as_str().expect("backend").contains("sandbox"));
    assert_eq!(inspected["current_deploy"]["id"], id.as_str());
    assert!(inspected["instance"]["pid"].is_i64() && inspected["instance"]["port"].is_i64());
    let human = platform.tovuk().args(["app", "inspect", "hello"]).run().success();
    assert!(human.stdout.contains("runtime evidence:") && human.stdout.contains("route_count"), "{}", human.stdout);
}

#[test]
fn an_app_on_the_wrong_port_fails_its_health_check_clearly() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let app = perl_app("v1", "200 OK").replace("LocalPort => $ENV{PORT}", "LocalPort => 0");
    let id =
        platform.push_files("hello", &token, &[("tovuk.toml", &perl_manifest("hello", "2s")), ("server.pl", &app)]);
    let deploy = platform.wait_for_state(&id, "failed");
    assert!(
        deploy["failure"]["first_actionable_line"].as_str().expect("line").contains("nothing listens on $PORT"),
        "{deploy}"
    );
}

#[test]
fn an_old_instance_that_ignores_sigterm_is_killed_after_the_grace() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let stubborn = perl_app("v1", "200 OK").replacen("$| = 1;", "$| = 1; $SIG{TERM} = 'IGNORE';", 1);
    let first = platform.push_files(
        "hello",
        &token,
        &[("tovuk.toml", &perl_manifest("hello", "30s")), ("server.pl", &stubborn)],
    );
    platform.wait_for_state(&first, "running");
    let pid = platform.tovuk().args(["app", "status", "hello", "--json"]).run().success().json()["instance"]["pid"]
        .as_i64()
        .expect("pid");
    let second = push_perl(&platform, "hello", &token, "v2", "200 OK", "30s");
    platform.wait_for_state(&second, "running");
    assert_eq!(platform.get_app("hello", "/"), (200, "hello v2\n".to_owned()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(std::time::Instant::now() < deadline, "the instance that ignored SIGTERM was never killed");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_release_dir_deleted_under_the_runner_is_unpacked_again_at_restart() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let id = push_perl(&platform, "hello", &token, "v1", "200 OK", "30s");
    platform.wait_for_state(&id, "running");
    let data_root = platform.stop();
    std::fs::remove_dir_all(data_root.path().join("data/releases/hello")).expect("delete releases");
    let platform = Platform::start_in(data_root);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while platform.get_app("hello", "/").0 != 200 {
        assert!(std::time::Instant::now() < deadline, "the app did not come back: {}", platform.log());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_flood_on_one_app_and_a_slow_client_leave_other_apps_serving() {
    use std::io::Write;
    let platform = Platform::start();
    let token = platform.create_app("flooded");
    let other = platform.create_app("other");
    let a = push_perl(&platform, "flooded", &token, "a", "200 OK", "30s");
    let b = push_perl(&platform, "other", &other, "b", "200 OK", "30s");
    platform.wait_for_state(&a, "running");
    platform.wait_for_state(&b, "running");
    // 1,000 connections to one app, each sending a request head that never ends. This
    // process needs the descriptors too.
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum },
    );
    let mut held = Vec::new();
    for _ in 0..1000 {
        let Ok(mut stream) = std::net::TcpStream::connect(platform.router_addr()) else { break };
        let _ = stream.write_all(b"GET / HTTP/1.1\r\nHost: flooded.localhost\r\nX-Slow: ");
        held.push(stream);
    }
    assert!(held.len() >= 900, "opened {} connections", held.len());
    assert_eq!(platform.get_app("other", "/"), (200, "hello b\n".to_owned()));
    let status = platform.tovuk().args(["status", "--json"]).run().success().json();
    assert_eq!(status["status"], "ok");
    drop(held);
    assert_eq!(platform.get_app("flooded", "/"), (200, "hello a\n".to_owned()));
}

#[test]
fn a_huge_request_body_is_streamed_not_buffered() {
    use std::io::Write;
    let platform = Platform::start();
    let token = platform.create_app("hello");
    // An app that reads whole request bodies and answers how many bytes arrived.
    let sink = r#"use IO::Socket::INET;
my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ENV{PORT}, Listen => 64, ReuseAddr => 1) or die "cannot listen: $!";
while (my $c = $s->accept) {
  my $len = 0;
  while (my $l = <$c>) { $len = $1 if $l =~ /^content-length:\s*(\d+)/i; last if $l =~ /^\r?\n$/ }
  # `read`, not `sysread`: the header lines were read through Perl's buffer, which may
  # already hold the start of the body.
  my ($got, $buf) = (0, "");
  while ($got < $len) { my $n = read($c, $buf, 1 << 20); last unless $n; $got += $n; }
  my $body = "received $got";
  print $c "HTTP/1.1 200 OK\r\nContent-Length: " . length($body) . "\r\nConnection: close\r\n\r\n$body";
  close $c;
}
"#;
    let id =
        platform.push_files("hello", &token, &[("tovuk.toml", &perl_manifest("hello", "30s")), ("server.pl", sink)]);
    platform.wait_for_state(&id, "running");
    // 1 GB through the router: it must pass it on as it comes, not hold it.
    let size: u64 = 1 << 30;
    let mut stream = std::net::TcpStream::connect(platform.router_addr()).expect("connect");
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: hello.localhost\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("head");
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..(size >> 20) {
        stream.write_all(&chunk).expect("the router takes the body as fast as the app reads it");
    }
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).expect("answer");
    assert!(answer.ends_with(&format!("received {size}")), "{answer}");
    let peak_kb = platform.peak_memory_kb();
    assert!(peak_kb < 300 * 1024, "the server's peak memory was {peak_kb} kB while a huge body went through");
}

#[test]
fn the_readme_example_app_goes_live() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello");
    let manifest = std::fs::read_to_string(example.join("tovuk.toml")).expect("example manifest");
    let server = std::fs::read_to_string(example.join("server.pl")).expect("example server");
    let id = platform.push_files("hello", &token, &[("tovuk.toml", &manifest), ("server.pl", &server)]);
    let run = platform.tovuk().args(["deploy", "follow", &id]).run().success();
    assert!(run.stdout.contains("running"), "{}", run.stdout);
    assert_eq!(platform.get_app("hello", "/"), (200, "hello from tovuk\n".to_owned()));

    // The walkthrough's config step: a value set, the same artifact released with it.
    let set = platform.tovuk().args(["env", "set", "hello", "GREETING=hi from config", "--json"]).run().success();
    let release = set.json()["release"]["id"].as_str().expect("a release").to_owned();
    platform.tovuk().args(["deploy", "follow", &release]).run().success();
    assert_eq!(platform.get_app("hello", "/"), (200, "hi from config\n".to_owned()));
}
