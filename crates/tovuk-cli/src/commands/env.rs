//! `tovuk env set|unset|list|history`: an app's secrets and config. Values go to the
//! server in the change request and are never printed; everything checked before sending.

use super::{CliError, CommandResult};
use crate::args::{EnvCommand, GlobalArgs};
use crate::exit::ExitStatus;
use crate::{connect, output};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::Path;
use tovuk_api_types::{EnvChangeRequest, EnvChangeResult, ErrorCode, TokenMention};
use tovuk_secrets::{MAX_VALUE_BYTES, validate_name, validate_value};

pub(crate) async fn run(command: EnvCommand, global: &GlobalArgs) -> CommandResult {
    match command {
        EnvCommand::Set { app, assignments, from_file, no_restart } => {
            let set = values_to_set(&assignments, from_file.as_deref())?;
            let change = EnvChangeRequest { set, unset: Vec::new(), restart: !no_restart };
            let client = connect::client(global.target.as_deref())?;
            let result = client.change_env(&app, &change).await?;
            print_change(&result, global);
        }
        EnvCommand::Unset { app, names, no_restart } => {
            for name in &names {
                validate_name(name).map_err(|error| invalid(error.to_string()))?;
            }
            let change = EnvChangeRequest { set: BTreeMap::new(), unset: names, restart: !no_restart };
            let client = connect::client(global.target.as_deref())?;
            let result = client.change_env(&app, &change).await?;
            print_change(&result, global);
        }
        EnvCommand::List { app } => {
            let client = connect::client(global.target.as_deref())?;
            let list = client.list_env(&app).await?;
            if global.json {
                output::json(&list);
                return Ok(ExitStatus::Success);
            }
            if list.vars.is_empty() {
                output::line(format!("no config is set on `{}`", list.app));
            } else {
                let rows: Vec<Vec<String>> = list
                    .vars
                    .iter()
                    .map(|var| {
                        vec![
                            var.name.clone(),
                            var.version.to_string(),
                            var.updated_at.clone(),
                            by(var.updated_by.as_ref()),
                            var.created_at.clone(),
                        ]
                    })
                    .collect();
                output::line(output::table(&["NAME", "VERSION", "UPDATED", "BY", "CREATED"], &rows));
            }
            if !list.missing.is_empty() {
                output::note("not set, and the latest deploy needs it:");
                for missing in &list.missing {
                    output::note(format!("  {} ({}): {}", missing.name, missing.needed_by, missing.next));
                }
            }
        }
        EnvCommand::History { app } => {
            let client = connect::client(global.target.as_deref())?;
            let history = client.env_history(&app).await?;
            if global.json {
                output::json(&history);
                return Ok(ExitStatus::Success);
            }
            if history.changes.is_empty() {
                output::line(format!("no config changes on `{}` yet", history.app));
                output::note(format!("next: tovuk env set {} NAME=VALUE", history.app));
                return Ok(ExitStatus::Success);
            }
            let rows: Vec<Vec<String>> = history
                .changes
                .iter()
                .map(|change| {
                    vec![
                        change.rev.to_string(),
                        change.at.clone(),
                        by(change.by.as_ref()),
                        dash_if_empty(change.set.join(" ")),
                        dash_if_empty(change.unset.join(" ")),
                        output::or_dash(change.release_deploy_id.as_deref()),
                    ]
                })
                .collect();
            output::line(output::table(&["REV", "AT", "BY", "SET", "UNSET", "RELEASE"], &rows));
        }
    }
    Ok(ExitStatus::Success)
}

fn dash_if_empty(text: String) -> String {
    if text.is_empty() { "-".to_owned() } else { text }
}

