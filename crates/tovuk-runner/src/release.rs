//! Preparing a release: verify the signed artifact, unpack it, read its contract.

use std::path::PathBuf;
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
    let verification = tovuk_artifact::verify(&artifacts, &release.digest, &key)
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
