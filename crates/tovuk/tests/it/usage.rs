//! Pricing, the deploy plan (`--dry-run`), real usage metering, hard caps, and the deploy
//! response: what a new user reads before and after their first deploy.

use crate::support::{Platform, perl_app, perl_manifest, start_failure};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A project directory holding `files`.
fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, contents) in files {
        std::fs::write(dir.path().join(path), contents).expect("write");
    }
    dir
}

fn manifest_with_expected(app: &str) -> String {
    format!(
        "{}\n[expected]\nrequests_per_month = 1000000\negress_gb_per_month = 2\ncpu_hours_per_month = 10\n",
        perl_manifest(app, "20s")
    )
}

/// A meter's quantity in one app's usage, 0 when absent.
fn used(report: &Value, app: &str, meter: &str) -> f64 {
    report["accountUsage"]["apps"]
        .as_array()
        .and_then(|apps| apps.iter().find(|entry| entry["app"] == app))
        .and_then(|entry| entry["meters"].as_array())
        .and_then(|meters| meters.iter().find(|entry| entry["meter"] == meter))
        .and_then(|entry| entry["quantity"].as_f64())
        .unwrap_or(0.0)
}

/// Polls `tovuk usage APP --json` until `done` holds.
fn wait_for_usage(platform: &Platform, app: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let report = platform.tovuk().args(["usage", app, "--json"]).run().success().json();
        if done(&report) {
            return report;
        }
        assert!(Instant::now() < deadline, "usage never showed {what}: {report}\n{}", platform.log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_new_user_reads_prices_plans_deploys_caps_requests_and_sees_them_counted() {
    let platform = Platform::start();
    let pricing = platform.tovuk().args(["pricing", "--json"]).run().success().json();
    let meters: Vec<&str> =
        pricing["meters"].as_array().expect("meters").iter().filter_map(|meter| meter["meter"].as_str()).collect();
    for meter in ["requests", "cpu_ms", "memory_gb_s", "egress_bytes", "build_minutes", "storage_gb_month", "kv_reads"]
    {
        assert!(meters.contains(&meter), "{meter} in {meters:?}");
    }
    assert!(pricing["meters"][0]["unitPrice"].as_f64().is_some_and(|price| price > 0.0), "{pricing}");
    let human = platform.tovuk().args(["pricing"]).run().success();
    assert!(human.stdout.contains("requests") && human.stdout.contains("capability `http`"), "{}", human.stdout);

    // Before the app exists: the plan says so and plans its creation, changing nothing.
    let dir = project(&[("tovuk.toml", &manifest_with_expected("shop")), ("server.pl", &perl_app("v1", "200 OK"))]);
    let before = platform.tovuk().args(["deploy", "--dry-run", "--json"]).current_dir(dir.path()).run().code(1);
    let before = before.json();
    assert_eq!(before["appExists"], false);
    assert_eq!(before["requiredFixes"][0]["next"], "tovuk app create shop");
    let apps = platform.tovuk().args(["app", "list", "--json"]).run().success().json();
    assert_eq!(apps["apps"], serde_json::json!([]), "a dry-run creates nothing");

    platform.create_app("shop");
    // Caps may be set before the first deploy.
    platform.tovuk().args(["caps", "set", "shop", "requests", "5"]).run().success();
    let plan = platform
        .tovuk()
        .args(["deploy", "--dry-run", "--json", "--expect", "build_minutes=30"])
        .current_dir(dir.path())
        .run()
        .success()
        .json();
    for field in ["missingConfig", "requiredFixes", "capabilities", "meterPlan", "limits", "usage", "billingEstimate"] {
        assert!(!plan[field].is_null(), "{field} in {plan}");
    }
    assert_eq!(plan["ok"], true);
    assert_eq!(plan["capabilities"]["enabled"], serde_json::json!(["http"]));
    let planned: Vec<&str> =
        plan["meterPlan"].as_array().expect("meterPlan").iter().filter_map(|meter| meter["meter"].as_str()).collect();
    assert_eq!(planned, ["requests", "egress_bytes", "cpu_ms", "memory_gb_s", "build_minutes", "storage_gb_month"]);
    assert_eq!(plan["limits"]["caps"], serde_json::json!({ "requests": 5.0 }));
    let items = plan["billingEstimate"]["lineItems"].as_array().expect("lineItems");
    let requests = items.iter().find(|item| item["meter"] == "requests").expect("requests line");
    assert_eq!(requests["expectedQuantity"], 1_000_000.0);
    let unit_price = requests["unitPrice"].as_f64().expect("unitPrice");
    assert!((requests["amount"].as_f64().expect("amount") - unit_price * 1e6).abs() < 1e-6, "{requests}");
    let build = items.iter().find(|item| item["meter"] == "build_minutes").expect("build line");
    assert_eq!(build["expectedQuantity"], 30.0, "--expect overrides");
    let total: f64 = items.iter().filter_map(|item| item["amount"].as_f64()).sum();
    assert!((plan["billingEstimate"]["total"].as_f64().expect("total") - total).abs() < 1e-5, "{plan}");
    assert_eq!(plan["billingEstimate"]["currency"], "USD");

    // The real deploy: its response carries ids, URL, usage, estimate and next actions.
    let deployed = platform.tovuk().args(["deploy", "--json"]).current_dir(dir.path()).run().success().json();
    let id = deployed["deploy"]["id"].as_str().expect("deploy id").to_owned();
    assert!(deployed["deploy"]["build_job"]["id"].as_str().is_some_and(|id| id.starts_with("bld_")), "{deployed}");
    assert!(deployed["deploy"]["final_build"]["status"].is_null(), "{deployed}");
    assert!(
        deployed["service_url"].as_str().is_some_and(|url| url.starts_with("http://shop.localhost:")),
        "{deployed}"
    );
    assert!(deployed["accountUsage"]["period"]["name"].is_string(), "{deployed}");
    assert!(deployed["billingEstimate"]["lineItems"].is_array(), "{deployed}");
    assert_eq!(deployed["next"][0], format!("tovuk deploy follow {id}"));
    let running = platform.wait_for_state(&id, "running");
    // What the dry-run planned is what the deploy recorded.
    assert_eq!(running["plan"]["capabilities"], plan["capabilities"]);
    assert_eq!(running["plan"]["meterPlan"], plan["meterPlan"]);
    assert_eq!(running["plan"]["limits"], plan["limits"]);

    // Five requests pass; the sixth meets the cap with the fix in its body.
    for n in 1..=5 {
        assert_eq!(platform.get_app("shop", "/").0, 200, "request {n}");
    }
    let (status, body) = platform.get_app("shop", "/");
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("`requests`") && body.contains("tovuk caps set shop requests"), "{body}");

    let usage = wait_for_usage(&platform, "shop", "5 requests", |report| used(report, "shop", "requests") >= 5.0);
    assert_eq!(used(&usage, "shop", "requests"), 5.0, "refused requests are not billed: {usage}");
    let account = platform.tovuk().args(["usage", "--json"]).run().success().json();
    assert_eq!(used(&account, "shop", "requests"), 5.0, "{account}");
    let account_requests = account["accountUsage"]["meters"]
        .as_array()
        .and_then(|meters| meters.iter().find(|meter| meter["meter"] == "requests"))
        .and_then(|meter| meter["quantity"].as_f64());
    assert_eq!(account_requests, Some(5.0), "{account}");
    let events = usage["events"].as_array().expect("events");
    assert!(events.iter().any(|event| event["meter"] == "requests" && event["stopped"] == "requests"), "{usage}");
    let caps = platform.tovuk().args(["caps", "list", "shop", "--json"]).run().success().json();
    assert_eq!(caps["caps"][0]["state"], "reached");

    // Measured, not estimated: egress by the router, build minutes, memory by the runner.
    let usage = wait_for_usage(&platform, "shop", "egress, build and memory", |report| {
        used(report, "shop", "egress_bytes") > 0.0
            && used(report, "shop", "build_minutes") > 0.0
            && used(report, "shop", "memory_gb_s") > 0.0
    });
    assert!(usage["accountUsage"]["total"].as_f64().is_some_and(|total| total > 0.0), "{usage}");

    // Raising the cap lets traffic through again; unsetting it too.
    platform.tovuk().args(["caps", "set", "shop", "requests", "7"]).run().success();
    assert_eq!(platform.get_app("shop", "/").0, 200);
    platform.tovuk().args(["caps", "unset", "shop", "requests"]).run().success();
    for _ in 0..3 {
        assert_eq!(platform.get_app("shop", "/").0, 200);
    }
    let human = platform.tovuk().args(["usage", "shop"]).run().success();
    assert!(human.stdout.contains("requests") && human.stdout.contains("caps that stopped usage"), "{}", human.stdout);
}

/// `used` of the app's cap on `meter`, as `tovuk caps list` shows it.
fn cap_used(platform: &Platform, app: &str, meter: &str) -> f64 {
    let caps = platform.tovuk().args(["caps", "list", app, "--json"]).run().success().json();
    caps["caps"]
        .as_array()
        .and_then(|caps| caps.iter().find(|cap| cap["meter"] == meter))
        .and_then(|cap| cap["used"].as_f64())
        .unwrap_or_else(|| panic!("no {meter} cap: {caps}"))
}

/// Requests through the router until the first refusal (at most `most`); the 200s.
fn served_until_refused(platform: &Platform, app: &str, most: usize) -> usize {
    for served in 0..most {
        let (status, body) = platform.get_app(app, "/");
        if status != 200 {
            assert_eq!(status, 429, "{body}");
            return served;
        }
    }
    most
}

#[test]
fn a_request_cap_holds_across_kill_9_and_a_clean_restart_costs_none_of_it() {
    let platform = Platform::start();
    let token = platform.create_app("shop");
    platform.tovuk().args(["caps", "set", "shop", "requests", "300"]).run().success();
    let id = platform.push_files(
        "shop",
        &token,
        &[("tovuk.toml", &perl_manifest("shop", "20s")), ("server.pl", &perl_app("v1", "200 OK"))],
    );
    platform.wait_for_state(&id, "running");

    // A burst, then kill -9 at once: the last counts never reach the store.
    for n in 0..120 {
        assert_eq!(platform.get_app("shop", "/").0, 200, "request {n}");
    }
    let platform = Platform::start_in(platform.kill());
    let after_crash = served_until_refused(&platform, "shop", 400);
    assert!(120 + after_crash <= 300, "the cap let {} requests through across the crash", 120 + after_crash);
    let billed = wait_for_usage(&platform, "shop", "the requests", |report| used(report, "shop", "requests") > 0.0);
    assert!(used(&billed, "shop", "requests") <= (120 + after_crash) as f64, "never billed for more than served");
    let counted_for_cap = cap_used(&platform, "shop", "requests");
    assert!(counted_for_cap >= (120 + after_crash) as f64, "the cap sees at least what was served: {counted_for_cap}");

    // A clean stop returns the budget granted ahead: the cap sees exactly what was served.
    platform.tovuk().args(["caps", "set", "shop", "requests", "1000"]).run().success();
    for n in 0..50 {
        assert_eq!(platform.get_app("shop", "/").0, 200, "request {n}");
    }
    let platform = Platform::start_in(platform.stop());
    assert_eq!(cap_used(&platform, "shop", "requests"), counted_for_cap + 50.0, "{}", platform.log());
}

#[test]
fn caps_refuse_unknown_meters_take_effect_below_usage_and_stop_builds() {
    let platform = Platform::start();
    let token = platform.create_app("capped");
    let unknown = platform.tovuk().args(["caps", "set", "capped", "reqests", "5"]).run().code(1);
    assert!(
        unknown.stderr.contains("there is no meter `reqests`") && unknown.stderr.contains("requests, egress_bytes"),
        "{}",
        unknown.stderr
    );
    let negative = platform.tovuk().args(["caps", "set", "capped", "requests", "--", "-1"]).run().code(1);
    assert!(negative.stderr.contains("≥ 0"), "{}", negative.stderr);
    let none = platform.tovuk().args(["caps", "unset", "capped", "requests"]).run().code(1);
    assert!(none.stderr.contains("no cap on `requests`"), "{}", none.stderr);

    let id = platform.push_files(
        "capped",
        &token,
        &[("tovuk.toml", &perl_manifest("capped", "20s")), ("server.pl", &perl_app("v1", "200 OK"))],
    );
    platform.wait_for_state(&id, "running");
    for _ in 0..3 {
        assert_eq!(platform.get_app("capped", "/").0, 200);
    }
    // Below what was used already: the next request is refused at once.
    platform.tovuk().args(["caps", "set", "capped", "requests", "2"]).run().success();
    assert_eq!(platform.get_app("capped", "/").0, 429);
    platform.tovuk().args(["caps", "unset", "capped", "requests"]).run().success();

    // Egress: a cap of one byte stops traffic after the first answer.
    platform.tovuk().args(["caps", "set", "capped", "egress_bytes", "1"]).run().success();
    let (status, body) = platform.get_app("capped", "/");
    assert_eq!(status, 429, "3 answers already sent more than a byte: {body}");
    assert!(body.contains("`egress_bytes`"), "{body}");
    platform.tovuk().args(["caps", "unset", "capped", "egress_bytes"]).run().success();

    // Memory, measured by the runner: a tiny cap stops the app's traffic once usage reaches it.
    platform.tovuk().args(["caps", "set", "capped", "memory_gb_s", "0.000001"]).run().success();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = platform.get_app("capped", "/");
        if status == 429 {
            assert!(body.contains("`memory_gb_s`"), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "the memory cap never stopped traffic\n{}", platform.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    platform.tovuk().args(["caps", "unset", "capped", "memory_gb_s"]).run().success();
    assert_eq!(platform.get_app("capped", "/").0, 200, "removing the cap resumes traffic");

    // Builds: at the build-minutes cap a new deploy is refused before building, and nothing
    // already stored is lost.
    platform.tovuk().args(["caps", "set", "capped", "build_minutes", "0"]).run().success();
    let repo = crate::support::GitRepo::with_files(&[
        ("tovuk.toml", &perl_manifest("capped", "20s")),
        ("server.pl", &perl_app("v2", "200 OK")),
    ]);
    let push = repo.push(&platform.remote("capped", &token), &["--force", "main"]);
    assert!(push.ok, "{}", push.output);
    // The push answers like `tovuk deploy`: service URL, usage, estimate, next.
    assert!(push.output.contains("remote: service URL: http://capped.localhost:"), "{}", push.output);
    assert!(push.output.contains("remote: usage this period ("), "{}", push.output);
    assert!(push.output.contains("remote: billing estimate for a month"), "{}", push.output);
    assert!(
        push.output.contains("refused before building") && push.output.contains("next: tovuk caps list capped"),
        "{}",
        push.output
    );
    let refused = crate::support::deploy_ids(&push.output).pop().expect("deploy id");
    let deploy = platform.deploy(&refused);
    assert_eq!(deploy["state"], "failed");
    assert_eq!(deploy["failure"]["reason"], "cap_reached");
    assert!(
        deploy["failure"]["first_actionable_line"]
            .as_str()
            .is_some_and(|line| line.contains("tovuk caps set capped build_minutes")),
        "{deploy}"
    );
    assert_eq!(platform.get_app("capped", "/").1, "hello v1\n", "the running version keeps serving");
    let caps = platform.tovuk().args(["caps", "list", "capped", "--json"]).run().success().json();
    let stops: Vec<&str> =
        caps["events"].as_array().expect("events").iter().filter_map(|event| event["stopped"].as_str()).collect();
    assert!(stops.contains(&"build") && stops.contains(&"traffic") && stops.contains(&"requests"), "{caps}");
}

#[test]
fn a_dry_run_with_a_broken_manifest_fails_like_check() {
    let platform = Platform::start();
    let broken = "[app]\nname = \"shop\"\nkind = \"web\"\ncapabilities = [\"http\"]\n\n[run]\n";
    let dir = project(&[("tovuk.toml", broken)]);
    let check = platform.tovuk().args(["check", "--json"]).current_dir(dir.path()).run().code(1);
    let dry = platform.tovuk().args(["deploy", "--dry-run", "--json"]).current_dir(dir.path()).run().code(1);
    assert_eq!(dry.json(), check.json());
    let human = platform.tovuk().args(["deploy", "--dry-run"]).current_dir(dir.path()).run().code(1);
    assert!(human.stderr.contains("tovuk.toml:"), "{}", human.stderr);

    let dir = project(&[("tovuk.toml", &perl_manifest("shop", "20s")), ("server.pl", "")]);
    let bad =
        platform.tovuk().args(["deploy", "--dry-run", "--expect", "requests"]).current_dir(dir.path()).run().code(2);
    assert!(bad.stderr.contains("METER=QUANTITY"), "{}", bad.stderr);
    platform.create_app("shop");
    let unknown =
        platform.tovuk().args(["deploy", "--dry-run", "--expect", "reqs=5"]).current_dir(dir.path()).run().code(1);
    assert!(unknown.stderr.contains("there is no meter `reqs`"), "{}", unknown.stderr);
    let removed = platform
        .tovuk()
        .args(["deploy", "--dry-run", "--expect", "sqlite_rows_read=5"])
        .current_dir(dir.path())
        .run()
        .code(1);
    assert!(removed.stderr.contains("there is no meter `sqlite_rows_read`"), "{}", removed.stderr);
    let unplanned =
        platform.tovuk().args(["deploy", "--dry-run", "--expect", "kv_reads=5"]).current_dir(dir.path()).run().code(1);
    assert!(
        unplanned.stderr.contains("`kv_reads` is not billed for this service")
            && unplanned.stderr.contains("capability `kv`"),
        "{}",
        unplanned.stderr
    );
}

#[test]
fn a_bad_price_table_stops_the_server_naming_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = |config: &std::path::Path| {
        vec![
            "--listen".to_owned(),
            "127.0.0.1:0".into(),
            "--router-listen".into(),
            "127.0.0.1:0".into(),
            "--config".into(),
            config.display().to_string(),
        ]
    };
    let default = tovuk_pricing_default();
    for (name, text, expected) in [
        (
            "negative.toml",
            default.replace("requests = 0.0000003", "requests = -1"),
            ":3:12: price of `requests` is negative",
        ),
        (
            "text.toml",
            default.replace("requests = 0.0000003", "requests = \"cheap\""),
            "price of `requests` must be a number",
        ),
        ("missing.toml", remove_line(&default, "kv_writes"), "no price for `kv_writes`"),
        ("typo.toml", default.replace("kv_writes", "kv_wirtes"), "did you mean `kv_writes`"),
        // A table from before the SQLite row meters were removed: line 19 is the first thing to delete.
        (
            "removed.toml",
            format!("{default}sqlite_rows_read = 0.000000001\nsqlite_rows_written = 0.000001\n"),
            ":19:1: meter `sqlite_rows_read` was removed",
        ),
    ] {
        let config = dir.path().join(name);
        std::fs::write(&config, &text).expect("write");
        let data = dir.path().join(format!("data-{name}"));
        let args = args(&config);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stderr) = start_failure(&args, &data);
        assert_eq!(code, 1, "{name}: {stderr}");
        assert!(stderr.contains(&config.display().to_string()) && stderr.contains(expected), "{name}: {stderr}");
        assert!(!data.join("server.json").exists(), "{name}: nothing was started");
    }

    // A valid table is what `tovuk pricing` shows.
    let config = dir.path().join("ok.toml");
    std::fs::write(&config, tovuk_pricing_default().replace("requests = 0.0000003", "requests = 0.5")).expect("write");
    let platform = Platform::start_with(&["--config", &config.display().to_string()]);
    let pricing = platform.tovuk().args(["pricing", "--json"]).run().success().json();
    assert_eq!(pricing["meters"][0]["meter"], "requests");
    assert_eq!(pricing["meters"][0]["unitPrice"], 0.5);
}

/// A complete price table with `requests` on line 3, as an operator would write it.
fn tovuk_pricing_default() -> String {
    let meters = [
        ("requests", "0.0000003"),
        ("egress_bytes", "0.00000000002"),
        ("cpu_ms", "0.00000002"),
        ("memory_gb_s", "0.0000025"),
        ("build_minutes", "0.005"),
        ("storage_gb_month", "0.15"),
        ("kv_reads", "0.0000005"),
        ("kv_writes", "0.000005"),
        ("queue_messages", "0.0000004"),
        ("cron_invocations", "0.0000003"),
        ("object_class_a_ops", "0.0000045"),
        ("object_class_b_ops", "0.00000036"),
        ("object_storage_gb_month", "0.015"),
        ("state_reads", "0.0000002"),
        ("state_writes", "0.000001"),
        ("service_binding_calls", "0.0000001"),
    ];
    let mut text = "[pricing]\ncurrency = \"USD\"\n".to_owned();
    for (meter, price) in meters {
        text.push_str(&format!("{meter} = {price}\n"));
    }
    text
}

fn remove_line(text: &str, key: &str) -> String {
    text.lines().filter(|line| !line.starts_with(&format!("{key} "))).map(|line| format!("{line}\n")).collect()
}
