//! Buckets on disk: the key index (redb), body files, staging and crash recovery.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum as _, Md5};
use s3s::dto::StreamingBlob;
use s3s::{S3Error, S3ErrorCode, S3Result};
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::error::ObjectsError;
use crate::list::{self, ListQuery, Page};
use crate::record::{self, ObjectRecord};

/// Key bytes (UTF-8) to an encoded [`ObjectRecord`], in byte order as S3 lists.
pub(crate) const OBJECTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("objects");
/// Upload id to an encoded `UploadRecord`.
pub(crate) const UPLOADS: TableDefinition<&str, &[u8]> = TableDefinition::new("uploads");
/// (upload id, part number) to an encoded `PartRecord`.
pub(crate) const PARTS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("parts");

const INDEX_FILE: &str = "index.redb";
const DATA_DIR: &str = "data";
pub(crate) const PARTS_DIR: &str = "parts";
const TMP_DIR: &str = "tmp";
/// Buffer between the request body and the file: large enough that each blocking write is worth it.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// The object store: one directory per bucket under `root`.
pub struct Objects {
    root: PathBuf,
    /// Buckets by name; only `ensure_bucket` adds to it, nothing removes.
    buckets: RwLock<HashMap<String, Arc<BucketStore>>>,
    /// When idle buckets' indexes were last let go.
    swept: std::sync::Mutex<Instant>,
}

impl Objects {
    /// Opens every bucket under `root` (creating `root` if needed), removing what a crash left behind:
    /// staged uploads and body files no index entry refers to.
    pub fn open(root: &Path) -> Result<Arc<Objects>, ObjectsError> {
        fs::create_dir_all(root).map_err(io_error(root))?;
        let mut buckets = HashMap::new();
        for entry in fs::read_dir(root).map_err(io_error(root))? {
            let entry = entry.map_err(io_error(root))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
            let dir = entry.path();
            if s3s::path::check_bucket_name(&name) && dir.join(INDEX_FILE).is_file() {
                let bucket = BucketStore::open(&dir, &name)?;
                buckets.insert(name, Arc::new(bucket));
            }
        }
        Ok(Arc::new(Objects {
            root: root.to_owned(),
            buckets: RwLock::new(buckets),
            swept: std::sync::Mutex::new(Instant::now()),
        }))
    }

    /// Creates the bucket if it does not exist. Buckets are created by the platform, never by an app.
    pub fn ensure_bucket(&self, name: &str) -> Result<(), ObjectsError> {
        if !s3s::path::check_bucket_name(name) {
            return Err(ObjectsError::InvalidBucketName { name: name.to_owned() });
        }
        let mut buckets = self.buckets.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.contains_key(name) {
            return Ok(());
        }
        let bucket = BucketStore::open(&self.root.join(name), name)?;
        sync_dir(&self.root).map_err(io_error(&self.root))?;
        buckets.insert(name.to_owned(), Arc::new(bucket));
        Ok(())
    }

    /// Bytes held by the bucket: objects plus parts of unfinished multipart uploads. 0 if unknown.
    pub fn bucket_bytes(&self, name: &str) -> u64 {
        self.bucket(name).map_or(0, |bucket| bucket.bytes())
    }

    pub(crate) fn bucket(&self, name: &str) -> Option<Arc<BucketStore>> {
        let buckets = self.buckets.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        // At most once per idle period, the indexes of buckets nobody used lately are let go.
        let now = Instant::now();
        let mut swept = self.swept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if now.duration_since(*swept) >= INDEX_IDLE {
            *swept = now;
            drop(swept);
            for bucket in buckets.values().filter(|bucket| bucket.name != name) {
                bucket.close_if_idle(now);
            }
        }
        buckets.get(name).cloned()
    }
}

/// One bucket: its directory, index and byte count.
pub(crate) struct BucketStore {
    pub(crate) name: String,
    dir: PathBuf,
    /// The index, open while the bucket is in use and closed once idle (see [`BucketStore::db`]).
    index: std::sync::Mutex<OpenIndex>,
    /// Sum of object and part sizes in the index; kept in step with every commit.
    bytes: AtomicU64,
    /// When the bucket directory was created (ListBuckets' CreationDate).
    pub(crate) created: SystemTime,
}

/// A bucket's index handle: held open while the bucket is used, let go once it has been idle
/// for [`INDEX_IDLE`] (a platform with many idle buckets keeps none of their indexes in memory);
/// `open` still reaches it while a request that took it runs.
struct OpenIndex {
    held: Option<Arc<Database>>,
    open: std::sync::Weak<Database>,
    used: Instant,
}

/// How long an unused bucket's index stays open.
const INDEX_IDLE: Duration = Duration::from_secs(30);

