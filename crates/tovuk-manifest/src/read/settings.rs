//! Reading runtime settings: `[config]`, `[limits]` and `[expected]`.

use std::time::Duration;

use toml::de::DeTable;

use super::Reader;
use super::build::values;
use crate::draft::{DraftConfig, Field};
use crate::manifest::{Expected, Limits};
use crate::names::{check_env_name, suggest_env_name};
use crate::schema::{CONFIG, EXPECTED, LIMITS};

pub(crate) const MEMORY_MB_RANGE: std::ops::RangeInclusive<i64> = 16..=65536;
pub(crate) const INSTANCES_RANGE: std::ops::RangeInclusive<i64> = 1..=100;
pub(crate) const DATA_MB_RANGE: std::ops::RangeInclusive<i64> = 16..=1_048_576;
pub(crate) const MAX_CPU_CORES: f64 = 64.0;
pub(crate) const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(60 * 60);

pub(super) fn read_config(reader: &mut Reader<'_, '_>, table: &DeTable<'_>) -> DraftConfig {
    reader.check_keys(table, &CONFIG);
    DraftConfig {
        required: values(reader.checked_strings(table, &CONFIG, "required", check_env_name, suggest_env_name)),
    }
}

pub(super) fn read_limits(reader: &mut Reader<'_, '_>, table: &DeTable<'_>) -> Limits {
    reader.check_keys(table, &LIMITS);
    let memory_mb = integer_in(reader, table, "memory_mb", MEMORY_MB_RANGE);
    let instances = integer_in(reader, table, "instances", INSTANCES_RANGE);
    let data_mb = integer_in(reader, table, "data_mb", DATA_MB_RANGE);
    let cpu_cores = reader.number(table, &LIMITS, "cpu_cores").and_then(|cores, span| {
        if *cores > 0.0 && *cores <= MAX_CPU_CORES {
            return Some(*cores);
        }
        reader.invalid(
            span,
            format!("`cpu_cores` in [limits] is {cores}; it must be more than 0 and at most {MAX_CPU_CORES}"),
            Some("write it as: cpu_cores = 1.5".to_owned()),
        );
        None
    });
    Limits {
        memory_mb,
        cpu_cores: cpu_cores.value().copied(),
        instances,
        data_mb,
        request_timeout: reader
            .duration_in(table, &LIMITS, "request_timeout", Duration::from_secs(1)..=MAX_REQUEST_TIMEOUT)
            .value()
            .copied(),
    }
}

fn integer_in(
    reader: &mut Reader<'_, '_>,
    table: &DeTable<'_>,
    key: &str,
    range: std::ops::RangeInclusive<i64>,
) -> Option<u32> {
    let field = reader.integer(table, &LIMITS, key).and_then(|number, span| {
        if range.contains(number) {
            return u32::try_from(*number).ok();
        }
        let clamped = (*number).clamp(*range.start(), *range.end());
        reader.invalid(
            span,
            format!("`{key}` in [limits] is {number}; it must be between {} and {}", range.start(), range.end()),
            Some(format!("{key} = {clamped}")),
        );
        None
    });
    match field {
        Field::Valid(located) => Some(located.value),
        Field::Absent | Field::Invalid => None,
    }
}

pub(super) fn read_expected(reader: &mut Reader<'_, '_>, table: &DeTable<'_>) -> Expected {
    reader.check_keys(table, &EXPECTED);
    let mut expected = Expected::default();
    for key in Expected::KEYS {
        let value = reader.number(table, &EXPECTED, key).and_then(|number, span| {
            if *number >= 0.0 {
                return Some(*number);
            }
            reader.invalid(
                span,
                format!("`{key}` in [expected] is {number}; expected load cannot be negative"),
                Some(format!("{key} = 0")),
            );
            None
        });
        if let (Some(slot), Some(number)) = (expected.slot_mut(key), value.value()) {
            *slot = Some(*number);
        }
    }
    expected
}
