//! The builder: sandboxed phases from a clean checkout, logs, signed artifacts, faults.

use crate::support::{GitRepo, Platform, any_process_named, build_manifest};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn log_text(platform: &Platform, id: &str) -> String {
    platform
        .build_log(id)
        .iter()
        .filter(|event| event["type"] == "log")
        .map(|event| {
            format!(
                "{} {} {}",
                event["data"]["phase"].as_str().unwrap_or(""),
                event["data"]["stream"].as_str().unwrap_or(""),
                event["data"]["line"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_failing_test_phase_fails_the_deploy_with_its_first_actionable_line() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let manifest = build_manifest(
        "hello",
        "build = \"echo compiling\"\ntypecheck = \"echo types ok\"\ntest = \"echo running 3 tests; echo 'test parse ... FAILED'; echo 'error: expected 2, got 3' >&2; echo 'error: test failed, to rerun pass --lib'; exit 101\"",
    );
    let id = platform.push_files("hello", &token, &[("tovuk.toml", &manifest)]);
    let deploy = platform.wait_for_build(&id);
    assert_eq!(deploy["state"], "failed", "{deploy}");
    assert_eq!(deploy["failure"]["reason"], "phase_failed");
    assert_eq!(deploy["failure"]["phase"], "testing");
    assert_eq!(deploy["failure"]["exit_code"], 101);
    assert_eq!(deploy["failure"]["first_actionable_line"], "error: expected 2, got 3");
    assert_eq!(deploy["final_build"]["status"], "failed");
    let states: Vec<&str> = deploy["state_changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["queued", "building", "typechecking", "testing", "failed"]);
    let phases: Vec<(&str, &str)> = deploy["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .map(|p| (p["phase"].as_str().expect("phase"), p["status"].as_str().expect("status")))
        .collect();
    assert_eq!(phases, [("building", "passed"), ("typechecking", "passed"), ("testing", "failed")]);
    for phase in deploy["phases"].as_array().expect("phases") {
        assert!(phase["started_at"].is_string() && phase["ended_at"].is_string(), "{phase}");
    }
    let human = platform.tovuk().args(["deploy", "show", &id]).run().success();
    assert!(human.stdout.contains("error: expected 2, got 3"), "{}", human.stdout);
}

#[test]
fn a_passing_build_is_sealed_signed_and_verified_and_a_flipped_byte_is_caught() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let manifest = build_manifest(
        "hello",
        "build = \"mkdir -p dist && echo built > dist/app && chmod +x dist/app\"\ntest = \"test -x dist/app\"\noutput = [\"dist\", \"tovuk.toml\"]",
    );
    let id = platform.push_files("hello", &token, &[("tovuk.toml", &manifest), ("notes.txt", "not in the output")]);
    let deploy = platform.wait_for_build(&id);
    assert_eq!(deploy["final_build"]["status"], "succeeded", "{deploy}\n{}", log_text(&platform, &id));
    assert_eq!(deploy["final_build"]["status"], "succeeded");
    let digest = deploy["artifact"]["digest"].as_str().expect("digest").to_owned();
    assert!(digest.starts_with("sha256:"));

    let info = platform.tovuk().args(["artifact", "show", &id, "--json"]).run().success().json();
    assert_eq!(info["manifest"]["digest"], digest.as_str());
    assert_eq!(info["manifest"]["deploy_id"], id.as_str());
    assert_eq!(info["manifest"]["build_id"], deploy["build_job"]["id"]);
    assert_eq!(info["manifest"]["commit_sha"], deploy["source"]["sha"]);
    assert_eq!(info["manifest"]["run_command"], "./server");
    assert_eq!(info["manifest"]["files"], 2);
    let verified = platform.tovuk().args(["artifact", "verify", &id, "--json"]).run().success().json();
    assert_eq!(
        (verified["ok"].as_bool(), verified["signature_ok"].as_bool(), verified["digest_ok"].as_bool()),
        (Some(true), Some(true), Some(true))
    );

    // The key is private; the archive holds exactly the declared output.
    let keys = platform.data_dir().join("keys");
    let key_file = std::fs::read_dir(&keys)
        .expect("keys")
        .flatten()
        .find(|e| !e.file_name().to_string_lossy().ends_with(".pub"))
        .expect("key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(key_file.metadata().expect("meta").permissions().mode() & 0o777, 0o600);
    let archive =
        platform.data_dir().join("artifacts").join(format!("{}.tar.zst", digest.trim_start_matches("sha256:")));
    let mut bytes = std::fs::read(&archive).expect("archive");
    let tar_bytes = zstd::decode_all(&bytes[..]).expect("zstd");
    let mut names: Vec<String> = tar::Archive::new(&tar_bytes[..])
        .entries()
        .expect("entries")
        .map(|e| e.expect("entry").path().expect("path").display().to_string())
        .collect();
    names.sort();
    assert!(
        names.contains(&"dist/app".to_owned())
            && names.contains(&"tovuk.toml".to_owned())
            && !names.iter().any(|n| n.contains("notes")),
        "{names:?}"
    );

    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&archive, &bytes).expect("flip");
    let run = platform.tovuk().args(["artifact", "verify", &id, "--json"]).run().code(1);
    let failed = run.json();
    assert_eq!((failed["ok"].as_bool(), failed["digest_ok"].as_bool()), (Some(false), Some(false)), "{failed}");
    let human = platform.tovuk().args(["artifact", "verify", &id]).run().code(1);
    assert!(human.stdout.contains("FAILED"), "{}", human.stdout);
}

#[test]
fn every_phase_starts_in_the_checkout_with_the_project_root_set() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let probe = "echo \\\"$TOVUK_PHASE pwd=$(pwd) root=$TOVUK_PROJECT_ROOT vary=$VARY_PROJECT_ROOT git=$(test -e .git && echo yes || echo no)\\\"";
    let manifest =
        build_manifest("hello", &format!("build = \"{probe}\"\ntypecheck = \"{probe}\"\ntest = \"{probe}\""));
    let id = platform.push_files("hello", &token, &[("tovuk.toml", &manifest)]);
    assert_eq!(platform.wait_for_build(&id)["final_build"]["status"], "succeeded");
    let log = log_text(&platform, &id);
    for phase in ["building", "typechecking", "testing"] {
        let expected = format!(
            "{phase} stdout {phase} pwd=/workspace/source root=/workspace/source vary=/workspace/source git=no"
        );
        assert!(log.contains(&expected), "missing `{expected}` in:\n{log}");
    }
    let work = platform.data_dir().join("work");
    assert!(std::fs::read_dir(&work).map(|dir| dir.count() == 0).unwrap_or(true), "the workspace was removed");
}

#[test]
fn the_sandbox_denies_the_host_the_keys_and_other_apps() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let other = platform.create_app("other");
    platform.push_files(
        "other",
        &other,
        &[("tovuk.toml", &build_manifest("other", "")), ("secret.txt", "other-app-secret")],
    );
    let data = platform.data_dir();
    let script = format!(
        "for f in {d}/keys/* {d}/repos/other.git/HEAD {d}/state.db {d}/admin.token; do cat $f >/dev/null 2>&1 && echo LEAKED $f || echo denied-read; done; \
         touch /usr/evil 2>/dev/null && echo LEAKED usr || echo denied-usr; \
         touch /etc/evil 2>/dev/null && echo LEAKED etc || echo denied-etc; \
         touch {d}/evil 2>/dev/null && echo LEAKED data || echo denied-data; \
         ls /workspace; echo uid=$(id -u)",
        d = data.display()
    );
    let manifest = build_manifest("hello", &format!("build = \"{script}\""));
    let id = platform.push_files("hello", &token, &[("tovuk.toml", &manifest)]);
    platform.wait_for_build(&id);
    let log = log_text(&platform, &id);
    // The command itself is logged too: look only at what it printed.
    assert!(!log.lines().any(|line| line.contains(" stdout ") && line.contains("LEAKED")), "{log}");
    assert!(
        log.contains("denied-read")
            && log.contains("denied-usr")
            && log.contains("denied-etc")
            && log.contains("denied-data"),
        "{log}"
    );
    assert!(log.contains("uid=1000"), "{log}");
    assert!(!data.join("evil").exists());
}

#[test]
fn a_daemon_started_by_the_build_dies_with_it() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    // A sleep of an unusual length marks the daemon's process.
    let marker = format!("sleep {}", 700_000 + std::process::id() % 100_000);
    let manifest = build_manifest("hello", &format!("build = \"({marker} > /dev/null 2>&1 &) ; echo started\""));
    let id = platform.push_files("hello", &token, &[("tovuk.toml", &manifest)]);
    assert_eq!(platform.wait_for_build(&id)["final_build"]["status"], "succeeded");
    assert!(log_text(&platform, &id).contains("started"), "the daemon was started");
    let deadline = Instant::now() + Duration::from_secs(5);
    while any_process_named(&marker) {
        assert!(Instant::now() < deadline, "the build's daemon outlived the build");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_build_that_never_ends_times_out() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let manifest = build_manifest("hello", "build = \"echo still going; sleep 600\"\ntimeout = \"2s\"");
    let id = platform.push_files("hello", &token, &[("tovuk.toml", &manifest)]);
    let deploy = platform.wait_for_build(&id);
    assert_eq!(deploy["state"], "failed");
    assert_eq!(deploy["failure"]["reason"], "timeout");
    assert_eq!(deploy["failure"]["phase"], "building");
    assert!(deploy["failure"]["first_actionable_line"].as_str().expect("line").contains("timed out after"), "{deploy}");
    assert_eq!(deploy["phases"][0]["status"], "timed_out");
}

#[test]
fn huge_logs_are_capped_with_a_marker_and_the_platform_stays_small() {
    let platform = Platform::start_with(&["--build-log-limit-bytes", "1048576"]);
    let token = platform.create_app("hello");
    // 100 MB of output, in lines.
    let manifest =
        build_manifest("hello", "build = \"yes 'a line of build output that repeats' | head -c 100000000; echo done\"");
    let id = platform.push_files("hello", &token, &[("tovuk.toml", &manifest)]);
    let deploy = platform.wait_for_build(&id);
    assert_eq!(deploy["final_build"]["status"], "succeeded", "{deploy}");
    let log = platform.build_log(&id);
    let text: Vec<&str> =
        log.iter().filter(|e| e["type"] == "log").map(|e| e["data"]["line"].as_str().unwrap_or("")).collect();
    let stored: usize = text.iter().map(|line| line.len() + 1).sum();
    assert!(stored < 1_200_000, "stored {stored} bytes");
    assert!(text.iter().any(|line| line.contains("reached its limit")), "marker present");
    assert!(text.iter().any(|line| line.contains("were not stored")), "summary present");
    let peak_kb = platform.peak_memory_kb();
    assert!(peak_kb < 200 * 1024, "the server's peak memory was {peak_kb} kB for 100 MB of build output");
}

#[test]
fn binary_garbage_and_invalid_utf8_are_stored_and_shown_safely() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let manifest = build_manifest(
        "hello",
        "build = \"printf 'bad \\\\377\\\\376 bytes\\\\n'; printf '\\\\033[31mred\\\\033[0m\\\\n'; head -c 3000 /dev/urandom; echo\"",
    );
    let id = platform.push_files("hello", &token, &[("tovuk.toml", &manifest)]);
    assert_eq!(platform.wait_for_build(&id)["final_build"]["status"], "succeeded");
    let log = log_text(&platform, &id);
    assert!(log.contains("bad \u{fffd}\u{fffd} bytes"), "{log}");
    assert!(log.contains("\\u{1b}[31mred"), "{log}");
    assert!(!log.contains('\u{1b}'), "no raw escape reaches a terminal");
    let human = platform.tovuk().args(["logs", "--build", &id]).run().success();
    assert!(!human.stdout.contains('\u{1b}'));
}

#[test]
fn the_build_cache_persists_between_builds_of_an_app() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let manifest = build_manifest(
        "hello",
        "build = \"if [ -f target/stamp ]; then echo incremental build; else echo fresh build; fi; date > target/stamp\"\ncache = [\"target\"]",
    );
    let first = platform.push_files("hello", &token, &[("tovuk.toml", &manifest), ("v", "1")]);
    assert_eq!(platform.wait_for_build(&first)["final_build"]["status"], "succeeded");
    assert!(log_text(&platform, &first).contains("fresh build"));
    let second = platform.push_files("hello", &token, &[("tovuk.toml", &manifest), ("v", "2")]);
    assert_eq!(platform.wait_for_build(&second)["final_build"]["status"], "succeeded");
    assert!(log_text(&platform, &second).contains("incremental build"), "{}", log_text(&platform, &second));
}

#[test]
fn cancelling_a_build_kills_it_fast_and_removes_its_workspace() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let marker = format!("sleep {}", 800_000 + std::process::id() % 100_000);
    let manifest = build_manifest("hello", &format!("build = \"{marker}\""));
    let id = platform.push_files("hello", &token, &[("tovuk.toml", &manifest)]);
    platform.wait_for_deploy(&id, "running its build", |deploy| deploy["phases"][0]["status"] == "running");
    // The phase is recorded as running just before its sandbox (and its network) starts.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !any_process_named(&marker) {
        assert!(Instant::now() < deadline, "the build's command never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    let cancelled = platform.tovuk().args(["deploy", "cancel", &id, "--json"]).run().success().json();
    assert_eq!(cancelled["state"], "cancelled");
    while any_process_named(&marker) {
        assert!(started.elapsed() < Duration::from_secs(2), "the build's processes outlived the cancel by 2 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let deploy = platform.wait_for_deploy(&id, "cleaned up", |deploy| deploy["phases"][0]["status"] == "cancelled");
    assert_eq!(deploy["final_build"]["status"], "cancelled");
    let work = platform.data_dir().join("work");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_dir(&work).map(|dir| dir.count() > 0).unwrap_or(false) {
        assert!(Instant::now() < deadline, "the workspace was not removed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn logs_follow_streams_lines_while_the_build_runs() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    let manifest = build_manifest("hello", "build = \"echo first line; sleep 2; echo last line\"");
    let id = platform.push_files("hello", &token, &[("tovuk.toml", &manifest)]);
    let mut follow = std::process::Command::new(crate::support::BIN)
        .args(["logs", "--build", &id, "--follow"])
        .env("HOME", platform.user.home.path())
        .env("TOVUK_URL", &platform.api_url)
        .env("TOVUK_TOKEN", platform.admin_token())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("follow");
    let stdout = follow.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.find(|line| line.as_ref().is_ok_and(|line| line.contains("first line")));
    assert!(first.is_some(), "the first line arrived");
    // It arrived while the build was still running: pushed, not read after the fact.
    assert_eq!(platform.deploy(&id)["state"], "building");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|line| line.contains("last line")), "{rest:?}");
    let status = follow.wait().expect("wait");
    assert!(status.success());
}

#[test]
fn a_corrupted_repository_fails_the_build_clearly() {
    let platform = Platform::start();
    let token = platform.create_app("hello");
    // The first build holds the app (one build per app), so the second waits queued.
    let slow = build_manifest("hello", "build = \"sleep 600\"");
    let first = platform.push_files("hello", &token, &[("tovuk.toml", &slow)]);
    platform.wait_for_state(&first, "building");
    let repo = GitRepo::with_files(&[("tovuk.toml", &build_manifest("hello", "")), ("data.txt", "payload")]);
    let push = repo.push(&platform.remote("hello", &token), &["--force", "main"]);
    let second = crate::support::deploy_ids(&push.output).pop().expect("second deploy");
    assert_eq!(platform.deploy(&second)["state"], "queued");
    corrupt_objects(&platform.data_dir().join("repos/hello.git/objects"));
    platform.tovuk().args(["deploy", "cancel", &first]).run().success();
    let deploy = platform.wait_for_build(&second);
    assert_eq!(deploy["state"], "failed", "{deploy}");
    assert_eq!(deploy["failure"]["reason"], "source_unavailable");
    assert!(deploy["failure"]["first_actionable_line"].as_str().expect("line").contains("cannot be read"), "{deploy}");
}

fn corrupt_objects(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).expect("objects").flatten() {
        let path = entry.path();
        if path.is_dir() {
            corrupt_objects(&path);
        } else if path.extension().is_none_or(|ext| ext != "idx") {
            let mut perms = std::fs::metadata(&path).expect("meta").permissions();
            use std::os::unix::fs::PermissionsExt;
            perms.set_mode(0o644);
            std::fs::set_permissions(&path, perms).expect("chmod");
            std::fs::write(&path, b"garbage").expect("corrupt");
        }
    }
}

#[test]
fn kill_9_mid_build_leaves_no_deploy_building_after_restart() {
    let mut platform = Platform::start();
    let token = platform.create_app("hello");
    let marker = format!("sleep {}", 900_000 + std::process::id() % 100_000);
    let id = platform.push_files(
        "hello",
        &token,
        &[("tovuk.toml", &build_manifest("hello", &format!("build = \"{marker}\"")))],
    );
    platform.wait_for_deploy(&id, "running its build", |deploy| deploy["phases"][0]["status"] == "running");
    platform.stop_with("KILL");
    // The build died with the server's process tree (--die-with-parent).
    let deadline = Instant::now() + Duration::from_secs(5);
    while any_process_named(&marker) {
        assert!(Instant::now() < deadline, "the build outlived a kill -9 of the server");
        std::thread::sleep(Duration::from_millis(50));
    }
    let data_root = std::mem::replace(&mut platform.data_root, crate::support::DataRoot::new());
    drop(platform);
    let platform = Platform::start_in(data_root);
    let deploy = platform.deploy(&id);
    assert_eq!(deploy["state"], "failed", "{deploy}");
    assert_eq!(deploy["failure"]["reason"], "platform_restarted");
    assert_eq!(deploy["phases"][0]["status"], "interrupted");
    // The app builds again after the restart.
    let next = platform.push_files("hello", &token, &[("tovuk.toml", &build_manifest("hello", "")), ("v", "2")]);
    assert_eq!(platform.wait_for_build(&next)["final_build"]["status"], "succeeded");
}

const VENV_BUILD: &str = r#"set -e
python3 -m venv --without-pip .venv
# What pip writes for a console script: a shebang naming the venv's interpreter by its path.
printf '#!%s/.venv/bin/python3\nexec(open("server.py").read())\n' "$PWD" > .venv/bin/serve
chmod +x .venv/bin/serve
"#;

const VENV_SERVER: &str = r#"import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
probe_host = []
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get("User-Agent") == "tovuk-health":
            probe_host[:] = [self.headers.get("Host")]
        body = json.dumps({
            "probe_host": probe_host[0] if probe_host else None,
            "web_concurrency": os.environ.get("WEB_CONCURRENCY"),
            "dotenv_shipped": os.path.exists(".env"),
            "cwd": os.getcwd(),
            "prefix": sys.prefix,
            "python": os.readlink(".venv/bin/python3"),
            "alias": os.path.samefile("/app/server.py", "server.py"),
            "mtime": int(os.stat("server.py").st_mtime),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

#[test]
fn a_virtualenv_and_its_console_script_run_from_the_path_they_were_built_at() {
    let platform = Platform::start();
    let token = platform.create_app("venv");
    let manifest = build_manifest("venv", "build = \"sh build.sh\"")
        .replace("command = \"./server\"", "command = \".venv/bin/serve\"")
        .replace("path = \"/health\"", "path = \"/\"");
    let repo = GitRepo::with_files(&[
        ("tovuk.toml", &manifest),
        ("build.sh", VENV_BUILD),
        ("server.py", VENV_SERVER),
        (".env", "SECRET_KEY=dev-only\n"),
    ]);
    let pushed = repo.push(&platform.remote("venv", &token), &["main"]);
    let id = crate::support::deploy_ids(&pushed.output).pop().expect("a deploy");
    let deploy = platform.wait_for_state(&id, "running");
    assert_eq!(deploy["state"], "running", "{deploy}\n{}", log_text(&platform, &id));
    let (status, body) = platform.get_app("venv", "/");
    assert_eq!(status, 200, "{body}");
    let seen: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(seen["cwd"], "/workspace/source", "{seen}");
    assert_eq!(seen["prefix"], "/workspace/source/.venv", "the venv is active: {seen}");
    assert!(seen["python"].as_str().is_some_and(|target| target.starts_with("/usr/")), "{seen}");
    assert_eq!(seen["alias"], true, "/app is the same tree: {seen}");
    // Health probes name the app's service host, as the router does; a WSGI server finds
    // its worker count where Heroku's conventions put it.
    assert_eq!(seen["probe_host"], "venv.localhost", "{seen}");
    assert_eq!(seen["web_concurrency"], "1", "{seen}");
    assert_eq!(seen["dotenv_shipped"], false, "a tracked .env is left out of the artifact: {seen}");
    assert!(pushed.output.contains("dotenv_left_out"), "the push warns about it: {}", pushed.output);
    // Files carry the commit's time, not 0.
    let committed: i64 = crate::support::git_output(repo.dir.path(), &["show", "-s", "--format=%ct", "HEAD"])
        .stdout
        .iter()
        .map(|byte| *byte as char)
        .collect::<String>()
        .trim()
        .parse()
        .expect("commit time");
    assert_eq!(seen["mtime"], committed, "{seen}");
}

const CACHED_BUILD: &str = r#"set -e
# node_modules is cached and shipped; target is cached and only its binary ships.
if [ -f node_modules/dep/index.txt ]; then echo "node_modules restored"; else mkdir -p node_modules/dep && echo "dep $(cat v)" > node_modules/dep/index.txt; fi
mkdir -p target/release target/debug
cp server.pl target/release/app && chmod +x target/release/app
echo scratch > target/debug/big
# Package managers' caches persist too, and never ship.
if [ -f "$PIP_CACHE_DIR/wheel" ]; then echo "pip cache restored"; fi
mkdir -p "$PIP_CACHE_DIR" "$CARGO_HOME" && echo w > "$PIP_CACHE_DIR/wheel"
"#;

#[test]
fn cached_directories_ship_as_output_says_and_package_caches_persist_between_builds() {
    let platform = Platform::start();
    let token = platform.create_app("cached");
    let manifest = build_manifest(
        "cached",
        "build = \"sh build.sh\"\ncache = [\"node_modules\", \"target\"]\noutput = [\"node_modules\", \"target/release/app\"]",
    )
    .replace("command = \"./server\"", "command = \"perl target/release/app\"");
    let app = crate::support::perl_app("v1", "200 OK");
    let files = |version: &str| {
        vec![
            ("tovuk.toml", manifest.clone()),
            ("build.sh", CACHED_BUILD.to_owned()),
            ("server.pl", app.clone()),
            ("v", version.to_owned()),
        ]
    };
    let push = |version: &str| {
        let files = files(version);
        let files: Vec<(&str, &str)> = files.iter().map(|(name, text)| (*name, text.as_str())).collect();
        platform.push_files("cached", &token, &files)
    };
    let first = push("1");
    platform.wait_for_state(&first, "running");
    assert!(!log_text(&platform, &first).contains("restored"), "{}", log_text(&platform, &first));
    let second = push("2");
    platform.wait_for_state(&second, "running");
    let log = log_text(&platform, &second);
    assert!(log.contains("node_modules restored") && log.contains("pip cache restored"), "{log}");
    // The artifact holds the cached node_modules (from the first build) and the one binary.
    let artifact = platform.tovuk().args(["artifact", "show", &second, "--json"]).run().success().json();
    let digest = artifact["manifest"]["digest"].as_str().or(artifact["digest"].as_str()).expect("digest").to_owned();
    let archive =
        platform.data_dir().join("artifacts").join(format!("{}.tar.zst", digest.trim_start_matches("sha256:")));
    assert!(archive.is_file(), "{}", archive.display());
    let listed = std::process::Command::new("tar").arg("--zstd").arg("-tf").arg(&archive).output().expect("tar");
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let mut paths: Vec<&str> = listed.lines().map(|line| line.trim_end_matches('/')).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "node_modules",
            "node_modules/dep",
            "node_modules/dep/index.txt",
            "target",
            "target/release",
            "target/release/app"
        ]
    );
    // A third build still finds both caches: packing put them back.
    let third = push("3");
    platform.wait_for_state(&third, "running");
    let log = log_text(&platform, &third);
    assert!(log.contains("node_modules restored") && log.contains("pip cache restored"), "{log}");
}

#[test]
fn the_operators_build_env_reaches_every_build_and_a_bad_one_stops_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        "[build]\nenv = { PIP_INDEX_URL = \"https://pypi.internal/simple\", https_proxy = \"http://proxy.internal:3128\" }\n",
    )
    .expect("config");
    let config_arg = config.display().to_string();
    let platform = Platform::launch_in(crate::support::DataRoot::new(), &["--config", &config_arg]);
    let token = platform.create_app("env");
    let manifest = build_manifest("env", "build = \"echo index=$PIP_INDEX_URL proxy=$https_proxy\"");
    let id = platform.push_files("env", &token, &[("tovuk.toml", &manifest)]);
    assert_eq!(platform.wait_for_build(&id)["final_build"]["status"], "succeeded");
    let log = log_text(&platform, &id);
    assert!(log.contains("index=https://pypi.internal/simple proxy=http://proxy.internal:3128"), "{log}");

    for (bad, named) in [
        ("[build]\nenv = { PATH = \"/opt/bin\" }\n", "PATH"),
        ("[build]\nenvs = { A = \"b\" }\n", "envs"),
        ("[build]\nenv = { A = 1 }\n", "must be a string"),
    ] {
        std::fs::write(&config, bad).expect("config");
        let data = tempfile::tempdir().expect("data");
        let (code, stderr) = crate::support::start_failure(&["--config", &config_arg], data.path());
        assert_ne!(code, 0, "{bad}");
        assert!(stderr.contains(named) && stderr.contains("[build]"), "{bad}: {stderr}");
    }
}

