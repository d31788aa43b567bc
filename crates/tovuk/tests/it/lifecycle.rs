//! An app's life after it went live: it outlives a platform restart, proves itself before
//! what it replaced is let go, is probed for its whole life, and stops gracefully.

use crate::support::*;
use std::time::{Duration, Instant};

/// A perl app. `/boot` answers a token drawn at start (a new process draws a new one),
/// `/break` makes `/health` fail from then on, `/slow` answers after 3 s, `/exit` exits. It exits with
/// code 3 `die_after` seconds after it starts listening (0: never), waits `sleep_first`
/// seconds before listening, and on SIGTERM takes a second, then writes `/data/stopped-VERSION`.
fn app(version: &str, die_after: u32, sleep_first: u32) -> String {
    format!(
        r#"use IO::Socket::INET;
$| = 1;
my $boot = int(rand(1_000_000_000));
$SIG{{TERM}} = sub {{ sleep 1; open(my $f, '>', "/data/stopped-{version}") or die; print $f "graceful\n"; close $f; exit 0 }};
sleep {sleep_first};
my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ENV{{PORT}}, Listen => 64, ReuseAddr => 1) or die "cannot listen: $!";
print "{version} listening with boot $boot\n";
if ({die_after} > 0) {{ $SIG{{ALRM}} = sub {{ print "{version} crashing\n"; exit 3 }}; alarm {die_after}; }}
my $broken = 0;
while (1) {{
  my $c = $s->accept or next;
  my $req = <$c>;
  next unless defined $req;
  while (my $l = <$c>) {{ last if $l =~ /^\r?\n$/ }}
  my ($path) = $req =~ m{{^\S+ (\S+)}};
  my ($status, $body) = ("200 OK", "hello {version}\n");
  if ($path eq "/health") {{ ($status, $body) = $broken ? ("500 Broken", "broken") : ("200 OK", "ok") }}
  elsif ($path eq "/boot") {{ $body = "$boot\n" }}
  elsif ($path eq "/break") {{ $broken = 1 }}
  elsif ($path eq "/slow") {{ sleep 3 }}
  elsif ($path eq "/exit") {{ close $c; print "{version} exiting on request\n"; exit 3 }}
  print $c "HTTP/1.1 $status\r\nContent-Length: " . length($body) . "\r\nConnection: close\r\n\r\n$body";
  close $c;
}}
"#
    )
}

fn manifest(name: &str, extra: &str) -> String {
    format!(
        "[app]\nname = \"{name}\"\nkind = \"web\"\ncapabilities = [\"http\"]\n\n[run]\ncommand = \"perl server.pl\"\nstop_grace = \"5s\"\n\n[health]\npath = \"/health\"\ninterval = \"200ms\"\ntimeout = \"30s\"\n{extra}"
    )
}

fn push(platform: &Platform, name: &str, token: &str, manifest: &str, app: &str) -> String {
    platform.push_files(name, token, &[("tovuk.toml", manifest), ("server.pl", app)])
}

/// Polls a GET through the router until `done` holds for its answer.
fn wait_answer(platform: &Platform, name: &str, path: &str, done: impl Fn(&(u16, String)) -> bool) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = platform.get_app(name, path);
        if done(&answer) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "{name}{path} never answered as expected; last {answer:?}\n{}",
            platform.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The app's status as `tovuk app status --json` shows it.
fn status(platform: &Platform, name: &str) -> serde_json::Value {
    platform.tovuk().args(["app", "status", name, "--json"]).run().success().json()
}

/// The port an app's instance listens on, from the runner's record.
/// The app's only instance, as its record in the data dir names it: (bwrap's pid, port).
fn instance_record(data_dir: &std::path::Path) -> (u32, u16) {
    let dir = std::fs::read_dir(data_dir.join("instances")).expect("instances").flatten().next().expect("an instance");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("instance.json")).expect("record")).expect("json");
    let pid = u32::try_from(record["pid"].as_u64().expect("pid")).expect("pid");
    (pid, u16::try_from(record["port"].as_u64().expect("port")).expect("port"))
}

