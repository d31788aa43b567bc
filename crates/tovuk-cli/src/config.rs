//! The CLI's own files: targets in `<config-dir>/config.toml`, tokens beside it (0600).
//!
//! The config dir is `$TOVUK_CONFIG_DIR`, else `$XDG_CONFIG_HOME/tovuk`, else
//! `~/.config/tovuk`. Every write is a temp file plus a rename: a crash never leaves a
//! half-written config or token.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CliConfig {
    /// The target used when `--target` is not given.
    pub current: Option<String>,
    #[serde(default)]
    pub targets: BTreeMap<String, TargetEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetEntry {
    pub url: String,
}

fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var).filter(|value| !value.is_empty()).map(PathBuf::from)
}

fn home_dir() -> PathBuf {
    env_dir("HOME").unwrap_or_else(|| PathBuf::from("/"))
}

pub(crate) fn config_dir() -> PathBuf {
    env_dir("TOVUK_CONFIG_DIR")
        .or_else(|| env_dir("XDG_CONFIG_HOME").map(|dir| dir.join("tovuk")))
        .unwrap_or_else(|| home_dir().join(".config").join("tovuk"))
}

/// The data dir `tovuk server` uses when given none.
pub fn default_data_dir() -> PathBuf {
    env_dir("TOVUK_DATA_DIR")
        .or_else(|| env_dir("XDG_DATA_HOME").map(|dir| dir.join("tovuk")))
        .unwrap_or_else(|| home_dir().join(".local").join("share").join("tovuk"))
}

pub(crate) fn token_file(dir: &Path, name: &str) -> PathBuf {
    dir.join("tokens").join(format!("{name}.token"))
}

impl CliConfig {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("config.toml")
    }

    /// Loads the config; a missing file is an empty config.
    pub fn load(dir: &Path) -> Result<CliConfig, String> {
        let path = Self::path(dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|error| format!("the CLI config `{}` is not valid: {error}", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(CliConfig::default()),
            Err(error) => Err(format!("cannot read the CLI config `{}`: {error}", path.display())),
        }
    }

    pub fn save(&self, dir: &Path) -> Result<(), String> {
        let text = toml::to_string(self).map_err(|error| format!("cannot encode the CLI config: {error}"))?;
        write_private(&Self::path(dir), text.as_bytes())
    }
}

/// Writes `contents` to `path` with mode 0600 (parents 0700), atomically.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<(), String> {
    let fail = |error: std::io::Error| format!("cannot write `{}`: {error}", path.display());
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(parent).map_err(fail)?;
    }
    let temp = path.with_extension(format!("tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    };
    write().map_err(|error| {
        let _ = std::fs::remove_file(&temp);
        fail(error)
    })
}
