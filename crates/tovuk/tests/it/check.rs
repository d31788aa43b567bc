//! `tovuk check` as a user runs it: on every manifest fixture, in git and plain directories.
//!
//! The fixtures' own expectations are asserted by `tovuk-manifest`'s tests; here the
//! binary's `--json` output must equal the library's report for the same project, which
//! proves the CLI reads the file, lists the tracked files and exits as documented.

use crate::support::{UserEnv, git};
use std::path::{Path, PathBuf};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/manifests")
}

/// The `# tracked:` paths of a fixture, if it lists any.
fn tracked_paths(bytes: &[u8]) -> Option<Vec<String>> {
    let text = String::from_utf8_lossy(bytes);
    let line =
        text.lines().take_while(|line| line.starts_with('#')).find_map(|line| line.strip_prefix("# tracked:"))?;
    Some(line.split_whitespace().map(str::to_owned).collect())
}

/// A project directory holding `manifest` as `tovuk.toml`; with `tracked`, a git repo
/// where exactly those paths are committed.
fn project(manifest: &[u8], tracked: Option<&[String]>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("tovuk.toml"), manifest).expect("write manifest");
    if let Some(tracked) = tracked {
        git(dir.path(), &["init", "-q"]);
        for path in tracked.iter().filter(|path| path.as_str() != "tovuk.toml") {
            let file = dir.path().join(path);
            std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
            std::fs::write(&file, b"x\n").expect("write tracked file");
        }
        git(dir.path(), &["add", "-A", "--force"]);
        git(dir.path(), &["commit", "-q", "-m", "fixture"]);
    }
    dir
}

#[test]
fn check_json_equals_the_contract_report_for_every_fixture() {
    let user = UserEnv::new();
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 20, "at least 20 manifest fixtures");
    let (mut n_ok, mut n_failing) = (0, 0);
    for fixture in &fixtures {
        let bytes = std::fs::read(fixture).expect("read fixture");
        let tracked = tracked_paths(&bytes);
        let dir = project(&bytes, tracked.as_deref());

        let (manifest, mut expected) = tovuk_manifest::check_bytes("tovuk.toml", &bytes);
        if let Some(manifest) = &manifest {
            let files = tracked.clone().unwrap_or_else(|| vec!["tovuk.toml".to_owned()]);
            tovuk_manifest::check_files(&mut expected, manifest, "tovuk.toml", &files);
        }
        let run = user.tovuk().current_dir(dir.path()).args(["check", "--json"]).run();
        let name = fixture.file_name().expect("name").to_string_lossy();
        assert_eq!(run.json(), serde_json::to_value(&expected).expect("report json"), "{name}");
        assert_eq!(run.code, if expected.ok() { 0 } else { 1 }, "{name}: {}", run.stderr);
        if expected.ok() { n_ok += 1 } else { n_failing += 1 }
    }
    assert!(n_ok >= 3 && n_failing >= 15, "fixtures cover passing and failing manifests");
}

#[test]
fn a_valid_manifest_of_each_kind_is_ok() {
    let user = UserEnv::new();
    for kind in ["web", "worker", "static"] {
        let bytes = std::fs::read(fixtures_dir().join(format!("{kind}_complete.toml"))).expect("fixture");
        let dir = project(&bytes, None);
        let json = user.tovuk().args(["check", "--json"]).arg(dir.path()).run().success().json();
        assert_eq!(json["ok"], true, "{kind}: {json}");
        assert_eq!(json["errors"], serde_json::json!([]));
        let human = user.tovuk().args(["check"]).arg(dir.path()).run().success();
        assert!(human.stdout.contains(": ok"), "{}", human.stdout);
    }
}

#[test]
fn errors_carry_file_line_column_and_the_fix() {
    let user = UserEnv::new();
    let dir = project(b"[app]\nname = \"my-api\"\nkind = \"web\"\ncapabilities = [\"http\"]\nnmae = 1\n\n[run]\ncommand = \"./s\"\n\n[health]\npath = \"/health\"\n", None);
    let run = user.tovuk().args(["check", "--json"]).arg(dir.path()).run().code(1);
    let error = &run.json()["errors"][0];
    assert_eq!(error["code"], "unknown_key");
    assert_eq!((error["line"].as_u64(), error["column"].as_u64()), (Some(5), Some(1)));
    assert!(error["file"].as_str().expect("file").ends_with("tovuk.toml"));
    assert!(error["message"].as_str().expect("message").contains("nmae"));
    let human = user.tovuk().args(["check"]).arg(dir.path()).run().code(1);
    assert!(human.stderr.contains("tovuk.toml:5:1"), "{}", human.stderr);
    assert!(human.stderr.contains("did you mean"), "{}", human.stderr);
}

