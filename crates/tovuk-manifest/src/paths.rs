//! Path rules: project-relative file paths and globs, and URL paths for routes and health checks.

#[cfg(test)]
mod tests;

/// A path or glob inside the project: relative, `/`-separated, with no `..`
/// component, because builds and archives must not reach outside the checkout.
pub(crate) fn check_relative_path(path: &str) -> Result<(), String> {
    if path.trim().is_empty() {
        return Err("path is empty".to_owned());
    }
    if path.starts_with('/') || path.starts_with('~') || looks_like_drive(path) {
        return Err(format!("`{path}` is absolute; paths are relative to the project root"));
    }
    if path.contains('\\') {
        return Err(format!("`{path}` contains `\\`; separate path components with `/`"));
    }
    if path.split('/').any(|component| component == "..") {
        return Err(format!("`{path}` contains `..`; paths must stay inside the project"));
    }
    Ok(())
}

/// A `[build] include`/`exclude` entry: a relative path that is also a valid glob.
pub(crate) fn check_path_pattern(pattern: &str) -> Result<(), String> {
    check_relative_path(pattern)?;
    crate::glob::check_pattern(pattern).map_err(|error| format!("`{pattern}` is not a valid pattern: {error}"))
}

fn looks_like_drive(path: &str) -> bool {
    let mut chars = path.chars();
    matches!((chars.next(), chars.next()), (Some(letter), Some(':')) if letter.is_ascii_alphabetic())
}

/// A URL path as the router sees it: starts with `/`, no whitespace, no
/// query or fragment (routing and health probes match on the path alone).
pub(crate) fn check_url_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("`{path}` must start with `/`"));
    }
    if let Some(bad) = path.chars().find(|ch| ch.is_whitespace() || ch.is_control()) {
        return Err(format!("`{path}` contains {bad:?}; URL paths have no whitespace"));
    }
    if path.contains('?') || path.contains('#') {
        return Err(format!("`{path}` contains a query or fragment; give the path only"));
    }
    Ok(())
}

/// Route paths are prefixes, so `/api/` and `/api` route the same requests.
pub(crate) fn normalize_route_path(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() { "/" } else { trimmed }
}