#[test]
fn apps_outlive_a_killed_server_and_the_next_start_adopts_them() {
    let platform = Platform::start();
    let token = platform.create_app("keep");
    // It takes a second to listen, so a start from scratch is seen.
    let id = push(&platform, "keep", &token, &manifest("keep", ""), &app("v1", 0, 1));
    platform.wait_for_state(&id, "running");
    let boot = platform.get_app("keep", "/boot");
    assert_eq!(boot.0, 200);
    let data_dir = platform.data_dir();
    let instance = instance_record(&data_dir);

    let root = platform.kill();
    // The app goes on serving with no platform at all.
    assert_eq!(get_direct(instance, "/boot"), boot, "the app died with the server");
    assert!(!instance_pids(&data_dir).is_empty());

    // The next start adopts the very same process: its first answer is the app's, not a 404 or 503.
    let platform = Platform::start_in(root);
    assert_eq!(platform.get_app("keep", "/boot"), boot, "{}", platform.log());
    assert_eq!(platform.deploy(&id)["state"], "running");
    let status = status(&platform, "keep");
    assert_eq!(status["instance"]["status"], "healthy", "{status}");
    assert_eq!(status["instance"]["port"], u64::from(instance.1), "{status}");
    assert!(platform.log().contains("adopt") || platform.log().contains("serving to match"), "{}", platform.log());

    // An instance gone while the platform was down is started again; meanwhile its app
    // answers 503 with Retry-After, never 404.
    let root = platform.kill();
    kill_instances(&data_dir.clone());
    let platform = Platform::start_in(root);
    let first = raw_get(&platform.router_addr(), "keep", "/boot");
    assert!(first.starts_with("http/1.1 503") && first.contains("retry-after: 1"), "{first}");
    let again = wait_answer(&platform, "keep", "/boot", |answer| answer.0 == 200);
    assert_ne!(again, boot, "a new process serves");
}

#[test]
fn connections_made_while_no_server_runs_are_answered_by_the_next_one() {
    let platform = Platform::start();
    let token = platform.create_app("held");
    let id = push(&platform, "held", &token, &manifest("held", ""), &app("v1", 0, 0));
    platform.wait_for_state(&id, "running");
    let boot = platform.get_app("held", "/boot");
    let (router, api) = (platform.router_addr(), platform.api_addr());

    // Killed: its ports still take connections, which wait for the next server.
    let root = platform.kill();
    let to_app = send_get(&router, "held", "/boot");
    let to_api = send_get(&api, "api", "/v1/status");
    let platform = Platform::start_in(root);
    assert_eq!((platform.router_addr(), platform.api_addr()), (router.clone(), api.clone()), "the same ports");
    let answer = read_answer(to_app);
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with(&boot.1), "{answer}\n{}", platform.log());
    assert!(read_answer(to_api).starts_with("HTTP/1.1 200"));

    // Stopped (upgrade semantics): held the same way.
    let root = platform.stop();
    let waiting = send_get(&router, "held", "/boot");
    let platform = Platform::launch_in(root, &["--stop-apps"]);
    assert!(read_answer(waiting).starts_with("HTTP/1.1 200"), "{}", platform.log());

    // A full stop (--stop-apps) lets the ports go at once: refused, as a stopped server's are.
    let root = platform.stop();
    let refused = std::net::TcpStream::connect(&router);
    assert!(refused.is_err(), "a fully stopped server's port still takes connections");
    // The next start binds anew (and starts the stopped app again).
    let platform = Platform::start_in(root);
    wait_answer(&platform, "held", "/boot", |answer| answer.0 == 200);
    assert!(std::net::TcpStream::connect(&router).is_err() || platform.router_addr() == router);
}

