//! Release-mode hygiene of the tracked files: secrets and generated output must not ship in the deploy archive.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use crate::glob::PathPatterns;
use crate::report::{CheckReport, Diagnostic};
use crate::{Code, Manifest};

/// Directories that hold build output or installed dependencies; the
/// builder recreates them, so tracking them bloats and staleness-proofs nothing.
const GENERATED_DIRS: [&str; 7] = ["target", "node_modules", "dist", "build", "__pycache__", ".venv", ".next"];
/// Compiled files, reported per directory and extension rather than one by one.
const COMPILED_EXTENSIONS: [&str; 3] = ["pyc", "o", "class"];
/// The development config file of Heroku-style projects: never shipped, only warned about.
pub const DOTENV: &str = ".env";

/// `.env.*` files that are templates by convention and hold no secrets.
const ENV_TEMPLATES: [&str; 3] = [".env.example", ".env.sample", ".env.template"];

/// The deepest a tracked path may be, in components.
pub const MAX_PATH_DEPTH: usize = 64;
/// The longest a tracked path may be, in bytes.
pub const MAX_PATH_BYTES: usize = 4096;

/// Checks the project's tracked files (relative, `/`-separated) for what
/// must not ship: secret-looking files are errors (`secret_file_tracked`),
/// generated output is a warning (`generated_output_tracked`, one per
/// directory), a path past the depth or length limit is an error
/// (`path_too_deep`: every build checks out the whole tree). A path matched by
/// `[build] include` or `exclude` is left alone for the first two, since the
/// manifest already says what to do with it; generated output inside a static
/// app's root is shipped on purpose. `file` is the manifest's display path,
/// named in the fixes.
pub fn check_files(report: &mut CheckReport, manifest: &Manifest, file: &str, tracked_files: &[String]) {
    let build = manifest.build();
    let static_root = manifest.static_root().filter(|root| !matches!(*root, "." | "./" | ""));
    let patterns: Vec<&String> = build.include.iter().chain(&build.exclude).collect();
    // The manifest's patterns were checked when it was read; one that is not is ignored here.
    let declared_patterns = PathPatterns::new(&patterns).ok();
    let declared = |path: &str| declared_patterns.as_ref().is_some_and(|patterns| patterns.matches(path));
    // A static app's root is shipped on purpose even when it is called `dist`;
    // secrets inside it are still reported, since the router would serve them.
    let in_static_root = |path: &str| {
        static_root.is_some_and(|root| {
            let root = root.trim_start_matches("./").trim_end_matches('/');
            path == root || path.strip_prefix(root).is_some_and(|rest| rest.starts_with('/'))
        })
    };
    let paths: BTreeSet<&str> = tracked_files
        .iter()
        .map(|path| path.strip_prefix("./").unwrap_or(path))
        .filter(|path| !path.is_empty())
        .collect();

    // One report for the first path past a limit: a pathological tree has thousands.
    if let Some(path) =
        paths.iter().find(|path| path.split('/').count() > MAX_PATH_DEPTH || path.len() > MAX_PATH_BYTES)
    {
        report.push_error(
            Diagnostic::for_file(
                Code::PathTooDeep,
                path,
                format!(
                    "`{}` is {} directories deep and {} bytes long; a tracked path may be at most {MAX_PATH_DEPTH} deep and {MAX_PATH_BYTES} bytes long",
                    path.chars().take(80).collect::<String>(),
                    path.split('/').count(),
                    path.len()
                ),
            )
            .with_next("move the files to a shallower directory, or remove them from git"),
        );
    }
    let mut generated_dirs: BTreeMap<String, usize> = BTreeMap::new();
    let mut compiled: BTreeMap<(String, &'static str), usize> = BTreeMap::new();
    for path in &paths {
        if declared(path) {
            continue;
        }
        let components: Vec<&str> = path.split('/').collect();
        let file_name = components.last().copied().unwrap_or(path);
        if file_name == DOTENV {
            // The dev-only file of Heroku-style templates: it stays out of the artifact.
            report.push_warning(
                Diagnostic::for_file(
                    Code::DotenvLeftOut,
                    path,
                    format!("`{path}` is tracked; it is left out of the artifact (a development file): the app gets its config from `tovuk env set`"),
                )
                .with_next(format!("git rm --cached {} && echo .env >> .gitignore", shell_quote(path))),
            );
            continue;
        }
        if is_secret_name(file_name) {
            report.push_error(secret_diagnostic(path, file));
            continue;
        }
        if in_static_root(path) {
            continue;
        }
        let dirs = &components[..components.len().saturating_sub(1)];
        if let Some(dir_idx) = dirs.iter().position(|dir| GENERATED_DIRS.contains(dir)) {
            *generated_dirs.entry(components[..=dir_idx].join("/")).or_default() += 1;
            continue;
        }
        if let Some(extension) = compiled_extension(file_name) {
            *compiled.entry((dirs.join("/"), extension)).or_default() += 1;
        }
    }
    for (dir, n_files) in generated_dirs {
        let diagnostic = Diagnostic::for_file(
            Code::GeneratedOutputTracked,
            &format!("{dir}/"),
            format!(
                "`{dir}/` is generated output and {} tracked; the builder recreates it, so it should not ship (list it in [build] include in {file} if it is shipped on purpose)",
                files_are(n_files)
            ),
        )
        .with_next(format!(
            "git rm -r --cached {} && echo {} >> .gitignore",
            shell_quote(&dir),
            shell_quote(&format!("{dir}/"))
        ));
        report.push_warning(diagnostic);
    }
    for ((dir, extension), n_files) in compiled {
        let pattern = if dir.is_empty() { format!("*.{extension}") } else { format!("{dir}/*.{extension}") };
        let shown_dir = if dir.is_empty() { "the project root".to_owned() } else { format!("`{dir}/`") };
        let diagnostic = Diagnostic::for_file(
            Code::GeneratedOutputTracked,
            &pattern,
            format!(
                "{n_files} compiled `*.{extension}` {} tracked in {shown_dir}; compiled files are build output",
                if n_files == 1 { "file is" } else { "files are" }
            ),
        )
        .with_next(format!(
            "git rm --cached {} && echo {} >> .gitignore",
            shell_quote(&pattern),
            shell_quote(&format!("*.{extension}"))
        ));
        report.push_warning(diagnostic);
    }
}

fn files_are(n_files: usize) -> String {
    if n_files == 1 { "1 file in it is".to_owned() } else { format!("{n_files} files in it are") }
}

fn secret_diagnostic(path: &str, manifest_file: &str) -> Diagnostic {
    Diagnostic::for_file(
        Code::SecretFileTracked,
        path,
        format!(
            "`{path}` looks like a secret and is tracked, so it would ship in the deploy archive; store its values with `tovuk env set` (or add it to [build] exclude in {manifest_file})"
        ),
    )
    .with_next(format!(
        "git rm --cached {} && echo {} >> .gitignore",
        shell_quote(path),
        shell_quote(path)
    ))
}

/// Whether a path is left out of an upload by default: secrets, generated directories and
/// compiled files never leave the machine unless a project says otherwise. `path` is
/// relative and `/`-separated; `is_dir` says whether it names a directory.
pub fn is_default_excluded(path: &str, is_dir: bool) -> bool {
    let file_name = path.rsplit('/').next().unwrap_or(path);
    if is_dir {
        GENERATED_DIRS.contains(&file_name)
    } else {
        is_secret_name(file_name) || compiled_extension(file_name).is_some()
    }
}

/// File names that usually hold credentials or private keys.
pub(crate) fn is_secret_name(file_name: &str) -> bool {
    let name = file_name.to_ascii_lowercase();
    if name == ".env" {
        return true;
    }
    if name.starts_with(".env.") {
        return !ENV_TEMPLATES.contains(&name.as_str());
    }
    if name.ends_with(".pem") || name.ends_with(".key") || name.ends_with(".p12") {
        return true;
    }
    if (name.starts_with("id_rsa") || name.starts_with("id_ed25519")) && !name.ends_with(".pub") {
        // `id_rsa.pub` is the public half and safe to share.
        return true;
    }
    name.starts_with("credentials") && name.ends_with(".json")
}

fn compiled_extension(file_name: &str) -> Option<&'static str> {
    let (_, extension) = file_name.rsplit_once('.')?;
    COMPILED_EXTENSIONS.into_iter().find(|known| *known == extension)
}

/// Quotes a path for a POSIX shell only when it needs it, so common fixes stay readable.
fn shell_quote(text: &str) -> String {
    let plain =
        text.chars().all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-' | '/' | '+' | '@' | ','));
    if plain && !text.is_empty() { text.to_owned() } else { format!("'{}'", text.replace('\'', r"'\''")) }
}