impl BucketStore {
    /// The bucket's index, opened again if it was let go.
    pub(crate) fn db(&self) -> Result<Arc<Database>, redb::Error> {
        let mut index = self.index.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        index.used = Instant::now();
        if let Some(db) = index.held.clone().or_else(|| index.open.upgrade()) {
            index.held = Some(db.clone());
            return Ok(db);
        }
        let db = Arc::new(Database::create(self.dir.join(INDEX_FILE)).map_err(redb::Error::from)?);
        index.open = Arc::downgrade(&db);
        index.held = Some(db.clone());
        Ok(db)
    }

    /// Lets go of the index if unused for [`INDEX_IDLE`].
    fn close_if_idle(&self, now: Instant) {
        let mut index = self.index.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if index.held.is_some() && now.duration_since(index.used) >= INDEX_IDLE {
            index.held = None;
        }
    }

    fn open(dir: &Path, name: &str) -> Result<BucketStore, ObjectsError> {
        for sub in [DATA_DIR, PARTS_DIR, TMP_DIR] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).map_err(io_error(&path))?;
        }
        sync_dir(dir).map_err(io_error(dir))?;
        let index_path = dir.join(INDEX_FILE);
        let index_error = |source: redb::Error| ObjectsError::Index { path: index_path.clone(), source };
        let db = Arc::new(Database::create(&index_path).map_err(|e| index_error(e.into()))?);
        // Create the tables so readers never see them missing.
        let txn = db.begin_write().map_err(|e| index_error(e.into()))?;
        {
            txn.open_table(OBJECTS).map_err(|e| index_error(e.into()))?;
            txn.open_table(UPLOADS).map_err(|e| index_error(e.into()))?;
            txn.open_table(PARTS).map_err(|e| index_error(e.into()))?;
        }
        txn.commit().map_err(|e| index_error(e.into()))?;

        let metadata = fs::metadata(dir).map_err(io_error(dir))?;
        let created = metadata.created().or_else(|_| metadata.modified()).unwrap_or(UNIX_EPOCH);
        let index = std::sync::Mutex::new(OpenIndex {
            held: Some(db.clone()),
            open: Arc::downgrade(&db),
            used: Instant::now(),
        });
        drop(db);
        let bucket =
            BucketStore { name: name.to_owned(), dir: dir.to_owned(), index, bytes: AtomicU64::new(0), created };
        let (bytes, referenced) = bucket.scan_index().map_err(index_error)?;
        bucket.bytes.store(bytes, Ordering::Relaxed);
        bucket.remove_unreferenced(&referenced)?;
        Ok(bucket)
    }

    /// Total bytes and the ids of every body file the index refers to.
    fn scan_index(&self) -> Result<(u64, HashSet<String>), redb::Error> {
        let db = self.db()?;
        let txn = db.begin_read()?;
        let mut bytes = 0u64;
        let mut referenced = HashSet::new();
        for entry in txn.open_table(OBJECTS)?.iter()? {
            let (_, value) = entry?;
            if let Ok(object) = record::decode::<ObjectRecord>(value.value()) {
                bytes += object.size;
                referenced.insert(object.file);
            }
        }
        for entry in txn.open_table(PARTS)?.iter()? {
            let (_, value) = entry?;
            if let Ok(part) = record::decode::<record::PartRecord>(value.value()) {
                bytes += part.size;
                referenced.insert(part.file);
            }
        }
        Ok((bytes, referenced))
    }

    /// Deletes staged files and bodies renamed into place whose index commit never happened.
    fn remove_unreferenced(&self, referenced: &HashSet<String>) -> Result<(), ObjectsError> {
        for sub in [TMP_DIR, DATA_DIR, PARTS_DIR] {
            let dir = self.dir.join(sub);
            for entry in fs::read_dir(&dir).map_err(io_error(&dir))? {
                let entry = entry.map_err(io_error(&dir))?;
                let keep = sub != TMP_DIR && entry.file_name().to_str().is_some_and(|id| referenced.contains(id));
                if !keep {
                    let path = entry.path();
                    tracing::info!(path = %path.display(), "removing file left by an interrupted write");
                    fs::remove_file(&path).map_err(io_error(&path))?;
                }
            }
        }
        Ok(())
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn add_bytes(&self, added: u64, removed: u64) {
        self.bytes.fetch_add(added, Ordering::Relaxed);
        // Saturate rather than wrap if the count ever disagrees with the index.
        let _ =
            self.bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| Some(held.saturating_sub(removed)));
    }

    pub(crate) fn data_path(&self, file: &str) -> PathBuf {
        self.dir.join(DATA_DIR).join(file)
    }

    pub(crate) fn part_path(&self, file: &str) -> PathBuf {
        self.dir.join(PARTS_DIR).join(file)
    }

    /// A new staging file in `tmp/`, removed when the guard drops unless it was moved into place.
    pub(crate) fn new_staged_path(&self) -> S3Result<StagedFile> {
        let id = new_id()?;
        Ok(StagedFile { path: self.dir.join(TMP_DIR).join(&id), id, placed: false })
    }

    /// Streams `body` into a staged file, then fsyncs it. `check` sees the running size after each
    /// chunk and may refuse (a cap), which aborts the upload and removes the file.
    pub(crate) async fn stage_body(
        &self,
        mut body: StreamingBlob,
        mut hasher: ChecksumHasher,
        mut check: impl FnMut(u64) -> S3Result<()>,
    ) -> S3Result<Staged> {
        let file = self.new_staged_path()?;
        let handle = tokio::fs::File::create(&file.path).await.map_err(internal)?;
        let mut writer = BufWriter::with_capacity(WRITE_BUFFER_BYTES, handle);
        let mut md5 = Md5::new();
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(body_error)?;
            md5.update(&chunk);
            hasher.update(&chunk);
            size += chunk.len() as u64;
            check(size)?;
            writer.write_all(&chunk).await.map_err(internal)?;
        }
        writer.flush().await.map_err(internal)?;
        writer.into_inner().sync_all().await.map_err(internal)?;
        Ok(Staged { file, size, md5: md5.finalize(), checksum: hasher.finalize() })
    }

    /// Copies a stored body (or a byte range of it) into a staged, fsynced file.
    pub(crate) async fn stage_copy(&self, sources: Vec<PathBuf>) -> S3Result<(StagedFile, u64)> {
        let file = self.new_staged_path()?;
        let path = file.path.clone();
        let size = tokio::task::spawn_blocking(move || -> io::Result<u64> {
            let mut out = fs::File::create(&path)?;
            let mut size = 0;
            for source in sources {
                // std::io::copy uses copy_file_range between files: no copy through user space.
                size += io::copy(&mut fs::File::open(source)?, &mut out)?;
            }
            out.sync_all()?;
            Ok(size)
        })
        .await
        .map_err(internal)?
        .map_err(internal)?;
        Ok((file, size))
    }

    /// The object at `key`, if any.
    pub(crate) fn get(&self, key: &str) -> S3Result<Option<ObjectRecord>> {
        // Held until the transaction ends: the index stays open under it.
        let db = self.db().map_err(internal)?;
        let txn = db.begin_read().map_err(internal)?;
        let table = txn.open_table(OBJECTS).map_err(internal)?;
        let value = table.get(key.as_bytes()).map_err(internal)?;
        value.map(|value| record::decode(value.value()).map_err(internal)).transpose()
    }

    /// Opens the body of the object at `key` with the record it belongs to. A concurrent overwrite can
    /// remove the file between reading the index and opening it, so look again when that happens.
    pub(crate) async fn open_body(self: &Arc<Self>, key: &str) -> S3Result<Option<(ObjectRecord, tokio::fs::File)>> {
        for _ in 0..5 {
            let Some(object) = self.get(key)? else { return Ok(None) };
            match tokio::fs::File::open(self.data_path(&object.file)).await {
                Ok(file) => return Ok(Some((object, file))),
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(internal(error)),
            }
        }
        Err(S3Error::with_message(S3ErrorCode::SlowDown, "object is being overwritten, retry"))
    }

    /// Moves a staged body into `data/` and makes it the object at `key` in one index commit.
    /// `precondition` sees the current object inside the write transaction (If-Match on PUT).
    pub(crate) async fn commit_object(
        self: &Arc<Self>,
        key: String,
        mut staged: StagedFile,
        object: ObjectRecord,
        precondition: impl FnOnce(Option<&ObjectRecord>) -> S3Result<()> + Send + 'static,
    ) -> S3Result<()> {
        let bucket = Arc::clone(self);
        let replaced = tokio::task::spawn_blocking(move || -> S3Result<Option<ObjectRecord>> {
            // Held until the transaction ends: the index stays open under it.
            let db = bucket.db().map_err(internal)?;
            let txn = db.begin_write().map_err(internal)?;
            let replaced = {
                let mut table = txn.open_table(OBJECTS).map_err(internal)?;
                let current = match table.get(key.as_bytes()).map_err(internal)? {
                    Some(value) => Some(record::decode::<ObjectRecord>(value.value()).map_err(internal)?),
                    None => None,
                };
                precondition(current.as_ref())?;
                let data_path = bucket.data_path(&object.file);
                staged.place(&data_path)?;
                table.insert(key.as_bytes(), record::encode(&object).as_slice()).map_err(internal)?;
                current
            };
            if let Err(error) = txn.commit() {
                let _ = fs::remove_file(bucket.data_path(&object.file));
                return Err(internal(error));
            }
            bucket.add_bytes(object.size, replaced.as_ref().map_or(0, |old| old.size));
            Ok(replaced)
        })
        .await
        .map_err(internal)??;
        if let Some(old) = replaced {
            remove_quietly(&self.data_path(&old.file));
        }
        Ok(())
    }

    /// Removes the object at `key`; deleting a missing key succeeds, as in S3.
    pub(crate) async fn delete(self: &Arc<Self>, key: String) -> S3Result<()> {
        let bucket = Arc::clone(self);
        let removed = tokio::task::spawn_blocking(move || -> S3Result<Option<ObjectRecord>> {
            // Held until the transaction ends: the index stays open under it.
            let db = bucket.db().map_err(internal)?;
            let txn = db.begin_write().map_err(internal)?;
            let removed = {
                let mut table = txn.open_table(OBJECTS).map_err(internal)?;
                let removed = table.remove(key.as_bytes()).map_err(internal)?;
                match removed {
                    Some(value) => Some(record::decode::<ObjectRecord>(value.value()).map_err(internal)?),
                    None => None,
                }
            };
            if removed.is_some() {
                txn.commit().map_err(internal)?;
            }
            Ok(removed)
        })
        .await
        .map_err(internal)??;
        if let Some(old) = removed {
            self.add_bytes(0, old.size);
            remove_quietly(&self.data_path(&old.file));
        }
        Ok(())
    }

    /// One page of keys in byte order, as ListObjects (v1 and v2) need it.
    pub(crate) fn list(&self, query: &ListQuery<'_>) -> S3Result<Page<ObjectRecord>> {
        // Held until the transaction ends: the index stays open under it.
        let db = self.db().map_err(internal)?;
        let txn = db.begin_read().map_err(internal)?;
        let table = txn.open_table(OBJECTS).map_err(internal)?;
        list::list(query, |from| -> S3Result<Option<(Vec<u8>, ObjectRecord)>> {
            let Some(entry) = table.range(from..).map_err(internal)?.next() else { return Ok(None) };
            let (key, value) = entry.map_err(internal)?;
            let object = record::decode(value.value()).map_err(internal)?;
            Ok(Some((key.value().to_vec(), object)))
        })
    }
}

