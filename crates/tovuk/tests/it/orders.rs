//! `examples/orders`, deployed as a new user would: the shop sends 10,000 orders to its queue,
//! the platform pushes them to the warehouse, which fails a few on purpose (retried), one
//! poison order ends in the dead-letter queue and `tovuk queue redrive` brings it back; a
//! cron job's runs show in `tovuk cron history`; the shop calls the warehouse through its
//! binding; a State object counts exactly 1,000 under concurrent calls. Everything is
//! checked through the real CLI and HTTP, and the example's files are deployed as they are.

use crate::support::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const SHOP: &[(&str, &str)] = &[
    ("tovuk.toml", include_str!("../../../../examples/orders/shop/tovuk.toml")),
    ("app.py", include_str!("../../../../examples/orders/shop/app.py")),
];

const WAREHOUSE: &[(&str, &str)] = &[
    ("tovuk.toml", include_str!("../../../../examples/orders/warehouse/tovuk.toml")),
    ("app.py", include_str!("../../../../examples/orders/warehouse/app.py")),
    ("db.py", include_str!("../../../../examples/orders/warehouse/db.py")),
    ("tally.py", include_str!("../../../../examples/orders/warehouse/tally.py")),
];

/// The warehouse with `tovuk deploy DIR --follow`, as the README does.
fn deploy_warehouse(platform: &Platform) {
    platform.tovuk().args(["app", "create", "warehouse"]).run().success();
    let dir = project(WAREHOUSE);
    let deployed = platform.tovuk().arg("deploy").arg(dir.path()).arg("--follow").run();
    assert_eq!(deployed.code, 0, "{}\n{}\n{}", deployed.stdout, deployed.stderr, platform.log());
}

/// The shop with `git push` to the remote `tovuk app create` printed, following the deploy.
fn deploy_shop(platform: &Platform) {
    let token = platform.create_app("shop");
    let repo = GitRepo::with_files(SHOP);
    let push = repo.push_following(&platform.remote("shop", &token), &["main"]);
    assert!(push.ok && push.output.contains("is running"), "{}\n{}", push.output, platform.log());
}

/// A request to `app` through the router: the status and the JSON answer.
fn request(platform: &Platform, app: &str, method: &str, path: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(platform.router_addr()).expect("connect router");
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let head =
        format!("{method} {path} HTTP/1.1\r\nHost: {app}.localhost\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    stream.write_all(head.as_bytes()).expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn ok(platform: &Platform, app: &str, method: &str, path: &str) -> Value {
    let (status, answer) = request(platform, app, method, path);
    assert_eq!(status, 200, "{method} {app}{path}: {answer}\n{}", platform.log());
    answer
}

fn cli_json(platform: &Platform, args: &[&str]) -> Value {
    platform.tovuk().args(args).arg("--json").run().success().json()
}

/// Polls `look` until `done` holds (a deadline, never a fixed sleep); the last value.
fn wait_until(what: &str, mut look: impl FnMut() -> Value, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let value = look();
        if done(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} never happened: {value}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One column of the rows a `tovuk sqlite query` on the warehouse's database prints.
fn query(platform: &Platform, sql: &str) -> Vec<Value> {
    let rows = cli_json(platform, &["sqlite", "query", "warehouse", "DB", sql]);
    rows["rows"].as_array().cloned().unwrap_or_default()
}

fn resource<'a>(service: &'a Value, binding: &str) -> &'a Value {
    service["resources"]
        .as_array()
        .and_then(|resources| resources.iter().find(|resource| resource["binding"] == binding))
        .unwrap_or_else(|| panic!("no resource {binding}: {service}"))
}

/// lost, unexpected and duplicates of what the warehouse shipped against what was sent.
fn ledger(platform: &Platform, sent: &BTreeSet<String>) -> (usize, usize, u64) {
    let shipped: BTreeSet<String> = ok(platform, "warehouse", "GET", "/shipped")
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|order| order.as_str().map(str::to_owned))
        .collect();
    let stats = ok(platform, "warehouse", "GET", "/stats");
    let duplicates = stats["duplicates"].as_u64().expect("duplicates");
    (sent.difference(&shipped).count(), shipped.difference(sent).count(), duplicates)
}

