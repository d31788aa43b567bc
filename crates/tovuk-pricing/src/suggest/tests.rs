//! Tests of edit distance and meter-name suggestions.

use super::{closest, edit_distance};

#[test]
fn distance_counts_edits_and_transpositions() {
    assert_eq!(edit_distance("requests", "requests"), 0);
    assert_eq!(edit_distance("reqests", "requests"), 1);
    assert_eq!(edit_distance("reqeusts", "requests"), 1);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
}

#[test]
fn suggests_within_two_edits_only() {
    let names = ["requests", "kv_reads", "kv_writes", "state_reads"];
    assert_eq!(closest("reqests", &names), Some("requests"));
    assert_eq!(closest("KV-Reads", &names), Some("kv_reads"));
    assert_eq!(closest("kv_read", &names), Some("kv_reads"));
    assert_eq!(closest("bandwidth", &names), None);
}
