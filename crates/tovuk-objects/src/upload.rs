//! Multipart uploads in a bucket: uploads and parts in the index, assembly into one object.

use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable};
use s3s::crypto::{Checksum as _, Md5};
use s3s::{S3Error, S3ErrorCode, S3Result};

use crate::record::{self, ContentHeaders, ObjectRecord, PartRecord, UploadRecord};
use crate::store::{BucketStore, OBJECTS, PARTS, StagedFile, UPLOADS, internal, new_id, remove_quietly};

/// S3's minimum size of every part but the last.
const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;
/// S3's highest part number.
pub(crate) const MAX_PART_NUMBER: u32 = 10_000;

/// A part named in CompleteMultipartUpload.
pub(crate) struct RequestedPart {
    pub number: u32,
    /// The ETag the client got from UploadPart, quotes removed.
    pub etag: String,
}

impl BucketStore {
    pub(crate) async fn create_upload(self: &Arc<Self>, key: String, headers: ContentHeaders) -> S3Result<String> {
        let upload_id = new_id()?;
        let upload = UploadRecord { key, initiated_ms: record::now_ms(), headers };
        let bucket = Arc::clone(self);
        let id = upload_id.clone();
        tokio::task::spawn_blocking(move || -> S3Result<()> {
            // Held until the transaction ends: the index stays open under it.
            let db = bucket.db().map_err(internal)?;
            let txn = db.begin_write().map_err(internal)?;
            txn.open_table(UPLOADS)
                .map_err(internal)?
                .insert(id.as_str(), record::encode(&upload).as_slice())
                .map_err(internal)?;
            txn.commit().map_err(internal)
        })
        .await
        .map_err(internal)??;
        Ok(upload_id)
    }

    /// The upload `upload_id` for `key`, or `NoSuchUpload`.
    pub(crate) fn upload(&self, upload_id: &str, key: &str) -> S3Result<UploadRecord> {
        // Held until the transaction ends: the index stays open under it.
        let db = self.db().map_err(internal)?;
        let txn = db.begin_read().map_err(internal)?;
        let table = txn.open_table(UPLOADS).map_err(internal)?;
        let upload = match table.get(upload_id).map_err(internal)? {
            Some(value) => record::decode::<UploadRecord>(value.value()).map_err(internal)?,
            None => return Err(no_such_upload()),
        };
        if upload.key != key {
            return Err(no_such_upload());
        }
        Ok(upload)
    }

    /// Moves a staged part into `parts/` and records it, replacing an earlier upload of the same number.
    pub(crate) async fn commit_part(
        self: &Arc<Self>,
        upload_id: String,
        number: u32,
        mut staged: StagedFile,
        part: PartRecord,
    ) -> S3Result<()> {
        let bucket = Arc::clone(self);
        let replaced = tokio::task::spawn_blocking(move || -> S3Result<Option<PartRecord>> {
            // Held until the transaction ends: the index stays open under it.
            let db = bucket.db().map_err(internal)?;
            let txn = db.begin_write().map_err(internal)?;
            let replaced = {
                if txn.open_table(UPLOADS).map_err(internal)?.get(upload_id.as_str()).map_err(internal)?.is_none() {
                    return Err(no_such_upload());
                }
                let mut parts = txn.open_table(PARTS).map_err(internal)?;
                staged.place(&bucket.part_path(&part.file))?;
                parts
                    .insert((upload_id.as_str(), number), record::encode(&part).as_slice())
                    .map_err(internal)?
                    .map(|value| record::decode::<PartRecord>(value.value()))
                    .transpose()
                    .map_err(internal)?
            };
            if let Err(error) = txn.commit() {
                remove_quietly(&bucket.part_path(&part.file));
                return Err(internal(error));
            }
            bucket.add_bytes(part.size, replaced.as_ref().map_or(0, |old| old.size));
            Ok(replaced)
        })
        .await
        .map_err(internal)??;
        if let Some(old) = replaced {
            remove_quietly(&self.part_path(&old.file));
        }
        Ok(())
    }

