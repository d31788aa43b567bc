//! `tovuk config template|apply`: every name an app needs in one env file, filled in and
//! applied as one change (one release).

use super::env::invalid;
use super::{CliError, CommandResult};
use crate::args::{ConfigCommand, GlobalArgs};
use crate::exit::ExitStatus;
use crate::{connect, output};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tovuk_api_types::{EnvChangeRequest, EnvList, ErrorCode};
use tovuk_manifest::MANIFEST_FILE;
use tovuk_secrets::{EnvValue, TemplateEntry, parse_env_file, render_template};

/// A name the app needs, and where it is asked for.
struct Need {
    name: String,
    needed_by: &'static str,
}

pub(crate) async fn run(command: ConfigCommand, global: &GlobalArgs) -> CommandResult {
    let client = connect::client(global.target.as_deref())?;
    match command {
        ConfigCommand::Template { app, workdir } => {
            let needs = local_needs(workdir.as_deref())?;
            let list = client.list_env(&app).await?;
            output::line(render_template(&list.app, &template_entries(&list, needs.as_deref())).trim_end());
            if !global.json {
                output::note(format!("next: fill it in, then tovuk config apply {} --file {}.env", list.app, list.app));
            }
        }
        ConfigCommand::Apply { app, file, workdir, no_restart } => {
            let text = std::fs::read_to_string(&file).map_err(|error| {
                CliError::usage(format!("cannot read `{}`: {error}", file.display()))
                    .next(format!("tovuk config template {app} > {app}.env"))
            })?;
            let entries = parse_env_file(&text)
                .map_err(|error| invalid(format!("{}:{}: {}", file.display(), error.line, error.message)))?;
            let needs = local_needs(workdir.as_deref())?;
            let list = client.list_env(&app).await?;
            let required = required_names(&list, needs.as_deref());
            let mut set = BTreeMap::new();
            for entry in entries {
                let is_set = list.vars.iter().any(|var| var.name == entry.name);
                match entry.value {
                    EnvValue::Set(value) if value.is_empty() && required.contains(&entry.name) => {
                        return Err(empty_required(&file, entry.line, &entry.name, &app));
                    }
                    EnvValue::Set(value) => {
                        set.insert(entry.name, value.as_str().to_owned());
                    }
                    EnvValue::Keep if !is_set && required.contains(&entry.name) => {
                        return Err(empty_required(&file, entry.line, &entry.name, &app));
                    }
                    EnvValue::Keep => {}
                }
            }
            if set.is_empty() {
                if global.json {
                    output::json(&serde_json::json!({ "app": list.app, "change": null, "next": [] }));
                } else {
                    output::line(format!(
                        "nothing to apply: every name in `{}` is empty (kept as it is)",
                        file.display()
                    ));
                }
                return Ok(ExitStatus::Success);
            }
            let change = EnvChangeRequest { set, unset: Vec::new(), restart: !no_restart };
            let result = client.change_env(&app, &change).await?;
            if global.json {
                output::json(&result);
                return Ok(ExitStatus::Success);
            }
            output::line(format!(
                "applied `{}` to `{}` as one change: set {} (config revision {})",
                file.display(),
                result.app,
                result.change.set.join(", "),
                result.change.rev
            ));
            match &result.release {
                Some(release) => {
                    output::line(format!("releasing the current artifact with it as deploy {}", release.id))
                }
                None => output::note("nothing was restarted: the change reaches the app at its next deploy or restart"),
            }
            for next in &result.next {
                output::note(format!("next: {next}"));
            }
        }
    }
    Ok(ExitStatus::Success)
}

fn empty_required(file: &Path, line: usize, name: &str, app: &str) -> CliError {
    CliError::failed(
        ErrorCode::InvalidConfig,
        format!(
            "{}:{line}: `{name}` is required ([config] required) and has no value; nothing was applied",
            file.display()
        ),
    )
    .next(format!(
        "fill in {name}=... in {}, then tovuk config apply {app} --file {}",
        file.display(),
        file.display()
    ))
}

/// What the project's `tovuk.toml` needs set: from `--workdir`, else from the current
/// directory when it has one. `None` when there is no local contract to read.
fn local_needs(workdir: Option<&Path>) -> Result<Option<Vec<Need>>, CliError> {
    let dir = match workdir {
        Some(dir) => dir.to_owned(),
        None if Path::new(MANIFEST_FILE).exists() => PathBuf::from("."),
        None => return Ok(None),
    };
    let crate::contract::Contract { manifest, report, .. } = crate::contract::read(&dir, None)?;
    let Some(manifest) = manifest.filter(|_| report.ok()) else {
        return Err(CliError::failed(
            ErrorCode::CheckFailed,
            format!("{} in `{}` does not pass the contract check", MANIFEST_FILE, dir.display()),
        )
        .next(format!("tovuk check {}", dir.display())));
    };
    let mut needs: Vec<Need> = Vec::new();
    let required = manifest.required_config().iter().map(|name| (name, "[config] required"));
    let build = manifest.build().secrets.iter().map(|name| (name, "[build] secrets"));
    for (name, needed_by) in required.chain(build) {
        if !needs.iter().any(|need| &need.name == name) {
            needs.push(Need { name: name.clone(), needed_by });
        }
    }
    Ok(Some(needs))
}

/// Required names: the local contract's when there is one, plus what the server says the
/// latest deploy needs and lacks.
fn required_names(list: &EnvList, needs: Option<&[Need]>) -> Vec<String> {
    let mut names: Vec<String> = needs.unwrap_or_default().iter().map(|need| need.name.clone()).collect();
    names.extend(list.missing.iter().map(|missing| missing.name.clone()));
    names
}

/// Every name needed (local contract, else the latest deploy's missing ones), then every
/// other name already set, each with a comment saying what needs it and whether it is set.
fn template_entries(list: &EnvList, needs: Option<&[Need]>) -> Vec<TemplateEntry> {
    let mut entries: Vec<TemplateEntry> = Vec::new();
    let set_note = |name: &str| match list.vars.iter().find(|var| var.name == name) {
        Some(var) => format!("set (version {}, {}): leave empty to keep it", var.version, var.updated_at),
        None => "NOT SET: deploys are blocked until it is".to_owned(),
    };
    let needed: Vec<(String, String)> = match needs {
        Some(needs) => needs.iter().map(|need| (need.name.clone(), need.needed_by.to_owned())).collect(),
        None => list.missing.iter().map(|missing| (missing.name.clone(), missing.needed_by.clone())).collect(),
    };
    for (name, needed_by) in needed {
        let comment = format!("{name}: {needed_by} in tovuk.toml; {}", set_note(&name));
        entries.push(TemplateEntry { name, comment });
    }
    for var in &list.vars {
        if entries.iter().all(|entry| entry.name != var.name) {
            entries.push(TemplateEntry {
                name: var.name.clone(),
                comment: format!("{}: not named in tovuk.toml; {}", var.name, set_note(&var.name)),
            });
        }
    }
    entries
}
