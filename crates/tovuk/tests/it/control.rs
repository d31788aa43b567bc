//! The control plane's shape: one way to accept a source (push, upload, retry) with one
//! answer, routes the control plane owns and any router follows, request ids, and
//! streams that end with the server.

use crate::support::{BIN, GitRepo, Platform, bearer, deploy_ids, get_through, perl_app, perl_manifest, project};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Milliseconds since midnight of an RFC 3339 UTC time (`...THH:MM:SS.mmmZ`).
fn millis_of_day(at: &str) -> i64 {
    let time = at.split('T').nth(1).unwrap_or_else(|| panic!("not a time: {at}"));
    let mut parts = time.trim_end_matches('Z').split(':');
    let mut next = || parts.next().and_then(|part| part.parse::<f64>().ok()).unwrap_or_else(|| panic!("{at}"));
    let (hours, minutes, seconds) = (next(), next(), next());
    ((hours * 3600.0 + minutes * 60.0 + seconds) * 1000.0).round() as i64
}

/// The time a deploy waited in `queued` before a builder claimed it, from the server's own record.
fn queued_for(deploy: &serde_json::Value) -> Duration {
    let changes = deploy["state_changes"].as_array().expect("state changes");
    let at = |state: &str| {
        changes
            .iter()
            .find(|change| change["state"] == state)
            .and_then(|change| change["at"].as_str())
            .map(millis_of_day)
    };
    let (Some(queued), Some(building)) = (at("queued"), at("building")) else { panic!("not claimed: {deploy}") };
    Duration::from_millis(u64::try_from(building - queued).unwrap_or(0))
}

#[test]
fn an_upload_wakes_the_builder_as_a_push_does() {
    let platform = Platform::start();
    let token = platform.create_app("quick");
    let dir = project(&[("tovuk.toml", &perl_manifest("quick", "30s")), ("server.pl", &perl_app("v1", "200 OK"))]);
    let first = platform.tovuk().args(["deploy", "--json"]).current_dir(dir.path()).run().success().json();
    platform.wait_for_build(first["deploy"]["id"].as_str().expect("id"));
    // The builder has just gone back to its long poll (20 s): only a wake-up claims the next
    // deploy sooner. Before, an upload never woke it.
    std::fs::write(dir.path().join("server.pl"), perl_app("v2", "200 OK")).expect("edit");
    let second = platform.tovuk().args(["deploy", "--json"]).current_dir(dir.path()).run().success().json();
    let id = second["deploy"]["id"].as_str().expect("id");
    let claimed = platform.wait_for_deploy(id, "claimed", |deploy| deploy["state"] != "queued");
    let waited = queued_for(&claimed);
    assert!(waited < Duration::from_secs(5), "the upload waited {waited:?} in queued: the builder was not woken");
    platform.wait_for_state(id, "running");

    // The same for a push, and for a retry: every entrance wakes the builder.
    let pushed = platform.push_files(
        "quick",
        &token,
        &[("tovuk.toml", &perl_manifest("quick", "30s")), ("server.pl", &perl_app("v3", "200 OK"))],
    );
    let claimed = platform.wait_for_deploy(&pushed, "claimed", |deploy| deploy["state"] != "queued");
    assert!(queued_for(&claimed) < Duration::from_secs(5), "{claimed}");
    platform.wait_for_state(&pushed, "running");
    let retried = platform.tovuk().args(["deploy", "retry", &pushed, "--json"]).run().success().json();
    let retried = retried["id"].as_str().expect("id");
    let claimed = platform.wait_for_deploy(retried, "claimed", |deploy| deploy["state"] != "queued");
    assert!(queued_for(&claimed) < Duration::from_secs(5), "{claimed}");
}

/// Replaces what changes from run to run with placeholders.
fn filtered(lines: &[String]) -> String {
    let mut out = Vec::new();
    for line in lines {
        // What the account has used so far depends on what ran before (build minutes).
        let is_usage = line.starts_with("usage this period");
        let words: Vec<String> = line
            .split(' ')
            .map(|word| {
                let bare = word.trim_end_matches([',', ':', ')']);
                let tail = &word[bare.len()..];
                let placeholder = if bare.starts_with("dep_") {
                    Some("[DEPLOY]")
                } else if bare.starts_with("bld_") {
                    Some("[BUILD]")
                } else if bare.starts_with("op_") {
                    Some("[OP]")
                } else if bare.len() == 12 && bare.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                    Some("[SHA]")
                } else if bare.starts_with("http://") {
                    Some("[URL]")
                } else if bare.starts_with("(20") {
                    Some("([PERIOD]")
                } else if is_usage && bare.parse::<f64>().is_ok() {
                    Some("[AMOUNT]")
                } else {
                    None
                };
                placeholder.map_or_else(|| word.to_owned(), |placeholder| format!("{placeholder}{tail}"))
            })
            .collect();
        out.push(words.join(" "));
    }
    out.join("\n")
}

