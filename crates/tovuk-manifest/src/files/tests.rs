//! Tests for release-mode file hygiene.

use super::is_secret_name;
use crate::tests::summary;
use crate::{CheckReport, Manifest, check_bytes, check_files};

fn manifest(extra: &str) -> Manifest {
    let text = format!(
        "[app]\nname = \"a\"\nkind = \"web\"\ncapabilities = [\"http\"]\n[run]\ncommand = \"./a\"\n[health]\npath = \"/\"\n{extra}"
    );
    match check_bytes("tovuk.toml", text.as_bytes()) {
        (Some(manifest), _) => manifest,
        (None, report) => panic!("test manifest must pass: {report:#?}"),
    }
}

fn hygiene(manifest: &Manifest, files: &[&str]) -> CheckReport {
    let files: Vec<String> = files.iter().map(|file| (*file).to_owned()).collect();
    let mut report = CheckReport::new();
    check_files(&mut report, manifest, "tovuk.toml", &files);
    report
}

#[test]
fn secret_names() {
    for secret in [
        ".env",
        ".env.local",
        ".env.production",
        "server.pem",
        "tls.key",
        "id_rsa",
        "id_ed25519",
        "credentials.json",
        "credentials-prod.json",
        "cert.p12",
    ] {
        assert!(is_secret_name(secret), "{secret}");
    }
    for harmless in [
        ".env.example",
        ".env.sample",
        ".env.template",
        "id_rsa.pub",
        "id_ed25519.pub",
        "main.rs",
        "keys.rs",
        "env.ts",
        "credentials.md",
    ] {
        assert!(!is_secret_name(harmless), "{harmless}");
    }
}

#[test]
fn tracked_secrets_are_errors_with_a_git_fix() {
    let report = hygiene(&manifest(""), &["src/main.rs", ".env.production", "deploy/my key.pem"]);
    assert!(!report.ok());
    assert_eq!(summary(&report), "error secret_file_tracked -\nerror secret_file_tracked -");
    let fixes: Vec<(&str, &str)> =
        report.required_fixes().iter().map(|fix| (fix.file.as_str(), fix.next.as_str())).collect();
    assert_eq!(
        fixes,
        [
            (".env.production", "git rm --cached .env.production && echo .env.production >> .gitignore"),
            ("deploy/my key.pem", "git rm --cached 'deploy/my key.pem' && echo 'deploy/my key.pem' >> .gitignore"),
        ]
    );
}

#[test]
fn generated_directories_are_reported_once() {
    let report = hygiene(
        &manifest(""),
        &[
            "target/debug/a",
            "target/debug/b",
            "target/release/a",
            "web/node_modules/x/i.js",
            "app/build/out.bin",
            "Cargo.toml",
        ],
    );
    assert!(report.ok());
    let files: Vec<&str> = report.warnings().iter().map(|warning| warning.file.as_str()).collect();
    assert_eq!(files, ["app/build/", "target/", "web/node_modules/"]);
    assert!(report.warnings()[1].message.contains("3 files"), "{:?}", report.warnings()[1]);
}

#[test]
fn compiled_files_are_grouped_by_directory_and_extension() {
    let report =
        hygiene(&manifest(""), &["a.o", "b.o", "src/X.class", "src/Y.class", "lib/m.pyc", "build.rs", "build"]);
    let files: Vec<&str> = report.warnings().iter().map(|warning| warning.file.as_str()).collect();
    assert_eq!(files, ["*.o", "lib/*.pyc", "src/*.class"]);
}

#[test]
fn include_and_exclude_silence_findings() {
    let manifest = manifest("[build]\ninclude = [\"dist/\"]\nexclude = [\"*.pem\", \".env\"]\n");
    let report = hygiene(&manifest, &["dist/app.js", "certs/a.pem", ".env", "config/.env", "dist2/x/y"]);
    assert_eq!(summary(&report), "ok");
}

#[test]
fn a_static_root_is_shipped_on_purpose_but_secrets_in_it_are_not() {
    let text = "[app]\nname = \"site\"\nkind = \"static\"\ncapabilities = [\"http\"]\n[static]\nroot = \"dist\"\n";
    let (Some(manifest), _) = check_bytes("tovuk.toml", text.as_bytes()) else {
        panic!("static manifest must pass");
    };
    let report = hygiene(&manifest, &["dist/index.html", "dist/.env.local", "dist/.env", "build/tmp"]);
    let found: Vec<(&str, &str)> = report
        .errors()
        .iter()
        .chain(report.warnings())
        .map(|diagnostic| (diagnostic.code.as_str(), diagnostic.file.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("secret_file_tracked", "dist/.env.local"),
            ("dotenv_left_out", "dist/.env"),
            ("generated_output_tracked", "build/")
        ]
    );
}

#[test]
fn leading_dot_slash_and_duplicates_are_normalized() {
    let report = hygiene(&manifest(""), &["./.env.local", ".env.local", ""]);
    assert_eq!(summary(&report), "error secret_file_tracked -");
    // A tracked `.env` only warns: the artifact leaves it out.
    let report = hygiene(&manifest(""), &["./.env", ".env"]);
    assert!(report.ok());
    assert_eq!(summary(&report), "warning dotenv_left_out -");
}
