//! Matching `[build] include`/`exclude` entries against project paths: plain paths, directories and simple globs.

#[cfg(test)]
mod tests;

/// Whether `pattern` covers `path` (both relative, `/`-separated).
///
/// - `dist` or `dist/` covers `dist` and everything under it.
/// - A pattern without a `/` (other than a trailing one) matches a name at
///   any depth, as in `.gitignore`: `*.pem` covers `certs/server.pem`.
/// - `*` matches within one path component, `?` one character, and `**`
///   any number of components.
/// - A pattern that covers a directory covers everything under it.
pub fn pattern_matches(pattern: &str, path: &str) -> bool {
    let pattern = pattern.strip_prefix("./").unwrap_or(pattern);
    let pattern = pattern.trim_end_matches('/');
    let path = path.strip_prefix("./").unwrap_or(path).trim_end_matches('/');
    if pattern.is_empty() || pattern == "." {
        return true;
    }
    let pattern_parts: Vec<&str> = pattern.split('/').collect();
    let path_parts: Vec<&str> = path.split('/').collect();
    let anchored = pattern_parts.len() > 1;
    // Try the path itself and each of its ancestors (a directory covers its contents),
    // and, for unanchored patterns, starting at any depth.
    let starts: Vec<usize> = if anchored { vec![0] } else { (0..path_parts.len()).collect() };
    starts
        .into_iter()
        .any(|start| (start + 1..=path_parts.len()).any(|end| match_parts(&pattern_parts, &path_parts[start..end])))
}

/// Whole-component matching with `**`, by dynamic programming rather than
/// backtracking: patterns come from pushed manifests, and `**/**/**/...`
/// must not cost exponential time in the pre-receive hook.
fn match_parts(pattern: &[&str], path: &[&str]) -> bool {
    let width = path.len() + 1;
    // matches[i * width + j]: pattern[i..] matches path[j..].
    let mut matches = vec![false; (pattern.len() + 1) * width];
    matches[pattern.len() * width + path.len()] = true;
    for i in (0..pattern.len()).rev() {
        for j in (0..=path.len()).rev() {
            matches[i * width + j] = if pattern[i] == "**" {
                matches[(i + 1) * width + j] || (j < path.len() && matches[i * width + j + 1])
            } else {
                j < path.len() && match_component(pattern[i], path[j]) && matches[(i + 1) * width + j + 1]
            };
        }
    }
    matches[0]
}

/// `*` and `?` within one component.
fn match_component(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Classic two-pointer wildcard match with backtracking to the last `*`.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|ch| *ch == '*')
}
