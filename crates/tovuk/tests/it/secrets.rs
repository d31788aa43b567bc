//! Secrets and config: `tovuk env`, `tovuk config`, required config blocking a deploy,
//! config releases without a rebuild, and a canary value that must surface nowhere but
//! in the app's own environment.

use crate::support::{GitRepo, Platform, Run, any_process_named, deploy_ids, http, perl_server, start_failure};
use serde_json::Value;
use std::path::Path;

/// A Perl app that answers `/env/NAME` with that variable's value and prints
/// `SECRET_CANARY` once as it starts (so the app log must mask it).
fn env_app() -> String {
    perl_server(
        r#"print "starting with SECRET_CANARY=$ENV{SECRET_CANARY}\n";"#,
        r#"if ($path =~ m{^/env/(\w+)$}) { $body = defined $ENV{$1} ? "[$ENV{$1}]" : "unset" }"#,
    )
}

/// A web manifest running [`env_app`] with `extra` tables appended.
fn env_manifest(app: &str, extra: &str) -> String {
    format!(
        "[app]\nname = \"{app}\"\nkind = \"web\"\ncapabilities = [\"http\"]\n\n[run]\ncommand = \"perl server.pl\"\n\n[health]\npath = \"/health\"\ntimeout = \"20s\"\n{extra}"
    )
}

/// A value no file, log or response can hold by chance.
fn canary() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("cnry{nanos:x}{:x}Zq", std::process::id())
}

/// Every file under `dir`: (path, bytes). `.tar.zst` artifacts are searched decompressed.
fn files_under(dir: &Path, found: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        // The apps' volumes hold what the apps write, not the platform's files.
        if entry.file_name() == "volumes" {
            continue;
        }
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            files_under(&path, found);
        } else if kind.is_file()
            && let Ok(bytes) = std::fs::read(&path)
        {
            if path.to_string_lossy().ends_with(".tar.zst") {
                let plain = zstd::decode_all(bytes.as_slice()).expect("artifact decompresses");
                found.push((format!("{} (decompressed)", path.display()), plain));
            }
            found.push((path.display().to_string(), bytes));
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
}

/// Keeps every CLI answer of a test, to search them all at the end.
#[derive(Default)]
struct Transcript(Vec<String>);

impl Transcript {
    fn keep(&mut self, run: Run) -> Run {
        self.0.push(format!("{}\n{}", run.stdout, run.stderr));
        run
    }
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list[field].as_array().expect(field).iter().map(|item| item["name"].as_str().expect("name").to_owned()).collect()
}

