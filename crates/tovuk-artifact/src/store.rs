//! The artifact store directory: digests, sealing into place, reading back and verifying.

#[cfg(test)]
mod tests;

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::fs_util::{
    create_new_with_mode, random_suffix, remove_if_exists, rename, sync_dir, temp_path_for, write_atomic,
};
use crate::manifest::{
    ARCHIVE_FORMAT, MANIFEST_SCHEMA, SignatureProblem, canonical_json, check_manifest_signature, sign_manifest_bytes,
};
use crate::{ArtifactError, ArtifactManifest, BuildKey};

const DIGEST_PREFIX: &str = "sha256:";
const ARTIFACT_FILE_MODE: u32 = 0o644;

/// Streams a file through sha256; returns `"sha256:<hex>"` and its size in bytes.
pub fn digest_file(path: &Path) -> Result<(String, u64), ArtifactError> {
    let mut file = File::open(path).map_err(|source| ArtifactError::io("open", path, source))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut size_bytes = 0u64;
    loop {
        let read = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(ArtifactError::io("read", path, source)),
        };
        hasher.update(&buffer[..read]);
        size_bytes += read as u64;
    }
    Ok((format!("{DIGEST_PREFIX}{}", hex::encode(hasher.finalize())), size_bytes))
}

/// Where an artifact lives in `<data>/artifacts/`: the archive `<hex>.tar.zst` (content
/// addressed: identical build outputs share it), and each build's own signed manifest
/// `<hex>.<deploy>.json` with its signature `<hex>.<deploy>.sig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactPaths {
    /// The tar+zstd archive, `<hex>.tar.zst`. Renamed into place last, so its
    /// presence means the manifest and signature are complete too.
    pub archive: PathBuf,
    /// The hex ed25519 signature over the manifest bytes.
    pub signature: PathBuf,
    /// The canonical JSON manifest; exactly the signed bytes.
    pub manifest: PathBuf,
}

impl ArtifactPaths {
    /// The archive of `digest` with the manifest pair of artifacts sealed before manifests
    /// were per deploy (`<hex>.json`, `<hex>.sig`); refuses a digest that is not
    /// `sha256:` + 64 lowercase hex, so a digest from a request can never name a path
    /// outside `artifacts_dir`.
    pub fn for_digest(artifacts_dir: &Path, digest: &str) -> Result<ArtifactPaths, ArtifactError> {
        let hex_digest = digest_hex(digest)?;
        Ok(ArtifactPaths {
            archive: artifacts_dir.join(format!("{hex_digest}.tar.zst")),
            signature: artifacts_dir.join(format!("{hex_digest}.sig")),
            manifest: artifacts_dir.join(format!("{hex_digest}.json")),
        })
    }

    /// The archive of `digest` with the manifest pair the build of `deploy_id` sealed (or,
    /// for an artifact sealed before manifests were per deploy, the digest's own pair).
    pub fn for_deploy(artifacts_dir: &Path, digest: &str, deploy_id: &str) -> Result<ArtifactPaths, ArtifactError> {
        let paths = Self::sealed_by(artifacts_dir, digest, deploy_id)?;
        let legacy = Self::for_digest(artifacts_dir, digest)?;
        Ok(if !paths.manifest.exists() && legacy.manifest.exists() { legacy } else { paths })
    }

    /// Where the build of `deploy_id` seals its manifest pair for `digest`.
    fn sealed_by(artifacts_dir: &Path, digest: &str, deploy_id: &str) -> Result<ArtifactPaths, ArtifactError> {
        let hex_digest = digest_hex(digest)?;
        if deploy_id.is_empty() || !deploy_id.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_') {
            return Err(ArtifactError::InvalidDeployId { deploy_id: deploy_id.to_owned() });
        }
        Ok(ArtifactPaths {
            archive: artifacts_dir.join(format!("{hex_digest}.tar.zst")),
            signature: artifacts_dir.join(format!("{hex_digest}.{deploy_id}.sig")),
            manifest: artifacts_dir.join(format!("{hex_digest}.{deploy_id}.json")),
        })
    }
}

/// What an artifact must be to run as a deploy: its signed manifest names this app, this
/// deploy (the one whose build sealed it: the base deploy of a config release) and this
/// commit. A valid artifact of another app or deploy is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected<'a> {
    pub app: &'a str,
    pub deploy_id: &'a str,
    pub commit_sha: &'a str,
}

