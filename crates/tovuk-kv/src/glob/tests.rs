//! Redis glob patterns, case by case against what redis matches.
use super::matches;

fn check(pattern: &str, string: &str, expect: bool) {
    assert_eq!(matches(pattern.as_bytes(), string.as_bytes()), expect, "pattern {pattern:?} on {string:?}");
}

#[test]
fn redis_glob_cases() {
    // As in redis: KEYS and SCAN special-case a lone `*`, the matcher itself needs one byte.
    check("*", "", false);
    check("*", "anything", true);
    check("h?llo", "hello", true);
    check("h?llo", "hllo", false);
    check("h*llo", "heeeello", true);
    check("h[ae]llo", "hallo", true);
    check("h[ae]llo", "hillo", false);
    check("h[^e]llo", "hallo", true);
    check("h[^e]llo", "hello", false);
    check("h[a-b]llo", "hbllo", true);
    check("h[b-a]llo", "hbllo", true);
    check("h[a-b]llo", "hcllo", false);
    check("h\\*llo", "h*llo", true);
    check("h\\*llo", "hello", false);
    check("user:*:name", "user:42:name", true);
    check("user:*:name", "user:42:email", false);
    check("a*", "", false);
    check("a**", "a", true);
    check("[", "a", false);
    check("[a", "a", true);
    check("*a*b*c*", "xxaxxbxxcxx", true);
    check("*a*b*c*", "xxaxxcxxbxx", false);
    check("", "", true);
    check("", "a", false);
}
