//! The listing walk shared by ListObjects and ListObjectsV2: prefix, delimiter, page size, resume point.

use crate::keys::{key_successor, prefix_successor};

pub(crate) struct ListQuery<'a> {
    pub prefix: &'a [u8],
    /// Keys containing it after the prefix roll up into one common prefix. Empty means none.
    pub delimiter: &'a [u8],
    /// The first key this page may return (from the continuation token, marker or start-after).
    pub resume_at: Vec<u8>,
    pub max_keys: usize,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Item<T> {
    Object(Vec<u8>, T),
    CommonPrefix(Vec<u8>),
}

#[derive(Debug, PartialEq)]
pub(crate) struct Page<T> {
    pub items: Vec<Item<T>>,
    /// Where the next page starts, when this one is truncated.
    pub next: Option<Vec<u8>>,
}

/// Walks keys in byte order. `seek(from)` returns the first key at or after `from`; after a common
/// prefix the walk seeks past every key under it, so a page costs one seek per item it returns.
pub(crate) fn list<T, E>(
    query: &ListQuery<'_>,
    mut seek: impl FnMut(&[u8]) -> Result<Option<(Vec<u8>, T)>, E>,
) -> Result<Page<T>, E> {
    let mut items = Vec::new();
    if query.max_keys == 0 {
        return Ok(Page { items, next: None });
    }
    let mut at = query.resume_at.clone().max(query.prefix.to_vec());
    loop {
        let Some((key, value)) = seek(&at)? else { return Ok(Page { items, next: None }) };
        if !key.starts_with(query.prefix) {
            return Ok(Page { items, next: None });
        }
        if items.len() == query.max_keys {
            return Ok(Page { items, next: Some(at) });
        }
        let rest = &key[query.prefix.len()..];
        let rolled_up = (!query.delimiter.is_empty())
            .then(|| find(rest, query.delimiter))
            .flatten()
            .map(|position| key[..query.prefix.len() + position + query.delimiter.len()].to_vec());
        match rolled_up {
            Some(common_prefix) => {
                let after = prefix_successor(&common_prefix);
                items.push(Item::CommonPrefix(common_prefix));
                match after {
                    Some(after) => at = after,
                    None => return Ok(Page { items, next: None }),
                }
            }
            None => {
                at = key_successor(&key);
                items.push(Item::Object(key, value));
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

#[cfg(test)]
mod tests;
