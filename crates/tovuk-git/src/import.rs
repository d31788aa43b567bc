//! Importing an uploaded tree into an app's repository as a commit, so every deploy,
//! pushed or uploaded, is built from a commit in the same place.

use crate::git::{self, GitError, ObjectEnv, ZERO_SHA};
use std::path::Path;

/// A commit made from an uploaded tree, not yet on any ref.
pub struct ImportedCommit {
    pub sha: String,
    /// The ref's value the commit was made on (`None` when the ref did not exist).
    pub parent: Option<String>,
}

/// Commits the files under `work_tree` on top of `reference` without moving the ref:
/// the caller checks the commit first and then calls [`move_ref`]. When the tree is the
/// same as the ref's current commit, that commit is returned instead of a new one, so
/// uploading the same files twice names the same commit. `scratch` is an empty
/// directory outside `work_tree` for the temporary index.
pub async fn import_tree(
    repo: &Path,
    work_tree: &Path,
    scratch: &Path,
    reference: &str,
    message: &str,
) -> Result<ImportedCommit, GitError> {
    let objects = ObjectEnv::default();
    let index = scratch.join("index");
    let mut add = git::command(repo, &objects);
    add.env("GIT_INDEX_FILE", &index)
        .arg("--work-tree")
        .arg(work_tree)
        // --force: what was uploaded is what ships; the client already applied ignores.
        .args(["add", "--all", "--force", "--", "."])
        .current_dir(work_tree);
    git::output(add, "add").await?;
    let mut write_tree = git::command(repo, &objects);
    write_tree.env("GIT_INDEX_FILE", &index).arg("write-tree");
    let tree = String::from_utf8(git::output(write_tree, "write-tree").await?)
        .map_err(|_| GitError::NotUtf8("write-tree".into()))?
        .trim()
        .to_owned();

    let parent = git::run(repo, &objects, &["rev-parse", "--verify", "--quiet", reference]).await.ok();
    if let Some(parent) = &parent {
        let parent_tree = git::run(repo, &objects, &["rev-parse", &format!("{parent}^{{tree}}")]).await?;
        if parent_tree == tree {
            return Ok(ImportedCommit { sha: parent.clone(), parent: Some(parent.clone()) });
        }
    }
    let mut commit = git::command(repo, &objects);
    commit
        .env("GIT_AUTHOR_NAME", "tovuk deploy")
        .env("GIT_AUTHOR_EMAIL", "deploy@tovuk.invalid")
        .env("GIT_COMMITTER_NAME", "tovuk deploy")
        .env("GIT_COMMITTER_EMAIL", "deploy@tovuk.invalid")
        .args(["commit-tree", &tree, "-m", message]);
    if let Some(parent) = &parent {
        commit.args(["-p", parent]);
    }
    let sha = String::from_utf8(git::output(commit, "commit-tree").await?)
        .map_err(|_| GitError::NotUtf8("commit-tree".into()))?
        .trim()
        .to_owned();
    Ok(ImportedCommit { sha, parent })
}

/// Moves `reference` to `commit.sha`, compare-and-swap on the value it was made on, so
/// two uploads at once cannot lose one.
pub async fn move_ref(repo: &Path, reference: &str, commit: &ImportedCommit, message: &str) -> Result<(), GitError> {
    if commit.parent.as_deref() == Some(commit.sha.as_str()) {
        return Ok(());
    }
    let old = commit.parent.as_deref().unwrap_or(ZERO_SHA);
    git::run(repo, &ObjectEnv::default(), &["update-ref", "-m", message, reference, &commit.sha, old]).await?;
    Ok(())
}
