//! The S3 operations: translate s3s inputs to store calls and records to s3s outputs.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::sync::Arc;

use s3s::checksum::ChecksumHasher;
use s3s::dto::*;
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::Gate;
use crate::auth::{bucket_of, quota_exceeded};
use crate::conditions::{self, OnUnchanged, Preconditions};
use crate::keys::{check_key, decode_token, encode_token, key_successor, prefix_successor};
use crate::list::{Item, ListQuery, Page};
use crate::record::{self, Checksums, ContentHeaders, ObjectRecord, PartRecord, ms_to_system_time};
use crate::store::{BucketStore, Objects, Staged, internal};
use crate::upload::{MAX_PART_NUMBER, RequestedPart};

/// Read buffer for GET bodies: few blocking reads per MiB without holding much memory per request.
const READ_BUFFER_BYTES: usize = 256 * 1024;
/// How often a body of unknown length is re-checked against the storage cap.
const STREAM_CHECK_BYTES: u64 = 1 << 20;
/// S3's page size limit for listings.
const MAX_LIST_KEYS: i32 = 1000;

/// An upload body with what the client declared about it.
struct IncomingBody<'a> {
    body: Option<StreamingBlob>,
    declared_length: Option<i64>,
    content_md5: Option<&'a str>,
    /// Checksums sent as headers.
    expected: Checksum,
    /// `x-amz-sdk-checksum-algorithm`: computed even when the value comes as a trailer.
    algorithm: Option<&'a ChecksumAlgorithm>,
}

/// The S3 service of one listener: the store and the platform's gate.
pub(crate) struct Service {
    pub objects: Arc<Objects>,
    pub gate: Arc<dyn Gate>,
}

impl Service {
    fn store(&self, name: &str) -> S3Result<Arc<BucketStore>> {
        self.objects
            .bucket(name)
            .ok_or_else(|| S3Error::with_message(S3ErrorCode::NoSuchBucket, "The specified bucket does not exist"))
    }

    /// Streams a body to a staged file, verifying Content-MD5 and `x-amz-checksum-*` (headers or trailers).
    /// A body whose length was not declared is checked against the storage cap as it arrives.
    async fn receive_body<T>(
        &self,
        req: &S3Request<T>,
        store: &Arc<BucketStore>,
        incoming: IncomingBody<'_>,
    ) -> S3Result<Staged> {
        let IncomingBody { body, declared_length, content_md5, expected, algorithm } = incoming;
        let body = body.ok_or_else(|| S3Error::new(S3ErrorCode::IncompleteBody))?;
        let bucket = bucket_of(&req.extensions)?;
        let hasher = checksum_hasher(&expected, algorithm, &req.headers);
        let gate = Arc::clone(&self.gate);
        let held_by = Arc::clone(store);
        let mut checked_up_to = 0u64;
        let check = move |written: u64| -> S3Result<()> {
            // A declared length was admitted before the body was read (see auth.rs).
            if declared_length.is_some() || written < checked_up_to + STREAM_CHECK_BYTES {
                return Ok(());
            }
            checked_up_to = written;
            gate.admit_bytes(&bucket, held_by.bytes(), written).map_err(quota_exceeded)
        };
        let staged = store.stage_body(body, hasher, check).await?;
        if let Some(content_md5) = content_md5 {
            let expected_md5 = base64_decode(content_md5).ok_or_else(|| {
                S3Error::with_message(S3ErrorCode::InvalidDigest, "The Content-MD5 you specified was invalid")
            })?;
            if expected_md5 != staged.md5 {
                return Err(S3Error::with_message(
                    S3ErrorCode::BadDigest,
                    "The Content-MD5 you specified did not match what we received",
                ));
            }
        }
        let trailers = req.trailing_headers.as_ref().and_then(|trailers| trailers.take());
        verify_checksums(&expected, trailers.as_ref(), &staged.checksum)?;
        Ok(staged)
    }
}

