//! `tovuk addon create|detach`: a database for an app deployed without a tovuk.toml, given
//! before its first deploy and to a running app, taken away again, and the bad inputs.

use crate::support::{GitRepo, Platform, deploy_ids};

/// Migrates the SQLite add-on (the Procfile's `release:`): one row per release phase run.
const MIGRATE: &str = r#"import os, sqlite3
path = os.environ["DATABASE_URL"][len("sqlite:///"):]
db = sqlite3.connect(path)
db.execute("CREATE TABLE IF NOT EXISTS migrations (version TEXT NOT NULL)")
db.execute("INSERT INTO migrations (version) VALUES (?)", (open("version.txt").read().strip(),))
db.commit()
print("migrated to", open("version.txt").read().strip())
"#;

/// Answers with the versions migrated so far, or what DATABASE_URL is.
const SERVER: &str = r#"import os, sqlite3
from http.server import BaseHTTPRequestHandler, HTTPServer
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = os.environ.get("DATABASE_URL")
        if self.path == "/url" or url is None:
            body = url or "none"
        else:
            db = sqlite3.connect(url[len("sqlite:///"):])
            try:
                body = ",".join(row[0] for row in db.execute("SELECT version FROM migrations ORDER BY rowid"))
            except sqlite3.OperationalError:
                body = "not migrated"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"#;

fn push(platform: &Platform, repo: &GitRepo, app: &str, token: &str) -> String {
    let pushed = repo.push(&platform.remote(app, token), &["main"]);
    assert!(pushed.ok, "{}", pushed.output);
    let id = deploy_ids(&pushed.output).pop().unwrap_or_else(|| panic!("no deploy: {}", pushed.output));
    let deploy = platform.wait_for_state(&id, "running");
    assert_eq!(deploy["state"], "running", "{deploy}");
    id
}

#[test]
fn a_procfile_release_migrates_its_sqlite_add_on_once_per_deploy_and_the_data_survives() {
    let platform = Platform::start();
    let token = platform.create_app("ledger");
    let created = platform.tovuk().args(["addon", "create", "ledger", "sqlite", "--json"]).run().success().json();
    assert_eq!((created["kind"].as_str(), created["binding"].as_str()), (Some("sqlite"), Some("DB")), "{created}");
    assert_eq!(created["created"], true, "{created}");
    assert!(created["release"].is_null(), "nothing runs yet: {created}");
    let env: Vec<&str> = created["env"].as_array().expect("env").iter().filter_map(|name| name.as_str()).collect();
    assert_eq!(env, ["DB", "DATABASE_URL"], "{created}");

    let procfile = "web: python server.py\nrelease: python migrate.py\n";
    let files = [
        ("Procfile", procfile),
        ("requirements.txt", ""),
        ("migrate.py", MIGRATE),
        ("server.py", SERVER),
        ("version.txt", "v1\n"),
    ];
    let repo = GitRepo::with_files(&files);
    push(&platform, &repo, "ledger", &token);
    assert_eq!(platform.get_app("ledger", "/"), (200, "v1".to_owned()));

    repo.commit(&[("version.txt", "v2\n")], "second");
    let second = push(&platform, &repo, "ledger", &token);
    assert_eq!(platform.get_app("ledger", "/"), (200, "v1,v2".to_owned()), "one migration per deploy, data kept");
    platform.wait_for_log("ledger", "migrated to v2");

    let shown = platform.tovuk().args(["service", "show", "ledger", "--json"]).run().success().json();
    let resource = &shown["resources"][0];
    assert_eq!((resource["status"].as_str(), resource["addon"].as_bool()), (Some("active"), Some(true)), "{shown}");
    assert_eq!(shown["current_deploy_id"], second.as_str());

    // Once an add-on, always the same one: asking again changes nothing.
    let again = platform.tovuk().args(["addon", "create", "ledger", "sqlite", "--json"]).run().success().json();
    assert_eq!((again["changed"].as_bool(), again["id"].clone()), (Some(false), created["id"].clone()), "{again}");

    // A rollback keeps the add-on (it belongs to the app, not to a commit), and the data.
    platform.tovuk().args(["rollback", "ledger", "--follow"]).run().success();
    assert_eq!(platform.get_app("ledger", "/"), (200, "v1,v2,v1".to_owned()), "the rolled-back release phase ran");
}