#[test]
fn a_canary_secret_reaches_the_app_and_the_build_and_nothing_else() {
    let platform = Platform::start();
    let token = platform.create_app("canary");
    let secret = canary();
    let mut seen = Transcript::default();

    // From stdin, the way a person pipes a secret in; another name inline.
    seen.keep(
        platform.tovuk().args(["env", "set", "canary", "SECRET_CANARY"]).stdin(&format!("{secret}\n")).run().success(),
    );
    seen.keep(platform.tovuk().args(["env", "set", "canary", "GREETING=hello there"]).run().success());

    let manifest = env_manifest(
        "canary",
        "\n[config]\nrequired = [\"SECRET_CANARY\"]\n\n[build]\nsecrets = [\"SECRET_CANARY\"]\nbuild = \"echo build sees $SECRET_CANARY; printf %s $SECRET_CANARY | base64; printf %s $SECRET_CANARY | od -An -tx1 | tr -d ' \\\\n'; echo\"\n",
    );
    let id = platform.push_files("canary", &token, &[("tovuk.toml", &manifest), ("server.pl", &env_app())]);
    let deploy = platform.wait_for_state(&id, "running");
    seen.0.push(deploy.to_string());

    // Injection: the app's environment holds the value.
    assert_eq!(platform.get_app("canary", "/env/SECRET_CANARY"), (200, format!("[{secret}]")));
    assert_eq!(platform.get_app("canary", "/env/GREETING").1, "[hello there]");
    // The sandbox got it through its environment, not on a command line anyone can read.
    assert!(!any_process_named(&secret), "a process command line holds the secret");

    // The build printed it, the app printed it: both logs hold the mask instead.
    let build_log = seen.keep(platform.tovuk().args(["logs", "--build", &id, "--json"]).run().success());
    assert!(build_log.stdout.contains("build sees ****"), "{}", build_log.stdout);
    // Printed encoded, it is masked too: base64 and hex.
    use base64::Engine;
    let encoded = [base64::engine::general_purpose::STANDARD.encode(&secret), hex::encode(&secret)];
    for form in &encoded {
        assert!(!build_log.stdout.contains(form.as_str()), "{form} in {}", build_log.stdout);
    }
    assert!(build_log.stdout.matches("****").count() >= 3, "{}", build_log.stdout);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let app_log = seen.keep(platform.tovuk().args(["logs", "canary", "--json"]).run().success());
        if app_log.stdout.contains("starting with SECRET_CANARY=****") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the app's start line never reached its log: {}", app_log.stdout);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // Metadata only.
    let list = seen.keep(platform.tovuk().args(["env", "list", "canary", "--json"]).run().success()).json();
    assert_eq!(names(&list, "vars"), ["GREETING", "SECRET_CANARY"]);
    let var = &list["vars"][1];
    assert_eq!(var["version"], 1);
    assert!(var["created_at"].is_string() && var["updated_at"].is_string(), "{var}");
    assert!(var["updated_by"]["id"].as_str().is_some_and(|id| id.starts_with("tok_")), "{var}");
    assert_eq!(list["missing"], serde_json::json!([]));
    for command in [
        vec!["env", "list", "canary"],
        vec!["env", "history", "canary", "--json"],
        vec!["deploy", "show", &id, "--json"],
        vec!["deploy", "list", "canary", "--json"],
        vec!["app", "inspect", "canary", "--json"],
        vec!["artifact", "show", &id, "--json"],
        vec!["config", "template", "canary"],
    ] {
        seen.keep(platform.tovuk().args(&command).run().success());
    }

    for answer in &seen.0 {
        assert!(!answer.contains(&secret), "an answer holds the secret:\n{answer}");
    }
    assert!(!platform.log().contains(&secret), "the server log holds the secret");
    let mut files = Vec::new();
    files_under(&platform.data_dir(), &mut files);
    assert!(files.iter().any(|(path, _)| path.ends_with("state.db")), "the walk saw the store");
    assert!(files.iter().any(|(path, _)| path.contains("(decompressed)")), "the walk saw the artifact");
    for (path, bytes) in &files {
        assert!(!contains(bytes, &secret), "{path} holds the secret");
    }
}

