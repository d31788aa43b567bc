//! Key rules and token round trips.

use super::*;

#[test]
fn keys_that_look_like_paths_are_accepted() {
    for key in ["..", "a/../../b", "%2F", "/leading", "a//b", "ü/ñ"] {
        assert!(check_key(key).is_ok(), "{key}");
    }
}

#[test]
fn long_and_nul_keys_are_refused_with_s3_codes() {
    let long = "k".repeat(MAX_KEY_BYTES + 1);
    assert_eq!(check_key(&long).expect_err("too long").code(), &S3ErrorCode::KeyTooLongError);
    assert!(check_key(&"k".repeat(MAX_KEY_BYTES)).is_ok());
    assert_eq!(check_key("a\0b").expect_err("nul").code(), &S3ErrorCode::InvalidArgument);
}

#[test]
fn successors_order_right_after_their_input() {
    assert_eq!(prefix_successor(b"a/"), Some(b"a0".to_vec()));
    assert_eq!(prefix_successor(&[b'a', 0xff]), Some(b"b".to_vec()));
    assert_eq!(prefix_successor(&[0xff]), None);
    assert_eq!(key_successor(b"a"), b"a\0".to_vec());
    assert_eq!(decode_token(&encode_token(b"x/y")).expect("hex"), b"x/y".to_vec());
    assert!(decode_token("zz").is_err());
}
