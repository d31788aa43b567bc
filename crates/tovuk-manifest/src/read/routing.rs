//! Reading what the router serves: `[[routes]]` and `[[domains]]`.

use toml::de::DeTable;

use super::Reader;
use crate::RouteAuth;
use crate::draft::{DraftDomain, DraftRoute};
use crate::names::check_hostname;
use crate::paths::check_url_path;
use crate::schema::{DOMAIN, ROUTE};

pub(super) fn read_route(reader: &mut Reader<'_, '_>, table: &DeTable<'_>) -> DraftRoute {
    reader.check_keys(table, &ROUTE);
    let path = reader.string(table, &ROUTE, "path").and_then(|path, span| match check_url_path(path) {
        Ok(()) => Some(path.clone()),
        Err(problem) => {
            let next = (!path.starts_with('/') && check_url_path(&format!("/{path}")).is_ok())
                .then(|| format!("path = \"/{path}\""));
            reader.invalid(span, format!("route path {problem}"), next);
            None
        }
    });
    let auth_text = reader.string(table, &ROUTE, "auth");
    let auth = reader.choice(auth_text, &ROUTE, "auth", &RouteAuth::names(), RouteAuth::from_name);
    let capability = reader.string(table, &ROUTE, "capability").and_then(|capability, span| {
        if check_capability(capability) {
            return Some(capability.clone());
        }
        reader.invalid(
            span,
            format!(
                "capability `{}` must be 1 to 64 characters of letters, digits, `.`, `:`, `_` and `-`",
                capability.escape_debug()
            ),
            Some("capability = \"admin\"".to_owned()),
        );
        None
    });
    DraftRoute { path, auth, capability }
}

/// A capability as a token's claim lists it.
fn check_capability(capability: &str) -> bool {
    (1..=64).contains(&capability.len())
        && capability.bytes().all(|byte| byte.is_ascii_alphanumeric() || b".:_-".contains(&byte))
}

pub(super) fn read_domain(reader: &mut Reader<'_, '_>, table: &DeTable<'_>) -> DraftDomain {
    reader.check_keys(table, &DOMAIN);
    let name = reader.string(table, &DOMAIN, "name").and_then(|name, span| match check_hostname(name) {
        Ok(()) => Some(name.clone()),
        Err(problem) => {
            let lowercase = name.to_ascii_lowercase();
            let next =
                (lowercase != *name && check_hostname(&lowercase).is_ok()).then(|| format!("name = \"{lowercase}\""));
            reader.invalid(span, problem, next);
            None
        }
    });
    DraftDomain { name }
}