fn by(token: Option<&TokenMention>) -> String {
    match token {
        Some(TokenMention { id, name: Some(name) }) => format!("{name} ({id})"),
        Some(TokenMention { id, name: None }) => id.clone(),
        None => "-".to_owned(),
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> CliError {
    CliError::failed(ErrorCode::InvalidConfig, message).next("tovuk env set --help")
}

/// The names and values `tovuk env set` was given: all `NAME=VALUE`, or one `NAME` whose
/// value comes from `--from-file` or stdin. Every one checked before anything is sent.
fn values_to_set(assignments: &[String], from_file: Option<&Path>) -> Result<BTreeMap<String, String>, CliError> {
    let mut set = BTreeMap::new();
    let bare: Vec<&String> = assignments.iter().filter(|assignment| !assignment.contains('=')).collect();
    if let Some(path) = from_file {
        let [name] = assignments else {
            return Err(CliError::usage("--from-file reads one value: give exactly one NAME")
                .next("tovuk env set APP NAME --from-file PATH"));
        };
        if name.contains('=') {
            return Err(CliError::usage(format!(
                "`{}` has a value inline and --from-file gives another; give one",
                name.split('=').next().unwrap_or_default()
            ))
            .next("tovuk env set APP NAME --from-file PATH"));
        }
        validate_name(name).map_err(|error| invalid(error.to_string()))?;
        let value = read_value_file(path, name)?;
        validate_value(name, &value).map_err(|error| invalid(error.to_string()))?;
        set.insert(name.clone(), value);
        return Ok(set);
    }
    if let [name] = bare.as_slice() {
        if assignments.len() > 1 {
            return Err(CliError::usage(format!(
                "`{name}` has no value: give NAME=VALUE for each, or one NAME alone to read its value from stdin"
            ))
            .next(format!("tovuk env set APP {name}=VALUE")));
        }
        validate_name(name).map_err(|error| invalid(error.to_string()))?;
        let value = read_value_stdin(name)?;
        validate_value(name, &value).map_err(|error| invalid(error.to_string()))?;
        set.insert((*name).clone(), value);
        return Ok(set);
    }
    if let Some(name) = bare.first() {
        return Err(CliError::usage(format!("`{name}` has no value: give NAME=VALUE"))
            .next(format!("tovuk env set APP {name}=VALUE")));
    }
    for assignment in assignments {
        let (name, value) = assignment.split_once('=').unwrap_or((assignment, ""));
        validate_name(name).map_err(|error| invalid(error.to_string()))?;
        validate_value(name, value).map_err(|error| invalid(error.to_string()))?;
        if set.insert(name.to_owned(), value.to_owned()).is_some() {
            return Err(CliError::usage(format!("`{name}` is given twice; give it once")));
        }
    }
    Ok(set)
}

/// One trailing newline is what `echo` and editors add; the value is the line before it.
fn without_final_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

/// Inputs past this are refused unread: a value holds at most 64 KiB anyway.
const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

fn read_value_file(path: &Path, name: &str) -> Result<String, CliError> {
    let unreadable = |error: std::io::Error| {
        CliError::usage(format!("cannot read the value of `{name}` from `{}`: {error}", path.display()))
            .next(format!("tovuk env set APP {name} --from-file PATH (a file that exists)"))
    };
    let size = std::fs::metadata(path).map_err(unreadable)?.len();
    if size > MAX_INPUT_BYTES {
        return Err(invalid(format!(
            "`{}` is {size} bytes; a value of `{name}` holds at most {MAX_VALUE_BYTES} (64 KiB): keep large values in a file or object storage and put its location in the variable",
            path.display()
        )));
    }
    let bytes = std::fs::read(path).map_err(unreadable)?;
    value_text(bytes, name, &format!("`{}`", path.display()))
}

fn value_text(bytes: Vec<u8>, name: &str, from: &str) -> Result<String, CliError> {
    let text = String::from_utf8(bytes).map_err(|_| {
        invalid(format!("the value of `{name}` in {from} is not UTF-8 text; base64-encode binary values"))
    })?;
    Ok(without_final_newline(text))
}

fn read_value_stdin(name: &str) -> Result<String, CliError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return crate::prompt::hidden_line(&format!("value for {name} (not shown): "))
            .map_err(|error| CliError::usage(format!("cannot read the value of `{name}` from the terminal: {error}")));
    }
    let mut bytes = Vec::new();
    stdin
        .lock()
        .take(MAX_INPUT_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|error| CliError::usage(format!("cannot read the value of `{name}` from stdin: {error}")))?;
    value_text(bytes, name, "stdin")
}

/// Prints what a change did and what to run next.
fn print_change(result: &EnvChangeResult, global: &GlobalArgs) {
    if global.json {
        output::json(result);
        return;
    }
    let change = &result.change;
    if !change.set.is_empty() {
        output::line(format!("set {} on `{}`", change.set.join(", "), result.app));
    }
    if !change.unset.is_empty() {
        output::line(format!("unset {} on `{}`", change.unset.join(", "), result.app));
    }
    output::line(format!("config revision {}", change.rev));
    match &result.release {
        Some(release) => {
            output::line(format!("releasing the current artifact with it as deploy {} (no rebuild)", release.id))
        }
        None => output::note("nothing was restarted: the change reaches the app at its next deploy or restart"),
    }
    for next in &result.next {
        output::note(format!("next: {next}"));
    }
}
