//! Storage on redb: the table layout, the read and write views commands run against, and the
//! group-commit writer thread.
//!
//! Tables:
//! - `kv`: `keyspace ++ 0x00 ++ key` -> encoded [`Entry`] (keys of one keyspace are contiguous).
//! - `kv_expiry`: `expire_at_ms (u64 BE) ++ keyspace ++ 0x00 ++ key` -> `()`, for the sweep.
//! - `kv_meta`: `keyspace` -> `(bytes, keys)`, updated in the same transaction as the data.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use redb::{
    Database, Durability, ReadOnlyTable, ReadableDatabase, ReadableTable, Table, TableDefinition, WriteTransaction,
};
use tokio::sync::oneshot;

use crate::KvError;
use crate::commands::{self, Cmd, Ctx};
use crate::resp::Reply;
use crate::value::{self, Entry, Kind};

const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
const EXPIRY: TableDefinition<&[u8], ()> = TableDefinition::new("kv_expiry");
const META: TableDefinition<&str, (u64, u64)> = TableDefinition::new("kv_meta");

/// How often the writer looks for expired keys when idle, and how many it removes per pass.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);
const SWEEP_LIMIT: usize = 256;
/// Most jobs (connection batches) folded into one transaction.
const MAX_GROUP: usize = 1024;
/// SCAN cursors remembered server-wide; the oldest is forgotten first.
const MAX_CURSORS: usize = 65536;

/// A storage failure inside a transaction; the whole group is rolled back.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(String);

impl<E: Into<redb::Error>> From<E> for StoreError {
    fn from(e: E) -> Self {
        StoreError(e.into().to_string())
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn full_key(ks: &str, key: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(ks.as_bytes());
    out.push(0);
    out.extend_from_slice(key);
}

/// `[ks\0, ks\x01)`: every key of one keyspace (ids never contain NUL).
fn keyspace_range(ks: &str) -> (Vec<u8>, Vec<u8>) {
    let mut lo = ks.as_bytes().to_vec();
    lo.push(0);
    let mut hi = ks.as_bytes().to_vec();
    hi.push(1);
    (lo, hi)
}

fn expiry_key(at: u64, full: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + full.len());
    k.extend_from_slice(&at.to_be_bytes());
    k.extend_from_slice(full);
    k
}

/// One page of a keyspace walk: live keys with their kinds, and where the next page starts.
pub struct ScanPage {
    pub keys: Vec<(Bytes, Kind)>,
    pub next: Option<Vec<u8>>,
}

/// What a command may do to one keyspace. Reads hide expired keys; the write view also
/// deletes them when it meets them.
pub trait Access {
    fn get(&mut self, key: &[u8]) -> Result<Option<Entry>, StoreError>;
    /// Stores `entry`; an entry whose expiry has passed is deleted instead.
    fn put(&mut self, key: &[u8], entry: &Entry) -> Result<(), StoreError>;
    /// Deletes a key; true if a live key was there.
    fn remove(&mut self, key: &[u8]) -> Result<bool, StoreError>;
    /// Examines up to `count` keys starting at `from` (inclusive; empty = start).
    fn scan(&mut self, from: &[u8], count: usize) -> Result<ScanPage, StoreError>;
    fn dbsize(&mut self) -> Result<u64, StoreError>;
    fn flush(&mut self) -> Result<(), StoreError>;
}

fn read_entry(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    full: &[u8],
    now: u64,
) -> Result<Option<Entry>, StoreError> {
    let Some(guard) = table.get(full)? else { return Ok(None) };
    let entry = value::decode(guard.value()).ok_or_else(|| StoreError("corrupt kv value".into()))?;
    Ok((!entry.is_expired(now)).then_some(entry))
}

fn scan_table(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    ks: &str,
    from: &[u8],
    count: usize,
    now: u64,
) -> Result<ScanPage, StoreError> {
    let (lo, hi) = keyspace_range(ks);
    let mut start = lo.clone();
    start.extend_from_slice(from);
    let prefix = lo.len();
    let mut keys = Vec::new();
    for (seen, item) in table.range::<&[u8]>(start.as_slice()..hi.as_slice())?.enumerate() {
        let (k, v) = item?;
        if seen == count {
            return Ok(ScanPage { keys, next: Some(k.value()[prefix..].to_vec()) });
        }
        let Some((kind, expire_at, _)) = value::peek(v.value()) else { continue };
        if expire_at.is_some_and(|at| at <= now) {
            continue;
        }
        keys.push((Bytes::copy_from_slice(&k.value()[prefix..]), kind));
    }
    Ok(ScanPage { keys, next: None })
}

/// A consistent snapshot for batches that only read.
pub struct ReadView {
    data: ReadOnlyTable<&'static [u8], &'static [u8]>,
    meta: ReadOnlyTable<&'static str, (u64, u64)>,
    ks: Arc<str>,
    now: u64,
    keybuf: Vec<u8>,
}

impl Access for ReadView {
    fn get(&mut self, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        full_key(&self.ks, key, &mut self.keybuf);
        read_entry(&self.data, &self.keybuf, self.now)
    }

