//! Source inspection: refs, ref resolution and commit history of an app's repository.

use crate::git::{self, GitError, ObjectEnv};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct RefInfo {
    /// The full ref name, e.g. `refs/heads/main`.
    pub name: String,
    pub sha: String,
    /// `commit`, `tag`, ...
    pub object_type: String,
}

#[derive(Debug, Clone)]
pub struct CommitInfo {
    pub sha: String,
    pub author_name: String,
    pub author_email: String,
    pub authored_at: String,
    pub committed_at: String,
    pub subject: String,
}

/// Every branch and tag (platform refs under `refs/tovuk/` are not the user's).
pub async fn list_refs(repo: &Path) -> Result<Vec<RefInfo>, GitError> {
    let text = git::run(
        repo,
        &ObjectEnv::default(),
        &["for-each-ref", "--format=%(refname)%00%(objectname)%00%(objecttype)", "refs/heads", "refs/tags"],
    )
    .await?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut parts = line.split('\0');
            Some(RefInfo {
                name: parts.next()?.to_owned(),
                sha: parts.next()?.to_owned(),
                object_type: parts.next()?.to_owned(),
            })
        })
        .collect())
}

/// Whether a user-supplied ref is safe to hand to git: no option look-alikes, no
/// revision syntax beyond a name or an object id.
fn valid_ref_input(reference: &str) -> bool {
    !reference.is_empty()
        && reference.len() <= 255
        && !reference.starts_with('-')
        && !reference.contains("..")
        && reference.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"/._-".contains(&byte))
}

/// Resolves a branch, tag, full ref or (abbreviated) commit id to its full ref name
/// (when it is a ref) and commit. `None` when nothing matches.
pub async fn resolve_ref(repo: &Path, reference: &str) -> Result<Option<(Option<String>, String)>, GitError> {
    if !valid_ref_input(reference) {
        return Ok(None);
    }
    let objects = ObjectEnv::default();
    let peeled = format!("{reference}^{{commit}}");
    let Ok(sha) = git::run(repo, &objects, &["rev-parse", "--verify", "--quiet", "--end-of-options", &peeled]).await
    else {
        return Ok(None);
    };
    // No `--end-of-options` here: this rev-parse mode echoes it. The input cannot start
    // with `-` (checked above), so it cannot be taken for an option.
    let full_name = git::run(repo, &objects, &["rev-parse", "--symbolic-full-name", reference])
        .await
        .ok()
        .filter(|name| name.starts_with("refs/") && !name.starts_with("refs/tovuk/"));
    Ok(Some((full_name, sha)))
}

/// Up to `limit` commits reachable from `reference`, newest first. `None` when the ref
/// does not resolve.
pub async fn commits(repo: &Path, reference: &str, limit: u32) -> Result<Option<Vec<CommitInfo>>, GitError> {
    let Some((_, sha)) = resolve_ref(repo, reference).await? else { return Ok(None) };
    let text = git::run(
        repo,
        &ObjectEnv::default(),
        &["log", "-z", &format!("--max-count={limit}"), "--format=%H%x00%an%x00%ae%x00%aI%x00%cI%x00%s", &sha, "--"],
    )
    .await?;
    let fields: Vec<&str> = text.split('\0').collect();
    Ok(Some(
        fields
            .chunks(6)
            .filter(|chunk| chunk.len() == 6)
            .map(|chunk| CommitInfo {
                sha: chunk[0].trim_start_matches('\n').to_owned(),
                author_name: chunk[1].to_owned(),
                author_email: chunk[2].to_owned(),
                authored_at: chunk[3].to_owned(),
                committed_at: chunk[4].to_owned(),
                subject: chunk[5].to_owned(),
            })
            .collect(),
    ))
}

/// Whether `ancestor` is an ancestor of `descendant` (a fast-forward, not a force-push).
pub async fn is_ancestor(repo: &Path, objects: &ObjectEnv, ancestor: &str, descendant: &str) -> Result<bool, GitError> {
    if !git::is_full_sha(ancestor) || !git::is_full_sha(descendant) {
        return Ok(false);
    }
    let mut command = git::command(repo, objects);
    command.args(["merge-base", "--is-ancestor", ancestor, descendant]);
    let status = command.status().await.map_err(GitError::Spawn)?;
    Ok(status.success())
}
