//! Signed build artifacts: deterministic tar+zstd packing, sha256 digests, ed25519 signatures by the build key.
//!
//! A build ends in an artifact: the build output packed by [`pack`], sealed by
//! [`seal`] into `<data>/artifacts/` as `<hex>.tar.zst` (the archive),
//! `<hex>.json` (the [`ArtifactManifest`], canonical JSON) and `<hex>.sig`
//! (an ed25519 signature by the platform's [`BuildKey`] over
//! `b"tovuk-artifact-v1\n"` followed by exactly the `.json` bytes). The
//! builder produces artifacts; the control plane and the runner [`verify`]
//! them with the public key alone ([`load_public_key`]).
//!
//! This crate owns the artifact file layout, the key files and the signature
//! scheme. It does no networking and no async: callers run it on
//! `spawn_blocking`. It does not unpack archives.

mod error;
mod fs_util;
mod key;
mod manifest;
mod pack;
mod store;

pub use ed25519_dalek::VerifyingKey;

pub use error::ArtifactError;
pub use key::{BuildKey, KEY_FILE_NAME, PUBLIC_KEY_FILE_NAME, load_public_key};
pub use manifest::{ARCHIVE_FORMAT, ArtifactManifest, MANIFEST_SCHEMA, SIGNATURE_DOMAIN, canonical_json, sign};
pub use pack::{PackOptions, PackSummary, pack, pack_with};
pub use store::{ArtifactPaths, Expected, Verification, create_temp_archive, digest_file, read_manifest, seal, verify};
