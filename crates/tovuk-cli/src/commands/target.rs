//! `tovuk target add|list|use|remove`: the platforms this CLI talks to.

use super::{CliError, CommandResult};
use crate::args::{GlobalArgs, TargetCommand};
use crate::config::{self, CliConfig, TargetEntry};
use crate::exit::ExitStatus;
use crate::output;
use serde::Serialize;
use std::io::Read;
use std::path::Path;
use tovuk_api_types::ErrorCode;

#[derive(Serialize)]
struct TargetView {
    name: String,
    url: String,
    current: bool,
    token_file: String,
    has_token: bool,
}

#[derive(Serialize)]
struct TargetList {
    current: Option<String>,
    targets: Vec<TargetView>,
    /// Set when `TOVUK_URL` or `TOVUK_TOKEN` override the targets in this environment.
    env_override: Vec<String>,
}

fn validate_url(url: &str) -> Result<String, CliError> {
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed.strip_prefix("http://").or_else(|| trimmed.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => Ok(trimmed.to_owned()),
        _ => Err(CliError::usage(format!(
            "`{url}` is not a platform URL: it must start with http:// or https:// and name a host"
        ))
        .next("tovuk target add prod --url https://tovuk.example.com --token-file PATH")),
    }
}

fn read_token(token_file: Option<&Path>) -> Result<String, CliError> {
    let (text, source) = match token_file {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|error| {
                CliError::usage(format!("cannot read the token file `{}`: {error}", path.display()))
            })?,
            format!("`{}`", path.display()),
        ),
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|error| CliError::usage(format!("cannot read the token from stdin: {error}")))?;
            (text, "stdin".to_owned())
        }
    };
    let token = text.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(CliError::usage(format!("{source} does not hold one token (it is empty or has several words)"))
            .next("tovuk token create > my.token, then --token-file my.token"));
    }
    Ok(token.to_owned())
}

pub(crate) fn run(command: TargetCommand, global: &GlobalArgs) -> CommandResult {
    let dir = config::config_dir();
    let mut cli_config = CliConfig::load(&dir).map_err(CliError::usage)?;
    match command {
        TargetCommand::Add { name, url, token_file, token_stdin: _, force } => {
            tovuk_types::validate_dns_label(&name)
                .map_err(|error| CliError::usage(format!("`{name}` cannot be a target name: {error}")))?;
            let url = validate_url(&url)?;
            if cli_config.targets.contains_key(&name) && !force {
                return Err(CliError::failed(ErrorCode::InvalidRequest, format!("target `{name}` already exists"))
                    .next(format!("tovuk target add {name} --url {url} ... --force")));
            }
            let token = read_token(token_file.as_deref())?;
            // Token first: a config entry never points at a token that was not written.
            config::write_private(&config::token_file(&dir, &name), format!("{token}\n").as_bytes())
                .map_err(CliError::usage)?;
            cli_config.targets.insert(name.clone(), TargetEntry { url: url.clone() });
            let made_current = cli_config.current.is_none();
            if made_current {
                cli_config.current = Some(name.clone());
            }
            cli_config.save(&dir).map_err(CliError::usage)?;
            if global.json {
                output::json(&view(&dir, &cli_config, &name, &url));
            } else {
                output::line(format!("added target `{name}` ({url})"));
                if made_current {
                    output::note(format!("`{name}` is now the current target"));
                } else {
                    output::note(format!("next: tovuk target use {name}"));
                }
            }
        }
        TargetCommand::List => {
            let targets: Vec<TargetView> =
                cli_config.targets.iter().map(|(name, entry)| view(&dir, &cli_config, name, &entry.url)).collect();
            let env_override: Vec<String> = ["TOVUK_URL", "TOVUK_TOKEN"]
                .into_iter()
                .filter(|var| std::env::var_os(var).is_some_and(|value| !value.is_empty()))
                .map(str::to_owned)
                .collect();
            if global.json {
                output::json(&TargetList { current: cli_config.current.clone(), targets, env_override });
                return Ok(ExitStatus::Success);
            }
            if targets.is_empty() {
                output::note("no targets yet; commands talk to the local server at http://127.0.0.1:7700");
                output::note("next: tovuk target add prod --url https://tovuk.example.com --token-file PATH");
            } else {
                let rows: Vec<Vec<String>> = targets
                    .iter()
                    .map(|target| {
                        vec![
                            if target.current { "*" } else { "" }.to_owned(),
                            target.name.clone(),
                            target.url.clone(),
                            if target.has_token { "yes" } else { "missing" }.to_owned(),
                        ]
                    })
                    .collect();
                output::line(output::table(&["", "NAME", "URL", "TOKEN"], &rows));
            }
            if !env_override.is_empty() {
                output::note(format!(
                    "{} set in the environment: it overrides the targets",
                    env_override.join(" and ")
                ));
            }
        }
        TargetCommand::Use { name } => {
            let Some(entry) = cli_config.targets.get(&name).cloned() else {
                return Err(unknown_target(&cli_config, &name));
            };
            cli_config.current = Some(name.clone());
            cli_config.save(&dir).map_err(CliError::usage)?;
            if global.json {
                output::json(&view(&dir, &cli_config, &name, &entry.url));
            } else {
                output::line(format!("now using target `{name}` ({})", entry.url));
            }
        }
        TargetCommand::Remove { name } => {
            let Some(entry) = cli_config.targets.remove(&name) else {
                return Err(unknown_target(&cli_config, &name));
            };
            if cli_config.current.as_deref() == Some(name.as_str()) {
                cli_config.current = None;
            }
            cli_config.save(&dir).map_err(CliError::usage)?;
            let _ = std::fs::remove_file(config::token_file(&dir, &name));
            if global.json {
                output::json(&serde_json::json!({ "removed": name, "url": entry.url }));
            } else {
                output::line(format!("removed target `{name}`"));
            }
        }
    }
    Ok(ExitStatus::Success)
}

fn view(dir: &Path, cli_config: &CliConfig, name: &str, url: &str) -> TargetView {
    let token_file = config::token_file(dir, name);
    TargetView {
        name: name.to_owned(),
        url: url.to_owned(),
        current: cli_config.current.as_deref() == Some(name),
        has_token: token_file.exists(),
        token_file: token_file.display().to_string(),
    }
}

/// Naming a target the config does not have is a usage error, wherever it is named.
pub(crate) fn unknown_target(cli_config: &CliConfig, name: &str) -> CliError {
    let known: Vec<&str> = cli_config.targets.keys().map(String::as_str).collect();
    let known = if known.is_empty() { "none yet".to_owned() } else { known.join(", ") };
    CliError::usage(format!("there is no target `{name}` (known: {known})"))
        .next(format!("tovuk target add {name} --url URL --token-file PATH"))
}
