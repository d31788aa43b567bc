//! Reading `[[resources]]` (sqlite, object storage, kv, queues, cron, state) and `[[bindings]]`.

use std::time::Duration;
use toml::de::DeTable;

use super::Reader;
use crate::ResourceKind;
use crate::cron::Schedule;
use crate::draft::{DraftBinding, DraftQueue, DraftResource, Field};
use crate::names::{check_app_name, check_env_name, suggest_app_name, suggest_env_name};
use crate::paths::check_url_path;
use crate::schema::{BINDING, RESOURCE, TableSpec};

pub(super) fn read_resource(reader: &mut Reader<'_, '_>, table: &DeTable<'_>) -> DraftResource {
    reader.check_keys(table, &RESOURCE);
    let kind_text = reader.string(table, &RESOURCE, "kind");
    let kind = reader.choice(kind_text, &RESOURCE, "kind", &ResourceKind::names(), ResourceKind::from_name);
    let binding = binding_name(reader, table, &RESOURCE);
    let schedule =
        reader.string(table, &RESOURCE, "schedule").and_then(|schedule, span| match Schedule::parse(schedule) {
            Ok(_) => Some(schedule.clone()),
            Err(problem) => {
                reader.invalid(
                    span,
                    problem,
                    Some("schedule = \"*/5 * * * *\" (minute hour day-of-month month day-of-week)".to_owned()),
                );
                None
            }
        });
    let command = reader.non_empty_string(table, &RESOURCE, "command");
    let timeout = reader.duration_in(table, &RESOURCE, "timeout", Duration::from_secs(1)..=MAX_CRON_TIMEOUT);
    let queue = read_queue(reader, table);
    let service = app_name_key(reader, table, &RESOURCE, "service");
    DraftResource { kind, binding, schedule, command, timeout, queue, service }
}

/// Longest one cron run may take.
pub(crate) const MAX_CRON_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// Most messages one push delivery carries, and most retries a message may have.
pub(crate) const BATCH_SIZE_RANGE: std::ops::RangeInclusive<i64> = 1..=100;
pub(crate) const MAX_RETRIES_RANGE: std::ops::RangeInclusive<i64> = 0..=100;
/// Longest a batch may wait to fill, and longest one delivery may take.
pub(crate) const MAX_MAX_WAIT: Duration = Duration::from_secs(60);
pub(crate) const MAX_DELIVERY_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// A queue's delivery keys; whether the kind takes them is a rule of its own.
fn read_queue(reader: &mut Reader<'_, '_>, table: &DeTable<'_>) -> DraftQueue {
    let consumer = app_name_key(reader, table, &RESOURCE, "consumer");
    let consumer_path =
        reader.string(table, &RESOURCE, "consumer_path").and_then(|path, span| match check_url_path(path) {
            Ok(()) => Some(path.clone()),
            Err(problem) => {
                reader.invalid(
                    span,
                    format!("consumer_path {problem}"),
                    Some("consumer_path = \"/queues/emails\"".into()),
                );
                None
            }
        });
    let mut ranged = |key: &str, range: std::ops::RangeInclusive<i64>, example: &str| {
        reader.integer(table, &RESOURCE, key).and_then(|value, span| {
            if range.contains(value) {
                return u32::try_from(*value).ok();
            }
            reader.invalid(
                span,
                format!("`{key}` is {value}; it must be {} to {}", range.start(), range.end()),
                Some(example.to_owned()),
            );
            None
        })
    };
    let batch_size = ranged("batch_size", BATCH_SIZE_RANGE, "batch_size = 10");
    let max_retries = ranged("max_retries", MAX_RETRIES_RANGE, "max_retries = 3");
    let max_wait = reader.duration_in(table, &RESOURCE, "max_wait", Duration::ZERO..=MAX_MAX_WAIT);
    let delivery_timeout =
        reader.duration_in(table, &RESOURCE, "delivery_timeout", Duration::from_secs(1)..=MAX_DELIVERY_TIMEOUT);
    let dead_letter = binding_key(reader, table, "dead_letter");
    DraftQueue { consumer, consumer_path, batch_size, max_wait, delivery_timeout, max_retries, dead_letter }
}

pub(super) fn read_binding(reader: &mut Reader<'_, '_>, table: &DeTable<'_>) -> DraftBinding {
    reader.check_keys(table, &BINDING);
    let binding = binding_name(reader, table, &BINDING);
    let service = app_name_key(reader, table, &BINDING, "service");
    DraftBinding { binding, service }
}

/// A key naming another app (`service`, `consumer`).
fn app_name_key(reader: &mut Reader<'_, '_>, table: &DeTable<'_>, spec: &TableSpec, key: &str) -> Field<String> {
    reader.string(table, spec, key).and_then(|app, span| match check_app_name(app) {
        Ok(()) => Some(app.clone()),
        Err(problem) => {
            let next = suggest_app_name(app).map(|better| format!("{key} = \"{better}\""));
            reader.invalid(span, format!("{key} must be an app name: {problem}"), next);
            None
        }
    })
}

/// `binding`: an env-var style name, because the app reads it from its environment.
fn binding_name(reader: &mut Reader<'_, '_>, table: &DeTable<'_>, spec: &TableSpec) -> Field<String> {
    reader.string(table, spec, "binding").and_then(|binding, span| match check_env_name(binding) {
        Ok(()) => Some(binding.clone()),
        Err(problem) => {
            let next = suggest_env_name(binding).map(|better| format!("binding = \"{better}\""));
            reader.invalid(span, format!("binding {problem}"), next);
            None
        }
    })
}

/// A key naming another resource's binding (`dead_letter`).
fn binding_key(reader: &mut Reader<'_, '_>, table: &DeTable<'_>, key: &str) -> Field<String> {
    reader.string(table, &RESOURCE, key).and_then(|binding, span| match check_env_name(binding) {
        Ok(()) => Some(binding.clone()),
        Err(problem) => {
            let next = suggest_env_name(binding).map(|better| format!("{key} = \"{better}\""));
            reader.invalid(span, format!("{key} names a binding, and {problem}"), next);
            None
        }
    })
}
