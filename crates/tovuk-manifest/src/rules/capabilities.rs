//! Capability rules: everything the manifest uses must be listed; listed ones should be used.

use crate::draft::{Draft, Field};
use crate::position::Span;
use crate::report::CheckReport;
use crate::source::Source;
use crate::{AppKind, Capability, Code};

/// One reason the manifest needs a capability, pointing at what needs it.
struct Need<'d> {
    capability: Capability,
    span: &'d Span,
    what: String,
}

/// Every use of a capability in the manifest, in file order.
fn needs(draft: &Draft) -> Vec<Need<'_>> {
    let mut needs = Vec::new();
    if let Some(kind) = draft.app.value().and_then(|app| app.kind.valid())
        && kind.value.serves_http()
    {
        needs.push(Need { capability: Capability::Http, span: &kind.span, what: format!("kind `{}`", kind.value) });
    }
    for resource in draft.resources() {
        if let Some(kind) = resource.value.kind.valid() {
            needs.push(Need {
                capability: kind.value.capability(),
                span: &kind.span,
                what: format!("[[resources]] kind = \"{}\"", kind.value),
            });
        }
    }
    for binding in draft.bindings() {
        needs.push(Need {
            capability: Capability::ServiceBindings,
            span: &binding.span,
            what: "[[bindings]]".to_owned(),
        });
    }
    for route in draft.routes() {
        needs.push(Need {
            capability: Capability::Http,
            span: route.value.path.span().unwrap_or(&route.span),
            what: "[[routes]]".to_owned(),
        });
    }
    for domain in draft.domains() {
        needs.push(Need {
            capability: Capability::Http,
            span: domain.value.name.span().unwrap_or(&domain.span),
            what: "[[domains]]".to_owned(),
        });
    }
    needs.sort_by_key(|need| need.span.start);
    needs
}

/// A capability that is needed but not listed is an error whose required
/// fix names the whole corrected `capabilities` line.
pub(super) fn check_missing(source: &Source<'_>, draft: &Draft, report: &mut CheckReport) {
    let capabilities_field = draft.app.value().map(|app| &app.capabilities);
    if matches!(capabilities_field, Some(Field::Invalid)) || matches!(draft.app, Field::Invalid) {
        // The list itself is broken and already reported; guessing at it would mislead.
        return;
    }
    let listed: Vec<Capability> = draft.listed_capabilities().iter().map(|item| item.value).collect();
    let needs = needs(draft);
    // One error per missing capability, at its first use, naming every use.
    let mut missing: Vec<(Capability, Vec<&Need<'_>>)> = Vec::new();
    for need in needs.iter().filter(|need| !listed.contains(&need.capability)) {
        match missing.iter_mut().find(|(capability, _)| *capability == need.capability) {
            Some((_, uses)) => uses.push(need),
            None => missing.push((need.capability, vec![need])),
        }
    }
    if missing.is_empty() {
        return;
    }
    let mut corrected = listed.clone();
    corrected.extend(missing.iter().map(|(capability, _)| *capability));
    let line_text = capabilities_line(&corrected);
    let (fix, fix_line) = match (capabilities_field.and_then(Field::span), draft.app.span()) {
        (Some(key_span), _) => {
            let line = source.line(key_span);
            (format!("set {line_text} under [app] ({}:{line})", source.file()), Some(line))
        }
        (None, Some(app_span)) => {
            let line = source.line(app_span);
            (format!("add {line_text} under [app] ({}:{line})", source.file()), Some(line))
        }
        (None, None) => (format!("add {line_text} under [app]"), None),
    };
    for (capability, uses) in missing {
        let Some(first) = uses.first() else {
            continue;
        };
        let used_by: Vec<String> =
            uses.iter().map(|need| format!("{} (line {})", need.what, source.line(need.span))).collect();
        let diagnostic = source
            .diagnostic(
                Code::CapabilityMissing,
                first.span,
                format!(
                    "capability `{capability}` is needed by {} but not listed in [app] capabilities",
                    used_by.join(", ")
                ),
            )
            .with_next(fix.clone());
        report.push_error_fixed_at(diagnostic, fix_line);
    }
}

/// A listed capability nothing uses is a warning: it would be enabled and
/// metered for no reason. `outbound-network` cannot be seen from the
/// manifest, so it is never unused. Only run on an error-free manifest,
/// where the picture of what is used is complete.
pub(super) fn check_unused(source: &Source<'_>, draft: &Draft, report: &mut CheckReport) {
    if !report.ok() {
        return;
    }
    let needs = needs(draft);
    let listed = draft.listed_capabilities();
    let used = |capability: Capability| {
        capability == Capability::OutboundNetwork || needs.iter().any(|need| need.capability == capability)
    };
    let kept: Vec<Capability> = listed.iter().map(|item| item.value).filter(|c| used(*c)).collect();
    for item in listed.iter().filter(|item| !used(item.value)) {
        let diagnostic = source
            .diagnostic(
                Code::CapabilityUnused,
                &item.span,
                format!("capability `{}` is listed but {}", item.value, unused_reason(item.value, draft.kind())),
            )
            .with_next(format!("set {} under [app]", capabilities_line(&kept)));
        report.push_warning(diagnostic);
    }
}

fn unused_reason(capability: Capability, kind: Option<AppKind>) -> String {
    match capability {
        Capability::Http if kind == Some(AppKind::Worker) => {
            "a worker has no routes or domains; the health probe does not need it".to_owned()
        }
        Capability::Http => "nothing serves HTTP".to_owned(),
        Capability::ServiceBindings => "there are no [[bindings]]".to_owned(),
        other => format!("there is no [[resources]] entry that uses it ({})", resource_kind_for(other)),
    }
}

fn resource_kind_for(capability: Capability) -> String {
    crate::ResourceKind::ALL
        .into_iter()
        .find(|kind| kind.capability() == capability)
        .map(|kind| format!("kind = \"{kind}\""))
        .unwrap_or_default()
}

/// `capabilities = ["http", "sqlite"]`, deduplicated, in canonical order.
fn capabilities_line(capabilities: &[Capability]) -> String {
    let names: Vec<String> = Capability::ALL
        .into_iter()
        .filter(|capability| capabilities.contains(capability))
        .map(|capability| format!("\"{capability}\""))
        .collect();
    format!("capabilities = [{}]", names.join(", "))
}
