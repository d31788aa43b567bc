//! Secrets and config on the wire: changes, metadata-only listings, history, blockers,
//! and the sealed values the builder and runner open. No shape here carries a plaintext
//! value except the change request, whose `Debug` prints names only.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `PUT /v1/apps/{app}/env`: one change, applied as one revision or not at all.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct EnvChangeRequest {
    /// Names to set, with their values.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub unset: Vec<String>,
    /// Start a release of the current artifact with the new config (`--no-restart` sends false).
    #[serde(default = "yes")]
    pub restart: bool,
}

fn yes() -> bool {
    true
}

impl std::fmt::Debug for EnvChangeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvChangeRequest")
            .field("set", &self.set.keys().collect::<Vec<_>>())
            .field("unset", &self.unset)
            .field("restart", &self.restart)
            .finish()
    }
}

/// A token named in config metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenMention {
    pub id: String,
    /// `null` when the token no longer exists.
    pub name: Option<String>,
}

/// One set name: metadata only, never the value nor anything derived from it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvVar {
    pub name: String,
    /// 1 for the first value, one more each time it is set.
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    pub updated_by: Option<TokenMention>,
}

/// A name the app's latest deploy needs that is not set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MissingConfig {
    pub name: String,
    /// `[config] required` or `[build] secrets`.
    pub needed_by: String,
    pub next: String,
}

/// `GET /v1/apps/{app}/env`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvList {
    pub app: String,
    /// The app's config revision: one more per change.
    pub config_rev: i64,
    pub vars: Vec<EnvVar>,
    /// What the latest deploy's `tovuk.toml` needs and is not set.
    pub missing: Vec<MissingConfig>,
}

/// One change in `tovuk env history`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvChange {
    pub rev: i64,
    pub at: String,
    pub by: Option<TokenMention>,
    pub set: Vec<String>,
    pub unset: Vec<String>,
    /// The config release the change started, if it started one.
    pub release_deploy_id: Option<String>,
}

/// `GET /v1/apps/{app}/env/history`, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvHistory {
    pub app: String,
    pub changes: Vec<EnvChange>,
}

/// The answer to a change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvChangeResult {
    pub app: String,
    pub change: EnvChange,
    /// The release of the current artifact with the new config, when one started.
    pub release: Option<crate::Deploy>,
    /// What to run next, in order.
    pub next: Vec<String>,
}

/// `POST /v1/apps/{app}/rollback`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RollbackRequest {
    /// The deploy whose artifact to release again; default the one before the current.
    #[serde(default)]
    pub deploy_id: Option<String>,
    /// Release it with the config as it is now instead of the revision it ran with.
    #[serde(default)]
    pub current_config: bool,
}

/// The answer to a rollback.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollbackResult {
    pub app: String,
    /// The new deploy releasing the target's artifact, `artifact_ready`.
    pub deploy: crate::Deploy,
    /// The deploy whose artifact it releases.
    pub target: String,
    /// Whether it runs with the config the target ran with (else the current one).
    pub target_config: bool,
    /// What a rollback does not bring back.
    pub not_reverted: Vec<String>,
    /// What to run next.
    pub next: Vec<String>,
}

/// Why a deploy may not build yet (a readiness blocker): a name it needs is not set, or
/// the config its routes' auth needs is not there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigBlocker {
    /// The blocker's type: `config` or `auth`.
    pub kind: String,
    /// The capability it is about: `config` for a name the contract asks for, `edge-auth`
    /// for the routes' auth.
    #[serde(default)]
    pub capability: String,
    /// The variable that clears it (the binding the app and the router read).
    pub name: String,
    /// What asks for it: `[config] required`, `[build] secrets`, or `[[routes]] /admin (auth = "session")`.
    pub needed_by: String,
    /// The route that needs it, for an auth blocker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The condition that must hold.
    pub expected: String,
    /// What the platform sees now.
    pub observed: String,
    /// The failing check, by name (`config_set`, `auth_mode`, `auth_issuer`, ...).
    #[serde(default)]
    pub check: String,
    /// The exact command that clears it.
    pub next: String,
}

/// A config value as the builder and runner receive it: sealed, opened only to start a process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedEnvVar {
    pub name: String,
    pub version: i64,
    pub key_id: String,
    /// Hex.
    pub nonce: String,
    /// Hex.
    pub ciphertext: String,
}
