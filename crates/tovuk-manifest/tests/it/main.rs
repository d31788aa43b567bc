//! Integration tests of `tovuk-manifest` through its public API: fixtures, docs examples, file hygiene.

mod docs;
mod expect;
mod files;
mod fixtures;

use std::path::PathBuf;

/// The workspace root, where `tests/fixtures/manifests/` and `docs/` live.
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}
