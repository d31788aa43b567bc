//! `tovuk check [DIR]`: the project contract check, local and offline.

use super::{CliError, CommandResult};
use crate::args::{CheckArgs, GlobalArgs};
use crate::exit::ExitStatus;
use crate::{output, project_files};
use std::io::Read;
use tovuk_manifest::{MANIFEST_FILE, MAX_MANIFEST_BYTES};

pub(crate) fn run(args: &CheckArgs, global: &GlobalArgs) -> CommandResult {
    if !args.dir.is_dir() {
        return Err(
            CliError::usage(format!("`{}` is not a directory", args.dir.display())).next("tovuk check PROJECT_DIR")
        );
    }
    let path = args.dir.join(MANIFEST_FILE);
    // The name diagnostics use: as the user would type it from here.
    let display =
        if args.dir == std::path::Path::new(".") { MANIFEST_FILE.to_owned() } else { path.display().to_string() };

    let report = match std::fs::File::open(&path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => tovuk_manifest::missing_manifest_report(&display),
        Err(error) => return Err(CliError::usage(format!("cannot read `{display}`: {error}"))),
        Ok(file) => {
            // Read one byte past the limit so an oversized file is reported, not loaded.
            let mut bytes = Vec::new();
            file.take(MAX_MANIFEST_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
                .map_err(|error| CliError::usage(format!("cannot read `{display}`: {error}")))?;
            let (manifest, mut report) = tovuk_manifest::check_bytes(&display, &bytes);
            if let Some(manifest) = manifest {
                let declared = project_files::Declared::from_manifest(&manifest);
                let files = project_files::list(&args.dir, &declared).map_err(CliError::usage)?;
                tovuk_manifest::check_files(&mut report, &manifest, &display, &files);
            }
            report
        }
    };

    if global.json {
        output::json(&report);
    } else if report.ok() {
        let rendered = tovuk_manifest::render_human(&report);
        if !rendered.trim().is_empty() {
            output::note(rendered.trim_end());
        }
        output::line(format!("{display}: ok"));
    } else {
        output::note(tovuk_manifest::render_human(&report).trim_end());
    }
    Ok(if report.ok() { ExitStatus::Success } else { ExitStatus::Failure })
}