#[test]
fn a_push_and_an_upload_of_the_same_source_answer_in_the_same_words() {
    let platform = Platform::start();
    let token = platform.create_app("same");
    let files = [("tovuk.toml", perl_manifest("same", "30s")), ("server.pl", perl_app("v1", "200 OK"))];
    let files: Vec<(&str, &str)> = files.iter().map(|(path, text)| (*path, text.as_str())).collect();

    let repo = GitRepo::with_files(&files);
    let push = repo.push(&platform.remote("same", &token), &["main"]);
    assert!(push.ok, "{}", push.output);
    let remote: Vec<String> = push
        .output
        .lines()
        .filter_map(|line| line.strip_prefix("remote: "))
        .map(|line| line.trim_end().to_owned())
        .skip_while(|line| !line.starts_with("accepted "))
        // What the hook says after the answer (following, or how to follow) is the push's own.
        .take_while(|line| !line.starts_with("detached (-o detach)") && !line.starts_with("following deploy"))
        .collect();

    let dir = project(&files);
    let upload = platform.tovuk().args(["deploy"]).current_dir(dir.path()).run().success();
    let uploaded: Vec<String> = upload.stdout.lines().map(str::to_owned).collect();

    let expected = "\
accepted main at [SHA] as source operation [OP]
deploy [DEPLOY] queued (build job [BUILD])
readiness: ready
service URL: [URL]
usage this period ([PERIOD]): [AMOUNT] USD (account: [AMOUNT] USD)
billing estimate for a month of [expected] load: 1.6425 USD (tovuk deploy --dry-run shows each line)
next: tovuk deploy follow [DEPLOY]
next: tovuk usage same";
    assert_eq!(filtered(&remote), expected, "the push's answer:\n{}", push.output);
    assert_eq!(
        filtered(&uploaded),
        expected.replacen("accepted main at", "accepted upload at", 1),
        "the upload's answer:\n{}{}",
        upload.stdout,
        upload.stderr
    );
    assert_eq!(deploy_ids(&push.output).len(), 1, "{}", push.output);
}

/// Opens `GET path` on the API and returns the stream once the answer's headers arrived.
fn open_stream(platform: &Platform, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(platform.api_addr()).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\r\n",
        platform.api_addr(),
        bearer(&platform.admin_token())
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).expect("read"), 1, "closed before the headers");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
    stream
}

#[test]
fn a_stopping_server_ends_its_followers_instead_of_waiting_for_them() {
    let mut platform = Platform::start();
    platform.create_app("quiet");
    // A log follower of an app that prints nothing, and a deploy follower of a build that
    // would run for ten minutes: both would wait forever.
    let mut logs = open_stream(&platform, "/v1/apps/quiet/logs?follow=true");
    let repo = GitRepo::with_files(&[
        ("tovuk.toml", &crate::support::build_manifest("slow", "build = \"sleep 600\"")),
        ("server", "#!/bin/sh\n"),
    ]);
    let token = platform.create_app("slow");
    let push = repo.push(&platform.remote("slow", &token), &["main"]);
    let id = deploy_ids(&push.output).pop().unwrap_or_else(|| panic!("{}", push.output));
    let mut events = open_stream(&platform, &format!("/v1/deploys/{id}/events?follow=true"));

    let asked = Instant::now();
    assert_eq!(platform.stop_with("TERM"), 0, "{}", platform.log());
    let stopped = asked.elapsed();
    for (name, stream) in [("logs", &mut logs), ("events", &mut events)] {
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).unwrap_or_else(|error| panic!("the {name} stream did not end: {error}"));
    }
    let log = platform.log();
    assert!(!log.contains("did not finish before the shutdown deadline"), "{log}");
    // Well under the 10 s deadline; a follower used to hold the stop for all of it.
    assert!(stopped < Duration::from_secs(8), "the stop took {stopped:?}:\n{log}");
}

