//! Running git against a platform repository with an isolated configuration.

use std::path::Path;
use tokio::process::Command;

/// The all-zero object name git uses for "no object" (a created or deleted ref).
pub const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot run git: {0}; install it (Debian: apt-get install git)")]
    Spawn(std::io::Error),
    #[error("git {command} failed: {stderr}")]
    Failed { command: String, stderr: String },
    #[error("git printed something that is not UTF-8 for {0}")]
    NotUtf8(String),
}

/// Where git should look for objects: set while a push is in quarantine, so the hooks
/// can read what was pushed before it is accepted.
#[derive(Debug, Clone, Default)]
pub struct ObjectEnv {
    pub object_directory: Option<String>,
    pub alternate_object_directories: Option<String>,
}

/// A git command that ignores the system and user configuration, so the platform's
/// behaviour does not depend on whoever runs it.
pub(crate) fn isolated() -> Command {
    let mut command = Command::new("git");
    command
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_OBJECT_DIRECTORY")
        .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES")
        .env_remove("GIT_QUARANTINE_PATH")
        .kill_on_drop(true);
    command
}

/// An isolated git command on the bare repository `repo`, reading objects from `objects`.
pub(crate) fn command(repo: &Path, objects: &ObjectEnv) -> Command {
    let mut command = isolated();
    command.arg("--git-dir").arg(repo);
    if let Some(dir) = &objects.object_directory {
        command.env("GIT_OBJECT_DIRECTORY", dir);
    }
    if let Some(dirs) = &objects.alternate_object_directories {
        command.env("GIT_ALTERNATE_OBJECT_DIRECTORIES", dirs);
    }
    command
}

/// Runs a prepared command and returns its stdout, or its stderr as the error.
pub(crate) async fn output(mut command: Command, what: &str) -> Result<Vec<u8>, GitError> {
    let output = command.output().await.map_err(GitError::Spawn)?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(GitError::Failed {
            command: what.to_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Runs git with `args` and returns trimmed UTF-8 stdout.
pub(crate) async fn run(repo: &Path, objects: &ObjectEnv, args: &[&str]) -> Result<String, GitError> {
    let mut command = command(repo, objects);
    command.args(args);
    let stdout = output(command, &args.join(" ")).await?;
    String::from_utf8(stdout).map(|text| text.trim_end().to_owned()).map_err(|_| GitError::NotUtf8(args.join(" ")))
}

/// Whether `text` is a full hexadecimal object name.
pub(crate) fn is_full_sha(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|byte| byte.is_ascii_hexdigit() && !byte.is_ascii_uppercase())
}
