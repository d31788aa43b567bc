//! App secrets: names and values an app's environment may hold, the master key that seals stored values,
//! masking values in log lines, and the env file format of `tovuk config template` / `tovuk config apply`.
//!
//! Values are sealed with XChaCha20-Poly1305 under one platform master key,
//! `<data>/keys/secrets.key` ([`MasterKey`]), bound to their app, name and
//! version ([`SealContext`]) so stored rows cannot be swapped. Plaintext is
//! handed out in [`zeroize::Zeroizing`] wrappers, and no error message or
//! `Debug` output in this crate holds a value or key bytes.
//!
//! Synchronous and free of I/O except for the key file and
//! [`Masker::find_in_reader`]: callers run those on `spawn_blocking`.

mod envfile;
mod key;
mod mask;
mod names;
mod opened;

pub use envfile::{EnvEntry, EnvFileError, EnvValue, TemplateEntry, parse_env_file, render_template};
pub use key::{KeyError, MASTER_KEY_FILE, MasterKey, OpenError, SealContext, SealError, Sealed};
pub use mask::{MASK, MIN_MASKED_LEN, Masker};
pub use names::{MAX_VALUE_BYTES, NameError, ValueError, validate_name, validate_value};
pub use opened::{OpenedEnv, SealedEnvError, open_env};
pub use zeroize::Zeroizing;
