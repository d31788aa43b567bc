//! Turning a build's raw output into stored log lines: split, made safe to show,
//! capped, and searched for the first line that says what went wrong.

use std::sync::Arc;
pub use tovuk_api_types::ActionableLine;
use tovuk_secrets::Masker;

/// Longer lines are cut: their first this many bytes are kept, the rest counted.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Splits a byte stream into lines without holding more than one line in memory, hiding
/// secret values (as raw bytes, before anything is cut or escaped).
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
    masker: Arc<Masker>,
    /// Past the cut of a long line: its bytes are counted until it ends.
    dropping: Option<u64>,
}

impl LineSplitter {
    /// A splitter that masks the values `masker` knows.
    pub fn masking(masker: Arc<Masker>) -> Self {
        LineSplitter { pending: Vec::new(), masker, dropping: None }
    }

    /// Feeds bytes; returns the complete lines they finish.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        // A long line is cut only once it holds every byte of any value that starts
        // before the cut, so a value is never split past masking.
        let cut_at = MAX_LINE_BYTES + self.masker.longest().saturating_sub(1);
        let mut lines = Vec::new();
        for &byte in bytes {
            if let Some(dropped) = self.dropping.as_mut() {
                if byte == b'\n' {
                    lines.push(dropped_marker(*dropped));
                    self.dropping = None;
                } else {
                    *dropped += 1;
                }
            } else if byte == b'\n' {
                let line = std::mem::take(&mut self.pending);
                lines.push(sanitize(&self.masker.mask_bytes(&line)));
            } else {
                self.pending.push(byte);
                if self.pending.len() >= cut_at {
                    let masked = self.masker.mask_bytes(&self.pending).into_owned();
                    let cut = MAX_LINE_BYTES.min(masked.len());
                    lines.push(format!("{} [tovuk: line cut at {MAX_LINE_BYTES} bytes]", sanitize(&masked[..cut])));
                    self.dropping = Some((masked.len() - cut) as u64);
                    self.pending.clear();
                }
            }
        }
        lines
    }

    /// The last line, when the stream did not end with a newline.
    pub fn finish(&mut self) -> Option<String> {
        if let Some(dropped) = self.dropping.take() {
            return Some(dropped_marker(dropped));
        }
        let line = std::mem::take(&mut self.pending);
        (!line.is_empty()).then(|| sanitize(&self.masker.mask_bytes(&line)))
    }
}

fn dropped_marker(dropped: u64) -> String {
    format!("[tovuk: {dropped} more bytes of that line dropped]")
}

/// Makes output safe to store and show: invalid UTF-8 becomes U+FFFD, a trailing `\r`
/// goes, and control characters (terminal escapes included) are shown as `\u{..}`.
pub fn sanitize(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_suffix('\r').unwrap_or(&text);
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if ch.is_control() && ch != '\t' {
            out.push_str(&ch.escape_unicode().to_string());
        } else {
            out.push(ch);
        }
    }
    out
}

/// Keeps a build's stored log under a byte budget. Past it, one marker line is stored
/// and the rest is counted, not kept: the build still runs to its end.
#[derive(Debug)]
pub struct LogBudget {
    remaining: usize,
    dropped_bytes: u64,
    dropped_lines: u64,
    limit: usize,
}

/// What to do with one line.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    Store(String),
    /// The budget ran out with this line: store the marker instead.
    Marker(String),
    Drop,
}

impl LogBudget {
    pub fn new(limit: usize) -> Self {
        LogBudget { remaining: limit, dropped_bytes: 0, dropped_lines: 0, limit }
    }

    pub fn admit(&mut self, line: String) -> Admit {
        if self.dropped_lines > 0 {
            self.dropped_lines += 1;
            self.dropped_bytes += line.len() as u64 + 1;
            return Admit::Drop;
        }
        let cost = line.len() + 1;
        if cost <= self.remaining {
            self.remaining -= cost;
            return Admit::Store(line);
        }
        self.dropped_lines = 1;
        self.dropped_bytes = cost as u64;
        Admit::Marker(format!(
            "[tovuk: the build log reached its limit of {} bytes; later output is not stored]",
            self.limit
        ))
    }

    /// A closing note on how much was dropped, if anything was.
    pub fn summary(&self) -> Option<String> {
        (self.dropped_lines > 0).then(|| {
            format!("[tovuk: {} lines ({} bytes) of output were not stored]", self.dropped_lines, self.dropped_bytes)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actionable(output: &str) -> Option<String> {
        let mut finder = ActionableLine::default();
        for line in output.lines() {
            finder.observe(line);
        }
        finder.best()
    }

    #[test]
    fn finds_the_line_that_says_what_went_wrong() {
        let cargo = "   Compiling app v0.1.0\nerror[E0308]: mismatched types\n --> src/main.rs:2:5\nerror: could not compile `app`";
        assert_eq!(actionable(cargo).as_deref(), Some("error[E0308]: mismatched types"));
        let test = "running 2 tests\ntest a ... ok\ntest b ... FAILED\nthread 'b' panicked at src/lib.rs:9:5:\nassertion failed\nerror: test failed, to rerun pass `--lib`";
        assert_eq!(actionable(test).as_deref(), Some("thread 'b' panicked at src/lib.rs:9:5:"));
        let python = "collected 1 item\nTraceback (most recent call last):\n  File \"t.py\"\nAssertionError: 1 != 2";
        assert_eq!(actionable(python).as_deref(), Some("AssertionError: 1 != 2"));
        let shell = "building...\nsh: 1: nonexistent-tool: not found\n";
        assert_eq!(actionable(shell).as_deref(), Some("sh: 1: nonexistent-tool: not found"));
        assert_eq!(actionable("step 1\nstep 2\n\n").as_deref(), Some("step 2"));
        assert_eq!(actionable(""), None);
    }

    #[test]
    fn splits_lines_caps_long_ones_and_makes_garbage_safe() {
        let mut splitter = LineSplitter::default();
        assert_eq!(splitter.push(b"one\ntw"), ["one"]);
        assert_eq!(splitter.push(b"o\r\nthree"), ["two"]);
        assert_eq!(splitter.finish().as_deref(), Some("three"));
        let long = vec![b'x'; MAX_LINE_BYTES * 2 + 5];
        let lines = splitter.push(&long);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0], format!("{} [tovuk: line cut at 16384 bytes]", "x".repeat(MAX_LINE_BYTES)));
        assert_eq!(splitter.finish().as_deref(), Some("[tovuk: 16389 more bytes of that line dropped]"));
        let long_then_end = [vec![b'y'; MAX_LINE_BYTES + 3], b"\nnext\n".to_vec()].concat();
        assert_eq!(splitter.push(&long_then_end)[1..], ["[tovuk: 3 more bytes of that line dropped]", "next"]);
        assert_eq!(sanitize(b"ok \xff\xfe bytes"), "ok \u{fffd}\u{fffd} bytes");
        assert_eq!(sanitize(b"\x1b[31mred\x1b[0m"), "\\u{1b}[31mred\\u{1b}[0m");
        assert_eq!(sanitize(b"tab\there"), "tab\there");
    }

    #[test]
    fn the_budget_stores_a_marker_then_counts_what_it_drops() {
        let mut budget = LogBudget::new(10);
        assert_eq!(budget.admit("12345".into()), Admit::Store("12345".into()));
        assert!(matches!(budget.admit("123456".into()), Admit::Marker(_)));
        assert_eq!(budget.admit("more".into()), Admit::Drop);
        assert_eq!(budget.summary().as_deref(), Some("[tovuk: 2 lines (12 bytes) of output were not stored]"));
    }
}
