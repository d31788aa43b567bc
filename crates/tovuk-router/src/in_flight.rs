//! Requests and tunnels in flight per upstream, so an old instance can be drained before it stops.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Counts per upstream; an entry exists only while its count is above zero.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    counts: Mutex<HashMap<SocketAddr, usize>>,
}

impl InFlight {
    pub(crate) fn count(&self, upstream: SocketAddr) -> usize {
        self.lock().get(&upstream).copied().unwrap_or(0)
    }

    /// Counts one more exchange with `upstream` until the returned guard is dropped.
    pub(crate) fn enter(self: &Arc<Self>, upstream: SocketAddr) -> InFlightGuard {
        *self.lock().entry(upstream).or_insert(0) += 1;
        InFlightGuard { in_flight: Arc::clone(self), upstream }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, usize>> {
        // The map stays consistent under a panic (each update is one statement), so a poisoned
        // lock is still safe to use.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Held by whatever is still talking to the upstream: the response body or the tunnel.
#[derive(Debug)]
pub(crate) struct InFlightGuard {
    in_flight: Arc<InFlight>,
    upstream: SocketAddr,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut counts = self.in_flight.lock();
        if let Some(count) = counts.get_mut(&self.upstream) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.upstream);
            }
        }
    }
}

#[cfg(test)]
mod tests;
