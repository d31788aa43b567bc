//! The server config's `[build] env`: variables every build's phases get, set by the operator
//! (package index URLs, proxies, certificate paths), under the platform's own and the app's
//! `[build] secrets`.

use anyhow::{Context, bail};
use std::path::Path;

/// Names a build's environment sets itself: the operator cannot move them.
const PLATFORM_NAMES: [&str; 6] = ["PATH", "HOME", "TMPDIR", "LANG", "CI", "RUSTUP_HOME"];

/// `[build] env` of the server config at `file` (none without a file), checked whole.
pub(crate) fn read(file: Option<&Path>) -> anyhow::Result<Vec<(String, String)>> {
    let Some(file) = file else { return Ok(Vec::new()) };
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read the server config `{}`", file.display()))?;
    let config: toml::Table =
        text.parse().with_context(|| format!("the server config `{}` is not valid TOML", file.display()))?;
    let Some(build) = config.get("build") else { return Ok(Vec::new()) };
    let refuse = |why: String| anyhow::anyhow!("the server config is refused: [build] {why}; nothing was started");
    let Some(build) = build.as_table() else { return Err(refuse("must be a table".into())) };
    if let Some(key) = build.keys().find(|key| *key != "env") {
        bail!(refuse(format!(
            "has an unknown key `{key}`: it knows `env`, e.g. env = {{ PIP_INDEX_URL = \"https://pypi.internal/simple\" }}"
        )));
    }
    let Some(env) = build.get("env") else { return Ok(Vec::new()) };
    let Some(env) = env.as_table() else { return Err(refuse("env must be a table of NAME = \"value\"".into())) };
    let mut vars = Vec::new();
    for (name, value) in env {
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(refuse(format!("env name `{name}` is not a variable name (letters, digits, `_`)")));
        }
        if PLATFORM_NAMES.contains(&name.as_str()) || name.starts_with("TOVUK_") || name.starts_with("VARY_") {
            return Err(refuse(format!("env `{name}` is set by the platform for every build; leave it out")));
        }
        let Some(value) = value.as_str() else {
            return Err(refuse(format!("env `{name}` must be a string")));
        };
        vars.push((name.clone(), value.to_owned()));
    }
    Ok(vars)
}
