//! Environment variables the platform sets for every process, which a user may not set.

/// Set for every app or build process: `PORT` and `HOST` by the runner, `HOME` and `PATH` by
/// the sandbox.
pub const RESERVED_ENV_NAMES: [&str; 4] = ["PORT", "HOST", "HOME", "PATH"];

/// Prefix of the platform's own variables (`TOVUK_APP`, `TOVUK_DEPLOY_ID`, ...).
pub const RESERVED_ENV_PREFIX: &str = "TOVUK_";
