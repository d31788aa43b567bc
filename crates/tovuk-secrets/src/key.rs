//! The secrets master key `<keys_dir>/secrets.key` and sealing values with it (XChaCha20-Poly1305).

#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// File name of the master key inside the keys directory.
pub const MASTER_KEY_FILE: &str = "secrets.key";

const KEY_LEN: usize = 32;
const KEY_FILE_MODE: u32 = 0o600;
const KEYS_DIR_MODE: u32 = 0o700;

/// Hashed before the key to derive its id, so the id is useless as key material or as another hash of it.
const KEY_ID_DOMAIN: &[u8] = b"tovuk secrets key id\0";
/// First bytes of the associated data, so a ciphertext made for another purpose never opens as a secret.
const AAD_DOMAIN: &[u8] = b"tovuk secrets v1\0";

/// The key every stored secret is sealed with: `<keys_dir>/secrets.key`, 32 random bytes, mode 0600.
///
/// Losing the file loses every stored secret, so it is never created over an
/// existing one. The bytes are zeroized on drop and never printed: `Debug`
/// shows only [`MasterKey::key_id`].
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    key_id: String,
}

/// What a sealed value belongs to. It is authenticated with the ciphertext, so
/// a stored row copied to another app, name or version fails to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealContext<'a> {
    /// The app's id.
    pub app_id: &'a str,
    /// The variable's name.
    pub name: &'a str,
    /// The value's version.
    pub version: i64,
}

/// A sealed value as stored: which key sealed it, the nonce, and the ciphertext with its 16-byte tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// [`MasterKey::key_id`] of the key that sealed it.
    pub key_id: String,
    /// The 24-byte XChaCha20 nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext followed by the Poly1305 tag.
    pub ciphertext: Vec<u8>,
}

/// Why the master key could not be created or loaded. Each message names the path and the fix.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// There is no key file.
    #[error(
        "the secrets master key {path} is missing: restore it from your backup (without it the stored secrets cannot be read); nothing was changed",
        path = path.display()
    )]
    Missing {
        /// The expected key file.
        path: PathBuf,
    },

    /// The key file does not hold exactly 32 bytes.
    #[error(
        "the secrets master key {path} is {len} bytes but must be exactly 32: restore it from your backup; nothing was changed",
        path = path.display()
    )]
    WrongLength {
        /// The key file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
    },

    /// Group or others have permissions on the key file.
    #[error(
        "the secrets master key {path} has mode {mode:04o}, so users other than its owner can reach it; run `chmod 600 {path}`",
        path = path.display()
    )]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// `create` found a key file already there.
    #[error(
        "the secrets master key {path} already exists; load it instead (a new key would make every stored secret unreadable); nothing was changed",
        path = path.display()
    )]
    Exists {
        /// The existing key file.
        path: PathBuf,
    },

    /// The system random number generator failed.
    #[error("could not get random bytes for a new secrets master key: {0}")]
    Random(getrandom::Error),

    /// A filesystem operation failed for a reason the other variants do not cover.
    #[error("failed to {operation} {path}: {source}", path = path.display())]
    Io {
        /// What was being done, as a verb phrase ("read secrets master key").
        operation: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Why a value could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The system random number generator failed to give a nonce.
    #[error("could not get random bytes for a nonce: {0}; nothing was stored")]
    Random(getrandom::Error),

    /// The cipher refused the input (only a plaintext far beyond any value limit does that).
    #[error("the value could not be encrypted; nothing was stored")]
    Encrypt,
}

/// Why a sealed value could not be opened. No variant carries plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Another key sealed the value; nothing was decrypted.
    #[error(
        "the stored value was sealed with secrets key `{expected}` but this server's key is `{actual}`: restore the matching secrets.key from your backup"
    )]
    WrongKey {
        /// The key id recorded with the value.
        expected: String,
        /// The id of the key at hand.
        actual: String,
    },

    /// The ciphertext, nonce or context does not authenticate, or the plaintext is not UTF-8.
    #[error(
        "the stored value can't be decrypted: it was altered or belongs to another app/name; set it again with `tovuk env set`"
    )]
    Corrupt,
}

