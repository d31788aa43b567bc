//! The result of `tovuk check`: errors, warnings, required fixes and the capability summary.
//!
//! The JSON shape is a contract (`requiredFixes` is spelled as in the product
//! documents); absent values serialize as `null` and lists are always arrays.

use serde::{Serialize, Serializer};

use crate::{Capability, Code};

/// One finding, pointing at a file and, when it applies, a line and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub code: Code,
    /// Lowercase sentence saying what is wrong, with the offending value.
    pub message: String,
    /// The manifest's display path, or the tracked file a hygiene finding is about.
    pub file: String,
    /// 1-based; `null` when the finding is about the whole file.
    pub line: Option<u32>,
    /// 1-based, in characters; `null` when `line` is.
    pub column: Option<u32>,
    /// The fix: a concrete sentence or the exact text to write; `null` when there is none.
    pub next: Option<String>,
    /// The source line and underline width, for the human rendering only.
    #[serde(skip)]
    pub(crate) snippet: Option<Snippet>,
}

/// The line a diagnostic points into, kept so `render_human` needs no source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snippet {
    pub(crate) text: String,
    /// Characters to underline from the diagnostic's column.
    pub(crate) width: u32,
}

impl Diagnostic {
    /// A diagnostic about a whole file (no line or column).
    pub(crate) fn for_file(code: Code, file: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            message: message.into(),
            file: file.to_owned(),
            line: None,
            column: None,
            next: None,
            snippet: None,
        }
    }

    pub(crate) fn with_next(mut self, next: impl Into<String>) -> Diagnostic {
        self.next = Some(next.into());
        self
    }

    pub(crate) fn with_next_opt(mut self, next: Option<String>) -> Diagnostic {
        self.next = next;
        self
    }
}

/// An error that has a concrete fix: what to change and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequiredFix {
    pub code: Code,
    pub message: String,
    pub file: String,
    /// The line to change; for a missing capability this is the
    /// `capabilities` line (or the `[app]` line), not the line that needs it.
    pub line: Option<u32>,
    pub next: String,
}

/// Which capabilities the manifest turns on; every known capability is in
/// exactly one of the two lists, each in canonical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapabilitySummary {
    #[serde(serialize_with = "capability_names")]
    pub enabled: Vec<Capability>,
    #[serde(serialize_with = "capability_names")]
    pub disabled: Vec<Capability>,
}

fn capability_names<S: Serializer>(list: &[Capability], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(list.iter().map(|capability| capability.as_str()))
}

/// The whole result of checking one manifest (and, in release mode, its files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// True exactly when `errors` is empty; kept in step by every push.
    ok: bool,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    required_fixes: Vec<RequiredFix>,
    capabilities: CapabilitySummary,
    /// The contract detected for a project without `tovuk.toml`; `null` for a written one.
    detected: Option<crate::Detection>,
}

impl Default for CheckReport {
    fn default() -> Self {
        CheckReport::new()
    }
}

impl CheckReport {
    /// An empty, passing report with every capability disabled.
    pub fn new() -> CheckReport {
        CheckReport {
            ok: true,
            errors: Vec::new(),
            warnings: Vec::new(),
            required_fixes: Vec::new(),
            capabilities: CapabilitySummary { enabled: Vec::new(), disabled: Capability::ALL.to_vec() },
            detected: None,
        }
    }

    pub fn ok(&self) -> bool {
        self.ok
    }

    pub fn errors(&self) -> &[Diagnostic] {
        &self.errors
    }

    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    pub fn required_fixes(&self) -> &[RequiredFix] {
        &self.required_fixes
    }

    pub fn capabilities(&self) -> &CapabilitySummary {
        &self.capabilities
    }

    /// The detected contract, when the project has no `tovuk.toml`.
    pub fn detected(&self) -> Option<&crate::Detection> {
        self.detected.as_ref()
    }

    pub(crate) fn set_detected(&mut self, detection: crate::Detection) {
        self.detected = Some(detection);
    }

    /// Records an error; one with a `next` also becomes a required fix at its own line.
    pub(crate) fn push_error(&mut self, diagnostic: Diagnostic) {
        let line = diagnostic.line;
        self.push_error_fixed_at(diagnostic, line);
    }

    /// Records an error whose fix belongs on another line than the finding.
    pub(crate) fn push_error_fixed_at(&mut self, diagnostic: Diagnostic, fix_line: Option<u32>) {
        if let Some(next) = &diagnostic.next {
            self.required_fixes.push(RequiredFix {
                code: diagnostic.code,
                message: diagnostic.message.clone(),
                file: diagnostic.file.clone(),
                line: fix_line,
                next: next.clone(),
            });
        }
        self.errors.push(diagnostic);
        self.ok = false;
    }

    pub(crate) fn push_warning(&mut self, diagnostic: Diagnostic) {
        self.warnings.push(diagnostic);
    }

    /// Sets the summary from the listed capabilities (any order, duplicates allowed).
    pub(crate) fn set_enabled_capabilities(&mut self, listed: &[Capability]) {
        let (enabled, disabled) = Capability::ALL.into_iter().partition(|capability| listed.contains(capability));
        self.capabilities = CapabilitySummary { enabled, disabled };
    }

    /// Orders findings by position so a reader can walk the file top to
    /// bottom; whole-file findings (no line) come first. The sort is stable,
    /// so findings at one position keep the order the rules produced them.
    pub(crate) fn sort_by_position(&mut self) {
        let key = |diagnostic: &Diagnostic| (diagnostic.line.unwrap_or(0), diagnostic.column.unwrap_or(0));
        self.errors.sort_by_key(key);
        self.warnings.sort_by_key(key);
        self.required_fixes.sort_by_key(|fix| fix.line.unwrap_or(0));
    }
}
