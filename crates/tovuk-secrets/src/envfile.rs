//! The env file of `tovuk config template` and `tovuk config apply`: a dotenv subset, parsed and rendered.
//!
//! One `NAME=VALUE` per line, optionally after `export `. `NAME=` keeps what is
//! set; `NAME=""` sets an empty string. Values are unquoted (trimmed; ` #`
//! starts a comment), double-quoted (only `\"` and `\\` are escapes) or
//! single-quoted (literal). Blank lines and `#` lines are ignored; CRLF and a
//! leading UTF-8 BOM are accepted. Errors never quote a value.

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use zeroize::Zeroizing;

use crate::names::{validate_name, validate_value};

/// Characters of a line without `=` shown in the error.
const SHOWN_LINE_CHARS: usize = 40;

/// One `NAME=...` line of an env file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvEntry {
    /// 1-based line number.
    pub line: usize,
    /// The variable's name (valid and not reserved).
    pub name: String,
    /// What to do with it.
    pub value: EnvValue,
}

/// What an env file line asks for. `Debug` never shows the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// `NAME=` with nothing after it: leave the current value as it is.
    Keep,
    /// Set the value (possibly to the empty string, from `NAME=""`).
    Set(Zeroizing<String>),
}

/// The first problem in an env file, with its line. The message names the fix and never holds a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct EnvFileError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// A variable to list in a template, with the comment written above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateEntry {
    /// The variable's name.
    pub name: String,
    /// What it is for; may be empty, may span lines.
    pub comment: String,
}

/// Parses an env file, stopping at the first error.
pub fn parse_env_file(text: &str) -> Result<Vec<EnvEntry>, EnvFileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, raw_line) in text.split('\n').enumerate() {
        let line = index + 1;
        let error = |message: String| EnvFileError { line, message };
        let content = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        let content = trim_blank_start(content);
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let content = strip_export(content);
        let Some((name, rest)) = content.split_once('=') else {
            return Err(error(format!(
                "expected NAME=VALUE, found `{}`; write one variable per line as NAME=VALUE, or start a comment with `#`",
                shorten(content).escape_debug()
            )));
        };
        let name = name.trim_matches(is_blank);
        validate_name(name).map_err(|problem| error(problem.to_string()))?;
        let value = parse_value(rest).map_err(&error)?;
        if let EnvValue::Set(value) = &value {
            validate_value(name, value).map_err(|problem| error(problem.to_string()))?;
        }
        if let Some(first) = seen.get(name) {
            return Err(error(format!("`{name}` is also set on line {first}; keep one")));
        }
        seen.insert(name.to_owned(), line);
        entries.push(EnvEntry { line, name: name.to_owned(), value });
    }
    Ok(entries)
}

/// Renders a template listing `entries` in the order given, every value empty (so applying it unchanged keeps everything).
///
/// `app` goes into the instructions only. Names must be valid for the result
/// to parse; comment lines are each prefixed with `# `.
pub fn render_template(app: &str, entries: &[TemplateEntry]) -> String {
    let mut out = format!(
        "# Environment for {app}.\n\
         # Fill in the values, then run: tovuk config apply {app} --file {app}.env\n\
         # An empty value (NAME=) keeps what is set; NAME=\"\" sets an empty string.\n\
         # One line per value. Quote a value that starts or ends with a space or holds \" #\": NAME=\"a #1\".\n"
    );
    for entry in entries {
        out.push('\n');
        for comment_line in entry.comment.lines() {
            let comment_line = comment_line.trim_end_matches(is_blank);
            if comment_line.is_empty() {
                out.push_str("#\n");
            } else {
                out.push_str("# ");
                out.push_str(comment_line);
                out.push('\n');
            }
        }
        out.push_str(&entry.name);
        out.push_str("=\n");
    }
    out
}

/// Parses what follows the `=`.
fn parse_value(rest: &str) -> Result<EnvValue, String> {
    let trimmed = trim_blank_start(rest);
    if let Some(quoted) = trimmed.strip_prefix('"') {
        let mut value = Zeroizing::new(String::with_capacity(quoted.len()));
        let mut chars = quoted.char_indices();
        let after = loop {
            match chars.next() {
                None => return Err(unterminated('"')),
                Some((at, '"')) => break &quoted[at + 1..],
                Some((_, '\\')) => match chars.clone().next() {
                    Some((_, escaped @ ('"' | '\\'))) => {
                        value.push(escaped);
                        chars.next();
                    }
                    // Any other backslash is kept as written.
                    _ => value.push('\\'),
                },
                Some((_, ch)) => value.push(ch),
            }
        };
        check_after_quote(after)?;
        return Ok(EnvValue::Set(value));
    }
    if let Some(quoted) = trimmed.strip_prefix('\'') {
        let Some((inner, after)) = quoted.split_once('\'') else {
            return Err(unterminated('\''));
        };
        check_after_quote(after)?;
        return Ok(EnvValue::Set(Zeroizing::new(inner.to_owned())));
    }
    let value = strip_comment(rest).trim_matches(is_blank);
    if value.is_empty() { Ok(EnvValue::Keep) } else { Ok(EnvValue::Set(Zeroizing::new(value.to_owned()))) }
}

/// Cuts an unquoted value at a `#` that follows a space or tab.
fn strip_comment(value: &str) -> &str {
    let bytes = value.as_bytes();
    let cut = bytes.windows(2).position(|pair| is_blank(pair[0] as char) && pair[1] == b'#');
    match cut {
        Some(at) => &value[..at],
        None => value,
    }
}

fn check_after_quote(after: &str) -> Result<(), String> {
    let after = trim_blank_start(after);
    if after.is_empty() || after.starts_with('#') {
        Ok(())
    } else {
        Err("there is text after the closing quote; put the whole value inside the quotes, or start a comment with `#`"
            .to_owned())
    }
}

fn unterminated(quote: char) -> String {
    format!("the value opened with {quote} on this line is never closed; values are one line")
}

/// Removes a leading `export ` (or `export` and a tab).
fn strip_export(content: &str) -> &str {
    match content.strip_prefix("export") {
        Some(rest) if rest.starts_with(is_blank) => trim_blank_start(rest),
        _ => content,
    }
}

/// The first [`SHOWN_LINE_CHARS`] characters of `content`, with `…` when cut.
fn shorten(content: &str) -> String {
    let mut chars = content.chars();
    let mut shown: String = chars.by_ref().take(SHOWN_LINE_CHARS).collect();
    if chars.next().is_some() {
        shown.push('…');
    }
    shown
}

fn trim_blank_start(text: &str) -> &str {
    text.trim_start_matches(is_blank)
}

fn is_blank(ch: char) -> bool {
    ch == ' ' || ch == '\t'
}
