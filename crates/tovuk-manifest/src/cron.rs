//! Cron schedules: the one reading of `schedule = "..."` that `tovuk check` and the
//! scheduler share, so a schedule the check accepts is one the scheduler runs.
//!
//! Five fields (minute hour day-of-month month day-of-week), POSIX/Vixie meaning (a day
//! matches when day-of-month OR day-of-week does, when both are restricted), month and
//! weekday names, `@yearly`/`@annually`/`@monthly`/`@weekly`/`@daily`/`@hourly`, and
//! croner's `L`, `W` and `#`. No seconds, no years. A schedule that never fires (`0 0 31 2 *`)
//! is refused.

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use croner::errors::CronError;
use croner::parser::{CronParser, Seconds, Year};

#[cfg(test)]
mod tests;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
}

impl Schedule {
    /// Parses `text`, refusing what no scheduler could run, with a message naming the fix.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let trimmed = text.trim();
        let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
        // `?` (any, in Quartz) is not POSIX cron: refused rather than read one way here and
        // another by the next tool.
        if let Some(bad) = trimmed.chars().find(|ch| {
            !(ch.is_ascii_alphanumeric() || ch.is_whitespace() || matches!(ch, '*' | ',' | '-' | '/' | '#' | '@'))
        }) {
            return Err(format!("schedule `{text}` contains `{bad}`, which cron schedules do not use"));
        }
        let fields = trimmed.split_whitespace().count();
        if !trimmed.starts_with('@') && fields != 5 {
            return Err(format!(
                "schedule `{text}` has {fields} fields; cron needs 5 (minute hour day-of-month month day-of-week), as in \"*/5 * * * *\""
            ));
        }
        if !trimmed.starts_with('@') {
            check_field_letters(text, trimmed)?;
        }
        let cron = parser
            .parse(trimmed)
            .map_err(|error| format!("schedule `{text}` is not a cron schedule: {}", reason(&error)))?;
        // Pure and repeatable: any schedule that fires at all fires within a few years of any date.
        let reference = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single().ok_or("the reference date is invalid")?;
        if next_after(&cron, &reference).is_none() {
            return Err(format!("schedule `{text}` never fires: no date matches it"));
        }
        Ok(Schedule { cron })
    }

    /// The first time after `time` the schedule fires; `None` if it never does.
    pub fn next_after(&self, time: &DateTime<Utc>) -> Option<DateTime<Utc>> {
        next_after(&self.cron, time)
    }
}

/// Names belong to the month and day-of-week fields; `L` and `W` to the day fields. The
/// parser would read `MON` as 1 in any field, which is not what the user meant.
fn check_field_letters(text: &str, fields: &str) -> Result<(), String> {
    const NAMES: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];
    for ((field, name), position) in fields.split_whitespace().zip(NAMES).zip(0..) {
        let letters_allowed = |ch: char| match position {
            2 => matches!(ch, 'L' | 'W' | 'l' | 'w'),
            3 | 4 => true,
            _ => false,
        };
        if let Some(bad) = field.chars().find(|ch| ch.is_ascii_alphabetic() && !letters_allowed(*ch)) {
            return Err(format!(
                "schedule `{text}`: the {name} field `{field}` has `{bad}`; only numbers, `*`, `,`, `-` and `/` go there"
            ));
        }
    }
    Ok(())
}

fn next_after(cron: &Cron, time: &DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.find_next_occurrence(time, false).ok()
}

fn reason(error: &CronError) -> String {
    match error {
        CronError::EmptyPattern => "it is empty".to_owned(),
        CronError::InvalidPattern(detail)
        | CronError::IllegalCharacters(detail)
        | CronError::ComponentError(detail) => detail.trim_end_matches('.').to_owned(),
        other => other.to_string(),
    }
}
