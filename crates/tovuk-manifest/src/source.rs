//! The manifest text being checked, and how a span in it becomes a diagnostic.

use crate::Code;
use crate::position::{LineIndex, Span};
use crate::report::{Diagnostic, Snippet};

pub(crate) struct Source<'a> {
    /// Display path used in every diagnostic (`tovuk.toml`, or a path in a pushed commit).
    file: &'a str,
    text: &'a str,
    lines: LineIndex<'a>,
}

impl<'a> Source<'a> {
    pub(crate) fn new(file: &'a str, text: &'a str) -> Self {
        Source { file, text, lines: LineIndex::new(text) }
    }

    pub(crate) fn file(&self) -> &'a str {
        self.file
    }

    pub(crate) fn text(&self) -> &'a str {
        self.text
    }

    /// The 1-based line `span` starts on.
    pub(crate) fn line(&self, span: &Span) -> u32 {
        self.lines.position(span.start).line
    }

    /// `tovuk.toml:12`, for messages that point at another place in the file.
    pub(crate) fn location(&self, span: &Span) -> String {
        format!("{}:{}", self.file, self.line(span))
    }

    /// A diagnostic at `span`, carrying the source line for the human rendering.
    pub(crate) fn diagnostic(&self, code: Code, span: &Span, message: impl Into<String>) -> Diagnostic {
        let position = self.lines.position(span.start);
        Diagnostic {
            code,
            message: message.into(),
            file: self.file.to_owned(),
            line: Some(position.line),
            column: Some(position.column),
            next: None,
            snippet: Some(Snippet {
                text: self.lines.line_text(position.line).to_owned(),
                width: self.lines.width_on_first_line(span),
            }),
        }
    }
}