#[test]
fn a_deploy_missing_required_config_is_blocked_with_the_commands_that_fix_it() {
    let platform = Platform::start();
    let token = platform.create_app("needy");
    let manifest = env_manifest("needy", "\n[config]\nrequired = [\"DATABASE_URL\", \"API_KEY\"]\n");
    let repo = GitRepo::with_files(&[("tovuk.toml", &manifest), ("server.pl", &env_app())]);
    let push = repo.push(&platform.remote("needy", &token), &["main"]);
    assert!(push.ok, "{}", push.output);
    assert!(push.output.contains("blocked before building"), "{}", push.output);
    assert!(push.output.contains("tovuk env set needy DATABASE_URL"), "{}", push.output);
    assert!(push.output.contains("tovuk env set needy API_KEY"), "{}", push.output);
    let id = deploy_ids(&push.output).pop().expect("deploy id");
    let deploy = platform.deploy(&id);
    assert_eq!(deploy["state"], "failed");
    assert_eq!(deploy["failure"]["reason"], "missing_config");
    assert_eq!(deploy["phases"], serde_json::json!([]), "no build ran");
    let blockers = deploy["failure"]["blockers"].as_array().expect("blockers");
    assert_eq!(blockers.len(), 2);
    assert_eq!(blockers[0]["name"], "DATABASE_URL");
    assert_eq!(blockers[0]["needed_by"], "[config] required");
    assert_eq!(blockers[0]["next"], "tovuk env set needy DATABASE_URL");
    let shown = platform.tovuk().args(["deploy", "show", &id]).run().success();
    assert!(shown.stdout.contains("tovuk env set needy API_KEY"), "{}", shown.stdout);

    let list = platform.tovuk().args(["env", "list", "needy", "--json"]).run().success().json();
    assert_eq!(names(&list, "missing"), ["DATABASE_URL", "API_KEY"]);

    // The template names both, empty, with what needs them; from outside the project it
    // asks the server.
    let work = tempfile::tempdir().expect("tempdir");
    let template = platform.tovuk().args(["config", "template", "needy"]).current_dir(work.path()).run().success();
    assert!(
        template.stdout.contains("\nDATABASE_URL=\n") && template.stdout.contains("\nAPI_KEY=\n"),
        "{}",
        template.stdout
    );
    assert!(template.stdout.contains("[config] required"), "{}", template.stdout);

    // A required name left empty: refused with its line, nothing set.
    let file = work.path().join("needy.env");
    let half = template.stdout.replace("DATABASE_URL=\n", "DATABASE_URL=postgres://db.internal/app\n");
    std::fs::write(&file, &half).expect("write");
    let refused = platform.tovuk().args(["config", "apply", "needy", "--file"]).arg(&file).run().code(1);
    assert!(refused.stderr.contains("`API_KEY` is required"), "{}", refused.stderr);
    let line = half.lines().position(|line| line == "API_KEY=").expect("line") + 1;
    assert!(refused.stderr.contains(&format!("needy.env:{line}:")), "{}", refused.stderr);
    let history = platform.tovuk().args(["env", "history", "needy", "--json"]).run().success().json();
    assert_eq!(history["changes"], serde_json::json!([]), "nothing was applied");

    // Both filled in: one change, and the blocked deploy's retry is the next command.
    std::fs::write(&file, half.replace("API_KEY=\n", "API_KEY=\"k-123 456\"\n")).expect("write");
    let applied = platform.tovuk().args(["config", "apply", "needy", "--json", "--file"]).arg(&file).run().success();
    let applied = applied.json();
    assert_eq!(applied["change"]["rev"], 1);
    assert_eq!(applied["change"]["set"], serde_json::json!(["API_KEY", "DATABASE_URL"]));
    assert_eq!(applied["next"], serde_json::json!([format!("tovuk deploy retry {id} --follow")]));
    let history = platform.tovuk().args(["env", "history", "needy", "--json"]).run().success().json();
    assert_eq!(history["changes"].as_array().map(Vec::len), Some(1));

    let retried = platform.tovuk().args(["deploy", "retry", &id, "--json"]).run().success().json();
    let running = platform.wait_for_state(retried["id"].as_str().expect("id"), "running");
    assert_eq!(running["kind"], "source");
    assert_eq!(platform.get_app("needy", "/env/API_KEY").1, "[k-123 456]");
}

