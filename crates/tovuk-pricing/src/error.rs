//! `PricingError`: one problem in the server's pricing config, at the line and column to fix.

#[cfg(test)]
mod tests;

/// A problem in the config text, pointing at the offending key or value.
/// `Display` is `{file}:{line}:{column}: {message}`, the form editors jump to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct PricingError {
    /// Display path of the config file, as the caller named it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters so it matches what an editor shows.
    pub column: usize,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl PricingError {
    /// An error at byte `offset` of `text`.
    pub(crate) fn at(file: &str, text: &str, offset: usize, message: impl Into<String>) -> PricingError {
        let (line, column) = line_column(text, offset);
        PricingError { file: file.to_owned(), line, column, message: message.into() }
    }
}

/// The 1-based line and column of `offset`. Spans come from another crate, so
/// an offset past the end or inside a character is clamped rather than trusted.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}