#[test]
fn a_sandbox_bubblewrap_could_not_make_is_started_again_before_the_build_fails() {
    let platform = Platform::start();
    let token = platform.create_app("flaky");
    // What bubblewrap prints when the kernel refuses a namespace's set-up for a moment, the
    // first thing on stderr before the command runs; here it never stops failing.
    let manifest = build_manifest("flaky", "build = \"echo 'bwrap: loopback: Failed RTM_NEWADDR' >&2; exit 1\"");
    let id = platform.push_files("flaky", &token, &[("tovuk.toml", &manifest)]);
    let deploy = platform.wait_for_build(&id);
    assert_eq!(deploy["failure"]["reason"], "sandbox_unavailable", "{deploy}");
    let log = log_text(&platform, &id);
    assert_eq!(log.matches("the sandbox did not start").count(), 4, "five attempts: {log}");
    // A command's own failure is not taken for the sandbox's.
    let manifest = build_manifest("flaky", "build = \"echo 'it broke' >&2; exit 1\"");
    let id = platform.push_files("flaky", &token, &[("tovuk.toml", &manifest)]);
    let deploy = platform.wait_for_build(&id);
    assert_eq!(deploy["failure"]["reason"], "phase_failed", "{deploy}");
    // (A sandbox the kernel refused for a moment may be retried; the command's failure is not.)
    assert!(!log_text(&platform, &id).contains("the sandbox did not start (it broke)"));
}