    fn put(&mut self, _: &[u8], _: &Entry) -> Result<(), StoreError> {
        Err(StoreError("write attempted on a read snapshot".into()))
    }

    fn remove(&mut self, _: &[u8]) -> Result<bool, StoreError> {
        Err(StoreError("write attempted on a read snapshot".into()))
    }

    fn scan(&mut self, from: &[u8], count: usize) -> Result<ScanPage, StoreError> {
        scan_table(&self.data, &self.ks, from, count, self.now)
    }

    fn dbsize(&mut self) -> Result<u64, StoreError> {
        Ok(self.meta.get(&*self.ks)?.map_or(0, |g| g.value().1))
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        Err(StoreError("write attempted on a read snapshot".into()))
    }
}

/// The tables of one group-commit transaction, plus the keyspace counters it has touched.
struct WriteTables<'txn> {
    data: Table<'txn, &'static [u8], &'static [u8]>,
    expiry: Table<'txn, &'static [u8], ()>,
    meta: Table<'txn, &'static str, (u64, u64)>,
    /// Keyspace -> (bytes, keys), loaded on first touch, written back before commit.
    counters: HashMap<String, (i64, i64)>,
    now: u64,
}

impl<'txn> WriteTables<'txn> {
    fn open(txn: &'txn WriteTransaction, now: u64) -> Result<Self, StoreError> {
        Ok(WriteTables {
            data: txn.open_table(DATA)?,
            expiry: txn.open_table(EXPIRY)?,
            meta: txn.open_table(META)?,
            counters: HashMap::new(),
            now,
        })
    }

    fn counter(&mut self, ks: &str) -> Result<&mut (i64, i64), StoreError> {
        if !self.counters.contains_key(ks) {
            let (b, k) = self.meta.get(ks)?.map_or((0, 0), |g| g.value());
            self.counters.insert(ks.to_owned(), (b as i64, k as i64));
        }
        self.counters.get_mut(ks).ok_or_else(|| StoreError("counter vanished".into()))
    }

    /// Removes a stored key whatever its expiry; returns the removed entry's header.
    fn remove_full(&mut self, ks: &str, full: &[u8]) -> Result<Option<(Option<u64>, bool)>, StoreError> {
        let removed = match self.data.remove(full)? {
            Some(old) => value::peek(old.value()).map(|(_, at, len)| (at, len)),
            None => return Ok(None),
        };
        let Some((expire_at, len)) = removed else { return Ok(None) };
        if let Some(at) = expire_at {
            self.expiry.remove(expiry_key(at, full).as_slice())?;
        }
        let key_len = full.len() - ks.len() - 1;
        let c = self.counter(ks)?;
        c.0 -= (key_len + len) as i64;
        c.1 -= 1;
        Ok(Some((expire_at, expire_at.is_none_or(|at| at > self.now))))
    }

    fn sweep(&mut self, limit: usize) -> Result<usize, StoreError> {
        let mut due = Vec::new();
        for item in self.expiry.range::<&[u8]>(..)? {
            let (k, _) = item?;
            let k = k.value();
            let mut at = [0u8; 8];
            at.copy_from_slice(&k[..8]);
            if u64::from_be_bytes(at) > self.now || due.len() >= limit {
                break;
            }
            due.push(k.to_vec());
        }
        for idx in &due {
            let full = &idx[8..];
            let ks_len = full.iter().position(|&b| b == 0).unwrap_or(full.len());
            let ks = String::from_utf8_lossy(&full[..ks_len]).into_owned();
            let expired = match self.data.get(full)? {
                Some(g) => value::peek(g.value()).is_some_and(|(_, at, _)| at.is_some_and(|at| at <= self.now)),
                None => false,
            };
            if expired {
                self.remove_full(&ks, full)?;
            } else {
                // A stale index row (the key was rewritten without this expiry).
                self.expiry.remove(idx.as_slice())?;
            }
        }
        Ok(due.len())
    }

