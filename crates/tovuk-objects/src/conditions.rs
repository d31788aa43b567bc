//! HTTP preconditions on an object (GET/HEAD, PUT, copy source), with S3's answers.

use s3s::dto::{ETagCondition, Timestamp};
use s3s::{S3Error, S3ErrorCode, S3Result};

use crate::record::{ObjectRecord, ms_to_system_time};

/// The conditional headers of one request, borrowed from its input.
#[derive(Default)]
pub(crate) struct Preconditions<'a> {
    pub if_match: Option<&'a ETagCondition>,
    pub if_none_match: Option<&'a ETagCondition>,
    pub if_modified_since: Option<&'a Timestamp>,
    pub if_unmodified_since: Option<&'a Timestamp>,
}

/// What a failed `If-None-Match`/`If-Modified-Since` answers: 304 on GET/HEAD, 412 elsewhere.
#[derive(Clone, Copy)]
pub(crate) enum OnUnchanged {
    NotModified,
    PreconditionFailed,
}

/// Evaluates in RFC 9110 order, which S3 follows: If-Match, else If-Unmodified-Since (412);
/// then If-None-Match, else If-Modified-Since (304 for reads).
pub(crate) fn check(conditions: &Preconditions<'_>, object: &ObjectRecord, on_unchanged: OnUnchanged) -> S3Result<()> {
    // HTTP dates have whole seconds; compare at that precision so a date taken from Last-Modified matches.
    let modified = Timestamp::from(ms_to_system_time(object.modified_ms / 1000 * 1000));
    if let Some(condition) = conditions.if_match {
        if !etag_matches(condition, &object.etag) {
            return Err(precondition_failed());
        }
    } else if let Some(since) = conditions.if_unmodified_since
        && modified > *since
    {
        return Err(precondition_failed());
    }
    let unchanged = match conditions.if_none_match {
        Some(condition) => etag_matches(condition, &object.etag),
        None => conditions.if_modified_since.is_some_and(|since| modified <= *since),
    };
    if unchanged {
        return Err(match on_unchanged {
            OnUnchanged::NotModified => not_modified(&object.etag),
            OnUnchanged::PreconditionFailed => precondition_failed(),
        });
    }
    Ok(())
}

fn etag_matches(condition: &ETagCondition, etag: &str) -> bool {
    match condition {
        ETagCondition::Any => true,
        ETagCondition::ETag(expected) => expected.value() == etag,
    }
}

pub(crate) fn precondition_failed() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::PreconditionFailed,
        "At least one of the pre-conditions you specified did not hold",
    )
}

fn not_modified(etag: &str) -> S3Error {
    let mut error = S3Error::new(S3ErrorCode::NotModified);
    let mut headers = hyper::HeaderMap::new();
    if let Ok(value) = hyper::header::HeaderValue::from_str(&format!("\"{etag}\"")) {
        headers.insert(hyper::header::ETAG, value);
    }
    error.set_headers(headers);
    error
}
