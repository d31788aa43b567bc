//! `ArtifactManifest`, its canonical JSON, and the domain-separated signature over it.

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::BuildKey;

/// The only manifest schema this version writes and reads.
pub const MANIFEST_SCHEMA: u32 = 1;
/// The only archive format this version writes: a tar stream compressed with zstd.
pub const ARCHIVE_FORMAT: &str = "tar+zstd";
/// Prefix of every signed message, so an artifact signature can never be
/// replayed as a signature over anything else the build key might sign.
pub const SIGNATURE_DOMAIN: &[u8] = b"tovuk-artifact-v1\n";

/// What a build produced, as stored in `<hex>.json` next to the archive and signed by the build key.
///
/// The field order of this struct is the canonical JSON field order. Fields
/// may only be appended (with `#[serde(default)]`) and never reordered, or old
/// signatures would still verify (they cover the stored bytes) but new
/// manifests would serialize differently.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ArtifactManifest {
    /// Manifest schema version, [`MANIFEST_SCHEMA`].
    pub schema: u32,
    /// App name.
    pub app: String,
    /// Deploy id (`dep_...`) whose build produced this artifact.
    pub deploy_id: String,
    /// Build id (`bld_...`).
    pub build_id: String,
    /// The git commit that was built.
    pub commit_sha: String,
    /// `sha256:<hex>` of the archive file; filled by [`crate::seal`].
    pub digest: String,
    /// Size of the archive file in bytes; filled by [`crate::seal`].
    pub size_bytes: u64,
    /// When the artifact was sealed, RFC 3339 UTC.
    pub created_at: String,
    /// The command the runner starts, if the manifest names one.
    pub run_command: Option<String>,
    /// Archive format, [`ARCHIVE_FORMAT`].
    pub format: String,
    /// Number of regular files and symlinks in the archive ([`crate::PackSummary::files`]).
    pub files: u64,
}

impl ArtifactManifest {
    /// A manifest with `schema` and `format` set and `digest`/`size_bytes` left for [`crate::seal`].
    pub fn new(
        app: String,
        deploy_id: String,
        build_id: String,
        commit_sha: String,
        created_at: String,
        run_command: Option<String>,
        files: u64,
    ) -> ArtifactManifest {
        ArtifactManifest {
            schema: MANIFEST_SCHEMA,
            app,
            deploy_id,
            build_id,
            commit_sha,
            digest: String::new(),
            size_bytes: 0,
            created_at,
            run_command,
            format: ARCHIVE_FORMAT.to_owned(),
            files,
        }
    }
}

/// The canonical JSON of a manifest: compact `serde_json`, fields in struct order.
///
/// [`crate::seal`] stores exactly these bytes in `<hex>.json` and signs exactly
/// these bytes; [`crate::verify`] checks the signature over the bytes read
/// from disk before parsing them, and never re-serializes.
pub fn canonical_json(manifest: &ArtifactManifest) -> Vec<u8> {
    match serde_json::to_vec(manifest) {
        Ok(bytes) => bytes,
        // Strings, integers and an Option<String> into a Vec cannot fail to serialize.
        Err(error) => unreachable!("serializing an artifact manifest failed: {error}"),
    }
}

/// Signs a manifest: `ed25519(SIGNATURE_DOMAIN ++ canonical_json(manifest))`, hex-encoded.
pub fn sign(key: &BuildKey, manifest: &ArtifactManifest) -> String {
    sign_manifest_bytes(key, &canonical_json(manifest))
}

/// Signs manifest bytes exactly as stored, hex-encoded.
pub(crate) fn sign_manifest_bytes(key: &BuildKey, manifest_json: &[u8]) -> String {
    hex::encode(key.sign_raw(&signed_message(manifest_json)).to_bytes())
}

/// Why a stored signature does not vouch for stored manifest bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignatureProblem {
    /// The signature file does not hold 64 bytes of hex.
    Malformed,
    /// A well-formed signature that does not verify: changed bytes or another key.
    Invalid,
}

/// Checks `signature_hex` as a signature by `key` over manifest bytes exactly as stored.
pub(crate) fn check_manifest_signature(
    key: &VerifyingKey,
    manifest_json: &[u8],
    signature_hex: &str,
) -> Result<(), SignatureProblem> {
    let mut signature_bytes = [0u8; 64];
    hex::decode_to_slice(signature_hex.trim(), &mut signature_bytes).map_err(|_| SignatureProblem::Malformed)?;
    let signature = Signature::from_bytes(&signature_bytes);
    // verify_strict rejects weak keys and malleable signatures.
    key.verify_strict(&signed_message(manifest_json), &signature).map_err(|_| SignatureProblem::Invalid)
}

fn signed_message(manifest_json: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNATURE_DOMAIN.len() + manifest_json.len());
    message.extend_from_slice(SIGNATURE_DOMAIN);
    message.extend_from_slice(manifest_json);
    message
}
