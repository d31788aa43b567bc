//! Reading `[build]`: phase commands, artifact paths, cache, build secrets and the phase timeout.

use std::time::Duration;

use toml::de::DeTable;

use super::Reader;
use super::reader::no_suggestion;
use crate::draft::{DraftBuild, Located};
use crate::names::{check_env_name, suggest_env_name};
use crate::paths::{check_path_pattern, check_relative_path};
use crate::schema::BUILD;

/// Longest per-phase build timeout: a build stuck for longer is not coming back.
pub(crate) const MAX_BUILD_TIMEOUT: Duration = Duration::from_secs(6 * 60 * 60);

pub(super) fn read_build(reader: &mut Reader<'_, '_>, table: &DeTable<'_>) -> DraftBuild {
    reader.check_keys(table, &BUILD);
    let paths = |reader: &mut Reader<'_, '_>, key: &str| {
        values(reader.checked_strings(table, &BUILD, key, check_relative_path, no_suggestion))
    };
    let output = paths(reader, "output");
    let cache = paths(reader, "cache");
    let patterns = |reader: &mut Reader<'_, '_>, key: &str| {
        values(reader.checked_strings(table, &BUILD, key, check_path_pattern, no_suggestion))
    };
    let exclude = patterns(reader, "exclude");
    let include = patterns(reader, "include");
    DraftBuild {
        build: reader.non_empty_string(table, &BUILD, "build"),
        typecheck: reader.non_empty_string(table, &BUILD, "typecheck"),
        test: reader.non_empty_string(table, &BUILD, "test"),
        output,
        cache,
        secrets: values(reader.checked_strings(table, &BUILD, "secrets", check_env_name, suggest_env_name)),
        exclude,
        include,
        timeout: reader.duration_in(table, &BUILD, "timeout", Duration::from_secs(1)..=MAX_BUILD_TIMEOUT),
    }
}

pub(super) fn values(items: Vec<Located<String>>) -> Vec<String> {
    items.into_iter().map(|item| item.value).collect()
}
