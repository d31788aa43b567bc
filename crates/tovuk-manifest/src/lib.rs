//! `tovuk-manifest` owns the project contract `tovuk.toml`: parsing with
//! spans, validation, release-mode file hygiene, and the report of `tovuk check`.
//!
//! The crate is pure: no filesystem, network, async or other tovuk crate.
//! Callers pass bytes and a list of tracked paths, so the same check runs in
//! the CLI on a working tree and in the git pre-receive hook on a pushed commit.
//!
//! ```text
//! bytes ─► size / UTF-8 / TOML syntax ─► read tables (shape, types, formats)
//!       ─► rules (required keys, kind, uniqueness, capabilities, dev settings)
//!       ─► CheckReport (+ Manifest when there are no errors)
//! ```

mod capability;
mod code;
pub mod cron;
mod detect;
mod draft;
mod duration;
mod files;
mod glob;
mod kinds;
mod manifest;
mod names;
mod paths;
mod position;
mod read;
mod render;
mod report;
mod rules;
mod schema;
mod source;
mod suggest;

#[cfg(test)]
mod tests;

use toml::de::DeTable;

pub use capability::Capability;
pub use code::Code;
pub use detect::{DETECTION_FILES, Detection, NotDetected, ProjectRoot, RuntimeRequest, detect, printed_version};
pub use duration::format_duration;
pub use files::{DOTENV, MAX_PATH_BYTES, MAX_PATH_DEPTH, check_files, is_default_excluded};
pub use glob::{PathPatterns, check_pattern, pattern_matches};
pub use kinds::{AppKind, ResourceKind, RouteAuth, service_binding_variables};
pub use manifest::{
    Build, DEFAULT_BUILD_TIMEOUT, DEFAULT_CPU_CORES, DEFAULT_CRON_TIMEOUT, DEFAULT_DATA_MB, DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_HEALTH_INTERVAL, DEFAULT_HEALTH_TIMEOUT, DEFAULT_INSTANCES, DEFAULT_MEMORY_MB, DEFAULT_MIN_HEALTHY,
    DEFAULT_RELEASE_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, DEFAULT_STATIC_ROOT, DEFAULT_STOP_GRACE, Domain, Expected,
    Health, Limits, Manifest, Process, Release, Resource, Route, ServiceBinding,
};
pub use manifest::{
    DEFAULT_BATCH_SIZE, DEFAULT_DELIVERY_TIMEOUT, DEFAULT_MAX_RETRIES, DEFAULT_MAX_WAIT, PushConsumer, QueueSettings,
};
pub use names::check_env_name as check_binding_name;
pub use render::render_human;
pub use report::{CapabilitySummary, CheckReport, Diagnostic, RequiredFix};
pub use suggest::did_you_mean;

use position::position_of_byte;
use report::Snippet;
use source::Source;

/// The manifest's file name at the project root.
pub const MANIFEST_FILE: &str = "tovuk.toml";
/// Larger manifests are refused before parsing, so a pushed commit cannot
/// make the pre-receive hook parse an arbitrarily large file.
pub const MAX_MANIFEST_BYTES: usize = 1024 * 1024;
/// Where the manifest reference lives, named in fixes.
pub const MANIFEST_DOC: &str = "docs/manifest.md";

/// The smallest manifest that passes the check, shown as the fix for an
/// empty or missing manifest.
pub const MINIMAL_MANIFEST: &str = "[app]\nname = \"my-app\"\nkind = \"web\"\ncapabilities = [\"http\"]\n\n[run]\ncommand = \"./server\"\n\n[health]\npath = \"/health\"\n";

