//! A Redis-protocol key-value server for deployed apps, stored durably in one redb file.
//!
//! Apps connect with stock clients (redis-py, ioredis, redis-cli) using
//! `redis://default:<password>@<host>:<port>/0`. Each password opens one keyspace; every
//! keyspace lives in the same database file under its own key prefix.
//!
//! # Protocol
//!
//! RESP2, and RESP3 after `HELLO 3`. Replies and error texts follow redis 7.0 byte for byte where
//! the commands overlap (a differential test runs the same script against `redis-server`).
//! Every command except AUTH, HELLO and QUIT needs authentication first
//! (`-NOAUTH Authentication required.`). Only database 0 exists.
//!
//! Supported commands:
//! - connection: PING, ECHO, SELECT (0 only), AUTH, HELLO, CLIENT SETNAME|GETNAME|ID|SETINFO,
//!   INFO, QUIT, COMMAND (COUNT; DOCS/INFO/LIST answer empty)
//! - keys: DEL, UNLINK, EXISTS, EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (NX|XX|GT|LT), TTL, PTTL,
//!   PERSIST, TYPE, SCAN (MATCH, COUNT, TYPE), KEYS, RENAME, DBSIZE, FLUSHDB [ASYNC|SYNC]
//! - strings: GET, SET (EX|PX|EXAT|PXAT|NX|XX|KEEPTTL|GET), SETNX, SETEX, PSETEX, GETSET, GETDEL,
//!   GETEX, MGET, MSET, MSETNX, INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT, APPEND, STRLEN
//! - hashes: HSET, HMSET, HSETNX, HGET, HMGET, HGETALL, HDEL, HEXISTS, HKEYS, HVALS, HLEN, HINCRBY
//!
//! Anything else answers `-ERR unknown command '<name>', with args beginning with: ...` and the
//! connection stays open.
//!
//! Differences from redis: SCAN cursors name a server-side resume point (the last 65,536 issued
//! are remembered; an unknown cursor ends the iteration with `0`), and keys come back in byte
//! order. Hashes keep insertion order at every size. INCRBYFLOAT computes in f64 and prints ~15
//! significant digits (redis uses long double).
//!
//! # Metering
//!
//! Before running a data command the server calls [`Gate::admit`] with its cost: each key read
//! is one read (GET = 1, MGET of n keys = n, EXISTS of n = n, HGETALL = 1, SCAN/KEYS = 1 per call,
//! TTL = 1, any other single-key read = 1), each key written or deleted is one write (SET = 1,
//! MSET of n pairs = n, DEL of n keys = n (keys named), INCR = 1, EXPIRE = 1, HSET = 1 per call,
//! RENAME = 2, FLUSHDB = 1). Connection commands (PING, ECHO, HELLO, AUTH, SELECT, CLIENT, INFO,
//! COMMAND, QUIT) and DBSIZE are free. A refusal answers `-ERR <message>` for that command only.
//!
//! [`Kv::keyspace_bytes`] is the sum of key and value lengths stored for a keyspace (a hash
//! counts its encoded fields), kept in a counter row updated in the same transaction.
//!
//! # Durability
//!
//! A write is answered only after its redb transaction committed with `Durability::Immediate`
//! (fsync). One writer thread applies the batches of all connections waiting at that moment in
//! one transaction and commits once (group commit). A batch is everything a connection's
//! socket buffer held (up to 1,024 commands): read-only batches run on one snapshot without the
//! writer; a batch with any write runs whole inside the write transaction, so replies keep order
//! and reads see the writes before them.
//!
//! # Limits
//!
//! One argument may be at most 64 MiB and one command at most 128 MiB; more is answered with an
//! error naming the limit, then the connection is closed (as redis does on protocol errors).
//! Lengths above 512 MiB get redis's own `Protocol error: invalid bulk length`. Declared lengths
//! are never allocated up front. Before AUTH, redis's stricter limits apply (10 arguments,
//! 16 KiB each).
//!
//! Expired keys are invisible at once and removed lazily by writes and by a sweep of at most 256
//! keys every 100 ms.

