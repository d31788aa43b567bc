//! Small filesystem helpers: temp names, atomic writes, directory fsync.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::ArtifactError;

/// A fresh temp path next to `final_path` (same directory, so a rename is atomic).
///
/// The name starts with a dot and ends in `.tmp` so listings and cleanups can
/// tell unfinished files apart.
pub(crate) fn temp_path_for(final_path: &Path) -> Result<PathBuf, ArtifactError> {
    let file_name = final_path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let suffix = random_suffix()?;
    Ok(final_path.with_file_name(format!(".{file_name}.{suffix}.tmp")))
}

/// 16 random hex characters, for temp names.
pub(crate) fn random_suffix() -> Result<String, ArtifactError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(ArtifactError::Random)?;
    Ok(hex::encode(bytes))
}

/// Creates `path` exclusively with exactly `mode` (umask notwithstanding).
pub(crate) fn create_new_with_mode(path: &Path, mode: u32) -> Result<File, ArtifactError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| ArtifactError::io("create", path, source))?;
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|source| ArtifactError::io("set permissions on", path, source))?;
    Ok(file)
}

/// Writes `contents` to a temp file with `mode`, fsyncs it and renames it over `path`.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), ArtifactError> {
    let temp_path = temp_path_for(path)?;
    let result = (|| {
        let mut file = create_new_with_mode(&temp_path, mode)?;
        file.write_all(contents).map_err(|source| ArtifactError::io("write", &temp_path, source))?;
        file.sync_all().map_err(|source| ArtifactError::io("sync", &temp_path, source))?;
        rename(&temp_path, path)
    })();
    if result.is_err() {
        remove_if_exists(&temp_path);
    }
    result
}

/// Renames `from` to `to`, naming both in the error.
pub(crate) fn rename(from: &Path, to: &Path) -> Result<(), ArtifactError> {
    fs::rename(from, to).map_err(|source| {
        ArtifactError::io(
            "rename into place",
            to,
            io::Error::new(source.kind(), format!("from `{}`: {source}", from.display())),
        )
    })
}

/// Fsyncs a directory so renames into it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), ArtifactError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|source| ArtifactError::io("sync directory", dir, source))
}

/// Best-effort cleanup of a temp file on an error path; the original error matters more.
pub(crate) fn remove_if_exists(path: &Path) {
    let _ = fs::remove_file(path);
}
