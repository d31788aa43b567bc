//! Unit tests for request ids.

use super::{encode, from_client_or_new, generate, is_sane};

#[test]
fn generated_ids_have_the_documented_shape() {
    let id = generate();
    assert_eq!(id.len(), 30, "{id}");
    assert!(id.starts_with("req_"), "{id}");
    assert!(id[4..].bytes().all(|byte| super::ALPHABET.contains(&byte)), "{id}");
    assert_ne!(generate(), generate());
}

#[test]
fn encoding_uses_every_bit() {
    assert_eq!(encode(0), "req_00000000000000000000000000");
    assert_eq!(encode(u128::MAX), "req_7zzzzzzzzzzzzzzzzzzzzzzzzz");
    assert_eq!(encode(31), "req_0000000000000000000000000z");
}

#[test]
fn sane_client_ids_are_kept() {
    for (id, sane) in [
        ("abc-123", true),
        ("req_01j9zq.x:y", true),
        ("550e8400-e29b-41d4-a716-446655440000", true),
        ("", false),
        ("has space", false),
        ("semi;colon", false),
        ("quote\"", false),
        ("é", false),
    ] {
        assert_eq!(is_sane(id), sane, "{id:?}");
    }
    assert!(is_sane(&"a".repeat(128)));
    assert!(!is_sane(&"a".repeat(129)));
}

#[test]
fn unsane_or_missing_client_ids_are_replaced() {
    assert_eq!(from_client_or_new(Some("trace-7")), "trace-7");
    assert!(from_client_or_new(Some("two words")).starts_with("req_"));
    assert!(from_client_or_new(None).starts_with("req_"));
}