mod commands;
mod glob;
mod resp;
mod server;
mod store;
mod value;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::commands::connection::{REDIS_VERSION, Session};
use crate::store::Store;

/// The keyspace a connection uses once authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyspace {
    /// Storage id, e.g. `res_01J...`; must not contain NUL.
    pub id: String,
    /// The app that owns the keyspace.
    pub app: String,
}

/// Decided by the platform, implemented outside this crate.
pub trait Gate: Send + Sync + 'static {
    /// The keyspace a connection may use after AUTH/HELLO AUTH. `scope` is the app whose
    /// private network the connection arrived on (None: the host's loopback, any app).
    /// The password must be compared in constant time by the implementation.
    fn authenticate(&self, scope: Option<&str>, username: Option<&str>, password: &str) -> Option<Keyspace>;
    /// Admit and count `reads` read operations and `writes` write operations for this keyspace,
    /// or refuse them with a message that names the cap and the fix (it becomes the RESP error text).
    fn admit(&self, keyspace: &Keyspace, reads: u64, writes: u64) -> Result<(), String>;
}

#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("failed to open kv database `{path}`: {source}")]
    Open { path: PathBuf, source: Box<redb::Error> },
    #[error("failed to start the kv writer thread: {0}")]
    Writer(std::io::Error),
    #[error("kv storage error: {0}")]
    Storage(String),
    #[error("the kv writer has stopped")]
    Stopped,
}

/// An open KV database and the state its servers share.
pub struct Kv {
    store: Store,
    next_client_id: AtomicU64,
    connected: AtomicU64,
    started: Instant,
}

impl Kv {
    /// Opens (creating if missing) the database file and starts its writer thread.
    pub fn open(path: &Path) -> Result<Arc<Kv>, KvError> {
        Ok(Arc::new(Kv {
            store: Store::open(path)?,
            next_client_id: AtomicU64::new(0),
            connected: AtomicU64::new(0),
            started: Instant::now(),
        }))
    }

    /// Serves connections from `listener` until `stop` is cancelled; returns once the accept
    /// loop has ended and every connection it started has closed.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        scope: Option<String>,
        gate: Arc<dyn Gate>,
        stop: CancellationToken,
    ) {
        server::serve(self, listener, scope, gate, stop).await;
    }

    /// Deletes every key of a keyspace and its counter, durably. Blocks until committed: call it
    /// from `spawn_blocking` in async code.
    pub fn delete_keyspace(&self, id: &str) -> Result<(), KvError> {
        self.store.delete_keyspace(id)
    }

    /// Approximate stored bytes (keys + values) of a keyspace; 0 if it has none.
    pub fn keyspace_bytes(&self, id: &str) -> u64 {
        self.store.keyspace_bytes(id)
    }

    fn info_sections(&self, session: &Session) -> Vec<(&'static str, String)> {
        let keys = session.keyspace.as_ref().map_or(0, |(_, ks)| self.store.keyspace_keys(ks));
        let mut out = vec![
            (
                "Server",
                format!(
                    "redis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\nos:Linux\r\narch_bits:64\r\n\
                     uptime_in_seconds:{}\r\n",
                    self.started.elapsed().as_secs()
                ),
            ),
            ("Clients", format!("connected_clients:{}\r\n", self.connected.load(Ordering::Relaxed))),
            ("Persistence", "loading:0\r\naof_enabled:0\r\n".to_owned()),
            ("Replication", "role:master\r\nconnected_slaves:0\r\n".to_owned()),
        ];
        let keyspace = if keys > 0 { format!("db0:keys={keys},expires=0,avg_ttl=0\r\n") } else { String::new() };
        out.push(("Keyspace", keyspace));
        out
    }
}