    /// Parts of an upload in number order, starting after `after`.
    pub(crate) fn parts(&self, upload_id: &str, after: u32) -> S3Result<Vec<(u32, PartRecord)>> {
        // Held until the transaction ends: the index stays open under it.
        let db = self.db().map_err(internal)?;
        let txn = db.begin_read().map_err(internal)?;
        let table = txn.open_table(PARTS).map_err(internal)?;
        let mut parts = Vec::new();
        for entry in table.range((upload_id, after.saturating_add(1))..=(upload_id, u32::MAX)).map_err(internal)? {
            let (key, value) = entry.map_err(internal)?;
            parts.push((key.value().1, record::decode::<PartRecord>(value.value()).map_err(internal)?));
        }
        Ok(parts)
    }

    /// Unfinished uploads, oldest id first.
    pub(crate) fn uploads(&self) -> S3Result<Vec<(String, UploadRecord)>> {
        // Held until the transaction ends: the index stays open under it.
        let db = self.db().map_err(internal)?;
        let txn = db.begin_read().map_err(internal)?;
        let table = txn.open_table(UPLOADS).map_err(internal)?;
        let mut uploads = Vec::new();
        for entry in table.iter().map_err(internal)? {
            let (key, value) = entry.map_err(internal)?;
            uploads.push((key.value().to_owned(), record::decode::<UploadRecord>(value.value()).map_err(internal)?));
        }
        Ok(uploads)
    }

    /// Checks the requested parts as S3 does, concatenates them into a new object and drops the upload.
    pub(crate) async fn complete_upload(
        self: &Arc<Self>,
        upload_id: String,
        key: String,
        requested: Vec<RequestedPart>,
        precondition: impl FnOnce(Option<&ObjectRecord>) -> S3Result<()> + Send + 'static,
    ) -> S3Result<ObjectRecord> {
        let upload = self.upload(&upload_id, &key)?;
        let stored = self.parts(&upload_id, 0)?;
        let chosen = choose_parts(&requested, &stored)?;

        let mut md5_of_md5s = Md5::new();
        for part in &chosen {
            md5_of_md5s.update(&hex::decode(&part.etag).map_err(internal)?);
        }
        let etag = format!("{}-{}", hex::encode(md5_of_md5s.finalize()), chosen.len());
        let sources = chosen.iter().map(|part| self.part_path(&part.file)).collect();
        let (staged, size) = self.stage_copy(sources).await?;
        let object = ObjectRecord {
            file: staged.id.clone(),
            size,
            etag,
            modified_ms: record::now_ms(),
            headers: upload.headers,
            checksums: Default::default(),
            parts: chosen.len() as u32,
        };

        let bucket = Arc::clone(self);
        let committed = object.clone();
        let (replaced, dropped_parts) =
            tokio::task::spawn_blocking(move || -> S3Result<(Option<ObjectRecord>, Vec<PartRecord>)> {
                let mut staged = staged;
                // Held until the transaction ends: the index stays open under it.
                let db = bucket.db().map_err(internal)?;
                let txn = db.begin_write().map_err(internal)?;
                let (replaced, dropped_parts) = {
                    // A concurrent complete or abort may have won since we read the upload.
                    if txn
                        .open_table(UPLOADS)
                        .map_err(internal)?
                        .remove(upload_id.as_str())
                        .map_err(internal)?
                        .is_none()
                    {
                        return Err(no_such_upload());
                    }
                    let mut parts = txn.open_table(PARTS).map_err(internal)?;
                    let mut dropped_parts = Vec::new();
                    for entry in parts
                        .extract_from_if((upload_id.as_str(), 0)..=(upload_id.as_str(), u32::MAX), |_, _| true)
                        .map_err(internal)?
                    {
                        let (_, value) = entry.map_err(internal)?;
                        dropped_parts.push(record::decode::<PartRecord>(value.value()).map_err(internal)?);
                    }
                    let mut objects = txn.open_table(OBJECTS).map_err(internal)?;
                    let current = match objects.get(key.as_bytes()).map_err(internal)? {
                        Some(value) => Some(record::decode::<ObjectRecord>(value.value()).map_err(internal)?),
                        None => None,
                    };
                    precondition(current.as_ref())?;
                    staged.place(&bucket.data_path(&object.file))?;
                    objects.insert(key.as_bytes(), record::encode(&object).as_slice()).map_err(internal)?;
                    (current, dropped_parts)
                };
                if let Err(error) = txn.commit() {
                    remove_quietly(&bucket.data_path(&object.file));
                    return Err(internal(error));
                }
                let removed = dropped_parts.iter().map(|part| part.size).sum::<u64>()
                    + replaced.as_ref().map_or(0, |old| old.size);
                bucket.add_bytes(object.size, removed);
                Ok((replaced, dropped_parts))
            })
            .await
            .map_err(internal)??;
        for part in dropped_parts {
            remove_quietly(&self.part_path(&part.file));
        }
        if let Some(old) = replaced {
            remove_quietly(&self.data_path(&old.file));
        }
        Ok(committed)
    }

