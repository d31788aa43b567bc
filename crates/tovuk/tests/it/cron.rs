//! Cron resources: a job's command runs from the app's current release in its sandbox
//! (config, resources, `/data`), on its schedule or at once with `tovuk cron run`; every
//! tick is recorded (succeeded, failed with its exit code, timed out, skipped while the
//! last run goes on or at a cap); a tick missed while the platform was down runs at start.

use crate::support::Platform;
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Serves what the cron jobs wrote to `/data/runs.txt`.
const SERVE: &str = "import os\nfrom http.server import BaseHTTPRequestHandler, HTTPServer\nclass H(BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = open('/data/runs.txt', 'rb').read() if os.path.exists('/data/runs.txt') else b''\n        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)\nHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

/// A job that uses the app's SQLite database, config and `/data`, and says what it got.
const JOB: &str = "import os, sqlite3\nrun = os.environ['TOVUK_CRON_RUN_ID']\ndb = sqlite3.connect(os.environ['DB'])\ndb.execute('CREATE TABLE IF NOT EXISTS runs (id TEXT)')\ndb.execute('INSERT INTO runs VALUES (?)', (run,))\ndb.commit()\nopen('/data/runs.txt', 'a').write(run + '\\n')\nprint('ran', run, 'at', os.environ['TOVUK_CRON_SCHEDULED_AT'], 'greeting', os.environ.get('GREETING'))\n";

const FAIL: &str = "import sys\nprint('error: no such table: reports')\nsys.exit(3)\n";

fn manifest(app: &str, jobs: &str) -> String {
    format!(
        "[app]\nname = \"{app}\"\nkind = \"web\"\ncapabilities = [\"http\", \"sqlite\", \"cron\"]\n\n[run]\ncommand = \"python3 serve.py\"\n\n[health]\npath = \"/\"\n\n[[resources]]\nkind = \"sqlite\"\nbinding = \"DB\"\n{jobs}"
    )
}

fn job(binding: &str, schedule: &str, command: &str, extra: &str) -> String {
    format!(
        "\n[[resources]]\nkind = \"cron\"\nbinding = \"{binding}\"\nschedule = \"{schedule}\"\ncommand = \"{command}\"\n{extra}"
    )
}

fn deploy(platform: &Platform, app: &str, jobs: &str) {
    let token = platform.create_app(app);
    let manifest = manifest(app, jobs);
    let files = [("tovuk.toml", manifest.as_str()), ("serve.py", SERVE), ("job.py", JOB), ("fail.py", FAIL)];
    let id = platform.push_files(app, &token, &files);
    platform.wait_for_state(&id, "running");
}

fn history(platform: &Platform, app: &str) -> Vec<Value> {
    let history = platform.tovuk().args(["cron", "history", app, "--limit", "100", "--json"]).run().success().json();
    history["runs"].as_array().cloned().unwrap_or_default()
}

