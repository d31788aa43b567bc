//! Typed access to one TOML table: each getter reports a wrong type or an unknown key, and never fails.

use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::Code;
use crate::draft::{Field, Located};
use crate::duration::{duration_from_seconds, parse_duration};
use crate::position::Span;
use crate::report::CheckReport;
use crate::schema::{SECTIONS, TOP, TableSpec};
use crate::source::Source;
use crate::suggest::did_you_mean;

/// Longest list of names or paths in one key.
pub(crate) const MAX_LIST_ENTRIES: usize = 1000;

/// A value in the parsed document, with its span.
pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

/// Reads tables of one document, reporting into one report.
pub(crate) struct Reader<'s, 'r> {
    pub(crate) source: &'s Source<'s>,
    pub(crate) report: &'r mut CheckReport,
}

impl Reader<'_, '_> {
    /// Reports every key of `table` that `spec` does not know, with a
    /// suggestion: a close spelling, the table the key belongs in, or the
    /// allowed keys. A key tovuk removed is a warning saying why instead.
    pub(crate) fn check_keys(&mut self, table: &DeTable<'_>, spec: &TableSpec) {
        let allowed = spec.key_names();
        for (key, _) in table.iter() {
            let name = key.get_ref().as_ref();
            if spec.key(name).is_some() {
                continue;
            }
            if let Some(removed) = spec.removed(name) {
                let message = format!("`{name}` in {} was removed and is ignored: {}", spec.header, removed.why);
                let diagnostic = self
                    .source
                    .diagnostic(Code::UnknownKey, &key.span(), message)
                    .with_next(format!("delete the `{name}` line from {}", spec.header));
                self.report.push_warning(diagnostic);
                continue;
            }
            let diagnostic = if let Some(close) = did_you_mean(name, &allowed) {
                self.source
                    .diagnostic(
                        Code::UnknownKey,
                        &key.span(),
                        format!("unknown key `{name}` in {}; did you mean `{close}`?", spec.header),
                    )
                    .with_next(format!("rename `{name}` to `{close}`"))
            } else if let Some(home) = home_of(name, spec) {
                self.source
                    .diagnostic(
                        Code::UnknownKey,
                        &key.span(),
                        format!("unknown key `{name}` in {}; `{name}` belongs in {home}", spec.header),
                    )
                    .with_next(format!("move `{name}` under {home}"))
            } else {
                self.source
                    .diagnostic(
                        Code::UnknownKey,
                        &key.span(),
                        format!("unknown key `{name}` in {} (allowed: {})", spec.header, allowed.join(", ")),
                    )
                    .with_next(format!("remove `{name}` from {}", spec.header))
            };
            self.report.push_error(diagnostic);
        }
    }

    /// Reports that `key` holds the wrong type, showing a correct line.
    pub(crate) fn wrong_type(&mut self, spec: &TableSpec, key: &str, value: &Value<'_>) {
        let (expected, example) = match spec.key(key) {
            Some(key_spec) => (key_spec.ty.describe(), Some(key_spec.example)),
            None => ("another type", None),
        };
        let diagnostic = self
            .source
            .diagnostic(
                Code::WrongType,
                &value.span(),
                format!("`{key}` in {} must be {expected}, found {}", spec.header, type_name(value.get_ref())),
            )
            .with_next_opt(example.map(|example| format!("write it as: {example}")));
        self.report.push_error(diagnostic);
    }

    /// Reports an item of an array that has the wrong type.
    fn wrong_item_type(&mut self, spec: &TableSpec, key: &str, item_number: usize, value: &Value<'_>, expected: &str) {
        let example = spec.key(key).map(|key_spec| key_spec.example);
        let diagnostic = self
            .source
            .diagnostic(
                Code::WrongType,
                &value.span(),
                format!(
                    "item {item_number} of `{key}` in {} must be {expected}, found {}",
                    spec.header,
                    type_name(value.get_ref())
                ),
            )
            .with_next_opt(example.map(|example| format!("write it as: {example}")));
        self.report.push_error(diagnostic);
    }

    pub(crate) fn invalid(&mut self, span: &Span, message: String, next: Option<String>) {
        let diagnostic = self.source.diagnostic(Code::InvalidValue, span, message).with_next_opt(next);
        self.report.push_error(diagnostic);
    }

    pub(crate) fn string(&mut self, table: &DeTable<'_>, spec: &TableSpec, key: &str) -> Field<String> {
        let Some(value) = lookup(table, key) else {
            return Field::Absent;
        };
        match value.get_ref() {
            DeValue::String(text) => Field::Valid(Located { value: text.to_string(), span: value.span() }),
            _ => {
                self.wrong_type(spec, key, value);
                Field::Invalid
            }
        }
    }

