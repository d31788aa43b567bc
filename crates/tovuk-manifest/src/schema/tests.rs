//! Consistency tests for the schema tables.

use super::{EXPECTED, REMOVED, SECTIONS, TOP};
use crate::tests::summary;
use crate::{Expected, MINIMAL_MANIFEST, check_bytes};

#[test]
fn examples_start_with_their_key() {
    for spec in SECTIONS.iter().chain([&&TOP]) {
        for key in spec.keys {
            let starts_right = key.example.starts_with(&format!("{} = ", key.name))
                || key.example.starts_with(&format!("[{}]", key.name))
                || key.example.starts_with(&format!("[[{}]]", key.name));
            assert!(starts_right, "example of `{}`: {}", key.name, key.example);
        }
    }
}

#[test]
fn expected_keys_match_the_typed_struct() {
    assert_eq!(EXPECTED.key_names(), Expected::KEYS.to_vec());
}

#[test]
fn docs_document_every_key() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/manifest.md");
    let doc = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("cannot read {path}: {error}"));
    for spec in SECTIONS {
        assert!(doc.contains(&format!("### `{}`", spec.header)), "no section for {}", spec.header);
        for key in spec.keys {
            assert!(doc.contains(&format!("| `{}` |", key.name)), "{} `{}` is not documented", spec.header, key.name);
        }
    }
}

#[test]
fn removed_keys_are_no_longer_keys_of_their_table() {
    for removed in REMOVED {
        let Some(table) = SECTIONS.iter().find(|spec| spec.header == removed.header) else {
            panic!("`{}` was removed from {}, which is not a table", removed.name, removed.header);
        };
        assert!(table.key(removed.name).is_none(), "`{}` is both a key and removed", removed.name);
        assert_eq!(table.removed(removed.name).map(|key| key.name), Some(removed.name));
    }
    assert!(EXPECTED.removed("storage_gb").is_none());
}

#[test]
fn a_removed_key_is_a_warning_saying_why_and_the_manifest_stays_valid() {
    let text =
        format!("{MINIMAL_MANIFEST}\n[expected]\nrequests_per_month = 1000\nsqlite_rows_per_month = 1_000_000\n");
    let (manifest, report) = check_bytes("tovuk.toml", text.as_bytes());
    assert_eq!(summary(&report), "warning unknown_key 14:1", "{report:#?}");
    let warning = &report.warnings()[0];
    assert_eq!(
        warning.message,
        "`sqlite_rows_per_month` in [expected] was removed and is ignored: SQLite is billed as storage, not per row, \
         because its database is a file in the app's volume that the app opens with its own SQLite library, so the \
         platform cannot count rows and never bills an estimate; count the file in `storage_gb`"
    );
    assert_eq!(warning.next.as_deref(), Some("delete the `sqlite_rows_per_month` line from [expected]"));
    assert!(report.required_fixes().is_empty(), "a warning is not a required fix");
    let Some(manifest) = manifest else {
        panic!("a removed key leaves the manifest valid");
    };
    assert_eq!(manifest.expected().entries(), [("requests_per_month", 1000.0)]);
    // Anywhere else it is an unknown key like any other.
    let text = format!("{MINIMAL_MANIFEST}\n[limits]\nsqlite_rows_per_month = 1\n");
    assert_eq!(summary(&check_bytes("tovuk.toml", text.as_bytes()).1), "error unknown_key 13:1");
}
