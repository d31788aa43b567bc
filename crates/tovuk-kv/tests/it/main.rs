//! Integration tests for tovuk-kv against real peers: Debian's `redis-server` (differential),
//! raw TCP clients (hostile input, caps), a child process killed with SIGKILL (durability).

mod caps;
mod differential;
mod durability;
mod hostile;
mod support;
