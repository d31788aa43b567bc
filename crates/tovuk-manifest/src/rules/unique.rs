//! Names that must be unique: bindings (across resources and service bindings), route paths, domains.

use crate::Code;
use std::collections::HashMap;

use crate::draft::Draft;
use crate::paths::normalize_route_path;
use crate::position::Span;
use crate::report::CheckReport;
use crate::source::Source;

pub(super) fn check(source: &Source<'_>, draft: &Draft, report: &mut CheckReport) {
    // Resources and service bindings share one namespace: both become env vars.
    let mut bindings: Vec<(&str, &Span, &str)> = Vec::new();
    for resource in draft.resources() {
        if let Some(binding) = resource.value.binding.valid() {
            bindings.push((&binding.value, &binding.span, "[[resources]]"));
        }
    }
    for binding in draft.bindings() {
        if let Some(name) = binding.value.binding.valid() {
            bindings.push((&name.value, &name.span, "[[bindings]]"));
        }
    }
    // File order, so "first" means the one a reader sees first.
    bindings.sort_by_key(|(_, span, _)| span.start);
    report_duplicates(source, report, &bindings, Code::DuplicateBinding, "binding");
    check_variable_collisions(source, draft, report);

    let routes: Vec<(&str, &Span, &str)> = draft
        .routes()
        .iter()
        .filter_map(|route| route.value.path.valid())
        .map(|path| (normalize_route_path(&path.value), &path.span, "[[routes]]"))
        .collect();
    report_duplicates(source, report, &routes, Code::DuplicateRoute, "route path");

    let processes: Vec<(&str, &Span, &str)> = draft
        .processes()
        .iter()
        .filter_map(|process| process.value.name.valid())
        .map(|name| (name.value.as_str(), &name.span, "[[processes]]"))
        .collect();
    report_duplicates(source, report, &processes, Code::DuplicateProcess, "process name");

    let domains: Vec<(&str, &Span, &str)> = draft
        .domains()
        .iter()
        .filter_map(|domain| domain.value.name.valid())
        .map(|name| (name.value.as_str(), &name.span, "[[domains]]"))
        .collect();
    report_duplicates(source, report, &domains, Code::DuplicateDomain, "domain");
}

/// A binding sets more variables than its own name (`FILES_ENDPOINT`, `QUEUE_TOKEN`, ...):
/// no two entries may set the same one, whatever their kinds.
fn check_variable_collisions(source: &Source<'_>, draft: &Draft, report: &mut CheckReport) {
    let mut entries: Vec<(&str, &Span, Vec<String>)> = Vec::new();
    for resource in draft.resources() {
        if let (Some(binding), Some(kind)) = (resource.value.binding.valid(), resource.value.kind.value()) {
            entries.push((&binding.value, &binding.span, kind.variables(&binding.value)));
        }
    }
    for binding in draft.bindings() {
        if let Some(name) = binding.value.binding.valid() {
            entries.push((&name.value, &name.span, crate::service_binding_variables(&name.value)));
        }
    }
    entries.sort_by_key(|(_, span, _)| span.start);
    let mut set_by: HashMap<&str, (&str, &Span)> = HashMap::new();
    for (binding, span, variables) in &entries {
        for variable in variables {
            if let Some((other, other_span)) = set_by.get(variable.as_str()).copied()
                && other != *binding
                && variable != binding
                && variable != other
            {
                let where_first = source.location(other_span);
                let diagnostic = source
                    .diagnostic(
                        Code::BindingCollision,
                        span,
                        format!(
                            "binding `{binding}` sets `{variable}`, which the binding `{other}` at {where_first} sets too"
                        ),
                    )
                    .with_next(format!("rename `{binding}` so that none of its variables is also one of `{other}`'s"));
                report.push_error(diagnostic);
                break;
            }
        }
        for variable in variables {
            set_by.entry(variable.as_str()).or_insert((binding, span));
        }
    }
    // A binding named like another's variable (`FILES_ENDPOINT` next to an object store `FILES`).
    let names: HashMap<&str, &Span> = entries.iter().map(|(binding, span, _)| (*binding, *span)).collect();
    for (binding, span, variables) in &entries {
        for variable in variables.iter().filter(|variable| variable.as_str() != *binding) {
            if let Some(other_span) = names.get(variable.as_str()) {
                let where_set = source.location(span);
                let diagnostic = source
                    .diagnostic(
                        Code::BindingCollision,
                        other_span,
                        format!("binding `{variable}` is also a variable the binding `{binding}` at {where_set} sets"),
                    )
                    .with_next(format!("rename `{variable}`; `{binding}` sets {}", variables.join(", ")));
                report.push_error(diagnostic);
            }
        }
    }
}

/// Reports every repeat of a name at the repeat, naming where it first appeared.
fn report_duplicates(
    source: &Source<'_>,
    report: &mut CheckReport,
    entries: &[(&str, &Span, &str)],
    code: Code,
    what: &str,
) {
    // A map, not a scan of earlier entries: a pushed manifest may hold thousands.
    let mut first_seen: HashMap<&str, (&Span, &str)> = HashMap::new();
    for (name, span, table) in entries {
        let Some((first_span, first_table)) = first_seen.get(name).copied() else {
            first_seen.insert(name, (span, table));
            continue;
        };
        let first_location = source.location(first_span);
        let diagnostic = source
            .diagnostic(
                code,
                span,
                format!("{what} `{name}` is already used by the {first_table} entry at {first_location}"),
            )
            .with_next(format!("rename or remove this one; `{name}` is taken at {first_location}"));
        report.push_error(diagnostic);
    }
}
