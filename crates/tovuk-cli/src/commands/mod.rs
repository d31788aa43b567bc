//! Command implementations and the error type they share.

mod addon;
mod app;
mod artifact;
mod caps;
mod check;
mod config;
mod cron;
mod deploy;
mod env;
mod hook;
mod logs;
mod ops;
mod plan;
mod preflight;
mod pricing;
mod queue;
mod service;
mod source;
mod sqlite;
mod status;
pub(crate) mod target;
mod token;

use crate::args::{Command, GlobalArgs};
use crate::exit::ExitStatus;
use crate::output;
use tovuk_api_types::{ApiError, ErrorBody, ErrorCode};
use tovuk_client::ClientError;

/// A command that did not succeed: what to print and which exit code it means.
#[derive(Debug)]
pub(crate) struct CliError {
    pub error: ApiError,
    pub status: ExitStatus,
    /// In `--json` mode the command already printed its one document (e.g. a failed
    /// check report), so the error must not add a second.
    pub json_printed: bool,
}

impl CliError {
    /// Bad usage: exit 2.
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            error: ApiError::new(ErrorCode::InvalidRequest, message),
            status: ExitStatus::Error,
            json_printed: false,
        }
    }

    /// The operation was refused or failed: exit 1.
    pub fn failed(code: ErrorCode, message: impl Into<String>) -> Self {
        CliError { error: ApiError::new(code, message), status: ExitStatus::Failure, json_printed: false }
    }

    pub fn next(mut self, next: impl Into<String>) -> Self {
        self.error.next = Some(next.into());
        self
    }

    pub fn already_printed(mut self, json_printed: bool) -> Self {
        self.json_printed = json_printed;
        self
    }
}

impl From<ClientError> for CliError {
    fn from(error: ClientError) -> Self {
        let status = match &error {
            ClientError::Api { status, .. } if *status < 500 => ExitStatus::Failure,
            _ => ExitStatus::Error,
        };
        CliError { error: error.to_api_error(), status, json_printed: false }
    }
}

pub(crate) type CommandResult = Result<ExitStatus, CliError>;

/// Runs one command and prints its error, if any, in the requested format.
pub(crate) fn run(command: Command, global: GlobalArgs) -> ExitStatus {
    let result = match command {
        Command::Server(_) => Err(CliError::usage("`tovuk server` is started by the binary's entry point")),
        Command::Check(args) => check::run(&args, &global),
        Command::Preflight(args) => block_on(preflight::run(&args, &global)),
        Command::Init(args) => check::init(&args, &global),
        Command::Target(command) => target::run(command, &global),
        Command::Status => block_on(status::run(&global)),
        Command::Store(command) => block_on(status::store(command, &global)),
        Command::App(command) => block_on(app::run(command, &global)),
        Command::Rollback(args) => block_on(app::rollback(args, &global)),
        Command::Token(command) => block_on(token::run(command, &global)),
        Command::Deploy(args) => block_on(deploy::run(args, &global)),
        Command::Ops(command) => block_on(ops::run(command, &global)),
        Command::Source(command) => block_on(source::run(command, &global)),
        Command::Logs(args) => block_on(logs::run(args, &global)),
        Command::Artifact(command) => block_on(artifact::run(command, &global)),
        Command::Env(command) => block_on(env::run(command, &global)),
        Command::Config(command) => block_on(config::run(command, &global)),
        Command::Pricing => block_on(pricing::pricing(&global)),
        Command::Usage { app } => block_on(pricing::usage(app.as_deref(), &global)),
        Command::Caps(command) => block_on(caps::run(command, &global)),
        Command::Service(command) => block_on(service::run(command, &global)),
        Command::Addon(command) => block_on(addon::run(command, &global)),
        Command::Sqlite(command) => block_on(sqlite::run(command, &global)),
        Command::Queue(command) => block_on(queue::run(command, &global)),
        Command::Cron(command) => block_on(cron::run(command, &global)),
        Command::Hook { name } => return hook::run(&name),
    };
    match result {
        Ok(status) => status,
        Err(failure) => {
            if global.json {
                if !failure.json_printed {
                    output::json(&ErrorBody { error: failure.error });
                }
            } else {
                output::note(format!("error: {}", failure.error.message));
                if let Some(next) = &failure.error.next {
                    output::note(format!("hint: {next}"));
                }
            }
            failure.status
        }
    }
}

/// API commands are async; one small runtime per invocation is plenty for a CLI.
fn block_on(future: impl std::future::Future<Output = CommandResult>) -> CommandResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::usage(format!("cannot start the async runtime: {error}")))?;
    runtime.block_on(future)
}
