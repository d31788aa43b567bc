//! App names: lowercase DNS labels, because an app is reached at `<name>.<base-domain>`.

use std::fmt;

/// A validated app name: 1–63 characters of `a-z`, `0-9` and `-`, not starting or ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppName(String);

/// Why a string is not a valid DNS label; `Display` says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong { len: usize },
    BadChar { ch: char, position: usize },
    EdgeHyphen,
}

pub const DNS_LABEL_RULE: &str =
    "1-63 characters of lowercase letters a-z, digits 0-9 and `-`, not starting or ending with `-`";

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => write!(f, "the name is empty"),
            NameError::TooLong { len } => write!(f, "the name is {len} characters long"),
            NameError::BadChar { ch, position } => {
                if ch.is_ascii_uppercase() {
                    write!(f, "`{ch}` at position {position} is uppercase")
                } else {
                    write!(f, "`{}` at position {position} is not allowed", ch.escape_debug())
                }
            }
            NameError::EdgeHyphen => write!(f, "the name starts or ends with `-`"),
        }?;
        write!(f, "; a name is {DNS_LABEL_RULE}")
    }
}

impl std::error::Error for NameError {}

/// Checks that `name` is a lowercase DNS label.
pub fn validate_dns_label(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    let len = name.chars().count();
    if len > 63 {
        return Err(NameError::TooLong { len });
    }
    if let Some((position, ch)) =
        name.chars().enumerate().find(|(_, ch)| !(ch.is_ascii_lowercase() || ch.is_ascii_digit() || *ch == '-'))
    {
        return Err(NameError::BadChar { ch, position: position + 1 });
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(NameError::EdgeHyphen);
    }
    Ok(())
}

impl AppName {
    pub fn parse(name: &str) -> Result<Self, NameError> {
        validate_dns_label(name)?;
        Ok(AppName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels() {
        for name in ["a", "my-api", "a1", "0day", &"x".repeat(63)] {
            assert!(AppName::parse(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn refuses_everything_else_and_says_what_is_allowed() {
        for (name, expected) in [
            ("", NameError::Empty),
            ("-api", NameError::EdgeHyphen),
            ("api-", NameError::EdgeHyphen),
            ("My-api", NameError::BadChar { ch: 'M', position: 1 }),
            ("my_api", NameError::BadChar { ch: '_', position: 3 }),
            ("my.api", NameError::BadChar { ch: '.', position: 3 }),
            ("héllo", NameError::BadChar { ch: 'é', position: 2 }),
        ] {
            assert_eq!(AppName::parse(name), Err(expected.clone()), "{name}");
            assert!(expected.to_string().contains("lowercase letters a-z"));
        }
        assert_eq!(AppName::parse(&"x".repeat(64)), Err(NameError::TooLong { len: 64 }));
    }
}
