//! Exit codes: one enum, documented in `tovuk --help`.

use std::process::ExitCode;

/// What a command's exit code means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It worked.
    Success = 0,
    /// The operation failed or was refused: validation, not found, conflict, auth denied.
    Failure = 1,
    /// Usage error, or the platform could not be reached or answered 5xx.
    Error = 2,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status as u8)
    }
}

pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  the operation failed or was refused (check failed, not found, conflict, auth denied)
  2  usage error, or the platform could not be reached or answered with a server error

Environment:
  TOVUK_URL, TOVUK_TOKEN  override the URL and token of the current or --target target
  TOVUK_CONFIG_DIR        where targets are stored (default: $XDG_CONFIG_HOME/tovuk)
  TOVUK_DATA_DIR          the server's data dir (default: $XDG_DATA_HOME/tovuk)
  NO_COLOR                no colour in output";
