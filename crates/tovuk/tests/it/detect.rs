//! Apps without a `tovuk.toml`: the contract detected from a Procfile and language files,
//! shown by `tovuk check`, `tovuk init` and the push, built and answering through the router.

use crate::support::{GitRepo, Platform, deploy_ids};
use std::path::PathBuf;

/// Pushes `files` (no tovuk.toml) to a new app `app`; the push output and its deploy.
fn push_detected(platform: &Platform, app: &str, files: &[(&str, &str)]) -> (String, String) {
    let token = platform.create_app(app);
    let repo = GitRepo::with_files(files);
    let pushed = repo.push(&platform.remote(app, &token), &["main"]);
    assert!(pushed.ok, "{}", pushed.output);
    let id = deploy_ids(&pushed.output).pop().unwrap_or_else(|| panic!("no deploy: {}", pushed.output));
    (pushed.output, id)
}

fn assert_serves(platform: &Platform, app: &str, id: &str, expected: &str) {
    let deploy = platform.wait_for_state(id, "running");
    assert_eq!(deploy["state"], "running", "{deploy}");
    let (status, body) = platform.get_app(app, "/");
    assert_eq!((status, body.trim()), (200, expected), "{app}");
}

const WSGI_APP: &str = "def app(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '19')])\n    return [b'hello from gunicorn']\n";

#[test]
fn a_python_app_with_a_procfile_and_requirements_deploys_on_the_first_push() {
    let platform = Platform::start();
    let procfile = "web: gunicorn app:app\nrelease: python -c \"import gunicorn; print('released with the venv')\"\n";
    let files = [("Procfile", procfile), ("requirements.txt", "gunicorn\n"), ("app.py", WSGI_APP)];
    let (output, id) = push_detected(&platform, "shop", &files);
    assert!(output.contains("no tovuk.toml: detected a python app"), "{output}");
    assert!(output.contains("Procfile: web: gunicorn app:app is the run command"), "{output}");
    assert_serves(&platform, "shop", &id, "hello from gunicorn");
    platform.wait_for_log("shop", "released with the venv");

    // The same detection locally: check, a dry run, and init writing it out.
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    let checked = platform.tovuk().args(["check", "--app", "shop"]).arg(dir.path()).run().success();
    assert!(checked.stderr.contains("detected a python app"), "{}", checked.stderr);
    let planned = platform.tovuk().args(["deploy", "--dry-run", "--app", "shop", "--json"]).arg(dir.path()).run();
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    assert_eq!(planned.json()["detected"]["language"], "python");
    let upload = platform.tovuk().args(["deploy"]).arg(dir.path()).run();
    assert_ne!(upload.code, 0);
    assert!(upload.stderr.contains("--app"), "{}", upload.stderr);
    platform.tovuk().args(["init", "--app", "shop"]).arg(dir.path()).run().success();
    let written = std::fs::read_to_string(dir.path().join("tovuk.toml")).expect("written");
    assert!(written.contains("command = \"gunicorn app:app\""), "{written}");
    let again = platform.tovuk().args(["init"]).arg(dir.path()).run();
    assert_ne!(again.code, 0, "init never overwrites");
    platform.tovuk().arg("check").arg(dir.path()).run().success();
    // In the project's directory, the newest deploy of its app needs no id.
    let shown = platform.tovuk().args(["deploy", "show", "--json"]).current_dir(dir.path()).run().success().json();
    assert_eq!(shown["id"], id.as_str(), "{shown}");
    let built = platform.tovuk().args(["logs", "--build"]).current_dir(dir.path()).run().success();
    assert!(built.stdout.contains("pip install"), "{}", built.stdout);
    let followed = platform.tovuk().args(["deploy", "follow"]).current_dir(dir.path()).run().success();
    assert!(followed.stdout.contains("running"), "{}", followed.stdout);
}

/// What `python3 --version` says of the python3 a build finds: the first on the sandbox's
/// `PATH` (the host's system directories; not this test's `PATH`, which may hold another).
fn sandbox_python_version() -> String {
    let dirs = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];
    let python = dirs.iter().map(|dir| PathBuf::from(dir).join("python3")).find(|path| path.is_file());
    let python = python.expect("a python3 in the host's system directories");
    let output = std::process::Command::new(&python).arg("--version").output().expect("python3 --version");
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let version = printed.split_whitespace().nth(1).unwrap_or_else(|| panic!("no version in {printed:?}"));
    version.to_owned()
}

