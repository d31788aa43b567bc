//! Release-mode hygiene through the public API, the way `tovuk check` and the pre-receive hook call it.

use tovuk_manifest::{check_bytes, check_files, render_human};

const MANIFEST: &str = "[app]\nname = \"my-api\"\nkind = \"web\"\ncapabilities = [\"http\"]\n\n[run]\ncommand = \"./target/release/my-api\"\n\n[health]\npath = \"/health\"\n";

fn tracked(paths: &[&str]) -> Vec<String> {
    paths.iter().map(|path| (*path).to_owned()).collect()
}

#[test]
fn a_tracked_secret_fails_a_manifest_that_passed() {
    let (Some(manifest), mut report) = check_bytes("tovuk.toml", MANIFEST.as_bytes()) else {
        panic!("manifest must pass");
    };
    assert!(report.ok());
    check_files(
        &mut report,
        &manifest,
        "tovuk.toml",
        &tracked(&["tovuk.toml", "src/main.rs", ".env.local", "target/release/my-api"]),
    );
    assert!(!report.ok());
    let json = serde_json::to_value(&report).unwrap_or_else(|error| panic!("report must serialize: {error}"));
    assert_eq!(json["ok"], false);
    assert_eq!(json["errors"][0]["code"], "secret_file_tracked");
    assert_eq!(json["errors"][0]["file"], ".env.local");
    assert_eq!(json["errors"][0]["line"], serde_json::Value::Null);
    assert_eq!(json["requiredFixes"][0]["next"], "git rm --cached .env.local && echo .env.local >> .gitignore");
    assert_eq!(json["warnings"][0]["code"], "generated_output_tracked");
    assert_eq!(json["warnings"][0]["file"], "target/");
    assert_eq!(json["capabilities"]["enabled"], serde_json::json!(["http"]));
    let rendered = render_human(&report);
    assert!(rendered.contains("error[secret_file_tracked]: `.env.local` looks like a secret"), "{rendered}");
    assert!(rendered.ends_with("error: check failed with 1 error and 1 warning\n"), "{rendered}");
}

#[test]
fn a_clean_tree_adds_nothing() {
    let (Some(manifest), mut report) = check_bytes("tovuk.toml", MANIFEST.as_bytes()) else {
        panic!("manifest must pass");
    };
    let before = report.clone();
    check_files(
        &mut report,
        &manifest,
        "tovuk.toml",
        &tracked(&["tovuk.toml", "src/main.rs", ".env.example", "Cargo.lock"]),
    );
    assert_eq!(report, before);
}
