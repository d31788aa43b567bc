//! Failed-authentication throttling, per client address.
//!
//! After [`MAX_FAILURES`] failed authentications from one address within a window of
//! [`WINDOW`], that address is refused (429 with `Retry-After`) until the window ends,
//! before any token is looked at: a guesser cannot learn which guesses were right. Every
//! failure is logged with the address.

use crate::{ApiFailure, ControlState};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tovuk_api_types::ErrorCode;

/// Failed authentications one address may make per window.
pub(crate) const MAX_FAILURES: u32 = 30;
/// The window the failures are counted in.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most; the oldest windows are forgotten first.
const MAX_TRACKED: usize = 100_000;

struct Failures {
    since: Instant,
    count: u32,
}

#[derive(Default)]
pub(crate) struct AuthThrottle {
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

impl AuthThrottle {
    /// Refuses `client` while it is over the limit, saying when it may try again.
    pub(crate) fn check(&self, client: Option<IpAddr>) -> Result<(), ApiFailure> {
        let Some(client) = client else { return Ok(()) };
        let failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(entry) = failures.get(&client) else { return Ok(()) };
        let elapsed = entry.since.elapsed();
        if entry.count < MAX_FAILURES || elapsed >= WINDOW {
            return Ok(());
        }
        let wait = (WINDOW - elapsed).as_secs().max(1);
        tracing::warn!(%client, "authentication refused: too many failed attempts from this address");
        Err(ApiFailure::new(
            ErrorCode::TooManyAttempts,
            format!("too many failed authentications from {client}; try again in {wait} s"),
        )
        .next("check the token you use: tovuk target list")
        .retry_after(wait))
    }

    /// Counts a failed authentication from `client`.
    pub(crate) fn failed(&self, client: Option<IpAddr>) {
        tracing::warn!(client = %client.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()), "authentication failed");
        let Some(client) = client else { return };
        let mut failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, entry| entry.since.elapsed() < WINDOW);
        }
        let entry = failures.entry(client).or_insert(Failures { since: Instant::now(), count: 0 });
        if entry.since.elapsed() >= WINDOW {
            *entry = Failures { since: Instant::now(), count: 0 };
        }
        entry.count += 1;
    }
}

impl ControlState {
    pub(crate) fn auth_throttle(&self) -> &AuthThrottle {
        &self.inner.auth_throttle
    }
}