impl MasterKey {
    /// Creates `<keys_dir>/secrets.key` from 32 fresh random bytes, creating `keys_dir` (0700) if missing.
    ///
    /// Refuses with [`KeyError::Exists`] if the file exists. The key is
    /// written to a temp file, fsynced, then hard-linked into place: a link
    /// never replaces an existing file, and the key appears complete or not at all.
    pub fn create(keys_dir: &Path) -> Result<MasterKey, KeyError> {
        let key_path = keys_dir.join(MASTER_KEY_FILE);
        ensure_keys_dir(keys_dir)?;
        match fs::symlink_metadata(&key_path) {
            Ok(_) => return Err(KeyError::Exists { path: key_path }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(io_error("read secrets master key", &key_path, source)),
        }

        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(&mut *bytes).map_err(KeyError::Random)?;

        let temp_path = temp_path_for(keys_dir)?;
        let written = write_new_file(&temp_path, &*bytes);
        if let Err(error) = written {
            let _ = fs::remove_file(&temp_path);
            return Err(error);
        }
        let linked = fs::hard_link(&temp_path, &key_path);
        // Best effort: the temp name is ours alone and a leftover holds the same key as the real file.
        let _ = fs::remove_file(&temp_path);
        match linked {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                return Err(KeyError::Exists { path: key_path });
            }
            Err(source) => return Err(io_error("create secrets master key", &key_path, source)),
        }
        sync_dir(keys_dir)?;
        Ok(MasterKey::from_bytes(bytes))
    }

    /// Loads `<keys_dir>/secrets.key`.
    ///
    /// Refuses a missing file, one that group or others have any permission
    /// on, and one that is not exactly 32 bytes, naming the path and the fix.
    pub fn load(keys_dir: &Path) -> Result<MasterKey, KeyError> {
        let key_path = keys_dir.join(MASTER_KEY_FILE);
        let mut file = match File::open(&key_path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Err(KeyError::Missing { path: key_path }),
            Err(source) => return Err(io_error("open secrets master key", &key_path, source)),
        };
        // Metadata of the open handle, so the checks and the read see the same file.
        let metadata = file.metadata().map_err(|source| io_error("read secrets master key", &key_path, source))?;
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::TooOpen { path: key_path, mode });
        }
        if !metadata.is_file() {
            let source = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
            return Err(io_error("read secrets master key", &key_path, source));
        }
        if metadata.len() != KEY_LEN as u64 {
            return Err(KeyError::WrongLength { path: key_path, len: metadata.len() });
        }

        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        match file.read_exact(&mut *bytes) {
            Ok(()) => {}
            // The file shrank since the metadata was read.
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(KeyError::WrongLength { path: key_path, len: metadata.len() });
            }
            Err(source) => return Err(io_error("read secrets master key", &key_path, source)),
        }
        // The file grew since the metadata was read.
        let mut extra = [0u8; 1];
        match file.read(&mut extra) {
            Ok(0) => {}
            Ok(_) => return Err(KeyError::WrongLength { path: key_path, len: metadata.len() + 1 }),
            Err(source) => return Err(io_error("read secrets master key", &key_path, source)),
        }
        Ok(MasterKey::from_bytes(bytes))
    }

    /// `sk_` and 16 lowercase hex characters: the first 8 bytes of
    /// `sha256(b"tovuk secrets key id\0" || key)`.
    ///
    /// Stored with each sealed value, so a value sealed by another key is
    /// reported as such instead of as corruption.
    pub fn key_id(&self) -> String {
        self.key_id.clone()
    }

    /// A 32-byte key for `purpose` and `context` (an app's session cookies, say), derived
    /// from this key: the same on every node that holds it and across restarts, and telling
    /// nothing of it. `sha256(b"tovuk derived key\0" || key || purpose || 0 || context)`.
    pub fn derive(&self, purpose: &str, context: &str) -> Zeroizing<[u8; 32]> {
        let mut hash = Sha256::new();
        hash.update(b"tovuk derived key\0");
        hash.update(self.bytes.as_slice());
        hash.update(purpose.as_bytes());
        hash.update([0]);
        hash.update(context.as_bytes());
        Zeroizing::new(hash.finalize().into())
    }

    /// Encrypts `plaintext` for `context` with a fresh random 24-byte nonce.
    pub fn seal(&self, context: &SealContext<'_>, plaintext: &str) -> Result<Sealed, SealError> {
        let nonce = XNonce::try_generate().map_err(SealError::Random)?;
        let aad = associated_data(context);
        let ciphertext = self
            .cipher()
            .encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: &aad })
            .map_err(|_| SealError::Encrypt)?;
        Ok(Sealed { key_id: self.key_id(), nonce: nonce.to_vec(), ciphertext })
    }

    /// Decrypts `sealed`, which must have been sealed by this key for exactly `context`.
    ///
    /// Checks the key id first and decrypts nothing when it differs.
    pub fn open(&self, context: &SealContext<'_>, sealed: &Sealed) -> Result<Zeroizing<String>, OpenError> {
        if sealed.key_id != self.key_id {
            return Err(OpenError::WrongKey { expected: sealed.key_id.clone(), actual: self.key_id() });
        }
        let nonce = <&XNonce>::try_from(sealed.nonce.as_slice()).map_err(|_| OpenError::Corrupt)?;
        let aad = associated_data(context);
        let plaintext = self
            .cipher()
            .decrypt(nonce, Payload { msg: &sealed.ciphertext, aad: &aad })
            .map_err(|_| OpenError::Corrupt)?;
        match String::from_utf8(plaintext) {
            Ok(text) => Ok(Zeroizing::new(text)),
            Err(error) => {
                error.into_bytes().zeroize();
                Err(OpenError::Corrupt)
            }
        }
    }

    fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> MasterKey {
        let digest = Sha256::new().chain_update(KEY_ID_DOMAIN).chain_update(&bytes[..]).finalize();
        let key_id = format!("sk_{}", hex::encode(&digest[..8]));
        MasterKey { bytes, key_id }
    }

    /// A cipher for one call; the `zeroize` feature wipes its copy of the key on drop.
    fn cipher(&self) -> XChaCha20Poly1305 {
        let key: &Key = (&*self.bytes).into();
        XChaCha20Poly1305::new(key)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("MasterKey").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// The associated data for `context`: a domain, then each string as a u64
/// big-endian length and its bytes, then the version as i64 big-endian.
///
/// Length prefixes keep the encoding unambiguous: ("ab", "c") and ("a", "bc") differ.
fn associated_data(context: &SealContext<'_>) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_DOMAIN.len() + 24 + context.app_id.len() + context.name.len());
    aad.extend_from_slice(AAD_DOMAIN);
    for field in [context.app_id, context.name] {
        aad.extend_from_slice(&(field.len() as u64).to_be_bytes());
        aad.extend_from_slice(field.as_bytes());
    }
    aad.extend_from_slice(&context.version.to_be_bytes());
    aad
}

/// Creates `keys_dir` as 0700 if missing.
fn ensure_keys_dir(keys_dir: &Path) -> Result<(), KeyError> {
    match fs::metadata(keys_dir) {
        Ok(metadata) if metadata.is_dir() => Ok(()),
        Ok(_) => Err(io_error(
            "use as keys directory",
            keys_dir,
            io::Error::new(io::ErrorKind::NotADirectory, "it is not a directory"),
        )),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            DirBuilder::new()
                .recursive(true)
                .mode(KEYS_DIR_MODE)
                .create(keys_dir)
                .map_err(|source| io_error("create keys directory", keys_dir, source))?;
            // The umask may have removed bits we asked for; make the mode exact.
            fs::set_permissions(keys_dir, fs::Permissions::from_mode(KEYS_DIR_MODE))
                .map_err(|source| io_error("set permissions on keys directory", keys_dir, source))
        }
        Err(source) => Err(io_error("read keys directory", keys_dir, source)),
    }
}

