//! The secrets master key at start: loaded, created only when no value needs an older
//! one, and refused when it is not the key the stored values were sealed with.

use anyhow::bail;
use std::path::Path;
use tovuk_secrets::{KeyError, MasterKey};
use tovuk_store::Store;

/// The key the stored config values open with. Nothing is written when it fails.
pub(crate) async fn prepare(keys_dir: &Path, store: &Store) -> anyhow::Result<MasterKey> {
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
