//! Ids, names and lifecycle states shared by every tovuk crate.
//!
//! This crate is pure data: no I/O, no async, no serialization. Parsing and validation
//! live here so the CLI, the API and the store agree on what a valid name is.

mod branch;
mod deploy_state;
mod env_names;
mod id;
pub mod instance_limits;
pub mod layout;
mod name;
pub mod resources;
pub mod values;

pub use branch::validate_branch_name;
pub use deploy_state::{DeployState, IllegalTransition};
pub use env_names::{RESERVED_ENV_NAMES, RESERVED_ENV_PREFIX};
pub use id::{AppId, BuildId, CronRunId, DeployId, IdKind, OperationId, ResourceId, TokenId, parse_id};
pub use layout::DataLayout;
pub use name::{AppName, NameError, validate_dns_label};

/// Where a project's checkout is built and where its release runs: one path for both, so
/// anything a build bakes an absolute path into (a virtualenv, a shebang, an rpath) runs.
pub const PROJECT_ROOT: &str = "/workspace/source";

/// The project's own tool directories, first on `PATH` in builds and releases: a Python
/// virtualenv's and Node's installed commands run by name (`gunicorn`, `next`), as the
/// `Procfile` of a Heroku-style app expects.
pub const PROJECT_PATH: &str = "/workspace/source/.venv/bin:/workspace/source/node_modules/.bin";
