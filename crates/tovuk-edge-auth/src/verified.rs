//! Tokens already verified, kept a short while: checking an RS256 signature costs about as
//! much as the router's whole work on a request, and an API client sends the same token on
//! every request. Keyed by the token's SHA-256 (never the token), kept until it expires and
//! at most [`KEEP`], so a key the provider withdraws stops a token within that long.

use crate::Identity;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The longest a verified token is trusted without checking its signature again.
pub(crate) const KEEP: Duration = Duration::from_secs(60);
/// The most tokens kept; past it the oldest half of the map is let go (it is rebuilt fast).
const MOST: usize = 10_000;

#[derive(Default)]
pub(crate) struct VerifiedTokens {
    by_digest: Mutex<HashMap<[u8; 32], (Identity, Instant)>>,
}

impl VerifiedTokens {
    /// The identity `token` verified to, if it did a moment ago and has not expired since.
    pub(crate) fn get(&self, token: &str) -> Option<Identity> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut known = self.by_digest.lock().ok()?;
        match known.get(&digest) {
            Some((identity, until)) if Instant::now() < *until => Some(identity.clone()),
            Some(_) => {
                known.remove(&digest);
                None
            }
            None => None,
        }
    }

    /// Keeps `identity` for `token`, whose `exp` (seconds since the epoch) bounds how long.
    pub(crate) fn keep(&self, token: &str, identity: &Identity, exp: Option<u64>) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let left = exp.map_or(Duration::ZERO, |exp| Duration::from_secs(exp.saturating_sub(now)));
        let keep = left.min(KEEP);
        if keep.is_zero() {
            return;
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let Ok(mut known) = self.by_digest.lock() else { return };
        if known.len() >= MOST {
            let now = Instant::now();
            known.retain(|_, (_, until)| *until > now + KEEP / 2);
            if known.len() >= MOST {
                known.clear();
            }
        }
        known.insert(digest, (identity.clone(), Instant::now() + keep));
    }
}

#[cfg(test)]
mod tests {
    use super::VerifiedTokens;
    use crate::{AuthMethod, Identity};
    use std::time::{SystemTime, UNIX_EPOCH};

    fn alice() -> Identity {
        Identity {
            subject: "alice".to_owned(),
            capabilities: vec!["orders:write".to_owned()],
            method: AuthMethod::Bearer,
        }
    }

    #[test]
    fn a_token_is_kept_until_it_expires_and_only_that_token() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
        let verified = VerifiedTokens::default();
        verified.keep("token-a", &alice(), Some(now + 3600));
        assert_eq!(verified.get("token-a"), Some(alice()));
        assert_eq!(verified.get("token-b"), None);
        assert_eq!(verified.get("token-a."), None, "the exact token only");
        // Expired (or without `exp`): never kept, so it is verified, and refused, every time.
        verified.keep("old", &alice(), Some(now.saturating_sub(1)));
        verified.keep("no-exp", &alice(), None);
        assert_eq!((verified.get("old"), verified.get("no-exp")), (None, None));
    }
}
