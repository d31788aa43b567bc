//! A project's contract as the platform reads it: `tovuk.toml`, or when there is none the
//! contract detected from the project's own files (`Procfile`, `package.json`, ...).

use crate::commands::CliError;
use std::io::Read;
use std::path::Path;
use tovuk_manifest::{CheckReport, MANIFEST_FILE, MAX_MANIFEST_BYTES, Manifest, ProjectRoot};

/// The contract of the project at `dir` and how it was checked.
pub(crate) struct Contract {
    pub manifest: Option<Manifest>,
    pub report: CheckReport,
    /// The manifest's text: the file's, or the detected one.
    pub text: Option<String>,
    /// How diagnostics name the manifest.
    pub display: String,
}

/// Reads `dir`'s contract. `app` names the app a detected contract deploys as; without
/// one, the directory's name is used.
pub(crate) fn read(dir: &Path, app: Option<&str>) -> Result<Contract, CliError> {
    let path = dir.join(MANIFEST_FILE);
    // The name diagnostics use: as the user would type it from here.
    let display = if dir == Path::new(".") { MANIFEST_FILE.to_owned() } else { path.display().to_string() };
    match std::fs::File::open(&path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let app = match app {
                Some(app) => app.to_owned(),
                None => directory_app_name(dir),
            };
            let root = project_root(dir)?;
            let (manifest, report) = tovuk_manifest::check_detected(&app, &root);
            let text = report.detected().map(|detected| detected.manifest.clone());
            Ok(Contract { manifest, report, text, display: tovuk_manifest::DETECTED_FILE.to_owned() })
        }
        Err(error) => Err(CliError::usage(format!("cannot read `{display}`: {error}"))),
        Ok(file) => {
            // One byte past the limit, so an oversized file is reported, not loaded.
            let mut bytes = Vec::new();
            file.take(MAX_MANIFEST_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
                .map_err(|error| CliError::usage(format!("cannot read `{display}`: {error}")))?;
            let (manifest, report) = tovuk_manifest::check_bytes(&display, &bytes);
            let text = String::from_utf8(bytes).ok();
            Ok(Contract { manifest, report, text, display })
        }
    }
}

/// The names at `dir`'s top and the detection files among them, read capped.
fn project_root(dir: &Path) -> Result<ProjectRoot, CliError> {
    let entries =
        std::fs::read_dir(dir).map_err(|error| CliError::usage(format!("cannot list `{}`: {error}", dir.display())))?;
    let names = entries.flatten().filter_map(|entry| entry.file_name().into_string().ok()).collect();
    let mut root = ProjectRoot::with_names(names);
    for file in root.wanted() {
        let mut bytes = Vec::new();
        std::fs::File::open(dir.join(file))
            .and_then(|opened| opened.take(MAX_MANIFEST_BYTES as u64).read_to_end(&mut bytes))
            .map_err(|error| CliError::usage(format!("cannot read `{}`: {error}", dir.join(file).display())))?;
        root.files.insert(file.to_owned(), bytes);
    }
    Ok(root)
}

/// The directory's name as an app name: lowercase, `-` for anything else.
fn directory_app_name(dir: &Path) -> String {
    let absolute = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    let name = absolute.file_name().map(|name| name.to_string_lossy().to_lowercase()).unwrap_or_default();
    let name: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let name = name.trim_matches('-').chars().take(63).collect::<String>();
    if name.is_empty() { "my-app".to_owned() } else { name }
}
