//! `[limits] instances`: that many instances run, the router balances between them, each
//! is health-gated, and a deploy rolls them in one at a time.

use crate::support::*;
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An app answering `/` with `<version> <slot>`; `/health` answers `health_status`, except
/// from the slot `sick_slot` (if any), which answers 500. It starts listening after
/// `delay` seconds.
fn replica(version: &str, sick_slot: Option<u32>, delay: u32) -> String {
    let sick = sick_slot.map_or_else(|| "-1".to_owned(), |slot| slot.to_string());
    // Before the listener exists, so the health gate cannot pass sooner.
    let server = perl_server(
        "",
        &format!(
            r#"my $sick = $ENV{{TOVUK_INSTANCE}} == {sick};
  if ($path eq "/health") {{ ($status, $body) = $sick ? ("500 Sick", "sick") : ("200 OK", "ok"); }}
  else {{ $body = "{version} $ENV{{TOVUK_INSTANCE}}"; }}"#
        ),
    );
    format!("sleep {delay};\n{server}")
}

fn manifest(app: &str, instances: u32) -> String {
    format!(
        "{}[limits]\ninstances = {instances}\n",
        perl_manifest(app, "20s").replace("timeout", "min_healthy = \"1s\"\ntimeout")
    )
}

/// What `n` requests through the router answered: (version, slot) pairs.
fn answers(platform: &Platform, app: &str, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|_| {
            let (status, body) = platform.get_app(app, "/");
            assert_eq!(status, 200, "{body}");
            let (version, slot) = body.split_once(' ').expect("`version slot`");
            (version.to_owned(), slot.to_owned())
        })
        .collect()
}

fn instances_of(platform: &Platform, app: &str) -> serde_json::Value {
    platform.tovuk().args(["app", "status", app, "--json"]).run().success().json()["instances"].clone()
}

