//! What each app kind requires and forbids: `[run]`, `[health]`, `[static]`, routes, domains, resources.

use crate::draft::{Draft, Field, Located};
use crate::position::Span;
use crate::report::CheckReport;
use crate::source::Source;
use crate::{AppKind, Code};

pub(super) fn check(source: &Source<'_>, draft: &Draft, report: &mut CheckReport) {
    let Some(Located { value: kind, span: kind_span }) = draft.app.value().and_then(|app| app.kind.valid()) else {
        // Without a valid kind there is nothing to hold the tables against;
        // the missing or invalid kind is already reported.
        return;
    };
    let kind = *kind;
    match kind {
        AppKind::Web | AppKind::Worker => {
            check_run_present(source, draft, report, kind, kind_span);
            check_health(source, draft, report, kind, kind_span);
            if kind == AppKind::Worker {
                forbid_entries(
                    source,
                    report,
                    first_span(&draft.routes),
                    "[[routes]]",
                    kind,
                    "a worker gets no public traffic",
                );
                forbid_entries(
                    source,
                    report,
                    first_span(&draft.domains),
                    "[[domains]]",
                    kind,
                    "a worker gets no public traffic",
                );
            }
            forbid_entries(
                source,
                report,
                draft.static_site.span(),
                "[static]",
                kind,
                "only static apps are served from a directory",
            );
        }
        AppKind::Static => {
            let why = "the router serves its files and no process runs";
            forbid_entries(source, report, draft.run.span(), "[run]", kind, why);
            forbid_entries(source, report, draft.release.span(), "[release]", kind, why);
            forbid_entries(source, report, first_span(&draft.processes), "[[processes]]", kind, why);
            forbid_entries(source, report, draft.health.span(), "[health]", kind, why);
            forbid_entries(source, report, first_span(&draft.resources), "[[resources]]", kind, why);
            forbid_entries(source, report, first_span(&draft.bindings), "[[bindings]]", kind, why);
        }
    }
}

fn check_run_present(source: &Source<'_>, draft: &Draft, report: &mut CheckReport, kind: AppKind, kind_span: &Span) {
    match &draft.run {
        Field::Absent => {
            let diagnostic = source
                .diagnostic(
                    Code::MissingField,
                    kind_span,
                    format!("kind `{kind}` needs a [run] command to start the app"),
                )
                .with_next("add:\n[run]\ncommand = \"./target/release/my-api\"");
            report.push_error(diagnostic);
        }
        Field::Valid(Located { value: run, span }) if run.command.is_absent() => {
            let diagnostic = source
                .diagnostic(Code::MissingField, span, "[run] is missing `command`")
                .with_next("add command = \"./target/release/my-api\" under [run]");
            report.push_error(diagnostic);
        }
        Field::Valid(_) | Field::Invalid => {}
    }
}

/// `web` must have a health path (traffic moves only after it answers);
/// a `worker` without one is allowed but only warned, since the runner can
/// then only check that the process stays up.
fn check_health(source: &Source<'_>, draft: &Draft, report: &mut CheckReport, kind: AppKind, kind_span: &Span) {
    if draft.health.is_present() {
        // A present [health] without `path` is reported by the required-keys rule.
        return;
    }
    let next = "add:\n[health]\npath = \"/health\"";
    if kind == AppKind::Web {
        let diagnostic = source
            .diagnostic(
                Code::MissingField,
                kind_span,
                "kind `web` needs a [health] path: traffic moves to a new release only after it answers",
            )
            .with_next(next);
        report.push_error(diagnostic);
    } else {
        let diagnostic = source
            .diagnostic(
                Code::HealthMissing,
                kind_span,
                "worker has no [health] path, so a release only has to stay up to count as healthy; a worker may serve one on $PORT",
            )
            .with_next(next);
        report.push_warning(diagnostic);
    }
}

fn forbid_entries(
    source: &Source<'_>,
    report: &mut CheckReport,
    span: Option<&Span>,
    table: &str,
    kind: AppKind,
    why: &str,
) {
    let Some(span) = span else {
        return;
    };
    let diagnostic = source
        .diagnostic(Code::NotAllowed, span, format!("{table} is not allowed for kind `{kind}`: {why}"))
        .with_next(format!("remove {table}, or change kind"));
    report.push_error(diagnostic);
}

/// Where the first entry of an array of tables is, if there is one.
fn first_span<T>(section: &Field<Vec<Located<T>>>) -> Option<&Span> {
    section.value().and_then(|items| items.first()).map(|item| &item.span)
}
