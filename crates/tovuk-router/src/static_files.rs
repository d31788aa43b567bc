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
use hyper::header::{self, HeaderValue};
use hyper::{Method, Response, StatusCode, Uri};
use std::path::{Path, PathBuf};
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
        size_bytes: u64,
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
        Ok(metadata) if metadata.is_file() => Resolved::File { path: real_path, size_bytes: metadata.len() },
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
    match resolve(&canonical_root, &candidate).await {
        Resolved::File { path, size_bytes } => file_response(StatusCode::OK, &path, size_bytes, head_only).await,
        Resolved::Directory if !uri.path().ends_with('/') => redirect_to_directory(uri),
        Resolved::Directory => match resolve(&canonical_root, &candidate.join("index.html")).await {
            Resolved::File { path, size_bytes } => file_response(StatusCode::OK, &path, size_bytes, head_only).await,
            Resolved::Outside => outside_root(app, request_id, uri),
            Resolved::Directory | Resolved::Missing => not_found(&canonical_root, app, uri, head_only).await,
        },
        Resolved::Outside => outside_root(app, request_id, uri),
        Resolved::Missing => not_found(&canonical_root, app, uri, head_only).await,
    }
}

/// The app's own `404.html` when it ships one, else a short text.
async fn not_found(canonical_root: &Path, app: &str, uri: &Uri, head_only: bool) -> Response<RouterBody> {
    if let Resolved::File { path, size_bytes } = resolve(canonical_root, &canonical_root.join("404.html")).await {
        return file_response(StatusCode::NOT_FOUND, &path, size_bytes, head_only).await;
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

/// Streams the file in chunks, so a large asset costs a buffer, not its size.
async fn file_response(status: StatusCode, path: &Path, size_bytes: u64, head_only: bool) -> Response<RouterBody> {
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
    response
}

#[cfg(test)]
mod tests;
