//! The first actionable line of some output: the line that names an error, not the summary
//! that repeats that something failed. Builds report it for a failed phase, releases for an
//! app that never became healthy.

/// Lines that follow the real error and only say that something failed.
const NOISE: [&str; 10] = [
    "error: could not compile",
    "error: process didn't exit successfully",
    "error: test failed",
    "error: aborting due to",
    "error: failed to compile",
    "npm err! a complete log",
    "npm err! a complete log of this run",
    "make: ***",
    "error: command failed",
    "error: recipe for target",
];

/// Markers of a line that says what went wrong, most specific first.
const STRONG: [&str; 17] = [
    "error[",
    "error:",
    "error ",
    "panicked at",
    "assertionerror",
    "exception",
    "not found",
    "fatal:",
    "fatal error",
    "failed:",
    "failure:",
    "npm err!",
    "command not found",
    "no such file or directory",
    "permission denied",
    "cannot find",
    "undefined reference",
];

/// Finds the first actionable line of a failed phase: the first line that names an
/// error, skipping summaries that only repeat that something failed; failing that, the
/// last non-empty line. Keeps only what it needs, so it can watch any amount of output.
#[derive(Debug, Default)]
pub struct ActionableLine {
    first_strong: Option<String>,
    first_weak: Option<String>,
    last_non_empty: Option<String>,
}

impl ActionableLine {
    pub fn observe(&mut self, line: &str) {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("[tovuk:") {
            return;
        }
        self.last_non_empty = Some(trimmed.to_owned());
        if self.first_strong.is_some() {
            return;
        }
        let lower = trimmed.to_lowercase();
        if NOISE.iter().any(|noise| lower.starts_with(noise)) {
            return;
        }
        if STRONG.iter().any(|marker| lower.contains(marker)) {
            self.first_strong = Some(trimmed.to_owned());
        } else if self.first_weak.is_none() && (lower.contains("failed") || lower.contains("error")) {
            self.first_weak = Some(trimmed.to_owned());
        }
    }

    pub fn best(&self) -> Option<String> {
        self.first_strong.clone().or_else(|| self.first_weak.clone()).or_else(|| self.last_non_empty.clone())
    }
}