/// A fresh temp path in `keys_dir`, so the hard link into place stays on one filesystem.
fn temp_path_for(keys_dir: &Path) -> Result<PathBuf, KeyError> {
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(KeyError::Random)?;
    Ok(keys_dir.join(format!(".{MASTER_KEY_FILE}.{}.tmp", hex::encode(suffix))))
}

/// Creates `path` exclusively with mode 0600 (umask notwithstanding), writes `contents` and fsyncs it.
fn write_new_file(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(KEY_FILE_MODE)
        .open(path)
        .map_err(|source| io_error("create", path, source))?;
    file.set_permissions(fs::Permissions::from_mode(KEY_FILE_MODE))
        .map_err(|source| io_error("set permissions on", path, source))?;
    file.write_all(contents).map_err(|source| io_error("write secrets master key", path, source))?;
    file.sync_all().map_err(|source| io_error("sync secrets master key", path, source))
}

/// Fsyncs a directory so the new link survives a crash.
fn sync_dir(dir: &Path) -> Result<(), KeyError> {
    File::open(dir).and_then(|handle| handle.sync_all()).map_err(|source| io_error("sync directory", dir, source))
}

fn io_error(operation: &'static str, path: &Path, source: io::Error) -> KeyError {
    KeyError::Io { operation, path: path.to_path_buf(), source }
}
