//! Prefixed, sortable ids (`app_…`, `dep_…`, `bld_…`, `op_…`, `tok_…`, `res_…`, `run_…`).
//!
//! An id is its kind's prefix followed by 26 Crockford base32 characters: 48 bits of
//! milliseconds then 80 random bits (the ULID layout), so ids sort by creation time.
//! The random bits come from the caller, which keeps this crate free of I/O.

use std::fmt;

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const BODY_LEN: usize = 26;

/// The kinds of id and their prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    App,
    Deploy,
    Build,
    Operation,
    Token,
    Resource,
    /// One run of a cron resource.
    CronRun,
}

impl IdKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            IdKind::App => "app_",
            IdKind::Deploy => "dep_",
            IdKind::Build => "bld_",
            IdKind::Operation => "op_",
            IdKind::Token => "tok_",
            IdKind::Resource => "res_",
            IdKind::CronRun => "run_",
        }
    }
}

/// Encodes a new id body from a timestamp and 10 random bytes.
fn encode(unix_ms: u64, random: [u8; 10]) -> String {
    let mut value: u128 = u128::from(unix_ms & 0xFFFF_FFFF_FFFF) << 80;
    for (i, byte) in random.iter().enumerate() {
        value |= u128::from(*byte) << (72 - 8 * i);
    }
    let mut out = [0u8; BODY_LEN];
    for slot in out.iter_mut().rev() {
        *slot = CROCKFORD[(value & 0x1F) as usize];
        value >>= 5;
    }
    out.iter().map(|b| char::from(*b)).collect()
}

/// Checks that `text` is an id of `kind`: its prefix and 26 base32 characters.
pub fn parse_id(kind: IdKind, text: &str) -> Option<&str> {
    let body = text.strip_prefix(kind.prefix())?;
    (body.len() == BODY_LEN && body.bytes().all(|b| CROCKFORD.contains(&b))).then_some(text)
}

macro_rules! id_type {
    ($name:ident, $kind:expr) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const KIND: IdKind = $kind;

            /// A new id for an object created at `unix_ms`, with caller-supplied randomness.
            pub fn new(unix_ms: u64, random: [u8; 10]) -> Self {
                $name(format!("{}{}", $kind.prefix(), encode(unix_ms, random)))
            }

            /// Parses an id, refusing any text that is not an id of this kind.
            pub fn parse(text: &str) -> Option<Self> {
                parse_id($kind, text).map(|id| $name(id.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(AppId, IdKind::App);
id_type!(DeployId, IdKind::Deploy);
id_type!(BuildId, IdKind::Build);
id_type!(OperationId, IdKind::Operation);
id_type!(TokenId, IdKind::Token);
id_type!(ResourceId, IdKind::Resource);
id_type!(CronRunId, IdKind::CronRun);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_round_trip() {
        let early = AppId::new(1_700_000_000_000, [0xFF; 10]);
        let late = AppId::new(1_700_000_000_001, [0; 10]);
        assert!(early < late);
        assert_eq!(early.as_str().len(), 4 + 26);
        assert_eq!(AppId::parse(early.as_str()), Some(early.clone()));
    }

    #[test]
    fn parse_refuses_other_kinds_and_garbage() {
        let app = AppId::new(1, [7; 10]);
        assert_eq!(DeployId::parse(app.as_str()), None);
        assert_eq!(AppId::parse("app_"), None);
        assert_eq!(AppId::parse("app_ILLEGALLLLLLLLLLLLLLLLLLL"), None);
    }
}
