//! `ArtifactError`: what can go wrong packing, signing, storing and reading artifacts.

use std::io;
use std::path::PathBuf;

/// Errors from this crate. Each message names the value and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// A filesystem operation failed for a reason the other variants do not cover.
    #[error("failed to {operation} `{path}`: {source}")]
    Io {
        /// What was being done, as a verb phrase ("read build key").
        operation: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The build key file can be read by group or others.
    #[error(
        "build key `{path}` has mode {mode:04o}, so users other than its owner can read it; run `chmod 600 {path}`",
        path = path.display()
    )]
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// The keys directory can be written by group or others, who could swap the key.
    #[error(
        "keys directory `{path}` has mode {mode:04o}, so users other than its owner can replace the build key; run `chmod 700 {path}`",
        path = path.display()
    )]
    KeysDirPermissions {
        /// The keys directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// The build key file exists but does not hold a 32-byte hex seed.
    #[error(
        "build key `{path}` is malformed ({reason}); restore it from a backup, or delete it to create a new key (artifacts signed with the old key will then fail verification)",
        path = path.display()
    )]
    MalformedKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with its contents.
        reason: String,
    },

    /// There is no public build key next to where the key should be.
    #[error(
        "public build key `{path}` not found; start the builder once to create the build key, or copy `build.ed25519.pub` from the builder's keys directory",
        path = path.display()
    )]
    PublicKeyNotFound {
        /// The expected `build.ed25519.pub`.
        path: PathBuf,
    },

    /// The public build key file does not hold a valid hex ed25519 public key.
    #[error(
        "public build key `{path}` is malformed ({reason}); copy `build.ed25519.pub` again from the builder's keys directory",
        path = path.display()
    )]
    MalformedPublicKey {
        /// The public key file.
        path: PathBuf,
        /// What is wrong with its contents.
        reason: String,
    },

    /// The operating system could not provide random bytes for a new key.
    #[error("failed to get random bytes from the operating system for a new build key: {0}")]
    Random(getrandom::Error),

    /// A digest is not `sha256:` followed by 64 lowercase hex characters.
    #[error(
        "artifact digest `{digest}` is not `sha256:` followed by 64 lowercase hex characters; pass the digest exactly as recorded on the deploy"
    )]
    InvalidDigest {
        /// The rejected digest.
        digest: String,
    },

    /// A deploy id that cannot name an artifact manifest.
    #[error("deploy id `{deploy_id}` is not letters, digits and `_`; pass the deploy id exactly as recorded")]
    InvalidDeployId {
        /// The rejected id.
        deploy_id: String,
    },

    /// The build output root is missing or is not a directory.
    #[error(
        "build output root `{path}` is not a directory; check that the build ran in this checkout",
        path = path.display()
    )]
    RootNotADirectory {
        /// The root passed to `pack`.
        path: PathBuf,
    },

    /// A listed output is not a usable relative path.
    #[error("build output `{output}` {reason}; check [build] output in tovuk.toml")]
    InvalidOutput {
        /// The output as listed.
        output: String,
        /// Why it cannot be used.
        reason: String,
    },

    /// A listed output does not exist after the build.
    #[error(
        "build output `{output}` does not exist under `{root}` after the build; check [build] output in tovuk.toml",
        root = root.display()
    )]
    OutputNotFound {
        /// The output as listed.
        output: String,
        /// The build output root it was looked up in.
        root: PathBuf,
    },

    /// A symlink in the build output points outside the output root.
    #[error(
        "symlink `{path}` points to `{target}`, outside the build output and the system directories every release sees; make it a relative link to a file inside the output, or copy the file in",
        target = target.display()
    )]
    SymlinkEscapes {
        /// The symlink, relative to the root.
        path: String,
        /// Its target as stored in the link.
        target: PathBuf,
    },

    /// Resolving a symlink went through too many links, as in a loop.
    #[error("symlink `{path}` goes through more than {max} symlinks (a loop?); fix or remove the link")]
    SymlinkLoop {
        /// The symlink, relative to the root.
        path: String,
        /// The limit.
        max: usize,
    },

    /// A file name in the build output is not UTF-8.
    #[error(
        "path `{path}` in the build output is not valid UTF-8; rename it or add it to [build] exclude",
        path = path.display()
    )]
    NonUtf8Path {
        /// The path, relative to the root.
        path: PathBuf,
    },

    /// A file changed while it was being packed.
    #[error("`{path}` changed while it was being packed; make sure no build process is still writing to the output")]
    FileChanged {
        /// The file, relative to the root.
        path: String,
    },

    /// The manifest and signature just written do not verify when read back (the disk
    /// changed them, or something outside the platform wrote there).
    #[error(
        "artifact manifest `{path}` did not verify right after it was sealed; check the disk and retry the build",
        path = path.display()
    )]
    SealUnverified {
        /// The `<hex>.json` file.
        path: PathBuf,
    },

    /// No manifest is stored for a digest.
    #[error(
        "artifact manifest `{path}` not found; check the digest, or redeploy to build the artifact again",
        path = path.display()
    )]
    ManifestNotFound {
        /// The expected `<hex>.json`.
        path: PathBuf,
    },

    /// A stored manifest is not valid JSON of the expected shape.
    #[error(
        "artifact manifest `{path}` is malformed: {source}; redeploy to build the artifact again",
        path = path.display()
    )]
    MalformedManifest {
        /// The `<hex>.json` file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },

    /// A manifest handed to `seal` has a field this version cannot produce.
    #[error(
        "artifact manifest field `{field}` is `{value}`, expected `{expected}`; build the manifest with `ArtifactManifest::new`"
    )]
    UnsupportedManifest {
        /// The field name.
        field: &'static str,
        /// Its value.
        value: String,
        /// The only supported value.
        expected: String,
    },
}

impl ArtifactError {
    /// Builds an [`ArtifactError::Io`].
    pub(crate) fn io(operation: &'static str, path: impl Into<PathBuf>, source: io::Error) -> ArtifactError {
        ArtifactError::Io { operation, path: path.into(), source }
    }
}
