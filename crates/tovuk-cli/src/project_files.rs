//! The files of a project, as the platform would see them.
//!
//! In a git work tree that is what git tracks (a push sends exactly those). Elsewhere
//! it is what `tovuk deploy` would upload: every file, minus `.git/`, the built-in
//! excludes for generated output and secrets, and the patterns in `.tovukignore`.

#[cfg(test)]
pub(crate) mod tests;

use std::path::Path;
use std::process::Command;

use tovuk_manifest::{MANIFEST_FILE, is_default_excluded, pattern_matches};

/// The project's ignore file: gitignore syntax, read from the project root only.
pub(crate) const IGNORE_FILE: &str = ".tovukignore";

/// What a project's contract says about its files.
#[derive(Debug, Default, Clone)]
pub(crate) struct Declared {
    /// `[build] exclude`: never uploaded.
    pub excludes: Vec<String>,
    /// `[build] include` and a static app's root: shipped on purpose, even when the
    /// built-in excludes would leave them out (a prebuilt `dist/`, say).
    pub includes: Vec<String>,
}

impl Declared {
    pub(crate) fn from_manifest(manifest: &tovuk_manifest::Manifest) -> Declared {
        let build = manifest.build();
        let mut includes = build.include.clone();
        if let Some(root) = manifest.static_root().filter(|root| !matches!(*root, "." | "./" | "")) {
            includes.push(root.to_owned());
        }
        Declared { excludes: build.exclude.clone(), includes }
    }
}

/// Lists `dir`'s files as `/`-separated paths relative to `dir`.
pub(crate) fn list(dir: &Path, declared: &Declared) -> Result<Vec<String>, String> {
    if let Some(tracked) = git_tracked(dir) {
        return Ok(tracked);
    }
    // The same selection `tovuk deploy` uploads, so `tovuk check` reports on what would ship.
    upload_files(dir, declared)
}

/// What `tovuk deploy` uploads from `dir`: every file (tracked or not, git is not
/// consulted), minus `.git/`, the built-in excludes (`tovuk_manifest::is_default_excluded`),
/// the patterns in `dir/.tovukignore`, and `declared.excludes` (`[build] exclude`);
/// `declared.includes` lifts the built-in excludes.
/// Sorted, `/`-separated, relative.
///
/// Symlinks are listed as files and never followed. Sockets, fifos and devices are
/// skipped: they cannot be uploaded, and git would not track them either.
pub(crate) fn upload_files(dir: &Path, declared: &Declared) -> Result<Vec<String>, String> {
    let ignore_path = dir.join(IGNORE_FILE);
    let ignore_rules = match std::fs::read_to_string(&ignore_path) {
        Ok(text) => parse_ignore(&text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(format!("cannot read `{}`: {error}", ignore_path.display())),
    };
    let selection = Selection { ignore_rules, declared };
    let mut files = Vec::new();
    walk(dir, "", &selection, &mut files)?;
    files.sort();
    Ok(files)
}

/// `git ls-files` when `dir` is inside a work tree and git is installed, else `None`.
fn git_tracked(dir: &Path) -> Option<Vec<String>> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["ls-files", "-z", "--cached", "--full-name", "--", "."])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let prefix = Command::new("git").arg("-C").arg(dir).args(["rev-parse", "--show-prefix"]).output().ok()?;
    let prefix = String::from_utf8(prefix.stdout).ok()?.trim_end().to_owned();
    let files = output
        .stdout
        .split(|byte| *byte == 0)
        .filter(|path| !path.is_empty())
        .filter_map(|path| std::str::from_utf8(path).ok())
        .filter_map(|path| path.strip_prefix(prefix.as_str()).map(str::to_owned))
        .collect();
    Some(files)
}

/// Decides, path by path, what is uploaded.
struct Selection<'a> {
    ignore_rules: Vec<IgnoreRule>,
    declared: &'a Declared,
}

impl Selection<'_> {
    fn is_uploaded(&self, path: &str, is_dir: bool) -> bool {
        // The server needs the manifest, and the ignore file explains what is missing.
        if !is_dir && (path == MANIFEST_FILE || path == IGNORE_FILE) {
            return true;
        }
        // The built-in excludes act as the first lines of `.tovukignore`, so a `!` line
        // can ship, say, a prebuilt `dist/` on purpose (secrets that slip through are
        // still refused by the contract check).
        let declared_included = self.declared.includes.iter().any(|pattern| pattern_matches(pattern, path));
        let mut excluded = is_default_excluded(path, is_dir) && !declared_included;
        for rule in &self.ignore_rules {
            if rule.matches(path, is_dir) {
                excluded = !rule.negated;
            }
        }
        !excluded && !self.declared.excludes.iter().any(|pattern| pattern_matches(pattern, path))
    }
}