    /// An array of strings; items of another type are reported and left out.
    pub(crate) fn string_array(
        &mut self,
        table: &DeTable<'_>,
        spec: &TableSpec,
        key: &str,
    ) -> Field<Vec<Located<String>>> {
        let Some(value) = lookup(table, key) else {
            return Field::Absent;
        };
        let DeValue::Array(array) = value.get_ref() else {
            self.wrong_type(spec, key, value);
            return Field::Invalid;
        };
        let mut items = Vec::new();
        for (item_idx, item) in array.iter().enumerate() {
            match item.get_ref() {
                DeValue::String(text) => items.push(Located { value: text.to_string(), span: item.span() }),
                _ => self.wrong_item_type(spec, key, item_idx + 1, item, "a string"),
            }
        }
        Field::Valid(Located { value: items, span: value.span() })
    }

    pub(crate) fn integer(&mut self, table: &DeTable<'_>, spec: &TableSpec, key: &str) -> Field<i64> {
        let Some(value) = lookup(table, key) else {
            return Field::Absent;
        };
        match value.get_ref() {
            DeValue::Integer(integer) => match i64::from_str_radix(integer.as_str(), integer.radix()) {
                Ok(number) => Field::Valid(Located { value: number, span: value.span() }),
                Err(_) => {
                    self.invalid(&value.span(), format!("`{key}` in {} is too large", spec.header), None);
                    Field::Invalid
                }
            },
            _ => {
                self.wrong_type(spec, key, value);
                Field::Invalid
            }
        }
    }

    /// An integer or a float, as `f64`; NaN and infinities are refused.
    pub(crate) fn number(&mut self, table: &DeTable<'_>, spec: &TableSpec, key: &str) -> Field<f64> {
        let Some(value) = lookup(table, key) else {
            return Field::Absent;
        };
        let number = match value.get_ref() {
            DeValue::Integer(integer) => {
                i64::from_str_radix(integer.as_str(), integer.radix()).ok().map(|number| number as f64)
            }
            DeValue::Float(float) => float.as_str().parse::<f64>().ok(),
            _ => {
                self.wrong_type(spec, key, value);
                return Field::Invalid;
            }
        };
        match number {
            Some(number) if number.is_finite() => Field::Valid(Located { value: number, span: value.span() }),
            _ => {
                self.invalid(
                    &value.span(),
                    format!("`{key}` in {} must be a finite number", spec.header),
                    spec.key(key).map(|key_spec| format!("write it as: {}", key_spec.example)),
                );
                Field::Invalid
            }
        }
    }

    /// `"30s"`-style string or integer seconds.
    pub(crate) fn duration(&mut self, table: &DeTable<'_>, spec: &TableSpec, key: &str) -> Field<Duration> {
        let Some(value) = lookup(table, key) else {
            return Field::Absent;
        };
        let parsed = match value.get_ref() {
            DeValue::String(text) => parse_duration(text),
            DeValue::Integer(integer) => match i64::from_str_radix(integer.as_str(), integer.radix()) {
                Ok(seconds) => duration_from_seconds(seconds),
                Err(_) => parse_duration(integer.as_str()),
            },
            _ => {
                self.wrong_type(spec, key, value);
                return Field::Invalid;
            }
        };
        match parsed {
            Ok(duration) => Field::Valid(Located { value: duration, span: value.span() }),
            Err(error) => {
                self.invalid(
                    &value.span(),
                    format!("`{key}` in {}: {}", spec.header, error.0),
                    spec.key(key).map(|key_spec| format!("write it as: {}", key_spec.example)),
                );
                Field::Invalid
            }
        }
    }

    /// A sub-table. Its span is where it was declared (the `[name]` header).
    pub(crate) fn table<'t, 'i>(
        &mut self,
        table: &'t DeTable<'i>,
        spec: &TableSpec,
        key: &str,
    ) -> Field<&'t DeTable<'i>> {
        let Some(value) = lookup(table, key) else {
            return Field::Absent;
        };
        match value.get_ref() {
            DeValue::Table(inner) => Field::Valid(Located { value: inner, span: value.span() }),
            _ => {
                self.wrong_type(spec, key, value);
                Field::Invalid
            }
        }
    }

    /// An array of tables (`[[name]]`); items that are not tables are reported and left out.
    pub(crate) fn table_array<'t, 'i>(
        &mut self,
        table: &'t DeTable<'i>,
        spec: &TableSpec,
        key: &str,
    ) -> Field<Vec<Located<&'t DeTable<'i>>>> {
        let Some(value) = lookup(table, key) else {
            return Field::Absent;
        };
        let DeValue::Array(array) = value.get_ref() else {
            self.wrong_type(spec, key, value);
            return Field::Invalid;
        };
        let mut items = Vec::new();
        for (item_idx, item) in array.iter().enumerate() {
            match item.get_ref() {
                DeValue::Table(inner) => items.push(Located { value: inner, span: item.span() }),
                _ => self.wrong_item_type(spec, key, item_idx + 1, item, "a table"),
            }
        }
        Field::Valid(Located { value: items, span: value.span() })
    }
}

