//! The files of a project, as the platform would see them.
//!
//! In a git work tree that is what git tracks (a push sends exactly those). Elsewhere
//! it is what `tovuk deploy` would upload: every file, minus `.git/`, the built-in
//! excludes for generated output and secrets, and the patterns in `.tovukignore`.

#[cfg(test)]
pub(crate) mod tests;

use std::path::Path;
use std::process::Command;

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use tovuk_manifest::{MANIFEST_FILE, PathPatterns, is_default_excluded};

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
    let ignore_file = match std::fs::read_to_string(&ignore_path) {
        Ok(text) => IgnoreFile::parse(&text)?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => IgnoreFile::parse("")?,
        Err(error) => return Err(format!("cannot read `{}`: {error}", ignore_path.display())),
    };
    let invalid = |error: String| format!("tovuk.toml: {error}; fix `[build] include`/`exclude`");
    let selection = Selection {
        ignore_file,
        includes: PathPatterns::new(&declared.includes).map_err(invalid)?,
        excludes: PathPatterns::new(&declared.excludes).map_err(invalid)?,
    };
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
struct Selection {
    ignore_file: IgnoreFile,
    /// `[build] include` and a static root.
    includes: PathPatterns,
    /// `[build] exclude`.
    excludes: PathPatterns,
}

impl Selection {
    fn is_uploaded(&self, path: &str, is_dir: bool) -> bool {
        // The server needs the manifest, and the ignore file explains what is missing.
        if !is_dir && (path == MANIFEST_FILE || path == IGNORE_FILE) {
            return true;
        }
        // The built-in excludes act as the first lines of `.tovukignore`, so a `!` line
        // can ship, say, a prebuilt `dist/` on purpose (secrets that slip through are
        // still refused by the contract check).
        let declared_included = self.includes.matches(path);
        let excluded = self
            .ignore_file
            .verdict(path, is_dir)
            .unwrap_or_else(|| is_default_excluded(path, is_dir) && !declared_included);
        !excluded && !self.excludes.matches(path)
    }
}

fn walk(root: &Path, relative: &str, selection: &Selection, files: &mut Vec<String>) -> Result<(), String> {
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

/// The rules of `.tovukignore`, read with git's own semantics by the `ignore` crate: blank
/// lines, `#` comments, `\#`/`\!` escapes, `!`, leading and trailing `/`, `*`, `?`, `**`
/// and character classes.
pub(crate) struct IgnoreFile(Gitignore);

impl IgnoreFile {
    pub(crate) fn parse(text: &str) -> Result<IgnoreFile, String> {
        // Paths are matched relative to the project root.
        let mut builder = GitignoreBuilder::new("");
        for (line_idx, line) in text.lines().enumerate() {
            builder
                .add_line(None, line)
                .map_err(|error| format!("{IGNORE_FILE}:{}: {error}; fix or remove the line", line_idx + 1))?;
        }
        builder.build().map(IgnoreFile).map_err(|error| format!("{IGNORE_FILE}: {error}"))
    }

    /// What the last line matching `path` itself says: `Some(true)` excluded, `Some(false)`
    /// re-included by a `!` line, `None` no line matches. Its contents need no check: an
    /// excluded directory is not descended into, and a match on an ancestor must not make
    /// a `!` line re-include the files below it.
    pub(crate) fn verdict(&self, path: &str, is_dir: bool) -> Option<bool> {
        match self.0.matched(path, is_dir) {
            Match::Ignore(_) => Some(true),
            Match::Whitelist(_) => Some(false),
            Match::None => None,
        }
    }
}
