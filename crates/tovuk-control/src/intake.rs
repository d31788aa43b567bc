//! The `tovuk deploy` archive upload: spooled, unpacked safely, imported as a commit and
//! checked, then accepted like a push (see `accept`).

use crate::auth::{Caller, app_for};
use crate::{ApiFailure, ControlState};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt;
use std::io::Write;
use tovuk_api_types::{AcceptedSource, ErrorCode};
use tovuk_git::ObjectEnv;
use tovuk_git::archive::unpack;
use tovuk_manifest::{CheckReport, Manifest};
use tovuk_store::SourceKind;

/// The ref uploaded archives are committed to, hidden from git clients.
pub(crate) const UPLOADS_REF: &str = "refs/tovuk/uploads";

pub(crate) fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// The check report as lines for the user, plus whether it passed.
pub(crate) fn check_lines(report: &CheckReport, app: &str, manifest: Option<&Manifest>) -> (bool, Vec<String>) {
    let mut lines: Vec<String> = tovuk_manifest::render_human(report).lines().map(str::to_owned).collect();
    lines.extend(name_mismatch(app, manifest).map(|warning| format!("warning: {warning}")));
    (report.ok(), lines)
}

/// The warnings an accepted source is answered with: the contract's, and a differing app name.
pub(crate) fn source_warnings(report: &CheckReport, app: &str, manifest: Option<&Manifest>) -> Vec<String> {
    let mut warnings: Vec<String> = report.warnings().iter().map(|warning| warning.message.clone()).collect();
    warnings.extend(name_mismatch(app, manifest));
    warnings
}

fn name_mismatch(app: &str, manifest: Option<&Manifest>) -> Option<String> {
    let named = manifest?.name();
    (named != app).then(|| {
        format!(
            "tovuk.toml names app `{named}`, and this deploys app `{app}` (fine for one repo deployed as several apps)"
        )
    })
}

fn bad_archive(message: String) -> ApiFailure {
    ApiFailure::new(ErrorCode::BadArchive, message)
        .next("upload with `tovuk deploy`, which packs only regular files and safe symlinks")
}

/// `POST /v1/apps/{app}/deploys`: a `tovuk deploy` upload (tar + zstd). Refused whole
/// when the archive is unsafe, over a limit, or fails the contract check.
pub(crate) async fn upload(
    State(state): State<ControlState>,
    caller: Caller,
    Path(name_or_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<AcceptedSource>), ApiFailure> {
    let app = app_for(&state, &caller, &name_or_id).await?;
    let limit = state.config().max_upload_bytes;
    let too_large = || {
        ApiFailure::new(ErrorCode::TooLarge, format!("the upload is over the limit of {limit} bytes"))
            .next("add large generated files to .tovukignore, or raise the server's --max-upload-bytes")
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large());
    }

    let work = state.config().layout.work_dir();
    std::fs::create_dir_all(&work).map_err(|error| internal("cannot create the work dir", &error))?;
    let scratch = tempfile::Builder::new()
        .prefix("upload-")
        .tempdir_in(&work)
        .map_err(|error| internal("cannot create an upload dir", &error))?;
    // The archive is spooled to disk so memory stays flat whatever its size.
    let archive_path = scratch.path().join("upload.tar.zst");
    let mut archive =
        std::fs::File::create(&archive_path).map_err(|error| internal("cannot spool the upload", &error))?;
    let mut body = body;
    let mut received: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ApiFailure::new(ErrorCode::InvalidRequest, "the upload was interrupted"))?;
        let Ok(data) = frame.into_data() else { continue };
        received += data.len() as u64;
        if received > limit {
            return Err(too_large());
        }
        archive.write_all(&data).map_err(|error| internal("cannot spool the upload", &error))?;
    }
    drop(archive);

    let tree = scratch.path().join("tree");
    std::fs::create_dir(&tree).map_err(|error| internal("cannot create the upload tree", &error))?;
    let unpack_tree = tree.clone();
    let limits = state.config().archive_limits.clone();
    let unpacked = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&archive_path)?;
        Ok::<_, std::io::Error>(unpack(std::io::BufReader::new(file), &unpack_tree, &limits))
    })
    .await
    .map_err(|error| internal("the unpacker stopped", &error))?
    .map_err(|error| internal("cannot read the spooled upload", &error))?;
    let unpacked = unpacked.map_err(|error| {
        if error.is_server_fault() {
            // The detail names server paths: it goes to the log, not to the client.
            internal("cannot unpack the upload", &error)
        } else {
            let mut failure = bad_archive(format!("the archive was refused whole: {error}"));
            failure.0.detail = Some(serde_json::json!({ "archive_error": error.code() }));
            failure
        }
    })?;

    let index_dir = scratch.path().join("index");
    std::fs::create_dir(&index_dir).map_err(|error| internal("cannot create the index dir", &error))?;
    let repo = state.repos().path(&app.name);
    let _guard = state.app_lock(app.id.as_str()).lock_owned().await;
    let message = format!("tovuk deploy upload ({} files)", unpacked.files);
    let commit = tovuk_git::import_tree(&repo, &tree, &index_dir, UPLOADS_REF, &message)
        .await
        .map_err(|error| internal("cannot import the upload", &error))?;
    let check = tovuk_git::check_commit(&repo, &ObjectEnv::default(), &commit.sha, &app.name)
        .await
        .map_err(|error| internal("cannot read the imported upload", &error))?;
    if !check.report.ok() {
        let mut failure = ApiFailure::new(ErrorCode::CheckFailed, "the upload was refused: the contract check failed")
            .next("fix tovuk.toml, run `tovuk check`, then `tovuk deploy` again");
        failure.0.detail = serde_json::to_value(&check.report).ok();
        return Err(failure);
    }
    tovuk_git::move_ref(&repo, UPLOADS_REF, &commit, &message)
        .await
        .map_err(|error| internal("cannot record the upload in the repository", &error))?;
    let accepted = crate::accept::accept_source(
        &state,
        crate::accept::Source {
            app: &app,
            token_id: caller.token.id.to_string(),
            kind: SourceKind::Archive,
            ref_name: UPLOADS_REF.to_owned(),
            old_sha: commit.parent.clone(),
            sha: commit.sha.clone(),
            forced: false,
            retry: false,
            manifest: check.manifest.as_ref(),
            warnings: source_warnings(&check.report, &app.name, check.manifest.as_ref()),
            held_by_push: None,
        },
    )
    .await?;
    tracing::debug!(files = unpacked.files, bytes = unpacked.bytes, "upload unpacked");
    let status = if accepted.duplicate { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(accepted)))
}

fn internal(what: &str, error: &dyn std::fmt::Display) -> ApiFailure {
    tracing::error!(%error, "{what}");
    ApiFailure::new(ErrorCode::Internal, format!("{what}; the upload was not kept")).next("tovuk status")
}