/// A body streamed into `tmp/` and fsynced, with what was computed on the way.
pub(crate) struct Staged {
    pub file: StagedFile,
    pub size: u64,
    pub md5: [u8; 16],
    pub checksum: s3s::dto::Checksum,
}

/// A file in `tmp/`; deleted on drop unless [`StagedFile::place`] moved it (an aborted or refused
/// upload, or a dropped connection, leaves nothing behind).
pub(crate) struct StagedFile {
    pub id: String,
    path: PathBuf,
    placed: bool,
}

impl StagedFile {
    /// Renames the file to `target` and fsyncs the target directory, so the rename survives a crash.
    pub(crate) fn place(&mut self, target: &Path) -> S3Result<()> {
        fs::rename(&self.path, target).map_err(internal)?;
        self.placed = true;
        if let Some(dir) = target.parent() {
            sync_dir(dir).map_err(internal)?;
        }
        Ok(())
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.placed {
            remove_quietly(&self.path);
        }
    }
}

pub(crate) fn new_id() -> S3Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|error| internal(io::Error::other(error.to_string())))?;
    Ok(hex::encode(bytes))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

pub(crate) fn remove_quietly(path: &Path) {
    if let Err(error) = fs::remove_file(path)
        && error.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(%error, path = %path.display(), "failed to remove object file");
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ObjectsError + '_ {
    move |source| ObjectsError::Io { path: path.to_owned(), source }
}

