//! Static apps: files served from a release directory, never from outside it.
//!
//! Two guards keep requests inside the root: the decoded path may not contain `.` or `..`
//! segments (so `/../x` and `/%2e%2e/x` are refused before touching the disk), and every
//! resolved file is canonicalised and must still lie under the canonical root (so a symlink
//! that points out of the release is refused too).

use crate::body::{BoxError, RouterBody, empty};
use crate::{content_type, reply};
use futures_util::TryStreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode, Uri};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};
use tokio_util::io::ReaderStream;

/// A request path that cannot name a file under the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadPath {
    /// A `.` or `..` segment, however it was encoded.
    Traversal,
    /// A segment that decodes to something no file name should hold (`/`, `\`, NUL, invalid UTF-8).
    Malformed,
}

/// The decoded, non-empty segments of a request path.
pub(crate) fn request_segments(path: &str) -> Result<Vec<String>, BadPath> {
    let mut segments = Vec::new();
    for raw_segment in path.split('/').filter(|segment| !segment.is_empty()) {
        let segment =
            percent_encoding::percent_decode_str(raw_segment).decode_utf8().map_err(|_| BadPath::Malformed)?;
        if segment == "." || segment == ".." {
            return Err(BadPath::Traversal);
        }
        if segment.contains(['/', '\\', '\0']) {
            return Err(BadPath::Malformed);
        }
        segments.push(segment.into_owned());
    }
    Ok(segments)
}

/// What a path under the root turned out to be.
enum Resolved {
    File {
        path: PathBuf,
        metadata: std::fs::Metadata,
    },
    Directory,
    Missing,
    /// The path exists but resolves (through a symlink) outside the root.
    Outside,
}

async fn resolve(canonical_root: &Path, candidate: &Path) -> Resolved {
    let Ok(real_path) = tokio::fs::canonicalize(candidate).await else {
        return Resolved::Missing;
    };
    if !real_path.starts_with(canonical_root) {
        return Resolved::Outside;
    }
    match tokio::fs::metadata(&real_path).await {
        Ok(metadata) if metadata.is_dir() => Resolved::Directory,
        Ok(metadata) if metadata.is_file() => Resolved::File { path: real_path, metadata },
        _ => Resolved::Missing,
    }
}

/// Answers a request for a static app's file.
pub(crate) async fn serve(
    root: &Path,
    app: &str,
    request_id: &str,
    method: &Method,
    uri: &Uri,
    request_headers: &HeaderMap,
) -> Response<RouterBody> {
    if method != Method::GET && method != Method::HEAD {
        let mut response = reply::text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("tovuk: app `{app}` serves static files: GET or HEAD only\n"),
        );
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let segments = match request_segments(uri.path()) {
        Ok(segments) => segments,
        Err(bad_path) => {
            tracing::info!(request_id, app, path = uri.path(), ?bad_path, source = "downstream", "refused static path");
            return reply::text(StatusCode::BAD_REQUEST, format!("tovuk: the path `{}` is not allowed\n", uri.path()));
        }
    };
    let canonical_root = match tokio::fs::canonicalize(root).await {
        Ok(canonical_root) => canonical_root,
        Err(error) => {
            tracing::error!(%error, request_id, app, root = %root.display(), source = "internal", "static release directory is unreadable");
            return reply::internal_error(request_id);
        }
    };
    let candidate = segments.iter().fold(canonical_root.clone(), |path, segment| path.join(segment));
    let head_only = method == Method::HEAD;
    let ok = |path: PathBuf, metadata: std::fs::Metadata| async move {
        file_response(StatusCode::OK, &path, &metadata, head_only, Some(request_headers)).await
    };
    match resolve(&canonical_root, &candidate).await {
        Resolved::File { path, metadata } => ok(path, metadata).await,
        Resolved::Directory if !uri.path().ends_with('/') => redirect_to_directory(uri),
        Resolved::Directory => match resolve(&canonical_root, &candidate.join("index.html")).await {
            Resolved::File { path, metadata } => ok(path, metadata).await,
            Resolved::Outside => outside_root(app, request_id, uri),
            Resolved::Directory | Resolved::Missing => not_found(&canonical_root, app, uri, head_only).await,
        },
        Resolved::Outside => outside_root(app, request_id, uri),
        Resolved::Missing => not_found(&canonical_root, app, uri, head_only).await,
    }
}

/// The app's own `404.html` when it ships one, else a short text.
async fn not_found(canonical_root: &Path, app: &str, uri: &Uri, head_only: bool) -> Response<RouterBody> {
    if let Resolved::File { path, metadata } = resolve(canonical_root, &canonical_root.join("404.html")).await {
        return file_response(StatusCode::NOT_FOUND, &path, &metadata, head_only, None).await;
    }
    reply::text(StatusCode::NOT_FOUND, format!("tovuk: app `{app}` has no file at `{}`\n", uri.path()))
}

