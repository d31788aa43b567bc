//! Request ids: keep a client's sane `X-Request-Id`, otherwise mint `req_<26 base32 chars>`.

use std::sync::atomic::{AtomicU64, Ordering};

/// The header that carries the id both ways.
pub const HEADER: &str = "x-request-id";

/// Longer ids are replaced: they bloat every log line and are usually not ids.
const MAX_LEN: usize = 128;

/// Crockford's base32 alphabet, lowercased: no `i`, `l`, `o`, `u`, so ids survive being read aloud.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// The client's id when it is a sane token, else a fresh one.
pub fn from_client_or_new(client_value: Option<&str>) -> String {
    match client_value {
        Some(client_id) if is_sane(client_id) => client_id.to_owned(),
        _ => generate(),
    }
}

/// A token of letters, digits and `-_.:`, at most 128 bytes: safe to log and to echo back.
pub fn is_sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b':'))
}

/// `req_` and 128 bits as 26 base32 characters: 64 random bits drawn once per process,
/// then a counter, so minting an id costs no system call on the request path. Ids only
/// correlate log lines: unique is what they must be, not unguessable.
pub fn generate() -> String {
    static PREFIX: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 16];
        match getrandom::fill(&mut bytes) {
            Ok(()) => u128::from_be_bytes(bytes) & !u128::from(u64::MAX),
            Err(_) => fallback_bits() & !u128::from(u64::MAX),
        }
    });
    encode(prefix | u128::from(COUNTER.fetch_add(1, Ordering::Relaxed)))
}

fn encode(bits: u128) -> String {
    let mut id = String::with_capacity(30);
    id.push_str("req_");
    // 26 digits of 5 bits cover 130 bits; the first digit carries the top 3.
    for digit_idx in (0..26u32).rev() {
        let digit = (bits >> (digit_idx * 5)) & 0b1_1111;
        id.push(char::from(ALPHABET[digit as usize]));
    }
    id
}

/// Unique but guessable bits, for the unlikely case the OS has no randomness to give.
/// Ids only correlate log lines, so uniqueness is what matters.
fn fallback_bits() -> u128 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or(0);
    (nanos << 64) ^ u128::from(COUNTER.fetch_add(1, Ordering::Relaxed)) ^ u128::from(std::process::id())
}

#[cfg(test)]
mod tests;
