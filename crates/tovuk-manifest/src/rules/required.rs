//! Required keys inside each table, and keys that only one resource kind may use.

use crate::draft::{Draft, Field, Located};
use crate::position::Span;
use crate::report::CheckReport;
use crate::source::Source;
use crate::{Code, ResourceKind};

use super::diagnostic_at;

/// The smallest manifest that passes, shown when `[app]` is missing altogether.
pub(crate) const MINIMAL_APP: &str = "[app]\nname = \"my-app\"\nkind = \"web\"\ncapabilities = [\"http\"]";

pub(super) fn check(source: &Source<'_>, draft: &Draft, report: &mut CheckReport) {
    check_app(source, draft, report);
    check_resources(source, draft, report);
    for binding in draft.bindings() {
        let header = &binding.span;
        require(source, report, &binding.value.binding, header, "[[bindings]]", "binding = \"AUTH\"");
        require(source, report, &binding.value.service, header, "[[bindings]]", "service = \"auth-api\"");
    }
    for route in draft.routes() {
        require(source, report, &route.value.path, &route.span, "[[routes]]", "path = \"/api\"");
        check_route_capability(source, route, report);
    }
    for process in draft.processes() {
        require(source, report, &process.value.name, &process.span, "[[processes]]", "name = \"worker\"");
        let example = "command = \"celery -A shop worker\"";
        require(source, report, &process.value.command, &process.span, "[[processes]]", example);
    }
    for domain in draft.domains() {
        require(source, report, &domain.value.name, &domain.span, "[[domains]]", "name = \"api.example.com\"");
    }
    if let Field::Valid(Located { value: health, span }) = &draft.health {
        require(source, report, &health.path, span, "[health]", "path = \"/health\"");
        if let (Some(timeout), Some(interval)) = (health.timeout.value(), health.interval.value())
            && interval > timeout
            && let Some(interval_span) = health.interval.span()
        {
            let diagnostic = source
                .diagnostic(
                    Code::InvalidValue,
                    interval_span,
                    format!(
                        "health interval ({}) is longer than the health timeout ({}), so at most one probe would run",
                        crate::duration::format_duration(*interval),
                        crate::duration::format_duration(*timeout)
                    ),
                )
                .with_next("make interval shorter than timeout, e.g. interval = \"2s\"");
            report.push_error(diagnostic);
        }
    }
}

fn check_app(source: &Source<'_>, draft: &Draft, report: &mut CheckReport) {
    match &draft.app {
        Field::Absent => {
            let diagnostic = diagnostic_at(
                source,
                Code::MissingField,
                None,
                "the manifest has no [app] table; every app needs a name and a kind".to_owned(),
            )
            .with_next(format!("add at the top of {}:\n{MINIMAL_APP}", source.file()));
            report.push_error(diagnostic);
        }
        Field::Invalid => {}
        Field::Valid(Located { value: app, span }) => {
            require(source, report, &app.name, span, "[app]", "name = \"my-api\"");
            require(source, report, &app.kind, span, "[app]", "kind = \"web\"");
        }
    }
}

/// `capability` goes with `auth = "capability"`, and only there.
fn check_route_capability(source: &Source<'_>, route: &Located<crate::draft::DraftRoute>, report: &mut CheckReport) {
    let entry = &route.value;
    if entry.auth.value() == Some(&crate::RouteAuth::Capability) {
        require(
            source,
            report,
            &entry.capability,
            &route.span,
            "a route with auth = \"capability\"",
            "capability = \"admin\"",
        );
    } else if let Some(span) = entry.capability.span() {
        let diagnostic = source
            .diagnostic(
                Code::NotAllowed,
                span,
                "`capability` is only for a route with auth = \"capability\"".to_owned(),
            )
            .with_next("set auth = \"capability\" on this route, or remove `capability`");
        report.push_error(diagnostic);
    }
}

fn check_resources(source: &Source<'_>, draft: &Draft, report: &mut CheckReport) {
    for resource in draft.resources() {
        let header = &resource.span;
        let entry = &resource.value;
        require(source, report, &entry.kind, header, "[[resources]]", "kind = \"sqlite\"");
        require(source, report, &entry.binding, header, "[[resources]]", "binding = \"DB\"");
        let Some(kind) = entry.kind.value() else {
            continue;
        };
        if *kind == ResourceKind::Cron {
            require(
                source,
                report,
                &entry.schedule,
                header,
                "a cron [[resources]] entry",
                "schedule = \"*/5 * * * *\"",
            );
            require(
                source,
                report,
                &entry.command,
                header,
                "a cron [[resources]] entry",
                "command = \"./target/release/cleanup\"",
            );
        } else {
            let written = [
                ("schedule", entry.schedule.span()),
                ("command", entry.command.span()),
                ("timeout", entry.timeout.span()),
            ];
            for (key, field_span) in written {
                if let Some(field_span) = field_span {
                    let diagnostic = source
                        .diagnostic(
                            Code::NotAllowed,
                            field_span,
                            format!("`{key}` is only for cron resources, not kind `{kind}`"),
                        )
                        .with_next(format!("remove `{key}` from this [[resources]] entry"));
                    report.push_error(diagnostic);
                }
            }
        }
        if *kind != ResourceKind::State
            && let Some(field_span) = entry.service.span()
        {
            let diagnostic = source
                .diagnostic(
                    Code::NotAllowed,
                    field_span,
                    format!(
                        "`service` is only for state resources (another app's State objects), not kind `{kind}`; \
                         to call another app, use a [[bindings]] entry"
                    ),
                )
                .with_next("remove `service` from this [[resources]] entry");
            report.push_error(diagnostic);
        }
    }
}

/// Reports `field` as missing from the table whose header is at `header`.
/// Invalid fields were already reported, so only absent ones count.
fn require<T>(
    source: &Source<'_>,
    report: &mut CheckReport,
    field: &Field<T>,
    header: &Span,
    table: &str,
    example: &str,
) {
    if !field.is_absent() {
        return;
    }
    let key = example.split(" = ").next().unwrap_or(example);
    let diagnostic = source
        .diagnostic(Code::MissingField, header, format!("{table} is missing `{key}`"))
        .with_next(format!("add {example} under {}", table_header(table)));
    report.push_error(diagnostic);
}

/// "a cron [[resources]] entry" → "[[resources]]", for the fix sentence.
fn table_header(table: &str) -> &str {
    table.find('[').and_then(|start| table[start..].split_whitespace().next()).unwrap_or(table)
}