fn outside_root(app: &str, request_id: &str, uri: &Uri) -> Response<RouterBody> {
    tracing::warn!(
        request_id,
        app,
        path = uri.path(),
        source = "downstream",
        "refused a static path that leaves the release"
    );
    reply::text(StatusCode::FORBIDDEN, format!("tovuk: the path `{}` is not allowed\n", uri.path()))
}

/// `/docs` -> `/docs/`, so the relative links inside `docs/index.html` resolve.
fn redirect_to_directory(uri: &Uri) -> Response<RouterBody> {
    let location = match uri.query() {
        Some(query) => format!("{}/?{query}", uri.path()),
        None => format!("{}/", uri.path()),
    };
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    // The path came from a parsed URI, so it holds only characters a header value allows.
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// Streams the file in chunks, so a large asset costs a buffer, not its size. With the
/// request's headers (a 200), its validators are checked: a match answers `304`.
async fn file_response(
    status: StatusCode,
    path: &Path,
    metadata: &std::fs::Metadata,
    head_only: bool,
    request_headers: Option<&HeaderMap>,
) -> Response<RouterBody> {
    let size_bytes = metadata.len();
    let etag = etag_of(path, metadata).await;
    let modified = metadata.modified().ok().filter(|time| *time > SystemTime::UNIX_EPOCH);
    if let Some(request_headers) = request_headers
        && not_modified(request_headers, etag.as_deref(), modified)
    {
        let mut response = Response::new(empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        validators(response.headers_mut(), etag.as_deref(), modified);
        return response;
    }
    let body = if head_only {
        empty()
    } else {
        match tokio::fs::File::open(path).await {
            Ok(file) => {
                let frames =
                    ReaderStream::new(file).map_ok(Frame::data).map_err(|error| -> BoxError { Box::new(error) });
                StreamBody::new(frames).boxed_unsync()
            }
            // Removed between resolving and opening: a release being cleaned up.
            Err(_) => return reply::text(StatusCode::NOT_FOUND, "tovuk: the file is gone\n".to_owned()),
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type::for_path(path)));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size_bytes));
    validators(headers, etag.as_deref(), modified);
    response
}

fn validators(headers: &mut HeaderMap, etag: Option<&str>, modified: Option<SystemTime>) {
    if let Some(etag) = etag.and_then(|etag| HeaderValue::from_str(etag).ok()) {
        headers.insert(header::ETAG, etag);
    }
    if let Some(modified) = modified.and_then(|time| HeaderValue::from_str(&httpdate::fmt_http_date(time)).ok()) {
        headers.insert(header::LAST_MODIFIED, modified);
    }
}

/// `If-None-Match` (which wins when present) or `If-Modified-Since` says the client has it.
fn not_modified(request: &HeaderMap, etag: Option<&str>, modified: Option<SystemTime>) -> bool {
    if let Some(wanted) = request.get(header::IF_NONE_MATCH).and_then(|value| value.to_str().ok()) {
        let Some(etag) = etag else { return false };
        // Weak comparison, as RFC 9110 asks for If-None-Match.
        return wanted.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag);
    }
    let since = request.get(header::IF_MODIFIED_SINCE).and_then(|value| value.to_str().ok());
    match (since.and_then(|since| httpdate::parse_http_date(since).ok()), modified) {
        // HTTP dates have whole seconds.
        (Some(since), Some(modified)) => {
            modified.duration_since(since).map_or(true, |newer| newer < Duration::from_secs(1))
        }
        _ => false,
    }
}

/// Files hashed so far, by what identifies one version of a file; releases are read-only, so
/// a version's hash never changes. Cleared when full.
static ETAGS: OnceLock<Mutex<HashMap<FileVersion, String>>> = OnceLock::new();
/// Device, inode, modification time (seconds, nanoseconds) and size.
type FileVersion = (u64, u64, i64, i64, u64);
const ETAGS_KEPT: usize = 10_000;

/// A strong ETag from the file's content (the first 128 bits of its SHA-256), computed once
/// per file version: it changes exactly when the bytes do.
async fn etag_of(path: &Path, metadata: &std::fs::Metadata) -> Option<String> {
    let key = (metadata.dev(), metadata.ino(), metadata.mtime(), metadata.mtime_nsec(), metadata.len());
    let cache = ETAGS.get_or_init(Mutex::default);
    if let Some(etag) = cache.lock().ok().and_then(|cache| cache.get(&key).cloned()) {
        return Some(etag);
    }
    let path = path.to_owned();
    let etag = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        use sha2::Digest;
        use std::io::Read;
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = sha2::Sha256::new();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = file.read(&mut buffer)?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
        Ok(format!("\"{}\"", hex::encode(&hasher.finalize()[..16])))
    })
    .await
    .ok()?
    .ok()?;
    if let Ok(mut cache) = cache.lock() {
        if cache.len() >= ETAGS_KEPT {
            cache.clear();
        }
        cache.insert(key, etag.clone());
    }
    Some(etag)
}

#[cfg(test)]
mod tests;
