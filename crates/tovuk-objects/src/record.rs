//! Records kept in a bucket's index: the on-disk format, not a wire shape.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One stored object. Fields are only ever added, with `#[serde(default)]`, so old indexes stay readable.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ObjectRecord {
    /// Id of the body file in `data/`.
    pub file: String,
    pub size: u64,
    /// Unquoted ETag: md5 hex, or md5-of-md5s `-N` for multipart objects.
    pub etag: String,
    pub modified_ms: u64,
    #[serde(default)]
    pub headers: ContentHeaders,
    #[serde(default)]
    pub checksums: Checksums,
    /// Number of parts for a multipart object, 0 for a single PUT.
    #[serde(default)]
    pub parts: u32,
}

/// Headers stored with an object and returned on GET/HEAD.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct ContentHeaders {
    pub content_type: Option<String>,
    pub content_disposition: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    /// `Expires`, as an RFC 3339 timestamp.
    pub expires: Option<String>,
    /// `x-amz-meta-*` without the prefix.
    pub user: BTreeMap<String, String>,
}

/// Base64 checksums the client sent and we verified, returned when asked with `x-amz-checksum-mode`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Checksums {
    pub crc32: Option<String>,
    pub crc32c: Option<String>,
    pub crc64nvme: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
}

/// A multipart upload in progress.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct UploadRecord {
    pub key: String,
    pub initiated_ms: u64,
    #[serde(default)]
    pub headers: ContentHeaders,
}

/// One uploaded part.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PartRecord {
    /// Id of the body file in `parts/`.
    pub file: String,
    pub size: u64,
    /// Unquoted md5 hex of the part.
    pub etag: String,
    pub modified_ms: u64,
}

pub(crate) fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    // Serializing these plain structs to JSON cannot fail.
    serde_json::to_vec(record).unwrap_or_default()
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(bytes)
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64)
}

pub(crate) fn ms_to_system_time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}
