//! Object key rules and the opaque list continuation token.

use s3s::{S3Error, S3ErrorCode, S3Result};

/// S3's limit on a key's UTF-8 length.
pub(crate) const MAX_KEY_BYTES: usize = 1024;

/// Rejects keys S3 rejects (too long) and keys we can't return in XML listings (NUL).
///
/// Keys are never used as file names, so `..`, `/` and `%2F` are ordinary key bytes here.
pub(crate) fn check_key(key: &str) -> S3Result<()> {
    if key.is_empty() {
        return Err(S3Error::with_message(S3ErrorCode::InvalidArgument, "object key must not be empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(S3Error::with_message(S3ErrorCode::KeyTooLongError, "Your key is too long"));
    }
    if key.contains('\0') {
        return Err(S3Error::with_message(S3ErrorCode::InvalidArgument, "object key must not contain NUL"));
    }
    Ok(())
}

/// The smallest byte string after every string that starts with `prefix`, or None if there is none.
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut next = prefix.to_vec();
    while let Some(last) = next.pop() {
        if last < u8::MAX {
            next.push(last + 1);
            return Some(next);
        }
    }
    None
}

/// The smallest byte string after `key`.
pub(crate) fn key_successor(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

/// A continuation token is the hex of the first key the next page may start at.
pub(crate) fn encode_token(resume_at: &[u8]) -> String {
    hex::encode(resume_at)
}

pub(crate) fn decode_token(token: &str) -> S3Result<Vec<u8>> {
    hex::decode(token).map_err(|_| {
        S3Error::with_message(S3ErrorCode::InvalidArgument, "The continuation token provided is incorrect")
    })
}

#[cfg(test)]
mod tests;
