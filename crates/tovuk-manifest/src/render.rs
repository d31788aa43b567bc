//! The human rendering of a report, in the rustc/uv style, without colour.

#[cfg(test)]
mod tests;

use std::fmt::Write as _;

use crate::report::{CheckReport, Diagnostic};

/// Renders `report` for a terminal: each error, then each warning, with the
/// source line and a caret underline when known, the fix as `= next:`, the
/// enabled capabilities and a one-line verdict. No ANSI codes, so the text is
/// the same on a TTY, in a pipe and in a `remote:` line of `git push`.
pub fn render_human(report: &CheckReport) -> String {
    let mut out = String::new();
    if let Some(detected) = report.detected() {
        let _ = writeln!(out, "no tovuk.toml: detected a {} app", detected.language);
        for reason in &detected.reasons {
            let _ = writeln!(out, "  {reason}");
        }
    }
    for diagnostic in report.errors() {
        render_diagnostic(&mut out, "error", diagnostic);
    }
    for diagnostic in report.warnings() {
        render_diagnostic(&mut out, "warning", diagnostic);
    }
    let enabled: Vec<&str> = report.capabilities().enabled.iter().map(|capability| capability.as_str()).collect();
    if !enabled.is_empty() {
        let _ = writeln!(out, "capabilities: {}", enabled.join(", "));
    }
    let n_errors = report.errors().len();
    let n_warnings = report.warnings().len();
    let warnings = plural(n_warnings, "warning");
    if report.ok() {
        if n_warnings == 0 {
            out.push_str("check passed\n");
        } else {
            let _ = writeln!(out, "check passed with {warnings}");
        }
    } else {
        let errors = plural(n_errors, "error");
        if n_warnings == 0 {
            let _ = writeln!(out, "error: check failed with {errors}");
        } else {
            let _ = writeln!(out, "error: check failed with {errors} and {warnings}");
        }
    }
    out
}

fn render_diagnostic(out: &mut String, severity: &str, diagnostic: &Diagnostic) {
    let _ = writeln!(out, "{severity}[{}]: {}", diagnostic.code, diagnostic.message);
    let line_number = diagnostic.line.map(|line| line.to_string());
    // The gutter is as wide as the line number, as in rustc.
    let gutter = " ".repeat(line_number.as_ref().map_or(1, String::len));
    match (diagnostic.line, diagnostic.column) {
        (Some(line), Some(column)) => {
            let _ = writeln!(out, "{gutter}--> {}:{line}:{column}", diagnostic.file);
        }
        _ => {
            let _ = writeln!(out, "{gutter}--> {}", diagnostic.file);
        }
    }
    if let (Some(snippet), Some(line_number), Some(column)) = (&diagnostic.snippet, &line_number, diagnostic.column) {
        // Tabs before the column stay tabs so the caret lines up in any tab width.
        let pad: String = snippet
            .text
            .chars()
            .take(column.saturating_sub(1) as usize)
            .map(|ch| if ch == '\t' { '\t' } else { ' ' })
            .collect();
        let carets = "^".repeat(snippet.width.max(1) as usize);
        let _ = writeln!(out, "{gutter} |");
        let _ = writeln!(out, "{line_number} | {}", snippet.text);
        let _ = writeln!(out, "{gutter} | {pad}{carets}");
    }
    if let Some(next) = &diagnostic.next {
        let mut lines = next.lines();
        let first = lines.next().unwrap_or("");
        let _ = writeln!(out, "{gutter} = next: {first}");
        for line in lines {
            if line.is_empty() {
                out.push('\n');
            } else {
                let _ = writeln!(out, "{gutter}         {line}");
            }
        }
    }
    out.push('\n');
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") }
}