/// The 64 hex characters of a valid digest.
fn digest_hex(digest: &str) -> Result<&str, ArtifactError> {
    match digest.strip_prefix(DIGEST_PREFIX) {
        Some(hex_digest)
            if hex_digest.len() == 64 && hex_digest.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Ok(hex_digest)
        }
        _ => Err(ArtifactError::InvalidDigest { digest: digest.to_owned() }),
    }
}

/// Creates an empty temp file in `artifacts_dir` (creating the directory) for [`crate::pack`]
/// to write into and [`seal`] to rename. On failure the caller should delete it.
pub fn create_temp_archive(artifacts_dir: &Path) -> Result<(PathBuf, File), ArtifactError> {
    fs::create_dir_all(artifacts_dir)
        .map_err(|source| ArtifactError::io("create artifacts directory", artifacts_dir, source))?;
    let path = artifacts_dir.join(format!(".pack-{}.tar.zst.tmp", random_suffix()?));
    let file = create_new_with_mode(&path, ARTIFACT_FILE_MODE)?;
    Ok((path, file))
}

/// Seals a packed archive into `artifacts_dir` and returns the final manifest.
///
/// Computes the archive's digest and size, fills `manifest.digest` and
/// `manifest.size_bytes`, signs the canonical JSON, and moves the three files
/// into place, each through a temp file and a rename: `.json`, then `.sig`,
/// then the archive last. `packed_archive` should be in `artifacts_dir` (see
/// [`create_temp_archive`]); from elsewhere it is copied in first. On
/// success it is gone; on error the caller deletes it.
///
/// Archives are content-addressed: sealing an archive whose digest is already
/// stored (an identical build output) keeps one archive, and each build has its
/// own manifest and signature beside it (see [`ArtifactPaths`]).
pub fn seal(
    artifacts_dir: &Path,
    packed_archive: &Path,
    mut manifest: ArtifactManifest,
    key: &BuildKey,
) -> Result<ArtifactManifest, ArtifactError> {
    if manifest.schema != MANIFEST_SCHEMA {
        return Err(ArtifactError::UnsupportedManifest {
            field: "schema",
            value: manifest.schema.to_string(),
            expected: MANIFEST_SCHEMA.to_string(),
        });
    }
    if manifest.format != ARCHIVE_FORMAT {
        return Err(ArtifactError::UnsupportedManifest {
            field: "format",
            value: manifest.format,
            expected: ARCHIVE_FORMAT.to_owned(),
        });
    }
    fs::create_dir_all(artifacts_dir)
        .map_err(|source| ArtifactError::io("create artifacts directory", artifacts_dir, source))?;

    let (digest, size_bytes) = digest_file(packed_archive)?;
    let paths = ArtifactPaths::sealed_by(artifacts_dir, &digest, &manifest.deploy_id)?;
    manifest.digest = digest;
    manifest.size_bytes = size_bytes;
    let manifest_json = canonical_json(&manifest);
    let signature_hex = sign_manifest_bytes(key, &manifest_json);

    write_manifest_and_signature(&paths, &manifest_json, &signature_hex, &key.verifying_key())?;
    move_archive_into_place(packed_archive, &paths.archive)?;
    sync_dir(artifacts_dir)?;
    Ok(manifest)
}

/// Writes `.json` then `.sig` under an exclusive lock on the digest. Two builds of
/// identical output seal the same digest; without the lock their writes could
/// interleave and leave one's manifest next to the other's signature. Once written,
/// the pair is read back and checked, so a seal never returns with a broken pair.
fn write_manifest_and_signature(
    paths: &ArtifactPaths,
    manifest_json: &[u8],
    signature_hex: &str,
    verifying_key: &VerifyingKey,
) -> Result<(), ArtifactError> {
    // The lock is on the artifacts directory itself: no lock file to leave behind or race on.
    let dir = paths.manifest.parent().unwrap_or(Path::new("."));
    let lock = fs::File::open(dir).map_err(|source| ArtifactError::io("open for locking", dir, source))?;
    lock.lock().map_err(|source| ArtifactError::io("lock", dir, source))?;
    write_atomic(&paths.manifest, manifest_json, ARTIFACT_FILE_MODE)?;
    write_atomic(&paths.signature, format!("{signature_hex}\n").as_bytes(), ARTIFACT_FILE_MODE)?;
    let stored_json =
        fs::read(&paths.manifest).map_err(|source| ArtifactError::io("read back", &paths.manifest, source))?;
    let stored_signature = fs::read_to_string(&paths.signature)
        .map_err(|source| ArtifactError::io("read back", &paths.signature, source))?;
    let checked = check_manifest_signature(verifying_key, &stored_json, &stored_signature);
    drop(lock);
    checked.map_err(|_| ArtifactError::SealUnverified { path: paths.manifest.clone() })
}

