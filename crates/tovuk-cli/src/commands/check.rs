//! `tovuk check [DIR]`: the project contract check, local and offline (with the contract
//! detected when there is no `tovuk.toml`).

use super::{CliError, CommandResult};
use crate::args::{CheckArgs, GlobalArgs};
use crate::exit::ExitStatus;
use crate::{output, project_files};

pub(crate) fn run(args: &CheckArgs, global: &GlobalArgs) -> CommandResult {
    if !args.dir.is_dir() {
        return Err(
            CliError::usage(format!("`{}` is not a directory", args.dir.display())).next("tovuk check PROJECT_DIR")
        );
    }
    let crate::contract::Contract { manifest, mut report, display, .. } =
        crate::contract::read(&args.dir, args.app.as_deref())?;
    if let Some(manifest) = manifest {
        let declared = project_files::Declared::from_manifest(&manifest);
        let files = project_files::list(&args.dir, &declared).map_err(CliError::usage)?;
        tovuk_manifest::check_files(&mut report, &manifest, &display, &files);
    }

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

/// `tovuk init [DIR]`: writes the detected contract as `tovuk.toml`, never over one.
pub(crate) fn init(args: &crate::args::InitArgs, global: &GlobalArgs) -> CommandResult {
    let path = args.dir.join(tovuk_manifest::MANIFEST_FILE);
    if path.exists() {
        return Err(CliError::usage(format!("`{}` exists already; nothing was written", path.display()))
            .next("edit it, or check it with: tovuk check"));
    }
    let contract = crate::contract::read(&args.dir, args.app.as_deref())?;
    let (Some(detected), true) = (contract.report.detected(), contract.report.ok()) else {
        output::note(tovuk_manifest::render_human(&contract.report).trim_end());
        return Ok(ExitStatus::Failure);
    };
    // Created, not truncated: a file that appeared meanwhile is not overwritten.
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, detected.manifest.as_bytes()));
    written.map_err(|error| CliError::usage(format!("cannot write `{}`: {error}", path.display())))?;
    if global.json {
        output::json(&serde_json::json!({ "path": path, "detected": detected }));
    } else {
        output::note(tovuk_manifest::render_human(&contract.report).trim_end());
        output::line(format!("wrote {}: edit it, then commit it", path.display()));
    }
    Ok(ExitStatus::Success)
}
