//! Listing walks over an in-memory key set.

use std::collections::BTreeSet;
use std::convert::Infallible;

use super::*;

fn check(keys: &[&str], prefix: &str, delimiter: &str, resume_at: &str, max_keys: usize, expect: &str) {
    let set: BTreeSet<Vec<u8>> = keys.iter().map(|key| key.as_bytes().to_vec()).collect();
    let query =
        ListQuery { prefix: prefix.as_bytes(), delimiter: delimiter.as_bytes(), resume_at: resume_at.into(), max_keys };
    let page = list(&query, |from| -> Result<_, Infallible> {
        Ok(set.range(from.to_vec()..).next().map(|key| (key.clone(), ())))
    })
    .expect("infallible");
    let mut rendered: Vec<String> = page
        .items
        .iter()
        .map(|item| match item {
            Item::Object(key, ()) => String::from_utf8_lossy(key).into_owned(),
            Item::CommonPrefix(prefix) => format!("[{}]", String::from_utf8_lossy(prefix)),
        })
        .collect();
    if let Some(next) = page.next {
        rendered.push(format!("next={}", String::from_utf8_lossy(&next)));
    }
    assert_eq!(rendered.join(" "), expect);
}

const KEYS: &[&str] = &["a", "b/1", "b/2", "b/c/3", "c", "d/1"];

#[test]
fn lists_everything_without_delimiter() {
    check(KEYS, "", "", "", 1000, "a b/1 b/2 b/c/3 c d/1");
}

#[test]
fn delimiter_rolls_up_common_prefixes() {
    check(KEYS, "", "/", "", 1000, "a [b/] c [d/]");
    check(KEYS, "b/", "/", "", 1000, "b/1 b/2 [b/c/]");
}

#[test]
fn pages_resume_after_objects_and_prefixes() {
    check(KEYS, "", "/", "", 2, "a [b/] next=b0");
    check(KEYS, "", "/", "b0", 2, "c [d/]");
    check(KEYS, "", "", "", 3, "a b/1 b/2 next=b/2\0");
    check(KEYS, "", "", "b/2\0", 3, "b/c/3 c d/1");
}

#[test]
fn prefix_bounds_the_walk() {
    check(KEYS, "b/", "", "", 1000, "b/1 b/2 b/c/3");
    check(KEYS, "z", "", "", 1000, "");
    check(KEYS, "", "", "", 0, "");
}