#[test]
fn every_answer_carries_its_request_id_and_errors_name_it() {
    let platform = Platform::start();
    let mut stream = TcpStream::connect(platform.api_addr()).expect("connect");
    let request = format!("GET /v1/apps HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", platform.api_addr());
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let header = response
        .lines()
        .find_map(|line| line.strip_prefix("x-request-id: "))
        .unwrap_or_else(|| panic!("no x-request-id:\n{response}"))
        .trim()
        .to_owned();
    assert!(header.starts_with("req_"), "{header}");
    let body: serde_json::Value =
        serde_json::from_str(response.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or("")).expect("json");
    assert_eq!(body["error"]["request_id"], header.as_str(), "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A router process, killed when dropped (a failed assertion must not leave it running).
struct RouterProcess(Child);

impl Drop for RouterProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tovuk server --role router ...` started apart, its stderr in `log`.
fn start_router(args: &[&str], log: &std::path::Path) -> RouterProcess {
    let child = Command::new(BIN)
        .args(["server", "--role", "router"])
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("spawn the router");
    RouterProcess(child)
}

/// Waits (with a deadline) until a GET to `app` through `router` answers `expected`.
fn wait_served(router: &str, app: &str, expected: &str, log: &std::path::Path) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if TcpStream::connect(router).is_ok() && get_through(router, app, "/") == (200, expected.to_owned()) {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{app} never answered {expected:?} through {router}; last: {:?}\n{}",
            if TcpStream::connect(router).is_ok() { Some(get_through(router, app, "/")) } else { None },
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_router_started_apart_with_an_empty_table_serves_every_running_app() {
    let platform = Platform::start();
    for app in ["one", "two"] {
        let token = platform.create_app(app);
        let files = [("tovuk.toml", perl_manifest(app, "30s")), ("server.pl", perl_app(app, "200 OK"))];
        let id = platform.push_files(app, &token, &[(files[0].0, &files[0].1), (files[1].0, &files[1].1)]);
        platform.wait_for_state(&id, "running");
    }
    let secret_file = platform.data_dir().join("keys").join("node.secret");
    let scratch = tempfile::tempdir().expect("tempdir");
    let log = scratch.path().join("router.log");
    let router = format!("127.0.0.1:{}", free_port());
    let args = [
        "--control-plane",
        platform.api_url.as_str(),
        "--node-secret-file",
        secret_file.to_str().expect("utf-8 path"),
        "--router-listen",
        router.as_str(),
    ];

    // Without --no-metering it refuses: it could not enforce the apps' caps.
    let refused = Command::new(BIN).args(["server", "--role", "router"]).args(args).output().expect("run");
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--no-metering"), "{refused:?}");

    let child = start_router(&[&args[..], &["--no-metering"]].concat(), &log);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&router).is_err() {
        assert!(Instant::now() < deadline, "{}", std::fs::read_to_string(&log).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(5));
    }
    let listening = Instant::now();
    wait_served(&router, "one", "hello one\n", &log);
    let served = wait_served(&router, "two", "hello two\n", &log);
    let took = served - listening;
    eprintln!("the router served every running app {took:?} after it listened");
    assert!(took < Duration::from_secs(1), "serving every app took {took:?} after the router listened");

    // A new deploy reaches it through the control plane's table, like the server's own router.
    let token = platform.tovuk().args(["token", "create", "--name", "ci", "--app", "one", "--json"]).run().success();
    let token = token.json()["secret"].as_str().expect("secret").to_owned();
    let id = platform.push_files(
        "one",
        &token,
        &[("tovuk.toml", &perl_manifest("one", "30s")), ("server.pl", &perl_app("one v2", "200 OK"))],
    );
    platform.wait_for_state(&id, "running");
    wait_served(&router, "one", "hello one v2\n", &log);

    // Its access log reaches the app's log on the control plane.
    get_through(&router, "one", "/through-the-router-apart");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let access = platform.tovuk().args(["logs", "one", "--stream", "access"]).run().success().stdout;
        if access.contains("GET /through-the-router-apart 200") {
            break;
        }
        assert!(Instant::now() < deadline, "no access line from the router apart: {access}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(child);

    // A wrong credential serves nothing and says why in its log.
    let wrong = scratch.path().join("wrong.secret");
    std::fs::write(&wrong, "not-the-secret\n").expect("write");
    let wrong_log = scratch.path().join("wrong.log");
    let other = format!("127.0.0.1:{}", free_port());
    let child = start_router(
        &[
            "--control-plane",
            &platform.api_url,
            "--node-secret-file",
            wrong.to_str().expect("path"),
            "--router-listen",
            &other,
            "--no-metering",
        ],
        &wrong_log,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&wrong_log).unwrap_or_default().contains("cannot follow the route table") {
        assert!(Instant::now() < deadline, "{}", std::fs::read_to_string(&wrong_log).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Without a table it cannot know the app: "starting", to be tried again, never a 404.
    assert_eq!(get_through(&other, "one", "/").0, 503);
    drop(child);

    // A missing credential file stops it at once, naming the file.
    let missing = Command::new(BIN)
        .args(["server", "--role", "router", "--control-plane", &platform.api_url, "--no-metering"])
        .args(["--node-secret-file", "/nonexistent/node.secret", "--router-listen", "127.0.0.1:0"])
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/node.secret"), "{missing:?}");
}