/// Waits until the app's current deploy has `n` healthy instances (a deploy is `running`
/// from its first); returns them.
fn wait_healthy(platform: &Platform, app: &str, n: usize) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let instances = instances_of(platform, app);
        let healthy = instances.as_array().into_iter().flatten().filter(|i| i["status"] == "healthy").count();
        if healthy == n {
            return instances;
        }
        assert!(Instant::now() < deadline, "not {n} healthy instances: {instances}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn instances_are_balanced_health_gated_and_rolled_in_one_at_a_time() {
    let platform = Platform::start();
    let token = platform.create_app("many");
    let v1 = platform.push_files(
        "many",
        &token,
        &[("tovuk.toml", &manifest("many", 3)), ("server.pl", &replica("v1", None, 0))],
    );
    platform.wait_for_state(&v1, "running");
    let instances = wait_healthy(&platform, "many", 3);
    assert_eq!(instances.as_array().map(Vec::len), Some(3), "{instances}");
    let ports: HashSet<u64> = instances.as_array().into_iter().flatten().filter_map(|i| i["port"].as_u64()).collect();
    assert_eq!(ports.len(), 3, "{instances}");
    for (slot, instance) in instances.as_array().into_iter().flatten().enumerate() {
        assert_eq!(instance["slot"], slot, "{instances}");
        assert_eq!(instance["status"], "healthy", "{instances}");
    }
    // Balanced: every instance answers its share.
    let slots: BTreeSet<String> = answers(&platform, "many", 30).into_iter().map(|(_, slot)| slot).collect();
    assert_eq!(slots, BTreeSet::from(["0".into(), "1".into(), "2".into()]));

    // Each instance is health-gated: one that never passes fails the deploy, and the
    // traffic stays with (or goes back to) every instance of the deploy before.
    let sick = platform.push_files(
        "many",
        &token,
        &[("tovuk.toml", &manifest("many", 3)), ("server.pl", &replica("v2", Some(2), 0))],
    );
    let failed = platform.wait_for_state(&sick, "failed");
    assert_eq!(failed["failure"]["reason"], "health_check_failed", "{failed}");
    assert!(failed["failure"]["first_actionable_line"].to_string().contains("/health answered 500"), "{failed}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = answers(&platform, "many", 12);
        if seen.iter().all(|(version, _)| version == "v1") {
            let slots: BTreeSet<&str> = seen.iter().map(|(_, slot)| slot.as_str()).collect();
            assert_eq!(slots.len(), 3, "{seen:?}");
            break;
        }
        assert!(Instant::now() < deadline, "v2 still answers after it failed: {seen:?}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Rolled in one at a time under load: each new instance takes ~1 s to answer, and
    // while it starts the old ones serve, so both versions answer for a while, and
    // nothing fails.
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let load = {
        let (stop, seen, router) = (stop.clone(), seen.clone(), platform.router_addr());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let answer = get_through(&router, "many", "/");
                if let Ok(mut seen) = seen.lock() {
                    seen.push(answer);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let v3 = platform.push_files(
        "many",
        &token,
        &[("tovuk.toml", &manifest("many", 3)), ("server.pl", &replica("v3", None, 1))],
    );
    platform.wait_for_state(&v3, "running");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !answers(&platform, "many", 6).iter().all(|(version, _)| version == "v3") {
        assert!(Instant::now() < deadline, "v3 never took all the traffic");
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = load.join();
    let seen = seen.lock().expect("answers").clone();
    let failed: Vec<_> = seen.iter().filter(|(status, _)| *status != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the roll: {:?}",
        failed.len(),
        seen.len(),
        failed.first()
    );
    let versions: Vec<&str> = seen.iter().filter_map(|(_, body)| body.split(' ').next()).collect();
    let first_v3 = versions.iter().position(|version| *version == "v3").expect("v3 answered");
    assert!(
        versions[first_v3..].contains(&"v1"),
        "v1 never answered after v3's first instance went live: not rolled one at a time"
    );
    // Once v3 settles, v1's instances are stopped: three processes run.
    let deadline = Instant::now() + Duration::from_secs(30);
    while instance_pids(&platform.data_dir()).len() != 3 {
        assert!(Instant::now() < deadline, "{} instances run", instance_pids(&platform.data_dir()).len());
        std::thread::sleep(Duration::from_millis(100));
    }

    // A restart of the platform adopts all three: the same processes, still balanced.
    let before: BTreeSet<u32> = instance_pids(&platform.data_dir()).into_iter().collect();
    let root = platform.kill();
    let platform = Platform::start_in(root);
    wait_healthy(&platform, "many", 3);
    let after: BTreeSet<u32> = instance_pids(&platform.data_dir()).into_iter().collect();
    assert_eq!(before, after, "the instances were started again instead of adopted");
    // A graceful stop (SIGTERM) lets go of them the same way: their records stay.
    let root = platform.stop();
    let platform = Platform::start_in(root);
    wait_healthy(&platform, "many", 3);
    let after: BTreeSet<u32> = instance_pids(&platform.data_dir()).into_iter().collect();
    assert_eq!(before, after, "a graceful stop lost an instance's record");
    let slots: BTreeSet<String> = answers(&platform, "many", 30).into_iter().map(|(_, slot)| slot).collect();
    assert_eq!(slots.len(), 3, "{slots:?}");
}

#[test]
fn an_instance_whose_sandbox_was_not_made_is_started_again() {
    let platform = Platform::start();
    let token = platform.create_app("steady");
    // The first two starts fail the way bubblewrap does when the kernel refuses a namespace's
    // set-up for a moment (its error first, before the command); the third serves.
    let start = "n=$(cat /data/starts 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/starts; \
                 if [ $n -lt 3 ]; then echo 'bwrap: loopback: Failed RTM_NEWADDR: No child processes' >&2; exit 1; fi; \
                 exec python3 -m http.server $PORT --bind 127.0.0.1";
    let manifest = "[app]\nname = \"steady\"\nkind = \"web\"\ncapabilities = [\"http\"]\n\n[run]\ncommand = \"sh start.sh\"\n\n[health]\npath = \"/\"\n";
    let id = platform.push_files("steady", &token, &[("tovuk.toml", manifest), ("start.sh", start)]);
    platform.wait_for_state(&id, "running");
    assert_eq!(platform.get_app("steady", "/").0, 200);

    // An app's own failure is not taken for the sandbox's: it fails at once.
    let broken = "echo 'error: no such table' >&2; exit 1";
    let id = platform.push_files("steady", &token, &[("tovuk.toml", manifest), ("start.sh", broken)]);
    let failed = platform.wait_for_state(&id, "failed");
    assert_eq!(failed["failure"]["reason"], "health_check_failed", "{failed}");
    let retries = platform.log().matches("the sandbox did not start; starting it again").count();
    assert_eq!(retries, 2, "only the sandbox's failures were started again");
}
