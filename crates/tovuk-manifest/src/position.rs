//! Byte offsets to 1-based line/column positions, and the source line text for snippets.

#[cfg(test)]
mod tests;

/// A byte range in the manifest text, as the TOML parser reports it.
pub(crate) type Span = std::ops::Range<usize>;

/// A 1-based line and column; the column counts characters, not bytes,
/// so it matches what an editor shows for non-ASCII text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) line: u32,
    pub(crate) column: u32,
}

/// Precomputed line starts, so that every diagnostic does not rescan the text.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset where each line starts; always has at least one entry (0).
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        for (offset, byte) in text.bytes().enumerate() {
            if byte == b'\n' {
                line_starts.push(offset + 1);
            }
        }
        LineIndex { text, line_starts }
    }

    /// The position of `offset`; an offset past the end (or inside a
    /// multi-byte character) is clamped rather than trusted, since spans come
    /// from another crate.
    pub(crate) fn position(&self, offset: usize) -> Position {
        let offset = clamp_to_char_boundary(self.text, offset);
        let line_idx = match self.line_starts.binary_search(&offset) {
            Ok(idx) => idx,
            Err(idx) => idx.saturating_sub(1),
        };
        let line_start = self.line_starts.get(line_idx).copied().unwrap_or(0);
        let column = self.text[line_start..offset].chars().count() + 1;
        Position { line: to_u32(line_idx + 1), column: to_u32(column) }
    }

    /// The text of a 1-based line without its line terminator.
    pub(crate) fn line_text(&self, line: u32) -> &'a str {
        let line_idx = (line as usize).saturating_sub(1);
        let Some(&start) = self.line_starts.get(line_idx) else {
            return "";
        };
        let end = self.line_starts.get(line_idx + 1).copied().unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }

    /// How many characters of `span` fall on the line where it starts, at least
    /// one, so a caret underline never disappears for empty spans.
    pub(crate) fn width_on_first_line(&self, span: &Span) -> u32 {
        let start = clamp_to_char_boundary(self.text, span.start);
        let end = clamp_to_char_boundary(self.text, span.end.max(start));
        let first_line = self.text[start..end].split('\n').next().unwrap_or("");
        to_u32(first_line.trim_end_matches('\r').chars().count().max(1))
    }
}

/// The position of the first byte that is not valid UTF-8, for
/// `manifest_not_utf8`; `valid_up_to` comes from `std::str::Utf8Error`.
pub(crate) fn position_of_byte(bytes: &[u8], valid_up_to: usize) -> Position {
    let valid_up_to = valid_up_to.min(bytes.len());
    // The prefix is valid UTF-8 by definition of `valid_up_to`.
    let prefix = std::str::from_utf8(&bytes[..valid_up_to]).unwrap_or("");
    LineIndex::new(prefix).position(prefix.len())
}

fn clamp_to_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

fn to_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}