#[test]
fn a_runtime_version_the_platform_lacks_is_a_build_warning_naming_the_one_that_runs() {
    let platform = Platform::start();
    let version = sandbox_python_version();
    let procfile = "web: python -m http.server --bind 127.0.0.1 $PORT\n";
    let files = [("Procfile", procfile), ("requirements.txt", ""), ("runtime.txt", "python-2.7.18\n")];
    let (output, id) = push_detected(&platform, "legacy", &files);
    // The check cannot know the server's python; the build compares and says which runs.
    assert!(output.contains("runtime.txt asks for Python 2.7.18; the app builds and runs"), "{output}");
    let warning = format!("runtime.txt asks for Python 2.7.18; Python {version} will run (the platform's python3");
    assert_eq!(platform.wait_for_state(&id, "running")["state"], "running");
    let log = platform.tovuk().args(["logs", "--build", &id]).run().success().stdout;
    let line = log.lines().find(|line| line.contains(&warning)).unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("platform") && line.contains("--build-toolchain DIR"), "{line}");

    // Asking for the version that runs (`.python-version` names major.minor) warns of nothing.
    let minor: Vec<&str> = version.split('.').take(2).collect();
    let asked = minor.join(".");
    let files = [("Procfile", procfile), ("requirements.txt", ""), (".python-version", &format!("{asked}\n"))];
    let (output, id) = push_detected(&platform, "current", &files);
    assert!(output.contains(&format!(".python-version asks for Python {asked};")), "{output}");
    assert_eq!(platform.wait_for_state(&id, "running")["state"], "running");
    let log = platform.tovuk().args(["logs", "--build", &id]).run().success().stdout;
    assert!(!log.contains("will run") && !log.contains("asks for"), "{log}");
}

const EXPRESS_APP: &str = "const express = require('express');\nconst app = express();\napp.get('/', (req, res) => res.send('hello from express'));\napp.listen(process.env.PORT);\n";

#[test]
fn a_node_app_with_express_deploys_from_its_package_json() {
    let platform = Platform::start();
    let package = r#"{"name": "web", "dependencies": {"express": "^4"}, "scripts": {"start": "node server.js"}}"#;
    let (output, id) = push_detected(&platform, "web", &[("package.json", package), ("server.js", EXPRESS_APP)]);
    assert!(output.contains("detected a node app"), "{output}");
    assert_serves(&platform, "web", &id, "hello from express");
}

const RUST_APP: &str = r#"use std::io::{Read, Write};
fn main() {
    let port = std::env::var("PORT").expect("PORT");
    let listener = std::net::TcpListener::bind(format!("127.0.0.1:{port}")).expect("bind");
    for stream in listener.incoming().flatten() {
        let mut stream = stream;
        let mut buffer = [0u8; 4096];
        let _ = stream.read(&mut buffer);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\nConnection: close\r\n\r\nhello from rs\n");
    }
}
"#;

/// The directories of the cargo that runs these tests, for `--build-toolchain`.
fn rust_toolchains() -> Vec<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    let rustup_home = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".rustup")));
    [cargo_home, rustup_home].into_iter().flatten().filter(|dir| dir.is_dir()).collect()
}

