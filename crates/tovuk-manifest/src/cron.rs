//! Light validation of cron schedules: five fields, each a plausible cron expression in range.

#[cfg(test)]
mod tests;

/// Field names and their allowed numeric ranges, in order.
const FIELDS: [(&str, u32, u32); 5] =
    [("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7)];

/// Shorthands most cron implementations accept.
const MACROS: [&str; 6] = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@hourly"];

/// Checks the shape, not every corner of cron syntax: five fields of numbers,
/// `*`, `,`, `-`, `/` and month/day names, with numbers inside each field's range.
pub(crate) fn check_schedule(schedule: &str) -> Result<(), String> {
    let trimmed = schedule.trim();
    if MACROS.contains(&trimmed) {
        return Ok(());
    }
    let fields: Vec<&str> = trimmed.split_whitespace().collect();
    if fields.len() != FIELDS.len() {
        return Err(format!(
            "schedule `{schedule}` has {} fields; cron needs 5 (minute hour day-of-month month day-of-week), as in \"*/5 * * * *\"",
            fields.len()
        ));
    }
    for (field, (field_name, min, max)) in fields.iter().zip(FIELDS) {
        if let Some(bad) = field.chars().find(|ch| !(ch.is_ascii_alphanumeric() || matches!(ch, '*' | ',' | '-' | '/')))
        {
            return Err(format!("schedule `{schedule}`: the {field_name} field `{field}` contains `{bad}`"));
        }
        for number in
            field.split([',', '-', '/']).filter(|part| !part.is_empty() && part.chars().all(|ch| ch.is_ascii_digit()))
        {
            // A step (`*/90`) is not bounded by the field range in every cron,
            // but a number that does not even fit in u32 is plainly wrong.
            let in_range = number.parse::<u32>().is_ok_and(|value| (min..=max).contains(&value));
            let is_step = field.contains(&format!("/{number}"));
            if !in_range && !is_step {
                return Err(format!("schedule `{schedule}`: {number} is outside the {field_name} range {min}-{max}"));
            }
        }
    }
    Ok(())
}
