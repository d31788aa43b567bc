//! Tick arithmetic on fixed dates: a schedule's due ticks, and which run or are missed.

use super::{Due, Missed, Plan, due, plan};
use chrono::{DateTime, TimeZone, Utc};
use tovuk_manifest::cron::Schedule;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).map(|time| time.with_timezone(&Utc)).expect("a time")
}

fn every(text: &str) -> Schedule {
    Schedule::parse(text).expect("a schedule")
}

#[test]
fn nothing_is_due_before_the_next_tick() {
    assert_eq!(due(&every("* * * * *"), at("2030-01-01T00:00:00Z"), at("2030-01-01T00:00:59Z")), None);
}

#[test]
fn the_tick_that_came_due_runs() {
    let due = due(&every("* * * * *"), at("2030-01-01T00:00:00Z"), at("2030-01-01T00:01:00.200Z")).expect("due");
    assert_eq!(due.count, 1);
    assert_eq!(
        plan(&due, at("2030-01-01T00:01:00.200Z")),
        Plan { run: Some(at("2030-01-01T00:01:00Z")), missed: None }
    );
}

#[test]
fn after_downtime_the_newest_tick_runs_and_the_older_ones_are_one_missed_range() {
    let now = at("2030-01-01T00:05:30Z");
    let due = due(&every("* * * * *"), at("2030-01-01T00:00:30Z"), now).expect("due");
    assert_eq!(
        due,
        Due {
            first: at("2030-01-01T00:01:00Z"),
            last: at("2030-01-01T00:05:00Z"),
            before_last: Some(at("2030-01-01T00:04:00Z")),
            count: 5,
            more: false
        }
    );
    let missed = Missed { first: at("2030-01-01T00:01:00Z"), last: at("2030-01-01T00:04:00Z"), count: 4, more: false };
    assert_eq!(plan(&due, now), Plan { run: Some(at("2030-01-01T00:05:00Z")), missed: Some(missed) });
}

#[test]
fn a_tick_older_than_the_window_is_missed_not_run() {
    let now = at("2030-01-01T05:00:00Z");
    let due = due(&every("0 3 * * *"), at("2029-12-30T12:00:00Z"), now).expect("due");
    assert_eq!(due.count, 2);
    let missed = Missed { first: at("2029-12-31T03:00:00Z"), last: at("2030-01-01T03:00:00Z"), count: 2, more: false };
    assert_eq!(plan(&due, now), Plan { run: None, missed: Some(missed) });
}

#[test]
fn a_long_gap_is_not_counted_tick_by_tick() {
    let now = Utc.with_ymd_and_hms(2031, 1, 1, 0, 0, 30).single().expect("date");
    let due = due(&every("* * * * *"), at("2030-01-01T00:00:00Z"), now).expect("due");
    assert!(due.more && due.count == 10_000, "{due:?}");
    assert_eq!(due.last, at("2031-01-01T00:00:00Z"));
    assert_eq!(due.before_last, Some(at("2030-12-31T23:59:00Z")));
    let planned = plan(&due, now);
    assert_eq!(planned.run, Some(at("2031-01-01T00:00:00Z")));
    assert_eq!(planned.missed.map(|missed| (missed.last, missed.more)), Some((at("2030-12-31T23:59:00Z"), true)));
}