fn walk(root: &Path, relative: &str, selection: &Selection<'_>, files: &mut Vec<String>) -> Result<(), String> {
    let dir = root.join(relative);
    let cannot_list = |error: std::io::Error| format!("cannot list the files of `{}`: {error}", dir.display());
    for entry in std::fs::read_dir(&dir).map_err(cannot_list)? {
        let entry = entry.map_err(cannot_list)?;
        let file_name = entry.file_name();
        // Matching uses the lossy name so a pattern can still exclude a badly named file.
        let name = file_name.to_string_lossy();
        if name == ".git" {
            continue;
        }
        let path = if relative.is_empty() { name.to_string() } else { format!("{relative}/{name}") };
        // Not followed: a symlink to a directory is a symlink here.
        let file_type = entry.file_type().map_err(cannot_list)?;
        let is_dir = file_type.is_dir();
        if !(is_dir || file_type.is_file() || file_type.is_symlink()) {
            continue;
        }
        if !selection.is_uploaded(&path, is_dir) {
            continue;
        }
        if file_name.to_str().is_none() {
            return Err(format!(
                "cannot upload `{}`: its name is not valid UTF-8; rename it or exclude it in `{IGNORE_FILE}`",
                entry.path().display()
            ));
        }
        if is_dir {
            walk(root, &path, selection, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

/// One line of `.tovukignore`.
#[derive(Debug, PartialEq, Eq)]
struct IgnoreRule {
    /// `!pattern`: re-includes what an earlier line excluded.
    negated: bool,
    /// `pattern/`: matches directories only (and so everything under them).
    dir_only: bool,
    /// A leading or inner `/`: matched against the whole path from the root;
    /// otherwise against the last component, at any depth.
    anchored: bool,
    parts: Vec<String>,
}

/// Parses gitignore syntax: blank lines, `#` comments, `\#`/`\!` escapes, `!`, leading
/// and trailing `/`, `*`, `?` and `**`. Character classes are not supported.
fn parse_ignore(text: &str) -> Vec<IgnoreRule> {
    let mut rules = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (negated, line) = match line.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, line.strip_prefix('\\').unwrap_or(line)),
        };
        let dir_only = line.ends_with('/');
        let line = line.trim_end_matches('/');
        let anchored = line.contains('/');
        let parts: Vec<String> =
            line.split('/').filter(|part| !part.is_empty() && *part != ".").map(str::to_owned).collect();
        if parts.is_empty() {
            continue;
        }
        rules.push(IgnoreRule { negated, dir_only, anchored, parts });
    }
    rules
}

impl IgnoreRule {
    /// Whether the rule matches `path` itself. Its contents need no check: an excluded
    /// directory is not descended into, and a match on an ancestor must not make a
    /// `!` line re-include the files below it.
    fn matches(&self, path: &str, is_dir: bool) -> bool {
        if self.dir_only && !is_dir {
            return false;
        }
        let path_parts: Vec<&str> = path.split('/').collect();
        if self.anchored {
            return match_parts(&self.parts, &path_parts);
        }
        path_parts.last().is_some_and(|name| match_component(&self.parts[0], name))
    }
}

/// Whole-component matching with `**`, by dynamic programming so a pattern like
/// `**/**/**/x` cannot cost exponential time.
fn match_parts(pattern: &[String], path: &[&str]) -> bool {
    let width = path.len() + 1;
    // matches[i * width + j]: pattern[i..] matches path[j..].
    let mut matches = vec![false; (pattern.len() + 1) * width];
    matches[pattern.len() * width + path.len()] = true;
    for i in (0..pattern.len()).rev() {
        for j in (0..=path.len()).rev() {
            matches[i * width + j] = if pattern[i] == "**" && i + 1 == pattern.len() {
                // A trailing `/**` matches what is inside, not the directory itself.
                j < path.len()
            } else if pattern[i] == "**" {
                matches[(i + 1) * width + j] || (j < path.len() && matches[i * width + j + 1])
            } else {
                j < path.len() && match_component(&pattern[i], path[j]) && matches[(i + 1) * width + j + 1]
            };
        }
    }
    matches[0]
}

/// `*` and `?` within one component, exactly as `[build] exclude` matches them.
fn match_component(pattern: &str, name: &str) -> bool {
    // Neither side contains `/`, and `parse_ignore` drops `.` parts, so the manifest's
    // matcher compares exactly these two components.
    pattern_matches(pattern, name)
}
