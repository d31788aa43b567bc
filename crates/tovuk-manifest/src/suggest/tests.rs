//! Tests for edit distance and did-you-mean.

use super::{did_you_mean, edit_distance};

#[test]
fn edit_distance_counts_edits_and_transpositions() {
    assert_eq!(edit_distance("", ""), 0);
    assert_eq!(edit_distance("name", "name"), 0);
    assert_eq!(edit_distance("nme", "name"), 1);
    assert_eq!(edit_distance("nmae", "name"), 1);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(edit_distance("", "abc"), 3);
}

#[test]
fn suggests_the_closest_candidate() {
    let keys = ["name", "kind", "capabilities"];
    assert_eq!(did_you_mean("nmae", &keys), Some("name"));
    assert_eq!(did_you_mean("kinds", &keys), Some("kind"));
    assert_eq!(did_you_mean("capabilites", &keys), Some("capabilities"));
}

#[test]
fn case_and_separator_slips_are_suggested() {
    let values = ["object-storage", "service-bindings", "web"];
    assert_eq!(did_you_mean("object_storage", &values), Some("object-storage"));
    assert_eq!(did_you_mean("Web", &values), Some("web"));
    assert_eq!(did_you_mean("service_binding", &values), Some("service-bindings"));
}

#[test]
fn distant_words_get_no_suggestion() {
    let keys = ["name", "kind", "capabilities"];
    assert_eq!(did_you_mean("port", &keys), None);
    assert_eq!(did_you_mean("x", &["abc"]), None);
    assert_eq!(did_you_mean("name", &keys), None);
}

#[test]
fn a_word_missing_its_qualifier_is_suggested() {
    let limits = ["memory_mb", "cpu_cores", "instances", "request_timeout"];
    assert_eq!(did_you_mean("timeout", &limits), Some("request_timeout"));
    assert_eq!(did_you_mean("memory", &limits), Some("memory_mb"));
    assert_eq!(did_you_mean("cpu", &limits), Some("cpu_cores"));
    // Ambiguous qualifiers suggest nothing rather than guess.
    assert_eq!(did_you_mean("month", &["requests_per_month", "cron_runs_per_month"]), None);
}

#[test]
fn meter_names_are_suggested_by_the_same_rule() {
    let names = ["requests", "kv_reads", "kv_writes", "state_reads"];
    assert_eq!(did_you_mean("reqests", &names), Some("requests"));
    assert_eq!(did_you_mean("KV-Reads", &names), Some("kv_reads"));
    assert_eq!(did_you_mean("kv_read", &names), Some("kv_reads"));
    assert_eq!(did_you_mean("bandwidth", &names), None);
    assert_eq!(edit_distance("reqeusts", "requests"), 1);
}