#[test]
fn a_release_that_crashes_before_it_settles_is_rolled_back() {
    let platform = Platform::start();
    let token = platform.create_app("roll");
    let v1 = push(&platform, "roll", &token, &manifest("roll", "min_healthy = \"0s\"\n"), &app("v1", 0, 0));
    platform.wait_for_state(&v1, "running");
    // v2 passes its health check, serves, and crashes two seconds later (the gate has that
    // long on a loaded machine): inside min_healthy.
    let v2 = push(&platform, "roll", &token, &manifest("roll", "min_healthy = \"20s\"\n"), &app("v2", 2, 0));
    let failed = platform.wait_for_state(&v2, "failed");
    assert_eq!(failed["failure"]["reason"], "crashed_after_healthy", "{failed}");
    let line = failed["failure"]["first_actionable_line"].as_str().unwrap_or_default();
    assert!(line.contains("min_healthy") && line.contains("v2 crashing"), "{line}");
    assert_eq!(platform.deploy(&v1)["state"], "running", "the deploy before it stays current");
    assert_eq!(platform.get_app("roll", "/"), (200, "hello v1\n".to_owned()));
    assert_eq!(status(&platform, "roll")["current_deploy"]["id"], v1.as_str());

    // A release that stays healthy supersedes the one before it once min_healthy is over.
    let v3 = push(&platform, "roll", &token, &manifest("roll", "min_healthy = \"1s\"\n"), &app("v3", 0, 0));
    platform.wait_for_state(&v3, "running");
    assert_eq!(platform.get_app("roll", "/"), (200, "hello v3\n".to_owned()));
    platform.wait_for_state(&v1, "superseded");
    // What stopped for good leaves nothing behind: only v3's instance directory is left.
    let instances = platform.data_dir().join("instances");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left: Vec<String> = std::fs::read_dir(&instances)
            .expect("instances")
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        if left == [v3.clone()] {
            break;
        }
        assert!(Instant::now() < deadline, "instance directories left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_instance_that_stops_answering_is_restarted_and_gets_traffic_once_healthy() {
    let platform = Platform::start();
    let token = platform.create_app("live");
    let id = push(&platform, "live", &token, &manifest("live", "min_healthy = \"0s\"\n"), &app("v1", 0, 0));
    platform.wait_for_state(&id, "running");
    let boot = platform.get_app("live", "/boot");
    assert_eq!(status(&platform, "live")["instance"]["restarts"], 0);

    // Its health path fails from now on: three failed probes start it again.
    assert_eq!(platform.get_app("live", "/break").0, 200);
    let again = wait_answer(&platform, "live", "/boot", |answer| answer.0 == 200 && *answer != boot);
    assert_ne!(again, boot);
    let status = status(&platform, "live");
    assert_eq!(status["instance"]["restarts"], 1, "{status}");
    assert_eq!(status["instance"]["status"], "healthy", "{status}");
    assert!(platform.log().contains("stopped answering its health path"), "{}", platform.log());
}

#[test]
fn a_restarted_instance_waits_for_its_health_and_a_crash_loop_shows_in_deploy_show() {
    let platform = Platform::start();
    let token = platform.create_app("loop");
    // It takes a second to listen: a restart is seen from outside.
    let id = push(&platform, "loop", &token, &manifest("loop", "min_healthy = \"0s\"\n"), &app("v1", 0, 1));
    platform.wait_for_state(&id, "running");
    let boot = platform.get_app("loop", "/boot");
    let _ = platform.get_app("loop", "/exit");
    // While it starts again the router says so, with Retry-After, instead of proxying to a closed port.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = raw_get(&platform.router_addr(), "loop", "/boot");
        if answer.starts_with("http/1.1 503") {
            assert!(answer.contains("retry-after: 1") && answer.contains("restarting"), "{answer}");
            break;
        }
        assert!(Instant::now() < deadline, "the restart was never seen: {answer}\n{}", platform.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let again = wait_answer(&platform, "loop", "/boot", |answer| answer.0 == 200);
    assert_ne!(again, boot);
    assert_eq!(status(&platform, "loop")["instance"]["restarts"], 1);

    // A release that keeps crashing right after it starts is shown crash-looping.
    let v2 = push(&platform, "loop", &token, &manifest("loop", "min_healthy = \"0s\"\n"), &app("v2", 2, 0));
    platform.wait_for_state(&v2, "running");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let shown = platform.tovuk().args(["deploy", "show", &v2]).run().success();
        if shown.stdout.contains("instance:     crashing") {
            assert!(shown.stdout.contains("last exit code 3"), "{}", shown.stdout);
            assert!(shown.stderr.contains("crash-looping"), "{}", shown.stderr);
            break;
        }
        assert!(Instant::now() < deadline, "never shown crash-looping:\n{}", shown.stdout);
        std::thread::sleep(Duration::from_millis(200));
    }
    let json = platform.tovuk().args(["deploy", "show", &v2, "--json"]).run().success().json();
    assert_eq!(json["instance"]["status"], "crashing", "{json}");
    assert_eq!(platform.get_app("loop", "/").0, 503);
}

#[test]
fn a_replaced_app_gets_its_sigterm_and_the_whole_grace_and_slow_requests_time_out() {
    let platform = Platform::start();
    let token = platform.create_app("calm");
    let limits = "min_healthy = \"0s\"\n\n[limits]\nrequest_timeout = \"1s\"\n";
    let v1 = push(&platform, "calm", &token, &manifest("calm", limits), &app("v1", 0, 0));
    platform.wait_for_state(&v1, "running");

    // [limits] request_timeout: the router gives up on a request the app leaves unanswered.
    let started = Instant::now();
    let (code, body) = platform.get_app("calm", "/slow");
    assert_eq!(code, 504, "{body}");
    assert!(started.elapsed() < Duration::from_secs(3), "the request ran its full 3 s");

    let v2 = push(&platform, "calm", &token, &manifest("calm", limits), &app("v2", 0, 0));
    platform.wait_for_state(&v2, "running");
    // v1's SIGTERM handler takes a second and leaves a mark: it ran to its end.
    let mark = platform.data_dir().join("volumes").join("calm").join("stopped-v1");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !mark.exists() {
        assert!(Instant::now() < deadline, "v1 never finished its SIGTERM handler\n{}", platform.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(std::fs::read_to_string(&mark).expect("mark"), "graceful\n");
}

/// A GET straight to an instance on loopback, bypassing the router.
/// A GET straight to an instance (bwrap's pid, port), from inside its own network
/// namespace as the router reaches it: from the host's, nothing answers.
fn get_direct((pid, port): (u32, u16), path: &str) -> (u16, String) {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).expect("the sandbox runs");
    let first = children.split_whitespace().next().expect("the sandbox's first process").to_owned();
    let netns = std::fs::File::open(format!("/proc/{first}/ns/net")).expect("its network namespace");
    let path = path.to_owned();
    std::thread::spawn(move || {
        use std::os::fd::AsFd;
        rustix::thread::move_into_link_name_space(netns.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))
            .expect("enter the instance's network (the tests run as root)");
        http(&format!("127.0.0.1:{port}"), "GET", &path, &[], "")
    })
    .join()
    .expect("the GET")
}

#[test]
fn a_stopped_server_leaves_apps_running_unless_told_to_stop_them() {
    // SIGTERM (an upgrade): the app goes on and the next start adopts it.
    let platform = Platform::start();
    let token = platform.create_app("stay");
    let id = push(&platform, "stay", &token, &manifest("stay", ""), &app("v1", 0, 0));
    platform.wait_for_state(&id, "running");
    let boot = platform.get_app("stay", "/boot");
    let data_dir = platform.data_dir();
    let root = platform.stop();
    assert_eq!(get_direct(instance_record(&data_dir), "/boot"), boot);
    let platform = Platform::start_in(root);
    assert_eq!(platform.get_app("stay", "/boot"), boot);

    // --stop-apps: the app gets its SIGTERM and its grace, and nothing is left running.
    let root = platform.stop();
    let platform = Platform::launch_in(root, &["--stop-apps"]);
    assert_eq!(platform.get_app("stay", "/boot"), boot);
    let root = platform.stop();
    assert!(instance_pids(&root.path().join("data")).is_empty(), "an app outlived --stop-apps");
    let mark = root.path().join("data").join("volumes").join("stay").join("stopped-v1");
    assert_eq!(std::fs::read_to_string(mark).unwrap_or_default(), "graceful\n");
}

/// Whether any process's command line contains `needle`.
fn any_process_named(needle: &str) -> bool {
    std::fs::read_dir("/proc").expect("proc").flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(needle))
    })
}

