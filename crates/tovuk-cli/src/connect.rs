//! Which platform a command talks to, and with which token.
//!
//! Precedence, per part: `TOVUK_URL` / `TOVUK_TOKEN`, then `--target NAME`, then the
//! current target, then the local server (`tovuk server` with its default data dir,
//! whose `admin.token` is read when this user can read it).

use crate::commands::CliError;
use crate::commands::target::unknown_target;
use crate::config::{self, CliConfig};
use tovuk_client::Client;

pub(crate) const LOCAL_URL: &str = "http://127.0.0.1:7700";

fn env_value(var: &str) -> Option<String> {
    std::env::var(var).ok().map(|value| value.trim().to_owned()).filter(|value| !value.is_empty())
}

fn read_token(path: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|text| text.trim().to_owned()).filter(|text| !text.is_empty())
}

/// The local server's API URL from its `server.json`, when it is running.
fn local_url(data_dir: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join(tovuk_types::layout::SERVER_FILE)).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value.get("api_url")?.as_str().map(str::to_owned)
}

/// Builds the API client for this invocation.
pub(crate) fn client(target: Option<&str>) -> Result<Client, CliError> {
    let env_url = env_value("TOVUK_URL");
    let env_token = env_value("TOVUK_TOKEN");
    let (url, token) = match (env_url, env_token) {
        (Some(url), Some(token)) => (url, Some(token)),
        (env_url, env_token) => {
            let dir = config::config_dir();
            let cli_config = CliConfig::load(&dir).map_err(CliError::usage)?;
            let name = target.map(str::to_owned).or(cli_config.current.clone());
            let (url, token) = match name {
                Some(name) => {
                    let entry = cli_config.targets.get(&name).ok_or_else(|| unknown_target(&cli_config, &name))?;
                    (entry.url.clone(), read_token(&config::token_file(&dir, &name)))
                }
                None => {
                    let data_dir = config::default_data_dir();
                    let url = local_url(&data_dir).unwrap_or_else(|| LOCAL_URL.to_owned());
                    (url, read_token(&data_dir.join(tovuk_types::layout::ADMIN_TOKEN_FILE)))
                }
            };
            (env_url.unwrap_or(url), env_token.or(token))
        }
    };
    Client::new(&url, token).map_err(CliError::from)
}
