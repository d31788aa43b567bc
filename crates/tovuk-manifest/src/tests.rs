//! Crate-level tests of `check_bytes`: file-level failures, the JSON shape, and a shared summary helper.

use crate::{Capability, CheckReport, MAX_MANIFEST_BYTES, MINIMAL_MANIFEST, check_bytes, missing_manifest_report};

/// One line per finding, `error code line:column` (or `-` without a
/// position), errors first: the same notation as the fixtures' `# expect:`.
pub(crate) fn summary(report: &CheckReport) -> String {
    let mut lines = Vec::new();
    for (severity, list) in [("error", report.errors()), ("warning", report.warnings())] {
        for diagnostic in list {
            let position = match (diagnostic.line, diagnostic.column) {
                (Some(line), Some(column)) => format!("{line}:{column}"),
                _ => "-".to_owned(),
            };
            lines.push(format!("{severity} {} {position}", diagnostic.code));
        }
    }
    if lines.is_empty() { "ok".to_owned() } else { lines.join("\n") }
}

/// Checks `text` and compares the summary with `expected`.
#[track_caller]
pub(crate) fn check(text: &str, expected: &str) {
    let (_, report) = check_bytes("tovuk.toml", text.as_bytes());
    assert_eq!(summary(&report), expected.trim(), "\nreport: {report:#?}");
}

#[test]
fn minimal_manifest_passes_without_warnings() {
    let (manifest, report) = check_bytes("tovuk.toml", MINIMAL_MANIFEST.as_bytes());
    assert_eq!(summary(&report), "ok");
    let Some(manifest) = manifest else {
        panic!("minimal manifest must produce a Manifest");
    };
    assert_eq!(manifest.name(), "my-app");
    assert_eq!(manifest.capabilities(), [Capability::Http]);
}

#[test]
fn empty_and_comment_only_files_are_manifest_empty() {
    check("", "error manifest_empty -");
    check("  \n\t\n", "error manifest_empty -");
    check("# just a comment\n\n# another\n", "error manifest_empty -");
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let mut big = b"# ".to_vec();
    big.resize(MAX_MANIFEST_BYTES + 1, b'x');
    let (manifest, report) = check_bytes("tovuk.toml", &big);
    assert!(manifest.is_none());
    assert_eq!(summary(&report), "error manifest_too_large -");
    // Exactly at the limit is still parsed (and is one long comment).
    big.truncate(MAX_MANIFEST_BYTES);
    let (_, report) = check_bytes("tovuk.toml", &big);
    assert_eq!(summary(&report), "error manifest_empty -");
}

#[test]
fn non_utf8_points_at_the_first_bad_byte() {
    let (manifest, report) = check_bytes("tovuk.toml", b"[app]\nname = \"caf\xe9\"\n");
    assert!(manifest.is_none());
    assert_eq!(summary(&report), "error manifest_not_utf8 2:12");
    assert!(report.errors()[0].message.contains("0xe9"), "{:?}", report.errors()[0]);
}

#[test]
fn byte_order_mark_is_ignored() {
    let text = format!("\u{feff}{MINIMAL_MANIFEST}");
    check(&text, "ok");
    check(
        "\u{feff}[app]\nnmae = 1\nname = \"a\"\nkind = \"worker\"\n[run]\ncommand = \"x\"\n",
        "error unknown_key 2:1\nwarning health_missing 4:8",
    );
}

#[test]
fn toml_syntax_error_stops_the_check() {
    check("[app]\nname = \"x\"\nkind = \n", "error toml_syntax 3:8");
    check("[app]\nname = \"a\"\nname = \"b\"\n", "error toml_syntax 3:1");
}

#[test]
fn missing_manifest_report_says_to_create_it() {
    let report = missing_manifest_report("tovuk.toml");
    assert!(!report.ok());
    assert_eq!(summary(&report), "error manifest_missing -");
    let next = report.errors()[0].next.clone().unwrap_or_default();
    assert!(next.starts_with("create tovuk.toml"), "{next}");
    assert!(next.contains("docs/manifest.md"), "{next}");
    assert_eq!(report.required_fixes().len(), 1);
}

#[test]
fn json_shape_is_stable() {
    let text = "[app]\nname = \"my-api\"\nkind = \"web\"\ncapabilities = [\"http\"]\n\n[run]\ncommand = \"./x\"\n\n[health]\npath = \"/health\"\n\n[[resources]]\nkind = \"sqlite\"\nbinding = \"DB\"\n";
    let (_, report) = check_bytes("tovuk.toml", text.as_bytes());
    let json = serde_json::to_value(&report).unwrap_or_default();
    let expected = serde_json::json!({
        "ok": false,
        "errors": [{
            "code": "capability_missing",
            "message": "capability `sqlite` is needed by [[resources]] kind = \"sqlite\" (line 13) but not listed in [app] capabilities",
            "file": "tovuk.toml",
            "line": 13,
            "column": 8,
            "next": "set capabilities = [\"http\", \"sqlite\"] under [app] (tovuk.toml:4)"
        }],
        "warnings": [],
        "requiredFixes": [{
            "code": "capability_missing",
            "message": "capability `sqlite` is needed by [[resources]] kind = \"sqlite\" (line 13) but not listed in [app] capabilities",
            "file": "tovuk.toml",
            "line": 4,
            "next": "set capabilities = [\"http\", \"sqlite\"] under [app] (tovuk.toml:4)"
        }],
        "capabilities": {
            "enabled": ["http"],
            "disabled": ["sqlite", "object-storage", "kv", "queues", "cron", "state", "service-bindings", "outbound-network"]
        },
        "detected": null
    });
    assert_eq!(json, expected);
}

#[test]
fn whole_file_diagnostics_serialize_null_positions() {
    let (_, report) = check_bytes("tovuk.toml", b"");
    let json = serde_json::to_value(&report).unwrap_or_default();
    assert_eq!(json["errors"][0]["line"], serde_json::Value::Null);
    assert_eq!(json["errors"][0]["column"], serde_json::Value::Null);
    assert_eq!(json["capabilities"]["enabled"], serde_json::json!([]));
}

#[test]
fn deeply_nested_input_is_a_syntax_error_not_a_crash() {
    // A pushed commit is untrusted input for the pre-receive hook.
    let arrays = format!("a = {}", "[".repeat(500_000));
    let (_, report) = check_bytes("tovuk.toml", arrays.as_bytes());
    // The parser's nesting limit stops it partway into the brackets.
    assert!(summary(&report).starts_with("error toml_syntax 1:"), "{}", summary(&report));
    let tables = format!("a = {}1{}", "{ b = ".repeat(100_000), " }".repeat(100_000));
    let (_, report) = check_bytes("tovuk.toml", tables.as_bytes());
    assert!(!report.ok());
    assert_eq!(report.errors()[0].code, crate::Code::TomlSyntax);
}