#[test]
fn an_app_that_ignores_sigterm_is_killed_after_its_grace_with_all_it_started() {
    let platform = Platform::start();
    let token = platform.create_app("stuck");
    let marker = format!("tovuk-stuck-app-{}", std::process::id());
    // It ignores SIGTERM and leaves a child behind: both must go once the grace is over.
    let stubborn = app("v1", 0, 0).replacen(
        "$| = 1;",
        &format!("$| = 1; $SIG{{TERM}} = 'IGNORE'; $0 = '{marker}'; if (fork() == 0) {{ $0 = '{marker}-child'; sleep 600; exit 0 }}"),
        1,
    );
    let stubborn = stubborn.replace("$SIG{TERM} = sub {", "my $unused = sub {");
    let manifest = manifest("stuck", "min_healthy = \"0s\"\n").replace("stop_grace = \"5s\"", "stop_grace = \"1s\"");
    let v1 = push(&platform, "stuck", &token, &manifest, &stubborn);
    platform.wait_for_state(&v1, "running");
    assert!(any_process_named(&marker));
    let v2 = push(&platform, "stuck", &token, &manifest, &app("v2", 0, 0));
    platform.wait_for_state(&v2, "running");
    platform.wait_for_state(&v1, "superseded");
    let deadline = Instant::now() + Duration::from_secs(30);
    while any_process_named(&marker) {
        assert!(Instant::now() < deadline, "the stuck app or its child outlived its grace\n{}", platform.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}