#[test]
fn an_add_on_reaches_a_running_app_by_a_config_release_and_leaves_it_on_detach() {
    let platform = Platform::start();
    let token = platform.create_app("plain");
    let files = [("Procfile", "web: python server.py\n"), ("requirements.txt", ""), ("server.py", SERVER)];
    let repo = GitRepo::with_files(&files);
    let first = push(&platform, &repo, "plain", &token);
    assert_eq!(platform.get_app("plain", "/url"), (200, "none".to_owned()));

    let created = platform.tovuk().args(["addon", "create", "plain", "sqlite", "--json"]).run().success().json();
    let release = created["release"]["id"].as_str().expect("a config release of the running app").to_owned();
    assert_ne!(release, first);
    platform.wait_for_state(&release, "running");
    assert_eq!(platform.get_app("plain", "/url"), (200, "sqlite:////data/sqlite/DB.db".to_owned()));

    // A push without a tovuk.toml keeps it: it is the app's, not the commit's.
    repo.commit(&[("server.py", &format!("{SERVER}\n# changed\n"))], "second");
    push(&platform, &repo, "plain", &token);
    assert_eq!(platform.get_app("plain", "/url"), (200, "sqlite:////data/sqlite/DB.db".to_owned()));

    let human = platform.tovuk().args(["addon", "detach", "plain", "DB"]).run().success();
    assert!(human.stdout.contains("its data is kept"), "{}", human.stdout);
    let release = deploy_ids(&human.stdout).pop().unwrap_or_else(|| panic!("no release: {}", human.stdout));
    platform.wait_for_state(&release, "running");
    assert_eq!(platform.get_app("plain", "/url"), (200, "none".to_owned()));
    let shown = platform.tovuk().args(["service", "show", "plain", "--json"]).run().success().json();
    assert_eq!(shown["resources"][0]["status"], "detached", "{shown}");

    // Bad inputs: each refused naming the fix, nothing changed.
    let unknown = platform.tovuk().args(["addon", "detach", "plain", "DB"]).run();
    assert_ne!(unknown.code, 0);
    assert!(unknown.stderr.contains("no add-on bound as `DB`"), "{}", unknown.stderr);
    let kind = platform.tovuk().args(["addon", "create", "plain", "postgres"]).run();
    assert_ne!(kind.code, 0);
    assert!(kind.stderr.contains("sqlite, object-storage, kv"), "{}", kind.stderr);
    let binding = platform.tovuk().args(["addon", "create", "plain", "kv", "--binding", "my-cache"]).run();
    assert_ne!(binding.code, 0);
    assert!(binding.stderr.contains("MY_CACHE") || binding.stderr.contains("env-var"), "{}", binding.stderr);
    platform.tovuk().args(["addon", "create", "plain", "kv", "--binding", "STORE"]).run().success();
    let clash = platform.tovuk().args(["addon", "create", "plain", "sqlite", "--binding", "STORE"]).run();
    assert_ne!(clash.code, 0);
    assert!(clash.stderr.contains("`STORE`"), "{}", clash.stderr);
    let shown = platform.tovuk().args(["service", "show", "plain", "--json"]).run().success().json();
    assert_eq!(shown["resources"].as_array().map(Vec::len), Some(2), "{shown}");

    // A tovuk.toml declaring what an add-on sets is refused before it builds, naming both ways out.
    let manifest = "[app]\nname = \"plain\"\nkind = \"web\"\ncapabilities = [\"http\", \"sqlite\"]\n\n\
        [run]\ncommand = \"python3 server.py\"\n\n[health]\npath = \"/url\"\n\n\
        [[resources]]\nkind = \"sqlite\"\nbinding = \"STORE\"\n";
    repo.commit(&[("tovuk.toml", manifest)], "declare STORE");
    let pushed = repo.push(&platform.remote("plain", &token), &["main"]);
    let refused = deploy_ids(&pushed.output).pop().unwrap_or_else(|| panic!("no deploy: {}", pushed.output));
    let deploy = platform.wait_for_state(&refused, "failed");
    let line = deploy["failure"]["first_actionable_line"].as_str().unwrap_or_default();
    assert!(line.contains("tovuk addon detach plain STORE"), "{deploy}");
}
