//! Who may do what: secret keys from the gate, one bucket per credential, caps before any body is read.

use std::sync::Arc;

use hyper::StatusCode;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Error, S3ErrorCode, S3Result};

use crate::store::Objects;
use crate::{Bucket, Gate, OpClass};

/// Auth and access for one listener; `scope` is the app whose network the listener serves.
#[derive(Clone)]
pub(crate) struct Access {
    pub objects: Arc<Objects>,
    pub gate: Arc<dyn Gate>,
    pub scope: Option<String>,
}

impl Access {
    fn credential(&self, access_key: &str) -> S3Result<(String, Bucket)> {
        self.gate.credential(self.scope.as_deref(), access_key).ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        })
    }
}

#[async_trait::async_trait]
impl S3Auth for Access {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        let (secret, _) = self.credential(access_key)?;
        Ok(SecretKey::from(secret))
    }
}

#[async_trait::async_trait]
impl S3Access for Access {
    /// Runs after the signature is verified and before the operation reads any body.
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let Some(credentials) = cx.credentials() else {
            return Err(access_denied("Signature is required"));
        };
        let (_, bucket) = self.credential(&credentials.access_key)?;
        if cx.s3_path().get_bucket_name().is_some_and(|name| name != bucket.name) {
            return Err(access_denied("Access Denied"));
        }
        let operation = cx.s3_op().name();
        match classify(operation) {
            Class::Counted(class) => self.gate.admit(&bucket, class).map_err(quota_exceeded)?,
            Class::Free => {}
            // Tools such as rclone "create" the bucket before writing to it and carry on when S3 answers
            // that the caller already owns it; AccessDenied would stop them.
            Class::Platform if operation == "CreateBucket" && self.objects.bucket(&bucket.name).is_some() => {
                return Err(S3Error::with_message(
                    S3ErrorCode::BucketAlreadyOwnedByYou,
                    "Your previous request to create the named bucket succeeded and you already own it.",
                ));
            }
            Class::Platform => return Err(access_denied("Buckets are managed by the platform")),
        }
        if matches!(operation, "PutObject" | "UploadPart")
            && let Some(declared) = declared_length(cx.headers())
        {
            let held = self.objects.bucket_bytes(&bucket.name);
            self.gate.admit_bytes(&bucket, held, declared).map_err(quota_exceeded)?;
        }
        cx.extensions_mut().insert(bucket);
        Ok(())
    }
}

enum Class {
    Counted(OpClass),
    /// Deletes cost nothing (as in R2): an app at its cap can still free space.
    Free,
    /// Bucket lifecycle belongs to the platform.
    Platform,
}

fn classify(operation: &str) -> Class {
    match operation {
        "GetObject" | "HeadObject" | "HeadBucket" | "GetBucketLocation" | "GetBucketVersioning" => {
            Class::Counted(OpClass::B)
        }
        "DeleteObject" | "DeleteObjects" | "AbortMultipartUpload" => Class::Free,
        "CreateBucket" | "DeleteBucket" => Class::Platform,
        // Writes, lists, and anything else (which answers NotImplemented) are class A.
        _ => Class::Counted(OpClass::A),
    }
}

/// The body length the client declared: the decoded length of an aws-chunked body, else Content-Length.
fn declared_length(headers: &hyper::HeaderMap) -> Option<u64> {
    let header =
        |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).and_then(|value| value.parse().ok());
    header("x-amz-decoded-content-length").or_else(|| header("content-length"))
}

fn access_denied(message: &'static str) -> S3Error {
    S3Error::with_message(S3ErrorCode::AccessDenied, message)
}

/// A cap refused by the gate: 403 `QuotaExceeded` carrying the gate's message, which SDKs show.
pub(crate) fn quota_exceeded(message: String) -> S3Error {
    let mut error = S3Error::with_message(S3ErrorCode::Custom("QuotaExceeded".into()), message);
    error.set_status_code(StatusCode::FORBIDDEN);
    error
}

/// The bucket the access check attached to the request.
pub(crate) fn bucket_of(extensions: &hyper::http::Extensions) -> S3Result<Bucket> {
    extensions.get::<Bucket>().cloned().ok_or_else(|| access_denied("Access Denied"))
}