#[test]
fn missing_empty_oversized_and_non_utf8_manifests_are_reported() {
    let user = UserEnv::new();
    let empty_dir = tempfile::tempdir().expect("tempdir");
    let json = user.tovuk().args(["check", "--json"]).arg(empty_dir.path()).run().code(1).json();
    assert_eq!(json["errors"][0]["code"], "manifest_missing");

    let cases: [(&[u8], &str); 3] = [
        (b"", "manifest_empty"),
        (&[b'#'; 1024 * 1024 + 10], "manifest_too_large"),
        (b"[app]\nname = \"caf\xe9\"\n", "manifest_not_utf8"),
    ];
    for (bytes, code) in cases {
        let dir = project(bytes, None);
        let json = user.tovuk().args(["check", "--json"]).arg(dir.path()).run().code(1).json();
        assert_eq!(json["errors"][0]["code"], code);
    }
    let run = user.tovuk().args(["check", "/no/such/dir"]).run().code(2);
    assert!(run.stderr.contains("not a directory"), "{}", run.stderr);
}

#[test]
fn tracked_secrets_fail_the_check_but_untracked_ones_do_not() {
    let user = UserEnv::new();
    let manifest = std::fs::read(fixtures_dir().join("web_minimal.toml")).expect("fixture");
    let tracked = vec!["tovuk.toml".to_owned(), ".env.production".to_owned(), "src/main.rs".to_owned()];
    let dir = project(&manifest, Some(&tracked));
    let json = user.tovuk().args(["check", "--json"]).arg(dir.path()).run().code(1).json();
    assert_eq!(json["errors"][0]["code"], "secret_file_tracked");
    assert_eq!(json["errors"][0]["file"], ".env.production");
    // A tracked `.env` (a development file) only warns: it is left out of the artifact.
    let tracked = vec!["tovuk.toml".to_owned(), ".env".to_owned(), "src/main.rs".to_owned()];
    let dir = project(&manifest, Some(&tracked));
    let json = user.tovuk().args(["check", "--json"]).arg(dir.path()).run().success().json();
    assert_eq!(json["warnings"][0]["code"], "dotenv_left_out", "{json}");

    // The same files outside git: `.env` would never be uploaded, so it is not a finding.
    let plain = project(&manifest, None);
    std::fs::write(plain.path().join(".env"), "SECRET=1\n").expect("write");
    std::fs::create_dir_all(plain.path().join("target/debug")).expect("mkdir");
    std::fs::write(plain.path().join("target/debug/app"), "bin").expect("write");
    user.tovuk().args(["check", "--json"]).arg(plain.path()).run().success();
}

#[test]
fn check_refuses_cron_schedules_no_scheduler_can_run() {
    let user = UserEnv::new();
    for (fixture, says) in [
        ("cron_schedule_not_cron", "the minute field `a` has `a`"),
        ("cron_schedule_step_zero", "is not a cron schedule"),
        ("cron_schedule_name_in_minute", "the minute field `MON` has `M`"),
        ("cron_schedule_never_fires", "never fires"),
    ] {
        let bytes = std::fs::read(fixtures_dir().join(format!("{fixture}.toml"))).expect("fixture");
        let dir = project(&bytes, None);
        let run = user.tovuk().args(["check"]).arg(dir.path()).run().code(1);
        assert!(run.stdout.contains(says) || run.stderr.contains(says), "{fixture}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("tovuk.toml:19:12") || run.stderr.contains("tovuk.toml:19:12"), "{fixture}");
    }
    let bytes = std::fs::read(fixtures_dir().join("cron_complete.toml")).expect("fixture");
    let dir = project(&bytes, None);
    user.tovuk().args(["check"]).arg(dir.path()).run().success();
}
