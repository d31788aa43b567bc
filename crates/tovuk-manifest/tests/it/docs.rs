//! Keeps `docs/manifest.md` true: its examples pass the check, and it documents every code and the real JSON shape.

use std::fs;

use tovuk_manifest::{AppKind, Code, check_bytes};

use crate::workspace_root;

/// Marks the ```toml block that follows as an example that must pass cleanly.
const CHECK_MARKER: &str = "<!-- check: ok -->";

fn read_doc() -> String {
    let path = workspace_root().join("docs/manifest.md");
    fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// The body of the first fenced block with `language` after `from`.
fn fenced_block<'d>(doc: &'d str, from: usize, language: &str) -> Option<&'d str> {
    let open = format!("```{language}\n");
    let start = doc[from..].find(&open)? + from + open.len();
    let end = doc[start..].find("\n```")? + start;
    Some(&doc[start..=end])
}

#[test]
fn marked_examples_pass_without_findings() {
    let doc = read_doc();
    let mut kinds = Vec::new();
    let mut n_examples = 0;
    for (marker_idx, _) in doc.match_indices(CHECK_MARKER) {
        let Some(block) = fenced_block(&doc, marker_idx, "toml") else {
            panic!("no ```toml block after the marker at byte {marker_idx}");
        };
        let (manifest, report) = check_bytes("tovuk.toml", block.as_bytes());
        assert!(
            report.ok() && report.warnings().is_empty(),
            "docs example does not pass cleanly:\n{block}\n{}",
            tovuk_manifest::render_human(&report)
        );
        if let Some(manifest) = manifest {
            kinds.push(manifest.kind());
        }
        n_examples += 1;
    }
    assert!(n_examples >= 4, "expected the minimal example and one per kind, found {n_examples}");
    for kind in AppKind::ALL {
        assert!(kinds.contains(&kind), "no complete example of kind `{kind}`");
    }
}

#[test]
fn every_code_is_documented() {
    let doc = read_doc();
    for code in Code::ALL {
        assert!(doc.contains(&format!("| `{code}` |")), "docs/manifest.md has no row for `{code}`");
    }
}

#[test]
fn documented_json_matches_the_real_report() {
    let doc = read_doc();
    let Some(section) = doc.find("## The check report") else {
        panic!("docs/manifest.md lost its report section");
    };
    let Some(block) = fenced_block(&doc, section, "json") else {
        panic!("no ```json block in the report section");
    };
    let documented: serde_json::Value =
        serde_json::from_str(block).unwrap_or_else(|error| panic!("docs JSON does not parse: {error}"));
    let text = "[app]\nname = \"my-api\"\nkind = \"web\"\ncapabilities = [\"http\"]\n\n[run]\ncommand = \"./x\"\n\n[health]\npath = \"/health\"\n\n[[resources]]\nkind = \"sqlite\"\nbinding = \"DB\"\n";
    let (_, report) = check_bytes("tovuk.toml", text.as_bytes());
    let actual = serde_json::to_value(&report).unwrap_or_else(|error| panic!("report must serialize: {error}"));
    assert_eq!(documented, actual);
}

#[test]
fn kind_examples_are_the_complete_fixtures() {
    let doc = read_doc();
    for kind in AppKind::ALL {
        let heading = format!("### {kind}\n");
        let Some(heading_idx) = doc.find(&heading) else {
            panic!("no `{heading}` in docs/manifest.md");
        };
        let Some(block) = fenced_block(&doc, heading_idx, "toml") else {
            panic!("no example under `{heading}`");
        };
        let fixture_path = workspace_root().join(format!("tests/fixtures/manifests/{kind}_complete.toml"));
        let fixture = fs::read_to_string(&fixture_path)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", fixture_path.display()));
        let fixture_body: Vec<&str> = fixture.lines().skip_while(|line| line.starts_with('#')).collect();
        assert_eq!(block.trim(), fixture_body.join("\n").trim(), "docs example for `{kind}` differs from its fixture");
    }
}
