//! The runtime version a detected project asks for (`runtime.txt`, `.python-version`,
//! `engines.node`), and whether a version the platform has is one it accepts.
//!
//! Detection only records the request: which version runs is the platform's to say, and the
//! builder compares it with what `<tool> --version` prints where the build finds the tool.

/// A runtime version a project's own files ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeRequest {
    /// The program that runs it: `python3` or `node`.
    pub tool: &'static str,
    /// The file that asks: `runtime.txt`, `.python-version` or `package.json`.
    pub file: &'static str,
    /// What it asks for, as written (`3.11`, `>=18 <21`), `python-` already dropped.
    pub asked: String,
}

impl RuntimeRequest {
    /// The language as people name it in a message: `Python` or `Node.js`.
    pub fn language(&self) -> &'static str {
        if self.tool == "node" { "Node.js" } else { "Python" }
    }

    /// Whether `version` (as [`printed_version`] reads it, `3.12.1`) is one the request
    /// accepts: for Python every number asked is a prefix (`3.11` accepts `3.11.9`), for
    /// Node an npm range (`>=18`, `18.x`, `^20.1`, `~18.19`, `18`, `>=18 <21`, `18 || 20`).
    /// A request it cannot read accepts nothing, so the build says which version runs.
    pub fn accepts(&self, version: &str) -> bool {
        if self.tool == "node" { node_accepts(&self.asked, version) } else { python_accepts(&self.asked, version) }
    }
}

/// The version in what `<tool> --version` printed: the first word of its first line that
/// starts with a digit, a leading `v` dropped (`Python 3.12.1` and `v20.11.1`).
pub fn printed_version(printed: &str) -> Option<&str> {
    let line = printed.lines().find(|line| !line.trim().is_empty())?;
    line.split_whitespace()
        .map(|word| word.strip_prefix('v').unwrap_or(word))
        .find(|word| word.starts_with(|c: char| c.is_ascii_digit()))
}

/// The leading number of each dot-separated part (`3.13.0rc1` is 3, 13, 0).
fn numbers(version: &str) -> Vec<Option<u64>> {
    version
        .split('.')
        .map(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

fn python_accepts(asked: &str, version: &str) -> bool {
    let asked = asked.lines().map(str::trim).find(|line| !line.is_empty()).unwrap_or("");
    let asked = asked.strip_prefix("python-").unwrap_or(asked);
    // pyenv's `system` is whatever python the machine has.
    if asked == "system" {
        return true;
    }
    let have = numbers(version);
    let mut parts = asked.split('.').peekable();
    if parts.peek().is_none_or(|part| part.is_empty()) {
        return false;
    }
    for (index, part) in parts.enumerate() {
        // `3.11.x`: what follows a wildcard is any.
        if matches!(part, "x" | "X" | "*") {
            return index > 0;
        }
        let Ok(wanted) = part.parse::<u64>() else { return false };
        if have.get(index).copied().flatten() != Some(wanted) {
            return false;
        }
    }
    true
}

fn node_accepts(asked: &str, version: &str) -> bool {
    let Some(version) = full_version(version) else { return false };
    asked.split("||").any(|alternative| npm_range(alternative).is_some_and(|range| range.matches(&version)))
}

/// `20.11` read as `20.11.0`: `--version` prints three numbers, but nothing is lost by padding.
fn full_version(version: &str) -> Option<semver::Version> {
    let version = version.trim().trim_start_matches('v');
    let (core, rest) = match version.find(['-', '+']) {
        Some(at) => version.split_at(at),
        None => (version, ""),
    };
    let mut parts: Vec<&str> = core.split('.').collect();
    while parts.len() < 3 {
        parts.push("0");
    }
    semver::Version::parse(&format!("{}{rest}", parts.join("."))).ok()
}

/// One npm range without `||`, in the `semver` crate's terms: comparators are separated by
/// commas, a bare version is `=` (npm's `18.19.1` is exactly that, `18` is `18.x`), wildcards
/// end a version, `v` is dropped, and `A - B` is `>=A, <=B`.
fn npm_range(range: &str) -> Option<semver::VersionReq> {
    let words: Vec<&str> = range.split_whitespace().collect();
    let comparators: Vec<String> = match words.as_slice() {
        [] => return Some(semver::VersionReq::STAR),
        [low, "-", high] => vec![comparator(&format!(">={low}")), comparator(&format!("<={high}"))],
        _ => {
            // `>= 18` is `>=18`: an operator alone joins the version after it.
            let mut joined: Vec<String> = Vec::new();
            let mut operator = String::new();
            for word in words {
                if word.chars().all(|c| matches!(c, '<' | '>' | '=' | '~' | '^')) {
                    operator.push_str(word);
                } else {
                    joined.push(format!("{operator}{word}"));
                    operator.clear();
                }
            }
            if !operator.is_empty() {
                return None;
            }
            joined.iter().map(|word| comparator(word)).collect()
        }
    };
    let comparators: Vec<String> = comparators.into_iter().filter(|comparator| !comparator.is_empty()).collect();
    if comparators.is_empty() {
        return Some(semver::VersionReq::STAR);
    }
    semver::VersionReq::parse(&comparators.join(", ")).ok()
}

/// One npm comparator (`>=v18.x`) as the `semver` crate reads it (`>=18`); empty for any.
fn comparator(word: &str) -> String {
    let split = word.find(|c: char| !matches!(c, '<' | '>' | '=' | '~' | '^')).unwrap_or(word.len());
    let (operator, version) = word.split_at(split);
    let version = version.strip_prefix('v').unwrap_or(version);
    let mut kept: Vec<&str> = Vec::new();
    for part in version.split('.') {
        if matches!(part, "x" | "X" | "*") {
            break;
        }
        kept.push(part);
    }
    if kept.is_empty() {
        // `*`, `x`, `>=*`: any version (npm's `<*` matches none; nobody writes it).
        return String::new();
    }
    let operator = if operator.is_empty() { "=" } else { operator };
    format!("{operator}{}", kept.join("."))
}

#[cfg(test)]
mod tests;
