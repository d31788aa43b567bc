//! Unit tests for the in-flight counter.

use super::InFlight;
use std::net::SocketAddr;
use std::sync::Arc;

#[test]
fn guards_count_until_dropped_per_upstream() {
    let in_flight = Arc::new(InFlight::default());
    let first: SocketAddr = "127.0.0.1:4001".parse().expect("address parses");
    let second: SocketAddr = "127.0.0.1:4002".parse().expect("address parses");
    let guard_a = in_flight.enter(first);
    let guard_b = in_flight.enter(first);
    let guard_c = in_flight.enter(second);
    assert_eq!((in_flight.count(first), in_flight.count(second)), (2, 1));
    drop(guard_a);
    drop(guard_c);
    assert_eq!((in_flight.count(first), in_flight.count(second)), (1, 0));
    drop(guard_b);
    assert_eq!(in_flight.count(first), 0);
    assert!(in_flight.counts.lock().expect("lock is not poisoned").is_empty());
}
