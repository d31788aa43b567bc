//! The `tovuk` command line: argument definitions, commands, human and `--json` output,
//! and exit codes.
//!
//! It depends on no server crate: it can do exactly what the API allows. `tovuk server`
//! is parsed here as plain data and handed to the entry point the binary injects.

mod archive;
mod args;
mod commands;
mod config;
mod connect;
mod contract;
mod exit;
mod output;
mod project_files;
mod prompt;

pub use args::ServerArgs;
pub use config::default_data_dir;
pub use exit::ExitStatus;

use clap::Parser;
use std::process::ExitCode;

/// Parses the command line and runs it. `run_server` starts the platform for `tovuk server`.
pub fn main(run_server: impl FnOnce(ServerArgs) -> ExitCode) -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = error.print();
            return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
        }
    };
    match cli.command {
        // A flag an older release took: say what replaced it rather than "unexpected argument".
        args::Command::Server(server_args) if server_args.keep_artifacts.is_some() => {
            output::note(
                "error: --keep-artifacts is gone: set how many deploys each app keeps to roll back to (and their \
                 artifacts) in the server config instead, e.g. `[retention]` `releases = 10`, and pass it with --config FILE",
            );
            ExitCode::from(2)
        }
        args::Command::Server(server_args) => run_server(*server_args),
        command => commands::run(command, cli.global).into(),
    }
}