#[test]
fn a_config_change_releases_the_same_artifact_without_a_rebuild() {
    let platform = Platform::start();
    let token = platform.create_app("conf");
    platform.tovuk().args(["env", "set", "conf", "GREETING=v1"]).run().success();
    let id =
        platform.push_files("conf", &token, &[("tovuk.toml", &env_manifest("conf", "")), ("server.pl", &env_app())]);
    let first = platform.wait_for_state(&id, "running");
    assert_eq!(platform.get_app("conf", "/env/GREETING").1, "[v1]");

    let changed = platform.tovuk().args(["env", "set", "conf", "GREETING=v2", "--json"]).run().success().json();
    let release_id = changed["release"]["id"].as_str().expect("a release").to_owned();
    assert_eq!(changed["next"][0], format!("tovuk deploy follow {release_id}"));
    let release = platform.wait_for_state(&release_id, "running");
    assert_eq!(release["kind"], "config");
    assert_eq!(release["base_deploy_id"], id.as_str());
    assert_eq!(release["phases"], serde_json::json!([]), "no build ran");
    assert_eq!(release["build_job"]["id"], first["build_job"]["id"]);
    assert_eq!(release["artifact"]["digest"], first["artifact"]["digest"]);
    assert_eq!(release["config_rev"], 2);
    assert_eq!(platform.get_app("conf", "/env/GREETING").1, "[v2]");
    platform.wait_for_state(&id, "superseded");

    // Deferred: stored, not served, until a restart.
    let deferred =
        platform.tovuk().args(["env", "set", "conf", "GREETING=v3", "--no-restart", "--json"]).run().success().json();
    assert!(deferred["release"].is_null(), "{deferred}");
    assert_eq!(deferred["next"], serde_json::json!(["tovuk app restart conf"]));
    assert_eq!(platform.get_app("conf", "/env/GREETING").1, "[v2]");
    let restarted = platform.tovuk().args(["app", "restart", "conf", "--follow"]).run().success();
    assert!(restarted.stdout.contains("running"), "{}", restarted.stdout);
    assert_eq!(platform.get_app("conf", "/env/GREETING").1, "[v3]");

    let unset = platform.tovuk().args(["env", "unset", "conf", "GREETING", "--json"]).run().success().json();
    platform.wait_for_state(unset["release"]["id"].as_str().expect("release"), "running");
    assert_eq!(platform.get_app("conf", "/env/GREETING").1, "unset");

    let history = platform.tovuk().args(["env", "history", "conf", "--json"]).run().success().json();
    let changes = history["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 4);
    assert_eq!(changes[0]["unset"], serde_json::json!(["GREETING"]));
    assert_eq!(changes[1]["release_deploy_id"], Value::Null);
    assert_eq!(changes[2]["release_deploy_id"], release_id.as_str());
    assert!(changes.iter().all(|change| change["by"]["name"].is_string()), "{history}");
    let human = platform.tovuk().args(["env", "history", "conf"]).run().success();
    assert!(human.stdout.contains("REV") && human.stdout.contains("GREETING"), "{}", human.stdout);
}

#[test]
fn bad_names_and_values_are_refused_whole_and_name_the_fix() {
    let platform = Platform::start();
    platform.create_app("bad");
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["1BAD=x".into()], "starts with a digit"),
        (vec!["MY-VAR=x".into()], "`-` is not allowed"),
        (vec!["PORT=9000".into()], "`PORT` is set by the platform"),
        (vec!["TOVUK_MODE=x".into()], "reserved for variables the platform sets"),
        (vec!["GOOD=x".into(), "PORT=1".into()], "`PORT`"),
        (
            vec!["PEM".into(), "--from-file".into(), write("pem", b"line one\nline two\n").display().to_string()],
            "one line",
        ),
        (vec!["BIN".into(), "--from-file".into(), write("nul", b"a\0b").display().to_string()], "NUL"),
        (
            vec!["BIG".into(), "--from-file".into(), write("big", &vec![b'x'; 64 * 1024 + 1]).display().to_string()],
            "64 KiB",
        ),
    ];
    for (args, expected) in cases {
        let run = platform.tovuk().args(["env", "set", "bad"]).args(&args).run().code(1);
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("hint:"), "{args:?}: {}", run.stderr);
    }
    // Exactly 64 KiB is fine, and one trailing newline of a file is not part of the value.
    platform
        .tovuk()
        .args(["env", "set", "bad", "EDGE", "--no-restart", "--from-file"])
        .arg(write("edge", &[vec![b'y'; 64 * 1024], b"\n".to_vec()].concat()))
        .run()
        .success();
    let stdin_newline = platform.tovuk().args(["env", "set", "bad", "TWO"]).stdin("a\nb\n").run().code(1);
    assert!(stdin_newline.stderr.contains("one line"), "{}", stdin_newline.stderr);

    let missing = platform.tovuk().args(["env", "set", "bad", "X", "--from-file", "/nonexistent/value"]).run().code(2);
    assert!(missing.stderr.contains("/nonexistent/value"), "{}", missing.stderr);
    let missing = platform.tovuk().args(["config", "apply", "bad", "--file", "/nonexistent/bad.env"]).run().code(2);
    assert!(
        missing.stderr.contains("/nonexistent/bad.env") && missing.stderr.contains("config template"),
        "{}",
        missing.stderr
    );

    // Template syntax errors name their line; nothing is applied.
    let broken = write("broken.env", b"# comment\nGOOD=1\nthis line has no equals sign\n");
    let run = platform.tovuk().args(["config", "apply", "bad", "--file"]).arg(&broken).run().code(1);
    assert!(run.stderr.contains("broken.env:3:") && run.stderr.contains("NAME=VALUE"), "{}", run.stderr);
    let unterminated = write("open.env", b"A=1\nB=\"never closed\n");
    let run = platform.tovuk().args(["config", "apply", "bad", "--file"]).arg(&unterminated).run().code(1);
    assert!(run.stderr.contains("open.env:2:"), "{}", run.stderr);
    let reserved = write("port.env", b"PORT=1\n");
    let run = platform.tovuk().args(["config", "apply", "bad", "--file"]).arg(&reserved).run().code(1);
    assert!(run.stderr.contains("port.env:1:") && run.stderr.contains("`PORT`"), "{}", run.stderr);

    let unset = platform.tovuk().args(["env", "unset", "bad", "NEVER_SET", "EDGE"]).run().code(1);
    assert!(
        unset.stderr.contains("`NEVER_SET` is not set") && unset.stderr.contains("nothing was changed"),
        "{}",
        unset.stderr
    );

    // Only the 64 KiB value landed, as one change.
    let list = platform.tovuk().args(["env", "list", "bad", "--json"]).run().success().json();
    assert_eq!(names(&list, "vars"), ["EDGE"]);
    let history = platform.tovuk().args(["env", "history", "bad", "--json"]).run().success().json();
    assert_eq!(history["changes"].as_array().map(Vec::len), Some(1));

    // The API checks too, whatever client sends the change; the body is never echoed back.
    let auth = format!("Bearer {}", platform.admin_token());
    for (body, expected) in [
        (r#"{"set": {"A": "x\ny"}}"#, "one line"),
        (r#"{"set": {"PORT": "1"}}"#, "`PORT`"),
        (r#"{"set": {"A": 12345}}"#, "not an env change"),
        (r#"{"set": {}, "unset": []}"#, "sets and unsets nothing"),
    ] {
        let (status, answer) =
            http(&platform.api_addr(), "PUT", "/v1/apps/bad/env", &[("Authorization", auth.as_str())], body);
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer.contains(expected), "{body}: {answer}");
        assert!(!answer.contains("12345"), "{answer}");
    }
}

#[test]
fn a_missing_or_wrong_master_key_stops_the_server_and_loses_nothing() {
    let platform = Platform::start();
    let token = platform.create_app("keyed");
    platform.tovuk().args(["env", "set", "keyed", "GREETING=kept"]).run().success();
    let id =
        platform.push_files("keyed", &token, &[("tovuk.toml", &env_manifest("keyed", "")), ("server.pl", &env_app())]);
    platform.wait_for_state(&id, "running");
    let data_root = platform.stop();
    let data = data_root.path().join("data");
    let key_path = data.join("keys").join("secrets.key");
    let original = std::fs::read(&key_path).expect("key");
    let store_before = std::fs::read(data.join("state.db")).expect("state.db");
    let args = ["--listen", "127.0.0.1:0", "--router-listen", "127.0.0.1:0"];
    // Without an admin token file a start writes a new one: not when it is refused.
    std::fs::remove_file(data.join("admin.token")).expect("remove admin.token");

    std::fs::remove_file(&key_path).expect("remove key");
    let before = snapshot(&data);
    let (code, stderr) = start_failure(&args, &data);
    assert_eq!(snapshot(&data), before, "a refused start wrote to the data dir");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("secrets.key") && stderr.contains("missing") && stderr.contains("restore"), "{stderr}");
    assert!(!key_path.exists(), "no new key replaced the lost one");

    write_key(&key_path, &[7u8; 32], 0o600);
    let before = snapshot(&data);
    let (code, stderr) = start_failure(&args, &data);
    assert_eq!(snapshot(&data), before, "a refused start wrote to the data dir");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("is not the key") && stderr.contains("put the original key file back"), "{stderr}");

    write_key(&key_path, &original, 0o644);
    let (code, stderr) = start_failure(&args, &data);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");

    write_key(&key_path, &original[..16], 0o600);
    let (code, stderr) = start_failure(&args, &data);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("must be exactly 32"), "{stderr}");
    assert_eq!(std::fs::read(data.join("state.db")).expect("state.db"), store_before, "the store was not touched");

    // The original key back: the app comes back with its value.
    write_key(&key_path, &original, 0o600);
    let platform = Platform::start_in(data_root);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while platform.get_app("keyed", "/env/GREETING").1 != "[kept]" {
        assert!(std::time::Instant::now() < deadline, "the app never came back:\n{}", platform.log());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Every file under `dir` with a hash of its bytes, but the apps' own output (`instances/`).
fn snapshot(dir: &Path) -> Vec<(String, u64)> {
    use std::hash::{Hash, Hasher};
    let mut found = Vec::new();
    files_under(dir, &mut found);
    let mut hashed: Vec<(String, u64)> = found
        .into_iter()
        // The apps run on while no server does: their output is theirs, not the platform's
        // (and their volumes, mounted filesystems the kernel itself writes, are not walked).
        .filter(|(path, _)| !path.contains("/instances/"))
        .map(|(path, bytes)| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut hasher);
            (path, hasher.finish())
        })
        .collect();
    hashed.sort();
    hashed
}

