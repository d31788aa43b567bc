//! The files of a project, as the platform would see them.
//!
//! In a git work tree that is what git tracks (a push sends exactly those). Elsewhere
//! it is what `tovuk deploy` would upload: every file, minus the built-in excludes for
//! generated output and secrets, which never leave the machine.

use std::path::Path;
use std::process::Command;

/// Lists `dir`'s files as `/`-separated paths relative to `dir`.
pub(crate) fn list(dir: &Path) -> Result<Vec<String>, String> {
    if let Some(tracked) = git_tracked(dir) {
        return Ok(tracked);
    }
    let mut files = Vec::new();
    walk(dir, "", &mut files).map_err(|error| format!("cannot list the files of `{}`: {error}", dir.display()))?;
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

fn walk(root: &Path, relative: &str, files: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(root.join(relative))? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        let path = if relative.is_empty() { name.clone() } else { format!("{relative}/{name}") };
        let file_type = entry.file_type()?;
        if name == ".git" || tovuk_manifest::is_default_excluded(&path, file_type.is_dir()) {
            continue;
        }
        if file_type.is_dir() {
            walk(root, &path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}
