//! Tests for cron schedules: what the check accepts, the scheduler can run.

use super::Schedule;
use chrono::{TimeZone, Utc};

#[test]
fn accepts_common_schedules() {
    for good in [
        "*/5 * * * *",
        "0 3 * * *",
        "0 0 1 1 *",
        "15,45 9-17 * * MON-FRI",
        "0 12 * JAN sun",
        "@daily",
        "@hourly",
        " 0 0 * * 0 ",
        "0 0 29 2 *",
        "0 0 L * *",
        "0 0 * * 7",
        "0 0 * * 5#2",
        "0 0 15W * *",
        "0 0 * * 5L",
        "@annually",
        "@weekly",
        "@monthly",
    ] {
        assert!(Schedule::parse(good).is_ok(), "{good}: {:?}", Schedule::parse(good).err());
    }
}

#[test]
fn refuses_what_no_scheduler_can_run() {
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
        "a b c d e",
        "*/0 * * * *",
        "MON * * * *",
        "0 0 31 2 *",
        "0 0 30 2 *",
    ] {
        assert!(Schedule::parse(bad).is_err(), "{bad:?} was accepted");
    }
    let never = Schedule::parse("0 0 31 2 *").err().unwrap_or_default();
    assert!(never.contains("never fires"), "{never}");
}

#[test]
fn the_next_time_follows_posix_cron() {
    let at = |d, h, m| Utc.with_ymd_and_hms(2026, 12, d, h, m, 0).single().expect("date");
    let every_five = Schedule::parse("*/5 * * * *").expect("parse");
    assert_eq!(every_five.next_after(&at(3, 10, 2)), Some(at(3, 10, 5)));
    // `9-17` includes 17:00, as in POSIX cron.
    let office = Schedule::parse("0 9-17 * * 1-5").expect("parse");
    assert_eq!(office.next_after(&at(3, 16, 30)), Some(at(3, 17, 0)));
    // Day of month OR day of week when both are restricted (Vixie): the 5th, or any Monday.
    let either = Schedule::parse("0 0 5 * MON").expect("parse");
    assert_eq!(either.next_after(&at(3, 1, 0)), Some(at(5, 0, 0)));
    assert_eq!(either.next_after(&at(5, 1, 0)), Some(at(7, 0, 0)));
}
