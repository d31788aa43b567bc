//! Tests for `validate_name` and `validate_value`: the accepted set, each refusal and its message.

use crate::{MAX_VALUE_BYTES, NameError, ValueError, validate_name, validate_value};

#[test]
fn name_table() {
    let long = "A".repeat(257);
    let cases: &[(&str, Result<(), NameError>)] = &[
        ("DATABASE_URL", Ok(())),
        ("_private", Ok(())),
        ("a1_B2", Ok(())),
        ("X", Ok(())),
        ("PORTS", Ok(())),
        ("MY_PATH", Ok(())),
        ("port", Ok(())),
        ("TOVUK", Ok(())),
        ("", Err(NameError::Empty)),
        (&long, Err(NameError::TooLong { len: 257 })),
        ("1ABC", Err(NameError::StartsWithDigit { name: "1ABC".to_owned() })),
        ("MY-VAR", Err(NameError::InvalidChar { name: "MY-VAR".to_owned(), ch: '-' })),
        ("CAFÉ", Err(NameError::InvalidChar { name: "CAFÉ".to_owned(), ch: 'É' })),
        ("MY VAR", Err(NameError::InvalidChar { name: "MY VAR".to_owned(), ch: ' ' })),
        ("PORT", Err(NameError::Reserved { name: "PORT".to_owned() })),
        ("HOME", Err(NameError::Reserved { name: "HOME".to_owned() })),
        ("PATH", Err(NameError::Reserved { name: "PATH".to_owned() })),
        ("TOVUK_X", Err(NameError::Reserved { name: "TOVUK_X".to_owned() })),
        ("TOVUK_", Err(NameError::Reserved { name: "TOVUK_".to_owned() })),
        ("tovuk_x", Err(NameError::Reserved { name: "tovuk_x".to_owned() })),
        ("Tovuk_Url", Err(NameError::Reserved { name: "Tovuk_Url".to_owned() })),
        // The edge auth settings are the owner's to set, spelled exactly.
        ("TOVUK_AUTH_MODE", Ok(())),
        ("tovuk_auth_mode", Err(NameError::Reserved { name: "tovuk_auth_mode".to_owned() })),
        ("TOVUK_AUTHX", Err(NameError::Reserved { name: "TOVUK_AUTHX".to_owned() })),
    ];
    for (name, expected) in cases {
        assert_eq!(&validate_name(name), expected, "{name:?}");
    }
    assert_eq!(validate_name(&"A".repeat(256)), Ok(()), "256 bytes is the limit, inclusive");
}

#[test]
fn name_messages_name_the_problem_and_the_fix() {
    let message = |name: &str| validate_name(name).expect_err("refused").to_string();
    assert_eq!(
        message("MY-VAR"),
        "`MY-VAR` is not a valid environment variable name: `-` is not allowed; use letters, digits and `_`, not starting with a digit (e.g. `MY_VAR`)"
    );
    assert_eq!(message("PORT"), "`PORT` is set by the platform (the port your app must listen on); pick another name");
    assert_eq!(message("HOME"), "`HOME` is set by the sandbox your app runs in; pick another name");
    assert_eq!(
        message("TOVUK_URL"),
        "`TOVUK_URL` starts with `TOVUK_`, which is reserved for variables the platform sets; pick another name (e.g. `APP_URL`)"
    );
    assert_eq!(
        message("1ABC"),
        "`1ABC` is not a valid environment variable name: it starts with a digit; start it with a letter or `_` (e.g. `_1ABC`)"
    );
    assert!(message("").contains("name is empty"), "{}", message(""));
    assert_eq!(
        message(&"A".repeat(300)),
        "an environment variable name is 300 bytes; the limit is 256: pick a shorter name"
    );
    // Control characters are shown escaped, not printed raw to the terminal.
    assert!(message("A\u{1b}B").contains(r"`A\u{1b}B`"), "{}", message("A\u{1b}B"));
}

#[test]
fn value_table() {
    let at_limit = "v".repeat(MAX_VALUE_BYTES);
    let over_limit = "v".repeat(MAX_VALUE_BYTES + 1);
    let cases: &[(&str, Result<(), ValueError>)] = &[
        ("", Ok(())),
        ("plain value with spaces, \"quotes\" and # hashes\t", Ok(())),
        ("ünïcödé", Ok(())),
        (&at_limit, Ok(())),
        ("line1\nline2", Err(ValueError::Newline { name: "KEY".to_owned() })),
        ("ends with cr\r", Err(ValueError::Newline { name: "KEY".to_owned() })),
        ("nul\0byte", Err(ValueError::Nul { name: "KEY".to_owned() })),
        (&over_limit, Err(ValueError::TooLong { name: "KEY".to_owned(), len: MAX_VALUE_BYTES + 1 })),
    ];
    for (value, expected) in cases {
        assert_eq!(&validate_value("KEY", value), expected, "{:?}", &value[..value.len().min(20)]);
    }
}

#[test]
fn value_messages_name_the_fix_and_never_the_value() {
    const CANARY: &str = "canary-s3cr3t-value";
    let refused = [
        format!("{CANARY}\n-----END PRIVATE KEY-----"),
        format!("{CANARY}\r"),
        format!("{CANARY}\0"),
        format!("{CANARY}{}", "x".repeat(MAX_VALUE_BYTES)),
    ];
    for value in &refused {
        let error = validate_value("API_KEY", value).expect_err("refused");
        let message = error.to_string();
        assert!(!message.contains(CANARY), "message leaks the value: {message}");
        assert!(!format!("{error:?}").contains(CANARY), "Debug leaks the value: {error:?}");
        assert!(message.contains("`API_KEY`"), "{message}");
    }
    assert_eq!(
        validate_value("PEM", "a\nb").expect_err("refused").to_string(),
        "the value of `PEM` spans several lines; environment values are one line: store multi-line values (a PEM key, say) base64-encoded and decode them in the app"
    );
    assert_eq!(
        validate_value("BIN", "a\0b").expect_err("refused").to_string(),
        "the value of `BIN` contains a NUL byte, which an environment variable cannot hold; base64-encode binary values"
    );
    assert_eq!(
        validate_value("BIG", &"x".repeat(70_000)).expect_err("refused").to_string(),
        "the value of `BIG` is 70000 bytes; the limit is 65536 (64 KiB): keep large values in a file or object storage and put its location in the variable"
    );
}