/// Renames the packed archive into place, copying it through a temp file when
/// it is on another filesystem.
fn move_archive_into_place(packed_archive: &Path, archive_path: &Path) -> Result<(), ArtifactError> {
    File::open(packed_archive)
        .and_then(|file| file.sync_all())
        .map_err(|source| ArtifactError::io("sync", packed_archive, source))?;
    match fs::rename(packed_archive, archive_path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::CrossesDevices => {
            let temp_path = temp_path_for(archive_path)?;
            let copied = fs::copy(packed_archive, &temp_path)
                .and_then(|_| File::open(&temp_path)?.sync_all())
                .map_err(|source| ArtifactError::io("copy archive to", &temp_path, source))
                .and_then(|()| rename(&temp_path, archive_path));
            if copied.is_err() {
                remove_if_exists(&temp_path);
                return copied;
            }
            remove_if_exists(packed_archive);
            Ok(())
        }
        Err(source) => Err(ArtifactError::io("rename into place", archive_path, source)),
    }
}

/// The result of [`verify`]; `ok` only when both checks pass.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Verification {
    /// `digest_ok && signature_ok`.
    pub ok: bool,
    /// The archive exists, hashes to the requested digest, and has the manifest's `size_bytes`.
    pub digest_ok: bool,
    /// The manifest and signature exist, the signature verifies over the
    /// stored manifest bytes under the key, and the manifest names this digest.
    pub signature_ok: bool,
    /// The signed manifest names the app, deploy and commit expected.
    pub bound_ok: bool,
    /// The signed manifest, when it could be read.
    pub manifest: Option<ArtifactManifest>,
    /// The digest that was asked for (the artifact's name).
    pub expected_digest: String,
    /// What the archive on disk hashes to; `None` when it could not be read.
    pub actual_digest: Option<String>,
    /// The first thing found wrong, as a sentence for a human; `None` when `ok`.
    pub problem: Option<String>,
}

/// Re-reads an artifact's manifest, signature and archive from disk and checks them.
///
/// Checks that the signature is valid under `key` for the manifest bytes
/// exactly as stored (before parsing them), that the manifest names `digest`
/// (so a valid manifest cannot be copied under another artifact's name) and the
/// app, deploy and commit `expected` (so a valid artifact of another app or
/// deploy is refused), that the archive hashes to `digest`, and that its size is
/// the manifest's `size_bytes`. A missing or unreadable file is a failed
/// verification whose `problem` says which; `Err` only for a malformed `digest`
/// or deploy id.
pub fn verify(
    artifacts_dir: &Path,
    digest: &str,
    expected: &Expected<'_>,
    key: &VerifyingKey,
) -> Result<Verification, ArtifactError> {
    let paths = ArtifactPaths::for_deploy(artifacts_dir, digest, expected.deploy_id)?;
    let mut problems: Vec<String> = Vec::new();

    let manifest = match check_manifest(&paths, digest, key) {
        Ok(manifest) => Some(manifest),
        Err(ManifestProblem { manifest, problem }) => {
            problems.push(problem);
            manifest.map(|manifest| *manifest)
        }
    };
    let signature_ok = problems.is_empty();
    let bound_ok = match &manifest {
        Some(manifest)
            if manifest.app == expected.app
                && manifest.deploy_id == expected.deploy_id
                && manifest.commit_sha == expected.commit_sha =>
        {
            true
        }
        Some(manifest) => {
            problems.push(format!(
                "the artifact is signed for app `{}`, deploy `{}`, commit `{}`, not app `{}`, deploy `{}`, commit `{}`: it belongs to another deploy",
                manifest.app, manifest.deploy_id, manifest.commit_sha, expected.app, expected.deploy_id, expected.commit_sha
            ));
            false
        }
        None => false,
    };

    let (actual_digest, digest_ok) = match digest_file(&paths.archive) {
        Ok((actual_digest, size_bytes)) => {
            let mut digest_ok = true;
            if actual_digest != digest {
                digest_ok = false;
                problems.push(format!(
                    "the archive `{}` hashes to `{actual_digest}`, not `{digest}`: it was changed after signing",
                    paths.archive.display()
                ));
            } else if let Some(manifest) = &manifest
                && manifest.size_bytes != size_bytes
            {
                digest_ok = false;
                problems.push(format!(
                    "the archive `{}` is {size_bytes} bytes but the manifest says {}",
                    paths.archive.display(),
                    manifest.size_bytes
                ));
            }
            (Some(actual_digest), digest_ok)
        }
        Err(error) => {
            problems.push(missing_or(&paths.archive, "archive", error));
            (None, false)
        }
    };

    Ok(Verification {
        ok: signature_ok && digest_ok && bound_ok,
        digest_ok,
        signature_ok,
        bound_ok,
        manifest,
        expected_digest: digest.to_owned(),
        actual_digest,
        problem: problems.into_iter().next(),
    })
}

