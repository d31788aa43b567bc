//! Reading how the app runs and is served: `[run]`, `[health]` and `[static]`.

use std::time::Duration;

use toml::de::DeTable;

use super::Reader;
use crate::draft::{DraftHealth, DraftProcess, DraftRelease, DraftRun, DraftStatic};
use crate::names::check_process_name;
use crate::paths::{check_relative_path, check_url_path};
use crate::schema::{HEALTH, PROCESS, RELEASE, RUN, STATIC};

/// Longest a new release may take to become healthy.
pub(crate) const MAX_HEALTH_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Probe interval bounds: faster than 100ms is load, slower than 5m is blind.
pub(crate) const MIN_HEALTH_INTERVAL: Duration = Duration::from_millis(100);
pub(crate) const MAX_HEALTH_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Longest a new release must stay healthy before what it replaced is let go.
pub(crate) const MAX_MIN_HEALTHY: Duration = Duration::from_secs(10 * 60);
/// Longest a replaced instance may take to finish its requests.
pub(crate) const MAX_DRAIN_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Longest an app may take between SIGTERM and SIGKILL.
pub(crate) const MAX_STOP_GRACE: Duration = Duration::from_secs(5 * 60);

pub(super) fn read_run(reader: &mut Reader<'_, '_>, table: &DeTable<'_>) -> DraftRun {
    reader.check_keys(table, &RUN);
    DraftRun {
        command: reader.non_empty_string(table, &RUN, "command"),
        drain_timeout: reader.duration_in(table, &RUN, "drain_timeout", Duration::ZERO..=MAX_DRAIN_TIMEOUT),
        stop_grace: reader.duration_in(table, &RUN, "stop_grace", Duration::from_secs(1)..=MAX_STOP_GRACE),
    }
}

/// Longest a release phase may run.
pub(crate) const MAX_RELEASE_TIMEOUT: Duration = Duration::from_secs(60 * 60);

pub(super) fn read_release(reader: &mut Reader<'_, '_>, table: &DeTable<'_>) -> DraftRelease {
    reader.check_keys(table, &RELEASE);
    DraftRelease {
        command: reader.non_empty_string(table, &RELEASE, "command"),
        timeout: reader.duration_in(table, &RELEASE, "timeout", Duration::from_secs(1)..=MAX_RELEASE_TIMEOUT),
    }
}

/// Most instances of one background process.
pub(crate) const PROCESS_INSTANCES_RANGE: std::ops::RangeInclusive<i64> = 1..=20;

pub(super) fn read_process(reader: &mut Reader<'_, '_>, table: &DeTable<'_>) -> DraftProcess {
    reader.check_keys(table, &PROCESS);
    let name = reader.string(table, &PROCESS, "name").and_then(|name, span| match check_process_name(name) {
        Ok(()) => Some(name.clone()),
        Err(problem) => {
            let better: String = name
                .to_ascii_lowercase()
                .chars()
                .map(|ch| if ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' { ch } else { '-' })
                .collect();
            let next = check_process_name(&better).is_ok().then(|| format!("name = \"{better}\""));
            reader.invalid(span, format!("process name {problem}"), next);
            None
        }
    });
    let command = reader.non_empty_string(table, &PROCESS, "command");
    let instances = reader.integer(table, &PROCESS, "instances").and_then(|count, span| {
        if PROCESS_INSTANCES_RANGE.contains(count) {
            return u32::try_from(*count).ok();
        }
        reader.invalid(
            span,
            format!(
                "`instances` in [[processes]] is {count}; it must be {} to {}",
                PROCESS_INSTANCES_RANGE.start(),
                PROCESS_INSTANCES_RANGE.end()
            ),
            Some("instances = 1".to_owned()),
        );
        None
    });
    DraftProcess { name, command, instances: instances.value().copied() }
}

pub(super) fn read_health(reader: &mut Reader<'_, '_>, table: &DeTable<'_>) -> DraftHealth {
    reader.check_keys(table, &HEALTH);
    let path = reader.string(table, &HEALTH, "path").and_then(|path, span| match check_url_path(path) {
        Ok(()) => Some(path.clone()),
        Err(problem) => {
            let next = (!path.starts_with('/') && check_url_path(&format!("/{path}")).is_ok())
                .then(|| format!("path = \"/{path}\""));
            reader.invalid(span, format!("health path {problem}"), next);
            None
        }
    });
    DraftHealth {
        path,
        timeout: reader.duration_in(table, &HEALTH, "timeout", Duration::from_secs(1)..=MAX_HEALTH_TIMEOUT),
        interval: reader.duration_in(table, &HEALTH, "interval", MIN_HEALTH_INTERVAL..=MAX_HEALTH_INTERVAL),
        min_healthy: reader.duration_in(table, &HEALTH, "min_healthy", Duration::ZERO..=MAX_MIN_HEALTHY),
    }
}

pub(super) fn read_static(reader: &mut Reader<'_, '_>, table: &DeTable<'_>) -> DraftStatic {
    reader.check_keys(table, &STATIC);
    let root = reader.string(table, &STATIC, "root").and_then(|root, span| match check_relative_path(root) {
        Ok(()) => Some(root.clone()),
        Err(problem) => {
            reader.invalid(span, format!("static root {problem}"), None);
            None
        }
    });
    let serve_hidden = super::build::values(reader.checked_strings(
        table,
        &STATIC,
        "serve_hidden",
        crate::paths::check_relative_path,
        super::reader::no_suggestion,
    ));
    DraftStatic { root, serve_hidden }
}
