//! Timestamps are stored as RFC 3339 UTC text with milliseconds, which sorts as time does.

use chrono::{SecondsFormat, Utc};

pub(crate) fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn now_unix_ms() -> u64 {
    u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0)
}
