//! The platform's build signing key: `<keys_dir>/build.ed25519` and its public half `build.ed25519.pub`.

#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::{self, DirBuilder};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::ArtifactError;
use crate::fs_util::{create_new_with_mode, remove_if_exists, sync_dir, temp_path_for, write_atomic};

/// File name of the secret key (32-byte seed, hex) inside the keys directory.
pub const KEY_FILE_NAME: &str = "build.ed25519";
/// File name of the public key (32 bytes, hex) inside the keys directory.
pub const PUBLIC_KEY_FILE_NAME: &str = "build.ed25519.pub";

const KEY_FILE_MODE: u32 = 0o600;
const PUBLIC_KEY_FILE_MODE: u32 = 0o644;
const KEYS_DIR_MODE: u32 = 0o700;

/// The platform's build signing key, `<keys_dir>/build.ed25519`.
///
/// The file holds the 32-byte ed25519 seed as hex (one line, mode 0600, in a
/// 0700 directory) and is made on first use. `build.ed25519.pub` is written
/// next to it (hex, mode 0644) for verifiers that must not hold the secret.
/// The seed is zeroized on drop by `ed25519-dalek` and never printed: `Debug`
/// shows only the public key.
pub struct BuildKey {
    signing_key: SigningKey,
}

impl BuildKey {
    /// Loads `<keys_dir>/build.ed25519`, creating the directory and a new key on first use.
    ///
    /// Refuses a key file readable by group or others, a keys directory
    /// writable by group or others, and a malformed key file, naming the path
    /// and the fix. Never overwrites an existing key file: a new key is written
    /// to a temp file and hard-linked into place, so two processes racing on
    /// first use end up with the same key. Rewrites `build.ed25519.pub` when it
    /// is missing or does not match the key.
    pub fn load_or_create(keys_dir: &Path) -> Result<BuildKey, ArtifactError> {
        ensure_keys_dir(keys_dir)?;
        let key_path = keys_dir.join(KEY_FILE_NAME);
        let build_key = match fs::metadata(&key_path) {
            Ok(_) => read_key_file(&key_path)?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => create_key_file(keys_dir, &key_path)?,
            Err(source) => return Err(ArtifactError::io("read build key", key_path, source)),
        };
        build_key.write_public_key_if_stale(keys_dir)?;
        Ok(build_key)
    }

    /// The public key as 64 lowercase hex characters (the contents of `build.ed25519.pub`).
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.signing_key.verifying_key().as_bytes())
    }

    /// The public key, for [`crate::verify`].
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing_key.verifying_key()
    }

    /// Signs `message` as is (callers add the domain separation).
    pub(crate) fn sign_raw(&self, message: &[u8]) -> Signature {
        self.signing_key.sign(message)
    }

    /// Test-only: a key from a fixed seed, without touching disk.
    #[cfg(test)]
    pub(crate) fn from_seed(seed: [u8; 32]) -> BuildKey {
        BuildKey { signing_key: SigningKey::from_bytes(&seed) }
    }

    fn write_public_key_if_stale(&self, keys_dir: &Path) -> Result<(), ArtifactError> {
        let public_path = keys_dir.join(PUBLIC_KEY_FILE_NAME);
        let expected = format!("{}\n", self.public_key_hex());
        match fs::read_to_string(&public_path) {
            Ok(current) if current == expected => Ok(()),
            Ok(_) => write_atomic(&public_path, expected.as_bytes(), PUBLIC_KEY_FILE_MODE),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                write_atomic(&public_path, expected.as_bytes(), PUBLIC_KEY_FILE_MODE)
            }
            // Unreadable or not UTF-8: replace it with the right contents.
            Err(error) if error.kind() == io::ErrorKind::InvalidData => {
                write_atomic(&public_path, expected.as_bytes(), PUBLIC_KEY_FILE_MODE)
            }
            Err(source) => Err(ArtifactError::io("read public build key", public_path, source)),
        }
    }
}

impl fmt::Debug for BuildKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("BuildKey").field("public_key", &self.public_key_hex()).finish_non_exhaustive()
    }
}

/// Reads `<keys_dir>/build.ed25519.pub`: what a verifier without the secret uses.
pub fn load_public_key(keys_dir: &Path) -> Result<VerifyingKey, ArtifactError> {
    let public_path = keys_dir.join(PUBLIC_KEY_FILE_NAME);
    let contents = match fs::read(&public_path) {
        Ok(contents) => contents,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(ArtifactError::PublicKeyNotFound { path: public_path });
        }
        Err(source) => return Err(ArtifactError::io("read public build key", public_path, source)),
    };
    let malformed = |reason: String| ArtifactError::MalformedPublicKey { path: public_path.clone(), reason };
    let bytes = decode_hex_32(&contents).map_err(malformed)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| malformed("not a valid ed25519 public key".to_owned()))
}

