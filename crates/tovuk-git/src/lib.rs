//! Source intake: the smart-HTTP git frontend, the managed hooks, archive uploads and
//! source inspection.
//!
//! Git itself speaks the protocol (`git http-backend`, `git receive-pack`); this crate
//! runs it with a platform-owned configuration and reads repositories with git's own
//! plumbing. It knows nothing of tokens or the store: `tovuk-control` decides who may.

pub mod archive;
mod cgi;
mod contract;
mod git;
mod import;
mod inspect;
mod repos;
mod sideband;

pub use cgi::{BackendRequest, serve_backend};
pub use contract::{ManifestCheck, check_commit};
pub use git::{GitError, ObjectEnv, ZERO_SHA};
pub use import::{ImportedCommit, import_tree, move_ref};
pub use inspect::{CommitInfo, RefInfo, commits, is_ancestor, list_refs, resolve_ref};
pub use repos::{HOOK_NAMES, Repos};