    pub(crate) async fn abort_upload(self: &Arc<Self>, upload_id: String, key: String) -> S3Result<()> {
        self.upload(&upload_id, &key)?;
        let bucket = Arc::clone(self);
        let dropped = tokio::task::spawn_blocking(move || -> S3Result<Vec<PartRecord>> {
            // Held until the transaction ends: the index stays open under it.
            let db = bucket.db().map_err(internal)?;
            let txn = db.begin_write().map_err(internal)?;
            let dropped = {
                if txn.open_table(UPLOADS).map_err(internal)?.remove(upload_id.as_str()).map_err(internal)?.is_none() {
                    return Err(no_such_upload());
                }
                let mut parts = txn.open_table(PARTS).map_err(internal)?;
                let mut dropped = Vec::new();
                for entry in parts
                    .extract_from_if((upload_id.as_str(), 0)..=(upload_id.as_str(), u32::MAX), |_, _| true)
                    .map_err(internal)?
                {
                    let (_, value) = entry.map_err(internal)?;
                    dropped.push(record::decode::<PartRecord>(value.value()).map_err(internal)?);
                }
                dropped
            };
            txn.commit().map_err(internal)?;
            bucket.add_bytes(0, dropped.iter().map(|part| part.size).sum());
            Ok(dropped)
        })
        .await
        .map_err(internal)??;
        for part in dropped {
            remove_quietly(&self.part_path(&part.file));
        }
        Ok(())
    }
}

/// The stored parts a CompleteMultipartUpload names, checked as S3 checks them.
fn choose_parts(requested: &[RequestedPart], stored: &[(u32, PartRecord)]) -> S3Result<Vec<PartRecord>> {
    if requested.is_empty() {
        return Err(S3Error::with_message(S3ErrorCode::MalformedXML, "You must specify at least one part"));
    }
    if requested.windows(2).any(|pair| pair[0].number >= pair[1].number) {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidPartOrder,
            "The list of parts was not in ascending order. Parts must be ordered by part number.",
        ));
    }
    let mut chosen = Vec::with_capacity(requested.len());
    for (index, wanted) in requested.iter().enumerate() {
        let found = stored.iter().find(|(number, part)| *number == wanted.number && part.etag == wanted.etag);
        let Some((_, part)) = found else {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidPart,
                format!(
                    "One or more of the specified parts could not be found. The part may not have been uploaded, \
                     or the specified entity tag may not match the part's entity tag. (part {})",
                    wanted.number
                ),
            ));
        };
        if index + 1 < requested.len() && part.size < MIN_PART_BYTES {
            return Err(S3Error::with_message(
                S3ErrorCode::EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed object size.",
            ));
        }
        chosen.push(part.clone());
    }
    Ok(chosen)
}

pub(crate) fn no_such_upload() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NoSuchUpload,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
    )
}
