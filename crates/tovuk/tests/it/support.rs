//! Test harness: start a real `tovuk server`, run the CLI as a user would, speak raw HTTP.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_tovuk");

/// A user's environment: its own HOME and XDG dirs, nothing inherited from the developer.
pub struct UserEnv {
    pub home: TempDir,
}

impl UserEnv {
    pub fn new() -> UserEnv {
        UserEnv { home: tempfile::tempdir().expect("temp home") }
    }

    pub fn config_dir(&self) -> PathBuf {
        self.home.path().join(".config").join("tovuk")
    }

    /// A `tovuk` command with this user's environment.
    pub fn tovuk(&self) -> Cli {
        let mut command = Command::new(BIN);
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("TOVUK_") || var.to_string_lossy().starts_with("XDG_") {
                command.env_remove(var);
            }
        }
        command.env("HOME", self.home.path()).env("NO_COLOR", "1").env("RUST_LOG", "warn").stdin(Stdio::null());
        Cli { command, stdin: None }
    }
}

pub struct Cli {
    command: Command,
    stdin: Option<Vec<u8>>,
}

/// What a command did: its exit code and output.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }

    #[track_caller]
    pub fn success(self) -> Run {
        assert_eq!(self.code, 0, "expected success:\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(self.code, code, "expected exit {code}:\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

impl Cli {
    pub fn args<I, S>(mut self, args: I) -> Cli
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command.args(args);
        self
    }

    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Cli {
        self.command.arg(arg);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Cli {
        self.command.env(key, value);
        self
    }

    pub fn current_dir(mut self, dir: &Path) -> Cli {
        self.command.current_dir(dir);
        self
    }

    pub fn stdin(mut self, input: &str) -> Cli {
        self.stdin = Some(input.as_bytes().to_vec());
        self.command.stdin(Stdio::piped());
        self
    }

    pub fn run(mut self) -> Run {
        self.command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = self.command.spawn().expect("spawn tovuk");
        if let Some(input) = self.stdin.take() {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            // A command that refuses its arguments exits without reading stdin.
            let _ = pipe.write_all(&input);
        }
        let output = child.wait_with_output().expect("wait tovuk");
        to_run(output)
    }
}

fn to_run(output: Output) -> Run {
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A temp dir holding a platform's data dir (`data/`). Apps outlive their server by design;
/// they end when the data they run from is dropped.
pub struct DataRoot(TempDir);

impl DataRoot {
    pub fn new() -> DataRoot {
        DataRoot(tempfile::tempdir().expect("temp data root"))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl From<TempDir> for DataRoot {
    fn from(dir: TempDir) -> DataRoot {
        DataRoot(dir)
    }
}

impl Drop for DataRoot {
    fn drop(&mut self) {
        kill_instances(&self.0.path().join("data"));
        unmount_volumes(&self.0.path().join("data"));
    }
}

/// Unmounts the apps' volumes under `data_dir` (they outlive the server, as the apps do),
/// so the temp dir can go.
pub fn unmount_volumes(data_dir: &Path) {
    let volumes = data_dir.join("volumes");
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else { return };
    for mountpoint in mounts.lines().filter_map(|line| line.split(' ').nth(1)) {
        if Path::new(mountpoint).starts_with(&volumes) {
            let _ = std::process::Command::new("umount").arg("-l").arg(mountpoint).status();
        }
    }
}

/// A running `tovuk server` with its own data dir, on ephemeral ports.
pub struct Platform {
    pub child: Option<Child>,
    /// Owns the temp dir; the data dir itself is `data_dir()`, which the server creates.
    pub data_root: DataRoot,
    pub api_url: String,
    pub router_url: String,
    pub user: UserEnv,
    stderr_path: PathBuf,
}

impl Platform {
    pub fn start() -> Platform {
        Platform::start_in(DataRoot::new())
    }

    /// Starts the server with extra `tovuk server` flags.
    pub fn start_with(flags: &[&str]) -> Platform {
        Platform::launch(DataRoot::new(), flags)
    }

    /// Starts the server with its data dir under `data_root` (kept across restarts).
    pub fn start_in(data_root: impl Into<DataRoot>) -> Platform {
        Platform::launch(data_root.into(), &[])
    }

    /// Starts the server on an existing data root with extra `tovuk server` flags.
    pub fn launch_in(data_root: DataRoot, flags: &[&str]) -> Platform {
        Platform::launch(data_root, flags)
    }

    fn launch(data_root: DataRoot, flags: &[&str]) -> Platform {
        // A server killed with -9 leaves its server.json: wait for the new one.
        let _ = std::fs::remove_file(data_root.path().join("data").join("server.json"));
        let user = UserEnv::new();
        let stderr_path = user.home.path().join("server.log");
        let stderr = std::fs::File::create(&stderr_path).expect("server log");
        let child = Command::new(BIN)
            .args(["server", "--listen", "127.0.0.1:0", "--router-listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_root.path().join("data"))
            .args(flags)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn tovuk server");
        let mut platform = Platform {
            child: Some(child),
            data_root,
            api_url: String::new(),
            router_url: String::new(),
            user,
            stderr_path,
        };
        let server_file = platform.data_dir().join("server.json");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = std::fs::read_to_string(&server_file)
                && let Ok(value) = serde_json::from_str::<Value>(&text)
            {
                platform.api_url = value["api_url"].as_str().expect("api_url").to_owned();
                platform.router_url = value["router_url"].as_str().expect("router_url").to_owned();
                return platform;
            }
            if let Some(child) = platform.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("tovuk server exited with {status} before it was up:\n{}", platform.log());
            }
            assert!(Instant::now() < deadline, "tovuk server did not come up:\n{}", platform.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_root.path().join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("admin.token")).expect("admin.token").trim().to_owned()
    }

    pub fn api_addr(&self) -> String {
        self.api_url.trim_start_matches("http://").to_owned()
    }

    /// The CLI pointed at this platform through the environment override, as an admin.
    pub fn tovuk(&self) -> Cli {
        self.tovuk_with_token(&self.admin_token())
    }

    pub fn tovuk_with_token(&self, token: &str) -> Cli {
        self.user.tovuk().env("TOVUK_URL", &self.api_url).env("TOVUK_TOKEN", token)
    }

    /// Sends a signal and waits for the server to exit; returns its exit code.
    pub fn stop_with(&mut self, signal: &str) -> i32 {
        let mut child = self.child.take().expect("server running");
        let status = Command::new("kill").args([format!("-{signal}"), child.id().to_string()]).status().expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "server did not stop on {signal}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the server to exit by itself (it must, within 20 s); its exit code.
    pub fn stop_or_exited(&mut self) -> i32 {
        let mut child = self.child.take().expect("server running");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not exit by itself:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server with SIGKILL and hands back its data root (its apps still running).
    pub fn kill(mut self) -> DataRoot {
        self.stop_with("KILL");
        std::mem::replace(&mut self.data_root, DataRoot::new())
    }

    /// Stops the server with SIGTERM and hands back its data root (its apps still
    /// running), for a restart.
    pub fn stop(mut self) -> DataRoot {
        assert_eq!(self.stop_with("TERM"), 0, "{}", self.log());
        std::mem::replace(&mut self.data_root, DataRoot::new())
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The pids of the app sandboxes a platform's runner recorded under `data_dir`, alive.
pub fn instance_pids(data_dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(data_dir.join("instances")) else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| {
            let record: Value =
                serde_json::from_slice(&std::fs::read(entry.path().join("instance.json")).ok()?).ok()?;
            let pid = u32::try_from(record["pid"].as_u64()?).ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let deploy_id = record["deploy_id"].as_str()?;
            (String::from_utf8_lossy(&cmdline).contains(deploy_id)).then_some(pid)
        })
        .collect()
}

/// Kills every app sandbox recorded under `data_dir`, with everything below it (an app's
/// inner `bwrap` does not die with the outer one).
pub fn kill_instances(data_dir: &Path) {
    for pid in instance_pids(data_dir) {
        let mut tree = vec![pid];
        let mut index = 0;
        while index < tree.len() {
            let children =
                std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", tree[index])).unwrap_or_default();
            tree.extend(children.split_whitespace().filter_map(|child| child.parse::<u32>().ok()));
            index += 1;
        }
        for pid in tree.iter().rev() {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }
}

/// A raw HTTP/1.1 exchange: the status code and body.
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if !body.is_empty() {
        all.push(("Content-Type", "application/json"));
    }
    http_bytes(addr, method, path, &all, body.as_bytes())
}

/// Like [`http`], with a binary body and no content type added.
pub fn http_bytes(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    // The server may refuse before reading the whole body.
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((response.as_str(), ""));
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    (status, if chunked { decode_chunked(body) } else { body.to_owned() })
}

/// Undoes chunked transfer encoding when the body uses it (small bodies in tests).
fn decode_chunked(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size_line, after)) = rest.split_once("\r\n") else { return body.to_owned() };
        let Ok(size) = usize::from_str_radix(size_line.trim(), 16) else { return body.to_owned() };
        if size == 0 {
            return out;
        }
        if after.len() < size {
            return body.to_owned();
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Runs real `git` in `dir` with a throwaway identity and no system or user config.
pub fn git(dir: &Path, args: &[&str]) {
    let output = git_output(dir, args);
    assert!(output.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// Like [`git`], returning what git did instead of asserting success.
pub fn git_output(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=tovuk tests", "-c", "user.email=tests@tovuk.invalid", "-c", "init.defaultBranch=main"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("git is installed (scripts/test installs it)")
}

/// A minimal valid web manifest for `app`.
pub fn web_manifest(app: &str) -> String {
    format!(
        "[app]\nname = \"{app}\"\nkind = \"web\"\ncapabilities = [\"http\"]\n\n[run]\ncommand = \"./server\"\n\n[health]\npath = \"/health\"\n"
    )
}

/// A local git repository a user pushes from.
pub struct GitRepo {
    pub dir: TempDir,
}

/// What a `git push` did: whether it succeeded and everything git printed.
pub struct Push {
    pub ok: bool,
    pub output: String,
}

impl GitRepo {
    /// A repository on `main` with `files` committed.
    pub fn with_files(files: &[(&str, &str)]) -> GitRepo {
        let repo = GitRepo { dir: tempfile::tempdir().expect("tempdir") };
        git(repo.dir.path(), &["init", "-q", "-b", "main"]);
        repo.commit(files, "first");
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `files` and commits them; returns the new commit id.
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> String {
        for (path, contents) in files {
            let file = self.dir.path().join(path);
            std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
            std::fs::write(file, contents).expect("write");
        }
        git(self.dir.path(), &["add", "-A"]);
        git(self.dir.path(), &["commit", "-q", "--allow-empty", "-m", message]);
        self.head()
    }

    pub fn head(&self) -> String {
        let output = git_output(self.dir.path(), &["rev-parse", "HEAD"]);
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// `git push -o detach`: returns once the deploy is recorded (tests wait on it themselves).
    pub fn push(&self, remote: &str, args: &[&str]) -> Push {
        let mut full = vec!["push", "-o", "detach", remote];
        full.extend_from_slice(args);
        self.git_push(&full)
    }

    /// A plain `git push`, which follows the deploy until it runs or fails.
    pub fn push_following(&self, remote: &str, args: &[&str]) -> Push {
        let mut full = vec!["push", remote];
        full.extend_from_slice(args);
        self.git_push(&full)
    }

    fn git_push(&self, full: &[&str]) -> Push {
        let output = git_output(self.dir.path(), full);
        Push {
            ok: output.status.success(),
            output: format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)),
        }
    }
}

impl Platform {
    /// The app's git remote with `token` as the password.
    pub fn remote(&self, app: &str, token: &str) -> String {
        format!("http://deploy:{token}@{}/git/{app}.git", self.api_addr())
    }

    /// Creates an app and returns its deploy token.
    pub fn create_app(&self, app: &str) -> String {
        let created = self.tovuk().args(["app", "create", app, "--json"]).run().success().json();
        created["deploy_token"]["secret"].as_str().expect("deploy token").to_owned()
    }

    /// The refs of an app's repository on the server, read with git directly.
    pub fn server_refs(&self, app: &str) -> String {
        let repo = self.data_dir().join("repos").join(format!("{app}.git"));
        let output = git_output(&repo, &["for-each-ref", "--format=%(refname) %(objectname)"]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// The distinct deploy ids a push printed, in order.
pub fn deploy_ids(text: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("dep_") && word.len() == 30 && !ids.iter().any(|id| id == word) {
            ids.push(word.to_owned());
        }
    }
    ids
}

impl Platform {
    /// Pushes `files` as a new commit of a fresh repo to `app` and returns the deploy id.
    pub fn push_files(&self, app: &str, token: &str, files: &[(&str, &str)]) -> String {
        let repo = GitRepo::with_files(files);
        let push = repo.push(&self.remote(app, token), &["--force", "main"]);
        assert!(push.ok, "{}", push.output);
        deploy_ids(&push.output).pop().unwrap_or_else(|| panic!("no deploy id in:\n{}", push.output))
    }

    pub fn deploy(&self, id: &str) -> Value {
        self.tovuk().args(["deploy", "show", id, "--json"]).run().success().json()
    }

    /// Waits (with a deadline, never a fixed sleep) until `done` holds for the deploy.
    pub fn wait_for_deploy(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let deploy = self.deploy(id);
            if done(&deploy) {
                return deploy;
            }
            assert!(Instant::now() < deadline, "deploy {id} never became {what}: {deploy}\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the deploy is in `state`.
    pub fn wait_for_state(&self, id: &str, state: &str) -> Value {
        self.wait_for_deploy(id, state, |deploy| deploy["state"] == state)
    }

    /// Waits until the deploy's build is over: `final_build.status` is set (the runner
    /// may already be taking it further).
    pub fn wait_for_build(&self, id: &str) -> Value {
        self.wait_for_deploy(id, "built", |deploy| {
            !deploy["final_build"]["status"].is_null() || deploy["state"] == "cancelled"
        })
    }

    /// The stored build log of a deploy, as text lines.
    pub fn build_log(&self, id: &str) -> Vec<Value> {
        let run = self.tovuk().args(["logs", "--build", id, "--json"]).run().success();
        run.stdout.lines().map(|line| serde_json::from_str(line).expect("NDJSON")).collect()
    }
}

/// A web manifest for `app` with a `[build]` table.
pub fn build_manifest(app: &str, build: &str) -> String {
    format!("{}\n[build]\n{build}\n", web_manifest(app))
}

/// Whether any process's command line contains `needle`, read from /proc.
pub fn any_process_named(needle: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    entries.flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(needle))
    })
}

/// A tiny HTTP app in Perl (in every Debian): answers `/health` with `health_status`
/// and everything else with `hello <version>`.
pub fn perl_app(version: &str, health_status: &str) -> String {
    perl_server(
        r#"print "listening on $ENV{PORT}\n";"#,
        &format!(
            r#"($status, $body) = $path eq "/health" ? ("{health_status}", "health") : ("200 OK", "hello {version}\n");
  print "served $path\n" unless $path eq "/health";"#
        ),
    )
}

/// A perl HTTP server on `$PORT`: `setup` runs once (output unbuffered), then `handler`
/// answers each request from `$path`, setting `$status` (`200 OK`) and `$body` (`ok`).
pub fn perl_server(setup: &str, handler: &str) -> String {
    format!(
        r#"use IO::Socket::INET;
my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ENV{{PORT}}, Listen => 64, ReuseAddr => 1) or die "cannot listen: $!";
$| = 1; {setup}
while (my $c = $s->accept) {{
  my $req = <$c>;
  next unless defined $req;
  while (my $l = <$c>) {{ last if $l =~ /^\r?\n$/ }}
  my ($path) = $req =~ m{{^\S+ (\S+)}};
  my ($status, $body) = ("200 OK", "ok");
  {handler}
  print $c "HTTP/1.1 $status\r\nContent-Length: " . length($body) . "\r\nConnection: close\r\n\r\n$body";
  close $c;
}}
"#
    )
}

/// A web manifest that runs `perl server.pl`, with a health timeout.
pub fn perl_manifest(app: &str, health_timeout: &str) -> String {
    format!(
        "[app]\nname = \"{app}\"\nkind = \"web\"\ncapabilities = [\"http\"]\n\n[run]\ncommand = \"perl server.pl\"\n\n[health]\npath = \"/health\"\ntimeout = \"{health_timeout}\"\n"
    )
}

impl Platform {
    /// The server's peak resident memory so far (VmHWM), in kB.
    pub fn peak_memory_kb(&self) -> u64 {
        let pid = self.child.as_ref().expect("server").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        status
            .lines()
            .find(|line| line.starts_with("VmHWM:"))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kb| kb.parse().ok())
            .expect("VmHWM")
    }

    pub fn router_addr(&self) -> String {
        self.router_url.trim_start_matches("http://").to_owned()
    }

    /// A GET through the router to `app`.
    pub fn get_app(&self, app: &str, path: &str) -> (u16, String) {
        get_through(&self.router_addr(), app, path)
    }

    /// A request with no body through the router to `app`, waiting up to two minutes.
    pub fn request_app(&self, app: &str, method: &str, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(self.router_addr()).expect("connect router");
        stream.set_read_timeout(Some(Duration::from_secs(120))).expect("timeout");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {app}.localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).expect("send");
        let response = read_answer(stream);
        let status = response.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
        let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
        (status, body)
    }
}

/// Sends a GET for `app` to `addr` and leaves the answer unread (a connection that must
/// be taken, whatever answers it later).
pub fn send_get(addr: &str, app: &str, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("the port refused a connection");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {app}.localhost\r\nConnection: close\r\n\r\n").expect("send");
    stream
}

/// The whole answer on `stream`.
pub fn read_answer(mut stream: TcpStream) -> String {
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// A GET through the router: the whole answer, lowercased (headers included).
pub fn raw_get(router: &str, app: &str, path: &str) -> String {
    read_answer(send_get(router, app, path)).to_lowercase()
}

/// A GET to `app` through the router listening at `router_addr`.
pub fn get_through(router_addr: &str, app: &str, path: &str) -> (u16, String) {
    {
        let host = format!("{app}.localhost");
        let mut stream = TcpStream::connect(router_addr).expect("connect router");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).expect("send");
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let response = String::from_utf8_lossy(&response).into_owned();
        let status = response.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
        let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
        (status, body)
    }
}

/// Runs `tovuk server` expecting it to refuse to start: its exit code and stderr.
pub fn start_failure(args: &[&str], data_dir: &Path) -> (i32, String) {
    let output = Command::new(BIN)
        .arg("server")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::null())
        .output()
        .expect("run server");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// A project directory holding `files` (not a git repository): what `tovuk deploy` uploads.
pub fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, contents) in files {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(file, contents).expect("write");
    }
    dir
}

impl Platform {
    /// Polls `tovuk logs APP` until a line holds `needle` (output is shipped in batches); the
    /// whole output.
    pub fn wait_for_log(&self, app: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let logs = self.tovuk().args(["logs", app]).run().success().stdout;
            if logs.contains(needle) {
                return logs;
            }
            assert!(Instant::now() < deadline, "`{needle}` never showed in the logs of {app}:\n{logs}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
