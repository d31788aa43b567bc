//! Tests for `Masker`: what is masked, overlaps, borrowing, and values split across reads.

use std::borrow::Cow;
use std::io::{self, Read};

use crate::{MASK, MIN_MASKED_LEN, Masker};

#[test]
fn masks_every_occurrence() {
    let masker = Masker::new(["s3cret", "tok_abcdef"]);
    assert_eq!(masker.mask("a s3cret and tok_abcdef, s3cret again"), "a **** and ****, **** again");
    assert_eq!(masker.mask("s3crets3cret"), "********", "adjacent occurrences mask separately");
}

#[test]
fn longest_value_wins() {
    let masker = Masker::new(["secret", "secret123"]);
    assert_eq!(masker.mask("x=secret123;"), "x=****;", "no `123` left behind");
    assert_eq!(masker.mask("x=secret;"), "x=****;");
}

#[test]
fn overlapping_values_mask_fully() {
    // The end of one value is the start of the other: nothing of either may show.
    let masker = Masker::new(["abcdef", "defghi"]);
    assert_eq!(masker.mask("[abcdefghi]"), "[****]");
    // A value wholly inside a longer one that starts earlier.
    let masker = Masker::new(["xxsecretyy", "secret"]);
    assert_eq!(masker.mask("-xxsecretyy-secret-"), "-****-****-");
}

#[test]
fn short_and_empty_values_are_not_masked() {
    let masker = Masker::new(["", "1", "on", "yes"]);
    assert!(masker.is_empty());
    assert!(matches!(masker.mask("on 1 yes"), Cow::Borrowed("on 1 yes")));
    assert_eq!(MIN_MASKED_LEN, 4);
    let masker = Masker::new(["true"]);
    assert_eq!(masker.mask("is true"), format!("is {MASK}"), "4 bytes is masked");
    // Length is counted in bytes: `éé` is 4 bytes.
    assert_eq!(Masker::new(["éé"]).mask("xééx"), "x****x");
}

#[test]
fn borrowed_when_nothing_matched() {
    let masker = Masker::new(["s3cret"]);
    assert!(matches!(masker.mask("nothing here"), Cow::Borrowed("nothing here")));
    assert!(matches!(masker.mask_bytes(b"nothing here"), Cow::Borrowed(b"nothing here")));
    assert!(matches!(masker.mask("has s3cret"), Cow::Owned(_)));
    assert!(matches!(Masker::default().mask("s3cret"), Cow::Borrowed("s3cret")));
}

#[test]
fn mask_bytes_handles_non_utf8_around_values() {
    let masker = Masker::new(["s3cret"]);
    assert_eq!(masker.mask_bytes(b"\xff s3cret \xfe").as_ref(), b"\xff **** \xfe");
}

#[test]
fn duplicates_count_once_and_debug_shows_only_the_count() {
    let masker = Masker::new(vec!["s3cret".to_owned(), "s3cret".to_owned(), "other-value".to_owned(), "no".to_owned()]);
    assert_eq!(format!("{masker:?}"), "Masker { values: 2, .. }");
    assert!(!format!("{masker:?}").contains("s3cret"));
}

#[test]
fn default_masks_nothing() {
    let masker = Masker::default();
    assert!(masker.is_empty());
    assert!(!masker.contains(b"anything"));
    assert!(!masker.find_in_reader(&b"anything"[..]).expect("read"));
}

#[test]
fn contains_finds_values_in_bytes() {
    let masker = Masker::new(["s3cret"]);
    assert!(masker.contains(b"xx s3cret xx"));
    assert!(!masker.contains(b"xx s3cre xx"));
}

/// Yields its data at most `step` bytes per read, to put read boundaries anywhere.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = self.data.len().min(self.step).min(buf.len());
        buf[..len].copy_from_slice(&self.data[..len]);
        self.data = &self.data[len..];
        Ok(len)
    }
}

#[test]
fn find_in_reader_finds_a_value_split_across_the_64_kib_boundary() {
    let value = "split-secret-value";
    let masker = Masker::new([value]);
    let chunk = 64 * 1024;
    for offset in 1..value.len() {
        // The value starts `offset` bytes before the end of the first 64 KiB read.
        let mut data = vec![b'.'; chunk - offset];
        data.extend_from_slice(value.as_bytes());
        data.extend_from_slice(&[b'.'; 100]);
        assert!(masker.find_in_reader(&data[..]).expect("read"), "offset {offset}");
        // A reader handing out exactly 64 KiB per read, so the split is certain.
        assert!(masker.find_in_reader(Trickle { data: &data, step: chunk }).expect("read"), "offset {offset}");
    }
    let mut clean = vec![b'.'; 3 * chunk];
    clean.extend_from_slice(&value.as_bytes()[..value.len() - 1]);
    assert!(!masker.find_in_reader(&clean[..]).expect("read"));
}

#[test]
fn find_in_reader_with_tiny_reads_and_chunks() {
    let masker = Masker::new(["short", "a-much-longer-secret"]);
    let data = b"..........a-much-longer-secret..........";
    for step in 1..8 {
        assert!(masker.find_in_reader(Trickle { data, step }).expect("read"), "step {step}");
        assert!(masker.find_in_reader_chunked(&data[..], step).expect("read"), "chunk {step}");
    }
    assert!(!masker.find_in_reader(Trickle { data: b"a-much-longer-secre", step: 3 }).expect("read"));
}

#[test]
fn find_in_reader_passes_read_errors_on() {
    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("disk on fire"))
        }
    }
    let error = Masker::new(["s3cret"]).find_in_reader(Broken).expect_err("error");
    assert_eq!(error.to_string(), "disk on fire");
}

#[test]
fn encoded_forms_of_a_value_are_masked_too() {
    use base64::Engine;
    let secret = "hunter2-Sup3r secret/value";
    let masker = Masker::new([secret]);
    let standard = &base64::engine::general_purpose::STANDARD;
    let url_safe = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let printed = [
        hex::encode(secret),
        hex::encode_upper(secret),
        standard.encode(secret),
        // Inside a longer encoded string, at each alignment: basic auth, a JSON token.
        standard.encode(format!("user:{secret}")),
        standard.encode(format!("ab:{secret}")),
        url_safe.encode(format!("{{\"k\":\"{secret}\",\"n\":1}}")),
        url_safe.encode(format!("x{secret}")),
        percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC).to_string(),
        "hunter2-Sup3r+secret%2Fvalue".to_owned(),
    ];
    for text in printed {
        let line = format!("Authorization: {text}");
        let masked = masker.mask(&line);
        assert!(masked.contains(MASK), "not masked: {line}");
        // What is left cannot be decoded back into the value.
        let rest = masked.replace(MASK, "");
        for decoded in [
            standard.decode(rest.trim_start_matches("Authorization: ")).ok(),
            url_safe.decode(rest.trim_start_matches("Authorization: ")).ok(),
            hex::decode(rest.trim_start_matches("Authorization: ")).ok(),
        ]
        .into_iter()
        .flatten()
        {
            assert!(!String::from_utf8_lossy(&decoded).contains(secret), "{line} -> {masked}");
        }
    }
    // Short values are not searched in encoded form: too many false hits.
    assert_eq!(Masker::new(["abcdefg"]).mask("YWJjZGVmZw== 61626364656667"), "YWJjZGVmZw== 61626364656667");
}
