//! The platform's bare repositories and the hooks it owns.
//!
//! Each app has `<data>/repos/<app>.git`. Hooks live outside every repository, in
//! `<data>/hooks/`, and reach git through `core.hooksPath` given on the command line
//! of every git the platform runs, which outranks anything in a repository's config: a
//! user cannot supply their own hooks. The hook files are rewritten whenever their
//! content differs from what this binary would write.

use crate::git::{self, GitError};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tovuk_types::DataLayout;

/// The hooks the platform installs.
pub const HOOK_NAMES: [&str; 2] = ["pre-receive", "post-receive"];

/// Where the repositories and hooks live, and which binary the hooks run.
#[derive(Debug, Clone)]
pub struct Repos {
    layout: DataLayout,
    root: PathBuf,
    hooks_dir: PathBuf,
    tovuk_exe: PathBuf,
}

impl Repos {
    pub fn new(layout: &DataLayout, tovuk_exe: PathBuf) -> Repos {
        Repos { layout: layout.clone(), root: layout.repos_dir(), hooks_dir: layout.hooks_dir(), tovuk_exe }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn hooks_dir(&self) -> &Path {
        &self.hooks_dir
    }

    /// The bare repository of an app. `app` must already be a validated app name.
    pub fn path(&self, app: &str) -> PathBuf {
        self.layout.repo(app)
    }

    fn hook_script(&self, name: &str) -> String {
        let exe = self.tovuk_exe.display().to_string().replace('\'', r"'\''");
        format!("#!/bin/sh\n# Installed and owned by tovuk; it is rewritten if changed.\nexec '{exe}' hook {name}\n")
    }

    /// Writes the hook scripts when they are missing or differ. Returns how many it wrote.
    pub fn install_hooks(&self) -> std::io::Result<usize> {
        std::fs::create_dir_all(&self.hooks_dir)?;
        let mut written = 0;
        for name in HOOK_NAMES {
            let path = self.hooks_dir.join(name);
            let script = self.hook_script(name);
            let current = std::fs::read_to_string(&path).ok();
            let mode_ok = std::fs::metadata(&path).is_ok_and(|meta| meta.permissions().mode() & 0o777 == 0o755);
            if current.as_deref() != Some(script.as_str()) || !mode_ok {
                let temp = path.with_extension("tmp");
                std::fs::write(&temp, &script)?;
                std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o755))?;
                std::fs::rename(&temp, &path)?;
                written += 1;
            }
        }
        Ok(written)
    }

    /// The configuration every git the platform runs on a repository gets, as
    /// `GIT_CONFIG_COUNT` pairs: it outranks the repository's own config.
    pub fn managed_config(&self, max_push_bytes: u64) -> Vec<(String, String)> {
        vec![
            ("core.hooksPath".into(), self.hooks_dir.display().to_string()),
            ("receive.fsckObjects".into(), "true".into()),
            ("receive.maxInputSize".into(), max_push_bytes.to_string()),
            // Platform refs (uploaded archives) are neither shown nor pushable.
            ("uploadpack.hideRefs".into(), "refs/tovuk/".into()),
            ("receive.hideRefs".into(), "refs/tovuk/".into()),
            ("http.receivepack".into(), "true".into()),
            ("http.uploadpack".into(), "true".into()),
            // `git push -o detach` returns once the deploy is recorded (see `tovuk hook`).
            ("receive.advertisePushOptions".into(), "true".into()),
        ]
    }

    /// Creates an app's bare repository with `branch` as its default branch.
    pub async fn create(&self, app: &str, branch: &str) -> Result<PathBuf, GitError> {
        std::fs::create_dir_all(&self.root).map_err(GitError::Spawn)?;
        let path = self.path(app);
        let mut command = git::isolated();
        command.args(["init", "--bare", "--quiet"]).arg(format!("--initial-branch={branch}")).arg(&path);
        git::output(command, "init --bare").await?;
        Ok(path)
    }

    /// Whether the repository exists and looks like a bare repository.
    pub fn exists(&self, app: &str) -> bool {
        let path = self.path(app);
        path.join("HEAD").is_file() && path.join("objects").is_dir()
    }

    /// Removes an app's repository (used when creating the app fails half-way).
    pub fn remove(&self, app: &str) {
        let _ = std::fs::remove_dir_all(self.path(app));
    }
}