/// Why the manifest side failed, with the manifest when it could still be parsed
/// (its `size_bytes` is still useful for the archive check).
struct ManifestProblem {
    manifest: Option<Box<ArtifactManifest>>,
    problem: String,
}

fn check_manifest(
    paths: &ArtifactPaths,
    digest: &str,
    key: &VerifyingKey,
) -> Result<ArtifactManifest, ManifestProblem> {
    let no_manifest = |problem: String| ManifestProblem { manifest: None, problem };
    let manifest_json = fs::read(&paths.manifest).map_err(|error| {
        no_manifest(missing_or(&paths.manifest, "manifest", ArtifactError::io("read", &paths.manifest, error)))
    })?;
    let parsed: Option<ArtifactManifest> = serde_json::from_slice(&manifest_json).ok();
    let with_manifest = |problem: String| ManifestProblem { manifest: parsed.clone().map(Box::new), problem };
    let signature_hex = fs::read_to_string(&paths.signature).map_err(|error| {
        with_manifest(missing_or(&paths.signature, "signature", ArtifactError::io("read", &paths.signature, error)))
    })?;
    check_manifest_signature(key, &manifest_json, &signature_hex).map_err(|problem| {
        with_manifest(match problem {
            SignatureProblem::Malformed => {
                format!("the signature `{}` is not 128 hex characters", paths.signature.display())
            }
            SignatureProblem::Invalid => format!(
                "the manifest `{}` does not verify under the build key: it was changed after signing, or signed by another key",
                paths.manifest.display()
            ),
        })
    })?;
    let Some(manifest) = parsed.clone() else {
        return Err(with_manifest(format!(
            "the manifest `{}` is signed but is not a valid artifact manifest; this version may be too old to read it",
            paths.manifest.display()
        )));
    };
    if manifest.digest != digest {
        return Err(with_manifest(format!(
            "the manifest `{}` is signed for artifact `{}`, not `{digest}`",
            paths.manifest.display(),
            manifest.digest
        )));
    }
    Ok(manifest)
}

/// "the <what> `<path>` is missing", or the read error.
fn missing_or(path: &Path, what: &str, error: ArtifactError) -> String {
    match &error {
        ArtifactError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
            format!("the {what} `{}` is missing", path.display())
        }
        _ => format!("the {what} could not be read: {error}"),
    }
}

/// Reads and parses the manifest the build of `deploy_id` sealed for `digest`, without
/// checking its signature; use [`verify`] before trusting it.
pub fn read_manifest(artifacts_dir: &Path, digest: &str, deploy_id: &str) -> Result<ArtifactManifest, ArtifactError> {
    let paths = ArtifactPaths::for_deploy(artifacts_dir, digest, deploy_id)?;
    let manifest_json = match fs::read(&paths.manifest) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(ArtifactError::ManifestNotFound { path: paths.manifest });
        }
        Err(source) => return Err(ArtifactError::io("read artifact manifest", paths.manifest, source)),
    };
    serde_json::from_slice(&manifest_json)
        .map_err(|source| ArtifactError::MalformedManifest { path: paths.manifest, source })
}
