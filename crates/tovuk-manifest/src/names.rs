//! Name rules: app names (DNS labels), env-var style binding names, and hostnames.

#[cfg(test)]
mod tests;

/// Longest app name: one DNS label, since apps are served at `<app>.<domain>`.
pub(crate) const MAX_APP_NAME_LEN: usize = 63;
/// Longest binding, secret or config name.
pub(crate) const MAX_ENV_NAME_LEN: usize = 64;
pub(crate) use tovuk_types::{RESERVED_ENV_NAMES, RESERVED_ENV_PREFIX};

/// An app name is one lowercase DNS label: `a-z`, `0-9` and `-`, 1 to 63
/// characters, not starting or ending with `-`.
pub(crate) fn check_app_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("app name is empty".to_owned());
    }
    if name.len() > MAX_APP_NAME_LEN {
        return Err(format!("app name `{name}` is {} characters long; the limit is {MAX_APP_NAME_LEN}", name.len()));
    }
    if let Some(bad) = name.chars().find(|ch| !(ch.is_ascii_lowercase() || ch.is_ascii_digit() || *ch == '-')) {
        return Err(format!("app name `{name}` contains `{bad}`; use lowercase letters, digits and `-`"));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(format!("app name `{name}` must not start or end with `-`"));
    }
    Ok(())
}

/// A valid app name close to `name`, for the `next` of an invalid one:
/// lowercased, other characters turned into `-`, runs of `-` merged.
pub(crate) fn suggest_app_name(name: &str) -> Option<String> {
    let mut suggestion = String::new();
    for ch in name.chars() {
        let mapped = if ch.is_ascii_alphanumeric() { ch.to_ascii_lowercase() } else { '-' };
        if !(mapped == '-' && suggestion.ends_with('-')) {
            suggestion.push(mapped);
        }
    }
    let trimmed: String = suggestion.trim_matches('-').chars().take(MAX_APP_NAME_LEN).collect();
    let trimmed = trimmed.trim_end_matches('-').to_owned();
    (check_app_name(&trimmed).is_ok() && trimmed != name).then_some(trimmed)
}

/// Binding, secret and config names are env-var names: `^[A-Z][A-Z0-9_]*$`,
/// at most 64 characters, and not in the platform's `TOVUK_` namespace.
pub fn check_env_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("name is empty".to_owned());
    }
    if name.len() > MAX_ENV_NAME_LEN {
        return Err(format!("`{name}` is {} characters long; the limit is {MAX_ENV_NAME_LEN}", name.len()));
    }
    let starts_with_letter = name.chars().next().is_some_and(|ch| ch.is_ascii_uppercase());
    let rest_ok = name.chars().all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_');
    if !starts_with_letter || !rest_ok {
        return Err(format!("`{name}` is not an env-var style name: use `A-Z`, `0-9` and `_`, starting with a letter"));
    }
    if name.starts_with(RESERVED_ENV_PREFIX) {
        return Err(format!(
            "`{name}` starts with `{RESERVED_ENV_PREFIX}`, which is reserved for variables the platform sets"
        ));
    }
    if RESERVED_ENV_NAMES.contains(&name) {
        return Err(format!("`{name}` is set by the platform for every process, so it cannot be set here"));
    }
    Ok(())
}

/// The env-var style spelling of `name`, for the `next` of an invalid one.
pub(crate) fn suggest_env_name(name: &str) -> Option<String> {
    let mut suggestion: String =
        name.chars().map(|ch| if ch.is_ascii_alphanumeric() { ch.to_ascii_uppercase() } else { '_' }).collect();
    if suggestion.starts_with(RESERVED_ENV_PREFIX) {
        suggestion = format!("APP_{}", &suggestion[RESERVED_ENV_PREFIX.len()..]);
    }
    if RESERVED_ENV_NAMES.contains(&suggestion.as_str()) {
        suggestion = format!("APP_{suggestion}");
    }
    if suggestion.chars().next().is_some_and(|ch| ch.is_ascii_digit()) {
        suggestion.insert(0, '_');
        suggestion.insert(0, 'N');
    }
    (check_env_name(&suggestion).is_ok() && suggestion != name).then_some(suggestion)
}

/// A custom domain: a lowercase fully qualified hostname with at least two
/// labels, each a DNS label, at most 253 characters, and not an IP address
/// or a `localhost` name (those never reach the router from outside).
pub(crate) fn check_hostname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("domain name is empty".to_owned());
    }
    if name.len() > 253 {
        return Err(format!("domain `{name}` is {} characters long; the limit is 253", name.len()));
    }
    if name.contains("://") || name.contains('/') {
        return Err(format!("domain `{name}` must be a bare hostname, without scheme or path"));
    }
    if name.chars().any(|ch| ch.is_ascii_uppercase()) {
        return Err(format!("domain `{name}` must be lowercase"));
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err(format!("domain `{name}` must be a fully qualified name such as `api.example.com`"));
    }
    for label in &labels {
        let label_ok = !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !label_ok {
            return Err(format!(
                "domain `{name}` has an invalid label `{label}`: use 1-63 of `a-z`, `0-9`, `-`, not starting or ending with `-`"
            ));
        }
    }
    let top_level = labels.last().copied().unwrap_or("");
    if top_level.chars().all(|ch| ch.is_ascii_digit()) {
        return Err(format!("domain `{name}` looks like an IP address; custom domains must be hostnames"));
    }
    if top_level == "localhost" {
        return Err(format!("domain `{name}` is a localhost name; apps are already served at `<app>.localhost`"));
    }
    Ok(())
}

/// A process type's name, as a Procfile writes it; `web` and `release` have tables of their own.
pub(crate) fn check_process_name(name: &str) -> Result<(), String> {
    let valid = name.len() <= 32
        && name.starts_with(|ch: char| ch.is_ascii_lowercase())
        && name.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '_');
    if !valid {
        return Err(format!(
            "`{}` is not a process name: use `a-z`, `0-9`, `-` and `_`, starting with a letter, at most 32 characters",
            name.escape_debug()
        ));
    }
    if matches!(name, "web" | "release") {
        return Err(format!("`{name}` is not a background process: it is [run] command ([release] command)"));
    }
    Ok(())
}
