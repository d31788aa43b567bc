//! Preparing a release: verify the signed artifact, unpack it, read its contract.

use std::path::{Path, PathBuf};
use tovuk_api_types::FailureReason;
use tovuk_api_types::{ClaimedRelease, DeployFailure};
use tovuk_manifest::{MANIFEST_FILE, Manifest};
use tovuk_types::DataLayout;

/// A verified, unpacked release and the contract it runs under.
pub(crate) struct Release {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

pub(crate) fn failure(reason: FailureReason, line: String) -> DeployFailure {
    DeployFailure {
        reason,
        phase: Some(tovuk_types::DeployState::Deploying),
        exit_code: None,
        first_actionable_line: Some(line),
        blockers: Vec::new(),
    }
}

/// Verifies the artifact (signature and digest) before anything of it is used, then
/// unpacks it into `<data>/releases/<app>/<deploy_id>/` (kept when already there and
/// `reuse` is set, as after a restart).
pub(crate) async fn prepare(
    layout: &DataLayout,
    release: &ClaimedRelease,
    reuse: bool,
) -> Result<Release, DeployFailure> {
    let layout = layout.clone();
    let release = release.clone();
    tokio::task::spawn_blocking(move || prepare_blocking(&layout, &release, reuse))
        .await
        .map_err(|error| failure(FailureReason::ReleaseFailed, format!("preparing the release stopped: {error}")))?
}

fn prepare_blocking(layout: &DataLayout, release: &ClaimedRelease, reuse: bool) -> Result<Release, DeployFailure> {
    let artifacts = layout.artifacts_dir();
    let key = tovuk_artifact::load_public_key(&layout.keys_dir()).map_err(|error| {
        failure(FailureReason::ArtifactSignatureInvalid, format!("the build key cannot be read: {error}"))
    })?;
    // The artifact must be the one its deploy's build sealed: this app, that build, this commit.
    let built_by = if release.built_by.is_empty() { &release.deploy_id } else { &release.built_by };
    let expected = tovuk_artifact::Expected { app: &release.app, deploy_id: built_by, commit_sha: &release.sha };
    let verification = tovuk_artifact::verify(&artifacts, &release.digest, &expected, &key)
        .map_err(|error| failure(FailureReason::ArtifactSignatureInvalid, error.to_string()))?;
    if !verification.ok {
        let problem = verification.problem.unwrap_or_else(|| "signature or digest mismatch".into());
        return Err(failure(
            FailureReason::ArtifactSignatureInvalid,
            format!("the artifact failed verification and was not started: {problem}"),
        ));
    }
    let dir = layout.release_dir(&release.app, &release.deploy_id);
    if !(reuse && dir.is_dir()) {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|error| {
            failure(FailureReason::ReleaseFailed, format!("cannot create the release directory: {error}"))
        })?;
        let paths = tovuk_artifact::ArtifactPaths::for_digest(&artifacts, &release.digest)
            .map_err(|error| failure(FailureReason::ReleaseFailed, error.to_string()))?;
        let file = std::fs::File::open(&paths.archive)
            .map_err(|error| failure(FailureReason::ReleaseFailed, format!("cannot open the artifact: {error}")))?;
        let decoder =
            zstd::Decoder::new(file).map_err(|error| failure(FailureReason::ReleaseFailed, error.to_string()))?;
        tar::Archive::new(decoder)
            .unpack(&dir)
            .map_err(|error| failure(FailureReason::ReleaseFailed, format!("cannot unpack the artifact: {error}")))?;
    }
    let manifest = read_manifest(layout, release)?;
    Ok(Release { dir, manifest })
}

/// The contract of the deployed commit, read from the app's repository (the artifact
/// holds only the build output).
fn read_manifest(layout: &DataLayout, release: &ClaimedRelease) -> Result<Manifest, DeployFailure> {
    let repo = layout.repo(&release.app);
    let output = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(&repo)
        .args(["cat-file", "blob", &format!("{}:{MANIFEST_FILE}", release.sha)])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .map_err(|error| failure(FailureReason::ReleaseFailed, format!("cannot run git: {error}")))?;
    if !output.status.success() {
        return Err(failure(
            FailureReason::ReleaseFailed,
            format!("{MANIFEST_FILE} of commit {} cannot be read", release.sha),
        ));
    }
    let (manifest, report) = tovuk_manifest::check_bytes(MANIFEST_FILE, &output.stdout);
    manifest.ok_or_else(|| {
        let first = report.errors().first().map(|error| error.message.clone()).unwrap_or_default();
        failure(FailureReason::ContractInvalid, format!("{MANIFEST_FILE} does not pass the check: {first}"))
    })
}

/// Removes from a static app's root what it must not serve: hidden entries (a name starting
/// with `.`, and everything under one) and the contract `tovuk.toml` at the top, except the
/// paths `[static] serve_hidden` lists (with what is under them). Returns how many went.
pub(crate) fn remove_hidden(root: &Path, serve_hidden: &[String]) -> std::io::Result<usize> {
    let listed: Vec<PathBuf> = serve_hidden.iter().map(|path| PathBuf::from(path.trim_matches('/'))).collect();
    remove_hidden_in(root, Path::new(""), &listed, false)
}

fn remove_hidden_in(dir: &Path, relative: &Path, listed: &[PathBuf], inside_hidden: bool) -> std::io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let path = relative.join(&name);
        // Not followed: a symlink is judged (and removed) as itself.
        let is_dir = entry.file_type()?.is_dir();
        let hidden = inside_hidden
            || name.to_string_lossy().starts_with('.')
            || (relative.as_os_str().is_empty() && name == MANIFEST_FILE);
        if !hidden {
            if is_dir {
                removed += remove_hidden_in(&entry.path(), &path, listed, false)?;
            }
        } else if listed.iter().any(|allowed| path.starts_with(allowed)) {
            // Served as the contract says.
        } else if is_dir && listed.iter().any(|allowed| allowed.starts_with(&path)) {
            removed += remove_hidden_in(&entry.path(), &path, listed, true)?;
        } else {
            if is_dir {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::remove_hidden;

    #[test]
    fn a_static_root_keeps_only_the_hidden_paths_its_contract_lists() {
        let root = tempfile::tempdir().expect("tempdir");
        let files = [
            "index.html",
            "tovuk.toml",
            ".env",
            ".git/config",
            "assets/.DS_Store",
            "assets/app.js",
            "docs/tovuk.toml",
            ".well-known/security.txt",
            ".well-known/acme/token",
            ".config/public.json",
            ".config/private.json",
        ];
        for file in files {
            let path = root.path().join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, "x").expect("write");
        }
        let listed = [".well-known".to_owned(), ".config/public.json".to_owned()];
        remove_hidden(root.path(), &listed).expect("pruned");
        let kept: Vec<&str> = files.into_iter().filter(|file| root.path().join(file).exists()).collect();
        assert_eq!(
            kept,
            [
                "index.html",
                "assets/app.js",
                "docs/tovuk.toml",
                ".well-known/security.txt",
                ".well-known/acme/token",
                ".config/public.json"
            ]
        );
    }
}
