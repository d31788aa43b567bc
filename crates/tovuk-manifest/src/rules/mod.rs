//! Rules that look across fields and tables of the read manifest: requirements, kinds, uniqueness, capabilities, dev settings.

mod capabilities;
mod dev_settings;
mod kind;
mod queues;
mod required;
mod unique;

#[cfg(test)]
mod tests;

use crate::Code;
use crate::draft::Draft;
use crate::position::Span;
use crate::report::{CheckReport, Diagnostic};
use crate::source::Source;

/// Runs every rule. Each rule reports all of its findings, so one check
/// shows every problem in the file rather than the first.
pub(crate) fn validate(source: &Source<'_>, draft: &Draft, report: &mut CheckReport) {
    required::check(source, draft, report);
    kind::check(source, draft, report);
    unique::check(source, draft, report);
    queues::check(source, draft, report);
    capabilities::check_missing(source, draft, report);
    dev_settings::check(source, draft, report);
    // Last, because "unused" is only trustworthy in a manifest without errors.
    capabilities::check_unused(source, draft, report);
}

/// A diagnostic at `span` when there is one, else about the whole file
/// (a missing top-level table has nothing to point at).
pub(crate) fn diagnostic_at(source: &Source<'_>, code: Code, span: Option<&Span>, message: String) -> Diagnostic {
    match span {
        Some(span) => source.diagnostic(code, span, message),
        None => Diagnostic::for_file(code, source.file(), message),
    }
}
