//! Tests for include/exclude pattern matching.

use super::pattern_matches;

#[test]
fn plain_paths_cover_themselves_and_their_contents() {
    assert!(pattern_matches("dist", "dist"));
    assert!(pattern_matches("dist/", "dist/app.js"));
    assert!(pattern_matches("fixtures/big", "fixtures/big/a/b.bin"));
    assert!(!pattern_matches("fixtures/big", "fixtures/bigger/x"));
    assert!(!pattern_matches("fixtures/big", "other/fixtures/big/x"));
    assert!(pattern_matches("./dist", "dist/x"));
}

#[test]
fn names_without_a_slash_match_at_any_depth() {
    assert!(pattern_matches(".env", "config/.env"));
    assert!(pattern_matches("*.pem", "certs/server.pem"));
    assert!(pattern_matches("node_modules", "web/node_modules/x/index.js"));
    assert!(!pattern_matches("*.pem", "certs/server.pem.txt"));
}

#[test]
fn wildcards_match_within_and_across_components() {
    assert!(pattern_matches("src/*.rs", "src/main.rs"));
    assert!(!pattern_matches("src/*.rs", "src/a/main.rs"));
    assert!(pattern_matches("src/**/*.rs", "src/a/b/main.rs"));
    assert!(pattern_matches("src/**/*.rs", "src/main.rs"));
    assert!(pattern_matches("**/secret?.json", "a/b/secret1.json"));
    assert!(pattern_matches("data/*", "data/x/y"));
    assert!(!pattern_matches("a*b", "acd"));
}

#[test]
fn dot_covers_everything() {
    assert!(pattern_matches(".", "anything/at/all"));
}

#[test]
fn many_double_stars_stay_fast() {
    let pattern = format!("{}x", "**/".repeat(200));
    let path = format!("{}y", "a/".repeat(200));
    assert!(!pattern_matches(&pattern, &path));
    assert!(pattern_matches(&pattern, "a/b/x"));
}
