//! S3-compatible object storage served to deployed apps.
//!
//! Apps use stock S3 SDKs (boto3, `@aws-sdk/client-s3`, the aws cli) configured by
//! `AWS_ENDPOINT_URL_S3`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` and `BUCKET_NAME`.
//! Requests are path-style (`http://host:port/bucket/key`) and signed with SigV4, in the
//! `Authorization` header or as a presigned query; aws-chunked uploads (signed chunks, and unsigned
//! chunks with `x-amz-checksum-*` trailers as recent SDKs send by default) are accepted.
//! The S3 protocol (XML, SigV4, aws-chunked) is [`s3s`]; this crate owns storage, access and caps.
//! It does not create buckets for apps, store credentials or decide caps: the platform does,
//! through [`Objects::ensure_bucket`] and the [`Gate`] it passes to [`Objects::serve`].
//!
//! # Operations
//!
//! | operation | class |
//! |---|---|
//! | PutObject, CopyObject (same bucket, `COPY`/`REPLACE` metadata directive) | A |
//! | CreateMultipartUpload, UploadPart, CompleteMultipartUpload, ListParts, ListMultipartUploads | A |
//! | ListObjectsV2, ListObjects (v1), ListBuckets (only the credential's bucket) | A |
//! | GetObject (`Range`, conditionals), HeadObject (conditionals), HeadBucket, GetBucketLocation, GetBucketVersioning (never versioned) | B |
//! | DeleteObject, DeleteObjects, AbortMultipartUpload | free (not counted, as in R2) |
//!
//! Every other S3 operation answers `NotImplemented`; DeleteBucket, and CreateBucket of any other
//! bucket, answer `AccessDenied` because buckets belong to the platform. CreateBucket of the
//! credential's own bucket answers `BucketAlreadyOwnedByYou` (409), as S3 does, which tools that
//! create their target first (rclone) take as success. Browser-form uploads (POST Object) are
//! refused with `EntityTooLarge`: s3s would buffer the file in memory before authenticating it.
//! Each operation is admitted and counted once by [`Gate::admit`] before it runs, refused or not
//! by what follows. Uploads (PutObject, UploadPart, CopyObject) are also checked by
//! [`Gate::admit_bytes`]: with the declared length before any body byte is read, and for a body
//! of unknown length every MiB as it streams (the partial upload is discarded when refused).
//!
//! # Errors
//!
//! | condition | code | status |
//! |---|---|---|
//! | a cap refused by the gate (message from the gate) | `QuotaExceeded` | 403 |
//! | unknown access key id | `InvalidAccessKeyId` | 403 |
//! | wrong secret or tampered request | `SignatureDoesNotMatch` | 403 |
//! | expired presigned URL ("Request has expired") | `AccessDenied` | 403 |
//! | a bucket other than the credential's, DeleteBucket, unsigned request | `AccessDenied` | 403 |
//! | CreateBucket of the credential's own bucket | `BucketAlreadyOwnedByYou` | 409 |
//! | the credential's bucket does not exist | `NoSuchBucket` | 404 |
//! | missing object | `NoSuchKey` | 404 |
//! | missing multipart upload | `NoSuchUpload` | 404 |
//! | key over 1024 bytes | `KeyTooLongError` | 400 |
//! | key containing NUL (XML can't carry it back in listings) | `InvalidArgument` | 400 |
//! | `If-None-Match` / `If-Modified-Since` on GET/HEAD | `NotModified` | 304 |
//! | `If-Match` / `If-Unmodified-Since` on GET/HEAD/PUT/copy source | `PreconditionFailed` | 412 |
//! | CompleteMultipartUpload with a missing part or wrong ETag | `InvalidPart` | 400 |
//! | CompleteMultipartUpload with parts not ascending | `InvalidPartOrder` | 400 |
//! | a non-last part under 5 MiB | `EntityTooSmall` | 400 |
//! | `Content-MD5` or `x-amz-checksum-*` mismatch | `BadDigest` | 400 |
//!
//! # Storage
//!
//! `<root>/<bucket>/index.redb` maps keys to object records (size, ETag, content headers, user
//! metadata, last-modified, data file id) in key byte order, and holds multipart uploads and
//! parts. Bodies are files named by random ids in `<root>/<bucket>/data/` and `parts/`: keys
//! never become paths, so no key can escape or collide. A write streams into `tmp/`, is
//! fsynced, renamed into `data/` (directory fsynced) and then becomes visible by one index commit
//! (fsynced by redb) before the client gets 200. A crash leaves at most unreferenced files, which
//! [`Objects::open`] removes.

mod auth;
mod conditions;
mod error;
mod keys;
mod list;
mod record;
mod s3;
mod server;
mod store;
mod upload;

pub use error::ObjectsError;
pub use store::Objects;

/// A bucket as the platform knows it: the resource it belongs to and the app using it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// The platform's id of the resource backing this bucket.
    pub resource_id: String,
    /// The S3 bucket name (`BUCKET_NAME` in the app's environment).
    pub name: String,
    /// The app whose credential opens this bucket.
    pub app: String,
}

/// Billing class of an S3 operation, as R2 counts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpClass {
    /// Writes and lists: Put, Copy, multipart operations, List*.
    A,
    /// Reads: Get, Head, GetBucketLocation, GetBucketVersioning.
    B,
}

/// Decided by the platform, implemented outside this crate.
pub trait Gate: Send + Sync + 'static {
    /// The secret key and the one bucket of an access key id. `scope` is the app whose private
    /// network the connection arrived on (None: host loopback, any app). Unknown → S3 `InvalidAccessKeyId`.
    fn credential(&self, scope: Option<&str>, access_key: &str) -> Option<(String, Bucket)>;
    /// Admit and count one operation of `class` on the bucket, or refuse with a message naming the cap and fix.
    fn admit(&self, bucket: &Bucket, class: OpClass) -> Result<(), String>;
    /// Admit storing `incoming` more bytes when the bucket already holds `held` bytes (a storage cap), or refuse.
    fn admit_bytes(&self, bucket: &Bucket, held: u64, incoming: u64) -> Result<(), String>;
}
