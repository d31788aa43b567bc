//! Reading `[app]`: name, kind and the explicit capability list.

use toml::de::DeTable;

use super::Reader;
use crate::draft::{DraftApp, Field, Located};
use crate::names::{check_app_name, suggest_app_name};
use crate::schema::APP;
use crate::suggest::did_you_mean;
use crate::{AppKind, Capability, Code};

pub(super) fn read_app(reader: &mut Reader<'_, '_>, table: &DeTable<'_>) -> DraftApp {
    reader.check_keys(table, &APP);
    let name = reader.string(table, &APP, "name").and_then(|name, span| match check_app_name(name) {
        Ok(()) => Some(name.clone()),
        Err(problem) => {
            let next = suggest_app_name(name).map(|better| format!("name = \"{better}\""));
            reader.invalid(span, problem, next);
            None
        }
    });
    let kind_text = reader.string(table, &APP, "kind");
    let kind = reader.choice(kind_text, &APP, "kind", &AppKind::names(), AppKind::from_name);
    let capabilities = read_capabilities(reader, table);
    DraftApp { name, kind, capabilities }
}

/// Keeps the known capabilities; unknown ones are errors with a suggestion,
/// repeated ones are warnings (harmless, but a sign of a merge slip).
fn read_capabilities(reader: &mut Reader<'_, '_>, table: &DeTable<'_>) -> Field<Vec<Located<Capability>>> {
    let names = Capability::names();
    reader.string_array(table, &APP, "capabilities").and_then(|items, _| {
        let mut known: Vec<Located<Capability>> = Vec::new();
        for item in items {
            let Some(capability) = Capability::from_name(&item.value) else {
                let (message, next) = match did_you_mean(&item.value, &names) {
                    Some(close) => (
                        format!("unknown capability `{}`; did you mean `{close}`?", item.value),
                        format!("replace \"{}\" with \"{close}\"", item.value),
                    ),
                    None => (
                        format!("unknown capability `{}` (known: {})", item.value, names.join(", ")),
                        format!("remove \"{}\" from capabilities", item.value),
                    ),
                };
                let diagnostic = reader.source.diagnostic(Code::UnknownCapability, &item.span, message).with_next(next);
                reader.report.push_error(diagnostic);
                continue;
            };
            if let Some(first) = known.iter().find(|seen| seen.value == capability) {
                let diagnostic = reader
                    .source
                    .diagnostic(
                        Code::DuplicateCapability,
                        &item.span,
                        format!(
                            "capability `{capability}` is listed twice (first at {})",
                            reader.source.location(&first.span)
                        ),
                    )
                    .with_next(format!("remove the second \"{capability}\""));
                reader.report.push_warning(diagnostic);
                continue;
            }
            known.push(Located { value: capability, span: item.span.clone() });
        }
        Some(known)
    })
}
