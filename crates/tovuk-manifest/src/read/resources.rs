//! Reading `[[resources]]` (sqlite, object storage, kv, queues, cron, state) and `[[bindings]]`.

use toml::de::DeTable;

use super::Reader;
use crate::ResourceKind;
use crate::cron::Schedule;
use crate::draft::{DraftBinding, DraftResource, Field};
use crate::names::{check_app_name, check_env_name, suggest_app_name, suggest_env_name};
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
    DraftResource { kind, binding, schedule, command }
}

pub(super) fn read_binding(reader: &mut Reader<'_, '_>, table: &DeTable<'_>) -> DraftBinding {
    reader.check_keys(table, &BINDING);
    let binding = binding_name(reader, table, &BINDING);
    let service = reader.string(table, &BINDING, "service").and_then(|service, span| match check_app_name(service) {
        Ok(()) => Some(service.clone()),
        Err(problem) => {
            let next = suggest_app_name(service).map(|better| format!("service = \"{better}\""));
            reader.invalid(span, format!("service must be an app name: {problem}"), next);
            None
        }
    });
    DraftBinding { binding, service }
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