    fn flush_keyspace(&mut self, ks: &str) -> Result<(), StoreError> {
        let (lo, hi) = keyspace_range(ks);
        let mut victims = Vec::new();
        for item in self.data.range::<&[u8]>(lo.as_slice()..hi.as_slice())? {
            let (k, v) = item?;
            victims.push((k.value().to_vec(), value::peek(v.value()).and_then(|(_, at, _)| at)));
        }
        for (full, at) in victims {
            self.data.remove(full.as_slice())?;
            if let Some(at) = at {
                self.expiry.remove(expiry_key(at, &full).as_slice())?;
            }
        }
        *self.counter(ks)? = (0, 0);
        Ok(())
    }

    fn write_counters(&mut self) -> Result<(), StoreError> {
        for (ks, (bytes, keys)) in std::mem::take(&mut self.counters) {
            if keys <= 0 {
                self.meta.remove(ks.as_str())?;
            } else {
                self.meta.insert(ks.as_str(), (bytes.max(0) as u64, keys as u64))?;
            }
        }
        Ok(())
    }
}

/// The write transaction as seen by the commands of one keyspace.
struct WriteView<'a, 'txn> {
    t: &'a mut WriteTables<'txn>,
    ks: &'a str,
    keybuf: Vec<u8>,
    valbuf: Vec<u8>,
}

impl Access for WriteView<'_, '_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        full_key(self.ks, key, &mut self.keybuf);
        let stored = match self.t.data.get(self.keybuf.as_slice())? {
            Some(g) => value::decode(g.value()).ok_or_else(|| StoreError("corrupt kv value".into()))?,
            None => return Ok(None),
        };
        if stored.is_expired(self.t.now) {
            let full = std::mem::take(&mut self.keybuf);
            self.t.remove_full(self.ks, &full)?;
            self.keybuf = full;
            return Ok(None);
        }
        Ok(Some(stored))
    }

    fn put(&mut self, key: &[u8], entry: &Entry) -> Result<(), StoreError> {
        if entry.is_expired(self.t.now) {
            self.remove(key)?;
            return Ok(());
        }
        full_key(self.ks, key, &mut self.keybuf);
        entry.encode_into(&mut self.valbuf);
        let old =
            self.t.data.insert(self.keybuf.as_slice(), self.valbuf.as_slice())?.and_then(|g| value::peek(g.value()));
        let new_len = entry.data.len() as i64;
        let (old_at, delta_bytes, delta_keys) = match old {
            Some((_, at, len)) => (at, new_len - len as i64, 0),
            None => (None, key.len() as i64 + new_len, 1),
        };
        if old_at != entry.expire_at {
            if let Some(at) = old_at {
                self.t.expiry.remove(expiry_key(at, &self.keybuf).as_slice())?;
            }
            if let Some(at) = entry.expire_at {
                self.t.expiry.insert(expiry_key(at, &self.keybuf).as_slice(), ())?;
            }
        }
        let c = self.t.counter(self.ks)?;
        c.0 += delta_bytes;
        c.1 += delta_keys;
        Ok(())
    }

    fn remove(&mut self, key: &[u8]) -> Result<bool, StoreError> {
        full_key(self.ks, key, &mut self.keybuf);
        let full = std::mem::take(&mut self.keybuf);
        let removed = self.t.remove_full(self.ks, &full)?;
        self.keybuf = full;
        Ok(removed.is_some_and(|(_, live)| live))
    }

    fn scan(&mut self, from: &[u8], count: usize) -> Result<ScanPage, StoreError> {
        scan_table(&self.t.data, self.ks, from, count, self.t.now)
    }

    fn dbsize(&mut self) -> Result<u64, StoreError> {
        Ok(self.t.counter(self.ks)?.1.max(0) as u64)
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.t.flush_keyspace(self.ks)
    }
}

/// SCAN cursors: redis clients parse the cursor as an integer, so it names a remembered
/// resume key. Kept server-wide (not per connection) because pooled clients may send the
/// next SCAN on another connection. A forgotten cursor ends the iteration.
#[derive(Default)]
pub struct Cursors {
    inner: Mutex<CursorTable>,
}

