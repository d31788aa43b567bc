//! Which ticks of a schedule came due since the last one dealt with, and what becomes of
//! them: the newest runs when it passed at most [`CATCH_UP_WINDOW`] ago, and the rest
//! (every one, when even the newest is older) make one `missed` record for the range.

use chrono::{DateTime, TimeDelta, Utc};
use tovuk_manifest::cron::Schedule;

#[cfg(test)]
mod tests;

/// How long after its time a tick still runs: one the platform was down for runs at start
/// if it passed at most this long ago. A tick is never older than its interval when the
/// next one is not due yet, so this caps schedules less frequent than hourly.
pub(crate) const CATCH_UP_WINDOW: TimeDelta = TimeDelta::hours(1);

/// Ticks counted one by one before the newest is looked for from now backwards instead.
const MOST_COUNTED: u64 = 10_000;

/// How far back the newest ticks are looked for, when there were too many to count.
const SPANS_BACK: [TimeDelta; 5] =
    [TimeDelta::hours(1), TimeDelta::days(1), TimeDelta::days(31), TimeDelta::days(366), TimeDelta::days(3660)];

/// The ticks in `(after, now]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Due {
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    /// The tick before `last`, when it is one of them.
    pub before_last: Option<DateTime<Utc>>,
    /// How many; at least this many when `more`.
    pub count: u64,
    pub more: bool,
}

/// A range of ticks that did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Missed {
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    pub count: u64,
    pub more: bool,
}

/// What to do with the ticks that came due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub run: Option<DateTime<Utc>>,
    pub missed: Option<Missed>,
}

/// The ticks of `schedule` after `after` up to and including `now`; `None` when there is none.
pub(crate) fn due(schedule: &Schedule, after: DateTime<Utc>, now: DateTime<Utc>) -> Option<Due> {
    let first = schedule.next_after(&after).filter(|tick| *tick <= now)?;
    let (mut last, mut before_last, mut count) = (first, None, 1);
    while let Some(tick) = schedule.next_after(&last).filter(|tick| *tick <= now) {
        if count >= MOST_COUNTED {
            let (newest, before) = newest_two(schedule, last, now).unwrap_or((last, before_last));
            return Some(Due { first, last: newest, before_last: before, count, more: true });
        }
        (before_last, last, count) = (Some(last), tick, count + 1);
    }
    Some(Due { first, last, before_last, count, more: false })
}

/// The newest tick at or before `now` and the one before it (`floor` at the earliest), looked for
/// in spans growing back from `now`, so a long gap costs a few walks, not one per tick.
fn newest_two(
    schedule: &Schedule,
    floor: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<(DateTime<Utc>, Option<DateTime<Utc>>)> {
    for span in SPANS_BACK {
        let start = (now - span).max(floor);
        let (mut newest, mut before) = (None, None);
        let mut tick = start;
        while let Some(next) = schedule.next_after(&tick).filter(|next| *next <= now) {
            (before, newest, tick) = (newest, Some(next), next);
        }
        // `floor` is a due tick itself: the one before the newest when nothing else is.
        let before = before.or((start == floor).then_some(floor));
        if let (Some(newest), Some(before)) = (newest, before) {
            return Some((newest, Some(before)));
        }
    }
    None
}

/// The newest due tick runs when it passed at most [`CATCH_UP_WINDOW`] before `now`; the
/// others (all of them otherwise) are missed.
pub(crate) fn plan(due: &Due, now: DateTime<Utc>) -> Plan {
    if now - due.last > CATCH_UP_WINDOW {
        let missed = Missed { first: due.first, last: due.last, count: due.count, more: due.more };
        return Plan { run: None, missed: Some(missed) };
    }
    let missed = match due.before_last {
        Some(before_last) if due.count > 1 => {
            Some(Missed { first: due.first, last: before_last, count: due.count - 1, more: due.more })
        }
        _ => None,
    };
    Plan { run: Some(due.last), missed }
}
