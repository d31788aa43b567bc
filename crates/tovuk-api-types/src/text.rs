//! Serde for the fixed value sets of `tovuk_types::values`: each is its stable name on
//! the wire, and a name outside the set is refused, naming the set and its values.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};
use tovuk_types::values::TextEnum;

pub(crate) fn serialize<T: TextEnum, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(value.as_str())
}

pub(crate) fn deserialize<'de, T: TextEnum, D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse(&text).map_err(D::Error::custom)
}

fn parse<T: TextEnum>(text: &str) -> Result<T, String> {
    T::parse(text).ok_or_else(|| {
        let names: Vec<&str> = T::ALL.iter().map(|value| value.as_str()).collect();
        format!("`{}` is not a valid {}; one of: {}", text.escape_debug(), T::WHAT, names.join(", "))
    })
}

/// The same for an optional value (`null` when absent).
pub(crate) mod option {
    use super::*;

    pub(crate) fn serialize<T: TextEnum, S: Serializer>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => serializer.serialize_some(value.as_str()),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, T: TextEnum, D: Deserializer<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            Some(text) => parse(&text).map(Some).map_err(D::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests;
