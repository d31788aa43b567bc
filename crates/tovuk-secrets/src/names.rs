//! What an app's environment variable may be called and what it may hold.
//!
//! Error messages name the problem and the fix; a value never appears in one,
//! because these errors reach logs and terminals.

#[cfg(test)]
mod tests;

use tovuk_types::{RESERVED_ENV_NAMES as RESERVED_NAMES, RESERVED_ENV_PREFIX as RESERVED_PREFIX};

/// The largest value, in bytes, one variable may hold (64 KiB).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// The longest name, in bytes.
const MAX_NAME_BYTES: usize = 256;

/// Why a name is refused. Each message names the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error(
        "the environment variable name is empty; write `NAME=VALUE` with a name of letters, digits and `_` (e.g. `DATABASE_URL`)"
    )]
    Empty,

    /// The name is longer than 256 bytes.
    #[error("an environment variable name is {len} bytes; the limit is 256: pick a shorter name")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },

    /// The name holds a character other than ASCII letters, digits and `_`.
    #[error(
        "`{shown}` is not a valid environment variable name: `{ch}` is not allowed; use letters, digits and `_`, not starting with a digit (e.g. `{suggestion}`)",
        shown = name.escape_debug(),
        ch = ch.escape_debug(),
        suggestion = suggest(name)
    )]
    InvalidChar {
        /// The refused name.
        name: String,
        /// Its first character that is not allowed.
        ch: char,
    },

    /// The name starts with a digit.
    #[error(
        "`{shown}` is not a valid environment variable name: it starts with a digit; start it with a letter or `_` (e.g. `{suggestion}`)",
        shown = name.escape_debug(),
        suggestion = suggest(name)
    )]
    StartsWithDigit {
        /// The refused name.
        name: String,
    },

    /// The platform or the sandbox sets this name.
    #[error("{}", reserved_message(name))]
    Reserved {
        /// The refused name.
        name: String,
    },
}

/// Why a value is refused. Each message names the fix and none holds the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The value holds `\n` or `\r`.
    #[error(
        "the value of `{shown}` spans several lines; environment values are one line: store multi-line values (a PEM key, say) base64-encoded and decode them in the app",
        shown = name.escape_debug()
    )]
    Newline {
        /// The variable's name.
        name: String,
    },

    /// The value holds a NUL byte.
    #[error(
        "the value of `{shown}` contains a NUL byte, which an environment variable cannot hold; base64-encode binary values",
        shown = name.escape_debug()
    )]
    Nul {
        /// The variable's name.
        name: String,
    },

    /// The value is longer than [`MAX_VALUE_BYTES`].
    #[error(
        "the value of `{shown}` is {len} bytes; the limit is 65536 (64 KiB): keep large values in a file or object storage and put its location in the variable",
        shown = name.escape_debug()
    )]
    TooLong {
        /// The variable's name.
        name: String,
        /// The value's length in bytes.
        len: usize,
    },
}

/// Checks that `name` is `^[A-Za-z_][A-Za-z0-9_]*$`, at most 256 bytes, and not reserved.
///
/// Reserved: `PORT` and `HOST` (the platform sets them), `HOME` and `PATH` (the sandbox
/// sets them), and anything starting with `TOVUK_` in any case, except the edge auth
/// settings the app's owner sets (`TOVUK_AUTH_*`, exactly so spelled).
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong { len: name.len() });
    }
    if let Some(ch) = name.chars().find(|ch| !is_name_char(*ch)) {
        return Err(NameError::InvalidChar { name: name.to_owned(), ch });
    }
    if name.starts_with(|ch: char| ch.is_ascii_digit()) {
        return Err(NameError::StartsWithDigit { name: name.to_owned() });
    }
    if is_reserved(name) {
        return Err(NameError::Reserved { name: name.to_owned() });
    }
    Ok(())
}

/// Checks that `value` fits in one environment variable: one line, no NUL, at most [`MAX_VALUE_BYTES`].
///
/// `name` is only used in the message.
pub fn validate_value(name: &str, value: &str) -> Result<(), ValueError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(ValueError::TooLong { name: name.to_owned(), len: value.len() });
    }
    let bytes = value.as_bytes();
    if bytes.contains(&0) {
        return Err(ValueError::Nul { name: name.to_owned() });
    }
    if bytes.iter().any(|byte| matches!(byte, b'\n' | b'\r')) {
        return Err(ValueError::Newline { name: name.to_owned() });
    }
    Ok(())
}

fn is_name_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || ch == '_'
}

fn is_reserved(name: &str) -> bool {
    // Case-insensitive on the prefix: `Tovuk_Url` looks like ours to a reader even though Linux tells them apart.
    let has_prefix = name.get(..RESERVED_PREFIX.len()).is_some_and(|head| head.eq_ignore_ascii_case(RESERVED_PREFIX));
    (has_prefix && !name.starts_with(OWNER_SET_PREFIX)) || RESERVED_NAMES.contains(&name)
}

/// The platform's names an app's owner sets: how the router verifies callers
/// (`TOVUK_AUTH_MODE`, `TOVUK_AUTH_ISSUER`, ...).
const OWNER_SET_PREFIX: &str = "TOVUK_AUTH_";

fn reserved_message(name: &str) -> String {
    match name {
        "PORT" => "`PORT` is set by the platform (the port your app must listen on); pick another name".to_owned(),
        "HOST" => "`HOST` is set by the platform (the address your app must listen on); pick another name".to_owned(),
        "HOME" | "PATH" => format!("`{name}` is set by the sandbox your app runs in; pick another name"),
        _ => format!(
            "`{shown}` starts with `TOVUK_`, which is reserved for variables the platform sets; pick another name (e.g. `APP_{rest}`)",
            shown = name.escape_debug(),
            rest = name.get(RESERVED_PREFIX.len()..).unwrap_or_default().escape_debug()
        ),
    }
}

/// A valid-looking name close to `name`, for the message: other characters become `_`, and a leading digit gets a `_` before it.
fn suggest(name: &str) -> String {
    let mut suggestion: String = name.chars().map(|ch| if is_name_char(ch) { ch } else { '_' }).collect();
    if suggestion.starts_with(|ch: char| ch.is_ascii_digit()) {
        suggestion.insert(0, '_');
    }
    suggestion
}