#[derive(Default)]
struct CursorTable {
    last_id: u64,
    map: HashMap<u64, (Arc<str>, Vec<u8>)>,
    order: VecDeque<u64>,
}

impl Cursors {
    pub fn save(&self, ks: &Arc<str>, resume: Vec<u8>) -> u64 {
        let mut t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        t.last_id += 1;
        let id = t.last_id;
        t.map.insert(id, (ks.clone(), resume));
        t.order.push_back(id);
        while t.order.len() > MAX_CURSORS {
            if let Some(old) = t.order.pop_front() {
                t.map.remove(&old);
            }
        }
        id
    }

    /// The resume key of a cursor issued for this keyspace.
    pub fn load(&self, ks: &str, id: u64) -> Option<Vec<u8>> {
        let t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        t.map.get(&id).filter(|(k, _)| &**k == ks).map(|(_, key)| key.clone())
    }
}

pub type BatchResult = Result<Vec<Reply>, String>;

enum Job {
    Batch { ks: Arc<str>, cmds: Vec<Cmd>, done: oneshot::Sender<BatchResult> },
    DeleteKeyspace { ks: String, done: mpsc::SyncSender<Result<(), String>> },
}

/// The database plus its single writer thread.
pub struct Store {
    db: Arc<Database>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    pub cursors: Arc<Cursors>,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, KvError> {
        let open_err = |e: redb::Error| KvError::Open { path: path.to_path_buf(), source: Box::new(e) };
        let db = Database::create(path).map_err(|e| open_err(e.into()))?;
        let txn = db.begin_write().map_err(|e| open_err(e.into()))?;
        {
            txn.open_table(DATA).map_err(|e| open_err(e.into()))?;
            txn.open_table(EXPIRY).map_err(|e| open_err(e.into()))?;
            txn.open_table(META).map_err(|e| open_err(e.into()))?;
        }
        txn.commit().map_err(|e| open_err(e.into()))?;
        let db = Arc::new(db);
        let cursors = Arc::new(Cursors::default());
        let (tx, rx) = mpsc::channel();
        let writer = {
            let (db, cursors) = (db.clone(), cursors.clone());
            std::thread::Builder::new()
                .name("tovuk-kv-writer".into())
                .spawn(move || writer_loop(&db, &cursors, &rx))
                .map_err(KvError::Writer)?
        };
        Ok(Store { db, jobs: Mutex::new(Some(tx)), writer: Mutex::new(Some(writer)), cursors })
    }

    fn send(&self, job: Job) -> bool {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.as_ref().is_some_and(|tx| tx.send(job).is_ok())
    }

    /// Runs a batch that writes through the group-commit writer; resolves after the commit.
    pub async fn write(&self, ks: Arc<str>, cmds: Vec<Cmd>) -> BatchResult {
        let (done, wait) = oneshot::channel();
        if !self.send(Job::Batch { ks, cmds, done }) {
            return Err("ERR kv writer has stopped".into());
        }
        wait.await.unwrap_or_else(|_| Err("ERR kv writer has stopped".into()))
    }

    /// Runs a read-only batch on one snapshot, on the calling thread.
    pub fn read(&self, ks: Arc<str>, cmds: &[Cmd]) -> BatchResult {
        let run = || -> Result<Vec<Reply>, StoreError> {
            let txn = self.db.begin_read()?;
            let mut view = ReadView {
                data: txn.open_table(DATA)?,
                meta: txn.open_table(META)?,
                ks,
                now: now_ms(),
                keybuf: Vec::new(),
            };
            let ctx = Ctx { now: view.now, cursors: &self.cursors, ks: view.ks.clone() };
            cmds.iter().map(|cmd| commands::execute(cmd, &mut view, &ctx)).collect()
        };
        run().map_err(|e| format!("ERR storage error: {e}"))
    }

    pub fn delete_keyspace(&self, ks: &str) -> Result<(), KvError> {
        let (done, wait) = mpsc::sync_channel(1);
        if !self.send(Job::DeleteKeyspace { ks: ks.to_owned(), done }) {
            return Err(KvError::Stopped);
        }
        wait.recv().map_err(|_| KvError::Stopped)?.map_err(KvError::Storage)
    }

    /// `(bytes, keys)` of a keyspace from its counter row.
    fn counters(&self, ks: &str) -> (u64, u64) {
        let read = || -> Result<(u64, u64), StoreError> {
            let txn = self.db.begin_read()?;
            let meta = txn.open_table(META)?;
            Ok(meta.get(ks)?.map_or((0, 0), |g| g.value()))
        };
        read().unwrap_or((0, 0))
    }

