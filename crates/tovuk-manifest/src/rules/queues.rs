//! A queue's delivery keys: only on `kind = "queue"`, the push keys only with a `consumer`,
//! and `dead_letter` naming another queue of the same app.

use crate::draft::{Draft, DraftResource};
use crate::report::CheckReport;
use crate::source::Source;
use crate::{Code, ResourceKind};

pub(super) fn check(source: &Source<'_>, draft: &Draft, report: &mut CheckReport) {
    let queues: Vec<&str> = draft
        .resources()
        .iter()
        .filter(|resource| resource.value.kind.value() == Some(&ResourceKind::Queue))
        .filter_map(|resource| resource.value.binding.value().map(String::as_str))
        .collect();
    for resource in draft.resources() {
        let entry = &resource.value;
        match entry.kind.value() {
            Some(ResourceKind::Queue) => check_queue(source, entry, &resource.span, &queues, report),
            Some(kind) => {
                for (key, span) in entry.queue.written() {
                    let diagnostic = source
                        .diagnostic(
                            Code::NotAllowed,
                            span,
                            format!("`{key}` is only for queue resources, not kind `{kind}`"),
                        )
                        .with_next(format!("remove `{key}` from this [[resources]] entry"));
                    report.push_error(diagnostic);
                }
            }
            None => {}
        }
    }
}

fn check_queue(
    source: &Source<'_>,
    entry: &DraftResource,
    header: &crate::position::Span,
    queues: &[&str],
    report: &mut CheckReport,
) {
    let queue = &entry.queue;
    if queue.consumer.is_absent() {
        let push_only = [
            ("consumer_path", queue.consumer_path.span()),
            ("batch_size", queue.batch_size.span()),
            ("max_wait", queue.max_wait.span()),
            ("delivery_timeout", queue.delivery_timeout.span()),
        ];
        for (key, span) in push_only {
            let Some(span) = span else { continue };
            let diagnostic = source
                .diagnostic(
                    Code::NotAllowed,
                    span,
                    format!("`{key}` is for a queue the platform pushes to a `consumer` app, and this queue has none"),
                )
                .with_next(format!("add consumer = \"<app>\" to this entry, or remove `{key}`"));
            report.push_error(diagnostic);
        }
    } else if queue.consumer_path.is_absent() {
        let diagnostic = source
            .diagnostic(
                Code::MissingField,
                queue.consumer.span().unwrap_or(header),
                "a queue with a `consumer` needs `consumer_path`: the path its batches are POSTed to",
            )
            .with_next("add consumer_path = \"/queues/emails\" under [[resources]]");
        report.push_error(diagnostic);
    }
    let (Some(target), Some(span)) = (queue.dead_letter.value(), queue.dead_letter.span()) else { return };
    let own = entry.binding.value().map(String::as_str);
    let others: Vec<&str> = queues.iter().copied().filter(|binding| Some(*binding) != own).collect();
    let problem = if own == Some(target.as_str()) {
        Some(format!("dead_letter = \"{target}\" is this queue itself; a dead-letter queue must be another queue"))
    } else if !others.contains(&target.as_str()) {
        Some(format!("dead_letter = \"{target}\" is not the binding of another queue resource of this app"))
    } else {
        None
    };
    if let Some(problem) = problem {
        let next = match others.first() {
            Some(_) => format!("use one of: {}", others.join(", ")),
            None => format!(
                "declare the dead-letter queue too:\n[[resources]]\nkind = \"queue\"\nbinding = \"{}\"",
                if own == Some(target.as_str()) { format!("{target}_FAILED") } else { target.clone() }
            ),
        };
        report.push_error(source.diagnostic(Code::InvalidValue, span, problem).with_next(next));
    }
}

#[cfg(test)]
mod tests;
