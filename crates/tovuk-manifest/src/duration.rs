//! Durations as the manifest writes them: `"500ms"`, `"30s"`, `"5m"`, `"1h"` or integer seconds.

#[cfg(test)]
mod tests;

use std::time::Duration;

/// Why a duration string was refused; the message is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DurationError(pub(crate) String);

/// Parses `"<digits><unit>"` with unit `ms`, `s`, `m` or `h`. One unit only:
/// `"1h30m"` is refused so that every value reads the same way (`"90m"`).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    let digits_end = trimmed.find(|ch: char| !ch.is_ascii_digit()).unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(digits_end);
    if digits.is_empty() {
        return Err(DurationError(format!(
            "`{text}` is not a duration: it must start with a whole number, as in \"30s\""
        )));
    }
    let amount: u64 = digits.parse().map_err(|_| DurationError(format!("`{text}` is too large for a duration")))?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "" => {
            return Err(DurationError(format!(
                "`{text}` has no unit: write \"{digits}s\" (units: ms, s, m, h), or an integer number of seconds without quotes"
            )));
        }
        _ => {
            return Err(DurationError(format!(
                "`{text}` is not a duration: use a whole number and one unit of ms, s, m or h, as in \"30s\""
            )));
        }
    };
    amount
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| DurationError(format!("`{text}` is too large for a duration")))
}

/// Integer seconds, for `timeout = 30`.
pub(crate) fn duration_from_seconds(seconds: i64) -> Result<Duration, DurationError> {
    u64::try_from(seconds)
        .map(Duration::from_secs)
        .map_err(|_| DurationError(format!("`{seconds}` is negative; a duration must be zero or more seconds")))
}

/// The shortest exact spelling of a duration in manifest syntax, for messages.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(3_600_000) && millis != 0 {
        format!("{}h", millis / 3_600_000)
    } else if millis.is_multiple_of(60_000) && millis != 0 {
        format!("{}m", millis / 60_000)
    } else if millis.is_multiple_of(1_000) {
        format!("{}s", millis / 1_000)
    } else {
        format!("{millis}ms")
    }
}
