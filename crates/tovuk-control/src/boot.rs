//! Opening the control plane's durable state at start: the store, the first admin token
//! and the secrets master key. Only the control plane opens the store; the server that
//! wires the roles holds this opaque handle.

use anyhow::bail;
use std::path::Path;
use tovuk_secrets::{KeyError, MasterKey};
use tovuk_store::{Store, TokenScope};

/// The opened state store. Opening refuses a foreign, corrupted or newer store and
/// leaves it as it was.
#[derive(Clone)]
pub struct ControlStore {
    pub(crate) store: Store,
}

impl ControlStore {
    /// Checks the store as a start does (`tovuk server --check-store`), writing nothing.
    pub async fn check(state_file: &Path) -> anyhow::Result<()> {
        Ok(Store::check(state_file).await?)
    }

    pub async fn open(state_file: &Path) -> anyhow::Result<ControlStore> {
        Ok(ControlStore { store: Store::open(state_file).await? })
    }

    /// A new admin token; returns its secret, which is shown once.
    pub async fn create_admin_token(&self, name: &str) -> anyhow::Result<String> {
        let (token, secret) = self.store.create_token(name, TokenScope::Admin).await?;
        tracing::debug!(token_id = %token.id, "admin token created");
        Ok(secret)
    }

    /// The key the stored config values open with (see [`prepare_secrets_key`]).
    pub async fn secrets_key(&self, keys_dir: &Path) -> anyhow::Result<MasterKey> {
        prepare_secrets_key(keys_dir, &self.store).await
    }

    /// Closes the pool, checkpointing the WAL, so a clean shutdown leaves one file.
    pub async fn close(&self) {
        self.store.close().await;
    }
}

/// The key the stored config values open with: loaded, created only when no value needs
/// an older one, and refused when it is not the key the stored values were sealed with.
/// Nothing is written when it fails.
async fn prepare_secrets_key(keys_dir: &Path, store: &Store) -> anyhow::Result<MasterKey> {
    let sealed = store.secret_key_ids().await?;
    let values: i64 = sealed.iter().map(|(_, count)| count).sum();
    let key = match MasterKey::load(keys_dir) {
        Ok(key) => key,
        // A fresh platform, or one that never stored a value: nothing can be lost.
        Err(KeyError::Missing { .. }) if sealed.is_empty() => {
            let key = MasterKey::create(keys_dir)?;
            tracing::info!(key_id = %key.key_id(), "secrets master key created (mode 0600)");
            return Ok(key);
        }
        Err(error @ KeyError::Missing { .. }) => {
            bail!("{error}; {values} stored config values were sealed with it")
        }
        Err(error) => return Err(error.into()),
    };
    if let Some((other, count)) = sealed.iter().find(|(id, _)| *id != key.key_id()) {
        bail!(
            "{} is not the key {count} stored config values were sealed with (this file is key {}, they need key {other}): \
             put the original key file back; nothing was changed",
            keys_dir.join(tovuk_secrets::MASTER_KEY_FILE).display(),
            key.key_id(),
        );
    }
    Ok(key)
}