/// An unexpected failure of our own: logged in full, answered as `InternalError`.
pub(crate) fn internal(error: impl std::fmt::Display) -> S3Error {
    tracing::error!(%error, "object store failure");
    S3Error::with_message(S3ErrorCode::InternalError, "internal error")
}

/// A request body that failed while streaming. s3s keeps its stream error types private, so the
/// S3 code is chosen from the message.
pub(crate) fn body_error(error: s3s::StdError) -> S3Error {
    if let Some(s3_error) = error.downcast_ref::<S3Error>() {
        return S3Error::with_message(s3_error.code().clone(), s3_error.message().unwrap_or_default().to_owned());
    }
    let message = error.to_string();
    let code = if message.contains("Sha256Mismatch") {
        S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into())
    } else if message.contains("SignatureMismatch") {
        S3ErrorCode::SignatureDoesNotMatch
    } else {
        S3ErrorCode::IncompleteBody
    };
    tracing::info!(%message, "request body failed");
    let custom = matches!(code, S3ErrorCode::Custom(_));
    let mut s3_error = S3Error::with_message(code, message);
    if custom {
        // s3s knows no status for codes it does not define; S3 answers 400 for this one.
        s3_error.set_status_code(hyper::StatusCode::BAD_REQUEST);
    }
    s3_error
}

#[cfg(test)]
mod tests;