#[test]
fn the_orders_example_delivers_10000_orders_dead_letters_and_redrives_the_poison_one_runs_cron_and_calls_its_binding() {
    let started = Instant::now();
    let platform = Platform::start();
    // The binding needs the warehouse running first (else the shop's deploy is refused).
    deploy_warehouse(&platform);
    deploy_shop(&platform);

    // The cron job is scheduled: every minute, its next tick listed.
    let jobs = cli_json(&platform, &["cron", "list", "warehouse"]);
    let tally = &jobs["jobs"][0];
    assert_eq!((tally["binding"].as_str(), tally["schedule"].as_str()), (Some("TALLY"), Some("* * * * *")), "{jobs}");
    assert!(tally["next_run_at"].as_str().is_some_and(|next| next.ends_with(":00.000Z")), "{jobs}");

    // 10,000 orders, sent in batches of 100; every 1000th is flaky, one is poison.
    let produced = ok(&platform, "shop", "POST", "/produce?n=10000");
    assert_eq!(produced["sent"], 10_000, "{produced}");
    let run = produced["run"].as_str().expect("run").to_owned();
    let sent: BTreeSet<String> = (0..10_000).map(|n| format!("{run}-{n}")).collect();
    let flaky: Vec<String> =
        produced["flaky"].as_array().into_iter().flatten().filter_map(|o| o.as_str().map(str::to_owned)).collect();
    assert_eq!(flaky.len(), 10, "{produced}");
    let poison = produced["poison"][0].as_str().expect("a poison order").to_owned();
    let sent_at = started.elapsed();

    // Everything but the poison order ships; the poison one is dead-lettered, out of retries.
    wait_until(
        "9,999 orders shipped and the poison one dead-lettered",
        || {
            let shown = cli_json(&platform, &["queue", "show", "shop", "ORDERS"]);
            json!({"stats": ok(&platform, "warehouse", "GET", "/stats"), "queue": shown})
        },
        |now| now["stats"]["shipped"] == 9_999 && now["queue"]["dead_letter"] == 1,
    );
    let delivered_at = started.elapsed();
    let shown = cli_json(&platform, &["queue", "show", "shop", "ORDERS"]);
    assert_eq!((shown["depth"].as_u64(), shown["in_flight"].as_u64()), (Some(0), Some(0)), "{shown}");
    assert_eq!((shown["delivery"].as_str(), shown["consumer"]["app"].as_str()), (Some("push"), Some("warehouse")));
    assert_eq!((shown["max_retries"].as_u64(), shown["dead_letter_queue"].as_str()), (Some(2), Some("ORDERS_FAILED")));
    let dead = cli_json(&platform, &["queue", "peek", "shop", "ORDERS", "--dead-letter"]);
    let letter = &dead["messages"][0];
    assert_eq!(
        (letter["queue"].as_str(), letter["body"]["order"].as_str()),
        (Some("ORDERS_FAILED"), Some(poison.as_str()))
    );
    assert!(letter["last_error"].as_str().is_some_and(|error| error.starts_with("poison:")), "{dead}");
    let poison_message = letter["id"].as_str().expect("message id").to_owned();
    let (lost, unexpected, _) = ledger(&platform, &sent);
    assert_eq!((lost, unexpected), (1, 0), "only the poison order is missing");
    // `tovuk service show` says the same.
    let service = cli_json(&platform, &["service", "show", "shop"]);
    let orders = resource(&service, "ORDERS");
    assert_eq!(
        (orders["depth"].as_u64(), orders["in_flight"].as_u64(), orders["dead_letter"].as_u64()),
        (Some(0), Some(0), Some(1)),
        "{service}"
    );
    assert_eq!(resource(&service, "ORDERS_FAILED")["depth"], 1, "{service}");

    // Each flaky order failed its first attempt and shipped at its second.
    let flaky_list = flaky.iter().map(|order| format!("'{order}'")).collect::<Vec<_>>().join(",");
    let failed = query(&platform, &format!("SELECT attempt FROM failures WHERE order_id IN ({flaky_list})"));
    assert_eq!(failed, vec![json!([1]); 10], "one failed attempt each");
    let shipped = query(&platform, &format!("SELECT attempt FROM shipped WHERE order_id IN ({flaky_list})"));
    assert_eq!(shipped, vec![json!([2]); 10], "shipped at their retry");
    // The poison order failed 1 + max_retries times.
    let attempts =
        query(&platform, &format!("SELECT attempt FROM failures WHERE order_id = '{poison}' ORDER BY attempt"));
    assert_eq!(attempts, [json!([1]), json!([2]), json!([3])]);

    // Fixed, then redriven: delivered again from attempt 1, and shipped.
    ok(&platform, "warehouse", "POST", "/fix");
    let redriven = cli_json(&platform, &["queue", "redrive", "shop", "ORDERS"]);
    assert_eq!(redriven["redriven"], 1, "{redriven}");
    wait_until(
        "the poison order shipped",
        || ok(&platform, "warehouse", "GET", "/stats"),
        |stats| stats["shipped"] == 10_000,
    );
    // Only the redrive can have brought it: out of the dead-letter queue, at attempt 1 again.
    let row = query(&platform, &format!("SELECT message_id, attempt FROM shipped WHERE order_id = '{poison}'"));
    assert_eq!(row, [json!([poison_message, 1])]);
    let shown = cli_json(&platform, &["queue", "show", "shop", "ORDERS"]);
    assert_eq!((shown["depth"].as_u64(), shown["dead_letter"].as_u64()), (Some(0), Some(0)), "{shown}");
    let (lost, unexpected, duplicates) = ledger(&platform, &sent);
    eprintln!("ledger: 10000 sent, lost {lost}, unexpected {unexpected}, duplicates {duplicates}");
    assert_eq!((lost, unexpected), (0, 0));

    // The cron job, run now rather than waiting for its minute: in `tovuk cron history`, and
    // its tally row counts every order.
    // (A run asked for while the minute's own run goes is skipped: asked again then.)
    let ran = wait_until(
        "a tally run started",
        || platform.tovuk().args(["cron", "run", "warehouse", "TALLY", "--json"]).run().json(),
        |ran| ran["status"] != "skipped",
    );
    let run_id = ran["id"].as_str().expect("run id").to_owned();
    let finished = wait_until(
        "the tally run finished",
        || cli_json(&platform, &["cron", "history", "warehouse", "TALLY"]),
        |history| {
            history["runs"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["id"] == run_id.as_str() && r["status"] != "running")
        },
    );
    let done = finished["runs"].as_array().into_iter().flatten().find(|r| r["id"] == run_id.as_str()).cloned();
    assert_eq!(done.as_ref().map(|r| r["status"].clone()), Some(json!("succeeded")), "{finished}");
    let tallied = query(&platform, &format!("SELECT shipped, failures FROM tallies WHERE run = '{run_id}'"));
    assert_eq!(tallied, [json!([10_000, 13])], "10 flaky and 3 poison attempts failed");
    let service = cli_json(&platform, &["service", "show", "warehouse"]);
    let cron = resource(&service, "TALLY");
    assert!(cron["next_run_at"].is_string() && cron["last_run"]["id"].is_string(), "{service}");

    // The shop calls the warehouse through its binding: the warehouse sees who calls.
    let called = ok(&platform, "shop", "GET", "/warehouse");
    assert_eq!(
        (called["status"].as_u64(), called["warehouse"]["caller"].as_str()),
        (Some(200), Some("shop")),
        "{called}"
    );
    assert_eq!(called["warehouse"]["shipped"], 10_000, "{called}");
    assert!(called["warehouse"]["last_tally"]["run"].is_string(), "{called}");
    // A public request carries no caller.
    assert_eq!(ok(&platform, "warehouse", "GET", "/stats")["caller"], Value::Null);
    let binding = wait_until(
        "the binding's call counted",
        || resource(&cli_json(&platform, &["service", "show", "shop"]), "WAREHOUSE").clone(),
        |binding| {
            let usage = binding["usage"].as_array().into_iter().flatten();
            usage
                .filter(|meter| meter["meter"] == "service_binding_calls")
                .any(|meter| meter["quantity"].as_f64() >= Some(1.0))
        },
    );
    assert_eq!(
        (binding["kind"].as_str(), binding["service"].as_str(), binding["readiness"].as_str()),
        (Some("service-binding"), Some("warehouse"), Some("ready")),
        "{binding}"
    );
    eprintln!(
        "orders: sent by {:.1}s, 9,999 delivered and 1 dead-lettered by {:.1}s, all done in {:.1}s",
        sent_at.as_secs_f64(),
        delivered_at.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn the_orders_example_counts_exactly_1000_with_a_state_object_under_concurrent_calls() {
    let platform = Platform::start();
    deploy_warehouse(&platform);
    let service = cli_json(&platform, &["service", "show", "warehouse"]);
    let state = resource(&service, "COUNTERS");
    assert_eq!((state["kind"].as_str(), state["status"].as_str()), (Some("state"), Some("active")), "{service}");

    // 1,000 increments of one object from 50 clients at once; each read-then-write is exact
    // only because the platform runs one call at a time per object, so every call answers
    // a count of its own, 1 to 1000.
    let platform = std::sync::Arc::new(platform);
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let platform = platform.clone();
            std::thread::spawn(move || {
                (0..20)
                    .map(|_| ok(&platform, "warehouse", "POST", "/count/visits")["count"].as_u64())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut counts: Vec<Option<u64>> = threads.into_iter().flat_map(|thread| thread.join().expect("client")).collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=1000).map(Some).collect::<Vec<_>>());
    let counted = ok(&platform, "warehouse", "GET", "/count/visits");
    assert_eq!(counted, json!({"counter": "visits", "count": 1000}));
}
