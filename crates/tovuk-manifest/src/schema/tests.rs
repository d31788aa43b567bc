//! Consistency tests for the schema tables.

use super::{EXPECTED, SECTIONS, TOP};
use crate::Expected;

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