    pub fn keyspace_bytes(&self, ks: &str) -> u64 {
        self.counters(ks).0
    }

    pub fn keyspace_keys(&self, ks: &str) -> u64 {
        self.counters(ks).1
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Closing the channel ends the writer; joining releases the file lock for reopen.
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = handle.join();
        }
    }
}

fn writer_loop(db: &Database, cursors: &Arc<Cursors>, rx: &mpsc::Receiver<Job>) {
    let mut last_sweep = Instant::now();
    loop {
        let first = match rx.recv_timeout(SWEEP_INTERVAL) {
            Ok(job) => Some(job),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut jobs: Vec<Job> = first.into_iter().collect();
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let sweep = last_sweep.elapsed() >= SWEEP_INTERVAL;
        if jobs.is_empty() && !(sweep && sweep_due(db)) {
            continue;
        }
        if sweep {
            last_sweep = Instant::now();
        }
        commit_group(db, cursors, jobs, sweep);
    }
}

/// Whether any expiry has passed, checked on a snapshot so an idle writer commits nothing.
fn sweep_due(db: &Database) -> bool {
    let check = || -> Result<bool, StoreError> {
        let txn = db.begin_read()?;
        let expiry = txn.open_table(EXPIRY)?;
        let first = expiry.first()?;
        Ok(first.is_some_and(|(k, _)| {
            let mut at = [0u8; 8];
            at.copy_from_slice(&k.value()[..8]);
            u64::from_be_bytes(at) <= now_ms()
        }))
    };
    check().unwrap_or(false)
}

enum Outcome {
    Batch(oneshot::Sender<BatchResult>, Vec<Reply>),
    Deleted(mpsc::SyncSender<Result<(), String>>),
}

/// Applies every pending job in one transaction, commits durably once, then answers them all.
fn commit_group(db: &Database, cursors: &Arc<Cursors>, jobs: Vec<Job>, sweep: bool) {
    let mut outcomes = Vec::with_capacity(jobs.len());
    let mut pending = jobs.into_iter();
    let result = (|| -> Result<(), StoreError> {
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        {
            let now = now_ms();
            let mut tables = WriteTables::open(&txn, now)?;
            for job in pending.by_ref() {
                match job {
                    Job::Batch { ks, cmds, done } => {
                        let ctx = Ctx { now, cursors, ks: ks.clone() };
                        let mut view = WriteView { t: &mut tables, ks: &ks, keybuf: Vec::new(), valbuf: Vec::new() };
                        let mut replies = Vec::with_capacity(cmds.len());
                        for cmd in &cmds {
                            match commands::execute(cmd, &mut view, &ctx) {
                                Ok(r) => replies.push(r),
                                Err(e) => {
                                    let _ = done.send(Err(format!("ERR storage error: {e}")));
                                    return Err(e);
                                }
                            }
                        }
                        outcomes.push(Outcome::Batch(done, replies));
                    }
                    Job::DeleteKeyspace { ks, done } => {
                        tables.flush_keyspace(&ks)?;
                        outcomes.push(Outcome::Deleted(done));
                    }
                }
            }
            if sweep {
                tables.sweep(SWEEP_LIMIT)?;
            }
            tables.write_counters()?;
        }
        txn.commit()?;
        Ok(())
    })();
    match result {
        Ok(()) => {
            for outcome in outcomes {
                match outcome {
                    Outcome::Batch(done, replies) => {
                        let _ = done.send(Ok(replies));
                    }
                    Outcome::Deleted(done) => {
                        let _ = done.send(Ok(()));
                    }
                }
            }
        }
        Err(e) => {
            // Nothing was committed: every job in the group fails, none half-applies.
            let msg = format!("ERR storage error: {e}");
            for outcome in outcomes {
                match outcome {
                    Outcome::Batch(done, _) => {
                        let _ = done.send(Err(msg.clone()));
                    }
                    Outcome::Deleted(done) => {
                        let _ = done.send(Err(msg.clone()));
                    }
                }
            }
            for job in pending {
                match job {
                    Job::Batch { done, .. } => {
                        let _ = done.send(Err(msg.clone()));
                    }
                    Job::DeleteKeyspace { done, .. } => {
                        let _ = done.send(Err(msg.clone()));
                    }
                }
            }
        }
    }
}