#[test]
fn a_rust_app_and_a_static_site_deploy_without_a_manifest() {
    let toolchains = rust_toolchains();
    let mut flags = Vec::new();
    for dir in &toolchains {
        flags.push("--build-toolchain".to_owned());
        flags.push(dir.display().to_string());
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let platform = Platform::launch_in(crate::support::DataRoot::new(), &flags);
    let cargo = "[package]\nname = \"hello-rs\"\nversion = \"0.1.0\"\nedition = \"2021\"\n";
    let token = platform.create_app("rs");
    let repo = GitRepo::with_files(&[("Cargo.toml", cargo), ("src/main.rs", RUST_APP)]);
    let pushed = repo.push(&platform.remote("rs", &token), &["main"]);
    assert!(pushed.output.contains("detected a rust app"), "{}", pushed.output);
    let id = deploy_ids(&pushed.output).pop().expect("deploy");
    assert_serves(&platform, "rs", &id, "hello from rs");
    // A second build reuses the cached `target` (the checkout's files carry the new commit's
    // time, so cargo may rebuild the crate itself, never its dependencies' cache from scratch).
    repo.commit(&[("README.md", "hello\n")], "docs");
    let pushed = repo.push(&platform.remote("rs", &token), &["main"]);
    let id = deploy_ids(&pushed.output).pop().expect("deploy");
    assert_serves(&platform, "rs", &id, "hello from rs");
    let log = platform.tovuk().args(["logs", "--build", &id]).run().success().stdout;
    assert!(log.contains("Finished"), "{log}");

    let (output, id) = push_detected(&platform, "site", &[("index.html", "hello from html\n")]);
    assert!(output.contains("detected a static app"), "{output}");
    assert_serves(&platform, "site", &id, "hello from html");
}

#[test]
fn a_project_with_nothing_to_detect_is_refused_naming_what_to_add() {
    let platform = Platform::start();
    let token = platform.create_app("bare");
    let repo = GitRepo::with_files(&[("README.md", "hi\n")]);
    let pushed = repo.push(&platform.remote("bare", &token), &["main"]);
    assert!(!pushed.ok, "{}", pushed.output);
    assert!(pushed.output.contains("nothing to detect a contract from"), "{}", pushed.output);
    assert!(pushed.output.contains("Procfile"), "{}", pushed.output);
    // A Python project without a start command names the Procfile line to add.
    let repo = GitRepo::with_files(&[("requirements.txt", "flask\n")]);
    let pushed = repo.push(&platform.remote("bare", &token), &["main"]);
    assert!(!pushed.ok && pushed.output.contains("web: gunicorn"), "{}", pushed.output);

    // A toolchain the platform lacks (no Go here unless the machine has one) stops the build
    // before it starts, naming the program and how the operator provides it.
    let has_go = ["/usr/bin/go", "/usr/local/bin/go", "/bin/go"].iter().any(|go| std::path::Path::new(go).exists());
    if !has_go {
        let repo =
            GitRepo::with_files(&[("go.mod", "module example.com/hello\n\ngo 1.22\n"), ("main.go", "package main\n")]);
        let id = deploy_ids(&repo.push(&platform.remote("bare", &token), &["--force", "main"]).output)
            .pop()
            .expect("a deploy");
        let deploy = platform.wait_for_state(&id, "failed");
        assert_eq!(deploy["failure"]["reason"], "toolchain_missing", "{deploy}");
        let line = deploy["failure"]["first_actionable_line"].as_str().unwrap_or_default();
        assert!(line.contains("`go`") && line.contains("--build-toolchain"), "{line}");
    }
}

/// A GET with extra request headers through the router: the status and the response head.
fn get_with(platform: &Platform, app: &str, path: &str, headers: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(platform.router_addr()).expect("router");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {app}.localhost\r\n{headers}Connection: close\r\n\r\n").expect("send");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let head = response.split("\r\n\r\n").next().unwrap_or_default().to_owned();
    (status, head)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[test]
fn static_files_carry_a_content_etag_and_the_commit_time_and_answer_304() {
    let platform = Platform::start();
    let token = platform.create_app("pages");
    let repo = GitRepo::with_files(&[("index.html", "<h1>one</h1>\n")]);
    let id = deploy_ids(&repo.push(&platform.remote("pages", &token), &["main"]).output).pop().expect("deploy");
    platform.wait_for_state(&id, "running");
    let (status, head) = get_with(&platform, "pages", "/", "");
    assert_eq!(status, 200, "{head}");
    let etag = header(&head, "etag").expect("an ETag").to_owned();
    let modified = header(&head, "last-modified").expect("Last-Modified").to_owned();
    assert!(!modified.contains("1970"), "the commit's time, not 0: {modified}");
    assert_eq!(get_with(&platform, "pages", "/", &format!("If-None-Match: {etag}\r\n")).0, 304);
    assert_eq!(get_with(&platform, "pages", "/", &format!("If-Modified-Since: {modified}\r\n")).0, 304);
    assert_eq!(get_with(&platform, "pages", "/", "If-None-Match: \"other\"\r\n").0, 200);

    // New content: a new ETag, and the old one no longer matches.
    repo.commit(&[("index.html", "<h1>two</h1>\n")], "two");
    let id = deploy_ids(&repo.push(&platform.remote("pages", &token), &["main"]).output).pop().expect("deploy");
    platform.wait_for_state(&id, "running");
    let (status, head) = get_with(&platform, "pages", "/", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(status, 200, "{head}");
    assert_ne!(header(&head, "etag"), Some(etag.as_str()));

    // The router's access log: one line per request, in the app's log, filterable.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let logs = platform.tovuk().args(["logs", "pages", "--stream", "access"]).run().success().stdout;
        let lines: Vec<&str> = logs.lines().collect();
        if lines.iter().filter(|line| line.contains("GET / 304")).count() >= 2 {
            assert!(lines.iter().all(|line| line.contains(" router ") && line.contains(" access ")), "{logs}");
            assert!(lines.iter().any(|line| line.contains("GET / 200")), "{logs}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no access log lines:\n{logs}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let refused = platform.tovuk().args(["logs", "pages", "--stream", "nope"]).run();
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("stdout, stderr, platform or access"), "{}", refused.stderr);
}

/// A background worker: appends `tick <version>` to a file in /data, a few times a second.
const WORKER: &str = "import time\nversion = open('version.txt').read().strip()\nprint('worker', version, 'up', flush=True)\nwhile True:\n    with open('/data/ticks.txt', 'a') as ticks:\n        ticks.write('tick ' + version + '\\n')\n    time.sleep(0.1)\n";

/// Answers with the worker's last tick.
const TICKS: &str = "import os\nfrom http.server import BaseHTTPRequestHandler, HTTPServer\nclass H(BaseHTTPRequestHandler):\n    def do_GET(self):\n        try:\n            lines = open('/data/ticks.txt').read().splitlines()\n        except FileNotFoundError:\n            lines = ['none']\n        body = lines[-1].encode()\n        self.send_response(200)\n        self.send_header('Content-Length', str(len(body)))\n        self.end_headers()\n        self.wfile.write(body)\nHTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()\n";

/// The last lines of the worker's file, as the app answers them (polled until `done`).
fn wait_answer(platform: &Platform, app: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, body) = platform.get_app(app, "/");
        if done(&body) {
            return body;
        }
        assert!(std::time::Instant::now() < deadline, "the app answers {body:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_procfile_worker_runs_next_to_the_web_process_and_is_replaced_with_it() {
    let platform = Platform::start();
    let files = [
        ("Procfile", "web: python web.py\nworker: python worker.py\n"),
        ("requirements.txt", ""),
        ("web.py", TICKS),
        ("worker.py", WORKER),
        ("version.txt", "v1\n"),
    ];
    let token = platform.create_app("jobs");
    let repo = GitRepo::with_files(&files);
    let pushed = repo.push(&platform.remote("jobs", &token), &["main"]);
    assert!(pushed.output.contains("Procfile: worker: python worker.py runs next to it"), "{}", pushed.output);
    let first = deploy_ids(&pushed.output).pop().unwrap_or_else(|| panic!("no deploy: {}", pushed.output));
    platform.wait_for_state(&first, "running");
    wait_answer(&platform, "jobs", |body| body == "tick v1");
    // The worker is reported once it has stayed up a moment, after the web went live.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = platform.tovuk().args(["app", "status", "jobs", "--json"]).run().success().json();
        let processes: Vec<(Option<&str>, Option<&str>)> = status["instances"]
            .as_array()
            .expect("instances")
            .iter()
            .map(|instance| (instance["process"].as_str(), instance["status"].as_str()))
            .collect();
        if processes == [(None, Some("healthy")), (Some("worker"), Some("healthy"))] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let logs = platform.wait_for_log("jobs", "worker v1 up");
    assert!(logs.contains(&format!("{first}.worker/")), "{logs}");

    // A new deploy brings a new worker; the old one stops once the new release is settled.
    repo.commit(&[("version.txt", "v2\n")], "v2");
    let pushed = repo.push(&platform.remote("jobs", &token), &["main"]);
    let second = deploy_ids(&pushed.output).pop().unwrap_or_else(|| panic!("no deploy: {}", pushed.output));
    platform.wait_for_state(&second, "running");
    platform.wait_for_state(&first, "superseded");
    let ticks = || std::fs::read_to_string(platform.data_dir().join("volumes/jobs/ticks.txt")).unwrap_or_default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let seen = ticks();
        let last: Vec<&str> = seen.lines().rev().take(20).collect();
        if last.len() == 20 && last.iter().all(|line| *line == "tick v2") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the v1 worker still writes: {last:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // The worker outlives a kill -9 of the platform, and the next start adopts it.
    let worker_pid = |platform: &Platform| {
        let status = platform.tovuk().args(["app", "status", "jobs", "--json"]).run().success().json();
        status["instances"].as_array().and_then(|instances| {
            instances
                .iter()
                .find(|instance| instance["process"] == "worker" && instance["status"] == "healthy")
                .and_then(|instance| instance["pid"].as_i64())
        })
    };
    let before = worker_pid(&platform).expect("a healthy worker");
    let platform = Platform::start_in(platform.kill());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while worker_pid(&platform) != Some(before) {
        assert!(std::time::Instant::now() < deadline, "the worker {before} was not adopted");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