#[async_trait::async_trait]
impl S3 for Service {
    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let input = &req.input;
        check_key(&input.key)?;
        let store = self.store(&input.bucket)?;
        let expected = Checksum {
            checksum_crc32: input.checksum_crc32.clone(),
            checksum_crc32c: input.checksum_crc32c.clone(),
            checksum_crc64nvme: input.checksum_crc64nvme.clone(),
            checksum_sha1: input.checksum_sha1.clone(),
            checksum_sha256: input.checksum_sha256.clone(),
            checksum_type: None,
        };
        let mut req = req;
        let body = req.input.body.take();
        let input = &req.input;
        let staged = self
            .receive_body(
                &req,
                &store,
                IncomingBody {
                    body,
                    declared_length: input.content_length,
                    content_md5: input.content_md5.as_deref(),
                    expected,
                    algorithm: input.checksum_algorithm.as_ref(),
                },
            )
            .await?;
        let input = req.input;
        let etag = hex::encode(staged.md5);
        let headers = ContentHeaders {
            content_type: input.content_type,
            content_disposition: input.content_disposition,
            content_encoding: input.content_encoding,
            content_language: input.content_language,
            cache_control: input.cache_control,
            expires: input.expires.as_ref().and_then(format_timestamp),
            user: input.metadata.map(|map| map.into_iter().collect()).unwrap_or_default(),
        };
        let checksums = Checksums {
            crc32: staged.checksum.checksum_crc32.clone(),
            crc32c: staged.checksum.checksum_crc32c.clone(),
            crc64nvme: staged.checksum.checksum_crc64nvme.clone(),
            sha1: staged.checksum.checksum_sha1.clone(),
            sha256: staged.checksum.checksum_sha256.clone(),
        };
        let object = ObjectRecord {
            file: staged.file.id.clone(),
            size: staged.size,
            etag: etag.clone(),
            modified_ms: record::now_ms(),
            headers,
            checksums,
            parts: 0,
        };
        let write_conditions = (input.if_match, input.if_none_match);
        store
            .commit_object(input.key, staged.file, object, move |current| check_write(&write_conditions, current))
            .await?;
        let output = PutObjectOutput {
            e_tag: Some(ETag::Strong(etag)),
            checksum_crc32: staged.checksum.checksum_crc32,
            checksum_crc32c: staged.checksum.checksum_crc32c,
            checksum_crc64nvme: staged.checksum.checksum_crc64nvme,
            checksum_sha1: staged.checksum.checksum_sha1,
            checksum_sha256: staged.checksum.checksum_sha256,
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        check_key(&input.key)?;
        let store = self.store(&input.bucket)?;
        let Some((object, mut file)) = store.open_body(&input.key).await? else { return Err(no_such_key()) };
        let preconditions = Preconditions {
            if_match: input.if_match.as_ref(),
            if_none_match: input.if_none_match.as_ref(),
            if_modified_since: input.if_modified_since.as_ref(),
            if_unmodified_since: input.if_unmodified_since.as_ref(),
        };
        conditions::check(&preconditions, &object, OnUnchanged::NotModified)?;
        check_part_number(input.part_number, &object)?;
        let (start, length, content_range) = match &input.range {
            None => (0, object.size, None),
            Some(range) => {
                let span = range.check(object.size).map_err(|_| {
                    S3Error::with_message(S3ErrorCode::InvalidRange, "The requested range is not satisfiable")
                })?;
                let range = format!("bytes {}-{}/{}", span.start, span.end - 1, object.size);
                (span.start, span.end - span.start, Some(range))
            }
        };
        file.seek(SeekFrom::Start(start)).await.map_err(internal)?;
        let body = ReaderStream::with_capacity(file.take(length), READ_BUFFER_BYTES);
        let whole = content_range.is_none();
        let with_checksums = whole && checksum_mode_enabled(input.checksum_mode.as_ref());
        let checksums = if with_checksums { object.checksums.clone() } else { Checksums::default() };
        let output = GetObjectOutput {
            body: Some(StreamingBlob::wrap(body)),
            content_length: Some(to_i64(length)?),
            content_range,
            accept_ranges: Some("bytes".to_owned()),
            e_tag: Some(ETag::Strong(object.etag.clone())),
            last_modified: Some(Timestamp::from(ms_to_system_time(object.modified_ms))),
            parts_count: (object.parts > 0).then_some(object.parts as i32),
            content_type: object.headers.content_type,
            content_disposition: object.headers.content_disposition,
            content_encoding: object.headers.content_encoding,
            content_language: object.headers.content_language,
            cache_control: object.headers.cache_control,
            expires: object.headers.expires.as_deref().and_then(parse_timestamp),
            metadata: user_metadata(object.headers.user),
            checksum_crc32: checksums.crc32,
            checksum_crc32c: checksums.crc32c,
            checksum_crc64nvme: checksums.crc64nvme,
            checksum_sha1: checksums.sha1,
            checksum_sha256: checksums.sha256,
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        check_key(&input.key)?;
        let store = self.store(&input.bucket)?;
        let Some(object) = store.get(&input.key)? else { return Err(no_such_key()) };
        let preconditions = Preconditions {
            if_match: input.if_match.as_ref(),
            if_none_match: input.if_none_match.as_ref(),
            if_modified_since: input.if_modified_since.as_ref(),
            if_unmodified_since: input.if_unmodified_since.as_ref(),
        };
        conditions::check(&preconditions, &object, OnUnchanged::NotModified)?;
        check_part_number(input.part_number, &object)?;
        let checksums = if checksum_mode_enabled(input.checksum_mode.as_ref()) {
            object.checksums.clone()
        } else {
            Checksums::default()
        };
        let output = HeadObjectOutput {
            content_length: Some(to_i64(object.size)?),
            accept_ranges: Some("bytes".to_owned()),
            e_tag: Some(ETag::Strong(object.etag.clone())),
            last_modified: Some(Timestamp::from(ms_to_system_time(object.modified_ms))),
            parts_count: (object.parts > 0).then_some(object.parts as i32),
            content_type: object.headers.content_type,
            content_disposition: object.headers.content_disposition,
            content_encoding: object.headers.content_encoding,
            content_language: object.headers.content_language,
            cache_control: object.headers.cache_control,
            expires: object.headers.expires.as_deref().and_then(parse_timestamp),
            metadata: user_metadata(object.headers.user),
            checksum_crc32: checksums.crc32,
            checksum_crc32c: checksums.crc32c,
            checksum_crc64nvme: checksums.crc64nvme,
            checksum_sha1: checksums.sha1,
            checksum_sha256: checksums.sha256,
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        check_key(&input.key)?;
        let store = self.store(&input.bucket)?;
        store.delete(input.key).await?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        let store = self.store(&input.bucket)?;
        let quiet = input.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for object in input.delete.objects {
            let outcome = match check_key(&object.key) {
                Ok(()) => store.delete(object.key.clone()).await,
                Err(error) => Err(error),
            };
            match outcome {
                Ok(()) if quiet => {}
                Ok(()) => deleted.push(DeletedObject { key: Some(object.key), ..Default::default() }),
                Err(error) => errors.push(Error {
                    code: Some(error.code().as_str().to_owned()),
                    message: error.message().map(str::to_owned),
                    key: Some(object.key),
                    version_id: None,
                }),
            }
        }
        let output = DeleteObjectsOutput {
            deleted: (!deleted.is_empty()).then_some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let store = self.store(&input.bucket)?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let delimiter = input.delimiter.clone().unwrap_or_default();
        let max_keys = max_keys(input.max_keys)?;
        let resume_at = match (&input.continuation_token, &input.start_after) {
            (Some(token), _) => decode_token(token)?,
            (None, Some(start_after)) => resume_after(start_after, &prefix, &delimiter),
            (None, None) => Vec::new(),
        };
        let page = list_page(&store, prefix.clone(), delimiter.clone(), resume_at, max_keys).await?;
        let url = url_encoding(input.encoding_type.as_ref());
        let next_continuation_token = page.next.as_deref().map(encode_token);
        let (contents, common_prefixes) = render_items(page.items, url);
        let output = ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(encode_if(url, &prefix)),
            delimiter: input.delimiter.map(|delimiter| encode_if(url, &delimiter)),
            start_after: input.start_after.map(|start_after| encode_if(url, &start_after)),
            max_keys: Some(max_keys as i32),
            key_count: Some((contents.len() + common_prefixes.len()) as i32),
            is_truncated: Some(next_continuation_token.is_some()),
            continuation_token: input.continuation_token,
            next_continuation_token,
            contents: Some(contents),
            common_prefixes: Some(common_prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        let store = self.store(&input.bucket)?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let delimiter = input.delimiter.clone().unwrap_or_default();
        let max_keys = max_keys(input.max_keys)?;
        let resume_at =
            input.marker.as_deref().map(|marker| resume_after(marker, &prefix, &delimiter)).unwrap_or_default();
        let page = list_page(&store, prefix.clone(), delimiter.clone(), resume_at, max_keys).await?;
        let url = url_encoding(input.encoding_type.as_ref());
        let truncated = page.next.is_some();
        let last = page.items.last().map(|item| match item {
            Item::Object(key, _) | Item::CommonPrefix(key) => String::from_utf8_lossy(key).into_owned(),
        });
        let (contents, common_prefixes) = render_items(page.items, url);
        let output = ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(encode_if(url, &prefix)),
            delimiter: input.delimiter.map(|delimiter| encode_if(url, &delimiter)),
            marker: Some(encode_if(url, input.marker.as_deref().unwrap_or_default())),
            next_marker: if truncated { last.map(|last| encode_if(url, &last)) } else { None },
            max_keys: Some(max_keys as i32),
            is_truncated: Some(truncated),
            contents: Some(contents),
            common_prefixes: Some(common_prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        let bucket = bucket_of(&req.extensions)?;
        let input = req.input;
        check_key(&input.key)?;
        let (source_bucket, source_key) = match &input.copy_source {
            CopySource::Bucket { bucket, key, .. } => (bucket.to_string(), key.to_string()),
            CopySource::AccessPoint { .. } | CopySource::Outpost { .. } => {
                return Err(S3Error::with_message(S3ErrorCode::NotImplemented, "copy sources must be `bucket/key`"));
            }
        };
        if source_bucket != input.bucket {
            return Err(S3Error::with_message(S3ErrorCode::AccessDenied, "Access Denied"));
        }
        check_key(&source_key)?;
        let store = self.store(&input.bucket)?;
        let Some(source) = store.get(&source_key)? else { return Err(no_such_key()) };
        let preconditions = Preconditions {
            if_match: input.copy_source_if_match.as_ref(),
            if_none_match: input.copy_source_if_none_match.as_ref(),
            if_modified_since: input.copy_source_if_modified_since.as_ref(),
            if_unmodified_since: input.copy_source_if_unmodified_since.as_ref(),
        };
        conditions::check(&preconditions, &source, OnUnchanged::PreconditionFailed)?;
        let replace =
            input.metadata_directive.as_ref().is_some_and(|directive| directive.as_str() == MetadataDirective::REPLACE);
        if source_key == input.key && !replace {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the \
                 object's metadata, storage class, website redirect location or encryption attributes.",
            ));
        }
        let headers = if replace {
            ContentHeaders {
                content_type: input.content_type,
                content_disposition: input.content_disposition,
                content_encoding: input.content_encoding,
                content_language: input.content_language,
                cache_control: input.cache_control,
                expires: input.expires.as_ref().and_then(format_timestamp),
                user: input.metadata.map(|map| map.into_iter().collect()).unwrap_or_default(),
            }
        } else {
            source.headers.clone()
        };
        self.gate.admit_bytes(&bucket, store.bytes(), source.size).map_err(quota_exceeded)?;
        let (staged, size) = store.stage_copy(vec![store.data_path(&source.file)]).await?;
        let object = ObjectRecord {
            file: staged.id.clone(),
            size,
            etag: source.etag.clone(),
            modified_ms: record::now_ms(),
            headers,
            checksums: source.checksums.clone(),
            parts: source.parts,
        };
        let last_modified = Timestamp::from(ms_to_system_time(object.modified_ms));
        store.commit_object(input.key, staged, object, |_| Ok(())).await?;
        let result = CopyObjectResult {
            e_tag: Some(ETag::Strong(source.etag)),
            last_modified: Some(last_modified),
            ..Default::default()
        };
        Ok(S3Response::new(CopyObjectOutput { copy_object_result: Some(result), ..Default::default() }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let input = req.input;
        check_key(&input.key)?;
        let store = self.store(&input.bucket)?;
        let headers = ContentHeaders {
            content_type: input.content_type,
            content_disposition: input.content_disposition,
            content_encoding: input.content_encoding,
            content_language: input.content_language,
            cache_control: input.cache_control,
            expires: input.expires.as_ref().and_then(format_timestamp),
            user: input.metadata.map(|map| map.into_iter().collect()).unwrap_or_default(),
        };
        let upload_id = store.create_upload(input.key.clone(), headers).await?;
        let output = CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload_id),
            checksum_algorithm: input.checksum_algorithm,
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        let input = &req.input;
        check_key(&input.key)?;
        let number = part_number(input.part_number)?;
        let store = self.store(&input.bucket)?;
        store.upload(&input.upload_id, &input.key)?;
        let expected = Checksum {
            checksum_crc32: input.checksum_crc32.clone(),
            checksum_crc32c: input.checksum_crc32c.clone(),
            checksum_crc64nvme: input.checksum_crc64nvme.clone(),
            checksum_sha1: input.checksum_sha1.clone(),
            checksum_sha256: input.checksum_sha256.clone(),
            checksum_type: None,
        };
        let mut req = req;
        let body = req.input.body.take();
        let input = &req.input;
        let staged = self
            .receive_body(
                &req,
                &store,
                IncomingBody {
                    body,
                    declared_length: input.content_length,
                    content_md5: input.content_md5.as_deref(),
                    expected,
                    algorithm: input.checksum_algorithm.as_ref(),
                },
            )
            .await?;
        let etag = hex::encode(staged.md5);
        let part = PartRecord {
            file: staged.file.id.clone(),
            size: staged.size,
            etag: etag.clone(),
            modified_ms: record::now_ms(),
        };
        store.commit_part(req.input.upload_id, number, staged.file, part).await?;
        let output = UploadPartOutput {
            e_tag: Some(ETag::Strong(etag)),
            checksum_crc32: staged.checksum.checksum_crc32,
            checksum_crc32c: staged.checksum.checksum_crc32c,
            checksum_crc64nvme: staged.checksum.checksum_crc64nvme,
            checksum_sha1: staged.checksum.checksum_sha1,
            checksum_sha256: staged.checksum.checksum_sha256,
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = req.input;
        check_key(&input.key)?;
        let store = self.store(&input.bucket)?;
        let mut requested = Vec::new();
        for part in input.multipart_upload.and_then(|upload| upload.parts).unwrap_or_default() {
            let number = part_number(part.part_number.unwrap_or(0))?;
            let etag = part.e_tag.map(|etag| etag.into_value().trim_matches('"').to_owned()).unwrap_or_default();
            requested.push(RequestedPart { number, etag });
        }
        let write_conditions = (input.if_match, input.if_none_match);
        let object = store
            .complete_upload(input.upload_id, input.key.clone(), requested, move |current| {
                check_write(&write_conditions, current)
            })
            .await?;
        let output = CompleteMultipartUploadOutput {
            bucket: Some(input.bucket.clone()),
            key: Some(input.key.clone()),
            e_tag: Some(ETag::Strong(object.etag)),
            location: Some(format!("/{}/{}", input.bucket, input.key)),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        let store = self.store(&input.bucket)?;
        store.abort_upload(input.upload_id, input.key).await?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        let store = self.store(&input.bucket)?;
        store.upload(&input.upload_id, &input.key)?;
        let after = input.part_number_marker.map_or(Ok(0), part_number_marker)?;
        let max_parts = input.max_parts.unwrap_or(MAX_LIST_KEYS).clamp(0, MAX_LIST_KEYS) as usize;
        let mut parts = store.parts(&input.upload_id, after)?;
        let truncated = parts.len() > max_parts;
        parts.truncate(max_parts);
        let next_marker = if truncated { parts.last().map(|(number, _)| *number as i32) } else { None };
        let parts = parts
            .into_iter()
            .map(|(number, part)| Part {
                part_number: Some(number as i32),
                e_tag: Some(ETag::Strong(part.etag)),
                size: Some(part.size as i64),
                last_modified: Some(Timestamp::from(ms_to_system_time(part.modified_ms))),
                ..Default::default()
            })
            .collect();
        let output = ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: next_marker,
            max_parts: Some(max_parts as i32),
            is_truncated: Some(truncated),
            parts: Some(parts),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        let store = self.store(&input.bucket)?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let uploads = store
            .uploads()?
            .into_iter()
            .filter(|(_, upload)| upload.key.starts_with(&prefix))
            .map(|(upload_id, upload)| MultipartUpload {
                key: Some(upload.key),
                upload_id: Some(upload_id),
                initiated: Some(Timestamp::from(ms_to_system_time(upload.initiated_ms))),
                ..Default::default()
            })
            .collect();
        let output = ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            is_truncated: Some(false),
            max_uploads: Some(MAX_LIST_KEYS),
            uploads: Some(uploads),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        self.store(&req.input.bucket)?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.store(&req.input.bucket)?;
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    /// Buckets are never versioned: an empty answer says so, as S3 does for a bucket that never
    /// had versioning (tools such as `rclone purge` ask before deleting).
    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        self.store(&req.input.bucket)?;
        Ok(S3Response::new(GetBucketVersioningOutput::default()))
    }

    async fn list_buckets(&self, req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
        let bucket = bucket_of(&req.extensions)?;
        let buckets = self
            .objects
            .bucket(&bucket.name)
            .map(|store| s3s::dto::Bucket {
                name: Some(store.name.clone()),
                creation_date: Some(Timestamp::from(store.created)),
                bucket_region: None,
            })
            .into_iter()
            .collect();
        Ok(S3Response::new(ListBucketsOutput { buckets: Some(buckets), ..Default::default() }))
    }
}

/// If-Match / If-None-Match on a write, checked against the current object inside the commit.
fn check_write(
    conditions: &(Option<ETagCondition>, Option<ETagCondition>),
    current: Option<&ObjectRecord>,
) -> S3Result<()> {
    let (if_match, if_none_match) = conditions;
    if let Some(condition) = if_match {
        let Some(current) = current else { return Err(no_such_key()) };
        conditions::check(
            &Preconditions { if_match: Some(condition), ..Default::default() },
            current,
            OnUnchanged::PreconditionFailed,
        )?;
    }
    if let (Some(condition), Some(current)) = (if_none_match, current) {
        let preconditions = Preconditions { if_none_match: Some(condition), ..Default::default() };
        conditions::check(&preconditions, current, OnUnchanged::PreconditionFailed)?;
    }
    Ok(())
}

fn no_such_key() -> S3Error {
    S3Error::with_message(S3ErrorCode::NoSuchKey, "The specified key does not exist.")
}

fn check_part_number(part_number: Option<i32>, object: &ObjectRecord) -> S3Result<()> {
    match part_number {
        None => Ok(()),
        Some(1) if object.parts <= 1 => Ok(()),
        Some(_) => Err(S3Error::with_message(S3ErrorCode::NotImplemented, "partNumber reads of multipart objects")),
    }
}

fn part_number(number: i32) -> S3Result<u32> {
    u32::try_from(number).ok().filter(|number| (1..=MAX_PART_NUMBER).contains(number)).ok_or_else(|| {
        S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive",
        )
    })
}

fn part_number_marker(marker: i32) -> S3Result<u32> {
    u32::try_from(marker).map_err(|_| S3Error::with_message(S3ErrorCode::InvalidArgument, "invalid part-number-marker"))
}

fn max_keys(requested: Option<i32>) -> S3Result<usize> {
    match requested {
        None => Ok(MAX_LIST_KEYS as usize),
        Some(n) if n < 0 => Err(S3Error::with_message(S3ErrorCode::InvalidArgument, "max-keys must not be negative")),
        Some(n) => Ok(n.min(MAX_LIST_KEYS) as usize),
    }
}

/// Where a listing continues after `marker` (ListObjects marker, ListObjectsV2 start-after). A marker
/// under a common prefix means that prefix was already returned, so skip every key under it.
fn resume_after(marker: &str, prefix: &str, delimiter: &str) -> Vec<u8> {
    if !delimiter.is_empty()
        && let Some(rest) = marker.strip_prefix(prefix)
        && let Some(position) = rest.find(delimiter)
        && let Some(after) = prefix_successor(&marker.as_bytes()[..prefix.len() + position + delimiter.len()])
    {
        return after;
    }
    key_successor(marker.as_bytes())
}

async fn list_page(
    store: &Arc<BucketStore>,
    prefix: String,
    delimiter: String,
    resume_at: Vec<u8>,
    max_keys: usize,
) -> S3Result<Page<ObjectRecord>> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || {
        store.list(&ListQuery { prefix: prefix.as_bytes(), delimiter: delimiter.as_bytes(), resume_at, max_keys })
    })
    .await
    .map_err(internal)?
}

fn render_items(items: Vec<Item<ObjectRecord>>, url: bool) -> (Vec<Object>, Vec<CommonPrefix>) {
    let mut contents = Vec::new();
    let mut common_prefixes = Vec::new();
    for item in items {
        match item {
            Item::Object(key, object) => contents.push(Object {
                key: Some(encode_if(url, &String::from_utf8_lossy(&key))),
                e_tag: Some(ETag::Strong(object.etag)),
                size: Some(object.size as i64),
                last_modified: Some(Timestamp::from(ms_to_system_time(object.modified_ms))),
                storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
                ..Default::default()
            }),
            Item::CommonPrefix(prefix) => {
                common_prefixes.push(CommonPrefix { prefix: Some(encode_if(url, &String::from_utf8_lossy(&prefix))) });
            }
        }
    }
    (contents, common_prefixes)
}

/// SDKs ask for `encoding-type=url` by default and decode keys in listings (boto3 unquotes with
/// `unquote_plus`), so encode everything but unreserved characters.
fn url_encoding(encoding_type: Option<&EncodingType>) -> bool {
    encoding_type.is_some_and(|encoding| encoding.as_str() == EncodingType::URL)
}

fn encode_if(url: bool, value: &str) -> String {
    if !url {
        return value.to_owned();
    }
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Which checksums to compute: those sent as headers, the announced algorithm, and those announced as trailers.
fn checksum_hasher(
    expected: &Checksum,
    algorithm: Option<&ChecksumAlgorithm>,
    headers: &hyper::HeaderMap,
) -> ChecksumHasher {
    let mut wanted: Vec<String> = Vec::new();
    if let Some(algorithm) = algorithm {
        wanted.push(algorithm.as_str().to_ascii_lowercase());
    }
    for trailer in headers.get_all("x-amz-trailer") {
        if let Ok(trailer) = trailer.to_str() {
            for name in trailer.split(',') {
                if let Some(algorithm) = name.trim().strip_prefix("x-amz-checksum-") {
                    wanted.push(algorithm.to_ascii_lowercase());
                }
            }
        }
    }
    let wants = |name: &str| wanted.iter().any(|wanted| wanted == name);
    let mut hasher = ChecksumHasher::default();
    if expected.checksum_crc32.is_some() || wants("crc32") {
        hasher.crc32 = Some(Default::default());
    }
    if expected.checksum_crc32c.is_some() || wants("crc32c") {
        hasher.crc32c = Some(Default::default());
    }
    if expected.checksum_crc64nvme.is_some() || wants("crc64nvme") {
        hasher.crc64nvme = Some(Default::default());
    }
    if expected.checksum_sha1.is_some() || wants("sha1") {
        hasher.sha1 = Some(Default::default());
    }
    if expected.checksum_sha256.is_some() || wants("sha256") {
        hasher.sha256 = Some(Default::default());
    }
    hasher
}

/// Compares the computed checksums with those the client sent as headers or trailers.
fn verify_checksums(expected: &Checksum, trailers: Option<&hyper::HeaderMap>, computed: &Checksum) -> S3Result<()> {
    let trailer = |name: &str| trailers.and_then(|trailers| trailers.get(name)).and_then(|value| value.to_str().ok());
    let pairs = [
        ("crc32", expected.checksum_crc32.as_deref(), &computed.checksum_crc32),
        ("crc32c", expected.checksum_crc32c.as_deref(), &computed.checksum_crc32c),
        ("crc64nvme", expected.checksum_crc64nvme.as_deref(), &computed.checksum_crc64nvme),
        ("sha1", expected.checksum_sha1.as_deref(), &computed.checksum_sha1),
        ("sha256", expected.checksum_sha256.as_deref(), &computed.checksum_sha256),
    ];
    for (name, from_header, computed) in pairs {
        let header_name = format!("x-amz-checksum-{name}");
        let Some(sent) = from_header.or_else(|| trailer(&header_name)) else { continue };
        if computed.as_deref() != Some(sent) {
            return Err(S3Error::with_message(
                S3ErrorCode::BadDigest,
                format!("The {} you specified did not match the calculated checksum.", name.to_ascii_uppercase()),
            ));
        }
    }
    Ok(())
}

fn checksum_mode_enabled(mode: Option<&ChecksumMode>) -> bool {
    mode.is_some_and(|mode| mode.as_str().eq_ignore_ascii_case(ChecksumMode::ENABLED))
}

fn user_metadata(user: std::collections::BTreeMap<String, String>) -> Option<Metadata> {
    (!user.is_empty()).then(|| user.into_iter().collect::<HashMap<_, _>>())
}

fn format_timestamp(timestamp: &Timestamp) -> Option<String> {
    let mut buffer = Vec::new();
    timestamp.format(TimestampFormat::DateTime, &mut buffer).ok()?;
    String::from_utf8(buffer).ok()
}

fn parse_timestamp(text: &str) -> Option<Timestamp> {
    Timestamp::parse(TimestampFormat::DateTime, text).ok()
}

fn to_i64(size: u64) -> S3Result<i64> {
    i64::try_from(size).map_err(internal)
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}
