//! Tests for cron schedule validation.

use super::check_schedule;

#[test]
fn accepts_common_schedules() {
    for good in
        ["*/5 * * * *", "0 3 * * *", "0 0 1 1 *", "15,45 9-17 * * MON-FRI", "0 12 * JAN sun", "@daily", " 0 0 * * 0 "]
    {
        assert_eq!(check_schedule(good), Ok(()), "{good}");
    }
}

#[test]
fn refuses_wrong_field_counts_characters_and_ranges() {
    for bad in [
        "",
        "* * * *",
        "* * * * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * * 13 *",
        "* * * * 8",
        "every 5 minutes",
        "*/5 * * * ?",
        "@reboot",
    ] {
        assert!(check_schedule(bad).is_err(), "{bad}");
    }
}
