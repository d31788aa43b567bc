//! Tests for duration parsing and formatting.

use std::time::Duration;

use super::{duration_from_seconds, format_duration, parse_duration};

#[test]
fn accepts_each_unit() {
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    assert_eq!(parse_duration(" 2s "), Ok(Duration::from_secs(2)));
}

#[test]
fn refuses_missing_or_unknown_units() {
    for bad in ["", "s", "30", "30 s", "1.5s", "1h30m", "-5s", "5d", "fast"] {
        assert!(parse_duration(bad).is_err(), "{bad:?} must be refused");
    }
}

#[test]
fn refuses_overflow() {
    assert!(parse_duration("99999999999999999999s").is_err());
    assert!(parse_duration("18446744073709551615h").is_err());
}

#[test]
fn integer_seconds_must_not_be_negative() {
    assert_eq!(duration_from_seconds(45), Ok(Duration::from_secs(45)));
    assert!(duration_from_seconds(-1).is_err());
}

#[test]
fn formats_with_the_largest_exact_unit() {
    assert_eq!(format_duration(Duration::from_secs(600)), "10m");
    assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
    assert_eq!(format_duration(Duration::from_secs(90)), "90s");
    assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    assert_eq!(format_duration(Duration::ZERO), "0s");
}