/// Waits until some run of the app satisfies `done`; returns it.
fn wait_run(platform: &Platform, app: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let runs = history(platform, app);
        if let Some(run) = runs.iter().find(|run| done(run)) {
            return run.clone();
        }
        assert!(Instant::now() < deadline, "no run {what}: {runs:?}\n{}", platform.log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn run_now(platform: &Platform, app: &str, binding: &str) -> Value {
    platform.tovuk().args(["cron", "run", app, binding, "--json"]).run().success().json()
}

#[test]
fn cron_run_runs_a_job_from_the_current_release_and_records_how_each_run_ended() {
    let platform = Platform::start();
    let never = "0 0 1 1 *";
    let jobs = [
        job("REPORT", never, "python3 job.py", ""),
        job("FAIL", never, "python3 fail.py", ""),
        job("SLOW", never, "sleep 30", "timeout = \"2s\"\n"),
    ]
    .concat();
    let token = platform.create_app("ticker");
    platform.tovuk().args(["env", "set", "ticker", "GREETING=hi"]).run().success();
    let manifest = manifest("ticker", &jobs);
    let files = [("tovuk.toml", manifest.as_str()), ("serve.py", SERVE), ("job.py", JOB), ("fail.py", FAIL)];
    let deploy_id = platform.push_files("ticker", &token, &files);
    platform.wait_for_state(&deploy_id, "running");

    let list = platform.tovuk().args(["cron", "list", "ticker", "--json"]).run().success().json();
    let jobs = list["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 3, "{list}");
    assert_eq!(jobs[0]["schedule"], never, "{list}");
    assert!(jobs[0]["next_run_at"].as_str().is_some_and(|next| next.contains("-01-01T00:00:00")), "{list}");
    assert!(jobs[0]["last_run"].is_null(), "{list}");

    // A run now: from the current release, with the app's config, database and /data.
    let started = run_now(&platform, "ticker", "REPORT");
    assert_eq!(started["status"], "running", "{started}");
    assert_eq!(started["trigger"], "manual", "{started}");
    let id = started["id"].as_str().expect("run id").to_owned();
    assert!(id.starts_with("run_"), "{id}");
    let ran = wait_run(&platform, "ticker", "succeeded", |run| run["id"] == id.as_str() && run["status"] != "running");
    assert_eq!(ran["status"], "succeeded", "{ran}");
    assert_eq!(ran["exit_code"], 0, "{ran}");
    assert_eq!(ran["deploy_id"], deploy_id.as_str(), "{ran}");
    let logs = platform.wait_for_log("ticker", &format!("ran {id}"));
    let line = logs.lines().find(|line| line.contains(&format!("ran {id}"))).unwrap_or_default();
    let scheduled = ran["scheduled_at"].as_str().unwrap_or_default();
    assert!(line.contains(&format!("{deploy_id}.cron.REPORT")), "labelled in the app's log: {line}");
    assert!(line.contains(&format!("at {scheduled} greeting hi")), "{line}");
    assert_eq!(platform.get_app("ticker", "/").1, format!("{id}\n"), "/data is the app's own");
    let rows = platform.tovuk().args(["sqlite", "query", "ticker", "DB", "SELECT id FROM runs", "--json"]).run();
    assert_eq!(rows.success().json()["rows"], serde_json::json!([[id]]));

    // A command that exits 1 or more: failed, with its exit code and what it said.
    let followed = platform.tovuk().args(["cron", "run", "ticker", "FAIL", "--follow"]).run().code(1);
    assert!(followed.stdout.contains("error: no such table: reports"), "its output follows:\n{}", followed.stdout);
    let failed = wait_run(&platform, "ticker", "failed", |run| run["binding"] == "FAIL");
    assert_eq!((failed["status"].as_str(), failed["exit_code"].as_i64()), (Some("failed"), Some(3)), "{failed}");
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("exited with code 3") && reason.contains("no such table"), "{reason}");

    // A run while the job's last one still goes is skipped, naming it; one past its
    // timeout is stopped.
    let slow = run_now(&platform, "ticker", "SLOW");
    let slow_id = slow["id"].as_str().expect("run id").to_owned();
    let again = platform.tovuk().args(["cron", "run", "ticker", "SLOW", "--json"]).run().code(1).json();
    assert_eq!(again["status"], "skipped", "{again}");
    assert!(again["reason"].as_str().is_some_and(|why| why.contains(&slow_id)), "{again}");
    let timed_out =
        wait_run(&platform, "ticker", "timed out", |run| run["id"] == slow_id.as_str() && run["status"] != "running");
    assert_eq!(timed_out["status"], "timed_out", "{timed_out}");
    assert!(timed_out["reason"].as_str().is_some_and(|why| why.contains("timeout of 2s")), "{timed_out}");

    // Each run started counts as one `cron_invocations`; at the cap the next is skipped.
    platform.tovuk().args(["caps", "set", "ticker", "cron_invocations", "3"]).run().success();
    let capped = platform.tovuk().args(["cron", "run", "ticker", "REPORT", "--json"]).run().code(1).json();
    assert_eq!(capped["status"], "skipped", "{capped}");
    let why = capped["reason"].as_str().unwrap_or_default();
    assert!(why.contains("tovuk caps set ticker cron_invocations <LIMIT>"), "{why}");
    let human = platform.tovuk().args(["cron", "run", "ticker", "REPORT"]).run().code(1);
    assert!(human.stderr.contains("cron_invocations cap of 3"), "{}", human.stderr);

    let shown = platform.tovuk().args(["service", "show", "ticker", "--json"]).run().success().json();
    let report = shown["resources"]
        .as_array()
        .and_then(|resources| resources.iter().find(|resource| resource["binding"] == "REPORT"))
        .cloned()
        .expect("the cron resource");
    assert_eq!((report["kind"].as_str(), report["status"].as_str()), (Some("cron"), Some("active")), "{report}");
    assert!(report["next_run_at"].is_string(), "{report}");
    assert_eq!(report["last_run"]["status"], "skipped", "{report}");
    assert_eq!(report["usage"][0]["meter"], "cron_invocations", "{report}");

    let listed = platform.tovuk().args(["cron", "history", "ticker", "SLOW", "--json"]).run().success().json();
    let statuses: Vec<&str> =
        listed["runs"].as_array().expect("runs").iter().filter_map(|run| run["status"].as_str()).collect();
    assert_eq!(statuses, ["skipped", "timed_out"], "newest first: {listed}");

    let unknown = platform.tovuk().args(["cron", "run", "ticker", "NOPE"]).run().code(1);
    assert!(
        unknown.stderr.contains("its cron jobs: FAIL, REPORT, SLOW"),
        "names the app's cron jobs: {}",
        unknown.stderr
    );
}

#[test]
fn a_scheduled_tick_runs_and_one_missed_while_the_platform_was_down_runs_once_at_start() {
    let platform = Platform::start();
    let jobs = [job("TICK", "* * * * *", "python3 job.py", ""), job("SLOW", "0 0 1 1 *", "sleep 120", "")].concat();
    deploy(&platform, "clock", &jobs);

    // Its schedule runs it (every minute, UTC).
    let first = wait_run(&platform, "clock", "on schedule", |run| {
        run["binding"] == "TICK" && run["trigger"] == "schedule" && run["status"] == "succeeded"
    });
    let first_tick = first["scheduled_at"].as_str().expect("a tick").to_owned();
    assert!(first_tick.ends_with(":00.000Z"), "on the minute: {first_tick}");

    // A run going when the platform is killed ends with it, recorded failed at the next start.
    let slow = run_now(&platform, "clock", "SLOW");
    let data_root = platform.kill();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("time").as_secs();
    let past_next_minute = UNIX_EPOCH + Duration::from_secs((now / 60 + 1) * 60 + 2);
    while SystemTime::now() < past_next_minute {
        std::thread::sleep(Duration::from_millis(200));
    }
    let platform = Platform::start_in(data_root);

    // The tick the platform was down for (not a later one it ran on time).
    let caught_up = wait_run(&platform, "clock", "caught up", |run| {
        run["binding"] == "TICK"
            && run["status"] != "running"
            && run["reason"].as_str().is_some_and(|why| why.contains("caught up"))
    });
    assert_eq!(caught_up["status"], "succeeded", "{caught_up}");
    assert!(caught_up["scheduled_at"].as_str() > Some(&first_tick), "{caught_up}");
    assert_eq!(caught_up["trigger"], "schedule", "{caught_up}");
    assert!(
        caught_up["reason"].as_str().is_some_and(|why| why.contains("caught up at start")),
        "{caught_up}\n{:#?}\n{}",
        history(&platform, "clock"),
        platform.log()
    );
    let tick = caught_up["scheduled_at"].clone();
    let runs = history(&platform, "clock");
    assert_eq!(runs.iter().filter(|run| run["scheduled_at"] == tick).count(), 1, "once: {runs:?}");
    let interrupted = runs.iter().find(|run| run["id"] == slow["id"]).expect("the slow run");
    assert_eq!(interrupted["status"], "failed", "{interrupted}");
    assert!(interrupted["reason"].as_str().is_some_and(|why| why.contains("platform stopped")), "{interrupted}");
}
