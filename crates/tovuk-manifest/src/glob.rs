//! Matching `[build] include`/`exclude` entries against project paths: plain paths,
//! directories and globs, with `globset`.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

#[cfg(test)]
mod tests;

/// A set of patterns compiled once, matched against many paths.
///
/// - `dist` or `dist/` covers `dist` and everything under it.
/// - A pattern without a `/` (other than a trailing one) matches a name at any depth, as
///   in `.gitignore`: `*.pem` covers `certs/server.pem`.
/// - `*` matches within one path component, `?` one character, `**` any number of
///   components, `[abc]` one of a set, `{a,b}` either.
/// - A pattern that covers a directory covers everything under it.
#[derive(Debug, Clone)]
pub struct PathPatterns {
    /// Matches everything (a `.` pattern).
    everything: bool,
    set: GlobSet,
}

impl PathPatterns {
    /// Compiles `patterns`; an entry that is not a valid glob is an error naming it.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<PathPatterns, String> {
        let mut builder = GlobSetBuilder::new();
        let mut everything = false;
        for pattern in patterns {
            let pattern = normalize(pattern.as_ref());
            if pattern.is_empty() || pattern == "." {
                everything = true;
                continue;
            }
            let base = if pattern.contains('/') { pattern.to_owned() } else { format!("**/{pattern}") };
            builder.add(glob(&base)?);
            builder.add(glob(&format!("{base}/**"))?);
        }
        let set = builder.build().map_err(|error| error.to_string())?;
        Ok(PathPatterns { everything, set })
    }

    /// Whether some pattern covers `path` (relative, `/`-separated).
    pub fn matches(&self, path: &str) -> bool {
        let path = path.strip_prefix("./").unwrap_or(path).trim_end_matches('/');
        self.everything || self.set.is_match(path)
    }
}

/// Whether `pattern` covers `path` (both relative, `/`-separated); an invalid pattern
/// covers nothing (the contract check reports it).
pub fn pattern_matches(pattern: &str, path: &str) -> bool {
    PathPatterns::new(&[pattern]).is_ok_and(|patterns| patterns.matches(path))
}

/// Whether `pattern` is a pattern `[build] include`/`exclude` can use; the error says why not.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    PathPatterns::new(&[pattern]).map(|_| ())
}

fn normalize(pattern: &str) -> &str {
    pattern.strip_prefix("./").unwrap_or(pattern).trim_end_matches('/')
}

fn glob(text: &str) -> Result<Glob, String> {
    // `*` and `?` stop at `/`, as in `.gitignore`; only `**` crosses directories.
    GlobBuilder::new(text).literal_separator(true).build().map_err(|error| error.to_string())
}
