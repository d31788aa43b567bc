//! Warnings for development-only settings in commands that run in production.

#[cfg(test)]
mod tests;

use crate::Code;
use crate::draft::{Draft, Located};
use crate::report::CheckReport;
use crate::source::Source;

/// A development-only pattern found in a command: where it starts (byte
/// offset in the command), what it is, and what to do instead.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct DevFinding {
    pub(crate) offset: usize,
    /// Byte length of the matched words in the command.
    pub(crate) len: usize,
    pub(crate) what: String,
    pub(crate) next: &'static str,
}

pub(super) fn check(source: &Source<'_>, draft: &Draft, report: &mut CheckReport) {
    // Commands that serve production traffic or production jobs get every check.
    let mut commands: Vec<(&Located<String>, &str)> = Vec::new();
    if let Some(command) = draft.run.value().and_then(|run| run.command.valid()) {
        commands.push((command, "run command"));
    }
    for resource in draft.resources() {
        if let Some(command) = resource.value.command.valid() {
            commands.push((command, "cron command"));
        }
    }
    for (command, label) in commands {
        for finding in scan_command(&command.value) {
            warn(source, report, command, label, &finding);
        }
    }
    // A build is allowed debug flags, but a development NODE_ENV ships a development bundle.
    if let Some(command) = draft.build.value().and_then(|build| build.build.valid()) {
        for finding in scan_command(&command.value) {
            if finding.what.contains("NODE_ENV=") {
                warn(source, report, command, "build command", &finding);
            }
        }
    }
}

fn warn(source: &Source<'_>, report: &mut CheckReport, command: &Located<String>, label: &str, finding: &DevFinding) {
    let span = span_in_string(source.text(), command, finding);
    let diagnostic = source
        .diagnostic(Code::DevSetting, &span, format!("{label} uses {}, a development setting", finding.what))
        .with_next(finding.next);
    report.push_warning(diagnostic);
}

/// The source span of the finding when the TOML string is written without
/// escapes (so value offsets equal source offsets); otherwise the whole value.
fn span_in_string(text: &str, command: &Located<String>, finding: &DevFinding) -> crate::position::Span {
    let raw = text.get(command.span.clone()).unwrap_or("");
    let plain = ['"', '\''].into_iter().any(|quote| {
        raw.len() >= 2 && raw.starts_with(quote) && raw.ends_with(quote) && raw[1..raw.len() - 1] == command.value
    });
    if plain {
        let start = command.span.start + 1 + finding.offset;
        start..start + finding.len
    } else {
        command.span.clone()
    }
}

/// Every development-only pattern in `command`, in order.
pub(crate) fn scan_command(command: &str) -> Vec<DevFinding> {
    let tokens = tokenize(command);
    let words: Vec<&str> = tokens.iter().map(|(_, word)| *word).collect();
    let mut findings = Vec::new();
    let has_release = words.iter().any(|word| matches!(*word, "--release" | "-r") || word.starts_with("--profile"));
    for (idx, (offset, word)) in tokens.iter().enumerate() {
        let next_word = words.get(idx + 1).copied().unwrap_or("");
        let after_next = words.get(idx + 2).copied().unwrap_or("");
        let found: Option<(usize, String, &'static str)> = match *word {
            "cargo" if next_word == "run" && !has_release => Some((
                2,
                "`cargo run` without `--release`".to_owned(),
                "run the binary built by [build], e.g. command = \"./target/release/my-api\", or add --release",
            )),
            "npm" | "yarn" | "pnpm" | "bun" if next_word == "dev" || (next_word == "run" && after_next == "dev") => {
                let shown = if next_word == "dev" { format!("{word} dev") } else { format!("{word} run dev") };
                Some((
                    shown.split(' ').count(),
                    format!("`{shown}`"),
                    "start the production server instead, e.g. `npm start`",
                ))
            }
            "next" | "nuxt" | "astro" if next_word == "dev" => {
                Some((2, format!("`{word} dev`"), "start the production server instead, e.g. `next start`"))
            }
            "flask" if next_word == "run" => {
                Some((2, "`flask run`".to_owned(), "serve with a production server, e.g. `gunicorn app:app`"))
            }
            _ if word.ends_with("manage.py") && next_word == "runserver" => Some((
                2,
                "`manage.py runserver`".to_owned(),
                "serve with a production server, e.g. `gunicorn myproject.wsgi`",
            )),
            _ if *word == "nodemon" || word.ends_with("/nodemon") => {
                Some((1, "`nodemon`".to_owned(), "run `node` directly; the platform restarts the process"))
            }
            _ if *word == "--reload" || word.starts_with("--reload=") => {
                Some((1, "`--reload`".to_owned(), "remove `--reload`; a deploy replaces the process"))
            }
            _ if *word == "--debug" || word.starts_with("--debug=") => {
                Some((1, "`--debug`".to_owned(), "remove `--debug`"))
            }
            _ if *word == "NODE_ENV=development" => {
                Some((1, "`NODE_ENV=development`".to_owned(), "use NODE_ENV=production"))
            }
            _ => None,
        };
        if let Some((n_tokens, what, next)) = found {
            let last = tokens.get(idx + n_tokens - 1).copied().unwrap_or((*offset, word));
            findings.push(DevFinding { offset: *offset, len: last.0 + last.1.len() - offset, what, next });
        }
    }
    findings
}

/// Whitespace-separated words with their byte offsets; shell separators
/// (`;`, `&&`, `|`) stand alone or stick to words, which is good enough to
/// spot the patterns above.
fn tokenize(command: &str) -> Vec<(usize, &str)> {
    let mut tokens = Vec::new();
    let mut start = None;
    for (offset, ch) in command.char_indices() {
        match (ch.is_whitespace(), start) {
            (true, Some(word_start)) => {
                tokens.push((word_start, &command[word_start..offset]));
                start = None;
            }
            (false, None) => start = Some(offset),
            _ => {}
        }
    }
    if let Some(word_start) = start {
        tokens.push((word_start, &command[word_start..]));
    }
    tokens
}
