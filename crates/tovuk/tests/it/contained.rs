//! Hostile apps next to a well-behaved one under load: what one tenant does stays in its
//! sandbox, the neighbour never notices, and the platform stays within its bounds.

use crate::support::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Requests to `app` in a loop on another thread until stopped; counts what was not a 200.
struct Load {
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
    fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        (self.served.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }
}

/// Deploys the well-behaved neighbour and starts load on it.
fn neighbour_under_load(platform: &Platform) -> Load {
    let token = platform.create_app("calm");
    let id = platform.push_files(
        "calm",
        &token,
        &[("tovuk.toml", &perl_manifest("calm", "20s")), ("server.pl", &perl_app("calm", "200 OK"))],
    );
    platform.wait_for_state(&id, "running");
    Load::start(platform.router_addr(), "calm")
}

/// Polls `tovuk logs APP` until a line holds `needle`; the whole output.
fn wait_for_log(platform: &Platform, app: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let logs = platform.tovuk().args(["logs", app]).run().success().stdout;
        if logs.contains(needle) {
            return logs;
        }
        assert!(Instant::now() < deadline, "`{needle}` never showed in the logs of {app}:\n{logs}");
        std::thread::sleep(Duration::from_millis(200));
    }
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
    let logs = wait_for_log(&platform, "loud", "after the flood");
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
