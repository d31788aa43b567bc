//! Runs every fixture in `tests/fixtures/manifests/` and checks its `# expect:` header.

use std::fs;

use tovuk_manifest::{check_bytes, check_files};

use crate::expect::{Finding, actual_findings, compare, parse_findings};
use crate::workspace_root;

/// What a fixture's leading comment lines say.
struct Header {
    expected: Vec<Finding>,
    /// From `# tracked:`; when present, `check_files` runs on these paths.
    tracked: Option<Vec<String>>,
}

/// Reads directives from the leading `#` lines. Bytes are read lossily so
/// the non-UTF-8 fixture can carry a header too.
fn parse_header(bytes: &[u8]) -> Result<Header, String> {
    let text = String::from_utf8_lossy(bytes);
    let mut expected = Vec::new();
    let mut n_expect_lines = 0;
    let mut saw_ok = false;
    let mut tracked = None;
    for line in text.lines().take_while(|line| line.starts_with('#')) {
        if let Some(rest) = line.strip_prefix("# expect:") {
            n_expect_lines += 1;
            saw_ok |= rest.trim() == "ok";
            if saw_ok && n_expect_lines > 1 {
                return Err("`# expect: ok` cannot be combined with other expectations".to_owned());
            }
            expected.extend(parse_findings(rest)?);
        } else if let Some(rest) = line.strip_prefix("# tracked:") {
            tracked = Some(rest.split_whitespace().map(str::to_owned).collect());
        }
    }
    if n_expect_lines == 0 {
        return Err("no `# expect:` line at the top".to_owned());
    }
    Ok(Header { expected, tracked })
}

#[test]
fn every_fixture_meets_its_expectation() {
    let dir = workspace_root().join("tests/fixtures/manifests");
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "toml"))
        .collect();
    entries.sort();
    assert!(entries.len() >= 24, "expected at least 24 fixtures, found {}", entries.len());

    let mut failures = Vec::new();
    for path in &entries {
        let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        let bytes = fs::read(path).unwrap_or_else(|error| panic!("cannot read {name}: {error}"));
        let header = match parse_header(&bytes) {
            Ok(header) => header,
            Err(problem) => {
                failures.push(format!("{name}: {problem}"));
                continue;
            }
        };
        let (manifest, mut report) = check_bytes("tovuk.toml", &bytes);
        if report.ok() != manifest.is_some() {
            let returned = if manifest.is_some() { "returned" } else { "not returned" };
            failures.push(format!("{name}: ok is {} but the manifest was {returned}", report.ok()));
        }
        if let (Some(tracked), Some(manifest)) = (&header.tracked, &manifest) {
            check_files(&mut report, manifest, "tovuk.toml", tracked);
        }
        if let Err(problem) = compare(&header.expected, &actual_findings(&report)) {
            failures.push(format!("{name}: {problem}"));
        }
    }
    assert!(failures.is_empty(), "fixture failures:\n{}", failures.join("\n"));
}

#[test]
fn expectation_headers_are_parsed_strictly() {
    assert!(parse_header(b"# expect: ok\n").is_ok());
    assert!(parse_header(b"# expect: error unknown_key 3:1, warning dev_setting\n").is_ok());
    assert!(parse_header(b"[app]\n").is_err());
    assert!(parse_header(b"# expect: error no_such_code\n").is_err());
    assert!(parse_header(b"# expect: fatal unknown_key\n").is_err());
    assert!(parse_header(b"# expect: error unknown_key 3\n").is_err());
    assert!(parse_header(b"# expect: ok\n# expect: error unknown_key\n").is_err());
}

#[test]
fn a_fixture_with_a_wrong_expectation_fails() {
    let (_, report) = check_bytes("tovuk.toml", b"[app]\nnmae = 1\n");
    let actual = actual_findings(&report);
    let Ok(wrong_position) = parse_findings("error unknown_key 9:9, error missing_field 1:1, error missing_field 1:1")
    else {
        panic!("expectation must parse");
    };
    assert!(compare(&wrong_position, &actual).is_err());
    let Ok(right) = parse_findings("error unknown_key 2:1, error missing_field 1:1, error missing_field 1:1") else {
        panic!("expectation must parse");
    };
    assert_eq!(compare(&right, &actual), Ok(()));
    assert!(compare(&right[..1], &actual).is_err(), "unexpected findings must fail too");
}