/// Parses and validates a manifest. `file` is the display path used in
/// diagnostics (e.g. `tovuk.toml`). Returns the manifest when it parsed and
/// validated without errors (warnings allowed), and the report either way.
pub fn check_bytes(file: &str, bytes: &[u8]) -> (Option<Manifest>, CheckReport) {
    let mut report = CheckReport::new();
    if bytes.len() > MAX_MANIFEST_BYTES {
        let diagnostic = Diagnostic::for_file(
            Code::ManifestTooLarge,
            file,
            format!("`{file}` is {} bytes; the limit is {MAX_MANIFEST_BYTES} bytes", bytes.len()),
        )
        .with_next(format!("shrink `{file}`: it holds the app's contract only, not data"));
        report.push_error(diagnostic);
        return (None, report);
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => {
            report.push_error(not_utf8(file, bytes, error.valid_up_to()));
            return (None, report);
        }
    };
    // A byte-order mark is invisible in editors, so positions ignore it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let source = Source::new(file, text);
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(error) => {
            let message = format!("invalid TOML: {}", error.message().trim_end_matches('\n'));
            let diagnostic = match error.span() {
                Some(span) => source.diagnostic(Code::TomlSyntax, &span, message),
                None => Diagnostic::for_file(Code::TomlSyntax, file, message),
            };
            report.push_error(diagnostic);
            return (None, report);
        }
    };
    if root.get_ref().is_empty() {
        let diagnostic =
            Diagnostic::for_file(Code::ManifestEmpty, file, format!("`{file}` is empty: it has no tables or keys"))
                .with_next(format!(
                    "write a manifest (see {MANIFEST_DOC}); the smallest web app is:\n{MINIMAL_MANIFEST}"
                ));
        report.push_error(diagnostic);
        return (None, report);
    }
    let draft = read::read_document(&source, root.get_ref(), &mut report);
    rules::validate(&source, &draft, &mut report);
    let listed: Vec<Capability> = draft.listed_capabilities().iter().map(|item| item.value).collect();
    report.set_enabled_capabilities(&listed);
    report.sort_by_position();
    let manifest = if report.ok() { draft.into_manifest() } else { None };
    (manifest, report)
}

/// The report for a project without a manifest.
pub fn missing_manifest_report(file: &str) -> CheckReport {
    let mut report = CheckReport::new();
    let diagnostic = Diagnostic::for_file(
        Code::ManifestMissing,
        file,
        format!("`{file}` not found; every project needs one at its root"),
    )
    .with_next(format!("create {file} (reference: {MANIFEST_DOC}); the smallest web app is:\n{MINIMAL_MANIFEST}"));
    report.push_error(diagnostic);
    report
}

/// How a detected contract is named in diagnostics.
pub const DETECTED_FILE: &str = "tovuk.toml (detected)";

/// The contract of a project without `tovuk.toml`, deployed as `app`: detected from its
/// files (see [`detect`]) and checked like a written one; the report carries the detection.
pub fn check_detected(app: &str, root: &ProjectRoot) -> (Option<Manifest>, CheckReport) {
    match detect(app, root) {
        Err(not) => {
            let mut report = CheckReport::new();
            report.push_error(
                Diagnostic::for_file(Code::ManifestMissing, MANIFEST_FILE, not.message).with_next(not.next),
            );
            (None, report)
        }
        Ok(detection) => {
            let (manifest, mut report) = check_bytes(DETECTED_FILE, detection.manifest.as_bytes());
            for warning in &detection.warnings {
                report.push_warning(
                    Diagnostic::for_file(Code::DetectionLimit, DETECTED_FILE, warning.clone())
                        .with_next("write tovuk.toml (`tovuk init` starts from this detection) to decide it yourself"),
                );
            }
            report.set_detected(detection);
            (manifest, report)
        }
    }
}

/// `manifest_not_utf8`, pointing at the first bad byte and showing the
/// valid part of its line.
fn not_utf8(file: &str, bytes: &[u8], valid_up_to: usize) -> Diagnostic {
    let position = position_of_byte(bytes, valid_up_to);
    let line_start =
        bytes[..valid_up_to.min(bytes.len())].iter().rposition(|byte| *byte == b'\n').map_or(0, |newline| newline + 1);
    let line_prefix = String::from_utf8_lossy(&bytes[line_start..valid_up_to.min(bytes.len())]);
    let bad_byte = bytes.get(valid_up_to).copied().unwrap_or(0);
    Diagnostic {
        code: Code::ManifestNotUtf8,
        message: format!(
            "`{file}` is not valid UTF-8: byte 0x{bad_byte:02x} at line {} column {}",
            position.line, position.column
        ),
        file: file.to_owned(),
        line: Some(position.line),
        column: Some(position.column),
        next: Some(format!("save `{file}` as UTF-8")),
        snippet: Some(Snippet { text: format!("{line_prefix}\u{fffd}"), width: 1 }),
    }
}
