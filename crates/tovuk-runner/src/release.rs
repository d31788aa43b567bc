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
    /// The release directory from before a restart was used again (it matched its
    /// artifact); false when it was unpacked now.
    pub reused: bool,
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
    let archive = tovuk_artifact::ArtifactPaths::for_digest(&artifacts, &release.digest)
        .map_err(|error| failure(FailureReason::ReleaseFailed, error.to_string()))?
        .archive;
    let open_archive = || {
        let file = std::fs::File::open(&archive)
            .map_err(|error| failure(FailureReason::ReleaseFailed, format!("cannot open the artifact: {error}")))?;
        let decoder =
            zstd::Decoder::new(file).map_err(|error| failure(FailureReason::ReleaseFailed, error.to_string()))?;
        Ok::<_, DeployFailure>(tar::Archive::new(decoder))
    };
    // A release kept from before a restart is used again only when it is still exactly its
    // artifact (the files a static app hides were removed on purpose); otherwise it is
    // unpacked again, and nothing that ran from it is adopted.
    let mut reused = reuse && dir.is_dir();
    if reused && !matches!(same_as_archive(open_archive()?, &dir), Ok(true)) {
        tracing::warn!(app = %release.app, deploy_id = %release.deploy_id, "the release on disk differs from its artifact: unpacking it again");
        reused = false;
    }
    if !reused {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|error| {
            failure(FailureReason::ReleaseFailed, format!("cannot create the release directory: {error}"))
        })?;
        open_archive()?
            .unpack(&dir)
            .map_err(|error| failure(FailureReason::ReleaseFailed, format!("cannot unpack the artifact: {error}")))?;
    }
    let manifest = read_manifest(layout, release)?;
    Ok(Release { dir, manifest, reused })
}

/// Whether `dir` holds exactly what `archive` unpacks to: every entry with its kind, bytes
/// and link target, and nothing more, except hidden entries a static release removed
/// (an entry missing from `dir` whose path has a component starting with `.`, or the
/// contract at the top).
fn same_as_archive<R: std::io::Read>(mut archive: tar::Archive<R>, dir: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut seen = std::collections::HashSet::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let relative = normal(&entry.path()?);
        if relative.as_os_str().is_empty() {
            continue;
        }
        let on_disk = dir.join(&relative);
        let Ok(meta) = std::fs::symlink_metadata(&on_disk) else {
            let hidden = relative.components().any(|part| part.as_os_str().to_string_lossy().starts_with('.'))
                || relative == Path::new(MANIFEST_FILE);
            if hidden {
                continue;
            }
            return Ok(false);
        };
        seen.insert(normal(&relative));
        let kind = entry.header().entry_type();
        let same = if kind.is_dir() {
            meta.is_dir()
        } else if kind.is_symlink() {
            meta.file_type().is_symlink()
                && entry.link_name()?.as_deref() == std::fs::read_link(&on_disk).ok().as_deref()
        } else if kind.is_file() {
            if !meta.is_file() || meta.len() != entry.size() {
                return Ok(false);
            }
            let mut file = std::fs::File::open(&on_disk)?;
            let (mut want, mut have) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
            loop {
                let n = entry.read(&mut want)?;
                if n == 0 {
                    break true;
                }
                file.read_exact(&mut have[..n])?;
                if want[..n] != have[..n] {
                    break false;
                }
            }
        } else {
            true
        };
        if !same {
            return Ok(false);
        }
    }
    // Nothing more on disk than the archive holds.
    nothing_else(dir, Path::new(""), &seen)
}

/// A path of the archive as the directory walk names it: its plain components only.
fn normal(path: &Path) -> PathBuf {
    path.components().filter(|part| matches!(part, std::path::Component::Normal(_))).collect()
}

/// Whether every entry under `dir` is one of `seen` (paths relative to the release).
fn nothing_else(dir: &Path, relative: &Path, seen: &std::collections::HashSet<PathBuf>) -> std::io::Result<bool> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = relative.join(entry.file_name());
        if !seen.contains(&path) {
            return Ok(false);
        }
        if entry.file_type()?.is_dir() && !nothing_else(&entry.path(), &path, seen)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The contract of the release's commit, read from the app's repository (the artifact holds
/// only the build output): its `tovuk.toml`, or the one detected from its files.
pub(crate) fn read_manifest(layout: &DataLayout, release: &ClaimedRelease) -> Result<Manifest, DeployFailure> {
    let repo = layout.repo(&release.app);
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&repo)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .map_err(|error| failure(FailureReason::ReleaseFailed, format!("cannot run git: {error}")))
    };
    let unreadable =
        || failure(FailureReason::ReleaseFailed, format!("{MANIFEST_FILE} of commit {} cannot be read", release.sha));
    let written = git(&["cat-file", "-t", &format!("{}:{MANIFEST_FILE}", release.sha)])?;
    let (manifest, report) = if written.status.success() {
        let output = git(&["cat-file", "blob", &format!("{}:{MANIFEST_FILE}", release.sha)])?;
        if !output.status.success() {
            return Err(unreadable());
        }
        tovuk_manifest::check_bytes(MANIFEST_FILE, &output.stdout)
    } else {
        let listed = git(&["ls-tree", "-z", "--name-only", &release.sha])?;
        if !listed.status.success() {
            return Err(unreadable());
        }
        let names = listed.stdout.split(|byte| *byte == 0).filter(|name| !name.is_empty());
        let mut root = tovuk_manifest::ProjectRoot::with_names(
            names.map(|name| String::from_utf8_lossy(name).into_owned()).collect(),
        );
        for file in root.wanted() {
            let mut output = git(&["cat-file", "blob", &format!("{}:{file}", release.sha)])?;
            output.stdout.truncate(tovuk_manifest::MAX_MANIFEST_BYTES);
            root.files.insert(file.to_owned(), output.stdout);
        }
        tovuk_manifest::check_detected(&release.app, &root)
    };
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
