//! The contract check on a commit: the same `tovuk check`, read from git objects
//! instead of a work tree, with the contract detected when the commit has no `tovuk.toml`.

use crate::git::{self, GitError, ObjectEnv};
use std::path::Path;
use std::process::Stdio;
use tokio::io::AsyncReadExt;
use tovuk_manifest::{CheckReport, MANIFEST_FILE, MAX_MANIFEST_BYTES, Manifest, ProjectRoot};

/// The outcome of checking a commit's contract.
pub struct ManifestCheck {
    pub report: CheckReport,
    /// The parsed manifest when the check passed.
    pub manifest: Option<Manifest>,
}

/// Checks the contract of commit `sha` in `repo`, pushed to `app`: its `tovuk.toml`, or
/// when it has none the contract detected from its files; then its tracked files.
pub async fn check_commit(repo: &Path, objects: &ObjectEnv, sha: &str, app: &str) -> Result<ManifestCheck, GitError> {
    let spec = format!("{sha}:{MANIFEST_FILE}");
    let kind = git::run(repo, objects, &["cat-file", "-t", &spec]).await;
    let (manifest, mut report) = if matches!(kind.as_deref(), Ok("blob")) {
        let bytes = read_blob_capped(repo, objects, &spec).await?;
        tovuk_manifest::check_bytes(MANIFEST_FILE, &bytes)
    } else {
        let names = git::run(repo, objects, &["ls-tree", "-z", "--name-only", sha]).await?;
        let mut root =
            ProjectRoot::with_names(names.split('\0').filter(|name| !name.is_empty()).map(str::to_owned).collect());
        for file in root.wanted() {
            let bytes = read_blob_capped(repo, objects, &format!("{sha}:{file}")).await?;
            root.files.insert(file.to_owned(), bytes);
        }
        tovuk_manifest::check_detected(app, &root)
    };
    if let Some(manifest) = &manifest {
        let listing = git::run(repo, objects, &["ls-tree", "-r", "-z", "--name-only", "--full-tree", sha]).await?;
        let files: Vec<String> = listing.split('\0').filter(|path| !path.is_empty()).map(str::to_owned).collect();
        tovuk_manifest::check_files(&mut report, manifest, MANIFEST_FILE, &files);
    }
    let manifest = if report.ok() { manifest } else { None };
    Ok(ManifestCheck { report, manifest })
}

/// Reads a blob, stopping one byte past the manifest limit so a huge file is reported,
/// not loaded.
async fn read_blob_capped(repo: &Path, objects: &ObjectEnv, spec: &str) -> Result<Vec<u8>, GitError> {
    let mut command = git::command(repo, objects);
    command.args(["cat-file", "blob", spec]).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = command.spawn().map_err(GitError::Spawn)?;
    let mut bytes = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        stdout.take(MAX_MANIFEST_BYTES as u64 + 1).read_to_end(&mut bytes).await.map_err(GitError::Spawn)?;
    }
    // Dropping the child kills it if it is still writing.
    drop(child);
    Ok(bytes)
}