fn write_key(path: &Path, bytes: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(path);
    std::fs::write(path, bytes).expect("write key");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn a_name_both_the_build_and_the_app_need_is_listed_once() {
    let platform = Platform::start();
    let token = platform.create_app("twice");
    let extra = "\n[config]\nrequired = [\"SHARED\", \"ONLY_RUN\"]\n";
    let manifest = env_manifest("twice", extra).replace("[health]", "[build]\nsecrets = [\"SHARED\"]\n\n[health]");
    let repo = GitRepo::with_files(&[("tovuk.toml", &manifest), ("server.pl", &env_app())]);
    let push = repo.push(&platform.remote("twice", &token), &["main"]);
    assert!(push.ok, "{}", push.output);
    assert_eq!(push.output.matches("next: tovuk env set twice SHARED").count(), 1, "{}", push.output);
    assert_eq!(push.output.matches("SHARED ([").count(), 1, "{}", push.output);
    assert!(
        push.output.contains("missing required config: ONLY_RUN, SHARED\n")
            || push.output.contains("missing required config: ONLY_RUN, SHARED "),
        "{}",
        push.output
    );
    let id = deploy_ids(&push.output).pop().expect("deploy id");
    let blockers = platform.deploy(&id)["failure"]["blockers"].clone();
    let blocked: Vec<&str> = blockers.as_array().expect("blockers").iter().filter_map(|b| b["name"].as_str()).collect();
    assert_eq!(blocked, ["ONLY_RUN", "SHARED"], "{blockers}");
    let list = platform.tovuk().args(["env", "list", "twice", "--json"]).run().success().json();
    assert_eq!(names(&list, "missing"), ["ONLY_RUN", "SHARED"]);
    let plan = platform.tovuk().args(["deploy", "--dry-run", "--json"]).current_dir(repo.path()).run().json();
    let missing: Vec<String> = plan["missingConfig"]
        .as_array()
        .expect("missingConfig")
        .iter()
        .map(|need| need["name"].as_str().or_else(|| need.as_str()).unwrap_or_default().to_owned())
        .collect();
    assert_eq!(missing, ["ONLY_RUN", "SHARED"], "{plan}");
}