/// The value under `key`, if present.
pub(crate) fn lookup<'t, 'i>(table: &'t DeTable<'i>, key: &str) -> Option<&'t Value<'i>> {
    table.iter().find(|(candidate, _)| candidate.get_ref().as_ref() == key).map(|(_, value)| value)
}

/// The other table a key belongs to, for keys written in the wrong table.
fn home_of(name: &str, current: &TableSpec) -> Option<&'static str> {
    // Headers identify tables: `const` items have no stable address to compare.
    SECTIONS
        .iter()
        .find(|section| section.header != current.header && section.key(name).is_some())
        .map(|section| section.header)
        .or_else(|| (current.header != TOP.header).then(|| TOP.key(name).map(|key| key.example)).flatten())
}

/// "an integer", "a string"… as the user would say it.
pub(crate) fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(array) if !array.is_empty() && array.iter().all(|item| item.get_ref().is_table()) => {
            "an array of tables"
        }
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

impl Reader<'_, '_> {
    /// One of a closed set of names (`kind`, `auth`…); an unknown one gets a
    /// did-you-mean or the list of allowed values.
    pub(crate) fn choice<T>(
        &mut self,
        field: Field<String>,
        spec: &TableSpec,
        key: &str,
        names: &[&'static str],
        parse: fn(&str) -> Option<T>,
    ) -> Field<T> {
        field.and_then(|text, span| {
            if let Some(value) = parse(text) {
                return Some(value);
            }
            let (message, next) = match did_you_mean(text, names) {
                Some(close) => (
                    format!("unknown {key} `{text}` in {}; did you mean `{close}`?", spec.header),
                    format!("{key} = \"{close}\""),
                ),
                None => (
                    format!("unknown {key} `{text}` in {} (allowed: {})", spec.header, names.join(", ")),
                    format!("set {key} to one of: {}", names.join(", ")),
                ),
            };
            self.invalid(span, message, Some(next));
            None
        })
    }

    /// A string that must not be blank, such as a command.
    pub(crate) fn non_empty_string(&mut self, table: &DeTable<'_>, spec: &TableSpec, key: &str) -> Field<String> {
        self.string(table, spec, key).and_then(|text, span| {
            if text.trim().is_empty() {
                self.invalid(
                    span,
                    format!("`{key}` in {} is empty", spec.header),
                    spec.key(key).map(|key_spec| format!("write it as: {}", key_spec.example)),
                );
                None
            } else {
                Some(text.clone())
            }
        })
    }

    /// A duration within `min..=max`, inclusive.
    pub(crate) fn duration_in(
        &mut self,
        table: &DeTable<'_>,
        spec: &TableSpec,
        key: &str,
        range: std::ops::RangeInclusive<Duration>,
    ) -> Field<Duration> {
        self.duration(table, spec, key).and_then(|duration, span| {
            if range.contains(duration) {
                return Some(*duration);
            }
            self.invalid(
                span,
                format!(
                    "`{key}` in {} is {}; it must be between {} and {}",
                    spec.header,
                    crate::duration::format_duration(*duration),
                    crate::duration::format_duration(*range.start()),
                    crate::duration::format_duration(*range.end()),
                ),
                spec.key(key).map(|key_spec| format!("write it as: {}", key_spec.example)),
            );
            None
        })
    }

    /// An array of strings each checked by `rule`; failing items are reported
    /// and left out. `suggest` may offer a corrected spelling for the fix.
    pub(crate) fn checked_strings(
        &mut self,
        table: &DeTable<'_>,
        spec: &TableSpec,
        key: &str,
        rule: fn(&str) -> Result<(), String>,
        suggest: fn(&str) -> Option<String>,
    ) -> Vec<Located<String>> {
        let Field::Valid(list) = self.string_array(table, spec, key) else {
            return Vec::new();
        };
        if list.value.len() > MAX_LIST_ENTRIES {
            // Lists are matched against every tracked file; bound the work a pushed manifest can ask for.
            self.invalid(
                &list.span,
                format!("`{key}` in {} has {} entries; the limit is {MAX_LIST_ENTRIES}", spec.header, list.value.len()),
                None,
            );
            return Vec::new();
        }
        let mut accepted = Vec::new();
        for item in list.value {
            match rule(&item.value) {
                Ok(()) => accepted.push(item),
                Err(problem) => {
                    let next =
                        suggest(&item.value).map(|better| format!("replace \"{}\" with \"{better}\"", item.value));
                    self.invalid(&item.span, format!("`{key}` in {}: {problem}", spec.header), next);
                }
            }
        }
        accepted
    }
}

/// For `checked_strings` when no automatic correction exists.
pub(crate) fn no_suggestion(_: &str) -> Option<String> {
    None
}
