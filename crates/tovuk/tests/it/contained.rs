//! Hostile apps next to a well-behaved one under load: what one tenant does stays in its
//! sandbox, the neighbour never notices, and the platform stays within its bounds.

use crate::support::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Requests to `app` in a loop on another thread until stopped; counts what was not a 200.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicU64>,
    served: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(router: String, app: &str) -> Load {
        let (stop, failed, served) = (Arc::new(AtomicBool::new(false)), Arc::default(), Arc::default());
        let (app, flags) = (app.to_owned(), (stop.clone(), Arc::clone(&failed), Arc::clone(&served)));
        let thread = std::thread::spawn(move || {
            let (stop, failed, served): (Arc<AtomicBool>, Arc<AtomicU64>, Arc<AtomicU64>) = flags;
            while !stop.load(Ordering::Relaxed) {
                let (status, _) = get_through(&router, &app, "/");
                let counter = if status == 200 { &served } else { &failed };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        Load { stop, failed, served, thread: Some(thread) }
    }

    /// Stops the load; (served, failed).
    pub(crate) fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        (self.served.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }
}

/// Deploys the well-behaved neighbour and starts load on it.
pub(crate) fn neighbour_under_load(platform: &Platform) -> Load {
    let token = platform.create_app("calm");
    let id = platform.push_files(
        "calm",
        &token,
        &[("tovuk.toml", &perl_manifest("calm", "20s")), ("server.pl", &perl_app("calm", "200 OK"))],
    );
    platform.wait_for_state(&id, "running");
    Load::start(platform.router_addr(), "calm")
}

#[test]
fn a_300_mb_line_is_cut_as_it_is_read_and_costs_the_platform_no_memory() {
    let platform = Platform::start();
    let load = neighbour_under_load(&platform);
    let before_kb = platform.peak_memory_kb();

    let token = platform.create_app("loud");
    // 300 MB without a newline, then a short line, then it serves.
    let loud = format!(
        "$| = 1; my $chunk = \"a\" x 1048576; print $chunk for 1..300; print \"\\nafter the flood\\n\";\n{}",
        perl_app("loud", "200 OK")
    );
    let id =
        platform.push_files("loud", &token, &[("tovuk.toml", &perl_manifest("loud", "60s")), ("server.pl", &loud)]);
    platform.wait_for_state(&id, "running");
    let logs = platform.wait_for_log("loud", "after the flood");
    assert!(
        logs.contains("[tovuk: line cut at 16384 bytes]") || logs.contains("bytes of output skipped"),
        "the long line is cut or skipped, and says so:\n{}",
        logs.chars().take(2000).collect::<String>()
    );
    let longest = logs.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 17 * 1024, "a log line of {longest} bytes");

    let (served, failed) = load.finish();
    let after_kb = platform.peak_memory_kb();
    eprintln!(
        "platform peak memory: {before_kb} kB before the flood, {after_kb} kB after; neighbour: {served} served, {failed} failed"
    );
    assert_eq!(failed, 0, "the neighbour noticed");
    assert!(served > 0);
    assert!(after_kb < before_kb + 64 * 1024, "the platform grew from {before_kb} kB to {after_kb} kB");
}

/// Waits until the app's instance is reported `failed` (its restore after a restart was
/// refused); its status.
fn wait_for_failed_restore(platform: &Platform, app: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = platform.tovuk().args(["app", "status", app, "--json"]).run().success().json();
        if status["instance"]["status"] == "failed" {
            return status;
        }
        assert!(Instant::now() < deadline, "the restore of {app} did not fail: {status}\n{}", platform.log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An app that does harm on request: `/alloc` takes 1.5 GiB, `/fork` starts up to 1,500
/// processes, `/tmp` writes 200 MB to /tmp. Each answers what it managed.
fn hostile() -> String {
    perl_server(
        r#"$SIG{CHLD} = "IGNORE";"#,
        r#"# The size is computed at run time: perl folds a constant one when it compiles.
  if ($path eq "/alloc") { my $n = 1_500_000_000 + length($path) - 6; my $x = "a" x $n; $body = "allocated " . length($x); }
  if ($path eq "/fork") {
    my $n = 0;
    for (1..1500) { my $pid = fork(); last unless defined $pid; if ($pid == 0) { sleep 5; exit 0 } $n++ }
    $body = "forked $n";
  }
  if ($path eq "/tmp") {
    open(my $f, ">", "/tmp/fill") or die; my $chunk = "x" x 1048576; my $n = 0;
    for (1..200) { print $f $chunk or last; $n++ } close $f;
    my $size = -s "/tmp/fill"; unlink "/tmp/fill"; $body = "wrote $size";
  }"#,
    )
}

#[test]
fn a_hostile_app_is_held_to_its_memory_processes_and_tmp_and_its_neighbour_never_notices() {
    let platform = Platform::start();
    let status = platform.tovuk().args(["status", "--json"]).run().success().json();
    let limits = &status["limits"];
    eprintln!("enforced here: {limits}");
    if limits["memory"] != true || limits["pids"] != true {
        // /v1/status says so, and the docs; nothing more to hold here.
        let notes = limits["notes"].to_string();
        assert!(notes.contains("not enforced") || notes.contains("is not limited"), "{limits}");
        return;
    }
    assert_eq!(limits["tmp_size"], true);
    let load = neighbour_under_load(&platform);

    let token = platform.create_app("greedy");
    // Enough memory that the fork loop meets the pids limit first.
    let manifest = format!("{}\n[limits]\nmemory_mb = 256\n", perl_manifest("greedy", "20s"))
        .replace("path = \"/health\"", "path = \"/\"");
    let id = platform.push_files("greedy", &token, &[("tovuk.toml", &manifest), ("server.pl", &hostile())]);
    platform.wait_for_state(&id, "running");
    let inspection = platform.tovuk().args(["app", "inspect", "greedy", "--json"]).run().success().json();
    assert_eq!(inspection["limits"]["memory_mb"], 256, "{inspection}");
    assert_eq!(inspection["limits"]["pids"], 512, "{inspection}");
    assert_eq!(inspection["limits"]["enforced"], *limits, "{inspection}");

    // Processes: the fork loop stops at the pids limit, inside the sandbox.
    let (status, body) = platform.get_app("greedy", "/fork");
    assert_eq!(status, 200, "{body}");
    let forked: u32 = body.trim_start_matches("forked ").parse().expect("a count");
    assert!(forked < 512, "{forked} processes");
    // /tmp: full at half the memory limit (128 MiB), well before the 200 MB written.
    let (status, body) = platform.get_app("greedy", "/tmp");
    assert_eq!(status, 200, "{body}");
    let wrote: u64 = body.trim_start_matches("wrote ").parse().expect("a size");
    assert!(wrote <= 128 << 20, "{wrote} bytes in /tmp");
    // Memory: killed by the kernel inside the sandbox; the reason is in its log and status.
    let (status, _) = platform.get_app("greedy", "/alloc");
    assert_ne!(status, 200, "1.5 GiB under memory_mb = 256");
    let logs = platform.wait_for_log("greedy", "killed for memory");
    assert!(logs.contains("past its limit of 256 MiB ([limits] memory_mb"), "{logs}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = platform.tovuk().args(["app", "status", "greedy", "--json"]).run().success().json();
        if status["instance"]["restarts"].as_u64().is_some_and(|restarts| restarts >= 1) {
            break;
        }
        assert!(Instant::now() < deadline, "no restart shown: {status}");
        std::thread::sleep(Duration::from_millis(200));
    }

    let (served, failed) = load.finish();
    eprintln!("neighbour: {served} served, {failed} failed; platform peak {} kB", platform.peak_memory_kb());
    assert_eq!(failed, 0, "the neighbour noticed");
}

#[test]
fn a_release_is_read_only_and_a_failed_restore_is_told_without_platform_paths() {
    let platform = Platform::start();
    let app_with = |name: &str, script: &str| {
        let token = platform.create_app(name);
        let id =
            platform.push_files(name, &token, &[("tovuk.toml", &perl_manifest(name, "20s")), ("server.pl", script)]);
        platform.wait_for_state(&id, "running");
        id
    };
    let writer = format!(
        "if (open(my $f, \">\", \"/app/server.pl\")) {{ print \"WROTE /app\\n\" }} else {{ print \"cannot write /app: $!\\n\" }}\n{}",
        perl_app("one", "200 OK")
    );
    app_with("one", &writer);
    let two = app_with("two", &perl_app("two", "200 OK"));
    let logs = platform.wait_for_log("one", "/app");
    assert!(logs.contains("cannot write /app: Read-only file system"), "{logs}");
    assert_eq!(platform.get_app("one", "/").1, "hello one\n", "the release is as it was built");

    // App two's artifact is gone when the platform comes back: its restore fails.
    let digest = platform.deploy(&two)["artifact"]["digest"].as_str().expect("digest").to_owned();
    let root = platform.stop();
    kill_instances(&root.path().join("data"));
    let hex = digest.trim_start_matches("sha256:");
    std::fs::remove_file(root.path().join("data").join("artifacts").join(format!("{hex}.tar.zst"))).expect("remove");
    let platform = Platform::start_in(root);
    let status = wait_for_failed_restore(&platform, "two");
    // The operator's view says why; the public answer says where to look, and names no file.
    assert!(status.to_string().contains("archive"), "{status}");
    let (code, body) = platform.get_app("two", "/");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("tovuk app status"), "{body}");
    assert!(!body.contains(&platform.data_dir().display().to_string()) && !body.contains(hex), "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while platform.get_app("one", "/").1 != "hello one\n" {
        assert!(Instant::now() < deadline, "app one never served again:\n{}", platform.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_artifact_signed_for_another_app_is_refused_at_restore_and_by_verify() {
    let platform = Platform::start();
    // Two apps whose builds make byte-identical output: one archive, a manifest each.
    let manifest = |app: &str| {
        perl_manifest(app, "20s").replace("perl server.pl", "perl out/server.pl")
            + "\n[build]\nbuild = \"mkdir -p out && cp server.pl out/\"\noutput = [\"out\"]\n"
    };
    // One commit pushed to both apps: the same files with the same time pack to the same bytes.
    let repo = GitRepo::with_files(&[("tovuk.toml", &manifest("mine")), ("server.pl", &perl_app("same", "200 OK"))]);
    let mut deploys = Vec::new();
    for app in ["mine", "theirs"] {
        let token = platform.create_app(app);
        let pushed = repo.push(&platform.remote(app, &token), &["main"]);
        let id = deploy_ids(&pushed.output).pop().unwrap_or_else(|| panic!("no deploy: {}", pushed.output));
        platform.wait_for_state(&id, "running");
        deploys.push(id);
    }
    let (mine, theirs) = (&deploys[0], &deploys[1]);
    let digest = platform.deploy(mine)["artifact"]["digest"].as_str().expect("digest").to_owned();
    assert_eq!(platform.deploy(theirs)["artifact"]["digest"], digest.as_str(), "identical outputs share an archive");
    let verified = platform.tovuk().args(["artifact", "verify", mine, "--json"]).run().success().json();
    assert_eq!(verified["bound_ok"], true, "{verified}");

    // Their validly signed manifest put in place of mine: signed, same digest, wrong app.
    let root = platform.stop();
    kill_instances(&root.path().join("data"));
    let artifacts = root.path().join("data").join("artifacts");
    let hex = digest.trim_start_matches("sha256:");
    for ext in ["json", "sig"] {
        std::fs::copy(artifacts.join(format!("{hex}.{theirs}.{ext}")), artifacts.join(format!("{hex}.{mine}.{ext}")))
            .expect("swap the manifest");
    }
    let platform = Platform::start_in(root);
    let status = wait_for_failed_restore(&platform, "mine");
    assert!(status["instance"]["reason"].to_string().contains("belongs to another deploy"), "{status}");
    let verified = platform.tovuk().args(["artifact", "verify", mine, "--json"]).run().json();
    assert_eq!(verified["bound_ok"], false, "{verified}");
    assert_eq!(platform.get_app("mine", "/").0, 503);
    // The app the manifest belongs to runs as before.
    let deadline = Instant::now() + Duration::from_secs(30);
    while platform.get_app("theirs", "/") != (200, "hello same\n".to_owned()) {
        assert!(Instant::now() < deadline, "theirs never served again");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn data_is_held_to_its_size_and_grows_when_the_contract_says_so() {
    let platform = Platform::start();
    let limits = platform.tovuk().args(["status", "--json"]).run().success().json()["limits"].clone();
    if limits["data_quota"] != true {
        assert!(limits["notes"].to_string().contains("/data has no size limit"), "{limits}");
        return;
    }
    let load = neighbour_under_load(&platform);
    // `/fill` writes 1 MiB chunks to /data until a write fails, then says how far it got and why.
    let filler = perl_server(
        "",
        r#"if ($path eq "/fill") {
    open(my $f, ">>", "/data/fill") or die "open: $!"; my $chunk = "x" x 1048576; my $why = "";
    for (1..400) { unless (print $f $chunk and $f->flush) { $why = "$!"; last } }
    close $f; $body = (-s "/data/fill") . " $why"; unlink "/data/fill";
  }"#,
    );
    let manifest = |data_mb: u32| format!("{}\n[limits]\ndata_mb = {data_mb}\n", perl_manifest("filler", "20s"));
    let token = platform.create_app("filler");
    let id = platform.push_files("filler", &token, &[("tovuk.toml", &manifest(64)), ("server.pl", &filler)]);
    platform.wait_for_state(&id, "running");
    let inspection = platform.tovuk().args(["app", "inspect", "filler", "--json"]).run().success().json();
    assert_eq!(inspection["limits"]["data_mb"], 64, "{inspection}");
    let fill = |platform: &Platform| {
        let (status, body) = platform.get_app("filler", "/fill");
        assert_eq!(status, 200, "{body}");
        let (size, why) = body.split_once(' ').expect("`size why`");
        (size.parse::<u64>().expect("a size"), why.to_owned())
    };
    let (size, why) = fill(&platform);
    assert!(size <= 64 << 20 && why.contains("No space left"), "wrote {size} bytes to a 64 MiB /data: {why}");
    // A bigger data_mb grows the volume in place where the machine can (its status says
    // when it cannot, and the app's log says the size it kept).
    let id = platform.push_files("filler", &token, &[("tovuk.toml", &manifest(128)), ("server.pl", &filler)]);
    platform.wait_for_state(&id, "running");
    let (grown, why) = fill(&platform);
    assert!(why.contains("No space left"), "{grown} bytes: {why}");
    if limits["notes"].to_string().contains("/data cannot grow") {
        assert!(grown <= 64 << 20, "{grown} bytes");
        platform.wait_for_log("filler", "/data stays 64 MiB, not the 128 MiB of [limits] data_mb");
    } else {
        assert!(grown > 64 << 20 && grown <= 128 << 20, "{grown} bytes");
    }
    let (served, failed) = load.finish();
    assert_eq!(failed, 0, "the neighbour noticed ({served} served)");
}

#[test]
fn a_release_changed_on_disk_is_unpacked_again_and_what_ran_from_it_is_not_adopted() {
    let platform = Platform::start();
    let token = platform.create_app("kept");
    let original = perl_app("kept", "200 OK");
    let id =
        platform.push_files("kept", &token, &[("tovuk.toml", &perl_manifest("kept", "20s")), ("server.pl", &original)]);
    platform.wait_for_state(&id, "running");
    let before = instance_pids(&platform.data_dir());
    assert_eq!(before.len(), 1);
    let release = platform.data_dir().join("releases").join("kept").join(&id);
    let root = platform.kill();
    // Changed on disk while the platform was down (the app itself only sees it read-only).
    std::fs::write(release.join("server.pl"), perl_app("tampered", "200 OK")).expect("tamper");
    let platform = Platform::start_in(root);
    let deadline = Instant::now() + Duration::from_secs(30);
    while platform.get_app("kept", "/") != (200, "hello kept\n".to_owned())
        || instance_pids(&platform.data_dir()) == before
    {
        assert!(Instant::now() < deadline, "not restored from its artifact:\n{}", platform.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(std::fs::read_to_string(release.join("server.pl")).expect("read"), original);
    assert!(
        !before.iter().any(|pid| instance_pids(&platform.data_dir()).contains(pid)),
        "the changed release's process was adopted"
    );
}
