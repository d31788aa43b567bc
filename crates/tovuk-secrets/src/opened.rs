//! Opening an app's sealed config as the builder and runner receive it, all or nothing.

use crate::key::{MasterKey, OpenError, SealContext, Sealed};
use tovuk_api_types::SealedEnvVar;
use zeroize::Zeroizing;

/// An app's config, opened: name and value pairs for a process's environment.
pub type OpenedEnv = Vec<(String, Zeroizing<String>)>;

/// Why a sealed config could not be opened; names the variable, never its value.
#[derive(Debug, thiserror::Error)]
pub enum SealedEnvError {
    #[error("config value `{name}` is not stored as sealed bytes (bad hex); set it again: tovuk env set APP {name}")]
    Malformed { name: String },
    #[error("config value `{name}` cannot be opened: {source}")]
    Open {
        name: String,
        #[source]
        source: OpenError,
    },
}

/// Opens every value of `app_id`'s config; any value that fails opens none.
pub fn open_env(key: &MasterKey, app_id: &str, vars: &[SealedEnvVar]) -> Result<OpenedEnv, SealedEnvError> {
    let mut opened = Vec::with_capacity(vars.len());
    for var in vars {
        let malformed = || SealedEnvError::Malformed { name: var.name.clone() };
        let sealed = Sealed {
            key_id: var.key_id.clone(),
            nonce: hex::decode(&var.nonce).map_err(|_| malformed())?,
            ciphertext: hex::decode(&var.ciphertext).map_err(|_| malformed())?,
        };
        let context = SealContext { app_id, name: &var.name, version: var.version };
        let value =
            key.open(&context, &sealed).map_err(|source| SealedEnvError::Open { name: var.name.clone(), source })?;
        opened.push((var.name.clone(), value));
    }
    Ok(opened)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed_var(key: &MasterKey, app_id: &str, name: &str, value: &str) -> SealedEnvVar {
        let sealed = key.seal(&SealContext { app_id, name, version: 1 }, value).expect("seal");
        SealedEnvVar {
            name: name.into(),
            version: 1,
            key_id: sealed.key_id,
            nonce: hex::encode(sealed.nonce),
            ciphertext: hex::encode(sealed.ciphertext),
        }
    }

    #[test]
    fn opens_every_value_or_none_and_never_names_a_value() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = MasterKey::create(dir.path()).expect("key");
        let vars = vec![sealed_var(&key, "app_1", "A", "canary-value-a"), sealed_var(&key, "app_1", "B", "value-b")];
        let opened = open_env(&key, "app_1", &vars).expect("open");
        assert_eq!(
            opened.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect::<Vec<_>>(),
            [("A", "canary-value-a"), ("B", "value-b")]
        );

        // Another app's id: the context does not authenticate.
        let error = open_env(&key, "app_2", &vars).expect_err("wrong app");
        assert!(error.to_string().contains("`A`"), "{error}");
        assert!(!error.to_string().contains("canary"), "{error}");

        let other_dir = tempfile::tempdir().expect("tempdir");
        let other = MasterKey::create(other_dir.path()).expect("key");
        let error = open_env(&other, "app_1", &vars).expect_err("wrong key");
        assert!(matches!(error, SealedEnvError::Open { source: OpenError::WrongKey { .. }, .. }), "{error}");

        let mut bad = vars.clone();
        bad[1].nonce = "zz".into();
        assert!(matches!(open_env(&key, "app_1", &bad), Err(SealedEnvError::Malformed { .. })));
    }
}