/// Creates `keys_dir` as 0700 if missing; refuses an existing one that group or others can write.
fn ensure_keys_dir(keys_dir: &Path) -> Result<(), ArtifactError> {
    match fs::metadata(keys_dir) {
        Ok(metadata) if !metadata.is_dir() => Err(ArtifactError::io(
            "use as keys directory",
            keys_dir,
            io::Error::new(io::ErrorKind::NotADirectory, "it is not a directory"),
        )),
        Ok(metadata) => {
            let mode = metadata.permissions().mode() & 0o7777;
            if mode & 0o022 != 0 {
                return Err(ArtifactError::KeysDirPermissions { path: keys_dir.to_path_buf(), mode });
            }
            Ok(())
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            DirBuilder::new()
                .recursive(true)
                .mode(KEYS_DIR_MODE)
                .create(keys_dir)
                .map_err(|source| ArtifactError::io("create keys directory", keys_dir, source))?;
            // The umask may have removed bits we asked for; make the mode exact.
            fs::set_permissions(keys_dir, fs::Permissions::from_mode(KEYS_DIR_MODE))
                .map_err(|source| ArtifactError::io("set permissions on keys directory", keys_dir, source))
        }
        Err(source) => Err(ArtifactError::io("read keys directory", keys_dir, source)),
    }
}

fn read_key_file(key_path: &Path) -> Result<BuildKey, ArtifactError> {
    let metadata = fs::metadata(key_path).map_err(|source| ArtifactError::io("read build key", key_path, source))?;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(ArtifactError::KeyPermissions { path: key_path.to_path_buf(), mode });
    }
    if !metadata.is_file() {
        return Err(ArtifactError::MalformedKey {
            path: key_path.to_path_buf(),
            reason: "not a regular file".to_owned(),
        });
    }
    let contents = fs::read(key_path).map_err(|source| ArtifactError::io("read build key", key_path, source))?;
    let seed = decode_hex_32(&contents)
        .map_err(|reason| ArtifactError::MalformedKey { path: key_path.to_path_buf(), reason })?;
    Ok(BuildKey { signing_key: SigningKey::from_bytes(&seed) })
}

fn create_key_file(keys_dir: &Path, key_path: &Path) -> Result<BuildKey, ArtifactError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(ArtifactError::Random)?;
    let build_key = BuildKey { signing_key: SigningKey::from_bytes(&seed) };
    let mut contents = hex::encode(seed);
    contents.push('\n');
    seed.fill(0);

    let temp_path: PathBuf = temp_path_for(key_path)?;
    let written = (|| {
        let mut file = create_new_with_mode(&temp_path, KEY_FILE_MODE)?;
        file.write_all(contents.as_bytes())
            .map_err(|source| ArtifactError::io("write build key", &temp_path, source))?;
        file.sync_all().map_err(|source| ArtifactError::io("sync build key", &temp_path, source))
    })();
    // Overwrite our copy of the hex seed; the file and the SigningKey are what remain.
    let mut contents = contents.into_bytes();
    contents.fill(0);
    if let Err(error) = written {
        remove_if_exists(&temp_path);
        return Err(error);
    }

    // A hard link fails if the target exists, so an existing key is never overwritten,
    // and the key file appears complete or not at all.
    let linked = fs::hard_link(&temp_path, key_path);
    remove_if_exists(&temp_path);
    match linked {
        Ok(()) => {
            sync_dir(keys_dir)?;
            Ok(build_key)
        }
        // Another process created the key first: use theirs.
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => read_key_file(key_path),
        Err(source) => Err(ArtifactError::io("create build key", key_path, source)),
    }
}

/// Decodes one line of 64 hex characters into 32 bytes.
fn decode_hex_32(contents: &[u8]) -> Result<[u8; 32], String> {
    let text = std::str::from_utf8(contents).map_err(|_| "not UTF-8 text".to_owned())?.trim();
    if text.len() != 64 {
        return Err(format!("expected 64 hex characters, found {}", text.len()));
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text, &mut bytes).map_err(|error| format!("not hex: {error}"))?;
    Ok(bytes)
}
